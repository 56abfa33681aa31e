//! The anonymous player's own settings: for now an optional nickname.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{JsonBody, Player};
use super::{run_blocking, AppState};
use crate::domain::player::Nickname;
use crate::service::players::Players;

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
    let nickname = Nickname::parse(&body.value.nickname)?;
    let players = Players::new(state.stores.metadata.clone());
    let saved = nickname.clone();
    run_blocking(move || Ok(players.set_nickname(player, &saved)?)).await?;
    Ok(Json(serde_json::json!({ "nickname": nickname.as_str() })))
}
