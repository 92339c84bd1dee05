//! The built-in demo data: one anti-aliased disk, square or bar per image on a black canvas.
//!
//! Each image `i` draws from ChaCha8 stream `i` of the seed:
//! - its class, uniformly: 0 = disk, 1 = square, 2 = bar ([`SHAPE_CLASSES`]);
//! - its geometry, with `s = min(H, W)` in pixels: a **disk** of radius `U[0.12, 0.3]·s`; an
//!   axis-aligned **square** of side `U[0.24, 0.6]·s`; a **bar**, a thin rectangle of length
//!   `U[0.6, 0.9]·s` and thickness `U[0.1, 0.18]·s` (at least 1.5 px), rotated by an angle
//!   uniform in `[0, π)` (any orientation). The centre is uniform over the positions that
//!   keep the shape inside the canvas;
//! - its intensity `I ~ U[0.5, 1]` and colour: one channel is `I`; with C > 1 channels the
//!   colour is `I · c / max(c)` with `c_j ~ U[0.2, 1]` (so the brightest channel is `I`).
//!
//! A pixel `(row y, column x)` covers `[x, x+1) × [y, y+1)` and holds
//! `round(255 · I · c_j · coverage)`, where the coverage is the fraction of the pixel inside
//! the shape: exact for the axis-aligned squares (a product of two interval overlaps); for
//! disks and bars 0 or 1 where the signed distance from the pixel centre to the outline
//! exceeds `√2/2`, and otherwise estimated from 16 supersamples on a rank-1 lattice (the
//! points `((i + ½)/16, ((5i mod 16) + ½)/16)`, which have 16 distinct abscissae and 16
//! distinct ordinates, so even nearly axis-aligned edges get 1/16 steps). Edge pixels take
//! intermediate values. The background is 0. Stored as u8.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{check_shape, stream_rng};
use crate::dataset::{Dataset, Pixels};
use crate::error::DatasetError;

/// Class names, index = label.
pub const SHAPE_CLASSES: [&str; 3] = ["disk", "square", "bar"];

/// Name of the parameters' context in error messages.
const CONTEXT: &str = "shapes";

/// Supersamples per edge pixel (rank-1 lattice with generator `(1, LATTICE_STEP)`).
const SUPERSAMPLES: usize = 16;
/// Generator of the supersampling lattice: coprime to [`SUPERSAMPLES`].
const LATTICE_STEP: usize = 5;

/// The shapes dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapesConfig {
    /// Number of images. Default 10 000.
    pub n: usize,
    /// `[C, H, W]`: C ≥ 1 (1 = grey, 3 = RGB), H, W ≥ 4. Default `[3, 32, 32]`.
    pub size: [usize; 3],
    /// Seed. Default 0.
    pub seed: u64,
}

impl Default for ShapesConfig {
    fn default() -> Self {
        Self {
            n: 10_000,
            size: [3, 32, 32],
            seed: 0,
        }
    }
}

impl ShapesConfig {
    /// Checks every parameter; errors name the one at fault.
    pub fn validate(&self) -> Result<(), DatasetError> {
        check_shape(CONTEXT, self.size, self.n)?;
        let [c, h, w] = self.size;
        if h < 4 || w < 4 {
            return Err(DatasetError::param(
                CONTEXT,
                "size",
                format!("{c}x{h}x{w}"),
                "a canvas of at least 4x4 pixels",
            ));
        }
        Ok(())
    }

    /// `n` images, u8, labelled 0 = disk, 1 = square, 2 = bar, with [`SHAPE_CLASSES`] as class
    /// names. Generated in parallel; image `i` depends only on the seed and `i`.
    pub fn generate(&self) -> Result<Dataset, DatasetError> {
        self.validate()?;
        let [c, h, w] = self.size;
        let len = c * h * w;
        let mut pixels = vec![0u8; self.n * len];
        let mut labels = vec![0u32; self.n];
        pixels
            .par_chunks_mut(len)
            .zip(labels.par_iter_mut())
            .enumerate()
            .for_each_init(
                || vec![0f32; h * w],
                |coverage, (i, (image, label))| {
                    let mut rng = stream_rng(self.seed, i as u64);
                    let (class, shape) = draw_shape(&mut rng, h, w);
                    *label = class;
                    let intensity = uniform(&mut rng, 0.5, 1.0);
                    let colour = draw_colour(&mut rng, c);
                    coverage.iter_mut().for_each(|v| *v = 0.0);
                    render(&shape, h, w, coverage);
                    for (plane, cj) in image.chunks_mut(h * w).zip(&colour) {
                        let level = (255.0 * intensity * cj) as f32;
                        for (p, cov) in plane.iter_mut().zip(coverage.iter()) {
                            *p = (level * cov).round().clamp(0.0, 255.0) as u8;
                        }
                    }
                },
            );
        let names = SHAPE_CLASSES.iter().map(|s| s.to_string()).collect();
        Ok(Dataset::new(
            format!("shapes({c}x{h}x{w})"),
            self.size,
            Pixels::U8(pixels),
            Some(labels),
        )?
        .with_class_names(names))
    }
}

