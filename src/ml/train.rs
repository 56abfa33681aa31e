//! Trains a [`DoodleNet`] on a [`Dataset`]: splits it (see [`dataset::split`]), rasterizes
//! the validation set once and (augmented) training batches every epoch, optimises with Adam,
//! reports progress to a callback that may cancel, checkpoints after every epoch and resumes
//! from the last checkpoint (see [`super::checkpoint`]), and measures the final model (see
//! [`super::evaluation`]).
//!
//! Everything random derives from the configuration's seed: the split from the seed alone,
//! each epoch's shuffle, augmentation and dropout from the seed and the epoch number. A run
//! resumed after epoch `n` therefore sees the same data order and augmentations as an
//! uninterrupted one; only Adam's moment estimates restart (checkpoints hold no optimizer
//! state), which costs a few steps of momentum, not correctness.
//!
//! `tch::manual_seed` is process-wide: two trainings at once in one process would disturb each
//! other's dropout masks (not their correctness). Run one training at a time.

use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, TchError, Tensor};

use super::augment::augment_with_rng;
use super::checkpoint::{Checkpoint, CheckpointError};
use super::dataset::{self, Dataset, DatasetError, Split};
use super::evaluation::{self, EpochRecord};
use super::net::{input_tensor, DoodleNet};
use super::raster::{self, RasterError};
use super::synth;
pub use super::types::{
    TrainConfig, TrainedModel, DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_IMAGE_SIZE,
    DEFAULT_LEARNING_RATE, DEFAULT_VALIDATION_FRACTION, MAX_BATCH_SIZE, MAX_EPOCHS,
};

/// Drawings evaluated per forward pass when measuring the validation set.
const EVAL_CHUNK: usize = 512;

/// Training batches prepared ahead of the one being trained on.
const PREFETCH_BATCHES: usize = 2;

/// Weight of the scribble loss (cross-entropy against the uniform distribution) next to the
/// drawings' loss, when a run adds scribbles (`TrainConfig::scribble_share`).
const SCRIBBLE_LOSS_WEIGHT: f64 = 0.5;

/// Where a running training stands; given to the progress callback after every step and
/// once more at the end of every epoch (then with `epoch_done` set).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// The epoch in progress, 1-based.
    pub epoch: u32,
    /// Epochs the run will do in all.
    pub epochs: u32,
    /// Steps done in this epoch, 1-based (equal to `steps_per_epoch` at its end).
    pub step: usize,
    /// Steps in one epoch.
    pub steps_per_epoch: usize,
    /// Mean training loss of this epoch so far.
    pub loss: f64,
    /// Training accuracy of this epoch so far (on augmented drawings when augmenting).
    pub accuracy: f64,
    /// Training throughput of this epoch so far, rasterization included.
    pub samples_per_sec: f64,
    /// Estimated seconds until the run ends, from this epoch's throughput.
    pub eta_secs: f64,
    /// The finished epoch's record, validation included; `None` during the epoch.
    pub epoch_done: Option<EpochRecord>,
}

/// What the progress callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop now; [`train`] returns [`TrainError::Cancelled`] and the last checkpoint stays.
    /// (At the end of the last epoch there is nothing left to stop: the run finishes.)
    Stop,
}

/// How a run reports and persists: everything about a run that is not its configuration.
#[derive(Default)]
pub struct Hooks<'a> {
    /// Called after every step and at the end of every epoch; returning [`Control::Stop`]
    /// cancels the run.
    pub progress: Option<&'a mut dyn FnMut(&Progress) -> Control>,
    /// Directory for a checkpoint after every epoch; when it already holds one from the
    /// same configuration and dataset, the run resumes after that epoch. `None`: no
    /// checkpoints.
    pub checkpoint_dir: Option<&'a Path>,
    /// Device to train on; `None` means `Device::cuda_if_available()`.
    pub device: Option<Device>,
    /// Torch intra-op threads for this run, set on the calling thread; `None` means one per
    /// available core.
    pub threads: Option<usize>,
}

