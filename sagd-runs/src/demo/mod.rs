//! `sagd demo`, the selective-omission demonstration, in one place: on the built-in `shapes`
//! data corrupted by white noise in one frequency band it trains two models (isotropic noise,
//! and the two-band SAGD spectrum whose gap is exactly the corrupted band), samples both with
//! the same sampler and seed, evaluates both against clean and corrupted data and writes
//! `report.md`.
//!
//! - [`plan`]: the data, corruption, models, lengths and run configs;
//! - [`run`]: the orchestration ([`demo_run`]): every stage is one ordinary `sagd` subcommand
//!   run as a child process with the arguments the report prints, so the demo has no
//!   training, sampling or evaluation of its own and each number reproduces by its command;
//! - [`results`]: the numbers, figures and verdict from the stages' outputs;
//! - [`report`]: `summary.json`, the one-line summary and `report.md`.
//!
//! ```
//! use sagd_runs::demo::Plan;
//!
//! let plan = Plan::new(true);
//! assert_eq!(plan.sagd_spectrum(), "two-band:a_l=0,b_l=0.3,a_h=0.4,b_h=1");
//! assert_eq!(plan.eval_band(), 3); // the unit-radius band [0.3, 0.4)
//! let config = plan.config(0, "isotropic", "isotropic");
//! assert!(config.contains("steps = 40") && config.contains("corrupt:a=0.3,b=0.4,gamma=1"));
//! ```

pub mod plan;
pub mod report;
pub mod results;
pub mod run;

pub use plan::{DemoSettings, Model, Plan, Stage};
pub use report::{Report, summary_json, summary_line};
pub use results::{Results, RunLog, Verdict, read_log, verdict, write_figures};
pub use run::{DemoEvent, DemoRequest, DemoRun, demo_run};
