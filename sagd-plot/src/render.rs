//! Figures drawn with `plotters` on its bitmap backend, text in DejaVu Sans.
//!
//! Three kinds of figures are supported:
//!
//! * [`write_heatmap_png`]: a heat map of a 2-D table with a colour bar
//!   (optionally log-scaled), optionally with a line plot next to it;
//! * [`write_line_plot_png`]: a line plot with one or more series on linear
//!   or logarithmic axes;
//! * [`write_image_grid_png`]: a grid of grayscale or RGB images.
//!
//! Plots are drawn into an RGB buffer and encoded with `image`, then written
//! atomically (a temporary file in the target directory, then a rename).
//! Degenerate data (NaN, infinities, constant tables, empty series,
//! non-positive values on log axes) never panics: such values are skipped or
//! drawn in a distinct colour.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use ::image::codecs::png::PngEncoder;
use ::image::{ExtendedColorType, ImageEncoder};
use anyhow::{Context, Result, anyhow, ensure};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::ticks::{
    format_sig, linear_labels, log_labels, log_minor_ticks, log_ticks, nice_ticks, widen_degenerate,
};

/// A heat map of a 2-D table with a colour bar, and next to it a line plot; one PNG.
///
/// Row 0 of the table is drawn at the top (image convention); the y-axis tick
/// labels follow `y_range`, so they read from `y_range.0` at the top to
/// `y_range.1` at the bottom.
pub struct HeatMap<'a> {
    /// Title drawn above the map.
    pub title: &'a str,
    /// Row-major table of `rows * cols` values; may contain zeros, NaN,
    /// infinities and a huge dynamic range.
    pub values: &'a [f64],
    /// Number of table rows.
    pub rows: usize,
    /// Number of table columns.
    pub cols: usize,
    /// Colour by `log10(value)`; values `<= 0` are drawn in a distinct
    /// "zero" colour that is shown in a legend below the colour bar.
    pub log_scale: bool,
    /// Label of the horizontal axis, e.g. `"f_x (cycles/pixel)"`.
    pub x_label: &'a str,
    /// Label of the vertical axis.
    pub y_label: &'a str,
    /// Data coordinates of the first and last column centres (tick labels).
    pub x_range: (f64, f64),
    /// Data coordinates of the first and last row centres (tick labels).
    pub y_range: (f64, f64),
    /// Label drawn along the colour bar.
    pub colorbar_label: &'a str,
}

/// A line plot with one or more series.
pub struct LinePlot<'a> {
    /// Title drawn above the plot.
    pub title: &'a str,
    /// Label of the horizontal axis.
    pub x_label: &'a str,
    /// Label of the vertical axis.
    pub y_label: &'a str,
    /// The series to draw, each in its own colour.
    pub series: Vec<Series<'a>>,
    /// Logarithmic x axis (points with `x <= 0` are skipped).
    pub log_x: bool,
    /// Logarithmic y axis (points with `y <= 0` are skipped).
    pub log_y: bool,
}

/// One series of a [`LinePlot`].
pub struct Series<'a> {
    /// Name shown in the legend.
    pub name: &'a str,
    /// `(x, y)` points, joined in order; non-finite points break the line.
    pub points: Vec<(f64, f64)>,
    /// Draw a marker at every point.
    pub markers: bool,
}

/// Render a heat map (left panel) and, when `profile` is Some, a line plot (right panel) side by side into one PNG file.
pub(crate) fn write_heatmap_png(
    path: &Path,
    map: &HeatMap,
    profile: Option<&LinePlot>,
) -> Result<()> {
    // Fonts are looked up when a font is made, and layouts measure text before drawing.
    register_fonts()?;
    let layout = HeatLayout::new(map)
        .with_context(|| format!("preparing heat map {:?} for {}", map.title, path.display()))?;
    // Both panels share one title band, so that their plot areas start at the same height.
    let mut titles = vec![wrap_title(map.title, layout.width)?];
    if let Some(plot) = profile {
        titles.push(wrap_title(plot.title, PROFILE_WIDTH)?);
    }
    let title_h = title_band(&titles);
    let layout = layout.with_title_band(title_h);
    let (width, height) = heatmap_canvas_size(&layout, profile.is_some());
    let pixels = render(width, height, |root| {
        let (left, right) = root.split_horizontally(layout.width);
        layout.draw(&left, &titles[0])?;
        if let Some(plot) = profile {
            draw_line_plot(&right, plot, &titles[1], title_h)?;
        }
        Ok(())
    })?;
    write_png_atomic(path, &pixels, width, height, ExtendedColorType::Rgb8)
}

/// Render line plots side by side, left to right, into one PNG file.
pub(crate) fn write_line_plots_png(path: &Path, plots: &[&LinePlot]) -> Result<()> {
    ensure!(
        !plots.is_empty(),
        "no plots to draw into {}",
        path.display()
    );
    register_fonts()?;
    let titles = plots
        .iter()
        .map(|p| wrap_title(p.title, LINE_PLOT_WIDTH))
        .collect::<Result<Vec<_>>>()?;
    let title_h = title_band(&titles);
    let width = (LINE_PLOT_WIDTH as usize)
        .checked_mul(plots.len())
        .context("too many plots")?;
    let height = LINE_PLOT_HEIGHT as usize;
    let pixels = render(width, height, |root| {
        let panels = root.split_evenly((1, plots.len()));
        for ((panel, plot), title) in panels.iter().zip(plots).zip(&titles) {
            draw_line_plot(panel, plot, title, title_h)?;
        }
        Ok(())
    })?;
    write_png_atomic(path, &pixels, width, height, ExtendedColorType::Rgb8)
}

/// Render a single line plot to PNG.
pub(crate) fn write_line_plot_png(path: &Path, plot: &LinePlot) -> Result<()> {
    write_line_plots_png(path, &[plot])
}

/// Render a grid of grayscale or RGB images (values in \[0, 1\], layout (n, c, h, w) row-major, c = 1 or 3) with `cols` per row, each upscaled by `scale`, 2-px gaps.
///
/// Values are clamped to `[0, 1]` and NaN is drawn as 0. Gaps and unused grid
/// cells are white. When `n < cols` the grid is only `n` images wide.
///
/// The pixels are copied straight into the PNG (no axes or text to draw), so
/// that images stay exact: each value is one `scale` x `scale` block.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_image_grid_png(
    path: &Path,
    images: &[f32],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    cols: usize,
    scale: usize,
) -> Result<()> {
    ensure!(
        c == 1 || c == 3,
        "image grid: channel count must be 1 or 3, got {c}"
    );
    ensure!(
        n > 0 && h > 0 && w > 0,
        "image grid: nothing to draw (n = {n}, h = {h}, w = {w})"
    );
    ensure!(cols > 0, "image grid: `cols` must be at least 1");
    ensure!(scale > 0, "image grid: `scale` must be at least 1");
    let per_image = c
        .checked_mul(h)
        .and_then(|v| v.checked_mul(w))
        .context("image grid: image size overflows")?;
    let total = per_image
        .checked_mul(n)
        .context("image grid: total size overflows")?;
    ensure!(
        images.len() == total,
        "image grid: expected {total} values for layout ({n}, {c}, {h}, {w}), got {}",
        images.len()
    );

    let grid_cols = cols.min(n);
    let grid_rows = n.div_ceil(grid_cols);
    let tile_w = w.checked_mul(scale).context("image grid: tile too wide")?;
    let tile_h = h.checked_mul(scale).context("image grid: tile too tall")?;
    let out_w = grid_cols
        .checked_mul(tile_w)
        .and_then(|v| v.checked_add((grid_cols - 1) * GRID_GAP))
        .context("image grid: output too wide")?;
    let out_h = grid_rows
        .checked_mul(tile_h)
        .and_then(|v| v.checked_add((grid_rows - 1) * GRID_GAP))
        .context("image grid: output too tall")?;
    let bytes = checked_bytes(out_w, out_h, c)
        .with_context(|| format!("image grid: output of {out_w}x{out_h} pixels is too large"))?;

    let mut buf = vec![255u8; bytes];
    for i in 0..n {
        let gx = (i % grid_cols) * (tile_w + GRID_GAP);
        let gy = (i / grid_cols) * (tile_h + GRID_GAP);
        let img = &images[i * per_image..(i + 1) * per_image];
        for y in 0..tile_h {
            let sy = y / scale;
            let row_start = ((gy + y) * out_w + gx) * c;
            for x in 0..tile_w {
                let sx = x / scale;
                for ch in 0..c {
                    buf[row_start + x * c + ch] = unit_to_u8(img[ch * h * w + sy * w + sx]);
                }
            }
        }
    }
    let colour = if c == 1 {
        ExtendedColorType::L8
    } else {
        ExtendedColorType::Rgb8
    };
    write_png_atomic(path, &buf, out_w, out_h, colour)
}

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

