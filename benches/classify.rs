//! Classification benchmark (issue #5), in one run:
//! - in-process single-drawing latency (rasterize + forward, from strokes) of Doodlebox's
//!   classifier against the same network's forward pass alone in PyTorch eager from Python
//!   (target ratio ≤ 0.8 at p50);
//! - HTTP `POST /api/v1/classify` p50/p99 at 1, 16 and 64 concurrent clients (target p99
//!   ≤ 3 ms at 16);
//! - batch throughput through `POST /api/v1/classify/batch`.
//!
//! The model is the starter model a fresh install trains by itself.
//! Run: `cargo bench --bench classify` (DOODLEBOX_BENCH_SECS: seconds per cell, default 3;
//! DOODLEBOX_CLASSIFY_MICRO_BATCH=1 to measure without micro-batching).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use doodlebox::app::App;
use doodlebox::config::Config;
use doodlebox::ml::classifier::Classifier;
use doodlebox::ml::synth::{self, Shape};
use serde_json::{json, Value};

#[path = "common/load.rs"]
mod load;
#[path = "common/python.rs"]
mod python;
#[path = "../tests/common/synthetic.rs"]
mod synthetic;

use python::python;
use synthetic::doodle_json;

const RUNS: usize = 3000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let secs: u64 = std::env::var("DOODLEBOX_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_data_dir(dir.path());
        config.starter_model = true;
        config.rate_limits = doodlebox::service::limits::RateLimits::OFF;
        if let Some(n) = std::env::var("DOODLEBOX_CLASSIFY_MICRO_BATCH").ok().and_then(|v| v.parse().ok()) {
            config.classify_micro_batch = n;
        }
        println!("micro-batch limit: {}", config.classify_micro_batch);
        let app = App::build(config).await.expect("app");
        let base = format!("http://{}", app.local_addr());
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let client = reqwest::Client::new();
        let probe = doodle_json(Shape::Circle, 1);
        let started = Instant::now();
        while client.post(format!("{base}/api/v1/classify")).json(&probe).send().await.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
            assert!(started.elapsed() < Duration::from_secs(600), "no starter model");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!("classify benchmark: starter model ready after {:.1} s", started.elapsed().as_secs_f64());

        // In process: strokes to probabilities, one drawing per call.
        let model_dir = dir.path().join("models/v1");
        let (ours_p50, ours_p99) = tokio::task::spawn_blocking(move || in_process(&model_dir)).await.expect("in-process run");
        println!("in-process, one drawing (rasterize + forward): p50 {ours_p50:.3} ms, p99 {ours_p99:.3} ms");
        if let Some(python) = python() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/classify_pytorch.py");
            let out = Command::new(python).arg(script).args(["28", "5", &RUNS.to_string()]).output().expect("python runs");
            let line = String::from_utf8_lossy(&out.stdout).lines().find(|l| l.starts_with('{')).map(str::to_owned);
            match line.and_then(|l| serde_json::from_str::<Value>(&l).ok()) {
                Some(v) => {
                    let (p50, p99) = (v["p50_ms"].as_f64().unwrap_or(f64::NAN), v["p99_ms"].as_f64().unwrap_or(f64::NAN));
                    println!("pytorch eager, forward only:                   p50 {p50:.3} ms, p99 {p99:.3} ms");
                    println!("ratio at p50 doodlebox / pytorch: {:.2} (target <= 0.8)", ours_p50 / p50);
                    println!("FIGURE classify_in_process doodlebox_p50_ms={ours_p50:.3} doodlebox_p99_ms={ours_p99:.3} pytorch_p50_ms={p50:.3} pytorch_p99_ms={p99:.3} ratio_p50={:.2}", ours_p50 / p50);
                }
                None => println!("pytorch comparison failed: {}", String::from_utf8_lossy(&out.stderr)),
            }
        } else {
            println!("pytorch comparison skipped: no Python next to LIBTORCH");
        }

        let bodies: Arc<Vec<String>> = Arc::new(
            (0..64u64).map(|i| doodle_json(Shape::ALL[(i % 5) as usize], 100 + i).to_string()).collect(),
        );
        println!("{:>8} | {:>10} {:>8} {:>8}", "clients", "classify/s", "p50 ms", "p99 ms");
        for clients in [1, 16, 64] {
            let cell = load::load(&format!("{base}/api/v1/classify"), clients, Duration::from_secs(secs), bodies.clone(), 200).await;
            println!("{clients:>8} | {:>10.0} {:>8.2} {:>8.2}", cell.per_sec, cell.p50_ms, cell.p99_ms);
            println!("FIGURE classify_http clients={clients} per_sec={:.0} p50_ms={:.3} p99_ms={:.3}", cell.per_sec, cell.p50_ms, cell.p99_ms);
        }
        let batch: Vec<Value> = (0..64u64).map(|i| doodle_json(Shape::ALL[(i % 5) as usize], 500 + i)).collect();
        let batch = Arc::new(vec![json!({"drawings": batch}).to_string()]);
        let cell = load::load(&format!("{base}/api/v1/classify/batch"), 4, Duration::from_secs(secs), batch, 200).await;
        println!("batch of 64 over HTTP, 4 clients: {:.0} drawings/s ({} batches, p50 {:.1} ms per batch)", cell.per_sec * 64.0, cell.requests, cell.p50_ms);
        println!("FIGURE classify_batch drawings_per_sec={:.0} p50_ms_per_batch={:.2}", cell.per_sec * 64.0, cell.p50_ms);
    });
}

fn in_process(model_dir: &Path) -> (f64, f64) {
    let classifier = Classifier::load(model_dir).expect("the starter model loads");
    let drawings: Vec<Vec<Vec<[f32; 2]>>> = (0..64u64)
        .map(|i| synth::doodle(Shape::ALL[(i % 5) as usize], 900 + i))
        .collect();
    let mut latencies = Vec::with_capacity(RUNS);
    for i in 0..RUNS {
        let started = Instant::now();
        let answer = classifier
            .classify(&drawings[i % drawings.len()])
            .expect("classifies");
        std::hint::black_box(answer);
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    (percentile(&latencies, 0.5), percentile(&latencies, 0.99))
}
