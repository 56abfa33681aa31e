//! Where a model version's artifact is on this host, so that any replica of a cluster can
//! serve, compare or roll back to a model trained on another one.
//!
//! The embedded store's artifacts are the files at the model row's `path`, as they always
//! were. In cluster mode the database keeps every version's files as well
//! ([`ModelStore::put_model_artifact`], stored before the row), and a replica that must load
//! a version whose files it lacks fetches them into its own cache, `<data>/models/<version>/`:
//! written into a temporary folder, synced, renamed into place, then verified like any
//! artifact when [`Classifier::load`] reads them. A copy on disk is used only while its
//! manifest names the weights digest the database's manifest names and the weights file
//! still has that digest, so a stale or damaged copy is fetched again rather than served.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ml::artifact::{self, ArtifactError, MANIFEST_FILE, WEIGHTS_FILE};
use crate::ml::classifier::Classifier;
use crate::store::{ArtifactFile, ModelRow, ModelStore, StoreError};

/// The files an artifact is made of, the ones a training run writes and a replica fetches.
const ARTIFACT_FILES: [&str; 2] = [WEIGHTS_FILE, MANIFEST_FILE];

/// Why a model could not be loaded on this host.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Its files could not be fetched from the store or written to the cache.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Its files are there but do not verify (see `ml::artifact`).
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
}

/// Model artifacts on this host: the model store and this host's cache folder. Cheap to
/// clone.
#[derive(Clone)]
pub struct Artifacts {
    /// Where the rows and, in cluster mode, the artifact files are kept.
    models: Arc<dyn ModelStore>,
    /// This host's folder of model versions (`<data>/models`), where fetched files go.
    cache: PathBuf,
}

impl Artifacts {
    /// Artifacts from `models`, cached under `cache` (the data directory's models folder).
    pub fn new(models: Arc<dyn ModelStore>, cache: PathBuf) -> Self {
        Self { models, cache }
    }

    /// The model store these artifacts belong to.
    pub fn store(&self) -> &dyn ModelStore {
        self.models.as_ref()
    }

    /// Stores the artifact written in `dir` as `version`'s files in the model store (a no-op
    /// for the embedded store). Call it before inserting the version's row.
    pub fn publish(&self, version: &str, dir: &Path) -> Result<(), StoreError> {
        let mut files = Vec::with_capacity(ARTIFACT_FILES.len());
        for name in ARTIFACT_FILES {
            files.push(ArtifactFile {
                name: name.to_owned(),
                bytes: std::fs::read(dir.join(name))?,
            });
        }
        self.models.put_model_artifact(version, &files)
    }

    /// The folder holding `row`'s artifact on this host: the row's own `path` when its files
    /// are the ones the database describes, else this host's cached copy, fetched from the
    /// store first when it is missing or stale. When the store keeps no files (the embedded
    /// store), the row's `path` is all there is, and loading it says what is wrong with it.
    pub fn local_dir(&self, row: &ModelRow) -> Result<PathBuf, StoreError> {
        let wanted = row.manifest["weights_sha256"].as_str();
        let own = PathBuf::from(&row.path);
        if holds(&own, wanted) {
            return Ok(own);
        }
        let cached = self.cache.join(plain_name(&row.version)?);
        if cached != own && holds(&cached, wanted) {
            return Ok(cached);
        }
        match self.models.model_artifact(&row.version)? {
            None => Ok(own),
            Some(files) => {
                self.write_cache(&row.version, &cached, &files)?;
                tracing::info!(version = %row.version, dir = %cached.display(), "fetched a model's files from the database");
                Ok(cached)
            }
        }
    }

    /// Loads and verifies `row`'s model, fetching its files first when this host lacks them.
    pub fn load(&self, row: &ModelRow) -> Result<Classifier, LoadError> {
        let dir = self.local_dir(row)?;
        Ok(Classifier::load(&dir)?)
    }

    /// Removes a deleted version's files from this host: the row's folder and the cached
    /// copy. A failure is logged: the model no longer exists either way.
    pub fn forget(&self, row: &ModelRow) {
        let mut dirs = vec![PathBuf::from(&row.path)];
        if let Ok(name) = plain_name(&row.version) {
            dirs.push(self.cache.join(name));
        }
        dirs.dedup();
        for dir in dirs {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(path = %dir.display(), error = %e, "deleted model's files could not be removed")
                }
                _ => {}
            }
        }
    }

    /// Writes `files` as the folder `target`: into a temporary sibling, each file synced,
    /// then renamed over whatever was there.
    fn write_cache(
        &self,
        version: &str,
        target: &Path,
        files: &[ArtifactFile],
    ) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.cache)?;
        let temporary = self.cache.join(format!(
            ".{}.fetch-{}-{}",
            plain_name(version)?,
            std::process::id(),
            crate::store::now_ms()
        ));
        std::fs::create_dir_all(&temporary)?;
        let written = (|| -> Result<(), StoreError> {
            for file in files {
                let mut out = std::fs::File::create(temporary.join(plain_name(&file.name)?))?;
                out.write_all(&file.bytes)?;
                out.sync_all()?;
            }
            match std::fs::remove_dir_all(target) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            std::fs::rename(&temporary, target)?;
            Ok(())
        })();
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&temporary);
        }
        written
    }
}