/// The family name under which the bundled DejaVu Sans is registered with plotters.
const FONT: &str = "sagd-dejavu-sans";
/// Title text size in pixels: one size for every panel of every figure.
const TITLE_SIZE: f64 = 18.0;
/// Axis-label (description) text size in pixels.
const DESC_SIZE: f64 = 15.0;
/// Tick-label and legend text size in pixels.
const TICK_SIZE: f64 = 14.0;
/// Titles longer than this many lines are cut with an ellipsis.
const MAX_TITLE_LINES: usize = 3;

const GRID_COLOUR: RGBColor = RGBColor(222, 222, 222);
const MINOR_GRID_COLOUR: RGBColor = RGBColor(242, 242, 242);
const TEXT_GREY: RGBColor = RGBColor(110, 110, 110);
/// Cells with values `<= 0` on a log-scaled heat map.
const ZERO_COLOUR: RGBColor = RGBColor(200, 200, 200);
/// NaN / infinite cells of a heat map.
const NAN_COLOUR: RGBColor = RGBColor(220, 30, 30);

/// Distinct series colours (a categorical palette).
/// The ten "tab10" colours, then darker shades of them for plots with up to 20 series.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(12, 55, 95),
    RGBColor(150, 70, 0),
    RGBColor(18, 85, 18),
    RGBColor(120, 15, 15),
    RGBColor(75, 45, 115),
    RGBColor(0, 0, 0),
    RGBColor(150, 30, 110),
    RGBColor(60, 60, 60),
    RGBColor(105, 105, 0),
    RGBColor(0, 100, 110),
];

const LINE_PLOT_WIDTH: u32 = 720;
const LINE_PLOT_HEIGHT: u32 = 480;
/// Width of the line-plot panel next to a heat map.
const PROFILE_WIDTH: u32 = 560;
/// Minimum height of the line-plot panel next to a heat map.
const PROFILE_MIN_HEIGHT: u32 = 400;
const GRID_GAP: usize = 2;
/// Refuse to allocate canvases larger than this many bytes.
const MAX_IMAGE_BYTES: usize = 1 << 30;
/// Heat maps are upscaled to at least this many pixels along the longer side.
const HEAT_MIN_SIDE: usize = 256;
/// Each heat-map side is at least this many pixels (very thin tables).
const HEAT_MIN_EXTENT: usize = 128;
/// Heat maps larger than this are downsampled (nearest cell).
const HEAT_MAX_SIDE: usize = 1024;
/// plotters' default tick length; labels sit twice as far from the axis.
const TICK_LEN: u32 = 5;
/// Space between the bottom of the tick labels and the axis description.
const DESC_GAP: u32 = 8;
/// Blank border around every panel.
const PAD: u32 = 12;
const CB_GAP: u32 = 18;
const CB_WIDTH: u32 = 18;
const SWATCH: u32 = 13;
const SWATCH_ROW: u32 = 20;

type Area<'b> = DrawingArea<BitMapBackend<'b>, Shift>;

// ---------------------------------------------------------------------------
// Canvas, fonts and text
// ---------------------------------------------------------------------------

fn checked_bytes(width: usize, height: usize, channels: usize) -> Option<usize> {
    width
        .checked_mul(height)
        .and_then(|v| v.checked_mul(channels))
        .filter(|&b| {
            b <= MAX_IMAGE_BYTES && width <= u32::MAX as usize && height <= u32::MAX as usize
        })
}

/// plotters' error types differ from call to call; their text is what a caller can use.
fn drawing<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| anyhow!("drawing failed: {e}"))
}

/// Draw on a white `width` x `height` RGB canvas and return its pixels.
fn render(width: usize, height: usize, draw: impl FnOnce(&Area) -> Result<()>) -> Result<Vec<u8>> {
    ensure!(width > 0 && height > 0, "plot has zero size");
    let bytes = checked_bytes(width, height, 3)
        .with_context(|| format!("plot of {width}x{height} pixels is too large"))?;
    let mut pixels = vec![255u8; bytes];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width as u32, height as u32))
            .into_drawing_area();
        draw(&root)?;
        drawing(root.present())?;
    }
    Ok(pixels)
}

/// Register DejaVu Sans (regular and bold, from the `dejavu` crate, so that figures are the
/// same on every machine) with plotters, once per process.
fn register_fonts() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    ensure!(ok, "the bundled DejaVu Sans font could not be loaded");
    Ok(())
}

fn font(size: f64) -> FontDesc<'static> {
    (FONT, size).into_font()
}

fn title_font() -> FontDesc<'static> {
    (FONT, TITLE_SIZE, FontStyle::Bold).into_font()
}

fn style(size: f64) -> TextStyle<'static> {
    TextStyle::from(font(size)).color(&BLACK)
}

/// Width of `text` in pixels.
fn text_width(text: &str, font: &FontDesc) -> Result<u32> {
    Ok(drawing(font.box_size(text))?.0)
}

/// `text`, cut with an ellipsis so that it is at most `max_w` pixels wide.
fn elide(text: &str, font: &FontDesc, max_w: u32) -> Result<String> {
    if text_width(text, font)? <= max_w {
        return Ok(text.to_string());
    }
    // Binary search on the number of characters kept: long names stay cheap.
    let chars: Vec<char> = text.chars().collect();
    let cut = |keep: usize| chars[..keep].iter().collect::<String>() + "…";
    let (mut fits, mut too_long) = (0, chars.len());
    if text_width(&cut(0), font)? > max_w {
        return Ok(String::new());
    }
    while too_long - fits > 1 {
        let mid = (fits + too_long) / 2;
        if text_width(&cut(mid), font)? <= max_w {
            fits = mid;
        } else {
            too_long = mid;
        }
    }
    Ok(cut(fits))
}

/// The title broken into lines that fit `panel_w`, at spaces and after `,;:`
/// where possible; at most [`MAX_TITLE_LINES`], the last one cut with an ellipsis.
///
/// Long titles wrap instead of shrinking, so every panel's title has the same size.
fn wrap_title(title: &str, panel_w: u32) -> Result<Vec<String>> {
    let f = title_font();
    let max_w = panel_w.saturating_sub(2 * PAD).max(1);
    // Pieces end at a break opportunity (the break character stays with its piece).
    let mut pieces: Vec<String> = Vec::new();
    let mut cur = String::new();
    for ch in title.chars() {
        cur.push(if ch.is_whitespace() { ' ' } else { ch });
        if matches!(ch, ',' | ';' | ':') || ch.is_whitespace() {
            pieces.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        pieces.push(cur);
    }
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for piece in pieces {
        let joined = format!("{line}{piece}");
        if text_width(joined.trim_end(), &f)? <= max_w {
            line = joined;
            continue;
        }
        if !line.trim().is_empty() {
            lines.push(line.trim_end().to_string());
        }
        line = piece;
        // A piece wider than the panel is split anywhere.
        while text_width(line.trim_end(), &f)? > max_w && line.chars().count() > 1 {
            let chars: Vec<char> = line.chars().collect();
            let mut split = 1;
            for k in (1..chars.len()).rev() {
                let head: String = chars[..k].iter().collect();
                if text_width(&head, &f)? <= max_w {
                    split = k;
                    break;
                }
            }
            lines.push(chars[..split].iter().collect());
            line = chars[split..].iter().collect();
        }
    }
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_string());
    }
    if lines.len() > MAX_TITLE_LINES {
        let rest = lines[MAX_TITLE_LINES - 1..].join(" ");
        lines.truncate(MAX_TITLE_LINES - 1);
        lines.push(elide(&rest, &f, max_w)?);
    }
    Ok(lines)
}

/// Height of the title band that holds the tallest of `titles` (lines per panel).
fn title_band(titles: &[Vec<String>]) -> u32 {
    let lines = titles.iter().map(Vec::len).max().unwrap_or(0).max(1) as u32;
    PAD + lines * title_line_height() + PAD / 2
}

fn title_line_height() -> u32 {
    (TITLE_SIZE * 1.3).round() as u32
}

