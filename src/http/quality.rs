//! Quality scores (admin): the auto-flag setting, the histogram of scores and the rescore
//! walk (start, as a `rescore` job, and progress).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::{ApiError, RequestError};
use super::extract::JsonBody;
use super::{run_blocking, AppState};
use crate::domain::quality::{bin_start, parse_bins};
use crate::domain::QualitySettings;
use crate::service::quality::RescoreProgress;
use crate::store::JobKind;

/// `GET /api/v1/admin/settings/quality` → `{"auto_flag_below":0.2}`.
pub async fn settings(State(state): State<AppState>) -> Json<QualitySettings> {
    Json(state.quality.settings())
}

/// `PUT /api/v1/admin/settings/quality {"auto_flag_below":0.2}` (0..1, else `422`): saves
/// it and re-applies it to scored drawings whose flag the scorer set (or would set);
/// answers the settings and `"reflagged"`, how many flags changed.
pub async fn update_settings(
    State(state): State<AppState>,
    body: JsonBody<QualitySettings>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let settings = QualitySettings::parse(body.value)?;
    let quality = state.quality.clone();
    let changed = run_blocking(move || Ok(quality.set_settings(settings)?)).await?;
    Ok(Json(serde_json::json!({
        "auto_flag_below": settings.auto_flag_below,
        "reflagged": changed,
    })))
}

/// `GET /api/v1/admin/quality/histogram?bins=20` (1..100) → `{"bins":[{"from","to",
/// "count"}],"unscored":N,"threshold":0.2}` over live (not soft-deleted) drawings.
pub async fn histogram(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(unknown) = query.keys().find(|k| k.as_str() != "bins") {
        return Err(RequestError::InvalidQuery(format!(
            "unknown parameter `{unknown}`; only `bins` is accepted"
        ))
        .into());
    }
    let bins = query
        .get("bins")
        .map(|b| b.parse::<i64>().unwrap_or(0))
        .map_or(parse_bins(None), |b| parse_bins(Some(b)))?;
    let stores = state.stores.clone();
    let histogram = run_blocking(move || Ok(stores.quality.histogram(bins)?)).await?;
    let rows: Vec<serde_json::Value> = histogram
        .counts
        .iter()
        .enumerate()
        .map(|(i, count)| {
            serde_json::json!({
                "from": bin_start(i, bins),
                "to": bin_start(i + 1, bins),
                "count": count,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "bins": rows,
        "unscored": histogram.unscored,
        "threshold": state.quality.settings().auto_flag_below,
    })))
}

/// `GET /api/v1/admin/quality/rescore`: the walk's progress (`idle`, `running`,
/// `completed`, with `done` of `total`).
pub async fn rescore_progress(
    State(state): State<AppState>,
) -> Result<Json<RescoreProgress>, ApiError> {
    let quality = state.quality.clone();
    Ok(Json(run_blocking(move || Ok(quality.progress())).await?))
}

/// `POST /api/v1/admin/quality/rescore`: `202` with the progress of a new walk from the
/// first drawing with the model being served and the `rescore` job that runs it (`"job"`,
/// and `Location: /api/v1/admin/jobs/{id}`); `200` with the progress of the walk that is
/// already running.
pub async fn rescore(State(state): State<AppState>) -> Result<Response, ApiError> {
    let quality = state.quality.clone();
    let scheduler = state.scheduler.clone();
    let started = run_blocking(move || {
        let current = quality.progress();
        if current.status == "running" {
            return Ok(Err(current));
        }
        let progress = quality.start_rescore()?;
        let config = crate::jobs::rescore::config(&progress);
        let (job, _) = scheduler.enqueue_kind(JobKind::Rescore, &config)?;
        Ok(Ok((progress, job)))
    })
    .await?;
    Ok(match started {
        Err(running) => (StatusCode::OK, Json(running)).into_response(),
        Ok((progress, job)) => {
            let mut body = serde_json::to_value(progress).unwrap_or_default();
            body["job"] = super::jobs::job_json(&job);
            super::jobs::accepted_with(&job, body)
        }
    })
}
