//! Crash safety of the real binary: `kill -9` under 200 clients, a crash at each durability
//! step, scoring after a kill, and a clean stop on SIGTERM lose no acknowledged drawing.

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

/// Submits random drawings until `stop` is set; records every acknowledgement.
pub(crate) async fn submit_until_stopped(
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
