//! Tests of the real binary, started as a child process on a temporary data directory. One
//! file per area:
//! - `crash`: `kill -9` under 200 clients, a crash at each durability step, scoring after a
//!   kill, a power cut, a clean stop on SIGTERM;
//! - `jobs`: a training job and an import job killed mid-run run again after a restart;
//! - `backup`: an online backup taken under load restores what was acknowledged before it;
//! - `disk`: a nearly full disk (507) and failing writes (the breaker's 503), then recovery;
//! - `cli`: `--help`, a bad bind address, keys, admins, import and export, models.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};

#[path = "../common/server.rs"]
mod server;
#[path = "../common/synthetic.rs"]
mod synthetic;

use server::{Server, BINARY};

mod backup;
mod cli;
mod crash;
mod disk;
mod jobs;

use crash::*;
use jobs::*;

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
