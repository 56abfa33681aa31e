//! Backup, restore and verification of a whole data directory (issue #7): an online,
//! consistent snapshot of both stores and the model files, the way back from one, and the
//! checks that say whether a data directory or a backup is whole.
//!
//! A backup directory holds
//! - `doodlebox.sqlite3`: a `VACUUM INTO` snapshot of the metadata database;
//! - [`RECORDS_FILE`]: exactly the stroke records that snapshot's rows reference (see
//!   [`crate::store::backup`] for why that is consistent while the server writes);
//! - `models/<version>/`: the files of every model version the snapshot names;
//! - [`MANIFEST_FILE`]: when, which versions, counts, and every file's size and SHA-256,
//!   written last, so a directory without it is an unfinished backup.
//!
//! The blocking work here runs on the caller's thread: the server runs it as a `backup` job
//! (see [`crate::jobs::backup`]), the command line directly (see [`crate::cli::backup`]).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::data_dir::{DataDir, METADATA_FILE, MODELS_DIR};
use crate::ml::artifact::{MANIFEST_FILE as MODEL_MANIFEST, WEIGHTS_FILE};
use crate::store::backup::{
    export_records, import_records, read_records, relocate_models_in, snapshot_metadata,
    RECORDS_FILE,
};
use crate::store::check::{check_stores, check_stores_until, CheckProgress, StoreCheck};
use crate::store::reconcile::{reconcile, ReconcileReport};
use crate::store::{metadata_path, BlobStore, SledBlobStore, StoreError, Stores};

/// File name of a backup's manifest; its presence marks a finished backup.
pub const MANIFEST_FILE: &str = "backup.json";
/// Version of the backup layout and manifest.
pub const BACKUP_FORMAT: u32 = 1;

