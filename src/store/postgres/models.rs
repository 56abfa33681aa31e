//! [`ModelStore`] on PostgreSQL. Exactly one active model is the database's rule (a partial
//! unique index); activation clears and sets in one transaction under an advisory lock, so
//! two replicas activating at once serialize instead of failing. Artifact files live in
//! `model_artifacts` (`bytea`, with each file's SHA-256), so any replica can load any model.

use sha2::{Digest, Sha256};

use super::PgStore;
use crate::store::models::{ArtifactFile, DeleteModel, ModelRow, ModelStore};
use crate::store::{now_ms, StoreError};

const MODEL_COLUMNS: &str = "version, job_id, path, manifest, is_active, created_at, activated_at";
/// The advisory lock activations take ("models").
const ACTIVATION_LOCK: i64 = 0x6d6f_6465_6c73;

fn model_from_row(row: &postgres::Row) -> Result<ModelRow, StoreError> {
    let manifest: String = row.try_get(3)?;
    Ok(ModelRow {
        version: row.try_get(0)?,
        job_id: row.try_get(1)?,
        path: row.try_get(2)?,
        manifest: serde_json::from_str(&manifest).unwrap_or(serde_json::Value::Null),
        is_active: row.try_get(4)?,
        created_at_ms: row.try_get(5)?,
        activated_at_ms: row.try_get(6)?,
    })
}

impl ModelStore for PgStore {
    fn next_model_version(&self) -> Result<String, StoreError> {
        let highest: Option<i64> = self
            .conn()?
            .query_one(
                "SELECT max(CAST(substr(version, 2) AS BIGINT)) FROM models WHERE version ~ '^v[0-9]+$'",
                &[],
            )?
            .try_get(0)?;
        Ok(format!("v{}", highest.unwrap_or(0) + 1))
    }

    fn insert_model(
        &self,
        version: &str,
        job_id: Option<i64>,
        path: &str,
        manifest: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO models (version, job_id, path, manifest, is_active, created_at)
             VALUES ($1, $2, $3, $4, FALSE, $5)",
            &[
                &version,
                &job_id,
                &path,
                &manifest.to_string(),
                &(now_ms() as i64),
            ],
        )?;
        Ok(())
    }

    fn models(&self) -> Result<Vec<ModelRow>, StoreError> {
        self.conn()?
            .query(
                &format!("SELECT {MODEL_COLUMNS} FROM models ORDER BY id DESC"),
                &[],
            )?
            .iter()
            .map(model_from_row)
            .collect()
    }

    fn model(&self, version: &str) -> Result<Option<ModelRow>, StoreError> {
        self.conn()?
            .query_opt(
                &format!("SELECT {MODEL_COLUMNS} FROM models WHERE version = $1"),
                &[&version],
            )?
            .as_ref()
            .map(model_from_row)
            .transpose()
    }

    fn active_model(&self) -> Result<Option<ModelRow>, StoreError> {
        self.conn()?
            .query_opt(
                &format!("SELECT {MODEL_COLUMNS} FROM models WHERE is_active"),
                &[],
            )?
            .as_ref()
            .map(model_from_row)
            .transpose()
    }

    fn activate_model(&self, version: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ACTIVATION_LOCK])?;
        tx.execute("UPDATE models SET is_active = FALSE WHERE is_active", &[])?;
        let changed = tx.execute(
            "UPDATE models SET is_active = TRUE, activated_at = $2 WHERE version = $1",
            &[&version, &(now_ms() as i64)],
        )?;
        if changed == 1 {
            tx.execute(
                "INSERT INTO model_activations (version, activated_at) VALUES ($1, $2)",
                &[&version, &(now_ms() as i64)],
            )?;
            tx.commit()?;
        }
        Ok(changed == 1)
    }

    fn roll_back_model(&self, version: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ACTIVATION_LOCK])?;
        tx.execute("UPDATE models SET is_active = FALSE WHERE is_active", &[])?;
        let changed = tx.execute(
            "UPDATE models SET is_active = TRUE, activated_at = $2 WHERE version = $1",
            &[&version, &(now_ms() as i64)],
        )?;
        if changed == 1 {
            // The activations after the target's last one are stepped back over.
            tx.execute(
                "UPDATE model_activations SET undone = TRUE WHERE NOT undone AND id > (
                     SELECT coalesce(max(id), 0) FROM model_activations
                     WHERE NOT undone AND version = $1)",
                &[&version],
            )?;
            tx.commit()?;
        }
        Ok(changed == 1)
    }

    fn previous_model(&self) -> Result<Option<ModelRow>, StoreError> {
        self.conn()?
            .query_opt(
                &format!(
                    "SELECT {MODEL_COLUMNS} FROM models WHERE version = (
                         SELECT a.version FROM model_activations a
                         WHERE NOT a.undone AND a.version IN (SELECT version FROM models)
                           AND a.version <> coalesce(
                               (SELECT version FROM models WHERE is_active), '')
                         ORDER BY a.id DESC LIMIT 1)"
                ),
                &[],
            )?
            .as_ref()
            .map(model_from_row)
            .transpose()
    }

    fn delete_model(&self, version: &str) -> Result<DeleteModel, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let row = tx
            .query_opt(
                &format!("SELECT {MODEL_COLUMNS} FROM models WHERE version = $1 FOR UPDATE"),
                &[&version],
            )?
            .as_ref()
            .map(model_from_row)
            .transpose()?;
        let outcome = match row {
            None => DeleteModel::NotFound,
            Some(row) if row.is_active => DeleteModel::Active,
            Some(row) => {
                tx.execute("DELETE FROM models WHERE version = $1", &[&version])?;
                tx.execute(
                    "DELETE FROM model_artifacts WHERE version = $1",
                    &[&version],
                )?;
                DeleteModel::Deleted(row)
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    fn put_model_artifact(&self, version: &str, files: &[ArtifactFile]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM model_artifacts WHERE version = $1",
            &[&version],
        )?;
        for file in files {
            tx.execute(
                "INSERT INTO model_artifacts (version, name, bytes, sha256) VALUES ($1, $2, $3, $4)",
                &[&version, &file.name, &file.bytes, &sha256(&file.bytes)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn model_artifact(&self, version: &str) -> Result<Option<Vec<ArtifactFile>>, StoreError> {
        let rows = self.conn()?.query(
            "SELECT name, bytes, sha256 FROM model_artifacts WHERE version = $1 ORDER BY name",
            &[&version],
        )?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut files = Vec::with_capacity(rows.len());
        for row in rows {
            let file = ArtifactFile {
                name: row.try_get(0)?,
                bytes: row.try_get(1)?,
            };
            let stored: String = row.try_get(2)?;
            if sha256(&file.bytes) != stored {
                return Err(StoreError::Corrupt(format!(
                    "model {version}: artifact file {} does not match its stored SHA-256",
                    file.name
                )));
            }
            files.push(file);
        }
        Ok(Some(files))
    }
}

/// SHA-256 (hex) of an artifact file, stored beside it.
fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
