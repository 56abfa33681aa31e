//! Cluster mode with the real binary on a real PostgreSQL (a throwaway cluster; skipped with
//! a message where PostgreSQL is not installed, except under `CI=true`): two `serve`
//! replicas on one database (kill -9, idempotency, backups refused, activation and rollback
//! served by the other replica, jobs run by workers, taken over from a killed one and
//! resumed from the checkpoint in the database, a frozen worker fenced off its job, and an
//! import uploaded to a serve-only replica run by another);
//! `doodlebox migrate` of an appliance holding the shared Quick, Draw! sample (killed with -9
//! midway, then run again, twice); `verify --database-url` on a whole database and on one
//! with planted damage.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doodlebox::store::postgres::scratch::{ScratchCluster, ScratchDatabase};
use rand::Rng;
use serde_json::{json, Value};

#[path = "common/server.rs"]
#[allow(dead_code)] // this binary does not read output or start without a database
mod server;

use server::{Server, Worker};

#[path = "common/synthetic.rs"]
#[allow(dead_code)] // only the doodles as submitted
mod synthetic;

/// Clients submitting while a replica is killed.
const SUBMITTERS: usize = 8;
/// How long they submit to both replicas before one is killed, and to the survivor after.
const BEFORE_KILL: Duration = Duration::from_millis(1500);
const AFTER_KILL: Duration = Duration::from_millis(1500);

fn drawing(rng: &mut impl Rng) -> Value {
    let points: Vec<Value> = (0..rng.random_range(2..30))
        .map(|i| json!({"x": rng.random_range(0..400), "y": rng.random_range(0..400), "timestamp": i}))
        .collect();
    json!({"shape": "circle", "canvas": {"width": 400, "height": 400},
           "strokes": [{"points": points}], "duration_ms": 900, "device": "mouse"})
}

/// A replica of the database at `url`, with its own data directory (kept by `dir`).
async fn replica(url: &str, dir: &Path) -> Server {
    let (url, dir) = (url.to_owned(), dir.to_owned());
    tokio::task::spawn_blocking(move || {
        Server::start_with(&dir, &[("DOODLEBOX_DATABASE_URL", url.as_str())])
    })
    .await
    .unwrap()
}

/// One acknowledged drawing: who sent it, its id, and what was sent.
struct Acked {
    cookie: String,
    id: String,
    body: Value,
}

/// Submits to the replicas in turn until `stop`; a replica that does not answer is
/// skipped (it was killed), and only a 201 counts as acknowledged.
async fn submit(bases: Vec<String>, stop: Instant, acked: Arc<Mutex<Vec<Acked>>>) {
    let cookie = format!("doodlebox_player={:032x}", rand::random::<u128>());
    let client = reqwest::Client::new();
    let mut turn = rand::random::<u32>() as usize;
    while Instant::now() < stop {
        turn += 1;
        let base = &bases[turn % bases.len()];
        let body = drawing(&mut rand::rng());
        let sent = client
            .post(format!("{base}/api/v1/drawings"))
            .header("cookie", &cookie)
            .header("Idempotency-Key", format!("{:x}", rand::random::<u64>()))
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let Ok(response) = sent else { continue };
        let status = response.status().as_u16();
        let Ok(reply) = response.json::<Value>().await else {
            continue;
        };
        if status == 201 {
            acked.lock().unwrap().push(Acked {
                cookie: cookie.clone(),
                id: reply["id"].as_str().expect("id in a 201").to_owned(),
                body,
            });
        } else {
            assert_eq!(status, 503, "unexpected answer {status}: {reply}");
        }
    }
}

fn database() -> Option<ScratchDatabase> {
    ScratchCluster::database_or_skip()
}

