//! Model activation, rollback and classification from memory.

use std::time::Duration;

use doodlebox::ml::synth::Shape;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp};
use crate::synthetic::doodle_json;
use crate::training::{seed_drawings, wait_for_status};

async fn train(app: &TestApp, seed: u64) -> String {
    train_with(app, json!({"epochs": 4, "seed": seed})).await
}

async fn train_with(app: &TestApp, config: Value) -> String {
    let created: Value = app.post_json("/api/v1/admin/training-jobs", &config).await;
    let id = created["job"]["id"].as_i64().unwrap();
    let job = wait_for_status(app, id, &["completed", "failed"], Duration::from_secs(240)).await;
    assert_eq!(job["status"], "completed", "{job}");
    job["model_version"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn models_activate_roll_back_refuse_corrupt_files_and_classify_from_memory() {
    let app = TestApp::spawn().await;
    let circle = doodle_json(Shape::Circle, 424_242);
    let before = app.post("/api/v1/classify", &circle).await;
    assert_eq!(before.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(before).await, "no_active_model");

    seed_drawings(&app, 120, 24).await;
    let v1 = train(&app, 3).await;
    let v2 = train(&app, 4).await;
    assert_eq!((v1.as_str(), v2.as_str()), ("v1", "v2"));

    assert_eq!(
        app.post(&format!("/api/v1/admin/models/{v1}/activate"), &json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    // Clear synthetic doodles of every shape are recognised.
    let mut right = 0;
    for shape in Shape::ALL {
        for seed in 0..4 {
            let response = app
                .post("/api/v1/classify", &doodle_json(shape, 900_000 + seed))
                .await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["x-model-version"], "v1");
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer["top_k"].as_array().unwrap().len(), 3);
            right += usize::from(answer["shape"] == shape.name());
        }
    }
    assert!(right >= 18, "{right}/20 synthetic doodles recognised");

    // No model runs inside the submit: the answer has no verdict yet, and the background
    // scorer records what the active model made of the drawing moments later.
    let submitted = app.submit(&app.client, &circle, None).await;
    assert_eq!(submitted.status(), StatusCode::CREATED);
    let submitted: Value = submitted.json().await.unwrap();
    assert_eq!(
        (&submitted["recognized"], &submitted["model_version"]),
        (&Value::Null, &Value::Null)
    );
    let id = submitted["id"].as_str().unwrap();
    let stored = wait_until_judged(&app, id).await;
    assert_eq!(
        (
            stored["recognized"].clone(),
            stored["model_version"].clone()
        ),
        (json!(true), json!("v1"))
    );
    // The admin detail shows the same verdict.
    let detail = app.get_json(&format!("/api/v1/admin/drawings/{id}")).await;
    assert_eq!(
        (
            detail["recognized"].clone(),
            detail["model_version"].clone()
        ),
        (json!(true), json!("v1")),
        "{detail}"
    );

    // Activation and rollback.
    assert_eq!(
        app.post(&format!("/api/v1/admin/models/{v2}/activate"), &json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    let answer: Value = app.post_json("/api/v1/classify", &circle).await;
    assert_eq!(answer["model_version"], "v2");
    let rolled: Value = app
        .post_json("/api/v1/admin/models/rollback", &json!({}))
        .await;
    assert_eq!(rolled["active"], "v1");
    let answer: Value = app.post_json("/api/v1/classify", &circle).await;
    assert_eq!(answer["model_version"], "v1");
    // Rollback walks back through the activation history: pressed again it does not toggle
    // back to v2 (v1 was the first activation, so there is nothing before it).
    let again = app.post("/api/v1/admin/models/rollback", &json!({})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(again).await, "nothing_to_roll_back_to");
    let answer: Value = app.post_json("/api/v1/classify", &circle).await;
    assert_eq!(answer["model_version"], "v1");

    // The command line activates and rolls back through the running server.
    let data_dir = app.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        doodlebox::cli::models::activate_model(&data_dir, "v2").unwrap();
        doodlebox::cli::models::rollback_model(&data_dir).unwrap();
        assert!(doodlebox::cli::models::activate_model(&data_dir, "v9").is_err());
    })
    .await
    .unwrap();
    let answer: Value = app.post_json("/api/v1/classify", &circle).await;
    assert_eq!(answer["model_version"], "v1");
    // Quick, Draw! strokes are classified too; metrics count answers per model version.
    let quickdraw = json!({"word": "line", "drawing": [[[10, 60, 120, 200], [20, 60, 110, 180]]]});
    let answer: Value = app.post_json("/api/v1/classify", &quickdraw).await;
    assert_eq!(answer["model_version"], "v1", "{answer}");
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        r#"doodlebox_classify_requests_total{model_version="v1",caller="admin"}"#,
        r#"doodlebox_classify_requests_total{model_version="v2",caller="admin"}"#,
        r#"doodlebox_inference_duration_seconds_count{model_version="v1"}"#,
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }

    // Ten activations while a client classifies without pause: no failed request, and
    // every answer names one of the two versions.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looper = {
        let (url, stop, circle) = (app.url("/api/v1/classify"), stop.clone(), circle.clone());
        let client = app.admin.clone();
        tokio::spawn(async move {
            let mut answers = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = client.post(&url).json(&circle).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let answer: Value = response.json().await.unwrap();
                assert!(
                    answer["model_version"] == "v1" || answer["model_version"] == "v2",
                    "{answer}"
                );
                answers += 1;
            }
            answers
        })
    };
    for i in 0..10 {
        let version = if i % 2 == 0 { &v2 } else { &v1 };
        assert_eq!(
            app.post(
                &format!("/api/v1/admin/models/{version}/activate"),
                &json!({})
            )
            .await
            .status(),
            StatusCode::OK
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(looper.await.unwrap() > 0);

    // A corrupt model file is refused and the active model keeps answering.
    // (Answers never name the server's files; the test knows the data directory's layout.)
    let listing = app.get("/api/v1/admin/models").await.text().await.unwrap();
    let data_dir = app.data_dir.to_string_lossy().into_owned();
    assert!(!listing.contains(&data_dir), "a path leaked: {listing}");
    // Each version names its net in a training request's words, next to the manifest's name.
    let listed: Value = serde_json::from_str(&listing).unwrap();
    for item in listed["items"].as_array().unwrap() {
        assert_eq!(item["network"], "wide", "{item}");
        assert_eq!(item["manifest"]["architecture"], "doodlecnn-wide-v1");
    }
    let one: Value = app.get_json("/api/v1/admin/models/v1").await;
    assert_eq!(one["network"], "wide", "{one}");
    let v2_path = doodlebox::data_dir::DataDir::new(&app.data_dir).model("v2");
    let weights = v2_path.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&weights, bytes).unwrap();
    let refused = app
        .post("/api/v1/admin/models/v2/activate", &json!({}))
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(refused).await, "invalid_model");
    let answer: Value = app.post_json("/api/v1/classify", &circle).await;
    assert_eq!(answer["model_version"], "v1");

    let unknown = app
        .post("/api/v1/admin/models/v9/activate", &json!({}))
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // The registry: one model's manifest, a comparison, and deleting.
    let one: Value = app.get_json("/api/v1/admin/models/v1").await;
    assert_eq!(one["is_active"], true);
    assert_eq!(
        one["manifest"]["metrics"]["per_class"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let compared: Value = app.get_json("/api/v1/admin/models/compare?a=v1&b=v2").await;
    assert_eq!(compared["per_class"].as_array().unwrap().len(), 5);
    assert!(compared["accuracy"]["delta"].is_number(), "{compared}");
    let active = app.delete("/api/v1/admin/models/v1").await;
    assert_eq!(active.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(active).await, "model_active");
    let deleted = app.delete("/api/v1/admin/models/v2").await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(!v2_path.exists());
    let gone = app.get("/api/v1/admin/models/v2").await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_classify_input_gets_4xx() {
    let app = TestApp::spawn().await;
    let empty = app
        .post(
            "/api/v1/classify",
            &json!({"shape": "circle", "canvas": {"width": 10, "height": 10}, "strokes": []}),
        )
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let batch = app
        .post("/api/v1/classify/batch", &json!({"drawings": []}))
        .await;
    assert_eq!(batch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(batch).await, "invalid_batch");
    let too_many = json!({"drawings": vec![doodle_json(Shape::Line, 1); 65]});
    assert_eq!(
        app.post("/api/v1/classify/batch", &too_many).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn a_fresh_install_trains_and_activates_a_starter_model_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = doodlebox::config::Config::for_data_dir(dir.path());
    config.starter_model = true;
    let app = TestApp::spawn_with(config).await;
    let started = std::time::Instant::now();
    let answer = loop {
        let response = app
            .post("/api/v1/classify", &doodle_json(Shape::Triangle, 77))
            .await;
        if response.status() == StatusCode::OK {
            break response.json::<Value>().await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "no starter model after 240 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(answer["model_version"], "v1");
    assert_eq!(answer["shape"], "triangle");
    println!(
        "starter model answering after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    app.stop().await;
    // A restart neither trains another starter model nor loses the active one.
    let app = TestApp::spawn_on(dir.path().to_owned()).await;
    let answer: Value = app
        .post_json("/api/v1/classify", &doodle_json(Shape::Triangle, 77))
        .await;
    assert_eq!(answer["model_version"], "v1");
    let jobs: Value = app.get_json("/api/v1/admin/training-jobs").await;
    assert_eq!(jobs["items"].as_array().unwrap().len(), 1);
}

/// Polls the player's own drawing until the background scorer has judged it (a few seconds
/// at most), and returns it.
async fn wait_until_judged(app: &TestApp, id: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let stored: Value = app
            .client
            .get(app.url(&format!("/api/v1/drawings/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !stored["recognized"].is_null() {
            return stored;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "drawing {id} still not judged: {stored}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_significantly_worse_model_is_refused_with_the_paired_comparison_unless_forced() {
    let app = TestApp::spawn().await;
    seed_drawings(&app, 60, 24).await;
    let good = train(&app, 3).await;
    // Four steps at a negligible learning rate: as good as the random start, so it guesses
    // mostly wrong.
    let bad = train_with(&app, json!({"epochs": 1, "learning_rate": 1e-6, "seed": 5})).await;
    let activated: Value = app
        .post_json(&format!("/api/v1/admin/models/{good}/activate"), &json!({}))
        .await;
    assert_eq!(activated["active"], good.as_str());

    let refused = app
        .post(&format!("/api/v1/admin/models/{bad}/activate"), &json!({}))
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "significantly_worse", "{body}");
    let comparison = &body["error"]["comparison"];
    assert_eq!(comparison["a"], good.as_str());
    assert_eq!(comparison["b"], bad.as_str());
    assert_eq!(comparison["verdict"], "worse", "{comparison}");
    assert!(comparison["p_value"].as_f64().unwrap() < 0.05);
    assert!(comparison["a_only"].as_u64().unwrap() > comparison["b_only"].as_u64().unwrap());
    assert_eq!(comparison["rule"], "by_player");
    // Nothing changed: the good model still answers.
    let circle = doodle_json(Shape::Circle, 31_337);
    let answer: Value = app.post_json("/api/v1/classify", &circle).await;
    assert_eq!(answer["model_version"], good.as_str());

    // Compare scores both on the same held-out drawings, per class with a direction.
    let compared: Value = app
        .get_json(&format!("/api/v1/admin/models/compare?a={good}&b={bad}"))
        .await;
    let paired = &compared["paired"];
    assert_eq!(paired["drawings"], comparison["drawings"], "{compared}");
    assert_eq!(paired["classes"].as_array().unwrap().len(), 5);
    let directions: Vec<&str> = paired["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["direction"].as_str().unwrap())
        .collect();
    assert!(directions.contains(&"down"), "{directions:?}");

    // Forced, it is activated.
    let forced: Value = app
        .post_json(
            &format!("/api/v1/admin/models/{bad}/activate?force=true"),
            &json!({}),
        )
        .await;
    assert_eq!(forced["active"], bad.as_str());
    let answer: Value = app.post_json("/api/v1/classify", &circle).await;
    assert_eq!(answer["model_version"], bad.as_str());
}
