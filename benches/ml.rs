//! Prints figures of the machine-learning module (no assertions): rasterization drawings/s,
//! training samples/s and the rasterization share of a training step, single-drawing
//! classify latency p50/p99 and batch throughput. Run with `cargo bench --bench ml`.

use std::time::Instant;

use doodlebox::ml::augment::{augment, AugmentParams};
use doodlebox::ml::classifier::Classifier;
use doodlebox::ml::train::{self, Hooks, TrainConfig};
use doodlebox::ml::{artifact, raster, synth};

/// Drawings per class in the training measurement.
const PER_CLASS: usize = 200;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dataset = synth::starter_dataset(PER_CLASS, 1);
    let drawings: Vec<_> = dataset.samples.iter().map(|s| &s.strokes).collect();
    let params = AugmentParams::default();

    for size in [28, 64] {
        let started = Instant::now();
        for strokes in &drawings {
            std::hint::black_box(raster::rasterize(strokes, size)?);
        }
        let plain = drawings.len() as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        for (i, strokes) in drawings.iter().enumerate() {
            let augmented = augment(strokes, i as u64, &params);
            std::hint::black_box(raster::rasterize(&augmented, size)?);
        }
        let augmented = drawings.len() as f64 / started.elapsed().as_secs_f64();

        let config = TrainConfig {
            epochs: 2,
            image_size: size,
            ..TrainConfig::default()
        };
        let started = Instant::now();
        let model = train::train(&dataset, &config, Hooks::default())?;
        let seconds = started.elapsed().as_secs_f64();
        let samples_per_sec = model
            .metrics
            .history
            .last()
            .map_or(0.0, |r| r.samples_per_sec);
        println!(
            "{size}px: rasterize {plain:.0} drawings/s ({augmented:.0}/s with augmentation); \
             training {samples_per_sec:.0} samples/s on {} thread(s) (rasterization {:.1} % of a step); \
             2 epochs in {seconds:.1} s",
            tch::get_num_threads(),
            100.0 * samples_per_sec / augmented,
        );

        let dir = std::env::temp_dir().join(format!("doodlebox-bench-ml-{size}"));
        artifact::write(&dir, &model)?;
        let classifier = Classifier::load(&dir)?;
        let mut latency = Vec::new();
        for strokes in drawings.iter().take(500) {
            let started = Instant::now();
            std::hint::black_box(classifier.classify(strokes)?);
            latency.push(started.elapsed().as_secs_f64() * 1e3);
        }
        latency.sort_by(f64::total_cmp);
        let batch: Vec<_> = drawings.iter().take(64).map(|s| (*s).clone()).collect();
        let started = Instant::now();
        let rounds = 20;
        for _ in 0..rounds {
            std::hint::black_box(classifier.classify_batch(&batch)?);
        }
        let per_sec = (rounds * batch.len()) as f64 / started.elapsed().as_secs_f64();
        println!(
            "{size}px: classify p50 {:.3} ms, p99 {:.3} ms (rasterization included); batch of 64: {per_sec:.0} drawings/s",
            latency[latency.len() / 2],
            latency[latency.len() * 99 / 100],
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