/// Why a backup, restore or verification could not be done.
#[derive(Debug, Error)]
pub enum BackupError {
    #[error("{0} is not empty; a backup goes into a new or empty directory")]
    DestinationNotEmpty(PathBuf),
    #[error("the backup destination {0} must be an absolute path")]
    RelativeDestination(PathBuf),
    #[error("a backup asked for over HTTP goes only into the server's backup directory (<data>/backups or --backup-dir); give it a \"name\" there, or run `doodlebox backup DEST` on the server's machine")]
    DestinationInRequest,
    #[error("invalid backup name: {0}")]
    InvalidName(String),
    #[error("{0} holds no Doodlebox data (no doodlebox.sqlite3)")]
    NoData(PathBuf),
    #[error("{0} is not a finished Doodlebox backup (no backup.json)")]
    NotABackup(PathBuf),
    #[error("the backup's manifest is unreadable: {0}")]
    Manifest(String),
    #[error("the backup is damaged, nothing was restored: {}", .0.join("; "))]
    Damaged(Vec<String>),
    #[error("{0} is not empty; pass --force to move it aside and restore")]
    DataDirNotEmpty(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stopped before it finished (a cancel or a shutdown)")]
    Stopped,
    /// The data lives in PostgreSQL (`--database-url`), not in the data directory.
    #[error("this server keeps its data in PostgreSQL (--database-url): back it up with pg_dump and restore it with pg_restore")]
    ClusterMode,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Relative to the backup directory, `/`-separated.
    pub path: String,
    pub bytes: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// `backup.json`: what a backup holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupManifest {
    /// [`BACKUP_FORMAT`].
    pub format: u32,
    /// When the snapshot was taken, RFC 3339 UTC.
    pub created_at: String,
    /// The Doodlebox version that wrote it.
    pub doodlebox_version: String,
    /// The metadata schema version of the snapshot.
    pub schema_version: i64,
    /// Drawing rows in the snapshot.
    pub drawings: u64,
    /// Stroke records in [`RECORDS_FILE`].
    pub records: u64,
    /// The newest drawing in the snapshot.
    pub last_drawing_id: Option<String>,
    /// Model versions whose files were copied.
    pub models: Vec<String>,
    /// Model versions the snapshot names whose files were not found.
    pub missing_models: Vec<String>,
    /// Bytes of all files together.
    pub bytes: u64,
    /// Seconds the backup took.
    pub seconds: f64,
    pub files: Vec<FileEntry>,
}

/// The progress line a backup reports once it has created (or taken) its destination: from
/// then on the destination holds what this backup writes (see [`clear_unfinished`]).
pub const DESTINATION_READY: &str = "destination ready";
/// Files and directories a backup writes into its destination (besides [`MANIFEST_FILE`]).
const WRITTEN_NAMES: &[&str] = &[
    METADATA_FILE,
    "doodlebox.sqlite3-journal",
    "doodlebox.sqlite3-wal",
    "doodlebox.sqlite3-shm",
    RECORDS_FILE,
    MODELS_DIR,
];

/// Takes a consistent backup of the data directory into `dest` (absolute; new or empty)
/// while `blobs` (the data directory's open stroke store) may keep taking drawings.
/// `progress` hears a line at each step.
pub fn backup(
    blobs: &dyn BlobStore,
    data_dir: &Path,
    dest: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<BackupManifest, BackupError> {
    backup_until(blobs, data_dir, dest, progress, &|| false)
}

/// [`backup`] that looks at `stop` between its steps and gives up with
/// [`BackupError::Stopped`] when it says so (a cancelled job, a graceful shutdown).
pub fn backup_until(
    blobs: &dyn BlobStore,
    data_dir: &Path,
    dest: &Path,
    progress: &mut dyn FnMut(&str),
    stop: &dyn Fn() -> bool,
) -> Result<BackupManifest, BackupError> {
    let started = Instant::now();
    let check = || {
        if stop() {
            Err(BackupError::Stopped)
        } else {
            Ok(())
        }
    };
    check_destination(dest)?;
    let source_db = metadata_path(data_dir);
    if !source_db.is_file() {
        return Err(BackupError::NoData(data_dir.to_owned()));
    }
    prepare_destination(dest)?;
    progress(DESTINATION_READY);
    check()?;
    let created_at = crate::time::rfc3339(crate::store::now_ms());
    let snapshot = snapshot_metadata(
        &source_db,
        &metadata_path(dest),
        &DataDir::new(dest).models(),
    )?;
    progress(&format!(
        "metadata snapshot: {} drawings, schema version {}",
        snapshot.drawings, snapshot.schema_version
    ));
    check()?;
    let records = export_records(
        blobs,
        snapshot.last_drawing,
        &dest.join(RECORDS_FILE),
        &mut |count| progress(&format!("stroke records: {} copied", count.records)),
    )?;
    progress(&format!(
        "stroke records: {} ({} bytes)",
        records.records, records.bytes
    ));
    let mut models = Vec::new();
    let mut missing_models = Vec::new();
    for (version, path) in &snapshot.models {
        check()?;
        let source = Path::new(path);
        if source.is_dir() {
            copy_dir(source, &DataDir::new(dest).model(version))?;
            models.push(version.clone());
        } else {
            progress(&format!(
                "warning: the files of model {version} are missing; the backup lacks it"
            ));
            missing_models.push(version.clone());
        }
    }
    if !snapshot.models.is_empty() {
        sync_dir(&DataDir::new(dest).models())?;
    }
    check()?;
    let files = list_files(dest)?;
    sync_dir(dest)?;
    let manifest = BackupManifest {
        format: BACKUP_FORMAT,
        created_at,
        doodlebox_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: snapshot.schema_version,
        drawings: snapshot.drawings,
        records: records.records,
        last_drawing_id: snapshot.last_drawing.map(|id| id.to_string()),
        models,
        missing_models,
        bytes: files.iter().map(|f| f.bytes).sum(),
        seconds: started.elapsed().as_secs_f64(),
        files,
    };
    write_manifest(dest, &manifest)?;
    Ok(manifest)
}

/// Whether `dest` can take a backup: an absolute path to a new or empty directory. The
/// server asks before it queues a backup job, so a bad destination is refused at once.
pub fn check_destination(dest: &Path) -> Result<(), BackupError> {
    if !dest.is_absolute() {
        return Err(BackupError::RelativeDestination(dest.to_owned()));
    }
    if dest.exists() {
        let empty = dest.is_dir() && std::fs::read_dir(dest).map_err(io(dest))?.next().is_none();
        if !empty {
            return Err(BackupError::DestinationNotEmpty(dest.to_owned()));
        }
    }
    Ok(())
}

/// Longest name a backup asked for over HTTP may have.
pub const MAX_NAME_CHARS: usize = 64;

/// Where a backup asked for over HTTP goes: `root/<name>`, where `root` is the server's
/// backup directory (`<data>/backups` or `--backup-dir`, fixed at start) and `name` a plain
/// folder name (letters, digits, `.`, `_`, `-`; not starting with `.`), or, without one,
/// `backup-<UTC time to the millisecond>`. A request never names a path: the server may run
/// with more rights than the admin who asks, so it writes nowhere else.
pub fn http_destination(root: &Path, name: Option<&str>) -> Result<PathBuf, BackupError> {
    let name = match name {
        Some(name) => {
            check_name(name)?;
            name.to_owned()
        }
        None => timestamped_name(crate::store::now_ms()),
    };
    let root = std::path::absolute(root).map_err(io(root))?;
    Ok(root.join(name))
}

/// A backup's folder name: one plain path component, nothing a shell or a path would read
/// as more.
fn check_name(name: &str) -> Result<(), BackupError> {
    let fail = |why: &str| Err(BackupError::InvalidName(why.to_owned()));
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return fail("a name has 1 to 64 characters");
    }
    if name.starts_with('.') {
        return fail("a name does not start with '.'");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return fail("a name has only letters, digits, '.', '_' and '-' (no path)");
    }
    Ok(())
}

/// `backup-20261202T041500.123Z` for `ms` since the epoch: sorts by time, unique to the
/// millisecond (a second request in the same millisecond finds it taken: `409`).
fn timestamped_name(ms: u64) -> String {
    let stamp = crate::time::rfc3339(ms)
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect::<String>();
    format!("backup-{stamp}")
}

/// Empties the destination of a backup that did not finish (a crash or a stop after
/// [`DESTINATION_READY`]), so that it can start again: removes what a backup writes, and
/// refuses ([`BackupError::DestinationNotEmpty`]) when anything else is there. A finished
/// backup (with its manifest) is never touched: the caller reads it instead.
pub fn clear_unfinished(dest: &Path) -> Result<(), BackupError> {
    if !dest.is_dir() {
        return Ok(());
    }
    if dest.join(MANIFEST_FILE).exists() {
        return Err(BackupError::DestinationNotEmpty(dest.to_owned()));
    }
    let temporary = format!("{MANIFEST_FILE}.tmp");
    for name in WRITTEN_NAMES.iter().copied().chain([temporary.as_str()]) {
        let path = dest.join(name);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path)(e)),
            _ => {}
        }
    }
    check_destination(dest)?;
    sync_dir(dest)
}

