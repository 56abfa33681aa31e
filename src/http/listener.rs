//! The edge between the network and the application: the descriptor budget, the cap on
//! connections and the connection timeouts, so that a crowd or a hostile client is held
//! here and the stores never see `EMFILE`.
//!
//! At start [`DescriptorBudget::raise`] lifts the soft `RLIMIT_NOFILE` to the hard limit
//! and splits it: a reserve for the stores, models, backups and imports, a few slots to
//! refuse connections cleanly, and the rest for clients. [`serve`] is the accept loop: it
//! takes a slot *before* it accepts, so a connection past the cap waits in the listen
//! backlog; while refusal slots remain it is accepted and answered `503` with
//! `Retry-After` at once (`connections_refused` in `/metrics`). An accept that fails for
//! lack of descriptors is counted (`accept_errors{code="emfile"}`), waited out and never
//! reaches a store, so it cannot open the storage breaker.
//!
//! Timeouts (see [`EdgeLimits`]): hyper's header-read timer runs whenever a connection
//! waits for a request head (just accepted, or idle between requests on a kept-alive
//! one), so one limit drops both a client trickling its headers and an idle keep-alive
//! connection. A request body must keep coming: a pause between its chunks longer than the
//! body timeout ends the request (imports, which stream whole files, get a longer pause).
//! Responses are not cut, so event streams and exports run as long as they need; a
//! connection busy with one is not idle. axum's own `serve` has none of this: it sleeps and
//! retries on accept errors, has no header timeout and no cap.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use super::error::ApiError;
use crate::telemetry::Metrics;

/// How long a connection may take to send a request head, counted from when it starts
/// waiting for one (accepted, or idle after a request): the header-read and the idle
/// keep-alive timeout.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest pause between the chunks of a request body.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest pause between the chunks of an import upload (a whole file from a slow laptop).
pub const UPLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a refused connection may take to send the request its `503` answers.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a graceful stop waits for open connections before dropping them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the accept loop rests after running out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How often, at most, a failing accept is logged.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(5);
/// Fewest descriptors kept back for the stores, models, backups and imports.
const MIN_RESERVE: u64 = 128;
/// Most descriptors kept back (a large limit does not need a large reserve).
const MAX_RESERVE: u64 = 1024;
/// Most refusal slots.
const MAX_REFUSALS: u64 = 256;
/// Most client connections by default, however large the descriptor limit: each costs
/// buffers and a task.
const MAX_DEFAULT_CONNECTIONS: u64 = 65_536;
/// Path prefix of the one route that streams whole files in (see [`UPLOAD_IDLE_TIMEOUT`]).
const UPLOAD_PATH: &str = "/api/v1/admin/import";

/// The limits the edge enforces; [`EdgeLimits::default`] for a server, shorter timeouts
/// in tests.
#[derive(Debug, Clone, Copy)]
pub struct EdgeLimits {
    /// Most connections served at once; `None`: what the descriptor budget allows.
    pub max_connections: Option<usize>,
    /// See [`HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// See [`BODY_IDLE_TIMEOUT`].
    pub body_idle_timeout: Duration,
    /// See [`UPLOAD_IDLE_TIMEOUT`].
    pub upload_idle_timeout: Duration,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            max_connections: None,
            header_timeout: HEADER_TIMEOUT,
            body_idle_timeout: BODY_IDLE_TIMEOUT,
            upload_idle_timeout: UPLOAD_IDLE_TIMEOUT,
        }
    }
}

/// How the process's descriptors are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorBudget {
    /// The soft `RLIMIT_NOFILE` in force (after raising it).
    pub limit: u64,
    /// Kept back for the stores, models, backups and imports.
    pub reserve: u64,
    /// Connections accepted only to be answered `503` while the cap is reached.
    pub refusals: u64,
    /// Most connections served at once.
    pub connections: u64,
}

