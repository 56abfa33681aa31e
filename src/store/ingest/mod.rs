//! The group-commit writer: the one path by which drawings enter storage.
//!
//! Handlers hand a [`Submission`] to [`Ingest::submit`] and await the outcome. One thread
//! takes every submission waiting in the queue as a batch, writes all their stroke records to
//! the stroke store and syncs it once, then inserts all their rows in one SQLite transaction,
//! and only then answers each of them. Many concurrent submissions thus share one sync. The
//! rows' commit is written but not synced ([`Durability::Repairable`]): a power cut that
//! undoes it leaves stroke records without rows, which start-up rebuilds, the same as a
//! crash between the two stores; an acknowledged drawing is never lost.
//!
//! [`Durability::Repairable`]: super::metadata::Durability::Repairable
//!
//! Imports use the same path with a bulk message ([`Ingest::import_chunk`]): one channel send
//! carries many drawings, which commit together, and drawings whose source key (Quick,
//! Draw! `key_id`) some row already has are skipped, not stored twice.
//!
//! Ids come from this thread, strictly increasing, which is what lets
//! [`reconcile`](super::reconcile) find records without rows by looking only at the tail.
//!
//! Two guards stand in front of the disk. The [`DiskWatch`] refuses submissions (`507`)
//! while free space is below its watermark, before the stores meet a full disk. The
//! [`Breaker`] opens after repeated failed group commits and then refuses submissions
//! (`503` with `Retry-After`) without touching the disk until a probe batch succeeds.
//!
//! A failed batch is never acknowledged: when the stroke store's write or sync (fsync) fails,
//! or the SQLite commit does, every submission of the batch is answered with an error. Its
//! stroke records may have reached sled before the SQLite commit failed; the writer takes
//! them back, and if even that fails, reconciliation gives them rows at the next start. The
//! client was told the drawing was not stored and may send it again, so that drawing can
//! then exist twice (once with its idempotency key, if it sent one, which makes the retry a
//! duplicate instead). We accept that: an unacknowledged drawing that survives is harmless;
//! an acknowledged drawing that is lost is not.
//!
//! The module is split by job: this file holds the handle and the types callers see;
//! `writer` the thread and its group commit; `idempotency` how a batch answers a key it
//! has seen; `import` the bulk path; `guards` the disk watch and breaker around each
//! batch. Planned faults (crashes, failed writes) come from [`crate::fault`], which the
//! writer only calls at its hook points.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, Sender, TrySendError};
use thiserror::Error;
use tokio::sync::oneshot;

use super::breaker::Breaker;
use super::disk::{DiskStatus, DiskWatch};
use super::Stores;
use crate::domain::record::{encode_body, Idempotency};
use crate::domain::{Drawing, DrawingId, IdempotencyKey, PlayerId};
use crate::fault::FaultPlan;
use guards::{breaker_open, disk_full, lock, Guards};

mod guards;
mod idempotency;
mod import;
mod writer;

pub use import::{ImportItem, ImportOutcome, PendingImport};

/// Most submissions waiting for the writer; beyond this, submit answers `Overloaded`.
const QUEUE_CAPACITY: usize = 8_192;
/// Most submissions committed together.
const MAX_BATCH: usize = 1_024;
/// Bytes in a mebibyte, for messages.
const MIB: f64 = 1024.0 * 1024.0;

/// A validated drawing on its way to storage, already encoded by the caller so that the
/// one writer thread does as little per drawing as possible. It carries no verdict: the
/// background scorer judges the drawing after it is stored (`drawings.recognized`), so the
/// record of a game drawing never holds one.
pub struct Submission {
    player: PlayerId,
    /// The shape's row id, looked up by the caller (so unknown shapes never reach the writer).
    shape_id: i64,
    /// The client's idempotency key and a digest of the request body.
    idempotency: Option<(IdempotencyKey, [u8; 16])>,
    /// The record's compressed body (`record::encode_body`).
    body: Vec<u8>,
    /// The row's metadata column.
    metadata: serde_json::Value,
}

impl Submission {
    pub fn new(
        player: PlayerId,
        drawing: &Drawing,
        shape_id: i64,
        idempotency: Option<(IdempotencyKey, [u8; 16])>,
    ) -> Self {
        let idem = idempotency
            .clone()
            .map(|(key, body_digest)| Idempotency { key, body_digest });
        let body = encode_body(idem.as_ref(), None, drawing);
        Self {
            player,
            shape_id,
            idempotency,
            body,
            metadata: drawing_metadata(drawing),
        }
    }
}

/// What became of a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Stored durably under this new id.
    Created(DrawingId),
    /// The same idempotency key and body were stored before, under this id.
    Duplicate(DrawingId),
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum IngestError {
    #[error("this idempotency key was already used with a different request body")]
    IdempotencyConflict,
    #[error("too many submissions are waiting to be stored")]
    Overloaded,
    #[error("storage failed: {0}")]
    Storage(String),
    /// Free space is below the watermark ([`DiskWatch`]); nothing was written.
    #[error(
        "the server's disk is nearly full ({:.1} MiB free, below the {:.1} MiB watermark); \
         new drawings are refused until space is freed",
        *.free_bytes as f64 / MIB,
        *.watermark_bytes as f64 / MIB
    )]
    DiskFull {
        free_bytes: u64,
        watermark_bytes: u64,
    },
    /// The circuit breaker is open after repeated storage failures; nothing was written.
    #[error("storage is failing; writes are paused for {retry_after_secs} s")]
    BreakerOpen { retry_after_secs: u64 },
    #[error("the server is shutting down")]
    Stopped,
}

