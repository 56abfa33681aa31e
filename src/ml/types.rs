//! The types the training loop, its checkpoints and the model artifact share: what a run is
//! asked to do ([`TrainConfig`]) and what it produces ([`TrainedModel`]). They live apart
//! from [`super::train`] so that `artifact` and `checkpoint` need not depend on the loop that
//! depends on them.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Device;

use super::augment::AugmentParams;
use super::evaluation::Metrics;
use super::geometry::FeatureSet;
use super::net::{Architecture, DoodleNet};
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

/// Largest label smoothing accepted.
const MAX_LABEL_SMOOTHING: f64 = 0.5;

/// Largest (decoupled) weight decay accepted.
const MAX_WEIGHT_DECAY: f64 = 1.0;

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
    /// Seed of the split alone, when it must differ from `seed`: models trained with
    /// different seeds on the same held-out drawings (an ensemble's members, or a comparison
    /// of initialisations). `None` (every configuration before this field): `seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
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
    /// The network to train. Older configurations, which have no such field, were all of the
    /// small one.
    #[serde(default, skip_serializing_if = "Architecture::is_default")]
    pub architecture: Architecture,
    /// How the learning rate changes over the run (constant, or cosine decay to zero).
    #[serde(default, skip_serializing_if = "LrSchedule::is_default")]
    pub lr_schedule: LrSchedule,
    /// Share of each target's probability spread evenly over all classes (0..=0.5; 0: plain
    /// cross-entropy), so that the model is less sure of the little data it sees.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_smoothing: f64,
    /// Decoupled weight decay (AdamW) per step, relative to the learning rate (0: Adam).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight_decay: f64,
    /// How the images are drawn (stroke width, order channel); the classifier draws a
    /// model's images the same way. Older configurations, which have no such field, were
    /// all trained on [`raster::RasterStyle::default`].
    #[serde(default, skip_serializing_if = "raster::RasterStyle::is_default")]
    pub raster: raster::RasterStyle,
    /// Geometric features of the strokes the network reads beside its image (see
    /// [`super::geometry`]); the classifier computes them for a model that has them. Older
    /// configurations, which have no such field, read the image alone (`None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometry: Option<FeatureSet>,
}

/// How the learning rate changes over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// The configured rate throughout.
    #[default]
    Constant,
    /// From the configured rate down to zero along half a cosine, step by step.
    Cosine,
}

impl LrSchedule {
    /// Whether this is the default (so configurations need not spell it out).
    pub fn is_default(&self) -> bool {
        *self == LrSchedule::default()
    }

    /// The rate at `step` of `steps` (0-based), starting from `base`.
    pub fn rate(self, base: f64, step: usize, steps: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine => {
                let done = step as f64 / steps.max(1) as f64;
                base * 0.5 * (1.0 + (std::f64::consts::PI * done.min(1.0)).cos())
            }
        }
    }
}

/// Serde's test for fields left out when zero.
fn is_zero(value: &f64) -> bool {
    *value == 0.0
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
            split_seed: None,
            validation_fraction: DEFAULT_VALIDATION_FRACTION,
            scribble_share: 0.0,
            max_steps_per_epoch: None,
            architecture: Architecture::Small,
            lr_schedule: LrSchedule::Constant,
            label_smoothing: 0.0,
            weight_decay: 0.0,
            raster: raster::RasterStyle::default(),
            geometry: None,
        }
    }
}

impl TrainConfig {
    /// The seed that splits the drawings: [`TrainConfig::split_seed`], else `seed`.
    pub fn split_seed(&self) -> u64 {
        self.split_seed.unwrap_or(self.seed)
    }

    /// How many geometric features the network reads beside its image (0: none).
    pub fn geometry_features(&self) -> usize {
        self.geometry.map_or(0, FeatureSet::count)
    }

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
        if !(0.0..=MAX_LABEL_SMOOTHING).contains(&self.label_smoothing) {
            return bad(format!("label_smoothing must be 0..={MAX_LABEL_SMOOTHING}"));
        }
        if !(0.0..=MAX_WEIGHT_DECAY).contains(&self.weight_decay) {
            return bad(format!("weight_decay must be 0..={MAX_WEIGHT_DECAY}"));
        }
        if let Err(message) = self.raster.check() {
            return bad(message);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_written_before_the_new_fields_reads_as_the_small_net_with_plain_adam() {
        let mut json = serde_json::to_value(TrainConfig::default()).unwrap();
        for key in [
            "split_seed",
            "architecture",
            "lr_schedule",
            "label_smoothing",
            "weight_decay",
            "raster",
            "geometry",
        ] {
            assert!(json.get(key).is_none(), "{key} is left out at its default");
        }
        json.as_object_mut().unwrap().remove("augment_params");
        let read: TrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(read, TrainConfig::default());
        assert_eq!(read.architecture, Architecture::Small);
        assert_eq!(read.split_seed(), read.seed);
        assert_eq!(read.geometry, None);
    }

    #[test]
    fn the_cosine_schedule_falls_from_the_base_rate_to_zero_and_the_constant_one_stays() {
        let cosine = LrSchedule::Cosine;
        assert!((cosine.rate(0.01, 0, 100) - 0.01).abs() < 1e-12);
        assert!((cosine.rate(0.01, 50, 100) - 0.005).abs() < 1e-12);
        assert!(cosine.rate(0.01, 100, 100).abs() < 1e-12);
        assert!(cosine.rate(0.01, 30, 100) > cosine.rate(0.01, 31, 100));
        assert_eq!(LrSchedule::Constant.rate(0.01, 99, 100), 0.01);
    }

    #[test]
    fn label_smoothing_and_weight_decay_out_of_range_are_refused() {
        for (smoothing, decay) in [(0.6, 0.0), (-0.1, 0.0), (0.0, 2.0), (0.0, f64::NAN)] {
            let config = TrainConfig {
                label_smoothing: smoothing,
                weight_decay: decay,
                ..TrainConfig::default()
            };
            assert!(config.validate().is_err(), "{smoothing} {decay}");
        }
        let fine = TrainConfig {
            label_smoothing: 0.1,
            weight_decay: 0.05,
            ..TrainConfig::default()
        };
        assert!(fine.validate().is_ok());
    }
}
