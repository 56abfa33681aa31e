//! The metadata store: players, shapes, drawing rows, idempotency records, jobs and models
//! in SQLite.
//!
//! Durability settings live here and nowhere else: WAL journal, foreign keys on, a busy
//! timeout, and `synchronous=FULL` for every write but the repairable ones (see
//! [`Durability`]). There is one writer connection behind a mutex and a small pool of
//! readers; every method blocks, so async callers go through `spawn_blocking`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use super::migrations::migrate;
use super::{now_ms, StoreError};
use crate::domain::{DrawingId, IdempotencyKey, Judgement, PlayerId, ShapeName};

/// How long a connection waits for a lock before giving up with `SQLITE_BUSY`.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Read connections kept open.
const READERS: usize = 4;
/// The default shapes, seeded into an empty database.
const DEFAULT_SHAPES: &str = include_str!("../../assets/shapes.json");

/// A shape players can be prompted with.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ShapeRow {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub description: String,
    pub difficulty: i64,
    #[serde(default = "yes")]
    pub active: bool,
    /// The drawing an admin chose as the shape's picture; `None`: its best drawing.
    #[serde(default, skip_serializing)]
    pub picture: Option<String>,
}

/// The columns [`ShapeRow::from_row`] reads, in its order.
pub(crate) const SHAPE_COLUMNS: &str =
    "id, name, description, difficulty, active, picture_drawing_id";

impl ShapeRow {
    /// A shape from a row selected with [`SHAPE_COLUMNS`].
    pub(crate) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            difficulty: r.get(3)?,
            active: r.get(4)?,
            picture: r.get(5)?,
        })
    }
}

fn yes() -> bool {
    true
}

/// A drawing's metadata row as it is about to be inserted.
#[derive(Debug, Clone)]
pub struct NewDrawingRow {
    pub id: DrawingId,
    pub player: PlayerId,
    pub shape_id: i64,
    pub metadata: serde_json::Value,
    pub created_at_ms: u64,
    pub idempotency: Option<(IdempotencyKey, [u8; 16])>,
    /// An imported drawing's source key (Quick, Draw! `key_id`), unique among rows.
    pub source_key: Option<String>,
    /// A verdict the drawing arrives with (an import's Quick, Draw! `recognized`, or an old
    /// record's rebuilt by reconciliation); `None` for the game's drawings, which the
    /// background scorer judges after they are stored.
    pub judgement: Option<Judgement>,
}

/// A drawing's metadata row as stored.
#[derive(Debug, Clone, Serialize)]
pub struct DrawingRow {
    pub id: String,
    pub player_id: String,
    pub shape: String,
    pub metadata: serde_json::Value,
    pub quality_score: Option<f64>,
    pub is_flagged: bool,
    pub created_at_ms: i64,
    pub deleted_at_ms: Option<i64>,
    /// Whether the model that judged it saw the prompted shape (Quick, Draw!'s
    /// `recognized`); `None` until the background scorer has judged it with a model.
    pub recognized: Option<bool>,
    /// The model version behind `recognized`.
    pub recognized_by: Option<String>,
}

/// What an idempotency key was first used for.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub body_digest: [u8; 16],
    pub drawing_id: DrawingId,
}

