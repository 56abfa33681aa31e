//! [`QualityStore`] and [`SettingsStore`] on PostgreSQL: the same auto-flag rules as the
//! SQLite side (see `store::quality`), with the score's parts in a `jsonb` column.

use serde::Serialize;

use super::{count, parse_id, PgStore};
use crate::domain::{DrawingId, QualitySettings};
use crate::store::quality::{
    Histogram, QualityStore, RescoreState, Scored, SettingsStore, SETTING_QUALITY, SETTING_RESCORE,
};
use crate::store::StoreError;

/// `$1` id, `$2` score, `$3` the score's parts (JSON), `$4` the threshold.
const UPDATE_SCORE: &str = "
UPDATE drawings SET
  quality_score = $2::float8,
  recognized = coalesce($5::boolean, recognized),
  recognized_by = coalesce($6::text, recognized_by),
  is_flagged = CASE
    WHEN reviewed_at IS NOT NULL THEN is_flagged
    WHEN $2::float8 < $4::float8 THEN TRUE
    WHEN coalesce((quality->>'auto_flagged')::boolean, FALSE) THEN FALSE
    ELSE is_flagged END,
  quality = $3::text::jsonb || jsonb_build_object('auto_flagged',
    reviewed_at IS NULL AND $2::float8 < $4::float8
    AND (NOT is_flagged OR coalesce((quality->>'auto_flagged')::boolean, FALSE)))
WHERE id = $1::text AND deleted_at IS NULL";

/// `$1` the threshold.
const REAPPLY_THRESHOLD: &str = "
UPDATE drawings SET
  is_flagged = (quality_score < $1::float8),
  quality = quality || jsonb_build_object('auto_flagged', quality_score < $1::float8)
WHERE deleted_at IS NULL AND reviewed_at IS NULL AND quality_score IS NOT NULL AND quality IS NOT NULL
  AND ((NOT is_flagged AND quality_score < $1)
    OR (is_flagged AND coalesce((quality->>'auto_flagged')::boolean, FALSE) AND quality_score >= $1))";

fn setting<T: serde::de::DeserializeOwned>(
    conn: &mut impl postgres::GenericClient,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = conn
        .query_opt("SELECT value FROM settings WHERE key = $1", &[&key])?
        .map(|r| r.try_get(0))
        .transpose()?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("setting {key}: {e}")))
    })
    .transpose()
}

fn put_setting(
    conn: &mut impl postgres::GenericClient,
    key: &str,
    value: &impl Serialize,
) -> Result<(), StoreError> {
    let text = serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("setting {key}: {e}")))?;
    conn.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &text],
    )?;
    Ok(())
}

impl SettingsStore for PgStore {
    fn quality_settings(&self) -> Result<QualitySettings, StoreError> {
        Ok(setting(&mut *self.conn()?, SETTING_QUALITY)?.unwrap_or_default())
    }

    fn set_quality_settings(&self, settings: QualitySettings) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        put_setting(&mut tx, SETTING_QUALITY, &settings)?;
        let changed = tx.execute(REAPPLY_THRESHOLD, &[&settings.auto_flag_below])?;
        tx.commit()?;
        Ok(changed as usize)
    }
}

impl QualityStore for PgStore {
    fn record_scores(
        &self,
        scores: &[Scored],
        threshold: f64,
        progress: Option<&RescoreState>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let update = tx.prepare(UPDATE_SCORE)?;
        for Scored {
            id,
            score,
            judgement,
        } in scores
        {
            let parts = serde_json::to_string(score)
                .map_err(|e| StoreError::Corrupt(format!("quality of {id}: {e}")))?;
            let recognized = judgement.as_ref().map(|j| j.recognized);
            let recognized_by = judgement.as_ref().map(|j| j.model_version.as_str());
            tx.execute(
                &update,
                &[
                    &id.to_string(),
                    &score.score,
                    &parts,
                    &threshold,
                    &recognized,
                    &recognized_by,
                ],
            )?;
        }
        if let Some(state) = progress {
            put_setting(&mut tx, SETTING_RESCORE, state)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn live_drawings_after(
        &self,
        after: Option<DrawingId>,
        limit: usize,
    ) -> Result<Vec<DrawingId>, StoreError> {
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        self.conn()?
            .query(
                "SELECT id FROM drawings WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
                &[&after, &(limit as i64)],
            )?
            .into_iter()
            .map(|r| parse_id(r.try_get(0)?))
            .collect()
    }

    fn unscored_drawings_after(
        &self,
        after: Option<DrawingId>,
        limit: usize,
    ) -> Result<Vec<DrawingId>, StoreError> {
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        // Walks the partial index `drawings_unscored` (migration 2).
        self.conn()?
            .query(
                "SELECT id FROM drawings WHERE quality_score IS NULL AND deleted_at IS NULL
                 AND id > $1 ORDER BY id LIMIT $2",
                &[&after, &(limit as i64)],
            )?
            .into_iter()
            .map(|r| parse_id(r.try_get(0)?))
            .collect()
    }

    fn count_live_drawings(&self) -> Result<u64, StoreError> {
        count(
            &self.conn()?.query_one(
                "SELECT count(*) FROM drawings WHERE deleted_at IS NULL",
                &[],
            )?,
            0,
        )
    }

    fn rescore_state(&self) -> Result<Option<RescoreState>, StoreError> {
        setting(&mut *self.conn()?, SETTING_RESCORE)
    }

    fn save_rescore_state(&self, state: &RescoreState) -> Result<(), StoreError> {
        put_setting(&mut *self.conn()?, SETTING_RESCORE, state)
    }

    fn histogram(&self, bins: usize) -> Result<Histogram, StoreError> {
        let mut conn = self.conn()?;
        let mut counts = vec![0; bins];
        // Same binning as `domain::quality::bin_of`: the score's hundredth, then its bin.
        let rows = conn.query(
            "SELECT least(least(trunc(greatest(quality_score, 0.0) * 100.0)::bigint, 100) * $1::bigint / 100,
                          $1::bigint - 1), count(*)
             FROM drawings WHERE deleted_at IS NULL AND quality_score IS NOT NULL GROUP BY 1",
            &[&(bins as i64)],
        )?;
        for row in rows {
            let bin: i64 = row.try_get(0)?;
            if let Some(slot) = usize::try_from(bin).ok().and_then(|b| counts.get_mut(b)) {
                *slot = count(&row, 1)?;
            }
        }
        let unscored = count(
            &conn.query_one(
                "SELECT count(*) FROM drawings WHERE deleted_at IS NULL AND quality_score IS NULL",
                &[],
            )?,
            0,
        )?;
        Ok(Histogram { counts, unscored })
    }
}
