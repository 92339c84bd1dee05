//! The demo's `summary.json`, its one-line summary and `report.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

fn s(text: impl Into<String>) -> String {
    text.into()
}

use super::plan::{DemoSettings, Model, Plan, Stage};
use super::results::{LEARNED_FRACTION, Results, RunLog, verdict};

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or(s("–"), |v| format!("{v:.digits$}"))
}

/// `summary.json`: every number of the report, the verdicts, each stage's command, wall time
/// and JSON output.
#[allow(clippy::too_many_arguments)]
pub fn summary_json(
    args: &DemoSettings,
    plan: &Plan,
    models: &[Model],
    results: &Results,
    stages: &[Stage],
    total_seconds: f64,
    with_fid: bool,
) -> Value {
    let v = verdict(plan, results);
    let band = plan.eval_band();
    let rows: serde_json::Map<String, Value> = results
        .rows
        .iter()
        .map(|r| {
            (
                r.key.clone(),
                json!({
                    "label": r.label,
                    "log_spectral_distance_clean": r.lsd_clean,
                    "log_spectral_distance_corrupted": r.lsd_corrupted,
                    "mode_variance_log_rms_clean": r.mode_log_rms_clean,
                    "band_ratio_corrupted_band": results.ratio(&r.bands, band),
                    "band_ratios": (0..r.bands.len()).map(|i| {
                        let x = results.ratio(&r.bands, i);
                        if x.is_finite() { json!(x) } else { Value::Null }
                    }).collect::<Vec<_>>(),
                    "fid_clean": r.fid,
                    "kid_clean": r.kid.map(|(m, sd)| json!({"mean": m, "std": sd})),
                }),
            )
        })
        .collect();
    json!({
        "out": args.out,
        "report": args.out.join("report.md"),
        "seed": args.seed,
        "quick": args.quick,
        "device": args.device,
        "data": plan.data,
        "reference": plan.reference,
        "corrupted_band": [plan.band.0, plan.band.1],
        "gamma": plan.gamma,
        "spectra": models.iter().map(|m| (m.key.to_string(), json!(m.spectrum))).collect::<serde_json::Map<_, _>>(),
        "steps": plan.steps,
        "samples": plan.samples,
        "sampler": format!("ddim eta=0 steps={}", plan.sampler_steps),
        "fid": with_fid,
        "models": rows,
        "corrupted_data_band_ratio": v.ratios.0,
        "learned": v.learned.iter().map(|(k, ok, _)| (k.clone(), json!(ok))).collect::<serde_json::Map<_, _>>(),
        "band_left_out": v.omitted,
        "stages": stages.iter().map(|st| json!({
            "stage": st.label, "command": st.command, "seconds": st.seconds, "output": st.output,
        })).collect::<Vec<_>>(),
        "seconds": total_seconds,
    })
}

/// The one line the demo prints: the band ratios, the verdict, FIDs, the report's path and
/// the wall time.
pub fn summary_line(plan: &Plan, results: &Results, report: &Path, seconds: f64) -> String {
    let v = verdict(plan, results);
    let fid = results
        .row("isotropic")
        .fid
        .zip(results.row("sagd").fid)
        .map_or(String::new(), |(a, b)| {
            format!("; FID to clean data {a:.2} (isotropic) vs {b:.2} (SAGD)")
        });
    format!(
        "demo: energy in the corrupted band [{}, {}) as a ratio to clean data: corrupted data \
         {:.2}, isotropic model {:.2}, SAGD model {:.2} ({}){fid}; report {} ({})",
        plan.band.0,
        plan.band.1,
        v.ratios.0,
        v.ratios.1,
        v.ratios.2,
        if v.omitted {
            "SAGD left the band out"
        } else {
            "SAGD did not leave the band out"
        },
        report.display(),
        minutes(seconds),
    )
}

fn minutes(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{}m {:02.0}s", (seconds / 60.0).floor(), seconds % 60.0)
    }
}

