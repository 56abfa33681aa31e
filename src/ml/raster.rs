//! The one rasterizer shared by training and inference: it turns a drawing's strokes into a
//! square grayscale image, so that the model sees the same pixels while it learns and while it
//! serves. Any change to what this module draws must bump [`PREPROCESSING_VERSION`], which
//! every model records in its manifest; a model trained on other pixels is then refused.
//!
//! The drawing is normalised to its bounding box, keeping its aspect ratio, centered with a
//! margin; strokes are anti-aliased white polylines on black, as wide as a fixed fraction of
//! the image, with round caps and joins, so a single point still leaves a dot.

use tiny_skia::{FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Stroke, Transform};

/// Version of the pixels this module produces; recorded in every model manifest.
pub const PREPROCESSING_VERSION: u32 = 1;

/// Smallest accepted image side, in pixels.
pub const MIN_SIZE: u32 = 8;

/// Largest accepted image side, in pixels (a 256×256 canvas is already far above what a
/// real-time CNN needs).
pub const MAX_SIZE: u32 = 256;

/// Empty border on each side, as a fraction of the image side (2.8 px at 28, 6.4 px at 64).
const MARGIN_FRACTION: f32 = 0.1;

/// Stroke width as a fraction of the image side (about 2.2 px at 28, 5 px at 64), so a
/// model sees the same shapes at any size.
const STROKE_WIDTH_FRACTION: f32 = 0.08;

/// Thinnest stroke ever drawn, in pixels, so small images still get a visible line.
const MIN_STROKE_WIDTH: f32 = 1.0;

/// Shortest segment drawn, in output pixels; closer points are skipped (they change no
/// pixel visibly, and raw Quick, Draw! strokes have many).
const MIN_SEGMENT: f32 = 0.5;

/// Why a drawing could not be rasterized.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RasterError {
    /// The requested side is outside [`MIN_SIZE`]..=[`MAX_SIZE`].
    #[error("image size {0} is outside {MIN_SIZE}..={MAX_SIZE}")]
    SizeOutOfRange(u32),
    /// There is not a single point to draw.
    #[error("the drawing has no points")]
    NoPoints,
    /// A coordinate is NaN or infinite.
    #[error("the drawing has a coordinate that is not a finite number")]
    NonFinite,
}

/// Rasterizes `strokes` (x, y in any coordinate space, y down) into `size * size` values in
/// `0.0..=1.0`, row-major, 1.0 where the ink is.
pub fn rasterize(strokes: &[Vec<[f32; 2]>], size: u32) -> Result<Vec<f32>, RasterError> {
    let mut out = vec![0.0; pixel_count(size)?];
    rasterize_into(strokes, size, &mut out)?;
    Ok(out)
}

/// Same as [`rasterize`], writing into `out` (which must hold `size * size` values) so that a
/// training batch can be filled without one allocation per drawing.
///
/// # Panics
/// When `out.len() != size * size`: that is a programming error, not bad input.
pub fn rasterize_into(
    strokes: &[Vec<[f32; 2]>],
    size: u32,
    out: &mut [f32],
) -> Result<(), RasterError> {
    let pixmap = draw(strokes, size)?;
    assert_eq!(out.len(), pixel_count(size)?, "output buffer size");
    for (value, pixel) in out.iter_mut().zip(pixmap.pixels()) {
        *value = f32::from(pixel.alpha()) / 255.0;
    }
    Ok(())
}

/// Rasterizes like [`rasterize`] into 8-bit grayscale (0 black, 255 ink), row-major, ready to be
/// encoded as a PNG for previews and datasets.
pub fn rasterize_gray8(strokes: &[Vec<[f32; 2]>], size: u32) -> Result<Vec<u8>, RasterError> {
    let pixmap = draw(strokes, size)?;
    Ok(pixmap.pixels().iter().map(|p| p.alpha()).collect())
}

/// Number of values in a `size * size` image, or the size error.
fn pixel_count(size: u32) -> Result<usize, RasterError> {
    if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
        return Err(RasterError::SizeOutOfRange(size));
    }
    Ok(size as usize * size as usize)
}

