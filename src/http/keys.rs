//! Admin routes for implementors' API keys: create (the key is in this answer only), list,
//! revoke. The use cases live in [`crate::service::api_keys`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::JsonBody;
use super::{run_blocking, AppState};
use crate::domain::ApiKeyId;
use crate::service::api_keys::ApiKeys;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    #[serde(default)]
    rate_per_min: Option<u32>,
}

/// The service, with this server's key cache so that a revocation takes effect at once.
fn api_keys(state: &AppState) -> ApiKeys {
    ApiKeys::with_cache(state.stores.keys.clone(), state.key_auth.clone())
}

/// `POST /api/v1/admin/keys {"name","rate_per_min"?}` → `201` with the key, shown once.
pub async fn create(
    State(state): State<AppState>,
    body: JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let keys = api_keys(&state);
    let CreateKey { name, rate_per_min } = body.value;
    let created = run_blocking(move || Ok(keys.create(&name, rate_per_min)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(created).map_err(ApiError::internal)?),
    ))
}

/// `GET /api/v1/admin/keys` → `{"keys":[...]}`, newest first, without secrets.
pub async fn list(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let keys = api_keys(&state);
    let rows = run_blocking(move || Ok(keys.list()?)).await?;
    Ok(Json(serde_json::json!({ "keys": rows })))
}

/// `DELETE /api/v1/admin/keys/{id}`: revokes the key at once (the row stays, for the record).
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: ApiKeyId = id.parse()?;
    let keys = api_keys(&state);
    let row = run_blocking(move || Ok(keys.revoke(id)?)).await?;
    Ok(Json(serde_json::to_value(row).map_err(ApiError::internal)?))
}
