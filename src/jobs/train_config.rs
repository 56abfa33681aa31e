//! A training job's configuration as the API and the CLI accept it, normalised (every
//! default filled in) and validated, with the hash that identifies identical requests.
//!
//! Besides the hyperparameters it chooses the drawings: shapes, a quality floor, flagged or
//! not, and for quick iterations on a large collection a subset: at most so many drawings
//! per class (the oldest, in id order), those created in a time range, and a cap on the
//! steps of each epoch.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::ml::augment::AugmentParams;
use crate::ml::geometry::FeatureSet;
use crate::ml::net::Architecture;
use crate::ml::train::{
    TrainConfig, DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_IMAGE_SIZE, DEFAULT_LEARNING_RATE,
    MAX_EPOCHS,
};
use crate::ml::types::LrSchedule;
use crate::store::metadata::TrainingFilter;

/// Image sizes the product offers: 28 (Quick, Draw!'s bitmaps) and 64.
pub const IMAGE_SIZES: [u32; 2] = [28, 64];

/// Training drawings (augmented passes, counted with repeats) a job on collected drawings
/// shows the network at least when its request leaves the epochs out: ten epochs of a small
/// collection are far too few steps. On the 16-class Quick, Draw! sample (532 training
/// drawings) `benches/accuracy.rs` measured 63.3 % after the default ten epochs and about 74
/// % after 120 (the same settings otherwise); a collection of 6400 training drawings or more
/// passes this in ten epochs and is unaffected.
pub const MIN_TRAINING_SAMPLES: usize = 64_000;

/// [`MIN_TRAINING_SAMPLES`] for a job queued with the geometric features
/// ([`JobConfig::small_collection_geometry`]): 120 epochs for the 709-drawing sample (568 for
/// training) instead of 113. Measured twice on that sample, with three seeds each, the
/// 120-epoch recipe beat the same recipe at the job's 113 epochs: 78.3 % against 76.7 %
/// before the features, 85.6 % against 83.7 % with them (the cosine decay stretches with the
/// run, so the whole schedule changes). About 6 % more training time. Jobs queued before keep
/// [`MIN_TRAINING_SAMPLES`], so that a checkpoint still matches its configuration.
pub const MIN_TRAINING_SAMPLES_WITH_GEOMETRY: usize = 68_000;

/// Drawings per step for a small collection (one whose default epochs would show fewer than
/// [`MIN_TRAINING_SAMPLES`]) when the request leaves the batch size out. With the strong
/// augmentation, cosine decay, label smoothing and weight decay below it is the recipe
/// `benches/accuracy.rs` measured best on the 16-class Quick, Draw! sample: 78.3 % mean
/// validation accuracy over three seeds (120 epochs, wide net) against 75.2 % for the default
/// settings with as many drawings seen; as this job default (113 epochs for the sample),
/// 76.7 %, better on two seeds of three. At the default ten epochs the same additions cost
/// accuracy (59.3 % against 63.3 %), so only a run with raised epochs gets them.
pub const SMALL_COLLECTION_BATCH_SIZE: usize = 32;

/// Label smoothing of a small collection's run (see [`SMALL_COLLECTION_BATCH_SIZE`]).
pub const SMALL_COLLECTION_LABEL_SMOOTHING: f64 = 0.1;

/// AdamW weight decay of a small collection's run (see [`SMALL_COLLECTION_BATCH_SIZE`]).
pub const SMALL_COLLECTION_WEIGHT_DECAY: f64 = 0.05;

/// The geometric features of the strokes a small collection's run reads beside its images
/// (see [`crate::ml::geometry`]), with the strong augmentation's point jitter off: on the
/// 16-class Quick, Draw! sample `benches/accuracy.rs` measured, at 120 epochs of the recipe
/// above, the wide net at 85.6 % mean validation accuracy over three seeds (83.9 / 86.7 /
/// 86.1; Wilson 82.3-88.3) against 78.3 % (78.3 / 77.2 / 79.4), every seed better, and on the
/// small net 82.2 % (81.7 / 82.2 / 82.8) against 74.6 %
/// (72.8 / 73.9 / 77.2), every seed better; without the jitter alone the small net reaches
/// 76.7 %. With the jitter kept the features gain less (the small net 78.5 %): it makes a
/// training drawing's fine geometry noise that the classified drawings lack.
pub const SMALL_COLLECTION_GEOMETRY: FeatureSet = FeatureSet::StrokesV1;

