//! The HTTP API and the embedded web UI (axum only).
//!
//! A handler extracts, parses into domain types, makes one call into a `service` (a
//! synchronous one through [`run_blocking`]) and maps the error with the one table in
//! [`error`]. No SQL or sled here.

mod assets;
pub mod auth;
mod backup;
pub mod caller;
mod drawings;
pub mod error;
mod events;
pub mod extract;
mod headers;
mod health;
mod jobs;
mod join;
mod keys;
pub mod listener;
mod metrics;
mod model_card;
mod player;
mod quality;
mod redact;
pub mod request_id;
mod review;
mod shapes;
mod shapes_admin;
mod timeout;
mod training;
mod transfer;

use std::sync::Arc;

pub use crate::service::review::purge_cutoff;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;

pub use auth::Policy;
pub use error::ApiError;

use crate::jobs::Scheduler;
use crate::service::serving::ModelServer;
use crate::store::{Ingest, Stores};

/// Largest request body accepted, in bytes (a drawing at the point limit fits well).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler can reach, behind one `Arc`: axum clones the state for each
/// middleware and extractor of every request, and one reference count costs less than the
/// twenty a field-by-field clone touched (and dropped again) on the submit path.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl AppState {
    pub fn new(shared: SharedState) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The state's parts: stores, workers and settings built once by [`crate::app::App::build`].
pub struct SharedState {
    pub stores: Arc<Stores>,
    pub ingest: Arc<Ingest>,
    /// Addresses players on the LAN can open, computed once at start.
    pub lan_urls: Arc<Vec<String>>,
    /// The job queue: training, backups, imports.
    pub scheduler: Arc<Scheduler>,
    /// The active model, in memory.
    pub models: Arc<ModelServer>,
    /// This run's control file: its token admits local commands to admin routes.
    pub control: Arc<crate::control::Control>,
    /// Rate limits for submit and classify.
    pub limits: Arc<crate::service::limits::Limiters>,
    /// API keys, looked up from memory.
    pub key_auth: Arc<crate::store::keys::KeyAuthenticator>,
    /// What `/metrics` reports.
    pub metrics: Arc<crate::telemetry::Metrics>,
    /// The data directory (free space, storage size).
    pub data_dir: Arc<std::path::PathBuf>,
    /// What start-up reconciliation found (for `/readyz`).
    pub reconcile_report: Arc<crate::store::reconcile::ReconcileReport>,
    /// The background scorer and the rescore walk.
    pub quality: Arc<crate::service::quality::QualityService>,
    /// Chooses prompts (cached per-shape stats).
    pub prompter: Arc<crate::service::prompter::Prompter>,
    /// Review thumbnails already rendered.
    pub thumbnails: Arc<crate::service::thumbnails::ThumbnailCache>,
    /// Soft-deleted drawings are purged for good this many days after their deletion.
    pub purge_after_days: u32,
    /// Admin accounts and sessions.
    pub accounts: Arc<crate::service::accounts::Accounts>,
    /// Where backups asked for over HTTP go (`<data>/backups` or `--backup-dir`).
    pub backup_root: Arc<std::path::PathBuf>,
    /// What the portal's event stream hears (services publish, `/admin/events` streams).
    pub events: crate::service::events::Events,
}

/// One route of the admin API with the policy that guards it.
pub struct AdminRoute {
    /// The path under `/api/v1/admin`, in axum's syntax (`/models/{version}`).
    pub path: &'static str,
    pub policy: Policy,
    methods: MethodRouter<AppState>,
}

impl AdminRoute {
    fn admin(path: &'static str, methods: MethodRouter<AppState>) -> Self {
        Self {
            path,
            policy: Policy::Admin,
            methods,
        }
    }

    fn public(path: &'static str, methods: MethodRouter<AppState>) -> Self {
        Self {
            path,
            policy: Policy::Public,
            methods,
        }
    }
}

