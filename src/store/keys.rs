//! API keys for implementors: created by an admin, shown once, stored as a SHA-256 digest,
//! named, revocable, with a last-used time and a per-key rate limit.
//!
//! A key is `dbx_` followed by 64 hex digits of operating-system randomness (256 bits), so a
//! fast hash is enough to store it: there is nothing to brute-force, unlike a password.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{now_ms, SqliteMetadataStore, StoreError};
use crate::domain::text::trimmed_within;

/// What every key starts with, so that a leaked one is recognisable (and greppable).
pub const KEY_PREFIX: &str = "dbx_";
/// How many characters of a key are kept in clear to tell keys apart in lists.
pub(crate) const SHOWN_PREFIX_LEN: usize = 12;
/// Classify requests per minute a new key may make unless told otherwise.
pub const DEFAULT_RATE_PER_MIN: u32 = 600;
/// The largest rate a key may be given (requests per minute).
pub const MAX_RATE_PER_MIN: u32 = 600_000;
/// The longest key name.
pub const MAX_NAME_LEN: usize = 80;

/// A key as lists show it (never the secret).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApiKeyRow {
    pub id: i64,
    pub name: String,
    /// The first characters of the key, e.g. `dbx_3fa94c1e`.
    pub prefix: String,
    pub rate_per_min: u32,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A key just created: the only moment its secret exists outside its holder.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub row: ApiKeyRow,
    pub key: String,
}

/// Why a key cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum KeyInputError {
    #[error("a key needs a name of 1 to {MAX_NAME_LEN} printable characters")]
    Name,
    #[error("rate_per_min must be between 1 and {MAX_RATE_PER_MIN}")]
    Rate,
}

/// A checked name and rate for a new key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub(crate) name: String,
    pub(crate) rate_per_min: u32,
}

impl NewApiKey {
    pub fn parse(name: &str, rate_per_min: Option<u32>) -> Result<Self, KeyInputError> {
        let name = trimmed_within(name, MAX_NAME_LEN).ok_or(KeyInputError::Name)?;
        let rate_per_min = rate_per_min.unwrap_or(DEFAULT_RATE_PER_MIN);
        if !(1..=MAX_RATE_PER_MIN).contains(&rate_per_min) {
            return Err(KeyInputError::Rate);
        }
        Ok(Self {
            name: name.to_owned(),
            rate_per_min,
        })
    }
}

/// The API keys table.
pub trait KeyStore: Send + Sync {
    /// Creates a key and returns it with its secret (which is not stored).
    fn create_key(&self, new: &NewApiKey) -> Result<CreatedApiKey, StoreError>;
    /// Every key, newest first, revoked ones included.
    fn keys(&self) -> Result<Vec<ApiKeyRow>, StoreError>;
    /// Revokes a key; `None` when there is no such key. Revoking twice keeps the first time.
    fn revoke_key(&self, id: i64) -> Result<Option<ApiKeyRow>, StoreError>;
    /// The live (not revoked) key with this secret.
    fn key_by_secret(&self, secret: &str) -> Result<Option<ApiKeyRow>, StoreError>;
    /// Records when keys were last used (batched by the caller: one write for many requests).
    fn touch_keys(&self, used: &[(i64, i64)]) -> Result<(), StoreError>;
}

/// The stored digest of a key.
pub fn key_digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub(crate) fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    crate::control::fill_random(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{KEY_PREFIX}{hex}")
}

const COLUMNS: &str = "id, name, prefix, rate_per_min, created_at, last_used_at, revoked_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.get(0)?,
        name: r.get(1)?,
        prefix: r.get(2)?,
        rate_per_min: r.get(3)?,
        created_at: r.get(4)?,
        last_used_at: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

