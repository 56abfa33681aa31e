//! What the admin portal hears about: one in-process broadcast of small change notices
//! (a drawing stored, drawings reviewed, a threshold applied, a model activated, shapes
//! changed) that services publish to and `GET /api/v1/admin/events` streams. Notices carry
//! ids and small payloads; a screen refetches or patches what it shows.
//!
//! Drawings can arrive thousands a second, so their notices are coalesced: publishers only
//! count new drawings or raise a flag, and a small thread sends at most one `drawings`
//! notice (how many arrived, so a count can be patched without a request) and one
//! `flags` notice (counts changed otherwise: refetch) per [`COALESCE`]. Job changes
//! come in from the job queue's own broadcast ([`Events::follow_jobs`]), numbered like
//! the rest.
//!
//! Every notice has an id (`<run>-<sequence>`), and the last [`REPLAY`] are kept, so that
//! a listener that reconnects with the last id it heard (`Last-Event-ID`) gets what it
//! missed, in order, instead of refetching everything; an id from before a restart, or
//! older than the notices kept, gets a resync ([`Events::resume`]).
//!
//! [`Events`] is the one type publishers see, so the cluster-wide fan-out sits behind it
//! without touching a publisher: in cluster mode every notice sent here is also relayed to
//! the other replicas ([`Events::relay_to`], `service::cluster`), which hand it to their own
//! listeners with [`Events::deliver`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::jobs::JobEvent;

/// Notices buffered per listener; one that falls further behind resynchronises.
const BUFFER: usize = 256;
/// Recent notices kept for listeners that reconnect (a few minutes of a busy portal:
/// coalesced drawings notices come at most four a second).
pub const REPLAY: usize = 1024;
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
    /// A job changed (the job queue's own event, passed on).
    Job(JobEvent),
    /// Job changes were missed on the way in: refetch what a screen shows.
    Resync,
}

/// Where a notice stands in the feed: this run of the server, then its place in it. Sent
/// as the SSE `id` (`<run>-<sequence>`) and read back from `Last-Event-ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventId {
    /// Chosen at random when the server starts: an id heard before a restart names
    /// another run, and its sequence means nothing here.
    run: u64,
    /// 1 for the run's first notice; 0 before any.
    sequence: u64,
}

impl EventId {
    /// Reads an id as [`fmt::Display`] writes it; `None` for anything else.
    pub fn parse(text: &str) -> Option<EventId> {
        let (run, sequence) = text.split_once('-')?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(run) || !digits(sequence) {
            return None;
        }
        Some(EventId {
            run: run.parse().ok()?,
            sequence: sequence.parse().ok()?,
        })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.run, self.sequence)
    }
}

/// A notice with its id (the SSE `id`).
#[derive(Debug, Clone)]
pub struct Numbered {
    pub id: EventId,
    pub event: AdminEvent,
}

/// How a listener's feed begins ([`Events::resume`]).
#[derive(Debug)]
pub enum Start {
    /// Refetch everything: a new listener, or one whose last id cannot be replayed from.
    /// The id is the last notice sent before the listener joined.
    Resync(EventId),
    /// The notices the listener missed, oldest first (maybe none).
    Replay(Vec<Numbered>),
}

/// The publisher and subscription point; cheap to clone.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    sender: broadcast::Sender<Numbered>,
    /// This run's mark in every id.
    run: u64,
    /// The last notices sent, with the last sequence number handed out: one lock, so a
    /// listener's replay and its subscription meet with no notice missed or repeated.
    recent: Mutex<Recent>,
    /// Drawings stored since the coalescing thread last looked.
    added: AtomicU64,
    /// Flags or counts changed since the coalescing thread last looked.
    changed: AtomicBool,
    /// Where notices published here also go (the other replicas), in cluster mode.
    relay: OnceLock<EventRelay>,
}

/// The replay buffer.
#[derive(Default)]
struct Recent {
    /// The last sequence number handed out.
    sequence: u64,
    /// At most [`REPLAY`] notices, oldest first.
    notices: VecDeque<Numbered>,
}

/// Hands a notice published on this replica to the other replicas.
pub type EventRelay = Box<dyn Fn(&AdminEvent) + Send + Sync>;

impl Inner {
    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        // A panic while holding the lock cannot leave the buffer half-changed: each change
        // is one push or pop.
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn id(&self, sequence: u64) -> EventId {
        EventId {
            run: self.run,
            sequence,
        }
    }

    fn send(&self, event: AdminEvent) {
        if let Some(relay) = self.relay.get() {
            relay(&event);
        }
        self.deliver(event);
    }

