//! The quality scorer: one background thread that judges and scores drawings after they are
//! stored, and the rescore walk over all live drawings after a model is activated or on
//! demand, which runs as a `rescore` job of the one queue (see [`crate::jobs::rescore`]).
//! Judging (what the active model sees: Quick, Draw!'s `recognized`, the model version and
//! the agreement that goes into the score) happens only here, never inside a request;
//! [`score_drawings`] is its one home, shared by arrivals, the catch-up walk and the rescore
//! walk.
//!
//! # Arrivals
//! The submit handler, after its `201`, hands the drawing to [`QualityService::arrived`]
//! (never blocking). The thread takes everything waiting as one batch, waiting up to
//! [`ARRIVAL_LINGER`] for a chunk's worth, classifies it in chunks of [`RESCORE_CHUNK`]
//! and writes each chunk's scores and verdicts in one transaction. During a burst that is
//! one forward pass and one short transaction per chunk instead of one per handful of
//! drawings, so scoring takes little of the CPU and of the SQLite writer from the group
//! commit. While more drawings are waiting after a batch (a burst), the scorer rests
//! between batches so that it takes at most a quarter of one core; the queue then fills and
//! the catch-up walk scores the rest after the burst.
//!
//! # The catch-up walk
//! A drawing never waits on the queue alone. One that misses it (the queue was full) or that
//! was stored just before a crash has a row without a score; the catch-up walk finds such
//! rows in id order (`drawings.quality_score IS NULL`, through a partial index) and scores
//! them like arrivals. It runs when the thread starts, once the queue has drained after a
//! drawing missed it, and every [`CATCH_UP_EVERY`] while the thread is idle. Arrivals go
//! first: a catch-up chunk runs only while the queue is empty. Drawings scored with an older
//! model are not its business: an activation's rescore walk reaches every drawing.
//!
//! # The rescore walk
//! Started by [`QualityService::start_rescore`] (an activation starts one through
//! [`ModelServer::on_activate`] and hands it to the queue through the hook set with
//! [`QualityService::when_walk_starts`]), it is run by a `rescore` job calling
//! [`QualityService::run_walk`]: live drawings in id order in chunks of [`RESCORE_CHUNK`],
//! each chunk's stroke records read, classified in one request to the inference thread (one
//! request at a time, so live classify requests wait behind at most one chunk), scored and
//! written together with the walk's position in one transaction. The saved position is what
//! the job resumes from after a restart or a crash; a walk also starts at boot when the
//! active model is not the one the last walk scored with (a model activated while no server
//! ran). Arrivals are scored meanwhile by the scorer thread.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};
use serde::Serialize;

use crate::domain::quality::{score, Features};
use crate::domain::{Agreement, Drawing, DrawingId, Judgement, QualitySettings, Record};
use crate::service::serving::{Classification, ModelServer, ServingError};
use crate::store::quality::{RescoreState, RescoreStatus, Scored};
use crate::store::{now_ms, StoreError, Stores};

/// Drawings waiting to be scored by default; beyond this, arrivals are left to the catch-up
/// walk. `Config::quality_queue` overrides it (tests make it 0 to send every drawing there).
pub const DEFAULT_QUEUE_CAPACITY: usize = 4_096;
/// How long an idle scorer waits before it walks the unscored rows anyway (drawings whose
/// handoff was lost some way this thread cannot see).
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(60);
/// How often an idle scorer wakes to see whether a drawing missed the queue.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Most arrivals taken off the queue at once (scored and written a chunk at a time).
const ARRIVAL_BATCH: usize = 512;
/// How long the scorer waits for [`RESCORE_CHUNK`] arrivals before it scores fewer. A
/// drawing's verdict comes this much later at most; in return a burst is judged in full
/// forward passes and written in few transactions, each holding the SQLite writer (which
/// the group commit needs) briefly.
const ARRIVAL_LINGER: Duration = Duration::from_millis(250);
/// Drawings per rescore chunk: one read, one forward pass, one transaction.
pub const RESCORE_CHUNK: usize = 64;
/// The most of one core the scorer takes while drawings arrive faster than it judges them
/// (more are waiting after a batch). Scoring is background work: during a burst the
/// requests and the group commit get the CPU, the queue fills, and what misses it is
/// scored by the catch-up walk once the burst is over. Between bursts the scorer runs
/// flat out.
const SHARE_UNDER_LOAD: f64 = 0.25;
/// The longest rest after one batch, so that a slow batch does not stall verdicts long.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A stored drawing on its way to being judged and scored.
pub struct Arrival {
    pub id: DrawingId,
    pub drawing: Drawing,
}

