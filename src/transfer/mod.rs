//! Import and export formats: Google's Quick, Draw! ndjson (raw and simplified), its 28×28
//! `.npy` bitmaps, and Doodlebox's own lossless JSON lines.
//!
//! [`import`] reads ndjson into the stores through the group-commit writer; [`quickdraw`]
//! parses one Quick, Draw! line.

pub mod import;
pub mod quickdraw;
