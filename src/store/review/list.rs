//! Listings and totals: a page of drawings matching a filter, newest first, keyset-paginated
//! along the (`created_at`, `id`) index; one drawing; and how many match, from the counter
//! tables when the filter allows.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};

use super::{
    conditions, conditions_but_quality, count, push_quality, Conditions, DrawingPage, ReviewItem,
    ShapeLookup, SqliteReviewStore,
};
use crate::domain::review::{Cursor, DeletedFilter, DrawingFilter, Page};
use crate::domain::DrawingId;
use crate::store::metadata::parse_id;
use crate::store::StoreError;

/// Width of a quality bucket in `drawing_counts`, as its inverse (buckets of 0.01).
const QUALITY_BUCKETS_PER_UNIT: f64 = 100.0;
/// Most drawings in a quality range that a listing reads through the quality index and sorts
/// by time. More than this, and walking the time index newest first finds a page sooner:
/// then at least this many of the rows match, so a page is near.
pub(super) const QUALITY_INDEX_MAX_MATCHES: u64 = 20_000;
/// Most rows a listing of a wider quality range walks newest first before it reads the range
/// through the quality index instead (about 0.1 s of walking).
pub(super) const QUALITY_WALK_BUDGET: u64 = 50_000;
/// The SQL for a row's quality bucket; the same expression as migration 6's triggers.
const BUCKET_SQL: &str = "coalesce(max(0, CAST(quality_score * 100 AS INTEGER)), -1)";

const ITEM_COLUMNS: &str = "d.id, s.name, d.player_id, p.nickname, d.created_at, d.quality_score, \
     d.is_flagged, d.deleted_at, d.reviewed_at, d.metadata, d.source_key IS NOT NULL, \
     d.recognized, d.recognized_by";
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
            recognized: r.get(11)?,
            model_version: r.get(12)?,
        },
    ))
}