/// A uniform draw in `[lo, hi)` (`lo` when the range is empty).
fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        lo + (hi - lo) * rng.random::<f64>()
    } else {
        lo
    }
}

/// A centre coordinate keeping a half-extent `e` inside `[0, len]`.
fn centre(rng: &mut ChaCha8Rng, e: f64, len: usize) -> f64 {
    let len = len as f64;
    if 2.0 * e < len {
        uniform(rng, e, len - e)
    } else {
        len / 2.0
    }
}

/// The colour of one image: 1 for one channel, else `c / max(c)`, `c_j ~ U[0.2, 1]`.
fn draw_colour(rng: &mut ChaCha8Rng, channels: usize) -> Vec<f64> {
    if channels == 1 {
        return vec![1.0];
    }
    let c: Vec<f64> = (0..channels).map(|_| uniform(rng, 0.2, 1.0)).collect();
    let max = c.iter().cloned().fold(0.0, f64::max);
    c.iter().map(|v| v / max).collect()
}

/// A shape in pixel coordinates (x right, y down).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// A disk.
    Disk { cx: f64, cy: f64, r: f64 },
    /// A rectangle of half-sides `hx, hy` along its own axes, rotated by `angle`.
    Rect {
        cx: f64,
        cy: f64,
        hx: f64,
        hy: f64,
        cos: f64,
        sin: f64,
    },
}

impl Shape {
    /// Signed Euclidean distance to the outline (negative inside); 1-Lipschitz.
    fn sdf(&self, x: f64, y: f64) -> f64 {
        match *self {
            Shape::Disk { cx, cy, r } => ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() - r,
            Shape::Rect {
                cx,
                cy,
                hx,
                hy,
                cos,
                sin,
            } => {
                let (dx, dy) = (x - cx, y - cy);
                let u = (dx * cos + dy * sin).abs() - hx;
                let v = (-dx * sin + dy * cos).abs() - hy;
                let outside = (u.max(0.0).powi(2) + v.max(0.0).powi(2)).sqrt();
                outside + u.max(v).min(0.0)
            }
        }
    }

    /// The exact coverage of the pixel `[x, x+1) × [y, y+1)` where it is cheap: for
    /// axis-aligned rectangles.
    fn exact_coverage(&self, x: f64, y: f64) -> Option<f64> {
        match *self {
            Shape::Rect {
                cx,
                cy,
                hx,
                hy,
                cos,
                sin,
            } if sin == 0.0 && cos.abs() == 1.0 => {
                let overlap =
                    |p: f64, c: f64, e: f64| ((p + 1.0).min(c + e) - p.max(c - e)).clamp(0.0, 1.0);
                Some(overlap(x, cx, hx) * overlap(y, cy, hy))
            }
            _ => None,
        }
    }

    /// Half-extents of the axis-aligned bounding box, and its centre.
    fn bounds(&self) -> (f64, f64, f64, f64) {
        match *self {
            Shape::Disk { cx, cy, r } => (cx, cy, r, r),
            Shape::Rect {
                cx,
                cy,
                hx,
                hy,
                cos,
                sin,
            } => (
                cx,
                cy,
                hx * cos.abs() + hy * sin.abs(),
                hx * sin.abs() + hy * cos.abs(),
            ),
        }
    }
}

/// Draws the class and geometry of one image on an `h × w` canvas.
fn draw_shape(rng: &mut ChaCha8Rng, h: usize, w: usize) -> (u32, Shape) {
    let s = h.min(w) as f64;
    let class = rng.random_range(0..3u32);
    let shape = match class {
        0 => {
            let r = uniform(rng, 0.12 * s, 0.3 * s);
            Shape::Disk {
                cx: centre(rng, r, w),
                cy: centre(rng, r, h),
                r,
            }
        }
        1 => {
            let a = uniform(rng, 0.12 * s, 0.3 * s);
            Shape::Rect {
                cx: centre(rng, a, w),
                cy: centre(rng, a, h),
                hx: a,
                hy: a,
                cos: 1.0,
                sin: 0.0,
            }
        }
        _ => {
            let hx = uniform(rng, 0.3 * s, 0.45 * s);
            let hy = uniform(rng, 0.05 * s, 0.09 * s).max(0.75);
            let angle = uniform(rng, 0.0, PI);
            let (sin, cos) = angle.sin_cos();
            let ex = hx * cos.abs() + hy * sin.abs();
            let ey = hx * sin.abs() + hy * cos.abs();
            Shape::Rect {
                cx: centre(rng, ex, w),
                cy: centre(rng, ey, h),
                hx,
                hy,
                cos,
                sin,
            }
        }
    };
    (class, shape)
}

