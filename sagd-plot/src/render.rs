//! The hand-written rasteriser (to be replaced by a plotting library).
//!
//! Three kinds of figures are supported:
//!
//! * [`write_heatmap_png`]: a heat map of a 2-D table with a colour bar
//!   (optionally log-scaled), optionally with a line plot next to it;
//! * [`write_line_plot_png`]: a line plot with one or more series on linear
//!   or logarithmic axes;
//! * [`write_image_grid_png`]: a grid of grayscale or RGB images.
//!
//! Everything is rasterised into an in-memory canvas with an 8x8 bitmap font
//! and written atomically (a temporary file in the target directory, then a
//! rename). Degenerate data (NaN, infinities, constant tables, empty series,
//! non-positive values on log axes) never panics: such values are skipped or
//! drawn in a distinct colour.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ::image::codecs::png::PngEncoder;
use ::image::{ExtendedColorType, ImageEncoder};
use anyhow::{Context, Result, ensure};
use font8x8::{BASIC_FONTS, GREEK_FONTS, LATIN_FONTS, UnicodeFonts};

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
    let panel = HeatPanel::new(map)
        .with_context(|| format!("preparing heat map {:?} for {}", map.title, path.display()))?;
    let (width, height) = heatmap_canvas_size(&panel, profile.is_some());
    let mut canvas = Canvas::new(width, height)?;
    panel.draw(&mut canvas, 0, 0);
    if let Some(plot) = profile {
        draw_line_plot(
            &mut canvas,
            Rect::new(panel.width, 0, PROFILE_WIDTH, height as i64),
            plot,
        );
    }
    write_png_atomic(path, &canvas.pixels, width, height, ExtendedColorType::Rgb8)
}

/// Render line plots side by side, left to right, into one PNG file.
pub(crate) fn write_line_plots_png(path: &Path, plots: &[&LinePlot]) -> Result<()> {
    ensure!(
        !plots.is_empty(),
        "no plots to draw into {}",
        path.display()
    );
    let width = LINE_PLOT_WIDTH as usize * plots.len();
    let mut canvas = Canvas::new(width, LINE_PLOT_HEIGHT as usize)?;
    for (i, plot) in plots.iter().enumerate() {
        draw_line_plot(
            &mut canvas,
            Rect::new(
                i as i64 * LINE_PLOT_WIDTH,
                0,
                LINE_PLOT_WIDTH,
                LINE_PLOT_HEIGHT,
            ),
            plot,
        );
    }
    write_png_atomic(
        path,
        &canvas.pixels,
        canvas.width,
        canvas.height,
        ExtendedColorType::Rgb8,
    )
}

/// Render a single line plot to PNG.
pub(crate) fn write_line_plot_png(path: &Path, plot: &LinePlot) -> Result<()> {
    write_line_plots_png(path, &[plot])
}

/// Render a grid of grayscale or RGB images (values in \[0, 1\], layout (n, c, h, w) row-major, c = 1 or 3) with `cols` per row, each upscaled by `scale`, 2-px gaps.
///
/// Values are clamped to `[0, 1]` and NaN is drawn as 0. Gaps and unused grid
/// cells are white. When `n < cols` the grid is only `n` images wide.
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
    let bytes = out_w
        .checked_mul(out_h)
        .and_then(|v| v.checked_mul(c))
        .filter(|&b| {
            b <= MAX_IMAGE_BYTES && out_w <= u32::MAX as usize && out_h <= u32::MAX as usize
        })
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

type Rgb = [u8; 3];

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GRID_COLOUR: Rgb = [228, 228, 228];
const TEXT_GREY: Rgb = [110, 110, 110];
/// Cells with values `<= 0` on a log-scaled heat map.
const ZERO_COLOUR: Rgb = [200, 200, 200];
/// NaN / infinite cells of a heat map.
const NAN_COLOUR: Rgb = [220, 30, 30];

/// Viridis-like control points (position, colour), linearly interpolated.
const COLORMAP: [(f64, Rgb); 9] = [
    (0.000, [68, 1, 84]),
    (0.125, [72, 40, 120]),
    (0.250, [62, 74, 137]),
    (0.375, [49, 104, 142]),
    (0.500, [38, 130, 142]),
    (0.625, [31, 158, 137]),
    (0.750, [53, 183, 121]),
    (0.875, [109, 205, 89]),
    (1.000, [253, 231, 37]),
];

/// Distinct series colours (a categorical palette).
const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

const LINE_PLOT_WIDTH: i64 = 720;
const LINE_PLOT_HEIGHT: i64 = 480;
/// Width of the line-plot panel next to a heat map.
const PROFILE_WIDTH: i64 = 560;
/// Minimum height of the line-plot panel next to a heat map.
const PROFILE_MIN_HEIGHT: i64 = 400;
const GRID_GAP: usize = 2;
/// Refuse to allocate canvases larger than this many bytes.
const MAX_IMAGE_BYTES: usize = 1 << 30;
/// Heat maps are upscaled to at least this many pixels along the longer side.
const HEAT_MIN_SIDE: usize = 256;
/// Each heat-map side is at least this many pixels (very thin tables).
const HEAT_MIN_EXTENT: usize = 128;
/// Heat maps larger than this are downsampled (nearest cell).
const HEAT_MAX_SIDE: usize = 1024;
const TICK_LEN: i64 = 5;
const MINOR_TICK_LEN: i64 = 3;
const GLYPH: i64 = 8;

// ---------------------------------------------------------------------------
// Canvas and primitive drawing
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
struct Rect {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
}

impl Rect {
    fn new(x: i64, y: i64, w: i64, h: i64) -> Self {
        Rect {
            x,
            y,
            w: w.max(1),
            h: h.max(1),
        }
    }

    fn contains(&self, x: i64, y: i64) -> bool {
        x >= self.x && x < self.x + self.w && y >= self.y && y < self.y + self.h
    }

    fn right(&self) -> i64 {
        self.x + self.w
    }

    fn bottom(&self) -> i64 {
        self.y + self.h
    }
}

