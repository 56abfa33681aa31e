//! Storage: the only module that touches sled or rusqlite.
//!
//! Services see storage through narrow traits, one per thing they keep, so that another
//! backend (PostgreSQL + object storage, say) can slot in behind the same seams:
//! - drawings and strokes: [`BlobStore`] (stroke records by drawing id, sled, see [`blobs`])
//!   and [`DrawingStore`] (drawing rows);
//! - idempotency: [`IdempotencyStore`];
//! - jobs: [`JobStore`]; models: [`ModelStore`];
//! - accounts and sessions: [`admins::AdminStore`]; keys: [`KeyStore`];
//! - settings: [`SettingsStore`]; quality scores and the rescore walk: [`QualityStore`];
//! - shapes: [`ShapeStore`]; the review screens: [`ReviewStore`] (split by job under
//!   [`review`]).
//!
//! [`MetadataStore`] gathers the row traits with shapes and nicknames; one SQLite database
//! ([`metadata`] and one file per trait) implements them all. [`Stores`] holds one trait
//! object per seam, opened from the [`DataDir`](crate::data_dir::DataDir) layout.
//!
//! **The seams are synchronous.** Every method blocks and is called from a blocking thread
//! (`spawn_blocking`, the group-commit thread, the job runner), as today. The reasons: the
//! hot write path is one dedicated thread that batches many requests into one sync, which
//! an async interface would not make faster; rusqlite and sled are blocking libraries, so
//! async traits would only wrap `spawn_blocking` inside every backend instead of once at
//! the edge; and synchronous traits stay object-safe without boxing futures. A PostgreSQL
//! backend fits them with the synchronous `postgres` crate and a connection pool
//! (`r2d2`), its calls made from the same blocking threads.
//!
//! Drawings come in through [`ingest`], the group-commit writer: many concurrent
//! submissions share one flush of each store, and nothing is acknowledged before both
//! stores have it on stable storage. [`reconcile`] repairs the metadata store from the
//! stroke store at start. [`disk`] (the free-space watermark) and [`breaker`] (the circuit
//! breaker) guard that write path; [`retry`] retries idempotent work on a busy database.
//! Planned faults for the fault tests live outside the store, in [`crate::fault`].
//!
//! `contract_tests` is one suite of the promises services rely on, written against the
//! traits only and generic over a backend factory; the embedded backend runs it, and a
//! second backend runs the very same suite.

pub mod admins;
pub mod backup;
pub mod blobs;
pub mod breaker;
pub mod check;
#[cfg(test)]
mod contract_tests;
pub mod disk;
pub mod ingest;
pub mod jobs;
pub mod keys;
pub mod metadata;
mod migrations;
pub mod models;
pub mod postgres;
pub mod quality;
pub mod reconcile;
pub mod retry;
pub mod review;
pub mod shapes;
pub mod uploads;

use std::path::Path;

use thiserror::Error;

use crate::data_dir::DataDir;

pub use blobs::{BlobStore, SledBlobStore};
pub use ingest::{
    ImportItem, ImportOutcome, Ingest, IngestError, IngestOptions, PendingImport, Submission,
    SubmitOutcome,
};
pub use jobs::{
    CancelOutcome, Heartbeat, JobKind, JobLease, JobRow, JobStatus, JobStore, StoredCheckpoint,
};
pub use keys::KeyStore;
pub use metadata::{
    DrawingRow, DrawingStore, IdempotencyRecord, IdempotencyStore, MetadataStore, NewDrawingRow,
    ShapeRow, SqliteMetadataStore,
};
pub use migrations::SCHEMA_VERSION;
pub use models::{ArtifactFile, DeleteModel, ModelRow, ModelStore};
pub use quality::{QualityStore, SettingsStore};
pub use review::{ReviewStore, SqliteReviewStore};
pub use shapes::ShapeStore;

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
    #[error("database: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("database connection pool: {0}")]
    Pool(#[from] r2d2_postgres::r2d2::Error),
    #[error("database configuration: {0}")]
    Config(String),
    /// Another replica stored one of a batch's idempotency keys after the batch looked it
    /// up; the batch stored nothing and its submissions are looked up again.
    #[error("an idempotency key was stored by another replica at the same moment")]
    KeyTaken,
    /// A run's write found its job no longer running under the run's claim (cluster mode):
    /// another process took the job over while this one was frozen or cut off, or the job
    /// ended. The write changed nothing; the run stops and leaves the job to its new owner.
    #[error("job {0} is no longer this run's: another process took it over")]
    JobTakenOver(i64),
}

