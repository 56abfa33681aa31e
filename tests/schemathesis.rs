//! Schemathesis, a property-based API tester, against the real release binary: it reads the
//! server's own OpenAPI document and sends every operation generated requests, valid and
//! invalid, with all of its checks (server errors, undocumented statuses and headers, answers
//! that break their schema, invalid data accepted, valid data refused, ignored auth, ...).
//! The server runs on a throwaway data directory, with a first admin signed in, an API key
//! and a player cookie for the document's security schemes and an active model.
//!
//! Schemathesis is a Python tool: it is looked for in `.venv-test/` (`.ci/run` installs it
//! there) or at `$DOODLEBOX_SCHEMATHESIS`. Without it the test is skipped with a message,
//! except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{json, Value};

#[path = "common/server.rs"]
mod server;

use server::Server;

/// Operations left out of the run, by name, and why.
/// (`POST /api/v1/admin/backup` stays in: it writes only inside the server's own backup
/// directory, under the throwaway data directory.)
const EXCLUDED: [(&str, &str); 1] = [(
    "POST /api/v1/admin/logout",
    "it ends the admin session the run signs in with",
)];

/// Operations with rules across fields that JSON Schema cannot state (the document states
/// them in words): a request that its schema admits may still break one and get `422`.
const CROSS_FIELD_RULES: [(&str, &str); 5] = [
    (
        "POST /api/v1/drawings",
        "points inside the canvas, pressure and timestamps on all points or none, timestamps \
         never decreasing, a shape that exists",
    ),
    ("POST /api/v1/classify", "the drawing rules of a submission"),
    (
        "POST /api/v1/classify/batch",
        "the drawing rules, for each drawing",
    ),
    ("GET /api/v1/admin/drawings", "`from` not after `to`"),
    (
        "GET /api/v1/admin/export",
        "`npy` needs `shape`; `from` not after `to`",
    ),
];

/// Checks left out, and why.
const CHECKS_LEFT_OUT: [(&str, &str); 1] = [(
    "use_after_free",
    "DELETE here soft-deletes a drawing (restorable until purged), retires a shape or \
     revokes a key: what it names stays readable, by design",
)];

/// The seed of Schemathesis's generator, so that a run in CI tries the same requests each
/// time and a finding can be replayed; `DOODLEBOX_SCHEMATHESIS_SEED` names another one, or
/// `random` for a fresh one (worth a run now and then: each seed explores other corners).
const DEFAULT_SEED: &str = "20261202";

fn seed() -> Option<String> {
    match std::env::var("DOODLEBOX_SCHEMATHESIS_SEED") {
        Ok(seed) if seed == "random" => None,
        Ok(seed) => Some(seed),
        Err(_) => Some(DEFAULT_SEED.to_owned()),
    }
}

/// Generated test cases per operation and phase.
const MAX_EXAMPLES: u32 = 25;
/// Schemathesis's own time budget: its fuzzing and stateful phases stop when it is spent.
const MAX_TIME_SECS: u64 = 240;
/// The whole run is killed after this, whatever Schemathesis is doing.
const HARD_LIMIT: Duration = Duration::from_secs(300);
/// The first admin's password.
const PASSWORD: &str = "fuzzing takes patience";

/// The `st` command, if installed.
fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DOODLEBOX_SCHEMATHESIS") {
        return Some(path.into());
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/st");
    venv.is_file().then_some(venv)
}

/// The value of cookie `name` that `headers` set.
fn set_cookie(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}="))?.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {headers:?}"))
        .to_owned()
}

