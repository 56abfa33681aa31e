//! Durable jobs across a `kill -9`: a training job and an import job run again after a restart.

use super::*;

/// A job of any kind, as `GET /api/v1/admin/jobs/{id}` answers it.
async fn job_state(client: &reqwest::Client, base: &str, id: i64) -> Value {
    client
        .get(format!("{base}/api/v1/admin/jobs/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls the job until `done` holds, at most `limit`.
pub(crate) async fn wait_for_job(
    client: &reqwest::Client,
    base: &str,
    id: i64,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = std::time::Instant::now();
    loop {
        let job = job_state(client, base, id).await;
        if done(&job) {
            return job;
        }
        assert!(
            started.elapsed() < limit,
            "job {id} did not get there in {limit:?}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_job_killed_mid_run_resumes_after_restart_and_the_cli_trains_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let server = tokio::task::spawn_blocking({
        let path = path.clone();
        move || Server::start(&path)
    })
    .await
    .unwrap();
    // Ten players, so that validation can hold some out.
    let players: Vec<String> = (1..=10u64)
        .map(|p| format!("doodlebox_player={p:032x}"))
        .collect();
    synthetic::submit_doodles(&server.base, 20, &players).await;
    let id = server
        .queue_training(&json!({"epochs": 400, "batch_size": 8}))
        .await;
    // Past the second epoch, so a checkpoint exists.
    let before = wait_for_job(
        &server.admin(),
        &server.base,
        id,
        Duration::from_secs(120),
        |job| job["progress"]["epoch"].as_u64().is_some_and(|e| e >= 3),
    )
    .await;
    server.kill_9();

    let server = tokio::task::spawn_blocking({
        let path = path.clone();
        move || Server::start(&path)
    })
    .await
    .unwrap();
    let resumed = wait_for_job(
        &server.admin(),
        &server.base,
        id,
        Duration::from_secs(120),
        |job| {
            job["status"] == "running"
                && job["attempt"] == 2
                && job["progress"]["epoch"].as_u64().is_some()
        },
    )
    .await;
    let epoch_before = before["progress"]["epoch"].as_u64().unwrap();
    let epoch_after = resumed["progress"]["epoch"].as_u64().unwrap();
    assert!(
        epoch_after + 1 >= epoch_before,
        "resumed at epoch {epoch_after}, was at {epoch_before}"
    );
    server
        .admin()
        .post(format!(
            "{}/api/v1/admin/training-jobs/{id}/cancel",
            server.base
        ))
        .send()
        .await
        .unwrap();
    wait_for_job(
        &server.admin(),
        &server.base,
        id,
        Duration::from_secs(60),
        |job| job["status"] == "cancelled",
    )
    .await;
    drop(server);

    let trained = Command::new(BINARY)
        .args(["train", "--epochs", "2", "--data-dir"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&trained.stdout);
    assert!(
        trained.status.success(),
        "train failed: {}",
        String::from_utf8_lossy(&trained.stderr)
    );
    assert!(stdout.contains("model v1 trained"), "{stdout}");
    let listed = Command::new(BINARY)
        .args(["models", "list", "--data-dir"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("v1"),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
}

/// `n` raw Quick, Draw! circles with keys `k{i}` whose points stay inside the canvas.
fn in_canvas_circles(n: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let d = (i % 400) as i64;
            json!({"word": "circle", "countrycode": "GB", "timestamp": "2017-02-01 12:00:00.5 UTC",
                   "recognized": true, "key_id": format!("k{i}"),
                   "drawing": [[[10 + d, 60, 110], [20, 70 + d, 20], [0, 16, 40]]]})
            .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_job_killed_mid_run_runs_again_after_restart_and_stores_each_line_once() {
    const LINES: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let server = tokio::task::spawn_blocking({
        let path = path.clone();
        move || Server::start(&path)
    })
    .await
    .unwrap();
    let response = server
        .admin()
        .post(format!(
            "{}/api/v1/admin/import?source=killed.ndjson",
            server.base
        ))
        .header("content-type", "application/x-ndjson")
        .body(in_canvas_circles(LINES).join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let running = wait_for_job(
        &server.admin(),
        &server.base,
        id,
        Duration::from_secs(60),
        |job| job["status"] != "queued",
    )
    .await;
    assert_eq!(
        running["status"], "running",
        "the import outlasts its start: {running}"
    );
    server.kill_9();

    let server = tokio::task::spawn_blocking({
        let path = path.clone();
        move || Server::start(&path)
    })
    .await
    .unwrap();
    let done = wait_for_job(
        &server.admin(),
        &server.base,
        id,
        Duration::from_secs(300),
        |job| {
            matches!(
                job["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            )
        },
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempt"], 2, "the crash counted once: {done}");
    let report = &done["result"];
    assert_eq!(report["bad_line_count"], 0, "{report}");
    assert_eq!(
        report["imported"].as_u64().unwrap() + report["skipped_duplicates"].as_u64().unwrap(),
        LINES,
        "{report}"
    );
    assert_eq!(
        readyz(&server.base).await["drawings"],
        LINES,
        "every line stored exactly once"
    );
    let uploads = path.join("jobs").join("uploads");
    assert_eq!(
        std::fs::read_dir(&uploads).unwrap().count(),
        0,
        "the upload is removed once the job has finished"
    );
}
