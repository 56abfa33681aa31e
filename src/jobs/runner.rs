//! The `train` job kind: snapshot the dataset (see [`super::train_data`]), train (resuming from the job's last
//! checkpoint), write the model artifact, register the model version. Also home of what
//! every kind's run shares: [`JobContext`] and [`RunOutcome`].
//!
//! Checkpoints are files in the job's scratch directory. In cluster mode each one also goes
//! to the database after its epoch, and a run that finds the database's checkpoint ahead of
//! its own directory's (the job was taken over from another host) writes it there first,
//! so the run resumes after the last epoch any process finished; its progress then says
//! `resumed_from_epoch`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tch::Device;
use tokio::sync::broadcast;

use super::train_config::JobConfig;
use super::train_data::{self, SnapshotError};
use super::{JobEvent, JobSignal};
use crate::data_dir::DataDir;
use crate::device::device_name;
use crate::ml::artifact;
use crate::ml::checkpoint::CheckpointFiles;
use crate::ml::train::{self, Control, Hooks, Progress, TrainError};
use crate::service::artifacts::Artifacts;
use crate::service::quality::QualityService;
use crate::store::{
    Backend, Ingest, JobKind, JobRow, JobStatus, StoreError, StoredCheckpoint, Stores,
};

/// How often progress is written to the database between epochs.
const PROGRESS_SAVE_EVERY: Duration = Duration::from_secs(2);

/// Where a job reads and writes.
#[derive(Clone)]
pub struct JobContext {
    pub stores: Arc<Stores>,
    /// Model artifacts: `<models>/<version>/`.
    pub models_dir: PathBuf,
    /// Per-job scratch space: checkpoints and the dataset id list, `<work>/job-<id>/`.
    pub work_dir: PathBuf,
    pub events: broadcast::Sender<JobEvent>,
    /// Set on shutdown: a running job stops at its next step and is requeued.
    pub stopping: Arc<AtomicBool>,
    /// The data directory (a backup copies it; uploads wait under it).
    pub data_dir: PathBuf,
    /// The group-commit writer imports go through; `None` outside the server (the CLI's
    /// foreground training), where import jobs are not run.
    pub ingest: Option<Arc<Ingest>>,
    /// The quality service whose walk `rescore` jobs run; set by the server once the service
    /// has started (before the scheduler does), empty elsewhere.
    pub quality: Arc<OnceLock<Arc<QualityService>>>,
    /// Where training runs (`--device`, resolved at start).
    pub device: Device,
    /// The job kinds this process claims: every kind in a server, none with `serve
    /// --no-jobs`, training only in a `doodlebox worker`.
    pub kinds: Vec<JobKind>,
    /// Where every job change announced here also goes: the cluster-wide channel, set once
    /// in cluster mode (`service::cluster`), so progress shows on every replica.
    pub relay: Arc<OnceLock<JobRelay>>,
}

/// Hands a job change to the other replicas.
pub type JobRelay = Box<dyn Fn(&JobEvent) + Send + Sync>;

impl JobContext {
    /// The context for a data directory: models under `<data>/models`, job scratch space
    /// under `<data>/jobs`.
    pub fn new(stores: Arc<Stores>, data_dir: &Path, ingest: Option<Arc<Ingest>>) -> Self {
        let layout = DataDir::new(data_dir);
        Self {
            stores,
            models_dir: layout.models(),
            work_dir: layout.jobs(),
            device: Device::Cpu,
            events: super::event_channel(),
            stopping: super::not_stopping(),
            data_dir: data_dir.to_owned(),
            ingest,
            quality: Arc::new(OnceLock::new()),
            relay: Arc::new(OnceLock::new()),
            kinds: JobKind::ALL.to_vec(),
        }
    }

    /// This context, claiming only jobs of `kinds`.
    pub fn claiming(self, kinds: &[JobKind]) -> Self {
        Self {
            kinds: kinds.to_vec(),
            ..self
        }
    }

    /// This context, training on `device`.
    pub fn on_device(self, device: Device) -> Self {
        Self { device, ..self }
    }

    /// Tells live listeners that `job` changed.
    pub fn announce(&self, job: &JobRow, status: JobStatus, progress: Option<serde_json::Value>) {
        let event = JobEvent {
            id: job.id,
            kind: job.kind,
            status,
            progress,
        };
        if let Some(relay) = self.relay.get() {
            relay(&event);
        }
        let _ = self.events.send(event);
    }

