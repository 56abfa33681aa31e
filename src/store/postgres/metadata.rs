//! [`DrawingStore`], [`IdempotencyStore`] and [`MetadataStore`] on PostgreSQL.
//!
//! A group commit is one transaction of three multi-row inserts (players, drawings,
//! idempotency keys) built from arrays with `unnest`, so a batch costs one round trip per
//! table whatever its size. Idempotency across replicas: the key is inserted with the
//! drawing, and a key another replica stored first makes the whole batch fail with
//! [`StoreError::KeyTaken`] and store nothing (the writer then answers from the stored key).

use postgres::fallible_iterator::FallibleIterator;
use std::collections::HashSet;
use std::sync::Arc;

use super::{count, parse_id, PgStore};
use crate::domain::{DrawingId, IdempotencyKey, PlayerId, ShapeName};
use crate::store::metadata::{
    DrawingRow, DrawingStore, IdempotencyRecord, IdempotencyStore, MetadataStore, NewDrawingRow,
    ShapeRow, TrainingDrawing, TrainingFilter,
};
use crate::store::{now_ms, StoreError};

/// The columns [`shape_from_row`] reads, in its order.
pub(super) const SHAPE_COLUMNS: &str =
    "id, name, description, difficulty, active, picture_drawing_id";

pub(super) fn shape_from_row(r: &postgres::Row) -> Result<ShapeRow, StoreError> {
    Ok(ShapeRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        description: r.try_get(2)?,
        difficulty: r.try_get(3)?,
        active: r.try_get(4)?,
        picture: r.try_get(5)?,
    })
}

