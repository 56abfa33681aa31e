//! Admin routes for backups of the running server's data directory: take one
//! (`POST /backup`) and verify the live stores (`GET /verify`). The stroke store admits one
//! process, so `doodlebox backup|verify` come here while a server runs.

use std::path::PathBuf;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::JsonBody;
use super::{run_blocking, AppState};
use crate::service::backup::{BackupManifest, VerifyReport};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// Absolute path of a new or empty directory on the server's machine.
    dest: PathBuf,
}

/// `POST /api/v1/admin/backup {"dest"}` → `201` with the backup's manifest, once it is
/// written and synced. Submissions go on meanwhile.
pub async fn create(
    State(state): State<AppState>,
    body: JsonBody<BackupRequest>,
) -> Result<(StatusCode, Json<BackupManifest>), ApiError> {
    let dest = body.value.dest;
    let blobs = state.stores.blobs.clone();
    let data_dir = state.data_dir.clone();
    let manifest = run_blocking(move || {
        Ok(crate::service::backup::backup(
            &*blobs,
            &data_dir,
            &dest,
            &mut |line| tracing::info!(%line, "backup"),
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(manifest)))
}

/// `GET /api/v1/admin/verify` → the report on the live stores (`problems` empty when whole).
pub async fn verify(State(state): State<AppState>) -> Result<Json<VerifyReport>, ApiError> {
    let blobs = state.stores.blobs.clone();
    let data_dir = state.data_dir.clone();
    let report =
        run_blocking(move || Ok(crate::service::backup::verify_data_dir(&*blobs, &data_dir)?))
            .await?;
    Ok(Json(report))
}
