//! The training-job table: the durable queue's state. Every transition is one SQLite
//! transaction, so a job is never half-moved; the scheduler in `crate::jobs` drives them.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::metadata::SqliteMetadataStore;
use super::{now_ms, StoreError};

/// How long an identical configuration is answered with the existing job.
pub const DUPLICATE_WINDOW_MS: u64 = 24 * 3600 * 1000;

/// A job's state. `pending` waits for its retry time, `queued` waits for the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "pending" => Self::Pending,
            "queued" => Self::Queued,
            "running" => Self::Running,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => return Err(StoreError::Corrupt(format!("job status {other:?}"))),
        })
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// One training job as stored.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub id: i64,
    pub status: JobStatus,
    pub config: serde_json::Value,
    pub config_hash: String,
    pub attempt: i64,
    pub progress: Option<serde_json::Value>,
    pub metrics: Option<serde_json::Value>,
    pub error: Option<String>,
    pub dataset: Option<serde_json::Value>,
    pub model_version: Option<String>,
    pub cancel_requested: bool,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub not_before_ms: Option<i64>,
}

const COLUMNS: &str =
    "id, status, config, config_hash, attempt, progress, metrics, error, dataset, \
     model_version, cancel_requested, created_at, started_at, finished_at, not_before";

fn json_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let text: Option<String> = row.get(index)?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<(JobRow, String)> {
    let status: String = row.get(1)?;
    Ok((
        JobRow {
            id: row.get(0)?,
            status: JobStatus::Queued,
            config: json_column(row, 2)?.unwrap_or(serde_json::Value::Null),
            config_hash: row.get(3)?,
            attempt: row.get(4)?,
            progress: json_column(row, 5)?,
            metrics: json_column(row, 6)?,
            error: row.get(7)?,
            dataset: json_column(row, 8)?,
            model_version: row.get(9)?,
            cancel_requested: row.get(10)?,
            created_at_ms: row.get(11)?,
            started_at_ms: row.get(12)?,
            finished_at_ms: row.get(13)?,
            not_before_ms: row.get(14)?,
        },
        status,
    ))
}

fn finish(found: Option<(JobRow, String)>) -> Result<Option<JobRow>, StoreError> {
    found
        .map(|(mut job, status)| {
            job.status = JobStatus::parse(&status)?;
            Ok(job)
        })
        .transpose()
}

/// What became of a cancel request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job had not started; it is cancelled now.
    Cancelled,
    /// The job is running; the worker stops it at its next step.
    Requested,
    /// The job had already finished.
    AlreadyFinished(JobStatus),
}

/// The training queue's storage.
pub trait JobStore: Send + Sync {
    /// Inserts a queued job, or returns the pending/queued/running job with the same
    /// configuration hash created in the last 24 hours (`true` = already existed).
    fn enqueue_job(
        &self,
        config: &serde_json::Value,
        config_hash: &str,
    ) -> Result<(JobRow, bool), StoreError>;
    fn job(&self, id: i64) -> Result<Option<JobRow>, StoreError>;
    /// Newest first.
    fn jobs(&self, limit: usize) -> Result<Vec<JobRow>, StoreError>;
    /// Takes the oldest runnable job (queued, or pending whose time has come), marking it
    /// running with one more attempt.
    fn start_next_job(&self) -> Result<Option<JobRow>, StoreError>;
    /// How many jobs are in each status (for metrics: queue depth).
    fn job_counts(&self) -> Result<Vec<(String, i64)>, StoreError>;
    fn record_progress(&self, id: i64, progress: &serde_json::Value) -> Result<(), StoreError>;
    fn record_dataset(&self, id: i64, dataset: &serde_json::Value) -> Result<(), StoreError>;
    fn complete_job(
        &self,
        id: i64,
        metrics: &serde_json::Value,
        model_version: &str,
    ) -> Result<(), StoreError>;
    fn fail_job(&self, id: i64, error: &str) -> Result<(), StoreError>;
    /// Back to `pending` until `not_before_ms`, keeping the error for the record.
    fn retry_job_later(&self, id: i64, error: &str, not_before_ms: u64) -> Result<(), StoreError>;
    fn mark_job_cancelled(&self, id: i64) -> Result<(), StoreError>;
    fn cancel_job(&self, id: i64) -> Result<Option<CancelOutcome>, StoreError>;
    /// After a crash: jobs left `running` go back to `queued`, or to `failed` once they have
    /// used `max_attempts`. Returns (requeued, failed).
    fn recover_interrupted_jobs(&self, max_attempts: i64) -> Result<(usize, usize), StoreError>;
}

