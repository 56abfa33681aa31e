//! The implementor portal's API: the active model's card, its confusion picture and the
//! OpenAPI document, which must name only routes that exist.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, sample_drawing, TestApp};
use crate::training::wait_for_status;

/// Trains a model on synthetic doodles of the five default shapes (one epoch: quick, and
/// enough for a card) and activates it; returns its version.
async fn train_and_activate(app: &TestApp) -> String {
    let created: Value = app
        .post_json(
            "/api/v1/admin/training-jobs",
            &json!({"source": "synthetic", "epochs": 1, "seed": 11}),
        )
        .await;
    let id = created["job"]["id"].as_i64().expect("a job id");
    let job = wait_for_status(app, id, &["completed", "failed"], Duration::from_secs(240)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let version = job["model_version"].as_str().unwrap().to_owned();
    let activated = app
        .post(
            &format!("/api/v1/admin/models/{version}/activate"),
            &json!({}),
        )
        .await;
    assert_eq!(activated.status(), StatusCode::OK);
    version
}

/// A client with no credentials at all: the portal's routes are public.
async fn anonymous_get(app: &TestApp, path: &str) -> reqwest::Response {
    reqwest::get(app.url(path)).await.expect("request sent")
}

#[tokio::test]
async fn without_an_active_model_the_card_and_picture_answer_503_no_active_model() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/model", "/api/v1/model/confusion.png"] {
        let response = anonymous_get(&app, path).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(response.headers().contains_key("retry-after"), "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "no_active_model", "{path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no model is active"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_card_describes_the_served_model_and_its_confusion_picture_is_a_cached_png() {
    let app = TestApp::spawn().await;
    let version = train_and_activate(&app).await;

    let response = anonymous_get(&app, "/api/v1/model").await;
    assert_eq!(response.status(), StatusCode::OK);
    let card: Value = response.json().await.unwrap();
    let stored = app
        .get_json(&format!("/api/v1/admin/models/{version}"))
        .await;
    let manifest = &stored["manifest"];
    assert_eq!(card["version"], version.as_str());
    assert_eq!(card["classes"], manifest["classes"]);
    let classes = card["classes"].as_array().unwrap().len();
    assert_eq!(classes, 5, "{card}");
    assert_eq!(card["input_size"], manifest["input_size"]);
    assert_eq!(card["dataset_size"], manifest["dataset_size"]);
    assert_eq!(card["top_k"], 3);
    assert_eq!(card["metrics"]["accuracy"], manifest["metrics"]["accuracy"]);
    assert_eq!(
        card["metrics"]["top3_accuracy"],
        manifest["metrics"]["top3_accuracy"]
    );
    assert_eq!(card["metrics"]["epochs"], 1);
    assert_eq!(card["per_class"], manifest["metrics"]["per_class"]);
    // The listed mistakes are the off-diagonal cells of the stored matrix, largest first.
    let matrix: Vec<Vec<u64>> =
        serde_json::from_value(manifest["metrics"]["confusion"].clone()).unwrap();
    let mut off_diagonal: Vec<u64> = (0..classes)
        .flat_map(|d| (0..classes).filter(move |&g| g != d).map(move |g| (d, g)))
        .map(|(d, g)| matrix[d][g])
        .filter(|&count| count > 0)
        .collect();
    off_diagonal.sort_unstable_by(|a, b| b.cmp(a));
    off_diagonal.truncate(10);
    let listed: Vec<u64> = card["top_confusions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["count"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, off_diagonal, "{card}");
    for mistake in card["top_confusions"].as_array().unwrap() {
        assert_ne!(mistake["drawn"], mistake["guessed"], "{card}");
    }
    assert!(
        card["created_at"].as_str().unwrap().ends_with('Z'),
        "{card}"
    );
    assert!(card["activated_at"].is_string(), "{card}");
    // Every accuracy comes with its 95 % interval; the calibration and its picture are there.
    let metrics = &card["metrics"];
    let accuracy = metrics["accuracy"].as_f64().unwrap();
    let interval = metrics["accuracy_interval"].as_array().unwrap();
    let (low, high) = (interval[0].as_f64().unwrap(), interval[1].as_f64().unwrap());
    assert!(
        low <= accuracy && accuracy <= high && high - low > 0.0,
        "{card}"
    );
    let calibration = &metrics["calibration"];
    assert!(calibration["temperature"].as_f64().unwrap() > 0.0, "{card}");
    assert!(calibration["ece_before"].as_f64().unwrap() >= 0.0);
    assert_eq!(calibration["reliability"].as_array().unwrap().len(), 10);
    assert_eq!(metrics["player_independent"], true);
    let reliability = anonymous_get(&app, card["reliability_png_url"].as_str().unwrap()).await;
    assert_eq!(reliability.status(), StatusCode::OK);
    assert_eq!(reliability.headers()["content-type"], "image/png");
    let picture = image::load_from_memory(&reliability.bytes().await.unwrap()).unwrap();
    let side = doodlebox::ml::reliability_picture::SIDE_PX;
    assert_eq!((picture.width(), picture.height()), (side, side));
    // Every classify answer says whether the model is sure.
    let answer: Value = app.post_json("/api/v1/classify", &sample_drawing()).await;
    assert!(answer["unsure"].is_boolean(), "{answer}");
    // top_k is what classify really returns.
    let answer: Value = app.post_json("/api/v1/classify", &sample_drawing()).await;
    assert_eq!(answer["top_k"].as_array().unwrap().len(), 3);

    let url = card["confusion_png_url"].as_str().unwrap();
    let response = anonymous_get(&app, url).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with(&format!("\"{version}-")), "{etag}");
    let png = response.bytes().await.unwrap();
    let picture = image::load_from_memory(&png).expect("a decodable PNG");
    let side = doodlebox::ml::confusion_picture::side_px(classes);
    assert_eq!((picture.width(), picture.height()), (side, side));
    // Row-normalised: every row of a trained model has one drawn cell darker than white.
    let rgb = picture.to_rgb8();
    let cell = doodlebox::ml::confusion_picture::cell_px(classes);
    for row in 0..classes as u32 {
        let darkest = (0..classes as u32)
            .map(|col| {
                let px = rgb
                    .get_pixel(col * cell + cell / 2, row * cell + cell / 2)
                    .0;
                px.iter().map(|&c| u32::from(c)).sum::<u32>()
            })
            .min()
            .unwrap();
        assert!(darkest < 3 * 200, "row {row} is blank");
    }

    // The same picture again (from memory), and a 304 for a browser that has it.
    let again = anonymous_get(&app, url).await;
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(again.bytes().await.unwrap(), png);
    let revalidated = reqwest::Client::new()
        .get(app.url(url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert!(revalidated.bytes().await.unwrap().is_empty());
}

/// Where a documented path is requested: its parameters filled in.
fn concrete(path: &str, drawing_id: &str) -> String {
    path.replace("{id}", drawing_id)
}

/// A body that the operation accepts, for the methods that take one.
fn body_for(path: &str) -> Value {
    match path {
        "/api/v1/classify/batch" => json!({"drawings": [sample_drawing()]}),
        "/api/v1/player" => json!({"nickname": "Ada"}),
        _ => sample_drawing(),
    }
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_every_path_in_it_is_a_real_route() {
    let app = TestApp::spawn().await;
    let response = anonymous_get(&app, "/api/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = response.json().await.expect("the document is JSON");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["apiKey"]["scheme"],
        "bearer"
    );
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], json!(["error"]));

    // A drawing of this player, so that the drawing path answers 200.
    let submitted = app.submit(&app.client, &sample_drawing(), None).await;
    assert_eq!(submitted.status(), StatusCode::CREATED);
    let submitted: Value = submitted.json().await.unwrap();
    let drawing_id = submitted["id"].as_str().unwrap();

    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 11, "{:?}", paths.keys());
    let mut checked = 0;
    // The admin API is walked by `openapi.rs` and fuzzed by the Schemathesis test: calling
    // each of its operations here would log out and delete what the others need.
    for (path, operations) in paths
        .iter()
        .filter(|(path, _)| !path.starts_with("/api/v1/admin"))
    {
        let url = app.url(&concrete(path, drawing_id));
        for method in operations.as_object().unwrap().keys() {
            let request = match method.as_str() {
                "get" => app.client.get(&url),
                "post" => app.client.post(&url).json(&body_for(path)),
                "put" => app.client.put(&url).json(&body_for(path)),
                other => panic!("{path}: no check for method {other}"),
            };
            let response = request.send().await.expect("request sent");
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            assert_ne!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {body}"
            );
            // A documented answer, not one the API forgot about.
            let documented = operations[method]["responses"]
                .as_object()
                .unwrap()
                .contains_key(status.as_str());
            assert!(documented, "{method} {path} answered {status}: {body}");
            checked += 1;
        }
    }
    assert!(checked >= 11);

    // And the API's own fallback still answers what is not documented.
    let missing = anonymous_get(&app, "/api/v1/no-such-thing").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(missing).await, "not_found");
}
