//! Scale (issue 18 item 2): one data directory of many synthetic drawings (the run
//! is 10,000,000), built once through the real import path and then measured in stages
//! against the real release binary, started as a child process on a free port. Each stage
//! prints its figures as rows of one markdown table (`| stage | measure | figure |`).
//!
//! Stages (`DOODLEBOX_BENCH_SCALE_STAGES`, comma-separated, in this order):
//! - `build`: builds the directory (or reuses it: see `benches/common/synthetic_dir.rs`);
//!   import rate and size on disk.
//! - `serve`: starts the server and times, over HTTP, p50/p99 of N calls each: the review
//!   list's first page, a filtered page (one shape, flagged), a page deep in the cursor
//!   chain, a quality range, the dashboard's stats, the quality histogram and the players.
//! - `startup`: time from spawn to the first `200` of `/readyz`, after a clean stop
//!   (SIGTERM) and after `kill -9`, with what the start-up reconciliation reported.
//! - `backup`: an online backup through the API (a job, followed to its end), then
//!   `doodlebox verify` of the backup and the `verify` job on the live directory. The
//!   backup goes to `<dir>/../scale-backups` and is deleted afterwards.
//! - `rescore`: starts a rescore walk through the API and times it to the end; past
//!   `DOODLEBOX_BENCH_SCALE_RESCORE_WINDOW_S` (default 600) it prints the rate over the
//!   window and a projection labelled as such, and cancels the job (which ends the walk
//!   where it stands).
//! - `train`: `doodlebox train --epochs 1 --max-steps-per-epoch STEPS` on the CPU; wall
//!   time, peak RSS (VmHWM), and the epoch time extrapolated from the trained samples/s.
//!
//! Environment: `DOODLEBOX_BENCH_SCALE_DRAWINGS` (default 200000; the run is
//! 10000000), `DOODLEBOX_BENCH_SCALE_DIR` (where `drawings-<n>` lives, kept; unset: a
//! temporary directory), `DOODLEBOX_BENCH_SCALE_STAGES` (default all),
//! `DOODLEBOX_BENCH_SCALE_ROUNDS` (calls per query, default 50),
//! `DOODLEBOX_BENCH_SCALE_TRAIN_STEPS` (default 200), `DOODLEBOX_BENCH_SCALE_BINARY` (another
//! `doodlebox` to measure, e.g. an older build; default the one cargo built).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "common/synthetic_dir.rs"]
mod synthetic_dir;
use synthetic_dir::{build, dir_bytes, dir_for, proc_status_kb, vm_hwm_kb};

