//! The `import` job kind: imports an ndjson file the server received earlier (see
//! [`keep_upload`]) through the same library code as the command line
//! ([`crate::transfer::import`]) and stores the import report as the job's result. The
//! upload is removed once the job has finished, whichever way.
//!
//! On one machine the upload is a file under the data directory. In cluster mode it is
//! stored in the database ([`crate::store::uploads`]) before the job is queued, so any
//! replica that runs jobs can run it, reading it a chunk at a time; the database drops it
//! when the job ends.
//!
//! A run that a crash or a graceful stop interrupted reads the file again from the start:
//! lines already stored are skipped as duplicates, so nothing is stored twice, and the final
//! report counts them as skipped.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{JobContext, JobSignal, RunOutcome};
use crate::store::uploads::{UploadStore, UploadStoreError};
use crate::store::{now_ms, JobRow, StoreError, Stores};
use crate::transfer::import::{self, ImportError, ImportOptions, SourceName};

/// Largest upload kept for an import, in bytes (a whole Quick, Draw! category in raw
/// format is under 1 GiB).
pub const MAX_UPLOAD_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// How often an import's progress is saved and sent to listeners.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How old an upload in the database must be before a sweep removes it when no job names
/// it: longer than any request takes between storing an upload and queueing its job.
const ORPHAN_UPLOAD_AGE: Duration = Duration::from_secs(24 * 3600);

/// Why an upload could not be kept for an import.
#[derive(Debug, Error)]
pub enum UploadError {
    #[error("the upload is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload broke off: {0}")]
    Read(std::io::Error),
    #[error("cannot save the upload: {0}")]
    Write(std::io::Error),
    #[error("cannot store the upload: {0}")]
    Store(StoreError),
}

impl From<UploadStoreError> for UploadError {
    fn from(e: UploadStoreError) -> Self {
        match e {
            UploadStoreError::TooLarge { limit } => Self::TooLarge { limit },
            UploadStoreError::Read(e) => Self::Read(e),
            UploadStoreError::Store(e) => Self::Store(e),
        }
    }
}

/// What an import job is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportJob {
    /// The uploaded file, under [`uploads_dir`]; or, when `in_database`, the upload's name
    /// in the database. Removed when the job ends.
    pub upload: PathBuf,
    /// Words that name no shape create one.
    pub create_shapes: bool,
    /// Where the lines come from (names the import player).
    pub source: String,
    /// The upload is in the database (cluster mode), not a file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_database: bool,
}

impl ImportJob {
    pub fn new(upload: &SavedUpload, options: &ImportOptions) -> Self {
        Self {
            upload: upload.upload.clone(),
            in_database: upload.in_database,
            create_shapes: options.create_shapes,
            source: options.source.as_str().to_owned(),
        }
    }

