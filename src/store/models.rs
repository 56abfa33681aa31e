//! The model table: every trained model version and which one is active. The database
//! enforces a single active model (a unique partial index); activation and rollback land with
//! the model registry. Every activation is recorded in `model_activations`, which a rollback
//! walks back through (see [`ModelStore::roll_back_model`]).

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::metadata::SqliteMetadataStore;
use super::{now_ms, StoreError};

/// One model version as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRow {
    pub version: String,
    pub job_id: Option<i64>,
    /// Directory of the artifact (weights + manifest). Never in an answer: a client has no
    /// business knowing the server's filesystem.
    #[serde(skip_serializing)]
    pub path: String,
    pub manifest: serde_json::Value,
    pub is_active: bool,
    pub created_at_ms: i64,
    pub activated_at_ms: Option<i64>,
}

fn model_from_row(row: &Row<'_>) -> rusqlite::Result<ModelRow> {
    let manifest: String = row.get(3)?;
    Ok(ModelRow {
        version: row.get(0)?,
        job_id: row.get(1)?,
        path: row.get(2)?,
        manifest: serde_json::from_str(&manifest).unwrap_or(serde_json::Value::Null),
        is_active: row.get(4)?,
        created_at_ms: row.get(5)?,
        activated_at_ms: row.get(6)?,
    })
}

/// One file of a model artifact (the weights or the manifest) as a shared database keeps it,
/// so that a replica on another host can load a model it did not train.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// The file's name inside the artifact's directory (`model.safetensors`, ...).
    pub name: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// The model registry's storage.
pub trait ModelStore: Send + Sync {
    /// The version the next model gets: `v1`, `v2`, ...
    fn next_model_version(&self) -> Result<String, StoreError>;
    fn insert_model(
        &self,
        version: &str,
        job_id: Option<i64>,
        path: &str,
        manifest: &serde_json::Value,
    ) -> Result<(), StoreError>;
    /// Newest first.
    fn models(&self) -> Result<Vec<ModelRow>, StoreError>;
    fn model(&self, version: &str) -> Result<Option<ModelRow>, StoreError>;
    fn active_model(&self) -> Result<Option<ModelRow>, StoreError>;
    /// Makes `version` the one active model in one transaction. `false` if it does not exist.
    fn activate_model(&self, version: &str) -> Result<bool, StoreError>;
    /// Where a rollback goes: walking the activation history back from the newest activation
    /// not yet rolled back, the first model that still exists and is not the active one.
    fn previous_model(&self) -> Result<Option<ModelRow>, StoreError>;
    /// Makes `version` (found by [`ModelStore::previous_model`]) the active model as a
    /// rollback, in one transaction: the activations after its last one are marked undone
    /// and no new one is recorded, so the next rollback goes further back. `false` if it
    /// does not exist.
    fn roll_back_model(&self, version: &str) -> Result<bool, StoreError>;
    /// Deletes an inactive model's row (and the artifact files stored with it); returns the
    /// row, or why not.
    fn delete_model(&self, version: &str) -> Result<DeleteModel, StoreError>;
    /// Keeps `version`'s artifact files in the store, replacing any kept before, so that every
    /// replica of a cluster can fetch the model (see `service::artifacts`). Called before the
    /// model's row is inserted, so no replica sees a version whose files it cannot fetch. The
    /// embedded store keeps nothing here: its artifacts are the files at the row's `path`.
    fn put_model_artifact(&self, version: &str, files: &[ArtifactFile]) -> Result<(), StoreError>;
    /// The artifact files kept for `version`, each checked against the digest stored with it;
    /// `None` when the store keeps none (always for the embedded store, whose artifacts are
    /// the files at the row's `path`).
    fn model_artifact(&self, version: &str) -> Result<Option<Vec<ArtifactFile>>, StoreError>;
}

/// What became of a delete request.
#[derive(Debug)]
pub enum DeleteModel {
    Deleted(ModelRow),
    NotFound,
    Active,
}

const MODEL_COLUMNS: &str = "version, job_id, path, manifest, is_active, created_at, activated_at";

