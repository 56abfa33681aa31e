//! Retries of idempotent store operations that met a busy or locked SQLite database, with
//! capped exponential backoff and full jitter.
//!
//! Only for operations that may safely run twice (reads, purges, "set to this value"
//! updates), and never inside the group-commit writer: a drawing's write fails fast and
//! the circuit breaker ([`super::breaker`]) decides what happens next. Every other error is
//! returned at once: retrying a full disk or a corrupt file only delays the answer.

use std::time::Duration;

use rand::Rng;
use rusqlite::ErrorCode;

use super::StoreError;

/// Attempts in all, the first included.
const MAX_ATTEMPTS: u32 = 5;
/// The backoff before the second attempt; it doubles for each later one.
const BASE_DELAY: Duration = Duration::from_millis(20);
/// The longest backoff between two attempts.
const MAX_DELAY: Duration = Duration::from_millis(500);

/// Whether an error is worth another try: SQLite saying "busy" or "locked"; PostgreSQL
/// reporting a serialization failure or deadlock, a lost connection, or no free connection
/// in time (a failover or a restart of the database looks like this for a moment).
pub fn is_transient(error: &StoreError) -> bool {
    use ::postgres::error::SqlState;
    match error {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
            matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        }
        StoreError::Postgres(e) => {
            e.is_closed()
                || matches!(
                    e.code(),
                    Some(&SqlState::T_R_SERIALIZATION_FAILURE)
                        | Some(&SqlState::T_R_DEADLOCK_DETECTED)
                        | Some(&SqlState::ADMIN_SHUTDOWN)
                        | Some(&SqlState::CANNOT_CONNECT_NOW)
                )
        }
        StoreError::Pool(_) => true,
        _ => false,
    }
}

/// The longest wait before attempt `attempt + 1` (1-based `attempt`): the base doubled per
/// attempt, capped. The actual wait is drawn uniformly below it (full jitter), so that
/// callers who failed together do not retry together.
pub fn backoff_cap(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    (BASE_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

/// Runs `operation`, retrying it while it fails with a busy or locked database, up to
/// [`MAX_ATTEMPTS`] attempts. Blocks (sleeps) between attempts: call it off the async runtime.
pub fn retry_idempotent<T>(
    mut operation: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    retry_with(&mut operation, std::thread::sleep)
}

fn retry_with<T>(
    operation: &mut impl FnMut() -> Result<T, StoreError>,
    mut sleep: impl FnMut(Duration),
) -> Result<T, StoreError> {
    let mut attempt = 1;
    loop {
        match operation() {
            Err(e) if attempt < MAX_ATTEMPTS && is_transient(&e) => {
                let cap = backoff_cap(attempt);
                let delay = rand::rng().random_range(Duration::ZERO..=cap);
                tracing::debug!(attempt, ?delay, error = %e, "database busy; retrying");
                sleep(delay);
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        ))
    }

    #[test]
    fn the_backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let caps: Vec<u128> = (1..=7).map(|a| backoff_cap(a).as_millis()).collect();
        assert_eq!(caps, [20, 40, 80, 160, 320, 500, 500]);
    }

    #[test]
    fn a_busy_database_is_retried_with_jittered_waits_under_the_cap_until_it_answers() {
        let mut calls = 0;
        let mut waits = Vec::new();
        let result = retry_with(
            &mut || {
                calls += 1;
                if calls < 3 {
                    Err(busy())
                } else {
                    Ok(calls)
                }
            },
            |d| waits.push(d),
        );
        assert_eq!(result.unwrap(), 3);
        assert_eq!(waits.len(), 2);
        for (i, wait) in waits.iter().enumerate() {
            assert!(*wait <= backoff_cap(i as u32 + 1), "{waits:?}");
        }
    }

    #[test]
    fn retries_stop_after_the_last_attempt_and_return_the_busy_error() {
        let mut calls = 0;
        let result: Result<(), _> = retry_with(
            &mut || {
                calls += 1;
                Err(busy())
            },
            |_| {},
        );
        assert!(is_transient(&result.unwrap_err()));
        assert_eq!(calls, MAX_ATTEMPTS);
    }

    #[test]
    fn other_errors_are_not_retried() {
        let mut calls = 0;
        let result: Result<(), _> = retry_with(
            &mut || {
                calls += 1;
                Err(StoreError::Corrupt("bad".into()))
            },
            |_| {},
        );
        assert!(matches!(result, Err(StoreError::Corrupt(_))));
        assert_eq!(calls, 1);
    }
}