/// Draws the normalised strokes in white (full alpha) on a transparent pixmap; the alpha
/// channel is then the ink coverage.
fn draw(strokes: &[Vec<[f32; 2]>], size: u32) -> Result<Pixmap, RasterError> {
    pixel_count(size)?;
    let bounds = Bounds::of(strokes)?;
    let side = size as f32;
    let width = (side * STROKE_WIDTH_FRACTION).max(MIN_STROKE_WIDTH);
    // The strokes' outer edges, not their centre lines, stop at the margin.
    let inner = side * (1.0 - 2.0 * MARGIN_FRACTION) - width;
    let extent = bounds.width().max(bounds.height());
    // A drawing that is a single point (extent 0) is drawn as a dot in the middle.
    let scale = if extent > 0.0 { inner / extent } else { 0.0 };
    let (cx, cy) = bounds.center();
    let map = |[x, y]: [f32; 2]| ((x - cx) * scale + side / 2.0, (y - cy) * scale + side / 2.0);

    let mut lines = PathBuilder::new();
    let mut dots = PathBuilder::new();
    for stroke in strokes {
        let Some(&first) = stroke.first() else {
            continue;
        };
        let (x0, y0) = map(first);
        // Points closer than MIN_SEGMENT to the last drawn one add work, not pixels: skip
        // them, but always end the stroke at its true last point.
        let mut last = (x0, y0);
        let mut zero_length = true;
        for (i, &point) in stroke.iter().enumerate().skip(1) {
            let (x, y) = map(point);
            let far = (x - last.0).powi(2) + (y - last.1).powi(2) >= MIN_SEGMENT * MIN_SEGMENT;
            let is_last = i == stroke.len() - 1;
            if !(far || is_last && (x, y) != last) {
                continue;
            }
            if zero_length {
                lines.move_to(x0, y0);
                zero_length = false;
            }
            lines.line_to(x, y);
            last = (x, y);
        }
        if zero_length {
            dots.push_circle(x0, y0, width / 2.0);
        }
    }

    // `Pixmap::new` only fails for a zero or huge size, which `pixel_count` has ruled out.
    let mut pixmap = Pixmap::new(size, size).expect("size checked to be within 8..=256");
    let mut paint = Paint::default();
    paint.set_color_rgba8(255, 255, 255, 255);
    paint.anti_alias = true;
    let stroke = Stroke {
        width,
        line_cap: LineCap::Round,
        line_join: LineJoin::Round,
        ..Stroke::default()
    };
    if let Some(path) = lines.finish() {
        pixmap.stroke_path(&path, &paint, &stroke, Transform::identity(), None);
    }
    if let Some(path) = dots.finish() {
        pixmap.fill_path(
            &path,
            &paint,
            FillRule::Winding,
            Transform::identity(),
            None,
        );
    }
    Ok(pixmap)
}

/// The bounding box of all points of a drawing.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    min: [f32; 2],
    max: [f32; 2],
}

impl Bounds {
    /// Bounds of every point, refusing drawings with no point or a non-finite coordinate.
    fn of(strokes: &[Vec<[f32; 2]>]) -> Result<Self, RasterError> {
        let mut points = strokes.iter().flatten().peekable();
        if points.peek().is_none() {
            return Err(RasterError::NoPoints);
        }
        let mut bounds = Bounds {
            min: [f32::INFINITY; 2],
            max: [f32::NEG_INFINITY; 2],
        };
        for &[x, y] in points {
            if !x.is_finite() || !y.is_finite() {
                return Err(RasterError::NonFinite);
            }
            bounds.min = [bounds.min[0].min(x), bounds.min[1].min(y)];
            bounds.max = [bounds.max[0].max(x), bounds.max[1].max(y)];
        }
        Ok(bounds)
    }

    fn width(&self) -> f32 {
        self.max[0] - self.min[0]
    }

    fn height(&self) -> f32 {
        self.max[1] - self.min[1]
    }

