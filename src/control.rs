//! The running server's control file: how a command on this machine (`doodlebox import`,
//! `doodlebox models activate`, ...) finds the server that holds the data directory and
//! proves that it may act as an admin.
//!
//! The stroke store admits one process, so a command that writes drawings while the server
//! runs must go through the server. At start the server writes `control.json` into the data
//! directory, readable by its owner only: the loopback URL it answers on and a random token
//! that admin routes accept as `Authorization: Bearer <token>`. Whoever can read the data
//! directory can change the data anyway, so the token grants nothing new. The file is
//! removed on a clean stop; after a crash it is stale, which a command notices when the
//! connection is refused (and the next start replaces it).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data_dir::DataDir;

pub use crate::data_dir::CONTROL_FILE;

/// What the control file holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Control {
    /// Where a command on this machine reaches the server, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The admin bearer token for this run of the server.
    pub token: String,
    /// The server's process id, for messages.
    pub pid: u32,
    /// Where the server writes the backups asked for over HTTP: answers name only a backup's
    /// folder, never a path, so a command on this machine finds the folder here.
    #[serde(default)]
    pub backup_root: Option<PathBuf>,
}

impl Control {
    /// A fresh token for a server bound to `bound`, writing HTTP backups into `backup_root`.
    pub fn new(bound: SocketAddr, backup_root: Option<PathBuf>) -> Self {
        let ip = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let mut token = [0u8; 32];
        fill_random(&mut token);
        Self {
            url: format!("http://{}", SocketAddr::new(ip, bound.port())),
            token: token.iter().map(|b| format!("{b:02x}")).collect(),
            pid: std::process::id(),
            backup_root,
        }
    }

    /// Writes the file atomically (temporary file, then rename), owner-only.
    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        let path = control_path(data_dir);
        let temporary = path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)
    }

    /// Reads the file, `None` when no server has written one.
    pub fn read(data_dir: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read(control_path(data_dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the file if it is still this server's (a newer server may have replaced it).
    pub fn remove_if_ours(&self, data_dir: &Path) {
        if Self::read(data_dir).ok().flatten().as_ref() == Some(self) {
            let _ = std::fs::remove_file(control_path(data_dir));
        }
    }
}

fn control_path(data_dir: &Path) -> PathBuf {
    DataDir::new(data_dir).control()
}

/// Fills `buf` from the operating system's generator (UUIDv4s are drawn from it).
pub fn fill_random(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(16) {
        let random = uuid::Uuid::new_v4();
        chunk.copy_from_slice(&random.as_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_control_file_reads_back_and_points_at_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let control = Control::new("0.0.0.0:8080".parse().unwrap(), None);
        assert_eq!(control.url, "http://127.0.0.1:8080");
        assert_eq!(control.token.len(), 64);
        control.write(dir.path()).unwrap();
        assert_eq!(Control::read(dir.path()).unwrap(), Some(control.clone()));
        control.remove_if_ours(dir.path());
        assert_eq!(Control::read(dir.path()).unwrap(), None);
    }

    #[test]
    fn a_newer_servers_control_file_is_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let old = Control::new("127.0.0.1:1".parse().unwrap(), None);
        let new = Control::new("127.0.0.1:2".parse().unwrap(), None);
        new.write(dir.path()).unwrap();
        old.remove_if_ours(dir.path());
        assert_eq!(Control::read(dir.path()).unwrap(), Some(new));
    }
}
