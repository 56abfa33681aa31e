//! Quality benchmark (issue #6): how fast the background scorer keeps up with submissions,
//! how fast a rescore walk goes (heuristics only: no model, so this is the cost of reading
//! stroke records and writing scores, the part a model does not change), and what a prompt
//! costs with the weighting's stats cached. Prints figures and `FIGURE` lines; asserts
//! nothing (machines are shared and noisy).
//!
//! Run: `cargo bench --bench quality` (DOODLEBOX_BENCH_DRAWINGS sets how many drawings are
//! submitted, default 3000).

use std::time::{Duration, Instant};

use doodlebox::app::App;
use doodlebox::config::Config;
use serde_json::{json, Value};

/// Submissions in flight at once.
const CLIENTS: usize = 32;
/// Prompts timed one after another.
const PROMPTS: usize = 2_000;

fn drawings() -> usize {
    std::env::var("DOODLEBOX_BENCH_DRAWINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

/// A typical game drawing: 3 strokes of 40 points with timestamps.
fn drawing(seed: usize) -> Value {
    let strokes: Vec<Value> = (0..3)
        .map(|s| {
            let points: Vec<Value> = (0..40)
                .map(|i| {
                    let a =
                        (i as f64 / 40.0 + s as f64 + seed as f64 * 0.01) * std::f64::consts::TAU;
                    json!({"x": 200.0 + 120.0 * a.cos(), "y": 200.0 + 100.0 * a.sin(),
                           "timestamp": (s * 1_000 + i * 25) as f64})
                })
                .collect();
            json!({"points": points})
        })
        .collect();
    let shapes = ["line", "circle", "square", "triangle", "heart"];
    json!({"shape": shapes[seed % shapes.len()], "canvas": {"width": 400, "height": 400},
           "strokes": strokes, "duration_ms": 3_000})
}

fn admin(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}").parse().expect("token is ASCII");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

async fn get(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(url)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON")
}

/// Polls `url` until `done` says so; returns when that was first seen.
async fn wait(client: &reqwest::Client, url: &str, done: impl Fn(&Value) -> bool) -> Instant {
    loop {
        if done(&get(client, url).await) {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let n = drawings();
    let dir = tempfile::tempdir().expect("temp dir");
    let app = App::build(Config::for_data_dir(dir.path()))
        .await
        .expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let client = admin(&app.control().token);
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    // Submissions, then how long after the last 201 the scorer has scored them all.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, url) = (client.clone(), format!("{base}/api/v1/drawings"));
        tasks.push(tokio::spawn(async move {
            for i in (c..n).step_by(CLIENTS) {
                let response = client.post(&url).json(&drawing(i)).send().await;
                assert_eq!(response.expect("submit").status(), 201);
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    let submitted = started.elapsed();
    let last_created = Instant::now();
    let histogram = format!("{base}/api/v1/admin/quality/histogram");
    let scored = wait(&client, &histogram, |h| h["unscored"] == 0).await;
    let lag = scored - last_created;
    println!(
        "submit: {n} drawings in {:.2} s ({:.0}/s, {CLIENTS} clients); all scored {:.0} ms after the last 201",
        submitted.as_secs_f64(),
        n as f64 / submitted.as_secs_f64(),
        lag.as_secs_f64() * 1e3
    );

    // A rescore walk over all of them.
    let rescore_url = format!("{base}/api/v1/admin/quality/rescore");
    let started = Instant::now();
    let accepted = client.post(&rescore_url).send().await.expect("rescore");
    assert_eq!(accepted.status(), 202);
    let finished = wait(&client, &rescore_url, |p| p["status"] == "completed").await;
    let walk = finished - started;
    println!(
        "rescore (no model): {n} drawings in {:.2} s ({:.0} drawings/s)",
        walk.as_secs_f64(),
        n as f64 / walk.as_secs_f64()
    );

    // Prompts, each from a new player (no cookie).
    let prompt_url = format!("{base}/api/v1/prompt");
    let mut latencies = Vec::with_capacity(PROMPTS);
    for _ in 0..PROMPTS {
        let t = Instant::now();
        let prompt = get(&client, &prompt_url).await;
        assert!(prompt["shape"].is_string(), "{prompt}");
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!("prompt: p50 {p50:.2} ms, p99 {p99:.2} ms over {PROMPTS} sequential requests");

    println!(
        "FIGURE quality submit_per_sec={:.0}",
        n as f64 / submitted.as_secs_f64()
    );
    println!(
        "FIGURE quality scoring_lag_ms={:.0}",
        lag.as_secs_f64() * 1e3
    );
    println!(
        "FIGURE quality rescore_per_sec={:.0}",
        n as f64 / walk.as_secs_f64()
    );
    println!("FIGURE quality prompt_p50_ms={p50:.2}");
    println!("FIGURE quality prompt_p99_ms={p99:.2}");
}
