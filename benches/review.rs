//! Review benchmark: latency of the admin review queries on a big data directory (issue #6:
//! list and count ≤ 50 ms on 1,000,000 drawings).
//!
//! Builds the data directory through the store API in big transactions (real metadata rows
//! and real stroke records, not HTTP), scores every drawing, flags 2% and soft-deletes 1%,
//! then times p50/p99 of each query called the way the handlers call them: the first page
//! unfiltered, by shape, flagged, a quality range, a page deep in the cursor chain, the
//! total of each, and the stats page. Prints `FIGURE` lines; asserts nothing.
//!
//! Run: `cargo bench --bench review` (DOODLEBOX_BENCH_DRAWINGS sets the size, default
//! 1,000,000; DOODLEBOX_BENCH_ROUNDS the timed calls per query, default 50).

use std::time::{Duration, Instant};

use doodlebox::data_dir::dir_size;
use doodlebox::domain::drawing::DrawingInput;
use doodlebox::domain::record::{assemble, encode_body};
use doodlebox::domain::review::{Cursor, DrawingFilter, Page, ReviewAction};
use doodlebox::domain::{Drawing, DrawingId, PlayerId};
use doodlebox::store::metadata::NewDrawingRow;
use doodlebox::store::{metadata_path, Stores};
use serde_json::json;

/// Rows per transaction while building.
const CHUNK: usize = 50_000;
/// Distinct players the drawings are spread over.
const PLAYERS: usize = 20_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn drawing(shape: &str) -> Drawing {
    let points: Vec<_> = (0..30)
        .map(|i| {
            let t = i as f64 / 5.0;
            json!({"x": 200.0 + 120.0 * t.cos(), "y": 200.0 + 120.0 * t.sin(), "timestamp": 1_700_000_000_000u64 + i * 16})
        })
        .collect();
    let input: DrawingInput = serde_json::from_value(json!({
        "shape": shape, "canvas": {"width": 400, "height": 400},
        "strokes": [{"points": points, "color": "#000000", "width": 3}], "duration_ms": 2000
    }))
    .expect("valid drawing JSON");
    Drawing::parse(input).expect("valid drawing")
}

fn build(stores: &Stores, n: usize) -> (Vec<(i64, DrawingId)>, u64) {
    let shapes = stores.metadata.shapes().expect("shapes");
    let bodies: Vec<Vec<u8>> = shapes
        .iter()
        .map(|s| encode_body(None, None, &drawing(&s.name)))
        .collect();
    let players: Vec<PlayerId> = (0..PLAYERS).map(|_| PlayerId::random()).collect();
    let start_ms = 1_760_000_000_000u64;
    let mut last = None;
    let mut marks = Vec::new();
    for chunk_start in (0..n).step_by(CHUNK) {
        let mut rows = Vec::with_capacity(CHUNK);
        let mut records = Vec::with_capacity(CHUNK);
        for i in chunk_start..(chunk_start + CHUNK).min(n) {
            // Ten drawings a second, over about four months for a million.
            let created = start_ms + i as u64 * 10_000;
            let id = DrawingId::next(created, last);
            last = Some(id);
            let shape = i % shapes.len();
            let player = players[(i * 7919) % PLAYERS];
            records.push((id, assemble(id, player, created, &bodies[shape])));
            rows.push(NewDrawingRow {
                id,
                player,
                shape_id: shapes[shape].id,
                metadata: json!({"strokes": 1, "points": 30, "duration_ms": 2000}),
                created_at_ms: created,
                idempotency: None,
                source_key: None,
                judgement: None,
            });
            if i % 100_000 == 0 {
                marks.push((created as i64, id));
            }
        }
        stores.blobs.put_durably(&records).expect("stroke records");
        stores.metadata.insert_drawings(&rows).expect("rows");
        let flagged: Vec<DrawingId> = rows.iter().step_by(50).map(|r| r.id).collect();
        let deleted: Vec<DrawingId> = rows.iter().skip(7).step_by(100).map(|r| r.id).collect();
        stores
            .review
            .apply(&flagged, ReviewAction::Flag, start_ms)
            .expect("flag");
        stores
            .review
            .apply(&deleted, ReviewAction::Delete, start_ms)
            .expect("delete");
    }
    (marks, start_ms)
}

fn time<T>(rounds: usize, mut f: impl FnMut() -> T) -> (f64, f64) {
    f(); // warm the page cache and the statement cache
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(f());
            started.elapsed()
        })
        .collect();
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(samples[samples.len() / 2]),
        ms(samples[(samples.len() * 99 / 100).min(samples.len() - 1)]),
    )
}

fn main() {
    let n = env_usize("DOODLEBOX_BENCH_DRAWINGS", 1_000_000);
    let rounds = env_usize("DOODLEBOX_BENCH_ROUNDS", 50);
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = Stores::open(dir.path()).expect("stores");
    let started = Instant::now();
    let (marks, _) = build(&stores, n);
    // Scores for every drawing, spread over 0..1 (what the quality scorer would write).
    let conn = rusqlite::Connection::open(metadata_path(dir.path())).expect("sqlite");
    conn.busy_timeout(Duration::from_secs(60)).expect("timeout");
    conn.execute(
        "UPDATE drawings SET quality_score = (abs(random()) % 1000) / 1000.0",
        [],
    )
    .expect("scores");
    drop(conn);
    let built = started.elapsed().as_secs_f64();
    let bytes = dir_size(dir.path()).expect("size");
    println!(
        "FIGURE review_build drawings={n} seconds={built:.1} data_dir_mb={:.0}",
        bytes as f64 / 1e6
    );

    let parse = |q: &[(&str, &str)]| DrawingFilter::parse(q.iter().copied()).expect("filter");
    let deep = marks.get(1).copied().unwrap_or(marks[0]);
    let cases: Vec<(&str, DrawingFilter, Page)> = vec![
        ("unfiltered", parse(&[]), Page::default()),
        ("shape", parse(&[("shape", "circle")]), Page::default()),
        ("flagged", parse(&[("flagged", "true")]), Page::default()),
        (
            "quality_range",
            parse(&[("min_quality", "0.2"), ("max_quality", "0.9")]),
            Page::default(),
        ),
        (
            "deep_cursor",
            parse(&[]),
            Page::new(
                50,
                Some(Cursor {
                    created_at_ms: deep.0,
                    id: deep.1,
                }),
            ),
        ),
        (
            "player",
            parse(&[]).with_player(PlayerId::random()),
            Page::default(),
        ),
    ];
    let review = stores.review.clone();
    for (name, filter, page) in &cases {
        let (list_p50, list_p99) = time(rounds, || {
            review.list_drawings(filter, *page).expect("list")
        });
        let (count_p50, count_p99) = time(rounds, || review.count_matching(filter).expect("count"));
        let total = review.count_matching(filter).expect("count");
        println!("FIGURE review_query case={name} total={total} list_p50_ms={list_p50:.2} list_p99_ms={list_p99:.2} count_p50_ms={count_p50:.2} count_p99_ms={count_p99:.2}");
    }
    let (p50, p99) = time(rounds, || {
        (
            review.stats().expect("stats"),
            dir_size(dir.path()).expect("size"),
        )
    });
    println!("FIGURE review_stats p50_ms={p50:.2} p99_ms={p99:.2}");
}
