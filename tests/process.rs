//! Tests of the real binary: crash safety under `kill -9`, and the command line.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};

#[path = "common/server.rs"]
mod server;
#[path = "common/synthetic.rs"]
mod synthetic;

use server::{Server, BINARY};

/// Kill cycles in the crash test.
const CYCLES: usize = 50;
/// Clients submitting concurrently during each cycle.
const CLIENTS: usize = 200;
const SHAPES: [&str; 5] = ["line", "circle", "square", "triangle", "heart"];

fn random_drawing(rng: &mut impl Rng) -> Value {
    let strokes: Vec<Value> = (0..rng.random_range(1..4))
        .map(|s| {
            let points: Vec<Value> = (0..rng.random_range(1..40))
                .map(|i| {
                    json!({"x": rng.random_range(0..400), "y": rng.random_range(0..400),
                           "pressure": f64::from(rng.random_range(0..=100u8)) / 100.0,
                           "timestamp": 1_700_000_000_000i64 + s * 1000 + i})
                })
                .collect();
            json!({"points": points, "color": "#112233", "width": 3})
        })
        .collect();
    json!({"shape": SHAPES[rng.random_range(0..SHAPES.len())], "canvas": {"width": 400, "height": 400},
           "strokes": strokes, "duration_ms": rng.random_range(100..20000), "device": "touch"})
}

