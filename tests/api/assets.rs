use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{error_code, TestApp};

#[tokio::test]
async fn the_game_page_is_served_uncached_with_an_etag_that_revalidates() {
    let app = TestApp::spawn().await;
    let response = reqwest::get(app.url("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let etag = response.headers()["etag"].clone();
    let again = reqwest::Client::new()
        .get(app.url("/"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn unknown_api_paths_get_json_404_not_the_page() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/nothing-here", "/api/v2/drawings", "/api"] {
        let response = reqwest::get(app.url(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_code(response).await, "not_found");
    }
}

#[tokio::test]
async fn health_and_join_answer() {
    let app = TestApp::spawn().await;
    let health: Value = reqwest::get(app.url("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let join: Value = reqwest::get(app.url("/api/v1/join"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(join["urls"][0], app.base);
    assert!(join["qr_svg"].as_str().unwrap().contains("<svg"));
}
