//! Moving an appliance onto PostgreSQL (`doodlebox migrate --from DATA_DIR --to URL`), and
//! checking a PostgreSQL database (`doodlebox verify --database-url URL`).
//!
//! A migration opens the appliance's stores as the server does at start (which refuses
//! while another process holds the stroke store) and reconciles them, so that every stroke
//! record has its row; then it stores every model's artifact files in the database through
//! the model store's seam ([`Artifacts::publish`], before any model row, so that no replica
//! sees a version it cannot fetch), [`copy`](crate::store::postgres::copy) moves the records
//! and rows in batches, and both sides are read again to compare counts and hashes. Running it again
//! (after a crash, or to be sure) copies what is missing and changes nothing else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use thiserror::Error;

use crate::data_dir::DataDir;
use crate::ml::artifact::{MANIFEST_FILE, WEIGHTS_FILE};
use crate::service::artifacts::Artifacts;
use crate::store::postgres::copy::{self, CopyReport, Progress, Source, TableCheck};
use crate::store::postgres::verify::{self, DatabaseCheck};
use crate::store::postgres::PgStore;
use crate::store::reconcile::reconcile;
use crate::store::{metadata_path, ModelRow, ModelStore, StoreError, Stores};

/// The name model artifacts go by in the comparison.
const ARTIFACTS: &str = "model_artifacts";

pub use copy::DEFAULT_BATCH;

/// Why a migration or a database check could not run.
#[derive(Debug, Error)]
pub enum MigrateError {
    #[error("{0} holds no Doodlebox data (no doodlebox.sqlite3)")]
    NoData(PathBuf),
    #[error("the stroke store in {0} is held by another process: stop the server running on it first (migrate copies a data directory at rest)")]
    SourceBusy(PathBuf),
    #[error("the database URL must start with postgres:// or postgresql://")]
    NotPostgres,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `doodlebox migrate` is asked to do.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The appliance's data directory (no server may run on it).
    pub from: PathBuf,
    /// The PostgreSQL database's URL.
    pub to: String,
    /// Rows or stroke records per batch (one transaction each).
    pub batch: usize,
}

/// What a migration did and found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrateReport {
    /// Rows rebuilt in the appliance for stroke records that had none (a crash's leftovers)
    /// before copying.
    pub reconciled: usize,
    /// Model versions whose artifact files were stored in the database.
    pub artifacts: Vec<String>,
    /// Model versions whose files the appliance does not have (it cannot load them either):
    /// their rows are copied, their files are not.
    pub missing_artifacts: Vec<String>,
    pub copied: CopyReport,
    /// Both sides compared, table by table (the stroke records first).
    pub checks: Vec<TableCheck>,
}

impl MigrateReport {
    /// Whether the database holds all of the appliance, unchanged.
    pub fn is_ok(&self) -> bool {
        self.checks.iter().all(TableCheck::is_ok)
    }
}

/// Copies the appliance at `options.from` into the database at `options.to`, then compares
/// them; `progress` hears after every batch of both phases.
pub fn migrate(
    options: &MigrateOptions,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<MigrateReport, MigrateError> {
    check_url(&options.to)?;
    if !metadata_path(&options.from).is_file() {
        return Err(MigrateError::NoData(options.from.clone()));
    }
    let stores = Stores::open(&options.from).map_err(|e| {
        if is_lock_held(&e) {
            MigrateError::SourceBusy(options.from.clone())
        } else {
            e.into()
        }
    })?;
    let reconciled = reconcile(&stores)?.rebuilt;
    let source = Source::open(stores.blobs.as_ref(), &metadata_path(&options.from))?;
    let target = Arc::new(PgStore::open(&options.to)?);
    let models = stores.models.models()?;
    let (artifacts, missing_artifacts) = copy_artifacts(&models, &options.from, target.clone())?;
    let copied = copy::copy(&source, &target, options.batch, progress)?;
    let mut checks = copy::check(&source, &target, options.batch, progress)?;
    checks.push(check_artifacts(&models, &options.from, target.as_ref())?);
    Ok(MigrateReport {
        reconciled,
        artifacts,
        missing_artifacts,
        copied,
        checks,
    })
}

/// Where a model's files are in the appliance: the row's path, or the version's folder of
/// the data directory (a row written with a relative data directory names a path relative
/// to wherever the server ran).
fn artifact_dir(row: &ModelRow, from: &Path) -> PathBuf {
    let own = PathBuf::from(&row.path);
    if own.join(WEIGHTS_FILE).is_file() {
        own
    } else {
        DataDir::new(from).model(&row.version)
    }
}

/// Stores every model's files in the database (replacing what an earlier run stored);
/// returns the versions stored and those whose files are missing.
fn copy_artifacts(
    models: &[ModelRow],
    from: &Path,
    target: Arc<PgStore>,
) -> Result<(Vec<String>, Vec<String>), StoreError> {
    let store: Arc<dyn ModelStore> = target;
    let artifacts = Artifacts::new(store, DataDir::new(from).models());
    let (mut stored, mut missing) = (Vec::new(), Vec::new());
    for row in models {
        match artifacts.publish(&row.version, &artifact_dir(row, from)) {
            Ok(()) => stored.push(row.version.clone()),
            Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(row.version.clone())
            }
            Err(e) => return Err(e),
        }
    }
    Ok((stored, missing))
}

