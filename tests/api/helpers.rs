//! `TestApp`: a real Doodlebox server on a random port, with typed request helpers.
//!
//! The server runs on a thread and runtime of its own, as `doodlebox serve` does, and is
//! stopped gracefully and waited for when the `TestApp` goes away. A test's own runtime ends
//! with the test; a server on it would be cut off mid-stop, leaving its scorer and model
//! threads running into the next tests and into the process's exit, where libtorch's
//! teardown under a running convolution crashed the test binary (SIGSEGV after "test result:
//! ok").

use std::path::PathBuf;

use doodlebox::app::{App, AppError};
use doodlebox::config::Config;
use serde_json::{json, Value};

pub struct TestApp {
    pub base: String,
    /// A player: a client with its own cookie jar.
    pub client: reqwest::Client,
    /// An admin: a client without cookies that sends this run's control token as
    /// `Authorization: Bearer` (what local commands use; see `doodlebox::control`).
    pub admin: reqwest::Client,
    pub data_dir: PathBuf,
    /// The first-admin setup link the server printed (no admin exists at start).
    pub setup_link: Option<String>,
    /// Keeps the temporary directory alive as long as the app.
    _dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The server's thread, which returns once the server has stopped and closed its stores.
    server: Option<std::thread::JoinHandle<()>>,
}

/// What a started server tells the test: its address, control token and setup link.
struct Started {
    base: String,
    token: String,
    setup_link: Option<String>,
}

/// Worker threads of each test server's runtime.
const SERVER_WORKERS: usize = 2;

/// How long a start waits for a data directory that this process let go of a moment ago.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Builds the app; a stroke store that this process dropped a moment ago (a stopped
/// server, a test's own `Stores`) may still be locked by sled's background threads for a
/// few milliseconds, longer on a loaded machine, so a lock conflict is waited out, briefly.
async fn build_when_released(config: Config) -> App {
    let started = std::time::Instant::now();
    loop {
        match App::build(config.clone()).await {
            Ok(app) => return app,
            Err(AppError::Store(e)) if e.is_lock_conflict() && started.elapsed() < RELEASE_WAIT => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => panic!("app builds: {e}"),
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_owned();
        let mut app = Self::spawn_on(data_dir).await;
        app._dir = Some(dir);
        app
    }

    /// A server on an existing data directory (for restart tests).
    pub async fn spawn_on(data_dir: PathBuf) -> Self {
        Self::spawn_with(Config::for_data_dir(&data_dir)).await
    }

    /// A server with this configuration (its data directory is the caller's).
    pub async fn spawn_with(config: Config) -> Self {
        let data_dir = config.data_dir.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Started>();
        let server = std::thread::Builder::new()
            .name("test-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(SERVER_WORKERS)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                runtime.block_on(async move {
                    let app = build_when_released(config).await;
                    let started = Started {
                        base: format!("http://{}", app.local_addr()),
                        token: app.control().token.clone(),
                        setup_link: app.setup_link().map(str::to_owned),
                    };
                    // The test may have given up waiting; the server then stops at once.
                    let _ = started_tx.send(started);
                    app.run_until_stopped(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("server runs");
                });
            })
            .expect("server thread");
        let Ok(started) = started_rx.await else {
            // The thread ended before the server was up: its panic says why.
            match server.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => panic!("the test server stopped before it started"),
            }
        };
        Self {
            base: started.base,
            client: new_player(),
            admin: admin_client(&started.token),
            data_dir,
            setup_link: started.setup_link,
            _dir: None,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops the server gracefully and waits until its stores are closed.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let joined = tokio::task::spawn_blocking(move || server.join())
                .await
                .expect("joining the server thread");
            if let Err(panic) = joined {
                std::panic::resume_unwind(panic);
            }
        }
        self._dir.take()
    }

    /// A browser-like client (cookie jar, `Origin` of this server) signed in as the first
    /// admin, created through the setup link.
    pub async fn first_admin_session(&self) -> reqwest::Client {
        let browser = self.browser();
        let token = self
            .setup_link
            .as_deref()
            .and_then(|link| link.split("token=").nth(1))
            .expect("a fresh server prints a setup link");
        let response = browser
            .post(self.url("/api/v1/admin/setup"))
            .json(&json!({"token": token, "username": "teacher", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 201, "setup succeeds");
        browser
    }

    /// A client with a cookie jar that sends this server's `Origin`, as a browser on one of
    /// its pages does.
    pub fn browser(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::ORIGIN,
            self.base.parse().expect("the base URL is ASCII"),
        );
        reqwest::Client::builder()
            .cookie_store(true)
            .default_headers(headers)
            .build()
            .expect("client")
    }

    /// Reads a finished job's event stream (`path`) to its end: it gives the final state,
    /// `completed`, and closes.
    pub async fn assert_completed_event_stream(&self, path: &str) {
        let events = self.get(path).await.text().await.expect("the stream ends");
        assert!(
            events.contains("event: job") && events.contains("completed"),
            "{events}"
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn submit(
        &self,
        client: &reqwest::Client,
        body: &Value,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut req = client.post(self.url("/api/v1/drawings")).json(body);
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        req.send().await.expect("request sent")
    }

    /// POSTs JSON as the admin (admin and classify calls).
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.admin
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POSTs JSON as the admin and parses the JSON answer (whatever its status).
    pub async fn post_json(&self, path: &str, body: &Value) -> Value {
        self.post(path, body).await.json().await.expect("JSON body")
    }

    /// GETs a path as the admin.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.admin
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// DELETEs a path as the admin.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.admin
            .delete(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// GETs a path as the admin and parses its JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("JSON body")
    }

    pub async fn submit_raw(&self, body: &str, content_type: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/drawings"))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent")
    }

    pub async fn drawing_count(&self) -> u64 {
        let ready: Value = reqwest::get(self.url("/readyz"))
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json");
        ready["drawings"].as_u64().expect("count")
    }
}

impl Drop for TestApp {
    /// Stops the server and waits for it, so that nothing of it outlives the test (its
    /// temporary directory is removed after this).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            // A server that panicked has already failed its test, or fails it here.
            if server.join().is_err() && !std::thread::panicking() {
                panic!("the test server panicked");
            }
        }
    }
}

