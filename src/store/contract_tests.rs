//! The storage contract: the promises services rely on, written against the store traits
//! only (the trait objects in [`Stores`], and the group-commit writer, which sees nothing
//! else), so that every backend runs the very same suite.
//!
//! A backend joins by implementing [`Backend`] (open a fresh, empty set of stores) and
//! adding one line to the [`contract_suite!`] invocations at the bottom: the embedded
//! backend (sled + SQLite in a temporary directory), and PostgreSQL (a fresh database on a
//! throwaway cluster, dropped with its guard; skipped with a message where PostgreSQL is
//! not installed, except under `CI=true`).

use std::sync::Arc;

use super::metadata::{NewDrawingRow, TrainingFilter};
use super::postgres::scratch::{ScratchCluster, ScratchDatabase};
use super::{
    CancelOutcome, Ingest, IngestError, JobKind, JobStatus, Stores, Submission, SubmitOutcome,
};
use crate::domain::quality::QualitySettings;
use crate::domain::record::Record;
use crate::domain::review::{DrawingFilter, Page, ReviewAction};
use crate::domain::{Drawing, DrawingId, IdempotencyKey, Judgement, PlayerId, QualityScore};
use crate::store::keys::NewApiKey;
use crate::store::quality::Scored;

/// A storage backend under test.
pub trait Backend {
    /// Whatever keeps the fresh stores alive and cleans up after them (a temporary
    /// directory, a scratch database).
    type Guard;
    /// Opens a fresh, empty set of stores.
    fn open(&self) -> (Self::Guard, Stores);
    /// Whether the backend can run here; a test of one that cannot says so and passes.
    fn available(&self) -> bool {
        true
    }
}

/// Today's backend: sled for stroke records, SQLite for the rest, in a temporary directory.
pub struct Embedded;

impl Backend for Embedded {
    type Guard = tempfile::TempDir;

    fn open(&self) -> (Self::Guard, Stores) {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::open(dir.path()).unwrap();
        (dir, stores)
    }
}

/// PostgreSQL: every seam on a fresh database of the process's scratch cluster.
pub struct Postgres;

impl Backend for Postgres {
    type Guard = ScratchDatabase;

    fn open(&self) -> (Self::Guard, Stores) {
        let database = ScratchCluster::database_or_skip().expect("PostgreSQL is available");
        let stores = Stores::open_postgres(&database.url()).unwrap();
        (database, stores)
    }

    fn available(&self) -> bool {
        ScratchCluster::shared_or_skip().is_some()
    }
}

fn drawing() -> Drawing {
    Drawing::parse(
        serde_json::from_value(serde_json::json!({
            "shape": "line", "canvas": {"width": 100, "height": 100},
            "strokes": [{"points": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}]
        }))
        .unwrap(),
    )
    .unwrap()
}

fn first_shape(stores: &Stores) -> i64 {
    stores.metadata.shapes().unwrap()[0].id
}

/// Rows (no stroke records) for `n` drawings of one player, created at 1000 + i ms.
fn rows(stores: &Stores, n: usize) -> Vec<NewDrawingRow> {
    let shape_id = first_shape(stores);
    let player = PlayerId::random();
    let mut last = None;
    (0..n)
        .map(|i| {
            let id = DrawingId::next(1000 + i as u64, last);
            last = Some(id);
            NewDrawingRow {
                id,
                player,
                shape_id,
                metadata: serde_json::json!({"strokes": 1}),
                created_at_ms: 1000 + i as u64,
                idempotency: None,
                source_key: None,
                judgement: None,
            }
        })
        .collect()
}

/// Runs `f` with the group-commit writer started on `stores`, on a small runtime.
fn with_ingest<T>(stores: Stores, f: impl AsyncFnOnce(&Ingest, &Stores) -> T) -> T {
    let stores = Arc::new(stores);
    let last = stores.metadata.last_drawing_id().unwrap();
    let ingest = Ingest::start(stores.clone(), last).unwrap();
    let out = block_on(f(&ingest, &stores));
    ingest.shutdown();
    out
}