impl JobStore for SqliteMetadataStore {
    fn enqueue_job(
        &self,
        config: &serde_json::Value,
        config_hash: &str,
    ) -> Result<(JobRow, bool), StoreError> {
        let now = now_ms() as i64;
        let id = self.write(|conn| {
            let tx = conn.transaction()?;
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM training_jobs WHERE config_hash = ?1
                     AND status IN ('pending','queued','running') AND created_at > ?2
                     ORDER BY id DESC LIMIT 1",
                    params![config_hash, now - DUPLICATE_WINDOW_MS as i64],
                    |r| r.get(0),
                )
                .optional()?;
            let result = match existing {
                Some(id) => (id, true),
                None => {
                    tx.execute(
                        "INSERT INTO training_jobs (status, config, config_hash, created_at) VALUES ('queued', ?1, ?2, ?3)",
                        params![config.to_string(), config_hash, now],
                    )?;
                    (tx.last_insert_rowid(), false)
                }
            };
            tx.commit()?;
            Ok(result)
        })?;
        let job = self
            .job(id.0)?
            .ok_or_else(|| StoreError::Corrupt(format!("job {} vanished", id.0)))?;
        Ok((job, id.1))
    }

    fn job(&self, id: i64) -> Result<Option<JobRow>, StoreError> {
        let found = self.write(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {COLUMNS} FROM training_jobs WHERE id = ?1"),
                    [id],
                    job_from_row,
                )
                .optional()?)
        })?;
        finish(found)
    }

    fn jobs(&self, limit: usize) -> Result<Vec<JobRow>, StoreError> {
        let rows = self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM training_jobs ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit as i64], job_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        rows.into_iter()
            .map(|r| finish(Some(r)).map(|j| j.expect("Some in, Some out")))
            .collect()
    }

    fn start_next_job(&self) -> Result<Option<JobRow>, StoreError> {
        let now = now_ms() as i64;
        let id: Option<i64> = self.write(|conn| {
            let tx = conn.transaction()?;
            let id: Option<i64> = tx
                .query_row(
                    "SELECT id FROM training_jobs WHERE status = 'queued'
                        OR (status = 'pending' AND coalesce(not_before, 0) <= ?1)
                     ORDER BY id LIMIT 1",
                    [now],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = id {
                tx.execute(
                    "UPDATE training_jobs SET status = 'running', attempt = attempt + 1, started_at = ?2,
                     not_before = NULL WHERE id = ?1",
                    params![id, now],
                )?;
            }
            tx.commit()?;
            Ok(id)
        })?;
        match id {
            Some(id) => self.job(id),
            None => Ok(None),
        }
    }

    fn job_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|conn| {
            let mut statement =
                conn.prepare("SELECT status, count(*) FROM training_jobs GROUP BY status")?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn record_progress(&self, id: i64, progress: &serde_json::Value) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "UPDATE training_jobs SET progress = ?2 WHERE id = ?1",
                params![id, progress.to_string()],
            )?;
            Ok(())
        })
    }

    fn record_dataset(&self, id: i64, dataset: &serde_json::Value) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "UPDATE training_jobs SET dataset = ?2 WHERE id = ?1",
                params![id, dataset.to_string()],
            )?;
            Ok(())
        })
    }

    fn complete_job(
        &self,
        id: i64,
        metrics: &serde_json::Value,
        model_version: &str,
    ) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "UPDATE training_jobs SET status = 'completed', metrics = ?2, model_version = ?3, error = NULL,
                 finished_at = ?4 WHERE id = ?1",
                params![id, metrics.to_string(), model_version, now_ms() as i64],
            )?;
            Ok(())
        })
    }

    fn fail_job(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "UPDATE training_jobs SET status = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1",
                params![id, error, now_ms() as i64],
            )?;
            Ok(())
        })
    }

    fn retry_job_later(&self, id: i64, error: &str, not_before_ms: u64) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "UPDATE training_jobs SET status = 'pending', error = ?2, not_before = ?3 WHERE id = ?1",
                params![id, error, not_before_ms as i64],
            )?;
            Ok(())
        })
    }

    fn mark_job_cancelled(&self, id: i64) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "UPDATE training_jobs SET status = 'cancelled', finished_at = ?2 WHERE id = ?1",
                params![id, now_ms() as i64],
            )?;
            Ok(())
        })
    }

    fn cancel_job(&self, id: i64) -> Result<Option<CancelOutcome>, StoreError> {
        let now = now_ms() as i64;
        self.write(|conn| {
            let tx = conn.transaction()?;
            let status: Option<String> =
                tx.query_row("SELECT status FROM training_jobs WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            let outcome = match status.as_deref().map(JobStatus::parse).transpose()? {
                None => None,
                Some(JobStatus::Pending | JobStatus::Queued) => {
                    tx.execute(
                        "UPDATE training_jobs SET status = 'cancelled', finished_at = ?2 WHERE id = ?1",
                        params![id, now],
                    )?;
                    Some(CancelOutcome::Cancelled)
                }
                Some(JobStatus::Running) => {
                    tx.execute("UPDATE training_jobs SET cancel_requested = 1 WHERE id = ?1", [id])?;
                    Some(CancelOutcome::Requested)
                }
                Some(finished) => Some(CancelOutcome::AlreadyFinished(finished)),
            };
            tx.commit()?;
            Ok(outcome)
        })
    }

    fn recover_interrupted_jobs(&self, max_attempts: i64) -> Result<(usize, usize), StoreError> {
        let now = now_ms() as i64;
        self.write(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE training_jobs SET status = 'cancelled', finished_at = ?1
                 WHERE status = 'running' AND cancel_requested = 1",
                [now],
            )?;
            let failed = tx.execute(
                "UPDATE training_jobs SET status = 'failed', finished_at = ?2,
                 error = 'interrupted ' || attempt || ' times (the process stopped while it ran); giving up'
                 WHERE status = 'running' AND attempt >= ?1",
                params![max_attempts, now],
            )?;
            let requeued =
                tx.execute("UPDATE training_jobs SET status = 'queued' WHERE status = 'running'", [])?;
            tx.commit()?;
            Ok((requeued, failed))
        })
    }
}
