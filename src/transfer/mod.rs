//! Import and export formats: Google's Quick, Draw! ndjson (raw and simplified), its 28×28
//! `.npy` bitmaps, and Doodlebox's own lossless JSON lines.
//!
//! [`import`] reads ndjson into the stores through the group-commit writer; [`export`] writes
//! the drawings a review filter matches in any of the formats, streamed; [`quickdraw`] parses
//! one Quick, Draw! line, [`simplify`] makes a simplified one, [`npy`] writes NumPy files
//! and [`npz`] streams several of them as one NumPy archive.

pub mod export;
pub mod import;
pub mod npy;
pub mod npz;
pub mod quickdraw;
pub mod simplify;
