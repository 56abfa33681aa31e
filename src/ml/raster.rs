//! The one rasterizer shared by training and inference: it turns a drawing's strokes into a
//! square grayscale image, so that the model sees the same pixels while it learns and while it
//! serves. Any change to what this module draws must bump [`PREPROCESSING_VERSION`], which
//! every model records in its manifest; a model trained on other pixels is then refused.
//!
//! The drawing is normalised to its bounding box, keeping its aspect ratio, centered with a
//! margin; strokes are anti-aliased white polylines on black, as wide as a fraction of the
//! image, with round caps and joins, so a single point still leaves a dot.
//!
//! Within that version a model may ask for another [`RasterStyle`] (recorded in its training
//! configuration, so in its manifest): a thinner stroke, or a second channel that carries the
//! drawing order. A configuration without a style means [`RasterStyle::default`], the pixels
//! every model was trained on before styles existed.

use serde::{Deserialize, Serialize};
use tiny_skia::{
    Color, FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Stroke, Transform,
};

/// Version of the pixels this module produces; recorded in every model manifest.
pub const PREPROCESSING_VERSION: u32 = 1;

/// Smallest accepted image side, in pixels.
pub const MIN_SIZE: u32 = 8;

/// Largest accepted image side, in pixels (a 256×256 canvas is already far above what a
/// real-time CNN needs).
pub const MAX_SIZE: u32 = 256;

/// Empty border on each side, as a fraction of the image side (2.8 px at 28, 6.4 px at 64).
const MARGIN_FRACTION: f32 = 0.1;

/// Default stroke width as a fraction of the image side (about 2.2 px at 28, 5 px at 64), so
/// a model sees the same shapes at any size.
pub const STROKE_WIDTH_FRACTION: f32 = 0.08;

/// Widest stroke a style may ask for, as a fraction of the image side.
const MAX_STROKE_WIDTH_FRACTION: f32 = 0.25;

/// Levels of the order channel: the drawing is cut into this many equal shares of its ink
/// length, each drawn at its own intensity (a handful of paths instead of one per segment).
const ORDER_LEVELS: usize = 16;

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

/// How a model's images are drawn, on top of what [`PREPROCESSING_VERSION`] fixes (the
/// normalisation, the margin, anti-aliased round strokes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RasterStyle {
    /// Stroke width as a fraction of the image side (at least [`MIN_STROKE_WIDTH`] pixels).
    pub stroke_width_fraction: f32,
    /// Whether the image has a second channel, after the ink, that carries the drawing order:
    /// where the ink is, the share of the drawing's ink length drawn up to there (in
    /// [`ORDER_LEVELS`] steps, the first above zero), so that a zigzag, a squiggle and a
    /// polygon drawn corner after corner differ in more than their outline. Each segment
    /// takes the level of its middle: fine for raw drawings, which are densely sampled; a
    /// long segment of a simplified drawing gets one level.
    #[serde(default)]
    pub order_channel: bool,
}

impl Default for RasterStyle {
    /// The pixels of every model trained before styles existed.
    fn default() -> Self {
        RasterStyle {
            stroke_width_fraction: STROKE_WIDTH_FRACTION,
            order_channel: false,
        }
    }
}

impl RasterStyle {
    /// Whether this is the default (so configurations need not spell it out).
    pub fn is_default(&self) -> bool {
        *self == RasterStyle::default()
    }

    /// Image channels: 1 (ink), or 2 with the order channel.
    pub fn channels(&self) -> usize {
        1 + usize::from(self.order_channel)
    }

    /// Why the style cannot be drawn, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        let w = self.stroke_width_fraction;
        if !(w > 0.0 && w <= MAX_STROKE_WIDTH_FRACTION) {
            return Err(format!(
                "stroke_width_fraction must be in (0, {MAX_STROKE_WIDTH_FRACTION}]"
            ));
        }
        Ok(())
    }
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
    rasterize_styled_into(strokes, size, &RasterStyle::default(), out)
}

/// Rasterizes in `style` into `out`, which must hold `style.channels() * size * size` values:
/// the ink image, then (with the order channel) the order image, each row-major.
///
/// # Panics
/// When `out` has another length: that is a programming error, not bad input.
pub fn rasterize_styled_into(
    strokes: &[Vec<[f32; 2]>],
    size: u32,
    style: &RasterStyle,
    out: &mut [f32],
) -> Result<(), RasterError> {
    let pixels = pixel_count(size)?;
    assert_eq!(out.len(), style.channels() * pixels, "output buffer size");
    let polylines = Polylines::of(strokes, size, style)?;
    let (ink, order) = out.split_at_mut(pixels);
    for (value, pixel) in ink.iter_mut().zip(polylines.ink(size).pixels()) {
        *value = f32::from(pixel.alpha()) / 255.0;
    }
    if style.order_channel {
        for (value, pixel) in order.iter_mut().zip(polylines.order(size).pixels()) {
            *value = f32::from(pixel.red()) / 255.0;
        }
    }
    Ok(())
}