/// What `report.md` is written from: the settings, the plan, the models and what their stages
/// produced. `sampled` holds each model's samples folder and its `sagd sample` output;
/// `weights` the FID weights when found; the seconds are the demo's total and the report's
/// own.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// The invocation's settings.
    pub settings: &'a DemoSettings,
    /// The plan.
    pub plan: &'a Plan,
    /// The models.
    pub models: &'a [Model],
    /// The numbers.
    pub results: &'a Results,
    /// Every stage.
    pub stages: &'a [Stage],
    /// Each model's samples folder and `sagd sample` output.
    pub sampled: &'a [(PathBuf, Value)],
    /// Each model's training log.
    pub logs: &'a [RunLog],
    /// The demo's wall time.
    pub total_seconds: f64,
    /// The FID weights, when found.
    pub weights: Option<&'a Path>,
    /// The figures' and report's wall time.
    pub report_seconds: f64,
}

impl Report<'_> {
    /// `report.md`: the setting, the figures, the metrics table, the verdict and every stage's
    /// command and wall time.
    pub fn markdown(&self) -> String {
        let mut r = String::new();
        self.intro(&mut r);
        self.setting(&mut r);
        self.samples(&mut r);
        self.spectra(&mut r);
        self.training(&mut r);
        self.metrics(&mut r);
        self.conclusions(&mut r);
        self.reproduce(&mut r);
        r
    }

    /// The title, the `--quick` warning and what the demo does.
    fn intro(&self, r: &mut String) {
        let Report {
            settings: args,
            plan,
            ..
        } = *self;
        let _ = writeln!(r, "# sagd demo: selective omission of a corrupted band\n");
        if args.quick {
            let _ = writeln!(
                r,
                "> **`--quick`**: {} training steps per model, a check that every stage runs. \
                 These models have not learned the data; run `sagd demo` without `--quick` for \
                 the demonstration.\n",
                plan.steps
            );
        }
        let _ = writeln!(
            r,
            "The training images are corrupted by white noise restricted to one frequency band. \
             Two identical U-Nets are trained on them, from the same initial weights, with the \
             same data order: one with **isotropic** (white) forward noise, one with the \
             **two-band SAGD** spectrum whose gap is exactly the corrupted band, so its denoiser is \
             never asked to model that band (selective omission). Both are sampled with the same \
             sampler and seed and compared, in frequency, with clean and with corrupted held-out \
             data.\n"
        );
    }

    /// The data, corruption, models, sampling and why this size.
    fn setting(&self, r: &mut String) {
        let Report {
            settings: args,
            plan,
            models,
            results,
            logs,
            ..
        } = *self;
        let (lo, hi) = plan.band;
        let modes = results.band_edges[plan.eval_band()].2;
        let total_modes: usize = results.band_edges.iter().map(|b| b.2).sum();
        let _ = writeln!(r, "## Setting\n");
        let _ = writeln!(
            r,
            "- **Data**: `{}` (the built-in `shapes`: one disk, square or bar per 16×16 grey \
             image); the comparisons use its test split `{}`.",
            plan.data, plan.reference
        );
        let _ = writeln!(
            r,
            "- **Corruption**: `corrupt:a={lo},b={hi},gamma={}`: `x' = x + γ·ε_[a,b]`, white \
             noise restricted to the unit-radius band {lo} ≤ r ≤ {hi} ({modes} of the {total_modes} \
             Fourier modes; one mode variance 1 each, in the [0, 1] pixel range), drawn afresh \
             for every batch.",
            plan.gamma
        );
        let _ = writeln!(
            r,
            "- **Models**: U-Net, widths 16/32/32, one residual block per level, no attention, \
             GroupNorm(8); v-prediction (`v = √ᾱ ε^(w) − σ x_0`, converted to `ε̂^(w)` and, for \
             SAGD, projected onto the support of `Σ_w` at every sampling step, so nothing is \
             generated in the gap); DDPM-linear schedule, T = 1000; AdamW, lr 2e-3, \
             warm-up {} steps, cosine decay to 0, gradient clipping 1; batch {}; EMA 0.99; **{} \
             steps** each; seed {}. Noise: `isotropic`, and `{}`.",
            plan.warmup,
            plan.batch,
            plan.steps,
            args.seed,
            plan.sagd_spectrum()
        );
        let _ = writeln!(
            r,
            "- **Sampling**: DDIM, η = 0, {} steps, matched prior `N(0, σ_T² Σ_w)`, EMA weights, \
             seed {}; {} images per model ({} of the untrained model: the isotropic run's step-1 \
             checkpoint, one AdamW step at lr/{}).",
            plan.sampler_steps, args.seed, plan.samples, plan.untrained_samples, plan.warmup
        );
        let training: Vec<String> = models
            .iter()
            .zip(logs)
            .map(|(m, log)| format!("{} {}", m.key, minutes(log.seconds)))
            .collect();
        let rate = logs.iter().map(|l| l.images).sum::<f64>()
            / logs.iter().map(|l| l.seconds).sum::<f64>().max(1e-9);
        let _ = writeln!(
            r,
            "- **Why this size**: 16×16 grey images and this 267 k-parameter U-Net train at about \
             230 images/s on 2 CPU cores with the default build ({rate:.0} images/s in this run), \
             fast enough for both models to learn the shapes in a few minutes each (this run's \
             training: {}); the band [0.3, 0.4] is one of the evaluation's ten unit-radius bands \
             and no Fourier mode of a 16×16 grid lies on its edges, so the corruption and the gap \
             cover exactly the same modes. v- rather than ε-prediction because at this length \
             about a third of an ε-prediction model's samples (isotropic, clean data, 800 steps) \
             were still noise, and none of a v-prediction model's at 600.\n",
            training.join(", ")
        );
    }

    /// The data and sample grids.
    fn samples(&self, r: &mut String) {
        let Report {
            models,
            sampled,
            settings: args,
            ..
        } = *self;
        let rel = |p: &Path| {
            p.strip_prefix(&args.out)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| p.display().to_string())
        };
        let _ = writeln!(r, "## Data and samples\n");
        let _ = writeln!(r, "| clean data | corrupted data (training) |");
        let _ = writeln!(r, "| --- | --- |");
        let _ = writeln!(
            r,
            "| ![clean](figures/clean.png) | ![corrupted](figures/corrupted.png) |\n"
        );
        let _ = writeln!(r, "| untrained | isotropic | SAGD |");
        let _ = writeln!(r, "| --- | --- | --- |");
        let mut cells = vec![format!("![untrained](samples/untrained/grid.png)")];
        for (model, (dir, _)) in models.iter().zip(sampled) {
            cells.push(format!("![{}]({}/grid.png)", model.key, rel(dir)));
        }
        let _ = writeln!(r, "| {} |\n", cells.join(" | "));
        let _ = writeln!(
            r,
            "Grids show the first 64 images (pixel values clamped to [0, 1]).\n"
        );
    }

    /// The spectra figure and the table of band energies.
    fn spectra(&self, r: &mut String) {
        let Report { results, plan, .. } = *self;
        let band = plan.eval_band();
        let _ = writeln!(r, "## Spectra\n");
        let _ = writeln!(r, "![spectra](figures/spectra.png)\n");
        let _ = writeln!(
            r,
            "Left: the radially averaged power per Fourier mode (mean image included; radius in \
             the unit convention, 1 = the corner frequency; outside the corrupted band the clean \
             and corrupted data coincide). Right: the energy per band as a ratio to the clean \
             data's, the numbers of the table below.\n"
        );
        let _ = writeln!(
            r,
            "Energy per unit-radius band as a ratio to the clean data's (the evaluation's ten \
             bands; **bold** is the corrupted band; `sagd eval`'s band energies, mean image \
             included):\n"
        );
        let mut head = s("| | ");
        let mut rule = s("| --- | ");
        for (i, (a, b, m)) in results.band_edges.iter().enumerate() {
            let cell = format!("[{a:.1}, {b:.1}) ({m} modes)");
            if i == band {
                let _ = write!(head, "**{cell}** | ");
            } else {
                let _ = write!(head, "{cell} | ");
            }
            rule.push_str("--- | ");
        }
        let _ = writeln!(r, "{}\n{}", head.trim_end(), rule.trim_end());
        let mut ratio_row = |name: &str, bands: &[f64]| {
            let cells: Vec<String> = (0..bands.len())
                .map(|i| {
                    let x = results.ratio(bands, i);
                    let text = if x.is_finite() {
                        format!("{x:.3}")
                    } else {
                        s("–")
                    };
                    if i == band {
                        format!("**{text}**")
                    } else {
                        text
                    }
                })
                .collect();
            let _ = writeln!(r, "| {name} | {} |", cells.join(" | "));
        };
        ratio_row("corrupted data", &results.corrupted_bands);
        for row in &results.rows {
            ratio_row(&row.label, &row.bands);
        }
        let _ = writeln!(r);
    }

    /// The loss curves.
    fn training(&self, r: &mut String) {
        let _ = writeln!(r, "## Training\n");
        let _ = writeln!(r, "![loss](figures/loss.png)\n");
        let _ = writeln!(
            r,
            "The two losses are not comparable with each other: each model regresses the v of \
             its own noise, and the isotropic model's includes the corruption, which no network \
             can predict.\n"
        );
    }

    /// The metrics table and what each metric is.
    fn metrics(&self, r: &mut String) {
        let Report {
            plan,
            results,
            weights,
            ..
        } = *self;
        let band = plan.eval_band();
        let (lo, hi) = plan.band;
        let _ = writeln!(r, "## Metrics\n");
        let _ = writeln!(
            r,
            "| model | log-spectral distance to clean | to corrupted | band ratio in [{lo}, {hi}) \
             | mode-variance log-RMS to clean | FID to clean | KID to clean |"
        );
        let _ = writeln!(r, "| --- | --- | --- | --- | --- | --- | --- |");
        for row in &results.rows {
            let _ = writeln!(
                r,
                "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} |",
                row.label,
                row.lsd_clean,
                row.lsd_corrupted,
                results.ratio(&row.bands, band),
                row.mode_log_rms_clean,
                fmt_opt(row.fid, 2),
                row.kid.map_or(s("–"), |(m, sd)| if sd > 1e-9 {
                    format!("{m:.4} ± {sd:.4}")
                } else {
                    // One subset (the whole set): no spread to report.
                    format!("{m:.4}")
                }),
            );
        }
        let _ = writeln!(r);
        let _ = writeln!(
            r,
            "Log-spectral distance: the RMS over radial bins of the log ratio of the radial power \
             spectra (0 = the same spectrum). Mode-variance log-RMS: the RMS of the log ratio of \
             the per-mode variances over all modes."
        );
        match weights {
            Some(w) => {
                let _ = writeln!(
                    r,
                    "FID and KID: pool3 features of the FID Inception-v3 (`{}`), {} samples (a \
                     seeded subset) against {} clean test images (FID at this N is biased upwards: \
                     compare the two models with each other, not with published FIDs).\n",
                    w.display(),
                    plan.fid_count,
                    plan.fid_count
                );
            }
            None => {
                let _ = writeln!(
                    r,
                    "FID and KID: not computed, no FID Inception weights were found. To enable \
                     them, pass `--inception FILE` or set `SAGD_MODELS_DIR` (the folder holding \
                     `fid-inception/pt_inception-2015-12-05.safetensors`) or `SAGD_INCEPTION` \
                     (that file, or pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`), and run \
                     the demo again with `--overwrite`.\n"
                );
            }
        }
    }

    /// What the numbers say: learned or not, and the corrupted band.
    fn conclusions(&self, r: &mut String) {
        let Report {
            settings: args,
            results,
            plan,
            ..
        } = *self;
        let v = verdict(plan, results);
        let (lo, hi) = plan.band;
        let _ = writeln!(r, "## What the numbers say\n");
        let untrained = results.row("untrained");
        for (key, ok, fraction) in &v.learned {
            let row = results.row(key);
            let (target, base) = if key == "isotropic" {
                ("corrupted", untrained.lsd_corrupted)
            } else {
                ("clean", untrained.lsd_clean)
            };
            let mine = if key == "isotropic" {
                row.lsd_corrupted
            } else {
                row.lsd_clean
            };
            let _ = writeln!(
                r,
                "- **{}**: log-spectral distance to the {target} data {mine:.3}, {:.0}% of the \
                 untrained model's {base:.3}: {}.",
                row.label,
                100.0 * fraction,
                if *ok {
                    format!(
                        "it learned the data's spectrum (below {:.0}% of the untrained model's)",
                        100.0 * LEARNED_FRACTION
                    )
                } else {
                    format!(
                        "it has **not** learned the data's spectrum (the bar is {:.0}% of the \
                         untrained model's){}",
                        100.0 * LEARNED_FRACTION,
                        if args.quick {
                            " — expected with --quick"
                        } else {
                            ""
                        }
                    )
                }
            );
        }
        let (data, iso, sagd) = v.ratios;
        let _ = writeln!(
            r,
            "- **The corrupted band** [{lo}, {hi}): the corrupted data carry {data:.2}× the clean \
             data's energy there; the isotropic model's samples {iso:.2}× ({}); the SAGD model's \
             {sagd:.2}×. {}",
            if !v.learned.iter().any(|(k, ok, _)| k == "isotropic" && *ok) {
                "not yet meaningful: this model has not learned the data"
            } else if iso > 1.0 + 0.5 * (data - 1.0) {
                "it learned the corruption"
            } else if iso > 1.0 {
                "it learned part of the corruption"
            } else {
                "it did not learn the corruption"
            },
            if v.omitted {
                format!(
                    "**SAGD left the corrupted band out**: its excess energy there is under a \
                     tenth of the isotropic model's.{}",
                    if sagd < 0.5 {
                        " It does not restore the clean content of the band either: its sampler \
                         starts with no energy in the gap (the prior `N(0, σ_T² Σ_w)` has none \
                         there) and every step's `ε̂^(w)` lies in the support of `Σ_w`, so the \
                         band stays empty but for what the [0, 1] clamp of the samples adds back \
                         (ratio below 1): the clean data's own content in that band is left out \
                         with the corruption."
                    } else {
                        ""
                    }
                ) + " The gap is empty by construction of the sampler, so this holds for any \
                    SAGD model, trained or not; what training adds is the rest of the spectrum \
                    (the line above)."
            } else {
                s(
                    "**At this scale SAGD did not leave the band out** (its excess energy there is \
                   not under a tenth of the isotropic model's).",
                )
            }
        );
        let _ = writeln!(
            r,
            "- What the numbers cannot say, the grids above show: whether the samples are \
             recognisable shapes, and whether the corruption's texture is in the isotropic \
             model's samples and not in the SAGD model's.\n"
        );
    }

    /// Every stage's command and wall time.
    fn reproduce(&self, r: &mut String) {
        let Report {
            settings: args,
            plan,
            stages,
            total_seconds,
            report_seconds,
            ..
        } = *self;
        let _ = writeln!(r, "## Reproduce\n");
        let _ = writeln!(
            r,
            "Every part of this report was made by the ordinary `sagd` subcommands below, run in \
             this order from the folder the demo was started in (`sagd` is \
             `cargo run --release -p sagd-cli --`); the demo itself only drew the figures in \
             `figures/spectra.png` and `figures/loss.png` from the evaluations' `metrics.json` and \
             the runs' `log.csv`, and wrote this file. Each stage's JSON output is in \
             `summary.json`.\n"
        );
        let _ = writeln!(r, "| stage | wall time | command |");
        let _ = writeln!(r, "| --- | --- | --- |");
        for st in stages {
            let _ = writeln!(
                r,
                "| {} | {} | `{}` |",
                st.label,
                st.seconds.map_or(s("earlier invocation"), minutes),
                st.command.replace('|', "\\|")
            );
        }
        let _ = writeln!(r, "| figures and report | {} | |", minutes(report_seconds));
        let _ = writeln!(
            r,
            "\nTotal wall time {}{} (seed {}, {} steps per model{}). The same seed gives the same \
             numbers on the CPU.",
            minutes(total_seconds),
            if stages.iter().any(|st| st.seconds.is_none()) {
                " in this invocation, which continued an interrupted one (stages marked \
                 \"earlier invocation\" ran before it; a resumed training stage counts only its \
                 remaining steps)"
            } else {
                ""
            },
            args.seed,
            plan.steps,
            if args.quick { ", --quick" } else { "" }
        );
    }
}
