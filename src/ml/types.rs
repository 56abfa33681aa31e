//! The types the training loop, its checkpoints and the model artifact share: what a run is
//! asked to do ([`TrainConfig`]) and what it produces ([`TrainedModel`]). They live apart
//! from [`super::train`] so that `artifact` and `checkpoint` need not depend on the loop that
//! depends on them.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Device;

use super::augment::AugmentParams;
use super::evaluation::Metrics;
use super::net::DoodleNet;
use super::raster;

/// Default number of passes over the training set.
pub const DEFAULT_EPOCHS: u32 = 10;

/// Default drawings per optimisation step.
pub const DEFAULT_BATCH_SIZE: usize = 64;

/// Default Adam learning rate.
pub const DEFAULT_LEARNING_RATE: f64 = 2e-3;

/// Default image side; 28 is what Quick, Draw! models use and is fast on a CPU.
pub const DEFAULT_IMAGE_SIZE: u32 = 28;

/// Default share of the data (by group) held out for validation.
pub const DEFAULT_VALIDATION_FRACTION: f64 = 0.2;

/// Most epochs a configuration may ask for.
pub const MAX_EPOCHS: u32 = 1000;

/// Largest batch a configuration may ask for.
pub const MAX_BATCH_SIZE: usize = 4096;

/// Smallest and largest validation fraction accepted.
const VALIDATION_FRACTION_RANGE: (f64, f64) = (0.01, 0.5);

/// What to train and how; recorded in checkpoints and model manifests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set (1..=[`MAX_EPOCHS`]).
    pub epochs: u32,
    /// Drawings per optimisation step (1..=[`MAX_BATCH_SIZE`]).
    pub batch_size: usize,
    /// Adam's learning rate (finite, in (0, 1]).
    pub learning_rate: f64,
    /// Side of the rasterized images ([`raster::MIN_SIZE`]..=[`raster::MAX_SIZE`]).
    pub image_size: u32,
    /// Whether training drawings are augmented (validation drawings never are).
    pub augment: bool,
    /// How strong the augmentation is when on.
    #[serde(default)]
    pub augment_params: AugmentParams,
    /// Seed of everything random: split, initial weights, order, augmentation, dropout.
    pub seed: u64,
    /// Share of the drawings held out for validation, by group.
    pub validation_fraction: f64,
    /// Generated scribbles added to every training batch, as a share of its drawings (0:
    /// none). The model learns to spread its belief evenly on them ("outlier exposure"), so
    /// that it answers "unsure" on things that are not any of its shapes. Only for class sets
    /// that have no scribble-like shape (the starter's).
    #[serde(default)]
    pub scribble_share: f32,
    /// Ends each epoch after this many steps (the validation still covers the whole
    /// validation set): for quick looks and benchmarks on large sets. `None`: whole epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps_per_epoch: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: DEFAULT_EPOCHS,
            batch_size: DEFAULT_BATCH_SIZE,
            learning_rate: DEFAULT_LEARNING_RATE,
            image_size: DEFAULT_IMAGE_SIZE,
            augment: true,
            augment_params: AugmentParams::default(),
            seed: 0,
            validation_fraction: DEFAULT_VALIDATION_FRACTION,
            scribble_share: 0.0,
            max_steps_per_epoch: None,
        }
    }
}

impl TrainConfig {
    /// Checks every field's range, so a bad configuration is refused before any work.
    pub fn validate(&self) -> Result<(), InvalidTrainConfig> {
        let bad = |m: String| Err(InvalidTrainConfig(m));
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return bad(format!("epochs must be 1..={MAX_EPOCHS}"));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return bad(format!("batch_size must be 1..={MAX_BATCH_SIZE}"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad("learning_rate must be in (0, 1]".into());
        }
        if !(raster::MIN_SIZE..=raster::MAX_SIZE).contains(&self.image_size) {
            return bad(format!(
                "image_size must be {}..={}",
                raster::MIN_SIZE,
                raster::MAX_SIZE
            ));
        }
        let (lo, hi) = VALIDATION_FRACTION_RANGE;
        if !(lo..=hi).contains(&self.validation_fraction) {
            return bad(format!("validation_fraction must be {lo}..={hi}"));
        }
        if self.max_steps_per_epoch == Some(0) {
            return bad("max_steps_per_epoch must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.scribble_share) {
            return bad("scribble_share must be 0..=1".into());
        }
        let p = &self.augment_params;
        let finite = [p.max_rotation_deg, p.max_scale, p.max_shear, p.jitter];
        if finite.iter().any(|v| !v.is_finite() || *v < 0.0)
            || !(0.0..=1.0).contains(&p.stroke_drop)
        {
            return bad(
                "augmentation parameters must be finite, non-negative, stroke_drop <= 1".into(),
            );
        }
        Ok(())
    }
}

/// A training configuration with a field out of range (a client error).
#[derive(Debug, thiserror::Error)]
#[error("invalid training configuration: {0}")]
pub struct InvalidTrainConfig(pub String);

/// A trained network with what describes it; write it to disk with
/// [`super::artifact::write`].
#[derive(Debug)]
pub struct TrainedModel {
    /// The class names, in output order.
    pub classes: Vec<String>,
    /// The configuration it was trained with.
    pub config: TrainConfig,
    /// Its validation measurements and history.
    pub metrics: Metrics,
    /// [`super::dataset::Dataset::hash`] of the training data.
    pub dataset_hash: String,
    /// The device it was trained on.
    pub device: Device,
    /// The weights.
    pub var_store: nn::VarStore,
    /// The layers, whose variables live in `var_store`.
    pub net: DoodleNet,
}
