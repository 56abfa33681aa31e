//! The real binary under hostile load (issue #13, item 7): a crowd of 4,000 connections
//! against a process limited to 1,024 descriptors, made-up HTTP methods, and a client that
//! trickles its headers. What is checked is behaviour (nothing breaks, nothing grows, the
//! slow client is dropped); how fast it goes is `benches/hostile.rs`'s business.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

// The launcher's other helpers serve the other test binaries.
#[allow(dead_code)]
#[path = "common/server.rs"]
mod server;

use server::Server;

/// Descriptors the server gets, soft and hard: the common desktop default.
const SERVER_NOFILE: u64 = 1024;
/// Connections in the crowd.
const CROWD: usize = 4000;
/// How long the crowd submits.
const FLOOD_FOR: Duration = Duration::from_secs(10);
/// Requests with made-up methods.
const ODD_METHODS: usize = 300;
/// The longest a client trickling its headers may stay connected.
const TRICKLE_DROPPED_WITHIN: Duration = Duration::from_secs(40);
/// How often the trickling client sends one more header line.
const TRICKLE_EVERY: Duration = Duration::from_secs(5);

fn drawing() -> serde_json::Value {
    json!({"shape": "circle", "canvas": {"width": 400, "height": 400},
           "strokes": [{"points": [{"x": 10, "y": 10}, {"x": 200, "y": 120}, {"x": 30, "y": 300}]}],
           "duration_ms": 900})
}

async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("/metrics body")
}

/// The value of the first sample line that starts with `prefix`.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_of_4000_connections_on_1024_descriptors_stores_drawings_and_never_trips_the_breaker(
) {
    // The crowd's own sockets: this process needs more than 4,000 descriptors.
    let own = doodlebox::http::listener::DescriptorBudget::raise(None);
    if own.limit < CROWD as u64 + 256 {
        eprintln!(
            "skipped: this process may open only {} descriptors (ulimit -Hn), the crowd needs {}",
            own.limit,
            CROWD + 256
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_limited(dir.path(), SERVER_NOFILE, &[]);
    let base = Arc::new(server.base.clone());
    let before = metrics(&base).await;
    assert_eq!(
        sample(&before, "doodlebox_descriptor_limit "),
        Some(SERVER_NOFILE as f64),
        "the server runs under the limit"
    );
    let limit = sample(&before, "doodlebox_connections_limit ").unwrap();
    assert!(
        limit < SERVER_NOFILE as f64,
        "connections capped below the budget: {limit}"
    );

    let (stored, refused, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let deadline = Instant::now() + FLOOD_FOR;
    let body = Arc::new(drawing().to_string());
    let mut crowd = Vec::with_capacity(CROWD);
    for _ in 0..CROWD {
        let (base, body) = (base.clone(), body.clone());
        let (stored, refused, failed) = (stored.clone(), refused.clone(), failed.clone());
        crowd.push(tokio::spawn(async move {
            // One client per member: one connection each, as 4,000 browsers would have.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap();
            while Instant::now() < deadline {
                let sent = client
                    .post(format!("{base}/api/v1/drawings"))
                    .header("content-type", "application/json")
                    .body(body.as_str().to_owned())
                    .send()
                    .await;
                let counter = match sent.map(|r| r.status().as_u16()) {
                    Ok(201) => &stored,
                    Ok(503) => &refused,
                    Ok(status) => panic!("a submission got {status}"),
                    Err(_) => &failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for member in crowd {
        member.await.unwrap();
    }
    let (stored, refused, failed) = (
        stored.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    eprintln!(
        "{CROWD} connections for {} s on {SERVER_NOFILE} descriptors: {stored} stored, {refused} refused with 503, {failed} failed to connect or timed out",
        FLOOD_FOR.as_secs()
    );

    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/drawings"))
        .json(&drawing())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "the next submission is stored");

    let after = metrics(&base).await;
    assert_eq!(
        sample(
            &after,
            "doodlebox_circuit_breaker_opened_total{breaker=\"storage\"}"
        ),
        Some(0.0),
        "the storage breaker never opened"
    );
    let durable = sample(&after, "doodlebox_ingest_drawings_total").unwrap_or(0.0);
    assert!(
        stored >= 1000 && durable >= 1000.0,
        "at least 1,000 drawings stored: {stored} acknowledged, {durable} written"
    );
    let log = server.output();
    let emfile: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("Too many open files") || l.contains("os error 24"))
        .collect();
    assert!(emfile.is_empty(), "no EMFILE anywhere: {emfile:?}");
    assert!(
        !log.iter().any(|l| l.contains("storage I/O")),
        "no storage fault: {log:?}"
    );
}

#[tokio::test]
async fn three_hundred_made_up_methods_add_at_most_one_metrics_label() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_limited(dir.path(), SERVER_NOFILE, &[]);
    let client = reqwest::Client::new();
    for i in 0..ODD_METHODS {
        let method = reqwest::Method::from_bytes(format!("ODD{i}").as_bytes()).unwrap();
        let response = client
            .request(method, format!("{}/api/v1/shapes", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
    }
    let metrics = metrics(&server.base).await;
    let known = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    let methods: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("doodlebox_http_requests_total{"))
        .filter_map(|l| l.split("method=\"").nth(1)?.split('"').next())
        .collect();
    let unknown: Vec<&&str> = methods.iter().filter(|m| !known.contains(m)).collect();
    assert!(
        unknown.len() <= 1,
        "labels beyond the known methods: {unknown:?}"
    );
}

#[test]
fn a_client_trickling_its_headers_is_dropped_within_40_s() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_limited(dir.path(), SERVER_NOFILE, &[]);
    let mut slow = std::net::TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(TRICKLE_EVERY)).unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /api/v1/shapes HTTP/1.1\r\nHost: doodlebox\r\n")
        .unwrap();
    let mut line = 0;
    let dropped_after = loop {
        let mut byte = [0u8; 512];
        match slow.read(&mut byte) {
            // Closed, or answered (a 408 or the like) and then closed.
            Ok(0) | Err(_) if started.elapsed() < TRICKLE_EVERY / 2 => {
                panic!("dropped at once, before it was slow")
            }
            Ok(0) => break started.elapsed(),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break started.elapsed(),
        }
        assert!(
            started.elapsed() < TRICKLE_DROPPED_WITHIN,
            "still connected after {:?}",
            started.elapsed()
        );
        line += 1;
        if slow
            .write_all(format!("X-Slow-{line}: still here\r\n").as_bytes())
            .is_err()
        {
            break started.elapsed();
        }
    };
    assert!(
        dropped_after < TRICKLE_DROPPED_WITHIN,
        "dropped after {dropped_after:?}"
    );
    eprintln!("the trickling client was dropped after {dropped_after:?}");
}
