//! A model artifact on disk, and the checks that decide whether one may serve: a directory
//! with the weights (`model.safetensors`) and `manifest.json` (classes, input size,
//! preprocessing version, architecture, training configuration, dataset hash, metrics,
//! device, creation time and the SHA-256 of the weights).
//!
//! Loading verifies, in order: the manifest parses and names this architecture and this
//! rasterizer's preprocessing version; the weights file matches its hash; every tensor the
//! network needs is there with the right shape and nothing else is; no weight is NaN or
//! infinite; a forward pass at the manifest's input size gives one finite logit per class.
//! Each failure is its own [`ArtifactError`] variant, so the server can refuse a broken model
//! with a clear answer and keep serving the old one.
//!
//! Files are written to a temporary name, synced and renamed, the manifest last, so a crash
//! never leaves a manifest that names a half-written weights file.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::nn;
use tch::{Device, Kind, TchError, Tensor};

use super::evaluation::Metrics;
use super::net::{geometry_tensor, input_tensor, Architecture, DoodleNet};
use super::raster::{self, PREPROCESSING_VERSION};
use super::types::{TrainConfig, TrainedModel};

/// File name of the manifest inside a model directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// File name of the weights inside a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Version of the manifest's layout.
pub const MANIFEST_FORMAT: u32 = 1;

/// Everything known about a model, stored next to its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The network's architecture name ([`Architecture::name`]).
    pub architecture: String,
    /// Class names in output order.
    pub classes: Vec<String>,
    /// Side of the square input image, in pixels.
    pub input_size: u32,
    /// The rasterizer version the model was trained with ([`PREPROCESSING_VERSION`]).
    pub preprocessing_version: u32,
    /// SHA-256 (hex) of [`WEIGHTS_FILE`].
    pub weights_sha256: String,
    /// The training configuration.
    pub training: TrainConfig,
    /// Hash of the training data (see `dataset::Dataset::hash`).
    pub dataset_hash: String,
    /// Drawings used, training and validation together.
    pub dataset_size: usize,
    /// Validation metrics and per-epoch history.
    pub metrics: Metrics,
    /// Device it was trained on: `cpu`, `cuda:N` or `mps`.
    pub device: String,
    /// When the artifact was written, RFC 3339 in UTC.
    pub created_at: String,
}

/// A verified model, ready to run.
#[derive(Debug)]
pub struct LoadedModel {
    /// Its manifest.
    pub manifest: Manifest,
    /// The weights.
    pub var_store: nn::VarStore,
    /// The layers, whose variables live in `var_store`.
    pub net: DoodleNet,
}

