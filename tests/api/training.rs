//! Training jobs through the API: a real run on synthetic doodles, duplicates, cancel, a
//! subset (per-class cap, time range, step cap), and bad configurations.

use std::time::{Duration, Instant};

use doodlebox::ml::synth::Shape;

use crate::synthetic::doodle_json;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp};

/// Submits `per_shape` doodles of each default shape from `players` different players.
pub(crate) async fn seed_drawings(app: &TestApp, per_shape: u64, players: u64) {
    let client = app.admin.clone();
    for i in 0..per_shape {
        let cookie = format!("doodlebox_player={:032x}", 1 + i % players);
        for shape in Shape::ALL {
            let response = client
                .post(app.url("/api/v1/drawings"))
                .header("cookie", &cookie)
                .json(&doodle_json(shape, i * 7 + shape as u64))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
        }
    }
}

pub(crate) async fn wait_for_status(
    app: &TestApp,
    id: i64,
    wanted: &[&str],
    limit: Duration,
) -> Value {
    let started = Instant::now();
    loop {
        let job: Value = app
            .get_json(&format!("/api/v1/admin/training-jobs/{id}"))
            .await;
        if wanted.contains(&job["status"].as_str().unwrap_or("")) {
            return job;
        }
        assert!(
            started.elapsed() < limit,
            "job {id} still {} after {limit:?}: {job}",
            job["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_training_run_on_synthetic_doodles_reaches_90_percent_and_registers_a_model() {
    let app = TestApp::spawn().await;
    seed_drawings(&app, 120, 24).await;
    let config = json!({"epochs": 4, "batch_size": 64, "image_size": 28, "seed": 3});
    let response = app.post("/api/v1/admin/training-jobs", &config).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id = response.json::<Value>().await.unwrap()["job"]["id"]
        .as_i64()
        .unwrap();

    // The same configuration again, while the first is still waiting or running.
    let again = app.post("/api/v1/admin/training-jobs", &config).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["status"], "already_exists");
    assert_eq!(again["job"]["id"], id);

    let job = wait_for_status(&app, id, &["completed", "failed"], Duration::from_secs(240)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let accuracy = job["metrics"]["accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.9, "validation accuracy {accuracy}");
    // The frozen evaluation split (whole players, 24 of them here) is never trained on.
    let held_out = job["dataset"]["evaluation_held_out"].as_u64().unwrap();
    assert_eq!(job["dataset"]["evaluation_rule"], "by_player");
    assert!(held_out > 0 && held_out < 300, "{held_out}");
    assert_eq!(job["dataset"]["size"].as_u64().unwrap() + held_out, 600);
    assert_eq!(job["model_version"], "v1");
    assert_eq!(job["attempt"], 1);

    let models: Value = app.get_json("/api/v1/admin/models").await;
    assert_eq!(models["items"][0]["version"], "v1");
    assert_eq!(
        models["items"][0]["manifest"]["classes"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    // The manifest and the job's progress name the device it trained on (the test
    // configuration trains on the CPU; `--device` chooses in a real server).
    assert_eq!(models["items"][0]["manifest"]["device"], "cpu");
    assert_eq!(job["progress"]["device"], "cpu", "{job}");
    // The job shows what the run really trained: the manifest's configuration.
    assert_eq!(
        job["progress"]["training"], models["items"][0]["manifest"]["training"],
        "{job}"
    );
    assert_eq!(job["progress"]["training"]["epochs"], 4);
    assert_eq!(job["progress"]["training"]["batch_size"], 64);
    assert_eq!(job["progress"]["training"]["architecture"], "wide");

    // A finished job's event stream gives its final state and ends.
    app.assert_completed_event_stream(&format!("/api/v1/admin/training-jobs/{id}/events"))
        .await;
}

#[tokio::test]
async fn one_player_alone_trains_and_the_model_card_says_validation_is_not_player_independent() {
    let app = TestApp::spawn().await;
    seed_drawings(&app, 30, 1).await;
    let created: Value = app
        .post_json(
            "/api/v1/admin/training-jobs",
            &json!({"epochs": 3, "seed": 2}),
        )
        .await;
    let id = created["job"]["id"].as_i64().unwrap();
    let job = wait_for_status(&app, id, &["completed", "failed"], Duration::from_secs(240)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["metrics"]["player_independent"], false, "{job}");
    assert_eq!(job["dataset"]["evaluation_rule"], "by_drawing");
    let interval = job["metrics"]["accuracy_interval"].as_array().unwrap();
    assert!(interval[0].as_f64().unwrap() <= job["metrics"]["accuracy"].as_f64().unwrap());
    let version = job["model_version"].as_str().unwrap();
    let activated = app
        .post(
            &format!("/api/v1/admin/models/{version}/activate"),
            &json!({}),
        )
        .await;
    assert_eq!(activated.status(), StatusCode::OK);
    let card: Value = app.get_json("/api/v1/model").await;
    assert_eq!(card["metrics"]["player_independent"], false, "{card}");
    assert_eq!(
        card["metrics"]["validation_samples"],
        job["metrics"]["validation_samples"]
    );
}

#[tokio::test]
async fn a_running_job_can_be_cancelled_and_a_finished_one_cannot() {
    let app = TestApp::spawn().await;
    seed_drawings(&app, 20, 10).await;
    let client = app.admin.clone();
    let created: Value = app
        .post_json(
            "/api/v1/admin/training-jobs",
            &json!({"epochs": 500, "batch_size": 8}),
        )
        .await;
    let id = created["job"]["id"].as_i64().unwrap();
    wait_for_status(&app, id, &["running"], Duration::from_secs(30)).await;
    let cancel = client
        .post(app.url(&format!("/api/v1/admin/training-jobs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        cancel.status(),
        StatusCode::ACCEPTED | StatusCode::OK
    ));
    wait_for_status(&app, id, &["cancelled"], Duration::from_secs(30)).await;
    let again = client
        .post(app.url(&format!("/api/v1/admin/training-jobs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(again).await, "job_finished");
}

#[tokio::test]
async fn a_job_without_enough_shapes_fails_with_the_reason() {
    let app = TestApp::spawn().await;
    let created: Value = app
        .post_json("/api/v1/admin/training-jobs", &json!({"epochs": 1}))
        .await;
    let id = created["job"]["id"].as_i64().unwrap();
    let job = wait_for_status(&app, id, &["failed", "completed"], Duration::from_secs(30)).await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("at least two shapes"),
        "{job}"
    );
}

#[tokio::test]
async fn bad_training_configurations_get_422_and_create_nothing() {
    let app = TestApp::spawn().await;
    for (config, code) in [
        (json!({"epochs": 0}), "invalid_training_config"),
        (json!({"image_size": 30}), "invalid_training_config"),
        (json!({"learning_rate": 5}), "invalid_training_config"),
        (json!({"shapes": ["circle"]}), "invalid_training_config"),
        (json!({"per_class_cap": 0}), "invalid_training_config"),
        (json!({"max_steps_per_epoch": 0}), "invalid_training_config"),
        (
            json!({"created_from": "yesterday"}),
            "invalid_training_config",
        ),
        (
            json!({"created_to": "2026-13-01"}),
            "invalid_training_config",
        ),
        (
            json!({"created_from": "2026-02-30"}),
            "invalid_training_config",
        ),
        (json!({"per_class_cap": -3}), "invalid_body"),
        (json!({"created_from": 1700000000}), "invalid_body"),
        (json!({"epochs": "many"}), "invalid_body"),
        (json!({"layers": 3}), "invalid_body"),
    ] {
        let response = app.post("/api/v1/admin/training-jobs", &config).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{config}"
        );
        assert_eq!(error_code(response).await, code, "{config}");
    }
    let jobs: Value = app.get_json("/api/v1/admin/training-jobs").await;
    assert_eq!(jobs["items"].as_array().unwrap().len(), 0);
    let missing = app.get("/api/v1/admin/training-jobs/999").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_job_can_train_on_a_subset_capped_per_class_and_limited_to_a_time_range() {
    let app = TestApp::spawn().await;
    seed_drawings(&app, 40, 8).await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let yesterday = doodlebox::time::rfc3339(now_ms - 86_400_000);
    let tomorrow = doodlebox::time::rfc3339(now_ms + 86_400_000);
    let created: Value = app
        .post_json(
            "/api/v1/admin/training-jobs",
            &json!({"epochs": 1, "seed": 4, "per_class_cap": 12, "max_steps_per_epoch": 1,
                    "created_from": yesterday, "created_to": tomorrow}),
        )
        .await;
    let id = created["job"]["id"].as_i64().unwrap();
    // The stored configuration is normalised: times in RFC 3339 UTC.
    assert_eq!(created["job"]["config"]["per_class_cap"], 12);
    assert!(created["job"]["config"]["created_from"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let job = wait_for_status(&app, id, &["completed", "failed"], Duration::from_secs(240)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let dataset = &job["dataset"];
    let per_class = dataset["per_class"].as_object().unwrap();
    assert_eq!(per_class.len(), 5, "{dataset}");
    assert!(per_class.values().all(|n| n == 12), "{dataset}");
    assert_eq!(dataset["size"], 60);
    let held_out = dataset["evaluation_held_out"].as_u64().unwrap();
    let capped = dataset["left_out_by_per_class_cap"].as_u64().unwrap();
    assert_eq!(60 + held_out + capped, 200, "{dataset}");
    // One step of one epoch: the progress says so.
    assert_eq!(job["progress"]["steps_per_epoch"], 1, "{job}");
    assert!(
        job["metrics"]["train_samples"].as_u64().unwrap() > 0,
        "{job}"
    );

    // A time range with no drawings in it leaves nothing to train on.
    let empty: Value = app
        .post_json(
            "/api/v1/admin/training-jobs",
            &json!({"epochs": 1, "created_from": "2001-01-01", "created_to": "2001-02-01"}),
        )
        .await;
    let id = empty["job"]["id"].as_i64().unwrap();
    let job = wait_for_status(&app, id, &["completed", "failed"], Duration::from_secs(60)).await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("at least two shapes"),
        "{job}"
    );
}

/// Raw Quick, Draw! lines of `per_class` doodles for each of `classes` made-up classes:
/// class `k` is default shape `k % 5` turned by its own angle and stretched by its own
/// factor, named `<shape> <k>`. Fine for scale (the 345 classes), not for accuracy.
fn many_class_lines(classes: usize, per_class: usize) -> Vec<String> {
    let mut lines = Vec::with_capacity(classes * per_class);
    for class in 0..classes {
        let shape = Shape::ALL[class % Shape::ALL.len()];
        let variant = (class / Shape::ALL.len()) as f32;
        let (sin, cos) = (variant * 0.091).sin_cos();
        let stretch = 1.0 + (variant % 4.0) * 0.2;
        for i in 0..per_class {
            let strokes = doodlebox::ml::synth::doodle(shape, (class * 1000 + i) as u64);
            let points = || strokes.iter().flatten();
            let low = |axis: usize| points().map(|p| p[axis]).fold(f32::MAX, f32::min);
            let high = |axis: usize| points().map(|p| p[axis]).fold(f32::MIN, f32::max);
            let (x0, y0) = (low(0), low(1));
            let size = (high(0) - x0).max(high(1) - y0).max(1e-3);
            let mut t = 0u32;
            let drawing: Vec<Value> = strokes
                .iter()
                .map(|stroke| {
                    let turned: Vec<(i64, i64)> = stroke
                        .iter()
                        .map(|p| {
                            let (x, y) = ((p[0] - x0) / size - 0.5, (p[1] - y0) / size - 0.5);
                            let x = x * stretch;
                            let (x, y) = (x * cos - y * sin, x * sin + y * cos);
                            ((x * 180.0 + 300.0) as i64, (y * 180.0 + 300.0) as i64)
                        })
                        .collect();
                    let ts: Vec<u32> = turned
                        .iter()
                        .map(|_| {
                            t += 16;
                            t
                        })
                        .collect();
                    let xs: Vec<i64> = turned.iter().map(|p| p.0).collect();
                    let ys: Vec<i64> = turned.iter().map(|p| p.1).collect();
                    json!([xs, ys, ts])
                })
                .collect();
            lines.push(
                json!({"word": format!("{} {class}", shape.name()), "countrycode": "DE",
                       "timestamp": "2017-03-01 10:00:00.12345 UTC", "recognized": true,
                       "key_id": format!("k{class}-{i}"), "drawing": drawing})
                .to_string(),
            );
        }
    }
    lines
}

#[tokio::test]
async fn a_shape_whose_every_drawing_is_held_out_for_evaluation_is_named_by_the_job() {
    let app = TestApp::spawn().await;
    crate::synthetic::submit_triangles_only_held_out(&app.admin, &app.url("")).await;
    let created: Value = app
        .post_json(
            "/api/v1/admin/training-jobs",
            &json!({"epochs": 1, "seed": 3, "batch_size": 16, "max_steps_per_epoch": 1}),
        )
        .await;
    let id = created["job"]["id"].as_i64().unwrap();
    let job = wait_for_status(&app, id, &["completed", "failed"], Duration::from_secs(120)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["dataset"]["evaluation_rule"], "by_player", "{job}");
    assert_eq!(
        job["dataset"]["classes_only_in_evaluation"],
        json!(["triangle"]),
        "{job}"
    );
    assert_eq!(
        job["dataset"]["evaluation_held_out"],
        5 * 3 * 2,
        "the held-out players' drawings, all of them"
    );
    let models: Value = app.get_json("/api/v1/admin/models").await;
    assert_eq!(
        models["items"][0]["manifest"]["classes"],
        json!(["circle", "square"]),
        "the model knows only what it trained on"
    );
}

#[tokio::test]
async fn a_model_trains_on_345_classes_and_its_card_stays_readable() {
    const CLASSES: usize = 345;
    let app = TestApp::spawn().await;
    // The frozen evaluation split holds out a fifth of the drawings by a hash of their
    // (time-based) ids, so a class of n drawings loses all of them with probability 0.2^n:
    // with 6 a class, one of the 345 went missing in about 2 % of runs; with 10, 0.004 %.
    const PER_CLASS: usize = 10;
    let lines = many_class_lines(CLASSES, PER_CLASS);
    let response = app
        .admin
        .post(app.url("/api/v1/admin/import?create_shapes=true&source=many-classes.ndjson"))
        .header("content-type", "application/x-ndjson")
        .body(lines.join("\n"))
        .send()
        .await
        .unwrap();
    let import = crate::jobs::follow(&app, response).await;
    assert_eq!(import["status"], "completed", "{import}");
    assert_eq!(
        import["result"]["imported"],
        CLASSES * PER_CLASS,
        "{import}"
    );

    let created: Value = app
        .post_json(
            "/api/v1/admin/training-jobs",
            &json!({"epochs": 1, "seed": 5, "image_size": 28, "batch_size": 64, "max_steps_per_epoch": 8}),
        )
        .await;
    let id = created["job"]["id"].as_i64().unwrap();
    let job = wait_for_status(&app, id, &["completed", "failed"], Duration::from_secs(300)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let version = job["model_version"].as_str().unwrap();
    let activated = app
        .post(
            &format!("/api/v1/admin/models/{version}/activate?force=true"),
            &json!({}),
        )
        .await;
    assert_eq!(activated.status(), StatusCode::OK);

    let card: Value = app.get_json("/api/v1/model").await;
    assert_eq!(card["classes"].as_array().unwrap().len(), CLASSES, "{card}");
    assert_eq!(card["per_class"].as_array().unwrap().len(), CLASSES);
    // Readable with many classes: at most ten mistakes listed, the worst first.
    let top = card["top_confusions"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 10, "{top:?}");
    let counts: Vec<u64> = top.iter().map(|m| m["count"].as_u64().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    // The confusion picture is drawn at its many-class cell size.
    let png = app
        .get(card["confusion_png_url"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap();
    let picture = image::load_from_memory(&png).expect("a decodable PNG");
    let side = doodlebox::ml::confusion_picture::side_px(CLASSES);
    assert_eq!((picture.width(), picture.height()), (side, side));
    // Classify answers name classes of the 345.
    let answer: Value = app
        .post_json("/api/v1/classify", &crate::helpers::sample_drawing())
        .await;
    assert!(
        card["classes"]
            .as_array()
            .unwrap()
            .contains(&answer["shape"]),
        "{answer}"
    );
}
