//! The PostgreSQL backend: every store seam on one PostgreSQL database, so that any number
//! of `serve` replicas can share one collection (`serve --database-url postgres://…`).
//!
//! One [`PgStore`] implements every trait of [`Stores`](super::Stores) on a connection pool
//! (`r2d2` with the synchronous `postgres` client: the seams are synchronous and called
//! from blocking threads, so an async client would only be wrapped back into blocking
//! calls). Stroke records live in the `stroke_records` table as `bytea`, the same compact
//! record sled keeps; everything else mirrors the SQLite schema. One file per trait, like
//! the SQLite side; [`migrations`] holds the versioned schema and [`scratch`] a throwaway
//! cluster for tests and benchmarks. [`copy`] moves an appliance's data in (`doodlebox
//! migrate`) and [`verify`] checks a database's consistency (`verify --database-url`).
//!
//! What the database itself enforces for a cluster of replicas: exactly one active model
//! (a partial unique index); one drawing per idempotency key (the key's primary key,
//! inserted in the same transaction as the drawing); jobs claimed once
//! (`FOR UPDATE SKIP LOCKED`); migrations run once (an advisory lock).

mod admins;
mod blobs;
pub mod copy;
mod jobs;
mod keys;
mod metadata;
pub mod migrations;
mod models;
pub mod notify;
mod quality;
mod review;
pub mod scratch;
mod shapes;
#[cfg(test)]
mod tests;
mod uploads;
pub mod verify;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use postgres::NoTls;
use r2d2_postgres::r2d2;
use r2d2_postgres::PostgresConnectionManager;

use super::metadata::ShapeRow;
use super::{now_ms, StoreError, Stores};
use crate::domain::PlayerId;

/// Connections the pool keeps at most: the writer thread, the job threads and the blocking
/// threads of request handlers share them.
const POOL_SIZE: u32 = 16;
/// How long a caller waits for a free connection (or a reachable server) before failing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a replica reloads what other replicas may have changed and it keeps in memory
/// (shapes, blocked players): the polling that bounds how stale they can be.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// The default shapes, seeded into an empty database (the same file SQLite seeds from).
const DEFAULT_SHAPES: &str = include_str!("../../../assets/shapes.json");

/// A pooled connection.
pub(crate) type Conn = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// Every store seam on one PostgreSQL database.
pub struct PgStore {
    /// The connections; `None` only while dropping (see the `Drop` impl).
    pool: Option<r2d2::Pool<PostgresConnectionManager<NoTls>>>,
    /// The shapes table, which every submission consults; dropped when shapes change here.
    shape_cache: RwLock<Option<Arc<Vec<ShapeRow>>>>,
    /// Blocked players, loaded at open and changed with each block here (the submit path
    /// asks on every drawing; the database soft-deletes a blocked player's drawings on
    /// arrival either way).
    blocked: RwLock<HashSet<PlayerId>>,
}

impl PgStore {
    /// Connects to `url`, brings the schema to the current version and seeds the default
    /// shapes into an empty database.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Config(format!("database URL: {e}")))?;
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(CONNECT_TIMEOUT)
            .build(manager)?;
        let store = Self {
            pool: Some(pool),
            shape_cache: RwLock::new(None),
            blocked: RwLock::new(HashSet::new()),
        };
        {
            let mut conn = store.conn()?;
            migrations::migrate(&mut conn)?;
            seed_shapes(&mut conn)?;
        }
        store.load_blocked()?;
        // Warm: the submit path reads the shapes from memory, possibly on the async runtime
        // where this blocking client must not run.
        store.load_shapes()?;
        Ok(store)
    }

    /// A connection from the pool.
    pub(crate) fn conn(&self) -> Result<Conn, StoreError> {
        match &self.pool {
            Some(pool) => Ok(pool.get()?),
            None => Err(StoreError::Config("the database store is closed".into())),
        }
    }

    /// Answers whether the database takes a query now (for `/readyz`).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.conn()?.simple_query("SELECT 1")?;
        Ok(())
    }

    /// Drops the cached shapes after a change; the next read reloads.
    pub(crate) fn forget_shapes(&self) {
        *self.shape_cache.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn load_blocked(&self) -> Result<(), StoreError> {
        let rows = self
            .conn()?
            .query("SELECT id FROM players WHERE blocked_at IS NOT NULL", &[])?;
        let mut set = HashSet::new();
        for row in rows {
            let id: String = row.try_get(0)?;
            set.extend(PlayerId::parse_cookie(&id));
        }
        *self.blocked.write().unwrap_or_else(|p| p.into_inner()) = set;
        Ok(())
    }
}

