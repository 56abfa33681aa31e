//! Rate limits: token buckets keyed by who is asking (a player session, a client address, an
//! API key), so that one noisy client cannot starve a classroom.
//!
//! A bucket holds up to `burst` tokens and refills at `per_sec`; a request takes one token or
//! is refused with the time until one is back (the `Retry-After` a 429 carries). Per-address
//! limits are generous because a whole classroom can sit behind one NAT address; the per-session
//! limits are what stop one player.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::PlayerId;

/// Buckets kept before idle (full) ones are swept out.
const SWEEP_ABOVE: usize = 50_000;

/// How fast a bucket refills and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: f64,
}

impl Rate {
    pub const fn new(per_sec: f64, burst: f64) -> Self {
        Self { per_sec, burst }
    }

    /// An API key's limit: `per_min` requests a minute, bursts of up to a quarter of that.
    pub fn per_minute(per_min: u32) -> Self {
        let per_min = f64::from(per_min.max(1));
        Self::new(per_min / 60.0, (per_min / 4.0).max(1.0))
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets for one kind of key.
#[derive(Debug)]
pub struct Limiter<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K> Default for Limiter<K> {
    fn default() -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// Takes a token for `key`, or says how long until one is there.
    pub fn check(&self, key: &K, rate: Rate, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > SWEEP_ABOVE {
            buckets.retain(|_, b| refilled(*b, rate, now) < rate.burst);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        let tokens = refilled(*bucket, rate, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / rate.per_sec))
        }
    }
}

fn refilled(bucket: Bucket, rate: Rate, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * rate.per_sec).min(rate.burst)
}

/// The configured limits (see `--rate-limit`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// `false` turns every limit off (benchmarks, load tests).
    pub enabled: bool,
    pub submit_per_session: Rate,
    pub submit_per_address: Rate,
    pub classify_per_session: Rate,
    pub classify_per_address: Rate,
}

impl RateLimits {
    /// Defaults for a classroom: a player draws a picture every few seconds and the live
    /// guess asks a few times a second while they draw; thirty players may share an address.
    pub const DEFAULT: Self = Self {
        enabled: true,
        submit_per_session: Rate::new(1.0, 20.0),
        submit_per_address: Rate::new(60.0, 300.0),
        classify_per_session: Rate::new(10.0, 30.0),
        classify_per_address: Rate::new(300.0, 600.0),
    };

    pub const OFF: Self = Self {
        enabled: false,
        ..Self::DEFAULT
    };
}

/// Every limiter the server keeps.
#[derive(Debug)]
pub struct Limiters {
    pub config: RateLimits,
    submit_sessions: Limiter<PlayerId>,
    submit_addresses: Limiter<IpAddr>,
    classify_sessions: Limiter<PlayerId>,
    classify_addresses: Limiter<IpAddr>,
    keys: Limiter<i64>,
    login_addresses: Limiter<IpAddr>,
    login_names: Limiter<String>,
}

/// Admin sign-in attempts per client address: bursts of 10, then one every 6 s. Always on,
/// whatever `--rate-limit` says: this limit is what makes guessing passwords slow.
const LOGIN_PER_ADDRESS: Rate = Rate::new(1.0 / 6.0, 10.0);
/// Sign-in attempts per username, from anywhere: bursts of 10, then one every 10 s.
const LOGIN_PER_USERNAME: Rate = Rate::new(0.1, 10.0);

/// Which limit refused a request, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    pub scope: &'static str,
    pub retry_after: Duration,
}

impl Limited {
    /// Counts this refusal in `/metrics` (`rate_limited` by scope), wherever it happened.
    pub fn count(&self, metrics: &crate::telemetry::Metrics) {
        metrics
            .rate_limited
            .get_or_create(&crate::telemetry::ScopeLabels {
                scope: self.scope.to_owned(),
            })
            .inc();
    }
}

impl Limiters {
    pub fn new(config: RateLimits) -> Self {
        Self {
            config,
            submit_sessions: Limiter::default(),
            submit_addresses: Limiter::default(),
            classify_sessions: Limiter::default(),
            classify_addresses: Limiter::default(),
            keys: Limiter::default(),
            login_addresses: Limiter::default(),
            login_names: Limiter::default(),
        }
    }

    /// An admin sign-in attempt for `username` from an address.
    pub fn login(&self, address: Option<IpAddr>, username: &str) -> Result<(), Limited> {
        let now = Instant::now();
        if let Some(ip) = address {
            check(
                &self.login_addresses,
                &ip,
                LOGIN_PER_ADDRESS,
                now,
                "address",
            )?;
        }
        let name = username.trim().to_lowercase();
        check(
            &self.login_names,
            &name,
            LOGIN_PER_USERNAME,
            now,
            "username",
        )
    }