/// Drawing rows: what the group-commit writer inserts, and what reads, training, imports and
/// reconciliation ask of them. (A drawing's strokes live in the [`BlobStore`](super::BlobStore).)
pub trait DrawingStore: Send + Sync {
    /// Inserts rows (with their players and idempotency records) in one transaction.
    fn insert_drawings(&self, rows: &[NewDrawingRow]) -> Result<(), StoreError>;
    fn drawing(&self, id: DrawingId) -> Result<Option<DrawingRow>, StoreError>;
    /// The greatest drawing id with a row.
    fn last_drawing_id(&self) -> Result<Option<DrawingId>, StoreError>;
    /// Ids of the newest `limit` drawing rows, newest first.
    fn recent_drawing_ids(&self, limit: usize) -> Result<Vec<DrawingId>, StoreError>;
    fn count_drawings(&self) -> Result<u64, StoreError>;
    /// The drawings a training run may use, in id order, handed to `visit` one at a time so
    /// that a set of millions is never held whole: never soft-deleted; flagged ones only
    /// when asked; only the named shapes when a list is given; only those created in the
    /// filter's time range. An error from `visit` stops the walk and is returned.
    fn visit_training_drawings(
        &self,
        filter: &TrainingFilter,
        visit: &mut dyn FnMut(TrainingDrawing) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// [`DrawingStore::visit_training_drawings`], collected (for sets known to be small).
    fn training_drawings(
        &self,
        filter: &TrainingFilter,
    ) -> Result<Vec<TrainingDrawing>, StoreError> {
        let mut all = Vec::new();
        self.visit_training_drawings(filter, &mut |d| {
            all.push(d);
            Ok(())
        })?;
        Ok(all)
    }
    /// Which of these source keys some row already carries. Reads through the writer
    /// connection, so the group-commit thread sees its own latest batch.
    fn existing_source_keys(&self, keys: &[&str]) -> Result<HashSet<String>, StoreError>;
}

/// Idempotency records: a client's key with the digest of its first body and the drawing it
/// made, kept long enough (the API promises 24 h) for a retry to find it.
pub trait IdempotencyStore: Send + Sync {
    fn idempotency(
        &self,
        player: PlayerId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Forgets idempotency records older than `cutoff_ms`; returns how many.
    fn purge_idempotency(&self, cutoff_ms: u64) -> Result<usize, StoreError>;
}

/// Everything the program keeps in the metadata store: the narrow seams above, plus shapes,
/// nicknames and the integrity check. Code that needs one seam only asks for that trait.
pub trait MetadataStore: DrawingStore + IdempotencyStore {
    /// All shapes (cached; refreshed when shapes change).
    fn shapes(&self) -> Result<Arc<Vec<ShapeRow>>, StoreError>;
    /// The cached shapes, if the cache is warm: never blocks on the database.
    fn cached_shapes(&self) -> Option<Arc<Vec<ShapeRow>>>;
    fn shape_by_name(&self, name: &ShapeName) -> Result<Option<ShapeRow>, StoreError> {
        Ok(self
            .shapes()?
            .iter()
            .find(|s| s.name == name.as_str())
            .cloned())
    }
    fn set_nickname(&self, player: PlayerId, nickname: &str) -> Result<(), StoreError>;
    /// `PRAGMA integrity_check`: `ok` or the problems found.
    fn integrity_check(&self) -> Result<String, StoreError>;
    /// The shape named `name`, created (active, difficulty 3) when there is none; `true`
    /// when it was created. Imports use it for words asked to become shapes.
    fn ensure_shape(
        &self,
        name: &ShapeName,
        description: &str,
    ) -> Result<(ShapeRow, bool), StoreError>;
}

/// Which drawings a training run takes.
#[derive(Debug, Clone, Default)]
pub struct TrainingFilter {
    pub shapes: Option<Vec<String>>,
    pub min_quality: Option<f64>,
    pub include_flagged: bool,
    /// Only drawings created at or after this time (ms since the Unix epoch).
    pub created_from_ms: Option<u64>,
    /// Only drawings created before this time (ms since the Unix epoch).
    pub created_to_ms: Option<u64>,
}

/// One drawing of a training set: what the trainer needs besides its strokes.
#[derive(Debug, Clone)]
pub struct TrainingDrawing {
    pub id: DrawingId,
    pub player: String,
    pub shape: String,
}

/// When a write's commit reaches the disk.
///
/// In WAL mode a `synchronous=FULL` commit syncs the log before it returns; a `NORMAL` one
/// only writes it, and a power cut (never a crash of the process: the page cache survives
/// that) may undo it and every commit after it, never one before a synced commit, since a
/// sync covers the whole log and recovery keeps the log's valid prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// On disk when the commit returns: everything that exists nowhere else.
    Synced,
    /// On disk at the next synced commit or checkpoint. Only for rows that start-up rebuilds
    /// when a power cut undid them: drawing rows (with their players and idempotency keys),
    /// rebuilt by [`super::reconcile`] from stroke records synced before the rows were
    /// written, and quality scores, recomputed by the scorer's catch-up walk. The group
    /// commit then syncs once per batch (the stroke store) instead of twice.
    Repairable,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Synced => "FULL",
            Durability::Repairable => "NORMAL",
        }
    }
}

/// The writer connection and the `synchronous` level it is set to.
struct Writer {
    conn: Connection,
    durability: Durability,
}