fn prepare_destination(dest: &Path) -> Result<(), BackupError> {
    check_destination(dest)?;
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    if let Some(parent) = dest.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Copies a directory's regular files (recursively), each synced.
fn copy_dir(from: &Path, to: &Path) -> Result<(), BackupError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io(&source))?;
        if kind.is_dir() {
            copy_dir(&source, &target)?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target).map_err(io(&source))?;
            File::open(&target)
                .and_then(|f| f.sync_all())
                .map_err(io(&target))?;
        }
    }
    sync_dir(to)
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io(dir))
}

/// Every regular file under `root` but the manifest, with its size and hash, sorted.
fn list_files(root: &Path) -> Result<Vec<FileEntry>, BackupError> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && path != root.join(MANIFEST_FILE) {
                let (bytes, sha256) = hash_file(&path)?;
                let relative = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push(FileEntry {
                    path: relative,
                    bytes,
                    sha256,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(io(path))?;
    Ok((bytes, hex::encode(hasher.finalize())))
}

fn write_manifest(dest: &Path, manifest: &BackupManifest) -> Result<(), BackupError> {
    let path = dest.join(MANIFEST_FILE);
    let temporary = dest.join(format!("{MANIFEST_FILE}.tmp"));
    let text =
        serde_json::to_vec_pretty(manifest).map_err(|e| BackupError::Manifest(e.to_string()))?;
    let mut file = File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(&text).map_err(io(&temporary))?;
    file.sync_all().map_err(io(&temporary))?;
    std::fs::rename(&temporary, &path).map_err(io(&path))?;
    sync_dir(dest)
}

/// Reads a backup's manifest.
pub fn read_manifest(dir: &Path) -> Result<BackupManifest, BackupError> {
    let path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::NotABackup(dir.to_owned()))
        }
        Err(e) => return Err(io(&path)(e)),
    };
    let manifest: BackupManifest =
        serde_json::from_slice(&text).map_err(|e| BackupError::Manifest(e.to_string()))?;
    if manifest.format != BACKUP_FORMAT {
        return Err(BackupError::Manifest(format!(
            "format {} (this build reads {BACKUP_FORMAT})",
            manifest.format
        )));
    }
    Ok(manifest)
}