/// Why a model artifact cannot be written or used.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A file of the artifact does not exist (e.g. an unknown version's directory).
    #[error("{0} does not exist")]
    Missing(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The manifest is not valid JSON of the expected shape, or its content is inconsistent.
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    /// The manifest's layout version is not one this build reads.
    #[error("unsupported manifest format {0} (this build reads {MANIFEST_FORMAT})")]
    UnsupportedFormat(u32),
    /// The model is of another network architecture.
    #[error("unsupported architecture {found:?} (this build runs {:?} and {:?})", Architecture::Small.name(), Architecture::Wide.name())]
    UnsupportedArchitecture {
        /// The manifest's architecture name.
        found: String,
    },
    /// The model was trained on pixels from another rasterizer version.
    #[error(
        "model preprocessing version {found} differs from this build's {PREPROCESSING_VERSION}"
    )]
    PreprocessingMismatch {
        /// The manifest's preprocessing version.
        found: u32,
    },
    /// The weights file is not the one the manifest describes (corrupted or replaced).
    #[error("weights hash mismatch: manifest says {expected}, file is {actual}")]
    HashMismatch {
        /// The manifest's hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// The weights file is not a readable safetensors file.
    #[error("unreadable weights: {0}")]
    UnreadableWeights(String),
    /// The weights do not fit the network (missing, extra or wrongly shaped tensors).
    #[error("weights do not fit the network: {0}")]
    WeightsMismatch(String),
    /// A weight is NaN or infinite.
    #[error("tensor {0:?} holds NaN or infinite values")]
    NonFiniteWeights(String),
    /// The network does not produce one finite logit per class at the manifest's input size.
    #[error("the model fails on a {size}x{size} input: {message}")]
    InputShape {
        /// The manifest's input size.
        size: u32,
        /// What went wrong.
        message: String,
    },
    /// libtorch failed.
    #[error("torch: {0}")]
    Torch(#[from] TchError),
}

/// Writes `model` as an artifact into `dir` (created if needed) and returns its manifest.
pub fn write(dir: &Path, model: &TrainedModel) -> Result<Manifest, ArtifactError> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    // The temporary name keeps the `.safetensors` extension: tch picks the format from it.
    let temporary = dir.join(format!("{WEIGHTS_FILE}.tmp.safetensors"));
    model.var_store.save(&temporary)?;
    std::fs::File::open(&temporary)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(&temporary, e))?;
    let weights = dir.join(WEIGHTS_FILE);
    std::fs::rename(&temporary, &weights).map_err(|e| io_error(&weights, e))?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        architecture: model.config.architecture.name().to_string(),
        classes: model.classes.clone(),
        input_size: model.config.image_size,
        preprocessing_version: PREPROCESSING_VERSION,
        weights_sha256: sha256_file(&weights).map_err(|e| io_error(&weights, e))?,
        training: model.config.clone(),
        dataset_hash: model.dataset_hash.clone(),
        dataset_size: model.metrics.train_samples + model.metrics.validation_samples,
        metrics: model.metrics.clone(),
        device: crate::device::device_name(model.device),
        created_at: rfc3339_now(),
    };
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

/// Writes `manifest` as `dir/manifest.json`, atomically.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), ArtifactError> {
    let path = dir.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| ArtifactError::InvalidManifest(e.to_string()))?;
    write_atomically(&path, &json).map_err(|e| io_error(&path, e))
}

/// Reads and checks `dir/manifest.json` without touching the weights: cheap enough for a
/// model listing. It does not prove the model usable; [`load`] does.
pub fn read_manifest(dir: &Path) -> Result<Manifest, ArtifactError> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| ArtifactError::InvalidManifest(e.to_string()))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(ArtifactError::UnsupportedFormat(manifest.format));
    }
    let Some(architecture) = Architecture::from_name(&manifest.architecture) else {
        return Err(ArtifactError::UnsupportedArchitecture {
            found: manifest.architecture,
        });
    };
    if architecture != manifest.training.architecture {
        return Err(ArtifactError::InvalidManifest(format!(
            "architecture {:?} but trained as {:?}",
            manifest.architecture,
            manifest.training.architecture.name()
        )));
    }
    if manifest.preprocessing_version != PREPROCESSING_VERSION {
        return Err(ArtifactError::PreprocessingMismatch {
            found: manifest.preprocessing_version,
        });
    }
    if let Err(message) = manifest.training.raster.check() {
        return Err(ArtifactError::InvalidManifest(message));
    }
    if !(raster::MIN_SIZE..=raster::MAX_SIZE).contains(&manifest.input_size) {
        return Err(ArtifactError::InputShape {
            size: manifest.input_size,
            message: "the input size is out of range".into(),
        });
    }
    let mut classes = manifest.classes.clone();
    classes.sort();
    classes.dedup();
    if manifest.classes.len() < 2 || classes.len() != manifest.classes.len() {
        return Err(ArtifactError::InvalidManifest(
            "classes must be at least two unique names".into(),
        ));
    }
    Ok(manifest)
}