/// The SQLite implementation of [`MetadataStore`].
pub struct SqliteMetadataStore {
    /// The one connection that writes.
    writer: Mutex<Writer>,
    /// Read-only connections; a reader takes one and puts it back.
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
    /// The shapes table, which every submission consults.
    shape_cache: RwLock<Option<Arc<Vec<ShapeRow>>>>,
}

impl SqliteMetadataStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        migrate(&mut writer)?;
        seed_shapes(&writer)?;
        if let Some(dir) = path.parent() {
            super::blobs::sync_dir(dir)?;
        }
        let store = Self {
            writer: Mutex::new(Writer {
                conn: writer,
                // `configure` set FULL.
                durability: Durability::Synced,
            }),
            readers: Mutex::new(Vec::new()),
            path: path.to_owned(),
            shape_cache: RwLock::new(None),
        };
        Ok(store)
    }

    /// Drops the cached shapes after a change; the next [`MetadataStore::shapes`] reloads.
    pub(crate) fn forget_shapes(&self) {
        *self.shape_cache.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// A write whose commit is on disk when it returns.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_as(Durability::Synced, f)
    }

    /// A write of rows start-up rebuilds if a power cut undoes it ([`Durability::Repairable`]).
    pub(crate) fn write_repairable<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_as(Durability::Repairable, f)
    }

    fn write_as<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A poisoned lock means a writer panicked; SQLite rolled its transaction back, so the
        // connection is still consistent.
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if writer.durability != durability {
            writer
                .conn
                .pragma_update(None, "synchronous", durability.pragma())?;
            writer.durability = durability;
        }
        f(&mut writer.conn)
    }

    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&conn)?;
                conn
            }
        };
        let result = f(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if readers.len() < READERS {
            readers.push(conn);
        }
        result
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn seed_shapes(conn: &Connection) -> Result<(), StoreError> {
    let count: i64 = conn.query_row("SELECT count(*) FROM shapes", [], |r| r.get(0))?;
    if count > 0 {
        return Ok(());
    }
    let shapes: Vec<ShapeRow> = serde_json::from_str(DEFAULT_SHAPES)
        .map_err(|e| StoreError::Corrupt(format!("assets/shapes.json: {e}")))?;
    let mut insert = conn.prepare(
        "INSERT INTO shapes (name, description, difficulty, active, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
    )?;
    for s in shapes {
        insert.execute(params![
            s.name,
            s.description,
            s.difficulty,
            now_ms() as i64
        ])?;
    }
    Ok(())
}

fn id_param(id: DrawingId) -> String {
    id.to_string()
}

/// A metadata store on a fresh database in a temporary directory (kept while the guard lives).
#[cfg(test)]
pub(crate) fn temp_store() -> (tempfile::TempDir, SqliteMetadataStore) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteMetadataStore::open(&dir.path().join("m.sqlite3")).expect("a new database");
    (dir, store)
}

/// A drawing id as SQLite keeps it (text); one that does not parse is corruption.
pub(crate) fn parse_id(text: String) -> Result<DrawingId, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("drawing id {text:?}")))
}

/// What a batch of new rows adds to the review counters (`drawing_counts`, `drawing_days`,
/// `player_counts`), gathered while the rows are inserted and written once per batch: once
/// per shape, day and player instead of four trigger statements per row (migration 12).
#[derive(Default)]
struct BatchTally {
    /// New rows per shape. Every new row is unflagged, live, unreviewed and unscored.
    per_shape: BTreeMap<i64, i64>,
    /// New rows per UTC day (`created_at / 86400000`).
    per_day: BTreeMap<i64, i64>,
    /// New rows per player.
    per_player: HashMap<PlayerId, i64>,
}

impl BatchTally {
    /// Counts a row; whether it is its player's first in the batch.
    fn count(&mut self, row: &NewDrawingRow) -> bool {
        *self.per_shape.entry(row.shape_id).or_default() += 1;
        *self
            .per_day
            .entry(row.created_at_ms as i64 / DAY_MS)
            .or_default() += 1;
        let rows = self.per_player.entry(row.player).or_default();
        *rows += 1;
        *rows == 1
    }

