//! The one durable queue for long work inside the binary (where RabbitMQ stood in the
//! original design): training, backups, rescoring, imports and checks of the stores are job
//! kinds of it.
//!
//! A job is committed to SQLite first (`queued`), then the scheduler thread is woken. The
//! scheduler thread's tick (run inside `catch_unwind`, so a panic anywhere in it costs one
//! tick, not the queue) takes the oldest runnable job of every kind that has none running,
//! marks it `running` with one more attempt, and runs it on a thread of its own: at most one
//! job of each kind at a time, so a backup or an import runs beside a long training run.
//! Each run is itself inside `catch_unwind`, so a panic fails that job only.
//!
//! A graceful stop ([`Scheduler::shutdown`], on SIGTERM) asks every running job to stop at
//! its next step and requeues it without charging the attempt. After a crash, jobs left
//! `running` are requeued (and resume where their kind can) until they have used
//! [`MAX_ATTEMPTS`], then fail with the reason: only crashes count. Failures that may pass
//! (I/O) are retried after a capped exponential backoff with jitter (`pending`). Cancelling
//! goes through [`Scheduler::cancel`] for every kind.
//!
//! In cluster mode a job may be taken over by another process while its run here is frozen
//! (SIGSTOP, a stalled VM): every write a run makes carries the claim it started under
//! ([`JobLease`]), and once the heartbeat or a write finds the job no longer its own, the
//! run stops at its next step and records nothing ([`RunOutcome::TakenOver`]).

pub mod backup;
pub mod import;
pub mod rescore;
pub mod runner;
pub mod train_config;
pub mod train_data;
pub mod verify;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

pub use runner::{JobContext, RunOutcome};
pub use train_config::{DataSource, JobConfig, JobConfigError, JobConfigInput};

use crate::store::{
    now_ms, Backend, CancelOutcome, JobKind, JobLease, JobRow, JobStatus, StoreError,
};

/// Attempts a job gets (crashes and retries together) before it fails for good.
pub const MAX_ATTEMPTS: i64 = 3;
/// First retry delay; doubled per attempt.
const RETRY_BASE: Duration = Duration::from_secs(5);
/// Longest retry delay.
const RETRY_CAP: Duration = Duration::from_secs(300);
/// How long the idle scheduler sleeps before looking for pending jobs whose time has come.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Progress events kept for slow listeners.
const EVENT_BUFFER: usize = 256;

/// A cancel asked of a job that has already finished (with the status it finished in).
#[derive(Debug, thiserror::Error)]
#[error("the job has already finished ({})", .0.as_str())]
pub struct JobFinished(pub JobStatus);

/// A change in a job, for live listeners (Server-Sent Events, the CLI's progress bar) and,
/// in cluster mode, for the other replicas' listeners (`service::cluster`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct JobEvent {
    pub id: i64,
    /// Which kind of job changed, so a listener can tell a training step from a backup line.
    pub kind: JobKind,
    pub status: JobStatus,
    pub progress: Option<serde_json::Value>,
}

/// What a running job looks at between its steps: whether the process is stopping (the job
/// goes back to the queue) or the job was cancelled.
#[derive(Clone)]
pub struct JobSignal {
    /// The whole queue is stopping (shared by every job).
    stopping: Arc<AtomicBool>,
    /// This job was cancelled through [`Scheduler::cancel`].
    cancelled: Arc<AtomicBool>,
    /// Another process took this job over (cluster mode): the heartbeat or one of the run's
    /// writes found it no longer running under the run's claim.
    taken_over: Arc<AtomicBool>,
}