/// The network a job on collected drawings trains when its request does not name one: on the
/// 16-class Quick, Draw! sample `benches/accuracy.rs` measured the wide net at 76.9 % mean
/// validation accuracy over three seeds (120 epochs, strong augmentation) against 74.6 % for
/// the small one, better on every seed, and with a job's own defaults (113 epochs) at 75.2 %
/// against 73.9 %, for about 1.3 ms instead of 0.3 ms per classified drawing on one core.
pub const DEFAULT_DRAWINGS_ARCHITECTURE: Architecture = Architecture::Wide;

/// A point in time a job's drawings were created from or before: RFC 3339 (or a bare date,
/// meaning its midnight UTC) on the way in, milliseconds since the Unix epoch inside, RFC
/// 3339 in the stored configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CreatedAt(u64);

impl CreatedAt {
    /// Parses RFC 3339 (`2026-01-31T12:00:00Z`) or a date (`2026-01-31`); `field` names the
    /// field in the error.
    pub fn parse(field: &str, text: &str) -> Result<Self, JobConfigError> {
        use time::format_description::well_known::Rfc3339;
        let bad = || {
            JobConfigError::Invalid(format!(
                "{field} must be an RFC 3339 time (2026-01-31T12:00:00Z) or a date (2026-01-31), \
                 not {text:?}"
            ))
        };
        let parsed = time::OffsetDateTime::parse(text, &Rfc3339).or_else(|_| {
            let date = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(text, &date).map(|d| d.midnight().assume_utc())
        });
        let nanos = parsed.map_err(|_| bad())?.unix_timestamp_nanos();
        // Before 1970 is before any drawing: the same as the epoch.
        Ok(CreatedAt(u64::try_from(nanos / 1_000_000).unwrap_or(0)))
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms(self) -> u64 {
        self.0
    }
}

impl Serialize for CreatedAt {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::time::rfc3339(self.0))
    }
}

impl<'de> Deserialize<'de> for CreatedAt {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CreatedAt::parse("time", &text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum JobConfigError {
    #[error("{0}")]
    Invalid(String),
}

/// Where a job's drawings come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSource {
    /// The collected drawings (the filter applies).
    #[default]
    Drawings,
    /// Generated doodles of the five default shapes: the starter model of a fresh install.
    Synthetic,
}

/// What a client may send; every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfigInput {
    pub epochs: Option<u32>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    pub image_size: Option<u32>,
    pub augmentation: Option<bool>,
    pub seed: Option<u64>,
    pub shapes: Option<Vec<String>>,
    pub min_quality: Option<f64>,
    pub exclude_flagged: Option<bool>,
    pub source: Option<DataSource>,
    /// At most this many drawings of each shape (the oldest).
    pub per_class_cap: Option<usize>,
    /// Only drawings created at or after this time (RFC 3339 or a date).
    pub created_from: Option<String>,
    /// Only drawings created before this time (RFC 3339 or a date).
    pub created_to: Option<String>,
    /// Ends each epoch after this many steps.
    pub max_steps_per_epoch: Option<usize>,
    /// The network to train (`small` or `wide`); see [`JobConfig::architecture`].
    pub architecture: Option<Architecture>,
}

