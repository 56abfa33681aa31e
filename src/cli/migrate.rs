//! `doodlebox migrate --from DATA_DIR --to postgres://…` and `doodlebox verify
//! --database-url …`: the command-line side of [`crate::service::migrate`].
//!
//! Migrate refuses while a server answers on the data directory (and the service refuses
//! while any process holds its stroke store), draws a progress bar on stderr in the import's
//! style while it copies and while it compares, then prints one line per table with its
//! counts and hash. Both commands exit non-zero when the database is not whole.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::cli::client::RunningServer;
use crate::cli::MigrateArgs;
use crate::service::migrate::{self, MigrateOptions};
use crate::store::postgres::copy::{Phase, Progress};

/// How often the progress bar is redrawn.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Width of the progress bar, in characters.
const BAR_WIDTH: usize = 30;

/// `doodlebox migrate`.
pub fn migrate(args: &MigrateArgs) -> anyhow::Result<()> {
    if let Some(server) = RunningServer::find(&args.from) {
        bail!(
            "a server (pid {}) runs on {}: stop it first (migrate copies a data directory at rest)",
            server.pid,
            args.from.display()
        );
    }
    println!(
        "migrating {} into {}",
        args.from.display(),
        migrate::redacted(&args.to)
    );
    let started = Instant::now();
    let mut bar = Bar::new();
    let mut batches = 0u64;
    let options = MigrateOptions {
        from: args.from.clone(),
        to: args.to.clone(),
        batch: args.batch,
    };
    let report = migrate::migrate(&options, &mut |progress| {
        bar.draw(progress);
        if progress.phase == Phase::Copy {
            batches += 1;
            if args.pause_after == Some(batches) {
                pause(batches);
            }
        }
    })?;
    bar.finish();
    if report.reconciled > 0 {
        println!(
            "rebuilt {} rows in {} for stroke records that had none",
            report.reconciled,
            args.from.display()
        );
    }
    if !report.artifacts.is_empty() {
        println!(
            "model files stored in the database: {}",
            report.artifacts.join(", ")
        );
    }
    if !report.missing_artifacts.is_empty() {
        println!(
            "warning: no model files in {} for {} (their rows are copied; the appliance could not load them either)",
            args.from.display(),
            report.missing_artifacts.join(", ")
        );
    }
    let rows: u64 = report.copied.rows.iter().map(|(_, n)| n).sum();
    println!(
        "copied {} stroke records and {rows} rows ({} not in the database before) in {:.1} s",
        report.copied.records,
        report.copied.inserted,
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:<18} {:>10} {:>10} {:>8}  sha256 (appliance / database)",
        "table", "appliance", "database", "extra"
    );
    for check in &report.checks {
        println!(
            "{:<18} {:>10} {:>10} {:>8}  {} / {}  {}",
            check.table,
            check.source_rows,
            check.target_rows,
            check.extra_in_target,
            &check.source_hash[..16],
            &check.target_hash[..16],
            if check.is_ok() { "ok" } else { "DIFFERENT" }
        );
    }
    if !report.is_ok() {
        let different: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| !c.is_ok())
            .map(|c| c.table.as_str())
            .collect();
        bail!(
            "the database does not hold the appliance's data unchanged in: {} (it held other rows with the same keys?)",
            different.join(", ")
        );
    }
    println!(
        "ok: the database holds every record and row of {}, unchanged ({:.1} s in all)",
        args.from.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `doodlebox verify --database-url URL`.
pub fn verify_database(url: &str) -> anyhow::Result<()> {
    println!(
        "verifying the PostgreSQL database {}",
        migrate::redacted(url)
    );
    let check = migrate::verify_database(url)?;
    println!(
        "schema version {}; drawing rows: {}, stroke records: {} ({} newer than the newest row)",
        check.schema_version, check.rows, check.records, check.records_after_last_row
    );
    println!(
        "active model: {}",
        if check.active_models.is_empty() {
            "none".to_owned()
        } else {
            check.active_models.join(", ")
        }
    );
    let problems = check.problems();
    if problems.is_empty() {
        println!("ok: no problems found");
        return Ok(());
    }
    for problem in &problems {
        println!("PROBLEM: {problem}");
    }
    bail!(
        "verification found {} problem(s) in the database",
        problems.len()
    )
}

/// Fault tests only: stop after a committed batch and wait for the test's `kill -9`.
fn pause(batches: u64) -> ! {
    println!("paused after {batches} batches");
    let _ = std::io::stdout().flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A one-line progress bar on stderr by rows and records, drawn only on a terminal.
struct Bar {
    started: Instant,
    enabled: bool,
    drawn_at: Option<Instant>,
    /// Whether anything was drawn (so `finish` ends the line).
    drawn: bool,
    /// The phase drawn last: the next phase starts a line and a rate of its own.
    phase: Phase,
}

impl Bar {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            enabled: std::io::stderr().is_terminal(),
            drawn_at: None,
            drawn: false,
            phase: Phase::Copy,
        }
    }

    fn draw(&mut self, progress: &Progress<'_>) {
        if progress.phase != self.phase {
            self.finish();
            self.phase = progress.phase;
            self.started = Instant::now();
            self.drawn = false;
            self.drawn_at = None;
        }
        if !self.enabled || self.drawn_at.is_some_and(|at| at.elapsed() < REDRAW_EVERY) {
            return;
        }
        self.drawn_at = Some(Instant::now());
        self.drawn = true;
        let fraction = if progress.total == 0 {
            1.0
        } else {
            (progress.done as f64 / progress.total as f64).min(1.0)
        };
        let filled = (fraction * BAR_WIDTH as f64) as usize;
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let phase = match progress.phase {
            Phase::Copy => "copy",
            Phase::Check => "check",
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{phase} {:<18} [{}{}] {:>3.0}% {}/{} {:>7.0} rows/s",
            progress.table,
            "#".repeat(filled),
            "-".repeat(BAR_WIDTH - filled),
            fraction * 100.0,
            progress.done,
            progress.total,
            progress.done as f64 / seconds
        );
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.drawn {
            eprintln!();
        }
    }
}
