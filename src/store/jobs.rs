//! The job table: the durable queue's state for every kind of long work (training, backup,
//! rescore, import). Every transition is one SQLite transaction, so a job is never
//! half-moved; the scheduler in `crate::jobs` drives them. The table keeps its historical
//! name, `training_jobs`.

use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::metadata::SqliteMetadataStore;
use super::{now_ms, StoreError};

/// How long an identical configuration is answered with the existing job.
pub const DUPLICATE_WINDOW_MS: u64 = 24 * 3600 * 1000;

/// What a job does. Each kind has its own runner in `crate::jobs`; the scheduler runs at
/// most one job of each kind at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Trains a model (`crate::jobs::runner`).
    Train,
    /// Writes a backup of the data directory.
    Backup,
    /// Scores every live drawing again with the model being served.
    Rescore,
    /// Imports an uploaded ndjson file.
    Import,
    /// Checks the live stores against each other (the embedded store only: in cluster mode
    /// that is PostgreSQL's tools' work, and its schema does not admit the kind).
    Verify,
}

impl JobKind {
    /// Every kind, in the order the scheduler looks at them.
    pub const ALL: [JobKind; 5] = [
        Self::Train,
        Self::Backup,
        Self::Rescore,
        Self::Import,
        Self::Verify,
    ];

    /// The name stored in the `kind` column and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Backup => "backup",
            Self::Rescore => "rescore",
            Self::Import => "import",
            Self::Verify => "verify",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("job kind {text:?}")))
    }
}

/// A job's state. `pending` waits for its retry time, `queued` waits for the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    const ALL: [JobStatus; 6] = [
        Self::Pending,
        Self::Queued,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("job status {text:?}")))
    }

    /// The name stored in the `status` column and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// One job as stored.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub id: i64,
    /// What the job does; `config` and `result` are read according to it.
    pub kind: JobKind,
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
    /// What a finished backup, rescore or import produced (a training job's outcome is
    /// `metrics` and `model_version`).
    pub result: Option<serde_json::Value>,
    /// The claim the job's current (or last) run started under (see [`JobLease`]); 0 in the
    /// embedded store. Not shown: it means nothing outside the run that holds it.
    #[serde(skip)]
    pub claim: i64,
}

impl JobRow {
    /// What this row's run writes with: its id and the claim it started under.
    pub fn lease(&self) -> JobLease {
        JobLease {
            id: self.id,
            claim: self.claim,
        }
    }
}

/// Which run of a job a write comes from: the job's id and the claim its run started under.
/// In cluster mode every start of a job draws a new claim from the database, and the writes
/// a run makes (progress, heartbeat, checkpoint, how it ended) apply only while the job is
/// still running under that claim: a worker frozen past the takeover and then woken changes
/// nothing, and stops (fencing; see [`StoreError::JobTakenOver`]). The embedded store's one
/// process owns every job and ignores the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLease {
    /// The job.
    pub id: i64,
    /// The claim its run started under ([`JobRow::claim`]).
    pub claim: i64,
}

/// What a heartbeat learnt about the jobs it stamped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// Jobs whose cancel was asked, perhaps on another replica.
    pub cancelled: Vec<i64>,
    /// Jobs no longer running under the stamped claim: another process took them over (or
    /// they ended); their runs here stop without writing anything.
    pub lost: Vec<i64>,
}

/// A training job's last checkpoint as the database keeps it in cluster mode, so that a
/// process that takes the job over resumes after its last finished epoch
/// (`ml::checkpoint` reads and writes the two files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Epochs done.
    pub epochs: i64,
    /// The checkpoint manifest, naming the weights file and its SHA-256.
    pub manifest: Vec<u8>,
    /// The weights file's bytes.
    pub weights: Vec<u8>,
}

const COLUMNS: &str =
    "id, status, config, config_hash, attempt, progress, metrics, error, dataset, \
     model_version, cancel_requested, created_at, started_at, finished_at, not_before, kind, result";

fn json_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let text: Option<String> = row.get(index)?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// A row with its status and kind still as text (parsed by [`finish`], which can fail with
/// our error rather than rusqlite's).
type RawJob = (JobRow, String, String);

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<RawJob> {
    let status: String = row.get(1)?;
    let kind: String = row.get(15)?;
    Ok((
        JobRow {
            id: row.get(0)?,
            kind: JobKind::Train,
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
            result: json_column(row, 16)?,
            claim: 0,
        },
        status,
        kind,
    ))
}

fn finish(found: Option<RawJob>) -> Result<Option<JobRow>, StoreError> {
    found.map(parse_raw).transpose()
}