    /// Adds the batch to the counters, then soft-deletes the rows of players blocked
    /// meanwhile (an import or a reconciliation of a blocked player's drawings; the submit
    /// service refuses them earlier). Last, so that the update triggers move them from the
    /// live counts they find them in.
    fn apply(
        self,
        tx: &rusqlite::Transaction<'_>,
        rows: &[NewDrawingRow],
    ) -> Result<(), StoreError> {
        let mut shapes = tx.prepare_cached(
            "INSERT INTO drawing_counts VALUES (?1, 0, 0, 0, -1, ?2) ON CONFLICT DO UPDATE SET n = n + excluded.n",
        )?;
        for (shape, n) in &self.per_shape {
            shapes.execute(params![shape, n])?;
        }
        let mut days = tx.prepare_cached(
            "INSERT INTO drawing_days VALUES (?1, ?2) ON CONFLICT DO UPDATE SET n = n + excluded.n",
        )?;
        for (day, n) in &self.per_day {
            days.execute(params![day, n])?;
        }
        let mut players = tx.prepare_cached(
            "INSERT INTO player_counts VALUES (?1, ?2, 0, 0) ON CONFLICT DO UPDATE SET live = live + excluded.live",
        )?;
        for (player, n) in &self.per_player {
            players.execute(params![player.to_string(), n])?;
        }
        let mut blocked =
            tx.prepare_cached("SELECT 1 FROM players WHERE id = ?1 AND blocked_at IS NOT NULL")?;
        let mut delete =
            tx.prepare_cached("UPDATE drawings SET deleted_at = created_at WHERE id = ?1")?;
        for player in self.per_player.keys() {
            if blocked.exists(params![player.to_string()])? {
                for row in rows.iter().filter(|r| r.player == *player) {
                    delete.execute(params![id_param(row.id)])?;
                }
            }
        }
        Ok(())
    }
}

/// Milliseconds in a day: `drawing_days` counts by UTC day.
const DAY_MS: i64 = 86_400_000;

impl DrawingStore for SqliteMetadataStore {
    fn insert_drawings(&self, rows: &[NewDrawingRow]) -> Result<(), StoreError> {
        // Every row is rebuilt from its stroke record, synced before this is called.
        self.write_repairable(|conn| {
            let tx = conn.transaction()?;
            {
                let mut player = tx.prepare_cached("INSERT OR IGNORE INTO players (id, created_at) VALUES (?1, ?2)")?;
                let mut drawing = tx.prepare_cached(
                    "INSERT INTO drawings (id, player_id, shape_id, stroke_key, metadata, created_at, source_key, recognized, recognized_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                let mut idem = tx.prepare_cached(
                    "INSERT OR REPLACE INTO idempotency_keys (player_id, key, body_digest, drawing_id, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                let mut tally = BatchTally::default();
                for row in rows {
                    let player_id = row.player.to_string();
                    let created = row.created_at_ms as i64;
                    if tally.count(row) {
                        player.execute(params![player_id, created])?;
                    }
                    drawing.execute(params![
                        id_param(row.id),
                        player_id,
                        row.shape_id,
                        row.id.to_bytes().as_slice(),
                        row.metadata.to_string(),
                        created,
                        row.source_key,
                        row.judgement.as_ref().map(|j| j.recognized),
                        row.judgement.as_ref().map(|j| &j.model_version)
                    ])?;
                    if let Some((key, digest)) = &row.idempotency {
                        idem.execute(params![player_id, key.as_str(), digest.as_slice(), id_param(row.id), created])?;
                    }
                }
                tally.apply(&tx, rows)?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn drawing(&self, id: DrawingId) -> Result<Option<DrawingRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT d.id, d.player_id, s.name, d.metadata, d.quality_score, d.is_flagged, d.created_at, d.deleted_at,
                        d.recognized, d.recognized_by
                 FROM drawings d JOIN shapes s ON s.id = d.shape_id WHERE d.id = ?1",
            )?;
            let row = stmt
                .query_row([id_param(id)], |r| {
                    let metadata: String = r.get(3)?;
                    Ok(DrawingRow {
                        id: r.get(0)?,
                        player_id: r.get(1)?,
                        shape: r.get(2)?,
                        metadata: serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null),
                        quality_score: r.get(4)?,
                        is_flagged: r.get(5)?,
                        created_at_ms: r.get(6)?,
                        deleted_at_ms: r.get(7)?,
                        recognized: r.get(8)?,
                        recognized_by: r.get(9)?,
                    })
                })
                .optional()?;
            Ok(row)
        })
    }

