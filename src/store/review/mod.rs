//! What the admin review screens read and change in the metadata store: drawings matching a
//! [`DrawingFilter`], keyset-paginated newest first, with their total; review actions; players
//! and their blocks; the purge of long-deleted drawings; and the figures of the stats page.
//!
//! Listings walk an index in their own order, (`created_at`, `id`) descending, so a page reads
//! about as many rows as it returns at any depth. Totals come from the counter tables that
//! migration 6's triggers keep (`drawing_counts`, `drawing_days`) whenever the filter names
//! only shape, flagged, deleted, reviewed and a quality range; other filters fall back to a
//! `COUNT` over the same conditions as the listing.

//!
//! Split by job: `list` (listings and totals), `actions` (approve, flag, delete,
//! restore), `players` (players and their blocks), `purge` (deleting long-deleted
//! drawings for good), `stats` (the stats page) and `export` (the export's pages). This
//! file holds the trait, its types, and what the jobs share: the filter's SQL conditions.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};
use serde::Serialize;

use super::metadata::SqliteMetadataStore;
use super::{MetadataStore, StoreError};
use crate::domain::review::{
    Cursor, DeletedFilter, DrawingFilter, Page, PlayerCursor, ReviewAction,
};
use crate::domain::{DrawingId, PlayerId};

mod actions;
mod export;
mod list;
mod players;
mod purge;
mod stats;

pub use purge::purge_deleted;
pub(crate) use stats::{day_string, STATS_DAYS};

