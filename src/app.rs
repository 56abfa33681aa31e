//! The running application: opens the stores, reconciles them, starts the group-commit
//! writer, binds the listener, and serves until told to stop.
//!
//! On a full disk it still comes up, degraded: it releases the emergency reserve (see
//! [`crate::store::disk`]) so that the stores can open, and the free-space watch refuses
//! new drawings (`507`) while reads, classify and the admin portal keep working. Writes
//! resume by themselves once space returns; no restart, no crash loop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::control::Control;
use crate::http::listener::{DescriptorBudget, EdgeLimits};
use crate::http::{router, AppState};
use crate::jobs::{JobContext, Scheduler};
use crate::service::accounts::Accounts;
use crate::service::limits::Limiters;
use crate::service::prompter::Prompter;
use crate::service::quality::QualityService;
use crate::service::serving::ModelServer;
use crate::store::disk::DiskWatch;
use crate::store::keys::KeyAuthenticator;
use crate::store::reconcile::{last_id, reconcile, ReconcileReport};
use crate::store::retry::retry_idempotent;
use crate::store::{now_ms, Ingest, IngestOptions, StoreError, Stores};
use crate::telemetry::Metrics;

/// Idempotency records are kept at least this long (the API promises 24 h).
const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(48 * 3600);
/// How often API keys' last-use times are written.
const KEY_USE_FLUSH_EVERY: Duration = Duration::from_secs(5);
/// How often old idempotency records, and drawings deleted long ago, are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Error)]
pub enum AppError {
    #[error("cannot open the data directory: {0} (is another Doodlebox running on it?)")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// A built application, bound but not yet serving.
pub struct App {
    listener: TcpListener,
    state: AppState,
    /// How the descriptor limit is shared out (connections get what the stores leave).
    budget: DescriptorBudget,
    /// The connection cap and timeouts.
    edge: EdgeLimits,
    /// Where the data lives (the control file is removed from it on a clean stop).
    data_dir: std::path::PathBuf,
    /// What start-up reconciliation found, for the banner and tests.
    pub reconcile_report: ReconcileReport,
    /// The single-use link that creates the first admin, when no admin exists yet.
    setup_link: Option<String>,
}

impl App {
    pub async fn build(config: Config) -> Result<Self, AppError> {
        // Before the stores open, so that everything the process opens fits the budget.
        let budget = DescriptorBudget::raise(config.edge.max_connections);
        tracing::info!(
            descriptor_limit = budget.limit,
            reserve = budget.reserve,
            max_connections = budget.connections,
            "descriptor budget"
        );
        let data_dir = config.data_dir.clone();
        let min_free = config.min_free;
        let database_url = config.database_url.clone();
        let (stores, report, last, disk) =
            tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                std::fs::create_dir_all(&data_dir)?;
                let disk = Arc::new(DiskWatch::start(&data_dir, min_free)?);
                if disk.is_low() {
                    let status = disk.status();
                    tracing::warn!(
                        free_bytes = status.free_bytes,
                        watermark_bytes = status.watermark_bytes,
                        "starting on a nearly full disk: degraded, new drawings are refused until space is freed"
                    );
                    disk.release_reserve()?;
                }
                if let Some(url) = database_url {
                    // Cluster mode: no reconciliation. Rows and records are each committed
                    // by PostgreSQL, a drawing is acknowledged only once both are, and
                    // another replica may be between the two right now: a record without
                    // its row is an unacknowledged drawing, not one to rebuild.
                    let stores = Arc::new(Stores::open_postgres(&url)?);
                    let last = stores.metadata.last_drawing_id()?;
                    stores.metadata.shapes()?; // warm the shape cache
                    disk.sample();
                    return Ok((stores, ReconcileReport::default(), last, disk));
                }
                let stores = match Stores::open(&data_dir) {
                    Err(e) if e.is_disk_full() && disk.release_reserve()? > 0 => {
                        Stores::open(&data_dir)?
                    }
                    opened => opened?,
                };
                let stores = Arc::new(stores);
                let report = reconcile(&stores)?;
                let last = last_id(&stores)?;
                stores.metadata.shapes()?; // warm the shape cache
                disk.sample();
                Ok((stores, report, last, disk))
            })
            .await
            .map_err(std::io::Error::other)??;
        if report.rebuilt > 0 {
            tracing::warn!(
                rebuilt = report.rebuilt,
                "rebuilt metadata rows from stroke records after an unclean stop"
            );
        }
        for problem in report.unreadable.iter().chain(&report.missing_strokes) {
            tracing::error!(%problem, "reconciliation found a problem it cannot repair");
        }
        let ingest = Arc::new(Ingest::start_with(
            stores.clone(),
            last,
            IngestOptions {
                disk: Some(disk.clone()),
                faults: config.faults,
            },
        )?);
        let device = config.device.resolve()?;
        let context = JobContext::new(stores.clone(), &config.data_dir, Some(ingest.clone()))
            .on_device(device);
        let models = {
            let stores = stores.clone();
            let micro_batch = config.classify_micro_batch;
            let models_dir = crate::data_dir::DataDir::new(&config.data_dir).models();
            tokio::task::spawn_blocking(move || ModelServer::start(stores, models_dir, micro_batch))
                .await
                .map_err(std::io::Error::other)??
        };
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| AppError::Bind {
                addr: config.bind,
                source,
            })?;
        let bound = listener.local_addr()?;
        let quality = {
            let stores = stores.clone();
            let models = models.clone();
            let capacity = config.quality_queue;
            tokio::task::spawn_blocking(move || QualityService::start(stores, models, capacity))
                .await
                .map_err(std::io::Error::other)??
        };
        // The queue starts once everything its jobs use is there.
        let _ = context.quality.set(quality.clone());
        let events = crate::service::events::Events::new();
        quality.publish_to(events.clone());
        {
            // Activations and rollbacks both end in the inference thread's swap.
            let events = events.clone();
            models.on_activate(Box::new(move |version| {
                events.publish(crate::service::events::AdminEvent::ModelActivated {
                    version: version.to_owned(),
                })
            }));
        }
        // Blocking store calls (crash recovery of the queue, enqueues): off the async
        // runtime, where the PostgreSQL backend's blocking client must not run.
        let scheduler = {
            let (quality, models) = (quality.clone(), models.clone());
            let starter_model = config.starter_model;
            tokio::task::spawn_blocking(move || -> Result<_, AppError> {
                let scheduler = Arc::new(Scheduler::start(context)?);
                queue_rescores(&scheduler, &quality)?;
                if starter_model {
                    start_starter_model(&scheduler, &models)?;
                }
                Ok(scheduler)
            })
            .await
            .map_err(std::io::Error::other)??
        };
        let prompter = Arc::new(Prompter::new(stores.clone()));
        {
            // A new model changes the per-class accuracies the prompts weigh.
            let prompter = prompter.clone();
            models.on_activate(Box::new(move |_| prompter.forget()));
        }
        let models = Arc::new(models);
        let control = Control::new(bound);
        match control.write(&config.data_dir) {
            // Degraded on a full disk: serve anyway; only local commands cannot find us.
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => tracing::warn!(
                error = %e,
                "could not write the control file: local commands cannot reach this server until space is freed"
            ),
            written => written?,
        }
        let key_auth = Arc::new(KeyAuthenticator::new(stores.keys.clone()));
        let accounts = Arc::new(Accounts::new(stores.admins.clone()));
        let setup_token = {
            let accounts = accounts.clone();
            tokio::task::spawn_blocking(move || accounts.issue_setup_token())
                .await
                .map_err(std::io::Error::other)?
                .map_err(std::io::Error::other)?
        };
        let lan_urls = crate::lan::lan_urls(bound);
        let setup_link = setup_token.map(|token| {
            let base = lan_urls
                .first()
                .cloned()
                .unwrap_or_else(|| control.url.clone());
            format!("{}/admin/setup?token={token}", base.trim_end_matches('/'))
        });
        let state = AppState {
            stores,
            ingest,
            lan_urls: Arc::new(lan_urls),
            scheduler,
            models,
            control: Arc::new(control),
            limits: Arc::new(Limiters::new(config.rate_limits)),
            key_auth,
            metrics: Arc::new(Metrics::new()),
            data_dir: Arc::new(config.data_dir.clone()),
            reconcile_report: Arc::new(report.clone()),
            accounts,
            thumbnails: Arc::new(crate::service::thumbnails::ThumbnailCache::new(
                crate::service::thumbnails::CACHE_BYTES,
            )),
            purge_after_days: config.purge_after_days,
            backup_root: Arc::new(config.backup_root()),
            quality,
            prompter,
            events,
        };
        Ok(Self {
            listener,
            state,
            budget,
            edge: config.edge,
            data_dir: config.data_dir,
            reconcile_report: report,
            setup_link,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has a local address.
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn lan_urls(&self) -> &[String] {
        &self.state.lan_urls
    }

    /// The admin bearer token of this run (see [`crate::control`]); tests use it.
    pub fn control(&self) -> &Control {
        &self.state.control
    }

    /// The link that creates the first admin account (single use, 30 minutes), when the data
    /// directory has no admin yet.
    pub fn setup_link(&self) -> Option<&str> {
        self.setup_link.as_deref()
    }

    /// The group-commit counters (for benchmarks).
    pub fn ingest_stats(&self) -> Arc<crate::store::ingest::IngestStats> {
        self.state.ingest.stats.clone()
    }

    /// The model server (for benchmarks: the ingest bench classifies inside a request with
    /// it, to compare with the background scorer).
    pub fn models(&self) -> crate::service::serving::ModelServer {
        (*self.state.models).clone()
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests and lets the
    /// group-commit writer finish its queue.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let purge = tokio::spawn(purge_idempotency_forever(self.state.clone()));
        let purge_deleted = tokio::spawn(purge_deleted_forever(self.state.clone()));
        let key_uses = tokio::spawn(flush_key_uses_forever(self.state.key_auth.clone()));
        let ingest = self.state.ingest.clone();
        let scheduler = self.state.scheduler.clone();
        let quality = self.state.quality.clone();
        let control = self.state.control.clone();
        let key_auth = self.state.key_auth.clone();
        let data_dir = self.data_dir.clone();
        let metrics = self.state.metrics.clone();
        crate::http::listener::serve(
            self.listener,
            router(self.state),
            self.budget,
            self.edge,
            metrics,
            shutdown,
        )
        .await;
        purge.abort();
        purge_deleted.abort();
        key_uses.abort();
        tokio::task::spawn_blocking(move || {
            // Jobs first: a running import still needs the writer to stop cleanly (and be
            // requeued uncharged) rather than fail on a closed one.
            scheduler.shutdown();
            ingest.shutdown();
            quality.shutdown();
            control.remove_if_ours(&data_dir);
            if let Err(e) = key_auth.flush_last_used() {
                tracing::warn!(error = %e, "could not record when API keys were last used");
            }
        })
        .await
        .map_err(std::io::Error::other)?;
        Ok(())
    }

    /// How the descriptor limit is shared out (the banner prints it).
    pub fn descriptor_budget(&self) -> DescriptorBudget {
        self.budget
    }
}

/// Rescore walks run as `rescore` jobs: the one that is running now (resumed, or started at
/// boot for a model activated while no server ran) and every one an activation starts.
fn queue_rescores(scheduler: &Arc<Scheduler>, quality: &QualityService) -> Result<(), StoreError> {
    // Weak: the queue's context holds the quality service, which holds this hook.
    let queue = Arc::downgrade(scheduler);
    quality.when_walk_starts(Box::new(move |progress| {
        let Some(queue) = queue.upgrade() else {
            return;
        };
        let config = crate::jobs::rescore::config(progress);
        if let Err(e) = queue.enqueue_kind(crate::store::JobKind::Rescore, &config) {
            tracing::warn!(error = %e, "could not queue the rescore; it runs at the next start");
        }
    }));
    if quality.walk_running() {
        let config = crate::jobs::rescore::config(&quality.progress());
        scheduler.enqueue_kind(crate::store::JobKind::Rescore, &config)?;
    }
    Ok(())
}

/// On a data directory with no model and no training job at all, queues a starter model
/// (synthetic doodles of the five default shapes) and activates it when it is ready, unless
/// someone activated another model first. A fresh install thus guesses within a minute.
fn start_starter_model(scheduler: &Arc<Scheduler>, models: &ModelServer) -> Result<(), StoreError> {
    let stores = &scheduler.context().stores;
    let trained = stores.jobs.jobs_of_kind(crate::store::JobKind::Train, 1)?;
    if !stores.models.models()?.is_empty() || !trained.is_empty() {
        return Ok(());
    }
    let mut events = scheduler.subscribe();
    let (job, _) = scheduler.enqueue(&crate::jobs::JobConfig::starter())?;
    tracing::info!(
        job = job.id,
        "training a starter model on synthetic doodles"
    );
    let stores = stores.clone();
    let activate = models.activator();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if event.id != job.id || !event.status.is_finished() {
                continue;
            }
            let stores = stores.clone();
            let activate = activate.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let finished = stores.jobs.job(job.id).ok().flatten();
                let version = finished.and_then(|j| j.model_version);
                let nothing_active = matches!(stores.models.active_model(), Ok(None));
                if let (Some(version), true) = (version, nothing_active) {
                    match activate(&version) {
                        Ok(()) => {
                            tracing::info!(%version, "starter model active: the game now guesses")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "could not activate the starter model")
                        }
                    }
                }
            })
            .await;
            break;
        }
    });
    Ok(())
}