    fn center(&self) -> (f32, f32) {
        (
            (self.min[0] + self.max[0]) / 2.0,
            (self.min[1] + self.max[1]) / 2.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A circle of radius `r` around (`cx`, `cy`) as one closed stroke.
    fn circle(cx: f32, cy: f32, r: f32) -> Vec<Vec<[f32; 2]>> {
        let points = (0..=64)
            .map(|i| {
                let a = i as f32 / 64.0 * std::f32::consts::TAU;
                [cx + r * a.cos(), cy + r * a.sin()]
            })
            .collect();
        vec![points]
    }

    /// Ink-weighted centre of an image, in pixels.
    fn centroid(image: &[f32], size: usize) -> (f32, f32) {
        let (mut sx, mut sy, mut total) = (0.0, 0.0, 0.0);
        for (i, v) in image.iter().enumerate() {
            sx += v * ((i % size) as f32 + 0.5);
            sy += v * ((i / size) as f32 + 0.5);
            total += v;
        }
        (sx / total, sy / total)
    }

    #[test]
    fn output_has_size_squared_values_between_zero_and_one_for_28_and_64() {
        for size in [28, 64] {
            let image = rasterize(&circle(100.0, 40.0, 30.0), size).unwrap();
            assert_eq!(image.len(), (size * size) as usize);
            assert!(image.iter().all(|v| (0.0..=1.0).contains(v)));
            assert!(image.iter().any(|&v| v > 0.99), "some pixel is full ink");
            assert!(image.contains(&0.0), "some pixel is background");
        }
    }

    #[test]
    fn a_circle_far_off_the_origin_is_drawn_inside_the_image_and_centered() {
        let size = 28;
        let image = rasterize(&circle(-5000.0, 9000.0, 3.0), size).unwrap();
        let n = size as usize;
        let (x, y) = centroid(&image, n);
        assert!(
            (x - 14.0).abs() < 0.5 && (y - 14.0).abs() < 0.5,
            "centroid ({x}, {y})"
        );
        // The margin stays empty: nothing in the outer two pixels.
        for (i, v) in image.iter().enumerate() {
            let (col, row) = (i % n, i / n);
            if col < 2 || row < 2 || col >= n - 2 || row >= n - 2 {
                assert_eq!(*v, 0.0, "ink in the margin at ({col}, {row})");
            }
        }
        // The middle of the circle is empty: it is a ring, not a disc.
        assert_eq!(image[14 * n + 14], 0.0);
    }

    #[test]
    fn a_single_point_and_a_zero_length_stroke_still_leave_a_centered_dot() {
        let strokes = [
            vec![vec![[3.0, 4.0]]],
            vec![vec![[3.0, 4.0], [3.0, 4.0]]],
            vec![vec![[3.0, 4.0], [3.0, 4.0]], vec![[3.0, 4.0]]],
        ];
        for strokes in strokes {
            let image = rasterize(&strokes, 28).unwrap();
            let ink: f32 = image.iter().sum();
            assert!(ink > 1.0, "a dot has ink, got {ink}");
            let (x, y) = centroid(&image, 28);
            assert!((x - 14.0).abs() < 0.5 && (y - 14.0).abs() < 0.5);
        }
    }

    #[test]
    fn a_horizontal_line_keeps_its_aspect_ratio_and_sits_in_the_middle_row() {
        let image = rasterize(&[vec![[0.0, 10.0], [100.0, 10.0]]], 28).unwrap();
        let row_ink = |row: usize| image[row * 28..(row + 1) * 28].iter().sum::<f32>();
        assert!(row_ink(13) + row_ink(14) > 30.0);
        assert_eq!(row_ink(5), 0.0);
        assert_eq!(row_ink(22), 0.0);
    }

    #[test]
    fn a_tiny_stroke_next_to_a_long_one_still_leaves_a_dot() {
        let dot_only = vec![vec![[0.0, 0.0], [100.0, 0.0]]];
        let mut with_dot = dot_only.clone();
        with_dot.push(vec![[50.0, 30.0], [50.01, 30.0], [50.0, 30.01]]);
        let ink = |s: &[Vec<[f32; 2]>]| rasterize(s, 28).unwrap().iter().sum::<f32>();
        let image = rasterize(&with_dot, 28).unwrap();
        assert!(ink(&with_dot) > ink(&dot_only) + 1.0);
        assert!(image.iter().any(|&v| v > 0.5), "the dot is visible");
    }

    #[test]
    fn sizes_outside_the_range_and_empty_or_non_finite_drawings_are_refused() {
        let line = vec![vec![[0.0, 0.0], [1.0, 1.0]]];
        assert_eq!(rasterize(&line, 7), Err(RasterError::SizeOutOfRange(7)));
        assert_eq!(rasterize(&line, 257), Err(RasterError::SizeOutOfRange(257)));
        assert!(rasterize(&line, 8).is_ok() && rasterize(&line, 256).is_ok());
        assert_eq!(rasterize(&[], 28), Err(RasterError::NoPoints));
        assert_eq!(rasterize(&[vec![]], 28), Err(RasterError::NoPoints));
        let nan = vec![vec![[0.0, f32::NAN]]];
        assert_eq!(rasterize(&nan, 28), Err(RasterError::NonFinite));
    }

    #[test]
    fn the_gray8_image_matches_the_float_image() {
        let strokes = circle(0.0, 0.0, 1.0);
        let float = rasterize(&strokes, 64).unwrap();
        let gray = rasterize_gray8(&strokes, 64).unwrap();
        assert_eq!(gray.len(), 64 * 64);
        for (f, g) in float.iter().zip(&gray) {
            assert_eq!((f * 255.0).round() as u8, *g);
        }
    }
}
