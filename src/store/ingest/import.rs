//! The bulk path: a chunk of imported drawings travels as one message and commits as one
//! group commit; a drawing whose source key (Quick, Draw! `key_id`) a row already has, or an
//! earlier item of the chunk carries, is skipped rather than stored twice.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use super::writer::store_both;
use super::{drawing_metadata, IngestError, IngestStats};
use crate::domain::record::{assemble, encode_body_with_source, Source};
use crate::domain::{Drawing, DrawingId, Judgement, PlayerId};
use crate::fault::CrashPoint;
use crate::store::metadata::NewDrawingRow;
use crate::store::{now_ms, Stores};

/// An imported drawing on its way to storage: like a [`Submission`], with the source key
/// that makes a re-import a no-op. Many travel in one message.
pub struct ImportItem {
    player: PlayerId,
    /// The shape's row id, looked up (or created) by the importer.
    shape_id: i64,
    /// The drawing's unique source key, also inside `body`.
    source_key: String,
    /// The record's compressed body, with the source in it.
    body: Vec<u8>,
    /// The row's metadata column.
    metadata: serde_json::Value,
    /// Quick, Draw!'s own verdict, for the row's `recognized` columns.
    judgement: Option<Judgement>,
}

impl ImportItem {
    pub fn new(
        player: PlayerId,
        drawing: &Drawing,
        shape_id: i64,
        source: &Source,
        judgement: Option<&Judgement>,
    ) -> Self {
        Self {
            player,
            shape_id,
            source_key: source.key().to_owned(),
            body: encode_body_with_source(None, judgement, Some(source), drawing),
            metadata: drawing_metadata(drawing),
            judgement: judgement.cloned(),
        }
    }
}

/// What became of one imported drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Stored durably under this new id.
    Created(DrawingId),
    /// A row with the same source key exists (or came earlier in the same chunk): skipped.
    Duplicate,
}

/// The answer to an imported chunk, which arrives once the chunk is durably stored.
pub struct PendingImport(pub(super) oneshot::Receiver<Result<Vec<ImportOutcome>, IngestError>>);

impl PendingImport {
    /// Waits for the chunk's outcomes, one per item in order. Blocking: call it off the
    /// async runtime.
    pub fn wait(self) -> Result<Vec<ImportOutcome>, IngestError> {
        // A dropped reply means the writer stopped (or the chunk panicked) before answering.
        self.0.blocking_recv().unwrap_or(Err(IngestError::Stopped))
    }
}

/// Commits one chunk of imported drawings as one group commit, skipping those whose source
/// key a row already has or an earlier item of the chunk carries.
pub(super) fn commit_import(
    stores: &Stores,
    last_id: &mut Option<DrawingId>,
    items: Vec<ImportItem>,
    stats: &IngestStats,
    crash_point: impl Fn(CrashPoint),
) -> Result<Vec<ImportOutcome>, IngestError> {
    let keys: Vec<&str> = items.iter().map(|i| i.source_key.as_str()).collect();
    let mut taken: HashSet<String> = stores
        .metadata
        .existing_source_keys(&keys)
        .map_err(|e| IngestError::Storage(e.to_string()))?;
    let now = now_ms();
    let mut outcomes = Vec::with_capacity(items.len());
    let mut records = Vec::with_capacity(items.len());
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        if !taken.insert(item.source_key.clone()) {
            outcomes.push(ImportOutcome::Duplicate);
            continue;
        }
        let id = DrawingId::next(now, *last_id);
        *last_id = Some(id);
        records.push((id, assemble(id, item.player, now, &item.body)));
        rows.push(NewDrawingRow {
            id,
            player: item.player,
            shape_id: item.shape_id,
            metadata: item.metadata,
            created_at_ms: now,
            idempotency: None,
            source_key: Some(item.source_key),
            judgement: item.judgement,
        });
        outcomes.push(ImportOutcome::Created(id));
    }
    store_both(stores, &records, &rows, stats, false, &crash_point)?;
    crash_point(CrashPoint::AfterMetadata);
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats
        .drawings
        .fetch_add(records.len() as u64, Ordering::Relaxed);
    Ok(outcomes)
}
