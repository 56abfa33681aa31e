//! The group-commit writer: the one path by which drawings enter storage.
//!
//! Handlers hand a [`Submission`] to [`Ingest::submit`] and await the outcome. One thread
//! takes every submission waiting in the queue as a batch, writes all their stroke records to
//! the stroke store and syncs it once, then inserts all their rows in one SQLite transaction
//! (one more sync), and only then answers each of them. Many concurrent submissions thus share
//! two syncs; durability is never weakened for speed.
//!
//! Imports use the same path with a bulk message ([`Ingest::import_chunk`]): one channel send
//! carries many drawings, which commit together, and drawings whose source key (Quick,
//! Draw! `key_id`) some row already has are skipped, not stored twice.
//!
//! Ids come from this thread, strictly increasing, which is what lets
//! [`reconcile`](super::reconcile) find records without rows by looking only at the tail.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use thiserror::Error;
use tokio::sync::oneshot;

use super::metadata::NewDrawingRow;
use super::{now_ms, Stores};
use crate::domain::record::{assemble, encode_body, encode_body_with_source, Idempotency, Source};
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

/// An imported drawing on its way to storage: like a [`Submission`], with the source key
/// that makes a re-import a no-op. Many travel in one message.
pub struct ImportItem {
    player: PlayerId,
    /// The shape's row id, looked up (or created) by the importer.
    shape_id: i64,
    /// The drawing's unique source key, also inside `body`.
    source_key: String,
    /// The record's compressed body, with the source in it.
    body: Vec<u8>,
    /// The row's metadata column.
    metadata: serde_json::Value,
}

impl ImportItem {
    pub fn new(
        player: PlayerId,
        drawing: &Drawing,
        shape_id: i64,
        source: &Source,
        judgement: Option<&Judgement>,
    ) -> Self {
        Self {
            player,
            shape_id,
            source_key: source.key().to_owned(),
            body: encode_body_with_source(None, judgement, Some(source), drawing),
            metadata: drawing_metadata(drawing, judgement),
        }
    }
}

/// What became of one imported drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Stored durably under this new id.
    Created(DrawingId),
    /// A row with the same source key exists (or came earlier in the same chunk): skipped.
    Duplicate,
}

/// The answer to an imported chunk, which arrives once the chunk is durably stored.
pub struct PendingImport(oneshot::Receiver<Result<Vec<ImportOutcome>, IngestError>>);

impl PendingImport {
    /// Waits for the chunk's outcomes, one per item in order. Blocking: call it off the
    /// async runtime.
    pub fn wait(self) -> Result<Vec<ImportOutcome>, IngestError> {
        // A dropped reply means the writer stopped (or the chunk panicked) before answering.
        self.0.blocking_recv().unwrap_or(Err(IngestError::Stopped))
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

fn writer_loop(
    stores: &Stores,
    receiver: &Receiver<Message>,
    mut last_id: Option<DrawingId>,
    stats: &IngestStats,
    crash: Option<CrashPlan>,
) {
    let mut batch_number = 0u64;
    // A message taken off the queue while gathering a batch that belongs after it.
    let mut held: Option<Message> = None;
    loop {
        let message = match held.take() {
            Some(message) => message,
            None => match receiver.recv() {
                Ok(message) => message,
                Err(_) => break,
            },
        };
        let (first, reply) = match message {
            Message::Stop => break,
            Message::Import(items, reply) => {
                batch_number += 1;
                let committed = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    commit_import(stores, &mut last_id, items, stats, |point| {
                        crash_point(crash, point, batch_number)
                    })
                }));
                match committed {
                    // The importer may have gone away; what was stored stays stored.
                    Ok(outcome) => drop(reply.send(outcome)),
                    Err(_) => tracing::error!(
                        "an import chunk panicked; its importer was answered with an error"
                    ),
                }
                continue;
            }
            Message::Submit(first, reply) => (first, reply),
        };
        batch_number += 1;
        let mut batch = vec![(first, reply)];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(Message::Submit(s, r)) => batch.push((s, r)),
                Ok(other) => {
                    held = Some(other);
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
    }
}

/// Commits one chunk of imported drawings as one group commit, skipping those whose source
/// key a row already has or an earlier item of the chunk carries.
fn commit_import(
    stores: &Stores,
    last_id: &mut Option<DrawingId>,
    items: Vec<ImportItem>,
    stats: &IngestStats,
    crash_point: impl Fn(CrashPoint),
) -> Result<Vec<ImportOutcome>, IngestError> {
    let keys: Vec<&str> = items.iter().map(|i| i.source_key.as_str()).collect();
    let mut taken: HashSet<String> = stores
        .metadata
        .existing_source_keys(&keys)
        .map_err(|e| IngestError::Storage(e.to_string()))?;
    let now = now_ms();
    let mut outcomes = Vec::with_capacity(items.len());
    let mut records = Vec::with_capacity(items.len());
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        if !taken.insert(item.source_key.clone()) {
            outcomes.push(ImportOutcome::Duplicate);
            continue;
        }
        let id = DrawingId::next(now, *last_id);
        *last_id = Some(id);
        records.push((id, assemble(id, item.player, now, &item.body)));
        rows.push(NewDrawingRow {
            id,
            player: item.player,
            shape_id: item.shape_id,
            metadata: item.metadata,
            created_at_ms: now,
            idempotency: None,
            source_key: Some(item.source_key),
        });
        outcomes.push(ImportOutcome::Created(id));
    }
    store_both(stores, &records, &rows, stats, &crash_point)?;
    crash_point(CrashPoint::AfterMetadata);
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats
        .drawings
        .fetch_add(records.len() as u64, Ordering::Relaxed);
    Ok(outcomes)
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
            source_key: None,
        });
        records.push((id, assemble(id, submission.player, now, &submission.body)));
        plans.push(Plan::New(records.len() - 1));
    }

    let stored = store_both(stores, &records, &rows, stats, &crash_point);
    crash_point(CrashPoint::AfterMetadata);
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
    if stored.is_ok() {
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .drawings
            .fetch_add(records.len() as u64, Ordering::Relaxed);
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
