//! Liveness and readiness.

use axum::extract::State;
use axum::Json;

use super::error::ApiError;
use super::{run_blocking, AppState};
use crate::store::retry::retry_idempotent;
use crate::store::Backend;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: the stores answer (`database` names the engine that did: `embedded` or
/// `postgresql`; an unreachable database answers 5xx); which model is served; what start-up
/// reconciliation repaired; the disk's free space against its watermark and the storage
/// circuit breaker.
/// `"status"` is `"degraded"` while new drawings are refused (disk low or breaker not
/// closed): reads, classify and the admin portal still work then.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let stores = state.stores.clone();
    let drawings =
        run_blocking(move || Ok(retry_idempotent(|| stores.metadata.count_drawings())?)).await?;
    let disk = state.ingest.disk_status();
    let (breaker, opened) = state.ingest.breaker_status();
    let degraded = disk.is_some_and(|d| d.state == "low") || breaker != "closed";
    Ok(Json(serde_json::json!({
        "status": if degraded { "degraded" } else { "ready" },
        "drawings": drawings,
        "database": {"backend": match state.stores.backend {
            Backend::Embedded => "embedded",
            Backend::Postgres => "postgresql",
        }, "reachable": true},
        "model": state.models.serving_version(),
        "reconciled_at_start": *state.reconcile_report,
        "disk": disk,
        "storage_breaker": {"state": breaker, "times_opened": opened},
    })))
}
