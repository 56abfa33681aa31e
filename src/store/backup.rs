//! The store side of backups: a consistent snapshot of the metadata database, the stroke
//! records that snapshot references written to a plain record file, and the way back into a
//! fresh sled store. The checks `doodlebox verify` runs across both stores are in
//! [`super::check`].
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
use super::StoreError;
use crate::domain::DrawingId;

/// File name of the stroke records inside a backup.
pub const RECORDS_FILE: &str = "strokes.records";
/// First bytes of [`RECORDS_FILE`]: the format and its version.
const RECORDS_MAGIC: &[u8; 8] = b"DBXREC01";
/// Records written to the stroke store per durable batch while restoring.
const RESTORE_BATCH: usize = 5_000;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::tests::sample_record_bytes as record_bytes;
    use crate::store::Stores;

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
