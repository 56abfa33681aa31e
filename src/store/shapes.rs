//! Managing shapes in the metadata store (add, edit, retire) and the per-shape counts the
//! admin list and the prompt weighting read. Every change refreshes the shape cache that
//! submissions consult, in the same call.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::metadata::{ShapeRow, SqliteMetadataStore, SHAPE_COLUMNS};
use super::{now_ms, StoreError};
use crate::domain::{DrawingId, PlayerId, ShapeName};

/// A shape's drawings by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShapeCounts {
    /// All drawings, soft-deleted ones included.
    pub drawings: u64,
    /// Live and not flagged: the ones training takes by default.
    pub good: u64,
    /// Live and flagged.
    pub flagged: u64,
    /// Soft-deleted.
    pub deleted: u64,
}

/// What a `PATCH` changes; `None` leaves a field as it is. Values are validated already.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShapeChange {
    pub description: Option<String>,
    pub difficulty: Option<i64>,
    pub active: Option<bool>,
}

/// Shape management.
pub trait ShapeStore: Send + Sync {
    /// Adds an active shape; `None` when the name is taken (retired shapes included).
    fn add_shape(
        &self,
        name: &ShapeName,
        description: &str,
        difficulty: i64,
    ) -> Result<Option<ShapeRow>, StoreError>;
    /// Changes a shape; `None` when there is no such shape.
    fn change_shape(
        &self,
        name: &ShapeName,
        change: &ShapeChange,
    ) -> Result<Option<ShapeRow>, StoreError>;
    /// Makes drawing `picture` the shape's picture, or with `None` goes back to its best
    /// drawing; `None` when there is no such shape. The drawing is checked by the caller.
    fn set_shape_picture(
        &self,
        name: &ShapeName,
        picture: Option<DrawingId>,
    ) -> Result<Option<ShapeRow>, StoreError>;
    /// Counts per shape id (shapes without drawings are absent).
    fn shape_counts(&self) -> Result<HashMap<i64, ShapeCounts>, StoreError>;
    /// How many live drawings of each shape id this player made.
    fn drawn_by(&self, player: PlayerId) -> Result<HashMap<i64, u64>, StoreError>;
}

impl ShapeStore for SqliteMetadataStore {
    fn add_shape(
        &self,
        name: &ShapeName,
        description: &str,
        difficulty: i64,
    ) -> Result<Option<ShapeRow>, StoreError> {
        let added = self.write(|conn| {
            Ok(conn.execute(
                "INSERT INTO shapes (name, description, difficulty, active, created_at)
                 VALUES (?1, ?2, ?3, 1, ?4) ON CONFLICT(name) DO NOTHING",
                params![name.as_str(), description, difficulty, now_ms() as i64],
            )? == 1)
        })?;
        self.changed_shape(name, added)
    }

    fn change_shape(
        &self,
        name: &ShapeName,
        change: &ShapeChange,
    ) -> Result<Option<ShapeRow>, StoreError> {
        let found = self.write(|conn| {
            Ok(conn.execute(
                "UPDATE shapes SET description = coalesce(?2, description),
                    difficulty = coalesce(?3, difficulty), active = coalesce(?4, active)
                 WHERE name = ?1",
                params![
                    name.as_str(),
                    change.description,
                    change.difficulty,
                    change.active
                ],
            )? == 1)
        })?;
        self.changed_shape(name, found)
    }

    fn set_shape_picture(
        &self,
        name: &ShapeName,
        picture: Option<DrawingId>,
    ) -> Result<Option<ShapeRow>, StoreError> {
        let found = self.write(|conn| {
            Ok(conn.execute(
                "UPDATE shapes SET picture_drawing_id = ?2 WHERE name = ?1",
                params![name.as_str(), picture.map(|id| id.to_string())],
            )? == 1)
        })?;
        self.changed_shape(name, found)
    }

    fn shape_counts(&self) -> Result<HashMap<i64, ShapeCounts>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT shape_id, count(*),
                    sum(deleted_at IS NULL AND is_flagged = 0),
                    sum(deleted_at IS NULL AND is_flagged = 1),
                    sum(deleted_at IS NOT NULL)
                 FROM drawings GROUP BY shape_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    ShapeCounts {
                        drawings: r.get::<_, i64>(1)? as u64,
                        good: r.get::<_, i64>(2)? as u64,
                        flagged: r.get::<_, i64>(3)? as u64,
                        deleted: r.get::<_, i64>(4)? as u64,
                    },
                ))
            })?;
            Ok(rows.collect::<Result<HashMap<_, _>, _>>()?)
        })
    }

    fn drawn_by(&self, player: PlayerId) -> Result<HashMap<i64, u64>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT shape_id, count(*) FROM drawings
                 WHERE player_id = ?1 AND deleted_at IS NULL GROUP BY shape_id",
            )?;
            let rows = stmt.query_map([player.to_string()], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64))
            })?;
            Ok(rows.collect::<Result<HashMap<_, _>, _>>()?)
        })
    }
}

impl SqliteMetadataStore {
    /// Reads one shape through the writer, so a change just made is seen.
    /// After a write that touched the shape called `name` (when `touched`): the cache is
    /// dropped and the shape read back as it is now.
    fn changed_shape(
        &self,
        name: &ShapeName,
        touched: bool,
    ) -> Result<Option<ShapeRow>, StoreError> {
        self.forget_shapes();
        if !touched {
            return Ok(None);
        }
        self.shape_by_name_fresh(name)
    }

    fn shape_by_name_fresh(&self, name: &ShapeName) -> Result<Option<ShapeRow>, StoreError> {
        let row = self.write(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {SHAPE_COLUMNS} FROM shapes WHERE name = ?1"),
                    [name.as_str()],
                    ShapeRow::from_row,
                )
                .optional()?)
        })?;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MetadataStore;

    use crate::store::metadata::temp_store as store;

    #[test]
    fn an_added_shape_is_in_the_cached_list_at_once_and_a_second_add_is_refused() {
        let (_dir, store) = store();
        store.shapes().unwrap(); // warm the cache
        let star = ShapeName::parse("star").unwrap();
        let added = store.add_shape(&star, "five points", 3).unwrap().unwrap();
        assert_eq!(
            (added.name.as_str(), added.difficulty, added.active),
            ("star", 3, true)
        );
        assert!(store.shapes().unwrap().iter().any(|s| s.name == "star"));
        assert_eq!(store.add_shape(&star, "again", 2).unwrap(), None);
    }

    #[test]
    fn retiring_a_shape_keeps_it_listed_as_inactive_and_a_change_leaves_other_fields_alone() {
        let (_dir, store) = store();
        store.shapes().unwrap();
        let circle = ShapeName::parse("circle").unwrap();
        let before = store.shape_by_name(&circle).unwrap().unwrap();
        let retire = ShapeChange {
            active: Some(false),
            ..ShapeChange::default()
        };
        let after = store.change_shape(&circle, &retire).unwrap().unwrap();
        assert_eq!(
            (after.description, after.difficulty, after.active),
            (before.description, before.difficulty, false)
        );
        assert!(!store.shape_by_name(&circle).unwrap().unwrap().active);
        let nothing = ShapeName::parse("nothing").unwrap();
        assert_eq!(store.change_shape(&nothing, &retire).unwrap(), None);
    }
}
