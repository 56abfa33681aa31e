//! Versioned schema migrations for the metadata store, applied in order at open.
//! `PRAGMA user_version` records how many have run. Never edit a released migration:
//! append a new one.

use rusqlite::Connection;

use super::StoreError;

/// Each entry moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the original design's tables.
    r#"
    CREATE TABLE players (
        id          TEXT PRIMARY KEY,           -- 32 hex digits, the session cookie
        nickname    TEXT,
        created_at  INTEGER NOT NULL,           -- ms since the Unix epoch
        blocked_at  INTEGER
    );
    CREATE TABLE shapes (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL,
        difficulty  INTEGER NOT NULL CHECK (difficulty BETWEEN 1 AND 5),
        active      INTEGER NOT NULL DEFAULT 1,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE drawings (
        id            TEXT PRIMARY KEY,         -- UUIDv7, sorts by creation time
        player_id     TEXT NOT NULL REFERENCES players(id),
        shape_id      INTEGER NOT NULL REFERENCES shapes(id),
        stroke_key    BLOB NOT NULL UNIQUE,     -- the key of the record in the stroke store
        metadata      TEXT NOT NULL,            -- JSON: canvas, device, duration, counts
        quality_score REAL,
        is_flagged    INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        deleted_at    INTEGER
    );
    CREATE INDEX drawings_by_shape ON drawings(shape_id, created_at);
    CREATE INDEX drawings_by_player ON drawings(player_id, created_at);
    CREATE INDEX drawings_by_time ON drawings(created_at);
    CREATE TABLE idempotency_keys (
        player_id   TEXT NOT NULL,
        key         TEXT NOT NULL,
        body_digest BLOB NOT NULL,
        drawing_id  TEXT NOT NULL REFERENCES drawings(id),
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (player_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_by_time ON idempotency_keys(created_at);
    CREATE TABLE training_jobs (
        id          INTEGER PRIMARY KEY,
        status      TEXT NOT NULL CHECK (status IN ('pending','queued','running','completed','failed','cancelled')),
        config      TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        attempt     INTEGER NOT NULL DEFAULT 0,
        progress    TEXT,
        metrics     TEXT,
        error       TEXT,
        created_at  INTEGER NOT NULL,
        started_at  INTEGER,
        finished_at INTEGER
    );
    CREATE INDEX training_jobs_by_hash ON training_jobs(config_hash, created_at);
    CREATE TABLE models (
        id          INTEGER PRIMARY KEY,
        version     TEXT NOT NULL UNIQUE,       -- v1, v2, ...
        job_id      INTEGER REFERENCES training_jobs(id),
        path        TEXT NOT NULL,
        manifest    TEXT NOT NULL,
        is_active   INTEGER NOT NULL DEFAULT 0,
        created_at  INTEGER NOT NULL,
        activated_at INTEGER
    );
    CREATE UNIQUE INDEX models_one_active ON models(is_active) WHERE is_active = 1;
    "#,
    // 2: what the training queue needs beyond the original design: retry backoff,
    // cancellation of a running job, the dataset snapshot and the model a job produced.
    r#"
    ALTER TABLE training_jobs ADD COLUMN not_before INTEGER;          -- pending until then (retry backoff)
    ALTER TABLE training_jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE training_jobs ADD COLUMN dataset TEXT;                -- JSON: size, hash, per-class counts
    ALTER TABLE training_jobs ADD COLUMN model_version TEXT;
    CREATE INDEX training_jobs_by_status ON training_jobs(status, id);
    "#,
    // 3: API keys for implementors. The key itself is shown once; only its SHA-256 is kept
    // (a key is 32 random bytes, so a fast hash is enough: nothing to brute-force).
    r#"
    CREATE TABLE api_keys (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL,
        prefix        TEXT NOT NULL,            -- the first characters of the key, for lists
        secret_hash   BLOB NOT NULL UNIQUE,     -- SHA-256 of the whole key
        rate_per_min  INTEGER NOT NULL,         -- classify requests per minute
        created_at    INTEGER NOT NULL,
        last_used_at  INTEGER,
        revoked_at    INTEGER
    );
    "#,
    // 4: admin accounts, their server-side sessions and the single-use setup links.
    r#"
    CREATE TABLE admins (
        id            INTEGER PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,            -- argon2id, PHC string
        created_at    INTEGER NOT NULL,
        password_changed_at INTEGER NOT NULL
    );
    CREATE TABLE admin_sessions (
        token_hash    BLOB PRIMARY KEY,         -- SHA-256 of the cookie value
        admin_id      INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
        created_at    INTEGER NOT NULL,
        last_seen_at  INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE setup_tokens (
        token_hash    BLOB PRIMARY KEY,         -- SHA-256 of the token in the setup link
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        used_at       INTEGER
    ) WITHOUT ROWID;
    "#,
    // 5: review, quality and import: who approved a drawing, the parts of its quality score,
    // the Quick, Draw! key_id it was imported from (re-imports are skipped), the indexes the
    // review filters use, and settings an admin changes at run time.
    r#"
    ALTER TABLE drawings ADD COLUMN reviewed_at INTEGER;
    ALTER TABLE drawings ADD COLUMN quality TEXT;               -- JSON: the score's components
    ALTER TABLE drawings ADD COLUMN source_key TEXT;            -- Quick, Draw! key_id
    CREATE UNIQUE INDEX drawings_by_source_key ON drawings(source_key) WHERE source_key IS NOT NULL;
    CREATE INDEX drawings_by_quality ON drawings(quality_score);
    CREATE INDEX drawings_flagged ON drawings(created_at) WHERE is_flagged = 1;
    CREATE INDEX drawings_deleted ON drawings(deleted_at) WHERE deleted_at IS NOT NULL;
    CREATE TABLE settings (
        key           TEXT PRIMARY KEY,
        value         TEXT NOT NULL             -- JSON
    ) WITHOUT ROWID;
    "#,
    // 6: the review screens on a million drawings. Listings walk an index in their own order
    // (created_at, id) so a page reads only its rows; it replaces the indexes it widens. Totals
    // come from `drawing_counts`, one counter per (shape, flagged, deleted, reviewed, quality
    // bucket of 0.01; -1 = unscored) kept by triggers, and `drawing_days`, not-deleted drawings
    // per UTC day. A drawing inserted for a blocked player is soft-deleted on arrival (closes
    // the race between a block and a submission already past the check).
    r#"
    DROP INDEX drawings_by_time;
    DROP INDEX drawings_by_shape;
    DROP INDEX drawings_by_player;
    DROP INDEX drawings_flagged;
    DROP INDEX drawings_by_quality;
    CREATE INDEX drawings_by_time ON drawings(created_at, id);
    CREATE INDEX drawings_by_shape ON drawings(shape_id, created_at, id);
    CREATE INDEX drawings_by_player ON drawings(player_id, created_at, id);
    CREATE INDEX drawings_flagged ON drawings(created_at, id) WHERE is_flagged = 1;
    CREATE INDEX drawings_by_quality ON drawings(quality_score, shape_id, is_flagged, deleted_at, reviewed_at);
    CREATE INDEX players_by_time ON players(created_at, id);
    CREATE INDEX players_blocked ON players(id) WHERE blocked_at IS NOT NULL;

    CREATE TABLE drawing_counts (
        shape_id       INTEGER NOT NULL,
        flagged        INTEGER NOT NULL,
        deleted        INTEGER NOT NULL,
        reviewed       INTEGER NOT NULL,
        quality_bucket INTEGER NOT NULL,        -- max(0, CAST(quality_score * 100 AS INTEGER)), -1 unscored
        n              INTEGER NOT NULL,
        PRIMARY KEY (shape_id, flagged, deleted, reviewed, quality_bucket)
    ) WITHOUT ROWID;
    INSERT INTO drawing_counts
        SELECT shape_id, is_flagged <> 0, deleted_at IS NOT NULL, reviewed_at IS NOT NULL,
               coalesce(max(0, CAST(quality_score * 100 AS INTEGER)), -1), count(*)
        FROM drawings GROUP BY 1, 2, 3, 4, 5;
    CREATE TABLE drawing_days (
        day            INTEGER PRIMARY KEY,     -- created_at / 86400000 (UTC)
        n              INTEGER NOT NULL         -- drawings of that day not deleted
    );
    INSERT INTO drawing_days
        SELECT created_at / 86400000, count(*) FROM drawings WHERE deleted_at IS NULL GROUP BY 1;

    CREATE TRIGGER drawings_count_insert AFTER INSERT ON drawings BEGIN
        INSERT INTO drawing_counts VALUES (NEW.shape_id, NEW.is_flagged <> 0, NEW.deleted_at IS NOT NULL,
            NEW.reviewed_at IS NOT NULL, coalesce(max(0, CAST(NEW.quality_score * 100 AS INTEGER)), -1), 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO drawing_days SELECT NEW.created_at / 86400000, 1 WHERE NEW.deleted_at IS NULL
            ON CONFLICT DO UPDATE SET n = n + 1;
        -- Last, so that the counters see the insert before the soft delete.
        UPDATE drawings SET deleted_at = NEW.created_at
        WHERE id = NEW.id AND NEW.deleted_at IS NULL
          AND (SELECT blocked_at FROM players WHERE id = NEW.player_id) IS NOT NULL;
    END;
    CREATE TRIGGER drawings_count_delete AFTER DELETE ON drawings BEGIN
        UPDATE drawing_counts SET n = n - 1 WHERE shape_id = OLD.shape_id AND flagged = (OLD.is_flagged <> 0)
            AND deleted = (OLD.deleted_at IS NOT NULL) AND reviewed = (OLD.reviewed_at IS NOT NULL)
            AND quality_bucket = coalesce(max(0, CAST(OLD.quality_score * 100 AS INTEGER)), -1);
        UPDATE drawing_days SET n = n - 1 WHERE day = OLD.created_at / 86400000 AND OLD.deleted_at IS NULL;
    END;
    CREATE TRIGGER drawings_count_update
    AFTER UPDATE OF shape_id, is_flagged, deleted_at, reviewed_at, quality_score, created_at ON drawings BEGIN
        UPDATE drawing_counts SET n = n - 1 WHERE shape_id = OLD.shape_id AND flagged = (OLD.is_flagged <> 0)
            AND deleted = (OLD.deleted_at IS NOT NULL) AND reviewed = (OLD.reviewed_at IS NOT NULL)
            AND quality_bucket = coalesce(max(0, CAST(OLD.quality_score * 100 AS INTEGER)), -1);
        INSERT INTO drawing_counts VALUES (NEW.shape_id, NEW.is_flagged <> 0, NEW.deleted_at IS NOT NULL,
            NEW.reviewed_at IS NOT NULL, coalesce(max(0, CAST(NEW.quality_score * 100 AS INTEGER)), -1), 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        UPDATE drawing_days SET n = n - 1 WHERE day = OLD.created_at / 86400000 AND OLD.deleted_at IS NULL;
        INSERT INTO drawing_days SELECT NEW.created_at / 86400000, 1 WHERE NEW.deleted_at IS NULL
            ON CONFLICT DO UPDATE SET n = n + 1;
    END;
    "#,
    // 7: one durable queue for all long work (issue #16). The table keeps its historical
    // name; `kind` says what a job does (rows from before are training jobs) and `result`
    // holds what a finished backup, rescore or import produced (JSON).
    r#"
    ALTER TABLE training_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'train'
        CHECK (kind IN ('train','backup','rescore','import'));
    ALTER TABLE training_jobs ADD COLUMN result TEXT;
    CREATE INDEX training_jobs_by_kind ON training_jobs(kind, status, id);
    "#,
    // 8: a lean submit path (issue #13): what a model made of a drawing (Quick, Draw!'s
    // `recognized`) moves from the immutable stroke record and the `metadata` JSON to columns
    // the background scorer fills after the `201`. Rows written before keep their verdict,
    // copied from `metadata`. The partial index finds the rows the scorer has not reached
    // yet (its catch-up walk) without scanning the scored ones.
    r#"
    ALTER TABLE drawings ADD COLUMN recognized INTEGER;       -- 0/1, NULL until judged
    ALTER TABLE drawings ADD COLUMN recognized_by TEXT;       -- the model version that judged
    UPDATE drawings SET
        recognized = json_extract(metadata, '$.recognized'),
        recognized_by = json_extract(metadata, '$.model_version')
    WHERE json_extract(metadata, '$.model_version') IS NOT NULL;
    CREATE INDEX drawings_unscored ON drawings(id) WHERE quality_score IS NULL AND deleted_at IS NULL;
    "#,
    // 9: the activation history rollback walks back through: one row per activation, newest
    // last; `undone` marks the activations a rollback stepped back over, so a second
    // rollback goes further back instead of toggling. Seeded from each model's last
    // activation.
    r#"
    CREATE TABLE model_activations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        version TEXT NOT NULL,
        activated_at INTEGER NOT NULL,
        undone INTEGER NOT NULL DEFAULT 0 CHECK (undone IN (0, 1))
    );
    INSERT INTO model_activations (version, activated_at)
        SELECT version, activated_at FROM models
        WHERE activated_at IS NOT NULL ORDER BY activated_at;
    "#,
    // 10: the picture an admin chose for a shape (issue #15): one of its drawings, drawn as
    // the shape's icon instead of the highest-quality one. No foreign key: a purged drawing
    // leaves a dangling id, and the icon falls back to the best drawing.
    r#"
    ALTER TABLE shapes ADD COLUMN picture_drawing_id TEXT;
    "#,
    // 11: the players list on ten million drawings (issue #18). Its counts per player came
    // from three `count(*)` over the player's drawings, row by row, for every player on the
    // page: an imported source is one player with hundreds of thousands of drawings, so one
    // page of 16 such players read all ten million rows (minutes). `player_counts` keeps them,
    // by triggers that add and subtract deltas (so their firing order does not matter):
    // drawings not deleted, of those the flagged, and the soft-deleted.
    r#"
    CREATE TABLE player_counts (
        player_id TEXT PRIMARY KEY,
        live      INTEGER NOT NULL,
        flagged   INTEGER NOT NULL,
        deleted   INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO player_counts
        SELECT player_id, sum(deleted_at IS NULL), sum(deleted_at IS NULL AND is_flagged <> 0),
               sum(deleted_at IS NOT NULL)
        FROM drawings GROUP BY player_id;
    CREATE TRIGGER player_counts_insert AFTER INSERT ON drawings BEGIN
        INSERT INTO player_counts VALUES (NEW.player_id, NEW.deleted_at IS NULL,
            NEW.deleted_at IS NULL AND NEW.is_flagged <> 0, NEW.deleted_at IS NOT NULL)
            ON CONFLICT DO UPDATE SET live = live + excluded.live,
                flagged = flagged + excluded.flagged, deleted = deleted + excluded.deleted;
    END;
    CREATE TRIGGER player_counts_delete AFTER DELETE ON drawings BEGIN
        UPDATE player_counts SET live = live - (OLD.deleted_at IS NULL),
            flagged = flagged - (OLD.deleted_at IS NULL AND OLD.is_flagged <> 0),
            deleted = deleted - (OLD.deleted_at IS NOT NULL)
        WHERE player_id = OLD.player_id;
    END;
    CREATE TRIGGER player_counts_update AFTER UPDATE OF player_id, is_flagged, deleted_at ON drawings
    BEGIN
        INSERT INTO player_counts VALUES (OLD.player_id, -(OLD.deleted_at IS NULL),
            -(OLD.deleted_at IS NULL AND OLD.is_flagged <> 0), -(OLD.deleted_at IS NOT NULL))
            ON CONFLICT DO UPDATE SET live = live + excluded.live,
                flagged = flagged + excluded.flagged, deleted = deleted + excluded.deleted;
        INSERT INTO player_counts VALUES (NEW.player_id, NEW.deleted_at IS NULL,
            NEW.deleted_at IS NULL AND NEW.is_flagged <> 0, NEW.deleted_at IS NOT NULL)
            ON CONFLICT DO UPDATE SET live = live + excluded.live,
                flagged = flagged + excluded.flagged, deleted = deleted + excluded.deleted;
    END;
    "#,
    // 12: a lean submit path (issue #13): the insert triggers ran four statements for every
    // row (three counter upserts and the blocked-player check). `insert_drawings`, the one
    // insert path, now does that work once per batch: a counter upsert per shape, per day
    // and per player, and a block check per player. The update and delete triggers stay.
    r#"
    DROP TRIGGER drawings_count_insert;
    DROP TRIGGER player_counts_insert;
    "#,
    // 13: the `verify` job kind (issue #18): checking the live stores takes many minutes at
    // ten million drawings, so it runs as a job. SQLite cannot change a column's CHECK, so
    // `kind` is copied into a new column that allows the kind, which then takes its name.
    r#"
    DROP INDEX training_jobs_by_kind;
    ALTER TABLE training_jobs ADD COLUMN job_kind TEXT NOT NULL DEFAULT 'train'
        CHECK (job_kind IN ('train','backup','rescore','import','verify'));
    UPDATE training_jobs SET job_kind = kind;
    ALTER TABLE training_jobs DROP COLUMN kind;
    ALTER TABLE training_jobs RENAME COLUMN job_kind TO kind;
    CREATE INDEX training_jobs_by_kind ON training_jobs(kind, status, id);
    "#,
];

/// The schema version this program writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`], one transaction per migration.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// Brings the database to schema version `target` (at most [`SCHEMA_VERSION`]).
fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    let steps = MIGRATIONS.iter().enumerate().take(target as usize);
    for (index, sql) in steps.skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verify_kind_migration_keeps_every_job_s_kind_and_admits_only_known_kinds() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 12).unwrap();
        for kind in ["train", "backup", "rescore", "import"] {
            conn.execute(
                "INSERT INTO training_jobs (status, config, config_hash, created_at, kind)
                 VALUES ('completed', '{}', ?1, 1, ?1)",
                [kind],
            )
            .unwrap();
        }
        let refused = conn.execute(
            "INSERT INTO training_jobs (status, config, config_hash, created_at, kind)
             VALUES ('queued', '{}', 'v', 1, 'verify')",
            [],
        );
        assert!(refused.is_err(), "version 12 has no verify kind");

        migrate(&mut conn).unwrap();
        let kinds: Vec<(String, String)> = conn
            .prepare("SELECT config_hash, kind FROM training_jobs ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(kinds.iter().all(|(was, is)| was == is), "{kinds:?}");
        assert_eq!(kinds.len(), 4);
        conn.execute(
            "INSERT INTO training_jobs (status, config, config_hash, created_at, kind)
             VALUES ('queued', '{}', 'v', 1, 'verify')",
            [],
        )
        .unwrap();
        let bogus = conn.execute(
            "INSERT INTO training_jobs (status, config, config_hash, created_at, kind)
             VALUES ('queued', '{}', 'b', 1, 'bogus')",
            [],
        );
        assert!(bogus.is_err(), "an unknown kind is still refused");
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM training_jobs WHERE kind = 'verify' AND status = 'queued'",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("training_jobs_by_kind"), "{plan}");
    }
}
