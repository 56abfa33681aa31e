//! What the admin review screens read and change in the metadata store: drawings matching a
//! [`DrawingFilter`], keyset-paginated newest first, with their total; review actions; players
//! and their blocks; the purge of long-deleted drawings; and the figures of the stats page.
//!
//! Listings walk an index in their own order, (`created_at`, `id`) descending, so a page reads
//! about as many rows as it returns at any depth. Totals come from the counter tables that
//! migration 6's triggers keep (`drawing_counts`, `drawing_days`) whenever the filter names
//! only shape, flagged, deleted, reviewed and a quality range; other filters fall back to a
//! `COUNT` over the same conditions as the listing.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::metadata::SqliteMetadataStore;
use super::{MetadataStore, StoreError, Stores};
use crate::domain::review::{
    Cursor, DeletedFilter, DrawingFilter, Page, PlayerCursor, ReviewAction,
};
use crate::domain::{DrawingId, PlayerId};

/// Drawings purged per round (stroke records, then rows).
const PURGE_CHUNK: usize = 1_000;
/// Most ids one bulk action takes.
pub const MAX_BULK: usize = 1_000;
/// Days of `per_day` in the stats, newest last.
const STATS_DAYS: i64 = 90;
/// Width of a quality bucket in `drawing_counts`, as its inverse (buckets of 0.01).
const QUALITY_BUCKETS_PER_UNIT: f64 = 100.0;
/// The SQL for a row's quality bucket; the same expression as migration 6's triggers.
const BUCKET_SQL: &str = "coalesce(max(0, CAST(quality_score * 100 AS INTEGER)), -1)";

/// One drawing as the review screens list it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewItem {
    #[serde(serialize_with = "as_text")]
    pub id: DrawingId,
    pub shape: String,
    pub player_id: String,
    pub nickname: Option<String>,
    /// ms since the Unix epoch.
    pub created_at: i64,
    pub quality_score: Option<f64>,
    pub is_flagged: bool,
    pub deleted_at: Option<i64>,
    pub reviewed_at: Option<i64>,
    pub strokes: Option<u64>,
    pub points: Option<u64>,
    pub duration_ms: Option<u64>,
    /// `game` or `import`.
    pub source: &'static str,
}

fn as_text<S: serde::Serializer>(id: &DrawingId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// A page of drawings and where the next one starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct DrawingPage {
    pub items: Vec<ReviewItem>,
    pub next: Option<Cursor>,
}

/// A player as the admin list shows them, with counts of their drawings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlayerSummary {
    pub id: String,
    pub nickname: Option<String>,
    pub created_at: i64,
    pub blocked_at: Option<i64>,
    /// Drawings not deleted.
    pub drawings: u64,
    /// Flagged drawings not deleted.
    pub flagged: u64,
    /// Soft-deleted drawings.
    pub deleted: u64,
}

/// Counts of one shape for the stats page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShapeCount {
    pub shape: String,
    /// Not deleted.
    pub count: u64,
    /// Flagged, not deleted.
    pub flagged: u64,
    pub deleted: u64,
}

/// Drawings (not deleted) created on one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayCount {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub count: u64,
}

/// The drawing and player figures of the stats page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewStats {
    /// Drawings not deleted.
    pub drawings: u64,
    pub players: u64,
    /// Flagged drawings not deleted.
    pub flagged: u64,
    pub deleted: u64,
    /// Reviewed drawings not deleted.
    pub reviewed: u64,
    pub per_shape: Vec<ShapeCount>,
    pub per_day: Vec<DayCount>,
}

