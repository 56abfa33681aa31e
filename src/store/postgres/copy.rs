//! Copying an appliance's data into PostgreSQL (`doodlebox migrate`), and proving the copy:
//! the stroke records through the [`BlobStore`] seam on both sides, then every metadata
//! table row by row, in batches (bounded memory), each batch one multi-row insert in one
//! transaction.
//!
//! The store traits carry what the services need (a new drawing, a score, an activation),
//! not a faithful copy of a row with its history (soft deletes, review times, job results,
//! session hashes), so the rows are copied table by table from one description per table,
//! [`TABLES`]: its key and its columns with their kind. The same description drives the
//! check, which reads both sides again in the source's key order and compares counts and a
//! SHA-256 of the rows' canonical bytes per table (and of the stroke records).
//!
//! Idempotent and resumable: a row whose key is already in the database is left as it is
//! (`ON CONFLICT DO NOTHING`), stroke records are upserts, shapes are matched by name (a
//! database seeds its default shapes with ids of its own; drawings follow the name), and
//! identity sequences are moved past the copied ids. A run killed midway leaves committed
//! batches behind, and the next run skips them. Stroke records go first, so a drawing row
//! never exists without its record.

use std::collections::HashMap;

use postgres::types::ToSql;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::{Conn, PgStore};
use crate::store::blobs::BlobStore;
use crate::store::StoreError;

/// Rows or stroke records per batch by default: one insert of 1,000 drawings is a few MB.
pub const DEFAULT_BATCH: usize = 1_000;
/// Most bind parameters one statement may carry (PostgreSQL's limit is 65,535).
const MAX_PARAMS: usize = 60_000;

/// How a column is read, written and hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Real,
    /// SQLite's 0/1 integer, PostgreSQL's `boolean`.
    Bool,
    Bytes,
    /// JSON text in SQLite, `jsonb` in PostgreSQL (hashed in a canonical form, since
    /// `jsonb` orders keys its own way).
    Json,
    /// A shape id, which differs between the two databases: carried and hashed as the
    /// shape's name.
    Shape,
}

/// One column of a copied table.
struct Column {
    name: &'static str,
    kind: Kind,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind }
}

/// One copied table: the same name and columns on both sides.
pub struct Table {
    pub name: &'static str,
    /// How many leading columns form the key the copy walks in order and matches rows by.
    key: usize,
    columns: &'static [Column],
    /// What a row whose key is already there does.
    on_conflict: &'static str,
    /// Whether `id` is an identity column whose sequence must move past copied ids.
    identity: bool,
}

use Kind::{Bool, Bytes, Int, Json, Real, Shape, Text};