/// A complete, validated job configuration. Stored as JSON with the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobConfig {
    pub epochs: u32,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub image_size: u32,
    pub augmentation: bool,
    pub seed: u64,
    /// Shapes to include, sorted; `None` means every shape with drawings.
    pub shapes: Option<Vec<String>>,
    pub min_quality: Option<f64>,
    pub exclude_flagged: bool,
    #[serde(default)]
    pub source: DataSource,
    // The subset fields are left out of the stored JSON when unset, so that the hash of a
    // configuration without them is what it was before they existed.
    /// At most this many drawings of each shape, the oldest first; `None`: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_class_cap: Option<usize>,
    /// Only drawings created at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_from: Option<CreatedAt>,
    /// Only drawings created before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_to: Option<CreatedAt>,
    /// Ends each epoch after this many steps; `None`: whole epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps_per_epoch: Option<usize>,
    /// Whether the request left the epochs out, so that a small collection gets more of them
    /// (see [`JobConfig::train_config_for`]). Jobs stored before this field existed read as
    /// `false` and train exactly their `epochs`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default_epochs: bool,
    /// Whether a small collection trains with the small-collection recipe (the strong
    /// augmentation, cosine decay, label smoothing and weight decay; see
    /// [`SMALL_COLLECTION_BATCH_SIZE`]) where its epochs are raised: set for requests on
    /// collected drawings. Jobs stored before this field existed read as `false` and train
    /// what they were queued for (a checkpoint must match its configuration to resume).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub small_collection_recipe: bool,
    /// Whether the small-collection recipe also reads the geometric features and leaves the
    /// point jitter out (see [`SMALL_COLLECTION_GEOMETRY`]): set for requests on collected
    /// drawings. Jobs stored before this field existed read as `false` and train what they
    /// were queued for, so that their checkpoints still match.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub small_collection_geometry: bool,
    /// Whether the request left the batch size out, so that a small collection's run takes
    /// [`SMALL_COLLECTION_BATCH_SIZE`] instead of `batch_size`. Set for requests on collected
    /// drawings only, so the starter's stored form and hash are unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default_batch_size: bool,
    /// The network to train. Left out of the request: the wide net for collected drawings
    /// ([`DEFAULT_DRAWINGS_ARCHITECTURE`]), the small one for synthetic doodles (the
    /// starter's). Left out of the stored JSON when small, so that jobs stored before the field
    /// existed read as what they trained (the small net) and the starter's hash is unchanged.
    #[serde(default, skip_serializing_if = "Architecture::is_default")]
    pub architecture: Architecture,
}

impl JobConfig {
    /// The starter model's configuration: synthetic doodles, trained in well under a minute
    /// on two CPU cores.
    pub fn starter() -> Self {
        Self::parse(JobConfigInput {
            epochs: Some(4),
            source: Some(DataSource::Synthetic),
            seed: Some(1),
            ..JobConfigInput::default()
        })
        .expect("the starter configuration is valid")
    }

    pub fn parse(input: JobConfigInput) -> Result<Self, JobConfigError> {
        let mut shapes = input.shapes;
        if let Some(list) = shapes.as_mut() {
            list.sort();
            list.dedup();
            if list.len() < 2 {
                return Err(JobConfigError::Invalid(
                    "shapes must name at least two shapes".into(),
                ));
            }
        }
        if input.min_quality.is_some_and(|q| !(0.0..=1.0).contains(&q)) {
            return Err(JobConfigError::Invalid(
                "min_quality must be between 0 and 1".into(),
            ));
        }
        if input.per_class_cap == Some(0) {
            return Err(JobConfigError::Invalid(
                "per_class_cap must be at least 1".into(),
            ));
        }
        if input.max_steps_per_epoch == Some(0) {
            return Err(JobConfigError::Invalid(
                "max_steps_per_epoch must be at least 1".into(),
            ));
        }
        let created_from = input
            .created_from
            .as_deref()
            .map(|t| CreatedAt::parse("created_from", t))
            .transpose()?;
        let created_to = input
            .created_to
            .as_deref()
            .map(|t| CreatedAt::parse("created_to", t))
            .transpose()?;
        // A range that ends before it starts selects nothing, like any filter that matches
        // no drawing: the job then fails saying how many drawings it found.
        let config = Self {
            epochs: input.epochs.unwrap_or(DEFAULT_EPOCHS),
            batch_size: input.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
            learning_rate: input.learning_rate.unwrap_or(DEFAULT_LEARNING_RATE),
            image_size: input.image_size.unwrap_or(DEFAULT_IMAGE_SIZE),
            augmentation: input.augmentation.unwrap_or(true),
            seed: input.seed.unwrap_or(0),
            shapes,
            min_quality: input.min_quality,
            exclude_flagged: input.exclude_flagged.unwrap_or(true),
            source: input.source.unwrap_or_default(),
            per_class_cap: input.per_class_cap,
            created_from,
            created_to,
            max_steps_per_epoch: input.max_steps_per_epoch,
            default_epochs: input.epochs.is_none(),
            small_collection_recipe: input.source.unwrap_or_default() == DataSource::Drawings,
            small_collection_geometry: input.source.unwrap_or_default() == DataSource::Drawings,
            default_batch_size: input.batch_size.is_none()
                && input.source.unwrap_or_default() == DataSource::Drawings,
            architecture: input
                .architecture
                .unwrap_or(match input.source.unwrap_or_default() {
                    DataSource::Drawings => DEFAULT_DRAWINGS_ARCHITECTURE,
                    DataSource::Synthetic => Architecture::Small,
                }),
        };
        if !IMAGE_SIZES.contains(&config.image_size) {
            return Err(JobConfigError::Invalid(format!(
                "image_size must be one of {IMAGE_SIZES:?}"
            )));
        }
        config
            .train_config()
            .validate()
            .map_err(|e| JobConfigError::Invalid(e.to_string()))?;
        Ok(config)
    }