/// An RGB raster with clipped drawing operations.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Result<Self> {
        let bytes = width
            .checked_mul(height)
            .and_then(|v| v.checked_mul(3))
            .filter(|&b| {
                b <= MAX_IMAGE_BYTES && width <= u32::MAX as usize && height <= u32::MAX as usize
            })
            .with_context(|| format!("plot of {width}x{height} pixels is too large"))?;
        ensure!(width > 0 && height > 0, "plot has zero size");
        Ok(Canvas {
            width,
            height,
            pixels: vec![255; bytes],
        })
    }

    fn set(&mut self, x: i64, y: i64, colour: Rgb) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let i = (y as usize * self.width + x as usize) * 3;
        self.pixels[i..i + 3].copy_from_slice(&colour);
    }

    #[cfg(test)]
    fn get(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.width + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, colour: Rgb) {
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = x.saturating_add(w).min(self.width as i64);
        let y1 = y.saturating_add(h).min(self.height as i64);
        for yy in y0..y1 {
            for xx in x0..x1 {
                self.set(xx, yy, colour);
            }
        }
    }

    fn outline(&mut self, r: Rect, colour: Rgb) {
        self.fill_rect(r.x - 1, r.y - 1, r.w + 2, 1, colour);
        self.fill_rect(r.x - 1, r.bottom(), r.w + 2, 1, colour);
        self.fill_rect(r.x - 1, r.y - 1, 1, r.h + 2, colour);
        self.fill_rect(r.right(), r.y - 1, 1, r.h + 2, colour);
    }

    /// A line of the given thickness, clipped to `clip`.
    fn line(&mut self, p0: (f64, f64), p1: (f64, f64), thickness: i64, colour: Rgb, clip: Rect) {
        let Some((a, b)) = clip_segment(p0, p1, clip) else {
            return;
        };
        let (mut x, mut y) = (a.0.round() as i64, a.1.round() as i64);
        let (x1, y1) = (b.0.round() as i64, b.1.round() as i64);
        let dx = (x1 - x).abs();
        let dy = -(y1 - y).abs();
        let sx = if x < x1 { 1 } else { -1 };
        let sy = if y < y1 { 1 } else { -1 };
        let mut err = dx + dy;
        let half = thickness / 2;
        loop {
            for oy in 0..thickness {
                for ox in 0..thickness {
                    let (px, py) = (x - half + ox, y - half + oy);
                    if clip.contains(px, py) {
                        self.set(px, py, colour);
                    }
                }
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn marker(&mut self, cx: i64, cy: i64, colour: Rgb, clip: Rect) {
        if cx < clip.x - 3 || cx > clip.right() + 3 || cy < clip.y - 3 || cy > clip.bottom() + 3 {
            return;
        }
        for dy in -3..=3i64 {
            for dx in -3..=3i64 {
                if dx * dx + dy * dy <= 10 && clip.contains(cx + dx, cy + dy) {
                    self.set(cx + dx, cy + dy, colour);
                }
            }
        }
    }

    /// Horizontal text with its top-left corner at `(x, y)`.
    fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, colour: Rgb) {
        for (i, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            let cx = x + i as i64 * GLYPH * scale;
            for (row, bits) in g.iter().enumerate() {
                for col in 0..8i64 {
                    if bits & (1 << col) != 0 {
                        self.fill_rect(
                            cx + col * scale,
                            y + row as i64 * scale,
                            scale,
                            scale,
                            colour,
                        );
                    }
                }
            }
        }
    }

    /// Text rotated 90 degrees counter-clockwise (reading bottom to top);
    /// `(x, y)` is the bottom-left corner of the rotated text box.
    fn text_up(&mut self, x: i64, y: i64, s: &str, scale: i64, colour: Rgb) {
        for (i, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            let base = y - i as i64 * GLYPH * scale;
            for (row, bits) in g.iter().enumerate() {
                for col in 0..8i64 {
                    if bits & (1 << col) != 0 {
                        self.fill_rect(
                            x + row as i64 * scale,
                            base - (col + 1) * scale,
                            scale,
                            scale,
                            colour,
                        );
                    }
                }
            }
        }
    }

    fn text_centred(&mut self, cx: i64, y: i64, s: &str, scale: i64, colour: Rgb) {
        self.text(cx - text_width(s, scale) / 2, y, s, scale, colour);
    }

    /// Rotated text centred vertically on `cy`, occupying columns `x..x + 8 * scale`.
    fn text_up_centred(&mut self, x: i64, cy: i64, s: &str, scale: i64, colour: Rgb) {
        self.text_up(x, cy + text_width(s, scale) / 2, s, scale, colour);
    }
}

/// Clip a segment to `r` (Liang-Barsky); `None` when it lies outside or is not finite.
fn clip_segment(p0: (f64, f64), p1: (f64, f64), r: Rect) -> Option<((f64, f64), (f64, f64))> {
    if ![p0.0, p0.1, p1.0, p1.1].iter().all(|v| v.is_finite()) {
        return None;
    }
    let (xmin, xmax) = (r.x as f64, (r.right() - 1) as f64);
    let (ymin, ymax) = (r.y as f64, (r.bottom() - 1) as f64);
    let dx = p1.0 - p0.0;
    let dy = p1.1 - p0.1;
    let mut t0 = 0.0f64;
    let mut t1 = 1.0f64;
    for (p, q) in [
        (-dx, p0.0 - xmin),
        (dx, xmax - p0.0),
        (-dy, p0.1 - ymin),
        (dy, ymax - p0.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                if t > t1 {
                    return None;
                }
                t0 = t0.max(t);
            } else {
                if t < t0 {
                    return None;
                }
                t1 = t1.min(t);
            }
        }
    }
    Some((
        (p0.0 + t0 * dx, p0.1 + t0 * dy),
        (p0.0 + t1 * dx, p0.1 + t1 * dy),
    ))
}