fn parse_raw((mut job, status, kind): RawJob) -> Result<JobRow, StoreError> {
    job.status = JobStatus::parse(&status)?;
    job.kind = JobKind::parse(&kind)?;
    Ok(job)
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

/// The job queue's storage.
pub trait JobStore: Send + Sync {
    /// Inserts a queued job of `kind`, or returns the pending/queued/running job of that kind
    /// with the same configuration hash created in the last 24 hours (`true` = already
    /// existed).
    fn enqueue_job(
        &self,
        kind: JobKind,
        config: &serde_json::Value,
        config_hash: &str,
    ) -> Result<(JobRow, bool), StoreError>;
    fn job(&self, id: i64) -> Result<Option<JobRow>, StoreError>;
    /// Newest first, every kind.
    fn jobs(&self, limit: usize) -> Result<Vec<JobRow>, StoreError>;
    /// Newest first, only jobs of `kind` (the training screens list training jobs only).
    fn jobs_of_kind(&self, kind: JobKind, limit: usize) -> Result<Vec<JobRow>, StoreError>;
    /// Takes the oldest runnable job (queued, or pending whose time has come) of one of
    /// `kinds`, marking it running with one more attempt. The scheduler passes the kinds that
    /// have no job running.
    fn start_next_job(&self, kinds: &[JobKind]) -> Result<Option<JobRow>, StoreError>;
    /// How many jobs are in each status (for metrics: queue depth).
    fn job_counts(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Saves a running job's progress. The writes that take a [`JobLease`] (this one and
    /// those that record how a run ended) fail with [`StoreError::JobTakenOver`] once the
    /// job no longer runs under the lease's claim (cluster mode).
    fn record_progress(
        &self,
        lease: JobLease,
        progress: &serde_json::Value,
    ) -> Result<(), StoreError>;
    fn record_dataset(&self, id: i64, dataset: &serde_json::Value) -> Result<(), StoreError>;
    fn complete_job(
        &self,
        lease: JobLease,
        metrics: &serde_json::Value,
        model_version: &str,
    ) -> Result<(), StoreError>;
    /// Completes a backup, rescore or import job with what it produced.
    fn complete_job_with_result(
        &self,
        lease: JobLease,
        result: &serde_json::Value,
    ) -> Result<(), StoreError>;
    fn fail_job(&self, lease: JobLease, error: &str) -> Result<(), StoreError>;
    /// A graceful stop: a running job goes back to `queued` and gets back the attempt its
    /// start charged (only a crash counts), or becomes `cancelled` when a cancel was asked.
    /// Returns the status it now has.
    fn requeue_job(&self, lease: JobLease) -> Result<JobStatus, StoreError>;
    /// Back to `pending` until `not_before_ms`, keeping the error for the record.
    fn retry_job_later(
        &self,
        lease: JobLease,
        error: &str,
        not_before_ms: u64,
    ) -> Result<(), StoreError>;
    fn mark_job_cancelled(&self, lease: JobLease) -> Result<(), StoreError>;
    fn cancel_job(&self, id: i64) -> Result<Option<CancelOutcome>, StoreError>;
    /// After a crash: jobs left `running` go back to `queued`, or to `failed` once they have
    /// used `max_attempts`. Returns (requeued, failed).
    fn recover_interrupted_jobs(&self, max_attempts: i64) -> Result<(usize, usize), StoreError>;
    /// Marks the jobs this process runs (`leases`) alive now, so that no other process takes
    /// them over (cluster mode, see [`JobStore::recover_stale_jobs`]); answers those whose
    /// cancel was asked, perhaps on another replica, and those that no longer run under
    /// their lease (taken over while this process was frozen or cut off: their runs must
    /// stop). The embedded store's one process needs no heartbeat: nothing, and its cancels
    /// reach the job directly.
    fn heartbeat_jobs(&self, leases: &[JobLease]) -> Result<Heartbeat, StoreError>;
    /// Replaces a running training job's checkpoint in the database (one transaction, so
    /// a reader sees the previous epoch's or this one's, whole), if the job still runs
    /// under `lease`. Cluster mode only: the embedded store keeps checkpoints as files in
    /// the job's scratch directory and stores nothing here. The database drops a job's
    /// checkpoint when the job ends.
    fn save_checkpoint(
        &self,
        lease: JobLease,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError>;
    /// The checkpoint [`JobStore::save_checkpoint`] last stored for job `id`, if any
    /// (always `None` in the embedded store).
    fn job_checkpoint(&self, id: i64) -> Result<Option<StoredCheckpoint>, StoreError>;
    /// Takes over running jobs whose heartbeat is older than `stale_ms`: their worker died
    /// (killed, or its host gone). As [`JobStore::recover_interrupted_jobs`] does with every
    /// running job at the start of the one embedded process: requeued, or failed past
    /// `max_attempts`, or cancelled if that was asked. Nothing for the embedded store.
    fn recover_stale_jobs(
        &self,
        max_attempts: i64,
        stale_ms: u64,
    ) -> Result<(usize, usize), StoreError>;
}

impl JobStore for SqliteMetadataStore {
    fn heartbeat_jobs(&self, _: &[JobLease]) -> Result<Heartbeat, StoreError> {
        Ok(Heartbeat::default())
    }

    fn save_checkpoint(&self, _: JobLease, _: &StoredCheckpoint) -> Result<(), StoreError> {
        Ok(())
    }

    fn job_checkpoint(&self, _: i64) -> Result<Option<StoredCheckpoint>, StoreError> {
        Ok(None)
    }

    fn recover_stale_jobs(&self, _: i64, _: u64) -> Result<(usize, usize), StoreError> {
        Ok((0, 0))
    }

    fn enqueue_job(
        &self,
        kind: JobKind,
        config: &serde_json::Value,
        config_hash: &str,
    ) -> Result<(JobRow, bool), StoreError> {
        let now = now_ms() as i64;
        let id = self.write(|conn| {
            let tx = conn.transaction()?;
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM training_jobs WHERE config_hash = ?1 AND kind = ?3
                     AND status IN ('pending','queued','running') AND created_at > ?2
                     ORDER BY id DESC LIMIT 1",
                    params![config_hash, now - DUPLICATE_WINDOW_MS as i64, kind.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            let result = match existing {
                Some(id) => (id, true),
                None => {
                    tx.execute(
                        "INSERT INTO training_jobs (status, config, config_hash, created_at, kind) VALUES ('queued', ?1, ?2, ?3, ?4)",
                        params![config.to_string(), config_hash, now, kind.as_str()],
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
        rows.into_iter().map(parse_raw).collect()
    }

    fn jobs_of_kind(&self, kind: JobKind, limit: usize) -> Result<Vec<JobRow>, StoreError> {
        let rows = self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM training_jobs WHERE kind = ?2 ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map(params![limit as i64, kind.as_str()], job_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        rows.into_iter().map(parse_raw).collect()
    }

    fn start_next_job(&self, kinds: &[JobKind]) -> Result<Option<JobRow>, StoreError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let now = now_ms() as i64;
        // The kinds are our own constants, never input: safe to spell into the statement.
        let names = kinds
            .iter()
            .map(|k| format!("'{}'", k.as_str()))
            .collect::<Vec<_>>()
            .join(",");
        let id: Option<i64> = self.write(|conn| {
            let tx = conn.transaction()?;
            let id: Option<i64> = tx
                .query_row(
                    &format!(
                        "SELECT id FROM training_jobs WHERE kind IN ({names}) AND (status = 'queued'
                            OR (status = 'pending' AND coalesce(not_before, 0) <= ?1))
                         ORDER BY id LIMIT 1"
                    ),
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

    fn record_progress(
        &self,
        lease: JobLease,
        progress: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let id = lease.id;
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
        lease: JobLease,
        metrics: &serde_json::Value,
        model_version: &str,
    ) -> Result<(), StoreError> {
        let id = lease.id;
        self.write(|conn| {
            conn.execute(
                "UPDATE training_jobs SET status = 'completed', metrics = ?2, model_version = ?3, error = NULL,
                 finished_at = ?4 WHERE id = ?1",
                params![id, metrics.to_string(), model_version, now_ms() as i64],
            )?;
            Ok(())
        })
    }

    fn complete_job_with_result(
        &self,
        lease: JobLease,
        result: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let id = lease.id;
        self.write(|conn| {
            conn.execute(
                "UPDATE training_jobs SET status = 'completed', result = ?2, error = NULL,
                 finished_at = ?3 WHERE id = ?1",
                params![id, result.to_string(), now_ms() as i64],
            )?;
            Ok(())
        })
    }

    fn requeue_job(&self, lease: JobLease) -> Result<JobStatus, StoreError> {
        let (id, now) = (lease.id, now_ms() as i64);
        self.write(|conn| {
            let tx = conn.transaction()?;
            let cancelled = tx.execute(
                "UPDATE training_jobs SET status = 'cancelled', finished_at = ?2
                 WHERE id = ?1 AND status = 'running' AND cancel_requested = 1",
                params![id, now],
            )?;
            tx.execute(
                "UPDATE training_jobs SET status = 'queued', attempt = max(attempt - 1, 0)
                 WHERE id = ?1 AND status = 'running'",
                [id],
            )?;
            let status: String = tx.query_row(
                "SELECT status FROM training_jobs WHERE id = ?1",
                [id],
                |r| r.get(0),
            )?;
            tx.commit()?;
            if cancelled > 0 {
                return Ok(JobStatus::Cancelled);
            }
            JobStatus::parse(&status)
        })
    }

    fn fail_job(&self, lease: JobLease, error: &str) -> Result<(), StoreError> {
        let id = lease.id;
        self.write(|conn| {
            conn.execute(
                "UPDATE training_jobs SET status = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1",
                params![id, error, now_ms() as i64],
            )?;
            Ok(())
        })
    }

    fn retry_job_later(
        &self,
        lease: JobLease,
        error: &str,
        not_before_ms: u64,
    ) -> Result<(), StoreError> {
        let id = lease.id;
        self.write(|conn| {
            conn.execute(
                "UPDATE training_jobs SET status = 'pending', error = ?2, not_before = ?3 WHERE id = ?1",
                params![id, error, not_before_ms as i64],
            )?;
            Ok(())
        })
    }

    fn mark_job_cancelled(&self, lease: JobLease) -> Result<(), StoreError> {
        let id = lease.id;
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
