//! Prometheus metrics, served at `GET /metrics` in the text format.
//!
//! Counters and histograms are updated where things happen (the HTTP middleware, the classify
//! handlers); values that already live elsewhere (group-commit counters, free disk, the job
//! queue) are read when a scrape comes, so nothing is counted twice.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Latency buckets in seconds: 100 µs doubling to about 3.3 s.
const LATENCY_BUCKETS: (f64, f64, u16) = (0.0001, 2.0, 16);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route's template (`/api/v1/drawings/{id}`), never the raw path, to bound cardinality.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassifyLabels {
    pub model_version: String,
    /// `api_key`, `session` or `admin`.
    pub caller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub model_version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabels {
    pub scope: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreakerLabels {
    /// Which breaker (`storage`).
    pub breaker: String,
    /// `closed`, `open` or `half_open`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreakerNameLabels {
    pub breaker: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

fn latency_histogram() -> Histogram {
    let (start, factor, count) = LATENCY_BUCKETS;
    Histogram::new(exponential_buckets(start, factor, count))
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: HistogramFamily<RouteLabels>,
    pub errors: Family<ErrorLabels, Counter>,
    pub classify_requests: Family<ClassifyLabels, Counter>,
    pub classified_drawings: Family<VersionLabels, Counter>,
    pub inference_seconds: HistogramFamily<VersionLabels>,
    pub rate_limited: Family<ScopeLabels, Counter>,
    // Read at scrape time:
    ingest_batches: Counter<u64, AtomicU64>,
    ingest_drawings: Counter<u64, AtomicU64>,
    ingest_syncs: Counter<u64, AtomicU64>,
    drawings_per_commit: Gauge<f64, AtomicU64>,
    queue_depth: Gauge<i64>,
    disk_free_bytes: Gauge<i64>,
    disk_watermark_bytes: Gauge<i64>,
    disk_low: Gauge<i64>,
    breaker_state: Family<BreakerLabels, Gauge<i64>>,
    breaker_opened: Family<BreakerNameLabels, Counter<u64, AtomicU64>>,
    jobs: Family<StatusLabels, Gauge<i64>>,
    running_job_progress: Gauge<f64, AtomicU64>,
    /// Connections the edge holds open now (see [`crate::http::listener`]).
    pub connections_open: Gauge<i64>,
    /// Most connections served at once: the descriptor budget's share for clients.
    pub connections_limit: Gauge<i64>,
    /// The process's descriptor limit after raising it at start.
    pub descriptor_limit: Gauge<i64>,
    /// Descriptors kept back from clients for the stores, models and backups.
    pub descriptor_reserve: Gauge<i64>,
    /// Connections answered `503` at the edge because the cap was reached.
    pub connections_refused: Counter,
    /// Failed accepts (out of descriptors and the like), by kind; never a storage fault.
    pub accept_errors: Family<ErrorLabels, Counter>,
}

/// What a scrape reads from the rest of the server.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub ingest_batches: u64,
    pub ingest_drawings: u64,
    pub ingest_syncs: u64,
    /// Submissions waiting for the group-commit writer right now.
    pub ingest_queue_depth: u64,
    pub disk_free_bytes: Option<u64>,
    /// The free-space watermark below which submissions are refused.
    pub disk_watermark_bytes: Option<u64>,
    /// Whether submissions are being refused for lack of space.
    pub disk_low: Option<bool>,
    /// Circuit breakers: (name, state name, times opened since start).
    pub breakers: Vec<(String, &'static str, u64)>,
    /// Training jobs by status.
    pub jobs: Vec<(String, i64)>,
    /// Fraction done of the running training job, if one runs.
    pub running_job_progress: Option<f64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("doodlebox");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        let request_seconds: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route (ingest: POST /api/v1/drawings)",
            request_seconds.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "errors",
            "Error responses by their error code",
            errors.clone(),
        );
        let classify_requests = Family::<ClassifyLabels, Counter>::default();
        registry.register(
            "classify_requests",
            "Answered classify requests by model version and kind of caller",
            classify_requests.clone(),
        );
        let classified_drawings = Family::<VersionLabels, Counter>::default();
        registry.register(
            "classified_drawings",
            "Drawings classified, by model version (a batch request counts each drawing)",
            classified_drawings.clone(),
        );
        let inference_seconds: HistogramFamily<VersionLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "inference_duration_seconds",
            "Rasterizing and running the model for one request, by model version",
            inference_seconds.clone(),
        );
        let rate_limited = Family::<ScopeLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused with 429, by the limit that refused them",
            rate_limited.clone(),
        );
        let ingest_batches = Counter::<u64, AtomicU64>::default();
        registry.register(
            "ingest_group_commits",
            "Group commits of the drawing writer",
            ingest_batches.clone(),
        );
        let ingest_drawings = Counter::<u64, AtomicU64>::default();
        registry.register(
            "ingest_drawings",
            "Drawings durably stored by the group-commit writer",
            ingest_drawings.clone(),
        );
        let ingest_syncs = Counter::<u64, AtomicU64>::default();
        registry.register(
            "ingest_syncs",
            "Syncs to stable storage issued by the drawing writer",
            ingest_syncs.clone(),
        );
        let drawings_per_commit = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "ingest_drawings_per_group_commit",
            "Mean drawings per group commit since start",
            drawings_per_commit.clone(),
        );
        let queue_depth = Gauge::<i64>::default();
        registry.register(
            "ingest_queue_depth",
            "Submissions waiting for the group-commit writer",
            queue_depth.clone(),
        );
        let disk_free_bytes = Gauge::<i64>::default();
        registry.register(
            "disk_free_bytes",
            "Free space on the data directory's file system",
            disk_free_bytes.clone(),
        );
        let disk_watermark_bytes = Gauge::<i64>::default();
        registry.register(
            "disk_watermark_bytes",
            "Free space below which new drawings are refused with 507",
            disk_watermark_bytes.clone(),
        );
        let disk_low = Gauge::<i64>::default();
        registry.register(
            "disk_low",
            "1 while free space is below the watermark and drawings are refused, else 0",
            disk_low.clone(),
        );
        let breaker_state = Family::<BreakerLabels, Gauge<i64>>::default();
        registry.register(
            "circuit_breaker_state",
            "1 for the state each circuit breaker is in (closed, open, half_open), 0 for the others",
            breaker_state.clone(),
        );
        let breaker_opened = Family::<BreakerNameLabels, Counter<u64, AtomicU64>>::default();
        registry.register(
            "circuit_breaker_opened",
            "Times each circuit breaker has opened since start",
            breaker_opened.clone(),
        );
        let jobs = Family::<StatusLabels, Gauge<i64>>::default();
        registry.register(
            "training_jobs",
            "Training jobs by status (queue depth: pending and queued)",
            jobs.clone(),
        );
        let running_job_progress = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "training_job_progress",
            "Fraction done of the running training job (0 when none runs)",
            running_job_progress.clone(),
        );
        let connections_open = Gauge::<i64>::default();
        registry.register(
            "connections_open",
            "Client connections held open now",
            connections_open.clone(),
        );
        let connections_limit = Gauge::<i64>::default();
        registry.register(
            "connections_limit",
            "Most client connections served at once (the descriptor budget less the reserve)",
            connections_limit.clone(),
        );
        let descriptor_limit = Gauge::<i64>::default();
        registry.register(
            "descriptor_limit",
            "The process's open-file limit (RLIMIT_NOFILE, raised to the hard limit at start)",
            descriptor_limit.clone(),
        );
        let descriptor_reserve = Gauge::<i64>::default();
        registry.register(
            "descriptor_reserve",
            "Descriptors kept back from clients for the stores, models and backups",
            descriptor_reserve.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections answered 503 with Retry-After at the edge because the cap was reached",
            connections_refused.clone(),
        );
        let accept_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "accept_errors",
            "Failed accepts by error kind (out of descriptors: emfile); the stores never see them",
            accept_errors.clone(),
        );
        Self {
            registry,
            requests,
            request_seconds,
            errors,
            classify_requests,
            classified_drawings,
            inference_seconds,
            rate_limited,
            ingest_batches,
            ingest_drawings,
            ingest_syncs,
            queue_depth,
            drawings_per_commit,
            disk_free_bytes,
            disk_watermark_bytes,
            disk_low,
            breaker_state,
            breaker_opened,
            jobs,
            running_job_progress,
            connections_open,
            connections_limit,
            descriptor_limit,
            descriptor_reserve,
            connections_refused,
            accept_errors,
        }
    }

    /// One answered HTTP request.
    pub fn record_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// One answered classify request of `drawings` drawings.
    pub fn record_classify(&self, version: &str, caller: &str, drawings: usize, seconds: f64) {
        self.classify_requests
            .get_or_create(&ClassifyLabels {
                model_version: version.to_owned(),
                caller: caller.to_owned(),
            })
            .inc();
        let version = VersionLabels {
            model_version: version.to_owned(),
        };
        self.classified_drawings
            .get_or_create(&version)
            .inc_by(drawings as u64);
        self.inference_seconds
            .get_or_create(&version)
            .observe(seconds);
    }

    /// The Prometheus text exposition, with `snapshot`'s values.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        set_counter(&self.ingest_batches, snapshot.ingest_batches);
        set_counter(&self.ingest_drawings, snapshot.ingest_drawings);
        set_counter(&self.ingest_syncs, snapshot.ingest_syncs);
        self.queue_depth.set(snapshot.ingest_queue_depth as i64);
        let per_commit = if snapshot.ingest_batches == 0 {
            0.0
        } else {
            snapshot.ingest_drawings as f64 / snapshot.ingest_batches as f64
        };
        self.drawings_per_commit.set(per_commit);
        if let Some(free) = snapshot.disk_free_bytes {
            self.disk_free_bytes
                .set(i64::try_from(free).unwrap_or(i64::MAX));
        }
        if let Some(watermark) = snapshot.disk_watermark_bytes {
            self.disk_watermark_bytes
                .set(i64::try_from(watermark).unwrap_or(i64::MAX));
        }
        if let Some(low) = snapshot.disk_low {
            self.disk_low.set(i64::from(low));
        }
        for (name, current, opened) in &snapshot.breakers {
            for state in ["closed", "open", "half_open"] {
                self.breaker_state
                    .get_or_create(&BreakerLabels {
                        breaker: name.clone(),
                        state: state.to_owned(),
                    })
                    .set(i64::from(state == *current));
            }
            let counter = self.breaker_opened.get_or_create(&BreakerNameLabels {
                breaker: name.clone(),
            });
            set_counter(&counter, *opened);
        }
        self.jobs.clear();
        for (status, count) in &snapshot.jobs {
            self.jobs
                .get_or_create(&StatusLabels {
                    status: status.clone(),
                })
                .set(*count);
        }
        self.running_job_progress
            .set(snapshot.running_job_progress.unwrap_or(0.0));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Moves a monotonic counter up to `value` (values read from elsewhere only grow).