/// Loads and fully verifies the model in `dir` onto `device` (see the module docs for the
/// checks). The network is returned in no particular mode: run it with `forward_t(_, false)`.
pub fn load(dir: &Path, device: Device) -> Result<LoadedModel, ArtifactError> {
    let manifest = read_manifest(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    let actual = sha256_file(&path).map_err(|e| io_error(&path, e))?;
    if actual != manifest.weights_sha256 {
        return Err(ArtifactError::HashMismatch {
            expected: manifest.weights_sha256,
            actual,
        });
    }
    let stored: HashMap<String, Tensor> = Tensor::read_safetensors(&path)
        .map_err(|e| ArtifactError::UnreadableWeights(e.to_string()))?
        .into_iter()
        .collect();

    let var_store = nn::VarStore::new(device);
    // `read_manifest` checked that the training configuration names the architecture.
    let style = manifest.training.raster;
    // A model that reads geometric features has a wider `fc1`: a manifest that lost its
    // feature set no longer fits its weights and is refused below.
    let features = manifest.training.geometry_features();
    let net = DoodleNet::with_inputs(
        &var_store.root(),
        manifest.classes.len() as i64,
        manifest.training.architecture,
        style.channels() as i64,
        features as i64,
    );
    let mut wanted = var_store.variables();
    if let Some(extra) = stored.keys().find(|name| !wanted.contains_key(*name)) {
        return Err(ArtifactError::WeightsMismatch(format!(
            "unexpected tensor {extra:?}"
        )));
    }
    for (name, variable) in wanted.iter_mut() {
        let Some(source) = stored.get(name) else {
            return Err(ArtifactError::WeightsMismatch(format!(
                "missing tensor {name:?}"
            )));
        };
        if source.size() != variable.size() || source.kind() != Kind::Float {
            return Err(ArtifactError::WeightsMismatch(format!(
                "tensor {name:?} is {:?} {:?}, the network needs {:?} Float",
                source.kind(),
                source.size(),
                variable.size()
            )));
        }
        if i64::try_from(source.isfinite().logical_not().sum(Kind::Int64))? != 0 {
            return Err(ArtifactError::NonFiniteWeights(name.clone()));
        }
        tch::no_grad(|| variable.f_copy_(source))?;
    }

    let size = manifest.input_size;
    let probe = vec![0.0; style.channels() * (size * size) as usize];
    let geometry = geometry_tensor(&vec![0.0; features], 1, features, device);
    let logits = tch::no_grad(|| {
        net.forward_with(
            &input_tensor(&probe, 1, style.channels(), size, device),
            geometry.as_ref(),
            false,
        )
    });
    let wanted_shape = [1, manifest.classes.len() as i64];
    let finite = i64::try_from(logits.isfinite().logical_not().sum(Kind::Int64))? == 0;
    if logits.size() != wanted_shape || !finite {
        return Err(ArtifactError::InputShape {
            size,
            message: format!(
                "got logits of shape {:?} (finite: {finite}), expected {wanted_shape:?}",
                logits.size()
            ),
        });
    }
    Ok(LoadedModel {
        manifest,
        var_store,
        net,
    })
}

/// SHA-256 (hex) of a file's content.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Writes `bytes` to `path` through a synced temporary file and a rename, so readers see
/// the old content or the new, never a part.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temporary = path.with_file_name(name);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    // Make the rename itself durable; a directory cannot be synced on every platform.
    if let Some(dir) = path.parent() {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// An [`ArtifactError`] for an I/O failure on `path`, `Missing` when it does not exist.
fn io_error(path: &Path, source: std::io::Error) -> ArtifactError {
    match source.kind() {
        std::io::ErrorKind::NotFound => ArtifactError::Missing(path.to_path_buf()),
        _ => ArtifactError::Io {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// The current time as RFC 3339 in UTC, to the second (e.g. `2025-03-01T12:00:00Z`).
fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339(secs)
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (days to civil date after
/// Howard Hinnant's `civil_from_days`).
fn rfc3339(secs: i64) -> String {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_formatted_as_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_740_830_400 + 3661), "2025-03-01T13:01:01Z");
    }
}
