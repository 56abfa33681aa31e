//! The edge (`doodlebox::http::listener`): the connection cap answers `503` with
//! `Retry-After` past it, a client slow to send its headers or its body is dropped, and
//! `/metrics` shows the connections against their cap.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use doodlebox::config::Config;
use doodlebox::http::listener::EdgeLimits;
use reqwest::StatusCode;

use crate::helpers::{error_code, TestApp};

/// Short timeouts, so that the tests wait seconds, not the server's defaults.
const SHORT: Duration = Duration::from_secs(1);

async fn edge_app(max_connections: usize) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(dir.path());
    config.edge = EdgeLimits {
        max_connections: Some(max_connections),
        header_timeout: SHORT,
        body_idle_timeout: SHORT,
        upload_idle_timeout: SHORT,
    };
    (TestApp::spawn_with(config).await, dir)
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or 10 s pass): what it answered, and
/// how long it took.
fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn past_the_connection_cap_a_request_gets_503_with_retry_after_and_idle_ones_are_dropped() {
    let (app, _dir) = edge_app(2).await;
    // Two connections that send nothing hold both slots.
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(addr(&app)).unwrap())
        .collect();
    // Accepted in the order they connected: the request below comes third.
    let busy = reqwest::get(app.url("/api/v1/shapes")).await.unwrap();
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(busy.headers().contains_key("retry-after"));
    assert_eq!(error_code(busy).await, "server_busy");
    // The header timeout frees the slots: the idle connections are closed.
    for mut stream in idle {
        let (answer, took) = tokio::task::spawn_blocking(move || until_closed(&mut stream))
            .await
            .unwrap();
        assert!(
            took < Duration::from_secs(5),
            "dropped after {took:?}: {answer}"
        );
    }
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "doodlebox_connections_limit 2",
        "doodlebox_connections_open 1",
        "doodlebox_connections_refused_total 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    assert!(metrics.contains("doodlebox_descriptor_limit "));
}

#[tokio::test]
async fn a_client_trickling_its_headers_or_stalling_its_body_is_dropped() {
    let (app, _dir) = edge_app(8).await;
    let address = addr(&app);
    let headers = tokio::task::spawn_blocking({
        let address = address.clone();
        move || {
            let mut stream = TcpStream::connect(address).unwrap();
            stream
                .write_all(b"GET /api/v1/shapes HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            until_closed(&mut stream)
        }
    });
    let body = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .write_all(
                b"POST /api/v1/drawings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"shape\":",
            )
            .unwrap();
        until_closed(&mut stream)
    });
    let (answer, took) = headers.await.unwrap();
    assert!(
        took < Duration::from_secs(5),
        "headers: dropped after {took:?}"
    );
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (answer, took) = body.await.unwrap();
    assert!(
        took < Duration::from_secs(5),
        "body: dropped after {took:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "a stalled body is never stored: {answer}"
    );
    let stats = app.get_json("/api/v1/admin/stats").await;
    assert_eq!(stats["drawings"], 0, "{stats}");
}
