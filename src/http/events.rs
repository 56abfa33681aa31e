//! The admin portal's live feed, `GET /api/v1/admin/events` (Server-Sent Events), and the
//! rule every admin event stream follows: it ends when the session that opened it ends.
//!
//! The feed is the service notices ([`crate::service::events`], job changes included),
//! each with an id. A new connection opens with `event: resync` (a screen refetches what it
//! shows). A browser that reconnects sends the last id it heard as `Last-Event-ID` and gets
//! the notices it missed instead, or a `resync` when they are no longer kept (or the server
//! restarted). A listener that falls behind gets a `resync` instead of being dropped.

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
use crate::service::events::{EventId, Numbered, Start};

/// How often an open stream checks that its session still holds (logout, expiry, a
/// password reset end it within this time).
pub const SESSION_CHECK: Duration = Duration::from_secs(1);
/// How long a browser waits before reconnecting a dropped stream (`retry:`).
const RETRY: Duration = Duration::from_secs(1);
/// The header in which a reconnecting `EventSource` names the last id it heard.
const LAST_EVENT_ID: &str = "last-event-id";

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
    /// Refetch: what the listener has seen is the state as of this id.
    Resync(EventId),
}

/// `GET /api/v1/admin/events`: every change an admin screen shows, as Server-Sent Events
/// (`resync`, `drawings`, `reviewed`, `threshold`, `model_activated`, `shapes`, `job`),
/// until the session ends; after `Last-Event-ID`, what was missed first.
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let last = headers.get(LAST_EVENT_ID).and_then(|v| v.to_str().ok());
    let (start, receiver) = state.events.resume(last);
    let first: Vec<Item> = match start {
        Start::Resync(id) => vec![Item::Resync(id)],
        Start::Replay(missed) => missed.into_iter().map(Item::Notice).collect(),
    };
    let events = state.events.clone();
    let notices = stream::unfold(receiver, move |mut receiver| {
        let events = events.clone();
        async move {
            let item = match receiver.recv().await {
                Ok(notice) => Item::Notice(notice),
                // Fallen behind: start afresh from now, so ids never go backwards.
                Err(RecvError::Lagged(_)) => {
                    let (now, fresh) = events.subscribe_now();
                    receiver = fresh;
                    Item::Resync(now)
                }
                Err(RecvError::Closed) => return None,
            };
            Some((item, receiver))
        }
    });
    let feed = stream::iter(first).chain(notices).map(|item| Ok(sse(item)));
    Ok(Sse::new(until_session_ends(&state, &headers, feed)).keep_alive(KeepAlive::default()))
}

fn sse(item: Item) -> Event {
    match item {
        Item::Resync(id) => Event::default()
            .id(id.to_string())
            .event("resync")
            .retry(RETRY)
            .data("{}"),
        Item::Notice(Numbered { id, event }) => {
            let json = serde_json::to_value(&event).unwrap_or_default();
            let name = json["type"].as_str().unwrap_or("notice").to_owned();
            Event::default()
                .id(id.to_string())
                .event(name)
                .json_data(json)
                .unwrap_or_default()
        }
    }
}
