//! Admin routes for backups of the running server's data directory: take one
//! (`POST /backup`, a `backup` job) and verify the live stores (`GET /verify`). The stroke
//! store admits one process, so `doodlebox backup|verify` come here while a server runs.

use std::path::PathBuf;

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::JsonBody;
use super::{run_blocking, AppState};
use crate::jobs::backup::BackupJob;
use crate::service::backup::{BackupError, VerifyReport};
use crate::store::{Backend, JobKind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// Absolute path of a new or empty directory on the server's machine.
    dest: PathBuf,
}

/// `POST /api/v1/admin/backup {"dest"}` → `202` with the `backup` job (and its `Location`);
/// the job writes and syncs the backup while submissions go on, and `GET
/// /api/v1/admin/jobs/{id}` shows the manifest as its `result` once it has completed. A
/// relative (`422`) or non-empty (`409`) destination is refused at once and queues nothing.
pub async fn create(
    State(state): State<AppState>,
    body: JsonBody<BackupRequest>,
) -> Result<Response, ApiError> {
    refuse_in_cluster_mode(&state)?;
    let dest = body.value.dest;
    let scheduler = state.scheduler.clone();
    let (job, _) = run_blocking(move || {
        let backup = BackupJob::parse(dest)?;
        Ok(scheduler.enqueue_kind(JobKind::Backup, &backup.to_json())?)
    })
    .await?;
    Ok(super::jobs::accepted(&job))
}

/// `GET /api/v1/admin/verify` → the report on the live stores (`problems` empty when whole).
pub async fn verify(State(state): State<AppState>) -> Result<Json<VerifyReport>, ApiError> {
    refuse_in_cluster_mode(&state)?;
    let blobs = state.stores.blobs.clone();
    let data_dir = state.data_dir.clone();
    let report =
        run_blocking(move || Ok(crate::service::backup::verify_data_dir(&*blobs, &data_dir)?))
            .await?;
    Ok(Json(report))
}

/// Backups and verification read the data directory's files; in cluster mode (`409`,
/// `use_pg_dump`) they are PostgreSQL's tools' job.
fn refuse_in_cluster_mode(state: &AppState) -> Result<(), ApiError> {
    match state.stores.backend {
        Backend::Embedded => Ok(()),
        Backend::Postgres => Err(BackupError::ClusterMode.into()),
    }
}