fn glyph(ch: char) -> [u8; 8] {
    let ch = if ch.is_whitespace() { ' ' } else { ch };
    BASIC_FONTS
        .get(ch)
        .or_else(|| LATIN_FONTS.get(ch))
        .or_else(|| GREEK_FONTS.get(ch))
        .or_else(|| BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

fn text_width(s: &str, scale: i64) -> i64 {
    s.chars().count() as i64 * GLYPH * scale
}

/// Shorten `s` with a trailing ".." so that it fits in `max_px` pixels.
fn fit_text(s: &str, max_px: i64, scale: i64) -> String {
    if text_width(s, scale) <= max_px {
        return s.to_string();
    }
    let max_chars = (max_px / (GLYPH * scale)).max(0) as usize;
    if max_chars <= 2 {
        return s.chars().take(max_chars).collect();
    }
    let mut out: String = s.chars().take(max_chars - 2).collect();
    out.push_str("..");
    out
}

fn lerp_colour(a: Rgb, b: Rgb, t: f64) -> Rgb {
    let mut out = [0u8; 3];
    for i in 0..3 {
        let v = a[i] as f64 + (b[i] as f64 - a[i] as f64) * t;
        out[i] = v.round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// The viridis-like colour map at `t` in `[0, 1]` (clamped; NaN maps to 0).
fn colormap(t: f64) -> Rgb {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    for pair in COLORMAP.windows(2) {
        let (t0, c0) = pair[0];
        let (t1, c1) = pair[1];
        if t <= t1 {
            return lerp_colour(c0, c1, (t - t0) / (t1 - t0));
        }
    }
    COLORMAP[COLORMAP.len() - 1].1
}

fn unit_to_u8(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

// ---------------------------------------------------------------------------
// Ticks and number formatting
// ---------------------------------------------------------------------------

/// A "nice" step (1, 2 or 5 times a power of ten) close to `raw`.
fn nice_step(raw: f64) -> f64 {
    let exp = raw.log10().floor();
    let mag = 10f64.powf(exp);
    let f = raw / mag;
    let nf = if f < 1.5 {
        1.0
    } else if f < 3.0 {
        2.0
    } else if f < 7.0 {
        5.0
    } else {
        10.0
    };
    nf * mag
}

/// Round linear ticks (multiples of a 1/2/5 step) inside `[lo, hi]`,
/// about `target` intervals. Returns `[lo]` for an empty range and nothing
/// for non-finite bounds.
fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) {
        return Vec::new();
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let span = hi - lo;
    if span <= 0.0 {
        return vec![lo + 0.0];
    }
    if !span.is_finite() {
        return vec![lo, hi];
    }
    let step = nice_step(span / target.max(1) as f64);
    if !(step > 0.0 && step.is_finite()) {
        return vec![lo, hi];
    }
    let k0 = (lo / step - 1e-9).ceil();
    let k1 = (hi / step + 1e-9).floor();
    if !(k0.is_finite() && k1.is_finite()) || k1 < k0 || k1 - k0 > 1000.0 {
        return vec![lo, hi];
    }
    // Dividing by an integer reciprocal gives exact-looking decimals (0.3, not 0.30000000000000004).
    let inv = (1.0 / step).round();
    let use_inv = step < 1.0 && (inv * step - 1.0).abs() < 1e-9;
    let count = (k1 - k0) as i64;
    (0..=count)
        .map(|i| {
            let k = k0 + i as f64;
            let v = if use_inv { k / inv } else { k * step };
            v + 0.0 // normalise -0.0
        })
        .filter(|v| *v >= lo - step * 1e-6 && *v <= hi + step * 1e-6)
        .collect()
}

/// `10^k`, exactly as the decimal literal `1ek` parses.
fn pow10(k: i64) -> f64 {
    format!("1e{k}").parse().unwrap_or(f64::NAN)
}

/// Ticks for a logarithmic axis over `[lo, hi]` (both positive): decades
/// (thinned to at most ~8), or 1/2/5 (then 1..9) multiples of decades when
/// the range spans less than two decades, falling back to linear ticks.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi.is_finite() && lo.is_finite()) {
        return Vec::new();
    }
    if hi <= lo {
        return vec![lo];
    }
    let (k0, k1) = decade_span(lo, hi);
    let n = k1 - k0 + 1;
    if n >= 2 {
        let stride = decade_stride(n);
        return (k0..=k1)
            .filter(|k| k.rem_euclid(stride) == 0)
            .map(pow10)
            .filter(|v| *v > 0.0 && v.is_finite())
            .collect();
    }
    let tol_lo = lo * (1.0 - 1e-9);
    let tol_hi = hi * (1.0 + 1e-9);
    for mantissas in [&[1, 2, 5][..], &[1, 2, 3, 4, 5, 6, 7, 8, 9][..]] {
        let ticks: Vec<f64> = (k0 - 1..=k1 + 1)
            .flat_map(|k| {
                mantissas
                    .iter()
                    .map(move |m| format!("{m}e{k}").parse::<f64>().unwrap_or(f64::NAN))
            })
            .filter(|v| *v >= tol_lo && *v <= tol_hi)
            .collect();
        if ticks.len() >= 2 {
            return ticks;
        }
    }
    nice_ticks(lo, hi, 4)
        .into_iter()
        .filter(|v| *v > 0.0)
        .collect()
}

/// First and last integer decade exponents inside `[lo, hi]`.
fn decade_span(lo: f64, hi: f64) -> (i64, i64) {
    let k0 = (lo.log10() - 1e-9).ceil() as i64;
    let k1 = (hi.log10() + 1e-9).floor() as i64;
    (k0, k1)
}

/// Decade stride so that `n` decades give at most about 8 ticks.
fn decade_stride(n: i64) -> i64 {
    [1, 2, 3, 5, 10, 20, 25, 50, 100, 200]
        .into_iter()
        .find(|s| n <= 8 * s)
        .unwrap_or(1000)
}

/// Minor ticks (2..9 times each decade) for a log axis whose major ticks are
/// consecutive decades; empty otherwise.
fn log_minor_ticks(lo: f64, hi: f64, majors: &[f64]) -> Vec<f64> {
    if majors.len() < 2 || !(lo > 0.0 && hi > lo) {
        return Vec::new();
    }
    let consecutive = majors
        .windows(2)
        .all(|p| ((p[1] / p[0]) - 10.0).abs() < 1e-6);
    if !consecutive {
        return Vec::new();
    }
    let (k0, k1) = decade_span(lo, hi);
    let mut out = Vec::new();
    for k in (k0 - 1)..=k1 {
        for m in 2..=9 {
            let v: f64 = format!("{m}e{k}").parse().unwrap_or(f64::NAN);
            if v > lo && v < hi {
                out.push(v);
            }
        }
    }
    out
}

/// Strip trailing zeros (and a trailing '.') from the mantissa of a number string.
fn tidy_number(s: &str) -> String {
    let (mantissa, exponent) = match s.find('e') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    let mantissa = if mantissa == "-0" { "0" } else { mantissa };
    format!("{mantissa}{exponent}")
}

/// Labels for linear ticks: fixed decimals matching the tick step, or
/// `2.5e-4` style when the magnitudes are very large or very small.
fn linear_labels(ticks: &[f64]) -> Vec<String> {
    let step = ticks
        .windows(2)
        .map(|p| (p[1] - p[0]).abs())
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    let amax = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let step = if step.is_finite() {
        step
    } else if amax > 0.0 {
        amax
    } else {
        1.0
    };
    let step_exp = (step.log10() + 1e-9).floor();
    let scientific = amax >= 1e5 || (amax > 0.0 && amax < 1e-3);
    ticks
        .iter()
        .map(|&v| {
            if v == 0.0 {
                "0".to_string()
            } else if !v.is_finite() {
                format!("{v}")
            } else if scientific {
                let decimals = ((v.abs().log10() + 1e-9).floor() - step_exp).clamp(0.0, 6.0);
                tidy_number(&format!("{:.*e}", decimals as usize, v))
            } else {
                let decimals = (-step_exp).clamp(0.0, 10.0) as usize;
                tidy_number(&format!("{v:.decimals$}"))
            }
        })
        .collect()
}

/// Labels for log ticks: plain numbers when every tick lies in `[0.01, 1e4)`,
/// otherwise `1e-3` style.
fn log_labels(ticks: &[f64]) -> Vec<String> {
    let plain = ticks.iter().all(|v| *v >= 0.01 * (1.0 - 1e-9) && *v < 1e4);
    ticks
        .iter()
        .map(|&v| {
            if plain {
                let decimals = (-(v.log10() + 1e-9).floor()).clamp(0.0, 10.0) as usize;
                tidy_number(&format!("{v:.decimals$}"))
            } else {
                tidy_number(&format!("{v:.3e}"))
            }
        })
        .collect()
}

/// A number with about three significant digits.
fn format_sig(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (2.0 - a.log10().floor()).clamp(0.0, 6.0) as usize;
        tidy_number(&format!("{v:.decimals$}"))
    } else {
        tidy_number(&format!("{v:.2e}"))
    }
}

/// Widen an empty range so that it can be drawn.
fn widen_degenerate(lo: f64, hi: f64, log: bool) -> (f64, f64) {
    if hi > lo {
        return (lo, hi);
    }
    if log {
        (lo / 3.0, lo * 3.0)
    } else if lo == 0.0 {
        (-1.0, 1.0)
    } else {
        let d = lo.abs() * 0.1;
        (lo - d, lo + d)
    }
}

/// Keep every k-th tick (smallest k) so that neighbouring labels do not collide.
fn thin_ticks(ticks: Vec<(i64, String)>, horizontal: bool) -> Vec<(i64, String)> {
    let need = |a: &(i64, String), b: &(i64, String)| {
        if horizontal {
            (text_width(&a.1, 1) + text_width(&b.1, 1)) / 2 + 8
        } else {
            GLYPH + 6
        }
    };
    for stride in 1..=ticks.len().max(1) {
        let kept: Vec<&(i64, String)> = ticks.iter().step_by(stride).collect();
        if kept
            .windows(2)
            .all(|p| (p[1].0 - p[0].0).abs() >= need(p[0], p[1]))
        {
            return kept.into_iter().cloned().collect();
        }
    }
    ticks.into_iter().take(1).collect()
}

/// Tick marks and labels below the rectangle `r` (pixel x positions).
fn draw_x_ticks(c: &mut Canvas, r: Rect, ticks: &[(i64, String)], minor: &[i64]) {
    for &x in minor {
        c.fill_rect(x, r.bottom() + 1, 1, MINOR_TICK_LEN, BLACK);
    }
    for (x, label) in ticks {
        c.fill_rect(*x, r.bottom() + 1, 1, TICK_LEN, BLACK);
        c.text_centred(*x, r.bottom() + TICK_LEN + 4, label, 1, BLACK);
    }
}

/// Tick marks and right-aligned labels left of the rectangle `r` (pixel y positions).
fn draw_y_ticks(c: &mut Canvas, r: Rect, ticks: &[(i64, String)], minor: &[i64]) {
    for &y in minor {
        c.fill_rect(r.x - 1 - MINOR_TICK_LEN, y, MINOR_TICK_LEN, 1, BLACK);
    }
    for (y, label) in ticks {
        c.fill_rect(r.x - 1 - TICK_LEN, *y, TICK_LEN, 1, BLACK);
        let w = text_width(label, 1);
        c.text(r.x - TICK_LEN - 4 - w, *y - GLYPH / 2 + 1, label, 1, BLACK);
    }
}

// ---------------------------------------------------------------------------
// Line plots
// ---------------------------------------------------------------------------

/// A data axis of a line plot: range, scale and ticks.
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
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
        let (ticks, labels, minor) = if log {
            let t = log_ticks(lo, hi);
            let l = log_labels(&t);
            let m = log_minor_ticks(lo, hi, &t);
            (t, l, m)
        } else {
            let t = nice_ticks(lo, hi, target);
            let l = linear_labels(&t);
            (t, l, Vec::new())
        };
        Axis {
            lo,
            hi,
            log,
            ticks,
            labels,
            minor,
        }
    }

    /// Position of `v` along the axis, 0 at `lo` and 1 at `hi`.
    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    fn valid(&self, v: f64) -> bool {
        v.is_finite() && (!self.log || v > 0.0)
    }

    fn px_x(&self, r: Rect, v: f64) -> f64 {
        r.x as f64 + self.frac(v) * (r.w - 1) as f64
    }

    fn px_y(&self, r: Rect, v: f64) -> f64 {
        (r.bottom() - 1) as f64 - self.frac(v) * (r.h - 1) as f64
    }

    fn max_label_width(&self) -> i64 {
        self.labels
            .iter()
            .map(|l| text_width(l, 1))
            .max()
            .unwrap_or(0)
    }
}

