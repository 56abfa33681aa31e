//! The group-commit writer: the one path by which drawings enter storage.
//!
//! Handlers hand a [`Submission`] to [`Ingest::submit`] and await the outcome. One thread
//! takes every submission waiting in the queue as a batch, writes all their stroke records to
//! the stroke store and syncs it once, then inserts all their rows in one SQLite transaction
//! (one more sync), and only then answers each of them. Many concurrent submissions thus share
//! two syncs; durability is never weakened for speed.
//!
//! Ids come from this thread, strictly increasing, which is what lets
//! [`reconcile`](super::reconcile) find records without rows by looking only at the tail.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use thiserror::Error;
use tokio::sync::oneshot;

use super::metadata::NewDrawingRow;
use super::{now_ms, Stores};
use crate::domain::record::{assemble, encode_body, Idempotency};
use crate::domain::{Drawing, DrawingId, IdempotencyKey, Judgement, PlayerId};

/// Most submissions waiting for the writer; beyond this, submit answers `Overloaded`.
const QUEUE_CAPACITY: usize = 8_192;
/// Most submissions committed together.
const MAX_BATCH: usize = 1_024;

/// A validated drawing on its way to storage, already encoded by the caller so that the
/// one writer thread does as little per drawing as possible.
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
        judgement: Option<&Judgement>,
    ) -> Self {
        let idem = idempotency
            .clone()
            .map(|(key, body_digest)| Idempotency { key, body_digest });
        let body = encode_body(idem.as_ref(), judgement, drawing);
        Self {
            player,
            shape_id,
            idempotency,
            body,
            metadata: drawing_metadata(drawing, judgement),
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
    #[error("the server is shutting down")]
    Stopped,
}

/// Counters for the metrics page and the benchmark.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub batches: AtomicU64,
    pub drawings: AtomicU64,
    /// Syncs issued to stable storage (stroke store and metadata store each count one).
    pub syncs: AtomicU64,
}

enum Message {
    Submit(
        Submission,
        oneshot::Sender<Result<SubmitOutcome, IngestError>>,
    ),
    Stop,
}

/// The handle to the writer thread.
pub struct Ingest {
    sender: Sender<Message>,
    /// Joined on shutdown so the last batch finishes before the process exits.
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    pub stats: Arc<IngestStats>,
}

/// A point of the durable write path where the process can be made to crash (abort, like
/// `kill -9`), for the fault tests: `--crash-at POINT:N` crashes at POINT in the Nth group
/// commit. Never set in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Before any stroke record of the batch is written.
    BeforeStrokes,
    /// Stroke records written and synced; metadata rows not yet committed.
    AfterStrokes,
    /// Rows committed; nobody answered yet.
    AfterMetadata,
}

/// Where and in which group commit to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPlan {
    pub point: CrashPoint,
    /// 1-based number of the group commit to crash in.
    pub batch: u64,
}

impl std::str::FromStr for CrashPlan {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (point, batch) = text.split_once(':').unwrap_or((text, "1"));
        let point = match point {
            "before-strokes" => CrashPoint::BeforeStrokes,
            "after-strokes" => CrashPoint::AfterStrokes,
            "after-metadata" => CrashPoint::AfterMetadata,
            other => {
                return Err(format!(
                    "unknown crash point {other:?} (before-strokes, after-strokes, after-metadata)"
                ))
            }
        };
        let batch = batch
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("bad group-commit number {batch:?}"))?;
        Ok(Self { point, batch })
    }
}

/// Aborts the process when the plan says so.
fn crash_point(plan: Option<CrashPlan>, point: CrashPoint, batch: u64) {
    if plan == Some(CrashPlan { point, batch }) {
        eprintln!("doodlebox: crashing on purpose at {point:?} in group commit {batch}");
        std::process::abort();
    }
}

impl Ingest {
    /// Starts the writer. `last_id` is the greatest id either store holds, so new ids sort
    /// after every existing one even if the clock went backwards.
    pub fn start(stores: Arc<Stores>, last_id: Option<DrawingId>) -> std::io::Result<Self> {
        Self::start_with(stores, last_id, None)
    }

    /// [`Ingest::start`] with a crash planned (fault tests).
    pub fn start_with(
        stores: Arc<Stores>,
        last_id: Option<DrawingId>,
        crash: Option<CrashPlan>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = bounded(QUEUE_CAPACITY);
        let stats = Arc::new(IngestStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || writer_loop(&stores, &receiver, last_id, &thread_stats, crash))?;
        Ok(Self {
            sender,
            thread: std::sync::Mutex::new(Some(thread)),
            stats,
        })
    }

