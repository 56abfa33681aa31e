//! Start-up reconciliation of the two stores.
//!
//! The writer syncs a batch's stroke records before it inserts their rows, and commits the
//! rows without a sync of their own, so a crash, or a power cut that undoes the newest
//! commits, can leave records without rows, never the reverse. Ids grow monotonically, so those records
//! all sort after the newest row: rebuilding them is a scan of the stroke store's tail, fast
//! at any size. Rows whose strokes are missing mean lost data; they are reported, never
//! dropped (the newest rows are checked here; `doodlebox verify` checks all).

use serde::Serialize;

use super::ingest::drawing_metadata;
use super::metadata::NewDrawingRow;
use super::{StoreError, Stores};
use crate::domain::{DrawingId, Record};

/// Rows inserted per transaction while rebuilding.
const REBUILD_CHUNK: usize = 1_000;
/// How many of the newest rows are checked for their strokes at start.
const RECENT_ROWS_CHECKED: usize = 1_000;

/// What reconciliation found and did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReconcileReport {
    /// Rows rebuilt from stroke records that had none.
    pub rebuilt: usize,
    /// Records that could not be decoded or name an unknown shape (left in place).
    pub unreadable: Vec<String>,
    /// Rows whose stroke record is missing.
    pub missing_strokes: Vec<String>,
}

pub fn reconcile(stores: &Stores) -> Result<ReconcileReport, StoreError> {
    let mut report = ReconcileReport::default();
    let last_row = stores.metadata.last_drawing_id()?;
    let mut chunk = Vec::new();
    for item in stores.blobs.records_after(last_row) {
        let (id, bytes) = item?;
        let record = match Record::decode(&bytes) {
            Ok(record) if record.id == id => record,
            Ok(_) => {
                report
                    .unreadable
                    .push(format!("{id}: the record names another id"));
                continue;
            }
            Err(e) => {
                report.unreadable.push(format!("{id}: {e}"));
                continue;
            }
        };
        match stores.metadata.shape_by_name(record.drawing.shape())? {
            Some(shape) => chunk.push(NewDrawingRow {
                id: record.id,
                player: record.player,
                shape_id: shape.id,
                metadata: drawing_metadata(&record.drawing),
                created_at_ms: record.created_at_ms,
                idempotency: record.idempotency.map(|i| (i.key, i.body_digest)),
                source_key: record.source.map(|s| s.key().to_owned()),
                judgement: record.judgement,
            }),
            None => report
                .unreadable
                .push(format!("{id}: unknown shape {}", record.drawing.shape())),
        }
        if chunk.len() == REBUILD_CHUNK {
            stores.metadata.insert_drawings(&chunk)?;
            report.rebuilt += chunk.len();
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        stores.metadata.insert_drawings(&chunk)?;
        report.rebuilt += chunk.len();
    }
    for id in stores.metadata.recent_drawing_ids(RECENT_ROWS_CHECKED)? {
        if stores.blobs.get(id)?.is_none() {
            report.missing_strokes.push(id.to_string());
        }
    }
    Ok(report)
}

/// The greatest id in either store: where the writer's ids must continue from.
pub fn last_id(stores: &Stores) -> Result<Option<DrawingId>, StoreError> {
    Ok(stores
        .blobs
        .last_id()?
        .max(stores.metadata.last_drawing_id()?))
}
