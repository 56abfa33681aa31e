//! The admin backup and verify routes: a backup of the running server (a job) into its
//! backup directory only, what a destination path or a bad name gets, and the live
//! check of the stores (a job).

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
    let before = app.get_json("/api/v1/admin/stats").await;
    assert_eq!(before["backup_bytes"], 0, "{before}");
    let target = app.data_dir.join("backups").join("b1");
    let response = app
        .post("/api/v1/admin/backup", &json!({"name": "b1"}))
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

    // The dashboard counts the backup apart: the data's size does not take it in.
    let after = app.get_json("/api/v1/admin/stats").await;
    let (data_before, data_after, backups) = (
        before["storage_bytes"].as_u64().unwrap(),
        after["storage_bytes"].as_u64().unwrap(),
        after["backup_bytes"].as_u64().unwrap(),
    );
    assert!(backups > 0, "{after}");
    assert!(
        data_after < data_before + backups / 2,
        "data {data_before} → {data_after} bytes, backups {backups}"
    );

    let response = app.post("/api/v1/admin/verify", &json!({})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job = crate::jobs::follow(&app, response).await;
    assert_eq!(
        (&job["kind"], &job["status"]),
        (&json!("verify"), &json!("completed")),
        "{job}"
    );
    let live = &job["result"];
    assert_eq!(live["problems"], json!([]), "{live}");
    assert_eq!(
        job["progress"],
        json!({"phase": "records", "records": 5, "rows": 5, "rows_total": 5}),
        "the finished job keeps the walk's last figures"
    );
    assert_eq!((&live["rows"], &live["records"]), (&json!(5), &json!(5)));
}

#[tokio::test]
async fn a_live_check_is_a_job_that_finds_a_row_removed_behind_the_server_s_back_and_names_no_path()
{
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let response = app.submit(&app.client, &sample_drawing(), None).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: serde_json::Value = response.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    // The oldest drawing's row goes; its stroke record stays: a record without a row.
    let sqlite = doodlebox::store::metadata_path(&app.data_dir);
    let conn = rusqlite::Connection::open(&sqlite).unwrap();
    conn.execute("DELETE FROM drawings WHERE id = ?1", [&ids[0]])
        .unwrap();
    drop(conn);

    let response = app.post("/api/v1/admin/verify", &json!({})).await;
    let job = crate::jobs::follow(&app, response).await;
    assert_eq!(job["status"], "completed", "{job}");
    let report = &job["result"];
    assert_eq!(
        (&report["rows"], &report["records"]),
        (&json!(2), &json!(3))
    );
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{report}");
    let problem = problems[0].as_str().unwrap();
    assert!(
        problem.contains("stroke records without a row") && problem.contains(&ids[0]),
        "{problem}"
    );
    assert!(report.get("path").is_none(), "{report}");
    let data_dir = app.data_dir.display().to_string();
    assert!(!job.to_string().contains(&data_dir), "{job}");
}

#[tokio::test]
async fn a_backup_request_naming_a_path_or_a_taken_or_odd_name_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("b");
    for body in [json!({"dest": target}), json!({"dest": "relative/backup"})] {
        let response = app.post("/api/v1/admin/backup", &body).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_code(response).await, "backup_destination_not_allowed");
    }
    assert!(
        !target.exists(),
        "nothing is written where a request points"
    );
    for name in ["../escape", "/tmp/x", ".hidden", "a b", ""] {
        let response = app
            .post("/api/v1/admin/backup", &json!({ "name": name }))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name:?}"
        );
        assert_eq!(error_code(response).await, "invalid_backup_name");
    }
    assert!(!app.data_dir.join("escape").exists());

    let taken = app.data_dir.join("backups").join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("keep.txt"), "mine").unwrap();
    let response = app
        .post("/api/v1/admin/backup", &json!({"name": "taken"}))
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "backup_destination_not_empty");
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 1);

    for body in [json!({"to": "/tmp/x"}), json!([null, null]), json!(["x"])] {
        let response = app.post("/api/v1/admin/backup", &body).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
    }
    let jobs = app.get_json("/api/v1/admin/jobs").await;
    assert_eq!(jobs["items"], json!([]), "nothing was queued: {jobs}");
}

#[tokio::test]
async fn a_backup_without_a_name_goes_to_a_timestamped_folder_of_the_backup_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("elsewhere");
    let mut config = doodlebox::config::Config::for_data_dir(dir.path().join("data"));
    config.backup_dir = Some(root.clone());
    let app = TestApp::spawn_with(config).await;
    let response = app.post("/api/v1/admin/backup", &json!({})).await;
    let job = crate::jobs::follow(&app, response).await;
    assert_eq!(job["status"], "completed", "{job}");
    let written: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    let name = written[0].file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("backup-"), "{name}");
    // The answer names the folder, never a path on the server's disk.
    assert_eq!(job["config"], json!({ "name": name }), "{job}");
    assert!(!job.to_string().contains(&*root.to_string_lossy()), "{job}");
    assert!(written[0].join("backup.json").is_file());
    assert!(!app.data_dir.join("backups").exists());
}

#[tokio::test]
async fn a_backup_that_fails_on_the_disk_says_why_without_the_servers_paths() {
    let dir = tempfile::tempdir().unwrap();
    // The backup directory is a file: creating the backup's folder in it fails.
    let root = dir.path().join("not-a-folder");
    std::fs::write(&root, b"a file").unwrap();
    let mut config = doodlebox::config::Config::for_data_dir(dir.path().join("data"));
    config.backup_dir = Some(root.clone());
    let app = TestApp::spawn_with(config).await;
    let response = app
        .post("/api/v1/admin/backup", &json!({"name": "b1"}))
        .await;
    let job = crate::jobs::follow(&app, response).await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "{job}");
    let dir_text = dir.path().to_string_lossy();
    assert!(!job.to_string().contains(&*dir_text), "{job}");
    let listed = app.get_json("/api/v1/admin/jobs").await;
    assert!(!listed.to_string().contains(&*dir_text), "{listed}");
}
