//! Trains a [`DoodleNet`] on drawings given as a [`Catalog`] and a [`StrokeSource`] (or an
//! in-memory [`Dataset`]): splits them (see [`dataset::split_entries`]), reads, augments and
//! rasterizes every batch on worker threads that run ahead of the device (see
//! [`super::batches`]), optimises with Adam, reports progress to a callback that may cancel,
//! checkpoints after every epoch and resumes from the last checkpoint (see
//! [`super::checkpoint`]), and measures the final model (see [`super::evaluation`]).
//!
//! Memory is bounded by the batches in flight, a few counts per class and per player, and
//! one bit per drawing (its side of the split): each drawing's label is read from the
//! catalog when its batch is made, and no drawing's strokes, pixels or logits are kept
//! beyond its batch, for training and for validation alike (validation walks its side in
//! order and is tallied a chunk at a time, see [`super::evaluation`]); training walks its
//! side in a shuffled order, a position at a time.
//!
//! Everything random derives from the configuration's seed: the split from the seed alone
//! (or from the split seed, when the configuration sets one), each epoch's shuffle (a
//! [`Permutation`], computed a position at a time) and dropout from the seed and the epoch
//! number, each batch's augmentation from the epoch's seed and the batch number. A run
//! resumed after epoch `n` therefore sees the same data order and augmentations as an
//! uninterrupted one, however many workers rasterize; only Adam's moment estimates restart
//! (checkpoints hold no optimizer state), which costs a few steps of momentum, not
//! correctness.
//!
//! `tch::manual_seed` is process-wide: two trainings at once in one process would disturb each
//! other's dropout masks (not their correctness). Run one training at a time.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, TchError, Tensor};

use super::augment::augment_with_rng;
use super::batches;
use super::checkpoint::{Checkpoint, CheckpointError};
use super::dataset::{self, Dataset, DatasetError, Sides};
use super::evaluation::{EpochRecord, Tally};
use super::net::{copy_features, geometry_tensor, input_tensor, DoodleNet, FeaturesMismatch};
use super::permutation::Permutation;
use super::raster::{self, RasterError};
use super::source::{Catalog, Entries, SourceError, StrokeSource};
use super::synth;
pub use super::types::{
    TrainConfig, TrainedModel, DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_IMAGE_SIZE,
    DEFAULT_LEARNING_RATE, DEFAULT_VALIDATION_FRACTION, MAX_BATCH_SIZE, MAX_EPOCHS,
};

/// Drawings evaluated per forward pass when measuring the validation set. The forward pass's
/// activations dominate the memory of validation (at 512, the first convolution's output
/// alone is 26 MB at 28 px and 134 MB at 64 px, and batch norm and ReLU make more of the same
/// size) and a larger chunk is hardly faster on the CPU; 128 keeps validation's peak near
/// training's (batches of 64 with their gradients).
const EVAL_CHUNK: usize = 128;

/// Rasterizing threads at most, whatever the core count (beyond this the reads and the
/// device, not rasterizing, limit a run).
const MAX_RASTER_WORKERS: usize = 8;

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
    /// What the rasterizing workers could deliver this epoch (reading, augmenting and
    /// rasterizing, all workers together): above `samples_per_sec`, the device is the limit.
    pub raster_samples_per_sec: f64,
    /// Share of this epoch's time the trainer waited for a batch (0: never starved).
    pub input_wait_share: f64,
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
    /// Threads that read and rasterize batches; `None`: half the cores when training on the
    /// CPU (the other half runs torch), every core up to [`MAX_RASTER_WORKERS`] on a GPU.
    pub raster_workers: Option<usize>,
    /// A pretrained network of the configuration's architecture to start from: every layer
    /// but the output layer is copied from it (see [`super::net::copy_features`]), the output
    /// layer starts random for this run's classes. `None`: all random. A resumed checkpoint
    /// replaces them all.
    pub initial_weights: Option<&'a nn::VarStore>,
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
    /// A drawing's strokes could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
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
    /// The pretrained weights to start from are of another architecture.
    #[error(transparent)]
    Pretrained(#[from] FeaturesMismatch),
}

/// Trains a model on an in-memory `dataset` as `config` says: [`train_from`] with the
/// dataset as catalog and stroke source.
pub fn train(
    dataset: &Dataset,
    config: &TrainConfig,
    hooks: Hooks<'_>,
) -> Result<TrainedModel, TrainError> {
    dataset::validate(dataset)?;
    train_from(dataset.catalog(), dataset, config, hooks)
}