/// Why a training run did not produce a model.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration field is out of range (a client error).
    #[error("invalid training configuration: {0}")]
    InvalidConfig(String),
    /// The dataset cannot be trained on, or not split.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A drawing cannot be rasterized (empty, non-finite).
    #[error("sample {index} cannot be rasterized: {source}")]
    Raster {
        /// Index of the sample in the dataset.
        index: usize,
        /// Why.
        source: RasterError,
    },
    /// The progress callback asked to stop; the checkpoint after `epochs_done` remains.
    #[error("training cancelled after {epochs_done} epoch(s)")]
    Cancelled {
        /// Epochs completed (and checkpointed, when checkpointing) before stopping.
        epochs_done: u32,
    },
    /// The loss became NaN or infinite (learning rate too high, usually).
    #[error("the training loss diverged in epoch {epoch}")]
    Diverged {
        /// The 1-based epoch.
        epoch: u32,
    },
    /// The checkpoint cannot be resumed from or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// libtorch failed.
    #[error("torch: {0}")]
    Torch(#[from] TchError),
}

/// Trains a model on `dataset` as `config` says, reporting to and persisting through
/// `hooks`. Blocking and CPU- or GPU-heavy: call it from a dedicated thread.
pub fn train(
    dataset: &Dataset,
    config: &TrainConfig,
    hooks: Hooks<'_>,
) -> Result<TrainedModel, TrainError> {
    config
        .validate()
        .map_err(|e| TrainError::InvalidConfig(e.0))?;
    dataset::validate(dataset)?;
    let Hooks {
        mut progress,
        checkpoint_dir,
        device,
        threads,
    } = hooks;
    let device = device.unwrap_or_else(Device::cuda_if_available);
    // Torch's thread count is per calling thread, but a fresh thread starts with the value
    // last set anywhere (e.g. 1 by the classifier): set it for this run explicitly.
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    tch::set_num_threads(threads.clamp(1, i32::MAX as usize) as i32);
    let dataset_hash = dataset.hash();
    let split = dataset::split(dataset, config.validation_fraction, config.seed)?;
    let size = config.image_size;
    let pixels = (size * size) as usize;

    let validation = Images::rasterize(dataset, &split.validation, size)?;
    // Without augmentation the training pixels never change: draw them once.
    let fixed_train = match config.augment {
        false => Some(Images::rasterize(dataset, &split.train, size)?),
        true => None,
    };

    tch::manual_seed(mix(config.seed, u64::MAX) as i64);
    let mut var_store = nn::VarStore::new(device);
    let net = DoodleNet::new(&var_store.root(), dataset.classes.len() as i64);
    let mut history = Vec::new();
    if let Some(dir) = checkpoint_dir {
        if let Some(checkpoint) = Checkpoint::read(dir)? {
            checkpoint.check(dir, config, &dataset_hash, &dataset.classes)?;
            checkpoint.load_weights(dir, &mut var_store)?;
            history = checkpoint.history;
        }
    }
    let mut optimizer = nn::Adam::default().build(&var_store, config.learning_rate)?;

    let steps_per_epoch = split.train.len().div_ceil(config.batch_size);
    for epoch in history.len() as u32..config.epochs {
        let epoch_seed = mix(config.seed, u64::from(epoch));
        tch::manual_seed(epoch_seed as i64);
        let mut rng = StdRng::seed_from_u64(epoch_seed);
        let mut order: Vec<usize> = (0..split.train.len()).collect();
        order.shuffle(&mut rng);

        let started = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0i64, 0usize);
        // A second thread prepares (augments and rasterizes) the next batches while this one
        // trains, so rasterizing hides behind the forward and backward passes. It owns the
        // epoch's random generator after the shuffle, so results do not depend on timing.
        let (batches, prepared) =
            mpsc::sync_channel::<Result<(Vec<usize>, Vec<f32>), TrainError>>(PREFETCH_BATCHES);
        let trained_epoch = std::thread::scope(|scope| -> Result<(), TrainError> {
            let (order, fixed_train, split) = (&order, &fixed_train, &split);
            scope.spawn(move || {
                for batch in order.chunks(config.batch_size) {
                    let scribbles = scribbles_for(batch.len(), config.scribble_share);
                    let mut buffer = vec![0.0f32; (batch.len() + scribbles) * pixels];
                    let filled = fill_batch(
                        dataset,
                        split,
                        fixed_train.as_ref(),
                        config,
                        &mut rng,
                        batch,
                        &mut buffer,
                    );
                    if batches
                        .send(filled.map(|()| (batch.to_vec(), buffer)))
                        .is_err()
                    {
                        return; // the trainer stopped early
                    }
                }
            });
            // `into_iter` moves the receiver in here: returning early (cancel, error) drops it, so
            // the producer's next send fails and the scope can join it instead of deadlocking.
            for (step, item) in prepared.into_iter().enumerate() {
                let (batch, buffer) = item?;
                let labels: Vec<i64> = batch
                    .iter()
                    .map(|&i| dataset.samples[split.train[i]].label as i64)
                    .collect();
                let scribbles = buffer.len() / pixels - batch.len();
                let xs = input_tensor(&buffer, batch.len() + scribbles, size, device);
                let ys = Tensor::from_slice(&labels).to_device(device);
                let all_logits = net.forward_t(&xs, true);
                let logits = all_logits.narrow(0, 0, batch.len() as i64);
                let mut loss = logits.cross_entropy_for_logits(&ys);
                if scribbles > 0 {
                    // Cross-entropy against the uniform distribution: no class for scribbles.
                    let spread = all_logits
                        .narrow(0, batch.len() as i64, scribbles as i64)
                        .log_softmax(-1, Kind::Float)
                        .mean_dim(-1, false, Kind::Float)
                        .mean(Kind::Float);
                    loss -= spread * SCRIBBLE_LOSS_WEIGHT;
                }
                optimizer.backward_step(&loss);

                let batch_loss = f64::try_from(&loss)?;
                if !batch_loss.is_finite() {
                    return Err(TrainError::Diverged { epoch: epoch + 1 });
                }
                loss_sum += batch_loss * batch.len() as f64;
                correct += i64::try_from(logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64))?;
                seen += batch.len();
                let report =
                    step_progress(config, epoch, step + 1, steps_per_epoch, seen, &started);
                let report = Progress {
                    loss: loss_sum / seen as f64,
                    accuracy: correct as f64 / seen as f64,
                    ..report
                };
                if let Some(callback) = progress.as_mut() {
                    if callback(&report) == Control::Stop {
                        return Err(TrainError::Cancelled { epochs_done: epoch });
                    }
                }
            }
            Ok(())
        });
        trained_epoch?;

        let samples_per_sec = seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let (validation_loss, logits) = evaluate(&net, &validation, size, device)?;
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            validation_loss,
            validation_accuracy: evaluation::accuracy(&logits, &validation.labels)?,
            samples_per_sec,
        };
        history.push(record.clone());
        if let Some(dir) = checkpoint_dir {
            Checkpoint::write(
                dir,
                config,
                &dataset_hash,
                &dataset.classes,
                &history,
                &var_store,
            )?;
        }
        if let Some(callback) = progress.as_mut() {
            let report = step_progress(
                config,
                epoch,
                steps_per_epoch,
                steps_per_epoch,
                seen,
                &started,
            );
            let report = Progress {
                loss: record.train_loss,
                accuracy: record.train_accuracy,
                epoch_done: Some(record),
                ..report
            };
            if callback(&report) == Control::Stop && epoch + 1 < config.epochs {
                return Err(TrainError::Cancelled {
                    epochs_done: epoch + 1,
                });
            }
        }
    }

    let (loss, logits) = evaluate(&net, &validation, size, device)?;
    let mut metrics = evaluation::measure(
        &dataset.classes,
        &logits,
        &validation.labels,
        loss,
        history,
        split.train.len(),
    )?;
    metrics.player_independent = split.player_independent;
    Ok(TrainedModel {
        classes: dataset.classes.clone(),
        config: config.clone(),
        metrics,
        dataset_hash,
        device,
        var_store,
        net,
    })
}

