//! What only a shared database can show: two replicas (two sets of stores on one
//! database) racing for the same idempotency key, the same job, the active model, and a
//! change made on one replica reaching the other.

use std::sync::Arc;

use super::scratch::{ScratchCluster, ScratchDatabase};
use crate::domain::{Drawing, IdempotencyKey, PlayerId, ShapeName};
use crate::store::{
    Ingest, JobKind, JobStatus, StoreError, StoredCheckpoint, Stores, Submission, SubmitOutcome,
};

/// Two replicas on one fresh database, or `None` where PostgreSQL is absent (outside CI).
fn two_replicas() -> Option<(ScratchDatabase, Arc<Stores>, Arc<Stores>)> {
    let database = ScratchCluster::database_or_skip()?;
    let a = Stores::open_postgres(&database.url()).unwrap();
    let b = Stores::open_postgres(&database.url()).unwrap();
    Some((database, Arc::new(a), Arc::new(b)))
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

#[test]
fn the_same_idempotency_key_on_two_replicas_at_once_stores_one_drawing() {
    let Some((_db, a, b)) = two_replicas() else {
        return;
    };
    let shape = a.metadata.shapes().unwrap()[0].id;
    let ingest_a = Ingest::start(a.clone(), None).unwrap();
    let ingest_b = Ingest::start(b.clone(), a.metadata.last_drawing_id().unwrap()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    const KEYS: usize = 40;
    let player = PlayerId::random();
    let submission = |n: usize| {
        let key = IdempotencyKey::parse(format!("race-{n}").as_bytes()).unwrap();
        Submission::new(player, &drawing(), shape, Some((key, [7; 16])))
    };
    let pairs = runtime.block_on(async {
        let mut pairs = Vec::new();
        for n in 0..KEYS {
            let (x, y) = tokio::join!(
                ingest_a.submit(submission(n)),
                ingest_b.submit(submission(n))
            );
            pairs.push((x.unwrap(), y.unwrap()));
        }
        pairs
    });
    for (x, y) in &pairs {
        let id = |o: &SubmitOutcome| match o {
            SubmitOutcome::Created(id) | SubmitOutcome::Duplicate(id) => *id,
        };
        assert_eq!(
            id(x),
            id(y),
            "both replicas answer the one drawing: {x:?} {y:?}"
        );
        let created = [x, y]
            .iter()
            .filter(|o| matches!(o, SubmitOutcome::Created(_)))
            .count();
        assert_eq!(created, 1, "{x:?} {y:?}");
    }
    assert_eq!(a.metadata.count_drawings().unwrap(), KEYS as u64);
    assert_eq!(
        a.blobs.records_after(None).count(),
        KEYS,
        "no stroke record without its row"
    );
    ingest_a.shutdown();
    ingest_b.shutdown();
}

#[test]
fn each_queued_job_is_claimed_by_exactly_one_replica() {
    let Some((_db, a, b)) = two_replicas() else {
        return;
    };
    const JOBS: usize = 30;
    for n in 0..JOBS {
        a.jobs
            .enqueue_job(
                JobKind::Train,
                &serde_json::json!({"n": n}),
                &format!("h{n}"),
            )
            .unwrap();
    }
    let claim = |stores: Arc<Stores>| {
        std::thread::spawn(move || {
            let mut mine = Vec::new();
            while let Some(job) = stores.jobs.start_next_job(&JobKind::ALL).unwrap() {
                mine.push(job.id);
            }
            mine
        })
    };
    let (x, y) = (claim(a.clone()), claim(b.clone()));
    let mut all: Vec<i64> = x.join().unwrap();
    all.extend(y.join().unwrap());
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (JOBS, JOBS));
}

#[test]
fn the_database_refuses_a_second_active_model_and_activations_on_two_replicas_leave_one() {
    let Some((database, a, b)) = two_replicas() else {
        return;
    };
    for v in ["v1", "v2"] {
        a.models
            .insert_model(v, None, "/m", &serde_json::json!({}))
            .unwrap();
    }
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let stores = if i % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || {
                assert!(stores
                    .models
                    .activate_model(if i % 3 == 0 { "v1" } else { "v2" })
                    .unwrap())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let active = a
        .models
        .models()
        .unwrap()
        .iter()
        .filter(|m| m.is_active)
        .count();
    assert_eq!(active, 1);
    // The rule is the database's, not the program's.
    let mut client = postgres::Client::connect(&database.url(), postgres::NoTls).unwrap();
    let refused = client.execute("UPDATE models SET is_active = TRUE", &[]);
    assert!(refused.is_err());
}

#[test]
fn a_shape_added_or_a_player_blocked_on_one_replica_reaches_the_other_by_the_refresh() {
    let Some((_db, a, b)) = two_replicas() else {
        return;
    };
    let name = ShapeName::parse("kite").unwrap();
    assert!(b.metadata.shape_by_name(&name).unwrap().is_none());
    a.shapes.add_shape(&name, "a kite", 2).unwrap().unwrap();
    let player = PlayerId::random();
    a.metadata.set_nickname(player, "ada").unwrap();
    a.review.set_blocked(player, true, 1).unwrap();
    let deadline = std::time::Instant::now() + super::REFRESH_EVERY * 5;
    while (b.metadata.shape_by_name(&name).unwrap().is_none() || !b.review.is_blocked(player))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(b.metadata.shape_by_name(&name).unwrap().is_some());
    assert!(b.review.is_blocked(player));
}

#[test]
fn a_running_job_whose_heartbeat_stopped_is_taken_over_and_one_still_beating_is_not() {
    let Some((_db, a, b)) = two_replicas() else {
        return;
    };
    for n in 0..2 {
        a.jobs
            .enqueue_job(
                JobKind::Train,
                &serde_json::json!({"n": n}),
                &format!("h{n}"),
            )
            .unwrap();
    }
    let dead = a.jobs.start_next_job(&[JobKind::Train]).unwrap().unwrap();
    let alive = a.jobs.start_next_job(&[JobKind::Train]).unwrap().unwrap();
    // Both just claimed: nothing is stale yet.
    assert_eq!(b.jobs.recover_stale_jobs(3, 60_000).unwrap(), (0, 0));
    // A cancel asked on another replica reaches the worker with its heartbeat.
    b.jobs.cancel_job(alive.id).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let beat = a.jobs.heartbeat_jobs(&[alive.lease()]).unwrap();
    assert_eq!((beat.cancelled, beat.lost), (vec![alive.id], vec![]));
    // Only the job whose worker stopped beating is taken over, charged one attempt.
    assert_eq!(b.jobs.recover_stale_jobs(3, 200).unwrap(), (1, 0));
    let requeued = b.jobs.job(dead.id).unwrap().unwrap();
    assert_eq!(requeued.status, crate::store::JobStatus::Queued);
    assert_eq!(
        b.jobs.job(alive.id).unwrap().unwrap().status,
        crate::store::JobStatus::Running
    );
    let again = b.jobs.start_next_job(&[JobKind::Train]).unwrap().unwrap();
    assert_eq!((again.id, again.attempt), (dead.id, 2));
}

#[test]
fn a_run_whose_job_was_taken_over_writes_nothing_and_its_checkpoint_goes_when_the_job_ends() {
    let Some((_db, a, b)) = two_replicas() else {
        return;
    };
    let (job, _) = a
        .jobs
        .enqueue_job(JobKind::Train, &serde_json::json!({}), "fenced")
        .unwrap();
    let frozen = a.jobs.start_next_job(&[JobKind::Train]).unwrap().unwrap();
    let checkpoint = |epochs: i64| StoredCheckpoint {
        epochs,
        manifest: format!("{{\"epochs\": {epochs}}}").into_bytes(),
        weights: vec![epochs as u8; 4096],
    };
    a.jobs
        .save_checkpoint(frozen.lease(), &checkpoint(1))
        .unwrap();
    assert_eq!(b.jobs.job_checkpoint(job.id).unwrap(), Some(checkpoint(1)));
    // The frozen run's heartbeat goes stale; another process takes the job over.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(b.jobs.recover_stale_jobs(3, 200).unwrap(), (1, 0));
    let owner = b.jobs.start_next_job(&[JobKind::Train]).unwrap().unwrap();
    assert_eq!(owner.id, job.id);
    assert_ne!(owner.claim, frozen.claim);
    // The checkpoint survived the takeover, for the new owner to resume from.
    assert_eq!(b.jobs.job_checkpoint(job.id).unwrap(), Some(checkpoint(1)));

    // Woken, the old run learns it lost the job, and none of its writes land.
    let beat = a.jobs.heartbeat_jobs(&[frozen.lease()]).unwrap();
    assert_eq!(beat.lost, vec![job.id]);
    let taken = |result: Result<(), StoreError>| {
        assert!(matches!(result, Err(StoreError::JobTakenOver(id)) if id == job.id));
    };
    taken(a.jobs.save_checkpoint(frozen.lease(), &checkpoint(5)));
    taken(
        a.jobs
            .record_progress(frozen.lease(), &serde_json::json!({"epoch": 9})),
    );
    taken(
        a.jobs
            .complete_job(frozen.lease(), &serde_json::json!({}), "v9"),
    );
    taken(a.jobs.fail_job(frozen.lease(), "no"));
    taken(a.jobs.mark_job_cancelled(frozen.lease()));
    taken(a.jobs.retry_job_later(frozen.lease(), "later", 0));
    assert!(matches!(
        a.jobs.requeue_job(frozen.lease()),
        Err(StoreError::JobTakenOver(_))
    ));
    let row = b.jobs.job(job.id).unwrap().unwrap();
    assert_eq!((row.status, row.progress), (JobStatus::Running, None));
    assert_eq!(b.jobs.job_checkpoint(job.id).unwrap(), Some(checkpoint(1)));

    // The owner's writes land; the checkpoint goes when the job ends.
    b.jobs
        .save_checkpoint(owner.lease(), &checkpoint(2))
        .unwrap();
    assert_eq!(a.jobs.job_checkpoint(job.id).unwrap(), Some(checkpoint(2)));
    assert!(b
        .jobs
        .heartbeat_jobs(&[owner.lease()])
        .unwrap()
        .lost
        .is_empty());
    b.jobs
        .complete_job(owner.lease(), &serde_json::json!({}), "v1")
        .unwrap();
    assert_eq!(b.jobs.job_checkpoint(job.id).unwrap(), None);
    assert_eq!(
        a.jobs
            .job(job.id)
            .unwrap()
            .unwrap()
            .model_version
            .as_deref(),
        Some("v1")
    );
}

#[test]
fn an_upload_is_stored_whole_or_not_at_all_read_back_in_chunks_and_dropped_when_its_job_ends() {
    use crate::store::uploads::{UploadStoreError, UPLOAD_CHUNK_BYTES};
    let Some((_db, a, b)) = two_replicas() else {
        return;
    };
    let (ua, ub) = (a.uploads.clone().unwrap(), b.uploads.clone().unwrap());
    let body: Vec<u8> = (0..UPLOAD_CHUNK_BYTES * 2 + 123)
        .map(|i| (i % 251) as u8)
        .collect();
    // Over the limit: nothing is kept.
    let refused = ua.store_upload("big", &mut body.as_slice(), body.len() as u64 - 1);
    assert!(matches!(refused, Err(UploadStoreError::TooLarge { .. })));
    assert_eq!(ub.upload_chunk("big", 0).unwrap(), None);
    // Stored on one replica, read back on the other, chunk by chunk.
    let stored = ua.store_upload("u1", &mut body.as_slice(), body.len() as u64);
    assert_eq!(stored.unwrap(), body.len() as u64);
    let mut read = Vec::new();
    let mut index = 0;
    while let Some(chunk) = ub.upload_chunk("u1", index).unwrap() {
        assert!(chunk.len() <= UPLOAD_CHUNK_BYTES);
        read.extend_from_slice(&chunk);
        index += 1;
    }
    assert_eq!((index, read == body), (3, true));
    // The import job naming it ends (cancelled while it waits): the upload goes with it.
    let config = serde_json::json!({"upload": "u1", "in_database": true});
    let (job, _) = a.jobs.enqueue_job(JobKind::Import, &config, "u1").unwrap();
    assert!(ub.upload_chunk("u1", 0).unwrap().is_some());
    b.jobs.cancel_job(job.id).unwrap();
    assert_eq!(ua.upload_chunk("u1", 0).unwrap(), None);
    // A fresh upload no job names is kept by a sweep of older ones only.
    ua.store_upload("orphan", &mut &b"x"[..], 10).unwrap();
    assert_eq!(ub.sweep_uploads(0).unwrap(), 0);
    assert_eq!(ub.sweep_uploads(i64::MAX).unwrap(), 1);
    assert_eq!(ua.upload_chunk("orphan", 0).unwrap(), None);
}
