//! Training: accuracy on synthetic doodles, the split, progress, cancellation, checkpoints,
//! and reading drawings a batch at a time (once per epoch, any number of workers, a step cap).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use doodlebox::ml::checkpoint::CheckpointError;
use doodlebox::ml::dataset::{self, DatasetError};
use doodlebox::ml::source::{SourceError, StrokeSource, Strokes};
use doodlebox::ml::synth;
use doodlebox::ml::train::{self, Control, Hooks, Progress, TrainConfig, TrainError};

use crate::helpers::{scratch_dir, starter_config, starter_model};

#[test]
fn training_on_synthetic_doodles_of_the_five_shapes_reaches_90_percent_validation_accuracy() {
    let (_, metrics) = starter_model();
    assert!(
        metrics.accuracy >= 0.9,
        "validation accuracy {}",
        metrics.accuracy
    );
    assert!(metrics.top3_accuracy >= metrics.accuracy);
    assert_eq!(metrics.history.len(), starter_config().epochs as usize);
    assert_eq!(metrics.per_class.len(), 5);
    assert_eq!(metrics.confusion.len(), 5);
    let total: u32 = metrics.confusion.iter().flatten().sum();
    assert_eq!(total as usize, metrics.validation_samples);
    for class in &metrics.per_class {
        assert!(class.recall > 0.7 && class.precision > 0.7, "{class:?}");
    }
}

#[test]
fn the_split_keeps_each_group_on_one_side_and_every_class_on_both() {
    let dataset = synth::starter_dataset(100, 5);
    let split = dataset::split(&dataset, 0.2, 9).unwrap();
    assert_eq!(
        split.train.len() + split.validation.len(),
        dataset.samples.len()
    );
    let groups = |side: &[usize]| -> HashSet<u64> {
        side.iter().map(|&i| dataset.samples[i].group).collect()
    };
    assert!(groups(&split.train).is_disjoint(&groups(&split.validation)));
    for label in 0..5 {
        let validation = split
            .validation
            .iter()
            .filter(|&&i| dataset.samples[i].label == label)
            .count();
        assert!(
            (15..=25).contains(&validation),
            "class {label}: {validation} of 100"
        );
    }
    assert_eq!(
        split,
        dataset::split(&dataset, 0.2, 9).unwrap(),
        "deterministic"
    );
}

#[test]
fn a_dataset_drawn_by_a_single_player_falls_back_to_a_stratified_random_split() {
    let mut dataset = synth::starter_dataset(20, 1);
    for sample in &mut dataset.samples {
        sample.group = 42;
    }
    let split = dataset::split(&dataset, 0.2, 0).unwrap();
    assert!(!split.player_independent);
    assert_eq!(split.train.len() + split.validation.len(), 100);
    for label in 0..5 {
        let held_out = split
            .validation
            .iter()
            .filter(|&&i| dataset.samples[i].label == label)
            .count();
        assert_eq!(held_out, 4, "class {label}: 20 % of 20");
    }
    // One player holding most drawings falls back too; many balanced players do not.
    let mut lopsided = synth::starter_dataset(100, 5);
    for sample in lopsided.samples.iter_mut().take(300) {
        sample.group = 7;
    }
    assert!(
        !dataset::split(&lopsided, 0.2, 0)
            .unwrap()
            .player_independent
    );
    let balanced = synth::starter_dataset(100, 5);
    assert!(
        dataset::split(&balanced, 0.2, 0)
            .unwrap()
            .player_independent
    );
    // Too few drawings to hold any out is still an error.
    let mut tiny = synth::starter_dataset(1, 1);
    for sample in &mut tiny.samples {
        sample.group = 42;
    }
    assert!(matches!(
        dataset::split(&tiny, 0.2, 0),
        Err(DatasetError::Split(_))
    ));
}

#[test]
fn bad_configurations_and_datasets_are_refused_before_any_work() {
    let dataset = synth::starter_dataset(5, 1);
    let bad = [
        TrainConfig {
            epochs: 0,
            ..TrainConfig::default()
        },
        TrainConfig {
            batch_size: 0,
            ..TrainConfig::default()
        },
        TrainConfig {
            learning_rate: f64::NAN,
            ..TrainConfig::default()
        },
        TrainConfig {
            image_size: 4,
            ..TrainConfig::default()
        },
        TrainConfig {
            validation_fraction: 0.9,
            ..TrainConfig::default()
        },
    ];
    for config in bad {
        let result = train::train(&dataset, &config, Hooks::default());
        assert!(
            matches!(result, Err(TrainError::InvalidConfig(_))),
            "{config:?}"
        );
    }
    let mut one_class = dataset.clone();
    one_class.classes.truncate(1);
    one_class.samples.retain(|s| s.label == 0);
    let result = train::train(&one_class, &TrainConfig::default(), Hooks::default());
    assert!(matches!(
        result,
        Err(TrainError::Dataset(DatasetError::Invalid(_)))
    ));
    let mut empty_drawing = synth::starter_dataset(10, 1);
    empty_drawing.samples[3].strokes.clear();
    let result = train::train(&empty_drawing, &TrainConfig::default(), Hooks::default());
    assert!(matches!(result, Err(TrainError::Raster { index: 3, .. })));
}

