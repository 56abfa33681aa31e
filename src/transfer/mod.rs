//! Import and export formats. For now: reading Google's Quick, Draw! ndjson.

pub mod quickdraw;
