//! Hostile-load benchmark (issue #13, item 7): the real binary under
//! - a crowd soak: 4,000 connections against 1,024 descriptors, and 10,000 connections
//!   with the hard limit raised (the design's 10K concurrent users), each submitting
//!   drawings as fast as it is answered: drawings stored, refusals (`503` at the edge),
//!   failed connections, p50/p99 of the stored ones;
//! - each memory attack of the issue, with the server's resident memory (RSS) before and
//!   after: made-up HTTP methods, huge usernames at login, clients trickling headers.
//!
//! Prints figures; asserts nothing (machines are shared and noisy). The behaviour itself
//! is checked by `tests/hostile.rs`.
//!
//! Run: `cargo bench --bench hostile` (DOODLEBOX_BENCH_SECS sets the soak's seconds,
//! default 15). The 10,000-connection soak needs a hard descriptor limit above 10,500 for
//! this process and the server (`ulimit -Hn`); it is skipped, with a message, below that.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

/// The binary under test.
const BINARY: &str = env!("CARGO_BIN_EXE_doodlebox");
/// Requests with made-up methods, and each method's length.
const ODD_METHODS: usize = 1000;
const ODD_METHOD_BYTES: usize = 8 * 1024;
/// Login tries with a huge username, and its length.
const HUGE_LOGINS: usize = 200;
const HUGE_USERNAME_BYTES: usize = 512 * 1024;
/// Clients trickling headers, and for how long they trickle.
const TRICKLERS: usize = 1000;
const TRICKLE_FOR: Duration = Duration::from_secs(30);

/// The server as a child process, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts the binary, under `ulimit -n nofile` when given.
    fn start(data: &std::path::Path, nofile: Option<u64>) -> Self {
        let mut command = match nofile {
            Some(n) => {
                let mut shell = Command::new("sh");
                shell.args([
                    "-c",
                    &format!("ulimit -n {n} && exec \"$0\" \"$@\""),
                    BINARY,
                ]);
                shell
            }
            None => Command::new(BINARY),
        };
        let mut child = command
            .args(["serve", "--bind", "127.0.0.1:0", "--rate-limit", "off"])
            .arg("--no-starter-model")
            .arg("--data-dir")
            .arg(data)
            .env("DOODLEBOX_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut first = String::new();
        reader.read_line(&mut first).expect("first line");
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        std::thread::spawn(move || for _ in reader.lines().map_while(Result::ok) {});
        Self { child, base }
    }

    /// Resident memory in MiB, from /proc.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn body() -> String {
    let points: Vec<_> = (0..40)
        .map(|i| json!({"x": 10 + i * 9, "y": 200 + (i % 7) * 11, "pressure": 0.5, "timestamp": 1_700_000_000_000u64 + i * 16}))
        .collect();
    json!({"shape": "circle", "canvas": {"width": 400, "height": 400},
           "strokes": [{"points": points, "color": "#000000", "width": 3}], "duration_ms": 2000})
    .to_string()
}