/// Draw title lines centred at the top of `area`.
fn draw_title(area: &Area, lines: &[String]) -> Result<()> {
    let (w, _) = area.dim_in_pixel();
    let style = TextStyle::from(title_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (i, line) in lines.iter().enumerate() {
        let y = PAD + i as u32 * title_line_height();
        drawing(area.draw_text(line, &style, ((w / 2) as i32, y as i32)))?;
    }
    Ok(())
}

/// The viridis colour map at `t` in `[0, 1]` (clamped; NaN maps to 0).
fn colormap(t: f64) -> RGBColor {
    // plotters' colour maps panic on NaN, so the value is made safe here.
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    ViridisRGB.get_color(t as f32)
}

fn unit_to_u8(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

// ---------------------------------------------------------------------------
// Axes
// ---------------------------------------------------------------------------

/// A plotters coordinate with the ticks and labels chosen in [`crate::ticks`].
#[derive(Clone, Debug)]
struct Axis {
    /// Values at the start (left or bottom) and the end of the axis; `end < start`
    /// reverses it (heat-map rows).
    start: f64,
    end: f64,
    log: bool,
    major: Vec<f64>,
    labels: Vec<String>,
    minor: Vec<f64>,
}

impl Axis {
    /// An axis covering the valid `values` (finite, and positive when `log`),
    /// padded by a few percent, with about `target` ticks.
    fn from_values(values: impl Iterator<Item = f64>, log: bool, target: usize) -> Axis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            (lo, hi) = if log { (1.0, 10.0) } else { (0.0, 1.0) };
        }
        // Keep the span finite.
        lo = lo.max(-1e300);
        hi = hi.min(1e300);
        let (lo, hi) = widen_degenerate(lo, hi, log);
        let (lo, hi) = if log {
            let (a, b) = (lo.log10(), hi.log10());
            let pad = (b - a) * 0.04;
            (10f64.powf(a - pad), 10f64.powf(b + pad))
        } else {
            let pad = (hi - lo) * 0.04;
            (lo - pad, hi + pad)
        };
        let (lo, hi) = if hi > lo && lo.is_finite() && hi.is_finite() && (!log || lo > 0.0) {
            (lo, hi)
        } else if log {
            (1.0, 10.0)
        } else {
            (0.0, 1.0)
        };
        if log {
            let major = log_ticks(lo, hi);
            let labels = log_labels(&major);
            let minor = log_minor_ticks(lo, hi, &major);
            Axis::new(lo, hi, true, major, labels, minor)
        } else {
            let major = nice_ticks(lo, hi, target);
            let labels = linear_labels(&major);
            Axis::new(lo, hi, false, major, labels, Vec::new())
        }
    }

    fn new(
        start: f64,
        end: f64,
        log: bool,
        major: Vec<f64>,
        labels: Vec<String>,
        minor: Vec<f64>,
    ) -> Axis {
        Axis {
            start,
            end,
            log,
            major,
            labels,
            minor,
        }
    }

    /// Position of `v` along the axis, 0 at `start` and 1 at `end`.
    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.ln() - self.start.ln()) / (self.end.ln() - self.start.ln())
        } else {
            (v - self.start) / (self.end - self.start)
        }
    }

    fn valid(&self, v: f64) -> bool {
        v.is_finite() && (!self.log || v > 0.0)
    }

    /// Keep every k-th major tick (smallest k) so that labels `len` pixels apart at the
    /// axis ends leave `gap(a, b)` pixels between neighbours; minor ticks stay.
    fn thin(&mut self, len: u32, gap: impl Fn(&str, &str) -> u32) {
        let pos = |v: f64| self.frac(v) * len as f64;
        let n = self.major.len();
        let fits = |kept: &[usize]| {
            kept.windows(2).all(|p| {
                let d = (pos(self.major[p[1]]) - pos(self.major[p[0]])).abs();
                d >= gap(&self.labels[p[0]], &self.labels[p[1]]) as f64
            })
        };
        let mut kept: Vec<usize> = (0..n).collect();
        if self.log {
            // The roundest mantissas (1, then 5, then 2) go first, so that a crowded log
            // axis keeps 1-2-5 ticks rather than every other one.
            let mut order = kept.clone();
            order.sort_by_key(|&i| mantissa_rank(self.major[i]));
            kept.clear();
            for i in order {
                let at = kept.partition_point(|&k| k < i);
                kept.insert(at, i);
                if !fits(&kept) {
                    kept.remove(at);
                }
            }
        } else if let Some(stride) = (1..=n.max(1)).find(|&s| {
            let k: Vec<usize> = (0..n).step_by(s).collect();
            fits(&k)
        }) {
            kept = (0..n).step_by(stride).collect();
        }
        self.major = kept.iter().map(|&i| self.major[i]).collect();
        self.labels = kept.iter().map(|&i| self.labels[i].clone()).collect();
    }

    /// Thin for a horizontal axis `len` pixels long.
    fn thin_horizontal(&mut self, len: u32) -> Result<()> {
        let f = font(TICK_SIZE);
        let widths: Vec<(String, u32)> = self
            .labels
            .iter()
            .map(|l| Ok((l.clone(), text_width(l, &f)?)))
            .collect::<Result<_>>()?;
        let width = |s: &str| widths.iter().find(|w| w.0 == s).map_or(0, |w| w.1);
        self.thin(len, |a, b| (width(a) + width(b)) / 2 + 12);
        Ok(())
    }

    /// Thin for a vertical axis `len` pixels long.
    fn thin_vertical(&mut self, len: u32) {
        self.thin(len, |_, _| TICK_SIZE as u32 + 10);
    }

    fn max_label_width(&self) -> Result<u32> {
        let f = font(TICK_SIZE);
        let mut w = 0;
        for l in &self.labels {
            w = w.max(text_width(l, &f)?);
        }
        Ok(w)
    }
}

