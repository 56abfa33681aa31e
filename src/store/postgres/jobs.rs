//! [`JobStore`] on PostgreSQL. Every transition is one transaction; a job is claimed with
//! `FOR UPDATE SKIP LOCKED`, so two replicas (or workers) never take the same one.
//!
//! Each claim draws a new number from the `job_claims` sequence into the row's `claim`;
//! every write a run makes names it in its `WHERE` clause with `status = 'running'`, so a
//! run whose job was taken over (its worker frozen past the takeover, then woken) changes
//! nothing and learns so ([`StoreError::JobTakenOver`]). A running training job's last
//! checkpoint lives in `job_checkpoints` (dropped by a trigger when the job ends).

use super::PgStore;
use crate::store::jobs::{
    CancelOutcome, Heartbeat, JobKind, JobLease, JobRow, JobStatus, JobStore, StoredCheckpoint,
    DUPLICATE_WINDOW_MS,
};
use crate::store::{now_ms, StoreError};

const COLUMNS: &str =
    "id, status, config, config_hash, attempt, progress, metrics, error, dataset, \
     model_version, cancel_requested, created_at, started_at, finished_at, not_before, kind, result, \
     coalesce(claim, 0)";

/// What makes a write a run's own: the job still runs under the run's claim (`$1` the id,
/// `$2` the claim).
const OWNED: &str = "id = $1 AND claim = $2 AND status = 'running'";