    /// The trainer's view of this configuration.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            image_size: self.image_size,
            augment: self.augmentation,
            seed: self.seed,
            // Generated doodles are the starter's five shapes, none scribble-like: show it
            // scribbles so that it learns to be unsure on them.
            scribble_share: match self.source {
                DataSource::Synthetic => crate::ml::synth::STARTER_SCRIBBLE_SHARE,
                DataSource::Drawings => 0.0,
            },
            max_steps_per_epoch: self.max_steps_per_epoch,
            architecture: self.architecture,
            ..TrainConfig::default()
        }
    }

    /// The trainer's view of this configuration for a run on `drawings` drawings. When the
    /// request left the epochs out and the job trains on collected drawings, enough epochs
    /// for [`MIN_TRAINING_SAMPLES`] ([`MIN_TRAINING_SAMPLES_WITH_GEOMETRY`] for a job queued
    /// with the geometric features; never fewer than the default, at most [`MAX_EPOCHS`]);
    /// where that raises them (a small collection), also the small-collection recipe (see
    /// [`SMALL_COLLECTION_BATCH_SIZE`]): the strong augmentation (when augmenting), cosine
    /// decay, label smoothing, weight decay and, unless the request named one, batches of
    /// [`SMALL_COLLECTION_BATCH_SIZE`], the epochs then counted at that batch size. The
    /// result is what the model's manifest records as its training configuration.
    pub fn train_config_for(&self, drawings: usize) -> TrainConfig {
        let mut config = self.train_config();
        if !(self.default_epochs && self.source == DataSource::Drawings) {
            return config;
        }
        let training = (drawings as f64 * (1.0 - config.validation_fraction)).ceil() as usize;
        let epochs_for = |batch_size: usize| {
            let per_epoch = match config.max_steps_per_epoch {
                Some(steps) => training.min(steps * batch_size),
                None => training,
            };
            let target = if self.small_collection_recipe && self.small_collection_geometry {
                MIN_TRAINING_SAMPLES_WITH_GEOMETRY
            } else {
                MIN_TRAINING_SAMPLES
            };
            target.div_ceil(per_epoch.max(1)).min(MAX_EPOCHS as usize) as u32
        };
        let wanted = epochs_for(config.batch_size);
        if wanted <= config.epochs {
            return config;
        }
        if self.small_collection_recipe {
            if self.default_batch_size {
                config.batch_size = SMALL_COLLECTION_BATCH_SIZE;
            }
            config.augment_params = AugmentParams::STRONG;
            config.lr_schedule = LrSchedule::Cosine;
            config.label_smoothing = SMALL_COLLECTION_LABEL_SMOOTHING;
            config.weight_decay = SMALL_COLLECTION_WEIGHT_DECAY;
            if self.small_collection_geometry {
                config.augment_params.jitter = 0.0;
                config.geometry = Some(SMALL_COLLECTION_GEOMETRY);
            }
        }
        config.epochs = config.epochs.max(epochs_for(config.batch_size));
        config
    }

    /// Which drawings the job trains on.
    pub fn filter(&self) -> TrainingFilter {
        TrainingFilter {
            shapes: self.shapes.clone(),
            min_quality: self.min_quality,
            include_flagged: !self.exclude_flagged,
            created_from_ms: self.created_from.map(CreatedAt::unix_ms),
            created_to_ms: self.created_to.map(CreatedAt::unix_ms),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// SHA-256 of the normalised JSON: equal configurations, however they were written,
    /// hash the same.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.to_json().to_string().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_equal_configurations_hash_the_same() {
        let a = JobConfig::parse(JobConfigInput {
            epochs: Some(3),
            ..Default::default()
        })
        .unwrap();
        let b = JobConfig::parse(JobConfigInput {
            epochs: Some(3),
            exclude_flagged: Some(true),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(a.hash(), b.hash());
        let c = JobConfig::parse(JobConfigInput {
            epochs: Some(4),
            ..Default::default()
        })
        .unwrap();
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn a_small_collection_gets_more_epochs_only_when_the_request_left_them_out() {
        let default = JobConfig::parse(JobConfigInput::default()).unwrap();
        assert!(default.default_epochs);
        // 709 drawings, 568 of them for training: 120 epochs reach 68 000 drawings.
        assert_eq!(default.train_config_for(709).epochs, 120);
        assert_eq!(default.train_config_for(100_000).epochs, DEFAULT_EPOCHS);
        assert_eq!(default.train_config_for(1).epochs, MAX_EPOCHS);
        let capped = JobConfig {
            max_steps_per_epoch: Some(2),
            ..default.clone()
        };
        // Two steps of 32 drawings an epoch: 1000 epochs (the most) for 64 000.
        assert_eq!(capped.train_config_for(100_000).epochs, MAX_EPOCHS);
        let asked = JobConfig::parse(JobConfigInput {
            epochs: Some(10),
            ..Default::default()
        })
        .unwrap();
        assert!(!asked.default_epochs);
        assert_eq!(asked.train_config_for(709).epochs, 10);
        assert_eq!(JobConfig::starter().train_config_for(709).epochs, 4);
        // A job stored before the field existed trains exactly its epochs.
        let mut old = default.to_json();
        old.as_object_mut().unwrap().remove("default_epochs");
        let old: JobConfig = serde_json::from_value(old).unwrap();
        assert_eq!(old.train_config_for(709).epochs, DEFAULT_EPOCHS);
    }

    #[test]
    fn a_small_collection_trains_with_the_small_collection_recipe_unless_the_request_says_otherwise(
    ) {
        let default = JobConfig::parse(JobConfigInput::default()).unwrap();
        let small = default.train_config_for(709);
        assert_eq!(small.batch_size, SMALL_COLLECTION_BATCH_SIZE);
        let strong_without_jitter = AugmentParams {
            jitter: 0.0,
            ..AugmentParams::STRONG
        };
        assert_eq!(small.augment_params, strong_without_jitter);
        assert_eq!(small.geometry, Some(SMALL_COLLECTION_GEOMETRY));
        assert_eq!(small.lr_schedule, LrSchedule::Cosine);
        assert_eq!(small.label_smoothing, SMALL_COLLECTION_LABEL_SMOOTHING);
        assert_eq!(small.weight_decay, SMALL_COLLECTION_WEIGHT_DECAY);
        // The epochs count drawings, not steps: 120 epochs of 568 reach 68 000.
        assert_eq!(small.epochs, 120);
        assert!(small.validate().is_ok());
        // A collection that reaches the target in ten epochs trains the plain defaults.
        assert_eq!(default.train_config_for(100_000), default.train_config());
        assert_eq!(default.train_config().batch_size, DEFAULT_BATCH_SIZE);
        // An explicit batch size wins, and the epochs follow from it.
        let batch_16 = JobConfig::parse(JobConfigInput {
            batch_size: Some(16),
            max_steps_per_epoch: Some(10),
            ..Default::default()
        })
        .unwrap();
        let run = batch_16.train_config_for(100_000);
        assert_eq!((run.batch_size, run.epochs), (16, 425));
        assert_eq!(run.lr_schedule, LrSchedule::Cosine);
        // Explicit epochs: exactly what was asked, nothing added.
        let asked = JobConfig::parse(JobConfigInput {
            epochs: Some(50),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(asked.train_config_for(709), asked.train_config());
        // The starter (synthetic) is unchanged, its stored form too.
        let starter = JobConfig::starter();
        assert_eq!(starter.train_config_for(5), starter.train_config());
        assert!(starter.to_json().get("default_batch_size").is_none());
        assert!(starter.to_json().get("small_collection_recipe").is_none());
        assert!(starter.to_json().get("small_collection_geometry").is_none());
        assert_eq!(starter.train_config_for(5).geometry, None);
        // A job stored before the recipe existed trains what it was queued for, so that its
        // checkpoints still match.
        let mut before_geometry = default.to_json();
        before_geometry
            .as_object_mut()
            .unwrap()
            .remove("small_collection_geometry");
        let before_geometry: JobConfig = serde_json::from_value(before_geometry).unwrap();
        let run = before_geometry.train_config_for(709);
        assert_eq!(run.augment_params, AugmentParams::STRONG);
        assert_eq!(run.geometry, None);
        // ... and its epochs, so that its checkpoint still matches.
        assert_eq!(run.epochs, 113);
        let mut old = default.to_json();
        let fields = old.as_object_mut().unwrap();
        fields.remove("small_collection_recipe");
        fields.remove("small_collection_geometry");
        fields.remove("default_batch_size");
        let old: JobConfig = serde_json::from_value(old).unwrap();
        let run = old.train_config_for(709);
        assert_eq!((run.batch_size, run.epochs), (DEFAULT_BATCH_SIZE, 113));
        assert_eq!(run.augment_params, AugmentParams::default());
        assert_eq!(run.geometry, None);
        assert_eq!(run.lr_schedule, LrSchedule::Constant);
        assert_eq!((run.label_smoothing, run.weight_decay), (0.0, 0.0));
    }

    #[test]
    fn a_job_on_drawings_that_names_no_architecture_trains_the_wide_net() {
        let default = JobConfig::parse(JobConfigInput::default()).unwrap();
        assert_eq!(default.architecture, Architecture::Wide);
        assert_eq!(
            default.train_config_for(709).architecture,
            Architecture::Wide
        );
        assert_eq!(default.to_json()["architecture"], "wide");
        let small = JobConfig::parse(JobConfigInput {
            architecture: Some(Architecture::Small),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(small.train_config().architecture, Architecture::Small);
        assert_ne!(small.hash(), default.hash());
        // The starter keeps the small net, and its stored form and hash as they were.
        let starter = JobConfig::starter();
        assert_eq!(starter.train_config().architecture, Architecture::Small);
        assert!(starter.to_json().get("architecture").is_none());
        // A job stored before the field existed trains the small net it was queued for.
        let mut old = default.to_json();
        old.as_object_mut().unwrap().remove("architecture");
        let old: JobConfig = serde_json::from_value(old).unwrap();
        assert_eq!(old.train_config().architecture, Architecture::Small);
    }

    #[test]
    fn bad_configurations_are_refused_with_a_reason() {
        let bad = |input: JobConfigInput| JobConfig::parse(input).unwrap_err().to_string();
        assert!(bad(JobConfigInput {
            epochs: Some(0),
            ..Default::default()
        })
        .contains("epochs"));
        assert!(bad(JobConfigInput {
            image_size: Some(30),
            ..Default::default()
        })
        .contains("image_size"));
        assert!(bad(JobConfigInput {
            learning_rate: Some(-1.0),
            ..Default::default()
        })
        .contains("learning_rate"));
        assert!(bad(JobConfigInput {
            shapes: Some(vec!["circle".into()]),
            ..Default::default()
        })
        .contains("two"));
        assert!(bad(JobConfigInput {
            min_quality: Some(2.0),
            ..Default::default()
        })
        .contains("min_quality"));
        assert!(bad(JobConfigInput {
            per_class_cap: Some(0),
            ..Default::default()
        })
        .contains("per_class_cap"));
        assert!(bad(JobConfigInput {
            max_steps_per_epoch: Some(0),
            ..Default::default()
        })
        .contains("max_steps_per_epoch"));
        assert!(bad(JobConfigInput {
            created_from: Some("yesterday".into()),
            ..Default::default()
        })
        .contains("created_from"));
        assert!(bad(JobConfigInput {
            created_to: Some("2026-02-30".into()),
            ..Default::default()
        })
        .contains("created_to"));
    }

    #[test]
    fn a_subset_is_stored_normalised_and_an_unset_one_leaves_the_hash_as_it_was() {
        let plain = JobConfig::parse(JobConfigInput::default()).unwrap();
        assert!(plain.to_json().get("per_class_cap").is_none());
        assert!(plain.to_json().get("created_from").is_none());
        let subset = JobConfig::parse(JobConfigInput {
            per_class_cap: Some(100),
            created_from: Some("2026-01-31".into()),
            created_to: Some("2026-02-01T12:00:00+01:00".into()),
            ..Default::default()
        })
        .unwrap();
        let json = subset.to_json();
        assert_eq!(json["created_from"], "2026-01-31T00:00:00Z");
        assert_eq!(json["created_to"], "2026-02-01T11:00:00Z");
        let filter = subset.filter();
        assert_eq!(filter.created_from_ms, Some(1_769_817_600_000));
        assert_eq!(
            filter.created_to_ms,
            Some(1_769_817_600_000 + 35 * 3_600_000)
        );
        // The stored form reads back as the same configuration.
        let back: JobConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, subset);
        assert_ne!(plain.hash(), subset.hash());
    }
}
