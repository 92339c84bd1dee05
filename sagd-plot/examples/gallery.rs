//! Writes one figure of every kind, degenerate data included, into a folder, to look at:
//! `cargo run -p sagd-plot --example gallery -- /tmp/gallery`.

use std::path::{Path, PathBuf};

use sagd_plot::{
    HeatMap, LinePlot, PlotError, Series, write_heatmap_png, write_image_grid_png,
    write_line_plot_png, write_line_plots_png,
};

fn main() -> Result<(), PlotError> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "gallery".into()));
    std::fs::create_dir_all(&dir).map_err(|e| PlotError::Figure {
        path: dir.clone(),
        message: e.to_string(),
    })?;
    heat_maps(&dir)?;
    line_plots(&dir)?;
    let (count, c, h, w) = (10, 3, 16, 16);
    let images: Vec<f32> = (0..count * c * h * w)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect();
    write_image_grid_png(&dir.join("grid.png"), &images, count, c, h, w, 8, 4)?;
    println!("wrote the gallery to {}", dir.display());
    Ok(())
}

/// A spectrum with its profile, a linear table with NaN and inf cells, a constant table.
fn heat_maps(dir: &Path) -> Result<(), PlotError> {
    // A power-law spectrum with a zero at DC, fftshifted, and its radial profile.
    let n = 32;
    let mut power = Vec::with_capacity(n * n);
    for r in 0..n {
        for c in 0..n {
            let (fy, fx) = (r as f64 - 16.0, c as f64 - 16.0);
            let f2 = fx * fx + fy * fy;
            power.push(if f2 == 0.0 { 0.0 } else { f2.powf(-1.2) });
        }
    }
    let map = HeatMap {
        title: "w(f)^2 of power-law:alpha=-1.2,normalization=energy,radius=unit",
        values: &power,
        rows: n,
        cols: n,
        log_scale: true,
        x_label: "f_x (cycles/pixel)",
        y_label: "f_y (cycles/pixel)",
        x_range: (-0.5, 0.46875),
        y_range: (-0.5, 0.46875),
        colorbar_label: "w(f)^2",
    };
    let profile = LinePlot {
        title: "radial profile",
        x_label: "radius (cycles)",
        y_label: "mean w(f)^2",
        series: vec![Series {
            name: "mean power",
            points: (1..23)
                .map(|k| (k as f64 / 32.0, (k as f64).powf(-2.4)))
                .collect(),
            markers: true,
        }],
        log_x: false,
        log_y: true,
    };
    write_heatmap_png(&dir.join("heatmap_profile.png"), &map, Some(&profile))?;

    let linear: Vec<f64> = (0..12).map(|i| (i as f64).sin()).collect();
    let mut odd = linear.clone();
    odd[3] = f64::NAN;
    odd[7] = f64::INFINITY;
    let small = HeatMap {
        title: "linear scale, NaN and inf cells",
        values: &odd,
        rows: 3,
        cols: 4,
        log_scale: false,
        x_label: "column",
        y_label: "row",
        x_range: (0.0, 3.0),
        y_range: (0.0, 2.0),
        colorbar_label: "value",
    };
    write_heatmap_png(&dir.join("heatmap_linear.png"), &small, None)?;

    let constant = vec![3.0; 16];
    let flat = HeatMap {
        title: "constant table",
        values: &constant,
        rows: 4,
        cols: 4,
        log_scale: true,
        ..small
    };
    write_heatmap_png(&dir.join("heatmap_constant.png"), &flat, None)
}

/// Several panels (log and linear axes, gaps, isolated points) and one with nothing to draw.
fn line_plots(dir: &Path) -> Result<(), PlotError> {
    let steps: Vec<(f64, f64)> = (1..=600)
        .map(|s| (s as f64, 0.05 + 1.0 / (s as f64).sqrt()))
        .collect();
    let loss = LinePlot {
        title: "training loss",
        x_label: "step",
        y_label: "loss (EMA)",
        series: vec![
            Series {
                name: "isotropic",
                points: steps.clone(),
                markers: false,
            },
            Series {
                name: "two-band:a_l=0,b_l=0.3,a_h=0.4,b_h=1",
                points: steps.iter().map(|&(x, y)| (x, y * 0.8)).collect(),
                markers: false,
            },
        ],
        log_x: false,
        log_y: true,
    };
    let narrow = LinePlot {
        title: "inside one decade, a NaN gap and an isolated point",
        x_label: "frequency",
        y_label: "ratio to clean",
        series: vec![Series {
            name: "ratio",
            points: vec![
                (0.1, 2.0),
                (0.2, 3.0),
                (0.3, f64::NAN),
                (0.4, 5.0),
                (0.5, f64::NAN),
                (0.6, 7.5),
                (0.7, -1.0),
            ],
            markers: true,
        }],
        log_x: false,
        log_y: true,
    };
    let zigzag = LinePlot {
        title: "lines at every slope",
        x_label: "x",
        y_label: "y",
        series: (0..3)
            .map(|k| Series {
                name: ["steep", "medium", "shallow"][k],
                points: (0..12)
                    .map(|i| {
                        let amp = [4.0, 1.0, 0.25][k];
                        (
                            i as f64,
                            k as f64 * 5.0 + if i % 2 == 0 { 0.0 } else { amp },
                        )
                    })
                    .collect(),
                markers: k == 1,
            })
            .collect(),
        log_x: false,
        log_y: false,
    };
    write_line_plots_png(&dir.join("line_plots.png"), &[&loss, &narrow, &zigzag])?;

    let empty = LinePlot {
        title: "nothing to draw",
        x_label: "x",
        y_label: "y",
        series: vec![Series {
            name: "non-positive",
            points: vec![(0.0, -1.0), (-2.0, 0.0)],
            markers: true,
        }],
        log_x: true,
        log_y: true,
    };
    write_line_plot_png(&dir.join("line_empty.png"), &empty)
}
