//! The classifier: loads the starter model and names fresh synthetic doodles.

use std::time::Instant;

use doodlebox::ml::classifier::{Classifier, ClassifyError};
use doodlebox::ml::synth::{self, Shape};

use crate::helpers::{scratch_dir, starter_model, tiny_model};

/// Doodles per shape the classifier is checked on; their seeds never met training.
const CHECKED_PER_SHAPE: u64 = 100;

#[test]
fn the_classifier_names_fresh_synthetic_doodles_correctly() {
    let (dir, _) = starter_model();
    let classifier = Classifier::load(dir).expect("the starter model loads");
    assert_eq!(classifier.classes(), synth::DEFAULT_SHAPES);
    let mut right = 0;
    let mut latency = Vec::new();
    for shape in Shape::ALL {
        for seed in 0..CHECKED_PER_SHAPE {
            let strokes = synth::doodle(shape, 1_000_000 + seed);
            let started = Instant::now();
            let ranked = classifier.classify(&strokes).unwrap();
            latency.push(started.elapsed().as_secs_f64() * 1e3);
            assert_eq!(ranked.len(), 5);
            assert!(ranked.windows(2).all(|w| w[0].1 >= w[1].1), "sorted");
            let total: f32 = ranked.iter().map(|r| r.1).sum();
            assert!((total - 1.0).abs() < 1e-4, "probabilities sum to 1");
            if ranked[0].0 == shape.name() {
                right += 1;
            }
        }
    }
    latency.sort_by(f64::total_cmp);
    let n = latency.len();
    eprintln!(
        "classifier: {right}/{n} right; latency p50 {:.3} ms, p99 {:.3} ms",
        latency[n / 2],
        latency[n * 99 / 100]
    );
    assert!(right as f64 >= 0.95 * n as f64, "{right} of {n} right");
}

#[test]
fn a_batch_gives_the_same_answers_as_one_by_one_and_names_a_bad_drawing() {
    let dir = scratch_dir("classifier-batch");
    doodlebox::ml::artifact::write(&dir, &tiny_model()).unwrap();
    let classifier = Classifier::load(&dir).unwrap();
    let drawings: Vec<_> = Shape::ALL.iter().map(|&s| synth::doodle(s, 5)).collect();
    let batch = classifier.classify_batch(&drawings).unwrap();
    for (drawing, answer) in drawings.iter().zip(&batch) {
        let single = classifier.classify(drawing).unwrap();
        for (a, b) in single.iter().zip(answer) {
            assert_eq!(a.0, b.0);
            assert!((a.1 - b.1).abs() < 1e-5);
        }
    }
    let mut with_empty = drawings.clone();
    with_empty[2].clear();
    let result = classifier.classify_batch(&with_empty);
    assert!(matches!(
        result,
        Err(ClassifyError::Raster { index: 2, .. })
    ));
    assert!(classifier
        .classify_batch::<Vec<Vec<[f32; 2]>>>(&[])
        .unwrap()
        .is_empty());
}

#[test]
fn a_corrupt_model_is_refused_at_load() {
    let dir = scratch_dir("classifier-corrupt");
    doodlebox::ml::artifact::write(&dir, &tiny_model()).unwrap();
    let weights = dir.join(doodlebox::ml::artifact::WEIGHTS_FILE);
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    assert!(Classifier::load(&dir).is_err());
}