    /// Queues a submission and waits until it is durably stored (or refused).
    pub async fn submit(&self, submission: Submission) -> Result<SubmitOutcome, IngestError> {
        let (reply, answer) = oneshot::channel();
        match self.sender.try_send(Message::Submit(submission, reply)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(IngestError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(IngestError::Stopped),
        }
        // A dropped reply means the writer stopped (or a batch panicked) before answering.
        answer.await.unwrap_or(Err(IngestError::Stopped))
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

fn writer_loop(
    stores: &Stores,
    receiver: &Receiver<Message>,
    mut last_id: Option<DrawingId>,
    stats: &IngestStats,
    crash: Option<CrashPlan>,
) {
    let mut batch_number = 0u64;
    while let Ok(Message::Submit(first, reply)) = receiver.recv() {
        batch_number += 1;
        let mut batch = vec![(first, reply)];
        let mut stop = false;
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(Message::Submit(s, r)) => batch.push((s, r)),
                Ok(Message::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        // A panic in one batch must not stop the writer: its callers get `Stopped` (their
        // reply senders are dropped) and the next batch starts clean.
        let committed = std::panic::catch_unwind(AssertUnwindSafe(|| {
            commit_batch(stores, &mut last_id, batch, stats, |point| {
                crash_point(crash, point, batch_number)
            })
        }));
        if committed.is_err() {
            tracing::error!("a group commit panicked; its submissions were answered with an error");
        }
        if stop {
            break;
        }
    }
}

/// How one submission of a batch is to be answered.
enum Plan {
    Done(Result<SubmitOutcome, IngestError>),
    /// A new drawing: the index into the batch's new records.
    New(usize),
    /// The same key as an earlier new drawing of this batch, with the same body.
    SameAs(usize),
}

fn commit_batch(
    stores: &Stores,
    last_id: &mut Option<DrawingId>,
    batch: Vec<(
        Submission,
        oneshot::Sender<Result<SubmitOutcome, IngestError>>,
    )>,
    stats: &IngestStats,
    crash_point: impl Fn(CrashPoint),
) {
    let now = now_ms();
    let mut keys_in_batch: HashMap<(PlayerId, String), ([u8; 16], usize)> = HashMap::new();
    let mut plans = Vec::with_capacity(batch.len());
    let mut records: Vec<(DrawingId, Vec<u8>)> = Vec::new();
    let mut rows: Vec<NewDrawingRow> = Vec::new();
    let mut replies = Vec::with_capacity(batch.len());

    for (submission, reply) in batch {
        replies.push(reply);
        if let Some((key, digest)) = &submission.idempotency {
            if let Some((first_digest, index)) =
                keys_in_batch.get(&(submission.player, key.as_str().to_owned()))
            {
                plans.push(if first_digest == digest {
                    Plan::SameAs(*index)
                } else {
                    Plan::Done(Err(IngestError::IdempotencyConflict))
                });
                continue;
            }
            match stores.metadata.idempotency(submission.player, key) {
                Ok(Some(found)) if found.body_digest == *digest => {
                    plans.push(Plan::Done(Ok(SubmitOutcome::Duplicate(found.drawing_id))));
                    continue;
                }
                Ok(Some(_)) => {
                    plans.push(Plan::Done(Err(IngestError::IdempotencyConflict)));
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    plans.push(Plan::Done(Err(IngestError::Storage(e.to_string()))));
                    continue;
                }
            }
            keys_in_batch.insert(
                (submission.player, key.as_str().to_owned()),
                (*digest, records.len()),
            );
        }
        let id = DrawingId::next(now, *last_id);
        *last_id = Some(id);
        rows.push(NewDrawingRow {
            id,
            player: submission.player,
            shape_id: submission.shape_id,
            metadata: submission.metadata,
            created_at_ms: now,
            idempotency: submission.idempotency,
        });
        records.push((id, assemble(id, submission.player, now, &submission.body)));
        plans.push(Plan::New(records.len() - 1));
    }

    let stored = store_both(stores, &records, &rows, stats, &crash_point);
    crash_point(CrashPoint::AfterMetadata);
    // Counted before anyone is answered, so a client that reads the metrics after its 201
    // sees its drawing counted.
    if stored.is_ok() {
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .drawings
            .fetch_add(records.len() as u64, Ordering::Relaxed);
    }
    let outcome_of_new = |index: usize| match &stored {
        Ok(()) => Ok(SubmitOutcome::Created(records[index].0)),
        Err(e) => Err(e.clone()),
    };
    for (plan, reply) in plans.into_iter().zip(replies) {
        let outcome = match plan {
            Plan::Done(outcome) => outcome,
            Plan::New(index) => outcome_of_new(index),
            Plan::SameAs(index) => outcome_of_new(index).map(|o| match o {
                SubmitOutcome::Created(id) | SubmitOutcome::Duplicate(id) => {
                    SubmitOutcome::Duplicate(id)
                }
            }),
        };
        // The caller may have gone away (client disconnected); the drawing is stored anyway.
        let _ = reply.send(outcome);
    }
}

/// Stroke records first, synced; then the rows. A crash between the two leaves records
/// without rows, which start-up reconciliation rebuilds; never rows without records.
fn store_both(
    stores: &Stores,
    records: &[(DrawingId, Vec<u8>)],
    rows: &[NewDrawingRow],
    stats: &IngestStats,
    crash_point: &impl Fn(CrashPoint),
) -> Result<(), IngestError> {
    if records.is_empty() {
        return Ok(());
    }
    crash_point(CrashPoint::BeforeStrokes);
    stores
        .blobs
        .put_durably(records)
        .map_err(|e| IngestError::Storage(e.to_string()))?;
    stats.syncs.fetch_add(1, Ordering::Relaxed);
    crash_point(CrashPoint::AfterStrokes);
    if let Err(e) = stores.metadata.insert_drawings(rows) {
        // Take the records back so a refused submission does not reappear after a restart.
        let ids: Vec<DrawingId> = records.iter().map(|(id, _)| *id).collect();
        if let Err(undo) = stores.blobs.remove_durably(&ids) {
            tracing::error!(error = %undo, "could not remove stroke records of a failed batch; reconciliation will restore them");
        }
        return Err(IngestError::Storage(e.to_string()));
    }
    stats.syncs.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The metadata column of a drawing's row. Used by the writer and by reconciliation, so both
/// build the same row.
pub(crate) fn drawing_metadata(d: &Drawing, judgement: Option<&Judgement>) -> serde_json::Value {
    serde_json::json!({
        "canvas": d.canvas(),
        "device": d.device(),
        "duration_ms": d.duration_ms(),
        "strokes": d.strokes().len(),
        "points": d.point_count(),
        "recognized": judgement.map(|j| j.recognized),
        "model_version": judgement.map(|j| &j.model_version),
    })
}
