//! Liveness and readiness.

use axum::extract::State;
use axum::Json;

use super::error::ApiError;
use super::{run_blocking, AppState};

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: the stores answer; which model is served; what start-up reconciliation
/// repaired.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let stores = state.stores.clone();
    let drawings = run_blocking(move || Ok(stores.metadata.count_drawings()?)).await?;
    Ok(Json(serde_json::json!({
        "status": "ready",
        "drawings": drawings,
        "model": state.models.serving_version(),
        "reconciled_at_start": *state.reconcile_report,
    })))
}
