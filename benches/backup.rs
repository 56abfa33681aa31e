//! Backup benchmark (issue #7): fills a data directory with 100,000 drawings through the
//! ingest API, then times an online backup through the running server, a verification of
//! the backup, a verification of the live data directory and a restore. Prints figures;
//! asserts nothing.
//!
//! Run: `cargo bench --bench backup` (DOODLEBOX_BENCH_DRAWINGS sets the count).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use doodlebox::app::App;
use doodlebox::config::Config;
use doodlebox::data_dir::dir_size;
use serde_json::{json, Value};

/// Drawings in the data directory unless DOODLEBOX_BENCH_DRAWINGS says otherwise.
const DEFAULT_DRAWINGS: usize = 100_000;
/// Concurrent submitters while filling.
const CLIENTS: usize = 64;
const SHAPES: [&str; 5] = ["line", "circle", "square", "triangle", "heart"];

/// A typical game drawing: 3 strokes of 40 points with pressure and timestamps.
fn drawing_body(seed: usize) -> String {
    let strokes: Vec<Value> = (0..3usize)
        .map(|s| {
            let points: Vec<Value> = (0..40usize)
                .map(|i| {
                    let t = (seed * 7 + s * 40 + i) as f64;
                    json!({"x": (200.0 + 120.0 * (t / 7.0).cos()).round(), "y": (200.0 + 120.0 * (t / 5.0).sin()).round(),
                           "pressure": 0.5, "timestamp": 1_700_000_000_000u64 + (s * 700 + i * 16) as u64})
                })
                .collect();
            json!({"points": points, "color": "#000000", "width": 3})
        })
        .collect();
    json!({"shape": SHAPES[seed % SHAPES.len()], "canvas": {"width": 400, "height": 400},
           "strokes": strokes, "duration_ms": 2500, "device": "mouse"})
    .to_string()
}

fn main() {
    let target: usize = std::env::var("DOODLEBOX_BENCH_DRAWINGS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_DRAWINGS);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let root = tempfile::tempdir().expect("temp dir");
        let data = root.path().join("data");
        let mut config = Config::for_data_dir(&data);
        config.rate_limits = doodlebox::service::limits::RateLimits::OFF;
        let app = App::build(config).await.expect("app");
        let base = format!("http://{}", app.local_addr());
        let token = app.control().token.clone();
        tokio::spawn(app.run_until_stopped(std::future::pending()));

        let bodies: Arc<Vec<String>> = Arc::new((0..256).map(drawing_body).collect());
        let sent = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (base, bodies, sent) = (base.clone(), bodies.clone(), sent.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    loop {
                        let n = sent.fetch_add(1, Ordering::Relaxed);
                        if n >= target {
                            return;
                        }
                        let response = client
                            .post(format!("{base}/api/v1/drawings"))
                            .header("content-type", "application/json")
                            .header("cookie", format!("doodlebox_player={:032x}", n % 500 + 1))
                            .body(bodies[n % bodies.len()].clone())
                            .send()
                            .await
                            .expect("submit");
                        assert_eq!(response.status(), 201, "submit refused");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("submitter");
        }
        let fill_secs = started.elapsed().as_secs_f64();
        println!("filled {target} drawings in {fill_secs:.1} s ({:.0}/s, {CLIENTS} clients)", target as f64 / fill_secs);
        let data_bytes = dir_size(&data).unwrap_or(0);

        let admin = reqwest::Client::new();
        // Backups asked for over HTTP go into the server's backup directory, as a job.
        let dest = data.join("backups").join("bench");
        let started = Instant::now();
        let response = admin
            .post(format!("{base}/api/v1/admin/backup"))
            .bearer_auth(&token)
            .json(&json!({"name": "bench"}))
            .send()
            .await
            .expect("backup request");
        assert_eq!(response.status(), 202, "backup refused");
        let job: Value = response.json().await.expect("job");
        let manifest = finished_job(&admin, &base, &token, &job).await;
        let backup_secs = started.elapsed().as_secs_f64();
        let backup_bytes = manifest["bytes"].as_u64().unwrap_or(0);

        let started = Instant::now();
        let report = tokio::task::spawn_blocking({
            let dest = dest.clone();
            move || doodlebox::service::backup::verify_dir(&dest).expect("verify")
        })
        .await
        .expect("verify task");
        let verify_secs = started.elapsed().as_secs_f64();
        assert!(report.is_ok(), "{:?}", report.problems);

        let started = Instant::now();
        let response = admin
            .post(format!("{base}/api/v1/admin/verify"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("live verify");
        assert_eq!(response.status(), 202, "verify refused");
        let job: Value = response.json().await.expect("job");
        let live = finished_job(&admin, &base, &token, &job).await;
        let live_secs = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let restored = root.path().join("restored");
        let restore = tokio::task::spawn_blocking({
            let (dest, restored) = (dest.clone(), restored.clone());
            move || doodlebox::service::backup::restore(&dest, &restored, false, &mut |_| {}).expect("restore")
        })
        .await
        .expect("restore task");
        let restore_secs = started.elapsed().as_secs_f64();

        let mb = |bytes: u64| bytes as f64 / 1e6;
        println!("drawings: {} in the backup ({} stroke records)", manifest["drawings"], manifest["records"]);
        println!("data dir: {:.1} MB; backup: {:.1} MB in {} files", mb(data_bytes), mb(backup_bytes), manifest["files"].as_array().map_or(0, Vec::len));
        println!("backup (online, through the server): {backup_secs:.2} s, {:.1} MB/s of backup written, {:.0} drawings/s", mb(backup_bytes) / backup_secs, target as f64 / backup_secs);
        println!("verify backup: {verify_secs:.2} s ({:.1} MB/s)", mb(backup_bytes) / verify_secs);
        println!("verify live data dir (through the server): {live_secs:.2} s, problems: {}", live["problems"]);
        let rebuilt = restore.reconcile.as_ref().map_or("deferred to the next start".to_owned(), |r| r.rebuilt.to_string());
        println!("restore: {restore_secs:.2} s, {} drawings, rows rebuilt: {rebuilt}", restore.drawings);
        println!(
            "FIGURE backup drawings={target} data_mb={:.1} backup_mb={:.1} backup_s={backup_secs:.2} backup_mb_per_s={:.1} verify_s={verify_secs:.2} live_verify_s={live_secs:.2} restore_s={restore_secs:.2}",
            mb(data_bytes), mb(backup_bytes), mb(backup_bytes) / backup_secs
        );
    });
}

/// The `result` of the job a `202` answered with, once it has completed.
async fn finished_job(admin: &reqwest::Client, base: &str, token: &str, job: &Value) -> Value {
    loop {
        let job: Value = admin
            .get(format!("{base}/api/v1/admin/jobs/{}", job["id"]))
            .bearer_auth(token)
            .send()
            .await
            .expect("job request")
            .json()
            .await
            .expect("job");
        match job["status"].as_str() {
            Some("completed") => break job["result"].clone(),
            Some("failed") | Some("cancelled") => panic!("{} job ended: {job}", job["kind"]),
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}
