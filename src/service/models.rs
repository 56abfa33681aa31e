//! The model registry, the one home of what can be done to trained model versions: list
//! them, read one, compare two, activate one, roll back, delete one. The admin model routes
//! and `doodlebox models` call [`ModelRegistry`]; what a manifest says about accuracy is read
//! here and nowhere else ([`ManifestScores`]).
//!
//! Synchronous, like every store-backed service: loading a model, the database and removing
//! an artifact's files all block, so a handler runs these on a blocking thread and the CLI
//! calls them directly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::ModelVersion;
use crate::ml::evaluation::{wilson_interval, Metrics};
use crate::service::artifacts::Artifacts;
use crate::service::serving::{verify_and_record, Activation, ModelServer, ServingError};
use crate::store::{DeleteModel, ModelRow, ModelStore, StoreError};

/// Why a registry operation failed.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("there is no model {0}")]
    NotFound(ModelVersion),
    #[error("the active model cannot be deleted; activate another one first")]
    Active(ModelVersion),
    /// Activation and rollback: the model does not load, or there is nothing to go back to.
    #[error(transparent)]
    Serving(#[from] ServingError),
    /// A stored manifest that does not say what the model card needs: a fault of the store.
    #[error("model {version}: unreadable manifest: {cause}")]
    Manifest { version: String, cause: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the model card and the confusion picture need from a stored manifest (written by
/// `ml::artifact::Manifest`).
#[derive(Debug, Clone, Deserialize)]
pub struct CardManifest {
    pub classes: Vec<String>,
    pub input_size: u32,
    pub architecture: String,
    pub weights_sha256: String,
    pub dataset_size: usize,
    pub dataset_hash: String,
    pub metrics: Metrics,
    pub device: String,
}

/// One class's validation precision and recall.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassScore {
    pub precision: f64,
    pub recall: f64,
}

/// What a stored manifest says about a model's accuracy. Manifests are written by
/// `ml::artifact`; a field that an older or damaged manifest lacks reads as absent rather
/// than failing the whole answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestScores {
    /// Top-1 accuracy on the validation set.
    pub accuracy: Option<f64>,
    /// Top-3 accuracy on the validation set.
    pub top3_accuracy: Option<f64>,
    /// Drawings the accuracy was measured on.
    pub validation_samples: Option<usize>,
    /// The 95 % Wilson interval of the accuracy (recomputed for manifests that lack it).
    pub accuracy_interval: Option<[f64; 2]>,
    /// Per class, by class name.
    pub per_class: BTreeMap<String, ClassScore>,
}

impl ManifestScores {
    pub fn read(manifest: &serde_json::Value) -> Self {
        let metrics = &manifest["metrics"];
        let per_class = metrics["per_class"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| {
                        let score = ClassScore {
                            precision: r["precision"].as_f64()?,
                            recall: r["recall"].as_f64()?,
                        };
                        Some((r["class"].as_str()?.to_owned(), score))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let accuracy = metrics["accuracy"].as_f64();
        let validation_samples = metrics["validation_samples"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok());
        let stored = metrics["accuracy_interval"]
            .as_array()
            .and_then(|a| Some([a.first()?.as_f64()?, a.get(1)?.as_f64()?]));
        let accuracy_interval = stored.or_else(|| {
            let (a, n) = (accuracy?, validation_samples?);
            Some(wilson_interval((a * n as f64).round() as usize, n))
        });
        Self {
            accuracy,
            top3_accuracy: metrics["top3_accuracy"].as_f64(),
            validation_samples,
            accuracy_interval,
            per_class,
        }
    }

    /// The accuracy as people should read it: with its 95 % interval and sample size, e.g.
    /// `75.0 % (95 % interval 30.1-95.4 %, n = 4)`; `-` when unknown.
    pub fn accuracy_text(&self) -> String {
        match (
            self.accuracy,
            self.accuracy_interval,
            self.validation_samples,
        ) {
            (Some(a), Some([lo, hi]), Some(n)) => format!(
                "{:.1} % (95 % interval {:.1}-{:.1} %, n = {n})",
                a * 100.0,
                lo * 100.0,
                hi * 100.0
            ),
            (Some(a), _, _) => format!("{:.1} %", a * 100.0),
            _ => "-".into(),
        }
    }

    /// The recall of each class (the share of its drawings the model recognises).
    pub fn recall_by_class(&self) -> HashMap<String, f64> {
        self.per_class
            .iter()
            .map(|(class, score)| (class.clone(), score.recall))
            .collect()
    }
}

/// Two values side by side with `b - a` when both exist.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delta {
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub delta: Option<f64>,
}

/// One class in a comparison; a class one model does not know shows `null` on its side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassComparison {
    pub class: String,
    pub a: Option<ClassScore>,
    pub b: Option<ClassScore>,
    pub precision_delta: Option<f64>,
    pub recall_delta: Option<f64>,
}

/// `GET /api/v1/admin/models/compare`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub accuracy: Delta,
    /// Every class either model knows, by name.
    pub per_class: Vec<ClassComparison>,
    /// Both scored on the current evaluation split, paired (see `service::evaluation`);
    /// `None` until filled in, or when the split holds no drawing of the classes both know.
    pub paired: Option<crate::service::evaluation::PairedComparison>,
}

