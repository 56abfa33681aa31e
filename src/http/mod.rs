//! The HTTP API and the embedded web UI (axum only).
//!
//! A handler extracts, parses into domain types, makes one call into `store` (through
//! [`run_blocking`]) and maps the error with [`ApiError`]. No SQL or sled here.

mod assets;
pub mod caller;
mod drawings;
pub mod error;
pub mod extract;
mod health;
mod join;
mod keys;
mod metrics;
mod player;
pub mod request_id;
mod review;
mod shapes;
mod timeout;
mod training;
mod transfer;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post, put};

use axum::Router;
pub use review::purge_cutoff;

pub use error::ApiError;

use crate::jobs::Scheduler;
use crate::serving::ModelServer;
use crate::store::{Ingest, Stores};

/// Largest request body accepted, in bytes (a drawing at the point limit fits well).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub stores: Arc<Stores>,
    pub ingest: Arc<Ingest>,
    /// Addresses players on the LAN can open, computed once at start.
    pub lan_urls: Arc<Vec<String>>,
    /// The training queue.
    pub scheduler: Arc<Scheduler>,
    /// The active model, in memory.
    pub models: Arc<ModelServer>,
    /// This run's control file: its token admits local commands to admin routes.
    pub control: Arc<crate::control::Control>,
    /// Rate limits for submit and classify.
    pub limits: Arc<crate::limits::Limiters>,
    /// API keys, looked up from memory.
    pub key_auth: Arc<crate::store::keys::KeyAuthenticator>,
    /// What `/metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The data directory (free space, storage size).
    pub data_dir: Arc<std::path::PathBuf>,
    /// What start-up reconciliation found (for `/readyz`).
    pub reconcile_report: Arc<crate::store::reconcile::ReconcileReport>,
    /// Review thumbnails already rendered.
    pub thumbnails: Arc<crate::thumbnail::ThumbnailCache>,
    /// Soft-deleted drawings are purged for good this many days after their deletion.
    pub purge_after_days: u32,
}

/// The whole router; tests and the server both build it here.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/shapes", get(shapes::list))
        .route("/prompt", get(shapes::prompt))
        .route("/drawings", post(drawings::submit))
        .route("/drawings/{id}", get(drawings::get_own))
        .route("/player", put(player::update))
        .route("/classify", post(drawings::classify))
        .route("/classify/batch", post(drawings::classify_batch))
        .route("/join", get(join::info))
        .fallback(api_not_found)
        .layer(axum::middleware::from_fn(extract::player_session))
        .layer(axum::middleware::from_fn(timeout::deadline));
    let admin = Router::new()
        .route("/training-jobs", get(training::list).post(training::create))
        .route("/training-jobs/{id}", get(training::get))
        .route("/training-jobs/{id}/cancel", post(training::cancel))
        .route("/training-jobs/{id}/events", get(training::events))
        .route("/models", get(training::models))
        .route("/models/rollback", post(training::rollback))
        .route("/models/compare", get(training::compare))
        .route(
            "/models/{version}",
            get(training::model).delete(training::delete),
        )
        .route("/models/{version}/activate", post(training::activate))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}", axum::routing::delete(keys::revoke))
        .route(
            "/import",
            post(transfer::import).layer(DefaultBodyLimit::disable()),
        )
        .route("/export", get(transfer::export))
        .route("/drawings", get(review::list))
        .route("/drawings/bulk", post(review::bulk))
        .route("/drawings/purge", post(review::purge))
        .route("/drawings/{id}", get(review::detail).delete(review::delete))
        .route("/drawings/{id}/thumbnail.png", get(review::thumbnail))
        .route("/drawings/{id}/approve", post(review::approve))
        .route("/drawings/{id}/flag", post(review::flag))
        .route("/drawings/{id}/unflag", post(review::unflag))
        .route("/drawings/{id}/restore", post(review::restore))
        .route("/players", get(review::players))
        .route("/players/{id}/block", post(review::block))
        .route("/players/{id}/unblock", post(review::unblock))
        .route("/stats", get(review::stats))
        .fallback(api_not_found)
        .layer(axum::middleware::from_fn(extract::loopback_only));
    Router::new()
        .nest("/api/v1/admin", admin)
        .nest("/api/v1", api)
        .route("/api", get(api_not_found))
        .route("/api/{*rest}", get(api_not_found).post(api_not_found))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .fallback(assets::serve)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(request_id::assign))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn api_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
}

/// Runs blocking store work off the async runtime.
pub async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}
