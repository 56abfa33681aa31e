//! `doodlebox worker --database-url …`: a process that runs training jobs from the cluster's
//! PostgreSQL database and serves nothing, so that training can run on GPU hosts apart from
//! the replicas (started with `serve --no-jobs`).
//!
//! It is the job queue's scheduler without the server around it: it claims queued training
//! jobs with `FOR UPDATE SKIP LOCKED`, stamps a heartbeat on the ones it runs and takes over
//! jobs whose worker stopped stamping (see `jobs::HEARTBEAT_EVERY`), and tells every replica
//! of its jobs' progress over the change channel. Training runs on `--device`; model files
//! go into the database (and this worker's `--data-dir`), so any replica can serve them.
//! Ctrl-C or SIGTERM stops it; the job it runs goes back to the queue, uncharged.

use std::sync::Arc;

use anyhow::Context;

use super::WorkerArgs;
use crate::device::device_name;
use crate::jobs::{JobContext, Scheduler};
use crate::store::{JobKind, Stores};

/// The job kinds a worker runs: training only. Imports need the server's group-commit writer
/// and rescoring the served model, so replicas without `--no-jobs` run those.
const WORKER_KINDS: [JobKind; 1] = [JobKind::Train];

/// Runs jobs until a stop signal.
pub fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let device = args.device.resolve()?;
    std::fs::create_dir_all(&args.data.data_dir)
        .with_context(|| format!("creating {}", args.data.data_dir.display()))?;
    let stores = Arc::new(
        Stores::open_postgres(&args.database_url).context("opening the cluster's database")?,
    );
    let context = JobContext::new(stores.clone(), &args.data.data_dir, None)
        .on_device(device)
        .claiming(&WORKER_KINDS);
    if let Some(feed) = stores.feed.clone() {
        crate::service::cluster::relay_jobs(feed, &context.relay)?;
    }
    let scheduler = Scheduler::start(context)?;
    println!(
        "worker running training jobs on {} (pid {})",
        device_name(device),
        std::process::id()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    runtime.block_on(crate::app::shutdown_signal());
    println!("stopping: the running job goes back to the queue");
    scheduler.shutdown();
    Ok(())
}