/// Every metadata table, parents before children (players and shapes before drawings,
/// drawings before idempotency keys, jobs before models, admins before sessions).
/// Derived tables (the embedded review counters) are not copied: PostgreSQL counts.
/// Transient cluster tables have no embedded source and are not copied: `job_checkpoints`
/// (a running training job's last checkpoint; the appliance keeps its checkpoints as files
/// in the job's scratch directory, and a job copied while it was running starts again from
/// its first epoch), `job_uploads` (an import's upload until its job ends; the appliance's
/// are files, and a copied import job still waiting finds no upload and fails saying so),
/// nor the jobs' `claim` column (drawn anew at every start).
pub const TABLES: &[Table] = &[
    Table {
        name: "players",
        key: 1,
        columns: &[
            col("id", Text),
            col("nickname", Text),
            col("created_at", Int),
            col("blocked_at", Int),
        ],
        on_conflict: "ON CONFLICT DO NOTHING",
        identity: false,
    },
    Table {
        name: "shapes",
        key: 1,
        columns: &[
            col("name", Text),
            col("description", Text),
            col("difficulty", Int),
            col("active", Bool),
            col("created_at", Int),
            col("picture_drawing_id", Text),
        ],
        // The database's seeded defaults take the appliance's wording, state, age and
        // picture (and a rerun, finding them equal, updates nothing).
        on_conflict: "ON CONFLICT (name) DO UPDATE SET description = excluded.description,
            difficulty = excluded.difficulty, active = excluded.active,
            created_at = excluded.created_at, picture_drawing_id = excluded.picture_drawing_id
            WHERE (shapes.description, shapes.difficulty, shapes.active, shapes.created_at,
                   shapes.picture_drawing_id)
                IS DISTINCT FROM (excluded.description, excluded.difficulty, excluded.active,
                                  excluded.created_at, excluded.picture_drawing_id)",
        identity: false,
    },
    Table {
        name: "drawings",
        key: 1,
        columns: &[
            col("id", Text),
            col("player_id", Text),
            col("shape_id", Shape),
            col("metadata", Text),
            col("quality_score", Real),
            col("quality", Json),
            col("is_flagged", Bool),
            col("created_at", Int),
            col("deleted_at", Int),
            col("reviewed_at", Int),
            col("source_key", Text),
            col("recognized", Bool),
            col("recognized_by", Text),
        ],
        on_conflict: "ON CONFLICT DO NOTHING",
        identity: false,
    },
    Table {
        name: "idempotency_keys",
        key: 2,
        columns: &[
            col("player_id", Text),
            col("key", Text),
            col("body_digest", Bytes),
            col("drawing_id", Text),
            col("created_at", Int),
        ],
        on_conflict: "ON CONFLICT DO NOTHING",
        identity: false,
    },
    Table {
        name: "settings",
        key: 1,
        columns: &[col("key", Text), col("value", Text)],
        on_conflict: "ON CONFLICT DO NOTHING",
        identity: false,
    },
    Table {
        name: "training_jobs",
        key: 1,
        columns: &[
            col("id", Int),
            col("kind", Text),
            col("status", Text),
            col("config", Text),
            col("config_hash", Text),
            col("attempt", Int),
            col("progress", Text),
            col("metrics", Text),
            col("error", Text),
            col("dataset", Text),
            col("model_version", Text),
            col("result", Text),
            col("cancel_requested", Bool),
            col("not_before", Int),
            col("created_at", Int),
            col("started_at", Int),
            col("finished_at", Int),
        ],
        on_conflict: "ON CONFLICT DO NOTHING",
        identity: true,
    },
    Table {
        name: "models",
        key: 1,
        columns: &[
            col("id", Int),
            col("version", Text),
            col("job_id", Int),
            col("path", Text),
            col("manifest", Text),
            col("is_active", Bool),
            col("created_at", Int),
            col("activated_at", Int),
        ],
        on_conflict: "ON CONFLICT DO NOTHING",
        identity: true,
    },
    Table {
        name: "model_activations",
        key: 1,
        columns: &[
            col("id", Int),
            col("version", Text),
            col("activated_at", Int),
            col("undone", Bool),
        ],
        on_conflict: "ON CONFLICT DO NOTHING",
        identity: true,
    },
    Table {
        name: "api_keys",
        key: 1,
        columns: &[
            col("id", Int),
            col("name", Text),
            col("prefix", Text),
            col("secret_hash", Bytes),
            col("rate_per_min", Int),
            col("created_at", Int),
            col("last_used_at", Int),
            col("revoked_at", Int),
        ],
        on_conflict: "ON CONFLICT DO NOTHING",
        identity: true,
    },
    Table {
        name: "admins",
        key: 1,
        columns: &[
            col("id", Int),
            col("username", Text),
            col("password_hash", Text),
            col("created_at", Int),
            col("password_changed_at", Int),
        ],
        on_conflict: "ON CONFLICT DO NOTHING",
        identity: true,
    },
    Table {
        name: "admin_sessions",
        key: 1,
        columns: &[
            col("token_hash", Bytes),
            col("admin_id", Int),
            col("created_at", Int),
            col("last_seen_at", Int),
            col("expires_at", Int),
        ],
        on_conflict: "ON CONFLICT DO NOTHING",
        identity: false,
    },
    Table {
        name: "setup_tokens",
        key: 1,
        columns: &[
            col("token_hash", Bytes),
            col("created_at", Int),
            col("expires_at", Int),
            col("used_at", Int),
        ],
        on_conflict: "ON CONFLICT DO NOTHING",
        identity: false,
    },
];

/// The name the stroke records go by in progress and checks.
pub const STROKE_RECORDS: &str = "stroke_records";

/// One value of a row, typed by its column's [`Kind`] (a `Null` keeps its column's type).
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

/// Which phase a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Copying batches into the database.
    Copy,
    /// Reading both sides again to compare them.
    Check,
}

