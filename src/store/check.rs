//! Checks the embedded stores against each other, for `doodlebox verify` and the `verify`
//! job: SQLite's own integrity and foreign keys, then one merge walk of the drawing rows and
//! the stroke records, both in id order.
//!
//! The walk holds a chunk of row ids at a time, never every id: at ten million drawings the
//! earlier way (every id in a sorted vector, then a binary search per record) held about
//! 170 MB for the whole check. Rows are read in chunks by id, each chunk in its own short
//! read, so a check that runs for many minutes on a live server does not pin SQLite's
//! write-ahead log meanwhile.
//!
//! Why this is right while a server writes: the newest row is fixed when the check begins,
//! and the group-commit writer syncs a batch's stroke records before it commits their rows,
//! with ids that only grow. Rows added later are newer than that row and are not walked;
//! records added later are counted as newer than the newest row, not reported. The purge
//! removes stroke records before rows, so a drawing purged during the walk can look like a
//! row without its record: such rows are looked up again at the end, and one that is gone
//! by then is not a problem.

use std::collections::VecDeque;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::backup::open_read_only;
use super::blobs::RecordIter;
use super::migrations::SCHEMA_VERSION;
use super::StoreError;
use crate::domain::{DrawingId, Record};

/// How many examples of each kind of problem a check keeps (all are counted).
const EXAMPLES_KEPT: usize = 20;
/// Drawing rows read per chunk of the walk.
const ROW_CHUNK: usize = 10_000;
/// Rows without a record that are looked up again at the end of the walk; beyond these,
/// such rows are reported without a second look.
const RECHECKED_AT_MOST: usize = 10_000;
/// Records walked between two progress reports.
const PROGRESS_EVERY: u64 = 50_000;

/// Some problems of one kind: how many, and the first few.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Findings {
    pub count: u64,
    pub examples: Vec<String>,
}

impl Findings {
    pub(crate) fn push(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < EXAMPLES_KEPT {
            self.examples.push(what());
        }
    }
}

/// What checking both stores found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StoreCheck {
    /// `PRAGMA integrity_check`: `ok`, the problems, or why it could not run.
    pub integrity: String,
    /// `PRAGMA foreign_key_check` violations.
    pub foreign_keys: Findings,
    /// The database's schema version.
    pub schema_version: i64,
    /// Drawing rows walked (up to the newest row when the check began), less those purged
    /// while it ran.
    pub rows: u64,
    pub records: u64,
    /// Records that do not decode, or name another id than their key.
    pub unreadable: Findings,
    /// Rows whose stroke record is missing: lost drawings.
    pub rows_without_records: Findings,
    /// Records without a row that are older than the newest row (start-up reconciliation
    /// does not rebuild these).
    pub records_without_rows: Findings,
    /// Records newer than the newest row: submissions after the check began on a running
    /// server, or, on a stopped one, what start-up reconciliation rebuilds. Not a problem.
    pub records_after_last_row: u64,
    /// Every model version with the path its row names.
    pub models: Vec<(String, String)>,
}

impl StoreCheck {
    /// Whether anything is wrong.
    pub fn is_ok(&self) -> bool {
        self.integrity == "ok"
            && self.foreign_keys.count == 0
            && self.unreadable.count == 0
            && self.rows_without_records.count == 0
            && self.records_without_rows.count == 0
    }
}

/// What a check is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckPhase {
    /// SQLite's integrity and foreign key checks: minutes at ten million drawings, with no
    /// count to show.
    Database,
    /// The walk of the rows and the stroke records.
    Records,
}

/// How far a check has come, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CheckProgress {
    pub phase: CheckPhase,
    /// Stroke records walked so far.
    pub records: u64,
    /// Drawing rows walked so far.
    pub rows: u64,
    /// Drawing rows the walk will meet (those up to the newest row when it began).
    pub rows_total: u64,
}

/// Checks the metadata database at `sqlite` and the `records` (in id order) against each
/// other.
pub fn check_stores(sqlite: &Path, records: RecordIter<'_>) -> Result<StoreCheck, StoreError> {
    let checked = check_stores_until(sqlite, records, &mut |_| {}, &|| false)?;
    Ok(checked.expect("a check that is never asked to stop finishes"))
}

