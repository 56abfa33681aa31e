//! Training throughput: Doodlebox's training loop (`ml::train`, augmentation off, so it
//! trains on images rasterized once) against the same architecture, batch size, optimiser
//! and thread count in PyTorch eager from Python (`benches/python/train_pytorch.py`) on the
//! same pre-rasterized images. Target (issue #4): ratio ≥ 1.0. Also prints what share of a
//! training step rasterizing would take when augmentation is on.
//!
//! Run: `cargo bench --bench train_vs_pytorch`. Needs the Python that carries the libtorch in
//! use (install.sh's `.venv`); without it, only Doodlebox's figures are printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use doodlebox::ml::dataset::Dataset;
use doodlebox::ml::train::{self, Hooks, TrainConfig};
use doodlebox::ml::{raster, synth};

#[path = "common/python.rs"]
mod python;

use python::python;

const PER_CLASS: usize = 400;
const EPOCHS: u32 = 4;
const BATCH: usize = 64;
const SIZE: u32 = 28;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dataset = synth::starter_dataset(PER_CLASS, 5);
    let config = TrainConfig {
        epochs: EPOCHS,
        batch_size: BATCH,
        image_size: SIZE,
        augment: false,
        seed: 1,
        ..TrainConfig::default()
    };
    let (ours, train_samples) = steady_throughput(&dataset, &config, threads);
    println!("training benchmark: {train_samples} training images of {SIZE}x{SIZE}, batch {BATCH}, {threads} threads, {EPOCHS} epochs (first dropped)");
    println!("doodlebox (tch):        {ours:>8.0} samples/s");

    // Rasterizing cost per drawing, and what it costs a training run with augmentation on,
    // where every batch is augmented and rasterized afresh (on a second thread, ahead of
    // the batch being trained on).
    let started = Instant::now();
    let mut pixels = Vec::with_capacity(dataset.samples.len() * (SIZE * SIZE) as usize);
    for sample in &dataset.samples {
        pixels
            .extend(raster::rasterize(&sample.strokes, SIZE).expect("synthetic doodles rasterize"));
    }
    let raster_per_sec = dataset.samples.len() as f64 / started.elapsed().as_secs_f64();
    let serial_share = (1.0 / raster_per_sec) / (1.0 / raster_per_sec + 1.0 / ours);
    let augmenting = TrainConfig {
        augment: true,
        ..config.clone()
    };
    let (with_augmentation, _) = steady_throughput(&dataset, &augmenting, threads);
    println!("rasterization:          {raster_per_sec:>8.0} drawings/s alone ({:.1} % of a step if done in line)", serial_share * 100.0);
    println!(
        "with augmentation on:   {with_augmentation:>8.0} samples/s: augmenting + rasterizing costs {:.1} % of training throughput",
        (1.0 - with_augmentation / ours).max(0.0) * 100.0
    );

    let Some(python) = python() else {
        println!("pytorch comparison skipped: no Python next to LIBTORCH");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let labels: Vec<u8> = dataset
        .samples
        .iter()
        .flat_map(|s| (s.label as i64).to_le_bytes())
        .collect();
    let pixel_bytes: Vec<u8> = pixels.iter().flat_map(|p| p.to_le_bytes()).collect();
    // PyTorch trains on the same share of the data as Doodlebox's training split.
    let keep = train_samples.min(dataset.samples.len());
    let pixel_path = write(
        dir.path(),
        "pixels.f32",
        &pixel_bytes[..keep * (SIZE * SIZE) as usize * 4],
    );
    let label_path = write(dir.path(), "labels.i64", &labels[..keep * 8]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/train_pytorch.py");
    let output = Command::new(&python)
        .arg(&script)
        .args([&pixel_path, &label_path])
        .args([
            SIZE.to_string(),
            dataset.classes.len().to_string(),
            EPOCHS.to_string(),
            BATCH.to_string(),
            threads.to_string(),
        ])
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(line) = stdout.lines().find(|l| l.starts_with('{')) else {
        println!(
            "pytorch comparison failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    };
    let parsed: serde_json::Value = serde_json::from_str(line).expect("the script prints JSON");
    let rates: Vec<f64> = parsed["samples_per_sec"]
        .as_array()
        .expect("rates")
        .iter()
        .filter_map(|v| v.as_f64())
        .skip(1)
        .collect();
    let theirs = median(rates);
    println!("pytorch eager (python): {theirs:>8.0} samples/s");
    println!(
        "ratio doodlebox / pytorch: {:.2}x (target >= 1.0)",
        ours / theirs
    );
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("temp file");
    path
}

/// Trains `config` on `threads` threads; answers the median samples/s of the epochs after
/// the first (which warms caches and allocators), and the training set's size.
fn steady_throughput(dataset: &Dataset, config: &TrainConfig, threads: usize) -> (f64, usize) {
    let model = train::train(
        dataset,
        config,
        Hooks {
            threads: Some(threads),
            ..Hooks::default()
        },
    )
    .expect("the benchmark dataset trains");
    let rates = model
        .metrics
        .history
        .iter()
        .skip(1)
        .map(|r| r.samples_per_sec)
        .collect();
    (median(rates), model.metrics.train_samples)
}