/// The review screens' storage.
pub trait ReviewStore: Send + Sync {
    /// A page of drawings matching `filter`, newest first.
    fn list_drawings(&self, filter: &DrawingFilter, page: Page) -> Result<DrawingPage, StoreError>;
    /// How many drawings match `filter`.
    fn count_matching(&self, filter: &DrawingFilter) -> Result<u64, StoreError>;
    /// One drawing, deleted or not.
    fn review_item(&self, id: DrawingId) -> Result<Option<ReviewItem>, StoreError>;
    /// Applies `action` to the drawings among `ids` it changes; returns how many it changed.
    fn apply(
        &self,
        ids: &[DrawingId],
        action: ReviewAction,
        now_ms: u64,
    ) -> Result<usize, StoreError>;
    /// A page of players, newest first.
    fn players(
        &self,
        limit: u32,
        after: Option<PlayerCursor>,
    ) -> Result<(Vec<PlayerSummary>, Option<PlayerCursor>), StoreError>;
    fn player(&self, id: PlayerId) -> Result<Option<PlayerSummary>, StoreError>;
    /// Blocks a player and soft-deletes all their drawings in one transaction (or unblocks
    /// them; their drawings stay deleted until restored). `false` for an unknown player.
    fn set_blocked(&self, id: PlayerId, blocked: bool, now_ms: u64) -> Result<bool, StoreError>;
    /// Whether a player is blocked, from memory: the submit path asks on every drawing.
    fn is_blocked(&self, id: PlayerId) -> bool;
    /// Up to `limit` ids of drawings soft-deleted at or before `cutoff_ms`.
    fn deleted_before(&self, cutoff_ms: u64, limit: usize) -> Result<Vec<DrawingId>, StoreError>;
    /// Deletes the rows (and their idempotency records) of these drawings for good.
    fn remove_rows(&self, ids: &[DrawingId]) -> Result<usize, StoreError>;
    fn stats(&self) -> Result<ReviewStats, StoreError>;
    /// Up to `limit` drawings matching `filter` with ids after `after` and at most `up_to`,
    /// in id order: the export's pages. (The export refuses filters that admit deleted
    /// drawings before it gets here.)
    fn export_rows(
        &self,
        filter: &DrawingFilter,
        after: Option<DrawingId>,
        up_to: DrawingId,
        limit: usize,
    ) -> Result<Vec<ExportRow>, StoreError>;
}

/// One drawing an export writes: what its row adds to its stroke record.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub id: DrawingId,
    pub shape: String,
    pub player_id: String,
    pub created_at_ms: i64,
}

/// [`ReviewStore`] on the SQLite metadata store, with the blocked players kept in memory.
pub struct SqliteReviewStore {
    db: Arc<SqliteMetadataStore>,
    /// Every blocked player; loaded at open, changed with each block and unblock.
    blocked: RwLock<HashSet<PlayerId>>,
}

impl SqliteReviewStore {
    pub fn open(db: Arc<SqliteMetadataStore>) -> Result<Self, StoreError> {
        let ids: Vec<String> = db.read(|conn| {
            let mut stmt = conn.prepare("SELECT id FROM players WHERE blocked_at IS NOT NULL")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        let blocked = ids
            .iter()
            .filter_map(|id| PlayerId::parse_cookie(id))
            .collect();
        Ok(Self {
            db,
            blocked: RwLock::new(blocked),
        })
    }

    fn shape_id(&self, filter: &DrawingFilter) -> Result<ShapeLookup, StoreError> {
        let Some(name) = filter.shape() else {
            return Ok(ShapeLookup::Any);
        };
        Ok(self
            .db
            .shape_by_name(name)?
            .map_or(ShapeLookup::Unknown, |s| ShapeLookup::Id(s.id)))
    }
}

/// A filter's shape, resolved to its row id.
enum ShapeLookup {
    Any,
    Id(i64),
    /// A well-formed name no shape has: nothing matches.
    Unknown,
}

/// SQL conditions on `drawings d` and their parameters.
struct Conditions {
    sql: Vec<String>,
    params: Vec<Value>,
}

impl Conditions {
    fn push(&mut self, sql: &str, value: Option<Value>) {
        self.sql.push(sql.to_owned());
        self.params.extend(value);
    }

    fn clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.sql.join(" AND "))
        }
    }
}

