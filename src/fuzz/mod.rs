//! Fuzz targets: the entry points where untrusted bytes meet Doodlebox, as functions that
//! take arbitrary bytes and must never panic (and must keep their promises when the input
//! is valid). `fuzz/` runs them under libFuzzer with cargo-fuzz (`scripts/fuzz.sh`);
//! [`smoke_tests`] runs them on stable Rust in CI over mutated seeds. The module is built
//! only for tests and with the `fuzzing` feature (which `fuzz/Cargo.toml` turns on), so it
//! is no part of the library's public API.

use crate::domain::classify_input::parse_classify_input;
use crate::domain::drawing::DrawingInput;
use crate::domain::{Drawing, DrawingId, PlayerId, Record};
use crate::transfer::quickdraw::QuickDrawRecord;

/// A submission body: if it parses into a drawing, that drawing's stroke record must decode
/// to exactly the same drawing (nothing acknowledged may change on the way to disk).
pub fn drawing_json(data: &[u8]) {
    let Ok(input) = serde_json::from_slice::<DrawingInput>(data) else {
        return;
    };
    let Ok(drawing) = Drawing::parse(input) else {
        return;
    };
    let record = Record {
        id: DrawingId::from_bytes([7; 16]),
        player: PlayerId::from_bytes([9; 16]),
        created_at_ms: 1_700_000_000_000,
        idempotency: None,
        judgement: None,
        source: None,
        drawing,
    };
    let decoded = Record::decode(&record.encode()).expect("a valid drawing's record decodes");
    assert_eq!(decoded, record, "a stored drawing must read back unchanged");
}

/// One line of a Quick, Draw! ndjson file being imported.
pub fn quickdraw_line(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(record) = QuickDrawRecord::parse_line(line) {
        let _ = record.to_drawing();
    }
}

/// A classify request body (Doodlebox or Quick, Draw! strokes).
pub fn classify_body(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice(data) {
        let _ = parse_classify_input(value);
    }
}

/// A stroke record read from disk (a torn or corrupted one must be an error, not a crash).
pub fn stroke_record(data: &[u8]) {
    let _ = Record::decode(data);
}

#[cfg(test)]
mod smoke_tests;