/// How round a log-axis tick is: 0 for a power of ten, then 5, 2 and the other digits.
fn mantissa_rank(v: f64) -> u32 {
    let m = (v / 10f64.powf(v.log10().floor())).round();
    match m as u32 {
        1 | 10 => 0,
        5 => 1,
        2 => 2,
        m => 3 + m,
    }
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        // Clamped so that far-away or invalid values cannot overflow the pixel type.
        let f = self.frac(*value);
        let f = if f.is_finite() {
            f.clamp(-4.0, 5.0)
        } else {
            0.0
        };
        (limit.0 as f64 + f * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.max_num_points() == 0 {
            Vec::new()
        } else if hint.weight().allow_light_points() {
            // Light grid lines: the minor ticks (2..9 times each decade on log axes).
            self.minor.clone()
        } else {
            self.major.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.start..self.end
    }
}

impl ValueFormatter<f64> for Axis {
    fn format(value: &f64) -> String {
        format_sig(*value)
    }

    fn format_ext(&self, value: &f64) -> String {
        self.major
            .iter()
            .position(|m| m == value)
            .map(|i| self.labels[i].clone())
            .unwrap_or_else(|| format_sig(*value))
    }
}

/// Height of the area below a plot: tick marks, tick labels, gap, axis description.
fn x_label_area() -> u32 {
    2 * TICK_LEN + TICK_SIZE as u32 + DESC_GAP + DESC_SIZE as u32 + 6
}

/// Width of the area left of a plot whose widest tick label is `label_w` pixels.
fn y_label_area(label_w: u32) -> u32 {
    2 * TICK_LEN + label_w + DESC_GAP + DESC_SIZE as u32 + 4
}

// ---------------------------------------------------------------------------
// Line plots
// ---------------------------------------------------------------------------

/// Draw a line plot filling `area`, its title (already wrapped) in a band `title_h` tall.
fn draw_line_plot(area: &Area, plot: &LinePlot, title: &[String], title_h: u32) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    draw_title(area, title)?;

    // Points usable on both axes determine the ranges.
    let usable = |p: &&(f64, f64)| {
        p.0.is_finite()
            && p.1.is_finite()
            && (!plot.log_x || p.0 > 0.0)
            && (!plot.log_y || p.1 > 0.0)
    };
    let x_area = x_label_area();
    let plot_h = h.saturating_sub(title_h + x_area + PAD).max(10);
    let ys = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter(usable).map(|p| p.1));
    let mut y_axis = Axis::from_values(ys, plot.log_y, (plot_h / 50).clamp(2, 10) as usize);
    y_axis.thin_vertical(plot_h);
    let y_area = y_label_area(y_axis.max_label_width()?);
    let right = 2 * PAD;
    let plot_w = w.saturating_sub(PAD + y_area + right).max(10);
    let xs = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter(usable).map(|p| p.0));
    let mut x_axis = Axis::from_values(xs, plot.log_x, (plot_w / 90).clamp(2, 10) as usize);
    x_axis.thin_horizontal(plot_w)?;

    let desc = font(DESC_SIZE);
    let x_desc = elide(plot.x_label, &desc, plot_w)?;
    let y_desc = elide(plot.y_label, &desc, plot_h)?;
    let mut chart = drawing(
        ChartBuilder::on(area)
            .margin_top(title_h)
            .margin_left(PAD)
            .margin_right(right)
            .margin_bottom(PAD)
            .x_label_area_size(x_area)
            .y_label_area_size(y_area)
            .build_cartesian_2d(x_axis.clone(), y_axis.clone()),
    )?;
    drawing(
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style(style(TICK_SIZE))
            .axis_desc_style(style(DESC_SIZE))
            .bold_line_style(GRID_COLOUR)
            .light_line_style(MINOR_GRID_COLOUR)
            .axis_style(BLACK)
            .draw(),
    )?;

    // Series: runs of valid points become lines, so non-finite points break them.
    // Pixels the legend should not cover, each with its weight: a data point counts as much as
    // a long stretch of line, so the legend hides line pieces before it hides a point.
    let mut screen: Vec<(i32, i32, usize)> = Vec::new();
    let mut any_valid = false;
    let mut drawn = Vec::with_capacity(plot.series.len());
    for (i, s) in plot.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let pts: Vec<Option<(f64, f64)>> = s
            .points
            .iter()
            .map(|&(x, y)| (x_axis.valid(x) && y_axis.valid(y)).then_some((x, y)))
            .collect();
        let runs: Vec<Vec<(f64, f64)>> = pts
            .split(Option::is_none)
            .filter(|run| !run.is_empty())
            .map(|run| run.iter().flatten().copied().collect())
            .collect();
        drawn.push(!runs.is_empty());
        for run in &runs {
            any_valid = true;
            let px: Vec<(i32, i32)> = run.iter().map(|p| chart.backend_coord(p)).collect();
            // Points along the lines too, so that the legend avoids covering them.
            for seg in px.windows(2) {
                let (a, b) = (seg[0], seg[1]);
                let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()) / 4).max(1);
                screen.extend((0..steps).map(|k| {
                    let t = k as f64 / steps as f64;
                    let lerp = |u: i32, v: i32| u + ((v - u) as f64 * t).round() as i32;
                    (lerp(a.0, b.0), lerp(a.1, b.1), LINE_WEIGHT)
                }));
            }
            screen.extend(px.iter().map(|&(x, y)| (x, y, POINT_WEIGHT)));
            if px.len() > 1 {
                draw_thick_path(area, &px, colour)?;
            }
            // A point with no neighbour would be invisible without a marker.
            if s.markers || run.len() == 1 {
                drawing(
                    chart.draw_series(run.iter().map(|&p| Circle::new(p, 3, colour.filled()))),
                )?;
            }
        }
    }

    let plotting = chart.plotting_area().strip_coord_spec();
    let (pw, ph) = plotting.dim_in_pixel();
    if !any_valid {
        let msg = if plot.log_x || plot.log_y {
            "no data (log axes skip values ≤ 0)"
        } else {
            "no data"
        };
        let style = style(TICK_SIZE)
            .color(&TEXT_GREY)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let msg = elide(msg, &style.font, pw.saturating_sub(8))?;
        drawing(plotting.draw_text(&msg, &style, ((pw / 2) as i32, (ph / 2) as i32)))?;
    }
    drawing(plotting.draw(&Rectangle::new(
        [(0, 0), (pw as i32 - 1, ph as i32 - 1)],
        BLACK.stroke_width(1),
    )))?;

    draw_legend(&mut chart, plot, &drawn, &screen, pw)?;
    Ok(())
}

/// A two-pixel line through `points` (backend pixels) on `area`.
///
/// plotters widens lines into polygons whose corners are truncated to whole pixels, which
/// leaves lines of some slopes one pixel thin; three one-pixel copies, offset right and down,
/// are two pixels thick at every slope.
fn draw_thick_path(area: &Area, points: &[(i32, i32)], colour: RGBColor) -> Result<()> {
    let (bx, by) = area.get_base_pixel();
    for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
        let path: Vec<(i32, i32)> = points
            .iter()
            .map(|&(x, y)| (x - bx + dx, y - by + dy))
            .collect();
        drawing(area.draw(&PathElement::new(path, colour.stroke_width(1))))?;
    }
    Ok(())
}

/// The legend where it hides the fewest data points and line pieces: a corner when one is
/// as good as any place, else somewhere down either side.
fn draw_legend<'a, 'b: 'a>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, Cartesian2d<Axis, Axis>>,
    plot: &LinePlot,
    drawn: &[bool],
    screen: &[(i32, i32, usize)],
    plot_w: u32,
) -> Result<()> {
    let n = plot.series.len();
    if n == 0 || (n == 1 && plot.series[0].name.is_empty()) {
        return Ok(());
    }
    let f = font(TICK_SIZE);
    let mut names = Vec::with_capacity(n);
    for (i, s) in plot.series.iter().enumerate() {
        let name = if s.name.is_empty() {
            format!("series {}", i + 1)
        } else {
            s.name.to_string()
        };
        // Listed all the same, so that a reader knows the series exists.
        let name = if drawn.get(i).copied().unwrap_or(true) {
            name
        } else if plot.log_x || plot.log_y {
            format!("{name} (no point > 0: not drawn)")
        } else {
            format!("{name} (no finite point: not drawn)")
        };
        names.push(elide(&name, &f, (plot_w / 2).max(60))?);
    }
    // Empty series carry the legend entries, so that series without a drawable point
    // are still listed.
    for (i, (s, name)) in plot.series.iter().zip(&names).enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let anno = drawing(chart.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>()))?;
        anno.label(name.clone());
        if s.markers {
            anno.legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (LEGEND_SAMPLE, 0)], colour.stroke_width(2))
                    + Circle::new((LEGEND_SAMPLE / 2, 0), 3, colour.filled())
            });
        } else {
            anno.legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + LEGEND_SAMPLE, y)], colour.stroke_width(2))
            });
        }
    }

    // The box size as plotters lays it out: sample, text, margins; rows of one line each.
    let mut text_w = 0;
    for name in &names {
        text_w = text_w.max(text_width(name, &f)?);
    }
    let bw = (text_w + LEGEND_AREA + 2 * LEGEND_MARGIN) as i32;
    let bh = (n as f64 * TICK_SIZE * 1.25) as i32 + 2 * LEGEND_MARGIN as i32;
    let (x0, y0) = chart.plotting_area().get_base_pixel();
    let (pw, ph) = chart.plotting_area().dim_in_pixel();
    let (pw, ph) = (pw as i32, ph as i32);
    // Corners first, so that a tie goes to a corner; then down both sides.
    let (right, bottom) = (pw - bw - 5, ph - bh - 5);
    let mut candidates = vec![(5, 5), (right, 5), (right, bottom), (5, bottom)];
    for k in 1..8 {
        let y = 5 + k * (bottom - 5) / 8;
        candidates.extend([(right, y), (5, y)]);
    }
    let hidden = |bx: i32, by: i32| {
        screen
            .iter()
            .filter(|&&(x, y, _)| {
                let (x, y) = (x - x0, y - y0);
                x >= bx - 4 && x <= bx + bw + 4 && y >= by - 4 && y <= by + bh + 4
            })
            .map(|&(_, _, weight)| weight)
            .sum::<usize>()
    };
    let (bx, by) = candidates
        .into_iter()
        .min_by_key(|&(bx, by)| hidden(bx, by))
        .unwrap_or((right, 5));
    let position = SeriesLabelPosition::Coordinate(bx, by);
    drawing(
        chart
            .configure_series_labels()
            .position(position)
            .label_font(style(TICK_SIZE))
            .legend_area_size(LEGEND_AREA)
            .margin(LEGEND_MARGIN)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw(),
    )?;
    Ok(())
}

/// Weight of a line sample (one every 4 pixels along a line) under the legend.
const LINE_WEIGHT: usize = 1;
/// Weight of a data point under the legend: as much as 50 line samples (200 pixels of line).
const POINT_WEIGHT: usize = 50;