/// Writes the coverage of `shape` into `coverage` (h × w, zeros outside the bounding box).
fn render(shape: &Shape, h: usize, w: usize, coverage: &mut [f32]) {
    let (cx, cy, ex, ey) = shape.bounds();
    let x0 = (cx - ex).floor().max(0.0) as usize;
    let x1 = ((cx + ex).ceil().max(0.0) as usize).min(w);
    let y0 = (cy - ey).floor().max(0.0) as usize;
    let y1 = ((cy + ey).ceil().max(0.0) as usize).min(h);
    let step = 1.0 / SUPERSAMPLES as f64;
    for y in y0..y1 {
        for x in x0..x1 {
            if let Some(c) = shape.exact_coverage(x as f64, y as f64) {
                coverage[y * w + x] = c as f32;
                continue;
            }
            let d = shape.sdf(x as f64 + 0.5, y as f64 + 0.5);
            coverage[y * w + x] = if d >= FRAC_1_SQRT_2 {
                0.0
            } else if d <= -FRAC_1_SQRT_2 {
                1.0
            } else {
                let inside = (0..SUPERSAMPLES)
                    .filter(|&i| {
                        let px = x as f64 + (i as f64 + 0.5) * step;
                        let py =
                            y as f64 + (((i * LATTICE_STEP) % SUPERSAMPLES) as f64 + 0.5) * step;
                        shape.sdf(px, py) < 0.0
                    })
                    .count();
                inside as f32 / SUPERSAMPLES as f32
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(shape: Shape, h: usize, w: usize) -> f64 {
        let mut coverage = vec![0f32; h * w];
        render(&shape, h, w, &mut coverage);
        coverage.iter().map(|&v| v as f64).sum()
    }

    #[test]
    fn rendered_areas_match_the_geometry() {
        // 16 supersamples in each of ~2πr edge pixels: the error is a small fraction of the
        // area.
        let disk = Shape::Disk {
            cx: 16.3,
            cy: 15.7,
            r: 6.0,
        };
        let a = area(disk, 32, 32);
        assert!((a / (PI * 36.0) - 1.0).abs() < 0.02, "disk area {a}");
        let (sin, cos) = 0.5f64.sin_cos();
        let bar = Shape::Rect {
            cx: 15.2,
            cy: 16.9,
            hx: 10.0,
            hy: 1.5,
            cos,
            sin,
        };
        let a = area(bar, 32, 32);
        assert!((a / 60.0 - 1.0).abs() < 0.03, "bar area {a}");
        // Axis-aligned squares are exact.
        let square = Shape::Rect {
            cx: 10.3,
            cy: 20.85,
            hx: 4.2,
            hy: 4.2,
            cos: 1.0,
            sin: 0.0,
        };
        assert!((area(square, 32, 32) - 8.4 * 8.4).abs() < 1e-4);
    }

    #[test]
    fn sdf_is_negative_inside_and_zero_on_the_outline() {
        let r = Shape::Rect {
            cx: 0.0,
            cy: 0.0,
            hx: 2.0,
            hy: 1.0,
            cos: 1.0,
            sin: 0.0,
        };
        assert_eq!(r.sdf(0.0, 0.0), -1.0);
        assert_eq!(r.sdf(2.0, 0.5), 0.0);
        assert_eq!(r.sdf(5.0, 5.0), 5.0);
    }

    #[test]
    fn shapes_stay_on_the_canvas() {
        for (h, w) in [(4, 4), (32, 32), (16, 40)] {
            let mut rng = stream_rng(3, 0);
            for _ in 0..2000 {
                let (_, shape) = draw_shape(&mut rng, h, w);
                let (cx, cy, ex, ey) = shape.bounds();
                if 2.0 * ex < w as f64 {
                    assert!(cx - ex >= -1e-9 && cx + ex <= w as f64 + 1e-9);
                }
                if 2.0 * ey < h as f64 {
                    assert!(cy - ey >= -1e-9 && cy + ey <= h as f64 + 1e-9);
                }
            }
        }
    }
}
