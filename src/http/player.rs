//! The anonymous player's own settings: for now an optional nickname.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{JsonBody, Player};
use super::{run_blocking, AppState};

/// Longest nickname, in characters.
const MAX_NICKNAME_CHARS: usize = 40;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayerUpdate {
    nickname: String,
}

/// `PUT /api/v1/player`: sets the nickname shown with this player's drawings.
pub async fn update(
    State(state): State<AppState>,
    Player(player): Player,
    body: JsonBody<PlayerUpdate>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let nickname = body.value.nickname.trim().to_owned();
    let count = nickname.chars().count();
    if count == 0 || count > MAX_NICKNAME_CHARS || nickname.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_nickname",
            format!("a nickname is 1 to {MAX_NICKNAME_CHARS} characters, no control characters"),
        ));
    }
    let metadata = state.stores.metadata.clone();
    let saved = nickname.clone();
    run_blocking(move || Ok(metadata.set_nickname(player, &saved)?)).await?;
    Ok(Json(serde_json::json!({ "nickname": nickname })))
}