fn set_counter(counter: &Counter<u64, AtomicU64>, value: u64) {
    let current = counter.inner().load(Ordering::Relaxed);
    if value > current {
        counter.inc_by(value - current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_shows_requests_classifications_and_snapshot_values() {
        let metrics = Metrics::new();
        metrics.record_request("POST", "/api/v1/classify", 200, 0.002);
        metrics.record_classify("v3", "api_key", 4, 0.0015);
        metrics.record_classify("v3", "session", 1, 0.0008);
        let text = metrics.render(&Snapshot {
            ingest_batches: 4,
            ingest_drawings: 10,
            ingest_syncs: 8,
            ingest_queue_depth: 3,
            disk_free_bytes: Some(1 << 30),
            disk_watermark_bytes: Some(1 << 20),
            disk_low: Some(true),
            breakers: vec![("storage".into(), "half_open", 2)],
            jobs: vec![("queued".into(), 2)],
            running_job_progress: Some(0.25),
        });
        for expected in [
            r#"doodlebox_http_requests_total{method="POST",route="/api/v1/classify",status="200"} 1"#,
            r#"doodlebox_classify_requests_total{model_version="v3",caller="api_key"} 1"#,
            r#"doodlebox_classified_drawings_total{model_version="v3"} 5"#,
            r#"doodlebox_inference_duration_seconds_count{model_version="v3"} 2"#,
            "doodlebox_ingest_drawings_total 10",
            "doodlebox_ingest_drawings_per_group_commit 2.5",
            "doodlebox_ingest_queue_depth 3",
            "doodlebox_disk_free_bytes 1073741824",
            "doodlebox_disk_watermark_bytes 1048576",
            "doodlebox_disk_low 1",
            r#"doodlebox_circuit_breaker_state{breaker="storage",state="half_open"} 1"#,
            r#"doodlebox_circuit_breaker_state{breaker="storage",state="open"} 0"#,
            r#"doodlebox_circuit_breaker_opened_total{breaker="storage"} 2"#,
            r#"doodlebox_training_jobs{status="queued"} 2"#,
            "doodlebox_training_job_progress 0.25",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
    }

    #[test]
    fn counters_read_from_elsewhere_never_go_back() {
        let metrics = Metrics::new();
        let mut snapshot = Snapshot {
            ingest_drawings: 10,
            ..Snapshot::default()
        };
        metrics.render(&snapshot);
        snapshot.ingest_drawings = 7;
        let text = metrics.render(&snapshot);
        assert!(
            text.contains("doodlebox_ingest_drawings_total 10"),
            "{text}"
        );
    }
}
