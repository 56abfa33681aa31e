//! `doodlebox backup DEST`, `doodlebox restore SRC` and `doodlebox verify`: the command-line
//! side of [`crate::service::backup`].
//!
//! The stroke store admits one process, so while a server holds the data directory, backup
//! and verify ask it over HTTP (`POST /api/v1/admin/backup` and `POST /api/v1/admin/verify`
//! queue a job, which the command follows to its end), found through its control file
//! ([`crate::control`]); otherwise they open the stores themselves. Restore refuses to run while a server answers on the target directory.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::cli::client::RunningServer;
use crate::service::backup::{self, BackupManifest, VerifyReport};
use crate::store::{metadata_path, SledBlobStore};

/// How long a command waits for the running server to finish a backup or a verification.
const WORK_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// How often `doodlebox verify` says how far a running server's check has come.
const VERIFY_PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// `doodlebox backup DEST`.
pub fn backup(data_dir: &Path, dest: &Path) -> anyhow::Result<()> {
    let dest = std::path::absolute(dest).context("resolving the destination")?;
    let manifest: BackupManifest = match RunningServer::find(data_dir) {
        Some(server) => {
            // Refused here, before the server does any work.
            backup::check_destination(&dest)?;
            println!(
                "a server runs on {} (pid {}); asking it to write the backup",
                data_dir.display(),
                server.pid
            );
            // The server writes only into its own backup directory; this command, which
            // runs with the user's rights, then moves the finished backup to DEST.
            let job = server.post_json(
                "/api/v1/admin/backup",
                Some(serde_json::json!({})),
                WORK_TIMEOUT,
            )?;
            // Answers name the backup's folder; the control file says where the folders are.
            let root = server.backup_root.clone().context(
                "the running server is older than this command: stop it and run the backup offline",
            )?;
            let written = job["config"]["name"]
                .as_str()
                .map(|name| root.join(name))
                .context("the server's answer names no backup folder")?;
            let result = server.follow_job(&job, WORK_TIMEOUT)?;
            let manifest =
                serde_json::from_value(result).context("reading the backup job's manifest")?;
            move_backup(&written, &dest)?;
            manifest
        }
        None => {
            if !metadata_path(data_dir).is_file() {
                bail!("{} holds no Doodlebox data", data_dir.display());
            }
            let blobs = open_strokes(data_dir)?;
            backup::backup(&blobs, data_dir, &dest, &mut |line| println!("{line}"))?
        }
    };
    println!(
        "backup written to {}: {} drawings, {} stroke records, {} models, {} bytes in {} files, {:.1} s",
        dest.display(),
        manifest.drawings,
        manifest.records,
        manifest.models.len(),
        manifest.bytes,
        manifest.files.len(),
        manifest.seconds
    );
    if !manifest.missing_models.is_empty() {
        println!(
            "warning: the files of {} were missing and are not in the backup",
            manifest.missing_models.join(", ")
        );
    }
    Ok(())
}

/// Moves a finished backup from the server's backup directory to `dest` (new or empty):
/// a rename on the same file system, else a copy of every file, synced, then the original
/// removed. The manifest is copied last, so an interrupted copy is not a finished backup.
fn move_backup(from: &Path, dest: &Path) -> anyhow::Result<()> {
    if std::fs::rename(from, dest).is_ok() {
        return Ok(());
    }
    copy_tree(from, dest, true)
        .and_then(|()| copy_tree(from, dest, false))
        .with_context(|| {
            format!(
                "copying the backup from {} to {}",
                from.display(),
                dest.display()
            )
        })?;
    std::fs::remove_dir_all(from)
        .with_context(|| format!("removing {} after copying it", from.display()))
}

/// Copies the files under `from` into `to`: all but the manifest when `body`, else only
/// the manifest.
fn copy_tree(from: &Path, to: &Path, body: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            if body {
                copy_tree(&entry.path(), &target, true)?;
            }
        } else if (entry.file_name() == backup::MANIFEST_FILE) != body {
            std::fs::copy(entry.path(), &target)?;
            std::fs::File::open(&target)?.sync_all()?;
        }
    }
    Ok(())
}

/// `doodlebox restore SRC`.
pub fn restore(src: &Path, data_dir: &Path, force: bool) -> anyhow::Result<()> {
    if let Some(server) = RunningServer::find(data_dir) {
        bail!(
            "a Doodlebox server (pid {}) is running on {} at {}; stop it before restoring",
            server.pid,
            data_dir.display(),
            server.url
        );
    }
    let report = backup::restore(src, data_dir, force, &mut |line| println!("{line}"))?;
    println!(
        "restored {} into {}: {} drawings, {} stroke records, models: {}",
        src.display(),
        data_dir.display(),
        report.drawings,
        report.records,
        if report.models.is_empty() {
            "none".to_owned()
        } else {
            report.models.join(", ")
        }
    );
    if let Some(aside) = &report.moved_aside {
        println!("the previous data is kept in {}", aside.display());
    }
    match &report.reconcile {
        Some(r) => println!(
            "reconciled: {} rows rebuilt, {} unreadable records, {} rows without strokes",
            r.rebuilt,
            r.unreadable.len(),
            r.missing_strokes.len()
        ),
        None => println!("the stores will be reconciled when the server next starts"),
    }
    Ok(())
}

/// `doodlebox verify`: prints the report; an error (non-zero exit) when anything is wrong.
pub fn verify(dir: &Path) -> anyhow::Result<()> {
    let report: VerifyReport = match RunningServer::find(dir) {
        Some(server) => {
            println!(
                "a Doodlebox server (pid {}) holds {}: it checks its stores as a job",
                server.pid,
                dir.display()
            );
            let job = server.post_json("/api/v1/admin/verify", None, WORK_TIMEOUT)?;
            let mut last_shown: Option<std::time::Instant> = None;
            let result = server.follow_job_with(&job, WORK_TIMEOUT, &mut |progress| {
                if last_shown.is_some_and(|at| at.elapsed() < VERIFY_PROGRESS_EVERY) {
                    return;
                }
                last_shown = Some(std::time::Instant::now());
                if progress["phase"] == "database" {
                    println!("checking the database's integrity");
                } else {
                    println!(
                        "checked {} of {} drawing rows ({} stroke records)",
                        progress["rows"], progress["rows_total"], progress["records"]
                    );
                }
            })?;
            let mut report: VerifyReport =
                serde_json::from_value(result).context("reading the server's report")?;
            report.path = dir.display().to_string();
            report
        }
        None => backup::verify_dir(dir)?,
    };
    println!("verifying the {} {}", report.kind, report.path);
    if report.files_checked > 0 {
        println!(
            "files checked against backup.json: {}",
            report.files_checked
        );
    }
    println!(
        "drawing rows: {}, stroke records: {} ({} newer than the newest row)",
        report.rows, report.records, report.records_after_last_row
    );
    println!(
        "models checked: {}",
        if report.models_checked.is_empty() {
            "none".to_owned()
        } else {
            report.models_checked.join(", ")
        }
    );
    if report.is_ok() {
        println!("ok: no problems found");
        return Ok(());
    }
    for problem in &report.problems {
        println!("PROBLEM: {problem}");
    }
    bail!(
        "verification found {} problem(s) in {}",
        report.problems.len(),
        report.path
    )
}

fn open_strokes(data_dir: &Path) -> anyhow::Result<SledBlobStore> {
    SledBlobStore::open(&crate::data_dir::DataDir::new(data_dir).strokes()).with_context(|| {
        format!(
            "opening the stroke store in {} (is a server running on it without a control file?)",
            data_dir.display()
        )
    })
}