/// Length of the line sample in a legend row.
const LEGEND_SAMPLE: i32 = 24;
/// Width reserved for the sample (sample and a gap before the text).
const LEGEND_AREA: u32 = 32;
const LEGEND_MARGIN: u32 = 8;

// ---------------------------------------------------------------------------
// Heat maps
// ---------------------------------------------------------------------------

/// A validated heat map with its layout (pixels, relative to the panel origin).
struct HeatLayout<'m, 'a> {
    map: &'m HeatMap<'a>,
    /// Map size in pixels.
    mw: u32,
    mh: u32,
    /// Width of the tick-label area left of the map.
    left: u32,
    /// Height of the title band above the map.
    top: u32,
    /// Width of the colour bar's tick-label area.
    cb_labels: u32,
    width: u32,
    height: u32,
    /// Colour range in colour units (log10 of the value when log-scaled).
    lo: f64,
    hi: f64,
    x_axis: Axis,
    y_axis: Axis,
    cb_axis: Axis,
    swatches: Vec<(RGBColor, &'static str)>,
}

/// Data extent `(first edge, last edge)` of `n` cells whose centres span `range`.
fn cell_extent(range: (f64, f64), n: usize) -> (f64, f64) {
    let (a, b) = range;
    if !(a.is_finite() && b.is_finite()) {
        return (-0.5, n as f64 - 0.5);
    }
    if n <= 1 || a == b {
        return (a - 0.5, a + 0.5);
    }
    let d = (b - a) / (n - 1) as f64;
    if !d.is_finite() || !(b - a).is_finite() {
        return (-0.5, n as f64 - 0.5);
    }
    (a - d / 2.0, b + d / 2.0)
}

/// Pixel size of one heat-map side given both table dimensions.
fn heat_side(n: usize, longest: usize) -> u32 {
    let side = if longest > HEAT_MAX_SIDE {
        // Downsample so that the longer side is HEAT_MAX_SIDE.
        ((n as f64) * HEAT_MAX_SIDE as f64 / longest as f64).round() as usize
    } else {
        n * HEAT_MIN_SIDE.div_ceil(longest).max(1)
    };
    side.clamp(HEAT_MIN_EXTENT, HEAT_MAX_SIDE) as u32
}

/// A linear axis from `start` to `end` (either order) with round ticks.
fn extent_axis(start: f64, end: f64, target: usize) -> Axis {
    let major = nice_ticks(start.min(end), start.max(end), target);
    let labels = linear_labels(&major);
    Axis::new(start, end, false, major, labels, Vec::new())
}

enum CellValue {
    /// A colourable value in colour units.
    Value(f64),
    /// `<= 0` on a log scale.
    Zero,
    /// NaN or infinite.
    Invalid,
}

fn colour_unit(v: f64, log: bool) -> CellValue {
    if v.is_nan() {
        CellValue::Invalid
    } else if log && v <= 0.0 {
        CellValue::Zero
    } else if !v.is_finite() {
        CellValue::Invalid
    } else if log {
        CellValue::Value(v.log10())
    } else {
        CellValue::Value(v)
    }
}

impl<'m, 'a> HeatLayout<'m, 'a> {
    fn new(map: &'m HeatMap<'a>) -> Result<Self> {
        ensure!(
            map.rows > 0 && map.cols > 0,
            "heat map table is empty ({} x {})",
            map.rows,
            map.cols
        );
        let n = map
            .rows
            .checked_mul(map.cols)
            .context("heat map size overflows")?;
        ensure!(
            map.values.len() == n,
            "heat map has {} values but rows * cols = {} * {} = {n}",
            map.values.len(),
            map.rows,
            map.cols
        );

        // Colour range.
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut any_zero, mut any_nan) = (false, false);
        for &v in map.values {
            match colour_unit(v, map.log_scale) {
                CellValue::Value(t) => {
                    lo = lo.min(t);
                    hi = hi.max(t);
                }
                CellValue::Zero => any_zero = true,
                CellValue::Invalid => any_nan = true,
            }
        }
        if lo > hi {
            (lo, hi) = (0.0, 1.0);
        }
        lo = lo.max(-1e300);
        hi = hi.min(1e300);
        let (lo, hi) = widen_degenerate(lo, hi, false);

        let longest = map.rows.max(map.cols);
        let mw = heat_side(map.cols, longest);
        let mh = heat_side(map.rows, longest);

        // Row 0 is at the top: the y axis runs from the last row (bottom) to the first.
        let (x0, x1) = cell_extent(map.x_range, map.cols);
        let (y0, y1) = cell_extent(map.y_range, map.rows);
        let mut x_axis = extent_axis(x0, x1, (mw / 50).clamp(2, 8) as usize);
        x_axis.thin_horizontal(mw)?;
        let mut y_axis = extent_axis(y1, y0, (mh / 40).clamp(2, 8) as usize);
        y_axis.thin_vertical(mh);

        let cb_axis = colour_bar_axis(lo, hi, mh, map.log_scale);

        let mut swatches = Vec::new();
        if map.log_scale && any_zero {
            swatches.push((ZERO_COLOUR, "≤ 0"));
        }
        if any_nan {
            swatches.push((NAN_COLOUR, "NaN/inf"));
        }

        let left = PAD + y_label_area(y_axis.max_label_width()?);
        let cb_labels = 2 * TICK_LEN + cb_axis.max_label_width()? + DESC_GAP + DESC_SIZE as u32 + 4;
        let f = font(TICK_SIZE);
        let mut swatch_w = 0;
        for (_, label) in &swatches {
            swatch_w = swatch_w.max(SWATCH + 6 + text_width(label, &f)?);
        }
        let right = (CB_WIDTH + cb_labels).max(swatch_w);
        let width = left + mw + CB_GAP + right + PAD;
        let layout = HeatLayout {
            map,
            mw,
            mh,
            left,
            top: 0,
            cb_labels,
            width,
            height: 0,
            lo,
            hi,
            x_axis,
            y_axis,
            cb_axis,
            swatches,
        };
        Ok(layout.with_title_band(title_band(&[wrap_title(map.title, width)?])))
    }

    /// The layout with a title band `top` pixels tall.
    fn with_title_band(mut self, top: u32) -> Self {
        let swatches_h = if self.swatches.is_empty() {
            0
        } else {
            8 + self.swatches.len() as u32 * SWATCH_ROW
        };
        self.top = top;
        self.height = top + self.mh + x_label_area().max(swatches_h) + PAD;
        self
    }

    fn cell_colour(&self, v: f64) -> RGBColor {
        match colour_unit(v, self.map.log_scale) {
            CellValue::Value(t) => colormap((t - self.lo) / (self.hi - self.lo)),
            CellValue::Zero => ZERO_COLOUR,
            CellValue::Invalid => NAN_COLOUR,
        }
    }

    /// Top-left corner of the map in the panel.
    fn map_origin(&self) -> (u32, u32) {
        (self.left, self.top)
    }

