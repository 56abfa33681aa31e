//! The purge: drawings soft-deleted long enough ago are deleted for good, stroke records
//! first, then rows (and their idempotency records).

use rusqlite::params;

use super::{ids_json, SqliteReviewStore};
use crate::domain::DrawingId;
use crate::store::metadata::parse_id;
use crate::store::{StoreError, Stores};

/// Drawings purged per round (stroke records, then rows).
const PURGE_CHUNK: usize = 1_000;

pub(super) fn deleted_before(
    store: &SqliteReviewStore,
    cutoff_ms: u64,
    limit: usize,
) -> Result<Vec<DrawingId>, StoreError> {
    let ids: Vec<String> = store.db.read(|conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM drawings WHERE deleted_at IS NOT NULL AND deleted_at <= ?1 LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![cutoff_ms as i64, limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })?;
    ids.into_iter().map(parse_id).collect()
}

pub(super) fn remove_rows(
    store: &SqliteReviewStore,
    ids: &[DrawingId],
) -> Result<usize, StoreError> {
    let ids = ids_json(ids);
    store.db.write(|conn| {
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