/// Rasterizes like [`rasterize`] into 8-bit grayscale (0 black, 255 ink), row-major, ready to be
/// encoded as a PNG for previews and datasets.
pub fn rasterize_gray8(strokes: &[Vec<[f32; 2]>], size: u32) -> Result<Vec<u8>, RasterError> {
    pixel_count(size)?;
    let pixmap = Polylines::of(strokes, size, &RasterStyle::default())?.ink(size);
    Ok(pixmap.pixels().iter().map(|p| p.alpha()).collect())
}

/// Number of values in a `size * size` image, or the size error.
fn pixel_count(size: u32) -> Result<usize, RasterError> {
    if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
        return Err(RasterError::SizeOutOfRange(size));
    }
    Ok(size as usize * size as usize)
}

/// A drawing mapped into the image: each stroke's points in pixels, with the points closer
/// than [`MIN_SEGMENT`] to the last kept one left out (they add work, not pixels); a stroke
/// of one kept point is a dot.
struct Polylines {
    /// The kept points of each non-empty stroke.
    strokes: Vec<Vec<(f32, f32)>>,
    /// Stroke width, in pixels.
    width: f32,
}

impl Polylines {
    /// Normalises `strokes` for a `size` image drawn in `style`.
    fn of(strokes: &[Vec<[f32; 2]>], size: u32, style: &RasterStyle) -> Result<Self, RasterError> {
        let bounds = Bounds::of(strokes)?;
        let side = size as f32;
        let width = (side * style.stroke_width_fraction).max(MIN_STROKE_WIDTH);
        // The strokes' outer edges, not their centre lines, stop at the margin.
        let inner = side * (1.0 - 2.0 * MARGIN_FRACTION) - width;
        let extent = bounds.width().max(bounds.height());
        // A drawing that is a single point (extent 0) is drawn as a dot in the middle.
        let scale = if extent > 0.0 { inner / extent } else { 0.0 };
        let (cx, cy) = bounds.center();
        let map = |[x, y]: [f32; 2]| ((x - cx) * scale + side / 2.0, (y - cy) * scale + side / 2.0);
        let mut kept = Vec::with_capacity(strokes.len());
        for stroke in strokes {
            let Some(&first) = stroke.first() else {
                continue;
            };
            let mut points = vec![map(first)];
            for (i, &point) in stroke.iter().enumerate().skip(1) {
                let (x, y) = map(point);
                // `points` is never empty: it starts with the first point.
                let last = *points.last().expect("the first point");
                let far = (x - last.0).powi(2) + (y - last.1).powi(2) >= MIN_SEGMENT * MIN_SEGMENT;
                // Always end the stroke at its true last point.
                let is_last = i == stroke.len() - 1;
                if far || is_last && (x, y) != last {
                    points.push((x, y));
                }
            }
            kept.push(points);
        }
        Ok(Polylines {
            strokes: kept,
            width,
        })
    }

    /// The ink: white (full alpha) on a transparent pixmap, so the alpha channel is the ink
    /// coverage.
    fn ink(&self, size: u32) -> Pixmap {
        let mut lines = PathBuilder::new();
        let mut dots = PathBuilder::new();
        for points in &self.strokes {
            let &(x0, y0) = &points[0];
            if points.len() == 1 {
                dots.push_circle(x0, y0, self.width / 2.0);
                continue;
            }
            lines.move_to(x0, y0);
            for &(x, y) in &points[1..] {
                lines.line_to(x, y);
            }
        }
        let mut pixmap = blank(size);
        self.paint(&mut pixmap, lines, dots, 1.0);
        pixmap
    }

