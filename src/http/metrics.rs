//! `GET /metrics` (Prometheus text format) and the middleware that counts every request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ErrorCode;
use super::AppState;
use crate::telemetry::Snapshot;

/// Counts the request by its route template and status, times it, and counts error codes.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let response = next.run(req).await;
    // Everything without a route is the embedded UI (or a 404 from it).
    let route = route.unwrap_or_else(|| "(web ui)".to_owned());
    let status = response.status().as_u16();
    state
        .metrics
        .record_request(method, &route, status, started.elapsed().as_secs_f64());
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        state
            .metrics
            .errors
            .get_or_create(&crate::telemetry::ErrorLabels {
                code: (*code).to_owned(),
            })
            .inc();
    }
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let stats = &state.ingest.stats;
    let ordering = std::sync::atomic::Ordering::Relaxed;
    let mut snapshot = Snapshot {
        ingest_batches: stats.batches.load(ordering),
        ingest_drawings: stats.drawings.load(ordering),
        ingest_syncs: stats.syncs.load(ordering),
        ingest_queue_depth: state.ingest.queue_depth() as u64,
        ..Snapshot::default()
    };
    let (breaker, opened) = state.ingest.breaker_status();
    snapshot.breakers = vec![("storage".to_owned(), breaker, opened)];
    if let Some(disk) = state.ingest.disk_status() {
        snapshot.disk_watermark_bytes = Some(disk.watermark_bytes);
        snapshot.disk_low = Some(disk.state == "low");
    }
    let (stores, data_dir) = (state.stores.clone(), state.data_dir.clone());
    let read = tokio::task::spawn_blocking(move || {
        let free = fs4::available_space(data_dir.as_path()).ok();
        let counts = stores.jobs.job_counts().unwrap_or_default();
        let running = stores
            .jobs
            .jobs_of_kind(crate::store::JobKind::Train, 20)
            .unwrap_or_default()
            .into_iter()
            .find(|j| j.status == crate::store::JobStatus::Running)
            .and_then(|j| j.progress)
            .and_then(|p| progress_fraction(&p));
        (free, counts, running)
    })
    .await;
    if let Ok((free, counts, running)) = read {
        snapshot.disk_free_bytes = free;
        snapshot.jobs = counts;
        snapshot.running_job_progress = running;
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&snapshot),
    )
        .into_response()
}

/// Fraction done of a training job from its stored progress (epoch, epochs, step, steps).
fn progress_fraction(progress: &serde_json::Value) -> Option<f64> {
    let number = |key: &str| progress.get(key).and_then(serde_json::Value::as_f64);
    let (epoch, epochs) = (number("epoch")?, number("epochs")?);
    let (step, steps) = (number("step")?, number("steps_per_epoch")?);
    if epochs <= 0.0 || steps <= 0.0 {
        return None;
    }
    Some((((epoch - 1.0) + step / steps) / epochs).clamp(0.0, 1.0))
}

/// The method as a metrics label: the standard ones by name, anything else (a client may send
/// any token as its method) as `other`, so that labels stay few whatever clients send.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