    /// Saves a job's progress (at the caller's pace) and tells live listeners. `false` when
    /// the save found the job taken over by another process (cluster mode): then nothing is
    /// saved or told, and the run should stop.
    pub fn progress(&self, job: &JobRow, progress: serde_json::Value, save: bool) -> bool {
        if save {
            match self.stores.jobs.record_progress(job.lease(), &progress) {
                Ok(()) => {}
                Err(StoreError::JobTakenOver(_)) => return false,
                Err(e) => tracing::warn!(job = job.id, error = %e, "could not save job progress"),
            }
        }
        self.announce(job, JobStatus::Running, Some(progress));
        true
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// A training job registered a model.
    Completed {
        version: String,
        metrics: serde_json::Value,
    },
    /// A backup, rescore or import finished; what it produced is stored as the result.
    Done(serde_json::Value),
    Cancelled,
    /// The process is shutting down; the job goes back to the queue.
    Interrupted,
    /// Cannot succeed as configured.
    Failed(String),
    /// May succeed later (I/O trouble).
    Retry(String),
    /// Another process took the job over while this run was frozen or cut off (cluster
    /// mode): the run stopped, and nothing of it is recorded.
    TakenOver,
}

/// Runs a training job until it finishes or `signal` stops it.
pub fn run_job(ctx: &JobContext, job: &JobRow, signal: &JobSignal) -> RunOutcome {
    let config: JobConfig = match serde_json::from_value(job.config.clone()) {
        Ok(config) => config,
        Err(e) => return RunOutcome::Failed(format!("stored configuration is unreadable: {e}")),
    };
    let dir = ctx.work_dir.join(format!("job-{}", job.id));
    let data = match train_data::snapshot(ctx, job.id, &config, &dir) {
        Ok(data) => data,
        Err(SnapshotError::Store(e)) => return RunOutcome::Retry(e.to_string()),
        Err(SnapshotError::Unusable(reason)) => return RunOutcome::Failed(reason),
    };
    let checkpoints = dir.join("checkpoint");
    let resumed_from = match bring_checkpoint(ctx, job, &checkpoints) {
        Ok(epochs) => epochs,
        Err(e) => return RunOutcome::Retry(e.to_string()),
    };
    // What the run really trains: a small collection's epochs, batch size and recipe differ
    // from the request's (see `JobConfig::train_config_for`), and the job shows it while it
    // runs, as the model's manifest does afterwards.
    let train_config = config.train_config_for(data.catalog.len());
    let training = serde_json::to_value(&train_config).unwrap_or_default();
    let mut last_save = Instant::now();
    let mut on_progress = |p: &Progress| -> Control {
        let mut progress = serde_json::to_value(p).unwrap_or_default();
        progress["device"] = device_name(ctx.device).into();
        progress["resumed_from_epoch"] = resumed_from.into();
        progress["training"] = training.clone();
        let save = p.epoch_done.is_some() || last_save.elapsed() >= PROGRESS_SAVE_EVERY;
        if save {
            last_save = Instant::now();
        }
        // The checkpoint first: progress that shows an epoch done means a takeover resumes
        // after it.
        let ours = (p.epoch_done.is_none() || keep_checkpoint(ctx, job, &checkpoints))
            && ctx.progress(job, progress, save);
        if !ours {
            signal.mark_taken_over();
        }
        if signal.should_stop() {
            return Control::Stop;
        }
        Control::Continue
    };
    let hooks = Hooks {
        progress: Some(&mut on_progress),
        checkpoint_dir: Some(&checkpoints),
        device: Some(ctx.device),
        ..Hooks::default()
    };
    let trained = train::train_from(data.catalog, data.source.as_ref(), &train_config, hooks);
    if signal.is_taken_over() {
        // The last epoch's callback may have found the job gone, and that does not stop a
        // run that has finished its epochs.
        return RunOutcome::TakenOver;
    }
    match trained {
        Ok(model) if !still_ours(ctx, job) => {
            drop(model);
            RunOutcome::TakenOver
        }
        Ok(model) => match register(ctx, job.id, &model) {
            Ok((version, metrics)) => RunOutcome::Completed { version, metrics },
            Err(e) => RunOutcome::Retry(e),
        },
        Err(TrainError::Cancelled { .. }) => signal.stopped_outcome(),
        Err(e @ (TrainError::Checkpoint(_) | TrainError::Torch(_))) => {
            RunOutcome::Retry(e.to_string())
        }
        Err(TrainError::Source(e)) if e.transient => RunOutcome::Retry(e.to_string()),
        Err(e) => RunOutcome::Failed(e.to_string()),
    }
}

/// Makes the job's scratch directory hold its latest checkpoint: in cluster mode, the
/// database's when it is ahead of the directory's (the job was taken over from another host,
/// or this one lost its disk). Answers the epochs the run resumes after (0: from the start).
/// A stored checkpoint that cannot be used (its hash, a manifest that makes no sense) is
/// passed over with a warning: the run starts from the directory's, or afresh.
fn bring_checkpoint(ctx: &JobContext, job: &JobRow, dir: &Path) -> Result<usize, StoreError> {
    let local = CheckpointFiles::epochs_in(dir).unwrap_or_else(|e| {
        tracing::warn!(job = job.id, error = %e, "the job's checkpoint cannot be read");
        0
    });
    if ctx.stores.backend != Backend::Postgres {
        return Ok(local);
    }
    let Some(stored) = ctx.stores.jobs.job_checkpoint(job.id)? else {
        return Ok(local);
    };
    if stored.epochs as usize <= local {
        return Ok(local);
    }
    let files = CheckpointFiles {
        epochs: stored.epochs as usize,
        manifest: stored.manifest,
        weights: stored.weights,
    };
    match files.restore(dir) {
        Ok(()) => {
            tracing::info!(
                job = job.id,
                epochs = files.epochs,
                "resuming from the checkpoint in the database"
            );
            Ok(files.epochs)
        }
        Err(e) => {
            tracing::warn!(job = job.id, error = %e, "the database's checkpoint is unusable");
            Ok(local)
        }
    }
}

/// Cluster mode: stores the checkpoint the trainer has just written in the database, where a
/// process that takes the job over finds it. `false` when the job is no longer this run's.
/// Failing to store it otherwise only costs a takeover an epoch, so it is a warning.
fn keep_checkpoint(ctx: &JobContext, job: &JobRow, dir: &Path) -> bool {
    if ctx.stores.backend != Backend::Postgres {
        return true;
    }
    let files = match CheckpointFiles::read(dir) {
        Ok(Some(files)) => files,
        Ok(None) => return true,
        Err(e) => {
            warn_unkept(job, &e);
            return true;
        }
    };
    let stored = StoredCheckpoint {
        epochs: files.epochs as i64,
        manifest: files.manifest,
        weights: files.weights,
    };
    match ctx.stores.jobs.save_checkpoint(job.lease(), &stored) {
        Ok(()) => true,
        Err(StoreError::JobTakenOver(_)) => false,
        Err(e) => {
            warn_unkept(job, &e);
            true
        }
    }
}

fn warn_unkept(job: &JobRow, error: &dyn std::fmt::Display) {
    tracing::warn!(job = job.id, error = %error, "could not store the checkpoint in the database");
}

/// Whether the job still runs under this run's claim, stamping its heartbeat if so: asked
/// before a model is registered, so that a worker frozen past the takeover and woken at the
/// end of its run registers nothing. The fresh stamp keeps any other process from taking the
/// job over for [`super::TAKEOVER_AFTER`], longer than registering takes. Always true in the
/// embedded store; a database error answers true (completing checks the claim again).
fn still_ours(ctx: &JobContext, job: &JobRow) -> bool {
    match ctx.stores.jobs.heartbeat_jobs(&[job.lease()]) {
        Ok(beat) => !beat.lost.contains(&job.id),
        Err(_) => true,
    }
}

/// Writes the artifact under the next version, stores its files in the model store (the
/// database, in cluster mode) and registers it.
fn register(
    ctx: &JobContext,
    job_id: i64,
    model: &train::TrainedModel,
) -> Result<(String, serde_json::Value), String> {
    let version = ctx
        .stores
        .models
        .next_model_version()
        .map_err(|e| e.to_string())?;
    let dir = ctx.models_dir.join(&version);
    let manifest = artifact::write(&dir, model).map_err(|e| e.to_string())?;
    let manifest_json = serde_json::to_value(&manifest).map_err(|e| e.to_string())?;
    // The files first: a replica that sees the row can always fetch them.
    Artifacts::new(ctx.stores.models.clone(), ctx.models_dir.clone())
        .publish(&version, &dir)
        .map_err(|e| e.to_string())?;
    ctx.stores
        .models
        .insert_model(
            &version,
            Some(job_id),
            &dir.to_string_lossy(),
            &manifest_json,
        )
        .map_err(|e| e.to_string())?;
    let metrics = serde_json::to_value(&manifest.metrics).unwrap_or_default();
    Ok((version, metrics))
}