/// A progress report for a step, with loss and accuracy left at zero for the caller.
fn step_progress(
    config: &TrainConfig,
    epoch: u32,
    step: usize,
    steps_per_epoch: usize,
    seen: usize,
    started: &Instant,
) -> Progress {
    let samples_per_sec = seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let per_epoch = (seen as f64 / step as f64) * steps_per_epoch as f64;
    let remaining = per_epoch * f64::from(config.epochs - epoch) - seen as f64;
    Progress {
        epoch: epoch + 1,
        epochs: config.epochs,
        step,
        steps_per_epoch,
        loss: 0.0,
        accuracy: 0.0,
        samples_per_sec,
        eta_secs: remaining.max(0.0) / samples_per_sec.max(1e-9),
        epoch_done: None,
    }
}

/// SplitMix64 of `seed` and `salt`: independent-looking seeds for each epoch and purpose.
fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) & (i64::MAX as u64)
}

/// Rasterized drawings with their labels, for sets drawn once.
struct Images {
    /// `labels.len()` images of `size * size` values, concatenated.
    pixels: Vec<f32>,
    /// The label of each image.
    labels: Vec<i64>,
}

impl Images {
    /// Rasterizes the samples at `indices`.
    fn rasterize(dataset: &Dataset, indices: &[usize], size: u32) -> Result<Images, TrainError> {
        let pixels = (size * size) as usize;
        let mut images = Images {
            pixels: vec![0.0; indices.len() * pixels],
            labels: Vec::with_capacity(indices.len()),
        };
        for (slot, &index) in indices.iter().enumerate() {
            let sample = &dataset.samples[index];
            let out = &mut images.pixels[slot * pixels..(slot + 1) * pixels];
            raster::rasterize_into(&sample.strokes, size, out)
                .map_err(|source| TrainError::Raster { index, source })?;
            images.labels.push(sample.label as i64);
        }
        Ok(images)
    }