/// How far a phase has come, reported after every batch.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    pub phase: Phase,
    /// The table (or [`STROKE_RECORDS`]) the batch belonged to.
    pub table: &'a str,
    /// Rows and records done in this phase so far, and the phase's total (an estimate
    /// for the stroke records: one per drawing row).
    pub done: u64,
    pub total: u64,
}

/// What one table (or the stroke records) looks like on both sides after the copy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableCheck {
    pub table: String,
    /// Rows in the appliance, and how many of their keys the database holds.
    pub source_rows: u64,
    pub target_rows: u64,
    /// Rows the database holds beyond the appliance's (its own, or seeded defaults).
    pub extra_in_target: u64,
    /// SHA-256 of the appliance's rows, and of the database's rows with the same keys, in
    /// the appliance's key order (hex).
    pub source_hash: String,
    pub target_hash: String,
}

impl TableCheck {
    /// Whether the database holds every row of the appliance, unchanged.
    pub fn is_ok(&self) -> bool {
        self.source_rows == self.target_rows && self.source_hash == self.target_hash
    }
}

/// What one copy run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CopyReport {
    /// Stroke records written (upserts: a rerun writes them again).
    pub records: u64,
    /// Rows read from the appliance and offered to the database, per table.
    pub rows: Vec<(String, u64)>,
    /// Of those, rows the database did not hold yet (inserted or, for shapes, updated).
    pub inserted: u64,
}

/// The appliance's side: its stroke records and its metadata database.
pub struct Source<'a> {
    blobs: &'a dyn BlobStore,
    /// A read-only connection to its SQLite database.
    sqlite: Connection,
}

impl<'a> Source<'a> {
    /// The appliance whose records `blobs` holds and whose metadata database is at
    /// `sqlite` (opened read only; it must be at this program's schema version, which
    /// opening its stores brings it to).
    pub fn open(blobs: &'a dyn BlobStore, sqlite: &std::path::Path) -> Result<Self, StoreError> {
        Ok(Self {
            blobs,
            sqlite: crate::store::backup::open_read_only(sqlite)?,
        })
    }
}

/// Shape ids on both sides, by name.
#[derive(Default)]
struct ShapeMap {
    source_names: HashMap<i64, String>,
    target_ids: HashMap<String, i64>,
    target_names: HashMap<i64, String>,
}

impl ShapeMap {
    fn load(source: &Connection, target: &mut Conn) -> Result<Self, StoreError> {
        let mut map = Self::default();
        let mut stmt = source.prepare("SELECT id, name FROM shapes")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, name) = row?;
            map.source_names.insert(id, name);
        }
        for row in target.query("SELECT id, name FROM shapes", &[])? {
            let (id, name): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
            map.target_ids.insert(name.clone(), id);
            map.target_names.insert(id, name);
        }
        Ok(map)
    }
}

/// Rows of the source's tables (plus one estimate per drawing for the stroke records).
fn source_total(source: &Connection) -> Result<u64, StoreError> {
    let mut total = 0u64;
    for table in TABLES {
        total += count_sqlite(source, table.name)?;
    }
    Ok(total + count_sqlite(source, "drawings")?)
}

fn count_sqlite(conn: &Connection, table: &str) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// Copies everything from `source` into `target`, `batch` rows at a time; `progress` hears
/// after every committed batch.
pub fn copy(
    source: &Source<'_>,
    target: &PgStore,
    batch: usize,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<CopyReport, StoreError> {
    let batch = batch.max(1);
    let total = source_total(&source.sqlite)?;
    let mut done = 0u64;
    let mut report = CopyReport::default();

    let mut records = Vec::with_capacity(batch);
    let mut flush = |records: &mut Vec<_>, done: &mut u64| -> Result<(), StoreError> {
        target.put_durably(records)?;
        *done += records.len() as u64;
        records.clear();
        progress(&Progress {
            phase: Phase::Copy,
            table: STROKE_RECORDS,
            done: *done,
            total,
        });
        Ok(())
    };
    for item in source.blobs.records_after(None) {
        records.push(item?);
        report.records += 1;
        if records.len() == batch {
            flush(&mut records, &mut done)?;
        }
    }
    if !records.is_empty() {
        flush(&mut records, &mut done)?;
    }

    let mut conn = target.conn()?;
    let mut shapes = ShapeMap::default();
    for table in TABLES {
        if table.name == "drawings" {
            // Shapes are in by now: drawings name them by the database's ids.
            shapes = ShapeMap::load(&source.sqlite, &mut conn)?;
        }
        let per_batch = batch.min(MAX_PARAMS / table.columns.len());
        let mut after: Option<Vec<Cell>> = None;
        let mut offered = 0u64;
        loop {
            let rows =
                read_source_page(&source.sqlite, table, after.as_deref(), per_batch, &shapes)?;
            let Some(last) = rows.last() else { break };
            after = Some(last[..table.key].to_vec());
            report.inserted += insert_rows(&mut conn, table, &rows, &shapes)?;
            offered += rows.len() as u64;
            done += rows.len() as u64;
            progress(&Progress {
                phase: Phase::Copy,
                table: table.name,
                done,
                total,
            });
            if rows.len() < per_batch {
                break;
            }
        }
        if table.identity {
            conn.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), max(id)) FROM {0}
                     HAVING max(id) IS NOT NULL",
                    table.name
                ),
                &[],
            )?;
        }
        report.rows.push((table.name.to_owned(), offered));
    }
    Ok(report)
}