async fn readyz(base: &str) -> Value {
    reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_lose_no_acknowledged_drawing_when_one_is_killed_with_sigkill() {
    let Some(db) = database() else { return };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica(&db.url(), dir_a.path()).await;
    let b = replica(&db.url(), dir_b.path()).await;
    assert_eq!(readyz(&a.base).await["database"]["backend"], "postgresql");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Instant::now() + BEFORE_KILL + AFTER_KILL;
    let clients: Vec<_> = (0..SUBMITTERS)
        .map(|_| {
            tokio::spawn(submit(
                vec![a.base.clone(), b.base.clone()],
                stop,
                acked.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(BEFORE_KILL).await;
    let before_kill = acked.lock().unwrap().len();
    a.kill_9();
    for client in clients {
        client.await.expect("submitter");
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let client = reqwest::Client::new();
    let mut lost = Vec::new();
    for drawing in &acked {
        let response = client
            .get(format!("{}/api/v1/drawings/{}", b.base, drawing.id))
            .header("cookie", &drawing.cookie)
            .send()
            .await
            .unwrap();
        if response.status() != 200 {
            lost.push(format!("{} ({})", drawing.id, response.status()));
            continue;
        }
        let got: Value = response.json().await.unwrap();
        if got["drawing"]["strokes"][0]["points"]
            .as_array()
            .map(Vec::len)
            != drawing.body["strokes"][0]["points"]
                .as_array()
                .map(Vec::len)
        {
            lost.push(format!("{} (changed)", drawing.id));
        }
    }
    let stored = readyz(&b.base).await["drawings"].as_u64().unwrap();
    println!(
        "two replicas, {SUBMITTERS} submitters, one killed with -9: acknowledged {} ({before_kill} before the kill), stored {stored}, lost {}",
        acked.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost acknowledged drawings: {lost:?}");
    assert!(
        before_kill > 0 && acked.len() > before_kill,
        "both phases acknowledged drawings"
    );
    assert!(stored >= acked.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_idempotency_key_sent_to_both_replicas_at_once_stores_one_drawing() {
    let Some(db) = database() else { return };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica(&db.url(), dir_a.path()).await;
    let b = replica(&db.url(), dir_b.path()).await;
    const KEYS: usize = 30;
    let client = reqwest::Client::new();
    let cookie = format!("doodlebox_player={:032x}", rand::random::<u128>());
    for n in 0..KEYS {
        let body = drawing(&mut rand::rng());
        let send = |base: &str| {
            client
                .post(format!("{base}/api/v1/drawings"))
                .header("cookie", &cookie)
                .header("Idempotency-Key", format!("same-{n}"))
                .json(&body)
                .send()
        };
        let (x, y) = tokio::join!(send(&a.base), send(&b.base));
        let (x, y) = (x.unwrap(), y.unwrap());
        let statuses = [x.status().as_u16(), y.status().as_u16()];
        let (x, y): (Value, Value) = (x.json().await.unwrap(), y.json().await.unwrap());
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 201),
            "{statuses:?} {x} {y}"
        );
        assert_eq!(x["id"], y["id"], "both replicas answer the one drawing");
    }
    assert_eq!(readyz(&a.base).await["drawings"], KEYS as u64);
    assert_eq!(readyz(&b.base).await["drawings"], KEYS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_in_cluster_mode_point_at_pg_dump_and_queue_nothing() {
    let Some(db) = database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = replica(&db.url(), dir.path()).await;
    let dest = tempfile::tempdir().unwrap();
    let response = server
        .admin()
        .post(format!("{}/api/v1/admin/backup", server.base))
        .json(&json!({"dest": dest.path().join("b")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "use_pg_dump");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("pg_dump"));
    let jobs: Value = server
        .admin()
        .get(format!("{}/api/v1/admin/jobs", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jobs.to_string().contains("backup"), "{jobs}");
}

/// A replica that serves only (`--no-jobs`).
async fn serve_only_replica(url: &str, dir: &Path) -> Server {
    let (url, dir) = (url.to_owned(), dir.to_owned());
    tokio::task::spawn_blocking(move || {
        Server::start_with(
            &dir,
            &[
                ("DOODLEBOX_DATABASE_URL", url.as_str()),
                ("DOODLEBOX_NO_JOBS", "1"),
            ],
        )
    })
    .await
    .unwrap()
}

/// A worker on the database at `url`.
async fn worker(url: &str, dir: &Path) -> Worker {
    let (url, dir) = (url.to_owned(), dir.to_owned());
    tokio::task::spawn_blocking(move || Worker::start(&dir, &url))
        .await
        .unwrap()
}

/// Job `id` as `server` shows it.
async fn job(server: &Server, id: i64) -> Value {
    server
        .admin()
        .get(format!("{}/api/v1/admin/jobs/{id}", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls job `id` on `server` until `done` holds, at most `limit`.
async fn wait_for_job(
    server: &Server,
    id: i64,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let job = job(server, id).await;
        if done(&job) {
            return job;
        }
        assert!(started.elapsed() < limit, "job {id} after {limit:?}: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_queued_on_a_serve_only_replica_is_run_by_a_worker() {
    let Some(db) = database() else { return };
    let (dir, worker_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let replica = serve_only_replica(&db.url(), dir.path()).await;
    let cookie = format!("doodlebox_player={:032x}", rand::random::<u128>());
    synthetic::submit_doodles(&replica.base, 10, std::slice::from_ref(&cookie)).await;
    let id = replica
        .queue_training(&json!({"epochs": 1, "batch_size": 8}))
        .await;
    // Three ticks of the replica's scheduler: it claims nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(job(&replica, id).await["status"], "queued");
    let _worker = worker(&db.url(), worker_dir.path()).await;
    let done = wait_for_job(&replica, id, Duration::from_secs(300), |j| {
        j["status"] == "completed"
    })
    .await;
    let version = done["model_version"].as_str().unwrap().to_owned();
    // The model the worker trained is served by the replica, from the database.
    let response = replica
        .admin()
        .post(format!(
            "{}/api/v1/admin/models/{version}/activate?force=true",
            replica.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let client = reqwest::Client::new();
    assert_eq!(
        classified_by(&client, &replica.base, &cookie).await,
        version
    );
}

/// Epochs in a job that a worker is stopped in the middle of: long enough (about a third
/// of a second each here) that the job is still running when the next worker takes it over.
const LONG_EPOCHS: u64 = 40;

/// Epochs job `job` shows done (its progress names the epoch in progress until its end).
fn epochs_done(job: &Value) -> u64 {
    let progress = &job["progress"];
    let epoch = progress["epoch"].as_u64().unwrap_or(0);
    match progress["epoch_done"].is_null() {
        true => epoch.saturating_sub(1),
        false => epoch,
    }
}

/// Queues a long training job on a serve-only replica with a first worker, and waits until
/// that worker has finished (and checkpointed) `epochs` epochs of it.
async fn a_job_epochs_into_training(
    db: &ScratchDatabase,
    dirs: &[tempfile::TempDir],
    epochs: u64,
) -> (Server, Worker, i64) {
    let replica = serve_only_replica(&db.url(), dirs[0].path()).await;
    let cookie = format!("doodlebox_player={:032x}", rand::random::<u128>());
    synthetic::submit_doodles(&replica.base, 10, std::slice::from_ref(&cookie)).await;
    let config = json!({"epochs": LONG_EPOCHS, "batch_size": 8});
    let id = replica.queue_training(&config).await;
    let first = worker(&db.url(), dirs[1].path()).await;
    wait_for_job(&replica, id, Duration::from_secs(120), |j| {
        j["status"] == "running" && epochs_done(j) >= epochs
    })
    .await;
    (replica, first, id)
}

/// Rows of a table of the database at `url`.
async fn count_rows(url: &str, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table}");
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.query_one(&sql, &[]).unwrap().get(0)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_with_sigkill_mid_training_is_taken_over_and_the_job_finishes() {
    let Some(db) = database() else { return };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (replica, first, id) = a_job_epochs_into_training(&db, &dirs, 2).await;
    drop(first); // SIGKILL
    let killed_at = Instant::now();
    // Its host is gone with its disk: the checkpoint is only in the database now.
    let scratch = doodlebox::data_dir::DataDir::new(dirs[1].path()).jobs();
    std::fs::remove_dir_all(&scratch).unwrap();
    let _second = worker(&db.url(), dirs[2].path()).await;
    let done = wait_for_job(&replica, id, Duration::from_secs(300), |j| {
        j["status"] == "completed" || j["status"] == "failed"
    })
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempt"], 2, "{done}");
    // The second worker went on after the epochs the first had finished, not from zero.
    let resumed = done["progress"]["resumed_from_epoch"].as_u64().unwrap();
    assert!((2..LONG_EPOCHS).contains(&resumed), "{done}");
    assert_eq!(done["progress"]["epoch"], LONG_EPOCHS, "{done}");
    let history = done["metrics"]["history"].as_array().unwrap();
    assert_eq!(history.len() as u64, LONG_EPOCHS, "{done}");
    // The job ended: its checkpoint left the database.
    assert_eq!(count_rows(&db.url(), "job_checkpoints").await, 0);
    println!(
        "a worker killed mid-training after {resumed} checkpointed epoch(s) of {LONG_EPOCHS}: \
         taken over, resumed there, finished {:.1} s after the kill",
        killed_at.elapsed().as_secs_f64()
    );
}

/// Sends `signal` (`STOP`, `CONT`) to `worker`'s process.
fn signal(worker: &Worker, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(worker.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// The versions of the models job `id` registered, as `server` lists them.
async fn models_of_job(server: &Server, id: i64) -> Vec<String> {
    let models: Value = server
        .admin()
        .get(format!("{}/api/v1/admin/models", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = models["items"].as_array().unwrap();
    items
        .iter()
        .filter(|m| m["job_id"] == id)
        .map(|m| m["version"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_frozen_past_the_takeover_then_woken_leaves_the_job_to_its_new_owner() {
    let Some(db) = database() else { return };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (replica, mut first, id) = a_job_epochs_into_training(&db, &dirs, 1).await;
    signal(&first, "STOP");
    let _second = worker(&db.url(), dirs[2].path()).await;
    // Past the takeover, the second worker runs the job; then the first wakes, its run
    // well short of the end and ahead of the second's.
    wait_for_job(&replica, id, Duration::from_secs(60), |j| {
        j["status"] == "running" && j["attempt"] == 2
    })
    .await;
    signal(&first, "CONT");
    let done = wait_for_job(&replica, id, Duration::from_secs(300), |j| {
        j["status"] == "completed" || j["status"] == "failed"
    })
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempt"], 2, "{done}");
    // Long enough for the woken worker to finish its own run, had it not been stopped.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let models = models_of_job(&replica, id).await;
    assert_eq!(models.len(), 1, "{models:?}");
    let after = job(&replica, id).await;
    assert_eq!(after["model_version"], models[0].as_str(), "{after}");
    assert_eq!(after["finished_at_ms"], done["finished_at_ms"], "{after}");
    // Fenced quietly: the woken worker is still up, ready for other jobs.
    assert!(first.child.try_wait().unwrap().is_none());
}

/// `n` Quick, Draw! lines of circles, each with its own key.
fn circle_lines(n: u64) -> String {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let d = (i % 400) as i64;
            json!({"word": "circle", "countrycode": "GB", "timestamp": "2017-02-01 12:00:00.5 UTC",
                   "recognized": true, "key_id": format!("c{i}"),
                   "drawing": [[[10 + d, 60, 110], [20, 70 + d, 20], [0, 16, 40]]]})
            .to_string()
        })
        .collect();
    lines.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_import_uploaded_to_a_serve_only_replica_is_run_by_another_and_every_drawing_is_there() {
    let Some(db) = database() else { return };
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let took = serve_only_replica(&db.url(), dirs[0].path()).await;
    // About 2 MB: several of the database's 1 MiB chunks.
    const LINES: u64 = 12_000;
    let response = took
        .admin()
        .post(format!(
            "{}/api/v1/admin/import?source=elsewhere.ndjson",
            took.base
        ))
        .header("content-type", "application/x-ndjson")
        .body(circle_lines(LINES))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    // Acknowledged means stored in the database, not on the disk of the replica that took it.
    assert!(count_rows(&db.url(), "job_uploads").await >= 2);
    let on_disk = doodlebox::jobs::import::uploads_dir(dirs[0].path());
    let files = std::fs::read_dir(&on_disk).map_or(0, |d| d.count());
    assert_eq!(files, 0, "{}", on_disk.display());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(job(&took, id).await["status"], "queued");

    let _runs = replica(&db.url(), dirs[1].path()).await;
    let done = wait_for_job(&took, id, Duration::from_secs(120), |j| {
        j["status"] == "completed" || j["status"] == "failed"
    })
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    let report = &done["result"];
    assert_eq!(report["imported"], LINES, "{report}");
    assert_eq!(report["bad_line_count"], 0, "{report}");
    assert_eq!(count_rows(&db.url(), "drawings").await, LINES as i64);
    assert_eq!(count_rows(&db.url(), "stroke_records").await, LINES as i64);
    // The job ended: its upload left the database.
    assert_eq!(count_rows(&db.url(), "job_uploads").await, 0);
}

/// How long a change made on one replica may take to be served by the other (issue #17).
const CLUSTER_WIDE_WITHIN: Duration = Duration::from_secs(5);

/// The model version `base` classifies with, or the error code it answers.
async fn classified_by(client: &reqwest::Client, base: &str, cookie: &str) -> String {
    let answer: Value = client
        .post(format!("{base}/api/v1/classify"))
        .header("cookie", cookie)
        .json(&json!({"drawing": [[[10, 60, 120, 200], [20, 60, 110, 180]]]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["model_version"]
        .as_str()
        .or(answer["error"]["code"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Waits until `base` classifies with `version`; answers how long it took.
async fn served_within(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    version: &str,
) -> Duration {
    let started = Instant::now();
    loop {
        let got = classified_by(client, base, cookie).await;
        if got == version {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < CLUSTER_WIDE_WITHIN,
            "{base} still answers {got:?}, not {version}, after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Trains a model on `server` (a one-job queue; `epochs` tells two runs apart) and answers
/// its version once the job completed.
async fn train(server: &Server, epochs: u32) -> String {
    let id = server
        .queue_training(&json!({"epochs": epochs, "batch_size": 8}))
        .await;
    let started = Instant::now();
    loop {
        let job: Value = server
            .admin()
            .get(format!("{}/api/v1/admin/jobs/{id}", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match job["status"].as_str() {
            Some("completed") => return job["model_version"].as_str().unwrap().to_owned(),
            Some("failed" | "cancelled") => panic!("training failed: {job}"),
            _ => {}
        }
        assert!(started.elapsed() < Duration::from_secs(300), "{job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_model_activated_or_rolled_back_on_one_replica_is_served_by_the_other_within_5_s() {
    let Some(db) = database() else { return };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let trainer = replica(&db.url(), dirs[0].path()).await;
    let cookie = format!("doodlebox_player={:032x}", rand::random::<u128>());
    let client = reqwest::Client::new();
    synthetic::submit_doodles(&trainer.base, 10, std::slice::from_ref(&cookie)).await;
    let first = train(&trainer, 1).await;
    let second = train(&trainer, 2).await;
    // The host that trained them is gone with its files: the models live on in the database.
    drop(trainer);
    std::fs::remove_dir_all(dirs[0].path()).unwrap();
    let a = replica(&db.url(), dirs[1].path()).await;
    let b = replica(&db.url(), dirs[2].path()).await;
    assert_eq!(
        classified_by(&client, &b.base, &cookie).await,
        "no_active_model"
    );

    let mut took = Vec::new();
    for version in [&first, &second] {
        let response = a
            .admin()
            .post(format!(
                "{}/api/v1/admin/models/{version}/activate?force=true",
                a.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        took.push(served_within(&client, &b.base, &cookie, version).await);
    }
    let response = a
        .admin()
        .post(format!("{}/api/v1/admin/models/rollback", a.base))
        .send()
        .await
        .unwrap();
    let rolled: Value = response.json().await.unwrap();
    assert_eq!(rolled["active"], first.as_str(), "{rolled}");
    took.push(served_within(&client, &b.base, &cookie, &first).await);
    assert_eq!(classified_by(&client, &a.base, &cookie).await, first);
    for (dir, name) in [(&dirs[1], "A"), (&dirs[2], "B")] {
        assert!(
            dir.path()
                .join("models")
                .join(&second)
                .join("model.safetensors")
                .exists(),
            "{name} fetched the model it served into its own data directory"
        );
    }
    println!(
        "served by the other replica after: activation {:?}, activation {:?}, rollback {:?}",
        took[0], took[1], took[2]
    );
}

/// The shared Quick, Draw! sample, or `None` (after saying so) where it is absent.
fn quickdraw_files() -> Option<Vec<std::path::PathBuf>> {
    let dir = Path::new("/work/shared/quickdraw");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    if files.is_empty() {
        eprintln!(
            "skipped: the Quick, Draw! sample is not in {}",
            dir.display()
        );
        return None;
    }
    files.sort();
    Some(files)
}

/// Runs the binary to its end; returns its stdout, and stderr on failure.
fn doodlebox(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output = std::process::Command::new(server::BINARY)
        .args(args)
        .env("DOODLEBOX_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), format!("{stdout}{stderr}"))
}

/// An appliance directory holding the Quick, Draw! sample (imported with the real
/// `doodlebox import`), an admin, an API key, review state on a few drawings, and a job
/// with the model it trained, active.
fn appliance(dir: &Path, files: &[std::path::PathBuf]) -> u64 {
    let data = dir.to_str().unwrap();
    let mut import = vec!["import", "--data-dir", data, "--create-shapes"];
    import.extend(files.iter().map(|f| f.to_str().unwrap()));
    let (ok, out) = doodlebox(&import, &[]);
    assert!(ok, "{out}");
    let (ok, out) = doodlebox(&["admin", "create", "alice", "--data-dir", data], &[]);
    assert!(ok, "{out}");
    let (ok, out) = doodlebox(&["keys", "create", "lab", "--data-dir", data], &[]);
    assert!(ok, "{out}");
    // The model's files: the copy stores them as they are (loading them is not its job).
    std::fs::create_dir_all(dir.join("models/v1")).unwrap();
    std::fs::write(dir.join("models/v1/model.safetensors"), [7u8; 4096]).unwrap();
    std::fs::write(dir.join("models/v1/manifest.json"), br#"{"version": "v1"}"#).unwrap();
    let sqlite = rusqlite::Connection::open(dir.join("doodlebox.sqlite3")).unwrap();
    sqlite
        .execute_batch(
            r#"
            UPDATE drawings SET quality_score = 0.25, quality = '{"z": 1, "a": [0.5, 1e-7]}',
                is_flagged = 1, reviewed_at = 1700000000000
            WHERE id IN (SELECT id FROM drawings ORDER BY id LIMIT 3);
            UPDATE drawings SET deleted_at = 1700000000001
            WHERE id IN (SELECT id FROM drawings ORDER BY id DESC LIMIT 2);
            INSERT INTO training_jobs (id, kind, status, config, config_hash, created_at, result)
                VALUES (7, 'train', 'completed', '{}', 'h', 1700000000000, '{"accuracy": 0.5}');
            INSERT INTO models (id, version, job_id, path, manifest, is_active, created_at, activated_at)
                VALUES (3, 'v1', 7, 'models/v1', '{"shapes": []}', 1, 1700000000000, 1700000000000);
            INSERT INTO model_activations (version, activated_at) VALUES ('v1', 1700000000000);
            "#,
        )
        .unwrap();
    sqlite
        .query_row("SELECT count(*) FROM drawings", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

/// The appliance's stores and the database's, compared drawing by drawing: the same rows
/// (shape, review state, scores) and byte-identical stroke records.
fn assert_identical(dir: &Path, url: &str, expected: u64) {
    let appliance = doodlebox::store::Stores::open(dir).unwrap();
    let database = doodlebox::store::Stores::open_postgres(url).unwrap();
    assert_eq!(appliance.metadata.count_drawings().unwrap(), expected);
    assert_eq!(database.metadata.count_drawings().unwrap(), expected);
    let ids = appliance
        .metadata
        .recent_drawing_ids(expected as usize)
        .unwrap();
    assert_eq!(ids.len() as u64, expected);
    for id in ids {
        let (a, b) = (
            appliance.metadata.drawing(id).unwrap().unwrap(),
            database
                .metadata
                .drawing(id)
                .unwrap()
                .expect("the row was copied"),
        );
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::to_value(&b).unwrap()
        );
        assert_eq!(
            appliance.blobs.get(id).unwrap().unwrap(),
            database
                .blobs
                .get(id)
                .unwrap()
                .expect("the record was copied"),
            "{id}"
        );
    }
    assert_eq!(
        database.models.active_model().unwrap().map(|m| m.version),
        Some("v1".to_owned())
    );
    let files = database
        .models
        .model_artifact("v1")
        .unwrap()
        .expect("v1's files");
    for file in files {
        assert_eq!(
            std::fs::read(dir.join("models/v1").join(&file.name)).unwrap(),
            file.bytes,
            "{}",
            file.name
        );
    }
}

/// The per-table lines of migrate's report (counts and hashes).
fn check_lines(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.ends_with(" ok") || l.ends_with(" DIFFERENT"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn migrate_copies_an_appliance_identically_resumes_after_sigkill_and_changes_nothing_when_run_again(
) {
    let Some(files) = quickdraw_files() else {
        return;
    };
    let Some(db) = database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let expected = appliance(dir.path(), &files);
    assert!(expected > 600, "the sample imported: {expected}");
    let from = dir.path().to_str().unwrap().to_owned();
    let url = db.url();
    let small_batches = [("DOODLEBOX_MIGRATE_BATCH", "50")];

    // Killed with -9 after 20 committed batches (of 50): the database holds a part.
    let mut child = std::process::Command::new(server::BINARY)
        .args(["migrate", "--from", &from, "--to", &url])
        .env("DOODLEBOX_LOG", "warn")
        .env("DOODLEBOX_MIGRATE_PAUSE_AFTER", "20")
        .envs(small_batches)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let paused = std::io::BufRead::lines(stdout)
        .map_while(Result::ok)
        .any(|line| line.starts_with("paused after 20 batches"));
    assert!(paused, "migrate paused midway");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let count = |client: &mut postgres::Client, table: &str| -> i64 {
        client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .unwrap()
            .get(0)
    };
    let (records, rows) = (
        count(&mut client, "stroke_records"),
        count(&mut client, "drawings"),
    );
    assert!(
        records > 0 && rows < expected as i64,
        "killed midway: {records} records, {rows} rows"
    );

    // Run again: it finishes, and both sides compare equal.
    let (ok, resumed) = doodlebox(&["migrate", "--from", &from, "--to", &url], &small_batches);
    assert!(ok, "{resumed}");
    assert!(
        resumed.contains("ok: the database holds every record and row"),
        "{resumed}"
    );
    println!("after the kill -9, the rerun:\n{resumed}");
    assert_eq!(count(&mut client, "drawings"), expected as i64);
    assert_eq!(count(&mut client, "stroke_records"), expected as i64);

    // Once more: nothing new, the same counts and hashes.
    let (ok, again) = doodlebox(&["migrate", "--from", &from, "--to", &url], &[]);
    assert!(ok, "{again}");
    assert!(again.contains("(0 not in the database before)"), "{again}");
    assert_eq!(check_lines(&resumed), check_lines(&again));
    assert_eq!(check_lines(&again).len(), 14, "{again}");
    assert!(
        again.contains("model files stored in the database: v1"),
        "{again}"
    );
    assert_eq!(count(&mut client, "admins"), 1);
    assert_eq!(count(&mut client, "api_keys"), 1);
    drop(client);
    assert_identical(dir.path(), &url, expected);

    // A replica serves the migrated collection, and the database's own ids go on after the
    // copied ones.
    let replica_dir = tempfile::tempdir().unwrap();
    let replica = Server::start_with(replica_dir.path(), &[("DOODLEBOX_DATABASE_URL", &url)]);
    let ready: Value = ureq::get(format!("{}/readyz", replica.base))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(ready["drawings"], expected, "{ready}");
    drop(replica);
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let next_job: i64 = client
        .query_one(
            "INSERT INTO training_jobs (kind, status, config, config_hash, created_at)
             VALUES ('train', 'queued', '{}', 'h2', 1) RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(next_job > 7, "new ids follow the copied ones: {next_job}");
}

#[test]
fn migrate_refuses_while_a_server_holds_the_data_directory() {
    let Some(db) = database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let _server = Server::start(dir.path());
    let (ok, out) = doodlebox(
        &[
            "migrate",
            "--from",
            dir.path().to_str().unwrap(),
            "--to",
            &db.url(),
        ],
        &[],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("stop it first"), "{out}");
    let mut client = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'drawings'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "nothing was written");
}

#[test]
fn verify_database_url_passes_a_whole_database_and_names_the_damage_planted_in_it() {
    let Some(db) = database() else { return };
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    {
        let server = Server::start_with(dir.path(), &[("DOODLEBOX_DATABASE_URL", &url)]);
        let client = ureq::Agent::new_with_defaults();
        for _ in 0..6 {
            let body = drawing(&mut rand::rng());
            let response = client
                .post(format!("{}/api/v1/drawings", server.base))
                .header(
                    "cookie",
                    "doodlebox_player=0123456789abcdef0123456789abcdef",
                )
                .send_json(&body)
                .unwrap();
            assert_eq!(response.status(), 201);
        }
    }
    let (ok, out) = doodlebox(&["verify", "--database-url", &url], &[]);
    assert!(ok, "{out}");
    assert!(out.contains("drawing rows: 6, stroke records: 6"), "{out}");
    assert!(out.contains("ok: no problems found"), "{out}");

    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let ids: Vec<String> = client
        .query("SELECT id FROM drawings ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    client
        .execute(
            "UPDATE stroke_records SET record = '\\x00ff'::bytea WHERE id = $1",
            &[&ids[1]],
        )
        .unwrap();
    client
        .execute("DELETE FROM stroke_records WHERE id = $1", &[&ids[2]])
        .unwrap();
    client
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             INSERT INTO idempotency_keys (player_id, key, body_digest, drawing_id, created_at)
                 VALUES ('0123456789abcdef0123456789abcdef', 'k', '\\x00', 'no-such-drawing', 1);
             UPDATE drawings SET shape_id = 999999 WHERE id = '{}';",
            ids[3]
        ))
        .unwrap();
    drop(client);
    let (ok, out) = doodlebox(&["verify", "--database-url", &url], &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("1 stroke records that do not decode") && out.contains(&ids[1]),
        "{out}"
    );
    assert!(
        out.contains("1 drawing rows without a stroke record, e.g. ") && out.contains(&ids[2]),
        "{out}"
    );
    assert!(
        out.contains("1 drawings naming a missing shape, e.g. "),
        "{out}"
    );
    assert!(
        out.contains("1 idempotency keys naming a missing drawing"),
        "{out}"
    );
    assert!(out.contains("4 problem(s)"), "{out}");
}