#[test]
fn a_run_stopped_after_epoch_1_resumes_from_its_checkpoint_and_finishes_all_epochs() {
    let dataset = synth::starter_dataset(40, 2);
    let config = TrainConfig {
        epochs: 3,
        batch_size: 32,
        ..TrainConfig::default()
    };
    let dir = scratch_dir("resume-checkpoint");

    let mut first: Vec<Progress> = Vec::new();
    let mut stop_after_epoch_1 = |p: &Progress| {
        first.push(p.clone());
        match p.epoch_done {
            Some(_) => Control::Stop,
            None => Control::Continue,
        }
    };
    let hooks = Hooks {
        progress: Some(&mut stop_after_epoch_1),
        checkpoint_dir: Some(&dir),
        ..Hooks::default()
    };
    let stopped = train::train(&dataset, &config, hooks);
    assert!(
        matches!(stopped, Err(TrainError::Cancelled { epochs_done: 1 })),
        "{stopped:?}"
    );
    assert!(first.iter().all(|p| p.epoch == 1 && p.epochs == 3));
    let steps = first[0].steps_per_epoch;
    assert_eq!(
        first.len(),
        steps + 1,
        "one report per step and one at the epoch's end"
    );
    assert!(first
        .iter()
        .all(|p| p.loss.is_finite() && p.samples_per_sec > 0.0));
    // The epoch's report gives the rate it trained at, not one diluted by validation.
    let epoch_end = first.last().unwrap();
    assert_eq!(
        Some(epoch_end.samples_per_sec),
        epoch_end.epoch_done.as_ref().map(|r| r.samples_per_sec)
    );
    assert!(dir.join("checkpoint.json").exists());

    let mut second: Vec<Progress> = Vec::new();
    let mut record = |p: &Progress| {
        second.push(p.clone());
        Control::Continue
    };
    let hooks = Hooks {
        progress: Some(&mut record),
        checkpoint_dir: Some(&dir),
        ..Hooks::default()
    };
    let model = train::train(&dataset, &config, hooks).expect("the resumed run finishes");
    assert_eq!(
        second.first().map(|p| p.epoch),
        Some(2),
        "resumes at epoch 2"
    );
    let epochs: Vec<u32> = model.metrics.history.iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, [1, 2, 3]);
    assert_eq!(
        model.metrics.history[0],
        first.last().unwrap().epoch_done.clone().unwrap()
    );
    let weights: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".safetensors"))
        .collect();
    assert_eq!(weights.len(), 1, "older checkpoint weights are removed");

    // A finished checkpoint resumes to a finished run without training again.
    let again = train::train(
        &dataset,
        &config,
        Hooks {
            checkpoint_dir: Some(&dir),
            ..Hooks::default()
        },
    )
    .expect("a finished checkpoint loads");
    assert_eq!(again.metrics.history, model.metrics.history);

    // Another configuration must not pick up this checkpoint.
    let other = TrainConfig { seed: 99, ..config };
    let result = train::train(
        &dataset,
        &other,
        Hooks {
            checkpoint_dir: Some(&dir),
            ..Hooks::default()
        },
    );
    assert!(matches!(
        result,
        Err(TrainError::Checkpoint(CheckpointError::Mismatch { .. }))
    ));
}

#[test]
fn cancelling_during_the_first_epoch_stops_at_once_with_no_epoch_done() {
    let dataset = synth::starter_dataset(20, 4);
    let mut calls = 0;
    let mut stop = |_: &Progress| {
        calls += 1;
        Control::Stop
    };
    let hooks = Hooks {
        progress: Some(&mut stop),
        ..Hooks::default()
    };
    // Small batches: many are still to be prepared when the trainer stops, so a preparing
    // thread that is not told to stop would block this call forever.
    let config = TrainConfig {
        batch_size: 4,
        ..TrainConfig::default()
    };
    let result = train::train(&dataset, &config, hooks);
    assert!(matches!(
        result,
        Err(TrainError::Cancelled { epochs_done: 0 })
    ));
    assert_eq!(calls, 1);
}

#[test]
fn the_dataset_hash_changes_with_any_point_and_is_stable_otherwise() {
    let dataset = synth::starter_dataset(5, 1);
    let mut moved = dataset.clone();
    moved.samples[7].strokes[0][0][0] += 0.5;
    assert_eq!(dataset.hash(), synth::starter_dataset(5, 1).hash());
    assert_ne!(dataset.hash(), moved.hash());
}