/// Reads both sides again and compares every table and the stroke records.
pub fn check(
    source: &Source<'_>,
    target: &PgStore,
    batch: usize,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<Vec<TableCheck>, StoreError> {
    let batch = batch.max(1);
    let total = source_total(&source.sqlite)?;
    let mut done = 0u64;
    let mut conn = target.conn()?;
    let mut checks = Vec::new();

    // The stroke records, through the seam on the appliance's side.
    let mut check = Hashes::new(STROKE_RECORDS);
    let mut page: Vec<(String, Vec<u8>)> = Vec::with_capacity(batch);
    let mut compare = |page: &mut Vec<(String, Vec<u8>)>,
                       check: &mut Hashes,
                       done: &mut u64|
     -> Result<(), StoreError> {
        let ids: Vec<&str> = page.iter().map(|(id, _)| id.as_str()).collect();
        let mut found: HashMap<String, Vec<u8>> = HashMap::with_capacity(ids.len());
        for row in conn.query(
            "SELECT id, record FROM stroke_records WHERE id = ANY($1::text[])",
            &[&ids],
        )? {
            found.insert(row.try_get(0)?, row.try_get(1)?);
        }
        for (id, record) in page.iter() {
            let cells = [Cell::Text(id.clone()), Cell::Bytes(record.clone())];
            check.source(&cells, &[Text, Bytes]);
            if let Some(theirs) = found.get(id) {
                let cells = [Cell::Text(id.clone()), Cell::Bytes(theirs.clone())];
                check.target(&cells, &[Text, Bytes]);
            }
        }
        *done += page.len() as u64;
        page.clear();
        progress(&Progress {
            phase: Phase::Check,
            table: STROKE_RECORDS,
            done: *done,
            total,
        });
        Ok(())
    };
    for item in source.blobs.records_after(None) {
        let (id, record) = item?;
        page.push((id.to_string(), record));
        if page.len() == batch {
            compare(&mut page, &mut check, &mut done)?;
        }
    }
    if !page.is_empty() {
        compare(&mut page, &mut check, &mut done)?;
    }
    let in_target: i64 = conn
        .query_one("SELECT count(*) FROM stroke_records", &[])?
        .try_get(0)?;
    checks.push(check.finish(in_target));

    let shapes = ShapeMap::load(&source.sqlite, &mut conn)?;
    for table in TABLES {
        let kinds: Vec<Kind> = table.columns.iter().map(|c| c.kind).collect();
        let per_batch = batch.min(MAX_PARAMS / table.key);
        let mut check = Hashes::new(table.name);
        let mut after: Option<Vec<Cell>> = None;
        loop {
            let rows =
                read_source_page(&source.sqlite, table, after.as_deref(), per_batch, &shapes)?;
            let Some(last) = rows.last() else { break };
            after = Some(last[..table.key].to_vec());
            let found = read_target_rows(&mut conn, table, &rows, &shapes)?;
            for row in &rows {
                check.source(row, &kinds);
                if let Some(theirs) = found.get(&key_bytes(&row[..table.key])) {
                    check.target(theirs, &kinds);
                }
            }
            done += rows.len() as u64;
            progress(&Progress {
                phase: Phase::Check,
                table: table.name,
                done,
                total,
            });
            if rows.len() < per_batch {
                break;
            }
        }
        let in_target: i64 = conn
            .query_one(&format!("SELECT count(*) FROM {}", table.name), &[])?
            .try_get(0)?;
        checks.push(check.finish(in_target));
    }
    Ok(checks)
}

/// A table's running counts and hashes on both sides.
struct Hashes {
    table: &'static str,
    source_rows: u64,
    target_rows: u64,
    source: Sha256,
    target: Sha256,
}

impl Hashes {
    fn new(table: &'static str) -> Self {
        Self {
            table,
            source_rows: 0,
            target_rows: 0,
            source: Sha256::new(),
            target: Sha256::new(),
        }
    }

    fn source(&mut self, row: &[Cell], kinds: &[Kind]) {
        self.source_rows += 1;
        hash_row(&mut self.source, row, kinds);
    }

    fn target(&mut self, row: &[Cell], kinds: &[Kind]) {
        self.target_rows += 1;
        hash_row(&mut self.target, row, kinds);
    }

    fn finish(self, in_target: i64) -> TableCheck {
        TableCheck {
            table: self.table.to_owned(),
            source_rows: self.source_rows,
            target_rows: self.target_rows,
            extra_in_target: (in_target.max(0) as u64).saturating_sub(self.target_rows),
            source_hash: hex(&self.source.finalize()),
            target_hash: hex(&self.target.finalize()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds a row's canonical bytes to `hasher`: a tag per cell, lengths before variable
/// parts, JSON with its keys sorted.
fn hash_row(hasher: &mut Sha256, row: &[Cell], kinds: &[Kind]) {
    for (cell, kind) in row.iter().zip(kinds) {
        match cell {
            Cell::Null => hasher.update([0]),
            Cell::Int(v) => {
                hasher.update([1]);
                hasher.update(v.to_le_bytes());
            }
            Cell::Real(v) => {
                hasher.update([2]);
                hasher.update(v.to_bits().to_le_bytes());
            }
            Cell::Text(text) => {
                let canonical;
                let bytes = if *kind == Json {
                    canonical = canonical_json(text);
                    canonical.as_bytes()
                } else {
                    text.as_bytes()
                };
                hasher.update([3]);
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
            }
            Cell::Bytes(bytes) => {
                hasher.update([4]);
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
            }
            Cell::Bool(b) => hasher.update([5, u8::from(*b)]),
        }
    }
}

/// JSON text in one spelling: keys sorted at every level, numbers as serde_json writes
/// them. Text that is not JSON stays as it is.
fn canonical_json(text: &str) -> String {
    fn write(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, value)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(key.clone()).to_string());
                    out.push(':');
                    write(value, out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => {
            let mut out = String::with_capacity(text.len());
            write(&value, &mut out);
            out
        }
        Err(_) => text.to_owned(),
    }
}

/// The key cells of a row as bytes, to find a row by its key.
fn key_bytes(key: &[Cell]) -> Vec<u8> {
    let mut hasher_input = Vec::new();
    for cell in key {
        match cell {
            Cell::Null => hasher_input.push(0),
            Cell::Int(v) => hasher_input.extend_from_slice(&v.to_le_bytes()),
            Cell::Real(v) => hasher_input.extend_from_slice(&v.to_bits().to_le_bytes()),
            Cell::Text(t) => {
                hasher_input.extend_from_slice(&(t.len() as u64).to_le_bytes());
                hasher_input.extend_from_slice(t.as_bytes());
            }
            Cell::Bytes(b) => {
                hasher_input.extend_from_slice(&(b.len() as u64).to_le_bytes());
                hasher_input.extend_from_slice(b);
            }
            Cell::Bool(b) => hasher_input.push(u8::from(*b)),
        }
    }
    hasher_input
}

/// One page of the source table in key order, after the key `after`.
fn read_source_page(
    conn: &Connection,
    table: &Table,
    after: Option<&[Cell]>,
    limit: usize,
    shapes: &ShapeMap,
) -> Result<Vec<Vec<Cell>>, StoreError> {
    let columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    let keys = &columns[..table.key];
    let mut sql = format!("SELECT {} FROM {}", columns.join(", "), table.name);
    let mut params: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(after) = after {
        let marks: Vec<String> = (1..=keys.len()).map(|i| format!("?{i}")).collect();
        sql.push_str(&format!(
            " WHERE ({}) > ({})",
            keys.join(", "),
            marks.join(", ")
        ));
        params.extend(after.iter().map(sqlite_value));
    }
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", keys.join(", ")));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut page = Vec::with_capacity(limit);
    while let Some(row) = rows.next()? {
        let mut cells = Vec::with_capacity(table.columns.len());
        for (i, column) in table.columns.iter().enumerate() {
            cells.push(read_sqlite_cell(row, i, column, shapes)?);
        }
        page.push(cells);
    }
    Ok(page)
}

fn sqlite_value(cell: &Cell) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match cell {
        Cell::Null => Value::Null,
        Cell::Int(v) => Value::Integer(*v),
        Cell::Real(v) => Value::Real(*v),
        Cell::Text(t) => Value::Text(t.clone()),
        Cell::Bytes(b) => Value::Blob(b.clone()),
        Cell::Bool(b) => Value::Integer(i64::from(*b)),
    }
}

fn read_sqlite_cell(
    row: &rusqlite::Row<'_>,
    i: usize,
    column: &Column,
    shapes: &ShapeMap,
) -> Result<Cell, StoreError> {
    Ok(match column.kind {
        Text | Json => row
            .get::<_, Option<String>>(i)?
            .map_or(Cell::Null, Cell::Text),
        Int => row.get::<_, Option<i64>>(i)?.map_or(Cell::Null, Cell::Int),
        Real => row.get::<_, Option<f64>>(i)?.map_or(Cell::Null, Cell::Real),
        Bool => row
            .get::<_, Option<i64>>(i)?
            .map_or(Cell::Null, |v| Cell::Bool(v != 0)),
        Bytes => row
            .get::<_, Option<Vec<u8>>>(i)?
            .map_or(Cell::Null, Cell::Bytes),
        Shape => {
            let id: i64 = row.get(i)?;
            match shapes.source_names.get(&id) {
                Some(name) => Cell::Text(name.clone()),
                // Before the shapes are loaded (copying the shapes table itself) no table
                // with a shape column is read.
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "{}: shape id {id} names no shape in the appliance",
                        column.name
                    )))
                }
            }
        }
    })
}

