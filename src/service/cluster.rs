//! Cluster-wide changes (cluster mode): what one replica changes and the others keep in
//! memory reaches them within a second or two over the database's change channel
//! (`store::postgres::notify`: PostgreSQL's `LISTEN/NOTIFY`), with a polling fallback.
//!
//! Sent from this replica: every admin portal notice published here (so the portal's stream
//! is cluster-wide), every job change (progress shows on every replica) and a key
//! revocation, each through a bounded outbox to one publishing thread, so no publisher ever
//! waits on the database. Heard from another replica:
//! - a model activated or rolled back: this replica serves the model the database names
//!   active (fetching and verifying its files), then tells its own portal;
//! - shapes changed: the shape cache and blocked players are reloaded at once;
//! - the quality threshold changed: the settings are read again;
//! - a key revoked: the key cache is emptied;
//! - a job change: the job queue's own broadcast (Server-Sent Events, the CLI's bar);
//! - any other portal notice: this replica's portal stream.
//!
//! The polling fallback: every [`POLL_EVERY`], and after the listener reconnects, the
//! replica re-reads which model is active, so a notice lost while its connection was down
//! costs at most one tick (shapes and blocks are re-read every second by the store itself,
//! keys expire from the cache within five). A notice names the replica that sent it, which
//! ignores its own.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_channel::{bounded, TrySendError};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::jobs::runner::JobRelay;
use crate::jobs::JobEvent;
use crate::service::events::{AdminEvent, Events};
use crate::service::prompter::Prompter;
use crate::service::quality::QualityService;
use crate::service::serving::{ModelServer, ServingError};
use crate::store::keys::KeyAuthenticator;
use crate::store::postgres::notify::{Feed, Heard};

/// How often a replica re-reads the active model even when it hears nothing.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// Notices waiting for the publishing thread; past this they are dropped (and logged).
const OUTBOX: usize = 4096;

/// One change, as the replicas tell each other.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Notice {
    /// A notice for the admin portal, which some also act on (see the module docs).
    Admin { event: AdminEvent },
    /// A job changed.
    Job { event: JobEvent },
    /// An API key was revoked: cached lookups are stale.
    KeysRevoked,
}

/// A notice with the replica that sent it.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The sending replica's id, random per process.
    from: String,
    notice: Notice,
}

/// What a replica keeps in memory that other replicas' changes make stale.
pub struct Replica {
    /// The model served here.
    pub models: ModelServer,
    /// The admin portal's stream.
    pub events: Events,
    /// The job queue's broadcast (`Scheduler::subscribe`'s sender).
    pub jobs: broadcast::Sender<JobEvent>,
    /// Where job changes announced here also go (`JobContext::relay`).
    pub job_relay: Arc<OnceLock<JobRelay>>,
    /// Cached API key lookups.
    pub key_auth: Arc<KeyAuthenticator>,
    /// The quality threshold in use.
    pub quality: Arc<QualityService>,
    /// The prompt weighting, which depends on the served model and the shapes.
    pub prompter: Arc<Prompter>,
}

/// Joins this replica to the cluster's change channel: relays what changes here and starts
/// the thread that hears the others (see the module docs).
pub fn join(feed: Arc<Feed>, replica: Replica) -> std::io::Result<()> {
    let origin = format!("{:032x}", rand::random::<u128>());
    let send = publisher(feed.clone(), origin.clone())?;
    {
        let send = send.clone();
        replica.events.relay_to(Box::new(move |event| {
            send(Notice::Admin {
                event: event.clone(),
            })
        }));
    }
    relay_jobs_with(send.clone(), &replica.job_relay);
    replica
        .key_auth
        .on_forget(Box::new(move || send(Notice::KeysRevoked)));
    let mut follower = Follower {
        feed: feed.clone(),
        origin,
        replica,
        refused: None,
    };
    feed.listen(POLL_EVERY, move |heard| {
        follower.hear(heard);
        true
    })
}