/// A dataset that counts how often each drawing's strokes are read, and can fail a read.
struct CountingSource {
    dataset: doodlebox::ml::dataset::Dataset,
    reads: Vec<AtomicUsize>,
    failing: Option<usize>,
}

impl CountingSource {
    fn new(dataset: doodlebox::ml::dataset::Dataset, failing: Option<usize>) -> Self {
        let reads = (0..dataset.samples.len())
            .map(|_| AtomicUsize::new(0))
            .collect();
        Self {
            dataset,
            reads,
            failing,
        }
    }
}

impl StrokeSource for CountingSource {
    fn strokes(&self, index: usize) -> Result<Strokes, SourceError> {
        self.reads[index].fetch_add(1, Ordering::Relaxed);
        if self.failing == Some(index) {
            return Err(SourceError {
                index,
                message: "the disk is on fire".into(),
                transient: true,
            });
        }
        self.dataset.strokes(index)
    }
}

#[test]
fn a_streamed_run_reads_every_drawing_once_per_epoch_and_keeps_none() {
    let source = CountingSource::new(synth::starter_dataset(30, 6), None);
    let config = TrainConfig {
        epochs: 2,
        batch_size: 16,
        ..TrainConfig::default()
    };
    let catalog = source.dataset.catalog();
    let model = train::train_from(catalog, &source, &config, Hooks::default()).unwrap();
    // Training drawings once per epoch in training, validation drawings once per epoch in
    // validation (the final measurements reuse the last epoch's): nothing is kept between.
    let reads: Vec<usize> = source
        .reads
        .iter()
        .map(|r| r.load(Ordering::Relaxed))
        .collect();
    assert!(reads.iter().all(|&n| n == 2), "{reads:?}");
    assert_eq!(
        model.metrics.train_samples + model.metrics.validation_samples,
        150
    );
    assert_eq!(model.dataset_hash, source.dataset.hash());
}

#[test]
fn a_step_cap_ends_each_epoch_early_and_still_validates_on_the_whole_validation_set() {
    let dataset = synth::starter_dataset(30, 9);
    let config = TrainConfig {
        epochs: 1,
        batch_size: 8,
        max_steps_per_epoch: Some(2),
        ..TrainConfig::default()
    };
    let mut steps = Vec::new();
    let mut record = |p: &Progress| {
        steps.push((p.step, p.steps_per_epoch));
        Control::Continue
    };
    let hooks = Hooks {
        progress: Some(&mut record),
        ..Hooks::default()
    };
    let model = train::train(&dataset, &config, hooks).unwrap();
    assert_eq!(steps, [(1, 2), (2, 2), (2, 2)]);
    let split = dataset::split(&dataset, config.validation_fraction, config.seed).unwrap();
    assert_eq!(model.metrics.validation_samples, split.validation.len());
}

#[test]
fn a_split_seed_chooses_the_held_out_drawings_apart_from_the_training_seed() {
    // Every drawing its own group, as in a sample without players: any drawing may be held out.
    let mut drawings = synth::starter_dataset(20, 4);
    for (i, sample) in drawings.samples.iter_mut().enumerate() {
        sample.group = i as u64;
    }
    let source = CountingSource::new(drawings, None);
    let config = TrainConfig {
        epochs: 1,
        batch_size: 1,
        max_steps_per_epoch: Some(1),
        seed: 1,
        split_seed: Some(8),
        ..TrainConfig::default()
    };
    let by_split_seed = dataset::split(&source.dataset, config.validation_fraction, 8).unwrap();
    let by_seed = dataset::split(&source.dataset, config.validation_fraction, 1).unwrap();
    assert_ne!(by_split_seed.validation, by_seed.validation);
    let catalog = source.dataset.catalog();
    train::train_from(catalog, &source, &config, Hooks::default()).unwrap();
    // One training drawing is read, and every validation drawing once: the held-out side is
    // the split seed's.
    let read: HashSet<usize> = (0..source.reads.len())
        .filter(|&i| source.reads[i].load(Ordering::Relaxed) > 0)
        .collect();
    assert_eq!(read.len(), by_split_seed.validation.len() + 1);
    assert!(by_split_seed.validation.iter().all(|i| read.contains(i)));
}

#[test]
fn a_drawing_that_cannot_be_read_fails_the_run_with_its_index() {
    let source = CountingSource::new(synth::starter_dataset(10, 3), Some(7));
    let catalog = source.dataset.catalog();
    let result = train::train_from(catalog, &source, &TrainConfig::default(), Hooks::default());
    match result {
        Err(TrainError::Source(e)) => {
            assert_eq!(e.index, 7);
            assert!(e.transient);
        }
        other => panic!("{other:?}"),
    }
}