/// The first admin's password in tests.
pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// A client that authenticates every request with the control token.
pub fn admin_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}").parse().expect("token is ASCII");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// A new anonymous player.
pub fn new_player() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

/// The example drawing, with two strokes.
pub fn sample_drawing() -> Value {
    json!({
        "shape": "circle",
        "canvas": {"width": 400, "height": 400},
        "strokes": [
            {"points": [
                {"x": 100, "y": 100, "pressure": 0.5, "timestamp": 1234567890},
                {"x": 120.25, "y": 95.5, "pressure": 0.625, "timestamp": 1234567906},
                {"x": 140, "y": 110, "pressure": 0.7, "timestamp": 1234567922}
            ], "color": "#000000", "width": 3},
            {"points": [{"x": 10, "y": 20, "pressure": 0.1, "timestamp": 1234568000}], "color": "#ff8800", "width": 2.5}
        ],
        "duration_ms": 2500,
        "device": "mouse"
    })
}

/// The error code of an error response.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("error body is JSON");
    body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned()
}

/// The Python of the test virtual environment (`.venv-test/`, with NumPy), for checks that
/// NumPy reads what we write. Absent: `None` with a message, but under CI (`CI` set) the
/// test fails, so a missing environment cannot pass unnoticed.
pub fn test_python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python");
    let works = std::process::Command::new(&python)
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|out| out.status.success());
    if works {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI needs {} with NumPy",
        python.display()
    );
    eprintln!(
        "skipping the NumPy check: no {} with NumPy",
        python.display()
    );
    None
}