enum Message {
    Arrived(Box<Arrival>),
    Stop,
}

/// Told about every walk an activation (or the boot) starts, so that a job runs it.
pub type WalkStarted = Box<dyn Fn(&RescoreProgress) + Send + Sync>;

/// A rescore walk's progress as `GET /api/v1/admin/quality/rescore` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RescoreProgress {
    /// `idle` (never ran), `running`, `completed` or `cancelled`.
    pub status: &'static str,
    pub model_version: Option<String>,
    pub done: u64,
    pub total: u64,
    pub last_id: Option<String>,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
}

impl RescoreProgress {
    fn of(state: Option<&RescoreState>) -> Self {
        let Some(state) = state else {
            return Self {
                status: "idle",
                model_version: None,
                done: 0,
                total: 0,
                last_id: None,
                started_at: None,
                finished_at: None,
            };
        };
        Self {
            status: match state.status {
                RescoreStatus::Running => "running",
                RescoreStatus::Completed => "completed",
                RescoreStatus::Cancelled => "cancelled",
            },
            model_version: state.model_version.clone(),
            done: state.done,
            total: state.total,
            last_id: state.last_id.clone(),
            started_at: Some(state.started_at),
            finished_at: state.finished_at,
        }
    }
}

/// What the scorer thread and its handle share.
struct Shared {
    stores: Arc<Stores>,
    models: ModelServer,
    /// The auto-flag threshold (`f64` bits), read by the thread for every batch.
    threshold: AtomicU64,
    /// The walk's latest state (mirrors the saved one). Held while a chunk is committed, so
    /// a walk started meanwhile is never overwritten by the old one's progress.
    rescore: Mutex<Walk>,
    /// Hands a walk an activation started to the job queue (set once the queue runs).
    walk_started: OnceLock<WalkStarted>,
    /// Set when an arrival missed the full queue: the catch-up walk runs once it drains.
    missed: AtomicBool,
    /// Where the portal hears that scores and flags changed (set once the server runs).
    events: OnceLock<super::events::Events>,
}

/// The current walk and which one it is.
struct Walk {
    /// Bumped by every start: a chunk of an older walk is dropped, not committed.
    generation: u64,
    state: Option<RescoreState>,
}

