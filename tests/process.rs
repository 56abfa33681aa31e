//! Tests of the real binary: crash safety under `kill -9`, and the command line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_doodlebox");
/// Kill cycles in the crash test.
const CYCLES: usize = 20;
/// Clients submitting concurrently during each cycle.
const CLIENTS: usize = 100;
const SHAPES: [&str; 5] = ["line", "circle", "square", "triangle", "heart"];

/// The real server as a child process, killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts the binary on a free port and reads the bound address from its first line.
    fn start(data_dir: &Path) -> Server {
        let mut child = Command::new(BINARY)
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("DOODLEBOX_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        reader.read_line(&mut first).expect("first line");
        // Keep draining stdout so the server never writes into a full or closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        Server { child, base }
    }

    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
async fn kill_9_while_100_clients_submit_loses_no_acknowledged_drawing() {
    let dir = tempfile::tempdir().unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut per_cycle = Vec::new();
    for cycle in 0..CYCLES {
        if cycle % 5 == 4 {
            // Also kill a server in the middle of its start-up.
            let mut child = Command::new(BINARY)
                .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(rand::rng().random_range(0..40)));
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let server = tokio::task::spawn_blocking({
            let path = dir.path().to_owned();
            move || Server::start(&path)
        })
        .await
        .unwrap();
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

    let server = tokio::task::spawn_blocking({
        let path = dir.path().to_owned();
        move || Server::start(&path)
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let mut lost = Vec::new();
    for a in &acked {
        let response = client
            .get(format!("{}/api/v1/drawings/{}", server.base, a.id))
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
    let count: Value = client
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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

    let doctor = Command::new(BINARY)
        .args(["doctor", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(report.contains("metadata integrity: ok"), "{report}");
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