    /// The configuration stored with the job.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Where uploads wait for their import job: `<data>/jobs/uploads/`.
pub fn uploads_dir(data_dir: &Path) -> PathBuf {
    crate::data_dir::DataDir::new(data_dir).uploads()
}

/// An upload kept for an import job.
#[derive(Debug, Clone)]
pub struct SavedUpload {
    /// A file's path, or the upload's name in the database.
    pub upload: PathBuf,
    /// Whether it is in the database.
    pub in_database: bool,
}

impl SavedUpload {
    /// Removes the upload: no job will read it (queueing the job failed).
    pub fn discard(&self, stores: &Stores) {
        match (&stores.uploads, self.in_database) {
            (Some(uploads), true) => {
                let _ = uploads.delete_upload(&self.upload.to_string_lossy());
            }
            _ => {
                let _ = std::fs::remove_file(&self.upload);
            }
        }
    }
}

/// Keeps `body` (at most `limit` bytes) for an import job: in cluster mode in the database,
/// committed before this returns, so that any replica can run the job; otherwise as a file
/// under [`uploads_dir`] ([`save_upload`]). Blocking; memory stays at one chunk. Nothing is
/// left behind when it fails.
pub fn keep_upload(
    stores: &Stores,
    data_dir: &Path,
    body: &mut dyn Read,
    limit: u64,
) -> Result<SavedUpload, UploadError> {
    match &stores.uploads {
        Some(uploads) => {
            let name = format!("upload-{}.ndjson", uuid::Uuid::new_v4().simple());
            uploads.store_upload(&name, body, limit)?;
            Ok(SavedUpload {
                upload: PathBuf::from(name),
                in_database: true,
            })
        }
        None => Ok(SavedUpload {
            upload: save_upload(data_dir, body, limit)?,
            in_database: false,
        }),
    }
}

/// Copies `body` into a new file under [`uploads_dir`], at most `limit` bytes, synced.
/// Blocking. Nothing is left behind when it fails.
pub fn save_upload(
    data_dir: &Path,
    body: &mut dyn Read,
    limit: u64,
) -> Result<PathBuf, UploadError> {
    let dir = uploads_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(UploadError::Write)?;
    let path = dir.join(format!("upload-{}.ndjson", uuid::Uuid::new_v4().simple()));
    let saved = copy_limited(body, &path, limit);
    if saved.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    saved.map(|()| path)
}

fn copy_limited(body: &mut dyn Read, path: &Path, limit: u64) -> Result<(), UploadError> {
    let mut file = File::create(path).map_err(UploadError::Write)?;
    let mut buffer = vec![0; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = body.read(&mut buffer).map_err(UploadError::Read)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limit {
            return Err(UploadError::TooLarge { limit });
        }
        file.write_all(&buffer[..n]).map_err(UploadError::Write)?;
    }
    file.sync_all().map_err(UploadError::Write)
}

/// Runs an import job until it finishes or `signal` stops it.
pub fn run(ctx: &JobContext, job: &JobRow, signal: &JobSignal) -> RunOutcome {
    let config: ImportJob = match serde_json::from_value(job.config.clone()) {
        Ok(config) => config,
        Err(e) => return RunOutcome::Failed(format!("stored configuration is unreadable: {e}")),
    };
    let Some(ingest) = &ctx.ingest else {
        return RunOutcome::Failed("imports run in the server only".into());
    };
    let source = match SourceName::parse(&config.source) {
        Ok(source) => source,
        Err(e) => return RunOutcome::Failed(e.to_string()),
    };
    let file: Box<dyn Read + Send> = match (&ctx.stores.uploads, config.in_database) {
        (Some(uploads), true) => Box::new(StoredUpload::new(
            uploads.clone(),
            config.upload.to_string_lossy().into_owned(),
        )),
        (None, true) => {
            return RunOutcome::Failed(
                "the upload is in a cluster's database; this process does not use one".into(),
            )
        }
        (_, false) => match File::open(&config.upload) {
            Ok(file) => Box::new(file),
            Err(e) => {
                return RunOutcome::Failed(format!(
                    "the uploaded file {} cannot be read: {e}",
                    config.upload.display()
                ))
            }
        },
    };
    let options = ImportOptions {
        create_shapes: config.create_shapes,
        source,
    };
    let input = BufReader::new(Stoppable {
        inner: file,
        signal: signal.clone(),
    });
    let mut last = Instant::now();
    let imported = import::import(&ctx.stores, ingest, input, &options, &mut |so_far| {
        if last.elapsed() >= PROGRESS_EVERY {
            last = Instant::now();
            let progress = serde_json::to_value(so_far).unwrap_or_default();
            ctx.progress(job, progress, true);
        }
    });
    match imported {
        Ok(report) => match serde_json::to_value(&report) {
            Ok(result) => RunOutcome::Done(result),
            Err(e) => RunOutcome::Failed(format!("the report cannot be stored: {e}")),
        },
        Err(_) if signal.should_stop() => signal.stopped_outcome(),
        Err(e @ ImportError::Read(_)) | Err(e @ ImportError::SourceName(_)) => {
            RunOutcome::Failed(e.to_string())
        }
        // The stores may come back (a full disk, an open breaker): try again later.
        Err(e) => RunOutcome::Retry(e.to_string()),
    }
}

/// Removes uploads no waiting or running import job names: those of jobs a crash left to
/// fail, or saved by a request whose job was never queued. Called at start, before any
/// request can save a new one. Returns how many it removed.
pub fn sweep_uploads(ctx: &JobContext) -> Result<usize, StoreError> {
    if let Some(uploads) = &ctx.stores.uploads {
        // Other replicas' requests may be storing uploads now: only old orphans go.
        let before = now_ms().saturating_sub(ORPHAN_UPLOAD_AGE.as_millis() as u64);
        return uploads.sweep_uploads(before as i64);
    }
    let dir = uploads_dir(&ctx.data_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let wanted: Vec<PathBuf> = ctx
        .stores
        .jobs
        // Every import job (the limit only has to fit SQLite's integer).
        .jobs_of_kind(crate::store::JobKind::Import, i64::MAX as usize)?
        .into_iter()
        .filter(|job| !job.status.is_finished())
        .filter_map(|job| job.config["upload"].as_str().map(PathBuf::from))
        .collect();
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if !wanted.contains(&path) && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the job's upload (it has finished). In the database the job's end removed it
/// already; this only makes sure.
pub fn clean_up(ctx: &JobContext, job: &JobRow) {
    let Some(upload) = job.config["upload"].as_str() else {
        return;
    };
    if job.config["in_database"] == true {
        if let Some(uploads) = &ctx.stores.uploads {
            if let Err(e) = uploads.delete_upload(upload) {
                tracing::warn!(job = job.id, upload, error = %e, "could not remove an import's upload");
            }
        }
        return;
    }
    match std::fs::remove_file(upload) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(job = job.id, upload, error = %e, "could not remove an import's upload")
        }
        _ => {}
    }
}

/// An upload in the database, read a chunk at a time.
struct StoredUpload {
    uploads: std::sync::Arc<dyn UploadStore>,
    name: String,
    /// The next chunk to fetch.
    next: i64,
    /// The chunk being read, and how far.
    chunk: Vec<u8>,
    at: usize,
}

impl StoredUpload {
    fn new(uploads: std::sync::Arc<dyn UploadStore>, name: String) -> Self {
        Self {
            uploads,
            name,
            next: 0,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for StoredUpload {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.chunk.len() {
            let fetched = self
                .uploads
                .upload_chunk(&self.name, self.next)
                .map_err(std::io::Error::other)?;
            let Some(chunk) = fetched else {
                if self.next == 0 {
                    let gone = format!("upload {} is not in the database", self.name);
                    return Err(std::io::Error::new(std::io::ErrorKind::NotFound, gone));
                }
                return Ok(0);
            };
            (self.chunk, self.at, self.next) = (chunk, 0, self.next + 1);
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A reader that fails once the job is told to stop, so the importer stops at its next read.
struct Stoppable {
    inner: Box<dyn Read + Send>,
    signal: JobSignal,
}

impl Read for Stoppable {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.signal.should_stop() {
            return Err(std::io::Error::other("the import job was stopped"));
        }
        self.inner.read(out)
    }
}