    /// The `slot`-th image.
    fn image(&self, slot: usize, pixels: usize) -> &[f32] {
        &self.pixels[slot * pixels..(slot + 1) * pixels]
    }
}

/// Mean loss and the CPU logits `[n, classes]` of the network on `images`, in eval mode.
fn evaluate(
    net: &DoodleNet,
    images: &Images,
    size: u32,
    device: Device,
) -> Result<(f64, Tensor), TrainError> {
    let pixels = (size * size) as usize;
    let n = images.labels.len();
    tch::no_grad(|| {
        let mut chunks = Vec::new();
        for start in (0..n).step_by(EVAL_CHUNK) {
            let end = (start + EVAL_CHUNK).min(n);
            let xs = input_tensor(
                &images.pixels[start * pixels..end * pixels],
                end - start,
                size,
                device,
            );
            chunks.push(net.forward_t(&xs, false).to_device(Device::Cpu));
        }
        let logits = Tensor::cat(&chunks, 0);
        let labels = Tensor::from_slice(&images.labels);
        let loss = f64::try_from(logits.cross_entropy_for_logits(&labels))?;
        Ok((loss, logits))
    })
}

/// Scribbles to add to a batch of `drawings` at `share` (at least one when the share is
/// positive, so small batches get some too).
fn scribbles_for(drawings: usize, share: f32) -> usize {
    if share <= 0.0 {
        0
    } else {
        ((drawings as f32 * share).round() as usize).max(1)
    }
}

/// Fills `buffer` with the batch's images: copies of the fixed ones, or freshly augmented
/// and rasterized drawings.
fn fill_batch(
    dataset: &Dataset,
    split: &Split,
    fixed_train: Option<&Images>,
    config: &TrainConfig,
    rng: &mut StdRng,
    batch: &[usize],
    buffer: &mut [f32],
) -> Result<(), TrainError> {
    let pixels = (config.image_size * config.image_size) as usize;
    // The buffer's room beyond the batch is for scribbles.
    let scribbles = buffer.len() / pixels - batch.len();
    for slot in 0..scribbles {
        // Training scribbles come from seeds below the held-out range.
        let seed = rng.random::<u64>() % synth::HELD_OUT_SCRIBBLE_SEEDS;
        let out = &mut buffer[(batch.len() + slot) * pixels..(batch.len() + slot + 1) * pixels];
        raster::rasterize_into(&synth::scribble(seed), config.image_size, out).map_err(
            |source| TrainError::Raster {
                index: usize::MAX,
                source,
            },
        )?;
    }
    for (slot, &i) in batch.iter().enumerate() {
        let out = &mut buffer[slot * pixels..(slot + 1) * pixels];
        match fixed_train {
            Some(images) => out.copy_from_slice(images.image(i, pixels)),
            None => {
                let index = split.train[i];
                let strokes = &dataset.samples[index].strokes;
                let augmented = augment_with_rng(strokes, rng, &config.augment_params);
                raster::rasterize_into(&augmented, config.image_size, out)
                    .map_err(|source| TrainError::Raster { index, source })?;
            }
        }
    }
    Ok(())
}
