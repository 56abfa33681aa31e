//! Quality scores: scoring on arrival, auto-flagging, the setting, the histogram and the
//! rescore walk (after an activation, on demand, and resumed after a restart).

use std::time::{Duration, Instant};

use doodlebox::ml::synth::Shape;
use doodlebox::store::quality::{QualityStore, RescoreState, RescoreStatus};
use doodlebox::store::{ModelStore, SqliteMetadataStore};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp};
use crate::synthetic::doodle_json;
use crate::training::{seed_drawings, wait_for_status};

/// One drawing's row as the scorer left it.
#[derive(Debug)]
struct Scored {
    id: String,
    score: Option<f64>,
    flagged: bool,
    quality: Option<Value>,
}

/// Every drawing's score, flag and components, in id order, read straight from the database
/// (the admin drawing list belongs to another area).
fn scores(app: &TestApp) -> Vec<Scored> {
    let conn = rusqlite::Connection::open_with_flags(
        app.data_dir.join("doodlebox.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT id, quality_score, is_flagged, quality FROM drawings ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        let quality: Option<String> = r.get(3)?;
        Ok(Scored {
            id: r.get(0)?,
            score: r.get(1)?,
            flagged: r.get(2)?,
            quality: quality.map(|q| serde_json::from_str(&q).unwrap()),
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Waits until the background scorer has scored `n` live drawings.
async fn wait_until_scored(app: &TestApp, n: u64) -> Value {
    let started = Instant::now();
    loop {
        let histogram = app.get_json("/api/v1/admin/quality/histogram").await;
        let scored: u64 = histogram["bins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        if scored == n && histogram["unscored"] == 0 {
            return histogram;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still not {n} scored: {histogram}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the rescore walk has completed (with `model`, when given).
async fn wait_for_rescore(app: &TestApp, model: Option<&str>) -> Value {
    let started = Instant::now();
    loop {
        let progress = app.get_json("/api/v1/admin/quality/rescore").await;
        let right_model = model.is_none_or(|m| progress["model_version"] == m);
        if progress["status"] == "completed" && right_model {
            return progress;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "rescore not completed: {progress}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A single tap on the canvas.
fn one_point_scribble() -> Value {
    json!({"shape": "circle", "canvas": {"width": 256, "height": 256},
           "strokes": [{"points": [{"x": 5, "y": 5}]}]})
}

async fn submit(app: &TestApp, body: &Value) -> String {
    let response = app.submit(&app.admin, body, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn put_threshold(app: &TestApp, value: Value) -> reqwest::Response {
    app.admin
        .put(app.url("/api/v1/admin/settings/quality"))
        .json(&json!({ "auto_flag_below": value }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_clear_doodle_scores_higher_than_a_one_point_scribble_which_is_flagged() {
    let app = TestApp::spawn().await;
    let doodle = submit(&app, &doodle_json(Shape::Circle, 1)).await;
    let scribble = submit(&app, &one_point_scribble()).await;
    wait_until_scored(&app, 2).await;
    let rows = scores(&app);
    let of = |id: &str| rows.iter().find(|r| r.id == id).unwrap();
    let (doodle, scribble) = (of(&doodle), of(&scribble));
    assert!(doodle.score.unwrap() > 0.8, "{doodle:?}");
    assert_eq!(scribble.score, Some(0.0), "{scribble:?}");
    // The default threshold is 0.2.
    assert!(scribble.flagged && !doodle.flagged);
    let parts = doodle.quality.as_ref().unwrap();
    for component in ["points", "strokes", "size", "validity"] {
        assert!(parts[component].is_number(), "{component} missing: {parts}");
    }
    assert_eq!(parts["agreement"], Value::Null, "no model is active");
}

#[tokio::test]
async fn a_new_threshold_flags_and_unflags_the_drawings_below_it() {
    let app = TestApp::spawn().await;
    assert_eq!(
        put_threshold(&app, json!(0.0)).await.status(),
        StatusCode::OK
    );
    let scribble = submit(&app, &one_point_scribble()).await;
    submit(&app, &doodle_json(Shape::Square, 2)).await;
    wait_until_scored(&app, 2).await;
    assert!(scores(&app).iter().all(|r| !r.flagged));

    let raised: Value = put_threshold(&app, json!(0.5)).await.json().await.unwrap();
    assert_eq!(raised, json!({"auto_flag_below": 0.5, "reflagged": 1}));
    assert_eq!(
        app.get_json("/api/v1/admin/settings/quality").await,
        json!({"auto_flag_below": 0.5})
    );
    let flagged: Vec<String> = scores(&app)
        .into_iter()
        .filter(|r| r.flagged)
        .map(|r| r.id)
        .collect();
    assert_eq!(flagged, vec![scribble]);

    let lowered: Value = put_threshold(&app, json!(0.0)).await.json().await.unwrap();
    assert_eq!(lowered["reflagged"], 1);
    assert!(scores(&app).iter().all(|r| !r.flagged));
}

#[tokio::test]
async fn quality_settings_outside_0_to_1_are_refused_with_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    for bad in [json!(1.5), json!(-0.1), json!("high"), json!(null)] {
        let response = put_threshold(&app, bad.clone()).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let code = error_code(response).await;
        assert!(
            code == "invalid_settings" || code == "invalid_body",
            "{bad}: {code}"
        );
    }
    let unknown = app
        .admin
        .put(app.url("/api/v1/admin/settings/quality"))
        .json(&json!({"auto_flag_below": 0.3, "colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get_json("/api/v1/admin/settings/quality").await,
        json!({"auto_flag_below": 0.2})
    );
}

#[tokio::test]
async fn the_histogram_counts_add_up_to_the_live_drawings() {
    let app = TestApp::spawn().await;
    for seed in 0..4 {
        submit(&app, &doodle_json(Shape::ALL[seed as usize], seed)).await;
    }
    submit(&app, &one_point_scribble()).await;
    submit(&app, &crate::helpers::sample_drawing()).await;
    wait_until_scored(&app, 6).await;

    let histogram = app
        .get_json("/api/v1/admin/quality/histogram?bins=10")
        .await;
    let bins = histogram["bins"].as_array().unwrap();
    assert_eq!(bins.len(), 10);
    assert_eq!(
        (bins[0]["from"].as_f64(), bins[9]["to"].as_f64()),
        (Some(0.0), Some(1.0))
    );
    let total: u64 = bins.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(total + histogram["unscored"].as_u64().unwrap(), 6);
    assert_eq!(bins[0]["count"], 1, "the scribble scores 0: {histogram}");
    assert_eq!(histogram["threshold"], 0.2);
    assert_eq!(
        app.get_json("/api/v1/admin/quality/histogram").await["bins"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
    for bad in ["bins=0", "bins=101", "bins=many", "width=3"] {
        let response = app
            .get(&format!("/api/v1/admin/quality/histogram?{bad}"))
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(error_code(response).await, "invalid_query");
    }
}

#[tokio::test]
async fn activating_a_model_rescores_every_drawing_with_it_and_the_walk_completes() {
    let app = TestApp::spawn().await;
    seed_drawings(&app, 30, 6).await;
    submit(&app, &one_point_scribble()).await;
    wait_until_scored(&app, 151).await;
    assert!(scores(&app)
        .iter()
        .all(|r| r.quality.as_ref().unwrap()["model_version"].is_null()));
    assert_eq!(
        app.get_json("/api/v1/admin/quality/rescore").await["status"],
        "idle"
    );

    let created = app
        .post_json(
            "/api/v1/admin/training-jobs",
            &json!({"epochs": 2, "seed": 5}),
        )
        .await;
    let id = created["job"]["id"].as_i64().unwrap();
    let job = wait_for_status(&app, id, &["completed", "failed"], Duration::from_secs(240)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let version = job["model_version"].as_str().unwrap();
    let activated = app
        .post(
            &format!("/api/v1/admin/models/{version}/activate"),
            &json!({}),
        )
        .await;
    assert_eq!(activated.status(), StatusCode::OK);

    let progress = wait_for_rescore(&app, Some(version)).await;
    assert_eq!(
        (progress["done"].as_u64(), progress["total"].as_u64()),
        (Some(151), Some(151))
    );
    let rows = scores(&app);
    for row in &rows {
        let parts = row.quality.as_ref().unwrap();
        assert_eq!(parts["model_version"], version, "{row:?}");
        let agreement = parts["agreement"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&agreement));
    }
    // The score is the validity lowered by the model's doubt.
    for row in &rows {
        let parts = row.quality.as_ref().unwrap();
        let (validity, agreement) = (
            parts["validity"].as_f64().unwrap(),
            parts["agreement"].as_f64().unwrap(),
        );
        // An unsure model answer leaves 0.4 of it (scribbles fall below the threshold).
        let unsure = if parts["unsure"] == true { 0.4 } else { 1.0 };
        let expected = validity * (0.4 + 0.6 * agreement) * unsure;
        assert!((row.score.unwrap() - expected).abs() < 1e-9, "{row:?}");
    }
    // Each row also carries the new model's verdict (Quick, Draw!'s `recognized`).
    let judged_by: Vec<Option<String>> = {
        let conn = rusqlite::Connection::open(app.data_dir.join("doodlebox.sqlite3")).unwrap();
        let mut stmt = conn
            .prepare("SELECT recognized_by FROM drawings WHERE recognized IS NOT NULL")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(judged_by.len(), 151);
    assert!(judged_by.iter().all(|v| v.as_deref() == Some(version)));
    // Even a two-epoch model agrees with synthetic doodles more than chance (1 in 5).
    let mean: f64 = rows
        .iter()
        .filter_map(|r| r.quality.as_ref().unwrap()["agreement"].as_f64())
        .sum::<f64>()
        / rows.len() as f64;
    assert!(mean > 0.25, "mean agreement {mean}");

    // On demand: 202 with a new walk, which completes too.
    let again = app.post("/api/v1/admin/quality/rescore", &json!({})).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let location = again.headers()["location"].to_str().unwrap().to_owned();
    let started: Value = again.json().await.unwrap();
    assert_eq!(started["status"], "running");
    assert_eq!(started["job"]["kind"], "rescore", "{started}");
    assert_eq!(
        location,
        format!("/api/v1/admin/jobs/{}", started["job"]["id"])
    );
    assert_eq!(wait_for_rescore(&app, Some(version)).await["done"], 151);
    // The walk ran as a job of the one queue; its result is the walk's final progress.
    let id = started["job"]["id"].as_i64().unwrap();
    let job = crate::jobs::wait_for_job(&app, id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["result"]["done"], 151, "{job}");
    let jobs = app.get_json("/api/v1/admin/jobs").await;
    let rescores = jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "rescore")
        .count();
    assert_eq!(rescores, 2, "the activation's walk was a job too: {jobs}");
}

#[tokio::test]
async fn an_interrupted_rescore_continues_after_the_last_drawing_it_saved() {
    let app = TestApp::spawn().await;
    for seed in 0..6 {
        submit(&app, &doodle_json(Shape::ALL[seed as usize % 5], seed)).await;
    }
    wait_until_scored(&app, 6).await;
    let dir = app.stop().await.unwrap();
    let data_dir = dir.path().to_owned();

    // As if the server died half-way through a walk: scores gone, progress after drawing 3.
    let ids: Vec<String> = {
        let conn = rusqlite::Connection::open(data_dir.join("doodlebox.sqlite3")).unwrap();
        conn.execute(
            "UPDATE drawings SET quality_score = NULL, quality = NULL",
            [],
        )
        .unwrap();
        let mut stmt = conn.prepare("SELECT id FROM drawings ORDER BY id").unwrap();
        let ids = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        ids
    };
    let store = SqliteMetadataStore::open(&data_dir.join("doodlebox.sqlite3")).unwrap();
    store
        .save_rescore_state(&RescoreState {
            status: RescoreStatus::Running,
            model_version: None,
            last_id: Some(ids[2].clone()),
            done: 3,
            total: 6,
            started_at: 1,
            finished_at: None,
        })
        .unwrap();
    drop(store);

    let app = TestApp::spawn_on(data_dir).await;
    let progress = wait_for_rescore(&app, None).await;
    assert_eq!(
        (progress["done"].as_u64(), progress["started_at"].as_u64()),
        (Some(6), Some(1))
    );
    // The walk took up the last three only (same walk, 3 + 3 done); the first three, which
    // it had passed, are unscored rows, which the scorer's catch-up walk scores.
    wait_until_scored(&app, 6).await;
    app.stop().await;
    drop(dir);
}

#[tokio::test]
async fn a_cancelled_rescore_ends_where_it_stands_and_does_not_resume_at_the_next_start() {
    // A server that runs no jobs: the rescore stays queued until it is cancelled.
    let dir = tempfile::tempdir().unwrap();
    let mut config = doodlebox::config::Config::for_data_dir(dir.path());
    config.no_jobs = true;
    let app = TestApp::spawn_with(config).await;
    for seed in 0..3 {
        submit(&app, &doodle_json(Shape::ALL[seed as usize], seed)).await;
    }
    let started = app.post("/api/v1/admin/quality/rescore", &json!({})).await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let started: Value = started.json().await.unwrap();
    let id = started["job"]["id"].as_i64().unwrap();
    let cancel = app
        .post(&format!("/api/v1/admin/jobs/{id}/cancel"), &json!({}))
        .await;
    assert!(cancel.status().is_success(), "{}", cancel.status());
    let progress = app.get_json("/api/v1/admin/quality/rescore").await;
    assert_eq!(progress["status"], "cancelled", "{progress}");
    assert!(progress["finished_at"].is_u64(), "{progress}");
    app.stop().await;

    // Restarted with its queue running: the cancelled walk is not queued again.
    let app = TestApp::spawn_on(dir.path().to_owned()).await;
    wait_until_scored(&app, 3).await;
    let progress = app.get_json("/api/v1/admin/quality/rescore").await;
    assert_eq!(progress["status"], "cancelled", "{progress}");
    assert_eq!(progress["started_at"], started["started_at"], "{progress}");
    let jobs = app.get_json("/api/v1/admin/jobs").await;
    let rescores: Vec<&Value> = jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "rescore")
        .collect();
    assert_eq!(rescores.len(), 1, "{jobs}");
    assert_eq!(rescores[0]["status"], "cancelled", "{jobs}");
    app.stop().await;
}

#[tokio::test]
async fn a_model_activated_while_no_server_ran_is_rescored_with_at_the_next_start() {
    let app = TestApp::spawn().await;
    seed_drawings(&app, 30, 6).await;
    let created = app
        .post_json(
            "/api/v1/admin/training-jobs",
            &json!({"epochs": 1, "seed": 6}),
        )
        .await;
    let id = created["job"]["id"].as_i64().unwrap();
    let job = wait_for_status(&app, id, &["completed", "failed"], Duration::from_secs(240)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let version = job["model_version"].as_str().unwrap().to_owned();
    wait_until_scored(&app, 150).await;
    let dir = app.stop().await.unwrap();

    // What `doodlebox models activate` does when no server answers.
    let store = SqliteMetadataStore::open(&dir.path().join("doodlebox.sqlite3")).unwrap();
    assert!(store.activate_model(&version).unwrap());
    drop(store);

    let app = TestApp::spawn_on(dir.path().to_owned()).await;
    let progress = wait_for_rescore(&app, Some(&version)).await;
    assert_eq!(progress["done"], 150);
    assert!(scores(&app)
        .iter()
        .all(|r| r.quality.as_ref().unwrap()["model_version"] == version.as_str()));
    app.stop().await;
    drop(dir);
}

#[tokio::test]
async fn drawings_that_miss_the_scorers_queue_are_all_scored_by_the_catch_up_walk() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = doodlebox::config::Config::for_data_dir(dir.path());
    // No room at all: every drawing misses the queue, as when it is full.
    config.quality_queue = 0;
    let app = TestApp::spawn_with(config).await;
    for seed in 0..40u64 {
        submit(&app, &doodle_json(Shape::ALL[seed as usize % 5], seed)).await;
    }
    submit(&app, &one_point_scribble()).await;
    wait_until_scored(&app, 41).await;
    let rows = scores(&app);
    assert!(rows.iter().all(|r| r.quality.is_some()), "{rows:?}");
    assert!(rows.iter().filter(|r| r.flagged).count() == 1, "{rows:?}");
    app.stop().await;
    drop(dir);
}