impl JobSignal {
    /// A signal for a job run outside the scheduler thread (the CLI's foreground run).
    pub fn new(stopping: Arc<AtomicBool>) -> Self {
        Self {
            stopping,
            cancelled: Arc::new(AtomicBool::new(false)),
            taken_over: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether the job should stop at this step.
    pub fn should_stop(&self) -> bool {
        self.is_cancelled() || self.is_taken_over() || self.stopping.load(Ordering::Relaxed)
    }

    /// Whether the job was cancelled (rather than the process stopping).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Whether another process owns the job now.
    pub fn is_taken_over(&self) -> bool {
        self.taken_over.load(Ordering::Relaxed)
    }

    /// Records that a write of the run found the job taken over: the run stops at its next
    /// step.
    pub fn mark_taken_over(&self) {
        self.taken_over.store(true, Ordering::Relaxed);
    }

    /// How a job that stopped because of this signal ended.
    pub fn stopped_outcome(&self) -> RunOutcome {
        if self.is_taken_over() {
            RunOutcome::TakenOver
        } else if self.is_cancelled() {
            RunOutcome::Cancelled
        } else {
            RunOutcome::Interrupted
        }
    }
}

/// A job running on its own thread.
struct Running {
    /// The job and the claim its run started under (what the heartbeat stamps).
    lease: JobLease,
    /// Set by [`Scheduler::cancel`]; the job sees it at its next step.
    cancelled: Arc<AtomicBool>,
    /// Set when the heartbeat finds the job taken over; the job sees it at its next step.
    taken_over: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// What the scheduler thread, the job threads and the handle share.
struct Shared {
    context: JobContext,
    /// Wakes the scheduler thread: a job was committed or one finished.
    wake: Sender<()>,
    /// The running job of each kind (at most one per kind).
    running: Mutex<HashMap<JobKind, Running>>,
}

/// The handle to the scheduler thread.
pub struct Scheduler {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Scheduler {
    /// Recovers jobs a crash left `running`, then starts the scheduler thread. In cluster
    /// mode a `running` job may be another live process's: only those whose heartbeat is
    /// stale are taken over, here and at every [`HEARTBEAT_EVERY`] after.
    pub fn start(context: JobContext) -> Result<Self, StoreError> {
        let jobs = &context.stores.jobs;
        let (requeued, failed) = match context.stores.backend {
            Backend::Embedded => jobs.recover_interrupted_jobs(MAX_ATTEMPTS)?,
            Backend::Postgres => jobs.recover_stale_jobs(MAX_ATTEMPTS, stale_ms())?,
        };
        if requeued + failed > 0 {
            tracing::warn!(requeued, failed, "recovered jobs interrupted by a crash");
        }
        let swept = import::sweep_uploads(&context)?;
        if swept > 0 {
            tracing::info!(swept, "removed uploads no import job waits for");
        }
        let (wake, woken) = bounded(1);
        let shared = Arc::new(Shared {
            context,
            wake,
            running: Mutex::new(HashMap::new()),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("job-scheduler".into())
            .spawn(move || scheduler_loop(&thread_shared, &woken))?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Commits a training job, then wakes the worker. `true` when an identical job already
    /// existed.
    pub fn enqueue(&self, config: &JobConfig) -> Result<(JobRow, bool), StoreError> {
        self.enqueue_kind(JobKind::Train, &config.to_json())
    }

    /// Commits a job of any kind with its configuration, then wakes the worker. An identical
    /// job of the same kind waiting or running is answered instead (`true`).
    pub fn enqueue_kind(
        &self,
        kind: JobKind,
        config: &serde_json::Value,
    ) -> Result<(JobRow, bool), StoreError> {
        let hash = hex::encode(Sha256::digest(config.to_string().as_bytes()));
        let (job, existed) = self
            .shared
            .context
            .stores
            .jobs
            .enqueue_job(kind, config, &hash)?;
        if !existed {
            let _ = self.shared.wake.try_send(());
        }
        Ok((job, existed))
    }

    /// Cancels a job of any kind: one that waits is cancelled now (and its event sent), one
    /// that runs is told to stop at its next step. `None` when there is no such job.
    pub fn cancel(&self, id: i64) -> Result<Option<CancelOutcome>, StoreError> {
        let context = &self.shared.context;
        let outcome = context.stores.jobs.cancel_job(id)?;
        match outcome {
            Some(CancelOutcome::Requested) => {
                let running = lock(&self.shared.running);
                if let Some(job) = running.values().find(|r| r.lease.id == id) {
                    job.cancelled.store(true, Ordering::Relaxed);
                }
            }
            Some(CancelOutcome::Cancelled) => {
                if let Some(job) = context.stores.jobs.job(id)? {
                    clean_up(context, &job, JobStatus::Cancelled);
                    context.announce(&job, JobStatus::Cancelled, None);
                }
            }
            _ => {}
        }
        Ok(outcome)
    }

    /// The jobs running now, by kind (at most one each), for diagnostics and tests.
    pub fn running(&self) -> Vec<(JobKind, i64)> {
        lock(&self.shared.running)
            .iter()
            .filter(|(_, r)| !r.thread.is_finished())
            .map(|(kind, r)| (*kind, r.lease.id))
            .collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.shared.context.events.subscribe()
    }

    pub fn context(&self) -> &JobContext {
        &self.shared.context
    }

    /// Stops the scheduler: every running job stops at its next step and goes back to the
    /// queue without being charged an attempt; it resumes after the next start.
    pub fn shutdown(&self) {
        self.shared.context.stopping.store(true, Ordering::Relaxed);
        let _ = self.shared.wake.try_send(());
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// The map of running jobs; a panic while it was held left it consistent (entries are
/// inserted and removed whole), so a poisoned lock is taken over.
fn lock(
    running: &Mutex<HashMap<JobKind, Running>>,
) -> std::sync::MutexGuard<'_, HashMap<JobKind, Running>> {
    running.lock().unwrap_or_else(|p| p.into_inner())
}

/// How often, in cluster mode, a process stamps the jobs it runs as alive and takes over
/// those whose stamp is older than [`TAKEOVER_AFTER`].
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// A running job whose heartbeat is this old lost its worker: another process takes it over
/// (several missed heartbeats, so a busy database or a slow tick is not taken for a death).
pub const TAKEOVER_AFTER: Duration = Duration::from_secs(10);

fn stale_ms() -> u64 {
    TAKEOVER_AFTER.as_millis() as u64
}

/// Cluster mode: stamps the jobs running here as alive (passing on cancels asked on other
/// replicas, and stopping runs whose job another process took over while this one was
/// frozen), then takes over jobs whose worker stopped stamping.
fn pulse(shared: &Arc<Shared>) -> Result<(), StoreError> {
    let context = &shared.context;
    let leases: Vec<JobLease> = lock(&shared.running)
        .values()
        .filter(|r| !r.thread.is_finished())
        .map(|r| r.lease)
        .collect();
    let beat = context.stores.jobs.heartbeat_jobs(&leases)?;
    for job in lock(&shared.running).values() {
        if beat.cancelled.contains(&job.lease.id) {
            job.cancelled.store(true, Ordering::Relaxed);
        }
        if beat.lost.contains(&job.lease.id) {
            tracing::warn!(
                job = job.lease.id,
                "another process took this job over; its run here stops"
            );
            job.taken_over.store(true, Ordering::Relaxed);
        }
    }
    let (requeued, failed) = context
        .stores
        .jobs
        .recover_stale_jobs(MAX_ATTEMPTS, stale_ms())?;
    if requeued + failed > 0 {
        tracing::warn!(
            requeued,
            failed,
            "took over jobs whose worker stopped sending heartbeats"
        );
    }
    Ok(())
}

fn scheduler_loop(shared: &Arc<Shared>, woken: &Receiver<()>) {
    let mut last_pulse: Option<std::time::Instant> = None;
    while !shared.context.stopping.load(Ordering::Relaxed) {
        let due = last_pulse.is_none_or(|t| t.elapsed() >= HEARTBEAT_EVERY);
        if shared.context.stores.backend == Backend::Postgres && due {
            last_pulse = Some(std::time::Instant::now());
            match std::panic::catch_unwind(AssertUnwindSafe(|| pulse(shared))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not send the jobs' heartbeat"),
                Err(_) => tracing::error!("the jobs' heartbeat panicked; it carries on"),
            }
        }
        match std::panic::catch_unwind(AssertUnwindSafe(|| dispatch(shared))) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the job scheduler could not reach the database")
            }
            Err(_) => tracing::error!("the job scheduler's tick panicked; it carries on"),
        }
        let _ = woken.recv_timeout(IDLE_POLL);
    }
    // Stopping: every running job sees the flag at its next step and requeues itself.
    let running: Vec<Running> = lock(&shared.running).drain().map(|(_, r)| r).collect();
    for job in running {
        let _ = job.thread.join();
    }
}

/// One tick: forgets finished job threads, then starts the oldest runnable job of every
/// kind that has none running. Returns how many it started.
fn dispatch(shared: &Arc<Shared>) -> Result<usize, StoreError> {
    let context = &shared.context;
    let mut running = lock(&shared.running);
    running.retain(|_, r| !r.thread.is_finished());
    let mut started = 0;
    while !context.stopping.load(Ordering::Relaxed) {
        let free: Vec<JobKind> = context
            .kinds
            .iter()
            .copied()
            .filter(|kind| !running.contains_key(kind))
            .collect();
        let Some(job) = context.stores.jobs.start_next_job(&free)? else {
            break;
        };
        let cancelled = Arc::new(AtomicBool::new(job.cancel_requested));
        let taken_over = Arc::new(AtomicBool::new(false));
        let signal = JobSignal {
            stopping: context.stopping.clone(),
            cancelled: cancelled.clone(),
            taken_over: taken_over.clone(),
        };
        let (lease, kind) = (job.lease(), job.kind);
        let thread_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("job-{}", kind.as_str()))
            .spawn(move || {
                run_and_record(&thread_shared.context, &job, &signal);
                let _ = thread_shared.wake.try_send(());
            });
        match spawned {
            Ok(thread) => {
                running.insert(
                    kind,
                    Running {
                        lease,
                        cancelled,
                        taken_over,
                        thread,
                    },
                );
                started += 1;
            }
            Err(e) => {
                // No thread to run it: back to the queue, uncharged, for the next tick.
                context.stores.jobs.requeue_job(lease)?;
                return Err(e.into());
            }
        }
    }
    Ok(started)
}

/// Runs the oldest runnable job of one of `kinds` on this thread, if any (the CLI's
/// foreground training). `Ok(true)` when one ran.
pub fn tick(context: &JobContext, kinds: &[JobKind]) -> Result<bool, StoreError> {
    let Some(job) = context.stores.jobs.start_next_job(kinds)? else {
        return Ok(false);
    };
    run_and_record(context, &job, &JobSignal::new(context.stopping.clone()));
    Ok(true)
}

/// Runs one job (a panic fails it), records how it ended and tells the listeners.
fn run_and_record(context: &JobContext, job: &JobRow, signal: &JobSignal) {
    let kind = job.kind.as_str();
    tracing::info!(job = job.id, kind, attempt = job.attempt, "job started");
    context.announce(job, JobStatus::Running, None);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| run_kind(context, job, signal)))
        .unwrap_or_else(|_| {
            RunOutcome::Failed(format!("the {kind} job panicked; see the server log"))
        });
    match record(context, job, outcome) {
        Ok(Some(status)) => {
            if status.is_finished() {
                clean_up(context, job, status);
            }
            context.announce(job, status, None);
        }
        // The job is another process's now: what it becomes is that process's to record.
        Ok(None) | Err(StoreError::JobTakenOver(_)) => {
            tracing::warn!(
                job = job.id,
                kind,
                "another process took this job over; this run recorded nothing"
            );
        }
        // Left `running`: the next start treats it as interrupted by a crash.
        Err(e) => {
            tracing::error!(job = job.id, kind, error = %e, "could not record how a job ended")
        }
    }
}

fn run_kind(context: &JobContext, job: &JobRow, signal: &JobSignal) -> RunOutcome {
    match job.kind {
        JobKind::Train => runner::run_job(context, job, signal),
        JobKind::Backup => backup::run(context, job, signal),
        JobKind::Import => import::run(context, job, signal),
        JobKind::Rescore => rescore::run(context, job, signal),
        JobKind::Verify => verify::run(context, job, signal),
    }
}

/// What a kind leaves behind once its job has finished: an import's upload, a cancelled
/// rescore's walk.
fn clean_up(context: &JobContext, job: &JobRow, status: JobStatus) {
    match job.kind {
        JobKind::Import => import::clean_up(context, job),
        JobKind::Rescore if status == JobStatus::Cancelled => rescore::cancelled(context, job),
        _ => {}
    }
}

/// Stores how a run ended; returns the job's new status, or `None` when the job was taken
/// over (nothing is stored).
fn record(
    context: &JobContext,
    job: &JobRow,
    outcome: RunOutcome,
) -> Result<Option<JobStatus>, StoreError> {
    let jobs = &context.stores.jobs;
    let kind = job.kind.as_str();
    let lease = job.lease();
    Ok(Some(match outcome {
        RunOutcome::TakenOver => return Ok(None),
        RunOutcome::Completed { version, metrics } => {
            jobs.complete_job(lease, &metrics, &version)?;
            tracing::info!(job = job.id, %version, "training job completed");
            JobStatus::Completed
        }
        RunOutcome::Done(result) => {
            jobs.complete_job_with_result(lease, &result)?;
            tracing::info!(job = job.id, kind, "job completed");
            JobStatus::Completed
        }
        RunOutcome::Cancelled => {
            jobs.mark_job_cancelled(lease)?;
            JobStatus::Cancelled
        }
        RunOutcome::Interrupted => {
            // A graceful stop: back to the queue, the attempt given back.
            let status = jobs.requeue_job(lease)?;
            tracing::info!(job = job.id, kind, "job requeued by a graceful stop");
            status
        }
        RunOutcome::Failed(reason) => {
            tracing::warn!(job = job.id, kind, %reason, "job failed");
            jobs.fail_job(lease, &reason)?;
            JobStatus::Failed
        }
        RunOutcome::Retry(reason) if job.attempt < MAX_ATTEMPTS => {
            let delay = retry_delay(job.attempt);
            tracing::warn!(job = job.id, kind, %reason, retry_in_s = delay.as_secs(), "job will be retried");
            jobs.retry_job_later(lease, &reason, now_ms() + delay.as_millis() as u64)?;
            JobStatus::Pending
        }
        RunOutcome::Retry(reason) => {
            jobs.fail_job(
                lease,
                &format!("gave up after {} attempts: {reason}", job.attempt),
            )?;
            JobStatus::Failed
        }
    }))
}

/// Capped exponential backoff with ±20 % jitter.
fn retry_delay(attempt: i64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    let base = RETRY_BASE.saturating_mul(1 << exponent).min(RETRY_CAP);
    base.mul_f64(rand::random_range(0.8..1.2))
}

/// A broadcast channel for job events.
pub fn event_channel() -> broadcast::Sender<JobEvent> {
    broadcast::channel(EVENT_BUFFER).0
}

/// A context whose scheduler has not been told to stop.
pub fn not_stopping() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Stores;

    #[test]
    fn retry_delays_grow_and_are_capped() {
        assert!(retry_delay(1) <= Duration::from_secs(6));
        assert!(retry_delay(3) >= Duration::from_secs(16));
        assert!(retry_delay(30) <= RETRY_CAP.mul_f64(1.2));
    }

    fn context(dir: &std::path::Path) -> JobContext {
        JobContext::new(Arc::new(Stores::open(dir).unwrap()), dir, None)
    }

    #[test]
    fn a_waiting_backup_is_cancelled_through_the_scheduler_and_its_listeners_hear_it() {
        let dir = tempfile::tempdir().unwrap();
        let context = context(dir.path());
        // A scheduler told to stop before it starts runs nothing: the job stays queued.
        context.stopping.store(true, Ordering::Relaxed);
        let scheduler = Scheduler::start(context).unwrap();
        let dest = dir.path().join("never");
        let (job, _) = scheduler
            .enqueue_kind(JobKind::Backup, &serde_json::json!({"dest": dest}))
            .unwrap();
        let mut events = scheduler.subscribe();
        assert_eq!(
            scheduler.cancel(job.id).unwrap(),
            Some(CancelOutcome::Cancelled)
        );
        let event = events.try_recv().unwrap();
        assert_eq!(
            (event.id, event.kind, event.status),
            (job.id, JobKind::Backup, JobStatus::Cancelled)
        );
        let stored = scheduler
            .context()
            .stores
            .jobs
            .job(job.id)
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, JobStatus::Cancelled);
        assert_eq!(
            scheduler.cancel(job.id).unwrap(),
            Some(CancelOutcome::AlreadyFinished(JobStatus::Cancelled))
        );
        assert_eq!(scheduler.cancel(job.id + 100).unwrap(), None);
        assert!(!dest.exists());
        assert!(scheduler.running().is_empty());
        scheduler.shutdown();
    }

    #[test]
    fn the_queue_starts_only_kinds_that_have_no_job_running_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::open(dir.path()).unwrap();
        let jobs = &stores.jobs;
        let (first, _) = jobs
            .enqueue_job(JobKind::Backup, &serde_json::json!({"n": 1}), "a")
            .unwrap();
        let (second, _) = jobs
            .enqueue_job(JobKind::Backup, &serde_json::json!({"n": 2}), "b")
            .unwrap();
        let (train, _) = jobs
            .enqueue_job(JobKind::Train, &serde_json::json!({}), "c")
            .unwrap();
        let started = jobs.start_next_job(&JobKind::ALL).unwrap().unwrap();
        assert_eq!((started.id, started.kind), (first.id, JobKind::Backup));
        // The backup runs: only the other kinds are free.
        let free = [JobKind::Train, JobKind::Rescore, JobKind::Import];
        let next = jobs.start_next_job(&free).unwrap().unwrap();
        assert_eq!(next.id, train.id);
        assert!(jobs
            .start_next_job(&[JobKind::Rescore, JobKind::Import])
            .unwrap()
            .is_none());
        assert_eq!(
            jobs.job(second.id).unwrap().unwrap().status,
            JobStatus::Queued
        );
        assert_eq!(jobs.jobs_of_kind(JobKind::Train, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_graceful_requeue_gives_the_attempt_back_and_only_crashes_count() {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::open(dir.path()).unwrap();
        let jobs = &stores.jobs;
        let (job, _) = jobs
            .enqueue_job(JobKind::Import, &serde_json::json!({}), "x")
            .unwrap();
        for _ in 0..(MAX_ATTEMPTS + 2) {
            let started = jobs.start_next_job(&JobKind::ALL).unwrap().unwrap();
            assert_eq!(started.attempt, 1, "a graceful stop is never charged");
            assert_eq!(
                jobs.requeue_job(started.lease()).unwrap(),
                JobStatus::Queued
            );
        }
        for crash in 1..=MAX_ATTEMPTS {
            let started = jobs.start_next_job(&JobKind::ALL).unwrap().unwrap();
            assert_eq!(started.attempt, crash);
            jobs.recover_interrupted_jobs(MAX_ATTEMPTS).unwrap();
        }
        let failed = jobs.job(job.id).unwrap().unwrap();
        assert_eq!(failed.status, JobStatus::Failed, "{failed:?}");
    }
}
