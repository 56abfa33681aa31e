//! The free-space watch on the data directory's file system: refuses submissions while the
//! disk is nearly full, before sled or SQLite ever meet `ENOSPC`.
//!
//! A thread samples free space every [`SAMPLE_EVERY`], and the group-commit writer asks for
//! a fresh sample after each batch. Below the watermark the state turns `low` and
//! `Ingest::submit` answers `507` at once; it turns `ok` again only once free space is back
//! above the watermark plus a margin ([`Watermark::resume_above`]), so a disk hovering at
//! the line does not flap. Nothing needs a restart: the next sample above the margin lets
//! writes through again.
//!
//! The stores cannot open on a disk that is completely full (found on a full tmpfs): sled
//! pads its last log segment on recovery, up to a segment (8 MiB), and SQLite needs room
//! for its `-wal` and `-shm` files. So while there is room, the watch keeps an emergency
//! reserve file of [`RESERVE_BYTES`] in the data directory, and a start on a low disk
//! deletes it first: the stores open, the server comes up read-only (degraded) instead of
//! crash-looping, and the reserve is written again once space has returned.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};
use serde::Serialize;

use crate::data_dir::DataDir;

/// How often the watch samples free space.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// The default watermark's cap: never ask for more than this much free space.
pub const DEFAULT_WATERMARK_CAP: u64 = 256 * 1024 * 1024;
/// The default watermark as a share of the file system's size (under the cap), so that a
/// small disk is not declared full while it is mostly empty.
pub const DEFAULT_WATERMARK_PERCENT: u64 = 5;
/// Size of the emergency reserve: one sled segment plus room for SQLite and the control file.
pub const RESERVE_BYTES: u64 = 12 * 1024 * 1024;
pub use crate::data_dir::RESERVE_FILE;
/// The hysteresis margin as a share of the watermark: writes resume at watermark + 1/8.
const RESUME_MARGIN_DIVISOR: u64 = 8;
/// The smallest hysteresis margin.
const MIN_RESUME_MARGIN: u64 = 1024 * 1024;

/// The free-space line below which submissions are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    /// Below this many free bytes the disk is `low`.
    pub low_below: u64,
}

impl Watermark {
    /// An explicit watermark in bytes.
    pub fn bytes(low_below: u64) -> Self {
        Self { low_below }
    }

    /// The default for a file system of `total` bytes: 5 % of it, at most 256 MiB.
    pub fn default_for(total: u64) -> Self {
        Self::bytes((total / 100 * DEFAULT_WATERMARK_PERCENT).min(DEFAULT_WATERMARK_CAP))
    }

    /// Free bytes a `low` disk needs before writes resume.
    pub fn resume_above(&self) -> u64 {
        let margin = (self.low_below / RESUME_MARGIN_DIVISOR).max(MIN_RESUME_MARGIN);
        self.low_below.saturating_add(margin)
    }

    /// Whether the disk is low after a sample of `free` bytes, given whether it was.
    pub fn is_low(&self, was_low: bool, free: u64) -> bool {
        if was_low {
            free < self.resume_above()
        } else {
            free < self.low_below
        }
    }
}

/// The disk's state as `/readyz` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DiskStatus {
    /// `"ok"` or `"low"`.
    pub state: &'static str,
    pub free_bytes: u64,
    pub watermark_bytes: u64,
}

/// What the sampling thread and the writer share.
struct Shared {
    dir: PathBuf,
    watermark: Watermark,
    free: AtomicU64,
    low: AtomicBool,
    /// Serialises samples so that two samplers cannot apply hysteresis out of order.
    sampling: Mutex<()>,
    /// Whether the reserve file exists (the sampler writes it when it is missing).
    reserve_present: AtomicBool,
}

impl Shared {
    fn sample(&self) {
        let _one_at_a_time = self.sampling.lock().unwrap_or_else(|p| p.into_inner());
        match fs4::available_space(&self.dir) {
            Ok(free) => {
                let was_low = self.low.load(Ordering::Acquire);
                let low = self.watermark.is_low(was_low, free);
                self.free.store(free, Ordering::Release);
                self.low.store(low, Ordering::Release);
                let room = self.watermark.resume_above().saturating_add(RESERVE_BYTES);
                if !self.reserve_present.load(Ordering::Acquire) && free >= room {
                    match write_reserve(&self.dir) {
                        Ok(()) => self.reserve_present.store(true, Ordering::Release),
                        Err(e) => tracing::warn!(error = %e, "could not write the disk reserve"),
                    }
                }
                if low != was_low {
                    if low {
                        tracing::warn!(
                            free_bytes = free,
                            watermark_bytes = self.watermark.low_below,
                            "the disk is nearly full: refusing new drawings until space returns"
                        );
                    } else {
                        tracing::info!(free_bytes = free, "disk space is back: accepting drawings");
                    }
                }
            }
            // Keep the last known state: a failed statvfs says nothing about free space.
            Err(e) => tracing::warn!(error = %e, "could not read free disk space"),
        }
    }
}

