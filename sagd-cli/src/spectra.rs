//! `sagd spectra list` and `sagd spectra show`: the registered spectra, and one on a grid
//! ([`sagd_runs::spectra`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use sagd_core::registry::{ParamKind, entries};
use sagd_core::{DynShape, ImageShape, Normalization, RadiusConvention, SpectrumSpec};
use sagd_runs::spectra::{spectrum_report, write_spectrum_png};
use serde_json::json;

/// `sagd spectra show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The spectrum: NAME, NAME:key=value,... or @file.toml.
    #[arg(value_parser = crate::parse::spectrum)]
    spec: SpectrumSpec,
    /// Image size CxHxW, e.g. 3x32x32.
    #[arg(long, value_parser = crate::parse::size)]
    size: DynShape,
    /// Radius convention of the radial profile: cycles, unit or nyquist.
    #[arg(long, default_value = "cycles", value_parser = crate::parse::radius)]
    radius: RadiusConvention,
    /// energy | none | per-sample-std.
    #[arg(long, default_value = "energy", value_parser = crate::parse::normalization)]
    normalization: Normalization,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Write a heat map of w(f)² (DC centred) and the radial profile to this PNG.
    #[arg(long)]
    png: Option<PathBuf>,
}

/// `sagd spectra list`.
pub fn spectra_list(as_json: bool) -> Result<ExitCode> {
    let all = entries();
    if as_json {
        let list: Vec<_> = all
            .iter()
            .map(|e| {
                let params: Vec<_> = e
                    .params
                    .iter()
                    .map(|p| {
                        let mut v = json!({
                            "name": p.name,
                            "doc": p.doc,
                            "type": p.type_name(),
                            "default": param_json(&p.default_value()),
                        });
                        if let ParamKind::Number { sample, .. } | ParamKind::List { sample, .. } =
                            p.kind
                        {
                            v["verify_range"] = json!([sample.0, sample.1]);
                        }
                        if let ParamKind::Choice { choices, .. } = p.kind {
                            v["choices"] = json!(choices);
                        }
                        v
                    })
                    .collect();
                json!({ "name": e.name, "doc": e.doc, "params": params })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for e in all {
            println!("{:<12} {}", e.name, e.doc);
            for p in e.params {
                println!(
                    "    {:<10} {:<30} default {}  ({})",
                    p.name,
                    p.type_name(),
                    p.default_value(),
                    p.doc
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn param_json(v: &sagd_core::ParamValue) -> serde_json::Value {
    match v {
        sagd_core::ParamValue::Number(x) => json!(x),
        sagd_core::ParamValue::Text(s) => json!(s),
        sagd_core::ParamValue::List(xs) => json!(xs),
    }
}

/// `sagd spectra show`.
pub fn spectra_show(args: &ShowArgs) -> Result<ExitCode> {
    let (normalization, radius) = (args.normalization, args.radius);
    let report = spectrum_report(
        args.spec.spectrum(),
        args.size.dims(),
        normalization,
        radius,
    )?;
    let [c, h, w] = report.size;
    if let Some(path) = &args.png {
        write_spectrum_png(path, &report)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&report)?)?
        );
    } else {
        println!("spectrum       {}", report.spectrum);
        println!("size           {c}x{h}x{w} (dimension {})", report.dim);
        println!("normalization  {normalization}");
        println!("full support   {}", report.full_support);
        println!("rank           {} of {}", report.rank, report.dim);
        println!("log det (supp) {:.6}", report.log_det_support);
        println!("condition      {:.3e}", report.condition_number);
        println!("radial profile (bin centres in the {radius} convention, mean w(f)^2 per bin):");
        for b in &report.radial_profile {
            println!(
                "  {:>8.4}  {:>12.5e}  ({} frequencies)",
                b.radius, b.mean_power, b.count
            );
        }
        if let Some(path) = &args.png {
            println!("wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