/// Trains a model on the drawings `catalog` lists, reading their strokes from `source` a
/// batch at a time, as `config` says, reporting to and persisting through `hooks`. Blocking
/// and CPU- or GPU-heavy: call it from a dedicated thread.
pub fn train_from(
    catalog: Catalog,
    source: &dyn StrokeSource,
    config: &TrainConfig,
    hooks: Hooks<'_>,
) -> Result<TrainedModel, TrainError> {
    config
        .validate()
        .map_err(|e| TrainError::InvalidConfig(e.0))?;
    dataset::validate_entries(&catalog.classes, catalog.entries.as_ref())?;
    let Hooks {
        mut progress,
        checkpoint_dir,
        device,
        threads,
        raster_workers,
        initial_weights,
    } = hooks;
    let device = device.unwrap_or_else(Device::cuda_if_available);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    // Torch's thread count is per calling thread, but a fresh thread starts with the value
    // last set anywhere (e.g. 1 by the classifier): set it for this run explicitly.
    let threads = threads.unwrap_or(cores);
    tch::set_num_threads(threads.clamp(1, i32::MAX as usize) as i32);
    let workers = raster_workers
        .unwrap_or(match device {
            Device::Cpu => cores / 2,
            _ => cores,
        })
        .clamp(1, MAX_RASTER_WORKERS);
    let Catalog {
        classes,
        entries,
        hash: dataset_hash,
    } = catalog;
    let split = dataset::split_entries(
        entries.as_ref(),
        classes.len(),
        config.validation_fraction,
        config.split_seed(),
    )?;
    let reader = Reader {
        source,
        entries: entries.as_ref(),
        config,
        workers,
    };

    tch::manual_seed(mix(config.seed, u64::MAX) as i64);
    let mut var_store = nn::VarStore::new(device);
    let net = DoodleNet::with_inputs(
        &var_store.root(),
        classes.len() as i64,
        config.architecture,
        config.raster.channels() as i64,
        config.geometry_features() as i64,
    );
    if let Some(pretrained) = initial_weights {
        copy_features(pretrained, &var_store)?;
    }
    let mut history = Vec::new();
    if let Some(dir) = checkpoint_dir {
        if let Some(checkpoint) = Checkpoint::read(dir)? {
            checkpoint.check(dir, config, &dataset_hash, &classes)?;
            checkpoint.load_weights(dir, &mut var_store)?;
            history = checkpoint.history;
        }
    }
    let mut optimizer = if config.weight_decay > 0.0 {
        let adam_w = nn::AdamW {
            wd: config.weight_decay,
            ..Default::default()
        };
        adam_w.build(&var_store, config.learning_rate)?
    } else {
        nn::Adam::default().build(&var_store, config.learning_rate)?
    };

    let full_steps = split.train_len().div_ceil(config.batch_size);
    let steps_per_epoch = config
        .max_steps_per_epoch
        .map_or(full_steps, |cap| cap.min(full_steps));
    // The last epoch's validation, reused for the final measurements.
    let mut last_validation = None;
    for epoch in history.len() as u32..config.epochs {
        let epoch_seed = mix(config.seed, u64::from(epoch));
        tch::manual_seed(epoch_seed as i64);
        // The epoch's order, a position at a time (no shuffled copy of the training set):
        // position `k` is the `order.at(k)`-th training drawing in index order.
        let order = Permutation::new(split.train_len(), epoch_seed);

        let started = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0i64, 0usize);
        let busy_nanos = AtomicU64::new(0);
        let mut waited = 0.0f64;
        std::thread::scope(|scope| -> Result<(), TrainError> {
            let (order, split, busy_nanos, reader) = (&order, &split, &busy_nanos, &reader);
            let prepared = batches::in_order(scope, steps_per_epoch, workers, move |b| {
                let begun = Instant::now();
                let indices: Vec<usize> = (b * config.batch_size
                    ..((b + 1) * config.batch_size).min(order.len()))
                    .map(|k| split.train_at(order.at(k)))
                    .collect();
                let rng = StdRng::seed_from_u64(mix(epoch_seed, b as u64));
                let batch = reader.training_batch(&indices, rng);
                busy_nanos.fetch_add(begun.elapsed().as_nanos() as u64, Ordering::Relaxed);
                batch
            });
            let mut waiting = Instant::now();
            for (step, batch) in prepared.enumerate() {
                waited += waiting.elapsed().as_secs_f64();
                let batch = batch?;
                let drawings = batch.labels.len();
                let xs = input_tensor(
                    &batch.pixels,
                    batch.rows,
                    config.raster.channels(),
                    config.image_size,
                    device,
                );
                let geometry = batch.geometry_tensor(config, device);
                let ys = Tensor::from_slice(&batch.labels).to_device(device);
                let all_logits = net.forward_with(&xs, geometry.as_ref(), true);
                let logits = all_logits.narrow(0, 0, drawings as i64);
                let mut loss = if config.label_smoothing > 0.0 {
                    let (mean, no_ignored) = (tch::Reduction::Mean, -100);
                    let smoothing = config.label_smoothing;
                    logits.cross_entropy_loss::<Tensor>(&ys, None, mean, no_ignored, smoothing)
                } else {
                    logits.cross_entropy_for_logits(&ys)
                };
                let scribbles = batch.rows - drawings;
                if scribbles > 0 {
                    // Cross-entropy against the uniform distribution: no class for scribbles.
                    let spread = all_logits
                        .narrow(0, drawings as i64, scribbles as i64)
                        .log_softmax(-1, Kind::Float)
                        .mean_dim(-1, false, Kind::Float)
                        .mean(Kind::Float);
                    loss -= spread * SCRIBBLE_LOSS_WEIGHT;
                }
                if !config.lr_schedule.is_default() {
                    let done = epoch as usize * steps_per_epoch + step;
                    let all = config.epochs as usize * steps_per_epoch;
                    optimizer.set_lr(config.lr_schedule.rate(config.learning_rate, done, all));
                }
                optimizer.backward_step(&loss);

                let batch_loss = f64::try_from(&loss)?;
                if !batch_loss.is_finite() {
                    return Err(TrainError::Diverged { epoch: epoch + 1 });
                }
                loss_sum += batch_loss * drawings as f64;
                correct += i64::try_from(logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64))?;
                seen += drawings;
                let report = Progress {
                    loss: loss_sum / seen as f64,
                    accuracy: correct as f64 / seen as f64,
                    ..step_progress(config, epoch, step + 1, steps_per_epoch, seen, &started)
                };
                let report =
                    with_input_figures(report, seen, busy_nanos, workers, waited, &started);
                if let Some(callback) = progress.as_mut() {
                    if callback(&report) == Control::Stop {
                        return Err(TrainError::Cancelled { epochs_done: epoch });
                    }
                }
                waiting = Instant::now();
            }
            Ok(())
        })?;

        let samples_per_sec = seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let validation = reader.evaluate(&net, &split, device)?;
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            validation_loss: validation.loss(),
            validation_accuracy: validation.accuracy(),
            samples_per_sec,
        };
        history.push(record.clone());
        if let Some(dir) = checkpoint_dir {
            Checkpoint::write(dir, config, &dataset_hash, &classes, &history, &var_store)?;
        }
        last_validation = Some(validation);
        if let Some(callback) = progress.as_mut() {
            // The epoch's training rate, measured before validation: the time since `started`
            // now includes validation, which at 10M drawings took 20 minutes and made the
            // rate read 5 samples/s instead of 1,518.
            let trained_per_sec = record.samples_per_sec;
            let report = Progress {
                loss: record.train_loss,
                accuracy: record.train_accuracy,
                samples_per_sec: trained_per_sec,
                epoch_done: Some(record),
                ..step_progress(
                    config,
                    epoch,
                    steps_per_epoch,
                    steps_per_epoch,
                    seen,
                    &started,
                )
            };
            let report = with_input_figures(report, seen, &busy_nanos, workers, waited, &started);
            if callback(&report) == Control::Stop && epoch + 1 < config.epochs {
                return Err(TrainError::Cancelled {
                    epochs_done: epoch + 1,
                });
            }
        }
    }

    let validation = match last_validation {
        Some(validation) => validation,
        None => reader.evaluate(&net, &split, device)?,
    };
    let mut metrics = validation.metrics(&classes, history, split.train_len());
    metrics.player_independent = split.player_independent;
    Ok(TrainedModel {
        classes,
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
        raster_samples_per_sec: 0.0,
        input_wait_share: 0.0,
        eta_secs: remaining.max(0.0) / samples_per_sec.max(1e-9),
        epoch_done: None,
    }
}

