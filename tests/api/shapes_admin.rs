//! Shapes management (admin): add, edit, retire; retired shapes are neither prompted nor
//! accepted; prompts favour shapes with fewer good drawings.

use std::collections::HashMap;

use doodlebox::ml::synth::Shape;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, new_player, TestApp};
use crate::synthetic::doodle_json;

async fn patch(app: &TestApp, name: &str, body: Value) -> reqwest::Response {
    app.admin
        .patch(app.url(&format!("/api/v1/admin/shapes/{name}")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The shape names `GET /api/v1/shapes` shows players.
async fn public_shapes(app: &TestApp) -> Vec<String> {
    let body: Value = app
        .client
        .get(app.url("/api/v1/shapes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The shape a brand-new player is prompted with.
async fn prompt_of_a_new_player(app: &TestApp) -> reqwest::Response {
    new_player()
        .get(app.url("/api/v1/prompt"))
        .send()
        .await
        .unwrap()
}

/// Adds the shape "star" (five points, difficulty 3) and answers it as created.
pub(crate) async fn add_star(app: &TestApp) -> Value {
    let created = app
        .post(
            "/api/v1/admin/shapes",
            &json!({"name": "star", "description": "five points", "difficulty": 3}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    created.json().await.unwrap()
}

fn star(seed: u64) -> Value {
    let mut drawing = doodle_json(Shape::Triangle, seed);
    drawing["shape"] = "star".into();
    drawing
}

#[tokio::test]
async fn an_admin_adds_edits_and_retires_a_shape_whose_drawings_are_kept() {
    let app = TestApp::spawn().await;
    let created = add_star(&app).await;
    assert_eq!(
        (
            &created["name"],
            &created["difficulty"],
            &created["active"],
            &created["drawings"]
        ),
        (&json!("star"), &json!(3), &json!(true), &json!(0))
    );
    assert!(public_shapes(&app).await.contains(&"star".to_owned()));
    assert_eq!(
        app.submit(&app.admin, &star(1), None).await.status(),
        StatusCode::CREATED
    );

    let edited = patch(
        &app,
        "star",
        json!({"description": "a five-pointed star", "difficulty": 4}),
    )
    .await;
    assert_eq!(edited.status(), StatusCode::OK);
    let edited: Value = edited.json().await.unwrap();
    assert_eq!(
        (
            &edited["description"],
            &edited["difficulty"],
            &edited["active"]
        ),
        (&json!("a five-pointed star"), &json!(4), &json!(true))
    );

    let retired = app.delete("/api/v1/admin/shapes/star").await;
    assert_eq!(retired.status(), StatusCode::OK);
    let retired: Value = retired.json().await.unwrap();
    assert_eq!(
        (&retired["active"], &retired["drawings"]),
        (&json!(false), &json!(1))
    );
    assert!(!public_shapes(&app).await.contains(&"star".to_owned()));
    let refused = app.submit(&app.admin, &star(2), None).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(refused).await, "retired_shape");

    // The admin list still shows it, with its drawing.
    let list = app.get_json("/api/v1/admin/shapes").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    let star_item = items.iter().find(|s| s["name"] == "star").unwrap();
    assert_eq!(
        (&star_item["active"], &star_item["good_drawings"]),
        (&json!(false), &json!(1))
    );
    assert_eq!(star_item["accuracy"], Value::Null, "no model is active");

    // Reactivated, it is collected again.
    assert_eq!(
        patch(&app, "star", json!({"active": true})).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.submit(&app.admin, &star(3), None).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.delete("/api/v1/admin/shapes/nothing").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_duplicate_is_a_409_and_bad_shapes_are_422s_that_change_nothing() {
    let app = TestApp::spawn().await;
    let duplicate = app
        .post(
            "/api/v1/admin/shapes",
            &json!({"name": "circle", "description": "again", "difficulty": 1}),
        )
        .await;
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(duplicate).await, "shape_exists");
    for bad in [
        json!({"name": "star", "description": "five points", "difficulty": 0}),
        json!({"name": "star", "description": "five points", "difficulty": 6}),
        json!({"name": "Star!", "description": "five points", "difficulty": 2}),
        json!({"name": "star", "description": "  ", "difficulty": 2}),
    ] {
        let response = app.post("/api/v1/admin/shapes", &bad).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(error_code(response).await, "invalid_shape", "{bad}");
    }
    for bad in [
        json!({"difficulty": 9}),
        json!({}),
        json!({"colour": "red"}),
    ] {
        let response = patch(&app, "circle", bad.clone()).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let list = app.get_json("/api/v1/admin/shapes").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let circle = items.iter().find(|s| s["name"] == "circle").unwrap();
    assert_ne!(circle["description"], "again");
    assert_ne!(circle["difficulty"], 9);
}

#[tokio::test]
async fn a_retired_shape_is_never_prompted() {
    let app = TestApp::spawn().await;
    for name in ["line", "circle", "square", "triangle"] {
        assert_eq!(
            app.delete(&format!("/api/v1/admin/shapes/{name}"))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let player = new_player();
    for _ in 0..20 {
        let prompt: Value = player
            .get(app.url("/api/v1/prompt"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(prompt["shape"], "heart");
    }
    app.delete("/api/v1/admin/shapes/heart").await;
    let none = prompt_of_a_new_player(&app).await;
    assert_eq!(none.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(none).await, "no_shapes");
}

#[tokio::test]
async fn prompts_favour_the_shape_with_fewer_good_drawings() {
    let app = TestApp::spawn().await;
    // 200 good circles, nothing else: circle's need falls to 1/5 of the others'.
    for chunk in 0..10u64 {
        let submissions = (0..20u64).map(|i| {
            let body = doodle_json(Shape::Circle, chunk * 20 + i);
            let app = &app;
            async move { app.submit(&app.admin, &body, None).await.status() }
        });
        for status in join_all(submissions).await {
            assert_eq!(status, StatusCode::CREATED);
        }
    }
    let draws = 1_000;
    let mut seen: HashMap<String, u32> = HashMap::new();
    for _ in 0..draws {
        // No cookie: a new player each time, so the per-player round never narrows the
        // choice and only the weighting speaks.
        let prompt: Value = app.get_json("/api/v1/prompt").await;
        *seen
            .entry(prompt["shape"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    // Expected shares: circle 0.8 * 0.2/4.2 + 0.04 = 0.078, the others 0.23 each. The
    // bounds lie 7 and 4.5 standard deviations away: this cannot flake.
    let share = |name: &str| f64::from(seen.get(name).copied().unwrap_or(0)) / f64::from(draws);
    assert!(share("circle") < 0.14, "{seen:?}");
    for other in ["line", "square", "triangle", "heart"] {
        assert!(share(other) > 0.17, "{other}: {seen:?}");
    }
}

async fn put_picture(app: &TestApp, shape: &str, body: Value) -> reqwest::Response {
    app.admin
        .put(app.url(&format!("/api/v1/admin/shapes/{shape}/picture")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `/icons/{shape}.svg` as the game loads it.
async fn icon(app: &TestApp, shape: &str) -> String {
    let response = reqwest::get(app.url(&format!("/icons/{shape}.svg")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-cache", "{shape}");
    response.text().await.unwrap()
}

/// Submits `drawing` as a new player and answers its id.
async fn submitted(app: &TestApp, drawing: &Value) -> String {
    let response = app.submit(&new_player(), drawing, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_admin_chooses_a_drawing_as_a_shapes_picture_and_bad_choices_change_nothing() {
    let app = TestApp::spawn().await;
    add_star(&app).await;
    let first = submitted(&app, &star(1)).await;
    let second = submitted(&app, &star(2)).await;
    let circle = submitted(&app, &doodle_json(Shape::Circle, 3)).await;

    let chosen = put_picture(&app, "star", json!({"drawing_id": first})).await;
    assert_eq!(chosen.status(), StatusCode::OK);
    let chosen: Value = chosen.json().await.unwrap();
    assert_eq!(chosen["picture"], first.as_str());
    let first_icon = icon(&app, "star").await;
    let chosen = put_picture(&app, "star", json!({"drawing_id": second})).await;
    assert_eq!(chosen.status(), StatusCode::OK);
    let second_icon = icon(&app, "star").await;
    assert_ne!(first_icon, second_icon, "the icon follows the choice");
    assert!(second_icon.contains("<path d=\"M"), "{second_icon}");

    // An unchanged picture revalidates to a 304.
    let fresh = reqwest::get(app.url("/icons/star.svg")).await.unwrap();
    let etag = fresh.headers()["etag"].clone();
    let again = reqwest::Client::new()
        .get(app.url("/icons/star.svg"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // Bad choices: each a clear error, and the picture stays the second drawing.
    let unknown_id = "0190b6f2-0000-7000-8000-000000000000";
    for (body, status, code) in [
        (json!({"drawing_id": circle}), 409, "invalid_picture"),
        (json!({"drawing_id": unknown_id}), 404, "not_found"),
        (json!({"drawing_id": "not an id"}), 404, "not_found"),
        (json!({"drawing_id": 7}), 422, "invalid_body"),
        (json!({"drawing": first}), 422, "invalid_body"),
    ] {
        let response = put_picture(&app, "star", body.clone()).await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }
    let nowhere = put_picture(&app, "comet", json!({"drawing_id": first})).await;
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    assert_eq!(icon(&app, "star").await, second_icon);
    let listed = app.get_json("/api/v1/admin/shapes").await;
    let star_row = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "star")
        .unwrap()
        .clone();
    assert_eq!(star_row["picture"], second.as_str());

    // A deleted drawing cannot be chosen, and a chosen one that is deleted gives way to
    // the best remaining drawing.
    let deleted = app
        .delete(&format!("/api/v1/admin/drawings/{second}"))
        .await;
    assert!(deleted.status().is_success());
    let refused = put_picture(&app, "star", json!({"drawing_id": second})).await;
    assert_eq!(error_code(refused).await, "invalid_picture");
    assert_eq!(
        icon(&app, "star").await,
        first_icon,
        "the only live drawing"
    );

    // A built-in shape takes a chosen picture over its icon, and gets it back on reset.
    let built_in = icon(&app, "circle").await;
    let chosen = put_picture(&app, "circle", json!({"drawing_id": circle})).await;
    assert_eq!(chosen.status(), StatusCode::OK);
    let drawn = icon(&app, "circle").await;
    assert_ne!(drawn, built_in);
    let reset = app.delete("/api/v1/admin/shapes/circle/picture").await;
    assert_eq!(reset.status(), StatusCode::OK);
    let reset: Value = reset.json().await.unwrap();
    assert_eq!(reset["picture"], Value::Null);
    assert_eq!(icon(&app, "circle").await, built_in);
}