impl DrawingStore for PgStore {
    fn insert_drawings(&self, rows: &[NewDrawingRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = rows.iter().map(|r| r.id.to_string()).collect();
        let players: Vec<String> = rows.iter().map(|r| r.player.to_string()).collect();
        let shapes: Vec<i64> = rows.iter().map(|r| r.shape_id).collect();
        let metadata: Vec<String> = rows.iter().map(|r| r.metadata.to_string()).collect();
        let created: Vec<i64> = rows.iter().map(|r| r.created_at_ms as i64).collect();
        let sources: Vec<Option<String>> = rows.iter().map(|r| r.source_key.clone()).collect();
        let recognized: Vec<Option<bool>> = rows
            .iter()
            .map(|r| r.judgement.as_ref().map(|j| j.recognized))
            .collect();
        let recognized_by: Vec<Option<String>> = rows
            .iter()
            .map(|r| r.judgement.as_ref().map(|j| j.model_version.clone()))
            .collect();
        let keyed: Vec<&NewDrawingRow> = rows.iter().filter(|r| r.idempotency.is_some()).collect();
        let key_players: Vec<String> = keyed.iter().map(|r| r.player.to_string()).collect();
        let (keys, digests): (Vec<String>, Vec<Vec<u8>>) = keyed
            .iter()
            .filter_map(|r| r.idempotency.as_ref())
            .map(|(k, d)| (k.as_str().to_owned(), d.to_vec()))
            .unzip();
        let key_ids: Vec<String> = keyed.iter().map(|r| r.id.to_string()).collect();
        let key_created: Vec<i64> = keyed.iter().map(|r| r.created_at_ms as i64).collect();

        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO players (id, created_at) SELECT * FROM unnest($1::text[], $2::bigint[])
             ON CONFLICT (id) DO NOTHING",
            &[&players, &created],
        )?;
        // A drawing of a blocked player is soft-deleted on arrival (closes the race between
        // a block and a submission already past the check), as SQLite's trigger does.
        tx.execute(
            "INSERT INTO drawings (id, player_id, shape_id, metadata, created_at, source_key,
                                   recognized, recognized_by, deleted_at)
             SELECT u.id, u.player, u.shape, u.metadata, u.created, u.source, u.recognized,
                    u.recognized_by, CASE WHEN p.blocked_at IS NOT NULL THEN u.created END
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[],
                         $7::boolean[], $8::text[])
                  AS u(id, player, shape, metadata, created, source, recognized, recognized_by)
             JOIN players p ON p.id = u.player",
            &[
                &ids,
                &players,
                &shapes,
                &metadata,
                &created,
                &sources,
                &recognized,
                &recognized_by,
            ],
        )?;
        if !keys.is_empty() {
            let stored = tx.execute(
                "INSERT INTO idempotency_keys (player_id, key, body_digest, drawing_id, created_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::bigint[])
                 ON CONFLICT (player_id, key) DO NOTHING",
                &[&key_players, &keys, &digests, &key_ids, &key_created],
            )?;
            if stored as usize != keys.len() {
                // Another replica stored one of these keys after this batch looked it up.
                return Err(StoreError::KeyTaken);
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn drawing(&self, id: DrawingId) -> Result<Option<DrawingRow>, StoreError> {
        let row = self.conn()?.query_opt(
            "SELECT d.id, d.player_id, s.name, d.metadata, d.quality_score, d.is_flagged,
                    d.created_at, d.deleted_at, d.recognized, d.recognized_by
             FROM drawings d JOIN shapes s ON s.id = d.shape_id WHERE d.id = $1",
            &[&id.to_string()],
        )?;
        row.map(|r| {
            let metadata: String = r.try_get(3)?;
            Ok(DrawingRow {
                id: r.try_get(0)?,
                player_id: r.try_get(1)?,
                shape: r.try_get(2)?,
                metadata: serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null),
                quality_score: r.try_get(4)?,
                is_flagged: r.try_get(5)?,
                created_at_ms: r.try_get(6)?,
                deleted_at_ms: r.try_get(7)?,
                recognized: r.try_get(8)?,
                recognized_by: r.try_get(9)?,
            })
        })
        .transpose()
    }

    fn last_drawing_id(&self) -> Result<Option<DrawingId>, StoreError> {
        let id: Option<String> = self
            .conn()?
            .query_one("SELECT max(id) FROM drawings", &[])?
            .try_get(0)?;
        id.map(parse_id).transpose()
    }

    fn recent_drawing_ids(&self, limit: usize) -> Result<Vec<DrawingId>, StoreError> {
        let rows = self.conn()?.query(
            "SELECT id FROM drawings ORDER BY id DESC LIMIT $1",
            &[&(limit as i64)],
        )?;
        rows.into_iter().map(|r| parse_id(r.try_get(0)?)).collect()
    }

    fn count_drawings(&self) -> Result<u64, StoreError> {
        count(
            &self
                .conn()?
                .query_one("SELECT count(*) FROM drawings", &[])?,
            0,
        )
    }

    fn visit_training_drawings(
        &self,
        filter: &TrainingFilter,
        visit: &mut dyn FnMut(TrainingDrawing) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let time = |ms: Option<u64>| ms.map(|ms| ms.min(i64::MAX as u64) as i64);
        let (from, to) = (time(filter.created_from_ms), time(filter.created_to_ms));
        let params: [&(dyn postgres::types::ToSql + Sync); 5] = [
            &filter.include_flagged,
            &filter.min_quality,
            &filter.shapes,
            &from,
            &to,
        ];
        let mut conn = self.conn()?;
        // Rows arrive as the walk goes (a portal), not all at once.
        let mut rows = conn.query_raw(
            "SELECT d.id, d.player_id, s.name FROM drawings d JOIN shapes s ON s.id = d.shape_id
             WHERE d.deleted_at IS NULL AND ($1 OR NOT d.is_flagged)
               AND ($2::float8 IS NULL OR coalesce(d.quality_score, 1.0) >= $2)
               AND ($3::text[] IS NULL OR s.name = ANY($3))
               AND ($4::int8 IS NULL OR d.created_at >= $4)
               AND ($5::int8 IS NULL OR d.created_at < $5)
             ORDER BY d.id",
            params,
        )?;
        while let Some(r) = rows.next()? {
            visit(TrainingDrawing {
                id: parse_id(r.try_get(0)?)?,
                player: r.try_get(1)?,
                shape: r.try_get(2)?,
            })?;
        }
        Ok(())
    }

    fn existing_source_keys(&self, keys: &[&str]) -> Result<HashSet<String>, StoreError> {
        let keys: Vec<&str> = keys.to_vec();
        let rows = self.conn()?.query(
            "SELECT source_key FROM drawings WHERE source_key = ANY($1::text[])",
            &[&keys],
        )?;
        rows.into_iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}

impl IdempotencyStore for PgStore {
    fn idempotency(
        &self,
        player: PlayerId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = self.conn()?.query_opt(
            "SELECT body_digest, drawing_id FROM idempotency_keys WHERE player_id = $1 AND key = $2",
            &[&player.to_string(), &key.as_str()],
        )?;
        row.map(|r| {
            let digest: Vec<u8> = r.try_get(0)?;
            Ok(IdempotencyRecord {
                body_digest: digest
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("idempotency digest length".into()))?,
                drawing_id: parse_id(r.try_get(1)?)?,
            })
        })
        .transpose()
    }

    fn purge_idempotency(&self, cutoff_ms: u64) -> Result<usize, StoreError> {
        Ok(self.conn()?.execute(
            "DELETE FROM idempotency_keys WHERE created_at < $1",
            &[&(cutoff_ms as i64)],
        )? as usize)
    }
}

