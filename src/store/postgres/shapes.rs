//! [`ShapeStore`] on PostgreSQL: adding and changing shapes, and the per-shape counts.

use std::collections::HashMap;

use super::metadata::{shape_from_row, SHAPE_COLUMNS};
use super::PgStore;
use crate::domain::{DrawingId, PlayerId, ShapeName};
use crate::store::metadata::ShapeRow;
use crate::store::shapes::{ShapeChange, ShapeCounts, ShapeStore};
use crate::store::{now_ms, StoreError};

impl PgStore {
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
        self.conn()?
            .query_opt(
                &format!("SELECT {SHAPE_COLUMNS} FROM shapes WHERE name = $1"),
                &[&name.as_str()],
            )?
            .as_ref()
            .map(shape_from_row)
            .transpose()
    }
}

impl ShapeStore for PgStore {
    fn add_shape(
        &self,
        name: &ShapeName,
        description: &str,
        difficulty: i64,
    ) -> Result<Option<ShapeRow>, StoreError> {
        let added = self.conn()?.execute(
            "INSERT INTO shapes (name, description, difficulty, active, created_at)
             VALUES ($1, $2, $3, TRUE, $4) ON CONFLICT (name) DO NOTHING",
            &[
                &name.as_str(),
                &description,
                &difficulty,
                &(now_ms() as i64),
            ],
        )? == 1;
        self.changed_shape(name, added)
    }

    fn change_shape(
        &self,
        name: &ShapeName,
        change: &ShapeChange,
    ) -> Result<Option<ShapeRow>, StoreError> {
        let found = self.conn()?.execute(
            "UPDATE shapes SET description = coalesce($2, description),
                difficulty = coalesce($3, difficulty), active = coalesce($4, active)
             WHERE name = $1",
            &[
                &name.as_str(),
                &change.description,
                &change.difficulty,
                &change.active,
            ],
        )? == 1;
        self.changed_shape(name, found)
    }

    fn set_shape_picture(
        &self,
        name: &ShapeName,
        picture: Option<DrawingId>,
    ) -> Result<Option<ShapeRow>, StoreError> {
        let found = self.conn()?.execute(
            "UPDATE shapes SET picture_drawing_id = $2 WHERE name = $1",
            &[&name.as_str(), &picture.map(|id| id.to_string())],
        )? == 1;
        self.changed_shape(name, found)
    }

    fn shape_counts(&self) -> Result<HashMap<i64, ShapeCounts>, StoreError> {
        self.conn()?
            .query(
                "SELECT shape_id, count(*),
                    count(*) FILTER (WHERE deleted_at IS NULL AND NOT is_flagged),
                    count(*) FILTER (WHERE deleted_at IS NULL AND is_flagged),
                    count(*) FILTER (WHERE deleted_at IS NOT NULL)
                 FROM drawings GROUP BY shape_id",
                &[],
            )?
            .into_iter()
            .map(|r| {
                Ok((
                    r.try_get::<_, i64>(0)?,
                    ShapeCounts {
                        drawings: super::count(&r, 1)?,
                        good: super::count(&r, 2)?,
                        flagged: super::count(&r, 3)?,
                        deleted: super::count(&r, 4)?,
                    },
                ))
            })
            .collect()
    }

    fn drawn_by(&self, player: PlayerId) -> Result<HashMap<i64, u64>, StoreError> {
        self.conn()?
            .query(
                "SELECT shape_id, count(*) FROM drawings
                 WHERE player_id = $1 AND deleted_at IS NULL GROUP BY shape_id",
                &[&player.to_string()],
            )?
            .into_iter()
            .map(|r| Ok((r.try_get::<_, i64>(0)?, super::count(&r, 1)?)))
            .collect()
    }
}
