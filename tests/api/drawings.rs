use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, new_player, sample_drawing, TestApp};

/// Tries of an oversized submission before its answer must have been read.
const OVERSIZE_TRIES: usize = 5;
#[tokio::test]
async fn a_submitted_drawing_reads_back_with_the_same_json_values() {
    let app = TestApp::spawn().await;
    let response = app.submit(&app.client, &sample_drawing(), None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "created");
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/drawings/{id}"));

    let got: Value = app
        .client
        .get(app.url(&location))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], id);
    assert_eq!(got["drawing"], sample_drawing());
    assert!(got["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn another_player_cannot_read_someone_elses_drawing() {
    let app = TestApp::spawn().await;
    let body: Value = app
        .submit(&app.client, &sample_drawing(), None)
        .await
        .json()
        .await
        .unwrap();
    let url = app.url(&format!(
        "/api/v1/drawings/{}",
        body["id"].as_str().unwrap()
    ));
    let response = new_player().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(response).await, "not_found");
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_returns_the_original_drawing() {
    let app = TestApp::spawn().await;
    let first = app
        .submit(&app.client, &sample_drawing(), Some("round-1"))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();

    let again = app
        .submit(&app.client, &sample_drawing(), Some("round-1"))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["status"], "duplicate");
    assert_eq!(app.drawing_count().await, 1);

    // Keys are scoped to the player: another player's same key is a new drawing.
    let other = app
        .submit(&new_player(), &sample_drawing(), Some("round-1"))
        .await;
    assert_eq!(other.status(), StatusCode::CREATED);
    assert_eq!(app.drawing_count().await, 2);
}

#[tokio::test]
async fn the_same_idempotency_key_with_a_different_body_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    app.submit(&app.client, &sample_drawing(), Some("k")).await;
    let mut changed = sample_drawing();
    changed["duration_ms"] = json!(9999);
    let response = app.submit(&app.client, &changed, Some("k")).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(response).await, "idempotency_key_reused");
    assert_eq!(app.drawing_count().await, 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_store_exactly_one_drawing() {
    // 32 requests at once from one player exceed the session's burst; this test is about
    // idempotency, so the limits are off (tests/api/keys.rs covers them).
    let dir = tempfile::tempdir().unwrap();
    let mut config = doodlebox::config::Config::for_data_dir(dir.path());
    config.rate_limits = doodlebox::service::limits::RateLimits::OFF;
    let app = TestApp::spawn_with(config).await;
    // Give the client its cookie first, so all requests come from one player.
    app.client
        .get(app.url("/api/v1/prompt"))
        .send()
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (client, url) = (app.client.clone(), app.url("/api/v1/drawings"));
        tasks.spawn(async move {
            let response = client
                .post(url)
                .header("Idempotency-Key", "same-key")
                .json(&sample_drawing())
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body["id"].as_str().map(str::to_owned))
        });
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    while let Some(result) = tasks.join_next().await {
        let (status, id) = result.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::OK | StatusCode::CONFLICT => {}
            other => panic!("unexpected status {other}"),
        }
        ids.extend(id);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(app.drawing_count().await, 1);
}

/// Each class of bad input: its status, its error code, and nothing stored.
#[tokio::test]
async fn bad_drawings_get_a_clear_4xx_and_store_nothing() {
    let app = TestApp::spawn().await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = sample_drawing();
        f(&mut d);
        d
    };
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "wrong type",
            with(&|d| d["canvas"]["width"] = json!("wide")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "missing field",
            with(&|d| {
                d.as_object_mut().unwrap().remove("strokes");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "missing x",
            with(&|d| {
                d["strokes"][0]["points"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("x");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "unknown field",
            with(&|d| d["colour"] = json!("red")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "no strokes",
            with(&|d| d["strokes"] = json!([])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_drawing",
        ),
        (
            "empty stroke",
            with(&|d| d["strokes"][1]["points"] = json!([])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_drawing",
        ),
        (
            "absurd coordinate",
            with(&|d| d["strokes"][0]["points"][0]["x"] = json!(1e12)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_drawing",
        ),
        (
            "pressure above 1",
            with(&|d| d["strokes"][0]["points"][0]["pressure"] = json!(1.01)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_drawing",
        ),
        (
            "time going backwards",
            with(&|d| d["strokes"][1]["points"][0]["timestamp"] = json!(1)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_drawing",
        ),
        (
            "unknown shape",
            with(&|d| d["shape"] = json!("dodecahedron")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_shape",
        ),
        (
            "invalid shape name",
            with(&|d| d["shape"] = json!("<script>")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_drawing",
        ),
        (
            "unknown device",
            with(&|d| d["device"] = json!("joystick")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "too many strokes",
            with(&|d| d["strokes"] = json!(vec![d["strokes"][1].clone(); 1001])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_drawing",
        ),
        (
            "too many points",
            with(&|d| {
                d["strokes"][0]["points"] = json!(vec![d["strokes"][0]["points"][0].clone(); 8001])
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_drawing",
        ),
    ];
    for (what, body, status, code) in cases {
        let response = app.submit(&app.client, &body, None).await;
        assert_eq!(response.status(), status, "{what}");
        assert_eq!(error_code(response).await, code, "{what}");
    }

    let response = app
        .submit_raw("{\"shape\": \"circle\",", "application/json")
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "malformed_json");

    let response = app
        .submit_raw(&sample_drawing().to_string(), "text/plain")
        .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(response).await, "unsupported_media_type");

    let huge = format!(
        "{{\"shape\":\"circle\",\"pad\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    // The server answers once it has read past the limit and closes the connection, so a
    // client still writing the rest may see the connection reset instead of the answer (as
    // any HTTP client can); the answer must come within a few tries.
    let mut answered = None;
    for _ in 0..OVERSIZE_TRIES {
        let sent = app
            .client
            .post(app.url("/api/v1/drawings"))
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                answered = Some(response);
                break;
            }
            Err(e) => assert!(e.is_request(), "only a reset write may fail: {e}"),
        }
    }
    let response = answered.expect("an answer to an oversized drawing");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The unread rest of the body makes the connection useless: the client must not reuse it.
    assert_eq!(response.headers()["connection"], "close");
    assert_eq!(error_code(response).await, "body_too_large");

    for key in ["", &"k".repeat(256), "tab\there"] {
        let response = app.submit(&app.client, &sample_drawing(), Some(key)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "key {key:?}");
        assert_eq!(error_code(response).await, "invalid_idempotency_key");
    }

    assert_eq!(app.drawing_count().await, 0);
}

#[tokio::test]
async fn an_unknown_or_malformed_drawing_id_is_a_json_404() {
    let app = TestApp::spawn().await;
    for id in ["not-a-uuid", "01a221f7-8c8a-7e91-9a29-c107f1edc610"] {
        let response = app
            .client
            .get(app.url(&format!("/api/v1/drawings/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(response).await, "not_found");
    }
}

#[tokio::test]
async fn drawings_survive_a_restart_on_the_same_data_directory() {
    let app = TestApp::spawn().await;
    let client = app.client.clone();
    let body: Value = app
        .submit(&client, &sample_drawing(), Some("persist"))
        .await
        .json()
        .await
        .unwrap();
    let data_dir = app.data_dir.clone();
    let keep = app.stop().await;
    let app = TestApp::spawn_on(data_dir).await;
    let got: Value = client
        .get(app.url(&format!(
            "/api/v1/drawings/{}",
            body["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["drawing"], sample_drawing());
    // The idempotency record survived too.
    let again = app
        .submit(&client, &sample_drawing(), Some("persist"))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    drop(keep);
}