/// Draw a line plot filling the rectangle `area` of the canvas.
fn draw_line_plot(c: &mut Canvas, area: Rect, plot: &LinePlot) {
    c.fill_rect(area.x, area.y, area.w, area.h, WHITE);

    let title_scale = if text_width(plot.title, 2) <= area.w - 20 {
        2
    } else {
        1
    };
    let title = fit_text(plot.title, area.w - 20, title_scale);
    let top = area.y + 10 + GLYPH * title_scale + 14;
    let bottom = area.bottom() - (TICK_LEN + 4 + GLYPH + 10 + GLYPH + 12);
    let ph = (bottom - top).max(10);

    // Points usable on both axes determine the ranges.
    let usable = |p: &&(f64, f64)| {
        p.0.is_finite()
            && p.1.is_finite()
            && (!plot.log_x || p.0 > 0.0)
            && (!plot.log_y || p.1 > 0.0)
    };
    let ys = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter(usable).map(|p| p.1));
    let y_axis = Axis::from_values(ys, plot.log_y, (ph / 50).clamp(2, 10) as usize);

    let y_label_x = area.x + 10;
    let left = y_label_x + GLYPH + 10 + y_axis.max_label_width() + TICK_LEN + 4;
    let right = area.right() - 24;
    let r = Rect::new(left, top, right - left, ph);
    let xs = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter(usable).map(|p| p.0));
    let x_axis = Axis::from_values(xs, plot.log_x, (r.w / 90).clamp(2, 10) as usize);

    let x_ticks: Vec<(i64, String)> = x_axis
        .ticks
        .iter()
        .zip(&x_axis.labels)
        .map(|(&v, l)| (x_axis.px_x(r, v).round() as i64, l.clone()))
        .filter(|(p, _)| *p >= r.x && *p < r.right())
        .collect();
    let y_ticks: Vec<(i64, String)> = y_axis
        .ticks
        .iter()
        .zip(&y_axis.labels)
        .map(|(&v, l)| (y_axis.px_y(r, v).round() as i64, l.clone()))
        .filter(|(p, _)| *p >= r.y && *p < r.bottom())
        .collect();
    let x_ticks = thin_ticks(x_ticks, true);
    let y_ticks = thin_ticks(y_ticks, false);
    let x_minor: Vec<i64> = x_axis
        .minor
        .iter()
        .map(|&v| x_axis.px_x(r, v).round() as i64)
        .collect();
    let y_minor: Vec<i64> = y_axis
        .minor
        .iter()
        .map(|&v| y_axis.px_y(r, v).round() as i64)
        .collect();

    // Grid lines.
    for (x, _) in &x_ticks {
        c.fill_rect(*x, r.y, 1, r.h, GRID_COLOUR);
    }
    for (y, _) in &y_ticks {
        c.fill_rect(r.x, *y, r.w, 1, GRID_COLOUR);
    }

    // Series.
    let mut screen_points: Vec<(i64, i64)> = Vec::new();
    let mut any_valid = false;
    for (i, s) in plot.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let pts: Vec<Option<(f64, f64)>> = s
            .points
            .iter()
            .map(|&(x, y)| {
                (x_axis.valid(x) && y_axis.valid(y)).then(|| (x_axis.px_x(r, x), y_axis.px_y(r, y)))
            })
            .collect();
        for pair in pts.windows(2) {
            if let (Some(a), Some(b)) = (pair[0], pair[1]) {
                c.line(a, b, 2, colour, r);
            }
        }
        for (j, p) in pts.iter().enumerate() {
            let Some((x, y)) = *p else { continue };
            any_valid = true;
            let (xi, yi) = (x.round() as i64, y.round() as i64);
            screen_points.push((xi, yi));
            let isolated =
                (j == 0 || pts[j - 1].is_none()) && pts.get(j + 1).is_none_or(|q| q.is_none());
            if s.markers || isolated {
                c.marker(xi, yi, colour, r);
            }
        }
    }
    if !any_valid {
        let msg = if plot.log_x || plot.log_y {
            "no data (log axes skip values <= 0)"
        } else {
            "no data"
        };
        let msg = fit_text(msg, r.w - 8, 1);
        c.text_centred(r.x + r.w / 2, r.y + r.h / 2 - 4, &msg, 1, TEXT_GREY);
    }

    // Frame, ticks, labels.
    c.outline(r, BLACK);
    draw_x_ticks(c, r, &x_ticks, &x_minor);
    draw_y_ticks(c, r, &y_ticks, &y_minor);
    let x_label = fit_text(plot.x_label, area.w - 20, 1);
    c.text_centred(
        r.x + r.w / 2,
        r.bottom() + TICK_LEN + 4 + GLYPH + 10,
        &x_label,
        1,
        BLACK,
    );
    let y_label = fit_text(plot.y_label, area.h - 20, 1);
    c.text_up_centred(y_label_x, r.y + r.h / 2, &y_label, 1, BLACK);
    c.text_centred(area.x + area.w / 2, area.y + 10, &title, title_scale, BLACK);

    draw_legend(c, r, plot, &screen_points);
}