fn read_pg_cell(
    row: &postgres::Row,
    i: usize,
    column: &Column,
    shapes: &ShapeMap,
) -> Result<Cell, StoreError> {
    Ok(match column.kind {
        Text | Json => row
            .try_get::<_, Option<String>>(i)?
            .map_or(Cell::Null, Cell::Text),
        Int => row
            .try_get::<_, Option<i64>>(i)?
            .map_or(Cell::Null, Cell::Int),
        Real => row
            .try_get::<_, Option<f64>>(i)?
            .map_or(Cell::Null, Cell::Real),
        Bool => row
            .try_get::<_, Option<bool>>(i)?
            .map_or(Cell::Null, Cell::Bool),
        Bytes => row
            .try_get::<_, Option<Vec<u8>>>(i)?
            .map_or(Cell::Null, Cell::Bytes),
        Shape => {
            let id: i64 = row.try_get(i)?;
            // An id the database does not know cannot happen under its foreign key; keep
            // the id so the hashes differ rather than fail the whole check.
            shapes
                .target_names
                .get(&id)
                .map_or(Cell::Int(id), |name| Cell::Text(name.clone()))
        }
    })
}

/// The placeholder for parameter `n` of a column, cast to the column's type.
fn placeholder(kind: Kind, n: usize) -> String {
    match kind {
        Text => format!("${n}::text"),
        Int | Shape => format!("${n}::bigint"),
        Real => format!("${n}::float8"),
        Bool => format!("${n}::boolean"),
        Bytes => format!("${n}::bytea"),
        Json => format!("${n}::text::jsonb"),
    }
}

