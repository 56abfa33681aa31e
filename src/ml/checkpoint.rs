//! Checkpoints of a training run: after every epoch, the weights and what is needed to go on
//! (configuration, dataset hash, classes, per-epoch history) go into a directory, so that a
//! run interrupted by a crash, a restart or a cancel resumes after its last finished epoch.
//!
//! The weights go to `epoch-NNNN.safetensors`, synced; then `checkpoint.json`, naming them
//! with their SHA-256, replaces the previous one by rename; only then are older weights
//! removed. A crash at any point leaves a manifest that names complete weights. No optimizer
//! state is kept: Adam's moments restart on resume.
//!
//! In cluster mode the two files also go to the database after every epoch
//! ([`CheckpointFiles::read`]), and a process that takes the job over on another host writes
//! them back into its own directory ([`CheckpointFiles::restore`]) before the run resumes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::nn;

use super::artifact::{sha256_file, write_atomically};
use super::evaluation::EpochRecord;
use super::types::TrainConfig;

/// Name of the checkpoint manifest inside a checkpoint directory; it is written last (by
/// rename), so it always names a complete weights file.
const CHECKPOINT_FILE: &str = "checkpoint.json";

/// Version of the checkpoint manifest's layout.
const CHECKPOINT_FORMAT: u32 = 1;

/// Why a checkpoint could not be used or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The directory holds a checkpoint of another configuration or dataset.
    #[error("the checkpoint in {dir} belongs to another run: {reason}")]
    Mismatch {
        /// The checkpoint directory.
        dir: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A checkpoint file could not be read, parsed or written, or fails its hash.
    #[error("checkpoint {path}: {message}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// What a checkpoint directory's manifest records: enough to resume after the last epoch.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Layout version ([`CHECKPOINT_FORMAT`]).
    format: u32,
    /// The weights after `history.len()` epochs, a file in the same directory.
    weights_file: String,
    /// SHA-256 (hex) of the weights file, checked before loading.
    weights_sha256: String,
    /// The run's configuration; a resume must use the same.
    config: TrainConfig,
    /// The run's [`super::dataset::Dataset::hash`]; a resume must use the same data.
    dataset_hash: String,
    /// The class names, in output order.
    classes: Vec<String>,
    /// One record per epoch done.
    pub(crate) history: Vec<EpochRecord>,
}

impl Checkpoint {
    /// The checkpoint in `dir`, or `None` when there is none yet.
    pub(crate) fn read(dir: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
        let path = dir.join(CHECKPOINT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(checkpoint_error(&path, e)),
        };
        let checkpoint: Checkpoint =
            serde_json::from_str(&text).map_err(|e| checkpoint_error(&path, e))?;
        if checkpoint.format != CHECKPOINT_FORMAT {
            let message = format!("unknown checkpoint format {}", checkpoint.format);
            return Err(checkpoint_error(&path, message));
        }
        Ok(Some(checkpoint))
    }

    /// Refuses a checkpoint of another run.
    pub(crate) fn check(
        &self,
        dir: &Path,
        config: &TrainConfig,
        dataset_hash: &str,
        classes: &[String],
    ) -> Result<(), CheckpointError> {
        let reason = if self.config != *config {
            "the configuration differs"
        } else if self.dataset_hash != dataset_hash || self.classes != classes {
            "the dataset differs"
        } else if self.history.len() > config.epochs as usize {
            "it has more epochs than the configuration"
        } else {
            return Ok(());
        };
        Err(CheckpointError::Mismatch {
            dir: dir.to_path_buf(),
            reason: reason.into(),
        })
    }

    /// Loads the checkpoint's weights after checking their hash.
    pub(crate) fn load_weights(
        &self,
        dir: &Path,
        var_store: &mut nn::VarStore,
    ) -> Result<(), CheckpointError> {
        let path = dir.join(&self.weights_file);
        let actual = sha256_file(&path).map_err(|e| checkpoint_error(&path, e))?;
        if actual != self.weights_sha256 {
            return Err(checkpoint_error(
                &path,
                "the weights file does not match its hash",
            ));
        }
        var_store
            .load(&path)
            .map_err(|e| checkpoint_error(&path, e))
    }

