//! The store side of backups: a consistent snapshot of the metadata database, the stroke
//! records that snapshot references written to a plain record file, the way back into a
//! fresh sled store, and the checks `doodlebox verify` runs across both stores.
//!
//! Why this order is consistent while the server writes: the group-commit writer syncs a
//! batch's stroke records before it commits their rows, and ids grow monotonically. So
//! every row in a SQLite snapshot has its record in the live stroke store, and copying the
//! records with an id up to the snapshot's newest row gives exactly the drawings the
//! snapshot holds. The only code that deletes stroke records (`ingest` undoing a batch whose
//! rows were refused) deletes records newer than every committed row, so it never touches
//! the range being copied, and nothing needs holding off.
//!
//! The backup keeps stroke records in a file of its own ([`RECORDS_FILE`]) rather than a
//! sled directory: it can be read (and checksummed, and verified) without opening sled,
//! which writes on open and would change the files a backup's checksums describe.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::blobs::{sync_dir, BlobStore, RecordIter, SledBlobStore};
use super::metadata::parse_id;
use super::migrations::SCHEMA_VERSION;
use super::StoreError;
use crate::domain::{DrawingId, Record};

/// File name of the stroke records inside a backup.
pub const RECORDS_FILE: &str = "strokes.records";
/// First bytes of [`RECORDS_FILE`]: the format and its version.
const RECORDS_MAGIC: &[u8; 8] = b"DBXREC01";
/// Records written to the stroke store per durable batch while restoring.
const RESTORE_BATCH: usize = 5_000;
/// How many examples of each kind of problem a check keeps (all are counted).
const EXAMPLES_KEPT: usize = 20;
/// Largest record accepted from a record file (records are far smaller; see `domain::record`).
const MAX_RECORD_BYTES: u32 = 16 * 1024 * 1024;
/// How long a snapshot or check waits for a lock held by the server's writer.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a metadata snapshot holds.
#[derive(Debug, Clone)]
pub struct MetadataSnapshot {
    /// Drawing rows in the snapshot.
    pub drawings: u64,
    /// The newest drawing row: records up to it belong to the snapshot.
    pub last_drawing: Option<DrawingId>,
    /// `PRAGMA user_version` of the snapshot.
    pub schema_version: i64,
    /// Every model version with the directory its files were in when the snapshot was taken.
    pub models: Vec<(String, String)>,
}

/// Writes a consistent copy of the metadata database at `source` to `dest` (`VACUUM INTO`
/// runs in one read transaction, so the server keeps writing meanwhile), points the copy's
/// model paths at `models_dir/<version>`, and syncs it. The copy is in rollback-journal
/// mode, so opening it read-only later creates no side files.
pub fn snapshot_metadata(
    source: &Path,
    dest: &Path,
    models_dir: &Path,
) -> Result<MetadataSnapshot, StoreError> {
    let conn = open_read_only(source)?;
    let dest_text = dest
        .to_str()
        .ok_or_else(|| StoreError::Corrupt(format!("{} is not UTF-8", dest.display())))?;
    conn.execute("VACUUM INTO ?1", [dest_text])?;
    drop(conn);
    let copy = Connection::open(dest)?;
    copy.busy_timeout(BUSY_TIMEOUT)?;
    copy.pragma_update(None, "journal_mode", "DELETE")?;
    let snapshot = describe(&copy)?;
    relocate_models(&copy, models_dir)?;
    drop(copy);
    File::open(dest)?.sync_all()?;
    if let Some(dir) = dest.parent() {
        sync_dir(dir)?;
    }
    Ok(snapshot)
}

/// Points every model row of the database at `dest` to `models_dir/<version>` (after a
/// restore, the files are there and no longer where the source had them).
pub fn relocate_models_in(db: &Path, models_dir: &Path) -> Result<(), StoreError> {
    let conn = Connection::open(db)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    relocate_models(&conn, models_dir)
}

