//! The `verify` job kind: checks the live data directory's two stores against each other
//! (see [`crate::store::check`]) while the server goes on taking drawings, and stores the
//! report as the job's result. At ten million drawings the check walks every stroke record
//! for many minutes, which is why it is a job and not a request.
//!
//! The job's progress says what the check is doing (`phase`: `database` during SQLite's own
//! checks, then `records`) and how far the walk has come (`records`, `rows`, `rows_total`). A run
//! stopped by a graceful shutdown goes back to the queue and walks again from the start: the
//! check keeps nothing between runs.

use std::time::{Duration, Instant};

use super::{JobContext, JobSignal, RunOutcome};
use crate::service::backup::{self, BackupError};
use crate::store::JobRow;

/// How often the walk's progress is saved on the job (every report is announced).
const PROGRESS_SAVE_EVERY: Duration = Duration::from_secs(2);

/// Runs the check until it finishes or `signal` stops it.
pub fn run(ctx: &JobContext, job: &JobRow, signal: &JobSignal) -> RunOutcome {
    let mut last_save: Option<Instant> = None;
    let mut last = serde_json::Value::Null;
    let checked = backup::verify_data_dir_until(
        &*ctx.stores.blobs,
        &ctx.data_dir,
        &mut |progress| {
            let save = last_save.is_none_or(|at| at.elapsed() >= PROGRESS_SAVE_EVERY);
            if save {
                last_save = Some(Instant::now());
            }
            last = serde_json::to_value(progress).unwrap_or_default();
            ctx.progress(job, last.clone(), save);
        },
        &|| signal.should_stop(),
    );
    if checked.is_ok() {
        // The walk's last figures, which the throttle may have left unsaved.
        ctx.progress(job, last, true);
    }
    match checked {
        Ok(report) => match serde_json::to_value(&report) {
            Ok(result) => RunOutcome::Done(result),
            Err(e) => RunOutcome::Failed(format!("the report cannot be stored: {e}")),
        },
        Err(BackupError::Stopped) => signal.stopped_outcome(),
        Err(e) => RunOutcome::Failed(e.to_string()),
    }
}
