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

#[tokio::test]
async fn a_new_shape_gets_a_picture_drawn_from_its_drawings_and_never_a_404() {
    let app = crate::helpers::TestApp::spawn().await;
    crate::shapes_admin::add_star(&app).await;
    let fallback = reqwest::get(app.url("/icons/fallback.svg"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let before = reqwest::get(app.url("/icons/star.svg")).await.unwrap();
    assert_eq!(before.status(), 200);
    assert_eq!(
        before.text().await.unwrap(),
        fallback,
        "no drawing yet: the pencil"
    );

    let mut drawing = crate::helpers::sample_drawing();
    drawing["shape"] = "star".into();
    let player = crate::helpers::new_player();
    assert_eq!(app.submit(&player, &drawing, None).await.status(), 201);
    let after = reqwest::get(app.url("/icons/star.svg")).await.unwrap();
    assert_eq!(after.status(), 200);
    assert_eq!(after.headers()["content-type"], "image/svg+xml");
    let svg = after.text().await.unwrap();
    assert!(
        svg.contains("viewBox=\"0 0 64 64\"") && svg.contains("<path d=\"M"),
        "{svg}"
    );
    assert_ne!(svg, fallback);
    // Two strokes, each its own move.
    assert_eq!(svg.matches('M').count(), 2, "{svg}");

    let builtin = reqwest::get(app.url("/icons/circle.svg")).await.unwrap();
    assert_eq!(builtin.status(), 200);
    let unknown = reqwest::get(app.url("/icons/no%20such%20shape.svg"))
        .await
        .unwrap();
    assert_eq!(
        unknown.status(),
        200,
        "an unknown shape gets the pencil too"
    );
}