    /// A drawing submission by a player session from an address.
    pub fn submit(&self, player: PlayerId, address: Option<IpAddr>) -> Result<(), Limited> {
        if !self.config.enabled {
            return Ok(());
        }
        let now = Instant::now();
        check(
            &self.submit_sessions,
            &player,
            self.config.submit_per_session,
            now,
            "session",
        )?;
        match address {
            Some(ip) => check(
                &self.submit_addresses,
                &ip,
                self.config.submit_per_address,
                now,
                "address",
            ),
            None => Ok(()),
        }
    }

    /// A classify call on a player session (the game's live guess) from an address.
    pub fn classify_session(
        &self,
        player: PlayerId,
        address: Option<IpAddr>,
    ) -> Result<(), Limited> {
        if !self.config.enabled {
            return Ok(());
        }
        let now = Instant::now();
        check(
            &self.classify_sessions,
            &player,
            self.config.classify_per_session,
            now,
            "session",
        )?;
        match address {
            Some(ip) => check(
                &self.classify_addresses,
                &ip,
                self.config.classify_per_address,
                now,
                "address",
            ),
            None => Ok(()),
        }
    }

    /// A classify call with an API key, at that key's own rate.
    pub fn classify_key(&self, key_id: i64, rate_per_min: u32) -> Result<(), Limited> {
        if !self.config.enabled {
            return Ok(());
        }
        check(
            &self.keys,
            &key_id,
            Rate::per_minute(rate_per_min),
            Instant::now(),
            "api_key",
        )
    }
}

fn check<K: Hash + Eq + Clone>(
    limiter: &Limiter<K>,
    key: &K,
    rate: Rate,
    now: Instant,
    scope: &'static str,
) -> Result<(), Limited> {
    limiter
        .check(key, rate, now)
        .map_err(|retry_after| Limited { scope, retry_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_until_it_refills() {
        let limiter = Limiter::default();
        let rate = Rate::new(2.0, 3.0);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(&"a", rate, start).is_ok());
        }
        let wait = limiter.check(&"a", rate, start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // Another key has its own bucket.
        assert!(limiter.check(&"b", rate, start).is_ok());
        // Half a second later one token is back, and only one.
        let later = start + Duration::from_millis(500);
        assert!(limiter.check(&"a", rate, later).is_ok());
        assert!(limiter.check(&"a", rate, later).is_err());
    }

    #[test]
    fn a_refilled_bucket_never_holds_more_than_its_burst() {
        let limiter = Limiter::default();
        let rate = Rate::new(100.0, 2.0);
        let start = Instant::now();
        assert!(limiter.check(&1, rate, start).is_ok());
        let much_later = start + Duration::from_secs(3600);
        assert!(limiter.check(&1, rate, much_later).is_ok());
        assert!(limiter.check(&1, rate, much_later).is_ok());
        assert!(limiter.check(&1, rate, much_later).is_err());
    }

    #[test]
    fn players_behind_one_address_are_limited_one_by_one() {
        let limits = Limiters::new(RateLimits::DEFAULT);
        let classroom: IpAddr = "192.168.1.1".parse().unwrap();
        // Thirty players send eight drawings each at once from one address: nobody is refused.
        let players: Vec<PlayerId> = (0..30).map(|_| PlayerId::random()).collect();
        for player in &players {
            for _ in 0..8 {
                assert_eq!(limits.submit(*player, Some(classroom)), Ok(()));
            }
        }
        // One player who keeps going runs out of their own burst; the others still get in.
        let burst = RateLimits::DEFAULT.submit_per_session.burst as usize;
        for _ in 8..burst {
            assert_eq!(limits.submit(players[0], Some(classroom)), Ok(()));
        }
        let refused = limits.submit(players[0], Some(classroom)).unwrap_err();
        assert_eq!(refused.scope, "session");
        assert_eq!(limits.submit(players[1], Some(classroom)), Ok(()));
    }

    #[test]
    fn off_means_off() {
        let limits = Limiters::new(RateLimits::OFF);
        let player = PlayerId::random();
        for _ in 0..10_000 {
            assert!(limits.submit(player, None).is_ok());
            assert!(limits.classify_key(1, 1).is_ok());
        }
    }

    #[test]
    fn a_key_rate_is_per_minute_with_a_quarter_minute_burst() {
        assert_eq!(Rate::per_minute(600), Rate::new(10.0, 150.0));
        assert_eq!(Rate::per_minute(1), Rate::new(1.0 / 60.0, 1.0));
    }
}