/// `report` with the input pipeline's figures: what the workers could deliver (`seen`
/// drawings in `busy_nanos` of work spread over `workers` threads) and the share of the time
/// since `started` the trainer spent `waited` for them.
fn with_input_figures(
    report: Progress,
    seen: usize,
    busy_nanos: &AtomicU64,
    workers: usize,
    waited: f64,
    started: &Instant,
) -> Progress {
    let busy = busy_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    Progress {
        raster_samples_per_sec: seen as f64 * workers as f64 / busy.max(1e-9),
        input_wait_share: (waited / started.elapsed().as_secs_f64().max(1e-9)).min(1.0),
        ..report
    }
}

/// SplitMix64 of `seed` and `salt`: independent-looking seeds for each epoch and purpose.
fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) & (i64::MAX as u64)
}

/// One batch ready for the device.
struct Batch {
    /// `rows` images of `channels * size * size` values: the drawings, then any scribbles.
    pixels: Vec<f32>,
    /// Images in `pixels`.
    rows: usize,
    /// `rows` vectors of the configuration's geometric features, computed from the same
    /// (augmented) strokes as the pixels; empty when the model reads none.
    geometry: Vec<f32>,
    /// The drawings' labels (scribbles have none).
    labels: Vec<i64>,
}

impl Batch {
    /// The batch's geometric features as the network's input, when `config` has them.
    fn geometry_tensor(&self, config: &TrainConfig, device: Device) -> Option<Tensor> {
        geometry_tensor(
            &self.geometry,
            self.rows,
            config.geometry_features(),
            device,
        )
    }
}

