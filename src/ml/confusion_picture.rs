//! The confusion matrix as a picture: a legend-free heat map, one square cell per
//! (true class, predicted class), rows top to bottom and columns left to right in class order,
//! each cell shaded by its row-normalised value (the share of that class's validation
//! drawings predicted as the column's class). The page showing it writes the class names
//! around it, so no font is needed here. Pure: counts in, PNG bytes out.

use std::io::Cursor;

use image::{ImageFormat, RgbImage};
use tiny_skia::{Color, Paint, Pixmap, Rect, Transform};

/// The side the picture aims for, in pixels, before the cell size is clamped.
const TARGET_SIDE_PX: u32 = 480;
/// Smallest cell, in pixels: many classes make a large picture rather than invisible cells.
const MIN_CELL_PX: u32 = 4;
/// Largest cell, in pixels: few classes make a small picture rather than huge blocks.
const MAX_CELL_PX: u32 = 64;
/// From this cell size on, a one-pixel line separates the cells.
const GRID_MIN_CELL_PX: u32 = 8;
/// Most classes a picture is drawn for (4 px cells make it 4,000 px wide).
pub const MAX_CLASSES: usize = 1_000;
/// The colour of a cell whose row is all zeros (no validation drawing of that class).
const EMPTY_ROW_RGB: [u8; 3] = [222, 222, 222];
/// The colour of a share of 0: white.
const LOW_RGB: [u8; 3] = [255, 255, 255];
/// The colour of a share of 1: a deep blue that prints and projects well.
const HIGH_RGB: [u8; 3] = [23, 55, 140];
/// The lines between cells.
const GRID_RGB: [u8; 3] = [255, 255, 255];

/// Why a confusion matrix cannot be drawn.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfusionPictureError {
    /// There are no classes.
    #[error("the confusion matrix is empty")]
    Empty,
    /// A row does not have one count per class.
    #[error(
        "the confusion matrix is not square: row {row} has {found} counts for {classes} classes"
    )]
    NotSquare {
        /// The offending row.
        row: usize,
        /// Counts in it.
        found: usize,
        /// Rows in the matrix.
        classes: usize,
    },
    /// More classes than [`MAX_CLASSES`].
    #[error("{0} classes are more than the {MAX_CLASSES} a picture is drawn for")]
    TooManyClasses(usize),
    /// The pixels could not be allocated or encoded.
    #[error("the picture could not be made: {0}")]
    Encode(String),
}

/// The side of one cell, in pixels, for `classes` classes.
pub fn cell_px(classes: usize) -> u32 {
    let classes = u32::try_from(classes.max(1)).unwrap_or(u32::MAX);
    (TARGET_SIDE_PX / classes).clamp(MIN_CELL_PX, MAX_CELL_PX)
}

/// The side of the (square) picture, in pixels, for `classes` classes.
pub fn side_px(classes: usize) -> u32 {
    cell_px(classes) * u32::try_from(classes).unwrap_or(u32::MAX)
}

/// Row-normalised shares: `confusion[t][p] / sum(confusion[t])`, `None` for an all-zero row.
pub fn row_shares(confusion: &[Vec<u32>]) -> Vec<Option<Vec<f64>>> {
    confusion
        .iter()
        .map(|row| {
            let total: u64 = row.iter().map(|&c| u64::from(c)).sum();
            (total > 0).then(|| row.iter().map(|&c| f64::from(c) / total as f64).collect())
        })
        .collect()
}

/// The colour of a share in `[0, 1]`, or of an empty row.
fn shade(share: Option<f64>) -> [u8; 3] {
    let Some(share) = share else {
        return EMPTY_ROW_RGB;
    };
    let t = share.clamp(0.0, 1.0);
    let mix = |lo: u8, hi: u8| (f64::from(lo) + (f64::from(hi) - f64::from(lo)) * t).round() as u8;
    [
        mix(LOW_RGB[0], HIGH_RGB[0]),
        mix(LOW_RGB[1], HIGH_RGB[1]),
        mix(LOW_RGB[2], HIGH_RGB[2]),
    ]
}

fn paint(rgb: [u8; 3]) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(Color::from_rgba8(rgb[0], rgb[1], rgb[2], 255));
    paint.anti_alias = false;
    paint
}

