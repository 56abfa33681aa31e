//! Quality scores in the metadata store: writing a batch of scores (auto-flagging those below
//! the threshold) in one transaction, the settings that steer it, the rescore walk's chunks
//! and its resumable progress, and the histogram.
//!
//! # Flags the scorer owns
//! A drawing flagged because its score fell below the threshold carries
//! `"auto_flagged": true` in its `quality` JSON. Only such flags are lifted again when a later
//! score (or a lower threshold) clears the drawing; a flag an admin set stays, and a drawing
//! an admin reviewed (`reviewed_at`) is never flagged or unflagged by the scorer.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::metadata::SqliteMetadataStore;
use super::StoreError;
use crate::domain::quality::bin_of_hundredth;
use crate::domain::{DrawingId, Judgement, QualityScore, QualitySettings};
use crate::store::metadata::parse_id;

/// The `settings` key of [`QualitySettings`].
pub const SETTING_QUALITY: &str = "quality";
/// The `settings` key of the rescore walk's [`RescoreState`].
pub const SETTING_RESCORE: &str = "quality_rescore";

/// Writes one score; `?1` id, `?2` score, `?3` components JSON, `?4` threshold, `?5`/`?6`
/// the model's verdict (`recognized`, model version; both NULL keep the one the row has).
/// All right-hand sides see the row as it was, so the old flag decides the new
/// `auto_flagged`.
const UPDATE_SCORE: &str = "
UPDATE drawings SET
  quality_score = ?2,
  recognized = coalesce(?5, recognized),
  recognized_by = coalesce(?6, recognized_by),
  is_flagged = CASE
    WHEN reviewed_at IS NOT NULL THEN is_flagged
    WHEN ?2 < ?4 THEN 1
    WHEN coalesce(json_extract(quality, '$.auto_flagged'), 0) THEN 0
    ELSE is_flagged END,
  quality = json_set(?3, '$.auto_flagged', json(CASE
    WHEN reviewed_at IS NULL AND ?2 < ?4
         AND (is_flagged = 0 OR coalesce(json_extract(quality, '$.auto_flagged'), 0))
    THEN 'true' ELSE 'false' END))
WHERE id = ?1 AND deleted_at IS NULL";

/// Re-applies a new threshold (`?1`) to scored, unreviewed, live drawings whose flag it
/// changes.
const REAPPLY_THRESHOLD: &str = "
UPDATE drawings SET
  is_flagged = (quality_score < ?1),
  quality = json_set(quality, '$.auto_flagged', json(CASE WHEN quality_score < ?1 THEN 'true' ELSE 'false' END))
WHERE deleted_at IS NULL AND reviewed_at IS NULL AND quality_score IS NOT NULL AND quality IS NOT NULL
  AND ((is_flagged = 0 AND quality_score < ?1)
    OR (is_flagged = 1 AND coalesce(json_extract(quality, '$.auto_flagged'), 0) AND quality_score >= ?1))";

/// Where a rescore walk stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RescoreStatus {
    /// Walking; after a restart the walk continues after `last_id`.
    Running,
    /// Every live drawing up to the end of the walk was scored.
    Completed,
    /// An admin cancelled the walk's job: the drawings after `last_id` keep the scores they
    /// had, and the walk does not resume at the next start (a new activation or an explicit
    /// rescore starts a new one).
    Cancelled,
}

/// A rescore walk's progress, saved in the same transaction as each chunk's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescoreState {
    pub status: RescoreStatus,
    /// The model serving when the walk started (`None`: heuristics only).
    pub model_version: Option<String>,
    /// The last drawing id scored; the walk continues after it.
    pub last_id: Option<String>,
    /// Drawings scored so far.
    pub done: u64,
    /// Live drawings when the walk started (more may arrive; they are scored too).
    pub total: u64,
    /// When the walk started, ms since the Unix epoch.
    pub started_at: u64,
    /// When it completed.
    pub finished_at: Option<u64>,
}

/// One drawing's score with what the model made of it, as the scorer writes them together.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub id: DrawingId,
    pub score: QualityScore,
    /// Quick, Draw!'s `recognized` and the model that judged; `None` when no model is
    /// served (the row keeps the verdict it has).
    pub judgement: Option<Judgement>,
}

/// Counts of live scores in equal bins over 0..1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// Drawings per bin, bin `i` covering `i/n .. (i+1)/n` (1.0 falls in the last).
    pub counts: Vec<u64>,
    /// Live drawings without a score yet.
    pub unscored: u64,
}

/// The settings an admin changes at run time. Today they are the quality settings; the
/// seam is its own so that a service reading settings needs nothing else.
pub trait SettingsStore: Send + Sync {
    /// The settings, or the defaults when none were saved.
    fn quality_settings(&self) -> Result<QualitySettings, StoreError>;
    /// Saves the settings and re-applies the threshold to scored drawings the scorer owns the
    /// flag of; returns how many flags changed.
    fn set_quality_settings(&self, settings: QualitySettings) -> Result<usize, StoreError>;
}

