//! [`AdminStore`] on PostgreSQL: accounts (names unique without regard to case, as SQLite's
//! `COLLATE NOCASE`), server-side sessions and the single-use setup links.

use super::{count, is_unique_violation, PgStore};
use crate::store::admins::{AdminRow, AdminStore, SessionRow, SetupOutcome};
use crate::store::StoreError;

const ADMIN_COLUMNS: &str = "id, username, created_at, password_changed_at";

fn admin_row(r: &postgres::Row) -> Result<AdminRow, StoreError> {
    Ok(AdminRow {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        created_at: r.try_get(2)?,
        password_changed_at: r.try_get(3)?,
    })
}

/// Inserts an account; `None` when the name is taken. Runs inside a savepoint so that a
/// taken name leaves the caller's transaction usable.
fn insert_admin(
    tx: &mut postgres::Transaction<'_>,
    username: &str,
    password_hash: &str,
    now: i64,
) -> Result<Option<AdminRow>, StoreError> {
    let mut savepoint = tx.transaction()?;
    let inserted = savepoint.query_one(
        &format!(
            "INSERT INTO admins (username, password_hash, created_at, password_changed_at)
             VALUES ($1, $2, $3, $3) RETURNING {ADMIN_COLUMNS}"
        ),
        &[&username, &password_hash, &now],
    );
    match inserted {
        Ok(row) => {
            let admin = admin_row(&row)?;
            savepoint.commit()?;
            Ok(Some(admin))
        }
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl AdminStore for PgStore {
    fn admin_count(&self) -> Result<u64, StoreError> {
        count(
            &self.conn()?.query_one("SELECT count(*) FROM admins", &[])?,
            0,
        )
    }

    fn admins(&self) -> Result<Vec<AdminRow>, StoreError> {
        self.conn()?
            .query(
                &format!("SELECT {ADMIN_COLUMNS} FROM admins ORDER BY id"),
                &[],
            )?
            .iter()
            .map(admin_row)
            .collect()
    }

    fn admin_by_name(&self, username: &str) -> Result<Option<(AdminRow, String)>, StoreError> {
        self.conn()?
            .query_opt(
                &format!(
                    "SELECT {ADMIN_COLUMNS}, password_hash FROM admins WHERE lower(username) = lower($1)"
                ),
                &[&username],
            )?
            .map(|r| Ok((admin_row(&r)?, r.try_get(4)?)))
            .transpose()
    }

    fn create_admin(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<AdminRow>, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let admin = insert_admin(&mut tx, username, password_hash, now)?;
        tx.commit()?;
        Ok(admin)
    }

    fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let id: Option<i64> = tx
            .query_opt(
                "SELECT id FROM admins WHERE lower(username) = lower($1) FOR UPDATE",
                &[&username],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        let Some(id) = id else {
            return Ok(false);
        };
        tx.execute(
            "UPDATE admins SET password_hash = $2, password_changed_at = $3 WHERE id = $1",
            &[&id, &password_hash, &now],
        )?;
        tx.execute("DELETE FROM admin_sessions WHERE admin_id = $1", &[&id])?;
        tx.commit()?;
        Ok(true)
    }

    fn put_setup_token(
        &self,
        digest: &[u8; 32],
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute("DELETE FROM setup_tokens WHERE used_at IS NULL", &[])?;
        tx.execute(
            "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)",
            &[&&digest[..], &now, &expires_at],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn setup_first_admin(
        &self,
        token_digest: &[u8; 32],
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<SetupOutcome, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // The first account is made once, whichever replica the link reaches.
        tx.execute("LOCK TABLE admins IN SHARE ROW EXCLUSIVE MODE", &[])?;
        let spent = tx.execute(
            "UPDATE setup_tokens SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
            &[&&token_digest[..], &now],
        )?;
        if spent == 0 {
            return Ok(SetupOutcome::BadToken);
        }
        let admins = count(&tx.query_one("SELECT count(*) FROM admins", &[])?, 0)?;
        if admins > 0 {
            return Ok(SetupOutcome::AlreadySetUp);
        }
        let Some(admin) = insert_admin(&mut tx, username, password_hash, now)? else {
            return Ok(SetupOutcome::Taken);
        };
        tx.commit()?;
        Ok(SetupOutcome::Created(admin))
    }

    fn create_session(
        &self,
        digest: &[u8; 32],
        admin_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO admin_sessions (token_hash, admin_id, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $3, $4)",
            &[&&digest[..], &admin_id, &now, &expires_at],
        )?;
        Ok(())
    }

    fn session(&self, digest: &[u8; 32]) -> Result<Option<SessionRow>, StoreError> {
        self.conn()?
            .query_opt(
                "SELECT s.admin_id, a.username, s.last_seen_at, s.expires_at
                 FROM admin_sessions s JOIN admins a ON a.id = s.admin_id
                 WHERE s.token_hash = $1",
                &[&&digest[..]],
            )?
            .map(|r| {
                Ok(SessionRow {
                    admin_id: r.try_get(0)?,
                    username: r.try_get(1)?,
                    last_seen_at: r.try_get(2)?,
                    expires_at: r.try_get(3)?,
                })
            })
            .transpose()
    }

    fn touch_session(&self, digest: &[u8; 32], now: i64) -> Result<(), StoreError> {
        self.conn()?.execute(
            "UPDATE admin_sessions SET last_seen_at = $2 WHERE token_hash = $1",
            &[&&digest[..], &now],
        )?;
        Ok(())
    }

    fn delete_session(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.conn()?.execute(
            "DELETE FROM admin_sessions WHERE token_hash = $1",
            &[&&digest[..]],
        )?;
        Ok(())
    }

    fn purge_sessions(&self, now: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn()?
            .execute("DELETE FROM admin_sessions WHERE expires_at <= $1", &[&now])?
            as usize)
    }
}