    /// Sends `event` to this replica's listeners only.
    fn deliver(&self, event: AdminEvent) {
        let mut recent = self.recent();
        recent.sequence += 1;
        let notice = Numbered {
            id: self.id(recent.sequence),
            event,
        };
        if recent.notices.len() == REPLAY {
            recent.notices.pop_front();
        }
        recent.notices.push_back(notice.clone());
        // No listener is not an error: nobody has the portal open.
        let _ = self.sender.send(notice);
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
            run: rand::random::<u64>() >> 1,
            recent: Mutex::new(Recent::default()),
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

    /// A listener that heard up to `last` (a `Last-Event-ID`, if any): what it missed, or
    /// a resync when that cannot be told (no id, a malformed one, one from another run,
    /// or one older than the notices kept), and every notice after that.
    pub fn resume(&self, last: Option<&str>) -> (Start, broadcast::Receiver<Numbered>) {
        let recent = self.inner.recent();
        let receiver = self.inner.sender.subscribe();
        let now = self.inner.id(recent.sequence);
        let last = last
            .and_then(EventId::parse)
            .filter(|id| id.run == self.inner.run && id.sequence <= recent.sequence);
        let oldest_kept = recent
            .notices
            .front()
            .map_or(recent.sequence + 1, |n| n.id.sequence);
        let start = match last {
            // Everything after `last` is still kept.
            Some(last) if last.sequence + 1 >= oldest_kept => Start::Replay(
                recent
                    .notices
                    .iter()
                    .filter(|n| n.id > last)
                    .cloned()
                    .collect(),
            ),
            _ => Start::Resync(now),
        };
        (start, receiver)
    }

    /// The id of the last notice sent: what a listener that resynchronises now has seen.
    pub fn last_id(&self) -> EventId {
        let recent = self.inner.recent();
        self.inner.id(recent.sequence)
    }

    /// A listener starting afresh (a new one, or one that fell behind): the last id sent
    /// and every notice after it, with none between the two missed.
    pub fn subscribe_now(&self) -> (EventId, broadcast::Receiver<Numbered>) {
        let recent = self.inner.recent();
        (
            self.inner.id(recent.sequence),
            self.inner.sender.subscribe(),
        )
    }

    /// Passes the job queue's changes on as [`AdminEvent::Job`] notices, on a thread of
    /// its own, until the queue or every handle of this broadcast is gone.
    pub fn follow_jobs(&self, mut jobs: broadcast::Receiver<JobEvent>) {
        let weak = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("admin-events-jobs".into())
            .spawn(move || loop {
                let event = match jobs.blocking_recv() {
                    Ok(job) => AdminEvent::Job(job),
                    Err(broadcast::error::RecvError::Lagged(_)) => AdminEvent::Resync,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let Some(inner) = weak.upgrade() else { return };
                // Local listeners only: in cluster mode job changes reach the other replicas
                // through the job queue's own relay (`service::cluster`), and a job change
                // heard from another replica comes in through that same queue.
                inner.deliver(event);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no job thread: the portal hears of jobs only after a reload");
        }
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

    fn shapes(name: &str) -> AdminEvent {
        AdminEvent::Shapes { name: name.into() }
    }

    #[test]
    fn a_listener_that_reconnects_hears_what_it_missed_then_what_follows() {
        let events = Events::new();
        events.publish(shapes("before"));
        let Start::Resync(seen) = events.resume(None).0 else {
            panic!("a new listener resynchronises");
        };
        events.publish(shapes("missed"));
        events.publish(AdminEvent::Threshold { changed: 1 });
        let (start, mut receiver) = events.resume(Some(&seen.to_string()));
        let Start::Replay(missed) = start else {
            panic!("{start:?}");
        };
        let missed: Vec<AdminEvent> = missed.into_iter().map(|n| n.event).collect();
        assert_eq!(
            missed,
            [shapes("missed"), AdminEvent::Threshold { changed: 1 }]
        );
        events.publish(shapes("after"));
        assert_eq!(receiver.try_recv().unwrap().event, shapes("after"));
        assert!(receiver.try_recv().is_err(), "nothing twice");

        let last = events.last_id().to_string();
        let Start::Replay(none) = events.resume(Some(&last)).0 else {
            panic!("up to date");
        };
        assert!(none.is_empty());
    }

    #[test]
    fn an_id_too_old_from_another_run_or_malformed_gets_a_resync() {
        let events = Events::new();
        events.publish(shapes("first"));
        let first = events.last_id();
        for i in 0..REPLAY {
            events.publish(shapes(&i.to_string()));
        }
        let now = events.last_id();
        let other_run = Events::new();
        other_run.publish(shapes("elsewhere"));
        let future = EventId {
            sequence: now.sequence + 1,
            ..now
        };
        // The notice before the first is no longer kept once REPLAY more followed it.
        let too_old = EventId {
            sequence: first.sequence - 1,
            ..first
        };
        for last in [
            too_old.to_string(),
            other_run.last_id().to_string(),
            future.to_string(),
            "banana".into(),
            "1-".into(),
            "-1".into(),
            "+1-2".into(),
            String::new(),
        ] {
            match events.resume(Some(&last)).0 {
                Start::Resync(id) => assert_eq!(id, now, "{last:?}"),
                start => panic!("{last:?} gave {start:?}"),
            }
        }
        // The oldest notice kept is still replayed to one who heard the notice before it.
        match events.resume(Some(&first.to_string())).0 {
            Start::Replay(missed) => assert_eq!(missed.len(), REPLAY),
            start => panic!("{start:?}"),
        }
    }
}