/// Drives a future to completion on this thread without a tokio runtime, so that the store
/// calls a test makes between awaits run as on the blocking threads that make them in the
/// program (PostgreSQL's blocking client refuses to run inside a runtime).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// A quality score of `value` (its validity too), with no model's part.
fn score_of(value: f64) -> QualityScore {
    QualityScore {
        score: value,
        validity: value,
        points: 1.0,
        strokes: 1.0,
        size: 1.0,
        duration: None,
        agreement: None,
        model_version: None,
        unsure: false,
    }
}

fn submission(stores: &Stores, player: PlayerId, key: &str, digest: u8) -> Submission {
    let key = IdempotencyKey::parse(key.as_bytes()).unwrap();
    Submission::new(
        player,
        &drawing(),
        first_shape(stores),
        Some((key, [digest; 16])),
    )
}

pub fn a_drawings_stroke_record_and_row_round_trip<B: Backend>(backend: &B) {
    let (_guard, stores) = backend.open();
    let row = rows(&stores, 1).remove(0);
    let record = Record {
        id: row.id,
        player: row.player,
        created_at_ms: row.created_at_ms,
        idempotency: None,
        judgement: None,
        source: None,
        drawing: drawing(),
    }
    .encode();
    stores
        .blobs
        .put_durably(&[(row.id, record.clone())])
        .unwrap();
    stores
        .metadata
        .insert_drawings(std::slice::from_ref(&row))
        .unwrap();

    assert_eq!(stores.blobs.get(row.id).unwrap(), Some(record));
    assert_eq!(stores.blobs.last_id().unwrap(), Some(row.id));
    let stored = stores.metadata.drawing(row.id).unwrap().unwrap();
    assert_eq!(stored.id, row.id.to_string());
    assert_eq!(stored.player_id, row.player.to_string());
    assert_eq!(stored.created_at_ms, row.created_at_ms as i64);
    assert_eq!(stored.deleted_at_ms, None);
    assert_eq!(stores.metadata.count_drawings().unwrap(), 1);
    assert_eq!(stores.metadata.last_drawing_id().unwrap(), Some(row.id));
    let unknown = DrawingId::next(5000, Some(row.id));
    assert_eq!(stores.blobs.get(unknown).unwrap(), None);
    assert!(stores.metadata.drawing(unknown).unwrap().is_none());
}

pub fn the_same_idempotency_key_and_body_answer_the_first_id_and_another_body_conflicts<
    B: Backend,