impl DescriptorBudget {
    /// Raises the soft descriptor limit to the hard one and shares it out; `wanted` is
    /// `--max-connections`, cut to what the budget allows. Without a readable limit (not
    /// Unix) it assumes 1,024, the common default.
    pub fn raise(wanted: Option<usize>) -> Self {
        let limit = match raise_nofile_limit() {
            Ok(limit) => limit,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read or raise the descriptor limit; assuming 1024");
                1024
            }
        };
        let budget = Self::for_limit(limit, wanted.map(|n| n as u64));
        if let Some(wanted) = wanted {
            if (wanted as u64) > budget.connections {
                tracing::warn!(
                    wanted,
                    allowed = budget.connections,
                    descriptor_limit = limit,
                    "--max-connections is more than the descriptor limit allows; raise the hard limit (ulimit -Hn) to serve more"
                );
            }
        }
        budget
    }

    /// The split for a descriptor limit of `limit`: a reserve of an eighth (128 to 1,024),
    /// refusal slots of a thirty-second (16 to 256), the rest for clients (at least 16,
    /// at most `wanted` or 65,536).
    pub fn for_limit(limit: u64, wanted: Option<u64>) -> Self {
        let reserve = (limit / 8).clamp(MIN_RESERVE, MAX_RESERVE);
        let refusals = (limit / 32).clamp(16, MAX_REFUSALS);
        let room = limit.saturating_sub(reserve + refusals).max(16);
        let connections = room.min(wanted.unwrap_or(MAX_DEFAULT_CONNECTIONS)).max(1);
        Self {
            limit,
            reserve,
            refusals,
            connections,
        }
    }
}

/// Lifts the soft `RLIMIT_NOFILE` to the hard limit; answers the soft limit now in force.
///
/// Through `libc` (already in the build through tokio and others): two plain system calls
/// do not earn a crate of their own.
#[cfg(unix)]
#[allow(unsafe_code)]
fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut limits = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limits) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limits.rlim_cur < limits.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limits.rlim_max,
            rlim_max: limits.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limits.rlim_cur = limits.rlim_max;
        } else {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "could not raise the soft descriptor limit to the hard one"
            );
        }
    }
    // rlim_t is u64 on Linux but not on every Unix.
    #[allow(clippy::useless_conversion)]
    let soft = u64::try_from(limits.rlim_cur).unwrap_or(u64::MAX);
    Ok(soft)
}

#[cfg(not(unix))]
fn raise_nofile_limit() -> std::io::Result<u64> {
    Err(std::io::Error::other("no descriptor limits on this system"))
}

/// Serves `app` on `listener` within `budget` and `limits` until `shutdown` resolves, then
/// stops accepting, lets open connections finish their requests (at most
/// [`DRAIN_TIMEOUT`]) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    budget: DescriptorBudget,
    limits: EdgeLimits,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let slots = usize::try_from(budget.connections).unwrap_or(usize::MAX);
    let spare = usize::try_from(budget.refusals).unwrap_or(usize::MAX);
    let serving = Arc::new(Semaphore::new(slots));
    let refusing = Arc::new(Semaphore::new(spare));
    metrics.connections_limit.set(budget.connections as i64);
    metrics.descriptor_limit.set(budget.limit as i64);
    metrics.descriptor_reserve.set(budget.reserve as i64);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_logged: Option<Instant> = None;
    loop {
        // A slot first, so that a connection past the cap waits in the backlog.
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = take_slot(&serving, &refusing) => slot,
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                let code = accept_error_code(&e);
                metrics
                    .accept_errors
                    .get_or_create(&crate::telemetry::ErrorLabels {
                        code: code.to_owned(),
                    })
                    .inc();
                if last_logged.is_none_or(|at| at.elapsed() >= ACCEPT_LOG_EVERY) {
                    tracing::warn!(error = %e, code, "accepting a connection failed; waiting before the next");
                    last_logged = Some(Instant::now());
                }
                if code != "aborted" {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        // A serving slot may have freed while this one waited to be refused.
        let slot = match slot {
            Slot::Refuse(permit) => match serving.clone().try_acquire_owned() {
                Ok(serve) => {
                    drop(permit);
                    Slot::Serve(serve)
                }
                Err(_) => Slot::Refuse(permit),
            },
            serve => serve,
        };
        let _ = stream.set_nodelay(true);
        match slot {
            Slot::Serve(permit) => {
                let app = app.clone();
                let metrics = metrics.clone();
                let stop = stop_rx.clone();
                tokio::spawn(async move {
                    let _open = OpenConnection::new(&metrics, permit);
                    serve_connection(stream, peer, app, limits, stop).await;
                });
            }
            Slot::Refuse(permit) => {
                metrics.connections_refused.inc();
                tokio::spawn(async move {
                    let _permit = permit;
                    refuse_connection(stream).await;
                });
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(slots).unwrap_or(u32::MAX);
    let refusals = u32::try_from(spare).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let _ = serving.acquire_many(all).await;
        let _ = refusing.acquire_many(refusals).await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = metrics.connections_open.get(),
            "connections still open after {} s; stopping without them",
            DRAIN_TIMEOUT.as_secs()
        );
    }
}

/// A descriptor's worth of room for the next connection.
enum Slot {
    /// Serve it.
    Serve(OwnedSemaphorePermit),
    /// The cap is reached: answer it `503` and close.
    Refuse(OwnedSemaphorePermit),
}

/// A serving slot when one is free, else a refusal slot when one is, else waits for the
/// first of either.
async fn take_slot(serving: &Arc<Semaphore>, refusing: &Arc<Semaphore>) -> Slot {
    if let Ok(permit) = serving.clone().try_acquire_owned() {
        return Slot::Serve(permit);
    }
    if let Ok(permit) = refusing.clone().try_acquire_owned() {
        return Slot::Refuse(permit);
    }
    tokio::select! {
        Ok(permit) = serving.clone().acquire_owned() => Slot::Serve(permit),
        Ok(permit) = refusing.clone().acquire_owned() => Slot::Refuse(permit),
    }
}

/// The label an accept error is counted under.
fn accept_error_code(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        #[cfg(unix)]
        Some(libc::EMFILE) => "emfile",
        #[cfg(unix)]
        Some(libc::ENFILE) => "enfile",
        #[cfg(unix)]
        Some(libc::ENOBUFS | libc::ENOMEM) => "no_memory",
        _ if e.kind() == std::io::ErrorKind::ConnectionAborted => "aborted",
        _ => "other",
    }
}

