//! Cluster benchmark (issue #17): durable ingest at 64 connections on the embedded store, on
//! one replica over PostgreSQL and on two replicas over the same PostgreSQL, in one run;
//! then `doodlebox migrate` of an appliance holding 100,000 drawings.
//!
//! Every server is the real `App` on loopback with rate limits off; PostgreSQL is a scratch
//! cluster with `fsync` on, so a `201` costs a synced commit on every backend. Two replicas
//! get 32 connections each at the same time; their rate is the sum and their p99 the worse
//! of the two. Everything shares this machine's cores (the database too), so the replica
//! figures show the database's cost, not what separate hosts would reach.
//!
//! The migration's appliance is filled through the real import path (`doodlebox import`'s
//! local code) from a generated Quick, Draw! raw ndjson file, then migrated into a fresh
//! database; the copy and the comparison are timed apart.
//!
//! Run: `cargo bench --bench cluster` (DOODLEBOX_BENCH_SECS sets seconds per cell, default 3;
//! DOODLEBOX_BENCH_MIGRATE_DRAWINGS the migration's size, default 100000). Prints figures;
//! asserts nothing. Skips with a message where PostgreSQL is not installed.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use doodlebox::app::App;
use doodlebox::config::Config;
use doodlebox::service::migrate::{self, MigrateOptions};
use doodlebox::store::postgres::copy::Phase;
use doodlebox::store::postgres::scratch::ScratchCluster;
use serde_json::{json, Value};

#[path = "common/load.rs"]
mod load;

use load::{load, Cell};

/// Connections in every ingest cell.
const CLIENTS: usize = 64;

fn drawing_body(seed: u64) -> Value {
    // A typical game drawing: 3 strokes, 40 points each, pressure and timestamps.
    let strokes: Vec<Value> = (0..3u64)
        .map(|s| {
            let points: Vec<Value> = (0..40u64)
                .map(|i| {
                    let t = (seed + s * 40 + i) as f64;
                    json!({"x": (200.0 + 120.0 * (t / 7.0).cos()).round(), "y": (200.0 + 120.0 * (t / 7.0).sin()).round(),
                           "pressure": 0.5, "timestamp": 1_700_000_000_000u64 + s * 700 + i * 16})
                })
                .collect();
            json!({"points": points, "color": "#000000", "width": 3})
        })
        .collect();
    json!({"shape": "circle", "canvas": {"width": 400, "height": 400}, "strokes": strokes, "duration_ms": 2500, "device": "mouse"})
}