async fn purge_idempotency_forever(state: AppState) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    loop {
        tick.tick().await;
        let metadata = state.stores.metadata.clone();
        let cutoff = now_ms().saturating_sub(IDEMPOTENCY_RETENTION.as_millis() as u64);
        let purge = move || retry_idempotent(|| metadata.purge_idempotency(cutoff));
        match tokio::task::spawn_blocking(purge).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(purged = n, "forgot old idempotency keys"),
            Ok(Err(e)) => tracing::warn!(error = %e, "purging idempotency keys failed"),
            _ => {}
        }
        let accounts = state.accounts.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || accounts.purge_sessions()).await {
            tracing::warn!(error = %e, "purging expired admin sessions failed");
        }
    }
}

/// Purges, every hour, drawings soft-deleted longer ago than `--purge-after-days`.
async fn purge_deleted_forever(state: AppState) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    loop {
        tick.tick().await;
        let stores = state.stores.clone();
        let cutoff = crate::http::purge_cutoff(state.purge_after_days);
        match tokio::task::spawn_blocking(move || {
            crate::store::review::purge_deleted(&stores, cutoff)
        })
        .await
        {
            Ok(Ok(n)) if n > 0 => tracing::info!(purged = n, "purged long-deleted drawings"),
            Ok(Err(e)) => tracing::warn!(error = %e, "purging deleted drawings failed"),
            _ => {}
        }
    }
}

/// Writes API keys' last-use times every few seconds (one write for many requests).
async fn flush_key_uses_forever(key_auth: Arc<KeyAuthenticator>) {
    let mut tick = tokio::time::interval(KEY_USE_FLUSH_EVERY);
    loop {
        tick.tick().await;
        let key_auth = key_auth.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || key_auth.flush_last_used()).await {
            tracing::warn!(error = %e, "could not record when API keys were last used");
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
