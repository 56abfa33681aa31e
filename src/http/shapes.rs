//! The shapes being collected, and the next prompt for a player.

use axum::extract::State;
use axum::Json;

use super::error::ApiError;
use super::extract::Player;
use super::{run_blocking, AppState};

/// `GET /api/v1/shapes`: the active shapes.
pub async fn list(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let metadata = state.stores.metadata.clone();
    let shapes = run_blocking(move || Ok(metadata.shapes()?)).await?;
    let active: Vec<_> = shapes.iter().filter(|s| s.active).collect();
    Ok(Json(serde_json::json!({ "shapes": active })))
}

/// `GET /api/v1/prompt`: among the active shapes this player has drawn least, one chosen
/// at random, favouring shapes with few good drawings or that the active model recognises
/// badly (see `domain::prompt`).
pub async fn prompt(
    State(state): State<AppState>,
    Player(player): Player,
) -> Result<Json<serde_json::Value>, ApiError> {
    let prompter = state.prompter.clone();
    let shape = run_blocking(move || Ok(prompter.prompt(player)?)).await?;
    let shape = shape.ok_or_else(|| {
        ApiError::unavailable("no_shapes", "no shape is being collected right now")
    })?;
    Ok(Json(serde_json::json!({
        "shape": shape.name,
        "description": shape.description,
        "difficulty": shape.difficulty,
    })))
}