/// A server on `config`'s stores, running until the benchmark ends; its drawings URL.
async fn start(mut config: Config) -> String {
    config.rate_limits = doodlebox::service::limits::RateLimits::OFF;
    let app = App::build(config).await.expect("app");
    let url = format!("http://{}/api/v1/drawings", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    url
}

fn fmt(cell: &Cell) -> String {
    format!(
        "{:>8.0} {:>8.2} {:>8.2}",
        cell.per_sec, cell.p50_ms, cell.p99_ms
    )
}

/// One line of Quick, Draw! raw ndjson: a wobbly circle, unique by `n`.
fn quickdraw_line(n: u64) -> String {
    let points = 24 + (n % 16);
    let (mut xs, mut ys, mut ts) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..points {
        let a = i as f64 / points as f64 * std::f64::consts::TAU;
        let r = 80.0 + ((n + i) % 7) as f64;
        xs.push((128.0 + r * a.cos()).round() as i64);
        ys.push((128.0 + r * a.sin()).round() as i64);
        ts.push(i * 16);
    }
    let word = ["circle", "square", "triangle", "line"][(n % 4) as usize];
    json!({"word": word, "countrycode": "US", "timestamp": "2017-01-25 03:11:35.55071 UTC",
           "recognized": n % 5 != 0, "key_id": format!("{}", 5_000_000_000_000_000u64 + n),
           "drawing": [[xs, ys, ts]]})
    .to_string()
}

fn main() {
    let secs: u64 = std::env::var("DOODLEBOX_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let drawings: u64 = std::env::var("DOODLEBOX_BENCH_MIGRATE_DRAWINGS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let duration = Duration::from_secs(secs);
    let cluster = match ScratchCluster::start_durable() {
        Ok(Some(cluster)) => Arc::new(cluster),
        Ok(None) => {
            println!("skipped: PostgreSQL is not installed (no initdb found)");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    runtime.block_on(async {
        let embedded = start(Config::for_data_dir(dir.path().join("embedded"))).await;
        let one_db = cluster.database().expect("database");
        let mut config = Config::for_data_dir(dir.path().join("one"));
        config.database_url = Some(one_db.url());
        let one = start(config).await;
        let two_db = cluster.database().expect("database");
        let mut replicas = Vec::new();
        for name in ["two-a", "two-b"] {
            let mut config = Config::for_data_dir(dir.path().join(name));
            config.database_url = Some(two_db.url());
            replicas.push(start(config).await);
        }
        let bodies: Arc<Vec<String>> =
            Arc::new((0..64).map(|s| drawing_body(s * 13).to_string()).collect());
        println!(
            "cluster ingest benchmark: {CLIENTS} connections, {secs} s per cell, {}-byte drawings, {cores} cores shared by every server and PostgreSQL (fsync on)",
            bodies[0].len()
        );
        println!(
            "{:<34} | {:>8} {:>8} {:>8}",
            "store", "/s", "p50 ms", "p99 ms"
        );
        let e = load(&embedded, CLIENTS, duration, bodies.clone(), 201).await;
        println!("{:<34} | {}", "embedded (sled + SQLite)", fmt(&e));
        let p1 = load(&one, CLIENTS, duration, bodies.clone(), 201).await;
        println!("{:<34} | {}", "PostgreSQL, one replica", fmt(&p1));
        let (a, b) = tokio::join!(
            load(&replicas[0], CLIENTS / 2, duration, bodies.clone(), 201),
            load(&replicas[1], CLIENTS / 2, duration, bodies.clone(), 201)
        );
        let p2 = Cell {
            requests: a.requests + b.requests,
            per_sec: a.per_sec + b.per_sec,
            p50_ms: a.p50_ms.max(b.p50_ms),
            p99_ms: a.p99_ms.max(b.p99_ms),
        };
        println!(
            "{:<34} | {}",
            "PostgreSQL, two replicas (32 + 32)",
            fmt(&p2)
        );
        println!(
            "FIGURE cluster_ingest clients={CLIENTS} embedded_per_sec={:.0} embedded_p99_ms={:.2} pg_one_per_sec={:.0} pg_one_p99_ms={:.2} pg_two_per_sec={:.0} pg_two_p99_ms={:.2}",
            e.per_sec, e.p99_ms, p1.per_sec, p1.p99_ms, p2.per_sec, p2.p99_ms
        );
    });
    drop(runtime);

    // The migration: an appliance filled through the import path, then migrated.
    let appliance = dir.path().join("appliance");
    let file = dir.path().join("generated.ndjson");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("file"));
        for n in 0..drawings {
            writeln!(out, "{}", quickdraw_line(n)).expect("write");
        }
        out.flush().expect("flush");
    }
    let started = Instant::now();
    let local = doodlebox::cli::transfer::LocalStores::open(&appliance).expect("appliance");
    let report = local.import_file(&file, true).expect("import");
    local.close();
    let import_secs = started.elapsed().as_secs_f64();
    println!(
        "appliance: imported {} drawings ({} bad lines) in {import_secs:.1} s",
        report.imported, report.bad_line_count
    );
    let target = cluster.database().expect("database");
    let options = MigrateOptions {
        from: appliance,
        to: target.url(),
        batch: migrate::DEFAULT_BATCH,
    };
    let started = Instant::now();
    let mut copied_at = None;
    let report = migrate::migrate(&options, &mut |progress| {
        if progress.phase == Phase::Check && copied_at.is_none() {
            copied_at = Some(started.elapsed().as_secs_f64());
        }
    })
    .expect("migrate");
    let total = started.elapsed().as_secs_f64();
    let copy = copied_at.unwrap_or(total);
    let rows: u64 = report.copied.rows.iter().map(|(_, n)| n).sum();
    println!(
        "migrate {} drawings ({} stroke records, {rows} rows): copy {copy:.1} s ({:.0} drawings/s), compare {:.1} s, {total:.1} s in all; verified: {}",
        report.copied.records,
        report.copied.records,
        report.copied.records as f64 / copy.max(1e-3),
        total - copy,
        report.is_ok()
    );
    println!(
        "FIGURE migrate drawings={} copy_secs={copy:.1} compare_secs={:.1} total_secs={total:.1} ok={}",
        report.copied.records,
        total - copy,
        report.is_ok()
    );
}