/// Counts a served connection in `connections_open` while it lives, and holds its slot.
struct OpenConnection<'a> {
    metrics: &'a Metrics,
    _slot: OwnedSemaphorePermit,
}

impl<'a> OpenConnection<'a> {
    fn new(metrics: &'a Metrics, slot: OwnedSemaphorePermit) -> Self {
        metrics.connections_open.inc();
        Self {
            metrics,
            _slot: slot,
        }
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.metrics.connections_open.dec();
    }
}

/// HTTP/1.1 on one connection, with the timeouts of `limits`, until the client or the
/// timeouts close it, or a stop (`stop` turns true) lets its request in flight finish.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: EdgeLimits,
    mut stop: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let idle = if req.uri().path().starts_with(UPLOAD_PATH) {
            limits.upload_idle_timeout
        } else {
            limits.body_idle_timeout
        };
        let req = req.map(|body| Body::new(TimeoutBody::new(idle, body)));
        app.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// Reads the request of a connection past the cap and answers `503` with `Retry-After`
/// and `Connection: close`.
async fn refuse_connection(stream: TcpStream) {
    let service = hyper::service::service_fn(|_req: hyper::Request<Incoming>| async {
        let busy = ApiError::unavailable(
            "server_busy",
            "the server has as many connections as it can serve; please retry",
        );
        Ok::<Response, Infallible>(busy.into_response())
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSE_TIMEOUT)
        .keep_alive(false);
    let _ = tokio::time::timeout(
        REFUSE_TIMEOUT,
        builder.serve_connection(TokioIo::new(stream), service),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_a_reserve_and_refusal_slots_below_the_limit() {
        let small = DescriptorBudget::for_limit(1024, None);
        assert_eq!((small.reserve, small.refusals), (128, 32));
        assert_eq!(small.connections, 1024 - 128 - 32);
        let large = DescriptorBudget::for_limit(1 << 20, None);
        assert_eq!((large.reserve, large.refusals), (1024, 256));
        assert_eq!(large.connections, MAX_DEFAULT_CONNECTIONS);
        let capped = DescriptorBudget::for_limit(1 << 20, Some(100));
        assert_eq!(capped.connections, 100);
        let tiny = DescriptorBudget::for_limit(64, None);
        assert!(tiny.connections >= 1);
        for limit in [256, 1024, 4096, 20_000, 1 << 20] {
            let b = DescriptorBudget::for_limit(limit, None);
            assert!(b.connections + b.refusals + b.reserve <= limit, "{b:?}");
        }
    }

    #[test]
    fn running_out_of_descriptors_is_counted_as_emfile() {
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(accept_error_code(&e), "emfile");
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionAborted);
        assert_eq!(accept_error_code(&e), "aborted");
    }

    #[test]
    fn raising_the_limit_leaves_the_soft_limit_at_the_hard_one() {
        let soft = raise_nofile_limit().unwrap();
        let again = raise_nofile_limit().unwrap();
        assert_eq!(soft, again);
    }
}