impl PgStore {
    /// Reloads the shapes and blocked players other replicas may have changed.
    pub fn refresh(&self) -> Result<(), StoreError> {
        self.load_shapes()?;
        self.load_blocked()
    }

    /// Starts the thread that calls [`Self::refresh`] every [`REFRESH_EVERY`] for as long as
    /// the store lives.
    fn start_refresh(store: &Arc<Self>) {
        let weak = Arc::downgrade(store);
        let spawned = std::thread::Builder::new()
            .name("pg-refresh".into())
            .spawn(move || loop {
                std::thread::sleep(REFRESH_EVERY);
                let Some(store) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = store.refresh() {
                    tracing::warn!(error = %e, "could not reload shapes and blocks from the database");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no refresh thread: changes by other replicas show at restart");
        }
    }
}

impl Drop for PgStore {
    /// Closing a connection blocks on the client's own runtime, which panics on a thread
    /// that drives async tasks (the server drops its stores at the end of `main`'s
    /// runtime): the pool is dropped on a thread of its own.
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            if let Ok(closer) = std::thread::Builder::new()
                .name("pg-close".into())
                .spawn(move || drop(pool))
            {
                let _ = closer.join();
            }
        }
    }
}

impl Stores {
    /// Every seam on the PostgreSQL database at `url` (cluster mode).
    pub fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let store = Arc::new(PgStore::open(url)?);
        PgStore::start_refresh(&store);
        Ok(Self {
            feed: Some(Arc::new(notify::Feed::new(store.clone(), url))),
            backend: super::Backend::Postgres,
            blobs: store.clone(),
            metadata: store.clone(),
            jobs: store.clone(),
            models: store.clone(),
            keys: store.clone(),
            admins: store.clone(),
            review: store.clone(),
            quality: store.clone(),
            uploads: Some(store.clone()),
            shapes: store,
        })
    }
}

fn seed_shapes(conn: &mut Conn) -> Result<(), StoreError> {
    let shapes: Vec<ShapeRow> = serde_json::from_str(DEFAULT_SHAPES)
        .map_err(|e| StoreError::Corrupt(format!("assets/shapes.json: {e}")))?;
    let mut tx = conn.transaction()?;
    // Two replicas starting on an empty database seed once.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&migrations::LOCK_KEY])?;
    let count: i64 = tx
        .query_one("SELECT count(*) FROM shapes", &[])?
        .try_get(0)?;
    if count == 0 {
        for s in shapes {
            tx.execute(
                "INSERT INTO shapes (name, description, difficulty, active, created_at)
                 VALUES ($1, $2, $3, TRUE, $4)",
                &[&s.name, &s.description, &s.difficulty, &(now_ms() as i64)],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A drawing id as PostgreSQL keeps it (text); one that does not parse is corruption.
pub(crate) fn parse_id(text: String) -> Result<crate::domain::DrawingId, StoreError> {
    super::metadata::parse_id(text)
}

/// A count column (bigint) as an unsigned number.
pub(crate) fn count(row: &postgres::Row, index: usize) -> Result<u64, StoreError> {
    Ok(row.try_get::<_, i64>(index)?.max(0) as u64)
}

/// Whether a PostgreSQL error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}
