//! Synthetic doodles as API drawing JSON, shared by the API and process tests.

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