>(
    backend: &B,
) {
    let (_guard, stores) = backend.open();
    with_ingest(stores, async |ingest, stores| {
        let player = PlayerId::random();
        let first = ingest
            .submit(submission(stores, player, "k-1", 1))
            .await
            .unwrap();
        let SubmitOutcome::Created(id) = first else {
            panic!("the first submission was {first:?}");
        };
        let again = ingest.submit(submission(stores, player, "k-1", 1)).await;
        assert_eq!(again, Ok(SubmitOutcome::Duplicate(id)));
        let changed = ingest.submit(submission(stores, player, "k-1", 2)).await;
        assert_eq!(changed, Err(IngestError::IdempotencyConflict));
        // Keys are scoped to a player: another player's same key is a new drawing.
        let other = ingest
            .submit(submission(stores, PlayerId::random(), "k-1", 2))
            .await;
        assert!(matches!(other, Ok(SubmitOutcome::Created(o)) if o != id));
        let record = stores
            .metadata
            .idempotency(player, &IdempotencyKey::parse(b"k-1").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(record.drawing_id, id);
        assert_eq!(record.body_digest, [1; 16]);
        assert_eq!(stores.metadata.count_drawings().unwrap(), 2);
    });
}

pub fn drawing_ids_strictly_increase_across_batches_and_restarts<B: Backend>(backend: &B) {
    let (_guard, stores) = backend.open();
    let stores = Arc::new(stores);
    let mut ids = Vec::new();
    for _run in 0..2 {
        // Each run starts a writer from what the stores hold, as a restart does.
        let last = stores.metadata.last_drawing_id().unwrap();
        let ingest = Ingest::start(stores.clone(), last).unwrap();
        block_on(async {
            for n in 0..5 {
                let player = PlayerId::random();
                let outcome = ingest
                    .submit(submission(&stores, player, &format!("n-{n}"), 0))
                    .await
                    .unwrap();
                let SubmitOutcome::Created(id) = outcome else {
                    panic!("{outcome:?}");
                };
                ids.push(id);
            }
        });
        ingest.shutdown();
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(
        stores.metadata.last_drawing_id().unwrap(),
        ids.last().copied()
    );
    assert_eq!(stores.blobs.last_id().unwrap(), ids.last().copied());
}

pub fn a_job_is_enqueued_once_claimed_completed_cancelled_and_recovered<B: Backend>(backend: &B) {
    let (_guard, stores) = backend.open();
    let jobs = &stores.jobs;
    let config = serde_json::json!({"epochs": 1});
    let (job, existed) = jobs.enqueue_job(JobKind::Train, &config, "hash-a").unwrap();
    assert!(!existed);
    assert_eq!(job.status, JobStatus::Queued);
    let (same, existed) = jobs.enqueue_job(JobKind::Train, &config, "hash-a").unwrap();
    assert!(existed);
    assert_eq!(same.id, job.id);

    let claimed = jobs.start_next_job(&JobKind::ALL).unwrap().unwrap();
    assert_eq!((claimed.id, claimed.status), (job.id, JobStatus::Running));
    assert_eq!(claimed.attempt, 1);
    assert!(jobs.start_next_job(&JobKind::ALL).unwrap().is_none());
    jobs.complete_job(claimed.lease(), &serde_json::json!({"accuracy": 0.5}), "v1")
        .unwrap();
    let done = jobs.job(job.id).unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.model_version.as_deref(), Some("v1"));
    assert_eq!(
        jobs.cancel_job(job.id).unwrap(),
        Some(CancelOutcome::AlreadyFinished(JobStatus::Completed))
    );

    let (waiting, _) = jobs.enqueue_job(JobKind::Train, &config, "hash-b").unwrap();
    assert_eq!(
        jobs.cancel_job(waiting.id).unwrap(),
        Some(CancelOutcome::Cancelled)
    );
    assert_eq!(
        jobs.job(waiting.id).unwrap().unwrap().status,
        JobStatus::Cancelled
    );
    assert_eq!(jobs.cancel_job(i64::MAX).unwrap(), None);

    // Only the kinds asked for are claimed (the scheduler asks for kinds with none running),
    // and a graceful stop gives the claimed attempt back.
    let (backup, _) = jobs
        .enqueue_job(JobKind::Backup, &config, "hash-backup")
        .unwrap();
    assert!(jobs.start_next_job(&[JobKind::Train]).unwrap().is_none());
    let claimed = jobs.start_next_job(&[JobKind::Backup]).unwrap().unwrap();
    assert_eq!((claimed.id, claimed.kind), (backup.id, JobKind::Backup));
    assert_eq!(
        jobs.requeue_job(claimed.lease()).unwrap(),
        JobStatus::Queued
    );
    let again = jobs.start_next_job(&[JobKind::Backup]).unwrap().unwrap();
    assert_eq!(again.attempt, 1, "a graceful stop charges no attempt");
    jobs.complete_job_with_result(again.lease(), &serde_json::json!({"files": 3}))
        .unwrap();
    assert_eq!(
        jobs.job(backup.id).unwrap().unwrap().result,
        Some(serde_json::json!({"files": 3}))
    );

    // A job left running by a crash goes back to the queue, then fails once it has used
    // its attempts.
    let (crashed, _) = jobs.enqueue_job(JobKind::Train, &config, "hash-c").unwrap();
    assert_eq!(
        jobs.start_next_job(&JobKind::ALL).unwrap().unwrap().id,
        crashed.id
    );
    assert_eq!(jobs.recover_interrupted_jobs(2).unwrap(), (1, 0));
    assert_eq!(
        jobs.job(crashed.id).unwrap().unwrap().status,
        JobStatus::Queued
    );
    assert_eq!(
        jobs.start_next_job(&JobKind::ALL).unwrap().unwrap().attempt,
        2
    );
    assert_eq!(jobs.recover_interrupted_jobs(2).unwrap(), (0, 1));
    assert_eq!(
        jobs.job(crashed.id).unwrap().unwrap().status,
        JobStatus::Failed
    );
}

pub fn exactly_one_model_is_active_after_activate_and_rollback<B: Backend>(backend: &B) {
    let (_guard, stores) = backend.open();
    let models = &stores.models;
    assert!(models.active_model().unwrap().is_none());
    for _ in 0..2 {
        let version = models.next_model_version().unwrap();
        models
            .insert_model(&version, None, "/models", &serde_json::json!({}))
            .unwrap();
    }
    let active = || -> Vec<String> {
        models
            .models()
            .unwrap()
            .into_iter()
            .filter(|m| m.is_active)
            .map(|m| m.version)
            .collect()
    };
    assert!(models.activate_model("v1").unwrap());
    assert_eq!(active(), ["v1"]);
    assert!(models.activate_model("v2").unwrap());
    assert_eq!(active(), ["v2"]);
    assert!(!models.activate_model("v9").unwrap());
    assert_eq!(active(), ["v2"]);
    // A rollback activates the previous model.
    let previous = models.previous_model().unwrap().unwrap();
    assert_eq!(previous.version, "v1");
    assert!(models.roll_back_model(&previous.version).unwrap());
    assert_eq!(active(), ["v1"]);
    assert_eq!(models.active_model().unwrap().unwrap().version, "v1");
}

pub fn rollback_walks_back_through_the_activation_history_and_never_toggles<B: Backend>(
    backend: &B,
) {
    let (_guard, stores) = backend.open();
    let models = &stores.models;
    for _ in 0..3 {
        let version = models.next_model_version().unwrap();
        models
            .insert_model(&version, None, "/models", &serde_json::json!({}))
            .unwrap();
    }
    for version in ["v1", "v2", "v3"] {
        assert!(models.activate_model(version).unwrap());
    }
    let roll_back = || {
        let previous = models.previous_model().unwrap().map(|m| m.version);
        if let Some(version) = &previous {
            assert!(models.roll_back_model(version).unwrap());
        }
        previous
    };
    assert_eq!(roll_back().as_deref(), Some("v2"));
    assert_eq!(
        roll_back().as_deref(),
        Some("v1"),
        "a second rollback goes further back"
    );
    assert_eq!(roll_back(), None, "nothing before the first activation");
    assert_eq!(models.active_model().unwrap().unwrap().version, "v1");
    // A new activation starts a new history on top of what was rolled back to.
    assert!(models.activate_model("v3").unwrap());
    assert_eq!(roll_back().as_deref(), Some("v1"));
}

pub fn an_api_key_authenticates_until_it_is_revoked<B: Backend>(backend: &B) {
    let (_guard, stores) = backend.open();
    let keys = &stores.keys;
    let created = keys
        .create_key(&NewApiKey::parse("robot", Some(60)).unwrap())
        .unwrap();
    assert_eq!(created.row.name, "robot");
    assert_eq!(created.row.rate_per_min, 60);
    let found = keys.key_by_secret(&created.key).unwrap().unwrap();
    assert_eq!(found.id, created.row.id);
    assert!(keys.key_by_secret("dbx_not-a-key").unwrap().is_none());
    assert_eq!(keys.keys().unwrap().len(), 1);

    let revoked = keys.revoke_key(created.row.id).unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(keys.key_by_secret(&created.key).unwrap().is_none());
    assert!(keys.revoke_key(i64::MAX).unwrap().is_none());
}

pub fn an_admin_session_lives_until_it_is_deleted_or_expires<B: Backend>(backend: &B) {
    let (_guard, stores) = backend.open();
    let admins = &stores.admins;
    assert_eq!(admins.admin_count().unwrap(), 0);
    let admin = admins.create_admin("ada", "hash", 10).unwrap().unwrap();
    assert!(admins.create_admin("ada", "other", 11).unwrap().is_none());
    let (found, hash) = admins.admin_by_name("ada").unwrap().unwrap();
    assert_eq!((found.id, hash.as_str()), (admin.id, "hash"));

    let (live, expiring) = ([1u8; 32], [2u8; 32]);
    admins.create_session(&live, admin.id, 100, 10_000).unwrap();
    admins
        .create_session(&expiring, admin.id, 100, 200)
        .unwrap();
    let session = admins.session(&live).unwrap().unwrap();
    assert_eq!(
        (session.admin_id, session.username.as_str()),
        (admin.id, "ada")
    );
    assert_eq!(admins.purge_sessions(300).unwrap(), 1);
    assert!(admins.session(&expiring).unwrap().is_none());
    admins.delete_session(&live).unwrap();
    assert!(admins.session(&live).unwrap().is_none());

    // A new password ends every session of the account.
    admins.create_session(&live, admin.id, 400, 10_000).unwrap();
    assert!(admins.set_password("ada", "new-hash", 500).unwrap());
    assert!(admins.session(&live).unwrap().is_none());
}

pub fn training_drawings_stream_in_id_order_within_the_created_time_range<B: Backend>(backend: &B) {
    let (_guard, stores) = backend.open();
    // Created at 1000, 1001, ..., 1004 ms.
    let rows = rows(&stores, 5);
    stores.metadata.insert_drawings(&rows).unwrap();
    let visited = |from: Option<u64>, to: Option<u64>| -> Vec<DrawingId> {
        let mut ids = Vec::new();
        stores
            .metadata
            .visit_training_drawings(
                &TrainingFilter {
                    created_from_ms: from,
                    created_to_ms: to,
                    ..TrainingFilter::default()
                },
                &mut |d| {
                    ids.push(d.id);
                    Ok(())
                },
            )
            .unwrap();
        ids
    };
    let all: Vec<DrawingId> = rows.iter().map(|r| r.id).collect();
    assert_eq!(visited(None, None), all);
    assert_eq!(visited(Some(1001), None), all[1..]);
    assert_eq!(visited(None, Some(1003)), all[..3]);
    assert_eq!(visited(Some(1001), Some(1003)), all[1..3]);
    assert!(visited(Some(1003), Some(1003)).is_empty());
    // An error from the visitor stops the walk and comes back.
    let mut seen = 0;
    let stopped = stores
        .metadata
        .visit_training_drawings(&TrainingFilter::default(), &mut |_| {
            seen += 1;
            Err(crate::store::StoreError::Corrupt("stop here".into()))
        });
    assert!(stopped.is_err());
    assert_eq!(seen, 1);
}

pub fn a_soft_deleted_drawing_is_hidden_from_listings_and_training_until_restored<B: Backend>(
    backend: &B,
) {
    let (_guard, stores) = backend.open();
    let rows = rows(&stores, 3);
    stores.metadata.insert_drawings(&rows).unwrap();
    let listed = || -> Vec<DrawingId> {
        let page = stores
            .review
            .list_drawings(&DrawingFilter::default(), Page::default())
            .unwrap();
        let mut ids: Vec<DrawingId> = page.items.into_iter().map(|i| i.id).collect();
        ids.sort();
        ids
    };
    let trained = || -> usize {
        stores
            .metadata
            .training_drawings(&TrainingFilter {
                include_flagged: true,
                ..TrainingFilter::default()
            })
            .unwrap()
            .len()
    };
    assert_eq!(listed().len(), 3);
    let deleted = rows[1].id;
    assert_eq!(
        stores
            .review
            .apply(&[deleted], ReviewAction::Delete, 2000)
            .unwrap(),
        1
    );
    assert_eq!(listed(), [rows[0].id, rows[2].id]);
    assert_eq!(trained(), 2);
    assert_eq!(
        stores
            .review
            .count_matching(&DrawingFilter::default())
            .unwrap(),
        2
    );
    let item = stores.review.review_item(deleted).unwrap().unwrap();
    assert_eq!(item.deleted_at, Some(2000));

    stores
        .review
        .apply(&[deleted], ReviewAction::Restore, 3000)
        .unwrap();
    assert_eq!(listed().len(), 3);
    assert_eq!(trained(), 3);
}

pub fn quality_settings_round_trip<B: Backend>(backend: &B) {
    let (_guard, stores) = backend.open();
    assert_eq!(
        stores.quality.quality_settings().unwrap(),
        QualitySettings::default()
    );
    let changed = QualitySettings {
        auto_flag_below: 0.25,
    };
    stores.quality.set_quality_settings(changed).unwrap();
    assert_eq!(stores.quality.quality_settings().unwrap(), changed);
}

pub fn scores_and_verdicts_are_recorded_and_the_catch_up_walk_finds_the_unscored<B: Backend>(
    backend: &B,
) {
    let (_guard, stores) = backend.open();
    let rows = rows(&stores, 4);
    stores.metadata.insert_drawings(&rows).unwrap();
    let unscored = |after, limit| {
        stores
            .quality
            .unscored_drawings_after(after, limit)
            .unwrap()
    };
    let ids: Vec<DrawingId> = rows.iter().map(|r| r.id).collect();
    assert_eq!(unscored(None, 10), ids);
    assert_eq!(unscored(Some(ids[1]), 1), vec![ids[2]], "pages in id order");

    let score = score_of;
    let judged = Judgement {
        recognized: true,
        model_version: "v3".into(),
    };
    let scored = [
        Scored {
            id: ids[0],
            score: score(0.1),
            judgement: Some(judged.clone()),
        },
        Scored {
            id: ids[2],
            score: score(0.9),
            judgement: None,
        },
    ];
    stores.quality.record_scores(&scored, 0.2, None).unwrap();
    assert_eq!(unscored(None, 10), vec![ids[1], ids[3]]);

    let low = stores.metadata.drawing(ids[0]).unwrap().unwrap();
    assert_eq!(low.quality_score, Some(0.1));
    assert!(low.is_flagged, "below the threshold: flagged");
    assert_eq!(low.recognized, Some(true));
    assert_eq!(low.recognized_by.as_deref(), Some("v3"));
    let high = stores.metadata.drawing(ids[2]).unwrap().unwrap();
    assert!(!high.is_flagged);
    assert_eq!(high.recognized, None, "no verdict given: none stored");

    // A score without a verdict keeps the verdict the row has.
    let rescored = [Scored {
        id: ids[0],
        score: score(0.5),
        judgement: None,
    }];
    stores.quality.record_scores(&rescored, 0.2, None).unwrap();
    let row = stores.metadata.drawing(ids[0]).unwrap().unwrap();
    assert_eq!(row.recognized_by.as_deref(), Some("v3"));
    assert!(!row.is_flagged, "an auto-flag lifts when the score rises");
}

pub fn the_quality_histogram_bins_every_live_score_by_its_hundredth<B: Backend>(backend: &B) {
    let (_guard, stores) = backend.open();
    // Scores on and near bin edges, and the ends of the range.
    let values = [
        0.0, 0.009, 0.01, 0.05, 0.1, 0.1499, 0.15, 0.2, 0.3333, 0.335, 0.34, 0.35, 0.5, 0.6667,
        0.67, 0.7, 0.95, 0.999, 1.0,
    ];
    let rows = rows(&stores, values.len() + 3);
    stores.metadata.insert_drawings(&rows).unwrap();
    let scored: Vec<Scored> = rows
        .iter()
        .zip(values)
        .map(|(row, value)| Scored {
            id: row.id,
            score: score_of(value),
            judgement: None,
        })
        .collect();
    stores.quality.record_scores(&scored, 0.2, None).unwrap();
    // One scored and one unscored drawing deleted: neither counts.
    let deleted = [rows[5].id, rows[values.len()].id];
    stores
        .review
        .apply(&deleted, ReviewAction::Delete, 2000)
        .unwrap();
    let live: Vec<f64> = values
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 5)
        .map(|(_, &v)| v)
        .collect();
    for bins in [1, 3, 7, 10, 20, 100] {
        let mut expected = vec![0u64; bins];
        for &v in &live {
            expected[crate::domain::quality::bin_of(v, bins)] += 1;
        }
        let histogram = stores.quality.histogram(bins).unwrap();
        assert_eq!(histogram.counts, expected, "{bins} bins");
        assert_eq!(histogram.unscored, 2, "{bins} bins");
    }
}