/// The binary under test, unless `DOODLEBOX_BENCH_SCALE_BINARY` names another (an older
/// build, for a before-and-after figure).
fn binary() -> std::ffi::OsString {
    std::env::var_os("DOODLEBOX_BENCH_SCALE_BINARY")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_doodlebox").into())
}
/// How often readiness, jobs and peak RSS are polled.
const POLL: Duration = Duration::from_millis(50);
/// The longest a start-up or a job may take before the bench gives up.
const GIVE_UP: Duration = Duration::from_secs(3 * 3600);
const STAGES: [&str; 6] = ["build", "serve", "startup", "backup", "rescore", "train"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn row(stage: &str, measure: &str, figure: impl std::fmt::Display) {
    println!("| {stage} | {measure} | {figure} |");
}

/// The real server as a child process, SIGKILLed when dropped.
struct Server {
    child: Child,
    base: String,
    /// The control token: the admin credential of local tools.
    client: reqwest::Client,
    /// From spawn to the first `200` of `/readyz`.
    ready_s: f64,
    /// `/readyz`'s first answer.
    ready: Value,
}

impl Server {
    async fn start(dir: &Path, backups: &Path) -> anyhow::Result<Server> {
        let started = Instant::now();
        let mut child = Command::new(binary())
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("DOODLEBOX_LOG", "warn")
            .env("DOODLEBOX_NO_STARTER_MODEL", "1")
            .env("DOODLEBOX_RATE_LIMIT", "off")
            .env("DOODLEBOX_BACKUP_DIR", backups)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut reader = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut first = String::new();
        reader.read_line(&mut first)?;
        let Some(base) = first.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            anyhow::bail!("the server did not start: {first:?}");
        };
        let base = base.to_owned();
        // Keep draining stdout so that the server never writes into a full pipe.
        std::thread::spawn(move || for _ in reader.lines().map_while(Result::ok) {});
        let control: Value = serde_json::from_slice(&std::fs::read(dir.join("control.json"))?)?;
        let token = control["token"].as_str().unwrap_or_default();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse()?,
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(CALL_TIMEOUT)
            .build()?;
        let ready = loop {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
                if r.status() == 200 {
                    break r.json::<Value>().await?;
                }
            }
            anyhow::ensure!(started.elapsed() < GIVE_UP, "not ready in {GIVE_UP:?}");
            tokio::time::sleep(POLL).await;
        };
        Ok(Server {
            child,
            base,
            client,
            ready_s: started.elapsed().as_secs_f64(),
            ready,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "POST {path}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    /// Polls job `id` until it finishes; its last state.
    async fn wait_for_job(&self, id: i64, limit: Duration) -> anyhow::Result<Option<Value>> {
        let started = Instant::now();
        loop {
            let job = self.get(&format!("/api/v1/admin/jobs/{id}")).await?;
            if ["completed", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or(""))
            {
                return Ok(Some(job));
            }
            if started.elapsed() > limit {
                return Ok(None);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Cancels a job and waits until it has ended.
    async fn cancel_job(&self, id: i64) -> anyhow::Result<()> {
        self.post(
            &format!("/api/v1/admin/jobs/{id}/cancel"),
            serde_json::json!({}),
        )
        .await?;
        self.wait_for_job(id, GIVE_UP).await?;
        Ok(())
    }

    /// SIGTERM, and the seconds until the process exited.
    fn stop(mut self) -> anyhow::Result<f64> {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        self.child.wait()?;
        Ok(started.elapsed().as_secs_f64())
    }

    fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The longest one call may take (a backup or verify is a job or answers in minutes).
const CALL_TIMEOUT: Duration = Duration::from_secs(1800);
/// The longest a review or stats call may take before it is reported as failed.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// A call slower than this is timed once, not `rounds` times (a scan on a request).
const SLOW_CALL: Duration = Duration::from_secs(2);

/// p50 and p99 in ms of `rounds` calls (after one warm-up call), and the warm-up's answer;
/// when the warm-up took over [`SLOW_CALL`], its time as both.
async fn time_get(server: &Server, path: &str, rounds: usize) -> anyhow::Result<(f64, f64, Value)> {
    let started = Instant::now();
    let first = tokio::time::timeout(QUERY_TIMEOUT, server.get(path))
        .await
        .map_err(|_| anyhow::anyhow!("no answer in {QUERY_TIMEOUT:?}"))??;
    let once = started.elapsed();
    if once > SLOW_CALL {
        let ms = once.as_secs_f64() * 1000.0;
        return Ok((ms, ms, first));
    }
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        server.get(path).await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    let p = |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)];
    Ok((p(50), p(99), first))
}

/// A cursor halfway down the listing (by time), read from the database before the server
/// starts (the API hands out cursors only page by page).
fn middle_cursor(dir: &Path) -> anyhow::Result<String> {
    let conn = rusqlite::Connection::open_with_flags(
        doodlebox::store::metadata_path(dir),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let (min, max): (i64, i64) = conn.query_row(
        "SELECT min(created_at), max(created_at) FROM drawings",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(format!("{:x}.{:032x}", min + (max - min) / 2, u128::MAX))
}

async fn serve(dir: &Path, backups: &Path, rounds: usize) -> anyhow::Result<()> {
    let cursor = middle_cursor(dir)?;
    let server = Server::start(dir, backups).await?;
    row(
        "serve",
        "start-up to ready (s)",
        format!("{:.2}", server.ready_s),
    );
    let cases = [
        (
            "review list, first page",
            "/api/v1/admin/drawings?limit=50".to_string(),
        ),
        (
            "review list, shape=circle",
            "/api/v1/admin/drawings?limit=50&shape=circle".into(),
        ),
        (
            "review list, flagged",
            "/api/v1/admin/drawings?limit=50&flagged=true".into(),
        ),
        (
            "review list, quality 0.2..0.9",
            "/api/v1/admin/drawings?limit=50&min_quality=0.2&max_quality=0.9".into(),
        ),
        (
            "review list, page halfway down",
            format!("/api/v1/admin/drawings?limit=50&cursor={cursor}"),
        ),
        ("dashboard stats", "/api/v1/admin/stats".into()),
        (
            "quality histogram",
            "/api/v1/admin/quality/histogram".into(),
        ),
        (
            "players, first page",
            "/api/v1/admin/players?limit=50".into(),
        ),
    ];
    for (name, path) in cases {
        let started = Instant::now();
        let (p50, p99, answer) = match time_get(&server, &path, rounds).await {
            Ok(timed) => timed,
            Err(e) => {
                let s = started.elapsed().as_secs_f64();
                row("serve", name, format!("FAILED after {s:.1} s: {e}"));
                continue;
            }
        };
        let total = answer["total"]
            .as_u64()
            .map(|t| format!(", total {t}"))
            .unwrap_or_default();
        row(
            "serve",
            &format!("{name} p50 / p99 (ms, {rounds} calls)"),
            format!("{p50:.1} / {p99:.1}{total}"),
        );
    }
    let stop_s = server.stop()?;
    row(
        "serve",
        "clean stop (SIGTERM) to exit (s)",
        format!("{stop_s:.2}"),
    );
    Ok(())
}

fn reconciled(ready: &Value) -> String {
    let r = &ready["reconciled_at_start"];
    format!(
        "rebuilt {}, missing {}, unreadable {}",
        r["rebuilt"],
        r["missing_strokes"].as_array().map_or(0, Vec::len),
        r["unreadable"].as_array().map_or(0, Vec::len)
    )
}

async fn startup(dir: &Path, backups: &Path) -> anyhow::Result<()> {
    let first = Server::start(dir, backups).await?;
    first.stop()?;
    let clean = Server::start(dir, backups).await?;
    row(
        "startup",
        "after a clean stop, spawn to ready (s)",
        format!("{:.2} ({})", clean.ready_s, reconciled(&clean.ready)),
    );
    clean.kill_9();
    let killed = Server::start(dir, backups).await?;
    row(
        "startup",
        "after kill -9, spawn to ready (s)",
        format!("{:.2} ({})", killed.ready_s, reconciled(&killed.ready)),
    );
    killed.stop()?;
    Ok(())
}

async fn backup(dir: &Path, backups: &Path) -> anyhow::Result<()> {
    let server = Server::start(dir, backups).await?;
    let started = Instant::now();
    let job = server
        .post("/api/v1/admin/backup", serde_json::json!({"name": "scale"}))
        .await?;
    let id = job["id"].as_i64().unwrap_or_default();
    let done = server.wait_for_job(id, GIVE_UP).await?.unwrap_or_default();
    let backup_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(done["status"] == "completed", "backup job: {done}");
    let dest = backups.join("scale");
    let bytes = dir_bytes(&dest);
    row(
        "backup",
        "online backup through the API (s)",
        format!(
            "{backup_s:.1} ({:.2} GB, {:.0} MB/s)",
            bytes as f64 / 1e9,
            bytes as f64 / 1e6 / backup_s
        ),
    );
    // The live check on a freshly started server, so that its peak RSS is the check's.
    server.stop()?;
    let server = Server::start(dir, backups).await?;
    let rss_before = proc_status_kb(server.child.id(), "VmRSS:").unwrap_or_default();
    let started = Instant::now();
    let job = server
        .post("/api/v1/admin/verify", serde_json::json!({}))
        .await?;
    let id = job["id"].as_i64().unwrap_or_default();
    let done = server.wait_for_job(id, GIVE_UP).await?.unwrap_or_default();
    let verify_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(done["status"] == "completed", "verify job: {done}");
    let peak = vm_hwm_kb(server.child.id()).unwrap_or_default();
    row(
        "backup",
        "check the live directory, the verify job (s)",
        format!(
            "{verify_s:.1} (problems: {}; server RSS {:.0} MiB before, peak {:.0} MiB)",
            done["result"]["problems"],
            rss_before as f64 / 1024.0,
            peak as f64 / 1024.0
        ),
    );
    server.stop()?;
    let started = Instant::now();
    let verify = Command::new(binary())
        .args(["verify", "--data-dir"])
        .arg(&dest)
        .output()?;
    row(
        "backup",
        "doodlebox verify of the backup (s)",
        format!(
            "{:.1} (exit {})",
            started.elapsed().as_secs_f64(),
            verify.status.code().unwrap_or(-1)
        ),
    );
    std::fs::remove_dir_all(&dest)?;
    Ok(())
}

async fn rescore(dir: &Path, backups: &Path, window: Duration) -> anyhow::Result<()> {
    let server = Server::start(dir, backups).await?;
    let mut started = Instant::now();
    let mut answer = server
        .post("/api/v1/admin/quality/rescore", serde_json::json!({}))
        .await?;
    if answer.get("job").is_none() {
        // A walk an earlier run left going resumed at start: cancel it (which ends it), so
        // that this run times a whole walk of its own.
        let jobs = server.get("/api/v1/admin/jobs").await?;
        let running = jobs["items"].as_array().into_iter().flatten().find(|j| {
            j["kind"] == "rescore"
                && ["queued", "running"].contains(&j["status"].as_str().unwrap_or(""))
        });
        if let Some(id) = running.and_then(|j| j["id"].as_i64()) {
            server.cancel_job(id).await?;
        }
        started = Instant::now();
        answer = server
            .post("/api/v1/admin/quality/rescore", serde_json::json!({}))
            .await?;
    }
    let id = answer["job"]["id"].as_i64().unwrap_or_default();
    anyhow::ensure!(id > 0, "no rescore job: {answer}");
    let total = answer["total"].as_u64().unwrap_or_default();
    match server.wait_for_job(id, window).await? {
        Some(job) => {
            let s = started.elapsed().as_secs_f64();
            anyhow::ensure!(job["status"] == "completed", "rescore job: {job}");
            row(
                "rescore",
                "rescore walk through the API, to the end (s)",
                format!("{s:.1} ({total} drawings, {:.0}/s)", total as f64 / s),
            );
        }
        None => {
            let progress = server.get("/api/v1/admin/quality/rescore").await?;
            let s = started.elapsed().as_secs_f64();
            let done = progress["done"].as_u64().unwrap_or_default();
            let rate = done as f64 / s;
            row(
                "rescore",
                &format!("rescore rate over the first {s:.0} s"),
                format!("{done} of {total} drawings, {rate:.0}/s"),
            );
            row(
                "rescore",
                "PROJECTION: whole rescore at that rate (min)",
                format!("{:.0}", total as f64 / rate / 60.0),
            );
            server.cancel_job(id).await?;
        }
    }
    server.stop()?;
    Ok(())
}

fn train(dir: &Path, steps: u64) -> anyhow::Result<()> {
    // Each run starts from scratch: no checkpoint of an earlier run to resume from.
    let jobs = dir.join("jobs");
    if jobs.exists() {
        std::fs::remove_dir_all(&jobs)?;
    }
    let started = Instant::now();
    let mut child = Command::new(binary())
        .args(["train", "--epochs", "1", "--seed", "1", "--device", "cpu"])
        .args(["--max-steps-per-epoch", &steps.to_string()])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        lines
    });
    let mut peak_kb = 0;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(POLL);
    };
    let wall_s = started.elapsed().as_secs_f64();
    let lines = reader.join().expect("the reader thread does not panic");
    anyhow::ensure!(status.success(), "training failed: {}", lines.join("\n"));
    let epoch = lines
        .iter()
        .find(|l| l.starts_with("epoch 1:"))
        .cloned()
        .unwrap_or_default();
    let trained_per_s: f64 = epoch
        .trim_start_matches("epoch 1: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    row(
        "train",
        &format!("capped run, {steps} steps, wall (s)"),
        format!("{wall_s:.1}"),
    );
    row(
        "train",
        "peak RSS, VmHWM (MiB)",
        format!("{:.0}", peak_kb as f64 / 1024.0),
    );
    row(
        "train",
        "trainer against input pipeline",
        epoch.trim_start_matches("epoch 1: "),
    );
    let conn = rusqlite::Connection::open_with_flags(
        doodlebox::store::metadata_path(dir),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let metrics: String = conn.query_row(
        "SELECT coalesce(metrics, '{}') FROM training_jobs ORDER BY id DESC LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    let metrics: Value = serde_json::from_str(&metrics)?;
    let train_samples = metrics["train_samples"].as_f64().unwrap_or(0.0);
    if train_samples > 0.0 && trained_per_s > 0.0 {
        row(
            "train",
            "EXTRAPOLATED: one full epoch at that rate (min)",
            format!(
                "{:.0} ({train_samples} training drawings / {trained_per_s:.0} per s, plus this run's wall time for loading, the capped steps and validation)",
                (train_samples / trained_per_s + wall_s) / 60.0
            ),
        );
    } else {
        row(
            "train",
            "no extrapolation: the job's metrics lack",
            "train_samples",
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let drawings: u64 = env_or("DOODLEBOX_BENCH_SCALE_DRAWINGS", 200_000);
    let rounds: usize = env_or("DOODLEBOX_BENCH_SCALE_ROUNDS", 50);
    let steps: u64 = env_or("DOODLEBOX_BENCH_SCALE_TRAIN_STEPS", 200);
    let window = Duration::from_secs(env_or("DOODLEBOX_BENCH_SCALE_RESCORE_WINDOW_S", 600));
    let stages: Vec<String> = std::env::var("DOODLEBOX_BENCH_SCALE_STAGES")
        .unwrap_or_else(|_| STAGES.join(","))
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    if let Some(unknown) = stages.iter().find(|s| !STAGES.contains(&s.as_str())) {
        anyhow::bail!("unknown stage {unknown:?}; the stages are {STAGES:?}");
    }
    let (base, _temp): (PathBuf, Option<tempfile::TempDir>) =
        match std::env::var_os("DOODLEBOX_BENCH_SCALE_DIR") {
            Some(dir) => (PathBuf::from(dir), None),
            None => {
                let temp = tempfile::tempdir()?;
                (temp.path().to_owned(), Some(temp))
            }
        };
    let dir = dir_for(&base, drawings);
    let backups = base.join("scale-backups");
    println!("scale: {drawings} drawings in {}", dir.display());
    println!("| stage | measure | figure |\n| --- | --- | --- |");
    let has = |stage: &str| stages.iter().any(|s| s == stage);
    // Every stage needs the directory; only `build` may make it.
    let built = std::fs::read_to_string(dir.join(synthetic_dir::BUILT_MARKER))
        .is_ok_and(|m| m.trim() == drawings.to_string());
    anyhow::ensure!(
        built || has("build"),
        "{} is not built; add the build stage",
        dir.display()
    );
    if has("build") {
        let import_s = build(&dir, drawings, &mut |n, s| {
            eprintln!("built {n} drawings in {s:.0} s ({:.0}/s)", n as f64 / s)
        })?;
        row(
            "build",
            "import rate (drawings/s)",
            import_s.map_or("reused".into(), |s| {
                format!("{:.0} ({s:.0} s)", drawings as f64 / s)
            }),
        );
        row(
            "build",
            "data directory size (GB)",
            format!("{:.2}", dir_bytes(&dir) as f64 / 1e9),
        );
    }
    // The import blocks on its own runtime, so the HTTP stages get theirs only now.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if has("serve") {
            serve(&dir, &backups, rounds).await?;
        }
        if has("startup") {
            startup(&dir, &backups).await?;
        }
        if has("backup") {
            backup(&dir, &backups).await?;
        }
        if has("rescore") {
            rescore(&dir, &backups, window).await?;
        }
        anyhow::Ok(())
    })?;
    if has("train") {
        train(&dir, steps)?;
    }
    Ok(())
}
