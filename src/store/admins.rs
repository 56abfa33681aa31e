//! Admin accounts, their server-side sessions and the single-use setup links (tables of
//! migration 4). Only digests of session and setup tokens are stored, and only argon2id
//! hashes of passwords: the hashing itself lives in [`crate::service::accounts`].

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{SqliteMetadataStore, StoreError};

/// An admin account as lists show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AdminRow {
    pub id: i64,
    pub username: String,
    pub created_at: i64,
    pub password_changed_at: i64,
}

/// A live session: who it belongs to and when it was last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub admin_id: i64,
    pub username: String,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// What became of an attempt to use a setup token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupOutcome {
    /// The first admin exists; the token is spent.
    Created(AdminRow),
    /// The token is unknown, used or expired.
    BadToken,
    /// An admin exists already (setup links only make the first one).
    AlreadySetUp,
    /// The username is taken (cannot happen for the first admin; kept for completeness).
    Taken,
}

/// The admin tables.
pub trait AdminStore: Send + Sync {
    fn admin_count(&self) -> Result<u64, StoreError>;
    fn admins(&self) -> Result<Vec<AdminRow>, StoreError>;
    /// The account and its password hash.
    fn admin_by_name(&self, username: &str) -> Result<Option<(AdminRow, String)>, StoreError>;
    /// `None` when the username is taken.
    fn create_admin(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<AdminRow>, StoreError>;
    /// Sets a new password hash and ends every session of the account; `false` when there is
    /// no such account.
    fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Replaces any unused setup token by this one.
    fn put_setup_token(
        &self,
        digest: &[u8; 32],
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Spends a setup token and creates the first admin, in one transaction.
    fn setup_first_admin(
        &self,
        token_digest: &[u8; 32],
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<SetupOutcome, StoreError>;
    fn create_session(
        &self,
        digest: &[u8; 32],
        admin_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// The session with this digest, expired or not.
    fn session(&self, digest: &[u8; 32]) -> Result<Option<SessionRow>, StoreError>;
    fn touch_session(&self, digest: &[u8; 32], now: i64) -> Result<(), StoreError>;
    fn delete_session(&self, digest: &[u8; 32]) -> Result<(), StoreError>;
    /// Forgets sessions that expired before `now`.
    fn purge_sessions(&self, now: i64) -> Result<usize, StoreError>;
}

const ADMIN_COLUMNS: &str = "id, username, created_at, password_changed_at";

fn admin_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminRow> {
    Ok(AdminRow {
        id: r.get(0)?,
        username: r.get(1)?,
        created_at: r.get(2)?,
        password_changed_at: r.get(3)?,
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

fn insert_admin(
    conn: &rusqlite::Connection,
    username: &str,
    password_hash: &str,
    now: i64,
) -> Result<Option<AdminRow>, StoreError> {
    let inserted = conn.execute(
        "INSERT INTO admins (username, password_hash, created_at, password_changed_at)
         VALUES (?1, ?2, ?3, ?3)",
        params![username, password_hash, now],
    );
    match inserted {
        Ok(_) => Ok(Some(AdminRow {
            id: conn.last_insert_rowid(),
            username: username.to_owned(),
            created_at: now,
            password_changed_at: now,
        })),
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl AdminStore for SqliteMetadataStore {
    fn admin_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT count(*) FROM admins", [], |r| r.get(0))?))
    }

    fn admins(&self) -> Result<Vec<AdminRow>, StoreError> {
        self.read(|conn| {
            let mut statement =
                conn.prepare(&format!("SELECT {ADMIN_COLUMNS} FROM admins ORDER BY id"))?;
            let rows = statement.query_map([], admin_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn admin_by_name(&self, username: &str) -> Result<Option<(AdminRow, String)>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {ADMIN_COLUMNS}, password_hash FROM admins WHERE username = ?1"
                    ),
                    [username],
                    |r| Ok((admin_row(r)?, r.get(4)?)),
                )
                .optional()?)
        })
    }

    fn create_admin(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<AdminRow>, StoreError> {
        self.write(|conn| insert_admin(conn, username, password_hash, now))
    }

    fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let id: Option<i64> = tx
                .query_row(
                    "SELECT id FROM admins WHERE username = ?1",
                    [username],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = id else {
                return Ok(false);
            };
            tx.execute(
                "UPDATE admins SET password_hash = ?2, password_changed_at = ?3 WHERE id = ?1",
                params![id, password_hash, now],
            )?;
            tx.execute("DELETE FROM admin_sessions WHERE admin_id = ?1", [id])?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn put_setup_token(
        &self,
        digest: &[u8; 32],
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM setup_tokens WHERE used_at IS NULL", [])?;
            tx.execute(
                "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
                params![&digest[..], now, expires_at],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn setup_first_admin(
        &self,
        token_digest: &[u8; 32],
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<SetupOutcome, StoreError> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let spent = tx.execute(
                "UPDATE setup_tokens SET used_at = ?2
                 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![&token_digest[..], now],
            )?;
            if spent == 0 {
                return Ok(SetupOutcome::BadToken);
            }
            let admins: i64 = tx.query_row("SELECT count(*) FROM admins", [], |r| r.get(0))?;
            if admins > 0 {
                return Ok(SetupOutcome::AlreadySetUp);
            }
            let Some(admin) = insert_admin(&tx, username, password_hash, now)? else {
                return Ok(SetupOutcome::Taken);
            };
            tx.commit()?;
            Ok(SetupOutcome::Created(admin))
        })
    }

    fn create_session(
        &self,
        digest: &[u8; 32],
        admin_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "INSERT INTO admin_sessions (token_hash, admin_id, created_at, last_seen_at, expires_at)
                 VALUES (?1, ?2, ?3, ?3, ?4)",
                params![&digest[..], admin_id, now, expires_at],
            )?;
            Ok(())
        })
    }

    fn session(&self, digest: &[u8; 32]) -> Result<Option<SessionRow>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT s.admin_id, a.username, s.last_seen_at, s.expires_at
                     FROM admin_sessions s JOIN admins a ON a.id = s.admin_id
                     WHERE s.token_hash = ?1",
                    [&digest[..]],
                    |r| {
                        Ok(SessionRow {
                            admin_id: r.get(0)?,
                            username: r.get(1)?,
                            last_seen_at: r.get(2)?,
                            expires_at: r.get(3)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    fn touch_session(&self, digest: &[u8; 32], now: i64) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "UPDATE admin_sessions SET last_seen_at = ?2 WHERE token_hash = ?1",
                params![&digest[..], now],
            )?;
            Ok(())
        })
    }

    fn delete_session(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "DELETE FROM admin_sessions WHERE token_hash = ?1",
                [&digest[..]],
            )?;
            Ok(())
        })
    }

    fn purge_sessions(&self, now: i64) -> Result<usize, StoreError> {
        self.write(|conn| {
            Ok(conn.execute("DELETE FROM admin_sessions WHERE expires_at <= ?1", [now])?)
        })
    }
}
