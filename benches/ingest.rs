//! Ingest benchmark: durable submissions/s and latency of Doodlebox's group-commit path,
//! side by side in one run with
//! - a naive durable handler: one SQLite `synchronous=FULL` insert (and commit) per request;
//! - a parse-only handler: the same parsing and validation, storing nothing.
//!
//! Targets (issue #2): Doodlebox ≥ 5× naive at 64 clients, ≥ 0.5× parse-only, p99 ≤ 10 ms
//! at 64 clients. Prints figures; asserts nothing (machines are shared and noisy).
//!
//! Run: `cargo bench --bench ingest` (DOODLEBOX_BENCH_SECS sets seconds per cell, default 3;
//! DOODLEBOX_BENCH_PROFILE=1 runs only Doodlebox at 64 clients, to profile it).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use doodlebox::app::App;
use doodlebox::config::Config;
use doodlebox::data_dir::dir_size;
use doodlebox::domain::drawing::DrawingInput;
use doodlebox::domain::{Drawing, DrawingId, PlayerId, Record};
use serde_json::{json, Value};

#[path = "common/load.rs"]
mod load;

use load::{load, Cell};

const CONCURRENCY: [usize; 4] = [1, 16, 64, 256];

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

fn parse(body: &[u8]) -> Result<Drawing, StatusCode> {
    let input: DrawingInput =
        serde_json::from_slice(body).map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
    Drawing::parse(input).map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)
}

async fn parse_only(body: Bytes) -> StatusCode {
    match parse(&body) {
        Ok(_) => StatusCode::CREATED,
        Err(status) => status,
    }
}

/// One SQLite `synchronous=FULL` transaction per request, the record inline in the row.
async fn naive(State(conn): State<Arc<Mutex<rusqlite::Connection>>>, body: Bytes) -> StatusCode {
    let Ok(drawing) = parse(&body) else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    let result = tokio::task::spawn_blocking(move || {
        let id = DrawingId::next(doodlebox::store::now_ms(), None);
        let record = Record {
            id,
            player: PlayerId::random(),
            created_at_ms: 0,
            idempotency: None,
            judgement: None,
            source: None,
            drawing,
        };
        let conn = conn.lock().expect("bench lock");
        conn.execute(
            "INSERT INTO drawings (id, record) VALUES (?1, ?2)",
            rusqlite::params![id.to_string(), record.encode()],
        )
    })
    .await;
    match result {
        Ok(Ok(_)) => StatusCode::CREATED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    addr
}

fn main() {
    let secs: u64 = std::env::var("DOODLEBOX_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let duration = Duration::from_secs(secs);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_data_dir(dir.path().join("doodlebox"));
        config.rate_limits = doodlebox::service::limits::RateLimits::OFF;
        let app = App::build(config).await.expect("app");
        let stats = app.ingest_stats();
        let doodlebox_url = format!("http://{}/api/v1/drawings", app.local_addr());
        tokio::spawn(app.run_until_stopped(std::future::pending()));

        let naive_path = dir.path().join("naive.sqlite3");
        let conn = rusqlite::Connection::open(&naive_path).expect("naive db");
        conn.pragma_update(None, "journal_mode", "WAL").expect("wal");
        conn.pragma_update(None, "synchronous", "FULL").expect("full");
        conn.execute("CREATE TABLE drawings (id TEXT PRIMARY KEY, record BLOB NOT NULL)", []).expect("table");
        let naive_addr = serve(Router::new().route("/", post(naive)).with_state(Arc::new(Mutex::new(conn)))).await;
        let parse_addr = serve(Router::new().route("/", post(parse_only))).await;

        let (fsyncs_per_sec, fsync_ms) = fsync_probe(dir.path(), Duration::from_secs(1));
        println!("machine probe: {fsyncs_per_sec:.0} fsyncs/s of a 4 KiB append ({fsync_ms:.3} ms each); the naive handler's ceiling is about this rate");
        let bodies: Arc<Vec<String>> = Arc::new((0..64).map(|s| drawing_body(s * 13).to_string()).collect());
        let body_bytes = bodies[0].len();
        println!("ingest benchmark: {secs} s per cell, {body_bytes}-byte drawings (120 points), {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
        println!("{:>8} | {:>22} | {:>22} | {:>22} | {:>8} | {:>8}", "clients", "doodlebox/s p50 p99", "naive/s p50 p99", "parse-only/s p50 p99", "vs naive", "vs parse");
        if std::env::var("DOODLEBOX_BENCH_PROFILE").is_ok() {
            // Only Doodlebox at 64 clients, for a profiler.
            let d = load(&doodlebox_url, 64, duration, bodies.clone(), 201).await;
            println!("profile run: {:.0}/s", d.per_sec);
            return;
        }
        for clients in CONCURRENCY {
            let d = load(&doodlebox_url, clients, duration, bodies.clone(), 201).await;
            let n = load(&format!("http://{naive_addr}/"), clients, duration, bodies.clone(), 201).await;
            let p = load(&format!("http://{parse_addr}/"), clients, duration, bodies.clone(), 201).await;
            let fmt = |c: &Cell| format!("{:>7.0} {:>6.2} {:>6.2}", c.per_sec, c.p50_ms, c.p99_ms);
            println!("{clients:>8} | {} | {} | {} | {:>7.2}x | {:>7.2}x", fmt(&d), fmt(&n), fmt(&p), d.per_sec / n.per_sec, d.per_sec / p.per_sec);
            println!(
                "FIGURE ingest clients={clients} doodlebox_per_sec={:.0} doodlebox_p99_ms={:.2} naive_per_sec={:.0} parse_only_per_sec={:.0} vs_naive={:.2} vs_parse_only={:.2}",
                d.per_sec, d.p99_ms, n.per_sec, p.per_sec, d.per_sec / n.per_sec, d.per_sec / p.per_sec
            );
        }
        let drawings = stats.drawings.load(std::sync::atomic::Ordering::Relaxed);
        let batches = stats.batches.load(std::sync::atomic::Ordering::Relaxed);
        let syncs = stats.syncs.load(std::sync::atomic::Ordering::Relaxed);
        println!("doodlebox: {drawings} drawings in {batches} group commits ({:.1} per commit), {:.3} syncs per acknowledged drawing", drawings as f64 / batches as f64, syncs as f64 / drawings as f64);
        let on_disk = dir_size(&dir.path().join("doodlebox")).unwrap_or(0);
        println!("doodlebox on disk: {:.0} bytes per drawing (stroke store + metadata, including indexes and logs); request body {body_bytes} bytes", on_disk as f64 / drawings as f64);
    });
}

/// Appends 4 KiB and `fdatasync`s, repeatedly: the machine's durable-write rate.
fn fsync_probe(dir: &std::path::Path, duration: Duration) -> (f64, f64) {
    use std::io::Write;
    let mut file = std::fs::File::create(dir.join("fsync-probe")).expect("probe file");
    let block = [7u8; 4096];
    let start = Instant::now();
    let mut count = 0u32;
    while start.elapsed() < duration {
        file.write_all(&block).expect("probe write");
        file.sync_data().expect("probe fsync");
        count += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    (f64::from(count) / secs, secs * 1000.0 / f64::from(count))
}
