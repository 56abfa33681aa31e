//! Operational behaviour every route shares: request ids, security headers, the JSON body
//! of a 405, and metrics labels that stay few whatever clients send.

use reqwest::StatusCode;

use serde_json::{json, Value};

use crate::helpers::TestApp;

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_plain_client_id_is_echoed() {
    let app = TestApp::spawn().await;
    let mut seen = std::collections::HashSet::new();
    for path in ["/healthz", "/api/v1/shapes", "/", "/api/v1/nope"] {
        let response = reqwest::get(app.url(path)).await.unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 32, "{path}: {id}");
        assert!(seen.insert(id), "ids are unique");
    }
    let client = reqwest::Client::new();
    let echoed = client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-42.a_b")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), StatusCode::OK);
    assert_eq!(echoed.headers()["x-request-id"], "trace-42.a_b");
    let replaced = client
        .get(app.url("/healthz"))
        .header("x-request-id", "has spaces and <html>")
        .send()
        .await
        .unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "has spaces and <html>");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_admin_answers_are_never_cached() {
    let app = TestApp::spawn().await;
    for path in ["/", "/admin/", "/healthz", "/api/v1/shapes", "/api/v1/nope"] {
        let response = reqwest::get(app.url(path)).await.unwrap();
        let headers = response.headers();
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
    }
    // The answer that carries a new API key, and every other admin answer, is no-store.
    let created = app
        .post("/api/v1/admin/keys", &json!({"name": "lab"}))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let refused = reqwest::get(app.url("/api/v1/admin/stats")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn a_method_a_route_does_not_take_gets_405_with_the_json_error_and_allow() {
    let app = TestApp::spawn().await;
    let response = reqwest::Client::new()
        .delete(app.url("/api/v1/shapes"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET"), "{allow}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
}

#[tokio::test]
async fn requests_with_made_up_methods_add_at_most_one_metrics_label() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("ODD{i}").as_bytes()).unwrap();
        let _ = client
            .request(method, app.url("/api/v1/shapes"))
            .send()
            .await;
    }
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let known = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
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
    assert!(
        metrics.len() < 64 * 1024,
        "/metrics stays small: {} bytes",
        metrics.len()
    );
}