impl MetadataStore for PgStore {
    fn cached_shapes(&self) -> Option<Arc<Vec<ShapeRow>>> {
        self.shape_cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn shapes(&self) -> Result<Arc<Vec<ShapeRow>>, StoreError> {
        if let Some(cached) = self.cached_shapes() {
            return Ok(cached);
        }
        self.load_shapes()
    }

    fn set_nickname(&self, player: PlayerId, nickname: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO players (id, nickname, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET nickname = excluded.nickname",
            &[&player.to_string(), &nickname, &(now_ms() as i64)],
        )?;
        Ok(())
    }

    fn integrity_check(&self) -> Result<String, StoreError> {
        // PostgreSQL checks its own pages; what can go wrong between our tables is a row
        // without its stroke record.
        let row = self.conn()?.query_one(
            "SELECT count(*) FROM drawings d
             WHERE NOT EXISTS (SELECT 1 FROM stroke_records r WHERE r.id = d.id)",
            &[],
        )?;
        let missing = count(&row, 0)?;
        Ok(if missing == 0 {
            "ok".to_owned()
        } else {
            format!("{missing} drawing rows have no stroke record")
        })
    }

    fn ensure_shape(
        &self,
        name: &ShapeName,
        description: &str,
    ) -> Result<(ShapeRow, bool), StoreError> {
        let created = self.conn()?.execute(
            "INSERT INTO shapes (name, description, difficulty, active, created_at)
             VALUES ($1, $2, 3, TRUE, $3) ON CONFLICT (name) DO NOTHING",
            &[&name.as_str(), &description, &(now_ms() as i64)],
        )? == 1;
        // Reloaded when made here, and when the cache misses a shape another replica made.
        let cached = if created {
            None
        } else {
            self.shape_by_name(name)?
        };
        let row = match cached {
            Some(row) => row,
            None => self
                .load_shapes()?
                .iter()
                .find(|s| s.name == name.as_str())
                .cloned()
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("shape {name} vanished after insert"))
                })?,
        };
        Ok((row, created))
    }
}

impl PgStore {
    /// Reads the shapes table into the cache and returns it.
    pub(super) fn load_shapes(&self) -> Result<Arc<Vec<ShapeRow>>, StoreError> {
        let rows = self.conn()?.query(
            &format!("SELECT {SHAPE_COLUMNS} FROM shapes ORDER BY difficulty, name"),
            &[],
        )?;
        let shapes = Arc::new(
            rows.iter()
                .map(shape_from_row)
                .collect::<Result<Vec<_>, _>>()?,
        );
        *self.shape_cache.write().unwrap_or_else(|p| p.into_inner()) = Some(shapes.clone());
        Ok(shapes)
    }
}
