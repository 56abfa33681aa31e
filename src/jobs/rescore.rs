//! The `rescore` job kind: runs the quality service's rescore walk (see
//! [`crate::service::quality`]) chunk by chunk until it completes, and stores the walk's
//! final progress as the job's result. The walk's saved position is the job's: a run after a
//! graceful stop or a crash continues after the last drawing it scored. Cancelling the job
//! ends its walk where it stands (see [`cancelled`]).

use std::time::{Duration, Instant};

use super::{JobContext, JobSignal, RunOutcome};
use crate::service::quality::RescoreProgress;
use crate::store::JobRow;

/// How often a rescore's progress is saved on the job between chunks.
const PROGRESS_SAVE_EVERY: Duration = Duration::from_secs(2);

/// The configuration of the job that runs the walk `progress` describes: which model and
/// when it started, so that a new walk gets a job of its own while one for the same walk is
/// answered with the existing job.
pub fn config(progress: &RescoreProgress) -> serde_json::Value {
    serde_json::json!({
        "model_version": progress.model_version,
        "started_at": progress.started_at,
    })
}

/// Runs the rescore walk until it completes or `signal` stops it.
pub fn run(ctx: &JobContext, job: &JobRow, signal: &JobSignal) -> RunOutcome {
    let Some(quality) = ctx.quality.get() else {
        return RunOutcome::Failed("rescoring runs in the server only".into());
    };
    let mut last_save = Instant::now();
    let walked = quality.run_walk(&|| signal.should_stop(), &mut |progress| {
        let save = last_save.elapsed() >= PROGRESS_SAVE_EVERY;
        if save {
            last_save = Instant::now();
        }
        ctx.progress(
            job,
            serde_json::to_value(progress).unwrap_or_default(),
            save,
        );
    });
    match walked {
        Ok(Some(done)) => match serde_json::to_value(&done) {
            Ok(result) => RunOutcome::Done(result),
            Err(e) => RunOutcome::Failed(format!("the progress cannot be stored: {e}")),
        },
        Ok(None) => signal.stopped_outcome(),
        // The walk keeps its position; a retry goes on from there.
        Err(e) => RunOutcome::Retry(e.to_string()),
    }
}

/// Ends the walk `job` ran (or was queued to run) because the job was cancelled; otherwise
/// the walk would stay running, and every start would queue it again. A newer walk started
/// since (another activation) is left alone.
pub fn cancelled(ctx: &JobContext, job: &JobRow) {
    let Some(quality) = ctx.quality.get() else {
        return;
    };
    let progress = quality.progress();
    if progress.status != "running" || job.config["started_at"] != config(&progress)["started_at"] {
        return;
    }
    if let Err(e) = quality.cancel_walk() {
        tracing::warn!(job = job.id, error = %e, "could not mark the cancelled rescore as ended; it resumes at the next start");
    }
}