/// Creates the first admin through the printed setup link; answers the admin cookie and a
/// client (same origin, cookie jar) signed in with it.
async fn first_admin(server: &Server) -> (String, reqwest::Client) {
    let link = server
        .printed("admin setup: ")
        .expect("a fresh server prints its setup link");
    let token = link.split("token=").nth(1).expect("a token in the link");
    let mut headers = HeaderMap::new();
    headers.insert("origin", server.base.parse().unwrap());
    let admin = reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .build()
        .unwrap();
    let response = admin
        .post(format!("{}/api/v1/admin/setup", server.base))
        .json(&json!({"token": token, "username": "fuzzer", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    (set_cookie(response.headers(), "doodlebox_admin"), admin)
}

/// Trains a small model on synthetic doodles and activates it, so that classify and the
/// model routes answer with a model.
async fn activate_a_model(server: &Server, admin: &reqwest::Client) {
    let url = |path: &str| format!("{}/api/v1/admin{path}", server.base);
    let created: Value = admin
        .post(url("/training-jobs"))
        .json(&json!({"source": "synthetic", "epochs": 1, "seed": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["job"]["id"].as_i64().expect("a job id");
    let started = Instant::now();
    let job = loop {
        let job: Value = admin
            .get(url(&format!("/jobs/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ["completed", "failed"].contains(&job["status"].as_str().unwrap_or_default()) {
            break job;
        }
        assert!(started.elapsed() < Duration::from_secs(240), "{job}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(job["status"], "completed", "{job}");
    let version = job["model_version"].as_str().unwrap();
    let activated = admin
        .post(url(&format!("/models/{version}/activate")))
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), 200);
}

/// What the run authenticates with, and the ids it is pointed at.
struct Fixture {
    admin_cookie: String,
    api_key: String,
    player: String,
    /// A key for `DELETE /keys/{id}` to revoke: revoking the run's own key would turn every
    /// later classify into `401`.
    decoy_key_id: i64,
    /// A drawing of the run's player, for `GET /api/v1/drawings/{id}` to find.
    drawing_id: String,
}

/// Schemathesis's configuration: the credentials of each security scheme, the ids of real
/// resources, the excluded operations and the cross-field rules.
fn config(fixture: &Fixture) -> String {
    let Fixture {
        admin_cookie,
        api_key,
        player,
        decoy_key_id,
        drawing_id,
    } = fixture;
    let mut toml = format!(
        "[auth.openapi.adminSession]\napi_key = \"{admin_cookie}\"\n\n\
         [auth.openapi.apiKey]\nbearer = \"{api_key}\"\n\n\
         [auth.openapi.playerCookie]\napi_key = \"{player}\"\n"
    );
    toml += &format!(
        "\n[[operations]]\ninclude-name = \"DELETE /api/v1/admin/keys/{{id}}\"\n\
         parameters = {{ id = {decoy_key_id} }}\n\
         \n[[operations]]\ninclude-name = \"GET /api/v1/drawings/{{id}}\"\n\
         parameters = {{ id = \"{drawing_id}\" }}\n"
    );
    for (name, _why) in EXCLUDED {
        toml += &format!("\n[[operations]]\ninclude-name = \"{name}\"\nenabled = false\n");
    }
    for (name, _rule) in CROSS_FIELD_RULES {
        toml += &format!(
            "\n[[operations]]\ninclude-name = \"{name}\"\n\
             checks.positive_data_acceptance.expected-statuses = \
             [\"2xx\", \"401\", \"403\", \"404\", \"409\", \"422\", \"429\"]\n"
        );
    }
    toml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_disagreement_between_the_api_document_and_the_server() {
    let Some(st) = schemathesis() else {
        let message = "Schemathesis is not installed: python3 -m venv .venv-test && \
                       .venv-test/bin/pip install schemathesis (or set DOODLEBOX_SCHEMATHESIS)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("skipped: {message}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = Server::start(&data_dir);
    let (admin_cookie, admin) = first_admin(&server).await;
    let new_key = |name: &'static str| {
        let request = admin
            .post(format!("{}/api/v1/admin/keys", server.base))
            .json(&json!({ "name": name }));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let api_key = new_key("schemathesis").await["key"]
        .as_str()
        .expect("a key")
        .to_owned();
    let decoy_key_id = new_key("decoy").await["id"].as_i64().expect("an id");
    let first_contact = reqwest::get(format!("{}/api/v1/shapes", server.base))
        .await
        .unwrap();
    let player = set_cookie(first_contact.headers(), "doodlebox_player");
    let submitted: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/drawings", server.base))
        .header("cookie", format!("doodlebox_player={player}"))
        .json(
            &json!({"shape": "circle", "canvas": {"width": 100, "height": 100},
                      "strokes": [{"points": [{"x": 10, "y": 10}, {"x": 60, "y": 40}]}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let drawing_id = submitted["id"].as_str().expect("stored").to_owned();
    activate_a_model(&server, &admin).await;

    let fixture = Fixture {
        admin_cookie,
        api_key,
        player,
        decoy_key_id,
        drawing_id,
    };
    let left_out: Vec<&str> = CHECKS_LEFT_OUT.iter().map(|(check, _)| *check).collect();
    let config_file = dir.path().join("schemathesis.toml");
    std::fs::write(&config_file, config(&fixture)).unwrap();
    let mut st_run = tokio::process::Command::new(&st);
    st_run.arg("--config-file").arg(&config_file).arg("run");
    if let Some(seed) = seed() {
        st_run.args(["--seed", &seed]);
    }
    let run = st_run
        .arg(format!("{}/api/v1/openapi.json", server.base))
        .args(["--checks", "all"])
        .args(["--exclude-checks", &left_out.join(",")])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--max-time", &MAX_TIME_SECS.to_string()])
        .args(["--request-timeout", "30"])
        .args(["--header", &format!("Origin: {}", server.base)])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .current_dir(dir.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(HARD_LIMIT, run)
        .await
        .expect("Schemathesis finished within its limit")
        .expect("Schemathesis runs");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let summary: Vec<&str> = printed
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("Selected:")
                || l.starts_with("Tested:")
                || l.contains(" generated, ")
                || l.starts_with("Seed:")
                || l.starts_with("====")
        })
        .collect();
    eprintln!("{}", summary.join("\n"));
    // Done with it (and with the throwaway directory it writes into).
    server.kill_9();
    assert!(
        output.status.success(),
        "Schemathesis found disagreements ({}):\n{printed}",
        output.status
    );
    assert!(
        printed.contains("Tested:"),
        "Schemathesis tested nothing:\n{printed}"
    );
}