/// A cell as a PostgreSQL parameter of its column's type.
fn pg_param(
    cell: &Cell,
    kind: Kind,
    shapes: &ShapeMap,
) -> Result<Box<dyn ToSql + Sync>, StoreError> {
    let mismatch = || StoreError::Corrupt(format!("a {kind:?} column holds {cell:?}"));
    Ok(match (kind, cell) {
        (Text | Json, Cell::Text(t)) => Box::new(Some(t.clone())),
        (Text | Json, Cell::Null) => Box::new(None::<String>),
        (Int, Cell::Int(v)) => Box::new(Some(*v)),
        (Int, Cell::Null) => Box::new(None::<i64>),
        (Real, Cell::Real(v)) => Box::new(Some(*v)),
        (Real, Cell::Null) => Box::new(None::<f64>),
        (Bool, Cell::Bool(b)) => Box::new(Some(*b)),
        (Bool, Cell::Null) => Box::new(None::<bool>),
        (Bytes, Cell::Bytes(b)) => Box::new(Some(b.clone())),
        (Bytes, Cell::Null) => Box::new(None::<Vec<u8>>),
        (Shape, Cell::Text(name)) => match shapes.target_ids.get(name) {
            Some(id) => Box::new(*id),
            None => {
                return Err(StoreError::Corrupt(format!(
                    "shape {name:?} did not reach the database"
                )))
            }
        },
        _ => return Err(mismatch()),
    })
}