impl Comparison {
    fn new(a: &ModelRow, b: &ModelRow) -> Self {
        let (sa, sb) = (
            ManifestScores::read(&a.manifest),
            ManifestScores::read(&b.manifest),
        );
        let classes: BTreeSet<&String> = sa.per_class.keys().chain(sb.per_class.keys()).collect();
        let per_class = classes
            .into_iter()
            .map(|class| {
                let (x, y) = (
                    sa.per_class.get(class).copied(),
                    sb.per_class.get(class).copied(),
                );
                ClassComparison {
                    class: class.clone(),
                    a: x,
                    b: y,
                    precision_delta: x.zip(y).map(|(x, y)| y.precision - x.precision),
                    recall_delta: x.zip(y).map(|(x, y)| y.recall - x.recall),
                }
            })
            .collect();
        Self {
            a: a.version.clone(),
            b: b.version.clone(),
            accuracy: Delta {
                a: sa.accuracy,
                b: sb.accuracy,
                delta: sa.accuracy.zip(sb.accuracy).map(|(x, y)| y - x),
            },
            per_class,
            paired: None,
        }
    }
}

/// The registry over the model table, and the running server's inference thread when there
/// is one (activation must then swap the model in memory too).
pub struct ModelRegistry {
    store: Arc<dyn ModelStore>,
    /// The server's model in memory; `None` for a command working on a stopped data dir.
    server: Option<Arc<ModelServer>>,
    /// Where model files are on this host.
    artifacts: Artifacts,
}

impl ModelRegistry {
    /// A registry for a data directory no server is running on (its models folder is
    /// `models_dir`): activation is recorded in the database and served from the next start.
    pub fn offline(store: Arc<dyn ModelStore>, models_dir: &Path) -> Self {
        Self {
            artifacts: Artifacts::new(store.clone(), models_dir.to_owned()),
            store,
            server: None,
        }
    }

    /// A registry that activates through the running server's inference thread.
    pub fn serving(store: Arc<dyn ModelStore>, server: Arc<ModelServer>) -> Self {
        Self {
            artifacts: server.artifacts().clone(),
            store,
            server: Some(server),
        }
    }

    /// Where model files are on this host (to load one for a comparison).
    pub fn artifacts(&self) -> &Artifacts {
        &self.artifacts
    }

    /// Every model version, newest first.
    pub fn list(&self) -> Result<Vec<ModelRow>, ModelError> {
        Ok(self.store.models()?)
    }

