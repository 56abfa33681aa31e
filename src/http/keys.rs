//! Admin routes for implementors' API keys: create (the key is in this answer only), list,
//! revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::JsonBody;
use super::{run_blocking, AppState};
use crate::store::keys::NewApiKey;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    #[serde(default)]
    rate_per_min: Option<u32>,
}

/// `POST /api/v1/admin/keys {"name","rate_per_min"?}` → `201` with the key, shown once.
pub async fn create(
    State(state): State<AppState>,
    body: JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let new = NewApiKey::parse(&body.value.name, body.value.rate_per_min).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_key_request",
            e.to_string(),
        )
    })?;
    let keys = state.stores.keys.clone();
    let created = run_blocking(move || Ok(keys.create_key(&new)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(created).map_err(ApiError::internal)?),
    ))
}

/// `GET /api/v1/admin/keys` → `{"keys":[...]}`, newest first, without secrets.
pub async fn list(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let keys = state.stores.keys.clone();
    let rows = run_blocking(move || Ok(keys.keys()?)).await?;
    Ok(Json(serde_json::json!({ "keys": rows })))
}

/// `DELETE /api/v1/admin/keys/{id}`: revokes the key at once (the row stays, for the record).
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found("API key"))?;
    let keys = state.stores.keys.clone();
    let row = run_blocking(move || Ok(keys.revoke_key(id)?)).await?;
    let row = row.ok_or_else(|| ApiError::not_found("API key"))?;
    state.key_auth.forget_all();
    Ok(Json(serde_json::to_value(row).map_err(ApiError::internal)?))
}