/// [`check_stores`], reporting its progress now and then and looking at `should_stop` between
/// records: `None` when that said stop before the walk ended.
pub fn check_stores_until(
    sqlite: &Path,
    mut records: RecordIter<'_>,
    on_progress: &mut dyn FnMut(CheckProgress),
    should_stop: &dyn Fn() -> bool,
) -> Result<Option<StoreCheck>, StoreError> {
    let mut check = StoreCheck::default();
    let conn = open_read_only(sqlite)?;
    let mut progress = CheckProgress {
        phase: CheckPhase::Database,
        records: 0,
        rows: 0,
        rows_total: 0,
    };
    on_progress(progress);
    let Some(start) = read_start(&conn, &mut check)? else {
        return Ok(Some(check));
    };
    let mut rows = RowWalk::new(&conn, start.last_row.clone(), ROW_CHUNK);
    progress = CheckProgress {
        phase: CheckPhase::Records,
        records: 0,
        rows: 0,
        rows_total: start.rows,
    };
    on_progress(progress);
    let mut recheck = Vec::new();
    let mut last_record: Option<DrawingId> = None;
    let mut row = rows.next()?;
    let mut record = records.next().transpose()?;
    loop {
        if should_stop() {
            return Ok(None);
        }
        match (row, &record) {
            (None, None) => break,
            // A row whose record comes later, or never: missing.
            (Some(id), next) if next.as_ref().is_none_or(|(next, _)| id < *next) => {
                if recheck.len() < RECHECKED_AT_MOST {
                    recheck.push(id);
                } else {
                    check.rows_without_records.push(|| id.to_string());
                }
                check.rows += 1;
                progress.rows += 1;
                row = rows.next()?;
            }
            (row_id, Some((id, bytes))) => {
                let id = *id;
                if last_record.is_some_and(|last| id <= last) {
                    return Err(StoreError::Corrupt(format!(
                        "stroke records out of id order at {id}: the stores cannot be compared"
                    )));
                }
                last_record = Some(id);
                check.records += 1;
                progress.records += 1;
                check_record(&mut check, id, bytes);
                if row_id == Some(id) {
                    check.rows += 1;
                    progress.rows += 1;
                    row = rows.next()?;
                } else if start.last_row.as_ref().is_some_and(|last| id < last.id) {
                    check.records_without_rows.push(|| id.to_string());
                } else {
                    check.records_after_last_row += 1;
                }
                if progress.records % PROGRESS_EVERY == 0 {
                    on_progress(progress);
                }
                record = records.next().transpose()?;
            }
            (Some(_), None) => unreachable!("a row with no record after it is taken above"),
        }
    }
    for id in recheck {
        if row_exists(&conn, id)? {
            check.rows_without_records.push(|| id.to_string());
        } else {
            check.rows -= 1;
        }
    }
    on_progress(progress);
    Ok(Some(check))
}

/// The newest row when the check began: the walk goes up to it.
#[derive(Debug, Clone)]
struct LastRow {
    id: DrawingId,
    text: String,
}

/// What the walk needs from the start of the check.
struct Start {
    last_row: Option<LastRow>,
    rows: u64,
}

/// SQLite's own checks, the models, and where the walk ends, in one read transaction;
/// `None` when the database failed its integrity check (the walk would mean nothing).
fn read_start(conn: &Connection, check: &mut StoreCheck) -> Result<Option<Start>, StoreError> {
    conn.execute_batch("BEGIN")?;
    let start = read_start_in_transaction(conn, check);
    conn.execute_batch("COMMIT")?;
    start
}

fn read_start_in_transaction(
    conn: &Connection,
    check: &mut StoreCheck,
) -> Result<Option<Start>, StoreError> {
    check.integrity = match integrity(conn) {
        Ok(text) => text,
        Err(e) => {
            check.integrity = format!("the database cannot be read: {e}");
            return Ok(None);
        }
    };
    if check.integrity != "ok" {
        return Ok(None);
    }
    check.schema_version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if check.schema_version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: check.schema_version,
            known: SCHEMA_VERSION,
        });
    }
    {
        let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let table: String = row.get(0)?;
            let rowid: Option<i64> = row.get(1)?;
            let parent: String = row.get(2)?;
            check
                .foreign_keys
                .push(|| format!("{table} row {rowid:?} names a missing {parent} row"));
        }
    }
    check.models = {
        let mut stmt = conn.prepare("SELECT version, path FROM models ORDER BY id")?;
        let models = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        models.collect::<Result<Vec<_>, _>>()?
    };
    let (last, rows): (Option<String>, i64) =
        conn.query_row("SELECT max(id), count(*) FROM drawings", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let last_row = last
        .map(|text| {
            Ok::<_, StoreError>(LastRow {
                id: canonical_id(&text)?,
                text,
            })
        })
        .transpose()?;
    Ok(Some(Start {
        last_row,
        rows: rows as u64,
    }))
}

