//! PNG figures for sagd: heat maps with colour bars, line plots on linear or log axes, and
//! image grids. Every figure is written atomically (a temporary file, then a rename), and
//! degenerate data (NaN, infinities, constant tables, empty series, non-positive values on log
//! axes) never panics.

use std::path::{Path, PathBuf};

mod render;

pub use render::{HeatMap, LinePlot, Series};

/// Why a figure could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The figure could not be drawn or written.
    #[error("{path}: {message}")]
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