/// Whether `dir` holds an artifact whose manifest names the weights digest `wanted` and whose
/// weights file has it. `false` when nothing is wanted (a manifest without a digest).
fn holds(dir: &Path, wanted: Option<&str>) -> bool {
    let Some(wanted) = wanted else {
        return false;
    };
    let named = artifact::read_manifest(dir).is_ok_and(|m| m.weights_sha256 == wanted);
    named && artifact::sha256_file(&dir.join(WEIGHTS_FILE)).is_ok_and(|d| d == wanted)
}

/// `name` when it is safe as one path component (a version or a file name from the
/// database), else corruption: stored names never climb out of the cache.
fn plain_name(name: &str) -> Result<&str, StoreError> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if plain {
        Ok(name)
    } else {
        Err(StoreError::Corrupt(format!(
            "{name:?} is not a plain file name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::synth;
    use crate::ml::train::{self, Hooks, TrainConfig};
    use crate::store::postgres::scratch::ScratchCluster;
    use crate::store::Stores;

    /// A model trained for one epoch on a handful of doodles, written as an artifact.
    fn tiny_artifact(dir: &Path) -> artifact::Manifest {
        let config = TrainConfig {
            epochs: 1,
            batch_size: 16,
            validation_fraction: 0.3,
            ..TrainConfig::default()
        };
        let model = train::train(&synth::starter_dataset(10, 3), &config, Hooks::default())
            .expect("the tiny model trains");
        artifact::write(dir, &model).unwrap()
    }

    #[test]
    fn a_replica_on_another_host_fetches_a_model_from_the_database_verifies_it_and_refetches_a_damaged_copy(
    ) {
        let Some(database) = ScratchCluster::database_or_skip() else {
            return;
        };
        let (host_a, host_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Stores::open_postgres(&database.url()).unwrap();
        let b = Stores::open_postgres(&database.url()).unwrap();
        let trained = host_a.path().join("models").join("v1");
        let manifest = tiny_artifact(&trained);
        let on_a = Artifacts::new(a.models.clone(), host_a.path().join("models"));
        on_a.publish("v1", &trained).unwrap();
        // The row names the trainer's folder, which host B does not have.
        let elsewhere = "/nonexistent/host-a/models/v1";
        let json = serde_json::to_value(&manifest).unwrap();
        a.models.insert_model("v1", None, elsewhere, &json).unwrap();

        let on_b = Artifacts::new(b.models.clone(), host_b.path().join("models"));
        let row = b.models.model("v1").unwrap().unwrap();
        let fetched = on_b.local_dir(&row).unwrap();
        assert_eq!(fetched, host_b.path().join("models").join("v1"));
        assert_eq!(
            std::fs::read(fetched.join(WEIGHTS_FILE)).unwrap(),
            std::fs::read(trained.join(WEIGHTS_FILE)).unwrap()
        );
        let classifier = on_b.load(&row).unwrap();
        assert_eq!(classifier.classes(), manifest.classes.as_slice());

        // A damaged copy is not served: the files are fetched again.
        std::fs::write(fetched.join(WEIGHTS_FILE), b"not weights").unwrap();
        on_b.load(&row).unwrap();
        assert_eq!(
            artifact::sha256_file(&fetched.join(WEIGHTS_FILE)).unwrap(),
            manifest.weights_sha256
        );

        // Deleting the model deletes its files from the database too.
        assert!(matches!(
            b.models.delete_model("v1").unwrap(),
            crate::store::DeleteModel::Deleted(_)
        ));
        assert!(a.models.model_artifact("v1").unwrap().is_none());
    }

    #[test]
    fn bytes_changed_in_the_database_are_refused_as_corrupt() {
        let Some(database) = ScratchCluster::database_or_skip() else {
            return;
        };
        let stores = Stores::open_postgres(&database.url()).unwrap();
        let file = ArtifactFile {
            name: MANIFEST_FILE.into(),
            bytes: b"{}".to_vec(),
        };
        stores
            .models
            .put_model_artifact("v7", std::slice::from_ref(&file))
            .unwrap();
        assert_eq!(
            stores.models.model_artifact("v7").unwrap(),
            Some(vec![file])
        );
        let mut client = postgres::Client::connect(&database.url(), postgres::NoTls).unwrap();
        client
            .execute("UPDATE model_artifacts SET bytes = 'x'::bytea", &[])
            .unwrap();
        assert!(matches!(
            stores.models.model_artifact("v7"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn names_from_the_database_never_leave_the_cache_folder() {
        assert!(plain_name("v12").is_ok());
        assert!(plain_name("model.safetensors").is_ok());
        for bad in ["", "..", ".hidden", "../v1", "v1/x", "a\\b", "v1\0"] {
            assert!(plain_name(bad).is_err(), "{bad:?}");
        }
    }
}
