//! The reliability diagram of a model as a picture: one column per confidence bin (left: low
//! confidence, right: high), as tall as the share of that bin's validation drawings the model
//! got right, over a grey diagonal where a perfectly calibrated model's columns would end, and
//! a thin dark mark at each bin's mean confidence. Columns below the diagonal mean the model
//! is overconfident there. Empty bins are left blank. The page showing it writes the axes'
//! words, so no font is needed here. Pure: the reliability table in, PNG bytes out.

use std::io::Cursor;

use image::{ImageFormat, RgbImage};
use tiny_skia::{Color, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

use super::evaluation::ReliabilityBin;

/// Side of the square picture, in pixels.
pub const SIDE_PX: u32 = 240;
/// Space between columns, in pixels.
const GAP_PX: f32 = 2.0;
/// The background.
const BACKGROUND_RGB: [u8; 3] = [255, 255, 255];
/// The diagonal of perfect calibration.
const DIAGONAL_RGB: [u8; 3] = [170, 170, 170];
/// The columns (accuracy), the confusion picture's blue.
const COLUMN_RGB: [u8; 3] = [23, 55, 140];
/// The marks at each bin's mean confidence.
const MARK_RGB: [u8; 3] = [200, 60, 40];

/// Why a reliability picture cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReliabilityPictureError {
    /// There are no bins.
    #[error("the reliability table is empty")]
    Empty,
    /// The pixels could not be allocated or encoded.
    #[error("the picture could not be made: {0}")]
    Encode(String),
}

fn paint(rgb: [u8; 3]) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(Color::from_rgba8(rgb[0], rgb[1], rgb[2], 255));
    paint
}

/// Draws the reliability table as RGB pixels.
pub fn render(bins: &[ReliabilityBin]) -> Result<RgbImage, ReliabilityPictureError> {
    if bins.is_empty() {
        return Err(ReliabilityPictureError::Empty);
    }
    let side = SIDE_PX as f32;
    let mut pixmap = Pixmap::new(SIDE_PX, SIDE_PX)
        .ok_or_else(|| ReliabilityPictureError::Encode("no pixmap".into()))?;
    let [r, g, b] = BACKGROUND_RGB;
    pixmap.fill(Color::from_rgba8(r, g, b, 255));
    let width = side / bins.len() as f32;
    for (i, bin) in bins.iter().enumerate().filter(|(_, b)| b.count > 0) {
        let x = i as f32 * width + GAP_PX / 2.0;
        let height = (bin.accuracy.clamp(0.0, 1.0) as f32 * side).max(1.0);
        if let Some(rect) = Rect::from_xywh(x, side - height, width - GAP_PX, height) {
            pixmap.fill_rect(rect, &paint(COLUMN_RGB), Transform::identity(), None);
        }
        let y = side - bin.confidence.clamp(0.0, 1.0) as f32 * side;
        if let Some(rect) = Rect::from_xywh(x, (y - 1.5).max(0.0), width - GAP_PX, 3.0) {
            pixmap.fill_rect(rect, &paint(MARK_RGB), Transform::identity(), None);
        }
    }
    let mut diagonal = PathBuilder::new();
    diagonal.move_to(0.0, side);
    diagonal.line_to(side, 0.0);
    if let Some(path) = diagonal.finish() {
        let stroke = Stroke {
            width: 2.0,
            ..Stroke::default()
        };
        pixmap.stroke_path(
            &path,
            &paint(DIAGONAL_RGB),
            &stroke,
            Transform::identity(),
            None,
        );
    }
    // Every pixel is opaque, so the premultiplied RGBA is plain RGBA: drop the alpha.
    let rgb: Vec<u8> = pixmap
        .data()
        .chunks_exact(4)
        .flat_map(|px| [px[0], px[1], px[2]])
        .collect();
    RgbImage::from_raw(SIDE_PX, SIDE_PX, rgb)
        .ok_or_else(|| ReliabilityPictureError::Encode("pixel buffer size mismatch".into()))
}

/// Draws the reliability table and encodes it as PNG.
pub fn render_png(bins: &[ReliabilityBin]) -> Result<Vec<u8>, ReliabilityPictureError> {
    let picture = render(bins)?;
    let mut png = Cursor::new(Vec::new());
    picture
        .write_to(&mut png, ImageFormat::Png)
        .map_err(|e| ReliabilityPictureError::Encode(e.to_string()))?;
    Ok(png.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(i: usize, count: usize, confidence: f64, accuracy: f64) -> ReliabilityBin {
        ReliabilityBin {
            lower: i as f64 / 10.0,
            count,
            confidence,
            accuracy,
        }
    }

    #[test]
    fn a_full_bin_draws_a_full_column_and_an_empty_one_draws_nothing() {
        let mut bins: Vec<ReliabilityBin> = (0..10).map(|i| bin(i, 0, 0.0, 0.0)).collect();
        bins[9] = bin(9, 50, 0.97, 1.0);
        let picture = render(&bins).unwrap();
        assert_eq!(picture.dimensions(), (SIDE_PX, SIDE_PX));
        // Near the top of the last column: blue. Same height in the (empty) fifth: white.
        let last = picture.get_pixel(SIDE_PX - 12, 20).0;
        assert_eq!(last, COLUMN_RGB);
        let empty = picture.get_pixel(4 * SIDE_PX / 10 + 12, 20).0;
        assert_eq!(empty, BACKGROUND_RGB);
        assert!(render_png(&bins).unwrap().starts_with(b"\x89PNG"));
        assert!(matches!(render(&[]), Err(ReliabilityPictureError::Empty)));
    }
}