/// The free-space watch. Dropping it stops its thread.
pub struct DiskWatch {
    shared: Arc<Shared>,
    /// Dropped (disconnected) to stop the sampling thread.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DiskWatch {
    /// Takes a first sample of `dir`'s file system and starts sampling every
    /// [`SAMPLE_EVERY`]. `watermark` `None` takes [`Watermark::default_for`] the file system.
    pub fn start(dir: &Path, watermark: Option<Watermark>) -> std::io::Result<Self> {
        let watermark = match watermark {
            Some(w) => w,
            None => Watermark::default_for(fs4::total_space(dir)?),
        };
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            watermark,
            free: AtomicU64::new(0),
            low: AtomicBool::new(false),
            sampling: Mutex::new(()),
            reserve_present: AtomicBool::new(DataDir::new(dir).reserve().exists()),
        });
        let free = fs4::available_space(dir)?;
        shared.free.store(free, Ordering::Release);
        shared
            .low
            .store(watermark.is_low(false, free), Ordering::Release);
        let (stop, stopped) = bounded::<()>(0);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("disk-watch".into())
            .spawn(move || {
                // Wakes every SAMPLE_EVERY until the sender is dropped.
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(SAMPLE_EVERY)
                {
                    thread_shared.sample();
                }
            })?;
        Ok(Self {
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Samples now (the writer calls this after each batch).
    pub fn sample(&self) {
        self.shared.sample();
    }

    /// Deletes the emergency reserve so that the stores can open on a full disk; returns the
    /// bytes freed (0 when there was none). The sampler writes it again once there is room.
    pub fn release_reserve(&self) -> std::io::Result<u64> {
        let path = DataDir::new(&self.shared.dir).reserve();
        let freed = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        std::fs::remove_file(&path)?;
        self.shared.reserve_present.store(false, Ordering::Release);
        tracing::warn!(
            freed_bytes = freed,
            "released the emergency disk reserve so that the stores can open"
        );
        Ok(freed)
    }

    /// Whether submissions are to be refused for lack of space.
    pub fn is_low(&self) -> bool {
        self.shared.low.load(Ordering::Acquire)
    }

    /// The state as of the last sample.
    pub fn status(&self) -> DiskStatus {
        DiskStatus {
            state: if self.is_low() { "low" } else { "ok" },
            free_bytes: self.shared.free.load(Ordering::Acquire),
            watermark_bytes: self.shared.watermark.low_below,
        }
    }
}

/// Writes the reserve file: real blocks (zeros, not a sparse file), synced, then renamed
/// into place so that a crash never leaves a short reserve behind.
fn write_reserve(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = dir.join(format!("{RESERVE_FILE}.tmp"));
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..RESERVE_BYTES / chunk.len() as u64 {
            file.write_all(&chunk)?;
        }
        file.sync_all()?;
        std::fs::rename(&temporary, DataDir::new(dir).reserve())?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

impl Drop for DiskWatch {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn the_disk_turns_low_below_the_watermark_and_ok_only_above_the_margin() {
        let watermark = Watermark::bytes(64 * MIB);
        assert_eq!(watermark.resume_above(), 72 * MIB);
        let mut low = false;
        let mut states = Vec::new();
        for free in [100, 65, 63, 65, 70, 71, 72, 71, 64, 63] {
            low = watermark.is_low(low, free * MIB);
            states.push(low);
        }
        assert_eq!(
            states,
            [false, false, true, true, true, true, false, false, false, true]
        );
    }

    #[test]
    fn a_tiny_watermark_still_has_a_margin_of_one_mebibyte() {
        let watermark = Watermark::bytes(100_000);
        assert_eq!(watermark.resume_above(), 100_000 + MIB);
        assert!(watermark.is_low(true, 100_000 + MIB - 1));
        assert!(!watermark.is_low(true, 100_000 + MIB));
    }

    #[test]
    fn the_default_watermark_is_five_percent_of_the_disk_capped_at_256_mib() {
        assert_eq!(
            Watermark::default_for(64 * MIB).low_below,
            64 * MIB / 100 * 5
        );
        assert_eq!(Watermark::default_for(1 << 40).low_below, 256 * MIB);
    }

    #[test]
    fn the_watch_writes_the_reserve_when_there_is_room_and_releases_it_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let watch = DiskWatch::start(dir.path(), Some(Watermark::bytes(0))).unwrap();
        watch.sample();
        let reserve = dir.path().join(RESERVE_FILE);
        assert_eq!(std::fs::metadata(&reserve).unwrap().len(), RESERVE_BYTES);
        assert_eq!(watch.release_reserve().unwrap(), RESERVE_BYTES);
        watch.sample();
        assert_eq!(std::fs::metadata(&reserve).unwrap().len(), RESERVE_BYTES);
    }

    #[test]
    fn the_watch_reports_a_huge_watermark_as_low_and_a_zero_one_as_ok() {
        let dir = tempfile::tempdir().unwrap();
        let low = DiskWatch::start(dir.path(), Some(Watermark::bytes(u64::MAX))).unwrap();
        assert!(low.is_low());
        assert_eq!(low.status().state, "low");
        low.sample();
        assert!(
            !dir.path().join(RESERVE_FILE).exists(),
            "no room for a reserve"
        );
        assert_eq!(low.release_reserve().unwrap(), 0);
        let ok = DiskWatch::start(dir.path(), Some(Watermark::bytes(0))).unwrap();
        ok.sample();
        assert!(!ok.is_low());
        assert!(ok.status().free_bytes > 0);
    }
}