/// The files of a backup that are missing or differ from its manifest.
fn checksum_problems(dir: &Path, manifest: &BackupManifest) -> Vec<String> {
    let mut problems = Vec::new();
    for file in &manifest.files {
        let path = dir.join(&file.path);
        match hash_file(&path) {
            Ok((bytes, _)) if bytes != file.bytes => problems.push(format!(
                "{}: {bytes} bytes, the manifest says {}",
                file.path, file.bytes
            )),
            Ok((_, sha256)) if sha256 != file.sha256 => {
                problems.push(format!("{}: SHA-256 differs from the manifest", file.path))
            }
            Ok(_) => {}
            Err(_) if !path.exists() => problems.push(format!("{}: missing", file.path)),
            Err(e) => problems.push(format!("{}: {e}", file.path)),
        }
    }
    problems
}

/// What a verification found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    /// `data directory` or `backup`.
    pub kind: String,
    /// The directory checked; answers over HTTP leave it out (`#[serde(default)]` reads them).
    #[serde(default)]
    pub path: String,
    /// Files checked against a backup's manifest (0 for a data directory).
    pub files_checked: usize,
    /// Drawing rows and stroke records seen.
    pub rows: u64,
    pub records: u64,
    /// Records newer than the newest row (not a problem; see `StoreCheck`).
    pub records_after_last_row: u64,
    /// Model versions whose files were checked.
    pub models_checked: Vec<String>,
    /// Everything wrong, one line each; empty when the directory is whole.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies a data directory or a backup directory that no server holds.
pub fn verify_dir(dir: &Path) -> Result<VerifyReport, BackupError> {
    if dir.join(MANIFEST_FILE).exists() {
        return verify_backup(dir);
    }
    if !metadata_path(dir).is_file() {
        return Err(BackupError::NoData(dir.to_owned()));
    }
    let blobs = SledBlobStore::open(&DataDir::new(dir).strokes())?;
    verify_data_dir(&blobs, dir)
}

/// Verifies a data directory through its open stroke store.
pub fn verify_data_dir(blobs: &dyn BlobStore, dir: &Path) -> Result<VerifyReport, BackupError> {
    verify_data_dir_until(blobs, dir, &mut |_| {}, &|| false)
}

/// [`verify_data_dir`] for the server's `verify` job: reports how far the walk has come now
/// and then, and ends with [`BackupError::Stopped`] once `should_stop` says so.
pub fn verify_data_dir_until(
    blobs: &dyn BlobStore,
    dir: &Path,
    on_progress: &mut dyn FnMut(CheckProgress),
    should_stop: &dyn Fn() -> bool,
) -> Result<VerifyReport, BackupError> {
    let mut report = new_report("data directory", dir);
    let check = match check_stores_until(
        &metadata_path(dir),
        blobs.records_after(None),
        on_progress,
        should_stop,
    ) {
        Ok(None) => return Err(BackupError::Stopped),
        Ok(Some(check)) => Ok(check),
        Err(e) => Err(e),
    };
    add_store_check(&mut report, dir, check);
    Ok(report)
}

