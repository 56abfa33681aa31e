//! Review actions on a set of drawings: approve, flag, unflag, soft-delete and restore.

use rusqlite::params;

use super::{ids_json, SqliteReviewStore};
use crate::domain::review::ReviewAction;
use crate::domain::DrawingId;
use crate::store::StoreError;

pub(super) fn apply(
    store: &SqliteReviewStore,
    ids: &[DrawingId],
    action: ReviewAction,
    now_ms: u64,
) -> Result<usize, StoreError> {
    // Only rows the action changes are touched (and counted).
    let (sql, stamped) = match action {
        ReviewAction::Approve | ReviewAction::Unflag => (
            "UPDATE drawings SET reviewed_at = ?2, is_flagged = 0
             WHERE id IN (SELECT value FROM json_each(?1)) AND (reviewed_at IS NULL OR is_flagged <> 0)",
            true,
        ),
        ReviewAction::Flag => (
            "UPDATE drawings SET reviewed_at = ?2, is_flagged = 1
             WHERE id IN (SELECT value FROM json_each(?1)) AND (reviewed_at IS NULL OR is_flagged = 0)",
            true,
        ),
        ReviewAction::Delete => (
            "UPDATE drawings SET deleted_at = ?2
             WHERE id IN (SELECT value FROM json_each(?1)) AND deleted_at IS NULL",
            true,
        ),
        ReviewAction::Restore => (
            "UPDATE drawings SET deleted_at = NULL
             WHERE id IN (SELECT value FROM json_each(?1)) AND deleted_at IS NOT NULL",
            false,
        ),
    };
    let ids = ids_json(ids);
    store.db.write(|conn| {
        Ok(if stamped {
            conn.execute(sql, params![ids, now_ms as i64])?
        } else {
            conn.execute(sql, [ids])?
        })
    })
}