/// Tells every replica of the job changes announced in this process (a `doodlebox worker`,
/// which serves nothing and so hears nothing).
pub fn relay_jobs(feed: Arc<Feed>, relay: &OnceLock<JobRelay>) -> std::io::Result<()> {
    let origin = format!("{:032x}", rand::random::<u128>());
    relay_jobs_with(publisher(feed, origin)?, relay);
    Ok(())
}

fn relay_jobs_with(send: impl Fn(Notice) + Send + Sync + 'static, relay: &OnceLock<JobRelay>) {
    let _ = relay.set(Box::new(move |event| {
        send(Notice::Job {
            event: event.clone(),
        })
    }));
}

/// Starts the thread that sends notices as `origin`, and answers what queues one for it
/// (never blocking: a full outbox drops the notice and logs it).
fn publisher(
    feed: Arc<Feed>,
    origin: String,
) -> std::io::Result<impl Fn(Notice) + Clone + Send + Sync + 'static> {
    let (outbox, pending) = bounded::<Notice>(OUTBOX);
    {
        let feed = feed.clone();
        std::thread::Builder::new()
            .name("cluster-notify".into())
            .spawn(move || {
                for notice in pending {
                    let envelope = Envelope {
                        from: origin.clone(),
                        notice,
                    };
                    let sent = serde_json::to_string(&envelope)
                        .map_err(|e| e.to_string())
                        .and_then(|text| feed.notify(&text).map_err(|e| e.to_string()));
                    if let Err(e) = sent {
                        tracing::warn!(error = %e, "could not tell the other replicas of a change");
                    }
                }
            })?;
    }
    Ok(move |notice: Notice| {
        if let Err(TrySendError::Full(_)) = outbox.try_send(notice) {
            tracing::warn!("too many change notices waiting; one is dropped");
        }
    })
}

/// The listening thread's state.
struct Follower {
    feed: Arc<Feed>,
    /// This replica's id: its own notices are ignored.
    origin: String,
    replica: Replica,
    /// The active version that last failed to load here, not tried again at every tick
    /// (a notice of a new activation tries again).
    refused: Option<String>,
}

impl Follower {
    fn hear(&mut self, heard: Heard) {
        let text = match heard {
            Heard::Tick => return self.follow_model(false),
            Heard::Notice(text) => text,
        };
        let envelope: Envelope = match serde_json::from_str(&text) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::warn!(error = %e, "an unreadable change notice was ignored");
                return;
            }
        };
        if envelope.from == self.origin {
            return;
        }
        let replica = &self.replica;
        match envelope.notice {
            Notice::Admin {
                event: AdminEvent::ModelActivated { .. },
            } => self.follow_model(true),
            Notice::Admin { event } => {
                match &event {
                    AdminEvent::Shapes { .. } => {
                        if let Err(e) = self.feed.refresh() {
                            tracing::warn!(error = %e, "could not reload the shapes another replica changed");
                        }
                        replica.prompter.forget();
                    }
                    AdminEvent::Threshold { .. } => {
                        if let Err(e) = replica.quality.reload_settings() {
                            tracing::warn!(error = %e, "could not reload the quality settings another replica changed");
                        }
                    }
                    _ => {}
                }
                replica.events.deliver(event);
            }
            Notice::Job { event } => {
                // No listener is not an error.
                let _ = replica.jobs.send(event);
            }
            Notice::KeysRevoked => replica.key_auth.forget_here(),
        }
    }

    /// Serves the model the database names active if it is not served here yet; `told`
    /// when a notice asked (then a version refused before is tried again).
    fn follow_model(&mut self, told: bool) {
        if told {
            self.refused = None;
        }
        let replica = &self.replica;
        match replica.models.follow_database(self.refused.as_deref()) {
            Ok(Some(version)) => {
                replica.prompter.forget();
                replica
                    .events
                    .deliver(AdminEvent::ModelActivated { version });
            }
            Ok(None) => {}
            Err(ServingError::InvalidModel { version, source }) => {
                tracing::error!(%version, error = %source, "the model active in the database does not load here; the one served stays");
                self.refused = Some(version);
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not check which model is active");
            }
        }
    }
}