/// One `#[test]` per promise for a backend: `contract_suite!(module_name, backend_value);`.
macro_rules! contract_suite {
    ($name:ident, $backend:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn the_quality_histogram_bins_every_live_score_by_its_hundredth() {
                if !Backend::available(&$backend) {
                    return;
                }
                super::the_quality_histogram_bins_every_live_score_by_its_hundredth(&$backend);
            }

            #[test]
            fn a_drawings_stroke_record_and_row_round_trip() {
                if !Backend::available(&$backend) {
                    return;
                }
                super::a_drawings_stroke_record_and_row_round_trip(&$backend);
            }

            #[test]
            fn the_same_idempotency_key_and_body_answer_the_first_id_and_another_body_conflicts()
            {
                if !Backend::available(&$backend) {
                    return;
                }
                super::the_same_idempotency_key_and_body_answer_the_first_id_and_another_body_conflicts(&$backend);
            }

            #[test]
            fn drawing_ids_strictly_increase_across_batches_and_restarts() {
                if !Backend::available(&$backend) {
                    return;
                }
                super::drawing_ids_strictly_increase_across_batches_and_restarts(&$backend);
            }

            #[test]
            fn a_job_is_enqueued_once_claimed_completed_cancelled_and_recovered() {
                if !Backend::available(&$backend) {
                    return;
                }
                super::a_job_is_enqueued_once_claimed_completed_cancelled_and_recovered(
                    &$backend,
                );
            }

            #[test]
            fn exactly_one_model_is_active_after_activate_and_rollback() {
                if !Backend::available(&$backend) {
                    return;
                }
                super::exactly_one_model_is_active_after_activate_and_rollback(&$backend);
            }

            #[test]
            fn rollback_walks_back_through_the_activation_history_and_never_toggles() {
                super::rollback_walks_back_through_the_activation_history_and_never_toggles(
                    &$backend,
                );
            }

            #[test]
            fn an_api_key_authenticates_until_it_is_revoked() {
                if !Backend::available(&$backend) {
                    return;
                }
                super::an_api_key_authenticates_until_it_is_revoked(&$backend);
            }

            #[test]
            fn an_admin_session_lives_until_it_is_deleted_or_expires() {
                if !Backend::available(&$backend) {
                    return;
                }
                super::an_admin_session_lives_until_it_is_deleted_or_expires(&$backend);
            }

            #[test]
            fn a_soft_deleted_drawing_is_hidden_from_listings_and_training_until_restored() {
                if !Backend::available(&$backend) {
                    return;
                }
                super::a_soft_deleted_drawing_is_hidden_from_listings_and_training_until_restored(
                    &$backend,
                );
            }

            #[test]
            fn quality_settings_round_trip() {
                if !Backend::available(&$backend) {
                    return;
                }
                super::quality_settings_round_trip(&$backend);
            }
            #[test]
            fn scores_and_verdicts_are_recorded_and_the_catch_up_walk_finds_the_unscored() {
                if !Backend::available(&$backend) {
                    return;
                }
                super::scores_and_verdicts_are_recorded_and_the_catch_up_walk_finds_the_unscored(
                    &$backend,
                );
            }

            #[test]
            fn training_drawings_stream_in_id_order_within_the_created_time_range() {
                if !Backend::available(&$backend) {
                    return;
                }
                super::training_drawings_stream_in_id_order_within_the_created_time_range(
                    &$backend,
                );
            }
        }
    };
}

contract_suite!(embedded, Embedded);
contract_suite!(postgres, Postgres);
