//! Operational behaviour every route shares: request ids.

use reqwest::StatusCode;

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