/// Counters for the metrics page and the benchmark.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub batches: AtomicU64,
    pub drawings: AtomicU64,
    /// Syncs issued to stable storage: one per group commit (the stroke store's).
    pub syncs: AtomicU64,
}

enum Message {
    Submit(
        Submission,
        oneshot::Sender<Result<SubmitOutcome, IngestError>>,
    ),
    Import(
        Vec<ImportItem>,
        oneshot::Sender<Result<Vec<ImportOutcome>, IngestError>>,
    ),
    Stop,
}

/// The handle to the writer thread.
pub struct Ingest {
    sender: Sender<Message>,
    /// Joined on shutdown so the last batch finishes before the process exits.
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    pub stats: Arc<IngestStats>,
    /// The free-space watch, when there is one (the server always has one).
    disk: Option<Arc<DiskWatch>>,
    /// Shared with the writer, which records each batch's outcome in it.
    breaker: Arc<Mutex<Breaker>>,
}

/// What the writer starts with besides the stores.
#[derive(Default)]
pub struct IngestOptions {
    /// Refuse submissions while this watch says the disk is low.
    pub disk: Option<Arc<DiskWatch>>,
    /// Crashes and failed writes planned for the fault tests; none in production.
    pub faults: FaultPlan,
}

impl Ingest {
    /// Submissions waiting for the writer thread right now (for `/metrics`).
    pub fn queue_depth(&self) -> usize {
        self.sender.len()
    }

    /// Starts the writer. `last_id` is the greatest id either store holds, so new ids sort
    /// after every existing one even if the clock went backwards.
    pub fn start(stores: Arc<Stores>, last_id: Option<DrawingId>) -> std::io::Result<Self> {
        Self::start_with(stores, last_id, IngestOptions::default())
    }

    /// [`Ingest::start`] with a free-space watch, or faults planned (fault tests).
    pub fn start_with(
        stores: Arc<Stores>,
        last_id: Option<DrawingId>,
        options: IngestOptions,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = bounded(QUEUE_CAPACITY);
        let stats = Arc::new(IngestStats::default());
        let breaker = Arc::new(Mutex::new(Breaker::new()));
        let guards = Guards {
            disk: options.disk.clone(),
            breaker: breaker.clone(),
            faults: options.faults,
        };
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || {
                writer::writer_loop(&stores, &receiver, last_id, &thread_stats, guards)
            })?;
        Ok(Self {
            sender,
            thread: std::sync::Mutex::new(Some(thread)),
            stats,
            disk: options.disk,
            breaker,
        })
    }

    /// The disk's state, when a free-space watch runs.
    pub fn disk_status(&self) -> Option<DiskStatus> {
        self.disk.as_ref().map(|d| d.status())
    }

    /// The circuit breaker's state name (`closed`, `open`, `half_open`) and how often it
    /// has opened since start.
    pub fn breaker_status(&self) -> (&'static str, u64) {
        let breaker = lock(&self.breaker);
        (breaker.state().name(), breaker.times_opened())
    }

    /// Queues a submission and waits until it is durably stored (or refused). A low disk
    /// or an open breaker refuses at once, without queueing.
    pub async fn submit(&self, submission: Submission) -> Result<SubmitOutcome, IngestError> {
        if let Some(disk) = self.disk.as_deref().filter(|d| d.is_low()) {
            return Err(disk_full(disk));
        }
        if let Some(wait) = lock(&self.breaker).would_refuse(Instant::now()) {
            return Err(breaker_open(wait));
        }
        let (reply, answer) = oneshot::channel();
        match self.sender.try_send(Message::Submit(submission, reply)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(IngestError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(IngestError::Stopped),
        }
        // A dropped reply means the writer stopped (or a batch panicked) before answering.
        answer.await.unwrap_or(Err(IngestError::Stopped))
    }

    /// Queues a chunk of imported drawings as one message; the returned [`PendingImport`]
    /// answers once the chunk is stored, so the caller can prepare the next chunk meanwhile.
    /// Blocks while the queue is full: an import waits for room rather than failing.
    pub fn import_chunk(&self, items: Vec<ImportItem>) -> Result<PendingImport, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Message::Import(items, reply))
            .map_err(|_| IngestError::Stopped)?;
        Ok(PendingImport(answer))
    }

    /// Lets the writer finish everything queued so far, then stops it. Blocking.
    pub fn shutdown(&self) {
        let _ = self.sender.send(Message::Stop);
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// The metadata column of a drawing's row. Used by the writer and by reconciliation, so both
/// build the same row. A model's verdict has columns of its own (`recognized`,
/// `recognized_by`); rows from before migration 8 also kept it here.
pub(crate) fn drawing_metadata(d: &Drawing) -> serde_json::Value {
    serde_json::json!({
        "canvas": d.canvas(),
        "device": d.device(),
        "duration_ms": d.duration_ms(),
        "strokes": d.strokes().len(),
        "points": d.point_count(),
    })
}