    fn draw(&self, panel: &Area, title: &[String]) -> Result<()> {
        let map = self.map;
        draw_title(panel, title)?;

        // The map: plotters draws the axes; the cells are set pixel by pixel, which
        // handles both up- and down-scaling (nearest cell).
        let (ml, mt) = self.map_origin();
        let x_area = x_label_area();
        let area = panel
            .clone()
            .shrink((PAD, mt), (ml - PAD + self.mw, self.mh + x_area));
        let desc = font(DESC_SIZE);
        let mut chart = drawing(
            ChartBuilder::on(&area)
                .x_label_area_size(x_area)
                .y_label_area_size(ml - PAD)
                .build_cartesian_2d(self.x_axis.clone(), self.y_axis.clone()),
        )?;
        drawing(
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc(elide(map.x_label, &desc, self.mw)?)
                .y_desc(elide(map.y_label, &desc, self.mh)?)
                .label_style(style(TICK_SIZE))
                .axis_desc_style(style(DESC_SIZE))
                .axis_style(BLACK)
                .draw(),
        )?;
        let cells = chart.plotting_area().strip_coord_spec();
        let (cw, ch) = cells.dim_in_pixel();
        for py in 0..ch {
            let row = (py as usize * map.rows / ch as usize).min(map.rows - 1);
            for px in 0..cw {
                let col = (px as usize * map.cols / cw as usize).min(map.cols - 1);
                let colour = self.cell_colour(map.values[row * map.cols + col]);
                drawing(cells.draw_pixel((px as i32, py as i32), &colour))?;
            }
        }
        drawing(cells.draw(&Rectangle::new(
            [(0, 0), (cw as i32 - 1, ch as i32 - 1)],
            BLACK.stroke_width(1),
        )))?;

        // The colour bar, drawn from primitives: plotters' right-hand axis puts its labels
        // against the bar without tick marks and its description reads top to bottom.
        let cb_x = (ml + self.mw + CB_GAP) as i32;
        let (top, bh) = (mt as i32, self.mh as i32);
        let right = cb_x + CB_WIDTH as i32;
        for py in 0..bh {
            let t = if bh > 1 {
                1.0 - py as f64 / (bh - 1) as f64
            } else {
                0.5
            };
            let colour = colormap(t);
            for px in cb_x..right {
                drawing(panel.draw_pixel((px, top + py), &colour))?;
            }
        }
        drawing(panel.draw(&Rectangle::new(
            [(cb_x, top), (right - 1, top + bh - 1)],
            BLACK.stroke_width(1),
        )))?;
        let tick_style = style(TICK_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
        let axis = &self.cb_axis;
        for (v, label) in axis.major.iter().zip(&axis.labels) {
            let y = top + axis.map(v, (bh - 1, 0));
            drawing(panel.draw(&PathElement::new(
                vec![(right, y), (right + TICK_LEN as i32, y)],
                BLACK.stroke_width(1),
            )))?;
            let x = right + 2 * TICK_LEN as i32;
            drawing(panel.draw_text(label, &tick_style, (x, y)))?;
        }
        // Rotated by 270°, the text's top is its right edge: anchor it at the right end of
        // the space reserved for it, so that it keeps DESC_GAP from the tick labels.
        let desc_x = right + (self.cb_labels - 4) as i32;
        let desc_style = style(DESC_SIZE)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Top));
        let cb_desc = elide(map.colorbar_label, &desc, self.mh)?;
        drawing(panel.draw_text(&cb_desc, &desc_style, (desc_x, top + bh / 2)))?;

        // Legend for the special cell colours, below the colour bar.
        let label_style = style(TICK_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
        let mut sy = (mt + self.mh + 8) as i32;
        for (colour, label) in &self.swatches {
            let (x, s) = (cb_x, SWATCH as i32);
            drawing(panel.draw(&Rectangle::new([(x, sy), (x + s, sy + s)], colour.filled())))?;
            drawing(panel.draw(&Rectangle::new(
                [(x, sy), (x + s, sy + s)],
                BLACK.stroke_width(1),
            )))?;
            drawing(panel.draw_text(label, &label_style, (x + s + 6, sy + s / 2)))?;
            sy += SWATCH_ROW as i32;
        }
        Ok(())
    }
}

/// The colour bar's axis in colour units: the end values labelled with three significant
/// digits, round ticks between them where they do not crowd the ends.
fn colour_bar_axis(lo: f64, hi: f64, len: u32, log: bool) -> Axis {
    let (mid, mid_labels, lo_label, hi_label) = if log {
        let t = log_ticks(10f64.powf(lo), 10f64.powf(hi));
        let l = log_labels(&t);
        let t: Vec<f64> = t.iter().map(|v| v.log10()).collect();
        (t, l, format_sig(10f64.powf(lo)), format_sig(10f64.powf(hi)))
    } else {
        let t = nice_ticks(lo, hi, (len / 50).clamp(2, 8) as usize);
        let l = linear_labels(&t);
        (t, l, format_sig(lo), format_sig(hi))
    };
    let clearance = (TICK_SIZE + 6.0) / len.max(1) as f64 * (hi - lo);
    let mut major = vec![lo];
    let mut labels = vec![lo_label];
    for (t, l) in mid.into_iter().zip(mid_labels) {
        if t - lo >= clearance && hi - t >= clearance {
            major.push(t);
            labels.push(l);
        }
    }
    // Thinning keeps the first tick (the low end); the high end is added after it.
    let mut axis = Axis::new(lo, hi, false, major, labels, Vec::new());
    axis.thin_vertical(len);
    if axis.major.len() > 1 && axis.major.last().is_some_and(|&t| hi - t < clearance) {
        axis.major.pop();
        axis.labels.pop();
    }
    axis.major.push(hi);
    axis.labels.push(hi_label);
    axis
}

