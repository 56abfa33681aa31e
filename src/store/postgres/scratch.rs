//! A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` into a temporary
//! directory, a server on a free loopback port, one fresh database per caller, and
//! everything stopped and removed when the last handle goes, or when the process that
//! started it dies (a watchdog shell stops it then, so a killed test leaves no server).
//!
//! `initdb` refuses to run as root, so as root the cluster runs as the `postgres` user
//! (Debian's package creates it) through `runuser`, in a directory it owns. The binaries
//! are found in `DOODLEBOX_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`, else
//! `PATH`. Outside CI a caller skips with a message when there are none; under `CI=true`
//! their absence is a failure (see [`ScratchCluster::shared_or_skip`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The superuser the scratch cluster is made with (trust authentication on loopback).
const SUPERUSER: &str = "doodlebox";

/// A running throwaway cluster; stopped and removed on drop.
pub struct ScratchCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Whether commands run as the `postgres` user (we are root).
    as_postgres: bool,
}

/// A fresh database on a scratch cluster, dropped with this handle.
pub struct ScratchDatabase {
    cluster: Arc<ScratchCluster>,
    name: String,
}

impl ScratchDatabase {
    /// The URL to open it with (`postgres://…`).
    pub fn url(&self) -> String {
        self.cluster.url(&self.name)
    }

    /// The cluster it lives on (to make more databases, or stop it).
    pub fn cluster(&self) -> &Arc<ScratchCluster> {
        &self.cluster
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        // Best effort: the cluster goes away with the process anyway.
        let _ = self.cluster.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// The PostgreSQL binaries' directory, if PostgreSQL is installed.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOODLEBOX_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    // Versions are directory names ("15", "16"): the longest, then greatest, is newest.
    found.sort_by_key(|p| (p.as_os_str().len(), p.clone()));
    if let Some(newest) = found.pop() {
        return Some(newest);
    }
    let on_path = std::env::var_os("PATH")?;
    std::env::split_paths(&on_path).find(|dir| dir.join("initdb").exists())
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

impl ScratchCluster {
    /// Starts a new cluster. `Ok(None)` when PostgreSQL is not installed.
    pub fn start() -> Result<Option<Self>, String> {
        Self::start_with(false)
    }

    /// [`Self::start`] with `fsync` on, so that a commit is as durable as in production:
    /// for benchmarks that compare durable writes with the embedded store's.
    pub fn start_durable() -> Result<Option<Self>, String> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Result<Option<Self>, String> {
        let Some(bin) = bin_dir() else {
            return Ok(None);
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "doodlebox-pg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let as_postgres = running_as_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&dir))?;
        }
        let mut cluster = Self {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        let data = cluster.dir.join("data");
        cluster.run_pg(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        // A port found free may be taken before the server binds it: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            cluster.port = free_port()?;
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={} -c max_connections=200",
                cluster.port,
                cluster.dir.display(),
                if durable { "on" } else { "off" }
            );
            match cluster.run_pg(
                "pg_ctl",
                &[
                    "-D",
                    &data.to_string_lossy(),
                    "-l",
                    &cluster.dir.join("log").to_string_lossy(),
                    "-o",
                    &options,
                    "-w",
                    "start",
                ],
            ) {
                Ok(()) => {
                    cluster.watch();
                    return Ok(Some(cluster));
                }
                Err(e) => last_error = e,
            }
        }
        Err(format!(
            "the scratch PostgreSQL did not start: {last_error}"
        ))
    }

    /// One cluster per process, started on first use and shared by every caller; `None`
    /// (after printing why, for the test log) when PostgreSQL is absent outside CI.
    ///
    /// # Panics
    /// Under `CI=true` when PostgreSQL is absent or does not start: CI installs it, so its
    /// absence there is a broken setup, not a reason to skip.
    pub fn shared_or_skip() -> Option<Arc<ScratchCluster>> {
        static SHARED: OnceLock<Mutex<Option<Arc<ScratchCluster>>>> = OnceLock::new();
        let slot = SHARED.get_or_init(|| Mutex::new(None));
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cluster) = slot.as_ref() {
            return Some(cluster.clone());
        }
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        match Self::start() {
            Ok(Some(cluster)) => {
                let cluster = Arc::new(cluster);
                *slot = Some(cluster.clone());
                Some(cluster)
            }
            Ok(None) if in_ci => panic!("CI=true but PostgreSQL is not installed"),
            Ok(None) => {
                eprintln!("skipped: PostgreSQL is not installed (no initdb found)");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// A fresh, empty database on the shared cluster (see [`Self::shared_or_skip`]).
    pub fn database_or_skip() -> Option<ScratchDatabase> {
        let cluster = Self::shared_or_skip()?;
        Some(
            cluster
                .database()
                .unwrap_or_else(|e| panic!("creating a scratch database: {e}")),
        )
    }

    /// Creates a fresh, empty database on this cluster.
    pub fn database(self: &Arc<Self>) -> Result<ScratchDatabase, String> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!("scratch_{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        self.psql(&format!("CREATE DATABASE {name}"))?;
        Ok(ScratchDatabase {
            cluster: self.clone(),
            name,
        })
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs one SQL statement as the superuser on the `postgres` database.
    pub fn psql(&self, sql: &str) -> Result<(), String> {
        let port = self.port.to_string();
        self.run_pg(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        )
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command.current_dir(&self.dir);
            command
        } else {
            Command::new(path)
        }
    }

    fn run_pg(&self, program: &str, args: &[&str]) -> Result<(), String> {
        run(self.command(program).args(args))
    }

    /// Starts the watchdog: a shell that waits for this process to end, then stops the
    /// cluster and removes its directory.
    fn watch(&self) {
        let stop = self.stop_script();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}",
            pid = std::process::id()
        );
        // Without the watchdog a crashed test leaves a server behind; still usable.
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    fn stop_script(&self) -> String {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("data");
        let user = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        format!(
            "{user}{} -D {} -m immediate stop >/dev/null 2>&1; rm -rf {}",
            pg_ctl.display(),
            data.display(),
            self.dir.display()
        )
    }

    /// The cluster's directory (its data and log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for ScratchCluster {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .args(["-c", &self.stop_script()])
            .status();
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
