//! [`JobStore`] on PostgreSQL. Every transition is one transaction; a job is claimed with
//! `FOR UPDATE SKIP LOCKED`, so two replicas (or workers) never take the same one.

use super::PgStore;
use crate::store::jobs::{
    CancelOutcome, JobKind, JobRow, JobStatus, JobStore, DUPLICATE_WINDOW_MS,
};
use crate::store::{now_ms, StoreError};

const COLUMNS: &str =
    "id, status, config, config_hash, attempt, progress, metrics, error, dataset, \
     model_version, cancel_requested, created_at, started_at, finished_at, not_before, kind, result";

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
    })
}

impl PgStore {
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
                     not_before = NULL, heartbeat_at = $2
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

    fn record_progress(&self, id: i64, progress: &serde_json::Value) -> Result<(), StoreError> {
        self.update_job(
            "UPDATE training_jobs SET progress = $2 WHERE id = $1",
            &[&id, &progress.to_string()],
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
        id: i64,
        metrics: &serde_json::Value,
        model_version: &str,
    ) -> Result<(), StoreError> {
        self.update_job(
            "UPDATE training_jobs SET status = 'completed', metrics = $2, model_version = $3,
             error = NULL, finished_at = $4 WHERE id = $1",
            &[
                &id,
                &metrics.to_string(),
                &model_version,
                &(now_ms() as i64),
            ],
        )
    }

    fn complete_job_with_result(
        &self,
        id: i64,
        result: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.update_job(
            "UPDATE training_jobs SET status = 'completed', result = $2, error = NULL,
             finished_at = $3 WHERE id = $1",
            &[&id, &result.to_string(), &(now_ms() as i64)],
        )
    }

    fn requeue_job(&self, id: i64) -> Result<JobStatus, StoreError> {
        let now = now_ms() as i64;
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
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

    fn fail_job(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.update_job(
            "UPDATE training_jobs SET status = 'failed', error = $2, finished_at = $3 WHERE id = $1",
            &[&id, &error, &(now_ms() as i64)],
        )
    }

    fn retry_job_later(&self, id: i64, error: &str, not_before_ms: u64) -> Result<(), StoreError> {
        self.update_job(
            "UPDATE training_jobs SET status = 'pending', error = $2, not_before = $3 WHERE id = $1",
            &[&id, &error, &(not_before_ms as i64)],
        )
    }

    fn mark_job_cancelled(&self, id: i64) -> Result<(), StoreError> {
        self.update_job(
            "UPDATE training_jobs SET status = 'cancelled', finished_at = $2 WHERE id = $1",
            &[&id, &(now_ms() as i64)],
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

    fn heartbeat_jobs(&self, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.conn()?.query(
            "UPDATE training_jobs SET heartbeat_at = $2
             WHERE id = ANY($1) AND status = 'running'
             RETURNING id, cancel_requested",
            &[&ids, &(now_ms() as i64)],
        )?;
        let mut cancelled = Vec::new();
        for row in rows {
            if row.try_get::<_, bool>(1)? {
                cancelled.push(row.try_get(0)?);
            }
        }
        Ok(cancelled)
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
