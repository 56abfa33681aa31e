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

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use thiserror::Error;
use tokio::sync::oneshot;

use super::breaker::{Admission, Breaker};
use super::disk::{DiskStatus, DiskWatch};
use super::metadata::NewDrawingRow;
use super::{now_ms, Stores};
use crate::domain::record::{assemble, encode_body, encode_body_with_source, Idempotency, Source};
use crate::domain::{Drawing, DrawingId, IdempotencyKey, Judgement, PlayerId};

/// Most submissions waiting for the writer; beyond this, submit answers `Overloaded`.
const QUEUE_CAPACITY: usize = 8_192;
/// Most submissions committed together.
const MAX_BATCH: usize = 1_024;
/// Bytes in a mebibyte, for messages.
const MIB: f64 = 1024.0 * 1024.0;

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
    /// A crash planned in the write path (fault tests only).
    pub crash: Option<CrashPlan>,
    /// Fault tests only: the SQLite commit of this many group commits fails (after their
    /// stroke records were synced), as an I/O error would.
    pub fail_writes: u64,
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
            crash: options.crash,
            fail_writes: options.fail_writes,
        };
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || writer_loop(&stores, &receiver, last_id, &thread_stats, guards))?;
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

/// The breaker's lock; poisoning only means a holder panicked between two plain field
/// writes, which leaves a valid state.
fn lock(breaker: &Mutex<Breaker>) -> std::sync::MutexGuard<'_, Breaker> {
    breaker.lock().unwrap_or_else(|p| p.into_inner())
}

fn disk_full(disk: &DiskWatch) -> IngestError {
    let status = disk.status();
    IngestError::DiskFull {
        free_bytes: status.free_bytes,
        watermark_bytes: status.watermark_bytes,
    }
}

fn breaker_open(wait: std::time::Duration) -> IngestError {
    IngestError::BreakerOpen {
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// What the writer thread checks around each batch.
struct Guards {
    disk: Option<Arc<DiskWatch>>,
    breaker: Arc<Mutex<Breaker>>,
    crash: Option<CrashPlan>,
    /// Group commits still to fail on purpose (fault tests).
    fail_writes: u64,
}

/// Whether a batch reached the disk, and how that went (for the breaker).
enum Written {
    /// Nothing to write (only duplicates or refusals).
    Nothing,
    Ok,
    Failed,
}

fn writer_loop(
    stores: &Stores,
    receiver: &Receiver<Message>,
    mut last_id: Option<DrawingId>,
    stats: &IngestStats,
    mut guards: Guards,
) {
    let crash = guards.crash;
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
                // Imports obey the same guards as submissions: nothing is written on a low
                // disk or while the breaker is open, and their failures count in it.
                if let Some(disk) = guards.disk.as_deref().filter(|d| d.is_low()) {
                    drop(reply.send(Err(disk_full(disk))));
                    continue;
                }
                if let Admission::Refuse { retry_after } =
                    lock(&guards.breaker).admit(Instant::now())
                {
                    drop(reply.send(Err(breaker_open(retry_after))));
                    continue;
                }
                batch_number += 1;
                let committed = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    commit_import(stores, &mut last_id, items, stats, |point| {
                        crash_point(crash, point, batch_number)
                    })
                }));
                match committed {
                    Ok(outcome) => {
                        let written = match &outcome {
                            Ok(_) => Written::Ok,
                            Err(_) => Written::Failed,
                        };
                        record_outcome(&mut guards, written);
                        // The importer may have gone away; what was stored stays stored.
                        drop(reply.send(outcome));
                    }
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
        // Submissions queued before the disk turned low or the breaker opened: refuse them
        // here, before anything touches the disk. (The breaker's guard is dropped at the end
        // of this statement, before the batch records its outcome in it.)
        let low_disk = guards.disk.as_deref().filter(|d| d.is_low());
        let admission = match low_disk {
            Some(_) => Admission::Allow,
            None => lock(&guards.breaker).admit(Instant::now()),
        };
        if let Some(disk) = low_disk {
            refuse_all(batch, disk_full(disk));
        } else if let Admission::Refuse { retry_after } = admission {
            refuse_all(batch, breaker_open(retry_after));
        } else {
            let inject_failure = guards.fail_writes > 0;
            // A panic in one batch must not stop the writer: its callers get `Stopped` (their
            // reply senders are dropped) and the next batch starts clean.
            let committed = std::panic::catch_unwind(AssertUnwindSafe(|| {
                commit_batch(
                    stores,
                    &mut last_id,
                    batch,
                    stats,
                    inject_failure,
                    |point| crash_point(crash, point, batch_number),
                )
            }));
            // The breaker learns the outcome before anyone is answered, so that a client
            // that got its 201 sees the breaker closed.
            let answers = match committed {
                Ok((written, answers)) => {
                    record_outcome(&mut guards, written);
                    answers
                }
                Err(_) => {
                    tracing::error!(
                        "a group commit panicked; its submissions were answered with an error"
                    );
                    Vec::new()
                }
            };
            for (reply, outcome) in answers {
                // The caller may have gone away (client disconnected); the drawing is stored
                // anyway.
                let _ = reply.send(outcome);
            }
            if let Some(disk) = &guards.disk {
                disk.sample();
            }
        }
    }
}