/// The listing's conditions. Literal `is_flagged = 1` lets SQLite use the partial index of
/// flagged drawings; the quality bounds are written `+d.quality_score` so that the planner
/// keeps walking an index in the listing's order instead of sorting a quality range.
fn conditions(filter: &DrawingFilter, shape_id: Option<i64>) -> Conditions {
    let mut c = Conditions {
        sql: Vec::new(),
        params: Vec::new(),
    };
    if let Some(id) = shape_id {
        c.push("d.shape_id = ?", Some(Value::Integer(id)));
    }
    match filter.flagged() {
        Some(true) => c.push("d.is_flagged = 1", None),
        Some(false) => c.push("d.is_flagged = 0", None),
        None => {}
    }
    match filter.deleted() {
        DeletedFilter::Exclude => c.push("d.deleted_at IS NULL", None),
        DeletedFilter::Only => c.push("d.deleted_at IS NOT NULL", None),
        DeletedFilter::Any => {}
    }
    match filter.reviewed() {
        Some(true) => c.push("d.reviewed_at IS NOT NULL", None),
        Some(false) => c.push("d.reviewed_at IS NULL", None),
        None => {}
    }
    if let Some(min) = filter.min_quality() {
        c.push("+d.quality_score >= ?", Some(Value::Real(min)));
    }
    if let Some(max) = filter.max_quality() {
        c.push("+d.quality_score <= ?", Some(Value::Real(max)));
    }
    if let Some(player) = filter.player() {
        c.push("d.player_id = ?", Some(Value::Text(player.to_string())));
    }
    if let Some(from) = filter.from_ms() {
        c.push("d.created_at >= ?", Some(Value::Integer(from as i64)));
    }
    if let Some(to) = filter.to_ms() {
        c.push("d.created_at < ?", Some(Value::Integer(to as i64)));
    }
    c
}

const ITEM_COLUMNS: &str = "d.id, s.name, d.player_id, p.nickname, d.created_at, d.quality_score, \
     d.is_flagged, d.deleted_at, d.reviewed_at, d.metadata, d.source_key IS NOT NULL";
/// `CROSS JOIN` keeps `drawings` the outer loop, so the planner walks its indexes.
const ITEM_FROM: &str = "FROM drawings d CROSS JOIN shapes s ON s.id = d.shape_id \
     LEFT JOIN players p ON p.id = d.player_id";

fn item_from_row(r: &Row<'_>) -> rusqlite::Result<(String, ReviewItem)> {
    let id: String = r.get(0)?;
    let metadata: String = r.get(9)?;
    let metadata: serde_json::Value =
        serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null);
    let imported: bool = r.get(10)?;
    Ok((
        id,
        ReviewItem {
            id: DrawingId::from_u128(0),
            shape: r.get(1)?,
            player_id: r.get(2)?,
            nickname: r.get(3)?,
            created_at: r.get(4)?,
            quality_score: r.get(5)?,
            is_flagged: r.get(6)?,
            deleted_at: r.get(7)?,
            reviewed_at: r.get(8)?,
            strokes: metadata["strokes"].as_u64(),
            points: metadata["points"].as_u64(),
            duration_ms: metadata["duration_ms"].as_u64(),
            source: if imported { "import" } else { "game" },
        },
    ))
}

fn finish_items(rows: Vec<(String, ReviewItem)>) -> Result<Vec<ReviewItem>, StoreError> {
    rows.into_iter()
        .map(|(id, mut item)| {
            item.id = id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("drawing id {id:?}")))?;
            Ok(item)
        })
        .collect()
}

fn ids_json(ids: &[DrawingId]) -> String {
    serde_json::Value::from(ids.iter().map(|id| id.to_string()).collect::<Vec<_>>()).to_string()
}

