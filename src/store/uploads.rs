//! Uploads that wait for their job where every process can read them. In cluster mode an
//! import's upload is stored in the database before its job is queued, so whichever replica
//! claims the job runs it; the embedded store keeps uploads as files under the data
//! directory instead (`jobs::import`), and has no upload store.

use std::io::Read;

use super::StoreError;

/// Bytes per stored chunk: all of an upload that is in memory while it is stored or read.
pub const UPLOAD_CHUNK_BYTES: usize = 1024 * 1024;

/// Why an upload could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum UploadStoreError {
    /// More than the caller's limit arrived; nothing was kept.
    #[error("the upload is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The body broke off; nothing was kept.
    #[error("the upload broke off: {0}")]
    Read(std::io::Error),
    /// The database failed; nothing was kept.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The uploads' storage (PostgreSQL only).
pub trait UploadStore: Send + Sync {
    /// Stores `body` under `name`, a chunk at a time, at most `limit` bytes; returns (with
    /// the size) only once the whole upload is committed, and keeps nothing when it fails.
    fn store_upload(
        &self,
        name: &str,
        body: &mut dyn Read,
        limit: u64,
    ) -> Result<u64, UploadStoreError>;
    /// Chunk `index` (from 0) of upload `name`; `None` past its end or when there is no
    /// such upload (a stored upload always has chunk 0, empty if the upload was).
    fn upload_chunk(&self, name: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Removes upload `name` (no job will read it). The database also removes an import's
    /// upload by itself when the job ends.
    fn delete_upload(&self, name: &str) -> Result<(), StoreError>;
    /// Removes uploads stored before `before_ms` that no waiting or running import job
    /// names (a replica stopped between storing one and queueing its job). Returns how many.
    fn sweep_uploads(&self, before_ms: i64) -> Result<usize, StoreError>;
}
