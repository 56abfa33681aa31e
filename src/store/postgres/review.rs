//! [`ReviewStore`] on PostgreSQL: the review screens' listings (keyset pages, newest first),
//! actions, players and blocks, purge, stats and export pages. Totals are plain counts
//! over the same conditions as the listing (the embedded store's counter triggers are not
//! carried over: PostgreSQL counts an indexed range fast enough for the admin screens).

use postgres::types::ToSql;

use super::{count, parse_id, PgStore};
use crate::domain::review::Cursor;
use crate::domain::review::{DeletedFilter, DrawingFilter, Page, PlayerCursor, ReviewAction};
use crate::domain::{DrawingId, PlayerId};
use crate::store::review::{
    day_string, DayCount, DrawingPage, ExportRow, PlayerSummary, ReviewItem, ReviewStats,
    ReviewStore, ShapeCount, STATS_DAYS,
};
use crate::store::{MetadataStore, StoreError};

const ITEM_COLUMNS: &str = "d.id, s.name, d.player_id, p.nickname, d.created_at, d.quality_score, \
     d.is_flagged, d.deleted_at, d.reviewed_at, d.metadata, d.source_key IS NOT NULL, \
     d.recognized, d.recognized_by";
const ITEM_FROM: &str = "FROM drawings d JOIN shapes s ON s.id = d.shape_id \
     LEFT JOIN players p ON p.id = d.player_id";
const PLAYER_COLUMNS: &str = "p.id, p.nickname, p.created_at, p.blocked_at, \
     (SELECT count(*) FROM drawings d WHERE d.player_id = p.id AND d.deleted_at IS NULL), \
     (SELECT count(*) FROM drawings d WHERE d.player_id = p.id AND d.deleted_at IS NULL AND d.is_flagged), \
     (SELECT count(*) FROM drawings d WHERE d.player_id = p.id AND d.deleted_at IS NOT NULL)";

type Param = Box<dyn ToSql + Sync + Send>;

/// SQL conditions on `drawings d` with their numbered parameters.
#[derive(Default)]
struct Conditions {
    sql: Vec<String>,
    params: Vec<Param>,
}

impl Conditions {
    /// Adds a condition; each `$` in `sql` becomes the next parameter's number.
    fn push(&mut self, sql: &str, values: Vec<Param>) {
        let mut text = String::new();
        let mut next = self.params.len();
        for (i, part) in sql.split('$').enumerate() {
            if i > 0 {
                next += 1;
                text.push_str(&format!("${next}"));
            }
            text.push_str(part);
        }
        self.sql.push(text);
        self.params.extend(values);
    }