    fn last_drawing_id(&self) -> Result<Option<DrawingId>, StoreError> {
        let id: Option<String> = self
            .read(|conn| Ok(conn.query_row("SELECT max(id) FROM drawings", [], |r| r.get(0))?))?;
        id.map(parse_id).transpose()
    }

    fn recent_drawing_ids(&self, limit: usize) -> Result<Vec<DrawingId>, StoreError> {
        let ids: Vec<String> = self.read(|conn| {
            let mut stmt = conn.prepare("SELECT id FROM drawings ORDER BY id DESC LIMIT ?1")?;
            let rows = stmt.query_map([limit as i64], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        ids.into_iter().map(parse_id).collect()
    }

    fn count_drawings(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT count(*) FROM drawings", [], |r| r.get::<_, i64>(0))? as u64)
        })
    }

    fn visit_training_drawings(
        &self,
        filter: &TrainingFilter,
        visit: &mut dyn FnMut(TrainingDrawing) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let time = |ms: Option<u64>| ms.map(|ms| ms.min(i64::MAX as u64) as i64);
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT d.id, d.player_id, s.name FROM drawings d JOIN shapes s ON s.id = d.shape_id
                 WHERE d.deleted_at IS NULL AND (?1 OR d.is_flagged = 0)
                   AND (?2 IS NULL OR coalesce(d.quality_score, 1.0) >= ?2)
                   AND (?3 IS NULL OR d.created_at >= ?3)
                   AND (?4 IS NULL OR d.created_at < ?4)
                 ORDER BY d.id",
            )?;
            let mut rows = stmt.query(params![
                filter.include_flagged,
                filter.min_quality,
                time(filter.created_from_ms),
                time(filter.created_to_ms),
            ])?;
            while let Some(row) = rows.next()? {
                let shape: String = row.get(2)?;
                if filter
                    .shapes
                    .as_ref()
                    .is_some_and(|list| !list.contains(&shape))
                {
                    continue;
                }
                visit(TrainingDrawing {
                    id: parse_id(row.get(0)?)?,
                    player: row.get(1)?,
                    shape,
                })?;
            }
            Ok(())
        })
    }

    fn existing_source_keys(&self, keys: &[&str]) -> Result<HashSet<String>, StoreError> {
        self.write(|conn| {
            let mut stmt = conn.prepare_cached("SELECT 1 FROM drawings WHERE source_key = ?1")?;
            let mut found = HashSet::new();
            for key in keys {
                if stmt.exists([key])? {
                    found.insert((*key).to_owned());
                }
            }
            Ok(found)
        })
    }
}

impl IdempotencyStore for SqliteMetadataStore {
    fn idempotency(
        &self,
        player: PlayerId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let found: Option<(Vec<u8>, String)> = self.write(|conn| {
            // Read through the writer: the group-commit thread must see its own latest batch.
            let mut stmt = conn.prepare_cached(
                "SELECT body_digest, drawing_id FROM idempotency_keys WHERE player_id = ?1 AND key = ?2",
            )?;
            Ok(stmt.query_row(params![player.to_string(), key.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
        })?;
        found
            .map(|(digest, id)| {
                let body_digest = digest
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("idempotency digest length".into()))?;
                Ok(IdempotencyRecord {
                    body_digest,
                    drawing_id: parse_id(id)?,
                })
            })
            .transpose()
    }

    fn purge_idempotency(&self, cutoff_ms: u64) -> Result<usize, StoreError> {
        self.write(|conn| {
            Ok(conn.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ?1",
                [cutoff_ms as i64],
            )?)
        })
    }
}

impl MetadataStore for SqliteMetadataStore {
    fn cached_shapes(&self) -> Option<Arc<Vec<ShapeRow>>> {
        self.shape_cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn shapes(&self) -> Result<Arc<Vec<ShapeRow>>, StoreError> {
        if let Some(cached) = self
            .shape_cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(cached);
        }
        let shapes = Arc::new(self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {SHAPE_COLUMNS} FROM shapes ORDER BY difficulty, name"
            ))?;
            let rows = stmt.query_map([], ShapeRow::from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?);
        *self.shape_cache.write().unwrap_or_else(|p| p.into_inner()) = Some(shapes.clone());
        Ok(shapes)
    }

