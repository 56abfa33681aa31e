//! The cluster's change channel on PostgreSQL: `NOTIFY` to tell every replica of a change,
//! and one dedicated `LISTEN` connection per replica, on a thread of its own (the blocking
//! client never runs on the async runtime), to hear them. What the notices mean is
//! `service::cluster`'s business; here they are text.
//!
//! The listener also ticks every `every` even while notices keep arriving, which is the
//! polling fallback: a notice missed while the connection was down (PostgreSQL keeps none
//! for a listener that is not connected) is made up for by re-reading the state at the
//! next tick. A lost connection is opened again after `every`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::NoTls;

use super::PgStore;
use crate::store::StoreError;

/// The one channel every replica listens on.
pub const CHANNEL: &str = "doodlebox_changes";
/// The largest notice PostgreSQL carries (its limit is 8000 bytes); longer ones are not
/// sent.
pub const MAX_NOTICE: usize = 7900;

/// What the listener hands its handler.
#[derive(Debug)]
pub enum Heard {
    /// A notice's text, sent by some replica (this one included).
    Notice(String),
    /// Time to re-read the state: the polling tick, or a (re)connection after which notices
    /// sent meanwhile are lost.
    Tick,
}

/// Sends and hears cluster-wide change notices on the database.
pub struct Feed {
    /// Notices are sent on a pooled connection.
    store: Arc<PgStore>,
    /// The listener opens its own connection with it.
    url: String,
}

impl Feed {
    pub(crate) fn new(store: Arc<PgStore>, url: &str) -> Self {
        Self {
            store,
            url: url.to_owned(),
        }
    }

    /// Sends `notice` to every replica listening (delivered once the statement commits).
    /// Blocking.
    pub fn notify(&self, notice: &str) -> Result<(), StoreError> {
        if notice.len() > MAX_NOTICE {
            return Err(StoreError::Config(format!(
                "a change notice of {} bytes is over PostgreSQL's limit",
                notice.len()
            )));
        }
        self.store
            .conn()?
            .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &notice])?;
        Ok(())
    }

    /// Reloads what the store keeps in memory that another replica may have changed (shapes,
    /// blocked players). Blocking.
    pub fn refresh(&self) -> Result<(), StoreError> {
        self.store.refresh()
    }

    /// Starts the listening thread: `handler` hears every notice and a [`Heard::Tick`] at
    /// least every `every`; the thread ends when the handler answers `false`.
    pub fn listen(
        &self,
        every: Duration,
        mut handler: impl FnMut(Heard) -> bool + Send + 'static,
    ) -> std::io::Result<()> {
        let url = self.url.clone();
        std::thread::Builder::new()
            .name("pg-listen".into())
            .spawn(move || loop {
                let mut client = match connect(&url) {
                    Ok(client) => client,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for changes by other replicas; polling");
                        std::thread::sleep(every);
                        if handler(Heard::Tick) {
                            continue;
                        }
                        return;
                    }
                };
                // Notices sent while not listening are gone: catch up first.
                if !handler(Heard::Tick) {
                    return;
                }
                let mut ticked = Instant::now();
                loop {
                    let wait = every.saturating_sub(ticked.elapsed());
                    let mut notifications = client.notifications();
                    let next = notifications.timeout_iter(wait).next();
                    let heard = match next {
                        Ok(Some(notification)) => {
                            Heard::Notice(notification.payload().to_owned())
                        }
                        Ok(None) => Heard::Tick,
                        Err(e) => {
                            tracing::warn!(error = %e, "the change listener lost its connection; reconnecting");
                            break;
                        }
                    };
                    if matches!(heard, Heard::Tick) {
                        ticked = Instant::now();
                    }
                    if !handler(heard) {
                        return;
                    }
                    if ticked.elapsed() >= every {
                        ticked = Instant::now();
                        if !handler(Heard::Tick) {
                            return;
                        }
                    }
                }
            })
            .map(|_| ())
    }
}

/// A connection of its own, listening on [`CHANNEL`].
fn connect(url: &str) -> Result<postgres::Client, StoreError> {
    let mut client = postgres::Client::connect(url, NoTls)?;
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    Ok(client)
}