    fn clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.sql.join(" AND "))
        }
    }

    /// The number the next parameter takes.
    fn next(&self) -> usize {
        self.params.len() + 1
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// A filter's conditions, or `None` when it names a shape no row has (nothing matches).
fn conditions(store: &PgStore, filter: &DrawingFilter) -> Result<Option<Conditions>, StoreError> {
    let mut c = Conditions::default();
    if let Some(name) = filter.shape() {
        match store.shape_by_name(name)? {
            Some(shape) => c.push("d.shape_id = $", vec![Box::new(shape.id)]),
            None => return Ok(None),
        }
    }
    match filter.flagged() {
        Some(true) => c.push("d.is_flagged", vec![]),
        Some(false) => c.push("NOT d.is_flagged", vec![]),
        None => {}
    }
    match filter.deleted() {
        DeletedFilter::Exclude => c.push("d.deleted_at IS NULL", vec![]),
        DeletedFilter::Only => c.push("d.deleted_at IS NOT NULL", vec![]),
        DeletedFilter::Any => {}
    }
    match filter.reviewed() {
        Some(true) => c.push("d.reviewed_at IS NOT NULL", vec![]),
        Some(false) => c.push("d.reviewed_at IS NULL", vec![]),
        None => {}
    }
    if let Some(min) = filter.min_quality() {
        c.push("d.quality_score >= $", vec![Box::new(min)]);
    }
    if let Some(max) = filter.max_quality() {
        c.push("d.quality_score <= $", vec![Box::new(max)]);
    }
    if let Some(player) = filter.player() {
        c.push("d.player_id = $", vec![Box::new(player.to_string())]);
    }
    if let Some(from) = filter.from_ms() {
        c.push("d.created_at >= $", vec![Box::new(from as i64)]);
    }
    if let Some(to) = filter.to_ms() {
        c.push("d.created_at < $", vec![Box::new(to as i64)]);
    }
    Ok(Some(c))
}

fn item_from_row(r: &postgres::Row) -> Result<ReviewItem, StoreError> {
    let metadata: String = r.try_get(9)?;
    let metadata: serde_json::Value =
        serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null);
    let imported: bool = r.try_get(10)?;
    Ok(ReviewItem {
        id: parse_id(r.try_get(0)?)?,
        shape: r.try_get(1)?,
        player_id: r.try_get(2)?,
        nickname: r.try_get(3)?,
        created_at: r.try_get(4)?,
        quality_score: r.try_get(5)?,
        is_flagged: r.try_get(6)?,
        deleted_at: r.try_get(7)?,
        reviewed_at: r.try_get(8)?,
        strokes: metadata["strokes"].as_u64(),
        points: metadata["points"].as_u64(),
        duration_ms: metadata["duration_ms"].as_u64(),
        source: if imported { "import" } else { "game" },
        recognized: r.try_get(11)?,
        model_version: r.try_get(12)?,
    })
}

fn player_from_row(r: &postgres::Row) -> Result<PlayerSummary, StoreError> {
    Ok(PlayerSummary {
        id: r.try_get(0)?,
        nickname: r.try_get(1)?,
        created_at: r.try_get(2)?,
        blocked_at: r.try_get(3)?,
        drawings: count(r, 4)?,
        flagged: count(r, 5)?,
        deleted: count(r, 6)?,
    })
}

fn id_texts(ids: &[DrawingId]) -> Vec<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

