//! Fault injection for the fault tests: the planned crashes (`--crash-at`) and failed writes
//! (`--fail-writes`) that `tests/process.rs` uses to prove the write path's promises.
//!
//! The plan lives here, not in the store: the group-commit writer only calls
//! [`FaultPlan::crash_at`] at its three crash points and asks [`FaultPlan::fails_next_write`]
//! before its SQLite commit. A server started without the hidden flags holds
//! [`FaultPlan::NONE`], for which both hooks do nothing.
//!
//! It is compiled into every build, not behind a cargo feature: the process tests run the
//! very binary that is packaged (both live in `target/release`), and a second build of the
//! crate with a feature would cost CI as much as the first.

use std::str::FromStr;

/// A point of the durable write path where the process can be made to crash (abort, like
/// `kill -9`), for the fault tests: `--crash-at POINT:N` crashes at POINT in the Nth group
/// commit. Never set in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Before any stroke record of the batch is written.
    BeforeStrokes,
    /// Stroke records written and synced; metadata rows not yet committed.
    AfterStrokes,
    /// Rows committed; nobody answered yet.
    AfterMetadata,
}

/// Where and in which group commit to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPlan {
    pub point: CrashPoint,
    /// 1-based number of the group commit to crash in.
    pub batch: u64,
}

impl FromStr for CrashPlan {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (point, batch) = text.split_once(':').unwrap_or((text, "1"));
        let point = match point {
            "before-strokes" => CrashPoint::BeforeStrokes,
            "after-strokes" => CrashPoint::AfterStrokes,
            "after-metadata" => CrashPoint::AfterMetadata,
            other => {
                return Err(format!(
                    "unknown crash point {other:?} (before-strokes, after-strokes, after-metadata)"
                ))
            }
        };
        let batch = batch
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("bad group-commit number {batch:?}"))?;
        Ok(Self { point, batch })
    }
}

/// The faults planned for one run of the writer. The writer owns its copy and counts the
/// failed writes down in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Abort at this point of this group commit.
    pub crash: Option<CrashPlan>,
    /// Group commits still to fail: their SQLite commit fails (after their stroke records
    /// were synced), as an I/O error would.
    pub fail_writes: u64,
}

impl FaultPlan {
    /// No faults: what production runs with.
    pub const NONE: Self = Self {
        crash: None,
        fail_writes: 0,
    };

    /// Aborts the process when the plan says to crash at `point` in group commit `batch`.
    pub fn crash_at(&self, point: CrashPoint, batch: u64) {
        if self.crash == Some(CrashPlan { point, batch }) {
            eprintln!("doodlebox: crashing on purpose at {point:?} in group commit {batch}");
            std::process::abort();
        }
    }

    /// Whether the next group commit's SQLite commit is to fail.
    pub fn fails_next_write(&self) -> bool {
        self.fail_writes > 0
    }

    /// The error an injected write failure reports.
    pub fn injected_write_error() -> std::io::Error {
        std::io::Error::other("injected write failure (--fail-writes)")
    }

    /// Counts a failed group commit against the planned failures. Every failure counts,
    /// injected or real, so that `--fail-writes N` means "N failures, then recovery".
    pub fn write_failed(&mut self) {
        self.fail_writes = self.fail_writes.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_plan_parses_its_point_and_defaults_to_the_first_group_commit() {
        assert_eq!(
            "after-strokes:5".parse(),
            Ok(CrashPlan {
                point: CrashPoint::AfterStrokes,
                batch: 5
            })
        );
        assert_eq!(
            "before-strokes".parse(),
            Ok(CrashPlan {
                point: CrashPoint::BeforeStrokes,
                batch: 1
            })
        );
        assert!("after-strokes:0".parse::<CrashPlan>().is_err());
        assert!("sideways:1".parse::<CrashPlan>().is_err());
    }

    #[test]
    fn planned_write_failures_count_down_to_none() {
        let mut plan = FaultPlan {
            fail_writes: 2,
            ..FaultPlan::NONE
        };
        assert!(plan.fails_next_write());
        plan.write_failed();
        plan.write_failed();
        assert!(!plan.fails_next_write());
        plan.write_failed();
        assert_eq!(plan, FaultPlan::NONE);
    }
}
