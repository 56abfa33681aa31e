//! The admin portal's live feed, `GET /api/v1/admin/events` (Server-Sent Events), and the
//! rule every admin event stream follows: it ends when the session that opened it ends.
//!
//! The feed merges the service notices ([`crate::service::events`]) with the job queue's
//! own broadcast. It opens with `event: resync` (a screen refetches what it shows, which
//! also covers whatever happened while a browser was reconnecting, `Last-Event-ID` or not);
//! a listener that falls behind gets another `resync` instead of being dropped.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::auth::{cookie, ADMIN_COOKIE};
use super::error::ApiError;
use super::AppState;
use crate::jobs::JobEvent;
use crate::service::events::Numbered;

/// How often an open stream checks that its session still holds (logout, expiry, a
/// password reset end it within this time).
pub const SESSION_CHECK: Duration = Duration::from_secs(1);
/// How long a browser waits before reconnecting a dropped stream (`retry:`).
const RETRY: Duration = Duration::from_secs(1);

/// Ends `events` when the admin session behind `headers` ends. A stream opened with the
/// control token (a command on this machine) lasts as long as the server.
pub fn until_session_ends<S>(
    state: &AppState,
    headers: &HeaderMap,
    events: S,
) -> impl Stream<Item = S::Item> + Send + 'static
where
    S: Stream + Send + 'static,
{
    let token = cookie(headers, ADMIN_COOKIE).map(str::to_owned);
    let accounts = state.accounts.clone();
    let ended = async move {
        let Some(token) = token else {
            return std::future::pending::<()>().await;
        };
        loop {
            tokio::time::sleep(SESSION_CHECK).await;
            let (accounts, token) = (accounts.clone(), token.clone());
            let live = tokio::task::spawn_blocking(move || accounts.is_live(&token)).await;
            match live {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return,
                // A store hiccup is not a logout; ask again next time.
                Ok(Err(e)) => tracing::warn!(error = %e, "event stream: cannot check the session"),
                Err(e) => tracing::warn!(error = %e, "event stream: session check failed"),
            }
        }
    };
    events.take_until(Box::pin(ended))
}

/// One message of the feed before it is an SSE event.
enum Item {
    Notice(Numbered),
    Job(JobEvent),
    Resync,
}

/// `GET /api/v1/admin/events`: every change an admin screen shows, as Server-Sent Events
/// (`resync`, `drawings`, `reviewed`, `threshold`, `model_activated`, `shapes`, `job`),
/// until the session ends.
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let notices = state.events.subscribe();
    let jobs = state.scheduler.subscribe();
    let notices = stream::unfold(notices, |mut receiver| async move {
        let item = match receiver.recv().await {
            Ok(notice) => Item::Notice(notice),
            Err(RecvError::Lagged(_)) => Item::Resync,
            Err(RecvError::Closed) => return None,
        };
        Some((item, receiver))
    });
    let jobs = stream::unfold(jobs, |mut receiver| async move {
        let item = match receiver.recv().await {
            Ok(job) => Item::Job(job),
            Err(RecvError::Lagged(_)) => Item::Resync,
            Err(RecvError::Closed) => return None,
        };
        Some((item, receiver))
    });
    let first = stream::once(async { Item::Resync });
    let feed = first
        .chain(stream::select(notices, jobs))
        .map(|item| Ok(sse(item)));
    Ok(Sse::new(until_session_ends(&state, &headers, feed)).keep_alive(KeepAlive::default()))
}

fn sse(item: Item) -> Event {
    match item {
        Item::Resync => Event::default().event("resync").retry(RETRY).data("{}"),
        Item::Notice(Numbered { id, event }) => {
            let json = serde_json::to_value(&event).unwrap_or_default();
            let name = json["type"].as_str().unwrap_or("notice").to_owned();
            Event::default()
                .id(id.to_string())
                .event(name)
                .json_data(json)
                .unwrap_or_default()
        }
        Item::Job(job) => Event::default()
            .event("job")
            .json_data(&job)
            .unwrap_or_default(),
    }
}
