//! What the admin portal hears about: one in-process broadcast of small change notices
//! (a drawing stored, drawings reviewed, a threshold applied, a model activated, shapes
//! changed) that services publish to and `GET /api/v1/admin/events` streams. Notices carry
//! ids and small payloads; a screen refetches or patches what it shows.
//!
//! Drawings can arrive thousands a second, so their notices are coalesced: publishers only
//! count new drawings or raise a flag, and a small thread sends at most one `drawings`
//! notice (how many arrived, so a count can be patched without a request) and one
//! `flags` notice (counts changed otherwise: refetch) per [`COALESCE`]. Job
//! changes are not repeated here: the stream merges the job queue's own broadcast.
//!
//! [`Events`] is the one type publishers see, so the cluster-wide fan-out sits behind it
//! without touching a publisher: in cluster mode every notice sent here is also relayed to
//! the other replicas ([`Events::relay_to`], `service::cluster`), which hand it to their own
//! listeners with [`Events::deliver`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;

/// Notices buffered per listener; one that falls further behind resynchronises.
const BUFFER: usize = 256;
/// At most one "drawings changed" notice per this much time.
pub const COALESCE: Duration = Duration::from_millis(250);

/// One change, as the portal hears it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AdminEvent {
    /// `added` new drawings were stored (coalesced).
    Drawings { added: u64 },
    /// Drawings were flagged by the scorer, purged, or hidden or restored with their player
    /// (coalesced): counts changed in ways only a refetch tells.
    Flags,
    /// An admin reviewed drawings (`action` as the review API names it).
    Reviewed { ids: Vec<String>, action: String },
    /// A new quality threshold was applied; `changed` flags moved.
    Threshold { changed: usize },
    /// A model became the one served (activation or rollback).
    ModelActivated { version: String },
    /// A shape was added, changed or retired.
    Shapes { name: String },
}

/// A notice with its sequence number (the SSE `id`).
#[derive(Debug, Clone)]
pub struct Numbered {
    pub id: u64,
    pub event: AdminEvent,
}

/// The publisher and subscription point; cheap to clone.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    sender: broadcast::Sender<Numbered>,
    /// The last sequence number handed out.
    sequence: AtomicU64,
    /// Drawings stored since the coalescing thread last looked.
    added: AtomicU64,
    /// Flags or counts changed since the coalescing thread last looked.
    changed: AtomicBool,
    /// Where notices published here also go (the other replicas), in cluster mode.
    relay: OnceLock<EventRelay>,
}

/// Hands a notice published on this replica to the other replicas.
pub type EventRelay = Box<dyn Fn(&AdminEvent) + Send + Sync>;

impl Inner {
    fn send(&self, event: AdminEvent) {
        if let Some(relay) = self.relay.get() {
            relay(&event);
        }
        self.deliver(event);
    }

    /// Sends `event` to this replica's listeners only.
    fn deliver(&self, event: AdminEvent) {
        let id = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        // No listener is not an error: nobody has the portal open.
        let _ = self.sender.send(Numbered { id, event });
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    /// A new broadcast with its coalescing thread (which ends with the last handle).
    pub fn new() -> Self {
        let inner = Arc::new(Inner {
            sender: broadcast::channel(BUFFER).0,
            sequence: AtomicU64::new(0),
            added: AtomicU64::new(0),
            changed: AtomicBool::new(false),
            relay: OnceLock::new(),
        });
        let weak = Arc::downgrade(&inner);
        let spawned = std::thread::Builder::new()
            .name("admin-events".into())
            .spawn(move || coalesce(&weak));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no coalescing thread: the portal hears of new drawings only through other changes");
        }
        Self { inner }
    }

    /// A new listener, hearing every notice from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Numbered> {
        self.inner.sender.subscribe()
    }

    /// A drawing was stored: a coalesced notice follows within [`COALESCE`].
    pub fn drawing_added(&self) {
        self.inner.added.fetch_add(1, Ordering::Relaxed);
    }

    /// Flags or counts changed (not by a review, which is announced at once): a coalesced
    /// notice follows within [`COALESCE`].
    pub fn drawings_changed(&self) {
        self.inner.changed.store(true, Ordering::Relaxed);
    }

    /// Sends `event` now.
    pub fn publish(&self, event: AdminEvent) {
        self.inner.send(event);
    }

    /// Sets where every notice published here also goes (the other replicas). Once; later
    /// calls are ignored. The relay must not block: it runs on the publisher's thread.
    pub fn relay_to(&self, relay: EventRelay) {
        let _ = self.inner.relay.set(relay);
    }

    /// Hands `event`, heard from another replica, to this replica's listeners only (it is
    /// not relayed again).
    pub fn deliver(&self, event: AdminEvent) {
        self.inner.deliver(event);
    }
}

/// Sends at most one notice of each coalesced kind per tick, until every handle of the
/// broadcast is gone.
fn coalesce(inner: &Weak<Inner>) {
    loop {
        std::thread::sleep(COALESCE);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let added = inner.added.swap(0, Ordering::Relaxed);
        if added > 0 {
            inner.send(AdminEvent::Drawings { added });
        }
        if inner.changed.swap(false, Ordering::Relaxed) {
            inner.send(AdminEvent::Flags);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_new_drawings_becomes_one_notice() {
        let events = Events::new();
        let mut listener = events.subscribe();
        for _ in 0..10_000 {
            events.drawing_added();
            events.drawings_changed();
        }
        std::thread::sleep(COALESCE * 3);
        let mut heard = vec![];
        while let Ok(notice) = listener.try_recv() {
            heard.push(notice.event);
        }
        // The burst may straddle a tick: then two notices of each kind, never more.
        let added: u64 = heard
            .iter()
            .map(|e| match e {
                AdminEvent::Drawings { added } => *added,
                _ => 0,
            })
            .sum();
        assert_eq!(added, 10_000, "{heard:?}");
        assert!(heard.len() <= 4, "{heard:?}");
        assert!(heard.contains(&AdminEvent::Flags));
    }

    #[test]
    fn published_notices_are_relayed_to_other_replicas_and_delivered_ones_are_not_relayed_again() {
        let events = Events::new();
        let relayed = Arc::new(std::sync::Mutex::new(Vec::new()));
        {
            let relayed = relayed.clone();
            events.relay_to(Box::new(move |e| relayed.lock().unwrap().push(e.clone())));
        }
        let mut listener = events.subscribe();
        events.publish(AdminEvent::Shapes {
            name: "here".into(),
        });
        events.deliver(AdminEvent::Shapes {
            name: "elsewhere".into(),
        });
        assert_eq!(
            *relayed.lock().unwrap(),
            vec![AdminEvent::Shapes {
                name: "here".into()
            }]
        );
        let heard = [listener.try_recv().unwrap(), listener.try_recv().unwrap()];
        assert_eq!(
            heard[1].event,
            AdminEvent::Shapes {
                name: "elsewhere".into()
            }
        );
    }

    #[test]
    fn notices_are_numbered_in_order() {
        let events = Events::new();
        let mut listener = events.subscribe();
        events.publish(AdminEvent::Shapes { name: "a".into() });
        events.publish(AdminEvent::Threshold { changed: 3 });
        let (a, b) = (listener.try_recv().unwrap(), listener.try_recv().unwrap());
        assert!(b.id > a.id);
        assert_eq!(b.event, AdminEvent::Threshold { changed: 3 });
    }
}