impl ReviewStore for PgStore {
    fn list_drawings(&self, filter: &DrawingFilter, page: Page) -> Result<DrawingPage, StoreError> {
        let Some(mut c) = conditions(self, filter)? else {
            return Ok(DrawingPage {
                items: Vec::new(),
                next: None,
            });
        };
        if let Some(after) = page.after() {
            c.push(
                "(d.created_at, d.id) < ($, $)",
                vec![
                    Box::new(after.created_at_ms),
                    Box::new(after.id.to_string()),
                ],
            );
        }
        let limit = page.limit() as usize;
        let sql = format!(
            "SELECT {ITEM_COLUMNS} {ITEM_FROM} {} ORDER BY d.created_at DESC, d.id DESC LIMIT ${}",
            c.clause(),
            c.next()
        );
        let mut params = c.refs();
        let fetch = limit as i64 + 1;
        params.push(&fetch);
        let mut items = self
            .conn()?
            .query(&sql, &params)?
            .iter()
            .map(item_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| Cursor {
                created_at_ms: last.created_at,
                id: last.id,
            })
        } else {
            None
        };
        Ok(DrawingPage { items, next })
    }

    fn count_matching(&self, filter: &DrawingFilter) -> Result<u64, StoreError> {
        let Some(c) = conditions(self, filter)? else {
            return Ok(0);
        };
        let sql = format!("SELECT count(*) FROM drawings d {}", c.clause());
        count(&self.conn()?.query_one(&sql, &c.refs())?, 0)
    }

    fn review_item(&self, id: DrawingId) -> Result<Option<ReviewItem>, StoreError> {
        self.conn()?
            .query_opt(
                &format!("SELECT {ITEM_COLUMNS} {ITEM_FROM} WHERE d.id = $1"),
                &[&id.to_string()],
            )?
            .as_ref()
            .map(item_from_row)
            .transpose()
    }

    fn apply(
        &self,
        ids: &[DrawingId],
        action: ReviewAction,
        now_ms: u64,
    ) -> Result<usize, StoreError> {
        let sql = match action {
            ReviewAction::Approve | ReviewAction::Unflag => {
                "UPDATE drawings SET reviewed_at = $2, is_flagged = FALSE
                 WHERE id = ANY($1) AND (reviewed_at IS NULL OR is_flagged)"
            }
            ReviewAction::Flag => {
                "UPDATE drawings SET reviewed_at = $2, is_flagged = TRUE
                 WHERE id = ANY($1) AND (reviewed_at IS NULL OR NOT is_flagged)"
            }
            ReviewAction::Delete => {
                "UPDATE drawings SET deleted_at = $2 WHERE id = ANY($1) AND deleted_at IS NULL"
            }
            ReviewAction::Restore => {
                "UPDATE drawings SET deleted_at = NULL WHERE id = ANY($1) AND deleted_at IS NOT NULL"
            }
        };
        let ids = id_texts(ids);
        let now = now_ms as i64;
        let mut conn = self.conn()?;
        Ok(match action {
            ReviewAction::Restore => conn.execute(sql, &[&ids])?,
            _ => conn.execute(sql, &[&ids, &now])?,
        } as usize)
    }

    fn players(
        &self,
        limit: u32,
        after: Option<PlayerCursor>,
    ) -> Result<(Vec<PlayerSummary>, Option<PlayerCursor>), StoreError> {
        let limit = limit as usize;
        let fetch = limit as i64 + 1;
        let mut conn = self.conn()?;
        let rows = match after {
            Some(after) => conn.query(
                &format!(
                    "SELECT {PLAYER_COLUMNS} FROM players p WHERE (p.created_at, p.id) < ($1, $2)
                     ORDER BY p.created_at DESC, p.id DESC LIMIT $3"
                ),
                &[&after.created_at_ms, &after.id.to_string(), &fetch],
            )?,
            None => conn.query(
                &format!(
                    "SELECT {PLAYER_COLUMNS} FROM players p
                     ORDER BY p.created_at DESC, p.id DESC LIMIT $1"
                ),
                &[&fetch],
            )?,
        };
        let mut players = rows
            .iter()
            .map(player_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if players.len() > limit {
            players.truncate(limit);
            players.last().and_then(|last| {
                Some(PlayerCursor {
                    created_at_ms: last.created_at,
                    id: PlayerId::parse_cookie(&last.id)?,
                })
            })
        } else {
            None
        };
        Ok((players, next))
    }

    fn player(&self, id: PlayerId) -> Result<Option<PlayerSummary>, StoreError> {
        self.conn()?
            .query_opt(
                &format!("SELECT {PLAYER_COLUMNS} FROM players p WHERE p.id = $1"),
                &[&id.to_string()],
            )?
            .as_ref()
            .map(player_from_row)
            .transpose()
    }

    fn set_blocked(&self, id: PlayerId, blocked: bool, now_ms: u64) -> Result<bool, StoreError> {
        let now = now_ms as i64;
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let found = if blocked {
            let n = tx.execute(
                "UPDATE players SET blocked_at = coalesce(blocked_at, $2) WHERE id = $1",
                &[&id.to_string(), &now],
            )?;
            tx.execute(
                "UPDATE drawings SET deleted_at = $2 WHERE player_id = $1 AND deleted_at IS NULL",
                &[&id.to_string(), &now],
            )?;
            n
        } else {
            tx.execute(
                "UPDATE players SET blocked_at = NULL WHERE id = $1",
                &[&id.to_string()],
            )?
        };
        tx.commit()?;
        let found = found > 0;
        if found {
            let mut set = self.blocked.write().unwrap_or_else(|p| p.into_inner());
            if blocked {
                set.insert(id);
            } else {
                set.remove(&id);
            }
        }
        Ok(found)
    }

    fn is_blocked(&self, id: PlayerId) -> bool {
        self.blocked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&id)
    }

    fn deleted_before(&self, cutoff_ms: u64, limit: usize) -> Result<Vec<DrawingId>, StoreError> {
        self.conn()?
            .query(
                "SELECT id FROM drawings WHERE deleted_at IS NOT NULL AND deleted_at <= $1 LIMIT $2",
                &[&(cutoff_ms as i64), &(limit as i64)],
            )?
            .into_iter()
            .map(|r| parse_id(r.try_get(0)?))
            .collect()
    }

    fn remove_rows(&self, ids: &[DrawingId]) -> Result<usize, StoreError> {
        let ids = id_texts(ids);
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM idempotency_keys WHERE drawing_id = ANY($1)",
            &[&ids],
        )?;
        let n = tx.execute("DELETE FROM drawings WHERE id = ANY($1)", &[&ids])?;
        tx.commit()?;
        Ok(n as usize)
    }

    fn stats(&self) -> Result<ReviewStats, StoreError> {
        let mut conn = self.conn()?;
        let mut reviewed = 0;
        let mut per_shape = Vec::new();
        for r in conn.query(
            "SELECT s.name,
                    count(d.id) FILTER (WHERE d.deleted_at IS NULL),
                    count(d.id) FILTER (WHERE d.deleted_at IS NULL AND d.is_flagged),
                    count(d.id) FILTER (WHERE d.deleted_at IS NOT NULL),
                    count(d.id) FILTER (WHERE d.deleted_at IS NULL AND d.reviewed_at IS NOT NULL)
             FROM shapes s LEFT JOIN drawings d ON d.shape_id = s.id
             GROUP BY s.id, s.name ORDER BY s.name",
            &[],
        )? {
            reviewed += count(&r, 4)?;
            per_shape.push(ShapeCount {
                shape: r.try_get(0)?,
                count: count(&r, 1)?,
                flagged: count(&r, 2)?,
                deleted: count(&r, 3)?,
            });
        }
        let mut per_day = conn
            .query(
                "SELECT created_at / 86400000 AS day, count(*) FROM drawings
                 WHERE deleted_at IS NULL GROUP BY 1 ORDER BY 1 DESC LIMIT $1",
                &[&STATS_DAYS],
            )?
            .iter()
            .map(|r| {
                Ok(DayCount {
                    day: day_string(r.try_get(0)?),
                    count: count(r, 1)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        per_day.reverse();
        let players = count(&conn.query_one("SELECT count(*) FROM players", &[])?, 0)?;
        Ok(ReviewStats {
            drawings: per_shape.iter().map(|s| s.count).sum(),
            players,
            flagged: per_shape.iter().map(|s| s.flagged).sum(),
            deleted: per_shape.iter().map(|s| s.deleted).sum(),
            reviewed,
            per_shape,
            per_day,
        })
    }

    fn export_rows(
        &self,
        filter: &DrawingFilter,
        after: Option<DrawingId>,
        up_to: DrawingId,
        limit: usize,
    ) -> Result<Vec<ExportRow>, StoreError> {
        let Some(mut c) = conditions(self, filter)? else {
            return Ok(Vec::new());
        };
        if let Some(after) = after {
            c.push("d.id > $", vec![Box::new(after.to_string())]);
        }
        c.push("d.id <= $", vec![Box::new(up_to.to_string())]);
        let sql = format!(
            "SELECT d.id, s.name, d.player_id, d.created_at, d.recognized, d.recognized_by
             FROM drawings d JOIN shapes s ON s.id = d.shape_id {} ORDER BY d.id LIMIT ${}",
            c.clause(),
            c.next()
        );
        let mut params = c.refs();
        let limit = limit as i64;
        params.push(&limit);
        self.conn()?
            .query(&sql, &params)?
            .into_iter()
            .map(|r| {
                Ok(ExportRow {
                    id: parse_id(r.try_get(0)?)?,
                    shape: r.try_get(1)?,
                    player_id: r.try_get(2)?,
                    created_at_ms: r.try_get(3)?,
                    recognized: r.try_get(4)?,
                    model_version: r.try_get(5)?,
                })
            })
            .collect()
    }
}
