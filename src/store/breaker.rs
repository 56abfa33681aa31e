//! The circuit breaker on the storage write path: a pure state machine, told the time by its
//! caller so that tests can drive it with a made-up clock.
//!
//! Closed, every batch is written. After [`FAILURE_THRESHOLD`] consecutive failed group
//! commits (I/O errors from sled or SQLite) it opens: submissions are refused at once with
//! `503` and a `Retry-After`, without touching the disk, for a cool-down. When the cool-down
//! has passed it goes half-open and lets one probe batch through: success closes it, failure
//! opens it again with a cool-down twice as long, up to [`MAX_COOLDOWN`]. A disk that fails
//! for good thus costs one attempt every half minute instead of one per request.

use std::time::{Duration, Instant};

/// Consecutive failed group commits that open the breaker.
pub const FAILURE_THRESHOLD: u32 = 3;
/// The first cool-down after the breaker opens.
pub const BASE_COOLDOWN: Duration = Duration::from_secs(1);
/// The longest cool-down, however often the probes fail.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(30);

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Writes go through.
    Closed,
    /// Writes are refused until the instant.
    Open { until: Instant },
    /// The cool-down has passed; the next batch is the probe.
    HalfOpen,
}

impl BreakerState {
    /// The state's name for `/readyz` and `/metrics`: `closed`, `open` or `half_open`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// Whether a write may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead (closed, or the half-open probe).
    Allow,
    /// Refused; the breaker is open for this much longer.
    Refuse { retry_after: Duration },
}

/// The breaker. Not synchronised: the owner wraps it in a lock.
#[derive(Debug, Clone)]
pub struct Breaker {
    state: BreakerState,
    /// Consecutive failures while closed.
    failures: u32,
    /// The cool-down the next opening will use.
    cooldown: Duration,
    /// How often the breaker has opened since start (a counter for `/metrics`).
    opened: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new()
    }
}

impl Breaker {
    /// A closed breaker.
    pub fn new() -> Self {
        Self {
            state: BreakerState::Closed,
            failures: 0,
            cooldown: BASE_COOLDOWN,
            opened: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// How often the breaker has opened.
    pub fn times_opened(&self) -> u64 {
        self.opened
    }

    /// Asks whether a write may go ahead at `now`. An open breaker whose cool-down has passed
    /// turns half-open and admits.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            BreakerState::Closed | BreakerState::HalfOpen => Admission::Allow,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen;
                Admission::Allow
            }
            BreakerState::Open { until } => Admission::Refuse {
                retry_after: until - now,
            },
        }
    }

    /// Like [`Breaker::admit`] but changes nothing: for the fast refusal at submit, which
    /// must not turn the breaker half-open on behalf of a batch that has not started.
    pub fn would_refuse(&self, now: Instant) -> Option<Duration> {
        match self.state {
            BreakerState::Open { until } if now < until => Some(until - now),
            _ => None,
        }
    }

    /// A write succeeded: close, and forget past failures.
    pub fn record_success(&mut self) {
        self.state = BreakerState::Closed;
        self.failures = 0;
        self.cooldown = BASE_COOLDOWN;
    }

    /// A write failed at `now`.
    pub fn record_failure(&mut self, now: Instant) {
        match self.state {
            BreakerState::Closed => {
                self.failures += 1;
                if self.failures >= FAILURE_THRESHOLD {
                    self.open(now);
                }
            }
            BreakerState::HalfOpen => {
                self.cooldown = (self.cooldown * 2).min(MAX_COOLDOWN);
                self.open(now);
            }
            // A batch admitted before the breaker opened failed too: already open.
            BreakerState::Open { .. } => {}
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open {
            until: now + self.cooldown,
        };
        self.failures = 0;
        self.opened += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(breaker: &mut Breaker, now: Instant, times: u32) {
        for _ in 0..times {
            assert_eq!(breaker.admit(now), Admission::Allow);
            breaker.record_failure(now);
        }
    }

    #[test]
    fn the_breaker_stays_closed_below_the_threshold_and_a_success_resets_the_count() {
        let now = Instant::now();
        let mut breaker = Breaker::new();
        fail(&mut breaker, now, FAILURE_THRESHOLD - 1);
        breaker.record_success();
        fail(&mut breaker, now, FAILURE_THRESHOLD - 1);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.times_opened(), 0);
    }

    #[test]
    fn consecutive_failures_open_the_breaker_which_refuses_until_the_cooldown_has_passed() {
        let start = Instant::now();
        let mut breaker = Breaker::new();
        fail(&mut breaker, start, FAILURE_THRESHOLD);
        assert_eq!(breaker.state().name(), "open");
        let later = start + BASE_COOLDOWN / 4;
        assert_eq!(
            breaker.would_refuse(later),
            Some(BASE_COOLDOWN - BASE_COOLDOWN / 4)
        );
        assert_eq!(
            breaker.admit(later),
            Admission::Refuse {
                retry_after: BASE_COOLDOWN - BASE_COOLDOWN / 4
            }
        );
        assert_eq!(breaker.state().name(), "open", "a refusal changes nothing");
        assert_eq!(breaker.would_refuse(start + BASE_COOLDOWN), None);
        assert_eq!(breaker.state().name(), "open", "asking changes nothing");
        assert_eq!(breaker.admit(start + BASE_COOLDOWN), Admission::Allow);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
    }

    #[test]
    fn a_successful_probe_closes_the_breaker_and_restores_the_base_cooldown() {
        let start = Instant::now();
        let mut breaker = Breaker::new();
        fail(&mut breaker, start, FAILURE_THRESHOLD);
        let probe = start + BASE_COOLDOWN;
        assert_eq!(breaker.admit(probe), Admission::Allow);
        breaker.record_failure(probe);
        let probe = probe + BASE_COOLDOWN * 2;
        assert_eq!(breaker.admit(probe), Admission::Allow);
        breaker.record_success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        fail(&mut breaker, probe, FAILURE_THRESHOLD);
        assert_eq!(
            breaker.state(),
            BreakerState::Open {
                until: probe + BASE_COOLDOWN
            }
        );
        assert_eq!(breaker.times_opened(), 3);
    }

    #[test]
    fn each_failed_probe_doubles_the_cooldown_up_to_the_cap() {
        let mut now = Instant::now();
        let mut breaker = Breaker::new();
        fail(&mut breaker, now, FAILURE_THRESHOLD);
        let mut cooldowns = Vec::new();
        for _ in 0..8 {
            let BreakerState::Open { until } = breaker.state() else {
                panic!("expected open, got {:?}", breaker.state());
            };
            cooldowns.push(until - now);
            now = until;
            assert_eq!(breaker.admit(now), Admission::Allow);
            breaker.record_failure(now);
        }
        let secs: Vec<u64> = cooldowns.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn failures_of_batches_admitted_before_the_breaker_opened_do_not_extend_the_cooldown() {
        let start = Instant::now();
        let mut breaker = Breaker::new();
        fail(&mut breaker, start, FAILURE_THRESHOLD);
        breaker.record_failure(start + BASE_COOLDOWN / 2);
        assert_eq!(
            breaker.state(),
            BreakerState::Open {
                until: start + BASE_COOLDOWN
            }
        );
    }
}