fn count(conn: &Connection, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(sql)?
        .query_row(params_from_iter(params), |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// `filter`'s total from the counter table, or `None` when it needs a `COUNT`.
fn count_from_counters(
    conn: &Connection,
    filter: &DrawingFilter,
    shape_id: Option<i64>,
) -> Result<Option<u64>, StoreError> {
    if filter.player().is_some() || filter.from_ms().is_some() || filter.to_ms().is_some() {
        return Ok(None);
    }
    // The counters' own columns, then the same conditions on the drawings (for the rows of
    // the two edge quality buckets, which are counted one by one).
    let mut counters = Conditions {
        sql: Vec::new(),
        params: Vec::new(),
    };
    let mut edge = Conditions {
        sql: Vec::new(),
        params: Vec::new(),
    };
    if let Some(id) = shape_id {
        counters.push("shape_id = ?", Some(Value::Integer(id)));
        edge.push("shape_id = ?", Some(Value::Integer(id)));
    }
    if let Some(flagged) = filter.flagged() {
        counters.push("flagged = ?", Some(Value::Integer(flagged.into())));
        edge.push("is_flagged = ?", Some(Value::Integer(flagged.into())));
    }
    match filter.deleted() {
        DeletedFilter::Exclude => {
            counters.push("deleted = 0", None);
            edge.push("deleted_at IS NULL", None);
        }
        DeletedFilter::Only => {
            counters.push("deleted = 1", None);
            edge.push("deleted_at IS NOT NULL", None);
        }
        DeletedFilter::Any => {}
    }
    if let Some(reviewed) = filter.reviewed() {
        counters.push("reviewed = ?", Some(Value::Integer(reviewed.into())));
        edge.push(
            if reviewed {
                "reviewed_at IS NOT NULL"
            } else {
                "reviewed_at IS NULL"
            },
            None,
        );
    }
    let (min, max) = (filter.min_quality(), filter.max_quality());
    if min.is_none() && max.is_none() {
        let sql = format!(
            "SELECT coalesce(sum(n), 0) FROM drawing_counts {}",
            counters.clause()
        );
        return Ok(Some(count(conn, &sql, &counters.params)?));
    }
    // Bucket b holds the scores q with b <= q*100 < b+1 (as doubles). Multiplying by 100 is
    // monotonic, so every score of a bucket strictly between the bounds' own buckets lies
    // within the bounds: those buckets are summed. The bounds' own buckets are counted row
    // by row through the covering quality index (about 1% of the rows each).
    let bucket = |q: f64| (q * QUALITY_BUCKETS_PER_UNIT) as i64;
    let low = min.map(bucket);
    let high = max.map(bucket);
    let mut inner = counters;
    inner.push(
        "quality_bucket > ?",
        Some(Value::Integer(low.unwrap_or(-1))),
    );
    if let Some(high) = high {
        inner.push("quality_bucket < ?", Some(Value::Integer(high)));
    } else {
        // Only a lower bound: every higher bucket, however far up.
    }
    let sql = format!(
        "SELECT coalesce(sum(n), 0) FROM drawing_counts {}",
        inner.clause()
    );
    let mut total = count(conn, &sql, &inner.params)?;
    let mut edges: Vec<i64> = Vec::new();
    if let Some(low) = low {
        edges.push(low);
    }
    match high {
        Some(high) if Some(high) != low => edges.push(high),
        _ => {}
    }
    for b in edges {
        let mut exact = Conditions {
            sql: edge.sql.clone(),
            params: edge.params.clone(),
        };
        // Index bounds a bucket wider on each side than the bucket itself (safe for rounding).
        let lower = ((b - 1) as f64 / QUALITY_BUCKETS_PER_UNIT).max(min.unwrap_or(f64::MIN));
        let upper = ((b + 2) as f64 / QUALITY_BUCKETS_PER_UNIT).min(max.unwrap_or(f64::MAX));
        exact.push("quality_score >= ?", Some(Value::Real(lower)));
        exact.push("quality_score <= ?", Some(Value::Real(upper)));
        exact.push(&format!("{BUCKET_SQL} = ?"), Some(Value::Integer(b)));
        let sql = format!("SELECT count(*) FROM drawings {}", exact.clause());
        total += count(conn, &sql, &exact.params)?;
    }
    Ok(Some(total))
}

fn player_from_row(r: &Row<'_>) -> rusqlite::Result<PlayerSummary> {
    Ok(PlayerSummary {
        id: r.get(0)?,
        nickname: r.get(1)?,
        created_at: r.get(2)?,
        blocked_at: r.get(3)?,
        drawings: r.get::<_, i64>(4)?.max(0) as u64,
        flagged: r.get::<_, i64>(5)?.max(0) as u64,
        deleted: r.get::<_, i64>(6)?.max(0) as u64,
    })
}

const PLAYER_COLUMNS: &str = "p.id, p.nickname, p.created_at, p.blocked_at, \
     (SELECT count(*) FROM drawings d WHERE d.player_id = p.id AND d.deleted_at IS NULL), \
     (SELECT count(*) FROM drawings d WHERE d.player_id = p.id AND d.deleted_at IS NULL AND d.is_flagged = 1), \
     (SELECT count(*) FROM drawings d WHERE d.player_id = p.id AND d.deleted_at IS NOT NULL)";

fn day_string(day: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(day * 86_400)
        .ok()
        .and_then(|t| t.date().format(format).ok())
        .unwrap_or_else(|| day.to_string())
}

impl ReviewStore for SqliteReviewStore {
    fn list_drawings(&self, filter: &DrawingFilter, page: Page) -> Result<DrawingPage, StoreError> {
        let shape_id = match self.shape_id(filter)? {
            ShapeLookup::Any => None,
            ShapeLookup::Id(id) => Some(id),
            ShapeLookup::Unknown => {
                return Ok(DrawingPage {
                    items: Vec::new(),
                    next: None,
                })
            }
        };
        let mut c = conditions(filter, shape_id);
        if let Some(after) = page.after() {
            c.push("(d.created_at, d.id) < (?, ?)", None);
            c.params.push(Value::Integer(after.created_at_ms));
            c.params.push(Value::Text(after.id.to_string()));
        }
        let limit = page.limit() as usize;
        // One more than asked tells whether there is a next page.
        c.params.push(Value::Integer(limit as i64 + 1));
        let sql = format!(
            "SELECT {ITEM_COLUMNS} {ITEM_FROM} {} ORDER BY d.created_at DESC, d.id DESC LIMIT ?",
            c.clause()
        );
        let rows = self.db.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(&c.params), item_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        let mut items = finish_items(rows)?;
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
        let shape_id = match self.shape_id(filter)? {
            ShapeLookup::Any => None,
            ShapeLookup::Id(id) => Some(id),
            ShapeLookup::Unknown => return Ok(0),
        };
        self.db.read(|conn| {
            if let Some(n) = count_from_counters(conn, filter, shape_id)? {
                return Ok(n);
            }
            let c = conditions(filter, shape_id);
            let sql = format!("SELECT count(*) FROM drawings d {}", c.clause());
            count(conn, &sql, &c.params)
        })
    }

    fn review_item(&self, id: DrawingId) -> Result<Option<ReviewItem>, StoreError> {
        let sql = format!("SELECT {ITEM_COLUMNS} {ITEM_FROM} WHERE d.id = ?1");
        let row = self.db.read(|conn| {
            Ok(conn
                .prepare_cached(&sql)?
                .query_row([id.to_string()], item_from_row)
                .optional()?)
        })?;
        Ok(finish_items(row.into_iter().collect())?.pop())
    }

    fn apply(
        &self,
        ids: &[DrawingId],
        action: ReviewAction,
        now_ms: u64,
    ) -> Result<usize, StoreError> {
        // Only rows the action changes are touched (and counted).
        let (sql, stamped) = match action {
            ReviewAction::Approve | ReviewAction::Unflag => (
                "UPDATE drawings SET reviewed_at = ?2, is_flagged = 0
                 WHERE id IN (SELECT value FROM json_each(?1)) AND (reviewed_at IS NULL OR is_flagged <> 0)",
                true,
            ),
            ReviewAction::Flag => (
                "UPDATE drawings SET reviewed_at = ?2, is_flagged = 1
                 WHERE id IN (SELECT value FROM json_each(?1)) AND (reviewed_at IS NULL OR is_flagged = 0)",
                true,
            ),
            ReviewAction::Delete => (
                "UPDATE drawings SET deleted_at = ?2
                 WHERE id IN (SELECT value FROM json_each(?1)) AND deleted_at IS NULL",
                true,
            ),
            ReviewAction::Restore => (
                "UPDATE drawings SET deleted_at = NULL
                 WHERE id IN (SELECT value FROM json_each(?1)) AND deleted_at IS NOT NULL",
                false,
            ),
        };
        let ids = ids_json(ids);
        self.db.write(|conn| {
            Ok(if stamped {
                conn.execute(sql, params![ids, now_ms as i64])?
            } else {
                conn.execute(sql, [ids])?
            })
        })
    }

    fn players(
        &self,
        limit: u32,
        after: Option<PlayerCursor>,
    ) -> Result<(Vec<PlayerSummary>, Option<PlayerCursor>), StoreError> {
        let limit = limit as usize;
        let mut rows = self.db.read(|conn| {
            let (sql, params): (String, Vec<Value>) = match after {
                Some(after) => (
                    format!("SELECT {PLAYER_COLUMNS} FROM players p WHERE (p.created_at, p.id) < (?, ?) ORDER BY p.created_at DESC, p.id DESC LIMIT ?"),
                    vec![
                        Value::Integer(after.created_at_ms),
                        Value::Text(after.id.to_string()),
                        Value::Integer(limit as i64 + 1),
                    ],
                ),
                None => (
                    format!("SELECT {PLAYER_COLUMNS} FROM players p ORDER BY p.created_at DESC, p.id DESC LIMIT ?"),
                    vec![Value::Integer(limit as i64 + 1)],
                ),
            };
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(&params), player_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().and_then(|last| {
                Some(PlayerCursor {
                    created_at_ms: last.created_at,
                    id: PlayerId::parse_cookie(&last.id)?,
                })
            })
        } else {
            None
        };
        Ok((rows, next))
    }

    fn player(&self, id: PlayerId) -> Result<Option<PlayerSummary>, StoreError> {
        let sql = format!("SELECT {PLAYER_COLUMNS} FROM players p WHERE p.id = ?1");
        self.db.read(|conn| {
            Ok(conn
                .prepare_cached(&sql)?
                .query_row([id.to_string()], player_from_row)
                .optional()?)
        })
    }

    fn set_blocked(&self, id: PlayerId, blocked: bool, now_ms: u64) -> Result<bool, StoreError> {
        let found = self.db.write(|conn| {
            let tx = conn.transaction()?;
            let now = now_ms as i64;
            let found = if blocked {
                let n = tx.execute(
                    "UPDATE players SET blocked_at = coalesce(blocked_at, ?2) WHERE id = ?1",
                    params![id.to_string(), now],
                )?;
                tx.execute(
                    "UPDATE drawings SET deleted_at = ?2 WHERE player_id = ?1 AND deleted_at IS NULL",
                    params![id.to_string(), now],
                )?;
                n
            } else {
                tx.execute(
                    "UPDATE players SET blocked_at = NULL WHERE id = ?1",
                    [id.to_string()],
                )?
            };
            tx.commit()?;
            Ok(found > 0)
        })?;
        if found {
            // A poisoned lock only means a panic elsewhere mid-insert; the set is still valid.
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
        let ids: Vec<String> = self.db.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM drawings WHERE deleted_at IS NOT NULL AND deleted_at <= ?1 LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![cutoff_ms as i64, limit as i64], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        ids.into_iter()
            .map(|id| {
                id.parse()
                    .map_err(|_| StoreError::Corrupt(format!("drawing id {id:?}")))
            })
            .collect()
    }

    fn remove_rows(&self, ids: &[DrawingId]) -> Result<usize, StoreError> {
        let ids = ids_json(ids);
        self.db.write(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM idempotency_keys WHERE drawing_id IN (SELECT value FROM json_each(?1))",
                [&ids],
            )?;
            let n = tx.execute(
                "DELETE FROM drawings WHERE id IN (SELECT value FROM json_each(?1))",
                [&ids],
            )?;
            tx.commit()?;
            Ok(n)
        })
    }

    fn stats(&self) -> Result<ReviewStats, StoreError> {
        self.db.read(|conn| {
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

    fn export_rows(
        &self,
        filter: &DrawingFilter,
        after: Option<DrawingId>,
        up_to: DrawingId,
        limit: usize,
    ) -> Result<Vec<ExportRow>, StoreError> {
        let shape_id = match self.shape_id(filter)? {
            ShapeLookup::Any => None,
            ShapeLookup::Id(id) => Some(id),
            ShapeLookup::Unknown => return Ok(Vec::new()),
        };
        let mut c = conditions(filter, shape_id);
        if let Some(after) = after {
            c.push("d.id > ?", Some(Value::Text(after.to_string())));
        }
        c.push("d.id <= ?", Some(Value::Text(up_to.to_string())));
        c.params.push(Value::Integer(limit as i64));
        let sql = format!(
            "SELECT d.id, s.name, d.player_id, d.created_at
             FROM drawings d CROSS JOIN shapes s ON s.id = d.shape_id {} ORDER BY d.id LIMIT ?",
            c.clause()
        );
        let rows: Vec<(String, String, String, i64)> = self.db.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(&c.params), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        rows.into_iter()
            .map(|(id, shape, player_id, created_at_ms)| {
                Ok(ExportRow {
                    id: id
                        .parse()
                        .map_err(|_| StoreError::Corrupt(format!("drawing id {id:?}")))?,
                    shape,
                    player_id,
                    created_at_ms,
                })
            })
            .collect()
    }
}

/// Purges, for good, the drawings soft-deleted at or before `cutoff_ms`: stroke records first
/// (durably), then rows. A crash in between leaves rows without strokes that the next purge
/// finishes; the other order could leave records that start-up reconciliation brings back.
pub fn purge_deleted(stores: &Stores, cutoff_ms: u64) -> Result<usize, StoreError> {
    let mut purged = 0;
    loop {
        let ids = stores.review.deleted_before(cutoff_ms, PURGE_CHUNK)?;
        if ids.is_empty() {
            return Ok(purged);
        }
        stores.blobs.remove_durably(&ids)?;
        purged += stores.review.remove_rows(&ids)?;
    }
}

/// Bytes the files under `dir` take, recursively (the stats page's storage size).
pub fn dir_size(dir: &Path) -> Result<u64, StoreError> {
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::metadata::{NewDrawingRow, TrainingFilter};

    fn stores() -> (tempfile::TempDir, Stores) {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::open(dir.path()).unwrap();
        (dir, stores)
    }

    /// Inserts `n` rows straight into the metadata store (no strokes), created at 1000 + i ms.
    fn insert(stores: &Stores, n: usize) -> Vec<DrawingId> {
        let shapes = stores.metadata.shapes().unwrap();
        let player = PlayerId::random();
        let mut last = None;
        let rows: Vec<NewDrawingRow> = (0..n)
            .map(|i| {
                let id = DrawingId::next(1000 + i as u64, last);
                last = Some(id);
                NewDrawingRow {
                    id,
                    player,
                    shape_id: shapes[i % shapes.len()].id,
                    metadata: serde_json::json!({}),
                    created_at_ms: 1000 + i as u64,
                    idempotency: None,
                    source_key: None,
                }
            })
            .collect();
        stores.metadata.insert_drawings(&rows).unwrap();
        rows.iter().map(|r| r.id).collect()
    }

    fn filter(query: &[(&str, &str)]) -> DrawingFilter {
        DrawingFilter::parse(query.iter().copied()).unwrap()
    }

    #[test]
    fn quality_range_totals_from_the_counters_equal_a_plain_count() {
        let (_dir, stores) = stores();
        let ids = insert(&stores, 400);
        let db = SqliteMetadataStore::open(&stores_path(&_dir)).unwrap();
        db.write(|conn| {
            // Scores on and around bucket edges, a few unscored, some flagged or deleted.
            for (i, id) in ids.iter().enumerate() {
                let score = if i % 13 == 0 {
                    None
                } else {
                    Some((i % 101) as f64 / 100.0 + [0.0, 0.004, -0.0001][i % 3])
                };
                conn.execute(
                    "UPDATE drawings SET quality_score = ?2, is_flagged = ?3, deleted_at = ?4 WHERE id = ?1",
                    params![id.to_string(), score.map(|s: f64| s.clamp(0.0, 1.0)), i % 5 == 0, (i % 7 == 0).then_some(5)],
                )?;
            }
            Ok(())
        })
        .unwrap();
        for query in [
            vec![("min_quality", "0.2")],
            vec![("max_quality", "0.9")],
            vec![("min_quality", "0.2"), ("max_quality", "0.9")],
            vec![("min_quality", "0.29"), ("max_quality", "0.29")],
            vec![
                ("min_quality", "0.333"),
                ("max_quality", "0.5"),
                ("flagged", "true"),
            ],
            vec![
                ("min_quality", "0"),
                ("max_quality", "1"),
                ("deleted", "any"),
            ],
            vec![
                ("max_quality", "0.004"),
                ("shape", "circle"),
                ("deleted", "true"),
            ],
        ] {
            let f = filter(&query);
            let fast = stores.review.count_matching(&f).unwrap();
            let slow = stores
                .review
                .count_matching(&f.clone().with_player(PlayerId::random()))
                .unwrap();
            assert_eq!(slow, 0);
            // The same filter through COUNT: a time range that takes every row.
            let mut with_time = query.clone();
            with_time.push(("from", "0"));
            let counted = stores.review.count_matching(&filter(&with_time)).unwrap();
            assert_eq!(fast, counted, "{query:?}");
            let listed = stores
                .review
                .list_drawings(&f, Page::new(500, None))
                .unwrap();
            assert_eq!(listed.items.len() as u64, counted, "{query:?}");
        }
    }

    fn stores_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
        crate::store::metadata_path(dir.path())
    }

    #[test]
    fn soft_deleted_drawings_never_reach_training_and_purge_honours_its_cutoff() {
        let (_dir, stores) = stores();
        let ids = insert(&stores, 4);
        stores
            .review
            .apply(&ids[..1], ReviewAction::Delete, 100)
            .unwrap();
        stores
            .review
            .apply(&ids[1..2], ReviewAction::Delete, 200)
            .unwrap();
        let training = stores
            .metadata
            .training_drawings(&TrainingFilter::default())
            .unwrap();
        let trained: Vec<DrawingId> = training.iter().map(|t| t.id).collect();
        assert_eq!(trained, ids[2..].to_vec());

        assert_eq!(purge_deleted(&stores, 99).unwrap(), 0);
        assert_eq!(purge_deleted(&stores, 150).unwrap(), 1);
        assert!(stores.review.review_item(ids[0]).unwrap().is_none());
        assert!(stores.review.review_item(ids[1]).unwrap().is_some());
        let all = filter(&[("deleted", "any")]);
        assert_eq!(stores.review.count_matching(&all).unwrap(), 3);
    }
}