    fn set_nickname(&self, player: PlayerId, nickname: &str) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "INSERT INTO players (id, nickname, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET nickname = excluded.nickname",
                params![player.to_string(), nickname, now_ms() as i64],
            )?;
            Ok(())
        })
    }

    fn ensure_shape(
        &self,
        name: &ShapeName,
        description: &str,
    ) -> Result<(ShapeRow, bool), StoreError> {
        let created = self.write(|conn| {
            Ok(conn.execute(
                "INSERT OR IGNORE INTO shapes (name, description, difficulty, active, created_at)
                 VALUES (?1, ?2, 3, 1, ?3)",
                params![name.as_str(), description, now_ms() as i64],
            )? == 1)
        })?;
        if created {
            *self.shape_cache.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
        let row = self
            .shape_by_name(name)?
            .ok_or_else(|| StoreError::Corrupt(format!("shape {name} vanished after insert")))?;
        Ok((row, created))
    }

    fn integrity_check(&self) -> Result<String, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let lines = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(lines.collect::<Result<Vec<_>, _>>()?.join("; "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_is_migrated_and_seeded_with_the_five_default_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetadataStore::open(&dir.path().join("m.sqlite3")).unwrap();
        let names: Vec<String> = store
            .shapes()
            .unwrap()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        for name in ["line", "circle", "square", "triangle", "heart"] {
            assert!(
                names.contains(&name.to_string()),
                "{name} missing from {names:?}"
            );
        }
        assert_eq!(store.integrity_check().unwrap(), "ok");
        drop(store);
        // Reopening applies nothing twice and seeds nothing twice.
        let store = SqliteMetadataStore::open(&dir.path().join("m.sqlite3")).unwrap();
        assert_eq!(store.shapes().unwrap().len(), 5);
    }

    /// `PRAGMA synchronous` as the writer connection has it: 1 NORMAL, 2 FULL.
    fn synchronous(conn: &mut Connection) -> Result<i64, StoreError> {
        Ok(conn.pragma_query_value(None, "synchronous", |r| r.get(0))?)
    }

    #[test]
    fn only_repairable_writes_commit_without_a_sync_and_every_other_write_syncs_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetadataStore::open(&dir.path().join("m.sqlite3")).unwrap();
        assert_eq!(store.write(synchronous).unwrap(), 2);
        assert_eq!(store.write_repairable(synchronous).unwrap(), 1);
        assert_eq!(store.write(synchronous).unwrap(), 2);
        // Drawing rows are repairable; the write after them syncs.
        let shape = store.shapes().unwrap()[0].id;
        let row = NewDrawingRow {
            id: DrawingId::next(1_000, None),
            player: PlayerId::random(),
            shape_id: shape,
            metadata: serde_json::json!({}),
            created_at_ms: 1_000,
            idempotency: None,
            source_key: None,
            judgement: None,
        };
        store.insert_drawings(&[row]).unwrap();
        assert_eq!(
            store.writer.lock().unwrap().durability,
            Durability::Repairable,
            "drawing rows commit without a sync"
        );
        assert_eq!(store.write(synchronous).unwrap(), 2);
        use crate::store::quality::QualityStore;
        store.record_scores(&[], 0.2, None).unwrap();
        assert_eq!(
            store.writer.lock().unwrap().durability,
            Durability::Repairable,
            "scores commit without a sync"
        );
    }

    #[test]
    fn the_database_refuses_two_active_models() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetadataStore::open(&dir.path().join("m.sqlite3")).unwrap();
        let second = store.write(|conn| {
            conn.execute("INSERT INTO models (version, path, manifest, is_active, created_at) VALUES ('v1','p','{}',1,0)", [])?;
            Ok(conn.execute("INSERT INTO models (version, path, manifest, is_active, created_at) VALUES ('v2','p','{}',1,0)", []))
        });
        assert!(second.unwrap().is_err());
    }

    /// The review counters as they should be: recounted from the rows.
    fn counters_recounted(store: &SqliteMetadataStore) -> (Vec<[i64; 6]>, Vec<[i64; 2]>) {
        store
            .read(|conn| {
                let rows = |sql: &str| -> Result<Vec<Vec<i64>>, StoreError> {
                    let mut stmt = conn.prepare(sql)?;
                    let width = stmt.column_count();
                    let rows = stmt
                        .query_map([], |r| (0..width).map(|i| r.get(i)).collect())?
                        .collect::<Result<_, _>>()?;
                    Ok(rows)
                };
                let kept = rows("SELECT * FROM drawing_counts WHERE n <> 0 ORDER BY 1, 2, 3, 4, 5")?;
                let recount = rows(
                    "SELECT shape_id, is_flagged <> 0, deleted_at IS NOT NULL, reviewed_at IS NOT NULL,
                            coalesce(max(0, CAST(quality_score * 100 AS INTEGER)), -1), count(*)
                     FROM drawings GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
                )?;
                assert_eq!(kept, recount, "drawing_counts");
                let days = rows("SELECT day, n FROM drawing_days WHERE n <> 0 ORDER BY day")?;
                let recount_days = rows(
                    "SELECT created_at / 86400000, count(*) FROM drawings WHERE deleted_at IS NULL GROUP BY 1 ORDER BY 1",
                )?;
                assert_eq!(days, recount_days, "drawing_days");
                let players = rows("SELECT live, flagged, deleted FROM player_counts ORDER BY player_id")?;
                let recount_players = rows(
                    "SELECT sum(deleted_at IS NULL), sum(deleted_at IS NULL AND is_flagged <> 0), sum(deleted_at IS NOT NULL)
                     FROM drawings GROUP BY player_id ORDER BY player_id",
                )?;
                assert_eq!(players, recount_players, "player_counts");
                Ok((
                    kept.iter().map(|r| r.clone().try_into().unwrap()).collect(),
                    days.iter().map(|r| r.clone().try_into().unwrap()).collect(),
                ))
            })
            .unwrap()
    }

    #[test]
    fn a_batch_adds_to_the_review_counters_once_per_shape_and_day_and_a_blocked_players_rows_arrive_deleted(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetadataStore::open(&dir.path().join("m.sqlite3")).unwrap();
        let shapes = store.shapes().unwrap();
        let (alice, bob, blocked) = (PlayerId::random(), PlayerId::random(), PlayerId::random());
        store
            .write(|conn| {
                conn.execute(
                    "INSERT INTO players (id, created_at, blocked_at) VALUES (?1, 0, 5)",
                    params![blocked.to_string()],
                )?;
                Ok(())
            })
            .unwrap();
        let mut last = None;
        let mut batch = |players: &[PlayerId], first_ms: u64| -> Vec<NewDrawingRow> {
            (0..12u64)
                .map(|i| {
                    // Two days: the batch straddles midnight.
                    let created = first_ms + i * 3_600_000;
                    let id = DrawingId::next(created, last);
                    last = Some(id);
                    NewDrawingRow {
                        id,
                        player: players[i as usize % players.len()],
                        shape_id: shapes[i as usize % 3].id,
                        metadata: serde_json::json!({}),
                        created_at_ms: created,
                        idempotency: None,
                        source_key: None,
                        judgement: None,
                    }
                })
                .collect()
        };
        let first = batch(&[alice, bob, blocked], 20 * 3_600_000);
        store.insert_drawings(&first).unwrap();
        let (counts, days) = counters_recounted(&store);
        // 12 rows over 3 shapes, the blocked player's 4 live in no day.
        assert_eq!(counts.iter().map(|c| c[5]).sum::<i64>(), 12);
        assert_eq!(
            counts
                .iter()
                .filter(|c| c[2] == 1)
                .map(|c| c[5])
                .sum::<i64>(),
            4
        );
        assert_eq!(days, vec![[0, 3], [1, 5]]);
        let deleted: Vec<String> = store
            .read(|conn| {
                let mut stmt =
                    conn.prepare("SELECT player_id FROM drawings WHERE deleted_at IS NOT NULL")?;
                let ids = stmt
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok(ids)
            })
            .unwrap();
        assert_eq!(deleted, vec![blocked.to_string(); 4]);
        // A second batch adds to the same counters; the update trigger still moves rows.
        store
            .insert_drawings(&batch(&[alice], 30 * 3_600_000))
            .unwrap();
        store
            .write(|conn| {
                conn.execute(
                    "UPDATE drawings SET quality_score = 0.5, is_flagged = 1 WHERE player_id = ?1",
                    params![alice.to_string()],
                )?;
                Ok(())
            })
            .unwrap();
        let (counts, _) = counters_recounted(&store);
        assert_eq!(counts.iter().map(|c| c[5]).sum::<i64>(), 24);
    }
}
