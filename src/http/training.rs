//! Training jobs (admin): start, list, watch (Server-Sent Events) and cancel; the models
//! they produce. The job routes are the kind-neutral ones of [`super::jobs`] narrowed to
//! training jobs.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::Stream;

use super::error::ApiError;
use super::extract::JsonBody;
use super::jobs::{self, job_json};
use super::{run_blocking, AppState};
use crate::jobs::{JobConfig, JobConfigInput};
use crate::store::JobKind;

/// `POST /api/v1/admin/training-jobs` → `202` with the new job, or `200` with
/// `"status":"already_exists"` when an identical job is pending, queued or running.
pub async fn create(
    State(state): State<AppState>,
    body: JsonBody<JobConfigInput>,
) -> Result<Response, ApiError> {
    let config = JobConfig::parse(body.value).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_training_config",
            e.to_string(),
        )
    })?;
    let scheduler = state.scheduler.clone();
    let (job, existed) = run_blocking(move || Ok(scheduler.enqueue(&config)?)).await?;
    Ok(if existed {
        (
            StatusCode::OK,
            Json(serde_json::json!({"status": "already_exists", "job": job_json(&job)})),
        )
            .into_response()
    } else {
        (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"status": "accepted", "job": job_json(&job)})),
        )
            .into_response()
    })
}

/// `GET /api/v1/admin/training-jobs`: training jobs, newest first.
pub async fn list(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    jobs::list_of(&state, Some(JobKind::Train)).await
}

/// `GET /api/v1/admin/training-jobs/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(job_json(
        &jobs::load(&state, id, Some(JobKind::Train)).await?,
    )))
}

/// `POST /api/v1/admin/training-jobs/{id}/cancel`: through the scheduler, as for every kind.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    jobs::cancel_of(&state, id, Some(JobKind::Train)).await
}

/// `GET /api/v1/admin/training-jobs/{id}/events`: the job now, then every change, as
/// Server-Sent Events (`event: job`); the stream ends when the job finishes.
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    jobs::events_of(&state, id, Some(JobKind::Train)).await
}

/// `GET /api/v1/admin/models`: every model version, newest first.
pub async fn models(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let stores = state.stores.clone();
    let models = run_blocking(move || Ok(stores.models.models()?)).await?;
    Ok(Json(serde_json::json!({"items": models})))
}

/// `POST /api/v1/admin/models/{version}/activate`: verifies and loads the model, then makes
/// it the one active model; a model that fails verification is refused (`422`) and the old
/// one keeps serving.
pub async fn activate(
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let models = state.models.clone();
    let active = version.clone();
    run_blocking(move || Ok(models.activate(&active)?)).await?;
    Ok(Json(serde_json::json!({"active": version})))
}

/// `POST /api/v1/admin/models/rollback`: back to the previously active model.
pub async fn rollback(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let models = state.models.clone();
    let version = run_blocking(move || Ok(models.rollback()?)).await?;
    Ok(Json(serde_json::json!({"active": version})))
}

async fn model_row(state: &AppState, version: String) -> Result<crate::store::ModelRow, ApiError> {
    let stores = state.stores.clone();
    run_blocking(move || Ok(stores.models.model(&version)?))
        .await?
        .ok_or_else(|| ApiError::not_found("model"))
}

/// `GET /api/v1/admin/models/{version}`: the full manifest, per-class metrics included.
pub async fn model(
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        serde_json::to_value(model_row(&state, version).await?).unwrap_or_default(),
    ))
}

#[derive(serde::Deserialize)]
pub struct CompareQuery {
    a: String,
    b: String,
}

/// `GET /api/v1/admin/models/compare?a=v1&b=v2`: accuracy and per-class precision/recall of
/// both, with the deltas `b - a` (classes missing on one side show `null`).
pub async fn compare(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<CompareQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let a = model_row(&state, q.a).await?;
    let b = model_row(&state, q.b).await?;
    let per_class = |m: &crate::store::ModelRow| -> std::collections::BTreeMap<String, (f64, f64)> {
        m.manifest["metrics"]["per_class"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| {
                        Some((
                            r["class"].as_str()?.to_owned(),
                            (r["precision"].as_f64()?, r["recall"].as_f64()?),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (pa, pb) = (per_class(&a), per_class(&b));
    let classes: std::collections::BTreeSet<&String> = pa.keys().chain(pb.keys()).collect();
    let rows: Vec<serde_json::Value> = classes
        .into_iter()
        .map(|class| {
            let (x, y) = (pa.get(class), pb.get(class));
            serde_json::json!({
                "class": class,
                "a": x.map(|(p, r)| serde_json::json!({"precision": p, "recall": r})),
                "b": y.map(|(p, r)| serde_json::json!({"precision": p, "recall": r})),
                "precision_delta": x.zip(y).map(|(x, y)| y.0 - x.0),
                "recall_delta": x.zip(y).map(|(x, y)| y.1 - x.1),
            })
        })
        .collect();
    let accuracy = |m: &crate::store::ModelRow| m.manifest["metrics"]["accuracy"].as_f64();
    Ok(Json(serde_json::json!({
        "a": a.version,
        "b": b.version,
        "accuracy": {"a": accuracy(&a), "b": accuracy(&b), "delta": accuracy(&a).zip(accuracy(&b)).map(|(x, y)| y - x)},
        "per_class": rows,
    })))
}

/// `DELETE /api/v1/admin/models/{version}`: removes an inactive model and its artifact.
pub async fn delete(
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> Result<StatusCode, ApiError> {
    let stores = state.stores.clone();
    let outcome = run_blocking(move || Ok(stores.models.delete_model(&version)?)).await?;
    match outcome {
        crate::store::DeleteModel::NotFound => Err(ApiError::not_found("model")),
        crate::store::DeleteModel::Active => Err(ApiError::new(
            StatusCode::CONFLICT,
            "model_active",
            "the active model cannot be deleted; activate another one first",
        )),
        crate::store::DeleteModel::Deleted(row) => {
            if let Err(e) = std::fs::remove_dir_all(&row.path) {
                tracing::warn!(path = %row.path, error = %e, "deleted model's files could not be removed");
            }
            Ok(StatusCode::NO_CONTENT)
        }
    }
}