/// Most ids one bulk action takes.
pub const MAX_BULK: usize = 1_000;

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
    /// Quick, Draw!'s `recognized`: whether the model that judged the drawing saw the
    /// prompted shape; `null` until the background scorer has judged it with a model.
    pub recognized: Option<bool>,
    /// The model version behind `recognized`.
    pub model_version: Option<String>,
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
    /// The row's verdict (`drawings.recognized`, `recognized_by`), `None` until judged.
    pub recognized: Option<bool>,
    pub model_version: Option<String>,
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

    /// Lets the quality bounds use the quality index (drops the `+` that keeps them off it),
    /// for a listing of few drawings in a quality range.
    fn index_quality(&mut self) {
        for sql in &mut self.sql {
            if let Some(bound) = sql.strip_prefix("+d.quality_score") {
                *sql = format!("d.quality_score{bound}");
            }
        }
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
/// keeps walking an index in the listing's order instead of sorting a quality range (unless
/// the range holds few drawings: [`Conditions::index_quality`]).
fn conditions(filter: &DrawingFilter, shape_id: Option<i64>) -> Conditions {
    let mut c = conditions_but_quality(filter, shape_id);
    push_quality(&mut c, filter);
    c
}

/// The quality bounds of a listing (see [`conditions`] for the `+`).
fn push_quality(c: &mut Conditions, filter: &DrawingFilter) {
    if let Some(min) = filter.min_quality() {
        c.push("+d.quality_score >= ?", Some(Value::Real(min)));
    }
    if let Some(max) = filter.max_quality() {
        c.push("+d.quality_score <= ?", Some(Value::Real(max)));
    }
}

/// Every condition of [`conditions`] but the quality bounds.
fn conditions_but_quality(filter: &DrawingFilter, shape_id: Option<i64>) -> Conditions {
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

fn ids_json(ids: &[DrawingId]) -> String {
    serde_json::Value::from(ids.iter().map(|id| id.to_string()).collect::<Vec<_>>()).to_string()
}

fn count(conn: &Connection, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(sql)?
        .query_row(params_from_iter(params), |r| r.get(0))?;
    Ok(n.max(0) as u64)
}
impl ReviewStore for SqliteReviewStore {
    fn list_drawings(&self, filter: &DrawingFilter, page: Page) -> Result<DrawingPage, StoreError> {
        list::list_drawings(self, filter, page)
    }

    fn count_matching(&self, filter: &DrawingFilter) -> Result<u64, StoreError> {
        list::count_matching(self, filter)
    }

    fn review_item(&self, id: DrawingId) -> Result<Option<ReviewItem>, StoreError> {
        list::review_item(self, id)
    }

    fn apply(
        &self,
        ids: &[DrawingId],
        action: ReviewAction,
        now_ms: u64,
    ) -> Result<usize, StoreError> {
        actions::apply(self, ids, action, now_ms)
    }

    fn players(
        &self,
        limit: u32,
        after: Option<PlayerCursor>,
    ) -> Result<(Vec<PlayerSummary>, Option<PlayerCursor>), StoreError> {
        players::players(self, limit, after)
    }

    fn player(&self, id: PlayerId) -> Result<Option<PlayerSummary>, StoreError> {
        players::player(self, id)
    }

    fn set_blocked(&self, id: PlayerId, blocked: bool, now_ms: u64) -> Result<bool, StoreError> {
        players::set_blocked(self, id, blocked, now_ms)
    }

    fn is_blocked(&self, id: PlayerId) -> bool {
        players::is_blocked(self, id)
    }

    fn deleted_before(&self, cutoff_ms: u64, limit: usize) -> Result<Vec<DrawingId>, StoreError> {
        purge::deleted_before(self, cutoff_ms, limit)
    }

    fn remove_rows(&self, ids: &[DrawingId]) -> Result<usize, StoreError> {
        purge::remove_rows(self, ids)
    }

    fn stats(&self) -> Result<ReviewStats, StoreError> {
        stats::stats(self)
    }

    fn export_rows(
        &self,
        filter: &DrawingFilter,
        after: Option<DrawingId>,
        up_to: DrawingId,
        limit: usize,
    ) -> Result<Vec<ExportRow>, StoreError> {
        export::export_rows(self, filter, after, up_to, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::metadata::{NewDrawingRow, TrainingFilter};
    use crate::store::Stores;
    use rusqlite::params;

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
                    judgement: None,
                }
            })
            .collect();
        stores.metadata.insert_drawings(&rows).unwrap();
        rows.iter().map(|r| r.id).collect()
    }

    fn filter(query: &[(&str, &str)]) -> DrawingFilter {
        DrawingFilter::parse(query.iter().copied()).unwrap()
    }

    /// Every page of a listing, following its cursors.
    fn all_pages(stores: &Stores, f: &DrawingFilter, size: u32) -> Vec<DrawingId> {
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let page = stores
                .review
                .list_drawings(f, Page::new(size, after))
                .unwrap();
            ids.extend(page.items.iter().map(|i| i.id));
            match page.next {
                Some(next) => after = Some(next),
                None => return ids,
            }
        }
    }

    /// Every page of a quality listing made by `plan`, following its cursors.
    fn all_planned_pages(
        review: &SqliteReviewStore,
        f: &DrawingFilter,
        size: u32,
        plan: list::QualityPlan,
    ) -> Vec<DrawingId> {
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let page =
                list::list_drawings_planned(review, f, Page::new(size, after), plan).unwrap();
            ids.extend(page.items.iter().map(|i| i.id));
            match page.next {
                Some(next) => after = Some(next),
                None => return ids,
            }
        }
    }

    #[test]
    fn every_way_of_listing_a_quality_range_gives_the_pages_of_the_plain_time_walk() {
        let (dir, stores) = stores();
        let ids = insert(&stores, 300);
        let db = SqliteMetadataStore::open(&stores_path(&dir)).unwrap();
        db.write(|conn| {
            // Most unscored, as after a big import; the scored ones are the oldest (as a
            // rescore leaves them, walking oldest first), some tied in time.
            for (i, id) in ids
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 9 == 0 || *i < 40)
            {
                conn.execute(
                    "UPDATE drawings SET quality_score = ?2, created_at = ?3 WHERE id = ?1",
                    params![
                        id.to_string(),
                        (i % 10) as f64 / 10.0,
                        1000 + (i / 27) as i64
                    ],
                )?;
            }
            Ok(())
        })
        .unwrap();
        let query = [("min_quality", "0.2"), ("max_quality", "0.7")];
        let range = filter(&query);
        let matches = stores.review.count_matching(&range).unwrap();
        assert!(matches > 20, "{matches}");
        let review = SqliteReviewStore::open(Arc::new(db)).unwrap();
        let plan = |index_max_matches, walk_budget| list::QualityPlan {
            index_max_matches,
            walk_budget,
        };
        // The reference: never the quality index, an endless walk.
        let walked = all_planned_pages(&review, &range, 1000, plan(0, u64::MAX));
        assert_eq!(walked.len() as u64, matches);
        for size in [1, 3, 7, 100] {
            for (name, plan) in [
                ("the quality index", plan(u64::MAX, 0)),
                ("a walk that runs out", plan(0, 5)),
                ("a walk that sometimes runs out", plan(0, 60)),
                ("the default plan", list::QualityPlan::default()),
            ] {
                assert_eq!(
                    all_planned_pages(&review, &range, size, plan),
                    walked,
                    "{name}, pages of {size}"
                );
            }
        }
        // The public listing takes the same pages.
        assert_eq!(all_pages(&stores, &range, 7), walked);
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

    /// A player's (live, flagged, deleted) counted row by row, as the list did before the
    /// `player_counts` table.
    fn counted(dir: &tempfile::TempDir, player: &str) -> (u64, u64, u64) {
        let conn = rusqlite::Connection::open(stores_path(dir)).unwrap();
        conn.query_row(
            "SELECT coalesce(sum(deleted_at IS NULL), 0),
                    coalesce(sum(deleted_at IS NULL AND is_flagged <> 0), 0),
                    coalesce(sum(deleted_at IS NOT NULL), 0)
             FROM drawings WHERE player_id = ?1",
            [player],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    }

    #[test]
    fn player_counts_from_the_counter_table_follow_flags_deletes_blocks_and_purges() {
        let (dir, stores) = stores();
        let a = insert(&stores, 60);
        let b = insert(&stores, 40);
        let player_of = |id: DrawingId| stores.review.review_item(id).unwrap().unwrap().player_id;
        let (pa, pb) = (player_of(a[0]), player_of(b[0]));
        let check = |when: &str| {
            for p in [&pa, &pb] {
                let id = PlayerId::parse_cookie(p).unwrap();
                let s = stores.review.player(id).unwrap().unwrap();
                assert_eq!(
                    (s.drawings, s.flagged, s.deleted),
                    counted(&dir, p),
                    "{when}"
                );
                let listed = stores.review.players(10, None).unwrap().0;
                let l = listed.iter().find(|l| &l.id == p).unwrap();
                assert_eq!(
                    (l.drawings, l.flagged, l.deleted),
                    counted(&dir, p),
                    "{when}"
                );
            }
        };
        check("after the inserts");
        let every =
            |ids: &[DrawingId], n: usize| ids.iter().step_by(n).copied().collect::<Vec<_>>();
        stores
            .review
            .apply(&every(&a, 3), ReviewAction::Flag, 5)
            .unwrap();
        stores
            .review
            .apply(&every(&b, 4), ReviewAction::Flag, 5)
            .unwrap();
        check("after flagging");
        stores
            .review
            .apply(&every(&a, 5), ReviewAction::Delete, 6)
            .unwrap();
        stores
            .review
            .apply(&every(&a, 10), ReviewAction::Restore, 7)
            .unwrap();
        stores
            .review
            .apply(&every(&a, 6), ReviewAction::Unflag, 7)
            .unwrap();
        check("after deleting, restoring and unflagging");
        let block = PlayerId::parse_cookie(&pb).unwrap();
        stores.review.set_blocked(block, true, 8).unwrap();
        check("after a block");
        stores.review.set_blocked(block, false, 9).unwrap();
        stores
            .review
            .apply(&every(&b, 2), ReviewAction::Restore, 9)
            .unwrap();
        check("after an unblock and restoring half");
        let purged = stores.review.deleted_before(1_000_000, 1000).unwrap();
        assert!(!purged.is_empty());
        stores.review.remove_rows(&purged).unwrap();
        check("after a purge");
        assert_eq!(counted(&dir, &pb).2, 0);
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
