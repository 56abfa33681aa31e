//! Consistency of a PostgreSQL database (`doodlebox verify --database-url`), the cluster's
//! counterpart of the embedded verify: every drawing row has its stroke record and the
//! record decodes to that drawing, records without rows, the counts, the one-active-model
//! rule, and references that lead nowhere (possible only where the foreign keys were
//! bypassed: a hand-made restore, `session_replication_role = replica`).
//!
//! It reads only, through a plain connection of its own (not a [`PgStore`](super::PgStore),
//! which would migrate and seed an older or empty database), one page of rows at a time.

use postgres::{Client, NoTls};

use crate::domain::Record;
use crate::store::check::Findings;
use crate::store::StoreError;

/// Drawing rows (with their records) read per page.
const PAGE: i64 = 1_000;

/// References that must lead to a row: what they are, how an example is named, and the
/// rows (aliased `d`) that lead nowhere.
const REFERENCES: &[(&str, &str, &str)] = &[
    (
        "drawings naming a missing player",
        "d.id",
        "FROM drawings d WHERE NOT EXISTS (SELECT 1 FROM players p WHERE p.id = d.player_id)",
    ),
    (
        "drawings naming a missing shape",
        "d.id",
        "FROM drawings d WHERE NOT EXISTS (SELECT 1 FROM shapes s WHERE s.id = d.shape_id)",
    ),
    (
        "idempotency keys naming a missing drawing",
        "d.player_id || '/' || d.key",
        "FROM idempotency_keys d WHERE NOT EXISTS (SELECT 1 FROM drawings x WHERE x.id = d.drawing_id)",
    ),
    (
        "models naming a missing job",
        "d.version",
        "FROM models d WHERE d.job_id IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM training_jobs j WHERE j.id = d.job_id)",
    ),
    (
        "models whose files the database does not hold (no replica can load them)",
        "d.version",
        "FROM models d WHERE NOT EXISTS (SELECT 1 FROM model_artifacts a WHERE a.version = d.version)",
    ),
    (
        "admin sessions naming a missing admin",
        "encode(d.token_hash, 'hex')",
        "FROM admin_sessions d WHERE NOT EXISTS (SELECT 1 FROM admins a WHERE a.id = d.admin_id)",
    ),
];

/// What checking a database found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DatabaseCheck {
    /// The schema version the database records (0: not a Doodlebox database yet).
    pub schema_version: i64,
    pub rows: u64,
    pub records: u64,
    /// Records newer than the newest row: a replica's batch between its two commits, not a
    /// problem (as in the embedded check).
    pub records_after_last_row: u64,
    /// The model versions marked active.
    pub active_models: Vec<String>,
    /// Records that do not decode, or decode to another drawing.
    pub unreadable: Findings,
    /// Rows whose stroke record is missing: lost drawings.
    pub rows_without_records: Findings,
    /// Records older than the newest row that have no row.
    pub records_without_rows: Findings,
    /// References that lead nowhere, by what they are.
    pub dangling: Vec<(String, Findings)>,
}

impl DatabaseCheck {
    /// Everything wrong, one line each; empty when the database is whole.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.schema_version < crate::store::postgres::migrations::SCHEMA_VERSION {
            problems.push(format!(
                "the schema is at version {}, this program's is {} (start a replica to migrate it)",
                self.schema_version,
                crate::store::postgres::migrations::SCHEMA_VERSION
            ));
        }
        if self.active_models.len() > 1 {
            problems.push(format!(
                "{} models are active ({}); exactly one may be",
                self.active_models.len(),
                self.active_models.join(", ")
            ));
        }
        let findings = [
            ("stroke records that do not decode", &self.unreadable),
            (
                "drawing rows without a stroke record",
                &self.rows_without_records,
            ),
            ("stroke records without a row", &self.records_without_rows),
        ];
        let dangling = self.dangling.iter().map(|(what, f)| (what.as_str(), f));
        for (what, found) in findings.into_iter().chain(dangling) {
            if found.count > 0 {
                problems.push(format!(
                    "{} {what}, e.g. {}",
                    found.count,
                    found.examples.join(", ")
                ));
            }
        }
        problems
    }
}

/// Checks the database at `url`, reading only.
pub fn check_database(url: &str) -> Result<DatabaseCheck, StoreError> {
    let mut client = Client::connect(url, NoTls)?;
    let mut check = DatabaseCheck::default();
    let has_schema: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
        .try_get(0)?;
    if has_schema {
        check.schema_version = client
            .query_opt("SELECT version FROM schema_version", &[])?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
    }
    let known = crate::store::postgres::migrations::SCHEMA_VERSION;
    if check.schema_version > known {
        return Err(StoreError::SchemaTooNew {
            found: check.schema_version,
            known,
        });
    }
    if check.schema_version < known {
        // Too old (or empty) to know which tables to read: that is the report.
        return Ok(check);
    }
    // One snapshot for the whole check, so a replica writing meanwhile adds only records
    // newer than the newest row.
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;

    let mut after = String::new();
    loop {
        let rows = tx.query(
            "SELECT d.id, s.record FROM drawings d LEFT JOIN stroke_records s ON s.id = d.id
             WHERE d.id > $1 ORDER BY d.id LIMIT $2",
            &[&after, &PAGE],
        )?;
        for row in &rows {
            let id: String = row.try_get(0)?;
            let record: Option<Vec<u8>> = row.try_get(1)?;
            check.rows += 1;
            match record.as_deref().map(Record::decode) {
                None => check.rows_without_records.push(|| id.clone()),
                Some(Ok(record)) if record.id.to_string() == id => {}
                Some(Ok(record)) => check
                    .unreadable
                    .push(|| format!("{id}: the record names {}", record.id)),
                Some(Err(e)) => check.unreadable.push(|| format!("{id}: {e}")),
            }
            after = id;
        }
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    let last_row = after;
    check.records = super::count(
        &tx.query_one("SELECT count(*) FROM stroke_records", &[])?,
        0,
    )?;
    check.records_after_last_row = super::count(
        &tx.query_one(
            "SELECT count(*) FROM stroke_records s WHERE s.id > $1
             AND NOT EXISTS (SELECT 1 FROM drawings d WHERE d.id = s.id)",
            &[&last_row],
        )?,
        0,
    )?;
    let orphans = "FROM stroke_records s WHERE s.id < $1
                   AND NOT EXISTS (SELECT 1 FROM drawings d WHERE d.id = s.id)";
    check.records_without_rows = findings(
        &mut tx,
        &format!("SELECT count(*) {orphans}"),
        &format!("SELECT s.id {orphans} ORDER BY s.id LIMIT 20"),
        &[&last_row],
    )?;
    for row in tx.query(
        "SELECT version FROM models WHERE is_active ORDER BY version",
        &[],
    )? {
        check.active_models.push(row.try_get(0)?);
    }
    for (what, example, from) in REFERENCES {
        let found = findings(
            &mut tx,
            &format!("SELECT count(*) {from}"),
            &format!("SELECT {example} {from} LIMIT 20"),
            &[],
        )?;
        check.dangling.push(((*what).to_owned(), found));
    }
    tx.commit()?;
    Ok(check)
}

/// A count and a few examples, from two queries over the same rows.
fn findings(
    tx: &mut postgres::Transaction<'_>,
    count: &str,
    examples: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Findings, StoreError> {
    let mut found = Findings {
        count: super::count(&tx.query_one(count, params)?, 0)?,
        examples: Vec::new(),
    };
    for row in tx.query(examples, params)? {
        found.examples.push(row.try_get(0)?);
    }
    Ok(found)
}
