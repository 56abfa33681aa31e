//! The durable training queue inside the binary (where RabbitMQ stood in the original
//! design).
//!
//! A job is committed to SQLite first (`queued`), then the scheduler thread is woken. The one
//! scheduler thread takes the oldest runnable job, marks it `running` with one more attempt,
//! and runs it (`runner`); each step runs inside `catch_unwind`, so a panic fails that job and
//! not the queue. After a crash, jobs left `running` are requeued (and resume from their last
//! checkpoint) until they have used [`MAX_ATTEMPTS`], then fail with the reason. Failures that
//! may pass (I/O) are retried after a capped exponential backoff with jitter (`pending`).

pub mod runner;
pub mod train_config;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use serde::Serialize;
use tokio::sync::broadcast;

pub use runner::{JobContext, RunOutcome};
pub use train_config::{DataSource, JobConfig, JobConfigError, JobConfigInput};

use crate::store::{now_ms, JobRow, JobStatus, StoreError};

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

/// A change in a job, for live listeners (Server-Sent Events, the CLI's progress bar).
#[derive(Debug, Clone, Serialize)]
pub struct JobEvent {
    pub id: i64,
    pub status: JobStatus,
    pub progress: Option<serde_json::Value>,
}

/// The handle to the scheduler thread.
pub struct Scheduler {
    context: JobContext,
    wake: Sender<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Scheduler {
    /// Recovers jobs a crash left `running`, then starts the scheduler thread.
    pub fn start(context: JobContext) -> Result<Self, StoreError> {
        let (requeued, failed) = context.stores.jobs.recover_interrupted_jobs(MAX_ATTEMPTS)?;
        if requeued + failed > 0 {
            tracing::warn!(
                requeued,
                failed,
                "recovered training jobs interrupted by a stop"
            );
        }
        let (wake, woken) = bounded(1);
        let thread_context = context.clone();
        let thread = std::thread::Builder::new()
            .name("job-scheduler".into())
            .spawn(move || scheduler_loop(&thread_context, &woken))?;
        Ok(Self {
            context,
            wake,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Commits the job, then wakes the worker. `true` when an identical job already existed.
    pub fn enqueue(&self, config: &JobConfig) -> Result<(JobRow, bool), StoreError> {
        let (job, existed) = self
            .context
            .stores
            .jobs
            .enqueue_job(&config.to_json(), &config.hash())?;
        if !existed {
            let _ = self.wake.try_send(());
        }
        Ok((job, existed))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.context.events.subscribe()
    }

    pub fn context(&self) -> &JobContext {
        &self.context
    }

    /// Stops the thread; a running job is requeued and resumes after the next start.
    pub fn shutdown(&self) {
        self.context.stopping.store(true, Ordering::Relaxed);
        let _ = self.wake.try_send(());
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

fn scheduler_loop(context: &JobContext, woken: &Receiver<()>) {
    while !context.stopping.load(Ordering::Relaxed) {
        match tick(context) {
            Ok(true) => {}
            Ok(false) => {
                let _ = woken.recv_timeout(IDLE_POLL);
            }
            Err(e) => {
                tracing::error!(error = %e, "the job scheduler could not reach the database");
                let _ = woken.recv_timeout(IDLE_POLL);
            }
        }
    }
}

/// Runs the next runnable job, if any. `Ok(true)` when one ran.
pub fn tick(context: &JobContext) -> Result<bool, StoreError> {
    let Some(job) = context.stores.jobs.start_next_job()? else {
        return Ok(false);
    };
    tracing::info!(job = job.id, attempt = job.attempt, "training job started");
    let _ = context.events.send(JobEvent {
        id: job.id,
        status: JobStatus::Running,
        progress: None,
    });
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| runner::run_job(context, &job)))
        .unwrap_or_else(|_| {
            RunOutcome::Failed("the training run panicked; see the server log".into())
        });
    let jobs = &context.stores.jobs;
    let status = match outcome {
        RunOutcome::Completed { version, metrics } => {
            jobs.complete_job(job.id, &metrics, &version)?;
            tracing::info!(job = job.id, %version, "training job completed");
            JobStatus::Completed
        }
        RunOutcome::Cancelled => {
            jobs.mark_job_cancelled(job.id)?;
            JobStatus::Cancelled
        }
        RunOutcome::Interrupted => {
            // Left `running`: the next start requeues it and it resumes from its checkpoint.
            return Ok(true);
        }
        RunOutcome::Failed(reason) => {
            tracing::warn!(job = job.id, %reason, "training job failed");
            jobs.fail_job(job.id, &reason)?;
            JobStatus::Failed
        }
        RunOutcome::Retry(reason) if job.attempt < MAX_ATTEMPTS => {
            let delay = retry_delay(job.attempt);
            tracing::warn!(job = job.id, %reason, retry_in_s = delay.as_secs(), "training job will be retried");
            jobs.retry_job_later(job.id, &reason, now_ms() + delay.as_millis() as u64)?;
            JobStatus::Pending
        }
        RunOutcome::Retry(reason) => {
            jobs.fail_job(
                job.id,
                &format!("gave up after {} attempts: {reason}", job.attempt),
            )?;
            JobStatus::Failed
        }
    };
    let _ = context.events.send(JobEvent {
        id: job.id,
        status,
        progress: None,
    });
    Ok(true)
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

    #[test]
    fn retry_delays_grow_and_are_capped() {
        assert!(retry_delay(1) <= Duration::from_secs(6));
        assert!(retry_delay(3) >= Duration::from_secs(16));
        assert!(retry_delay(30) <= RETRY_CAP.mul_f64(1.2));
    }
}