/// The JSON value with every number as an f64: `1` and `1.0` are the same JSON value.
fn numbers_as_f64(value: &Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_f64).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), numbers_as_f64(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One acknowledged drawing: who submitted it, its id, and what was sent.
struct Acked {
    cookie: String,
    id: String,
    body: Value,
}

/// Submits random drawings until the server goes away; records every acknowledgement.
async fn submit_until_refused(base: String, acked: Arc<Mutex<Vec<Acked>>>) {
    let cookie = format!("doodlebox_player={:032x}", rand::random::<u128>());
    let client = reqwest::Client::new();
    loop {
        let body = random_drawing(&mut rand::rng());
        let sent = client
            .post(format!("{base}/api/v1/drawings"))
            .header("cookie", &cookie)
            .header("Idempotency-Key", format!("{:x}", rand::random::<u64>()))
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let Ok(response) = sent else { return };
        let status = response.status().as_u16();
        let Ok(reply) = response.json::<Value>().await else {
            return;
        };
        if status == 201 {
            let id = reply["id"].as_str().expect("id in a 201").to_owned();
            acked.lock().unwrap().push(Acked {
                cookie: cookie.clone(),
                id,
                body,
            });
        } else {
            assert!(status == 503, "unexpected status {status}: {reply}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_while_200_clients_submit_loses_no_acknowledged_drawing() {
    let dir = tempfile::tempdir().unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut per_cycle = Vec::new();
    for cycle in 0..CYCLES {
        if cycle % 2 == 1 {
            // Also kill a server in the middle of its start-up (every other cycle).
            let mut child = Command::new(BINARY)
                .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
                .arg(dir.path())
                .env("DOODLEBOX_NO_STARTER_MODEL", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(rand::rng().random_range(0..40)));
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let server = start_server(dir.path()).await;
        let before = acked.lock().unwrap().len();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| tokio::spawn(submit_until_refused(server.base.clone(), acked.clone())))
            .collect();
        let run_for = rand::rng().random_range(300..900);
        tokio::time::sleep(Duration::from_millis(run_for)).await;
        server.kill_9();
        for client in clients {
            client.await.expect("client task");
        }
        per_cycle.push(acked.lock().unwrap().len() - before);
    }

    let server = start_server(dir.path()).await;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let lost = missing_or_changed(&server.base, &acked).await;
    let count = readyz(&server.base).await;
    drop(server);
    println!(
        "kill -9 cycles: {CYCLES}, acknowledged drawings: {}, per cycle: {per_cycle:?}, lost: {}",
        acked.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "lost {} acknowledged drawings, first: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        per_cycle.iter().all(|&n| n > 0),
        "every cycle must acknowledge drawings: {per_cycle:?}"
    );
    assert!(count["drawings"].as_u64().unwrap() >= acked.len() as u64);
    assert_integrity_ok(dir.path());
}

/// Starts the server off the async runtime (it blocks reading the child's first line).
async fn start_server(data_dir: &Path) -> Server {
    start_server_with(data_dir, &[]).await
}

async fn start_server_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
    let path = data_dir.to_owned();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start_with(&path, &env)
    })
    .await
    .unwrap()
}

async fn readyz(base: &str) -> Value {
    reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The acknowledged drawings that do not read back exactly as sent, with the reason.
async fn missing_or_changed(base: &str, acked: &[Acked]) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut lost = Vec::new();
    for a in acked {
        let response = client
            .get(format!("{base}/api/v1/drawings/{}", a.id))
            .header("cookie", &a.cookie)
            .send()
            .await
            .unwrap();
        if response.status() != 200 {
            lost.push(format!("{} ({})", a.id, response.status()));
            continue;
        }
        let got: Value = response.json().await.unwrap();
        if numbers_as_f64(&got["drawing"]) != numbers_as_f64(&a.body) {
            lost.push(format!("{} (changed)", a.id));
        }
    }
    lost
}

/// `doodlebox doctor` finds the SQLite database intact (run with the server stopped).
fn assert_integrity_ok(data_dir: &Path) {
    let doctor = Command::new(BINARY)
        .args(["doctor", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(report.contains("metadata integrity: ok"), "{report}");
    assert!(report.contains("libtorch 2.13.0"), "{report}");
    assert!(report.contains("CUDA available: "), "{report}");
    assert!(report.contains("free disk: "), "{report}");
}

#[test]
fn help_lists_every_command_and_its_environment_variables() {
    let out = Command::new(BINARY).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["serve", "doctor", "DOODLEBOX_DATA_DIR", "DOODLEBOX_BIND"] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
}

#[test]
fn a_bad_bind_address_exits_non_zero_with_a_clear_message() {
    let out = Command::new(BINARY)
        .args(["--bind", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bind"));
}

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
async fn wait_for_job(
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
    let client = reqwest::Client::new();
    for i in 0..20u64 {
        let cookie = format!("doodlebox_player={:032x}", 1 + i % 10);
        for shape in doodlebox::ml::synth::Shape::ALL {
            let response = client
                .post(format!("{}/api/v1/drawings", server.base))
                .header("cookie", &cookie)
                .json(&synthetic::doodle_json(shape, i * 5 + shape as u64))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
        }
    }
    let created: Value = server
        .admin()
        .post(format!("{}/api/v1/admin/training-jobs", server.base))
        .json(&json!({"epochs": 400, "batch_size": 8}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["job"]["id"].as_i64().unwrap();
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

#[test]
fn keys_create_works_while_the_server_runs_and_prints_the_key_last() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let out = Command::new(BINARY)
        .args([
            "keys",
            "create",
            "ci robot",
            "--rate-per-min",
            "120",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("dbx_") && key.len() == 68, "{stdout}");
    let classify = |key: &str| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent()
            .post(format!("{}/api/v1/classify", server.base))
            .header("Authorization", &format!("Bearer {key}"))
            .send_json(serde_json::json!({"drawing": [[[0, 50, 100], [0, 50, 100]]]}))
            .unwrap()
            .status()
            .as_u16()
    };
    // The running server accepts the new key at once (503: no model is active yet).
    assert_eq!(classify(&key), 503);
    assert_eq!(classify("dbx_unknown"), 401);
    let listed = Command::new(BINARY)
        .args(["keys", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("ci robot") && listed.contains("live"),
        "{listed}"
    );
    assert!(!listed.contains(&key[4..]), "{listed}");
    let revoked = Command::new(BINARY)
        .args(["keys", "revoke", "1", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(revoked.status.success());
    // Revoked from another process: refused within the cache time (5 s).
    let started = std::time::Instant::now();
    while classify(&key) != 401 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "still accepted"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let bad = Command::new(BINARY)
        .args(["keys", "create", "", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("name"));
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_before_or_after_each_durability_step_loses_no_acknowledged_drawing() {
    // (crash point, rows start-up reconciliation must rebuild: records synced, rows not)
    for (point, rebuilds) in [
        ("before-strokes", false),
        ("after-strokes", true),
        ("after-metadata", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let batch = rand::rng().random_range(5..40);
        let plan = format!("{point}:{batch}");
        let mut server = start_server_with(dir.path(), &[("DOODLEBOX_CRASH_AT", &plan)]).await;
        let acked = Arc::new(Mutex::new(Vec::new()));
        let clients: Vec<_> = (0..50)
            .map(|_| tokio::spawn(submit_until_refused(server.base.clone(), acked.clone())))
            .collect();
        for client in clients {
            client.await.expect("client task");
        }
        let status = server.child.wait().unwrap();
        assert!(
            !status.success(),
            "{plan}: the server must have aborted, got {status}"
        );
        let acked = std::mem::take(&mut *acked.lock().unwrap());

        let server = start_server(dir.path()).await;
        let ready = readyz(&server.base).await;
        let report = &ready["reconciled_at_start"];
        assert_eq!(report["missing_strokes"], json!([]), "{plan}: {ready}");
        assert_eq!(report["unreadable"], json!([]), "{plan}: {ready}");
        let rebuilt = report["rebuilt"].as_u64().unwrap();
        assert_eq!(rebuilt > 0, rebuilds, "{plan}: rebuilt {rebuilt} rows");
        let lost = missing_or_changed(&server.base, &acked).await.len();
        println!(
            "crash at {plan}: {} acknowledged before the crash, {lost} lost, {rebuilt} rows rebuilt at restart",
            acked.len()
        );
        assert_eq!(lost, 0, "{plan}");
        assert!(ready["drawings"].as_u64().unwrap() >= acked.len() as u64);
        drop(server);
        assert_integrity_ok(dir.path());
    }
}

/// (drawings, drawings without a quality score), read straight from the metadata store.
fn scored_counts(data_dir: &Path) -> (u64, u64) {
    let conn = rusqlite::Connection::open(data_dir.join("doodlebox.sqlite3")).unwrap();
    conn.query_row(
        "SELECT count(*), count(*) FILTER (WHERE quality_score IS NULL) FROM drawings",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drawings_stored_just_before_a_kill_are_scored_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Rows committed, then abort: that batch never reaches the scorer (nor does anything
    // still waiting in its queue).
    let batch = rand::rng().random_range(5..20);
    let plan = format!("after-metadata:{batch}");
    let mut server = start_server_with(dir.path(), &[("DOODLEBOX_CRASH_AT", &plan)]).await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..20)
        .map(|_| tokio::spawn(submit_until_refused(server.base.clone(), acked.clone())))
        .collect();
    for client in clients {
        client.await.expect("client task");
    }
    let status = server.child.wait().unwrap();
    assert!(!status.success(), "{plan}: the server must have aborted");
    let (stored, unscored) = scored_counts(dir.path());
    assert!(
        unscored > 0,
        "{plan}: the last batch's {stored} rows were never handed to the scorer"
    );

    // The restarted server's catch-up walk scores every one of them.
    let server = start_server(dir.path()).await;
    let started = std::time::Instant::now();
    loop {
        let counts = scored_counts(dir.path());
        if counts == (stored, 0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{plan}: still unscored after the restart: {counts:?} of {stored}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("{plan}: {unscored} of {stored} drawings unscored at the kill, all scored after the restart");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_in_flight_submissions_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(dir.path()).await;
    assert!(dir.path().join("control.json").exists());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..50)
        .map(|_| tokio::spawn(submit_until_refused(server.base.clone(), acked.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let term = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = server.child.wait().unwrap();
        (status, server)
    })
    .await
    .unwrap();
    let stopped_in = started.elapsed();
    for client in clients {
        client.await.expect("client task");
    }
    assert!(
        status.0.success(),
        "a SIGTERM is a clean stop: {}",
        status.0
    );
    assert!(
        !dir.path().join("control.json").exists(),
        "a clean stop removes its control file"
    );
    drop(status);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let server = start_server(dir.path()).await;
    let ready = readyz(&server.base).await;
    // The last group commit finished: nothing needed repair.
    assert_eq!(ready["reconciled_at_start"]["rebuilt"], 0, "{ready}");
    assert!(ready["drawings"].as_u64().unwrap() >= acked.len() as u64);
    let lost = missing_or_changed(&server.base, &acked).await;
    assert!(lost.is_empty(), "{lost:?}");
    println!(
        "SIGTERM under 50 submitters: stopped in {} ms, {} acknowledged, all present",
        stopped_in.as_millis(),
        acked.len()
    );
}

#[test]
fn the_server_prints_a_setup_link_and_admin_commands_work_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let link = server
        .printed("admin setup: ")
        .expect("a fresh server prints the setup link");
    assert!(link.contains("/admin/setup?token="), "{link}");
    let admin = |args: &[&str], stdin: &str| {
        let mut child = Command::new(BINARY)
            .arg("admin")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let created = admin(
        &["create", "lab-lead", "--password-stdin"],
        "a long passphrase\n",
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let login = |password: &str| {
        agent
            .post(format!("{}/api/v1/admin/login", server.base))
            .send_json(json!({"username": "lab-lead", "password": password}))
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        login("a long passphrase"),
        200,
        "the running server sees the new admin"
    );
    let taken = admin(
        &["create", "lab-lead", "--password-stdin"],
        "another long one\n",
    );
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("taken"));
    let weak = admin(&["create", "someone", "--password-stdin"], "short\n");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 10"));

    let reset = admin(&["reset-password", "lab-lead"], "");
    assert!(reset.status.success());
    let printed = String::from_utf8(reset.stdout).unwrap();
    let password = printed
        .lines()
        .find_map(|l| l.strip_prefix("password (shown only now): "))
        .expect("a generated password is printed")
        .to_owned();
    assert_eq!(login("a long passphrase"), 401);
    assert_eq!(login(&password), 200);
    let listed = admin(&["list"], "");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("lab-lead"));
    drop(server);
}

/// Submits random drawings until `stop` is set; records every acknowledgement.
async fn submit_until_stopped(
    base: String,
    acked: Arc<Mutex<Vec<Acked>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let cookie = format!("doodlebox_player={:032x}", rand::random::<u128>());
    let client = reqwest::Client::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let body = random_drawing(&mut rand::rng());
        let response = client
            .post(format!("{base}/api/v1/drawings"))
            .header("cookie", &cookie)
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let reply: Value = response.json().await.expect("a JSON answer");
        if status == 201 {
            let id = reply["id"].as_str().expect("id in a 201").to_owned();
            acked.lock().unwrap().push(Acked {
                cookie: cookie.clone(),
                id,
                body,
            });
        } else {
            assert!(status == 503, "unexpected status {status}: {reply}");
        }
    }
}

/// Runs `doodlebox ARGS` off the async runtime; returns (success, stdout, stderr).
async fn doodlebox(args: Vec<std::ffi::OsString>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(BINARY)
            .args(&args)
            .env("DOODLEBOX_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn args(items: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<std::ffi::OsString> {
    items.iter().map(|a| a.as_ref().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_20_clients_submit_restores_every_drawing_acknowledged_before_it() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let dest = root.path().join("backup");
    let restored = root.path().join("restored");
    let server = start_server(&data).await;
    let client = reqwest::Client::new();
    // A model, so that the backup has model files to carry.
    for i in 0..10u64 {
        for shape in doodlebox::ml::synth::Shape::ALL {
            let response = client
                .post(format!("{}/api/v1/drawings", server.base))
                .json(&synthetic::doodle_json(shape, i * 5 + shape as u64))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
        }
    }
    let created: Value = server
        .admin()
        .post(format!("{}/api/v1/admin/training-jobs", server.base))
        .json(&json!({"epochs": 1, "batch_size": 8}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = created["job"]["id"].as_i64().unwrap();
    wait_for_job(
        &server.admin(),
        &server.base,
        job,
        Duration::from_secs(300),
        |j| j["status"] == "completed",
    )
    .await;

    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(submit_until_stopped(
                server.base.clone(),
                acked.clone(),
                stop.clone(),
            ))
        })
        .collect();
    while acked.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before: Vec<Acked> = acked
        .lock()
        .unwrap()
        .iter()
        .map(|a| Acked {
            cookie: a.cookie.clone(),
            id: a.id.clone(),
            body: a.body.clone(),
        })
        .collect();
    let (ok, stdout, stderr) = doodlebox(args(&[&"backup", &dest, &"--data-dir", &data])).await;
    let during = acked.lock().unwrap().len() - before.len();
    assert!(ok, "backup failed: {stdout}\n{stderr}");
    assert!(stdout.contains("backup written"), "{stdout}");
    let (again, _, stderr) = doodlebox(args(&[&"backup", &dest, &"--data-dir", &data])).await;
    assert!(
        !again,
        "a backup into a non-empty directory must be refused"
    );
    assert!(stderr.contains("not empty"), "{stderr}");
    let (refused, _, stderr) = doodlebox(args(&[&"restore", &dest, &"--data-dir", &data])).await;
    assert!(!refused, "a restore onto a running server must be refused");
    assert!(stderr.contains("is running on"), "{stderr}");
    let (live_ok, live, stderr) = doodlebox(args(&[&"verify", &"--data-dir", &data])).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
    assert!(live_ok, "verify through the server: {live}\n{stderr}");
    assert!(
        live.contains("checks its stores as a job") && live.contains("ok: no problems found"),
        "{live}"
    );
    drop(server);

    let (ok, report, stderr) = doodlebox(args(&[&"verify", &"--data-dir", &dest])).await;
    assert!(ok, "verify of the backup: {report}\n{stderr}");
    assert!(report.contains("models checked: v1"), "{report}");
    let (ok, stdout, stderr) =
        doodlebox(args(&[&"restore", &dest, &"--data-dir", &restored])).await;
    assert!(ok, "restore: {stdout}\n{stderr}");
    let (again, _, stderr) = doodlebox(args(&[&"restore", &dest, &"--data-dir", &restored])).await;
    assert!(!again && stderr.contains("--force"), "{stderr}");
    let (ok, stdout, stderr) = doodlebox(args(&[
        &"restore",
        &dest,
        &"--force",
        &"--data-dir",
        &restored,
    ]))
    .await;
    assert!(ok, "restore --force: {stdout}\n{stderr}");
    let aside = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("restored.before-restore-")
        })
        .count();
    assert_eq!(aside, 1, "--force keeps the old data aside");
    let (ok, report, stderr) = doodlebox(args(&[&"verify", &"--data-dir", &restored])).await;
    assert!(ok, "verify of the restored directory: {report}\n{stderr}");

    let server = start_server(&restored).await;
    let lost = missing_or_changed(&server.base, &before).await;
    println!(
        "backup under 20 submitters: {} acknowledged before it, {during} during it, lost {}",
        before.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "{lost:?}");
    drop(server);

    // Damage: a truncated database in a copy of the backup, a model file gone after restore.
    let damaged = root.path().join("damaged");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&dest)
        .arg(&damaged)
        .status()
        .unwrap();
    assert!(copied.success());
    let db = damaged.join("doodlebox.sqlite3");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (ok, report, _) = doodlebox(args(&[&"verify", &"--data-dir", &damaged])).await;
    assert!(!ok, "a truncated database must fail verification: {report}");
    assert!(report.contains("PROBLEM: doodlebox.sqlite3"), "{report}");
    std::fs::remove_file(restored.join("models/v1/model.safetensors")).unwrap();
    let (ok, report, _) = doodlebox(args(&[&"verify", &"--data-dir", &restored])).await;
    assert!(!ok, "a missing model file must fail verification: {report}");
    assert!(report.contains("PROBLEM: model v1"), "{report}");
}

/// A small tmpfs mounted on a temporary directory, unmounted when dropped; `None` (with a
/// printed reason) where this machine does not let the test mount one.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::piped())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                println!(
                    "skipped: cannot mount a tmpfs here ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("skipped: cannot run mount ({e})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system with a ballast file until `leave` bytes are free.
    fn fill_leaving(&self, leave: u64) {
        let free = fs4::available_space(self.path()).unwrap();
        let ballast = self.path().join("ballast");
        let size = std::fs::metadata(&ballast).map(|m| m.len()).unwrap_or(0) + free - leave;
        let status = Command::new("fallocate")
            .args(["-l", &size.to_string()])
            .arg(&ballast)
            .status()
            .expect("fallocate runs");
        assert!(status.success(), "fallocate failed");
    }

    fn remove_ballast(&self) {
        std::fs::remove_file(self.path().join("ballast")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Submits one drawing as `cookie`'s player: status, Retry-After, JSON body.
async fn post_drawing(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    body: &Value,
) -> (u16, Option<String>, Value) {
    let response = client
        .post(format!("{base}/api/v1/drawings"))
        .header("cookie", cookie)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

fn median_ms(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nearly_full_disk_refuses_drawings_with_507_keeps_reads_working_and_recovers_without_restart(
) {
    let Some(disk) = Tmpfs::mount("64m") else {
        return;
    };
    let data = disk.path().join("data");
    let env = [("DOODLEBOX_MIN_FREE_MB", "16")];
    let server = start_server_with(&data, &env).await;
    let client = reqwest::Client::new();
    let cookie = format!("doodlebox_player={:032x}", rand::random::<u128>());
    let mut acked = Vec::new();
    let mut rng = rand::rng();
    for _ in 0..20 {
        let body = random_drawing(&mut rng);
        let (status, _, reply) = post_drawing(&client, &server.base, &cookie, &body).await;
        assert_eq!(status, 201, "{reply}");
        let id = reply["id"].as_str().unwrap().to_owned();
        acked.push(Acked {
            cookie: cookie.clone(),
            id,
            body,
        });
    }

    // Below the 16 MiB watermark: submissions turn to 507 as soon as the watch sees it.
    disk.fill_leaving(10 << 20);
    let refusal = loop {
        let body = random_drawing(&mut rng);
        let (status, _, reply) = post_drawing(&client, &server.base, &cookie, &body).await;
        match status {
            201 => acked.push(Acked {
                cookie: cookie.clone(),
                id: reply["id"].as_str().unwrap().to_owned(),
                body,
            }),
            507 => break reply,
            other => panic!("unexpected {other}: {reply}"),
        }
    };
    assert_eq!(refusal["error"]["code"], "insufficient_storage");
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("MiB free") && message.contains("16.0 MiB watermark"),
        "{message}"
    );
    let mut refused_in = Vec::new();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let (status, _, _) =
            post_drawing(&client, &server.base, &cookie, &random_drawing(&mut rng)).await;
        refused_in.push(started.elapsed());
        assert_eq!(status, 507);
    }
    let ready = readyz(&server.base).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["disk"]["state"], "low", "{ready}");
    assert_eq!(ready["disk"]["watermark_bytes"], 16 << 20, "{ready}");
    assert_eq!(ready["drawings"], acked.len(), "{ready}");
    // Reads, classify and admin GETs still answer.
    let shapes = client
        .get(format!("{}/api/v1/shapes", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(shapes.status(), 200);
    let models = server
        .admin()
        .get(format!("{}/api/v1/admin/models", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    let classify = client
        .post(format!("{}/api/v1/classify", server.base))
        .header("cookie", &cookie)
        .json(&random_drawing(&mut rng))
        .send()
        .await
        .unwrap();
    // No model was trained here: the classifier itself answers, not the disk.
    let classified: Value = classify.json().await.unwrap();
    assert_eq!(
        classified["error"]["code"], "no_active_model",
        "{classified}"
    );
    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("doodlebox_disk_low 1"), "{metrics}");
    assert!(
        metrics.contains("doodlebox_disk_watermark_bytes 16777216"),
        "{metrics}"
    );
    assert_eq!(
        missing_or_changed(&server.base, &acked).await,
        Vec::<String>::new()
    );

    // Space returns: writes resume by themselves.
    disk.remove_ballast();
    let freed_at = std::time::Instant::now();
    loop {
        let body = random_drawing(&mut rng);
        let (status, _, reply) = post_drawing(&client, &server.base, &cookie, &body).await;
        if status == 201 {
            acked.push(Acked {
                cookie: cookie.clone(),
                id: reply["id"].as_str().unwrap().to_owned(),
                body,
            });
            break;
        }
        assert_eq!(status, 507, "{reply}");
        assert!(
            freed_at.elapsed() < Duration::from_secs(30),
            "writes never resumed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resumed_after = freed_at.elapsed();
    assert_eq!(readyz(&server.base).await["disk"]["state"], "ok");
    // The sampler writes the emergency reserve back once there is room for it.
    let reserve = data.join("reserve.bin");
    while !reserve.exists() {
        assert!(freed_at.elapsed() < Duration::from_secs(30), "no reserve");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A restart on a completely full disk comes up degraded instead of failing.
    server.kill_9();
    disk.fill_leaving(0);
    let server = start_server_with(&data, &env).await;
    let ready = readyz(&server.base).await;
    assert_eq!(ready["disk"]["state"], "low", "{ready}");
    assert_eq!(ready["drawings"], acked.len(), "{ready}");
    let (status, _, reply) =
        post_drawing(&client, &server.base, &cookie, &random_drawing(&mut rng)).await;
    assert_eq!(status, 507, "{reply}");
    assert_eq!(
        missing_or_changed(&server.base, &acked).await,
        Vec::<String>::new()
    );
    let mut server = server;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the degraded server keeps running"
    );
    println!(
        "disk full: {} acknowledged, refused submit median {:.2} ms, writes resumed {} ms after the ballast was removed, restart on a 100 % full disk came up degraded",
        acked.len(),
        median_ms(refused_in),
        resumed_after.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_write_failures_open_the_breaker_which_answers_503_with_retry_after_and_recovers()
{
    let dir = tempfile::tempdir().unwrap();
    // Three failed commits open the breaker; the first probe fails too, the second succeeds.
    let server = start_server_with(dir.path(), &[("DOODLEBOX_FAIL_WRITES", "4")]).await;
    let client = reqwest::Client::new();
    let cookie = format!("doodlebox_player={:032x}", rand::random::<u128>());
    let mut rng = rand::rng();
    for _ in 0..3 {
        let (status, _, reply) =
            post_drawing(&client, &server.base, &cookie, &random_drawing(&mut rng)).await;
        assert_eq!(
            status, 503,
            "a failed commit is never acknowledged: {reply}"
        );
        assert_eq!(reply["error"]["code"], "storage_unavailable");
    }
    let started = std::time::Instant::now();
    let (status, retry_after, reply) =
        post_drawing(&client, &server.base, &cookie, &random_drawing(&mut rng)).await;
    let refused_in = started.elapsed();
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["error"]["code"], "storage_unavailable");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("writes are paused"),
        "{reply}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    let ready = readyz(&server.base).await;
    assert_eq!(ready["storage_breaker"]["state"], "open", "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");

    let mut acked = Vec::new();
    let mut refusals = vec![refused_in];
    while acked.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never recovered"
        );
        let body = random_drawing(&mut rng);
        let sent = std::time::Instant::now();
        let (status, retry_after, reply) =
            post_drawing(&client, &server.base, &cookie, &body).await;
        match status {
            201 => acked.push(Acked {
                cookie: cookie.clone(),
                id: reply["id"].as_str().unwrap().to_owned(),
                body,
            }),
            503 => {
                assert!(retry_after.is_some(), "{reply}");
                refusals.push(sent.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("unexpected {other}: {reply}"),
        }
    }
    let recovered_in = started.elapsed();
    let ready = readyz(&server.base).await;
    assert_eq!(ready["storage_breaker"]["state"], "closed", "{ready}");
    assert_eq!(ready["storage_breaker"]["times_opened"], 2, "{ready}");
    // The failed batches left nothing behind: only the acknowledged drawing is stored.
    assert_eq!(ready["drawings"], 1, "{ready}");
    assert_eq!(
        missing_or_changed(&server.base, &acked).await,
        Vec::<String>::new()
    );
    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"doodlebox_circuit_breaker_state{breaker="storage",state="closed"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"doodlebox_circuit_breaker_opened_total{breaker="storage"} 2"#),
        "{metrics}"
    );
    drop(server);
    // Restarting finds nothing to repair: the failed batches' records were taken back.
    let server = start_server(dir.path()).await;
    let ready = readyz(&server.base).await;
    assert_eq!(ready["reconciled_at_start"]["rebuilt"], 0, "{ready}");
    assert_eq!(ready["drawings"], 1, "{ready}");
    println!(
        "breaker: {} refusals while open or probing, median {:.2} ms; first write acknowledged {} ms after the breaker opened",
        refusals.len(),
        median_ms(refusals),
        recovered_in.as_millis()
    );
}

/// `n` raw Quick, Draw! lines of circles with keys `{prefix}{i}`.
fn raw_circles(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let i = i as i64;
            json!({"word": "circle", "countrycode": "GB", "timestamp": "2017-02-01 12:00:00.5 UTC",
                   "recognized": true, "key_id": format!("{prefix}{i}"),
                   "drawing": [[[10 + i, 60, 110], [20, 70 + i, 20], [0, 16, 40]], [[5], [5], [90]]]})
            .to_string()
        })
        .collect()
}

fn run_cli(args: &[&str], data_dir: &Path, extra: &[&Path]) -> (bool, String, String) {
    let out = Command::new(BINARY)
        .args(args)
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir)
        .env("DOODLEBOX_LOG", "warn")
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_import_and_export_work_with_and_without_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = dir.path().join("first.ndjson");
    let mut lines = raw_circles("a", 5);
    lines.insert(2, "{broken".into());
    std::fs::write(&first, lines.join("\n")).unwrap();

    // No server: the command opens the stores itself.
    let (ok, stdout, stderr) = run_cli(&["import"], &data, &[&first]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("imported 5, skipped 0 duplicates, 1 bad lines"),
        "{stdout}"
    );
    assert!(
        stderr.contains("first.ndjson:3: "),
        "the bad line is named: {stderr}"
    );

    // With a server: the files are streamed to it (the stroke store admits one process).
    let server = start_server(&data).await;
    let second = dir.path().join("second.ndjson");
    std::fs::write(&second, raw_circles("b", 3).join("\n")).unwrap();
    let (ok, stdout, stderr) = run_cli(&["import"], &data, &[&first, &second]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("first.ndjson: imported 0, skipped 5 duplicates"),
        "{stdout}"
    );
    assert!(stdout.contains("second.ndjson: imported 3"), "{stdout}");
    assert_eq!(readyz(&server.base).await["drawings"], 8);
    let raw = dir.path().join("raw.ndjson");
    let (ok, stdout, stderr) = run_cli(
        &["export", "--format", "quickdraw-raw", "--out"],
        &data,
        &[&raw],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("exported 8 drawings"), "{stdout}");
    let exported: Vec<Value> = std::fs::read_to_string(&raw)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sent: Value = serde_json::from_str(&raw_circles("b", 3)[2]).unwrap();
    assert_eq!(exported[7], sent, "raw export gives back the imported line");
    let npy_through_server = dir.path().join("npy-server");
    let (ok, _, stderr) = run_cli(
        &["export", "--format", "npy", "--out"],
        &data,
        &[&npy_through_server],
    );
    assert!(ok, "{stderr}");
    let from_server = std::fs::read(npy_through_server.join("circle.npy")).unwrap();
    drop(server);

    // The server is gone (its control file is stale): the command exports by itself.
    let npy = dir.path().join("npy");
    let (ok, stdout, stderr) = run_cli(
        &["export", "--format", "npy", "--shape", "circle", "--out"],
        &data,
        &[&npy],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("circle.npy: 8 drawings"), "{stdout}");
    let file = std::fs::read(npy.join("circle.npy")).unwrap();
    assert_eq!(file.len(), 128 + 8 * 784);
    assert!(String::from_utf8_lossy(&file[..128]).contains("'shape': (8, 784)"));
    assert_eq!(
        file, from_server,
        "the server and the command write the same file"
    );
    let (ok, _, stderr) = run_cli(&["export", "--format", "csv", "--out"], &data, &[&raw]);
    assert!(!ok);
    assert!(stderr.contains("--format"), "{stderr}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_activate_and_rollback_without_a_server_refuse_what_the_registry_refuses() {
    let dir = tempfile::tempdir().unwrap();
    // One start creates the data directory; the commands then find no server answering.
    drop(start_server(dir.path()).await);
    let (ok, _, stderr) = run_cli(&["models", "activate", "v999"], dir.path(), &[]);
    assert!(!ok);
    assert!(stderr.contains("there is no model v999"), "{stderr}");
    let (ok, _, stderr) = run_cli(&["models", "activate", "../v1"], dir.path(), &[]);
    assert!(!ok);
    assert!(stderr.contains("there is no model ../v1"), "{stderr}");
    let (ok, _, stderr) = run_cli(&["models", "rollback"], dir.path(), &[]);
    assert!(!ok);
    assert!(
        stderr.contains("no previously active model to roll back to"),
        "{stderr}"
    );
}
