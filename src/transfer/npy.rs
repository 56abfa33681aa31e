//! The Quick, Draw! numpy bitmaps: one `.npy` file per shape holding an `N × 784` array of
//! unsigned bytes, each row a 28×28 grayscale drawing (0 background, 255 ink), in NumPy's
//! format version 1.0 (what `numpy.load` reads).

use crate::domain::Drawing;
use crate::ml::raster::{rasterize_gray8, RasterError};

/// Side of a bitmap, in pixels.
pub const SIDE: u32 = 28;
/// Bytes in one bitmap row of the array.
pub const ROW_BYTES: usize = (SIDE * SIDE) as usize;
/// Bytes of the header [`header`] writes: a multiple of 64, as NumPy aligns it, and wide
/// enough for any row count.
pub const HEADER_BYTES: usize = 128;
/// The magic string and version 1.0 that open every file.
const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";

/// The file header for `rows` bitmaps.
pub fn header(rows: u64) -> Vec<u8> {
    let mut dict =
        format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({rows}, {ROW_BYTES}), }}");
    // Magic (8) + the header length (2) + the dictionary, padded with spaces, ending in \n.
    let body = HEADER_BYTES - MAGIC.len() - 2;
    while dict.len() < body - 1 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = Vec::with_capacity(HEADER_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(body as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// A drawing as one 28×28 bitmap row, drawn by the same rasterizer the model learns from.
pub fn bitmap(drawing: &Drawing) -> Result<Vec<u8>, RasterError> {
    let strokes: Vec<Vec<[f32; 2]>> = drawing
        .strokes()
        .iter()
        .map(|s| s.points.iter().map(|p| [p.x as f32, p.y as f32]).collect())
        .collect();
    rasterize_gray8(&strokes, SIDE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_128_bytes_of_numpy_1_0_naming_the_shape() {
        let h = header(12_345);
        assert_eq!(h.len(), HEADER_BYTES);
        assert_eq!(&h[..8], MAGIC);
        assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, HEADER_BYTES - 10);
        let dict = std::str::from_utf8(&h[10..]).unwrap();
        assert!(
            dict.starts_with("{'descr': '|u1', 'fortran_order': False, 'shape': (12345, 784), }")
        );
        assert!(dict.ends_with('\n'));
        assert_eq!(header(u64::MAX).len(), HEADER_BYTES);
    }
}
