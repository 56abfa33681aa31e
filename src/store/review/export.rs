//! The export's pages: drawings matching a filter in id order, up to a fixed last id, with
//! what their rows add to their stroke records.

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::{conditions, ExportRow, ShapeLookup, SqliteReviewStore};
use crate::domain::review::DrawingFilter;
use crate::domain::DrawingId;
use crate::store::metadata::parse_id;
use crate::store::StoreError;

pub(super) fn export_rows(
    store: &SqliteReviewStore,
    filter: &DrawingFilter,
    after: Option<DrawingId>,
    up_to: DrawingId,
    limit: usize,
) -> Result<Vec<ExportRow>, StoreError> {
    let shape_id = match store.shape_id(filter)? {
        ShapeLookup::Any => None,
        ShapeLookup::Id(id) => Some(id),
        ShapeLookup::Unknown => return Ok(Vec::new()),
    };
    let mut c = conditions(filter, shape_id);
    if let Some(after) = after {
        c.push("d.id > ?", Some(Value::Text(after.to_string())));
    }
    c.push("d.id <= ?", Some(Value::Text(up_to.to_string())));
    c.params.push(Value::Integer(limit as i64));
    let sql = format!(
        "SELECT d.id, s.name, d.player_id, d.created_at, d.recognized, d.recognized_by
         FROM drawings d CROSS JOIN shapes s ON s.id = d.shape_id {} ORDER BY d.id LIMIT ?",
        c.clause()
    );
    let rows: Vec<(String, ExportRow)> = store.db.read(|conn| {
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(&c.params), |r| {
            Ok((
                r.get(0)?,
                ExportRow {
                    // Replaced below, once the text is parsed outside the row closure.
                    id: DrawingId::from_u128(0),
                    shape: r.get(1)?,
                    player_id: r.get(2)?,
                    created_at_ms: r.get(3)?,
                    recognized: r.get(4)?,
                    model_version: r.get(5)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })?;
    rows.into_iter()
        .map(|(id, row)| {
            Ok(ExportRow {
                id: parse_id(id)?,
                ..row
            })
        })
        .collect()
}