fn verify_backup(dir: &Path) -> Result<VerifyReport, BackupError> {
    let manifest = read_manifest(dir)?;
    let mut report = new_report("backup", dir);
    report.files_checked = manifest.files.len();
    report.problems = checksum_problems(dir, &manifest);
    for version in &manifest.missing_models {
        report.problems.push(format!(
            "model {version}: its files were missing when the backup was taken"
        ));
    }
    let check = read_records(&dir.join(RECORDS_FILE))
        .and_then(|records| check_stores(&metadata_path(dir), records));
    add_store_check(&mut report, dir, check);
    if report.rows != manifest.drawings && report.problems.is_empty() {
        report.problems.push(format!(
            "{} drawing rows, the manifest says {}",
            report.rows, manifest.drawings
        ));
    }
    Ok(report)
}

fn new_report(kind: &str, dir: &Path) -> VerifyReport {
    VerifyReport {
        kind: kind.to_owned(),
        path: dir.display().to_string(),
        files_checked: 0,
        rows: 0,
        records: 0,
        records_after_last_row: 0,
        models_checked: Vec::new(),
        problems: Vec::new(),
    }
}

fn add_store_check(report: &mut VerifyReport, dir: &Path, check: Result<StoreCheck, StoreError>) {
    let check = match check {
        Ok(check) => check,
        Err(e) => {
            report
                .problems
                .push(format!("the stores cannot be read: {e}"));
            return;
        }
    };
    report.rows = check.rows;
    report.records = check.records;
    report.records_after_last_row = check.records_after_last_row;
    if check.integrity != "ok" {
        report
            .problems
            .push(format!("SQLite integrity check: {}", check.integrity));
    }
    let findings = [
        ("foreign key violations", &check.foreign_keys),
        ("stroke records that do not decode", &check.unreadable),
        (
            "drawing rows without a stroke record",
            &check.rows_without_records,
        ),
        ("stroke records without a row", &check.records_without_rows),
    ];
    for (what, found) in findings {
        if found.count > 0 {
            report.problems.push(format!(
                "{} {what}, e.g. {}",
                found.count,
                found.examples.join(", ")
            ));
        }
    }
    for (version, _) in &check.models {
        report.models_checked.push(version.clone());
        if let Some(problem) = model_problem(&DataDir::new(dir).model(version)) {
            report.problems.push(format!("model {version}: {problem}"));
        }
    }
}

/// Whether a model directory has its manifest and the weights that manifest's hash names.
fn model_problem(dir: &Path) -> Option<String> {
    let manifest_path = dir.join(MODEL_MANIFEST);
    let text = match std::fs::read(&manifest_path) {
        Ok(text) => text,
        Err(e) => return Some(format!("{}: {e}", manifest_path.display())),
    };
    let manifest: serde_json::Value = match serde_json::from_slice(&text) {
        Ok(manifest) => manifest,
        Err(e) => return Some(format!("{}: {e}", manifest_path.display())),
    };
    let Some(expected) = manifest["weights_sha256"].as_str() else {
        return Some(format!("{} names no weights hash", manifest_path.display()));
    };
    let weights = dir.join(WEIGHTS_FILE);
    match hash_file(&weights) {
        Ok((_, actual)) if actual == expected => None,
        Ok(_) => Some(format!(
            "{} does not match the hash in its manifest",
            weights.display()
        )),
        Err(e) => Some(e.to_string()),
    }
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub drawings: u64,
    pub records: u64,
    pub models: Vec<String>,
    /// Where the data directory's previous content went (with `--force`).
    pub moved_aside: Option<PathBuf>,
    /// What reconciling the restored stores found.
    /// What reconciling the restored stores found; `None` when the stroke store could not be
    /// reopened in this process (the server reconciles at its next start instead).
    pub reconcile: Option<ReconcileReport>,
}