/// Quality scores, the rescore walk and the histogram; the settings they follow come through
/// the [`SettingsStore`] supertrait.
pub trait QualityStore: SettingsStore {
    /// Writes scores and verdicts in one transaction, flagging those below `threshold`, and
    /// with them the rescore walk's progress when given. Soft-deleted drawings are left alone.
    fn record_scores(
        &self,
        scores: &[Scored],
        threshold: f64,
        progress: Option<&RescoreState>,
    ) -> Result<(), StoreError>;
    /// Live (non-deleted) drawing ids after `after`, in id order, at most `limit`.
    fn live_drawings_after(
        &self,
        after: Option<DrawingId>,
        limit: usize,
    ) -> Result<Vec<DrawingId>, StoreError>;
    /// Live drawings without a score, after `after`, in id order, at most `limit`: what the
    /// scorer's catch-up walk picks up (drawings that missed its queue or a crash).
    fn unscored_drawings_after(
        &self,
        after: Option<DrawingId>,
        limit: usize,
    ) -> Result<Vec<DrawingId>, StoreError>;
    /// Live drawings.
    fn count_live_drawings(&self) -> Result<u64, StoreError>;
    fn rescore_state(&self) -> Result<Option<RescoreState>, StoreError>;
    fn save_rescore_state(&self, state: &RescoreState) -> Result<(), StoreError>;
    /// Live drawings' scores in `bins` equal bins.
    fn histogram(&self, bins: usize) -> Result<Histogram, StoreError>;
}

fn setting<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("setting {key}: {e}")))
    })
    .transpose()
}

fn put_setting(conn: &Connection, key: &str, value: &impl Serialize) -> Result<(), StoreError> {
    let text = serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("setting {key}: {e}")))?;
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, text],
    )?;
    Ok(())
}

impl SettingsStore for SqliteMetadataStore {
    fn quality_settings(&self) -> Result<QualitySettings, StoreError> {
        Ok(self
            .read(|conn| setting(conn, SETTING_QUALITY))?
            .unwrap_or_default())
    }

    fn set_quality_settings(&self, settings: QualitySettings) -> Result<usize, StoreError> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            put_setting(&tx, SETTING_QUALITY, &settings)?;
            let changed = tx.execute(REAPPLY_THRESHOLD, [settings.auto_flag_below])?;
            tx.commit()?;
            Ok(changed)
        })
    }
}

impl QualityStore for SqliteMetadataStore {
    fn record_scores(
        &self,
        scores: &[Scored],
        threshold: f64,
        progress: Option<&RescoreState>,
    ) -> Result<(), StoreError> {
        // A power cut that undoes this leaves the drawings unscored (the catch-up walk scores
        // them) or with their old scores and the walk's position before them (it resumes
        // there): nothing is lost that the scorer does not redo.
        self.write_repairable(|conn| {
            let tx = conn.transaction()?;
            {
                let mut update = tx.prepare_cached(UPDATE_SCORE)?;
                for Scored {
                    id,
                    score,
                    judgement,
                } in scores
                {
                    let parts = serde_json::to_string(score)
                        .map_err(|e| StoreError::Corrupt(format!("quality of {id}: {e}")))?;
                    update.execute(params![
                        id.to_string(),
                        score.score,
                        parts,
                        threshold,
                        judgement.as_ref().map(|j| j.recognized),
                        judgement.as_ref().map(|j| &j.model_version),
                    ])?;
                }
            }
            if let Some(state) = progress {
                put_setting(&tx, SETTING_RESCORE, state)?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn live_drawings_after(
        &self,
        after: Option<DrawingId>,
        limit: usize,
    ) -> Result<Vec<DrawingId>, StoreError> {
        let ids: Vec<String> = self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM drawings WHERE deleted_at IS NULL AND id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let after = after.map(|id| id.to_string()).unwrap_or_default();
            let rows = stmt.query_map(params![after, limit as i64], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        ids.into_iter().map(parse_id).collect()
    }

    fn unscored_drawings_after(
        &self,
        after: Option<DrawingId>,
        limit: usize,
    ) -> Result<Vec<DrawingId>, StoreError> {
        let ids: Vec<String> = self.read(|conn| {
            // Walks the partial index `drawings_unscored` (migration 8). Named, because the
            // planner otherwise reads every unscored row through `drawings_by_quality`
            // (`quality_score IS NULL` looks like an equality to it) and sorts them: 30 s a
            // chunk with 8M unscored drawings, and the scorer thread stalled that long.
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM drawings INDEXED BY drawings_unscored
                 WHERE quality_score IS NULL AND deleted_at IS NULL
                 AND id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let after = after.map(|id| id.to_string()).unwrap_or_default();
            let rows = stmt.query_map(params![after, limit as i64], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        ids.into_iter().map(parse_id).collect()
    }

    fn count_live_drawings(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM drawings WHERE deleted_at IS NULL",
                [],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
    }

    fn rescore_state(&self) -> Result<Option<RescoreState>, StoreError> {
        self.read(|conn| setting(conn, SETTING_RESCORE))
    }

    fn save_rescore_state(&self, state: &RescoreState) -> Result<(), StoreError> {
        self.write(|conn| put_setting(conn, SETTING_RESCORE, state))
    }

    fn histogram(&self, bins: usize) -> Result<Histogram, StoreError> {
        self.read(|conn| {
            // From the counters kept per hundredth (`-1`: unscored), never the drawings.
            let mut stmt = conn.prepare_cached(
                "SELECT quality_bucket, sum(n) FROM drawing_counts WHERE deleted = 0
                 GROUP BY quality_bucket",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
            let mut histogram = Histogram {
                counts: vec![0; bins],
                unscored: 0,
            };
            for row in rows {
                let (hundredth, n) = row?;
                let n = n.max(0) as u64;
                match usize::try_from(hundredth) {
                    Ok(h) => histogram.counts[bin_of_hundredth(h, bins)] += n,
                    Err(_) => histogram.unscored += n,
                }
            }
            Ok(histogram)
        })
    }
}