/// The handle the server holds.
pub struct QualityService {
    sender: Sender<Message>,
    /// `false` when the queue has no room at all (capacity 0): every arrival is left to
    /// the catch-up walk.
    direct: bool,
    shared: Arc<Shared>,
    /// Joined on shutdown so the last batch is written before the stores close.
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl QualityService {
    /// Starts the scorer thread with room for `queue_capacity` waiting drawings (0: every
    /// drawing goes through the catch-up walk); resumes a walk that was running, or starts
    /// one when the model being served is not the one the last walk used. Blocking (reads
    /// settings).
    pub fn start(
        stores: Arc<Stores>,
        models: ModelServer,
        queue_capacity: usize,
    ) -> Result<Arc<Self>, StoreError> {
        let settings = stores.quality.quality_settings()?;
        let state = stores.quality.rescore_state()?;
        // A zero-capacity crossbeam channel is a rendezvous, which would let some arrivals
        // through; `arrived` never sends on it instead.
        let (sender, receiver) = bounded(queue_capacity.max(1));
        let serving = models.serving_version();
        let stale = match &state {
            Some(s) => s.status == RescoreStatus::Running || s.model_version != serving,
            None => serving.is_some(),
        };
        let shared = Arc::new(Shared {
            stores,
            models: models.clone(),
            threshold: AtomicU64::new(settings.auto_flag_below.to_bits()),
            rescore: Mutex::new(Walk {
                generation: 0,
                state,
            }),
            walk_started: OnceLock::new(),
            missed: AtomicBool::new(false),
            events: OnceLock::new(),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("quality".into())
            .spawn(move || scorer_loop(&thread_shared, &receiver))?;
        let service = Arc::new(Self {
            sender,
            direct: queue_capacity > 0,
            shared,
            thread: Mutex::new(Some(thread)),
        });
        if stale {
            if let Some((_, walk)) = service.shared.walk() {
                tracing::info!(done = walk.done, "the rescore that was running continues");
            } else {
                service.start_rescore()?;
            }
        }
        // Weak: the shared state holds the model server, which holds this listener.
        let shared = Arc::downgrade(&service.shared);
        models.on_activate(Box::new(move |_version| {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            match start_walk(&shared) {
                Ok(progress) => match shared.walk_started.get() {
                    Some(hand_over) => hand_over(&progress),
                    None => tracing::warn!(
                        "quality: no job queue yet; the rescore runs at the next start"
                    ),
                },
                Err(e) => tracing::warn!(error = %e, "quality: cannot start a rescore"),
            }
        }));
        Ok(service)
    }

    /// Sets where walks started by an activation go (the job queue). Once; later calls are
    /// ignored.
    pub fn when_walk_starts(&self, hand_over: WalkStarted) {
        let _ = self.shared.walk_started.set(hand_over);
    }

    /// Whether a walk is running (started and not completed): a job should be running it.
    pub fn walk_running(&self) -> bool {
        self.shared.walk().is_some()
    }

    /// Runs the running walk chunk by chunk until it completes (its final progress) or
    /// `stop` says so between chunks (`None`; the walk keeps its position). A walk started
    /// meanwhile replaces the old one, and this goes on with the new one. Blocking: the
    /// `rescore` job calls it on its thread. `on_chunk` hears the progress after each chunk.
    pub fn run_walk(
        &self,
        stop: &dyn Fn() -> bool,
        on_chunk: &mut dyn FnMut(&RescoreProgress),
    ) -> Result<Option<RescoreProgress>, StoreError> {
        loop {
            let Some((generation, walk)) = self.shared.walk() else {
                return Ok(Some(self.progress()));
            };
            if stop() {
                return Ok(None);
            }
            rescore_chunk(&self.shared, generation, walk)?;
            on_chunk(&self.progress());
        }
    }

    /// Ends the running walk where it stands, because its job was cancelled: it is saved as
    /// cancelled, so the next start does not resume it. Blocking.
    pub fn cancel_walk(&self) -> Result<(), StoreError> {
        let mut walk = self
            .shared
            .rescore
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let Some(state) = walk
            .state
            .as_mut()
            .filter(|s| s.status == RescoreStatus::Running)
        else {
            return Ok(());
        };
        let mut cancelled = state.clone();
        cancelled.status = RescoreStatus::Cancelled;
        cancelled.finished_at = Some(now_ms());
        self.shared.stores.quality.save_rescore_state(&cancelled)?;
        tracing::info!(done = cancelled.done, "rescore cancelled");
        *state = cancelled;
        Ok(())
    }

    /// Queues a stored drawing for judging and scoring; never blocks. When the queue is
    /// full the drawing is left to the catch-up walk, which runs once the queue drains.
    pub fn arrived(&self, arrival: Arrival) {
        if !self.direct
            || self
                .sender
                .try_send(Message::Arrived(Box::new(arrival)))
                .is_err()
        {
            self.shared.missed.store(true, Ordering::Relaxed);
            tracing::debug!("quality queue full; the catch-up walk scores the drawing");
        }
    }

    /// Starts a rescore walk from the first drawing with the model being served (replacing
    /// one that runs). Blocking. Returns its progress; the caller queues the job that runs it.
    pub fn start_rescore(&self) -> Result<RescoreProgress, StoreError> {
        start_walk(&self.shared)
    }

    /// The walk's progress, from memory. Blocking: waits while a chunk is committed.
    pub fn progress(&self) -> RescoreProgress {
        let walk = self
            .shared
            .rescore
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        RescoreProgress::of(walk.state.as_ref())
    }

    /// Saves new settings (re-applying the threshold to scored drawings) and uses them for
    /// every later score. Blocking. Returns how many flags changed.
    pub fn set_settings(&self, settings: QualitySettings) -> Result<usize, StoreError> {
        let changed = self.shared.stores.quality.set_quality_settings(settings)?;
        self.shared
            .threshold
            .store(settings.auto_flag_below.to_bits(), Ordering::Relaxed);
        if let Some(events) = self.shared.events.get() {
            events.publish(super::events::AdminEvent::Threshold { changed });
        }
        Ok(changed)
    }

    /// Sets where changes are announced (the portal's event stream). Once; later calls are
    /// ignored.
    pub fn publish_to(&self, events: super::events::Events) {
        let _ = self.shared.events.set(events);
    }

    /// Reads the settings again from the store, where another replica may have changed them
    /// (cluster mode). Blocking.
    pub fn reload_settings(&self) -> Result<(), StoreError> {
        let settings = self.shared.stores.quality.quality_settings()?;
        self.shared
            .threshold
            .store(settings.auto_flag_below.to_bits(), Ordering::Relaxed);
        Ok(())
    }

    /// The settings in use.
    pub fn settings(&self) -> QualitySettings {
        QualitySettings {
            auto_flag_below: self.shared.threshold(),
        }
    }

    /// Writes what is queued, then stops the thread. Blocking.
    pub fn shutdown(&self) {
        let _ = self.sender.send(Message::Stop);
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Shared {
    fn threshold(&self) -> f64 {
        f64::from_bits(self.threshold.load(Ordering::Relaxed))
    }

    /// Tells the portal that flags changed (coalesced).
    fn drawings_changed(&self) {
        if let Some(events) = self.events.get() {
            events.drawings_changed();
        }
    }

    /// The running walk, if any, with its generation.
    fn walk(&self) -> Option<(u64, RescoreState)> {
        let walk = self.rescore.lock().unwrap_or_else(|p| p.into_inner());
        walk.state
            .clone()
            .filter(|s| s.status == RescoreStatus::Running)
            .map(|s| (walk.generation, s))
    }

    /// Saves `state` as the walk's progress (with `scores`, in one transaction) unless another
    /// walk started since `generation`.
    fn commit(
        &self,
        generation: u64,
        scores: &[Scored],
        state: RescoreState,
    ) -> Result<(), StoreError> {
        let mut walk = self.rescore.lock().unwrap_or_else(|p| p.into_inner());
        if walk.generation != generation {
            return Ok(());
        }
        self.stores
            .quality
            .record_scores(scores, self.threshold(), Some(&state))?;
        walk.state = Some(state);
        Ok(())
    }
}

fn scorer_loop(shared: &Shared, receiver: &Receiver<Message>) {
    // Where the catch-up walk stands while it runs (`Some(None)`: from the first row). It
    // runs at start: drawings stored just before a crash were never handed over.
    let mut catch_up: Option<Option<DrawingId>> = Some(None);
    let mut last_catch_up = Instant::now();
    loop {
        // While a catch-up walk runs, only a glance at the queue: arrivals go first.
        let first = if catch_up.is_some() {
            match receiver.try_recv() {
                Ok(message) => Some(message),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return,
            }
        } else {
            match receiver.recv_timeout(IDLE_POLL) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        let Some(first) = first else {
            let due = shared.missed.swap(false, Ordering::Relaxed)
                || last_catch_up.elapsed() >= CATCH_UP_EVERY;
            if catch_up.is_none() && due {
                catch_up = Some(None);
            }
            if let Some(after) = catch_up {
                last_catch_up = Instant::now();
                catch_up = guarded("catching up on unscored drawings", || {
                    catch_up_chunk(shared, after)
                })
                .flatten()
                .map(Some);
            }
            continue;
        };
        let mut arrivals = Vec::new();
        let mut stop = false;
        let mut next = Some(first);
        let linger_until = Instant::now() + ARRIVAL_LINGER;
        while let Some(message) = next.take() {
            match message {
                Message::Arrived(a) => arrivals.push(*a),
                Message::Stop => stop = true,
            }
            if arrivals.len() < ARRIVAL_BATCH && !stop {
                next = match receiver.try_recv() {
                    Ok(message) => Some(message),
                    // Short of a chunk: wait a little for the rest of the burst.
                    Err(TryRecvError::Empty) if arrivals.len() < RESCORE_CHUNK => {
                        receiver.recv_deadline(linger_until).ok()
                    }
                    Err(_) => None,
                };
            }
        }
        if !arrivals.is_empty() {
            let started = Instant::now();
            guarded("scoring new drawings", || score_arrivals(shared, arrivals));
            if !stop && !receiver.is_empty() {
                std::thread::sleep(backoff_after(started.elapsed()));
            }
        }
        if stop {
            return;
        }
    }
}

/// How long the scorer rests after a batch that took `spent` while more drawings were
/// already waiting: long enough that it takes at most [`SHARE_UNDER_LOAD`] of one core
/// during a burst, at most [`MAX_BACKOFF`].
fn backoff_after(spent: Duration) -> Duration {
    spent
        .mul_f64((1.0 - SHARE_UNDER_LOAD) / SHARE_UNDER_LOAD)
        .min(MAX_BACKOFF)
}

/// Runs one step, logging (not propagating) a store error or a panic: the thread carries on
/// (`None` then).
fn guarded<T>(what: &str, step: impl FnOnce() -> Result<T, StoreError>) -> Option<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(step)) {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "quality: {what} failed");
            None
        }
        Err(_) => {
            tracing::error!("quality: {what} panicked");
            None
        }
    }
}

/// Starts a walk from the first drawing with the model being served.
fn start_walk(shared: &Shared) -> Result<RescoreProgress, StoreError> {
    let mut walk = shared.rescore.lock().unwrap_or_else(|p| p.into_inner());
    let total = shared.stores.quality.count_live_drawings()?;
    let state = RescoreState {
        status: RescoreStatus::Running,
        model_version: shared.models.serving_version(),
        last_id: None,
        done: 0,
        total,
        started_at: now_ms(),
        finished_at: None,
    };
    shared.stores.quality.save_rescore_state(&state)?;
    tracing::info!(model = ?state.model_version, total, "rescoring every drawing");
    let progress = RescoreProgress::of(Some(&state));
    walk.generation += 1;
    walk.state = Some(state);
    Ok(progress)
}

/// Judges and scores arrivals a chunk at a time, each chunk written in its own transaction
/// so that the group commit never waits long for the SQLite writer.
fn score_arrivals(shared: &Shared, arrivals: Vec<Arrival>) -> Result<(), StoreError> {
    let drawings: Vec<(DrawingId, Drawing)> =
        arrivals.into_iter().map(|a| (a.id, a.drawing)).collect();
    for chunk in drawings.chunks(RESCORE_CHUNK) {
        let scored = score_drawings(&shared.models, chunk);
        record(shared, &scored)?;
    }
    Ok(())
}

/// Saves the scores of one batch and tells the portal when some were flagged.
fn record(shared: &Shared, scored: &[Scored]) -> Result<(), StoreError> {
    let threshold = shared.threshold();
    shared
        .stores
        .quality
        .record_scores(scored, threshold, None)?;
    if scored.iter().any(|s| s.score.score < threshold) {
        shared.drawings_changed(); // some were flagged
    }
    Ok(())
}

/// One chunk of the catch-up walk: the next unscored live drawings after `after`, judged and
/// scored in one transaction. Returns where the walk goes on from, `None` when it is done.
fn catch_up_chunk(
    shared: &Shared,
    after: Option<DrawingId>,
) -> Result<Option<DrawingId>, StoreError> {
    let ids = shared
        .stores
        .quality
        .unscored_drawings_after(after, RESCORE_CHUNK)?;
    let Some(last) = ids.last().copied() else {
        return Ok(None);
    };
    let drawings = read_drawings(shared, ids)?;
    let scored = score_drawings(&shared.models, &drawings);
    record(shared, &scored)?;
    if !scored.is_empty() {
        tracing::info!(
            drawings = scored.len(),
            "quality: caught up on unscored drawings"
        );
    }
    Ok(Some(last))
}

/// The stored drawings of `ids`; a row without a readable record is skipped (reconciliation
/// reports it).
fn read_drawings(
    shared: &Shared,
    ids: Vec<DrawingId>,
) -> Result<Vec<(DrawingId, Drawing)>, StoreError> {
    let mut drawings = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(bytes) = shared.stores.blobs.get(id)? else {
            continue;
        };
        match Record::decode(&bytes) {
            Ok(record) => drawings.push((id, record.drawing)),
            Err(e) => tracing::warn!(%id, error = %e, "quality: unreadable stroke record"),
        }
    }
    Ok(drawings)
}

fn rescore_chunk(
    shared: &Shared,
    generation: u64,
    mut walk: RescoreState,
) -> Result<(), StoreError> {
    let after = walk
        .last_id
        .as_deref()
        .map(|id| {
            id.parse::<DrawingId>()
                .map_err(|_| StoreError::Corrupt(format!("rescore last_id {id:?}")))
        })
        .transpose()?;
    let ids = shared
        .stores
        .quality
        .live_drawings_after(after, RESCORE_CHUNK)?;
    let Some(last) = ids.last().copied() else {
        walk.status = RescoreStatus::Completed;
        walk.finished_at = Some(now_ms());
        tracing::info!(done = walk.done, "rescore completed");
        return shared.commit(generation, &[], walk);
    };
    let drawings = read_drawings(shared, ids)?;
    let scored = score_drawings(&shared.models, &drawings);
    walk.done += scored.len() as u64;
    walk.last_id = Some(last.to_string());
    shared.commit(generation, &scored, walk)
}

/// Judges and scores drawings: what the served model makes of each (whether its top guess
/// is the prompted shape, and the probability it gave that shape, which the score weighs),
/// in requests of at most [`RESCORE_CHUNK`] drawings so that live classify requests wait
/// behind at most one; the heuristics alone where no model is served. The one place a
/// drawing is judged.
pub fn score_drawings(models: &ModelServer, drawings: &[(DrawingId, Drawing)]) -> Vec<Scored> {
    let mut scored = Vec::with_capacity(drawings.len());
    for chunk in drawings.chunks(RESCORE_CHUNK) {
        for ((id, drawing), verdict) in chunk.iter().zip(judge(models, chunk)) {
            let (judgement, agreement) = match verdict {
                Some((judgement, agreement)) => (Some(judgement), agreement),
                None => (None, None),
            };
            scored.push(Scored {
                id: *id,
                score: score(&Features::of(drawing), agreement.as_ref()),
                judgement,
            });
        }
    }
    scored
}

/// What the served model makes of a drawing: the verdict, and the agreement when the model
/// knows the prompted shape.
type Verdict = (Judgement, Option<Agreement>);

fn verdict(drawing: &Drawing, answer: &Classification) -> Verdict {
    let shape = drawing.shape().as_str();
    let judgement = Judgement {
        recognized: answer.shape == shape,
        model_version: answer.model_version.clone(),
    };
    let agreement = answer.probability_of(shape).map(|p| Agreement {
        model_version: answer.model_version.clone(),
        probability: f64::from(p),
        unsure: answer.unsure,
    });
    (judgement, agreement)
}

/// What the served model makes of each drawing: one request for the chunk; drawing by
/// drawing when the chunk fails (one bad drawing fails a forward pass); `None` where there
/// is no model.
fn judge(models: &ModelServer, drawings: &[(DrawingId, Drawing)]) -> Vec<Option<Verdict>> {
    let strokes: Vec<_> = drawings.iter().map(|(_, d)| strokes_of(d)).collect();
    match models.classify_blocking(strokes) {
        Ok(answers) if answers.len() == drawings.len() => drawings
            .iter()
            .zip(&answers)
            .map(|((_, d), c)| Some(verdict(d, c)))
            .collect(),
        Err(ServingError::NoModel) => vec![None; drawings.len()],
        _ => drawings
            .iter()
            .map(|(_, d)| {
                let answer = models.classify_blocking(vec![strokes_of(d)]).ok()?;
                Some(verdict(d, answer.first()?))
            })
            .collect(),
    }
}

/// A drawing's strokes as the classifier reads them.
pub fn strokes_of(drawing: &Drawing) -> Vec<Vec<[f32; 2]>> {
    drawing
        .strokes()
        .iter()
        .map(|s| s.points.iter().map(|p| [p.x as f32, p.y as f32]).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn during_a_burst_the_scorer_rests_three_times_as_long_as_it_worked_up_to_a_second() {
        // A quarter of one core: 100 ms of work, then 300 ms of rest.
        assert_eq!(
            backoff_after(Duration::from_millis(100)),
            Duration::from_millis(300)
        );
        assert_eq!(backoff_after(Duration::ZERO), Duration::ZERO);
        assert_eq!(backoff_after(Duration::from_secs(2)), MAX_BACKOFF);
    }
}