/// Draws `confusion` (`confusion[true][predicted]` counts) as RGB pixels.
pub fn render(confusion: &[Vec<u32>]) -> Result<RgbImage, ConfusionPictureError> {
    let classes = confusion.len();
    if classes == 0 {
        return Err(ConfusionPictureError::Empty);
    }
    if classes > MAX_CLASSES {
        return Err(ConfusionPictureError::TooManyClasses(classes));
    }
    if let Some((row, r)) = confusion
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() != classes)
    {
        return Err(ConfusionPictureError::NotSquare {
            row,
            found: r.len(),
            classes,
        });
    }
    let (cell, side) = (cell_px(classes), side_px(classes));
    let mut pixmap = Pixmap::new(side, side)
        .ok_or_else(|| ConfusionPictureError::Encode(format!("no {side}x{side} pixmap")))?;
    let [r, g, b] = GRID_RGB;
    pixmap.fill(Color::from_rgba8(r, g, b, 255));
    // With grid lines, each cell leaves its last row and column of pixels to the grid.
    let inset = if cell >= GRID_MIN_CELL_PX { 1.0 } else { 0.0 };
    for (t, shares) in row_shares(confusion).iter().enumerate() {
        for p in 0..classes {
            let share = shares.as_ref().map(|s| s[p]);
            let (x, y) = ((p as u32 * cell) as f32, (t as u32 * cell) as f32);
            let size = cell as f32 - inset;
            if let Some(rect) = Rect::from_xywh(x, y, size, size) {
                pixmap.fill_rect(rect, &paint(shade(share)), Transform::identity(), None);
            }
        }
    }
    // Every pixel is opaque, so the premultiplied RGBA is plain RGBA: drop the alpha.
    let rgb: Vec<u8> = pixmap
        .data()
        .chunks_exact(4)
        .flat_map(|px| [px[0], px[1], px[2]])
        .collect();
    RgbImage::from_raw(side, side, rgb)
        .ok_or_else(|| ConfusionPictureError::Encode("pixel buffer size mismatch".into()))
}

/// Draws `confusion` and encodes it as PNG.
pub fn render_png(confusion: &[Vec<u32>]) -> Result<Vec<u8>, ConfusionPictureError> {
    let picture = render(confusion)?;
    let mut png = Cursor::new(Vec::new());
    picture
        .write_to(&mut png, ImageFormat::Png)
        .map_err(|e| ConfusionPictureError::Encode(e.to_string()))?;
    Ok(png.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The colour in the middle of cell (`t`, `p`).
    fn cell_colour(picture: &RgbImage, classes: usize, t: usize, p: usize) -> [u8; 3] {
        let cell = cell_px(classes);
        picture
            .get_pixel(p as u32 * cell + cell / 2, t as u32 * cell + cell / 2)
            .0
    }

    fn darkness(rgb: [u8; 3]) -> u32 {
        765 - rgb.iter().map(|&c| u32::from(c)).sum::<u32>()
    }

    #[test]
    fn the_picture_grows_with_the_class_count_within_its_cell_limits() {
        assert_eq!(cell_px(2), MAX_CELL_PX);
        assert_eq!(side_px(5), 5 * MAX_CELL_PX);
        assert_eq!(side_px(20), 480);
        assert_eq!(cell_px(345), MIN_CELL_PX);
        assert_eq!(side_px(345), 345 * MIN_CELL_PX);
        let confusion: Vec<Vec<u32>> = (0..7).map(|_| vec![1; 7]).collect();
        let picture = render(&confusion).unwrap();
        assert_eq!(picture.dimensions(), (side_px(7), side_px(7)));
    }

    #[test]
    fn cells_are_shaded_by_their_share_of_the_row_not_by_raw_counts() {
        // Class 0 has 1 drawing, all right; class 1 has 100, all right; class 2 is split.
        let confusion = [vec![1, 0, 0], vec![0, 100, 0], vec![0, 50, 50]];
        let picture = render(&confusion).unwrap();
        let at = |t, p| cell_colour(&picture, 3, t, p);
        assert_eq!(
            at(0, 0),
            HIGH_RGB,
            "a row's whole share is the darkest shade"
        );
        assert_eq!(at(1, 1), HIGH_RGB);
        assert_eq!(at(0, 1), LOW_RGB, "a zero share is white");
        assert_eq!(at(2, 1), at(2, 2), "equal shares look alike");
        assert!(darkness(at(2, 1)) < darkness(at(1, 1)));
        assert!(darkness(at(2, 1)) > darkness(at(2, 0)));
    }

    #[test]
    fn a_class_without_validation_drawings_is_grey_not_white() {
        let picture = render(&[vec![3, 1], vec![0, 0]]).unwrap();
        assert_eq!(cell_colour(&picture, 2, 1, 0), EMPTY_ROW_RGB);
        assert_eq!(cell_colour(&picture, 2, 1, 1), EMPTY_ROW_RGB);
        assert_eq!(row_shares(&[vec![3, 1]]), vec![Some(vec![0.75, 0.25])]);
    }

    #[test]
    fn empty_ragged_and_oversized_matrices_are_refused() {
        assert_eq!(render(&[]).unwrap_err(), ConfusionPictureError::Empty);
        assert_eq!(
            render(&[vec![1, 2], vec![3]]).unwrap_err(),
            ConfusionPictureError::NotSquare {
                row: 1,
                found: 1,
                classes: 2
            }
        );
        let huge = vec![Vec::new(); MAX_CLASSES + 1];
        assert_eq!(
            render(&huge).unwrap_err(),
            ConfusionPictureError::TooManyClasses(MAX_CLASSES + 1)
        );
    }

    #[test]
    fn the_png_decodes_to_the_same_pixels() {
        let confusion = [
            vec![5, 1, 0, 0],
            vec![2, 4, 0, 0],
            vec![0, 0, 6, 0],
            vec![0, 0, 1, 5],
        ];
        let png = render_png(&confusion).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoded = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(decoded, render(&confusion).unwrap());
    }
}