/// Opens the restored stores. The stroke store rebuilt a moment ago in this same process may
/// still be held for a few milliseconds by sled's background threads after it was dropped
/// (its file lock goes with them), so a lock conflict is waited out, briefly.
fn open_when_released(data_dir: &Path) -> Result<Stores, crate::store::StoreError> {
    let deadline = std::time::Instant::now() + RELEASE_WAIT;
    loop {
        match Stores::open(data_dir) {
            Err(e) if e.is_lock_conflict() && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// How long a restore waits for its own rebuilt stroke store to be released.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Restores the backup in `src` into `data_dir`, which no server may hold (the caller
/// checks): the checksums first, then a staging directory beside `data_dir`, renamed into
/// place when whole, then reconciliation. A non-empty `data_dir` is refused unless `force`,
/// and then moved aside, never deleted.
pub fn restore(
    src: &Path,
    data_dir: &Path,
    force: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<RestoreReport, BackupError> {
    let manifest = read_manifest(src)?;
    let problems = checksum_problems(src, &manifest);
    if !problems.is_empty() {
        return Err(BackupError::Damaged(problems));
    }
    progress(&format!(
        "backup of {}: {} files, {} bytes, checksums match",
        manifest.created_at,
        manifest.files.len(),
        manifest.bytes
    ));
    let data_dir = std::path::absolute(data_dir).map_err(io(data_dir))?;
    let not_empty = data_dir.exists()
        && std::fs::read_dir(&data_dir)
            .map_err(io(&data_dir))?
            .next()
            .is_some();
    if not_empty && !force {
        return Err(BackupError::DataDirNotEmpty(data_dir));
    }
    let stamp = crate::store::now_ms();
    let parent = data_dir.parent().unwrap_or(Path::new("/")).to_owned();
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let staging = parent.join(format!(".{name}.restoring-{stamp}"));
    std::fs::create_dir(&staging).map_err(io(&staging))?;
    let sqlite = metadata_path(&staging);
    std::fs::copy(metadata_path(src), &sqlite).map_err(io(&sqlite))?;
    File::open(&sqlite)
        .and_then(|f| f.sync_all())
        .map_err(io(&sqlite))?;
    relocate_models_in(&sqlite, &DataDir::new(&data_dir).models())?;
    for version in &manifest.models {
        copy_dir(
            &DataDir::new(src).model(version),
            &DataDir::new(&staging).model(version),
        )?;
    }
    if !manifest.models.is_empty() {
        sync_dir(&DataDir::new(&staging).models())?;
    }
    let records = import_records(&src.join(RECORDS_FILE), &DataDir::new(&staging).strokes())?;
    progress(&format!(
        "stroke store rebuilt: {} records",
        records.records
    ));
    sync_dir(&staging)?;
    let moved_aside = if data_dir.exists() {
        if not_empty {
            let aside = parent.join(format!("{name}.before-restore-{stamp}"));
            std::fs::rename(&data_dir, &aside).map_err(io(&aside))?;
            progress(&format!("moved the old data to {}", aside.display()));
            Some(aside)
        } else {
            std::fs::remove_dir(&data_dir).map_err(io(&data_dir))?;
            None
        }
    } else {
        None
    };
    std::fs::rename(&staging, &data_dir).map_err(io(&data_dir))?;
    sync_dir(&parent)?;
    // sled may keep the lock of the store rebuilt above for as long as this process lives;
    // the server reconciles at start anyway, so then only the metadata is read here.
    let (reconciled, drawings) = match open_when_released(&data_dir) {
        Ok(stores) => (Some(reconcile(&stores)?), stores.metadata.count_drawings()?),
        Err(e) if e.is_lock_conflict() => {
            use crate::store::DrawingStore;
            let metadata = crate::store::SqliteMetadataStore::open(&metadata_path(&data_dir))?;
            (None, metadata.count_drawings()?)
        }
        Err(e) => return Err(e.into()),
    };
    Ok(RestoreReport {
        drawings,
        records: records.records,
        models: manifest.models,
        moved_aside,
        reconcile: reconciled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_backup_goes_under_the_backup_directory_by_plain_name_or_by_time() {
        let root = Path::new("/srv/backups");
        assert_eq!(
            http_destination(root, Some("before-workshop_2.1")).unwrap(),
            root.join("before-workshop_2.1")
        );
        let stamped = http_destination(root, None).unwrap();
        assert_eq!(stamped.parent(), Some(root));
        let name = stamped.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("backup-20"), "{name}");
        check_name(name).unwrap();
        assert_eq!(
            timestamped_name(1_764_648_900_123),
            "backup-20251202T041500.123Z"
        );
        for bad in [
            "",
            "..",
            ".hidden",
            "a/b",
            "../etc",
            "/etc",
            "a b",
            "ü",
            &"x".repeat(65),
        ] {
            assert!(
                matches!(
                    http_destination(root, Some(bad)),
                    Err(BackupError::InvalidName(_))
                ),
                "{bad:?} must be refused"
            );
        }
    }

    fn backed_up(root: &Path) -> PathBuf {
        let data = root.join("data");
        let stores = Stores::open(&data).unwrap();
        let dest = root.join("backup");
        let manifest = backup(&*stores.blobs, &data, &dest, &mut |_| {}).unwrap();
        assert_eq!(manifest.drawings, 0);
        dest
    }

    #[test]
    fn an_unfinished_backup_is_cleared_for_a_new_try_but_foreign_files_are_kept_and_refused() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let stores = Stores::open(&data).unwrap();
        let dest = root.path().join("backup");
        // Stopped once the metadata snapshot is written: an unfinished backup.
        let stopped = backup_until(&*stores.blobs, &data, &dest, &mut |_| {}, &|| {
            metadata_path(&dest).exists()
        });
        assert!(matches!(stopped, Err(BackupError::Stopped)), "{stopped:?}");
        clear_unfinished(&dest).unwrap();
        assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
        backup(&*stores.blobs, &data, &dest, &mut |_| {}).unwrap();
        assert!(
            matches!(
                clear_unfinished(&dest),
                Err(BackupError::DestinationNotEmpty(_))
            ),
            "a finished backup is never cleared"
        );
        std::fs::remove_file(dest.join(MANIFEST_FILE)).unwrap();
        std::fs::write(dest.join("mine.txt"), "not the backup's").unwrap();
        assert!(matches!(
            clear_unfinished(&dest),
            Err(BackupError::DestinationNotEmpty(_))
        ));
        assert!(dest.join("mine.txt").is_file());
    }

    #[test]
    fn restore_refuses_a_damaged_backup_and_creates_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dest = backed_up(root.path());
        let mut db = File::options()
            .append(true)
            .open(metadata_path(&dest))
            .unwrap();
        db.write_all(b"x").unwrap();
        let target = root.path().join("restored");
        let refused = restore(&dest, &target, false, &mut |_| {});
        assert!(
            matches!(&refused, Err(BackupError::Damaged(p)) if p[0].starts_with("doodlebox.sqlite3")),
            "{refused:?}"
        );
        assert!(!target.exists());
        assert!(!verify_dir(&dest).unwrap().is_ok());
    }

    #[test]
    fn restore_into_a_non_empty_directory_needs_force_and_then_keeps_the_old_data_aside() {
        let root = tempfile::tempdir().unwrap();
        let dest = backed_up(root.path());
        let target = root.path().join("restored");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("old.txt"), "old").unwrap();
        let refused = restore(&dest, &target, false, &mut |_| {});
        assert!(matches!(refused, Err(BackupError::DataDirNotEmpty(_))));
        let report = restore(&dest, &target, true, &mut |_| {}).unwrap();
        let aside = report.moved_aside.expect("the old data moved aside");
        assert_eq!(
            std::fs::read_to_string(aside.join("old.txt")).unwrap(),
            "old"
        );
        assert!(verify_dir(&target).unwrap().is_ok());
    }

    #[test]
    fn a_stroke_store_held_by_another_handle_is_a_lock_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let _held = Stores::open(dir.path()).unwrap();
        let refused = Stores::open(dir.path()).err().expect("the lock is held");
        assert!(refused.is_lock_conflict(), "{refused}");
        let other = crate::store::StoreError::Corrupt("x".into());
        assert!(!other.is_lock_conflict());
    }
}
