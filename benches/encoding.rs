//! Stored bytes per drawing: Doodlebox's record format against the same drawings as
//! Quick, Draw! raw ndjson (the target: at most 25 %). Reads ../shared/quickdraw
//! when present; otherwise says so and exits.
//!
//! Run: `cargo bench --bench encoding`

use std::path::Path;

use doodlebox::domain::record::{Idempotency, Record};
use doodlebox::domain::{DrawingId, IdempotencyKey, PlayerId};
use doodlebox::transfer::quickdraw::QuickDrawRecord;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/quickdraw");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("encoding bench skipped: {} is absent", dir.display());
        return;
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    files.sort();
    let (mut raw_bytes, mut stored_bytes, mut stored_with_key, mut drawings, mut points) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut last = None;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable sample file");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let record = QuickDrawRecord::parse_line(line).expect("valid sample line");
            let drawing = match record.to_drawing() {
                Ok(d) => d,
                Err(e) => {
                    println!("skipped a sample drawing ({}): {e}", record.word);
                    continue;
                }
            };
            let id = DrawingId::next(1_700_000_000_000, last);
            last = Some(id);
            points += drawing.point_count();
            let mut stored = Record {
                id,
                player: PlayerId::random(),
                created_at_ms: 1_700_000_000_000,
                idempotency: None,
                judgement: None,
                source: None,
                drawing,
            };
            raw_bytes += line.len() + 1;
            stored_bytes += stored.encode().len();
            stored.idempotency = Some(Idempotency {
                key: IdempotencyKey::parse(b"7d0f0c52-7f3e-4c1e-9a51-3f1f2b0e9d11")
                    .expect("valid key"),
                body_digest: [0; 16],
            });
            stored_with_key += stored.encode().len();
            drawings += 1;
        }
    }
    let per = |b: usize| b as f64 / drawings as f64;
    println!("drawings: {drawings}, points: {points}");
    println!(
        "Quick, Draw! raw ndjson: {:.0} bytes/drawing",
        per(raw_bytes)
    );
    println!(
        "Doodlebox record:        {:.0} bytes/drawing ({:.1} % of raw; {:.2} bytes/point)",
        per(stored_bytes),
        100.0 * stored_bytes as f64 / raw_bytes as f64,
        stored_bytes as f64 / points as f64
    );
    println!(
        "  with an idempotency key (UUID): {:.0} bytes/drawing ({:.1} % of raw)",
        per(stored_with_key),
        100.0 * stored_with_key as f64 / raw_bytes as f64
    );
}
