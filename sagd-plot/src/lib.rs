//! PNG figures for sagd: heat maps with colour bars, line plots on linear or log axes, and
//! image grids. Every figure is written atomically (a temporary file, then a rename), and
//! degenerate data (NaN, infinities, constant tables, empty series, non-positive values on log
//! axes) never panics.
//!
//! Plots are drawn with [`plotters`] on its bitmap backend; text is set in DejaVu Sans, which
//! the `dejavu` crate bundles, so a figure comes out the same on every machine and needs no
//! system font. `cargo run -p sagd-plot --example gallery -- DIR` writes one figure of each
//! kind, degenerate data included, to look at.

use std::path::{Path, PathBuf};

mod render;
mod ticks;

pub use render::{HeatMap, LinePlot, Series};

/// Why a figure could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The figure could not be drawn or written.
    #[error("cannot write the figure {path}: {message}")]
    Figure {
        /// The figure's path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn figure(path: &Path, r: anyhow::Result<()>) -> Result<(), PlotError> {
    r.map_err(|e| PlotError::Figure {
        path: path.to_path_buf(),
        message: format!("{e:#}"),
    })
}

/// Renders a heat map (left panel) and, when `profile` is `Some`, a line plot (right panel)
/// side by side into one PNG file.
pub fn write_heatmap_png(
    path: &Path,
    map: &HeatMap,
    profile: Option<&LinePlot>,
) -> Result<(), PlotError> {
    figure(path, render::write_heatmap_png(path, map, profile))
}

/// Renders line plots side by side, left to right, into one PNG file.
pub fn write_line_plots_png(path: &Path, plots: &[&LinePlot]) -> Result<(), PlotError> {
    figure(path, render::write_line_plots_png(path, plots))
}

/// Renders a single line plot to PNG.
pub fn write_line_plot_png(path: &Path, plot: &LinePlot) -> Result<(), PlotError> {
    figure(path, render::write_line_plot_png(path, plot))
}

/// Renders a grid of grayscale or RGB images (values in \[0, 1\], layout `(n, c, h, w)`
/// row-major, `c` = 1 or 3) with `cols` per row, each upscaled by `scale`.
#[allow(clippy::too_many_arguments)]
pub fn write_image_grid_png(
    path: &Path,
    images: &[f32],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    cols: usize,
    scale: usize,
) -> Result<(), PlotError> {
    figure(
        path,
        render::write_image_grid_png(path, images, n, c, h, w, cols, scale),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_figure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("fig.png");
        let plot = LinePlot {
            title: "t",
            x_label: "x",
            y_label: "y",
            series: vec![Series {
                name: "s",
                points: vec![(1.0, 1.0), (2.0, 4.0)],
                markers: false,
            }],
            log_x: false,
            log_y: false,
        };
        let errors = [
            write_line_plot_png(&path, &plot).unwrap_err(),
            write_line_plots_png(&path, &[]).unwrap_err(),
            write_image_grid_png(&path, &[0.0; 3], 1, 1, 2, 2, 1, 1).unwrap_err(),
            write_heatmap_png(
                &path,
                &HeatMap {
                    title: "t",
                    values: &[1.0],
                    rows: 1,
                    cols: 1,
                    log_scale: true,
                    x_label: "x",
                    y_label: "y",
                    x_range: (0.0, 0.0),
                    y_range: (0.0, 0.0),
                    colorbar_label: "c",
                },
                Some(&plot),
            )
            .unwrap_err(),
        ];
        for err in errors {
            let PlotError::Figure { path: p, message } = &err;
            assert_eq!(p, &path);
            assert!(!message.is_empty());
            // The path once, at the start: the message itself does not repeat it.
            let text = err.to_string();
            let shown = path.display().to_string();
            assert!(
                text.starts_with(&format!("cannot write the figure {shown}: ")),
                "{text}"
            );
            assert!(!message.contains(&format!("{shown}:")), "{text}");
        }
    }
}
