//! Shared fixtures: the starter model, trained once per test binary and written as an
//! artifact, and a tiny model for tests that only need *a* model.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use doodlebox::jobs::JobConfig;
use doodlebox::ml::evaluation::Metrics;
use doodlebox::ml::train::{self, Hooks, TrainConfig, TrainedModel};
use doodlebox::ml::{artifact, synth};

/// Doodles per shape in the starter-model run (as the job runner's starter).
pub const STARTER_PER_CLASS: usize = 300;

/// Configuration of the starter-model run: exactly what a fresh install trains (28 px,
/// augmentation and scribbles on, a few epochs), so the figures the tests measure are the
/// product's.
pub fn starter_config() -> TrainConfig {
    JobConfig::starter().train_config()
}

/// The artifact directory of the starter model (trained on first use) and its metrics.
pub fn starter_model() -> &'static (PathBuf, Metrics) {
    static MODEL: OnceLock<(PathBuf, Metrics)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dataset = synth::starter_dataset(STARTER_PER_CLASS, starter_config().seed);
        let started = Instant::now();
        let model = train::train(&dataset, &starter_config(), Hooks::default())
            .expect("the starter model trains");
        eprintln!(
            "starter model: {} train + {} validation drawings, {:.1} s, accuracy {:.3}, top-3 {:.3}, {:.0} samples/s",
            model.metrics.train_samples,
            model.metrics.validation_samples,
            started.elapsed().as_secs_f64(),
            model.metrics.accuracy,
            model.metrics.top3_accuracy,
            model.metrics.history.last().map_or(0.0, |r| r.samples_per_sec),
        );
        let dir = scratch_dir("starter-model");
        artifact::write(&dir, &model).expect("the starter model is written");
        (dir, model.metrics)
    })
}

/// A model trained for one epoch on a handful of doodles: quick, not good.
pub fn tiny_model() -> TrainedModel {
    let dataset = synth::starter_dataset(10, 3);
    let config = TrainConfig {
        epochs: 1,
        batch_size: 16,
        validation_fraction: 0.3,
        ..TrainConfig::default()
    };
    train::train(&dataset, &config, Hooks::default()).expect("the tiny model trains")
}

/// A fresh, empty directory under the target directory, removed at the start of each run.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}
