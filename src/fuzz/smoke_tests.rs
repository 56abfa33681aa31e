//! A short fuzzing run on stable Rust: the fuzz targets of `crate::fuzz` over seed inputs
//! and many random mutations of them (byte flips, insertions, deletions, splices, numbers
//! swapped for extreme ones). A panic fails the test and prints the input. The deep run is
//! cargo-fuzz under libFuzzer: `scripts/fuzz.sh`.

use crate::fuzz;
use rand::{Rng, SeedableRng};

/// Mutated inputs per target; about a second each on the CI machine.
const ITERATIONS: usize = 200_000;

const INTERESTING: &[&str] = &[
    "0",
    "-1",
    "1e308",
    "-1e308",
    "1e-320",
    "NaN",
    "null",
    "[]",
    "{}",
    "\"\"",
    "true",
    "18446744073709551616",
    "9007199254740993",
    "0.30000000000000004",
    "[[]]",
    "[[[]]]",
];

fn seeds() -> Vec<Vec<u8>> {
    let core = serde_json::json!({
        "shape": "circle", "canvas": {"width": 400, "height": 300},
        "strokes": [
            {"points": [{"x": 1.5, "y": 2, "pressure": 0.5, "timestamp": 1000},
                        {"x": 3, "y": 4.25, "pressure": 0.75, "timestamp": 1016}],
             "color": "#112233", "width": 3},
            {"points": [{"x": 10, "y": 20, "pressure": 1, "timestamp": 1100}]}
        ],
        "duration_ms": 2500, "device": "pen"
    });
    let quickdraw = serde_json::json!({
        "word": "circle", "countrycode": "NZ", "timestamp": "2017-03-01 12:00:00.0 UTC",
        "recognized": true, "key_id": "5629530305249280",
        "drawing": [[[0, 10, 20], [5, 6, 7], [0, 16, 32]], [[1, 2], [3, 4]]]
    });
    let record = {
        let input: crate::domain::drawing::DrawingInput =
            serde_json::from_value(core.clone()).unwrap();
        let drawing = crate::domain::Drawing::parse(input).unwrap();
        crate::domain::Record {
            id: crate::domain::DrawingId::from_bytes([1; 16]),
            player: crate::domain::PlayerId::from_bytes([2; 16]),
            created_at_ms: 1,
            idempotency: None,
            judgement: None,
            source: None,
            drawing,
        }
        .encode()
    };
    vec![
        core.to_string().into_bytes(),
        quickdraw.to_string().into_bytes(),
        record,
    ]
}

fn mutate(rng: &mut rand::rngs::StdRng, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..rng.random_range(1..6) {
        let at = if data.is_empty() {
            0
        } else {
            rng.random_range(0..data.len())
        };
        match rng.random_range(0..6) {
            0 if !data.is_empty() => data[at] ^= 1 << rng.random_range(0..8),
            1 => data.insert(at, rng.random()),
            2 if !data.is_empty() => {
                let end = (at + rng.random_range(1..16)).min(data.len());
                data.drain(at..end);
            }
            3 => {
                let other = &others[rng.random_range(0..others.len())];
                let from = rng.random_range(0..other.len());
                let end = (from + rng.random_range(1..64)).min(other.len());
                data.splice(at..at, other[from..end].iter().copied());
            }
            4 => {
                // Replace a number (or anything) with an extreme JSON value.
                let word = INTERESTING[rng.random_range(0..INTERESTING.len())].as_bytes();
                let end = (at + rng.random_range(0..4)).min(data.len());
                data.splice(at..end, word.iter().copied());
            }
            _ => data.truncate(at),
        }
    }
    data
}

/// Runs `target` over the seeds and their mutations; returns how many inputs `accepts`
/// liked (so a test can check that the run was not all rejected noise).
fn run(name: &str, target: fn(&[u8])) -> usize {
    run_counting(name, target, |_| false)
}

fn run_counting(name: &str, target: fn(&[u8]), accepts: fn(&[u8]) -> bool) -> usize {
    let mut accepted = 0;
    let seeds = seeds();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x00d0_0d1e);
    for seed in &seeds {
        target(seed);
    }
    for i in 0..ITERATIONS {
        let seed = &seeds[i % seeds.len()];
        let input = mutate(&mut rng, seed, &seeds);
        let outcome = std::panic::catch_unwind(|| target(&input));
        assert!(
            outcome.is_ok(),
            "{name} panicked on input {:?}",
            String::from_utf8_lossy(&input)
        );
        accepted += usize::from(accepts(&input));
    }
    accepted
}

fn is_valid_drawing(data: &[u8]) -> bool {
    serde_json::from_slice::<crate::domain::drawing::DrawingInput>(data)
        .ok()
        .is_some_and(|input| crate::domain::Drawing::parse(input).is_ok())
}

#[test]
fn the_drawing_parser_never_panics_and_valid_drawings_round_trip() {
    let valid = run_counting("drawing_json", fuzz::drawing_json, is_valid_drawing);
    // Enough mutants stay valid for the round-trip promise to be exercised.
    assert!(valid >= 100, "only {valid} valid mutants");
    println!("drawing_json: {valid} of {ITERATIONS} mutants were valid drawings and round-tripped");
}

#[test]
fn the_quickdraw_line_parser_never_panics() {
    run("quickdraw_line", fuzz::quickdraw_line);
}

#[test]
fn the_classify_body_parser_never_panics() {
    run("classify_body", fuzz::classify_body);
}

#[test]
fn decoding_a_damaged_stroke_record_never_panics() {
    run("stroke_record", fuzz::stroke_record);
}