/// Tells the breaker how a batch that reached the disk went.
fn record_outcome(guards: &mut Guards, written: Written) {
    match written {
        Written::Nothing => {}
        Written::Ok => lock(&guards.breaker).record_success(),
        Written::Failed => {
            guards.fail_writes = guards.fail_writes.saturating_sub(1);
            let mut breaker = lock(&guards.breaker);
            breaker.record_failure(Instant::now());
            if let Some(wait) = breaker.would_refuse(Instant::now()) {
                tracing::error!(
                    cool_down_ms = wait.as_millis() as u64,
                    "storage keeps failing: the circuit breaker is open, refusing drawings"
                );
            }
        }
    }
}

/// Answers every submission of a batch with the same error.
fn refuse_all(batch: Vec<(Submission, Reply)>, error: IngestError) {
    for (_, reply) in batch {
        // The caller may have gone away; nothing was stored either way.
        let _ = reply.send(Err(error.clone()));
    }
}

/// Where a submission's outcome is sent.
type Reply = oneshot::Sender<Result<SubmitOutcome, IngestError>>;
/// A submission's outcome, ready to be sent once the breaker has recorded the batch.
type Answer = (Reply, Result<SubmitOutcome, IngestError>);

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
    store_both(stores, &records, &rows, stats, false, &crash_point)?;
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
    batch: Vec<(Submission, Reply)>,
    stats: &IngestStats,
    inject_failure: bool,
    crash_point: impl Fn(CrashPoint),
) -> (Written, Vec<Answer>) {
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

    let stored = store_both(stores, &records, &rows, stats, inject_failure, &crash_point);
    crash_point(CrashPoint::AfterMetadata);
    let outcome_of_new = |index: usize| match &stored {
        Ok(()) => Ok(SubmitOutcome::Created(records[index].0)),
        Err(e) => Err(e.clone()),
    };
    let mut answers = Vec::with_capacity(plans.len());
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
        answers.push((reply, outcome));
    }
    // Counted before anyone is answered (the caller answers), so a client that reads the
    // metrics after its 201 sees its drawing counted.
    let written = if records.is_empty() {
        Written::Nothing
    } else if stored.is_err() {
        Written::Failed
    } else {
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .drawings
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        Written::Ok
    };
    (written, answers)
}

/// Stroke records first, synced; then the rows. A crash between the two leaves records
/// without rows, which start-up reconciliation rebuilds; never rows without records.
fn store_both(
    stores: &Stores,
    records: &[(DrawingId, Vec<u8>)],
    rows: &[NewDrawingRow],
    stats: &IngestStats,
    inject_failure: bool,
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
    let inserted = if inject_failure {
        Err(super::StoreError::Io(std::io::Error::other(
            "injected write failure (--fail-writes)",
        )))
    } else {
        stores.metadata.insert_drawings(rows)
    };
    if let Err(e) = inserted {
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
