//! The shapes being collected, and the next prompt for a player. The use cases live in
//! [`crate::service::shapes`].

use axum::extract::State;
use axum::Json;

use super::error::ApiError;
use super::extract::Player;
use super::shapes_admin::shapes;
use super::{run_blocking, AppState};

/// `GET /api/v1/shapes`: the active shapes.
pub async fn list(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let shapes = shapes(&state);
    let active = run_blocking(move || Ok(shapes.collected()?)).await?;
    Ok(Json(serde_json::json!({ "shapes": active })))
}

/// `GET /api/v1/prompt`: among the active shapes this player has drawn least, one chosen
/// at random, favouring shapes with few good drawings or that the active model recognises
/// badly (see `domain::prompt`).
pub async fn prompt(
    State(state): State<AppState>,
    Player(player): Player,
) -> Result<Json<serde_json::Value>, ApiError> {
    let shapes = shapes(&state);
    let shape = run_blocking(move || Ok(shapes.prompt(player)?)).await?;
    Ok(Json(serde_json::json!({
        "shape": shape.name,
        "description": shape.description,
        "difficulty": shape.difficulty,
    })))
}
