//! The one progress bar of every command: on standard error, hidden with `--quiet` or when
//! standard error is not a terminal (indicatif draws nothing then).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` `units` (`steps`, `images`, …; `len` may be set later), hidden when `quiet`.
/// The message slot shows what the command reports as it goes (loss, σ, batch).
pub fn progress_bar(quiet: bool, len: u64, units: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {units}  {{msg}}  eta {{eta}}"
    );
    bar.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