fn finish_items(rows: Vec<(String, ReviewItem)>) -> Result<Vec<ReviewItem>, StoreError> {
    rows.into_iter()
        .map(|(id, mut item)| {
            item.id = parse_id(id)?;
            Ok(item)
        })
        .collect()
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

/// How a listing of a quality range finds its page (the constants, or smaller figures in
/// tests that must reach every path with a few hundred rows).
#[derive(Debug, Clone, Copy)]
pub(super) struct QualityPlan {
    /// A range holding at most this many drawings is read through the quality index.
    pub index_max_matches: u64,
    /// Otherwise the time index is walked newest first, over at most this many rows.
    pub walk_budget: u64,
}

impl Default for QualityPlan {
    fn default() -> Self {
        Self {
            index_max_matches: QUALITY_INDEX_MAX_MATCHES,
            walk_budget: QUALITY_WALK_BUDGET,
        }
    }
}

pub(super) fn list_drawings(
    store: &SqliteReviewStore,
    filter: &DrawingFilter,
    page: Page,
) -> Result<DrawingPage, StoreError> {
    list_drawings_planned(store, filter, page, QualityPlan::default())
}

/// [`list_drawings`] with the quality plan's figures given.
///
/// Without quality bounds, the listing walks an index in its own order (time, or shape and
/// time, ...) and stops at the page's end. With them, where the matches are decides the cost:
/// - few matches (by the counters): they are read through the quality index and sorted;
/// - many: the walk goes on, over at most `walk_budget` rows past the cursor. Many matches
///   spread over time fill a page long before that;
/// - when the budget runs out before the page is full (the matches sit far back in time,
///   as after a rescore that walked oldest first), the whole range is read through the
///   quality index and sorted, which costs in proportion to the matches, never to the table.
pub(super) fn list_drawings_planned(
    store: &SqliteReviewStore,
    filter: &DrawingFilter,
    page: Page,
    plan: QualityPlan,
) -> Result<DrawingPage, StoreError> {
    let shape_id = match store.shape_id(filter)? {
        ShapeLookup::Any => None,
        ShapeLookup::Id(id) => Some(id),
        ShapeLookup::Unknown => {
            return Ok(DrawingPage {
                items: Vec::new(),
                next: None,
            })
        }
    };
    let limit = page.limit() as usize;
    let quality_range = filter.min_quality().is_some() || filter.max_quality().is_some();
    let rows = if !quality_range {
        read_page(store, &walk_query(filter, shape_id, page))?
    } else {
        let matches = store
            .db
            .read(|conn| count_from_counters(conn, filter, shape_id))?;
        let bounded = if matches.is_some_and(|n| n <= plan.index_max_matches) {
            None
        } else {
            let query = bounded_walk_query(filter, shape_id, page, plan.walk_budget);
            Some(read_page(store, &query)?)
        };
        match bounded {
            // One more row than asked: the page is full, and the walk found it.
            Some(rows) if rows.len() > limit => rows,
            _ => read_page(store, &quality_index_query(filter, shape_id, page))?,
        }
    };
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

/// A listing's SQL and its parameters.
struct PageQuery {
    sql: String,
    params: Vec<Value>,
}

/// The rows of a page query (one more than the page when there is a next page).
fn read_page(
    store: &SqliteReviewStore,
    query: &PageQuery,
) -> Result<Vec<(String, ReviewItem)>, StoreError> {
    store.db.read(|conn| {
        let mut stmt = conn.prepare_cached(&query.sql)?;
        let rows = stmt.query_map(params_from_iter(&query.params), item_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
}

/// Adds the cursor's keyset condition to `c`.
fn push_cursor(c: &mut Conditions, page: Page) {
    if let Some(after) = page.after() {
        c.push("(d.created_at, d.id) < (?, ?)", None);
        c.params.push(Value::Integer(after.created_at_ms));
        c.params.push(Value::Text(after.id.to_string()));
    }
}

/// `SELECT` of a page from `from`, with its conditions, newest first.
fn page_query(from: &str, mut c: Conditions, page: Page) -> PageQuery {
    // One more than asked tells whether there is a next page.
    c.params.push(Value::Integer(i64::from(page.limit()) + 1));
    PageQuery {
        sql: format!(
            "SELECT {ITEM_COLUMNS} {from} {} ORDER BY d.created_at DESC, d.id DESC LIMIT ?",
            c.clause()
        ),
        params: c.params,
    }
}

/// The page, walking the planner's index newest first with every condition tested on the
/// way (unbounded: without quality bounds, every condition has an index or is common).
fn walk_query(filter: &DrawingFilter, shape_id: Option<i64>, page: Page) -> PageQuery {
    let mut c = conditions(filter, shape_id);
    push_cursor(&mut c, page);
    page_query(ITEM_FROM, c, page)
}

/// The page, from every drawing of the quality range read through the quality index and
/// sorted by time.
fn quality_index_query(filter: &DrawingFilter, shape_id: Option<i64>, page: Page) -> PageQuery {
    let mut c = conditions(filter, shape_id);
    c.index_quality();
    push_cursor(&mut c, page);
    let from = ITEM_FROM.replacen("drawings d", "drawings d INDEXED BY drawings_by_quality", 1);
    page_query(&from, c, page)
}

/// The page among the next `budget` rows past the cursor that match every condition but the
/// quality bounds (newest first), or fewer rows than the page when they hold too few.
fn bounded_walk_query(
    filter: &DrawingFilter,
    shape_id: Option<i64>,
    page: Page,
    budget: u64,
) -> PageQuery {
    let mut inner = conditions_but_quality(filter, shape_id);
    push_cursor(&mut inner, page);
    inner
        .params
        .push(Value::Integer(budget.min(i64::MAX as u64) as i64));
    // A subquery with a LIMIT is not flattened into the outer query: SQLite runs it as a
    // co-routine that stops after `budget` rows, or as soon as the page is full.
    let from = ITEM_FROM.replacen(
        "drawings d",
        &format!(
            "(SELECT * FROM drawings d {} ORDER BY d.created_at DESC, d.id DESC LIMIT ?) d",
            inner.clause()
        ),
        1,
    );
    let mut outer = Conditions {
        sql: Vec::new(),
        params: inner.params,
    };
    push_quality(&mut outer, filter);
    page_query(&from, outer, page)
}

pub(super) fn count_matching(
    store: &SqliteReviewStore,
    filter: &DrawingFilter,
) -> Result<u64, StoreError> {
    let shape_id = match store.shape_id(filter)? {
        ShapeLookup::Any => None,
        ShapeLookup::Id(id) => Some(id),
        ShapeLookup::Unknown => return Ok(0),
    };
    store.db.read(|conn| {
        if let Some(n) = count_from_counters(conn, filter, shape_id)? {
            return Ok(n);
        }
        let c = conditions(filter, shape_id);
        let sql = format!("SELECT count(*) FROM drawings d {}", c.clause());
        count(conn, &sql, &c.params)
    })
}

pub(super) fn review_item(
    store: &SqliteReviewStore,
    id: DrawingId,
) -> Result<Option<ReviewItem>, StoreError> {
    let sql = format!("SELECT {ITEM_COLUMNS} {ITEM_FROM} WHERE d.id = ?1");
    let row = store.db.read(|conn| {
        Ok(conn
            .prepare_cached(&sql)?
            .query_row([id.to_string()], item_from_row)
            .optional()?)
    })?;
    Ok(finish_items(row.into_iter().collect())?.pop())
}
