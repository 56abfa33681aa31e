//! Admin routes for backups of the running server's data directory: take one
//! (`POST /backup`, a `backup` job) and check the live stores (`POST /verify`, a `verify`
//! job). The stroke store admits one process, so `doodlebox backup|verify` come here while
//! a server runs.
//!
//! A backup asked for here goes only into the server's backup directory (`<data>/backups`,
//! or `--backup-dir` given at start), in a new folder: the request may name that folder
//! (`"name"`), never a path, since the server may run with more rights than its admins.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::error::{ApiError, RequestError};
use super::extract::JsonBody;
use super::{run_blocking, AppState};
use crate::jobs::backup::BackupJob;
use crate::service::backup::BackupError;
use crate::store::{Backend, JobKind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// The new folder's name inside the backup directory; default `backup-<UTC time>`.
    #[serde(default)]
    name: Option<String>,
    /// Refused: the destination path the API took before. Read only to answer it clearly.
    #[serde(default)]
    dest: Option<serde_json::Value>,
}

/// `POST /api/v1/admin/backup {"name"?}` (`{}` for a timestamped folder) → `202` with the `backup` job (and its
/// `Location`); the job writes and syncs the backup into `<backup dir>/<name>` while
/// submissions go on, and `GET /api/v1/admin/jobs/{id}` shows the manifest as its `result`
/// once it has completed (the job's `config.dest` says where it went). A body naming a
/// `dest` or a name that is not one plain folder name gets `422`, a name already taken
/// `409`; either queues nothing and writes nothing.
pub async fn create(
    State(state): State<AppState>,
    body: JsonBody<BackupRequest>,
) -> Result<Response, ApiError> {
    refuse_in_cluster_mode(&state)?;
    // Every field is optional, so serde would also read a JSON array as this struct.
    if !body.raw.trim_ascii_start().starts_with(b"{") {
        return Err(
            RequestError::InvalidBody("the body is a JSON object: {\"name\"?}".into()).into(),
        );
    }
    let request = body.value;
    if request.dest.is_some() {
        return Err(BackupError::DestinationInRequest.into());
    }
    let root = state.backup_root.clone();
    let scheduler = state.scheduler.clone();
    let (job, _) = run_blocking(move || {
        let dest = crate::service::backup::http_destination(&root, request.name.as_deref())?;
        let backup = BackupJob::parse(dest)?;
        Ok(scheduler.enqueue_kind(JobKind::Backup, &backup.to_json())?)
    })
    .await?;
    Ok(super::jobs::accepted(&job))
}

/// `POST /api/v1/admin/verify` (no body) → `202` with a `verify` job (and its `Location`):
/// the job checks the live stores against each other while submissions go on, and
/// `GET /api/v1/admin/jobs/{id}` shows the report as its `result` once it has completed
/// (`problems` empty when the stores are whole). A check already waiting or running is
/// answered with its job instead of a second one.
pub async fn verify(State(state): State<AppState>) -> Result<Response, ApiError> {
    refuse_in_cluster_mode(&state)?;
    let scheduler = state.scheduler.clone();
    let (job, _) =
        run_blocking(move || Ok(scheduler.enqueue_kind(JobKind::Verify, &serde_json::json!({}))?))
            .await?;
    Ok(super::jobs::accepted(&job))
}

/// Backups and verification read the data directory's files; in cluster mode (`409`,
/// `use_pg_dump`) they are PostgreSQL's tools' job.
fn refuse_in_cluster_mode(state: &AppState) -> Result<(), ApiError> {
    match state.stores.backend {
        Backend::Embedded => Ok(()),
        Backend::Postgres => Err(BackupError::ClusterMode.into()),
    }
}
