//! Synthetic doodles as API drawing JSON, shared by the API, browser, process and cluster
//! tests, and a way to store a few of each shape through a running server.

use doodlebox::ml::synth::{self, Shape};
use serde_json::{json, Value};

/// A synthetic doodle as the API's drawing JSON, fitted into a 256-pixel canvas.
pub fn doodle_json(shape: Shape, seed: u64) -> Value {
    let strokes = synth::doodle(shape, seed);
    let points = || strokes.iter().flatten();
    let (min_x, max_x) = points().fold((f32::MAX, f32::MIN), |(lo, hi), p| {
        (lo.min(p[0]), hi.max(p[0]))
    });
    let (min_y, max_y) = points().fold((f32::MAX, f32::MIN), |(lo, hi), p| {
        (lo.min(p[1]), hi.max(p[1]))
    });
    let scale = 230.0 / (max_x - min_x).max(max_y - min_y).max(1e-3);
    let strokes: Vec<Value> = strokes
        .iter()
        .map(|s| {
            let points: Vec<Value> = s
                .iter()
                .map(|p| json!({"x": ((p[0] - min_x) * scale + 13.0).round(), "y": ((p[1] - min_y) * scale + 13.0).round()}))
                .collect();
            json!({"points": points})
        })
        .collect();
    json!({"shape": shape.name(), "canvas": {"width": 256, "height": 256}, "strokes": strokes})
}

/// [`doodle_json`] as the game sends it: each point with a pressure and a timestamp 16 ms
/// after the one before, 250 ms between strokes (the pen lifts), and the device. Replays
/// in the admin portal play it back stroke by stroke.
#[allow(dead_code)] // the browser tests use it, the API and process tests do not
pub fn timed_doodle_json(shape: Shape, seed: u64) -> Value {
    let mut drawing = doodle_json(shape, seed);
    let mut t = 1_700_000_000_000.0 + seed as f64 * 60_000.0;
    let started = t;
    for stroke in drawing["strokes"].as_array_mut().into_iter().flatten() {
        t += 250.0;
        for point in stroke["points"].as_array_mut().into_iter().flatten() {
            t += 16.0;
            point["pressure"] = json!(0.5);
            point["timestamp"] = json!(t);
        }
        stroke["color"] = json!("#1d1d1f");
        stroke["width"] = json!(4);
    }
    drawing["duration_ms"] = json!((t - started) as u64);
    drawing["device"] = json!("mouse");
    drawing
}

/// Stores `rounds` doodles of each default shape through the server at `base`; round `i` is
/// sent as player `cookies[i % len]` (with no cookie, so a new player for each drawing, when
/// `cookies` is empty). Every drawing must be answered `201`.
#[allow(dead_code)] // the process and cluster tests train on them, the others do not
pub async fn submit_doodles(base: &str, rounds: u64, cookies: &[String]) {
    let client = reqwest::Client::new();
    for i in 0..rounds {
        for shape in Shape::ALL {
            let mut request = client
                .post(format!("{base}/api/v1/drawings"))
                .json(&doodle_json(shape, i * 5 + shape as u64));
            if !cookies.is_empty() {
                request = request.header("cookie", &cookies[i as usize % cookies.len()]);
            }
            let response = request.send().await.expect("the server answers");
            assert_eq!(
                response.status(),
                201,
                "a doodle of {} stored",
                shape.name()
            );
        }
    }
}

/// The first `count` players (ids 1, 2, … in the cookie's hex) whose drawings the frozen
/// evaluation split, going by player, holds out (`held`) or keeps for training.
#[allow(dead_code)] // the API and browser tests
pub fn players_the_split(held: bool, count: usize) -> Vec<String> {
    use doodlebox::service::evaluation::SplitRule;
    use doodlebox::store::metadata::TrainingDrawing;
    (1u128..)
        .map(|n| format!("{n:032x}"))
        .filter(|player| {
            let drawing = TrainingDrawing {
                id: doodlebox::domain::DrawingId::from_bytes([0; 16]),
                player: player.clone(),
                shape: String::new(),
            };
            SplitRule::ByPlayer.holds_out(&drawing) == held
        })
        .take(count)
        .collect()
}

/// Stores a collection whose triangles the evaluation split takes whole: two circles and two
/// squares from each of eleven players, and two triangles from each of five of them, the
/// five the split holds out. Every shape has five players, so the split goes by player.
/// `client` sends them (the API tests' admin client passes the rate limits).
#[allow(dead_code)] // the API and browser tests
pub async fn submit_triangles_only_held_out(client: &reqwest::Client, base: &str) {
    let kept = players_the_split(false, 6);
    let held = players_the_split(true, 5);
    let both = [Shape::Circle, Shape::Square];
    let all_three = [Shape::Circle, Shape::Square, Shape::Triangle];
    for (players, shapes) in [(&kept, &both[..]), (&held, &all_three[..])] {
        for (i, player) in players.iter().enumerate() {
            for &shape in shapes {
                for k in 0..2u64 {
                    let response = client
                        .post(format!("{base}/api/v1/drawings"))
                        .header("cookie", format!("doodlebox_player={player}"))
                        .json(&doodle_json(shape, i as u64 * 10 + k))
                        .send()
                        .await
                        .expect("the server answers");
                    assert_eq!(response.status(), 201, "a doodle of {}", shape.name());
                }
            }
        }
    }
}
