//! A closed-loop HTTP load generator shared by the benchmarks: `clients` concurrent loops
//! POSTing for a while, every answer checked, latencies collected.
//!
//! Each loop is one browser-like client: it keeps the cookie the server sets on its first
//! answer (Doodlebox's player cookie) and sends it with every later request, so 64 clients
//! are 64 players, as in a room of people drawing. A client that never kept its cookie
//! would be a new player with every drawing.

use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Cell {
    /// Answers received (all with the expected status).
    pub requests: usize,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `clients` concurrent loops POSTing for `duration`; every answer must have `expect` status.
pub async fn load(
    url: &str,
    clients: usize,
    duration: Duration,
    bodies: Arc<Vec<String>>,
    expect: u16,
) -> Cell {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (client, url, bodies) = (client.clone(), url.to_owned(), bodies.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = c;
                let mut cookie: Option<String> = None;
                while start.elapsed() < duration {
                    let sent = Instant::now();
                    let mut request = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(bodies[i % bodies.len()].clone());
                    if let Some(cookie) = &cookie {
                        request = request.header("cookie", cookie);
                    }
                    let response = request.send().await.expect("request");
                    assert_eq!(response.status(), expect, "bench request failed");
                    if cookie.is_none() {
                        cookie = first_cookie(&response);
                    }
                    response.bytes().await.expect("body");
                    latencies.push(sent.elapsed());
                    i += clients;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    Cell {
        requests: all.len(),
        per_sec: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

/// The `name=value` of the first cookie an answer sets.
fn first_cookie(response: &reqwest::Response) -> Option<String> {
    let set = response
        .headers()
        .get(reqwest::header::SET_COOKIE)?
        .to_str()
        .ok()?;
    Some(set.split(';').next()?.trim().to_owned())
}
