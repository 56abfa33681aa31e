//! The stats page's figures: drawings per shape and per day, players, flagged, deleted and
//! reviewed, all from the counter tables.

use super::{count, DayCount, ReviewStats, ShapeCount, SqliteReviewStore};
use crate::store::StoreError;

/// Days of `per_day` in the stats, newest last.
pub(crate) const STATS_DAYS: i64 = 90;

pub(crate) fn day_string(day: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(day * 86_400)
        .ok()
        .and_then(|t| t.date().format(format).ok())
        .unwrap_or_else(|| day.to_string())
}

pub(super) fn stats(store: &SqliteReviewStore) -> Result<ReviewStats, StoreError> {
    store.db.read(|conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT s.name,
                    coalesce(sum(CASE WHEN c.deleted = 0 THEN c.n END), 0),
                    coalesce(sum(CASE WHEN c.deleted = 0 AND c.flagged = 1 THEN c.n END), 0),
                    coalesce(sum(CASE WHEN c.deleted = 1 THEN c.n END), 0),
                    coalesce(sum(CASE WHEN c.deleted = 0 AND c.reviewed = 1 THEN c.n END), 0)
             FROM shapes s LEFT JOIN drawing_counts c ON c.shape_id = s.id
             GROUP BY s.id ORDER BY s.name",
        )?;
        let mut reviewed = 0;
        let per_shape = stmt
            .query_map([], |r| {
                Ok((
                    ShapeCount {
                        shape: r.get(0)?,
                        count: r.get::<_, i64>(1)?.max(0) as u64,
                        flagged: r.get::<_, i64>(2)?.max(0) as u64,
                        deleted: r.get::<_, i64>(3)?.max(0) as u64,
                    },
                    r.get::<_, i64>(4)?.max(0) as u64,
                ))
            })?
            .map(|row| {
                row.map(|(shape, r)| {
                    reviewed += r;
                    shape
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut stmt = conn.prepare_cached(
            "SELECT day, n FROM drawing_days WHERE n > 0 ORDER BY day DESC LIMIT ?1",
        )?;
        let mut per_day = stmt
            .query_map([STATS_DAYS], |r| {
                Ok(DayCount {
                    day: day_string(r.get(0)?),
                    count: r.get::<_, i64>(1)?.max(0) as u64,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        per_day.reverse();
        Ok(ReviewStats {
            drawings: per_shape.iter().map(|s| s.count).sum(),
            players: count(conn, "SELECT count(*) FROM players", &[])?,
            flagged: per_shape.iter().map(|s| s.flagged).sum(),
            deleted: per_shape.iter().map(|s| s.deleted).sum(),
            reviewed,
            per_shape,
            per_day,
        })
    })
}