/// `connections` clients, one connection each, submitting for `duration`.
async fn soak(base: &str, connections: usize, duration: Duration) {
    let (stored, refused, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let body = Arc::new(body());
    let start = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (url, body) = (format!("{base}/api/v1/drawings"), body.clone());
            let (stored, refused, failed) = (stored.clone(), refused.clone(), failed.clone());
            let latencies = latencies.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("client");
                let mut mine = Vec::new();
                while start.elapsed() < duration {
                    let sent = Instant::now();
                    let answer = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.as_str().to_owned())
                        .send()
                        .await;
                    match answer.map(|r| r.status().as_u16()) {
                        Ok(201) => {
                            stored.fetch_add(1, Ordering::Relaxed);
                            mine.push(sent.elapsed());
                        }
                        Ok(503) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut all = std::mem::take(&mut *latencies.lock().unwrap());
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "  {connections:>6} connections, {elapsed:.1} s: {} stored ({:.0}/s), {} refused (503), {} failed; p50 {:.1} ms, p99 {:.1} ms",
        stored.load(Ordering::Relaxed),
        stored.load(Ordering::Relaxed) as f64 / elapsed,
        refused.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        pct(0.50),
        pct(0.99)
    );
}

async fn odd_methods(server: &Server) {
    let client = reqwest::Client::new();
    let before = server.rss_mib();
    for i in 0..ODD_METHODS {
        let mut name = format!("ODD{i}X");
        name.extend(std::iter::repeat_n('Y', ODD_METHOD_BYTES));
        let method = reqwest::Method::from_bytes(name.as_bytes()).expect("a token");
        let _ = client
            .request(method, format!("{}/api/v1/shapes", server.base))
            .send()
            .await;
    }
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .expect("/metrics")
        .text()
        .await
        .unwrap_or_default();
    println!(
        "  odd methods: {ODD_METHODS} requests with {} KiB methods: RSS {before:.1} -> {:.1} MiB, /metrics {} KiB",
        ODD_METHOD_BYTES / 1024,
        server.rss_mib(),
        metrics.len() / 1024
    );
}

async fn huge_logins(server: &Server) {
    let client = reqwest::Client::new();
    let before = server.rss_mib();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..HUGE_LOGINS {
        let username = format!("{i}{}", "u".repeat(HUGE_USERNAME_BYTES));
        let status = client
            .post(format!("{}/api/v1/admin/login", server.base))
            .json(&json!({"username": username, "password": "not the password"}))
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        *statuses.entry(status).or_insert(0) += 1;
    }
    println!(
        "  huge usernames: {HUGE_LOGINS} logins with {} KiB usernames (answers {statuses:?}): RSS {before:.1} -> {:.1} MiB",
        HUGE_USERNAME_BYTES / 1024,
        server.rss_mib()
    );
}

fn slow_headers(server: &Server) {
    let before = server.rss_mib();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let mut open: Vec<std::net::TcpStream> = (0..TRICKLERS)
        .filter_map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).ok()?;
            s.write_all(b"GET /api/v1/shapes HTTP/1.1\r\nHost: x\r\n")
                .ok()?;
            Some(s)
        })
        .collect();
    let connected = open.len();
    let mut peak = server.rss_mib();
    let mut line = 0;
    while started.elapsed() < TRICKLE_FOR && !open.is_empty() {
        std::thread::sleep(Duration::from_secs(1));
        line += 1;
        let header = format!("X-Slow-{line}: {}\r\n", "z".repeat(1000));
        open.retain_mut(|s| s.write_all(header.as_bytes()).is_ok());
        peak = peak.max(server.rss_mib());
    }
    println!(
        "  slow headers: {connected} clients trickling 1 KB a second for {} s: {} still connected at the end; RSS {before:.1} -> peak {peak:.1} -> {:.1} MiB",
        TRICKLE_FOR.as_secs(),
        open.len(),
        server.rss_mib()
    );
}

fn main() {
    let own = doodlebox::http::listener::DescriptorBudget::raise(None);
    let secs = std::env::var("DOODLEBOX_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let duration = Duration::from_secs(secs);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "hostile load (this process may open {} descriptors)",
        own.limit
    );

    println!("crowd soak, server limited to 1,024 descriptors:");
    {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(dir.path(), Some(1024));
        runtime.block_on(soak(&server.base, 4000, duration));
        println!("  server RSS after: {:.1} MiB", server.rss_mib());
    }
    println!("crowd soak, server at the hard limit:");
    if own.limit < 10_500 {
        println!(
            "  skipped: the hard descriptor limit is {}; 10,000 connections need more than 10,500 (ulimit -Hn)",
            own.limit
        );
    } else {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(dir.path(), None);
        runtime.block_on(soak(&server.base, 10_000, duration));
        println!("  server RSS after: {:.1} MiB", server.rss_mib());
    }

    println!("memory attacks (one fresh server each):");
    for attack in ["odd methods", "huge usernames", "slow headers"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(dir.path(), None);
        match attack {
            "odd methods" => runtime.block_on(odd_methods(&server)),
            "huge usernames" => runtime.block_on(huge_logins(&server)),
            _ => slow_headers(&server),
        }
    }
}
