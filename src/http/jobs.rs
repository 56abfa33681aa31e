//! The job queue (admin), kind-neutral: list jobs, read one (with its result), cancel one
//! through the scheduler and watch one (Server-Sent Events). The training routes
//! (`/training-jobs…`) are these same handlers narrowed to training jobs.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::events::until_session_ends;
use super::extract::PathParam;
use super::{run_blocking, AppState};
use crate::jobs::backup::BackupJob;
use crate::jobs::JobFinished;
use crate::store::{CancelOutcome, JobKind, JobRow};

/// Jobs listed at most.
const LIST_LIMIT: usize = 200;

/// A job as every answer shows it: a backup's destination by name only, and no path of
/// the server's disk in its error.
pub(super) fn job_json(job: &JobRow) -> serde_json::Value {
    let mut json = serde_json::to_value(job).unwrap_or_default();
    if job.kind == JobKind::Backup {
        json["config"] = BackupJob::public_json(&job.config);
    }
    if job.kind == JobKind::Verify {
        without_disk_paths(&mut json["result"]);
    }
    if let Some(error) = json["error"].as_str() {
        json["error"] = super::redact::without_paths(error).into();
    }
    json
}

/// A check's report as answers show it: no data directory path, and the model files its
/// problems name cut to their last component.
fn without_disk_paths(report: &mut serde_json::Value) {
    let Some(report) = report.as_object_mut() else {
        return;
    };
    report.remove("path");
    if let Some(problems) = report.get_mut("problems").and_then(|p| p.as_array_mut()) {
        for problem in problems {
            if let Some(text) = problem.as_str() {
                *problem = super::redact::without_paths(text).into();
            }
        }
    }
}

/// `202 Accepted` with the job and `Location: /api/v1/admin/jobs/{id}`: how every route
/// that starts long work answers.
pub(super) fn accepted(job: &JobRow) -> Response {
    accepted_with(job, job_json(job))
}

/// `202 Accepted` with the job's `Location` and another body (one that a route answered
/// before it became a job, with the job added).
pub(super) fn accepted_with(job: &JobRow, body: serde_json::Value) -> Response {
    let location = HeaderValue::from_str(&format!("/api/v1/admin/jobs/{}", job.id))
        .unwrap_or_else(|_| HeaderValue::from_static("/api/v1/admin/jobs"));
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response()
}

/// What a job of `kind` is called in a `404` (any job when `None`).
fn what(kind: Option<JobKind>) -> &'static str {
    match kind {
        Some(JobKind::Train) => "training job",
        _ => "job",
    }
}

/// Newest first; only jobs of `kind` when given.
pub(super) async fn list_of(
    state: &AppState,
    kind: Option<JobKind>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let stores = state.stores.clone();
    let jobs = run_blocking(move || {
        Ok(match kind {
            Some(kind) => stores.jobs.jobs_of_kind(kind, LIST_LIMIT)?,
            None => stores.jobs.jobs(LIST_LIMIT)?,
        })
    })
    .await?;
    Ok(Json(
        serde_json::json!({"items": jobs.iter().map(job_json).collect::<Vec<_>>()}),
    ))
}

/// The job `id`, if it is of `kind` (any kind when `None`).
pub(super) async fn load(
    state: &AppState,
    id: i64,
    kind: Option<JobKind>,
) -> Result<JobRow, ApiError> {
    let stores = state.stores.clone();
    run_blocking(move || Ok(stores.jobs.job(id)?))
        .await?
        .filter(|job| kind.is_none_or(|kind| job.kind == kind))
        .ok_or_else(|| ApiError::not_found(what(kind)))
}

/// Cancels the job `id` (of `kind`) through the scheduler: `200 {"status":"cancelled"}` for
/// one that waited, `202 {"status":"cancel_requested"}` for one that runs, `409
/// job_finished` for one that has finished.
pub(super) async fn cancel_of(
    state: &AppState,
    id: i64,
    kind: Option<JobKind>,
) -> Result<Response, ApiError> {
    load(state, id, kind).await?;
    let scheduler = state.scheduler.clone();
    let outcome = run_blocking(move || Ok(scheduler.cancel(id)?)).await?;
    match outcome {
        None => Err(ApiError::not_found(what(kind))),
        Some(CancelOutcome::Cancelled) => {
            Ok(Json(serde_json::json!({"status": "cancelled"})).into_response())
        }
        Some(CancelOutcome::Requested) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"status": "cancel_requested"})),
        )
            .into_response()),
        Some(CancelOutcome::AlreadyFinished(status)) => Err(JobFinished(status).into()),
    }
}

/// The job `id` (of `kind`) now, then every change, as Server-Sent Events (`event: job`);
/// the stream ends when the job finishes or the session behind `headers` ends.
pub(super) async fn events_of(
    state: &AppState,
    headers: &HeaderMap,
    id: i64,
    kind: Option<JobKind>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let receiver = state.scheduler.subscribe();
    let current = load(state, id, kind).await?;
    let first = Event::default()
        .event("job")
        .json_data(job_json(&current))
        .unwrap_or_default();
    let finished = current.status.is_finished();
    // This job's events until it finishes; a listener that lags skips what it missed.
    let updates = stream::unfold(
        (receiver, finished),
        move |(mut receiver, done)| async move {
            if done {
                return None;
            }
            loop {
                match receiver.recv().await {
                    Ok(event) if event.id == id => {
                        let done = event.status.is_finished();
                        let sse = Event::default()
                            .event("job")
                            .json_data(&event)
                            .unwrap_or_default();
                        return Some((Ok(sse), (receiver, done)));
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    let events = stream::once(async move { Ok(first) }).chain(updates);
    Ok(Sse::new(until_session_ends(state, headers, events)).keep_alive(KeepAlive::default()))
}

/// `GET /api/v1/admin/jobs`: jobs of every kind, newest first.
pub async fn list(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    list_of(&state, None).await
}

/// `GET /api/v1/admin/jobs/{id}`: the job, with its `result` once it has completed (a
/// backup's manifest, an import's report).
pub async fn get(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(job_json(&load(&state, id, None).await?)))
}

/// `POST /api/v1/admin/jobs/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> Result<Response, ApiError> {
    cancel_of(&state, id, None).await
}

/// `GET /api/v1/admin/jobs/{id}/events`.
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathParam(id): PathParam<i64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    events_of(&state, &headers, id, None).await
}
