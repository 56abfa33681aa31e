use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_five_default_shapes_are_listed_with_description_and_difficulty() {
    let app = TestApp::spawn().await;
    let body: Value = app
        .client
        .get(app.url("/api/v1/shapes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shapes = body["shapes"].as_array().unwrap();
    let names: Vec<&str> = shapes.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for name in ["line", "circle", "square", "triangle", "heart"] {
        assert!(names.contains(&name), "{name} missing");
    }
    assert!(shapes
        .iter()
        .all(|s| s["description"].is_string() && s["difficulty"].is_number()));
}

#[tokio::test]
async fn the_prompt_sets_a_player_cookie_and_favours_shapes_the_player_has_not_drawn() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/api/v1/prompt"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("doodlebox_player=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    // Draw every shape but one: the prompt must be the remaining one.
    let mut drawing = crate::helpers::sample_drawing();
    for shape in ["line", "circle", "square", "triangle"] {
        drawing["shape"] = shape.into();
        assert_eq!(
            app.submit(&app.client, &drawing, None).await.status(),
            StatusCode::CREATED
        );
    }
    for _ in 0..5 {
        let prompt: Value = app
            .client
            .get(app.url("/api/v1/prompt"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(prompt["shape"], "heart");
    }
}

#[tokio::test]
async fn a_nickname_is_validated() {
    let app = TestApp::spawn().await;
    let ok = app
        .client
        .put(app.url("/api/v1/player"))
        .json(&serde_json::json!({"nickname": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let bad = app
        .client
        .put(app.url("/api/v1/player"))
        .json(&serde_json::json!({"nickname": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