fn relocate_models(conn: &Connection, models_dir: &Path) -> Result<(), StoreError> {
    let versions: Vec<String> = {
        let mut stmt = conn.prepare("SELECT version FROM models")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for version in versions {
        let path = models_dir.join(&version);
        conn.execute(
            "UPDATE models SET path = ?1 WHERE version = ?2",
            [path.to_string_lossy().as_ref(), version.as_str()],
        )?;
    }
    Ok(())
}

fn describe(conn: &Connection) -> Result<MetadataSnapshot, StoreError> {
    let drawings: i64 = conn.query_row("SELECT count(*) FROM drawings", [], |r| r.get(0))?;
    let last: Option<String> = conn.query_row("SELECT max(id) FROM drawings", [], |r| r.get(0))?;
    let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let models = {
        let mut stmt = conn.prepare("SELECT version, path FROM models ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    Ok(MetadataSnapshot {
        drawings: drawings as u64,
        last_drawing: last.map(parse_id).transpose()?,
        schema_version,
        models,
    })
}

pub(crate) fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} does not exist", path.display()),
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// How many records a copy wrote, and their bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordCount {
    pub records: u64,
    pub bytes: u64,
}

/// Writes every record of `blobs` with an id up to `through` (none for `None`) to the record
/// file `dest`, synced. `progress` hears the running count now and then.
pub fn export_records(
    blobs: &dyn BlobStore,
    through: Option<DrawingId>,
    dest: &Path,
    progress: &mut dyn FnMut(RecordCount),
) -> Result<RecordCount, StoreError> {
    let file = File::create(dest)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(RECORDS_MAGIC)?;
    let mut count = RecordCount::default();
    if let Some(through) = through {
        for item in blobs.records_after(None) {
            let (id, bytes) = item?;
            if id > through {
                break;
            }
            let len = u32::try_from(bytes.len())
                .map_err(|_| StoreError::Corrupt(format!("record {id} is over 4 GiB")))?;
            out.write_all(&id.to_bytes())?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(&bytes)?;
            count.records += 1;
            count.bytes += bytes.len() as u64;
            if count.records % 10_000 == 0 {
                progress(count);
            }
        }
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(count)
}

/// The records of a record file, in the order written (id order), checked for framing.
pub fn read_records(path: &Path) -> Result<RecordIter<'static>, StoreError> {
    let mut input = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic)?;
    if &magic != RECORDS_MAGIC {
        return Err(StoreError::Corrupt(format!(
            "{} is not a Doodlebox record file",
            path.display()
        )));
    }
    let mut failed = false;
    Ok(Box::new(std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let next = next_record(&mut input).transpose();
        failed = matches!(next, Some(Err(_)));
        next
    })))
}

fn next_record(input: &mut impl Read) -> Result<Option<(DrawingId, Vec<u8>)>, StoreError> {
    let mut id = [0u8; 16];
    match input.read_exact(&mut id) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let mut len = [0u8; 4];
    let truncated = |_| StoreError::Corrupt("the record file is truncated".into());
    input.read_exact(&mut len).map_err(truncated)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_RECORD_BYTES {
        return Err(StoreError::Corrupt(format!(
            "the record file claims a record of {len} bytes"
        )));
    }
    let mut bytes = vec![0u8; len as usize];
    input.read_exact(&mut bytes).map_err(truncated)?;
    Ok(Some((DrawingId::from_bytes(id), bytes)))
}

