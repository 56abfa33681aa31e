//! The one client for a server already running on a data directory.
//!
//! The stroke store admits one process, so commands that need it while a server runs go
//! through that server's admin API, authenticated with the bearer token the server writes
//! into its control file (see [`crate::control`]). A stale control file (the server was
//! killed) names an address nobody answers: [`RunningServer::find`] then says there is no
//! server, and the command works on the data directory itself.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::control::Control;

/// How long the liveness probe (`GET /healthz`) may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take for calls without an overall deadline (transfers).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JSON answer read from the server.
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;
/// How often a command asks how a job it started is doing.
const JOB_POLL_EVERY: Duration = Duration::from_millis(250);
/// How long one poll of a job may take.
const JOB_POLL_TIMEOUT: Duration = Duration::from_secs(30);

/// A server that answered on the address its control file names.
pub struct RunningServer {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The control file's admin bearer token.
    token: String,
    /// Its process id, for messages.
    pub pid: u32,
    /// Where it writes the backups asked for over HTTP (absent from control files written by
    /// older servers).
    pub backup_root: Option<std::path::PathBuf>,
}

impl RunningServer {
    /// The server running on `data_dir`, if its control file names one that answers.
    pub fn find(data_dir: &Path) -> Option<Self> {
        let control = Control::read(data_dir).ok().flatten()?;
        let alive = agent(Some(HEALTH_TIMEOUT))
            .get(format!("{}/healthz", control.url))
            .call()
            .is_ok_and(|r| r.status().is_success());
        alive.then_some(Self {
            url: control.url,
            token: control.token,
            pid: control.pid,
            backup_root: control.backup_root,
        })
    }

    /// The `Authorization` header value for admin routes.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// GETs an admin route's JSON within `timeout`; an error answer becomes an error with the
    /// server's message.
    pub fn get_json(&self, path: &str, timeout: Duration) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.url);
        let mut response = agent(Some(timeout))
            .get(&url)
            .header("Authorization", &self.authorization())
            .call()
            .with_context(|| format!("calling the running server at {url}"))?;
        answer(&mut response).map_err(|refusal| anyhow::anyhow!("{refusal}"))
    }

    /// POSTs to an admin route (with a JSON body, or none) within `timeout`; an error answer
    /// becomes an error with the server's message.
    pub fn post_json(
        &self,
        path: &str,
        body: Option<serde_json::Value>,
        timeout: Duration,
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.url);
        let request = agent(Some(timeout))
            .post(&url)
            .header("Authorization", &self.authorization());
        let sent = match body {
            Some(body) => request.send_json(body),
            None => request.send_empty(),
        };
        let mut response = sent.with_context(|| format!("calling the running server at {url}"))?;
        answer(&mut response).map_err(|refusal| anyhow::anyhow!("{refusal}"))
    }

    /// Follows the job in a `202` answer (`{"id", "kind", "status", …}`) until it has finished,
    /// for at most `timeout`: its `result` when it completed, else an error with the job's
    /// reason. Long work on the server is a job; the command waits for it here.
    pub fn follow_job(
        &self,
        accepted: &serde_json::Value,
        timeout: Duration,
    ) -> anyhow::Result<serde_json::Value> {
        self.follow_job_with(accepted, timeout, &mut |_| {})
    }

    /// [`Self::follow_job`], handing each poll's `progress` (when the job has one) to
    /// `on_progress`.
    pub fn follow_job_with(
        &self,
        accepted: &serde_json::Value,
        timeout: Duration,
        on_progress: &mut dyn FnMut(&serde_json::Value),
    ) -> anyhow::Result<serde_json::Value> {
        let id = accepted["id"]
            .as_i64()
            .context("the server's answer names no job")?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let job = self.get_json(&format!("/api/v1/admin/jobs/{id}"), JOB_POLL_TIMEOUT)?;
            match job["status"].as_str() {
                Some("completed") => return Ok(job["result"].clone()),
                Some(status @ ("failed" | "cancelled")) => anyhow::bail!(
                    "{} job {id} {status}: {}",
                    job["kind"].as_str().unwrap_or("the"),
                    job["error"].as_str().unwrap_or("no reason given")
                ),
                _ if std::time::Instant::now() >= deadline => anyhow::bail!(
                    "job {id} has not finished after {} s; follow it at /api/v1/admin/jobs/{id}",
                    timeout.as_secs()
                ),
                _ => {
                    if !job["progress"].is_null() {
                        on_progress(&job["progress"]);
                    }
                    std::thread::sleep(JOB_POLL_EVERY)
                }
            }
        }
    }

    /// An agent for streamed transfers: a connect timeout but no overall deadline, since an
    /// import or export takes as long as its data needs.
    pub fn transfer_agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(None)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .build()
            .into()
    }
}

/// An agent that hands error statuses back as answers (we read their JSON body).
fn agent(timeout: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(timeout)
        .build()
        .into()
}

/// The JSON body of a server's answer, or, for an error status, what the server said
/// (`the server refused (422 …): <message>`), for the caller to put in context.
pub fn answer(
    response: &mut ureq::http::Response<ureq::Body>,
) -> Result<serde_json::Value, String> {
    let status = response.status();
    let body: serde_json::Value = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_json()
        .unwrap_or(serde_json::Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let message = body["error"]["message"].as_str().unwrap_or("no message");
    Err(format!("the server refused ({status}): {message}"))
}