fn json_column(row: &postgres::Row, index: usize) -> Result<Option<serde_json::Value>, StoreError> {
    let text: Option<String> = row.try_get(index)?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

fn job_from_row(row: &postgres::Row) -> Result<JobRow, StoreError> {
    Ok(JobRow {
        id: row.try_get(0)?,
        kind: JobKind::parse(row.try_get(15)?)?,
        status: JobStatus::parse(row.try_get(1)?)?,
        config: json_column(row, 2)?.unwrap_or(serde_json::Value::Null),
        config_hash: row.try_get(3)?,
        attempt: row.try_get(4)?,
        progress: json_column(row, 5)?,
        metrics: json_column(row, 6)?,
        error: row.try_get(7)?,
        dataset: json_column(row, 8)?,
        model_version: row.try_get(9)?,
        cancel_requested: row.try_get(10)?,
        created_at_ms: row.try_get(11)?,
        started_at_ms: row.try_get(12)?,
        finished_at_ms: row.try_get(13)?,
        not_before_ms: row.try_get(14)?,
        result: json_column(row, 16)?,
        claim: row.try_get(17)?,
    })
}

impl PgStore {
    /// Runs `sql`, an update whose `WHERE` is [`OWNED`] (with `$1` and `$2` bound to the
    /// lease); [`StoreError::JobTakenOver`] when it changed no row.
    fn update_owned_job(
        &self,
        lease: JobLease,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<(), StoreError> {
        let mut all: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&lease.id, &lease.claim];
        all.extend_from_slice(params);
        match self.conn()?.execute(sql, &all)? {
            0 => Err(StoreError::JobTakenOver(lease.id)),
            _ => Ok(()),
        }
    }

    fn update_job(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<(), StoreError> {
        self.conn()?.execute(sql, params)?;
        Ok(())
    }
}

impl JobStore for PgStore {
    fn enqueue_job(
        &self,
        kind: JobKind,
        config: &serde_json::Value,
        config_hash: &str,
    ) -> Result<(JobRow, bool), StoreError> {
        let now = now_ms() as i64;
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // One enqueue at a time per configuration, across replicas.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&config_hash],
        )?;
        let existing = tx.query_opt(
            "SELECT id FROM training_jobs WHERE config_hash = $1 AND kind = $3
             AND status IN ('pending','queued','running') AND created_at > $2
             ORDER BY id DESC LIMIT 1",
            &[
                &config_hash,
                &(now - DUPLICATE_WINDOW_MS as i64),
                &kind.as_str(),
            ],
        )?;
        let (id, existed) = match existing {
            Some(row) => (row.try_get::<_, i64>(0)?, true),
            None => (
                tx.query_one(
                    "INSERT INTO training_jobs (status, config, config_hash, created_at, kind)
                     VALUES ('queued', $1, $2, $3, $4) RETURNING id",
                    &[&config.to_string(), &config_hash, &now, &kind.as_str()],
                )?
                .try_get(0)?,
                false,
            ),
        };
        tx.commit()?;
        drop(conn);
        let job = self
            .job(id)?
            .ok_or_else(|| StoreError::Corrupt(format!("job {id} vanished")))?;
        Ok((job, existed))
    }

    fn job(&self, id: i64) -> Result<Option<JobRow>, StoreError> {
        self.conn()?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM training_jobs WHERE id = $1"),
                &[&id],
            )?
            .as_ref()
            .map(job_from_row)
            .transpose()
    }

    fn jobs(&self, limit: usize) -> Result<Vec<JobRow>, StoreError> {
        self.conn()?
            .query(
                &format!("SELECT {COLUMNS} FROM training_jobs ORDER BY id DESC LIMIT $1"),
                &[&(limit as i64)],
            )?
            .iter()
            .map(job_from_row)
            .collect()
    }

    fn jobs_of_kind(&self, kind: JobKind, limit: usize) -> Result<Vec<JobRow>, StoreError> {
        self.conn()?
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM training_jobs WHERE kind = $2 ORDER BY id DESC LIMIT $1"
                ),
                &[&(limit as i64), &kind.as_str()],
            )?
            .iter()
            .map(job_from_row)
            .collect()
    }

    fn start_next_job(&self, kinds: &[JobKind]) -> Result<Option<JobRow>, StoreError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let now = now_ms() as i64;
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let row = self.conn()?.query_opt(
            &format!(
                "UPDATE training_jobs SET status = 'running', attempt = attempt + 1, started_at = $2,
                     not_before = NULL, heartbeat_at = $2, claim = nextval('job_claims')
                 WHERE id = (SELECT id FROM training_jobs WHERE kind = ANY($1) AND (status = 'queued'
                        OR (status = 'pending' AND coalesce(not_before, 0) <= $2))
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING {COLUMNS}"
            ),
            &[&names, &now],
        )?;
        row.as_ref().map(job_from_row).transpose()
    }

    fn job_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.conn()?
            .query(
                "SELECT status, count(*) FROM training_jobs GROUP BY status",
                &[],
            )?
            .into_iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn record_progress(
        &self,
        lease: JobLease,
        progress: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.update_owned_job(
            lease,
            &format!("UPDATE training_jobs SET progress = $3 WHERE {OWNED}"),
            &[&progress.to_string()],
        )
    }

    fn record_dataset(&self, id: i64, dataset: &serde_json::Value) -> Result<(), StoreError> {
        self.update_job(
            "UPDATE training_jobs SET dataset = $2 WHERE id = $1",
            &[&id, &dataset.to_string()],
        )
    }

    fn complete_job(
        &self,
        lease: JobLease,
        metrics: &serde_json::Value,
        model_version: &str,
    ) -> Result<(), StoreError> {
        self.update_owned_job(
            lease,
            &format!(
                "UPDATE training_jobs SET status = 'completed', metrics = $3, model_version = $4,
                 error = NULL, finished_at = $5 WHERE {OWNED}"
            ),
            &[&metrics.to_string(), &model_version, &(now_ms() as i64)],
        )
    }

    fn complete_job_with_result(
        &self,
        lease: JobLease,
        result: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.update_owned_job(
            lease,
            &format!(
                "UPDATE training_jobs SET status = 'completed', result = $3, error = NULL,
                 finished_at = $4 WHERE {OWNED}"
            ),
            &[&result.to_string(), &(now_ms() as i64)],
        )
    }

    fn requeue_job(&self, lease: JobLease) -> Result<JobStatus, StoreError> {
        let (id, now) = (lease.id, now_ms() as i64);
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let owned = tx.query_opt(
            &format!("SELECT 1 FROM training_jobs WHERE {OWNED} FOR UPDATE"),
            &[&lease.id, &lease.claim],
        )?;
        if owned.is_none() {
            return Err(StoreError::JobTakenOver(id));
        }
        let cancelled = tx.execute(
            "UPDATE training_jobs SET status = 'cancelled', finished_at = $2
             WHERE id = $1 AND status = 'running' AND cancel_requested",
            &[&id, &now],
        )?;
        tx.execute(
            "UPDATE training_jobs SET status = 'queued', attempt = greatest(attempt - 1, 0)
             WHERE id = $1 AND status = 'running'",
            &[&id],
        )?;
        let status: String = tx
            .query_one("SELECT status FROM training_jobs WHERE id = $1", &[&id])?
            .try_get(0)?;
        tx.commit()?;
        if cancelled > 0 {
            return Ok(JobStatus::Cancelled);
        }
        JobStatus::parse(&status)
    }

    fn fail_job(&self, lease: JobLease, error: &str) -> Result<(), StoreError> {
        self.update_owned_job(
            lease,
            &format!(
                "UPDATE training_jobs SET status = 'failed', error = $3, finished_at = $4
                 WHERE {OWNED}"
            ),
            &[&error, &(now_ms() as i64)],
        )
    }

    fn retry_job_later(
        &self,
        lease: JobLease,
        error: &str,
        not_before_ms: u64,
    ) -> Result<(), StoreError> {
        self.update_owned_job(
            lease,
            &format!(
                "UPDATE training_jobs SET status = 'pending', error = $3, not_before = $4
                 WHERE {OWNED}"
            ),
            &[&error, &(not_before_ms as i64)],
        )
    }

    fn mark_job_cancelled(&self, lease: JobLease) -> Result<(), StoreError> {
        self.update_owned_job(
            lease,
            &format!(
                "UPDATE training_jobs SET status = 'cancelled', finished_at = $3 WHERE {OWNED}"
            ),
            &[&(now_ms() as i64)],
        )
    }

    fn cancel_job(&self, id: i64) -> Result<Option<CancelOutcome>, StoreError> {
        let now = now_ms() as i64;
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let status: Option<String> = tx
            .query_opt(
                "SELECT status FROM training_jobs WHERE id = $1 FOR UPDATE",
                &[&id],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        let outcome = match status.as_deref().map(JobStatus::parse).transpose()? {
            None => None,
            Some(JobStatus::Pending | JobStatus::Queued) => {
                tx.execute(
                    "UPDATE training_jobs SET status = 'cancelled', finished_at = $2 WHERE id = $1",
                    &[&id, &now],
                )?;
                Some(CancelOutcome::Cancelled)
            }
            Some(JobStatus::Running) => {
                tx.execute(
                    "UPDATE training_jobs SET cancel_requested = TRUE WHERE id = $1",
                    &[&id],
                )?;
                Some(CancelOutcome::Requested)
            }
            Some(finished) => Some(CancelOutcome::AlreadyFinished(finished)),
        };
        tx.commit()?;
        Ok(outcome)
    }

    fn recover_interrupted_jobs(&self, max_attempts: i64) -> Result<(usize, usize), StoreError> {
        let now = now_ms() as i64;
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute(
            "UPDATE training_jobs SET status = 'cancelled', finished_at = $1
             WHERE status = 'running' AND cancel_requested",
            &[&now],
        )?;
        let failed = tx.execute(
            "UPDATE training_jobs SET status = 'failed', finished_at = $2,
             error = 'interrupted ' || attempt || ' times (the process stopped while it ran); giving up'
             WHERE status = 'running' AND attempt >= $1",
            &[&max_attempts, &now],
        )?;
        let requeued = tx.execute(
            "UPDATE training_jobs SET status = 'queued' WHERE status = 'running'",
            &[],
        )?;
        tx.commit()?;
        Ok((requeued as usize, failed as usize))
    }

    fn heartbeat_jobs(&self, leases: &[JobLease]) -> Result<Heartbeat, StoreError> {
        if leases.is_empty() {
            return Ok(Heartbeat::default());
        }
        let ids: Vec<i64> = leases.iter().map(|l| l.id).collect();
        let claims: Vec<i64> = leases.iter().map(|l| l.claim).collect();
        let rows = self.conn()?.query(
            "UPDATE training_jobs t SET heartbeat_at = $3
             FROM unnest($1::BIGINT[], $2::BIGINT[]) AS l(id, claim)
             WHERE t.id = l.id AND t.claim = l.claim AND t.status = 'running'
             RETURNING t.id, t.cancel_requested",
            &[&ids, &claims, &(now_ms() as i64)],
        )?;
        let mut beat = Heartbeat::default();
        let mut alive = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get(0)?;
            if row.try_get::<_, bool>(1)? {
                beat.cancelled.push(id);
            }
            alive.push(id);
        }
        beat.lost = ids.into_iter().filter(|id| !alive.contains(id)).collect();
        Ok(beat)
    }

    fn save_checkpoint(
        &self,
        lease: JobLease,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError> {
        // One statement: the row is replaced whole, and only while the run owns the job.
        let saved = self.conn()?.execute(
            &format!(
                "INSERT INTO job_checkpoints (job_id, epochs, manifest, weights, saved_at)
                 SELECT id, $3, $4, $5, $6 FROM training_jobs WHERE {OWNED}
                 ON CONFLICT (job_id) DO UPDATE SET epochs = excluded.epochs,
                     manifest = excluded.manifest, weights = excluded.weights,
                     saved_at = excluded.saved_at"
            ),
            &[
                &lease.id,
                &lease.claim,
                &checkpoint.epochs,
                &checkpoint.manifest,
                &checkpoint.weights,
                &(now_ms() as i64),
            ],
        )?;
        match saved {
            0 => Err(StoreError::JobTakenOver(lease.id)),
            _ => Ok(()),
        }
    }

    fn job_checkpoint(&self, id: i64) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.conn()?
            .query_opt(
                "SELECT epochs, manifest, weights FROM job_checkpoints WHERE job_id = $1",
                &[&id],
            )?
            .map(|row| {
                Ok(StoredCheckpoint {
                    epochs: row.try_get(0)?,
                    manifest: row.try_get(1)?,
                    weights: row.try_get(2)?,
                })
            })
            .transpose()
    }

    fn recover_stale_jobs(
        &self,
        max_attempts: i64,
        stale_ms: u64,
    ) -> Result<(usize, usize), StoreError> {
        let now = now_ms() as i64;
        let cut = now - stale_ms as i64;
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        const STALE: &str = "status = 'running' AND coalesce(heartbeat_at, started_at, 0) < $1";
        tx.execute(
            &format!(
                "UPDATE training_jobs SET status = 'cancelled', finished_at = $2
                 WHERE {STALE} AND cancel_requested"
            ),
            &[&cut, &now],
        )?;
        let failed = tx.execute(
            &format!(
                "UPDATE training_jobs SET status = 'failed', finished_at = $2,
                 error = 'its worker stopped ' || attempt || ' times while it ran; giving up'
                 WHERE {STALE} AND attempt >= $3"
            ),
            &[&cut, &now, &max_attempts],
        )?;
        let requeued = tx.execute(
            &format!("UPDATE training_jobs SET status = 'queued' WHERE {STALE}"),
            &[&cut],
        )?;
        tx.commit()?;
        Ok((requeued as usize, failed as usize))
    }
}
