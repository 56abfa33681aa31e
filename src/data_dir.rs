//! The data directory's fixed layout, named in one place: every path inside it is built
//! here, so that a file's name is spelt once and a reader finds the whole layout at a glance.
//!
//! ```text
//! <data>/
//!   strokes/             the stroke store (sled): one record per drawing
//!   doodlebox.sqlite3    the metadata store (SQLite, WAL: -wal and -shm beside it)
//!   models/<version>/    model artifacts, one folder per version
//!   jobs/job-<id>/       a training job's work: checkpoints, the dataset's ids
//!   control.json         how commands on this machine reach the running server
//!   reserve.bin          the emergency disk reserve, released to start on a full disk
//!   backups/<name>/      backups asked for over HTTP (unless `--backup-dir` names another)
//! ```
//!
//! A backup folder mirrors the parts it copies (`doodlebox.sqlite3`, `models/`), so the same
//! names serve it: `DataDir::new(backup_folder).metadata()`.

use std::path::{Path, PathBuf};

/// The stroke store's folder.
pub const STROKES_DIR: &str = "strokes";
/// The metadata database's file.
pub const METADATA_FILE: &str = "doodlebox.sqlite3";
/// The folder of model versions.
pub const MODELS_DIR: &str = "models";
/// The folder of training jobs' work.
pub const JOBS_DIR: &str = "jobs";
/// The running server's control file (see [`crate::control`]).
pub const CONTROL_FILE: &str = "control.json";
/// The emergency disk reserve (see [`crate::store::disk`]).
pub const RESERVE_FILE: &str = "reserve.bin";
/// The folder backups asked for over HTTP go into by default.
pub const BACKUPS_DIR: &str = "backups";

/// A data directory: the root of the layout above. Cheap to build from a path; it checks
/// nothing and creates nothing, so commands can name paths before deciding to touch them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    /// The directory the layout is rooted at, as the user gave it.
    root: PathBuf,
}

impl DataDir {
    /// The layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The stroke store's folder (sled admits one process at a time).
    pub fn strokes(&self) -> PathBuf {
        self.root.join(STROKES_DIR)
    }

    /// The metadata database (SQLite admits several processes, so commands that touch only
    /// metadata open it directly, even while a server runs).
    pub fn metadata(&self) -> PathBuf {
        self.root.join(METADATA_FILE)
    }

    /// The folder of model versions.
    pub fn models(&self) -> PathBuf {
        self.root.join(MODELS_DIR)
    }

    /// One model version's folder.
    pub fn model(&self, version: &str) -> PathBuf {
        self.models().join(version)
    }

    /// The folder of training jobs' work.
    pub fn jobs(&self) -> PathBuf {
        self.root.join(JOBS_DIR)
    }

    /// `jobs/uploads/`: imports uploaded over HTTP wait here for their job.
    pub fn uploads(&self) -> PathBuf {
        self.jobs().join("uploads")
    }

    /// The running server's control file.
    pub fn control(&self) -> PathBuf {
        self.root.join(CONTROL_FILE)
    }

    /// The emergency disk reserve.
    pub fn reserve(&self) -> PathBuf {
        self.root.join(RESERVE_FILE)
    }

    /// Where backups asked for over HTTP go when no `--backup-dir` is given: a request
    /// never names a path on the server (see [`crate::service::backup::http_destination`]).
    pub fn backups(&self) -> PathBuf {
        self.root.join(BACKUPS_DIR)
    }

    /// Bytes the whole directory takes on disk (the stats page's storage size).
    pub fn size(&self) -> std::io::Result<u64> {
        dir_size(&self.root)
    }
}

/// Bytes the regular files under `dir` take, recursively. The one walk that sizes a folder.
pub fn dir_size(dir: &Path) -> std::io::Result<u64> {
    dir_size_except(dir, None)
}

/// Bytes the regular files under `dir` take, recursively, leaving out the folder `skip`
/// (the stats page counts backups apart from the data they copy).
pub fn dir_size_except(dir: &Path, skip: Option<&Path>) -> std::io::Result<u64> {
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                let path = entry.path();
                if Some(path.as_path()) != skip {
                    pending.push(path);
                }
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_of_the_layout_sits_directly_in_the_data_directory() {
        let data = DataDir::new("/srv/doodlebox");
        for path in [
            data.strokes(),
            data.metadata(),
            data.models(),
            data.jobs(),
            data.control(),
            data.reserve(),
        ] {
            assert_eq!(path.parent(), Some(data.root()));
        }
        assert_eq!(data.model("v3"), PathBuf::from("/srv/doodlebox/models/v3"));
    }

    #[test]
    fn the_size_counts_files_in_nested_folders() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        std::fs::create_dir_all(data.model("v1")).unwrap();
        std::fs::write(data.metadata(), [0u8; 10]).unwrap();
        std::fs::write(data.model("v1").join("weights"), [0u8; 32]).unwrap();
        assert_eq!(data.size().unwrap(), 42);
    }
}
