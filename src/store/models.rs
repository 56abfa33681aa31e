//! The model table: every trained model version and which one is active. The database
//! enforces a single active model (a unique partial index); activation and rollback land with
//! the model registry.

use rusqlite::{params, Row};
use serde::Serialize;

use super::metadata::SqliteMetadataStore;
use super::{now_ms, StoreError};

/// One model version as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRow {
    pub version: String,
    pub job_id: Option<i64>,
    /// Directory of the artifact (weights + manifest).
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
}

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
