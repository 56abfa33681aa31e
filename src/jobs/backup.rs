//! The `backup` job kind: writes a backup of the data directory into the destination its
//! configuration names (see [`crate::service::backup`]) and stores the backup's manifest as
//! the job's result.
//!
//! Once the backup has taken its destination it records so in the job's progress
//! (`"destination_ready": true`). A run that finds that mark (after a crash or a graceful
//! stop) first looks for a finished backup there (the process stopped between the manifest
//! and the job's completion: that manifest is the result), else clears what the unfinished
//! try wrote and starts again; a destination that holds anything else fails the job with
//! that reason. A cancelled or failed backup removes what it wrote.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{JobContext, JobSignal, RunOutcome};
use crate::service::backup::{self, BackupError, DESTINATION_READY};
use crate::store::JobRow;

/// What a backup job is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupJob {
    /// Absolute path of a new or empty directory on the server's machine.
    pub dest: PathBuf,
}

impl BackupJob {
    /// Checks the destination now (absolute, new or empty), so that a bad one is refused
    /// when the backup is asked for, not later when the job runs.
    pub fn parse(dest: PathBuf) -> Result<Self, BackupError> {
        backup::check_destination(&dest)?;
        Ok(Self { dest })
    }

    /// The configuration stored with the job.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"dest": self.dest})
    }

    /// The configuration as answers show it: the backup's folder name, never the path on
    /// the server's disk (which says where the data lives to whoever reads the answer).
    pub fn public_json(stored: &serde_json::Value) -> serde_json::Value {
        let name = serde_json::from_value::<Self>(stored.clone())
            .ok()
            .and_then(|job| {
                job.dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            });
        serde_json::json!({ "name": name })
    }
}

/// Runs a backup job until it finishes or `signal` stops it.
pub fn run(ctx: &JobContext, job: &JobRow, signal: &JobSignal) -> RunOutcome {
    let config: BackupJob = match serde_json::from_value(job.config.clone()) {
        Ok(config) => config,
        Err(e) => return RunOutcome::Failed(format!("stored configuration is unreadable: {e}")),
    };
    let dest = config.dest;
    let mut ready = job
        .progress
        .as_ref()
        .is_some_and(|p| p["destination_ready"] == true);
    if ready {
        if let Ok(manifest) = backup::read_manifest(&dest) {
            return done(&manifest);
        }
        if let Err(e) = backup::clear_unfinished(&dest) {
            return RunOutcome::Failed(format!("cannot start the interrupted backup again: {e}"));
        }
        tracing::info!(job = job.id, dest = %dest.display(), "starting an interrupted backup again");
    }
    let mut on_line = |line: &str| {
        tracing::info!(job = job.id, %line, "backup");
        ready |= line == DESTINATION_READY;
        let progress = serde_json::json!({"destination_ready": ready, "line": line});
        ctx.progress(job, progress, true);
    };
    let written = backup::backup_until(
        &*ctx.stores.blobs,
        &ctx.data_dir,
        &dest,
        &mut on_line,
        &|| signal.should_stop(),
    );
    match written {
        Ok(manifest) => done(&manifest),
        // Requeued: the next run clears what this one wrote.
        Err(BackupError::Stopped) if !signal.is_cancelled() => RunOutcome::Interrupted,
        Err(e) => {
            let outcome = match e {
                BackupError::Stopped => RunOutcome::Cancelled,
                e => RunOutcome::Failed(e.to_string()),
            };
            if ready {
                remove_unfinished(&dest);
            }
            outcome
        }
    }
}

fn done(manifest: &backup::BackupManifest) -> RunOutcome {
    match serde_json::to_value(manifest) {
        Ok(result) => RunOutcome::Done(result),
        Err(e) => RunOutcome::Failed(format!("the manifest cannot be stored: {e}")),
    }
}

/// Leaves the destination as it was before the backup: what it wrote goes, and the directory
/// too when nothing else is in it.
fn remove_unfinished(dest: &Path) {
    match backup::clear_unfinished(dest) {
        Ok(()) => {
            let _ = std::fs::remove_dir(dest);
        }
        Err(e) => {
            tracing::warn!(dest = %dest.display(), error = %e, "could not remove an unfinished backup")
        }
    }
}
