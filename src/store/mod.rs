//! Storage: the only module that touches sled or rusqlite.
//!
//! Two stores behind narrow interfaces, so that another backend (PostgreSQL + S3, say) can
//! slot in later:
//! - [`BlobStore`]: stroke records by drawing id (sled, see [`blobs`]);
//! - [`MetadataStore`]: everything else (SQLite, see [`metadata`]).
//!
//! Drawings come in through [`ingest`], the group-commit writer: many concurrent
//! submissions share one flush of each store, and nothing is acknowledged before both
//! stores have it on stable storage. [`reconcile`] repairs the metadata store from the
//! stroke store at start.

pub mod blobs;
pub mod ingest;
pub mod jobs;
pub mod keys;
pub mod metadata;
mod migrations;
pub mod models;
pub mod reconcile;
pub mod review;

use std::path::Path;

use thiserror::Error;

pub use blobs::{BlobStore, SledBlobStore};
pub use ingest::{
    ImportItem, ImportOutcome, Ingest, IngestError, PendingImport, Submission, SubmitOutcome,
};
pub use jobs::{CancelOutcome, JobRow, JobStatus, JobStore};
pub use keys::KeyStore;
pub use metadata::{DrawingRow, MetadataStore, NewDrawingRow, ShapeRow, SqliteMetadataStore};
pub use models::{DeleteModel, ModelRow, ModelStore};
pub use review::{ReviewStore, SqliteReviewStore};

/// A failure inside a store. The HTTP layer answers these with 5xx and logs the cause.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("stroke store: {0}")]
    Sled(#[from] sled::Error),
    #[error("metadata store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the metadata schema is version {found}, newer than this program knows ({known}); upgrade Doodlebox")]
    SchemaTooNew { found: i64, known: i64 },
}

/// Both stores, opened from the data directory's fixed layout:
/// `<data>/strokes/` (sled) and `<data>/doodlebox.sqlite3` (SQLite).
pub struct Stores {
    pub blobs: std::sync::Arc<dyn BlobStore>,
    pub metadata: std::sync::Arc<dyn MetadataStore>,
    /// The training queue's table (the same SQLite database as `metadata`).
    pub jobs: std::sync::Arc<dyn JobStore>,
    /// The model versions (the same SQLite database as `metadata`).
    pub models: std::sync::Arc<dyn ModelStore>,
    /// Implementors' API keys (the same SQLite database as `metadata`).
    pub keys: std::sync::Arc<dyn KeyStore>,
    /// The admin review screens' queries and actions (the same SQLite database).
    pub review: std::sync::Arc<dyn ReviewStore>,
}

impl Stores {
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let blobs = SledBlobStore::open(&data_dir.join("strokes"))?;
        let metadata = std::sync::Arc::new(SqliteMetadataStore::open(&metadata_path(data_dir))?);
        let review = SqliteReviewStore::open(metadata.clone())?;
        Ok(Self {
            review: std::sync::Arc::new(review),
            blobs: std::sync::Arc::new(blobs),
            metadata: metadata.clone(),
            jobs: metadata.clone(),
            models: metadata.clone(),
            keys: metadata,
        })
    }
}

/// Where the metadata database lives in a data directory. SQLite admits several processes,
/// so commands that touch only metadata (accounts, keys, model activation) open it directly
/// with [`SqliteMetadataStore::open`], even while a server runs.
pub fn metadata_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("doodlebox.sqlite3")
}

/// Milliseconds since the Unix epoch, by the wall clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
