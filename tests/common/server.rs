//! The one launcher of the real `doodlebox` binary in tests (the process and browser tests):
//! a child process on a free port (or a given address), its bound address read from its first
//! line, its later output kept for [`Server::printed`], its control token for admin calls, and
//! SIGKILL when dropped. The API tests run the same server in-process through `TestApp`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_doodlebox");
/// How long [`Server::printed`] and [`Server::start_at`] wait.
const WAIT: Duration = Duration::from_secs(10);
/// How often they look again.
const POLL: Duration = Duration::from_millis(50);

/// The real server as a child process, killed (SIGKILL) when dropped.
pub struct Server {
    /// The process: tests wait for it, signal it, or see whether it still runs.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bound address, to start a later server at the same origin.
    #[allow(dead_code)] // the browser tests restart at the same origin, the others do not
    pub addr: SocketAddr,
    /// What the server printed after its first line (read continuously, so it never blocks).
    output: Arc<Mutex<Vec<String>>>,
    /// This run's control token (from `control.json`): the admin credential of local tools.
    pub token: String,
}

impl Server {
    /// Starts the binary on a free port. No starter model (tests train what they need) and no
    /// rate limits (some tests submit as fast as they can).
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Self::try_start(data_dir, "127.0.0.1:0", env).expect("the server did not start")
    }

    /// A server on exactly `addr`, so that an open page keeps its origin; retried while the
    /// port is still held by the server that was there before.
    #[allow(dead_code)] // the browser tests restart at the same origin, the others do not
    pub fn start_at(data_dir: &Path, addr: SocketAddr) -> Server {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(server) = Self::try_start(data_dir, &addr.to_string(), &[]) {
                return server;
            }
            assert!(Instant::now() < deadline, "could not bind {addr} again");
            std::thread::sleep(POLL);
        }
    }

    /// Starts the binary on `bind` and reads the bound address from its first line; `None`
    /// when it exits without one (the address is still taken, say).
    pub fn try_start(data_dir: &Path, bind: &str, env: &[(&str, &str)]) -> Option<Server> {
        Self::launch(Command::new(BINARY), data_dir, bind, env, false)
    }

    /// [`Server::start_with`] with soft and hard descriptor limits of `nofile` (the shell's
    /// `ulimit -n` sets both, then execs the binary, so the child is the server), and what
    /// it logs (stderr) kept for [`Server::printed`] and [`Server::output`] as well.
    #[allow(dead_code)] // only the hostile-load test limits descriptors
    pub fn start_limited(data_dir: &Path, nofile: u64, env: &[(&str, &str)]) -> Server {
        let mut shell = Command::new("sh");
        shell.args([
            "-c",
            &format!("ulimit -n {nofile} && exec \"$0\" \"$@\""),
            BINARY,
        ]);
        Self::launch(shell, data_dir, "127.0.0.1:0", env, true).expect("the server did not start")
    }

    /// Everything printed so far after the first line (and the log, with
    /// [`Server::start_limited`]).
    #[allow(dead_code)] // only the hostile-load test reads the log
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    fn launch(
        mut command: Command,
        data_dir: &Path,
        bind: &str,
        env: &[(&str, &str)],
        keep_log: bool,
    ) -> Option<Server> {
        let mut child = command
            .args(["serve", "--bind", bind, "--data-dir"])
            .arg(data_dir)
            .env("DOODLEBOX_LOG", "warn")
            .env("DOODLEBOX_NO_STARTER_MODEL", "1")
            .env("DOODLEBOX_RATE_LIMIT", "off")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if keep_log {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("the binary starts");
        let log = child.stderr.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        let _ = reader.read_line(&mut first);
        let Some(base) = first.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        };
        let base = base.to_owned();
        let addr = base
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        // Keep draining stdout so the server never writes into a full or closed pipe.
        let output = Arc::new(Mutex::new(Vec::new()));
        if let Some(log) = log {
            let lines = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(log).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let lines = output.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let control: serde_json::Value = serde_json::from_slice(
            &std::fs::read(data_dir.join("control.json"))
                .expect("the control file is written before the banner"),
        )
        .expect("control.json is JSON");
        let token = control["token"].as_str().expect("token").to_owned();
        Some(Server {
            child,
            base,
            addr,
            output,
            token,
        })
    }

    /// A client that calls admin routes as a local command does (the control token).
    #[allow(dead_code)] // not every test binary calls admin routes this way
    pub fn admin(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = format!("Bearer {}", self.token)
            .parse()
            .expect("token is ASCII");
        headers.insert(reqwest::header::AUTHORIZATION, value);
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client")
    }

    /// Queues a training job with `config` through the admin API; answers its id.
    #[allow(dead_code)] // the process and cluster tests train, the others do not
    pub async fn queue_training(&self, config: &serde_json::Value) -> i64 {
        let created: serde_json::Value = self
            .admin()
            .post(format!("{}/api/v1/admin/training-jobs", self.base))
            .json(config)
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("a JSON answer");
        created["job"]["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("a job id in {created}"))
    }

    /// The first printed line that starts with `prefix` (the prefix removed), waiting up to
    /// 10 s for it.
    pub fn printed(&self, prefix: &str) -> Option<String> {
        let started = Instant::now();
        while started.elapsed() < WAIT {
            let found = self
                .output
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.strip_prefix(prefix).map(str::to_owned));
            if found.is_some() {
                return found;
            }
            std::thread::sleep(POLL);
        }
        None
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `doodlebox worker` as a child process (cluster mode), killed (SIGKILL) when dropped.
#[allow(dead_code)] // only the cluster tests start workers
pub struct Worker {
    /// The process: tests kill it with -9.
    pub child: Child,
}

#[allow(dead_code)] // only the cluster tests start workers
impl Worker {
    /// Starts a worker on the database at `url` (training on the CPU), returning once it
    /// printed that it runs.
    pub fn start(data_dir: &Path, url: &str) -> Worker {
        let mut child = Command::new(BINARY)
            .args(["worker", "--device", "cpu", "--data-dir"])
            .arg(data_dir)
            .env("DOODLEBOX_LOG", "warn")
            .env("DOODLEBOX_DATABASE_URL", url)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut first = String::new();
        let _ = reader.read_line(&mut first);
        assert!(first.starts_with("worker running"), "{first:?}");
        // Keep draining stdout so the worker never writes into a full or closed pipe.
        std::thread::spawn(move || for _ in reader.lines().map_while(Result::ok) {});
        Worker { child }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
