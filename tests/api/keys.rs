//! API keys, rate limits and metrics around the classify API.

use std::time::{Duration, Instant};

use doodlebox::ml::synth::Shape;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, new_player, TestApp};
use crate::synthetic::doodle_json;

async fn create_key(app: &TestApp, body: Value) -> Value {
    let response = app.post("/api/v1/admin/keys", &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn classify_with(app: &TestApp, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/v1/classify"))
        .bearer_auth(key)
        .json(&doodle_json(Shape::Circle, 5))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_is_shown_once_authenticates_and_stops_working_when_revoked() {
    let app = TestApp::spawn().await;
    let created = create_key(&app, json!({"name": "lab robot"})).await;
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("dbx_"), "{created}");
    assert_eq!(created["rate_per_min"], 600);
    // No model is active: an accepted key gets 503, not 401.
    let accepted = classify_with(&app, &key).await;
    assert_eq!(accepted.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(accepted).await, "no_active_model");
    // The list never shows the secret, and records the use within seconds.
    let started = Instant::now();
    let listed = loop {
        let listed: Value = app.get_json("/api/v1/admin/keys").await;
        if listed["keys"][0]["last_used_at"].is_i64() || started.elapsed() > Duration::from_secs(20)
        {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!listed.to_string().contains(&key[4..]), "{listed}");
    assert_eq!(listed["keys"][0]["name"], "lab robot");
    assert!(listed["keys"][0]["last_used_at"].is_i64(), "{listed}");

    let id = created["id"].as_i64().unwrap();
    let revoked = app.delete(&format!("/api/v1/admin/keys/{id}")).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let refused = classify_with(&app, &key).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(refused).await, "invalid_api_key");
    let again = app.delete("/api/v1/admin/keys/999").await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_or_malformed_keys_get_401_and_change_nothing() {
    let app = TestApp::spawn().await;
    for header in ["Bearer dbx_0000", "Bearer ", "Basic abc", "dbx_1234"] {
        let response = reqwest::Client::new()
            .post(app.url("/api/v1/classify"))
            .header("authorization", header)
            .json(&doodle_json(Shape::Circle, 5))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
        assert_eq!(error_code(response).await, "invalid_api_key");
    }
    let listed: Value = app.get_json("/api/v1/admin/keys").await;
    assert_eq!(listed["keys"], json!([]));
}

#[tokio::test]
async fn bad_key_requests_get_422_and_create_nothing() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"name": ""}),
        json!({"name": "x".repeat(81)}),
        json!({"name": "ok", "rate_per_min": 0}),
        json!({"name": "ok", "rate_per_min": -5}),
        json!({"name": "ok", "colour": "red"}),
        json!({}),
    ] {
        let response = app.post("/api/v1/admin/keys", &body).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
    }
    let listed: Value = app.get_json("/api/v1/admin/keys").await;
    assert_eq!(listed["keys"], json!([]));
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let app = TestApp::spawn().await;
    // 4 a minute: a burst of one, then one every 15 s.
    let created = create_key(&app, json!({"name": "slow", "rate_per_min": 4})).await;
    let key = created["key"].as_str().unwrap();
    assert_ne!(
        classify_with(&app, key).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let limited = classify_with(&app, key).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15).contains(&retry), "{retry}");
    assert_eq!(error_code(limited).await, "rate_limited");
    // Another key is not affected.
    let other = create_key(&app, json!({"name": "other"})).await;
    assert_ne!(
        classify_with(&app, other["key"].as_str().unwrap())
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"doodlebox_rate_limited_total{scope="api_key"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_player_guessing_too_fast_is_limited_but_the_next_player_is_not() {
    let app = TestApp::spawn().await;
    let player = new_player();
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let response = player
            .post(app.url("/api/v1/classify"))
            .json(&doodle_json(Shape::Line, 2))
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    // The session's burst is 30: the first 30 pass the limit (503: no model yet).
    assert!(
        statuses[..30]
            .iter()
            .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    assert!(
        statuses[30..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let next = new_player()
        .post(app.url("/api/v1/classify"))
        .json(&doodle_json(Shape::Line, 2))
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_player_submitting_too_fast_gets_429_and_the_refused_drawing_is_not_stored() {
    let app = TestApp::spawn().await;
    let player = new_player();
    let mut created = 0;
    let mut limited = 0;
    let started = std::time::Instant::now();
    for i in 0..25 {
        let response = app
            .submit(&player, &doodle_json(Shape::Square, i), None)
            .await;
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    // A burst of 20, plus the one a second the bucket refills while the loop runs (a loaded
    // machine may take more than a second for 25 requests).
    let refilled = started.elapsed().as_secs_f64().floor() as usize;
    assert!(limited >= 1, "created {created}, limited {limited}");
    assert!(
        (20..=20 + refilled).contains(&created),
        "created {created} in {:?}",
        started.elapsed()
    );
    assert_eq!(app.drawing_count().await, created as u64);
    // A classmate behind the same address still gets in.
    let classmate = new_player();
    assert_eq!(
        app.submit(&classmate, &doodle_json(Shape::Square, 99), None)
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn rate_limits_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = doodlebox::config::Config::for_data_dir(dir.path());
    config.rate_limits = doodlebox::service::limits::RateLimits::OFF;
    let app = TestApp::spawn_with(config).await;
    let player = new_player();
    for i in 0..40 {
        let response = app
            .submit(&player, &doodle_json(Shape::Circle, i), None)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

#[tokio::test]
async fn metrics_count_requests_errors_and_ingest() {
    let app = TestApp::spawn().await;
    let player = new_player();
    assert_eq!(
        app.submit(&player, &doodle_json(Shape::Circle, 1), None)
            .await
            .status(),
        StatusCode::CREATED
    );
    let bad = app.submit_raw("{", "application/json").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for expected in [
        r#"doodlebox_http_requests_total{method="POST",route="/api/v1/drawings",status="201"} 1"#,
        r#"doodlebox_http_requests_total{method="POST",route="/api/v1/drawings",status="400"} 1"#,
        r#"doodlebox_errors_total{code="malformed_json"} 1"#,
        "doodlebox_ingest_drawings_total 1",
        r#"doodlebox_http_request_duration_seconds_count{route="/api/v1/drawings"} 2"#,
        "doodlebox_disk_free_bytes ",
        "doodlebox_ingest_queue_depth 0",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}