impl ModelStore for SqliteMetadataStore {
    fn next_model_version(&self) -> Result<String, StoreError> {
        let highest: Option<i64> = self.write(|conn| {
            Ok(conn.query_row(
                "SELECT max(CAST(substr(version, 2) AS INTEGER)) FROM models",
                [],
                |r| r.get(0),
            )?)
        })?;
        Ok(format!("v{}", highest.unwrap_or(0) + 1))
    }

    fn insert_model(
        &self,
        version: &str,
        job_id: Option<i64>,
        path: &str,
        manifest: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "INSERT INTO models (version, job_id, path, manifest, is_active, created_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                params![version, job_id, path, manifest.to_string(), now_ms() as i64],
            )?;
            Ok(())
        })
    }

    fn model(&self, version: &str) -> Result<Option<ModelRow>, StoreError> {
        self.write(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {MODEL_COLUMNS} FROM models WHERE version = ?1"),
                    [version],
                    model_from_row,
                )
                .optional()?)
        })
    }

    fn active_model(&self) -> Result<Option<ModelRow>, StoreError> {
        self.write(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {MODEL_COLUMNS} FROM models WHERE is_active = 1"),
                    [],
                    model_from_row,
                )
                .optional()?)
        })
    }

    fn activate_model(&self, version: &str) -> Result<bool, StoreError> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            tx.execute("UPDATE models SET is_active = 0 WHERE is_active = 1", [])?;
            let changed = tx.execute(
                "UPDATE models SET is_active = 1, activated_at = ?2 WHERE version = ?1",
                params![version, now_ms() as i64],
            )?;
            if changed == 1 {
                tx.execute(
                    "INSERT INTO model_activations (version, activated_at) VALUES (?1, ?2)",
                    params![version, now_ms() as i64],
                )?;
                tx.commit()?;
            }
            Ok(changed == 1)
        })
    }

    fn roll_back_model(&self, version: &str) -> Result<bool, StoreError> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            tx.execute("UPDATE models SET is_active = 0 WHERE is_active = 1", [])?;
            let changed = tx.execute(
                "UPDATE models SET is_active = 1, activated_at = ?2 WHERE version = ?1",
                params![version, now_ms() as i64],
            )?;
            if changed == 1 {
                tx.execute(
                    "UPDATE model_activations SET undone = 1 WHERE undone = 0 AND id > (
                         SELECT ifnull(max(id), 0) FROM model_activations
                         WHERE undone = 0 AND version = ?1)",
                    [version],
                )?;
                tx.commit()?;
            }
            Ok(changed == 1)
        })
    }

    fn previous_model(&self) -> Result<Option<ModelRow>, StoreError> {
        self.write(|conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {MODEL_COLUMNS} FROM models WHERE version = (
                             SELECT a.version FROM model_activations a
                             WHERE a.undone = 0 AND a.version IN (SELECT version FROM models)
                               AND a.version <> ifnull(
                                   (SELECT version FROM models WHERE is_active = 1), '')
                             ORDER BY a.id DESC LIMIT 1)"
                    ),
                    [],
                    model_from_row,
                )
                .optional()?)
        })
    }

    fn delete_model(&self, version: &str) -> Result<DeleteModel, StoreError> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let row = tx
                .query_row(
                    &format!("SELECT {MODEL_COLUMNS} FROM models WHERE version = ?1"),
                    [version],
                    model_from_row,
                )
                .optional()?;
            let outcome = match row {
                None => DeleteModel::NotFound,
                Some(row) if row.is_active => DeleteModel::Active,
                Some(row) => {
                    tx.execute("DELETE FROM models WHERE version = ?1", [version])?;
                    DeleteModel::Deleted(row)
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
    }

    fn put_model_artifact(&self, _: &str, _: &[ArtifactFile]) -> Result<(), StoreError> {
        Ok(())
    }

    fn model_artifact(&self, _: &str) -> Result<Option<Vec<ArtifactFile>>, StoreError> {
        Ok(None)
    }

    fn models(&self) -> Result<Vec<ModelRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT version, job_id, path, manifest, is_active, created_at, activated_at FROM models ORDER BY id DESC",
            )?;
            let rows = stmt.query_map([], model_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}