/// The appliance's model files against the database's (fetched, so checked against their
/// stored digests too), file by file.
fn check_artifacts(
    models: &[ModelRow],
    from: &Path,
    target: &PgStore,
) -> Result<TableCheck, StoreError> {
    let (mut source_hash, mut target_hash) = (Sha256::new(), Sha256::new());
    let (mut source_rows, mut target_rows) = (0u64, 0u64);
    let feed = |hash: &mut Sha256, version: &str, name: &str, bytes: &[u8]| {
        for part in [version.as_bytes(), name.as_bytes(), bytes] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
    };
    for row in models {
        let dir = artifact_dir(row, from);
        let stored = target.model_artifact(&row.version)?.unwrap_or_default();
        for name in [WEIGHTS_FILE, MANIFEST_FILE] {
            let bytes = match std::fs::read(dir.join(name)) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            source_rows += 1;
            feed(&mut source_hash, &row.version, name, &bytes);
            if let Some(file) = stored.iter().find(|f| f.name == name) {
                target_rows += 1;
                feed(&mut target_hash, &row.version, name, &file.bytes);
            }
        }
    }
    let hex = |digest: &[u8]| {
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    Ok(TableCheck {
        table: ARTIFACTS.to_owned(),
        source_rows,
        target_rows,
        extra_in_target: 0,
        source_hash: hex(&source_hash.finalize()),
        target_hash: hex(&target_hash.finalize()),
    })
}

/// Checks the database at `url` for consistency (reading only).
pub fn verify_database(url: &str) -> Result<DatabaseCheck, MigrateError> {
    check_url(url)?;
    Ok(verify::check_database(url)?)
}

/// The URL with its password replaced by `***`, for printing.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn check_url(url: &str) -> Result<(), MigrateError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(())
    } else {
        Err(MigrateError::NotPostgres)
    }
}

/// Whether opening the stores failed because sled's lock file is held by another process.
fn is_lock_held(e: &StoreError) -> bool {
    matches!(e, StoreError::Sled(sled::Error::Io(io)) if io.to_string().contains("could not acquire lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_hides_only_the_password() {
        assert_eq!(
            redacted("postgres://doodlebox:s3cr@t@db:5432/doodlebox"),
            "postgres://doodlebox:***@db:5432/doodlebox"
        );
        assert_eq!(
            redacted("postgres://db/doodlebox"),
            "postgres://db/doodlebox"
        );
        assert_eq!(
            redacted("postgres://user@db/doodlebox"),
            "postgres://user@db/doodlebox"
        );
    }

    #[test]
    fn a_url_that_is_not_postgres_is_refused_before_anything_opens() {
        let dir = tempfile::tempdir().unwrap();
        let options = MigrateOptions {
            from: dir.path().to_owned(),
            to: "mysql://x".into(),
            batch: 10,
        };
        assert!(matches!(
            migrate(&options, &mut |_| {}),
            Err(MigrateError::NotPostgres)
        ));
    }

    #[test]
    fn a_directory_without_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options = MigrateOptions {
            from: dir.path().join("none"),
            to: "postgres://127.0.0.1:1/x".into(),
            batch: 10,
        };
        assert!(matches!(
            migrate(&options, &mut |_| {}),
            Err(MigrateError::NoData(_))
        ));
    }
}
