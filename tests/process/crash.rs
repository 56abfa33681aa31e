//! Crash safety of the real binary: `kill -9` under 200 clients, a crash at each durability
//! step, scoring after a kill, a power cut that undoes the metadata's unsynced commits, and
//! a clean stop on SIGTERM lose no acknowledged drawing.

use super::*;

/// Kill cycles in the crash test.
const CYCLES: usize = 50;
/// Clients submitting concurrently during each cycle.
const CLIENTS: usize = 200;
const SHAPES: [&str; 5] = ["line", "circle", "square", "triangle", "heart"];

pub(crate) fn random_drawing(rng: &mut impl Rng) -> Value {
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
pub(crate) struct Acked {
    pub(crate) cookie: String,
    pub(crate) id: String,
    pub(crate) body: Value,
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

/// The acknowledged drawings that do not read back exactly as sent, with the reason.
pub(crate) async fn missing_or_changed(base: &str, acked: &[Acked]) -> Vec<String> {
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

/// Waits up to 30 s until the metadata store holds `drawings` rows, every one scored.
async fn wait_until_scored(data_dir: &Path, drawings: u64, when: &str) {
    let started = std::time::Instant::now();
    loop {
        let counts = scored_counts(data_dir);
        if counts == (drawings, 0) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{when}: (rows, unscored) {counts:?}, expected {drawings} rows all scored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    wait_until_scored(dir.path(), stored, &format!("{plan}, after the restart")).await;
    println!("{plan}: {unscored} of {stored} drawings unscored at the kill, all scored after the restart");
    drop(server);
}

/// Sends SIGTERM and waits for a clean stop.
async fn stop_with_sigterm(mut server: Server) {
    let term = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "a SIGTERM is a clean stop: {status}");
}

/// Posts one drawing under an `Idempotency-Key`; answers (status, id).
async fn submit_keyed(base: &str, cookie: &str, key: &str, body: &Value) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/drawings"))
        .header("cookie", cookie)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let reply: Value = response.json().await.unwrap();
    (status, reply["id"].as_str().unwrap_or_default().to_owned())
}

/// A power cut, unlike a crash of the process, can undo SQLite commits that were written
/// but not yet synced: drawing rows and quality scores are committed that way (see
/// `store::metadata::Durability`), since start-up rebuilds both. Simulated here by a
/// `kill -9` and then removing the metadata's write-ahead log, which undoes more than a cut
/// can (every commit since the last checkpoint, synced or not). Every acknowledged drawing
/// is back after the restart, rebuilt from its synced stroke record, exactly as sent; a
/// keyed retry still finds its drawing; and the catch-up walk scores them all again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_power_cut_that_undoes_the_metadata_log_loses_no_acknowledged_drawing() {
    let dir = tempfile::tempdir().unwrap();
    // A clean stop checkpoints the log: the schema and the seeded shapes are in the
    // database file, as after any earlier run.
    stop_with_sigterm(start_server(dir.path()).await).await;

    let server = start_server(dir.path()).await;
    let keyed_cookie = format!("doodlebox_player={:032x}", rand::random::<u128>());
    let keyed_body = random_drawing(&mut rand::rng());
    let (status, keyed_id) =
        submit_keyed(&server.base, &keyed_cookie, "power-cut-1", &keyed_body).await;
    assert_eq!(status, 201);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = spawn_submitters(20, &server.base, &acked, &stop);
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        client.await.expect("client task");
    }
    let mut acked = std::mem::take(&mut *acked.lock().unwrap());
    acked.push(Acked {
        cookie: keyed_cookie.clone(),
        id: keyed_id.clone(),
        body: keyed_body.clone(),
    });
    // Wait for the scorer: its commits are undone too, and no commit (or checkpoint) is in
    // flight when the power goes.
    wait_until_scored(dir.path(), acked.len() as u64, "before the cut").await;
    server.kill_9();

    for suffix in ["-wal", "-shm"] {
        let file = dir.path().join(format!("doodlebox.sqlite3{suffix}"));
        std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    let (survived, _) = scored_counts(dir.path());

    let server = start_server(dir.path()).await;
    let ready = readyz(&server.base).await;
    let report = &ready["reconciled_at_start"];
    assert_eq!(report["missing_strokes"], json!([]), "{ready}");
    assert_eq!(report["unreadable"], json!([]), "{ready}");
    let rebuilt = report["rebuilt"].as_u64().unwrap();
    assert_eq!(
        survived + rebuilt,
        acked.len() as u64,
        "rows in the database file plus rows rebuilt: {ready}"
    );
    let lost = missing_or_changed(&server.base, &acked).await;
    assert!(lost.is_empty(), "{lost:?}");
    let (status, replayed) =
        submit_keyed(&server.base, &keyed_cookie, "power-cut-1", &keyed_body).await;
    assert_eq!(
        (status, replayed.as_str()),
        (200, keyed_id.as_str()),
        "a keyed retry after the cut finds its drawing"
    );
    wait_until_scored(dir.path(), acked.len() as u64, "after the restart").await;
    println!(
        "power cut: {} acknowledged, {survived} rows in the database file, {rebuilt} rebuilt, all present and scored again",
        acked.len()
    );
    drop(server);
    assert_integrity_ok(dir.path());
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

/// `clients` tasks running [`submit_until_stopped`] against `base`.
pub(crate) fn spawn_submitters(
    clients: usize,
    base: &str,
    acked: &Arc<Mutex<Vec<Acked>>>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            tokio::spawn(submit_until_stopped(
                base.to_owned(),
                acked.clone(),
                stop.clone(),
            ))
        })
        .collect()
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
