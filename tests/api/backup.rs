//! The admin backup and verify routes: a backup of the running server (a job), what bad
//! destinations get, and the live verification report.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_code, sample_drawing, TestApp};

#[tokio::test]
async fn a_backup_through_the_api_holds_every_drawing_and_verifies_clean() {
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        let response = app.submit(&app.client, &sample_drawing(), None).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let dest = tempfile::tempdir().unwrap();
    let target = dest.path().join("b1");
    let response = app
        .post("/api/v1/admin/backup", &json!({"dest": target}))
        .await;
    let job = crate::jobs::follow(&app, response).await;
    assert_eq!(
        (&job["kind"], &job["status"]),
        (&json!("backup"), &json!("completed")),
        "{job}"
    );
    let manifest = &job["result"];
    assert_eq!(manifest["drawings"], 5);
    assert_eq!(manifest["records"], 5);
    assert_eq!(
        manifest["schema_version"],
        doodlebox::store::SCHEMA_VERSION,
        "the backup records the schema it was written with"
    );
    assert!(target.join("backup.json").is_file());
    let report = doodlebox::service::backup::verify_dir(&target).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!((report.rows, report.records), (5, 5));

    let live = app.get_json("/api/v1/admin/verify").await;
    assert_eq!(live["problems"], json!([]), "{live}");
    assert_eq!(live["rows"], 5);
}

#[tokio::test]
async fn a_backup_into_a_non_empty_or_relative_destination_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let dest = tempfile::tempdir().unwrap();
    std::fs::write(dest.path().join("keep.txt"), "mine").unwrap();
    let response = app
        .post("/api/v1/admin/backup", &json!({"dest": dest.path()}))
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "backup_destination_not_empty");
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 1);

    let response = app
        .post("/api/v1/admin/backup", &json!({"dest": "relative/backup"}))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(response).await, "invalid_backup_destination");
    let response = app
        .post("/api/v1/admin/backup", &json!({"to": "/tmp/x"}))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
