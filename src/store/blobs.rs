//! The stroke store: encoded drawing records in sled, keyed by drawing id.
//!
//! sled 0.34's `flush()` ends in `sync_file_range`, which does not flush the device's
//! write cache (sled issues #1351 and #1452), and values above its blob threshold go to
//! files of their own that sled never syncs. So `put_durably` flushes, then `fsync`s the log
//! file itself and any blob file it has not synced yet (and their directory). The segment
//! size is raised so that records, capped by `domain::drawing::MAX_POINTS`, stay inline in the
//! log in practice; the blob sync is the safety net.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::StoreError;
use crate::domain::DrawingId;

/// sled's log segment size. Values larger than about segment/4 (shared by up to 17 items in
/// a leaf node) become separate blob files; 8 MiB keeps every record we accept inline.
const SEGMENT_SIZE: usize = 8 * 1024 * 1024;

/// Bytes of records sled keeps decoded in memory (its default is 1 GiB). Training and the
/// verify walk read every record once per pass, and a miss costs one `pread` from the OS
/// page cache, so a small cache loses little. sled counts serialized bytes; its decoded
/// nodes take about twice that. With the default the process grew by up to 1 GiB with the
/// number of drawings (the `train_memory` bench: +840 MiB at 1M drawings). At 64 MiB a
/// capped training run over 1M drawings still peaked at 371 MiB; at 16 MiB, 258 MiB (224
/// at 100k), and the verify walk over 1M drawings took the same time (61.3 s against
/// 61.6 s) for half the growth (+70 MiB against +131).
const CACHE_CAPACITY: u64 = 16 * 1024 * 1024;

/// Stroke records in id order, as `records_after` yields them.
pub type RecordIter<'a> = Box<dyn Iterator<Item = Result<(DrawingId, Vec<u8>), StoreError>> + 'a>;

/// Stroke records by drawing id.
pub trait BlobStore: Send + Sync {
    /// Writes all records and returns only once they are on stable storage.
    fn put_durably(&self, records: &[(DrawingId, Vec<u8>)]) -> Result<(), StoreError>;
    /// Removes records (used to undo a batch the metadata store refused) durably.
    fn remove_durably(&self, ids: &[DrawingId]) -> Result<(), StoreError>;
    fn get(&self, id: DrawingId) -> Result<Option<Vec<u8>>, StoreError>;
    /// Records with an id greater than `after` (all records for `None`), in id order.
    fn records_after(&self, after: Option<DrawingId>) -> RecordIter<'_>;
    /// The greatest id stored.
    fn last_id(&self) -> Result<Option<DrawingId>, StoreError>;
    /// Bytes the store takes on disk.
    fn size_on_disk(&self) -> Result<u64, StoreError>;
}

/// The sled implementation of [`BlobStore`].
pub struct SledBlobStore {
    db: sled::Db,
    /// sled's log file, kept open so each commit can `fsync` it.
    log_file: File,
    /// sled's directory for oversized values.
    blob_dir: PathBuf,
    /// Blob files already synced; the set stays empty unless a record ever spills over.
    synced_blobs: Mutex<HashSet<std::ffi::OsString>>,
}

/// sled's settings for a stroke store in `dir`: also what `benches/stroke_store_memory.rs`
/// opens other layouts with, so that they compare like for like.
pub fn sled_config(dir: &Path) -> sled::Config {
    sled::Config::new()
        .path(dir)
        .segment_size(SEGMENT_SIZE)
        .cache_capacity(CACHE_CAPACITY)
}

impl SledBlobStore {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled_config(dir).open()?;
        let log_file = File::open(dir.join("db"))?;
        // The files sled just created must survive a power loss too.
        sync_dir(dir)?;
        let blob_dir = dir.join("blobs");
        Ok(Self {
            db,
            log_file,
            blob_dir,
            synced_blobs: Mutex::new(HashSet::new()),
        })
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.log_file.sync_all()?;
        self.sync_new_blobs()
    }

    fn sync_new_blobs(&self) -> Result<(), StoreError> {
        let entries = match std::fs::read_dir(&self.blob_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        // Poisoning only means another commit panicked mid-way; the set is still valid.
        let mut synced = self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut any = false;
        for entry in entries {
            let entry = entry?;
            if !synced.contains(&entry.file_name()) {
                File::open(entry.path())?.sync_all()?;
                synced.insert(entry.file_name());
                any = true;
            }
        }
        if any {
            sync_dir(&self.blob_dir)?;
        }
        Ok(())
    }
}

impl BlobStore for SledBlobStore {
    fn put_durably(&self, records: &[(DrawingId, Vec<u8>)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (id, bytes) in records {
            batch.insert(&id.to_bytes(), bytes.as_slice());
        }
        self.db.apply_batch(batch)?;
        self.sync()
    }

    fn remove_durably(&self, ids: &[DrawingId]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for id in ids {
            batch.remove(&id.to_bytes());
        }
        self.db.apply_batch(batch)?;
        self.sync()
    }

    fn get(&self, id: DrawingId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(id.to_bytes())?.map(|v| v.to_vec()))
    }

    fn records_after(&self, after: Option<DrawingId>) -> RecordIter<'_> {
        let iter = match after {
            Some(id) => self.db.range((
                std::ops::Bound::Excluded(id.to_bytes()),
                std::ops::Bound::Unbounded,
            )),
            None => self.db.iter(),
        };
        Box::new(iter.map(|item| {
            let (k, v) = item?;
            Ok((key_to_id(&k)?, v.to_vec()))
        }))
    }

    fn last_id(&self) -> Result<Option<DrawingId>, StoreError> {
        self.db.last()?.map(|(k, _)| key_to_id(&k)).transpose()
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

fn key_to_id(key: &[u8]) -> Result<DrawingId, StoreError> {
    let bytes: [u8; 16] = key
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("stroke key of {} bytes", key.len())))?;
    Ok(DrawingId::from_bytes(bytes))
}

/// `fsync`s a directory so that the files created in it survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}