impl KeyStore for SqliteMetadataStore {
    fn create_key(&self, new: &NewApiKey) -> Result<CreatedApiKey, StoreError> {
        let key = new_secret();
        let prefix: String = key.chars().take(SHOWN_PREFIX_LEN).collect();
        let now = now_ms() as i64;
        let id = self.write(|conn| {
            conn.execute(
                "INSERT INTO api_keys (name, prefix, secret_hash, rate_per_min, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    new.name,
                    prefix,
                    &key_digest(&key)[..],
                    new.rate_per_min,
                    now
                ],
            )?;
            Ok(conn.last_insert_rowid())
        })?;
        Ok(CreatedApiKey {
            row: ApiKeyRow {
                id,
                name: new.name.clone(),
                prefix,
                rate_per_min: new.rate_per_min,
                created_at: now,
                last_used_at: None,
                revoked_at: None,
            },
            key,
        })
    }

    fn keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        self.read(|conn| {
            let mut statement =
                conn.prepare(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY id DESC"))?;
            let rows = statement.query_map([], row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn revoke_key(&self, id: i64) -> Result<Option<ApiKeyRow>, StoreError> {
        self.write(|conn| {
            conn.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now_ms() as i64],
            )?;
            Ok(conn
                .query_row(
                    &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
                    [id],
                    row,
                )
                .optional()?)
        })
    }

    fn key_by_secret(&self, secret: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let digest = key_digest(secret);
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM api_keys WHERE secret_hash = ?1 AND revoked_at IS NULL"
                    ),
                    [&digest[..]],
                    row,
                )
                .optional()?)
        })
    }

    fn touch_keys(&self, used: &[(i64, i64)]) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        self.write(|conn| {
            let tx = conn.transaction()?;
            {
                let mut update = tx.prepare(
                    "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE id = ?1",
                )?;
                for (id, at) in used {
                    update.execute(params![id, at])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }
}

/// How long a looked-up key is trusted before the database is asked again; a key revoked
/// by another process (the CLI) stops working within this time, one revoked through this
/// server at once.
const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Cached lookups kept before the cache is emptied (wrong keys are cached too).
const KEY_CACHE_MAX: usize = 10_000;

/// Key digest → what the database said and when it was asked.
type KeyCache = std::collections::HashMap<[u8; 32], (Option<ApiKeyRow>, std::time::Instant)>;

/// Authenticates API keys from memory, asking the database only on a cache miss, and
/// batches last-used times into one write every few seconds instead of one per request.
pub struct KeyAuthenticator {
    keys: std::sync::Arc<dyn KeyStore>,
    cache: std::sync::Mutex<KeyCache>,
    /// Key id → last use (ms since the epoch) not yet written.
    used: std::sync::Mutex<std::collections::HashMap<i64, i64>>,
    /// What a revocation here also does in cluster mode: tell the other replicas.
    on_forget: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl KeyAuthenticator {
    pub fn new(keys: std::sync::Arc<dyn KeyStore>) -> Self {
        Self {
            keys,
            cache: Default::default(),
            used: Default::default(),
            on_forget: std::sync::OnceLock::new(),
        }
    }

    /// The cached answer for `secret`, when it is fresh.
    pub fn cached(&self, secret: &str) -> Option<Option<ApiKeyRow>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(&key_digest(secret))
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(row, _)| row.clone())
    }

    /// Looks `secret` up in the database (blocking) and caches the answer.
    pub fn lookup(&self, secret: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = self.keys.key_by_secret(secret)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= KEY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(key_digest(secret), (row.clone(), std::time::Instant::now()));
        Ok(row)
    }

    /// Forgets every cached lookup (after a revocation through this server), and tells the
    /// other replicas to forget theirs when a cluster-wide hook is set ([`Self::on_forget`]).
    pub fn forget_all(&self) {
        self.forget_here();
        if let Some(hook) = self.on_forget.get() {
            hook();
        }
    }

    /// Forgets every cached lookup on this replica only (a revocation made on another).
    pub fn forget_here(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Sets what [`Self::forget_all`] also does: tell the other replicas. Once.
    pub fn on_forget(&self, hook: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_forget.set(hook);
    }

    /// Notes that key `id` was used now.
    pub fn note_use(&self, id: i64) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.insert(id, now_ms() as i64);
    }

    /// Writes the noted last-use times (blocking).
    pub fn flush_last_used(&self) -> Result<(), StoreError> {
        let used: Vec<(i64, i64)> =
            std::mem::take(&mut *self.used.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .collect();
        // Setting last-use times is idempotent: safe to retry on a busy database.
        super::retry::retry_idempotent(|| self.keys.touch_keys(&used))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::metadata::temp_store as store;

    #[test]
    fn a_created_key_authenticates_until_it_is_revoked() {
        let (_dir, store) = store();
        let created = store
            .create_key(&NewApiKey::parse("lab", None).unwrap())
            .unwrap();
        assert!(created.key.starts_with(KEY_PREFIX));
        assert_eq!(created.key.len(), KEY_PREFIX.len() + 64);
        assert!(created.key.starts_with(&created.row.prefix));
        let found = store.key_by_secret(&created.key).unwrap().unwrap();
        assert_eq!(found.id, created.row.id);
        assert_eq!(found.rate_per_min, DEFAULT_RATE_PER_MIN);
        assert!(store.key_by_secret("dbx_wrong").unwrap().is_none());
        let revoked = store.revoke_key(created.row.id).unwrap().unwrap();
        assert!(revoked.revoked_at.is_some());
        assert!(store.key_by_secret(&created.key).unwrap().is_none());
        assert!(store.revoke_key(9999).unwrap().is_none());
    }

    #[test]
    fn the_secret_itself_is_never_stored() {
        let (dir, store) = store();
        let created = store
            .create_key(&NewApiKey::parse("lab", Some(60)).unwrap())
            .unwrap();
        drop(store);
        let file = std::fs::read(dir.path().join("m.sqlite3")).unwrap();
        let wal = std::fs::read(dir.path().join("m.sqlite3-wal")).unwrap_or_default();
        let secret = &created.key.as_bytes()[KEY_PREFIX.len()..];
        for bytes in [file, wal] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret));
        }
    }

    #[test]
    fn last_use_only_moves_forward() {
        let (_dir, store) = store();
        let created = store
            .create_key(&NewApiKey::parse("lab", None).unwrap())
            .unwrap();
        let id = created.row.id;
        store.touch_keys(&[(id, 2000), (id, 1000)]).unwrap();
        assert_eq!(store.keys().unwrap()[0].last_used_at, Some(2000));
    }

    #[test]
    fn the_authenticator_caches_lookups_and_writes_last_use_in_one_go() {
        let (_dir, store) = store();
        let store: std::sync::Arc<SqliteMetadataStore> = std::sync::Arc::new(store);
        let created = store
            .create_key(&NewApiKey::parse("lab", None).unwrap())
            .unwrap();
        let auth = KeyAuthenticator::new(store.clone());
        assert!(auth.cached(&created.key).is_none());
        assert_eq!(
            auth.lookup(&created.key).unwrap().unwrap().id,
            created.row.id
        );
        assert_eq!(
            auth.cached(&created.key).unwrap().unwrap().id,
            created.row.id
        );
        assert_eq!(auth.lookup("dbx_nope").unwrap(), None);
        assert_eq!(auth.cached("dbx_nope"), Some(None));
        auth.note_use(created.row.id);
        assert_eq!(store.keys().unwrap()[0].last_used_at, None);
        auth.flush_last_used().unwrap();
        assert!(store.keys().unwrap()[0].last_used_at.is_some());
        auth.forget_all();
        assert!(auth.cached(&created.key).is_none());
    }

    #[test]
    fn bad_names_and_rates_are_refused() {
        assert!(NewApiKey::parse("  ", None).is_err());
        assert!(NewApiKey::parse(&"x".repeat(81), None).is_err());
        assert!(NewApiKey::parse("a\nb", None).is_err());
        assert!(NewApiKey::parse("ok", Some(0)).is_err());
        assert!(NewApiKey::parse("ok", Some(MAX_RATE_PER_MIN + 1)).is_err());
        assert!(NewApiKey::parse("ok", Some(1)).is_ok());
    }
}
