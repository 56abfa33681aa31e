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

/// Most keys one limiter keeps, whatever keys clients make up: past this, idle (full) buckets
/// are forgotten, then the half touched longest ago (see `bound`).
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
        self.update(key, rate, now, |tokens| {
            if tokens >= 1.0 {
                (tokens - 1.0, Ok(()))
            } else {
                (tokens, Err(wait_for_token(tokens, rate)))
            }
        })
    }

    /// Whether `key` has a token, without taking it; else how long until one is there.
    pub fn peek(&self, key: &K, rate: Rate, now: Instant) -> Result<(), Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let tokens = buckets
            .get(key)
            .map_or(rate.burst, |b| refilled(*b, rate, now));
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(wait_for_token(tokens, rate))
        }
    }

    /// Takes a token for `key` (down to none): what counts against it happened.
    pub fn take(&self, key: &K, rate: Rate, now: Instant) {
        self.update(key, rate, now, |tokens| ((tokens - 1.0).max(0.0), ()));
    }

    /// Refills `key`'s bucket to `now` and sets its tokens to what `change` makes of them,
    /// under one lock; a new key starts full, and the map stays bounded.
    fn update<T>(
        &self,
        key: &K,
        rate: Rate,
        now: Instant,
        change: impl FnOnce(f64) -> (f64, T),
    ) -> T {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SWEEP_ABOVE && !buckets.contains_key(key) {
            bound(&mut buckets, rate, now);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        let (tokens, answer) = change(refilled(*bucket, rate, now));
        *bucket = Bucket { tokens, at: now };
        answer
    }

    /// How many keys are kept (for tests of the bound).
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps a limiter's map bounded whatever keys clients make up: first forgets full buckets
/// (they limit nobody), then, while a flood of fresh keys keeps it full, the half that was
/// touched longest ago.
fn bound<K: Hash + Eq + Clone>(buckets: &mut HashMap<K, Bucket>, rate: Rate, now: Instant) {
    buckets.retain(|_, b| refilled(*b, rate, now) < rate.burst);
    if buckets.len() >= SWEEP_ABOVE {
        let mut times: Vec<Instant> = buckets.values().map(|b| b.at).collect();
        let middle = times.len() / 2;
        let (_, cutoff, _) = times.select_nth_unstable(middle);
        let cutoff = *cutoff;
        buckets.retain(|_, b| b.at > cutoff);
    }
}

/// How long until a bucket holding `tokens` (< 1) has a whole one.
fn wait_for_token(tokens: f64, rate: Rate) -> Duration {
    Duration::from_secs_f64((1.0 - tokens) / rate.per_sec)
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
    login_accounts: Limiter<(Option<IpAddr>, String)>,
    login_names: Limiter<String>,
}

/// Failed admin sign-ins per client address: 10, then one every 6 s. Always on, whatever
/// `--rate-limit` says: this limit is what makes guessing passwords slow. Only failures
/// count, so an admin who types the right password is never held back by it.
const LOGIN_FAILURES_PER_ADDRESS: Rate = Rate::new(1.0 / 6.0, 10.0);
/// Failed sign-ins per address and username: 5, then one every 30 s. The hard block on one
/// account sits here, so that guessing from one address never locks the admin out of
/// another.
const LOGIN_FAILURES_PER_ACCOUNT: Rate = Rate::new(1.0 / 30.0, 5.0);
/// Failed sign-ins per username, from anywhere: past 5, each attempt at that username waits
/// (doubling, up to [`LOGIN_SLOWDOWN_CAP`]) instead of being refused.
const LOGIN_FAILURES_PER_USERNAME: Rate = Rate::new(1.0 / 30.0, 5.0);
/// The first wait once a username's failures pass the burst.
const LOGIN_SLOWDOWN_BASE: Duration = Duration::from_millis(250);
/// The longest wait per attempt.
const LOGIN_SLOWDOWN_CAP: Duration = Duration::from_secs(4);

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
            login_accounts: Limiter::default(),
            login_names: Limiter::default(),
        }
    }

    /// Before an admin sign-in for `username` (already checked to be a possible username)
    /// from an address: refused while that address, or that address for that username, has
    /// failed too often; otherwise how long to wait before checking the password (zero until
    /// the username has failed often from anywhere: slowed down, never blocked).
    pub fn login(&self, address: Option<IpAddr>, username: &str) -> Result<Duration, Limited> {
        let now = Instant::now();
        let limited = |scope| move |retry_after| Limited { scope, retry_after };
        if let Some(ip) = address {
            self.login_addresses
                .peek(&ip, LOGIN_FAILURES_PER_ADDRESS, now)
                .map_err(limited("address"))?;
        }
        let name = username.trim().to_lowercase();
        self.login_accounts
            .peek(&(address, name.clone()), LOGIN_FAILURES_PER_ACCOUNT, now)
            .map_err(limited("address and username"))?;
        Ok(
            match self
                .login_names
                .peek(&name, LOGIN_FAILURES_PER_USERNAME, now)
            {
                Ok(()) => Duration::ZERO,
                Err(until_refilled) => {
                    // Seconds short of a token, in units of one refill: grows with the failures.
                    let over = (until_refilled.as_secs_f64() * LOGIN_FAILURES_PER_USERNAME.per_sec)
                        .ceil()
                        .clamp(1.0, 16.0);
                    LOGIN_SLOWDOWN_BASE
                        .mul_f64(2f64.powf(over - 1.0))
                        .min(LOGIN_SLOWDOWN_CAP)
                }
            },
        )
    }

    /// Counts a failed admin sign-in against the address, the address and username, and the
    /// username.
    pub fn login_failed(&self, address: Option<IpAddr>, username: &str) {
        let now = Instant::now();
        let name = username.trim().to_lowercase();
        if let Some(ip) = address {
            self.login_addresses
                .take(&ip, LOGIN_FAILURES_PER_ADDRESS, now);
        }
        self.login_accounts
            .take(&(address, name.clone()), LOGIN_FAILURES_PER_ACCOUNT, now);
        self.login_names
            .take(&name, LOGIN_FAILURES_PER_USERNAME, now);
    }

    /// A drawing submission by a player session from an address.
    pub fn submit(&self, player: PlayerId, address: Option<IpAddr>) -> Result<(), Limited> {
        self.session_and_address(
            (&self.submit_sessions, self.config.submit_per_session),
            (&self.submit_addresses, self.config.submit_per_address),
            player,
            address,
        )
    }

    /// A classify call on a player session (the game's live guess) from an address.
    pub fn classify_session(
        &self,
        player: PlayerId,
        address: Option<IpAddr>,
    ) -> Result<(), Limited> {
        self.session_and_address(
            (&self.classify_sessions, self.config.classify_per_session),
            (&self.classify_addresses, self.config.classify_per_address),
            player,
            address,
        )
    }

    /// A player's request: the session's limit first, then the address's (when known).
    fn session_and_address(
        &self,
        (sessions, per_session): (&Limiter<PlayerId>, Rate),
        (addresses, per_address): (&Limiter<IpAddr>, Rate),
        player: PlayerId,
        address: Option<IpAddr>,
    ) -> Result<(), Limited> {
        if !self.config.enabled {
            return Ok(());
        }
        let now = Instant::now();
        check(sessions, &player, per_session, now, "session")?;
        match address {
            Some(ip) => check(addresses, &ip, per_address, now, "address"),
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

    #[test]
    fn a_flood_of_made_up_keys_keeps_the_map_bounded() {
        let limiter = Limiter::default();
        let rate = Rate::new(0.01, 5.0);
        let now = Instant::now();
        for i in 0..(SWEEP_ABOVE + 20_000) {
            limiter.take(
                &format!("user{i}"),
                rate,
                now + Duration::from_micros(i as u64),
            );
        }
        assert!(limiter.len() <= SWEEP_ABOVE, "{} keys kept", limiter.len());
    }

    #[test]
    fn a_username_failing_from_many_addresses_is_slowed_down_never_blocked() {
        let limits = Limiters::new(RateLimits::DEFAULT);
        for i in 0..12u8 {
            let address = Some(IpAddr::from([10, 0, 0, i]));
            limits.login_failed(address, "Teacher");
        }
        let other = Some(IpAddr::from([10, 0, 1, 1]));
        let wait = limits.login(other, "teacher").expect("never a hard block");
        assert!(
            wait > Duration::ZERO && wait <= LOGIN_SLOWDOWN_CAP,
            "{wait:?}"
        );
        assert_eq!(
            limits.login(other, "someone-else"),
            Ok(Duration::ZERO),
            "other accounts wait for nothing"
        );
    }
}