/// Every route of the admin API. The admin router is built from this list alone, so a route
/// cannot be added without saying who may call it (deny by default), and the authorization
/// test walks this same list.
pub fn admin_routes() -> Vec<AdminRoute> {
    use AdminRoute as R;
    vec![
        R::public("/login", post(auth::login)),
        R::public("/logout", post(auth::logout)),
        R::public("/setup", get(auth::setup_status).post(auth::set_up)),
        R::admin("/me", get(auth::me)),
        R::admin("/events", get(events::stream)),
        R::admin("/training-jobs", get(training::list).post(training::create)),
        R::admin("/training-jobs/{id}", get(training::get)),
        R::admin("/training-jobs/{id}/cancel", post(training::cancel)),
        R::admin("/training-jobs/{id}/events", get(training::events)),
        R::admin("/jobs", get(jobs::list)),
        R::admin("/jobs/{id}", get(jobs::get)),
        R::admin("/jobs/{id}/cancel", post(jobs::cancel)),
        R::admin("/jobs/{id}/events", get(jobs::events)),
        R::admin("/models", get(training::models)),
        R::admin("/models/rollback", post(training::rollback)),
        R::admin("/models/compare", get(training::compare)),
        R::admin(
            "/models/{version}",
            get(training::model).delete(training::delete),
        ),
        R::admin("/models/{version}/activate", post(training::activate)),
        R::admin("/keys", get(keys::list).post(keys::create)),
        R::admin("/keys/{id}", delete(keys::revoke)),
        R::admin("/backup", post(backup::create)),
        R::admin("/verify", post(backup::verify)),
        R::admin("/drawings", get(review::list)),
        R::admin("/drawings/bulk", post(review::bulk)),
        R::admin("/drawings/purge", post(review::purge)),
        R::admin("/drawings/{id}", get(review::detail).delete(review::delete)),
        R::admin("/drawings/{id}/thumbnail.png", get(review::thumbnail)),
        R::admin("/drawings/{id}/approve", post(review::approve)),
        R::admin("/drawings/{id}/flag", post(review::flag)),
        R::admin("/drawings/{id}/unflag", post(review::unflag)),
        R::admin("/drawings/{id}/restore", post(review::restore)),
        R::admin("/players", get(review::players)),
        R::admin("/players/{id}/block", post(review::block)),
        R::admin("/players/{id}/unblock", post(review::unblock)),
        R::admin("/stats", get(review::stats)),
        // An import uploads a whole file (bounded by the import job's own limit).
        R::admin(
            "/import",
            post(transfer::import).layer(DefaultBodyLimit::disable()),
        ),
        R::admin("/export", get(transfer::export)),
        R::admin(
            "/settings/quality",
            get(quality::settings).put(quality::update_settings),
        ),
        R::admin("/quality/histogram", get(quality::histogram)),
        R::admin(
            "/quality/rescore",
            get(quality::rescore_progress).post(quality::rescore),
        ),
        R::admin(
            "/shapes",
            get(shapes_admin::list).post(shapes_admin::create),
        ),
        R::admin(
            "/shapes/{name}",
            axum::routing::patch(shapes_admin::change).delete(shapes_admin::retire),
        ),
        R::admin(
            "/shapes/{name}/picture",
            axum::routing::put(shapes_admin::choose_picture).delete(shapes_admin::reset_picture),
        ),
    ]
}

fn admin_router(state: &AppState) -> Router<AppState> {
    let guard = axum::middleware::from_fn_with_state(state.clone(), auth::require_admin);
    admin_routes()
        .into_iter()
        .fold(Router::new(), |router, route| {
            let methods = match route.policy {
                Policy::Public => route.methods,
                Policy::Admin => route.methods.layer(guard.clone()),
            };
            router.route(route.path, methods)
        })
        // Unknown admin paths: explicit, or `/api/{*rest}` below would answer them first.
        .route("/{*rest}", axum::routing::any(auth::admin_fallback))
        .fallback(auth::admin_fallback)
}

/// One route of the public API (`/api/v1`): the game, classify, the model card.
pub struct ApiRoute {
    /// The path under `/api/v1`, in axum's syntax (`/drawings/{id}`).
    pub path: &'static str,
    methods: MethodRouter<AppState>,
}

/// Every route of the public API. The public router is built from this list alone, so the
/// route-walk test, which reads it, sees every route there is.
pub fn public_routes() -> Vec<ApiRoute> {
    let route = |path, methods| ApiRoute { path, methods };
    vec![
        route("/shapes", get(shapes::list)),
        route("/prompt", get(shapes::prompt)),
        route("/drawings", post(drawings::submit)),
        route("/drawings/{id}", get(drawings::get_own)),
        route("/player", put(player::update)),
        route("/classify", post(drawings::classify)),
        route("/classify/batch", post(drawings::classify_batch)),
        route("/join", get(join::info)),
        route("/model", get(model_card::card)),
        route(
            "/model/confusion.png",
            get(model_card::confusion).layer(axum::Extension(model_card::PictureCache::new())),
        ),
        route("/model/reliability.png", get(model_card::reliability)),
        route("/openapi.json", get(model_card::openapi)),
    ]
}

/// Every path under `/api/v1`, public and admin, in axum's (and OpenAPI's) `{param}` syntax:
/// what the OpenAPI document must describe.
pub fn api_paths() -> Vec<String> {
    let public = public_routes()
        .into_iter()
        .map(|r| format!("/api/v1{}", r.path));
    let admin = admin_routes()
        .into_iter()
        .map(|r| format!("/api/v1/admin{}", r.path));
    public.chain(admin).collect()
}

/// The whole router; tests and the server both build it here.
pub fn router(state: AppState) -> Router {
    let api = public_routes()
        .into_iter()
        .fold(Router::new(), |router, route| {
            router.route(route.path, route.methods)
        })
        .fallback(api_not_found)
        .layer(axum::middleware::from_fn(extract::player_session))
        .layer(axum::middleware::from_fn(timeout::deadline));
    let admin = admin_router(&state);
    Router::new()
        .nest("/api/v1/admin", admin)
        .nest("/api/v1", api)
        .route("/api", get(api_not_found))
        .route("/api/{*rest}", get(api_not_found).post(api_not_found))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/icons/{file}", get(assets::icon))
        .fallback(assets::serve)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(headers::harden))
        .layer(axum::middleware::from_fn(request_id::assign))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn api_not_found() -> ApiError {
    error::RequestError::NoSuchEndpoint.into()
}

/// Runs a synchronous service call (blocking store work) off the async runtime.
pub async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}
