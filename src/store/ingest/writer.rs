//! The writer thread: takes every submission waiting in the queue as one batch, writes their
//! stroke records and syncs once, commits their rows in one SQLite transaction, and only
//! then answers each of them.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;

use crossbeam_channel::Receiver;
use tokio::sync::oneshot;

use super::guards::{Guards, Written};
use super::idempotency::BatchKeys;
use super::import::commit_import;
use super::{IngestError, IngestStats, Message, Submission, SubmitOutcome, MAX_BATCH};
use crate::domain::record::assemble;
use crate::domain::DrawingId;
use crate::fault::{CrashPoint, FaultPlan};
use crate::store::metadata::NewDrawingRow;
use crate::store::{now_ms, StoreError, Stores};

pub(super) fn writer_loop(
    stores: &Stores,
    receiver: &Receiver<Message>,
    mut last_id: Option<DrawingId>,
    stats: &IngestStats,
    mut guards: Guards,
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
                // Imports obey the same guards as submissions: nothing is written on a low
                // disk or while the breaker is open, and their failures count in it.
                if let Err(refused) = guards.admit() {
                    drop(reply.send(Err(refused)));
                    continue;
                }
                batch_number += 1;
                let faults = guards.faults;
                let committed = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    commit_import(stores, &mut last_id, items, stats, |point| {
                        faults.crash_at(point, batch_number)
                    })
                }));
                match committed {
                    Ok(outcome) => {
                        let written = match &outcome {
                            Ok(_) => Written::Ok,
                            Err(_) => Written::Failed,
                        };
                        guards.record_outcome(written);
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
        // here, before anything touches the disk.
        if let Err(refused) = guards.admit() {
            refuse_all(batch, refused);
            continue;
        }
        let faults = guards.faults;
        // A panic in one batch must not stop the writer: its callers get `Stopped` (their
        // reply senders are dropped) and the next batch starts clean.
        let committed = std::panic::catch_unwind(AssertUnwindSafe(|| {
            commit_batch(stores, &mut last_id, batch, stats, &faults, batch_number)
        }));
        // The breaker learns the outcome before anyone is answered, so that a client that
        // got its 201 sees the breaker closed.
        let answers = match committed {
            Ok((written, answers)) => {
                guards.record_outcome(written);
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
        guards.sample_disk();
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

/// How one submission of a batch is to be answered.
pub(super) enum Plan {
    Done(Result<SubmitOutcome, IngestError>),
    /// A new drawing: the index into the batch's new records.
    New(usize),
    /// The same key as an earlier new drawing of this batch, with the same body.
    SameAs(usize),
}

/// How many times a batch is planned again after another replica stored one of its
/// idempotency keys first (cluster mode); each round looks the keys up afresh.
const KEY_RACE_ROUNDS: usize = 3;

fn commit_batch(
    stores: &Stores,
    last_id: &mut Option<DrawingId>,
    batch: Vec<(Submission, Reply)>,
    stats: &IngestStats,
    faults: &FaultPlan,
    batch_number: u64,
) -> (Written, Vec<Answer>) {
    let (submissions, replies): (Vec<Submission>, Vec<Reply>) = batch.into_iter().unzip();
    let mut round = 0;
    let (plans, records, stored) = loop {
        round += 1;
        let (plans, records, rows) = plan_batch(stores, last_id, &submissions);
        let crash_point = |point| faults.crash_at(point, batch_number);
        let stored = try_store_both(
            stores,
            &records,
            &rows,
            stats,
            faults.fails_next_write(),
            &crash_point,
        );
        crash_point(CrashPoint::AfterMetadata);
        match stored {
            Err(StoreFailure::KeyTaken) if round < KEY_RACE_ROUNDS => continue,
            stored => break (plans, records, stored.map_err(IngestError::from)),
        }
    };
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

/// A batch's plan: how each submission is answered, and the new records and rows to store.
type Planned = (Vec<Plan>, Vec<(DrawingId, Vec<u8>)>, Vec<NewDrawingRow>);

/// Looks up each submission's idempotency key and gives every new drawing its id.
fn plan_batch(
    stores: &Stores,
    last_id: &mut Option<DrawingId>,
    submissions: &[Submission],
) -> Planned {
    let now = now_ms();
    let mut keys = BatchKeys::default();
    let mut plans = Vec::with_capacity(submissions.len());
    let mut records: Vec<(DrawingId, Vec<u8>)> = Vec::new();
    let mut rows: Vec<NewDrawingRow> = Vec::new();
    for submission in submissions {
        if let Some((key, digest)) = &submission.idempotency {
            let player = submission.player;
            if let Some(plan) = keys.check(&*stores.metadata, player, key, digest, records.len()) {
                plans.push(plan);
                continue;
            }
        }
        let id = DrawingId::next(now, *last_id);
        *last_id = Some(id);
        rows.push(NewDrawingRow {
            id,
            player: submission.player,
            shape_id: submission.shape_id,
            metadata: submission.metadata.clone(),
            created_at_ms: now,
            idempotency: submission.idempotency.clone(),
            source_key: None,
            judgement: None,
        });
        records.push((id, assemble(id, submission.player, now, &submission.body)));
        plans.push(Plan::New(records.len() - 1));
    }
    (plans, records, rows)
}

/// Why storing a batch failed: a lost idempotency race (plan again), or anything else.
pub(super) enum StoreFailure {
    /// Another replica stored one of the batch's keys first; nothing was stored.
    KeyTaken,
    Failed(IngestError),
}

impl From<StoreFailure> for IngestError {
    fn from(failure: StoreFailure) -> Self {
        match failure {
            StoreFailure::KeyTaken => IngestError::Storage(StoreError::KeyTaken.to_string()),
            StoreFailure::Failed(e) => e,
        }
    }
}

/// Stroke records first, synced; then the rows, committed without a sync of their own. A
/// crash between the two, or a power cut that undoes the rows' commit, leaves records without
/// rows, which start-up reconciliation rebuilds; never rows without records.
/// `inject_failure` (fault tests) makes the SQLite commit fail as an I/O error would.
pub(super) fn store_both(
    stores: &Stores,
    records: &[(DrawingId, Vec<u8>)],
    rows: &[NewDrawingRow],
    stats: &IngestStats,
    inject_failure: bool,
    crash_point: &impl Fn(CrashPoint),
) -> Result<(), IngestError> {
    try_store_both(stores, records, rows, stats, inject_failure, crash_point)
        .map_err(IngestError::from)
}

/// [`store_both`], telling a lost idempotency race apart from other failures.
fn try_store_both(
    stores: &Stores,
    records: &[(DrawingId, Vec<u8>)],
    rows: &[NewDrawingRow],
    stats: &IngestStats,
    inject_failure: bool,
    crash_point: &impl Fn(CrashPoint),
) -> Result<(), StoreFailure> {
    if records.is_empty() {
        return Ok(());
    }
    crash_point(CrashPoint::BeforeStrokes);
    stores
        .blobs
        .put_durably(records)
        .map_err(|e| StoreFailure::Failed(IngestError::Storage(e.to_string())))?;
    stats.syncs.fetch_add(1, Ordering::Relaxed);
    crash_point(CrashPoint::AfterStrokes);
    let inserted = if inject_failure {
        Err(StoreError::Io(FaultPlan::injected_write_error()))
    } else {
        stores.metadata.insert_drawings(rows)
    };
    if let Err(e) = inserted {
        // Take the records back so a refused submission does not reappear after a restart.
        let ids: Vec<DrawingId> = records.iter().map(|(id, _)| *id).collect();
        if let Err(undo) = stores.blobs.remove_durably(&ids) {
            tracing::error!(error = %undo, "could not remove stroke records of a failed batch; reconciliation will restore them");
        }
        if matches!(e, StoreError::KeyTaken) {
            return Err(StoreFailure::KeyTaken);
        }
        return Err(StoreFailure::Failed(IngestError::Storage(e.to_string())));
    }
    Ok(())
}