    /// One version with its whole manifest.
    pub fn get(&self, version: &ModelVersion) -> Result<ModelRow, ModelError> {
        self.store
            .model(version.as_str())?
            .ok_or_else(|| ModelError::NotFound(version.clone()))
    }

    /// The model the inference thread serves now, with its manifest: exactly what classify
    /// answers with. [`ServingError::NoModel`] when none is served.
    pub fn served(&self) -> Result<(ModelRow, CardManifest), ModelError> {
        let version = self
            .server
            .as_ref()
            .and_then(|server| server.serving_version())
            .ok_or(ServingError::NoModel)?;
        let row = self.store.model(&version)?.ok_or(ServingError::NoModel)?;
        let manifest =
            serde_json::from_value(row.manifest.clone()).map_err(|e| ModelError::Manifest {
                version: row.version.clone(),
                cause: e.to_string(),
            })?;
        Ok((row, manifest))
    }

    /// Accuracy and per-class precision and recall of `a` and `b`, with deltas `b - a`.
    pub fn compare(&self, a: &ModelVersion, b: &ModelVersion) -> Result<Comparison, ModelError> {
        Ok(Comparison::new(&self.get(a)?, &self.get(b)?))
    }

    /// Verifies and loads `version`, then makes it the one active model; a model that does
    /// not load is refused and the active one stays.
    pub fn activate(&self, version: &ModelVersion) -> Result<(), ModelError> {
        match &self.server {
            Some(server) => server.activate(version.as_str())?,
            None => {
                verify_and_record(&self.artifacts, version.as_str(), Activation::New)?;
            }
        }
        Ok(())
    }

    /// Activates the model before the current one in the activation history and answers
    /// its version; pressed again it goes further back, never toggling.
    pub fn rollback(&self) -> Result<ModelVersion, ModelError> {
        let version = match &self.server {
            Some(server) => server.rollback()?,
            None => {
                let previous = self
                    .store
                    .previous_model()?
                    .ok_or(ServingError::NothingToRollBackTo)?;
                verify_and_record(&self.artifacts, &previous.version, Activation::Rollback)?;
                previous.version
            }
        };
        Ok(ModelVersion::from_row(version))
    }

