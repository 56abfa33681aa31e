//! The guards around each group commit: the free-space watch and the circuit breaker decide
//! whether a batch may touch the disk, and learn how each batch that did went.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::IngestError;
use crate::fault::FaultPlan;
use crate::store::breaker::{Admission, Breaker};
use crate::store::disk::DiskWatch;

/// What the writer thread checks around each batch.
pub(super) struct Guards {
    /// The free-space watch, when there is one (the server always has one).
    pub(super) disk: Option<Arc<DiskWatch>>,
    /// Shared with the handle, which refuses at once while it is open.
    pub(super) breaker: Arc<Mutex<Breaker>>,
    /// Faults planned for the fault tests; its failed writes count down here.
    pub(super) faults: FaultPlan,
}

/// Whether a batch reached the disk, and how that went (for the breaker).
pub(super) enum Written {
    /// Nothing to write (only duplicates or refusals).
    Nothing,
    Ok,
    Failed,
}

impl Guards {
    /// Whether a batch may be written now: refused on a low disk, or while the breaker is
    /// open (when it is half-open, this batch becomes its probe).
    pub(super) fn admit(&self) -> Result<(), IngestError> {
        if let Some(disk) = self.disk.as_deref().filter(|d| d.is_low()) {
            return Err(disk_full(disk));
        }
        match lock(&self.breaker).admit(Instant::now()) {
            Admission::Allow => Ok(()),
            Admission::Refuse { retry_after } => Err(breaker_open(retry_after)),
        }
    }

    /// Tells the breaker how a batch that reached the disk went.
    pub(super) fn record_outcome(&mut self, written: Written) {
        match written {
            Written::Nothing => {}
            Written::Ok => lock(&self.breaker).record_success(),
            Written::Failed => {
                self.faults.write_failed();
                let mut breaker = lock(&self.breaker);
                breaker.record_failure(Instant::now());
                if let Some(wait) = breaker.would_refuse(Instant::now()) {
                    tracing::error!(
                        cool_down_ms = wait.as_millis() as u64,
                        "storage keeps failing: the circuit breaker is open, refusing drawings"
                    );
                }
            }
        }
    }

    /// Samples free space after a batch, so the watch sees what the batch took.
    pub(super) fn sample_disk(&self) {
        if let Some(disk) = &self.disk {
            disk.sample();
        }
    }
}

/// The breaker's lock; poisoning only means a holder panicked between two plain field
/// writes, which leaves a valid state.
pub(super) fn lock(breaker: &Mutex<Breaker>) -> std::sync::MutexGuard<'_, Breaker> {
    breaker.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn disk_full(disk: &DiskWatch) -> IngestError {
    let status = disk.status();
    IngestError::DiskFull {
        free_bytes: status.free_bytes,
        watermark_bytes: status.watermark_bytes,
    }
}

pub(super) fn breaker_open(wait: std::time::Duration) -> IngestError {
    IngestError::BreakerOpen {
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}
