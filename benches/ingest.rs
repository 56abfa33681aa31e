//! Ingest benchmark: durable submissions/s and latency of Doodlebox's group-commit path,
//! side by side in one run with
//! - a naive durable handler: one SQLite `synchronous=FULL` insert (and commit) per request;
//! - a parse-only handler: the same parsing and validation, storing nothing.
//!
//! A second table runs a second Doodlebox with the starter model active (the background
//! scorer judges every drawing after its `201`) against an "inline" handler that does what
//! submit did before issue #13: classify the drawing inside the request, then the same
//! group commit (its own stores). Then the durable path's stages, timed one by one on one
//! thread: parse, validation, record encoding, the row's metadata, the stroke store's write
//! and sync, the SQLite transaction (with its sync).
//!
//! Targets (issue #2, #13): Doodlebox ≥ 5× naive at 64 clients, ≥ 0.5× parse-only, p99
//! ≤ 10 ms at 64 clients, also with a model active. Prints figures; asserts nothing
//! (machines are shared and noisy).
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
use doodlebox::service::quality::strokes_of;
use doodlebox::service::serving::ModelServer;
use doodlebox::store::{Ingest, Stores, Submission};
use serde_json::{json, Value};

#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/load.rs"]
mod load;

use cpu::{budget_line, CpuSnapshot};
use load::{load, Cell};

const CONCURRENCY: [usize; 4] = [1, 16, 64, 256];

/// The concurrency whose cells get a CPU budget per request (issue #13's goal is set here).
const BUDGET_CLIENTS: usize = 64;

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

/// What the inline handler needs: the model it asks and a writer of its own.
struct Inline {
    models: ModelServer,
    ingest: Ingest,
    shape_id: i64,
}

