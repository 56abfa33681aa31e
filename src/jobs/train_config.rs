//! A training job's configuration as the API and the CLI accept it, normalised (every
//! default filled in) and validated, with the hash that identifies identical requests.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::ml::train::{
    TrainConfig, DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_IMAGE_SIZE, DEFAULT_LEARNING_RATE,
};
use crate::store::metadata::TrainingFilter;

/// Image sizes the product offers: 28 (Quick, Draw!'s bitmaps) and 64.
pub const IMAGE_SIZES: [u32; 2] = [28, 64];

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
            ..TrainConfig::default()
        }
    }

    /// Which drawings the job trains on.
    pub fn filter(&self) -> TrainingFilter {
        TrainingFilter {
            shapes: self.shapes.clone(),
            min_quality: self.min_quality,
            include_flagged: !self.exclude_flagged,
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
    }
}