fn integrity(conn: &Connection) -> Result<String, rusqlite::Error> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let lines = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(lines.collect::<Result<Vec<_>, _>>()?.join("; "))
}

/// A row's id, which must be written as the product writes it (a lowercase hyphenated
/// UUID): only then does SQLite's text order equal the stroke store's key order.
fn canonical_id(text: &str) -> Result<DrawingId, StoreError> {
    match text.parse::<DrawingId>() {
        Ok(id) if id.to_string() == text => Ok(id),
        _ => Err(StoreError::Corrupt(format!(
            "drawing row id {text:?} is not a lowercase UUID: the stores cannot be compared in id order"
        ))),
    }
}

fn check_record(check: &mut StoreCheck, id: DrawingId, bytes: &[u8]) {
    match Record::decode(bytes) {
        Ok(record) if record.id == id => {}
        Ok(record) => check
            .unreadable
            .push(|| format!("{id}: the record names {}", record.id)),
        Err(e) => check.unreadable.push(|| format!("{id}: {e}")),
    }
}

fn row_exists(conn: &Connection, id: DrawingId) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM drawings WHERE id = ?1",
            [id.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The drawing rows up to the newest row at the start, in id order, a chunk at a time.
struct RowWalk<'c> {
    conn: &'c Connection,
    last: Option<LastRow>,
    chunk_size: usize,
    chunk: VecDeque<DrawingId>,
    /// The text id of the last row read: the next chunk starts after it.
    after: String,
    finished: bool,
}

impl<'c> RowWalk<'c> {
    fn new(conn: &'c Connection, last: Option<LastRow>, chunk_size: usize) -> Self {
        Self {
            conn,
            finished: last.is_none(),
            last,
            chunk_size,
            chunk: VecDeque::new(),
            after: String::new(),
        }
    }

    fn next(&mut self) -> Result<Option<DrawingId>, StoreError> {
        if self.chunk.is_empty() && !self.finished {
            self.read_chunk()?;
        }
        Ok(self.chunk.pop_front())
    }

    fn read_chunk(&mut self) -> Result<(), StoreError> {
        let last = &self.last.as_ref().expect("a walk with rows").text;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM drawings WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
        )?;
        let texts = stmt.query_map(params![self.after, last, self.chunk_size as i64], |r| {
            r.get::<_, String>(0)
        })?;
        for text in texts {
            let text = text?;
            self.chunk.push_back(canonical_id(&text)?);
            self.after = text;
        }
        self.finished = self.chunk.len() < self.chunk_size;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::tests::sample_record_bytes as record_bytes;
    use crate::store::Stores;

    /// A database whose `drawings` table holds just the ids (the walk reads nothing else).
    fn database_with_rows(dir: &Path, ids: &[DrawingId]) -> std::path::PathBuf {
        let path = dir.join("meta.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE drawings (id TEXT PRIMARY KEY);
             CREATE TABLE models (id INTEGER PRIMARY KEY, version TEXT, path TEXT);",
        )
        .unwrap();
        for id in ids {
            conn.execute("INSERT INTO drawings VALUES (?1)", [id.to_string()])
                .unwrap();
        }
        path
    }

    fn records_of(ids: &[DrawingId]) -> Vec<(DrawingId, Vec<u8>)> {
        ids.iter().map(|&id| (id, record_bytes(id))).collect()
    }