/// Legend box in the plot corner that hides the fewest data points.
fn draw_legend(c: &mut Canvas, r: Rect, plot: &LinePlot, points: &[(i64, i64)]) {
    let n = plot.series.len();
    if n == 0 || (n == 1 && plot.series[0].name.is_empty()) {
        return;
    }
    let max_name = (r.w / 2).max(40);
    let names: Vec<String> = plot
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if s.name.is_empty() {
                format!("series {}", i + 1)
            } else {
                fit_text(s.name, max_name, 1)
            }
        })
        .collect();
    let sample = 22;
    let row_h = 14;
    let bw = 8 + sample + 6 + names.iter().map(|s| text_width(s, 1)).max().unwrap_or(0) + 8;
    let bh = 6 + n as i64 * row_h;
    let inset = 8;
    let candidates = [
        (r.right() - inset - bw, r.y + inset),
        (r.x + inset, r.y + inset),
        (r.right() - inset - bw, r.bottom() - inset - bh),
        (r.x + inset, r.bottom() - inset - bh),
    ];
    let (bx, by) = candidates
        .iter()
        .copied()
        .min_by_key(|&(bx, by)| {
            let b = Rect::new(bx - 3, by - 3, bw + 6, bh + 6);
            points.iter().filter(|&&(x, y)| b.contains(x, y)).count()
        })
        .unwrap_or(candidates[0]);
    let b = Rect::new(bx, by, bw, bh);
    c.fill_rect(b.x, b.y, b.w, b.h, WHITE);
    c.outline(b, BLACK);
    for (i, (s, name)) in plot.series.iter().zip(&names).enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let cy = by + 4 + i as i64 * row_h + row_h / 2;
        let x0 = bx + 8;
        c.line(
            (x0 as f64, cy as f64),
            ((x0 + sample) as f64, cy as f64),
            2,
            colour,
            b,
        );
        if s.markers {
            c.marker(x0 + sample / 2, cy, colour, b);
        }
        c.text(x0 + sample + 6, cy - GLYPH / 2, name, 1, BLACK);
    }
}

// ---------------------------------------------------------------------------
// Heat maps
// ---------------------------------------------------------------------------

