//! `doodlebox train` and `doodlebox models list`: the training queue's code path, run in the
//! foreground with a progress line, for scripts and for people without a browser.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::cli::TrainArgs;
use crate::jobs::{self, JobConfig, JobConfigInput, JobContext};
use crate::service::models::ManifestScores;
use crate::store::{JobKind, JobStatus, Stores};

/// Width of the progress bar, in characters.
const BAR_WIDTH: usize = 30;

fn open_stores(data_dir: &Path) -> anyhow::Result<Arc<Stores>> {
    Stores::open(data_dir).map(Arc::new).with_context(|| {
        format!(
            "cannot open {} (if the server is running, start training from the admin API: \
             POST /api/v1/admin/training-jobs)",
            data_dir.display()
        )
    })
}

/// Queues a job with these settings and runs the queue until it has finished.
pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    let config = JobConfig::parse(JobConfigInput {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.learning_rate,
        image_size: args.image_size,
        augmentation: Some(!args.no_augmentation),
        seed: args.seed,
        shapes: args.shapes,
        min_quality: args.min_quality,
        exclude_flagged: Some(!args.include_flagged),
        source: None,
        per_class_cap: args.per_class_cap,
        created_from: args.created_from,
        created_to: args.created_to,
        max_steps_per_epoch: args.max_steps_per_epoch,
        architecture: args.architecture,
    })?;
    let device = args.device.resolve()?;
    eprintln!("training on {}", crate::device::device_name(device));
    let stores = open_stores(&args.data.data_dir)?;
    let context = JobContext::new(stores.clone(), &args.data.data_dir, None).on_device(device);
    stores.jobs.recover_interrupted_jobs(jobs::MAX_ATTEMPTS)?;
    let (job, existed) =
        stores
            .jobs
            .enqueue_job(JobKind::Train, &config.to_json(), &config.hash())?;
    eprintln!(
        "training job {}{}",
        job.id,
        if existed {
            " (already queued; running it)"
        } else {
            ""
        }
    );
    let mut events = context.events.subscribe();
    let printer = std::thread::spawn(move || {
        while let Ok(event) = events.blocking_recv() {
            if let Some(progress) = &event.progress {
                print_progress(progress);
            }
        }
    });
    loop {
        // Training only: other kinds wait for the server (an import needs its writer).
        let ran = jobs::tick(&context, &[JobKind::Train])?;
        let current = stores.jobs.job(job.id)?.context("the job vanished")?;
        if current.status.is_finished() {
            drop(context);
            let _ = printer.join();
            eprintln!();
            return match current.status {
                JobStatus::Completed => {
                    let metrics = current.metrics.clone().unwrap_or_default();
                    let scores = ManifestScores::read(&serde_json::json!({ "metrics": metrics }));
                    println!(
                        "model {} trained: validation accuracy {}",
                        current.model_version.unwrap_or_default(),
                        scores.accuracy_text()
                    );
                    Ok(())
                }
                other => bail!(
                    "job {} {:?}: {}",
                    job.id,
                    other,
                    current.error.unwrap_or_default()
                ),
            };
        }
        if !ran {
            // Waiting for a retry time: the job is pending.
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
}

fn print_progress(p: &serde_json::Value) {
    let (epoch, epochs) = (
        p["epoch"].as_u64().unwrap_or(0),
        p["epochs"].as_u64().unwrap_or(1).max(1),
    );
    let (step, steps) = (
        p["step"].as_u64().unwrap_or(0),
        p["steps_per_epoch"].as_u64().unwrap_or(1).max(1),
    );
    let done = ((epoch.saturating_sub(1)) as f64 + step as f64 / steps as f64) / epochs as f64;
    let filled = ((done * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r epoch {epoch}/{epochs} [{}{}] {:>3.0}%  loss {:.3}  acc {:.3}  {:.0} samples/s  ETA {:.0}s   ",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH - filled),
        done * 100.0,
        p["loss"].as_f64().unwrap_or(0.0),
        p["accuracy"].as_f64().unwrap_or(0.0),
        p["samples_per_sec"].as_f64().unwrap_or(0.0),
        p["eta_secs"].as_f64().unwrap_or(0.0),
    );
    if !p["epoch_done"].is_null() {
        // One line per epoch that stays: what the device did against what the input
        // pipeline could deliver (benchmarks read it).
        let _ = writeln!(
            err,
            "\nepoch {epoch}: {:.0} samples/s trained, {:.0} samples/s read and rasterized, \
             trainer waited {:.1} % of the time for batches",
            p["samples_per_sec"].as_f64().unwrap_or(0.0),
            p["raster_samples_per_sec"].as_f64().unwrap_or(0.0),
            p["input_wait_share"].as_f64().unwrap_or(0.0) * 100.0,
        );
    }
    let _ = err.flush();
}