    fn iter(records: Vec<(DrawingId, Vec<u8>)>) -> RecordIter<'static> {
        Box::new(records.into_iter().map(Ok))
    }

    fn id(n: u128) -> DrawingId {
        DrawingId::from_u128((n + 1) << 70)
    }

    #[test]
    fn the_walk_finds_each_kind_of_mismatch_across_chunk_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        // Rows 0..25_000 except 7 and 12_345; records for all of them except 100, 10_000
        // (the first of the second chunk) and 24_999 (the newest row); record 7 and 12_345
        // have no rows; 30_000 and 30_001 come after the newest row; 500's record names
        // another drawing.
        let rows: Vec<DrawingId> = (0..25_000)
            .filter(|n| ![7, 12_345].contains(n))
            .map(id)
            .collect();
        let mut records = records_of(
            &(0..25_000)
                .filter(|n| ![100, 10_000, 24_999].contains(n))
                .map(id)
                .chain([id(30_000), id(30_001)])
                .collect::<Vec<_>>(),
        );
        let wrong = records.iter().position(|(r, _)| *r == id(500)).unwrap();
        records[wrong].1 = record_bytes(id(501));
        let sqlite = database_with_rows(dir.path(), &rows);

        let mut reports = Vec::new();
        let check = check_stores_until(&sqlite, iter(records), &mut |p| reports.push(p), &|| false)
            .unwrap()
            .unwrap();
        assert_eq!(check.integrity, "ok");
        assert_eq!((check.rows, check.records), (24_998, 24_999));
        assert_eq!(check.rows_without_records.count, 3);
        assert_eq!(
            check.rows_without_records.examples,
            [id(100), id(10_000), id(24_999)].map(|i| i.to_string())
        );
        assert_eq!(check.records_without_rows.count, 2);
        assert_eq!(
            check.records_without_rows.examples,
            [id(7), id(12_345)].map(|i| i.to_string())
        );
        assert_eq!(check.records_after_last_row, 2);
        assert_eq!(check.unreadable.count, 1);
        assert!(check.unreadable.examples[0].contains(&id(501).to_string()));
        assert!(!check.is_ok());
        let last = *reports.last().unwrap();
        assert_eq!(
            last,
            CheckProgress {
                phase: CheckPhase::Records,
                records: 24_999,
                rows: 24_998,
                rows_total: 24_998
            }
        );
        assert_eq!(reports[0].phase, CheckPhase::Database);
        assert!(reports.len() >= 3, "{reports:?}");
    }

    #[test]
    fn whole_stores_pass_and_an_empty_database_counts_every_record_as_newer() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<DrawingId> = (0..3).map(id).collect();
        let sqlite = database_with_rows(dir.path(), &ids);
        let check = check_stores(&sqlite, iter(records_of(&ids))).unwrap();
        assert!(check.is_ok(), "{check:?}");
        assert_eq!((check.rows, check.records), (3, 3));

        let empty = tempfile::tempdir().unwrap();
        let sqlite = database_with_rows(empty.path(), &[]);
        let check = check_stores(&sqlite, iter(records_of(&ids))).unwrap();
        assert!(check.is_ok(), "{check:?}");
        assert_eq!(
            (check.rows, check.records, check.records_after_last_row),
            (0, 3, 3)
        );
    }

    #[test]
    fn a_row_purged_while_the_walk_ran_is_not_a_missing_record() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<DrawingId> = (0..4).map(id).collect();
        let sqlite = database_with_rows(dir.path(), &ids);
        // The purge removed drawing 1's record before the walk met it, and its row once
        // the walk had passed it; drawing 2 lost its record for real.
        let records = records_of(&[ids[0], ids[3]]);
        let purging = sqlite.clone();
        let records: RecordIter<'static> =
            Box::new(records.into_iter().map(Ok).inspect(move |item| {
                if item.as_ref().is_ok_and(|(r, _)| *r == id(3)) {
                    Connection::open(&purging)
                        .unwrap()
                        .execute("DELETE FROM drawings WHERE id = ?1", [id(1).to_string()])
                        .unwrap();
                }
            }));
        let check = check_stores(&sqlite, records).unwrap();
        assert_eq!(check.rows_without_records.examples, [id(2).to_string()]);
        assert_eq!(check.rows, 3);
    }

    #[test]
    fn rows_out_of_the_product_s_id_form_or_records_out_of_order_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = database_with_rows(dir.path(), &[id(0)]);
        Connection::open(&sqlite)
            .unwrap()
            .execute(
                "INSERT INTO drawings VALUES (?1)",
                [DrawingId::from_u128(0xabcd << 64)
                    .to_string()
                    .to_uppercase()],
            )
            .unwrap();
        let refused = check_stores(&sqlite, iter(records_of(&[id(0)])));
        assert!(
            matches!(refused, Err(StoreError::Corrupt(_))),
            "{refused:?}"
        );

        let other = tempfile::tempdir().unwrap();
        let sqlite = database_with_rows(other.path(), &[]);
        let refused = check_stores(&sqlite, iter(records_of(&[id(2), id(1)])));
        assert!(
            matches!(refused, Err(StoreError::Corrupt(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn a_check_asked_to_stop_ends_without_a_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<DrawingId> = (0..10).map(id).collect();
        let sqlite = database_with_rows(dir.path(), &ids);
        let asked = std::cell::Cell::new(0);
        let stopped = check_stores_until(&sqlite, iter(records_of(&ids)), &mut |_| {}, &|| {
            asked.set(asked.get() + 1);
            asked.get() > 5
        })
        .unwrap();
        assert!(stopped.is_none());
    }

    #[test]
    fn the_product_s_own_stores_check_whole() {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::open(&dir.path().join("data")).unwrap();
        let check = check_stores(
            &crate::store::metadata_path(&dir.path().join("data")),
            stores.blobs.records_after(None),
        )
        .unwrap();
        assert!(check.is_ok(), "{check:?}");
    }
}