fn heatmap_canvas_size(layout: &HeatLayout, with_profile: bool) -> (usize, usize) {
    if with_profile {
        (
            (layout.width + PROFILE_WIDTH) as usize,
            layout.height.max(PROFILE_MIN_HEIGHT) as usize,
        )
    } else {
        (layout.width as usize, layout.height as usize)
    }
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// Encode `data` as PNG and write it to `path` atomically
/// ([`sagd_core::files::write_atomic`]: a temporary file beside it, then a rename; nothing
/// is left behind on failure or a signal).
fn write_png_atomic(
    path: &Path,
    data: &[u8],
    width: usize,
    height: usize,
    colour: ExtendedColorType,
) -> Result<()> {
    let w = u32::try_from(width).context("PNG width does not fit in u32")?;
    let h = u32::try_from(height).context("PNG height does not fit in u32")?;
    let mut bytes = Vec::new();
    PngEncoder::new(&mut bytes)
        .write_image(data, w, h, colour)
        .with_context(|| format!("encoding PNG for {}", path.display()))?;
    // The caller's PlotError names `path` (the write error names nothing else).
    sagd_core::files::write_atomic(path, &bytes).map_err(|e| anyhow::Error::new(e.source))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn decode(path: &Path) -> ::image::DynamicImage {
        ::image::open(path).expect("output decodes as an image")
    }

    fn no_temp_files_left(dir: &Path) {
        for entry in fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp"), "temporary file left: {name}");
        }
    }

    fn spectrum(rows: usize, cols: usize) -> Vec<f64> {
        let mut v = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                let fy = r as f64 - (rows / 2) as f64;
                let fx = c as f64 - (cols / 2) as f64;
                let f2 = fx * fx + fy * fy;
                v.push(if f2 == 0.0 { 0.0 } else { f2.powf(-1.2) });
            }
        }
        v
    }

    fn heatmap<'a>(values: &'a [f64], rows: usize, cols: usize, log_scale: bool) -> HeatMap<'a> {
        HeatMap {
            title: "test map",
            values,
            rows,
            cols,
            log_scale,
            x_label: "f_x (cycles/pixel)",
            y_label: "f_y (cycles/pixel)",
            x_range: (-0.5, 0.5),
            y_range: (-0.5, 0.5),
            colorbar_label: "power",
        }
    }

    fn line_plot<'a>(series: Vec<Series<'a>>, log_x: bool, log_y: bool) -> LinePlot<'a> {
        LinePlot {
            title: "test plot",
            x_label: "x",
            y_label: "y",
            series,
            log_x,
            log_y,
        }
    }

    /// The size a heat map (and profile) figure must have.
    fn heat_size(map: &HeatMap, profile: Option<&LinePlot>) -> (u32, u32) {
        let layout = HeatLayout::new(map).unwrap();
        let mut titles = vec![wrap_title(map.title, layout.width).unwrap()];
        if let Some(p) = profile {
            titles.push(wrap_title(p.title, PROFILE_WIDTH).unwrap());
        }
        let layout = layout.with_title_band(title_band(&titles));
        let (w, h) = heatmap_canvas_size(&layout, profile.is_some());
        (w as u32, h as u32)
    }

    fn rgb(c: RGBColor) -> [u8; 3] {
        [c.0, c.1, c.2]
    }

    #[test]
    fn colormap_endpoints() {
        assert_eq!(rgb(colormap(0.0)), [68, 1, 84]);
        assert_eq!(rgb(colormap(1.0)), [254, 232, 37]);
        assert_eq!(rgb(colormap(f64::NAN)), [68, 1, 84]);
        assert_eq!(rgb(colormap(7.0)), [254, 232, 37]);
        assert_eq!(rgb(colormap(-f64::INFINITY)), [68, 1, 84]);
    }

    #[test]
    fn heatmap_with_profile_renders() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spectrum.png");
        let values = spectrum(32, 32);
        let map = heatmap(&values, 32, 32, true);
        let profile = line_plot(
            vec![Series {
                name: "radial mean",
                points: (0..17)
                    .map(|k| (k as f64 / 32.0, (k as f64).powf(-2.4)))
                    .collect(),
                markers: true,
            }],
            true,
            true,
        );
        write_heatmap_png(&path, &map, Some(&profile)).unwrap();
        let layout = HeatLayout::new(&map).unwrap();
        assert_eq!((layout.mw, layout.mh), (256, 256));
        let (w, h) = heat_size(&map, Some(&profile));
        let img = decode(&path);
        assert_eq!((img.width(), img.height()), (w, h));
        assert!(w >= 256 + PROFILE_WIDTH && h >= 256);
        no_temp_files_left(dir.path());
    }

    #[test]
    fn small_heatmap_is_upscaled_and_coloured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.png");
        let values: Vec<f64> = (0..64).map(f64::from).collect();
        let map = heatmap(&values, 8, 8, false);
        write_heatmap_png(&path, &map, None).unwrap();
        let layout = HeatLayout::new(&map).unwrap();
        assert_eq!((layout.mw, layout.mh), (256, 256));
        let img = decode(&path).to_rgb8();
        assert_eq!((img.width(), img.height()), heat_size(&map, None));
        // Row 0 is at the top: the first cell (top-left) has the lowest colour, the last
        // cell (bottom-right) the highest.
        let (ml, mt) = layout.map_origin();
        assert_eq!(img.get_pixel(ml + 5, mt + 5).0, rgb(colormap(0.0)));
        assert_eq!(img.get_pixel(ml + 250, mt + 250).0, rgb(colormap(1.0)));
        assert_eq!(
            img.get_pixel(ml + 250, mt + 5).0,
            rgb(layout.cell_colour(7.0))
        );
    }

    #[test]
    fn degenerate_heatmaps_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(Vec<f64>, usize, usize, bool)> = vec![
            (vec![3.0; 16], 4, 4, false),
            (vec![3.0; 16], 4, 4, true),
            (vec![0.0; 16], 4, 4, true),
            (vec![f64::NAN; 16], 4, 4, false),
            (
                vec![
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    0.0,
                    -1.0,
                    1e-300,
                    1e300,
                    1.0,
                ],
                2,
                4,
                true,
            ),
            (
                vec![
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    -f64::MAX,
                    f64::MAX,
                    0.0,
                ],
                3,
                2,
                false,
            ),
            (vec![1.0], 1, 1, true),
            ((0..1000).map(f64::from).collect(), 1, 1000, false),
            ((0..3000).map(f64::from).collect(), 1500, 2, true),
        ];
        let profile = line_plot(
            vec![Series {
                name: "nothing valid",
                points: vec![(f64::NAN, 1.0), (0.0, -1.0)],
                markers: true,
            }],
            true,
            true,
        );
        for (i, (values, rows, cols, log)) in cases.iter().enumerate() {
            let mut map = heatmap(values, *rows, *cols, *log);
            if i == 6 {
                map.x_range = (f64::NAN, f64::INFINITY);
                map.y_range = (1.0, 1.0);
            }
            for with_profile in [false, true] {
                let profile = with_profile.then_some(&profile);
                let path = dir.path().join(format!("case{i}-{with_profile}.png"));
                write_heatmap_png(&path, &map, profile).unwrap();
                let img = decode(&path);
                assert_eq!((img.width(), img.height()), heat_size(&map, profile));
            }
        }
        no_temp_files_left(dir.path());
    }

    #[test]
    fn log_heatmap_marks_zero_cells() {
        let dir = tempfile::tempdir().unwrap();
        let values = vec![0.0, 1.0, 10.0, f64::NAN];
        let map = heatmap(&values, 2, 2, true);
        let layout = HeatLayout::new(&map).unwrap();
        assert_eq!(rgb(layout.cell_colour(0.0)), rgb(ZERO_COLOUR));
        assert_eq!(rgb(layout.cell_colour(-5.0)), rgb(ZERO_COLOUR));
        assert_eq!(rgb(layout.cell_colour(f64::NAN)), rgb(NAN_COLOUR));
        assert_eq!(rgb(layout.cell_colour(1.0)), rgb(colormap(0.0)));
        assert_eq!(rgb(layout.cell_colour(10.0)), rgb(colormap(1.0)));
        assert_eq!(layout.swatches.len(), 2);
        let path = dir.path().join("zero.png");
        write_heatmap_png(&path, &map, None).unwrap();
        let img = decode(&path).to_rgb8();
        let (ml, mt) = layout.map_origin();
        assert_eq!(img.get_pixel(ml + 2, mt + 2).0, rgb(ZERO_COLOUR));
        assert_eq!(img.get_pixel(ml + 250, mt + 250).0, rgb(NAN_COLOUR));
    }

    #[test]
    fn invalid_heatmaps_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.png");
        let values = vec![1.0; 5];
        assert!(write_heatmap_png(&path, &heatmap(&values, 2, 2, false), None).is_err());
        assert!(write_heatmap_png(&path, &heatmap(&[], 0, 3, false), None).is_err());
        assert!(!path.exists());
        // Missing output directory.
        let path = dir.path().join("missing").join("x.png");
        let values = vec![1.0; 4];
        // The cause alone: the caller's `PlotError` names the path (see lib.rs's tests).
        let err = write_heatmap_png(&path, &heatmap(&values, 2, 2, false), None).unwrap_err();
        assert!(format!("{err:#}").contains("No such file"), "{err:#}");
    }

    #[test]
    fn line_plots_render() {
        let dir = tempfile::tempdir().unwrap();
        let power: Vec<(f64, f64)> = (1..50)
            .map(|k| (k as f64, 1.0 / (k as f64).powi(2)))
            .collect();
        let noisy: Vec<(f64, f64)> = (0..50)
            .map(|k| {
                (
                    k as f64,
                    if k % 7 == 0 {
                        f64::NAN
                    } else {
                        (k as f64).sqrt() - 3.0
                    },
                )
            })
            .collect();
        let plots = [
            line_plot(
                vec![
                    Series {
                        name: "data",
                        points: power.clone(),
                        markers: true,
                    },
                    Series {
                        name: "fit",
                        points: power.clone(),
                        markers: false,
                    },
                ],
                true,
                true,
            ),
            // Non-positive values on log axes are skipped.
            line_plot(
                vec![Series {
                    name: "mixed",
                    points: noisy.clone(),
                    markers: false,
                }],
                true,
                true,
            ),
            line_plot(
                vec![Series {
                    name: "mixed",
                    points: noisy,
                    markers: true,
                }],
                false,
                false,
            ),
            line_plot(Vec::new(), false, false),
            line_plot(
                vec![Series {
                    name: "",
                    points: Vec::new(),
                    markers: false,
                }],
                true,
                false,
            ),
            line_plot(
                vec![Series {
                    name: "one",
                    points: vec![(2.0, 3.0)],
                    markers: false,
                }],
                false,
                true,
            ),
            line_plot(
                vec![Series {
                    name: "flat",
                    points: vec![(0.0, 1.0), (1.0, 1.0)],
                    markers: false,
                }],
                false,
                false,
            ),
            line_plot(
                vec![Series {
                    name: "huge",
                    points: vec![
                        (-f64::MAX, f64::MAX),
                        (f64::MAX, -f64::MAX),
                        (f64::INFINITY, 0.0),
                    ],
                    markers: true,
                }],
                false,
                false,
            ),
            line_plot(
                vec![Series {
                    name: "all NaN",
                    points: vec![(f64::NAN, f64::NAN); 5],
                    markers: true,
                }],
                true,
                true,
            ),
            line_plot(
                vec![Series {
                    name: "tiny range",
                    points: vec![(1e-300, 1e-300), (2e-300, 3e-300), (1e300, 1e300)],
                    markers: true,
                }],
                true,
                true,
            ),
        ];
        for (i, plot) in plots.iter().enumerate() {
            let path = dir.path().join(format!("plot{i}.png"));
            write_line_plot_png(&path, plot).unwrap();
            let img = decode(&path);
            assert_eq!(
                (img.width(), img.height()),
                (LINE_PLOT_WIDTH, LINE_PLOT_HEIGHT)
            );
        }
        // Side by side: one panel width each.
        let path = dir.path().join("row.png");
        let refs: Vec<&LinePlot> = plots.iter().take(3).collect();
        write_line_plots_png(&path, &refs).unwrap();
        let img = decode(&path);
        assert_eq!(
            (img.width(), img.height()),
            (3 * LINE_PLOT_WIDTH, LINE_PLOT_HEIGHT)
        );
        assert!(write_line_plots_png(&dir.path().join("none.png"), &[]).is_err());
        assert!(!dir.path().join("none.png").exists());
        no_temp_files_left(dir.path());
    }

    #[test]
    fn text_outside_the_font_and_long_text_are_safe() {
        let dir = tempfile::tempdir().unwrap();
        let long = "a very long title, with commas, colons: and many words that cannot fit \
                    on one line of a panel that is only seven hundred pixels wide, so it wraps \
                    onto several lines and is finally cut short with an ellipsis at the end";
        let plot = LinePlot {
            title: long,
            x_label: "λ̃_k(τ) ☃ 🦀 \u{0} \t tab",
            y_label: long,
            series: vec![Series {
                name: long,
                points: vec![(1.0, 2.0), (2.0, 1.0)],
                markers: true,
            }],
            log_x: false,
            log_y: false,
        };
        let path = dir.path().join("text.png");
        write_line_plots_png(&path, &[&plot, &plot]).unwrap();
        assert_eq!(decode(&path).width(), 2 * LINE_PLOT_WIDTH);
        let values = [1.0, 2.0, 3.0, 4.0];
        let mut map = heatmap(&values, 2, 2, false);
        map.title = long;
        map.colorbar_label = long;
        map.x_label = long;
        write_heatmap_png(&path, &map, Some(&plot)).unwrap();
    }

    #[test]
    fn titles_wrap_at_one_size() {
        register_fonts().unwrap();
        let f = title_font();
        let title = "w(f)^2 of two-band:a_h=0.4,a_l=0.0,b_h=1.0,b_l=0.3,gamma_h=1.0,gamma_l=1.0";
        let lines = wrap_title(title, 400).unwrap();
        assert!(lines.len() >= 2, "{lines:?}");
        for l in &lines {
            assert!(text_width(l, &f).unwrap() <= 400 - 2 * PAD, "{l:?}");
        }
        // Nothing is lost when the title fits in the allowed lines.
        assert_eq!(lines.concat(), title);
        assert_eq!(wrap_title("short", 400).unwrap(), ["short"]);
        assert!(wrap_title("", 400).unwrap().is_empty());
        let words = "word ".repeat(200);
        let lines = wrap_title(&words, 300).unwrap();
        assert_eq!(lines.len(), MAX_TITLE_LINES);
        assert!(lines[MAX_TITLE_LINES - 1].ends_with('…'));
        // A single unbreakable run is split anywhere.
        let lines = wrap_title(&"x".repeat(100), 300).unwrap();
        assert!(lines.len() > 1 && lines.iter().all(|l| !l.is_empty()));
        assert_eq!(elide("abcdef", &f, 0).unwrap(), "");
        let e = elide("abcdefghijklmnopqrstuvwxyz", &f, 60).unwrap();
        assert!(e.ends_with('…') && text_width(&e, &f).unwrap() <= 60, "{e}");
        assert_eq!(title_band(&[]), title_band(&[vec!["one".into()]]));
    }

    #[test]
    fn axes_thin_labels_and_map_safely() {
        register_fonts().unwrap();
        let mut a = Axis::from_values([0.0, 1e6].into_iter(), false, 40);
        let before = a.major.len();
        a.thin_horizontal(200).unwrap();
        assert!(a.major.len() < before && !a.major.is_empty());
        assert_eq!(a.major.len(), a.labels.len());
        let f = font(TICK_SIZE);
        for p in a.major.windows(2) {
            let d = (a.frac(p[1]) - a.frac(p[0])) * 200.0;
            assert!(d >= text_width("1e6", &f).unwrap() as f64, "{:?}", a.labels);
        }
        for v in [f64::NAN, f64::INFINITY, -1e308, 1e308] {
            let p = a.map(&v, (0, 100));
            assert!((-400..=500).contains(&p), "{v} -> {p}");
        }
        let log = Axis::from_values([1e-3, 10.0].into_iter(), true, 5);
        assert_eq!(log.map(&-1.0, (0, 100)), 0);
        assert!(!log.minor.is_empty());
        assert_eq!(log.key_points(3usize), log.minor);
        assert_eq!(
            log.key_points(plotters::coord::ranged1d::BoldPoints(3)),
            log.major
        );
        assert_eq!(log.format_ext(&log.major[0]), log.labels[0]);
        // Reversed axes (heat-map rows) map their start to the start of the pixel range.
        let rows = extent_axis(0.5, -0.5, 4);
        assert_eq!(rows.map(&0.5, (100, 0)), 100);
        assert_eq!(rows.map(&-0.5, (100, 0)), 0);
    }

    #[test]
    fn colour_bar_keeps_both_ends() {
        for (lo, hi, log) in [
            (-3.0, 2.0, true),
            (0.0, 1e-9, false),
            (-0.2, 0.55, true),
            (0.0, 1.0, false),
            (-300.0, 300.0, true),
        ] {
            let axis = colour_bar_axis(lo, hi, 256, log);
            assert_eq!(axis.major.first(), Some(&lo));
            assert_eq!(axis.major.last(), Some(&hi));
            assert_eq!(axis.major.len(), axis.labels.len());
            for p in axis.major.windows(2) {
                assert!((p[1] - p[0]) / (hi - lo) * 256.0 >= TICK_SIZE, "{axis:?}");
            }
        }
    }

    #[test]
    fn image_grid_layout_and_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let (n, c, h, w) = (5, 3, 4, 3);
        let mut images = vec![0.0f32; n * c * h * w];
        // Image 1: pure red; image 4: one white pixel at (1, 2), NaN elsewhere.
        for i in 0..h * w {
            images[(c * h * w) + i] = 1.0;
        }
        for v in &mut images[4 * c * h * w..] {
            *v = f32::NAN;
        }
        for ch in 0..c {
            images[4 * c * h * w + ch * h * w + w + 2] = 2.0;
        }
        let path = dir.path().join("grid.png");
        write_image_grid_png(&path, &images, n, c, h, w, 2, 3).unwrap();
        let img = decode(&path).to_rgb8();
        // 2 columns of 9 px + 1 gap; 3 rows of 12 px + 2 gaps.
        assert_eq!((img.width(), img.height()), (20, 40));
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(9, 0).0, [255, 255, 255]); // gap
        assert_eq!(img.get_pixel(11, 0).0, [255, 0, 0]);
        // Image 4 is at grid (row 2, col 0): origin (0, 28); pixel (1, 2) is scaled 3x.
        assert_eq!(img.get_pixel(2 * 3 + 1, 28 + 3 + 1).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(0, 28).0, [0, 0, 0]);
        // Unused grid cell is white.
        assert_eq!(img.get_pixel(15, 35).0, [255, 255, 255]);

        // Fewer images than columns: the grid is only as wide as the images.
        let gray: Vec<f32> = (0..2 * 6 * 5).map(|i| i as f32 / 59.0).collect();
        let path = dir.path().join("gray.png");
        write_image_grid_png(&path, &gray, 2, 1, 6, 5, 8, 1).unwrap();
        let img = decode(&path);
        assert_eq!((img.width(), img.height()), (12, 6));
        assert_eq!(img.color(), ::image::ColorType::L8);
        no_temp_files_left(dir.path());
    }

    #[test]
    fn image_grid_rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.png");
        assert!(write_image_grid_png(&path, &[0.0; 8], 2, 2, 2, 1, 1, 1).is_err());
        assert!(write_image_grid_png(&path, &[0.0; 7], 2, 1, 2, 2, 1, 1).is_err());
        assert!(write_image_grid_png(&path, &[], 0, 1, 2, 2, 1, 1).is_err());
        assert!(write_image_grid_png(&path, &[0.0; 8], 2, 1, 2, 2, 0, 1).is_err());
        assert!(write_image_grid_png(&path, &[0.0; 8], 2, 1, 2, 2, 1, 0).is_err());
        assert!(write_image_grid_png(&path, &[0.0; 4], 1, 1, 2, 2, 1, usize::MAX).is_err());
        assert!(!path.exists());
    }

    #[test]
    fn writes_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fig.png");
        fs::write(&path, b"old").unwrap();
        write_image_grid_png(&path, &[0.5; 4], 1, 1, 2, 2, 1, 1).unwrap();
        assert_eq!(decode(&path).width(), 2);
        // A directory in the way: the rename fails and the temporary file is removed.
        let blocked = dir.path().join("blocked.png");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), b"x").unwrap();
        let err = write_image_grid_png(&blocked, &[0.5; 4], 1, 1, 2, 2, 1, 1).unwrap_err();
        assert!(format!("{err:#}").contains("directory"), "{err:#}");
        assert!(blocked.is_dir());
        no_temp_files_left(dir.path());
    }
}
