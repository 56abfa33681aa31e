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
use super::extract::{JsonBody, PathParam, QueryParams};
use super::jobs::{self, job_json};
use super::{run_blocking, AppState};
use crate::domain::ModelVersion;
use crate::jobs::{JobConfig, JobConfigInput};
use crate::service::evaluation;
use crate::service::models::{Comparison, ModelRegistry};
use crate::store::JobKind;

/// `POST /api/v1/admin/training-jobs` → `202` with the new job (and its `Location`), or
/// `200` with `"status":"already_exists"` when an identical job is pending, queued or running.
pub async fn create(
    State(state): State<AppState>,
    body: JsonBody<JobConfigInput>,
) -> Result<Response, ApiError> {
    let config = JobConfig::parse(body.value)?;
    let scheduler = state.scheduler.clone();
    let (job, existed) = run_blocking(move || Ok(scheduler.enqueue(&config)?)).await?;
    Ok(if existed {
        (
            StatusCode::OK,
            Json(serde_json::json!({"status": "already_exists", "job": job_json(&job)})),
        )
            .into_response()
    } else {
        // Like every route that starts long work: the job's `Location` too.
        jobs::accepted_with(
            &job,
            serde_json::json!({"status": "accepted", "job": job_json(&job)}),
        )
    })
}

/// `GET /api/v1/admin/training-jobs`: training jobs, newest first.
pub async fn list(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    jobs::list_of(&state, Some(JobKind::Train)).await
}

/// `GET /api/v1/admin/training-jobs/{id}`.
pub async fn get(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(job_json(
        &jobs::load(&state, id, Some(JobKind::Train)).await?,
    )))
}

/// `POST /api/v1/admin/training-jobs/{id}/cancel`: through the scheduler, as for every kind.
pub async fn cancel(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> Result<Response, ApiError> {
    jobs::cancel_of(&state, id, Some(JobKind::Train)).await
}

/// `GET /api/v1/admin/training-jobs/{id}/events`: the job now, then every change, as
/// Server-Sent Events (`event: job`); the stream ends when the job finishes or the
/// session ends.
pub async fn events(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    PathParam(id): PathParam<i64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    jobs::events_of(&state, &headers, id, Some(JobKind::Train)).await
}

/// The model registry, activating through this server's inference thread.
fn registry(state: &AppState) -> ModelRegistry {
    ModelRegistry::serving(state.stores.models.clone(), state.models.clone())
}

/// `GET /api/v1/admin/models`: every model version, newest first.
pub async fn models(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let registry = registry(&state);
    let models = run_blocking(move || Ok(registry.list()?)).await?;
    let items: Vec<ModelAnswer> = models.into_iter().map(ModelAnswer::from).collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

/// `?force=true` on activation: activate even a significantly worse model.
#[derive(serde::Deserialize)]
pub struct ActivateQuery {
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/admin/models/{version}/activate[?force=true]`: verifies and loads the model,
/// then makes it the one active model; a model that fails verification is refused (`422`)
/// and the old one keeps serving; one significantly worse than the active model on the
/// evaluation split is refused (`409 significantly_worse`, with the comparison) unless forced.
pub async fn activate(
    State(state): State<AppState>,
    Path(version): Path<String>,
    QueryParams(q): QueryParams<ActivateQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let version = ModelVersion::parse(&version)?;
    let registry = registry(&state);
    let (stores, active) = (state.stores.clone(), version.clone());
    let comparison = run_blocking(move || {
        Ok(evaluation::activate_safely(
            &stores, &registry, &active, q.force,
        )?)
    })
    .await?;
    Ok(Json(
        serde_json::json!({"active": version.as_str(), "comparison": comparison}),
    ))
}

/// `POST /api/v1/admin/models/rollback`: back to the previously active model.
pub async fn rollback(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let registry = registry(&state);
    let version = run_blocking(move || Ok(registry.rollback()?)).await?;
    Ok(Json(serde_json::json!({"active": version.as_str()})))
}

/// `GET /api/v1/admin/models/{version}`: the full manifest, per-class metrics included.
pub async fn model(
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> Result<Json<ModelAnswer>, ApiError> {
    let version = ModelVersion::parse(&version)?;
    let registry = registry(&state);
    let row = run_blocking(move || Ok(registry.get(&version)?)).await?;
    Ok(Json(row.into()))
}

/// A model version as the admin API answers it: the stored row, and the network its manifest
/// names in the words a training request uses (`small`, `wide`), so that no client has to
/// know the manifests' names for them.
#[derive(serde::Serialize)]
pub struct ModelAnswer {
    #[serde(flatten)]
    row: crate::store::ModelRow,
    /// `null` for a manifest that names a network this build does not know.
    network: Option<&'static str>,
}

impl From<crate::store::ModelRow> for ModelAnswer {
    fn from(row: crate::store::ModelRow) -> Self {
        let network = row
            .manifest
            .get("architecture")
            .and_then(serde_json::Value::as_str)
            .and_then(crate::ml::net::Architecture::from_name)
            .map(crate::ml::net::Architecture::config_name);
        Self { row, network }
    }
}

#[derive(serde::Deserialize)]
pub struct CompareQuery {
    a: String,
    b: String,
}

/// `GET /api/v1/admin/models/compare?a=v1&b=v2`: accuracy and per-class precision/recall of
/// both, with the deltas `b - a` (classes missing on one side show `null`), and both scored
/// on the evaluation split (`paired`: per-class deltas with direction, McNemar test).
pub async fn compare(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<CompareQuery>,
) -> Result<Json<Comparison>, ApiError> {
    let (a, b) = (ModelVersion::parse(&q.a)?, ModelVersion::parse(&q.b)?);
    let registry = registry(&state);
    let stores = state.stores.clone();
    Ok(Json(
        run_blocking(move || Ok(evaluation::compare_versions(&stores, &registry, &a, &b)?)).await?,
    ))
}

/// `DELETE /api/v1/admin/models/{version}`: removes an inactive model and its artifact.
pub async fn delete(
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> Result<StatusCode, ApiError> {
    let version = ModelVersion::parse(&version)?;
    let registry = registry(&state);
    run_blocking(move || Ok(registry.delete(&version)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