/// Fills a new stroke store at `dir` from a record file, durably. Returns the count.
pub fn import_records(records_file: &Path, dir: &Path) -> Result<RecordCount, StoreError> {
    let store = SledBlobStore::open(dir)?;
    let mut count = RecordCount::default();
    let mut batch = Vec::with_capacity(RESTORE_BATCH);
    for item in read_records(records_file)? {
        let (id, bytes) = item?;
        count.records += 1;
        count.bytes += bytes.len() as u64;
        batch.push((id, bytes));
        if batch.len() == RESTORE_BATCH {
            store.put_durably(&batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.put_durably(&batch)?;
    }
    Ok(count)
}

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

/// Checks the metadata database at `sqlite` and the `records` against each other. The rows
/// are read in one transaction first, so a server that keeps writing adds only records newer
/// than the newest row, which are counted, not reported.
pub fn check_stores(sqlite: &Path, records: RecordIter<'_>) -> Result<StoreCheck, StoreError> {
    let mut check = StoreCheck::default();
    let mut conn = open_read_only(sqlite)?;
    let tx = conn.transaction()?;
    check.integrity = match integrity(&tx) {
        Ok(text) => text,
        Err(e) => {
            check.integrity = format!("the database cannot be read: {e}");
            return Ok(check);
        }
    };
    if check.integrity != "ok" {
        return Ok(check);
    }
    check.schema_version = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if check.schema_version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: check.schema_version,
            known: SCHEMA_VERSION,
        });
    }
    {
        let mut stmt = tx.prepare("PRAGMA foreign_key_check")?;
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
    let mut rows: Vec<DrawingId> = {
        let mut stmt = tx.prepare("SELECT id FROM drawings")?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut parsed = Vec::new();
        for id in ids {
            parsed.push(parse_id(id?)?);
        }
        parsed
    };
    check.models = {
        let mut stmt = tx.prepare("SELECT version, path FROM models ORDER BY id")?;
        let models = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        models.collect::<Result<Vec<_>, _>>()?
    };
    tx.finish()?;
    rows.sort_unstable();
    check.rows = rows.len() as u64;
    let last_row = rows.last().copied();
    let mut seen = vec![false; rows.len()];
    for item in records {
        let (id, bytes) = item?;
        check.records += 1;
        match Record::decode(&bytes) {
            Ok(record) if record.id == id => {}
            Ok(record) => check
                .unreadable
                .push(|| format!("{id}: the record names {}", record.id)),
            Err(e) => check.unreadable.push(|| format!("{id}: {e}")),
        }
        match rows.binary_search(&id) {
            Ok(index) => seen[index] = true,
            Err(_) if last_row.is_some_and(|last| id < last) => {
                check.records_without_rows.push(|| id.to_string())
            }
            Err(_) => check.records_after_last_row += 1,
        }
    }
    for (id, _) in rows.iter().zip(&seen).filter(|(_, seen)| !**seen) {
        check.rows_without_records.push(|| id.to_string());
    }
    Ok(check)
}

fn integrity(conn: &Connection) -> Result<String, rusqlite::Error> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let lines = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(lines.collect::<Result<Vec<_>, _>>()?.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Stores;

    fn record_bytes(id: DrawingId) -> Vec<u8> {
        let drawing = crate::domain::Drawing::parse(
            serde_json::from_value(serde_json::json!({
                "shape": "line", "canvas": {"width": 100, "height": 100},
                "strokes": [{"points": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}]
            }))
            .unwrap(),
        )
        .unwrap();
        Record {
            id,
            player: crate::domain::PlayerId::random(),
            created_at_ms: 1,
            idempotency: None,
            judgement: None,
            source: None,
            drawing,
        }
        .encode()
    }

    #[test]
    fn a_record_file_reads_back_the_records_up_to_the_snapshot_and_rebuilds_a_stroke_store() {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::open(&dir.path().join("data")).unwrap();
        let ids: Vec<DrawingId> = (1..=5).map(|n| DrawingId::from_u128(n << 70)).collect();
        let records: Vec<_> = ids.iter().map(|&id| (id, record_bytes(id))).collect();
        stores.blobs.put_durably(&records).unwrap();
        let file = dir.path().join(RECORDS_FILE);
        let count = export_records(&*stores.blobs, Some(ids[2]), &file, &mut |_| {}).unwrap();
        assert_eq!(count.records, 3);
        let back: Vec<_> = read_records(&file)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, records[..3].to_vec());
        let rebuilt = import_records(&file, &dir.path().join("strokes")).unwrap();
        assert_eq!(rebuilt.records, 3);
        let store = SledBlobStore::open(&dir.path().join("strokes")).unwrap();
        assert_eq!(store.get(ids[1]).unwrap(), Some(records[1].1.clone()));
        assert_eq!(store.get(ids[3]).unwrap(), None);
    }

    #[test]
    fn a_truncated_record_file_is_reported_as_corrupt_not_read_short() {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::open(&dir.path().join("data")).unwrap();
        let id = DrawingId::from_u128(1 << 70);
        stores.blobs.put_durably(&[(id, record_bytes(id))]).unwrap();
        let file = dir.path().join(RECORDS_FILE);
        export_records(&*stores.blobs, Some(id), &file, &mut |_| {}).unwrap();
        let len = std::fs::metadata(&file).unwrap().len();
        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let read: Result<Vec<_>, _> = read_records(&file).unwrap().collect();
        assert!(matches!(read, Err(StoreError::Corrupt(_))), "{read:?}");
    }
}