    /// The drawing order: on opaque black, each of [`ORDER_LEVELS`] equal shares of the ink
    /// length in gray as bright as its rank (later shares on top), so the red channel is
    /// the order where the ink is.
    fn order(&self, size: u32) -> Pixmap {
        let length: f32 = self.strokes.iter().map(|points| path_length(points)).sum();
        let level = |drawn: f32| match length > 0.0 {
            true => ((drawn / length * ORDER_LEVELS as f32) as usize).min(ORDER_LEVELS - 1),
            false => 0,
        };
        let mut lines: Vec<PathBuilder> = (0..ORDER_LEVELS).map(|_| PathBuilder::new()).collect();
        let mut dots: Vec<PathBuilder> = (0..ORDER_LEVELS).map(|_| PathBuilder::new()).collect();
        let mut drawn = 0.0;
        for points in &self.strokes {
            let &(x0, y0) = &points[0];
            if points.len() == 1 {
                dots[level(drawn)].push_circle(x0, y0, self.width / 2.0);
                continue;
            }
            // Each segment goes to the level of its middle; it continues that level's path
            // when the previous segment went there too.
            let mut previous = None;
            for pair in points.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let segment = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
                let k = level(drawn + segment / 2.0);
                if previous != Some(k) {
                    lines[k].move_to(a.0, a.1);
                }
                lines[k].line_to(b.0, b.1);
                previous = Some(k);
                drawn += segment;
            }
        }
        let mut pixmap = blank(size);
        pixmap.fill(Color::BLACK);
        for (k, (lines, dots)) in lines.into_iter().zip(dots).enumerate() {
            self.paint(
                &mut pixmap,
                lines,
                dots,
                (k + 1) as f32 / ORDER_LEVELS as f32,
            );
        }
        pixmap
    }

    /// Strokes `lines` and fills `dots` on `pixmap` in opaque gray `value` (0..=1).
    fn paint(&self, pixmap: &mut Pixmap, lines: PathBuilder, dots: PathBuilder, value: f32) {
        let mut paint = Paint::default();
        paint.set_color_rgba8(
            (value * 255.0).round() as u8,
            (value * 255.0).round() as u8,
            (value * 255.0).round() as u8,
            255,
        );
        paint.anti_alias = true;
        let stroke = Stroke {
            width: self.width,
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
    }
}

/// A transparent `size * size` pixmap.
fn blank(size: u32) -> Pixmap {
    // `Pixmap::new` only fails for a zero or huge size, which `pixel_count` has ruled out
    // before any drawing.
    Pixmap::new(size, size).expect("size checked to be within 8..=256")
}

/// Length of a polyline, in pixels.
fn path_length(points: &[(f32, f32)]) -> f32 {
    points
        .windows(2)
        .map(|p| ((p[1].0 - p[0].0).powi(2) + (p[1].1 - p[0].1).powi(2)).sqrt())
        .sum()
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

    /// The ink of `strokes` in `style` at 28 px, summed.
    fn ink(strokes: &[Vec<[f32; 2]>], style: &RasterStyle) -> f32 {
        let mut out = vec![0.0; style.channels() * 28 * 28];
        rasterize_styled_into(strokes, 28, style, &mut out).unwrap();
        out[..28 * 28].iter().sum()
    }

    #[test]
    fn a_thinner_style_draws_less_ink_and_the_default_style_is_the_plain_image() {
        let strokes = circle(0.0, 0.0, 10.0);
        let thin = RasterStyle {
            stroke_width_fraction: 0.035,
            ..RasterStyle::default()
        };
        assert!(ink(&strokes, &thin) < 0.6 * ink(&strokes, &RasterStyle::default()));
        let mut styled = vec![0.0; 28 * 28];
        rasterize_styled_into(&strokes, 28, &RasterStyle::default(), &mut styled).unwrap();
        assert_eq!(styled, rasterize(&strokes, 28).unwrap());
    }

    #[test]
    fn the_order_channel_rises_along_the_drawing_and_is_dark_off_the_ink() {
        let style = RasterStyle {
            order_channel: true,
            ..RasterStyle::default()
        };
        // Densely sampled, as raw drawings are: a segment takes the level of its middle.
        let forward = vec![(0..=50).map(|i| [2.0 * i as f32, 0.0]).collect::<Vec<_>>()];
        let backward = vec![forward[0].iter().rev().copied().collect::<Vec<_>>()];
        let image = |strokes: &[Vec<[f32; 2]>]| {
            let mut out = vec![0.0; 2 * 28 * 28];
            rasterize_styled_into(strokes, 28, &style, &mut out).unwrap();
            out
        };
        let (f, b) = (image(&forward), image(&backward));
        assert_eq!(f[..28 * 28], rasterize(&forward, 28).unwrap()[..]);
        let (ink, order) = f.split_at(28 * 28);
        for (i, (&ink, &order)) in ink.iter().zip(order).enumerate() {
            assert!(ink > 0.0 || order == 0.0, "order without ink at {i}");
        }
        // Along the middle row, the order rises from left to right, and the other way
        // when the same line is drawn backwards.
        let row = |image: &[f32], col: usize| image[28 * 28 + 14 * 28 + col];
        assert!(row(&f, 4) > 0.0 && row(&f, 4) < 0.2, "{}", row(&f, 4));
        assert!(row(&f, 23) > 0.9, "{}", row(&f, 23));
        assert!(row(&f, 8) < row(&f, 14) && row(&f, 14) < row(&f, 20));
        assert!(row(&b, 8) > row(&b, 14) && row(&b, 14) > row(&b, 20));
    }

    #[test]
    fn styles_with_a_stroke_width_out_of_range_are_refused() {
        for fraction in [0.0, -0.05, 0.3, f32::NAN] {
            let style = RasterStyle {
                stroke_width_fraction: fraction,
                ..RasterStyle::default()
            };
            assert!(style.check().is_err(), "{fraction}");
        }
        assert!(RasterStyle::default().check().is_ok());
    }
}
