//! Players as the admin list shows them, and blocking: a block soft-deletes the player's
//! drawings, and the blocked set is kept in memory for the submit path.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

use super::{PlayerSummary, SqliteReviewStore};
use crate::domain::review::PlayerCursor;
use crate::domain::PlayerId;
use crate::store::StoreError;

fn player_from_row(r: &Row<'_>) -> rusqlite::Result<PlayerSummary> {
    Ok(PlayerSummary {
        id: r.get(0)?,
        nickname: r.get(1)?,
        created_at: r.get(2)?,
        blocked_at: r.get(3)?,
        drawings: r.get::<_, i64>(4)?.max(0) as u64,
        flagged: r.get::<_, i64>(5)?.max(0) as u64,
        deleted: r.get::<_, i64>(6)?.max(0) as u64,
    })
}

/// A player's counts come from `player_counts` (kept by triggers), never from counting the
/// player's drawings: an imported source is one player with millions of them.
const PLAYER_COLUMNS: &str = "p.id, p.nickname, p.created_at, p.blocked_at, \
     coalesce(c.live, 0), coalesce(c.flagged, 0), coalesce(c.deleted, 0)";
/// The players with their counters.
const PLAYER_FROM: &str = "players p LEFT JOIN player_counts c ON c.player_id = p.id";

pub(super) fn players(
    store: &SqliteReviewStore,
    limit: u32,
    after: Option<PlayerCursor>,
) -> Result<(Vec<PlayerSummary>, Option<PlayerCursor>), StoreError> {
    let limit = limit as usize;
    let mut rows = store.db.read(|conn| {
        let (sql, params): (String, Vec<Value>) = match after {
            Some(after) => (
                format!("SELECT {PLAYER_COLUMNS} FROM {PLAYER_FROM} WHERE (p.created_at, p.id) < (?, ?) ORDER BY p.created_at DESC, p.id DESC LIMIT ?"),
                vec![
                    Value::Integer(after.created_at_ms),
                    Value::Text(after.id.to_string()),
                    Value::Integer(limit as i64 + 1),
                ],
            ),
            None => (
                format!("SELECT {PLAYER_COLUMNS} FROM {PLAYER_FROM} ORDER BY p.created_at DESC, p.id DESC LIMIT ?"),
                vec![Value::Integer(limit as i64 + 1)],
            ),
        };
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(&params), player_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().and_then(|last| {
            Some(PlayerCursor {
                created_at_ms: last.created_at,
                id: PlayerId::parse_cookie(&last.id)?,
            })
        })
    } else {
        None
    };
    Ok((rows, next))
}

pub(super) fn player(
    store: &SqliteReviewStore,
    id: PlayerId,
) -> Result<Option<PlayerSummary>, StoreError> {
    let sql = format!("SELECT {PLAYER_COLUMNS} FROM {PLAYER_FROM} WHERE p.id = ?1");
    store.db.read(|conn| {
        Ok(conn
            .prepare_cached(&sql)?
            .query_row([id.to_string()], player_from_row)
            .optional()?)
    })
}

pub(super) fn set_blocked(
    store: &SqliteReviewStore,
    id: PlayerId,
    blocked: bool,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let found = store.db.write(|conn| {
        let tx = conn.transaction()?;
        let now = now_ms as i64;
        let found = if blocked {
            let n = tx.execute(
                "UPDATE players SET blocked_at = coalesce(blocked_at, ?2) WHERE id = ?1",
                params![id.to_string(), now],
            )?;
            tx.execute(
                "UPDATE drawings SET deleted_at = ?2 WHERE player_id = ?1 AND deleted_at IS NULL",
                params![id.to_string(), now],
            )?;
            n
        } else {
            tx.execute(
                "UPDATE players SET blocked_at = NULL WHERE id = ?1",
                [id.to_string()],
            )?
        };
        tx.commit()?;
        Ok(found > 0)
    })?;
    if found {
        // A poisoned lock only means a panic elsewhere mid-insert; the set is still valid.
        let mut set = store.blocked.write().unwrap_or_else(|p| p.into_inner());
        if blocked {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }
    Ok(found)
}

pub(super) fn is_blocked(store: &SqliteReviewStore, id: PlayerId) -> bool {
    store
        .blocked
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&id)
}
