//! [`KeyStore`] on PostgreSQL: only the SHA-256 of a key is stored, as on SQLite.

use super::PgStore;
use crate::store::keys::{
    key_digest, new_secret, ApiKeyRow, CreatedApiKey, KeyStore, NewApiKey, SHOWN_PREFIX_LEN,
};
use crate::store::{now_ms, StoreError};

const COLUMNS: &str = "id, name, prefix, rate_per_min, created_at, last_used_at, revoked_at";

fn row(r: &postgres::Row) -> Result<ApiKeyRow, StoreError> {
    let rate: i64 = r.try_get(3)?;
    Ok(ApiKeyRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        prefix: r.try_get(2)?,
        rate_per_min: u32::try_from(rate)
            .map_err(|_| StoreError::Corrupt(format!("rate_per_min {rate}")))?,
        created_at: r.try_get(4)?,
        last_used_at: r.try_get(5)?,
        revoked_at: r.try_get(6)?,
    })
}

impl KeyStore for PgStore {
    fn create_key(&self, new: &NewApiKey) -> Result<CreatedApiKey, StoreError> {
        let key = new_secret();
        let prefix: String = key.chars().take(SHOWN_PREFIX_LEN).collect();
        let now = now_ms() as i64;
        let inserted = self.conn()?.query_one(
            &format!(
                "INSERT INTO api_keys (name, prefix, secret_hash, rate_per_min, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
            ),
            &[
                &new.name,
                &prefix,
                &&key_digest(&key)[..],
                &i64::from(new.rate_per_min),
                &now,
            ],
        )?;
        Ok(CreatedApiKey {
            row: row(&inserted)?,
            key,
        })
    }

    fn keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        self.conn()?
            .query(
                &format!("SELECT {COLUMNS} FROM api_keys ORDER BY id DESC"),
                &[],
            )?
            .iter()
            .map(row)
            .collect()
    }

    fn revoke_key(&self, id: i64) -> Result<Option<ApiKeyRow>, StoreError> {
        let mut conn = self.conn()?;
        conn.execute(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &(now_ms() as i64)],
        )?;
        conn.query_opt(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"),
            &[&id],
        )?
        .as_ref()
        .map(row)
        .transpose()
    }

    fn key_by_secret(&self, secret: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let digest = key_digest(secret);
        self.conn()?
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL"
                ),
                &[&&digest[..]],
            )?
            .as_ref()
            .map(row)
            .transpose()
    }

    fn touch_keys(&self, used: &[(i64, i64)]) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        let (ids, at): (Vec<i64>, Vec<i64>) = used.iter().copied().unzip();
        self.conn()?.execute(
            "UPDATE api_keys k SET last_used_at = greatest(coalesce(k.last_used_at, 0), u.at)
             FROM (SELECT id, max(at) AS at FROM unnest($1::bigint[], $2::bigint[]) AS t(id, at) GROUP BY id) u
             WHERE k.id = u.id",
            &[&ids, &at],
        )?;
        Ok(())
    }
}