    /// Deletes an inactive version's row, then its artifact's files on this host (a failure
    /// to remove them is logged: the row is gone, the model no longer exists).
    pub fn delete(&self, version: &ModelVersion) -> Result<(), ModelError> {
        match self.store.delete_model(version.as_str())? {
            DeleteModel::NotFound => Err(ModelError::NotFound(version.clone())),
            DeleteModel::Active => Err(ModelError::Active(version.clone())),
            DeleteModel::Deleted(row) => {
                self.artifacts.forget(&row);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteMetadataStore;

    fn registry() -> (tempfile::TempDir, Arc<SqliteMetadataStore>, ModelRegistry) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteMetadataStore::open(&dir.path().join("meta.sqlite")).unwrap());
        let registry = ModelRegistry::offline(store.clone(), &dir.path().join("models"));
        (dir, store, registry)
    }

    fn manifest(accuracy: f64, classes: &[(&str, f64, f64)]) -> serde_json::Value {
        let per_class: Vec<_> = classes
            .iter()
            .map(|(c, p, r)| serde_json::json!({"class": c, "precision": p, "recall": r}))
            .collect();
        serde_json::json!({"metrics": {"accuracy": accuracy, "per_class": per_class}})
    }

    fn v(version: &str) -> ModelVersion {
        ModelVersion::parse(version).unwrap()
    }

    #[test]
    fn an_accuracy_reads_with_its_interval_and_sample_size_even_from_an_older_manifest() {
        let scores = ManifestScores::read(&serde_json::json!(
            {"metrics": {"accuracy": 0.75, "validation_samples": 4}}
        ));
        assert_eq!(
            scores.accuracy_text(),
            "75.0 % (95 % interval 30.1-95.4 %, n = 4)"
        );
    }

    #[test]
    fn compare_shows_both_sides_and_deltas_with_null_for_a_class_one_side_lacks() {
        let (dir, store, registry) = registry();
        let path = dir.path().display().to_string();
        let a = manifest(0.5, &[("cat", 0.5, 0.25)]);
        let b = manifest(0.75, &[("cat", 0.75, 0.5), ("dog", 1.0, 1.0)]);
        store.insert_model("v1", None, &path, &a).unwrap();
        store.insert_model("v2", None, &path, &b).unwrap();
        let compared = registry.compare(&v("v1"), &v("v2")).unwrap();
        assert_eq!(compared.accuracy.delta, Some(0.25));
        assert_eq!(compared.per_class.len(), 2);
        assert_eq!(compared.per_class[0].precision_delta, Some(0.25));
        assert_eq!(compared.per_class[0].recall_delta, Some(0.25));
        assert_eq!(compared.per_class[1].a, None);
        assert_eq!(compared.per_class[1].recall_delta, None);
        assert!(matches!(
            registry.compare(&v("v1"), &v("v9")),
            Err(ModelError::NotFound(x)) if x == v("v9")
        ));
    }

    #[test]
    fn rollback_without_a_previous_model_is_refused() {
        let (_dir, _store, registry) = registry();
        assert!(matches!(
            registry.rollback(),
            Err(ModelError::Serving(ServingError::NothingToRollBackTo))
        ));
    }

    #[test]
    fn rollback_to_a_model_that_does_not_load_keeps_the_active_one() {
        let (dir, store, registry) = registry();
        let missing = dir.path().join("nothing-here").display().to_string();
        store
            .insert_model("v1", None, &missing, &manifest(0.5, &[]))
            .unwrap();
        store
            .insert_model("v2", None, &missing, &manifest(0.5, &[]))
            .unwrap();
        assert!(store.activate_model("v1").unwrap());
        assert!(store.activate_model("v2").unwrap());
        assert!(matches!(
            registry.rollback(),
            Err(ModelError::Serving(ServingError::InvalidModel { .. }))
        ));
        assert_eq!(store.active_model().unwrap().unwrap().version, "v2");
    }

    #[test]
    fn activating_an_unknown_version_says_so() {
        let (_dir, _store, registry) = registry();
        assert!(matches!(
            registry.activate(&v("v3")),
            Err(ModelError::Serving(ServingError::UnknownVersion(_)))
        ));
    }

    #[test]
    fn delete_refuses_the_active_model_and_removes_an_inactive_one_with_its_files() {
        let (dir, store, registry) = registry();
        let artifact = dir.path().join("models").join("v1");
        std::fs::create_dir_all(&artifact).unwrap();
        std::fs::write(artifact.join("weights"), b"x").unwrap();
        let path = artifact.display().to_string();
        store
            .insert_model("v1", None, &path, &manifest(0.5, &[]))
            .unwrap();
        store
            .insert_model("v2", None, &path, &manifest(0.5, &[]))
            .unwrap();
        assert!(store.activate_model("v2").unwrap());
        assert!(matches!(
            registry.delete(&v("v2")),
            Err(ModelError::Active(_))
        ));
        registry.delete(&v("v1")).unwrap();
        assert!(!artifact.exists());
        assert!(matches!(
            registry.get(&v("v1")),
            Err(ModelError::NotFound(_))
        ));
        assert!(matches!(
            registry.delete(&v("v1")),
            Err(ModelError::NotFound(_))
        ));
        assert_eq!(registry.list().unwrap().len(), 1);
    }

    #[test]
    fn manifest_scores_skip_rows_with_missing_fields() {
        let scores = ManifestScores::read(&serde_json::json!({"metrics": {"per_class": [
            {"class": "cat", "precision": 0.5, "recall": 0.25},
            {"class": "dog", "precision": 0.5}
        ]}}));
        assert_eq!(scores.accuracy, None);
        assert_eq!(scores.recall_by_class().get("cat"), Some(&0.25));
        assert_eq!(scores.per_class.len(), 1);
    }
}