/// Submit as it was before issue #13: parse, classify inside the request, then the group
/// commit.
async fn inline(State(inline): State<Arc<Inline>>, body: Bytes) -> StatusCode {
    let Ok(drawing) = parse(&body) else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    if inline
        .models
        .classify(vec![strokes_of(&drawing)])
        .await
        .is_err()
    {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let submission = Submission::new(PlayerId::random(), &drawing, inline.shape_id, None);
    match inline.ingest.submit(submission).await {
        Ok(_) => StatusCode::CREATED,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
            let before = CpuSnapshot::take();
            let d = load(&doodlebox_url, 64, duration, bodies.clone(), 201).await;
            println!("profile run: {:.0}/s", d.per_sec);
            println!("{}", budget_line("doodlebox", &CpuSnapshot::take().since(&before), d.requests));
            return;
        }
        let mut budgets = Vec::new();
        for clients in CONCURRENCY {
            let before = CpuSnapshot::take();
            let d = load(&doodlebox_url, clients, duration, bodies.clone(), 201).await;
            let after_doodlebox = CpuSnapshot::take();
            let n = load(&format!("http://{naive_addr}/"), clients, duration, bodies.clone(), 201).await;
            let before_parse = CpuSnapshot::take();
            let p = load(&format!("http://{parse_addr}/"), clients, duration, bodies.clone(), 201).await;
            if clients == BUDGET_CLIENTS {
                budgets.push(budget_line("doodlebox", &after_doodlebox.since(&before), d.requests));
                budgets.push(budget_line("parse-only", &CpuSnapshot::take().since(&before_parse), p.requests));
            }
            let fmt = |c: &Cell| format!("{:>7.0} {:>6.2} {:>6.2}", c.per_sec, c.p50_ms, c.p99_ms);
            println!("{clients:>8} | {} | {} | {} | {:>7.2}x | {:>7.2}x", fmt(&d), fmt(&n), fmt(&p), d.per_sec / n.per_sec, d.per_sec / p.per_sec);
            println!(
                "FIGURE ingest clients={clients} doodlebox_per_sec={:.0} doodlebox_p99_ms={:.2} naive_per_sec={:.0} parse_only_per_sec={:.0} vs_naive={:.2} vs_parse_only={:.2}",
                d.per_sec, d.p99_ms, n.per_sec, p.per_sec, d.per_sec / n.per_sec, d.per_sec / p.per_sec
            );
        }
        println!("CPU per request at {BUDGET_CLIENTS} clients, load generator included (same client in both), by thread:");
        for line in budgets {
            println!("  {line}");
        }
        with_a_model(dir.path(), duration, bodies.clone(), parse_addr).await;
        stage_costs(dir.path(), &bodies);
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

/// The second table: a Doodlebox with the starter model active against classifying inside
/// the request, with the parse-only handler run again alongside.
async fn with_a_model(
    dir: &std::path::Path,
    duration: Duration,
    bodies: Arc<Vec<String>>,
    parse_addr: SocketAddr,
) {
    let mut config = Config::for_data_dir(dir.join("with-model"));
    config.rate_limits = doodlebox::service::limits::RateLimits::OFF;
    config.starter_model = true;
    let app = App::build(config).await.expect("app with a model");
    let models = app.models();
    let url = format!("http://{}/api/v1/drawings", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let trained = Instant::now();
    while models.serving_version().is_none() {
        assert!(
            trained.elapsed() < Duration::from_secs(900),
            "the starter model never became active"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "starter model {} active after {:.0} s of training",
        models.serving_version().unwrap_or_default(),
        trained.elapsed().as_secs_f64()
    );

    let stores = Arc::new(Stores::open(&dir.join("inline")).expect("inline stores"));
    let circle = doodlebox::domain::ShapeName::parse("circle").expect("shape name");
    let shape_id = stores
        .metadata
        .shape_by_name(&circle)
        .expect("shapes")
        .expect("circle")
        .id;
    let ingest = Ingest::start(stores, None).expect("inline writer");
    let inline_addr = serve(
        Router::new()
            .route("/", post(inline))
            .with_state(Arc::new(Inline {
                models,
                ingest,
                shape_id,
            })),
    )
    .await;

    println!("with the starter model active (judged in the background vs inside the request):");
    println!(
        "{:>8} | {:>22} | {:>22} | {:>22} | {:>8} | {:>8}",
        "clients",
        "doodlebox/s p50 p99",
        "inline/s p50 p99",
        "parse-only/s p50 p99",
        "vs inline",
        "vs parse"
    );
    let mut budgets = Vec::new();
    for clients in CONCURRENCY {
        let before = CpuSnapshot::take();
        let d = load(&url, clients, duration, bodies.clone(), 201).await;
        if clients == BUDGET_CLIENTS {
            budgets.push(budget_line(
                "doodlebox, model active",
                &CpuSnapshot::take().since(&before),
                d.requests,
            ));
        }
        let i = load(
            &format!("http://{inline_addr}/"),
            clients,
            duration,
            bodies.clone(),
            201,
        )
        .await;
        let p = load(
            &format!("http://{parse_addr}/"),
            clients,
            duration,
            bodies.clone(),
            201,
        )
        .await;
        let fmt = |c: &Cell| format!("{:>7.0} {:>6.2} {:>6.2}", c.per_sec, c.p50_ms, c.p99_ms);
        println!(
            "{clients:>8} | {} | {} | {} | {:>8.2}x | {:>7.2}x",
            fmt(&d),
            fmt(&i),
            fmt(&p),
            d.per_sec / i.per_sec,
            d.per_sec / p.per_sec
        );
        println!(
            "FIGURE ingest_model clients={clients} doodlebox_per_sec={:.0} doodlebox_p99_ms={:.2} inline_per_sec={:.0} inline_p99_ms={:.2} parse_only_per_sec={:.0} vs_inline={:.2} vs_parse_only={:.2}",
            d.per_sec, d.p99_ms, i.per_sec, i.p99_ms, p.per_sec, d.per_sec / i.per_sec, d.per_sec / p.per_sec
        );
    }
    println!("CPU per request at {BUDGET_CLIENTS} clients with the model active, by thread:");
    for line in budgets {
        println!("  {line}");
    }
}

/// Where a durable drawing's time goes: each stage of the path timed alone on this thread,
/// over batches of 64 (about one group commit at 64 clients).
fn stage_costs(dir: &std::path::Path, bodies: &[String]) {
    const BATCH: usize = 64;
    const ROUNDS: usize = 50;
    let stores = Stores::open(&dir.join("stages")).expect("stage stores");
    let circle = doodlebox::domain::ShapeName::parse("circle").expect("shape name");
    let shape_id = stores
        .metadata
        .shape_by_name(&circle)
        .expect("shapes")
        .expect("circle")
        .id;
    let mut times = [Duration::ZERO; 6];
    let mut last = None;
    for round in 0..ROUNDS {
        let batch = &bodies[..BATCH.min(bodies.len())];
        let t = Instant::now();
        let inputs: Vec<DrawingInput> = batch
            .iter()
            .map(|b| serde_json::from_slice(b.as_bytes()).expect("parse"))
            .collect();
        times[0] += t.elapsed();
        let t = Instant::now();
        let drawings: Vec<Drawing> = inputs
            .into_iter()
            .map(|i| Drawing::parse(i).expect("valid"))
            .collect();
        times[1] += t.elapsed();
        let t = Instant::now();
        let now = 1_000_000 + round as u64;
        let mut records = Vec::with_capacity(BATCH);
        let mut ids = Vec::with_capacity(BATCH);
        for d in &drawings {
            let id = DrawingId::next(now, last);
            last = Some(id);
            ids.push(id);
            let body = doodlebox::domain::record::encode_body(None, None, d);
            records.push((
                id,
                doodlebox::domain::record::assemble(id, PlayerId::random(), now, &body),
            ));
        }
        times[2] += t.elapsed();
        let t = Instant::now();
        let rows: Vec<doodlebox::store::metadata::NewDrawingRow> = drawings
            .iter()
            .zip(&ids)
            .map(|(d, id)| doodlebox::store::metadata::NewDrawingRow {
                id: *id,
                player: PlayerId::random(),
                shape_id,
                metadata: json!({"canvas": d.canvas(), "device": d.device(), "duration_ms": d.duration_ms(),
                                 "strokes": d.strokes().len(), "points": d.point_count()}),
                created_at_ms: now,
                idempotency: None,
                source_key: None,
                judgement: None,
            })
            .collect();
        times[3] += t.elapsed();
        let t = Instant::now();
        stores.blobs.put_durably(&records).expect("stroke store");
        times[4] += t.elapsed();
        let t = Instant::now();
        stores.metadata.insert_drawings(&rows).expect("rows");
        times[5] += t.elapsed();
    }
    let n = (ROUNDS * BATCH) as f64;
    let names = [
        "JSON parse",
        "validation",
        "record encoding (zstd)",
        "row metadata JSON",
        "stroke store write + sync (per batch of 64)",
        "SQLite insert + commit (per batch of 64)",
    ];
    println!("durable path by stage, one thread, {ROUNDS} batches of {BATCH}:");
    for (name, time) in names.iter().zip(times) {
        println!(
            "  {name:<44} {:>8.1} µs per drawing",
            time.as_secs_f64() * 1e6 / n
        );
    }
}