/// A validated heat map with its layout (all offsets relative to the panel origin).
struct HeatPanel<'m, 'a> {
    map: &'m HeatMap<'a>,
    /// Map size in pixels.
    mw: i64,
    mh: i64,
    /// Map top-left corner.
    ml: i64,
    mt: i64,
    cb_x: i64,
    cb_labels_x: i64,
    cb_title_x: i64,
    width: i64,
    height: i64,
    title_scale: i64,
    /// Colour range in colour units (log10 of the value when log-scaled).
    lo: f64,
    hi: f64,
    x_ticks: Vec<(i64, String)>,
    y_ticks: Vec<(i64, String)>,
    cb_ticks: Vec<(i64, String)>,
    swatches: Vec<(Rgb, &'static str)>,
}

const CB_WIDTH: i64 = 16;
const HEAT_BOTTOM: i64 = TICK_LEN + 4 + GLYPH + 10 + GLYPH + 12;
const SWATCH_ROW: i64 = 16;

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
fn heat_side(n: usize, longest: usize) -> usize {
    let side = if longest > HEAT_MAX_SIDE {
        // Downsample so that the longer side is HEAT_MAX_SIDE.
        ((n as f64) * HEAT_MAX_SIDE as f64 / longest as f64).round() as usize
    } else {
        n * HEAT_MIN_SIDE.div_ceil(longest).max(1)
    };
    side.clamp(HEAT_MIN_EXTENT, HEAT_MAX_SIDE)
}

/// Ticks (pixel offset from the map edge, label) for a map side of `len`
/// pixels spanning the data extent `(e0, e1)`.
fn extent_ticks(e0: f64, e1: f64, len: i64, target: usize) -> Vec<(i64, String)> {
    let ticks = nice_ticks(e0.min(e1), e0.max(e1), target);
    let labels = linear_labels(&ticks);
    let ticks: Vec<(i64, String)> = ticks
        .iter()
        .zip(labels)
        .filter_map(|(&v, l)| {
            let p = ((v - e0) / (e1 - e0) * len as f64).round();
            (p.is_finite() && p >= 0.0 && p <= len as f64).then(|| ((p as i64).min(len - 1), l))
        })
        .collect();
    ticks
}

impl<'m, 'a> HeatPanel<'m, 'a> {
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
        let mw = heat_side(map.cols, longest) as i64;
        let mh = heat_side(map.rows, longest) as i64;

        let (x0, x1) = cell_extent(map.x_range, map.cols);
        let (y0, y1) = cell_extent(map.y_range, map.rows);
        let x_ticks = thin_ticks(
            extent_ticks(x0, x1, mw, (mw / 50).clamp(2, 8) as usize),
            true,
        );
        let y_ticks = thin_ticks(
            extent_ticks(y0, y1, mh, (mh / 40).clamp(2, 8) as usize),
            false,
        );

        // Colour-bar ticks: offset from the bar top.
        let cb_pos = |t: f64| ((hi - t) / (hi - lo) * (mh - 1) as f64).round();
        let (mid_ticks, mid_labels, lo_label, hi_label) = if map.log_scale {
            let t = log_ticks(10f64.powf(lo), 10f64.powf(hi));
            let l = log_labels(&t);
            let t: Vec<f64> = t.iter().map(|v| v.log10()).collect();
            (t, l, format_sig(10f64.powf(lo)), format_sig(10f64.powf(hi)))
        } else {
            let t = nice_ticks(lo, hi, (mh / 50).clamp(2, 8) as usize);
            let l = linear_labels(&t);
            (t, l, format_sig(lo), format_sig(hi))
        };
        let mut cb_ticks = vec![(0, hi_label)];
        for (t, l) in mid_ticks.iter().zip(mid_labels) {
            let p = cb_pos(*t);
            if p.is_finite() && p >= 14.0 && p <= (mh - 1 - 14) as f64 {
                cb_ticks.push((p as i64, l));
            }
        }
        cb_ticks.push((mh - 1, lo_label));
        // Top to bottom (value ticks come in increasing value, i.e. upwards).
        cb_ticks.sort_by_key(|t| t.0);
        // Drop intermediate labels that collide (end labels always stay).
        let mut kept: Vec<(i64, String)> = Vec::new();
        let last = cb_ticks.len() - 1;
        for (i, t) in cb_ticks.into_iter().enumerate() {
            let clear_prev = kept.last().is_none_or(|p| t.0 - p.0 >= GLYPH + 6);
            let clear_end = i == last || (mh - 1) - t.0 >= GLYPH + 6;
            if i == 0 || i == last || (clear_prev && clear_end) {
                kept.push(t);
            }
        }
        let cb_ticks = kept;

        let mut swatches = Vec::new();
        if map.log_scale && any_zero {
            swatches.push((ZERO_COLOUR, "<= 0"));
        }
        if any_nan {
            swatches.push((NAN_COLOUR, "NaN/inf"));
        }

        // Layout.
        let y_label_w = y_ticks
            .iter()
            .map(|t| text_width(&t.1, 1))
            .max()
            .unwrap_or(0);
        let ml = 10 + GLYPH + 10 + y_label_w + TICK_LEN + 4;
        let cb_x = ml + mw + 16;
        let cb_labels_x = cb_x + CB_WIDTH + TICK_LEN + 4;
        let cb_label_w = cb_ticks
            .iter()
            .map(|t| text_width(&t.1, 1))
            .max()
            .unwrap_or(0);
        let cb_title_x = cb_labels_x + cb_label_w + 10;
        let mut width = cb_title_x + GLYPH + 24;
        width = width.max((text_width(map.title, 1) + 20).min(1200));
        let title_scale = if text_width(map.title, 2) <= width - 20 {
            2
        } else {
            1
        };
        let mt = 10 + GLYPH * title_scale + 14;
        let swatch_h = if swatches.is_empty() {
            0
        } else {
            swatches.len() as i64 * SWATCH_ROW + 4
        };
        let height = mt + mh + HEAT_BOTTOM + swatch_h;

        Ok(HeatPanel {
            map,
            mw,
            mh,
            ml,
            mt,
            cb_x,
            cb_labels_x,
            cb_title_x,
            width,
            height,
            title_scale,
            lo,
            hi,
            x_ticks,
            y_ticks,
            cb_ticks,
            swatches,
        })
    }

    fn cell_colour(&self, v: f64) -> Rgb {
        match colour_unit(v, self.map.log_scale) {
            CellValue::Value(t) => colormap((t - self.lo) / (self.hi - self.lo)),
            CellValue::Zero => ZERO_COLOUR,
            CellValue::Invalid => NAN_COLOUR,
        }
    }