/// Writes the geometric features of `strokes` that `config` asks for into `out` (which holds
/// `config.geometry_features()` numbers; nothing when it asks for none).
fn geometry_into(config: &TrainConfig, strokes: &[Vec<[f32; 2]>], out: &mut [f32]) {
    if let Some(set) = config.geometry {
        set.compute_into(strokes, out);
    }
}

/// Turns catalog indices into batches: reads the strokes, augments, rasterizes.
struct Reader<'a> {
    /// Where the strokes are.
    source: &'a dyn StrokeSource,
    /// Every drawing's label (read for each drawing of a batch).
    entries: &'a dyn Entries,
    /// Image size, augmentation and scribbles.
    config: &'a TrainConfig,
    /// Threads that prepare batches.
    workers: usize,
}

impl Reader<'_> {
    /// A training batch of the drawings at `indices`, augmented (when the run augments) and
    /// with its scribbles, all random choices from `rng`.
    fn training_batch(&self, indices: &[usize], mut rng: StdRng) -> Result<Batch, TrainError> {
        let config = self.config;
        let (size, style) = (config.image_size, &config.raster);
        let pixels = style.channels() * (size * size) as usize;
        let scribbles = scribbles_for(indices.len(), config.scribble_share);
        let rows = indices.len() + scribbles;
        let mut buffer = vec![0.0f32; rows * pixels];
        // Row `k`'s features are `geometry[k * features..(k + 1) * features]`.
        let features = config.geometry_features();
        let mut geometry = vec![0.0f32; rows * features];
        let (drawn, extra) = buffer.split_at_mut(indices.len() * pixels);
        for (k, out) in extra.chunks_exact_mut(pixels).enumerate() {
            // Training scribbles come from seeds below the held-out range.
            let seed = rng.random::<u64>() % synth::HELD_OUT_SCRIBBLE_SEEDS;
            let scribble = synth::scribble(seed);
            raster::rasterize_styled_into(&scribble, size, style, out).map_err(|source| {
                TrainError::Raster {
                    index: usize::MAX,
                    source,
                }
            })?;
            let row = indices.len() + k;
            geometry_into(
                config,
                &scribble,
                &mut geometry[row * features..(row + 1) * features],
            );
        }
        for (k, (&index, out)) in indices
            .iter()
            .zip(drawn.chunks_exact_mut(pixels))
            .enumerate()
        {
            let strokes = self.source.strokes(index)?;
            let strokes = match config.augment {
                true => augment_with_rng(&strokes, &mut rng, &config.augment_params),
                false => strokes,
            };
            raster::rasterize_styled_into(&strokes, size, style, out)
                .map_err(|source| TrainError::Raster { index, source })?;
            geometry_into(
                config,
                &strokes,
                &mut geometry[k * features..(k + 1) * features],
            );
        }
        Ok(Batch {
            pixels: buffer,
            rows,
            geometry,
            labels: self.labels(indices)?,
        })
    }

    /// The labels of the drawings at `indices`, read from the catalog.
    fn labels(&self, indices: &[usize]) -> Result<Vec<i64>, TrainError> {
        indices
            .iter()
            .map(|&i| Ok(i64::from(self.entries.entry(i)?.label)))
            .collect()
    }

    /// A batch of the drawings at `indices` as they are.
    fn plain_batch(&self, indices: &[usize]) -> Result<Batch, TrainError> {
        let (size, style) = (self.config.image_size, &self.config.raster);
        let pixels = style.channels() * (size * size) as usize;
        let mut buffer = vec![0.0f32; indices.len() * pixels];
        let features = self.config.geometry_features();
        let mut geometry = vec![0.0f32; indices.len() * features];
        for (k, (&index, out)) in indices
            .iter()
            .zip(buffer.chunks_exact_mut(pixels))
            .enumerate()
        {
            let strokes = self.source.strokes(index)?;
            raster::rasterize_styled_into(&strokes, size, style, out)
                .map_err(|source| TrainError::Raster { index, source })?;
            geometry_into(
                self.config,
                &strokes,
                &mut geometry[k * features..(k + 1) * features],
            );
        }
        Ok(Batch {
            pixels: buffer,
            rows: indices.len(),
            geometry,
            labels: self.labels(indices)?,
        })
    }

    /// The measurements of the network on the validation side of `split`, in eval mode,
    /// in index order, rasterized a chunk at a time on the workers and tallied chunk by
    /// chunk.
    fn evaluate(
        &self,
        net: &DoodleNet,
        split: &Sides,
        device: Device,
    ) -> Result<Tally, TrainError> {
        let count = split.validation_len();
        let chunks = count.div_ceil(EVAL_CHUNK);
        let classes = net.num_classes() as usize;
        std::thread::scope(|scope| {
            let prepared = batches::in_order(scope, chunks, self.workers, |c| {
                let indices: Vec<usize> = (c * EVAL_CHUNK..((c + 1) * EVAL_CHUNK).min(count))
                    .map(|k| split.validation_at(k))
                    .collect();
                self.plain_batch(&indices)
            });
            let mut tally = Tally::new(classes, count);
            for batch in prepared {
                let batch = batch?;
                let xs = input_tensor(
                    &batch.pixels,
                    batch.rows,
                    self.config.raster.channels(),
                    self.config.image_size,
                    device,
                );
                let geometry = batch.geometry_tensor(self.config, device);
                let logits = tch::no_grad(|| net.forward_with(&xs, geometry.as_ref(), false));
                tally.add(&logits, &batch.labels)?;
            }
            Ok(tally)
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::synth;

    /// Every batch of an epoch, prepared on `workers` threads.
    fn epoch_batches(dataset: &Dataset, config: &TrainConfig, workers: usize) -> Vec<Batch> {
        let entries = dataset.entries();
        let reader = Reader {
            source: dataset,
            entries: &entries,
            config,
            workers,
        };
        let order: Vec<usize> = (0..dataset.samples.len()).rev().collect();
        let steps = order.len().div_ceil(config.batch_size);
        std::thread::scope(|scope| {
            batches::in_order(scope, steps, workers, |b| {
                let end = ((b + 1) * config.batch_size).min(order.len());
                let rng = StdRng::seed_from_u64(mix(7, b as u64));
                reader.training_batch(&order[b * config.batch_size..end], rng)
            })
            .map(|batch| batch.unwrap())
            .collect()
        })
    }

    #[test]
    fn augmented_batches_are_the_same_whatever_the_number_of_rasterizing_workers() {
        let dataset = synth::starter_dataset(12, 3);
        let config = TrainConfig {
            batch_size: 7,
            image_size: 28,
            scribble_share: 0.25,
            ..TrainConfig::default()
        };
        let one = epoch_batches(&dataset, &config, 1);
        let three = epoch_batches(&dataset, &config, 3);
        assert_eq!(one.len(), 60usize.div_ceil(7));
        for (a, b) in one.iter().zip(&three) {
            assert_eq!(a.labels, b.labels);
            assert_eq!(a.rows, b.rows);
            assert!(a.rows > a.labels.len(), "scribbles are added");
            assert!(a.pixels == b.pixels, "the same pixels");
        }
        // Augmentation does change the drawings from one batch seed to another.
        let plain = Reader {
            source: &dataset,
            entries: &dataset.entries(),
            config: &config,
            workers: 1,
        }
        .plain_batch(&[59, 58, 57, 56, 55, 54, 53])
        .unwrap();
        assert!(plain.pixels[..] != one[0].pixels[..plain.pixels.len()]);
    }
}