/// Inserts one batch of rows in one transaction; returns how many the database took.
fn insert_rows(
    conn: &mut Conn,
    table: &Table,
    rows: &[Vec<Cell>],
    shapes: &ShapeMap,
) -> Result<u64, StoreError> {
    let columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(rows.len() * columns.len());
    let mut tuples = Vec::with_capacity(rows.len());
    for row in rows {
        let mut marks = Vec::with_capacity(columns.len());
        for (cell, column) in row.iter().zip(table.columns) {
            params.push(pg_param(cell, column.kind, shapes)?);
            marks.push(placeholder(column.kind, params.len()));
        }
        tuples.push(format!("({})", marks.join(", ")));
    }
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {} {}",
        table.name,
        columns.join(", "),
        tuples.join(", "),
        table.on_conflict
    );
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
    let mut tx = conn.transaction()?;
    let inserted = tx.execute(&sql, &refs)?;
    tx.commit()?;
    Ok(inserted)
}

/// The database's rows with the keys of `rows`, by key.
fn read_target_rows(
    conn: &mut Conn,
    table: &Table,
    rows: &[Vec<Cell>],
    shapes: &ShapeMap,
) -> Result<HashMap<Vec<u8>, Vec<Cell>>, StoreError> {
    let keys = &table.columns[..table.key];
    let selected: Vec<String> = table
        .columns
        .iter()
        .map(|c| match c.kind {
            Json => format!("{}::text", c.name),
            _ => c.name.to_owned(),
        })
        .collect();
    let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(rows.len() * keys.len());
    let mut tuples = Vec::with_capacity(rows.len());
    for row in rows {
        let mut marks = Vec::with_capacity(keys.len());
        for (cell, column) in row.iter().zip(keys) {
            params.push(pg_param(cell, column.kind, shapes)?);
            marks.push(placeholder(column.kind, params.len()));
        }
        tuples.push(format!("({})", marks.join(", ")));
    }
    let key_names: Vec<&str> = keys.iter().map(|c| c.name).collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE ({}) IN ({})",
        selected.join(", "),
        table.name,
        key_names.join(", "),
        tuples.join(", ")
    );
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
    let mut found = HashMap::with_capacity(rows.len());
    for row in conn.query(&sql, &refs)? {
        let mut cells = Vec::with_capacity(table.columns.len());
        for (i, column) in table.columns.iter().enumerate() {
            cells.push(read_pg_cell(&row, i, column, shapes)?);
        }
        found.insert(key_bytes(&cells[..table.key]), cells);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_reads_numbers_as_values() {
        assert_eq!(
            canonical_json(r#"{"b": 1e-7, "a": [true, {"d": 1, "c": "x"}]}"#),
            canonical_json(r#"{"a":[true,{"c":"x","d":1}],"b":0.0000001}"#)
        );
        assert_ne!(canonical_json(r#"{"a":1}"#), canonical_json(r#"{"a":2}"#));
        assert_eq!(canonical_json("not json"), "not json");
    }

    #[test]
    fn a_null_and_an_empty_text_hash_differently() {
        let hash = |cell: Cell| {
            let mut h = Sha256::new();
            hash_row(&mut h, &[cell], &[Text]);
            hex(&h.finalize())
        };
        assert_ne!(hash(Cell::Null), hash(Cell::Text(String::new())));
    }

    #[test]
    fn every_table_has_its_key_among_its_columns() {
        for table in TABLES {
            assert!(
                table.key >= 1 && table.key <= table.columns.len(),
                "{}",
                table.name
            );
            assert!(table.columns[..table.key].iter().all(|c| c.kind != Shape));
        }
    }
}