    /// Writes the weights after `history.len()` epochs, then the manifest naming them (by
    /// rename, so a crash leaves the previous checkpoint intact), then removes older weights.
    pub(crate) fn write(
        dir: &Path,
        config: &TrainConfig,
        dataset_hash: &str,
        classes: &[String],
        history: &[EpochRecord],
        var_store: &nn::VarStore,
    ) -> Result<(), CheckpointError> {
        std::fs::create_dir_all(dir).map_err(|e| checkpoint_error(dir, e))?;
        let weights_file = format!("epoch-{:04}.safetensors", history.len());
        let weights = dir.join(&weights_file);
        var_store
            .save(&weights)
            .map_err(|e| checkpoint_error(&weights, e))?;
        std::fs::File::open(&weights)
            .and_then(|f| f.sync_all())
            .map_err(|e| checkpoint_error(&weights, e))?;
        let checkpoint = Checkpoint {
            format: CHECKPOINT_FORMAT,
            weights_sha256: sha256_file(&weights).map_err(|e| checkpoint_error(&weights, e))?,
            weights_file: weights_file.clone(),
            config: config.clone(),
            dataset_hash: dataset_hash.to_string(),
            classes: classes.to_vec(),
            history: history.to_vec(),
        };
        let path = dir.join(CHECKPOINT_FILE);
        let json =
            serde_json::to_vec_pretty(&checkpoint).map_err(|e| checkpoint_error(&path, e))?;
        write_atomically(&path, &json).map_err(|e| checkpoint_error(&path, e))?;
        remove_other_weights(dir, &weights_file);
        Ok(())
    }
}

/// A checkpoint directory's two files as bytes, to be kept elsewhere (the database, in
/// cluster mode) and written back on another host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFiles {
    /// Epochs done.
    pub epochs: usize,
    /// The manifest (`checkpoint.json`), naming the weights file and its SHA-256.
    pub manifest: Vec<u8>,
    /// The weights file's bytes.
    pub weights: Vec<u8>,
}

impl CheckpointFiles {
    /// The checkpoint in `dir`, or `None` when there is none; its weights are checked
    /// against the manifest's hash.
    pub fn read(dir: &Path) -> Result<Option<CheckpointFiles>, CheckpointError> {
        let Some(checkpoint) = Checkpoint::read(dir)? else {
            return Ok(None);
        };
        let path = dir.join(CHECKPOINT_FILE);
        let manifest = std::fs::read(&path).map_err(|e| checkpoint_error(&path, e))?;
        let path = dir.join(checkpoint.weights_file_name(dir)?);
        let weights = std::fs::read(&path).map_err(|e| checkpoint_error(&path, e))?;
        if hex::encode(Sha256::digest(&weights)) != checkpoint.weights_sha256 {
            return Err(checkpoint_error(
                &path,
                "the weights file does not match its hash",
            ));
        }
        Ok(Some(CheckpointFiles {
            epochs: checkpoint.history.len(),
            manifest,
            weights,
        }))
    }

    /// Epochs done by the checkpoint in `dir`; 0 when there is none.
    pub fn epochs_in(dir: &Path) -> Result<usize, CheckpointError> {
        Ok(Checkpoint::read(dir)?.map_or(0, |c| c.history.len()))
    }

    /// Makes these files the checkpoint in `dir`, as [`Checkpoint::write`] does (the
    /// weights synced, then the manifest by rename, then older weights removed), after
    /// checking that the manifest parses, names a plain file name, and that the weights
    /// match its hash. Whether it belongs to the run is checked when the run reads it.
    pub fn restore(&self, dir: &Path) -> Result<(), CheckpointError> {
        let path = dir.join(CHECKPOINT_FILE);
        let checkpoint: Checkpoint =
            serde_json::from_slice(&self.manifest).map_err(|e| checkpoint_error(&path, e))?;
        if checkpoint.format != CHECKPOINT_FORMAT || checkpoint.history.len() != self.epochs {
            return Err(checkpoint_error(
                &path,
                "the stored manifest is inconsistent",
            ));
        }
        let weights_file = checkpoint.weights_file_name(dir)?;
        let weights = dir.join(weights_file);
        if hex::encode(Sha256::digest(&self.weights)) != checkpoint.weights_sha256 {
            return Err(checkpoint_error(
                &weights,
                "the stored weights do not match their hash",
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| checkpoint_error(dir, e))?;
        write_atomically(&weights, &self.weights).map_err(|e| checkpoint_error(&weights, e))?;
        write_atomically(&path, &self.manifest).map_err(|e| checkpoint_error(&path, e))?;
        remove_other_weights(dir, weights_file);
        Ok(())
    }
}

impl Checkpoint {
    /// The weights file's name, refused unless it is a plain name inside the directory (a
    /// manifest from the database must not point elsewhere on this host).
    fn weights_file_name(&self, dir: &Path) -> Result<&str, CheckpointError> {
        let name = self.weights_file.as_str();
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && !name.contains(['/', '\\'])
            && name.ends_with(".safetensors");
        if !plain {
            return Err(checkpoint_error(
                &dir.join(CHECKPOINT_FILE),
                format!("the manifest names an odd weights file {name:?}"),
            ));
        }
        Ok(name)
    }
}

/// Removes weights files other than `keep`: no manifest names them any more. Failing to
/// remove one only wastes disk, so it is not an error.
fn remove_other_weights(dir: &Path, keep: &str) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("epoch-") && name.ends_with(".safetensors") && name != keep {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A [`CheckpointError::Io`] for `path`.
fn checkpoint_error(path: &Path, error: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}
