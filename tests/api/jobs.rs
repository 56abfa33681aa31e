//! The one queue for long work through the API: backups and imports answer `202` with a job
//! that is followed to its result, run beside a training job (one of each kind at a time),
//! are cancelled through the scheduler, survive graceful restarts without being charged an
//! attempt, and are picked up again after a crash left them `running`.

use std::time::{Duration, Instant};

use doodlebox::store::{metadata_path, JobKind, JobStore, SqliteMetadataStore};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp};
use crate::training::{seed_drawings, wait_for_status};
use crate::transfer::raw_lines;

/// How long a backup or an import of a test's few drawings may take.
const JOB_LIMIT: Duration = Duration::from_secs(120);

/// Waits until the job has finished (completed, failed or cancelled) and returns it.
pub(crate) async fn wait_for_job(app: &TestApp, id: i64, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let job = app.get_json(&format!("/api/v1/admin/jobs/{id}")).await;
        if matches!(
            job["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        ) {
            return job;
        }
        assert!(started.elapsed() < limit, "job {id} not finished: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks a `202` answer (the job, its `Location`) and follows the job to its end.
pub(crate) async fn follow(app: &TestApp, response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let job: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/admin/jobs/{}", job["id"]));
    assert!(
        job["kind"].is_string() && job["status"].is_string(),
        "{job}"
    );
    wait_for_job(app, job["id"].as_i64().unwrap(), JOB_LIMIT).await
}

async fn upload(app: &TestApp, lines: &[String]) -> reqwest::Response {
    app.admin
        .post(app.url("/api/v1/admin/import?source=beside.ndjson"))
        .header("content-type", "application/x-ndjson")
        .body(lines.join("\n"))
        .send()
        .await
        .unwrap()
}

/// No kind has two jobs running at once.
async fn assert_one_running_per_kind(app: &TestApp) {
    let jobs = app.get_json("/api/v1/admin/jobs").await;
    for kind in ["train", "backup", "rescore", "import"] {
        let running = jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["kind"] == kind && j["status"] == "running")
            .count();
        assert!(running <= 1, "{running} {kind} jobs running: {jobs}");
    }
}

#[tokio::test]
async fn a_backup_and_an_import_run_beside_a_training_job_which_is_then_cancelled_through_the_queue(
) {
    let app = TestApp::spawn().await;
    seed_drawings(&app, 20, 10).await;
    let created = app
        .post_json(
            "/api/v1/admin/training-jobs",
            &json!({"epochs": 500, "batch_size": 8}),
        )
        .await;
    let train = created["job"]["id"].as_i64().unwrap();
    assert_eq!(created["job"]["kind"], "train");
    wait_for_status(&app, train, &["running"], Duration::from_secs(30)).await;

    let target = app.data_dir.join("backups").join("beside");
    let first = app
        .post("/api/v1/admin/backup", &json!({"name": "beside"}))
        .await;
    let second = app
        .post("/api/v1/admin/backup", &json!({"name": "second"}))
        .await;
    assert_one_running_per_kind(&app).await;
    let backup = follow(&app, first).await;
    assert_eq!(backup["status"], "completed", "{backup}");
    assert_eq!(backup["result"]["drawings"], 100);
    assert!(target.join("backup.json").is_file());
    assert_eq!(follow(&app, second).await["status"], "completed");

    let import = follow(&app, upload(&app, &raw_lines("circle", "b", 4, 5)).await).await;
    assert_eq!(import["status"], "completed", "{import}");
    assert_eq!(import["result"]["imported"], 4, "{import}");
    assert_one_running_per_kind(&app).await;

    let training = app
        .get_json(&format!("/api/v1/admin/training-jobs/{train}"))
        .await;
    assert_eq!(training["status"], "running", "the training run went on");
    let listed = app.get_json("/api/v1/admin/training-jobs").await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        1,
        "the training screens list training jobs only: {listed}"
    );
    let all = app.get_json("/api/v1/admin/jobs").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4, "{all}");
    let not_training = app
        .get(&format!("/api/v1/admin/training-jobs/{}", import["id"]))
        .await;
    assert_eq!(not_training.status(), StatusCode::NOT_FOUND);

    let cancel = app
        .admin
        .post(app.url(&format!("/api/v1/admin/jobs/{train}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::ACCEPTED);
    let cancelled = wait_for_job(&app, train, Duration::from_secs(30)).await;
    assert_eq!(cancelled["status"], "cancelled");
    let again = app
        .admin
        .post(app.url(&format!("/api/v1/admin/jobs/{}/cancel", import["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(again).await, "job_finished");
    app.assert_completed_event_stream(&format!("/api/v1/admin/jobs/{}/events", backup["id"]))
        .await;
}

#[tokio::test]
async fn an_import_upload_with_bad_parameters_is_refused_and_queues_nothing() {
    let app = TestApp::spawn().await;
    let response = app
        .admin
        .post(app.url("/api/v1/admin/import?create_shapes=maybe"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let jobs = app.get_json("/api/v1/admin/jobs").await;
    assert_eq!(jobs["items"], json!([]));
    let uploads = app.data_dir.join("jobs").join("uploads");
    assert!(!uploads.exists() || std::fs::read_dir(&uploads).unwrap().count() == 0);
    let missing = app.get("/api/v1/admin/jobs/999").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn graceful_restarts_during_one_training_job_never_charge_an_attempt_and_it_completes() {
    let mut app = TestApp::spawn().await;
    let data_dir = app.data_dir.clone();
    seed_drawings(&app, 20, 10).await;
    let created = app
        .post_json(
            "/api/v1/admin/training-jobs",
            &json!({"epochs": 30, "batch_size": 8}),
        )
        .await;
    let id = created["job"]["id"].as_i64().unwrap();
    let mut kept = None;
    for restart in 0..=doodlebox::jobs::MAX_ATTEMPTS {
        let job =
            wait_for_status(&app, id, &["running", "completed"], Duration::from_secs(60)).await;
        assert_eq!(job["status"], "running", "restart {restart}: {job}");
        assert_eq!(job["attempt"], 1, "restart {restart}: {job}");
        // A graceful stop (what SIGTERM does), then a new server on the same data.
        let dir = app.stop().await;
        kept = kept.or(dir);
        app = TestApp::spawn_on(data_dir.clone()).await;
    }
    let job = wait_for_status(&app, id, &["completed", "failed"], Duration::from_secs(240)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["attempt"], 1, "graceful stops are not charged: {job}");
    drop(kept);
}

#[tokio::test]
async fn a_backup_and_an_import_left_running_by_a_crash_are_run_again_at_the_next_start() {
    let app = TestApp::spawn().await;
    let data_dir = app.data_dir.clone();
    for _ in 0..3 {
        let response = app
            .submit(&app.client, &crate::helpers::sample_drawing(), None)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let kept = app.stop().await;

    // What a kill -9 leaves: jobs `running`, a half-written backup, an upload not imported.
    let dest = tempfile::tempdir().unwrap();
    let half = dest.path().join("half");
    std::fs::create_dir(&half).unwrap();
    std::fs::write(metadata_path(&half), "half a snapshot").unwrap();
    let foreign = dest.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("mine.txt"), "not the backup's").unwrap();
    let uploads = data_dir.join("jobs").join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let upload = uploads.join("upload-crashed.ndjson");
    std::fs::write(&upload, raw_lines("circle", "k", 5, 7).join("\n")).unwrap();
    let orphan = uploads.join("upload-orphan.ndjson");
    std::fs::write(&orphan, "no job names this upload").unwrap();
    let store = SqliteMetadataStore::open(&metadata_path(&data_dir)).unwrap();
    let mut ids = Vec::new();
    for (kind, config) in [
        (JobKind::Backup, json!({"dest": half})),
        (
            JobKind::Import,
            json!({"upload": upload, "create_shapes": false, "source": "crashed"}),
        ),
        (JobKind::Backup, json!({"dest": foreign})),
    ] {
        let (job, _) = store
            .enqueue_job(kind, &config, &config.to_string())
            .unwrap();
        let started = store.start_next_job(&[kind]).unwrap().unwrap();
        assert_eq!(started.id, job.id);
        store
            .record_progress(started.lease(), &json!({"destination_ready": true}))
            .unwrap();
        ids.push(job.id);
    }
    drop(store);

    let app = TestApp::spawn_on(data_dir.clone()).await;
    assert!(
        !orphan.exists(),
        "an upload no job waits for is removed at start"
    );
    let backup = wait_for_job(&app, ids[0], JOB_LIMIT).await;
    assert_eq!(backup["status"], "completed", "{backup}");
    assert_eq!(backup["attempt"], 2, "the crash counted: {backup}");
    // The import runs beside it: the snapshot holds the 3 drawings, perhaps some imported.
    assert!(
        backup["result"]["drawings"].as_u64().unwrap() >= 3,
        "{backup}"
    );
    let report = doodlebox::service::backup::verify_dir(&half).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);

    let import = wait_for_job(&app, ids[1], JOB_LIMIT).await;
    assert_eq!(import["status"], "completed", "{import}");
    assert_eq!(import["result"]["imported"], 5, "{import}");
    assert!(
        !upload.exists(),
        "the upload is removed once the job has finished"
    );

    let refused = wait_for_job(&app, ids[2], JOB_LIMIT).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("not empty"),
        "{refused}"
    );
    assert!(
        foreign.join("mine.txt").is_file(),
        "files not its own are kept"
    );
    app.stop().await;
    drop(kept);
}