impl StoreError {
    /// Whether opening the stores failed because another holder has the stroke store's lock:
    /// another process, or sled's background threads for a moment after this process dropped
    /// its store. sled reports that as an I/O error of kind `Other` whose text names the lock
    /// (the `WouldBlock` underneath only survives in the message), so both are recognised.
    pub fn is_lock_conflict(&self) -> bool {
        match self {
            Self::Sled(sled::Error::Io(io)) => {
                io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("could not acquire lock")
            }
            _ => false,
        }
    }

    /// Whether the error says the disk is full (`ENOSPC`, `SQLITE_FULL`).
    pub fn is_disk_full(&self) -> bool {
        let io_full = |e: &std::io::Error| e.kind() == std::io::ErrorKind::StorageFull;
        match self {
            Self::Io(e) | Self::Sled(sled::Error::Io(e)) => io_full(e),
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            Self::Postgres(e) => e.code() == Some(&::postgres::error::SqlState::DISK_FULL),
            _ => false,
        }
    }
}

/// Which engine holds the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// sled + SQLite in the data directory (the appliance).
    Embedded,
    /// One PostgreSQL database shared by every replica (`--database-url`).
    Postgres,
}

/// Both stores, opened from the data directory's fixed layout:
/// `<data>/strokes/` (sled) and `<data>/doodlebox.sqlite3` (SQLite), or every seam on one
/// PostgreSQL database ([`Stores::open_postgres`]).
pub struct Stores {
    /// Which engine the seams below run on: features tied to the data directory (backup,
    /// restore, verify) are the embedded store's only.
    pub backend: Backend,
    pub blobs: std::sync::Arc<dyn BlobStore>,
    pub metadata: std::sync::Arc<dyn MetadataStore>,
    /// The training queue's table (the same SQLite database as `metadata`).
    pub jobs: std::sync::Arc<dyn JobStore>,
    /// The model versions (the same SQLite database as `metadata`).
    pub models: std::sync::Arc<dyn ModelStore>,
    /// Implementors' API keys (the same SQLite database as `metadata`).
    pub keys: std::sync::Arc<dyn KeyStore>,
    /// Admin accounts and sessions (the same SQLite database as `metadata`).
    pub admins: std::sync::Arc<dyn admins::AdminStore>,
    /// The admin review screens' queries and actions (the same SQLite database).
    pub review: std::sync::Arc<dyn ReviewStore>,
    /// Quality scores and their settings (the same SQLite database as `metadata`).
    pub quality: std::sync::Arc<dyn QualityStore>,
    /// Shape management (the same SQLite database as `metadata`).
    pub shapes: std::sync::Arc<dyn ShapeStore>,
    /// The cluster-wide change channel (PostgreSQL's `LISTEN/NOTIFY`); `None` for the
    /// embedded store, whose one process holds every change in memory already.
    pub feed: Option<std::sync::Arc<postgres::notify::Feed>>,
    /// Uploads waiting for their job, in the database so that any replica runs the job
    /// (cluster mode); `None` for the embedded store, which keeps them as files.
    pub uploads: Option<std::sync::Arc<dyn uploads::UploadStore>>,
}

impl Stores {
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let layout = DataDir::new(data_dir);
        let blobs = SledBlobStore::open(&layout.strokes())?;
        let metadata = std::sync::Arc::new(SqliteMetadataStore::open(&layout.metadata())?);
        let review = SqliteReviewStore::open(metadata.clone())?;
        Ok(Self {
            backend: Backend::Embedded,
            review: std::sync::Arc::new(review),
            blobs: std::sync::Arc::new(blobs),
            metadata: metadata.clone(),
            jobs: metadata.clone(),
            models: metadata.clone(),
            keys: metadata.clone(),
            admins: metadata.clone(),
            quality: metadata.clone(),
            shapes: metadata,
            feed: None,
            uploads: None,
        })
    }
}

/// Where the metadata database lives in a data directory. SQLite admits several processes,
/// so commands that touch only metadata (accounts, keys, model activation) open it directly
/// with [`SqliteMetadataStore::open`], even while a server runs.
pub fn metadata_path(data_dir: &Path) -> std::path::PathBuf {
    DataDir::new(data_dir).metadata()
}

/// Milliseconds since the Unix epoch, by the wall clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