    fn draw(&self, c: &mut Canvas, ox: i64, oy: i64) {
        let map = self.map;
        let r = Rect::new(ox + self.ml, oy + self.mt, self.mw, self.mh);

        // Cells: nearest-cell sampling handles both up- and down-scaling.
        for py in 0..self.mh {
            let row = (py as usize * map.rows / self.mh as usize).min(map.rows - 1);
            for px in 0..self.mw {
                let col = (px as usize * map.cols / self.mw as usize).min(map.cols - 1);
                let colour = self.cell_colour(map.values[row * map.cols + col]);
                c.set(r.x + px, r.y + py, colour);
            }
        }
        c.outline(r, BLACK);
        let x_ticks: Vec<(i64, String)> = self
            .x_ticks
            .iter()
            .map(|(p, l)| (r.x + p, l.clone()))
            .collect();
        let y_ticks: Vec<(i64, String)> = self
            .y_ticks
            .iter()
            .map(|(p, l)| (r.y + p, l.clone()))
            .collect();
        draw_x_ticks(c, r, &x_ticks, &[]);
        draw_y_ticks(c, r, &y_ticks, &[]);

        // Axis labels and title.
        let x_label = fit_text(map.x_label, self.width - 20, 1);
        c.text_centred(
            r.x + r.w / 2,
            r.bottom() + TICK_LEN + 4 + GLYPH + 10,
            &x_label,
            1,
            BLACK,
        );
        let y_label = fit_text(map.y_label, self.mh + self.mt + HEAT_BOTTOM - 20, 1);
        c.text_up_centred(ox + 10, r.y + r.h / 2, &y_label, 1, BLACK);
        let title = fit_text(map.title, self.width - 20, self.title_scale);
        c.text_centred(
            ox + self.width / 2,
            oy + 10,
            &title,
            self.title_scale,
            BLACK,
        );

        // Colour bar.
        let cb = Rect::new(ox + self.cb_x, r.y, CB_WIDTH, self.mh);
        for py in 0..self.mh {
            let t = if self.mh > 1 {
                1.0 - py as f64 / (self.mh - 1) as f64
            } else {
                0.5
            };
            c.fill_rect(cb.x, cb.y + py, CB_WIDTH, 1, colormap(t));
        }
        c.outline(cb, BLACK);
        for (p, label) in &self.cb_ticks {
            let y = cb.y + p;
            c.fill_rect(cb.right() + 1, y, TICK_LEN, 1, BLACK);
            c.text(ox + self.cb_labels_x, y - GLYPH / 2 + 1, label, 1, BLACK);
        }
        let cb_title = fit_text(map.colorbar_label, self.mh + self.mt + HEAT_BOTTOM - 20, 1);
        c.text_up_centred(ox + self.cb_title_x, cb.y + cb.h / 2, &cb_title, 1, BLACK);

        // Legend for special cell colours, below the x-axis label.
        let mut sy = r.bottom() + HEAT_BOTTOM;
        for (colour, label) in &self.swatches {
            let s = Rect::new(ox + self.cb_x, sy, 12, 12);
            c.fill_rect(s.x, s.y, s.w, s.h, *colour);
            c.outline(s, BLACK);
            c.text(s.right() + 6, sy + 2, label, 1, BLACK);
            sy += SWATCH_ROW;
        }
    }
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

fn heatmap_canvas_size(panel: &HeatPanel, with_profile: bool) -> (usize, usize) {
    if with_profile {
        (
            (panel.width + PROFILE_WIDTH) as usize,
            panel.height.max(PROFILE_MIN_HEIGHT) as usize,
        )
    } else {
        (panel.width as usize, panel.height as usize)
    }
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Encode `data` as PNG and write it to `path` atomically (temporary file in
/// the same directory, then rename).
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

    let file_name = path
        .file_name()
        .with_context(|| format!("output path {} has no file name", path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating temporary file {}", tmp.display()))?;
        f.write_all(&bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("flushing {}", tmp.display()))?;
        drop(f);
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing PNG {}", path.display()))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
    }

    fn contains(ticks: &[f64], v: f64) -> bool {
        ticks.iter().any(|&t| (t - v).abs() < 1e-12)
    }

    fn decode(path: &Path) -> image::DynamicImage {
        image::open(path).expect("output decodes as an image")
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

    #[test]
    fn nice_ticks_zero_to_half() {
        let t = nice_ticks(0.0, 0.5, 5);
        for v in [0.0, 0.1, 0.2, 0.3, 0.4, 0.5] {
            assert!(contains(&t, v), "{v} missing from {t:?}");
        }
        assert!(t.iter().all(|&v| (0.0..=0.5).contains(&v)));
        assert_eq!(linear_labels(&t), ["0", "0.1", "0.2", "0.3", "0.4", "0.5"]);
    }

    #[test]
    fn nice_ticks_are_round_and_inside() {
        let t = nice_ticks(-0.53, 0.53, 5);
        assert!(contains(&t, 0.0) && contains(&t, -0.4) && contains(&t, 0.4));
        assert!(t.iter().all(|&v| (-0.53..=0.53).contains(&v)));
        // Reversed bounds give the same ticks.
        assert_eq!(nice_ticks(0.53, -0.53, 5), t);
        let t = nice_ticks(3.0, 997.0, 5);
        assert!(contains(&t, 200.0) && contains(&t, 800.0), "{t:?}");
        // No negative zero.
        assert!(
            nice_ticks(-1.0, 1.0, 4)
                .iter()
                .all(|v| !(v.is_sign_negative() && *v == 0.0))
        );
    }

    #[test]
    fn nice_ticks_degenerate() {
        assert_eq!(nice_ticks(1.0, 1.0, 5), vec![1.0]);
        assert!(nice_ticks(f64::NAN, 1.0, 5).is_empty());
        assert!(nice_ticks(0.0, f64::INFINITY, 5).is_empty());
        assert!(nice_ticks(-f64::MAX, f64::MAX, 5).len() <= 2);
        assert!(!nice_ticks(1e16, 1e16 + 4.0, 5).is_empty());
        assert!(!nice_ticks(1e-300, 2e-300, 5).is_empty());
    }

    #[test]
    fn log_ticks_are_decades() {
        let t = log_ticks(1e-3, 10.0);
        let expected = [1e-3, 1e-2, 1e-1, 1.0, 10.0];
        assert_eq!(t.len(), expected.len(), "{t:?}");
        for (a, b) in t.iter().zip(expected) {
            assert!(close(*a, b), "{t:?}");
        }
        assert_eq!(log_labels(&t), ["1e-3", "1e-2", "1e-1", "1e0", "1e1"]);
        assert_eq!(
            log_labels(&[0.1, 1.0, 10.0, 100.0]),
            ["0.1", "1", "10", "100"]
        );
    }

    #[test]
    fn log_ticks_narrow_wide_and_invalid() {
        let t = log_ticks(2.0, 8.0);
        assert!(contains(&t, 2.0) && contains(&t, 5.0), "{t:?}");
        let t = log_ticks(1.1, 1.9);
        assert!(
            !t.is_empty() && t.iter().all(|&v| (1.1..=1.9).contains(&v)),
            "{t:?}"
        );
        let t = log_ticks(1e-300, 1e300);
        assert!((2..=9).contains(&t.len()), "{t:?}");
        assert!(t.iter().all(|v| v.log10().round() % 100.0 == 0.0), "{t:?}");
        assert!(log_ticks(0.0, 1.0).is_empty());
        assert!(log_ticks(-1.0, 1.0).is_empty());
        assert!(log_ticks(f64::NAN, 1.0).is_empty());
        assert_eq!(log_ticks(5.0, 5.0), vec![5.0]);
        let minor = log_minor_ticks(1.0, 100.0, &log_ticks(1.0, 100.0));
        assert_eq!(minor.len(), 16);
    }

    #[test]
    fn number_formatting() {
        assert_eq!(linear_labels(&[0.0, 2e-5, 4e-5]), ["0", "2e-5", "4e-5"]);
        assert_eq!(linear_labels(&[1e5, 1.5e5, 2e5]), ["1e5", "1.5e5", "2e5"]);
        assert_eq!(linear_labels(&[-10.0, 0.0, 10.0]), ["-10", "0", "10"]);
        assert_eq!(format_sig(0.012345), "0.0123");
        assert_eq!(format_sig(123456.0), "1.23e5");
        assert_eq!(format_sig(2.5e-7), "2.5e-7");
        assert_eq!(format_sig(-3.0), "-3");
        assert_eq!(format_sig(0.0), "0");
    }

    #[test]
    fn colormap_endpoints() {
        assert_eq!(colormap(0.0), COLORMAP[0].1);
        assert_eq!(colormap(1.0), COLORMAP[8].1);
        assert_eq!(colormap(f64::NAN), COLORMAP[0].1);
        assert_eq!(colormap(7.0), COLORMAP[8].1);
        assert_eq!(colormap(0.5), [38, 130, 142]);
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
        let panel = HeatPanel::new(&map).unwrap();
        assert_eq!(panel.mw, 256);
        assert_eq!(panel.mh, 256);
        let (w, h) = heatmap_canvas_size(&panel, true);
        let img = decode(&path);
        assert_eq!((img.width() as usize, img.height() as usize), (w, h));
        assert!(w >= 256 + PROFILE_WIDTH as usize && h >= 256);
        no_temp_files_left(dir.path());
    }

    #[test]
    fn small_heatmap_is_upscaled_and_coloured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.png");
        let values: Vec<f64> = (0..64).map(f64::from).collect();
        let map = heatmap(&values, 8, 8, false);
        write_heatmap_png(&path, &map, None).unwrap();
        let panel = HeatPanel::new(&map).unwrap();
        assert_eq!((panel.mw, panel.mh), (256, 256));
        let img = decode(&path).to_rgb8();
        assert_eq!(
            (img.width() as i64, img.height() as i64),
            (panel.width, panel.height)
        );
        // First cell (top-left) has the lowest colour, last cell the highest.
        let p = img
            .get_pixel((panel.ml + 5) as u32, (panel.mt + 5) as u32)
            .0;
        assert_eq!(p, colormap(0.0));
        let p = img
            .get_pixel((panel.ml + 250) as u32, (panel.mt + 250) as u32)
            .0;
        assert_eq!(p, colormap(1.0));
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
        for (i, (values, rows, cols, log)) in cases.iter().enumerate() {
            let mut map = heatmap(values, *rows, *cols, *log);
            if i == 6 {
                map.x_range = (f64::NAN, f64::INFINITY);
                map.y_range = (1.0, 1.0);
            }
            let path = dir.path().join(format!("case{i}.png"));
            write_heatmap_png(&path, &map, None).unwrap();
            let panel = HeatPanel::new(&map).unwrap();
            let img = decode(&path);
            assert_eq!(
                (img.width() as i64, img.height() as i64),
                (panel.width, panel.height)
            );
        }
        no_temp_files_left(dir.path());
    }

    #[test]
    fn log_heatmap_marks_zero_cells() {
        let values = vec![0.0, 1.0, 10.0, f64::NAN];
        let map = heatmap(&values, 2, 2, true);
        let panel = HeatPanel::new(&map).unwrap();
        assert_eq!(panel.cell_colour(0.0), ZERO_COLOUR);
        assert_eq!(panel.cell_colour(-5.0), ZERO_COLOUR);
        assert_eq!(panel.cell_colour(f64::NAN), NAN_COLOUR);
        assert_eq!(panel.cell_colour(1.0), colormap(0.0));
        assert_eq!(panel.cell_colour(10.0), colormap(1.0));
        assert_eq!(panel.swatches.len(), 2);
        let mut c = Canvas::new(panel.width as usize, panel.height as usize).unwrap();
        panel.draw(&mut c, 0, 0);
        assert_eq!(
            c.get((panel.ml + 2) as usize, (panel.mt + 2) as usize),
            ZERO_COLOUR
        );
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
        let err = write_heatmap_png(&path, &heatmap(&values, 2, 2, false), None).unwrap_err();
        assert!(format!("{err:#}").contains("x.png"), "{err:#}");
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
        ];
        for (i, plot) in plots.iter().enumerate() {
            let path = dir.path().join(format!("plot{i}.png"));
            write_line_plot_png(&path, plot).unwrap();
            let img = decode(&path);
            assert_eq!(
                (img.width() as i64, img.height() as i64),
                (LINE_PLOT_WIDTH, LINE_PLOT_HEIGHT)
            );
        }
        no_temp_files_left(dir.path());
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

        let gray: Vec<f32> = (0..2 * 6 * 5).map(|i| i as f32 / 59.0).collect();
        let path = dir.path().join("gray.png");
        write_image_grid_png(&path, &gray, 2, 1, 6, 5, 8, 1).unwrap();
        let img = decode(&path);
        assert_eq!((img.width(), img.height()), (12, 6));
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
    fn text_and_clipping_are_safe() {
        let mut c = Canvas::new(40, 20).unwrap();
        c.text(-100, -100, "outside", 2, BLACK);
        c.text(0, 0, "ünïcødé σ ☃", 1, BLACK);
        c.text_up(5, 1000, "very long rotated text", 1, BLACK);
        let r = Rect::new(0, 0, 40, 20);
        c.line((-1e9, -1e9), (1e9, 1e9), 2, BLACK, r);
        c.line((f64::NAN, 0.0), (10.0, 10.0), 2, BLACK, r);
        c.line((5.0, 5.0), (5.0, 5.0), 1, BLACK, r);
        assert_eq!(fit_text("abcdefgh", 48, 1), "abcd..");
        assert_eq!(fit_text("abc", 48, 1), "abc");
        assert_eq!(fit_text("abcdef", 8, 1), "a");
        assert_eq!(glyph('A'), BASIC_FONTS.get('A').unwrap());
        assert_eq!(glyph('☃'), BASIC_FONTS.get('?').unwrap());
    }
}
