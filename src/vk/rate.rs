//! The per-token RPS guard: every request to VK waits here for its token's next slot and for an
//! in-flight permit, and reports VK's answer back so the pace adapts.
//!
//! VK allows a user token 3 requests per second (an `execute` counts as one), but spacing at
//! exactly 333 ms still draws error 6, so we keep a configured minimum interval between two
//! requests of one token (420 ms by default, as the seed service did). The promise this module
//! keeps: **two requests of one token are never granted closer than the token's spacing, however
//! many tasks share the token**. Different tokens have separate budgets and proceed in parallel;
//! only the process-wide in-flight limit is shared.
//!
//! # How a request is paced
//!
//! The guard is a reservation scheduler, not a token bucket (the `governor` crate fixes its quota
//! at construction; we change a token's interval at run time after errors 6 and 9). Per token a
//! small state sits behind one `std::sync::Mutex`, which is only ever held for a few arithmetic
//! operations and never across an `.await`. [`RpsGuard::acquire`] runs in three steps:
//!
//! 1. **Queue.** Reserve `slot = max(now, next_free)` and move `next_free` one spacing past it,
//!    then sleep until the slot. Reservations are FIFO by arrival, and nearly all waiting happens
//!    here, *without* an in-flight permit, so a long queue on one token never starves the others.
//!    If a slowdown was reported while we slept, wait further until the token may send again.
//! 2. **Permit.** Take a permit from the process-wide semaphore (`max_in_flight`, FIFO).
//! 3. **Grant.** Record the grant at `g = max(now, earliest_grant)` and move `earliest_grant` one
//!    spacing past `g`. Step 1 alone does not keep the promise: when permits are scarce, two tasks
//!    whose slots were 420 ms apart can both get a permit at the same instant. This step is what
//!    makes the spacing hold between actual grants; it normally finds `g == now` and costs nothing,
//!    and only in that contended case sleeps (holding the permit) until `g`.
//!
//! A cancelled acquire simply wastes what it reserved: the next request still waits for its own
//! later slot, which is conservative (never faster).
//!
//! # Sharing a token with other processes
//!
//! This guard knows only its own process. When replicas share a token, the client puts the
//! Redis-backed limiter ([`super::shared_rate`]) between step 1 and step 2: [`RpsGuard::queue`]
//! is step 1 and hands out a [`Turn`] carrying the spacing this request needs after it,
//! the shared limiter reserves the token's next slot across all processes with that spacing and
//! sleeps until it, and [`RpsGuard::admit`] runs steps 2 and 3. Why there: the local queue comes
//! first so that a process sends Redis at most one reservation per local slot (tasks queued on
//! one token wait here, cheaply, instead of each holding a far-off shared slot that a
//! cancellation would waste for every replica); the shared slot comes before the permit so no
//! permit is held through a shared wait; and it comes as late as it can, because any delay
//! between the shared slot and the send (a busy in-flight budget, a 6/9 report meanwhile) eats
//! into the spacing the other replicas count on. [`RpsGuard::acquire`] is `queue` + `admit`.
//!
//! # Adapting the pace
//!
//! [`RpsGuard::report`] feeds VK's answer back. Error 6 ("too many requests per second") or 9
//! (flood control) multiplies the token's interval by `slowdown_factor`, capped at
//! `interval * max_slowdown`, and pushes the token's next slot to at least `now + new interval`
//! (VK just told us we were too fast, so even requests already queued wait). Each success moves
//! the interval `recovery_per_success` of the way back toward the configured base, never below it.
//! The first `warmup_requests` requests of a token are spaced by `interval * warmup_factor`, so a
//! freshly leased token does not start at full speed.
//!
//! This module never sees a token string beyond hashing it into a [`TokenKey`].
//!
//! The file runs past 600 lines only for its unit tests, which sit next to the code they pin;
//! the code is about 440 lines.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{sleep_until, Instant};

/// Longest spacing the guard will ever use; settings above it are clamped (see
/// [`PaceSettings::sanitized`]). An hour between two requests is already "stopped", and the cap
/// keeps every `Instant + Duration` far from overflow.
pub const MAX_SPACING: Duration = Duration::from_secs(3600);

/// Largest `max_slowdown` honoured, so a typo in the settings cannot park a token for days.
const MAX_SLOWDOWN_CAP: f64 = 100.0;

/// Pacing settings (filled from the service settings; `Default` holds the production values).
#[derive(Debug, Clone, PartialEq)]
pub struct PaceSettings {
    /// Minimum spacing between two requests of one token (420 ms).
    pub interval: Duration,
    /// A random extra `0..=jitter` added to each spacing, never subtracted (0).
    pub jitter: Duration,
    /// The first N requests of a token are spaced by `interval * warmup_factor` (3).
    pub warmup_requests: u32,
    /// Spacing multiplier during warm-up (1.5).
    pub warmup_factor: f64,
    /// After a RateLimited/Flood report the token's interval is multiplied by this (1.5)...
    pub slowdown_factor: f64,
    /// ...up to `interval * max_slowdown` (4.0).
    pub max_slowdown: f64,
    /// Each Success report moves the current interval this fraction of the way back toward
    /// `interval` (0.1).
    pub recovery_per_success: f64,
    /// Requests in flight at once across all tokens of this process (64).
    pub max_in_flight: usize,
}

impl Default for PaceSettings {
    fn default() -> Self {
        PaceSettings {
            interval: Duration::from_millis(420),
            jitter: Duration::ZERO,
            warmup_requests: 3,
            warmup_factor: 1.5,
            slowdown_factor: 1.5,
            max_slowdown: 4.0,
            recovery_per_success: 0.1,
            max_in_flight: 64,
        }
    }
}

impl PaceSettings {
    /// The settings made safe to compute with: factors that are NaN, infinite or below 1 become 1
    /// (never faster than `interval`), `recovery_per_success` is clamped to `0..=1`, durations to
    /// [`MAX_SPACING`], `max_slowdown` to 100 and `max_in_flight` to at least 1 (0 would block
    /// every request forever). [`RpsGuard::new`] applies this, so outside values cannot panic it.
    pub fn sanitized(self) -> PaceSettings {
        // Settings come from files and environment: clamp instead of trusting them, because the
        // Duration arithmetic below panics on negative, NaN or overflowing values.
        let at_least_one = |f: f64| if f.is_finite() && f >= 1.0 { f } else { 1.0 };
        PaceSettings {
            interval: self.interval.min(MAX_SPACING),
            jitter: self.jitter.min(MAX_SPACING),
            warmup_requests: self.warmup_requests,
            warmup_factor: at_least_one(self.warmup_factor).min(MAX_SLOWDOWN_CAP),
            slowdown_factor: at_least_one(self.slowdown_factor).min(MAX_SLOWDOWN_CAP),
            max_slowdown: at_least_one(self.max_slowdown).min(MAX_SLOWDOWN_CAP),
            recovery_per_success: if self.recovery_per_success.is_finite() {
                self.recovery_per_success.clamp(0.0, 1.0)
            } else {
                0.0
            },
            max_in_flight: self.max_in_flight.clamp(1, Semaphore::MAX_PERMITS),
        }
    }
}

/// Identifies a token without holding it: the token's SHA-256.
///
/// The hash is stable across processes and runs (unlike `std`'s randomly keyed hasher), so it can
/// label metrics and name the token's shared pace in Redis; it is not a secret-keeping device for
/// short tokens, only a way never to store or print the token itself. `Display` and `Debug` show
/// the first 8 bytes, [`TokenKey::hex`] all 32.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// The key of `token`.
    pub fn of(token: &str) -> TokenKey {
        TokenKey(Sha256::digest(token.as_bytes()).into())
    }

    /// The whole digest as 64 lowercase hex digits (the shared limiter's Redis key).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0[..8]))
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenKey({self})")
    }
}

/// What VK answered, fed back into the pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceOutcome {
    /// A normal answer (including errors unrelated to pacing).
    Success,
    /// Error 6: too many requests per second.
    RateLimited,
    /// Error 9: flood control.
    Flood,
}

/// Shared by every task of the process (cheap `Clone`: an `Arc` inside).
#[derive(Clone)]
pub struct RpsGuard {
    inner: Arc<Inner>,
}

struct Inner {
    settings: PaceSettings,
    in_flight: Arc<Semaphore>,
    // One mutex for all tokens: a process holds a handful of tokens and every critical section is
    // a few additions, so sharding would buy nothing measurable.
    tokens: Mutex<HashMap<TokenKey, TokenPace>>,
}

/// One token's pace. Invariant: `base <= current <= base * max_slowdown`.
#[derive(Debug)]
struct TokenPace {
    /// Where the next reservation starts (step 1: queue order).
    next_free: Instant,
    /// The earliest moment the next grant may happen (step 3: the promise itself).
    earliest_grant: Instant,
    /// The token's present spacing, grown by 6/9 and shrunk back by successes.
    current: Duration,
    /// Reservations made so far (cancelled ones included); picks warm-up spacing in step 1.
    reserved: u64,
    /// Requests granted so far.
    granted: u64,
}

/// Holds one of the process's in-flight permits; dropping it lets another request start.
/// Hold it until VK's response has arrived.
#[derive(Debug)]
pub struct Permit {
    _in_flight: OwnedSemaphorePermit,
}

/// A request that has had its token's local slot (step 1) and still needs steps 2 and 3
/// ([`RpsGuard::admit`]). Dropping it gives the slot up, as a cancelled acquire does.
#[derive(Debug)]
#[must_use = "a turn does nothing until it is admitted"]
pub struct Turn {
    token: TokenKey,
    slot: Instant,
    jitter: Duration,
    spacing: Duration,
}

impl Turn {
    /// The token this turn is for.
    pub fn token(&self) -> TokenKey {
        self.token
    }

    /// The spacing the token needs after this request (warm-up, slow-down and jitter included):
    /// what the shared limiter reserves for it, so other processes keep the same distance.
    pub fn spacing(&self) -> Duration {
        self.spacing
    }
}

impl RpsGuard {
    /// A guard pacing with `settings` (sanitized first, see [`PaceSettings::sanitized`]).
    pub fn new(settings: PaceSettings) -> RpsGuard {
        let settings = settings.sanitized();
        RpsGuard {
            inner: Arc::new(Inner {
                in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
                settings,
                tokens: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The settings in force (after sanitizing).
    pub fn settings(&self) -> &PaceSettings {
        &self.inner.settings
    }

    /// Waits for this token's next slot and an in-flight permit; hold the [`Permit`] until the
    /// response arrives. Cancel-safe: dropping the future gives up the reserved slot (it is not
    /// handed to anyone else) and any permit it held.
    pub async fn acquire(&self, token: TokenKey) -> Permit {
        let turn = self.queue(token).await;
        self.admit(turn).await
    }

    /// Step 1 alone: reserves the token's next slot and sleeps until it, without a permit.
    /// Cancel-safe like [`RpsGuard::acquire`]; pass the [`Turn`] to [`RpsGuard::admit`].
    pub async fn queue(&self, token: TokenKey) -> Turn {
        let turn = self.reserve(token);
        // An idle token's slot is now: skip the timer, which would round up to the next
        // millisecond tick (most of this guard's cost per request, see BENCHMARKS.md).
        if turn.slot > Instant::now() {
            sleep_until(turn.slot).await;
        }
        turn
    }

    /// Steps 2 and 3 for a queued turn: waits out any slow-down reported meanwhile, takes an
    /// in-flight permit and records the grant. Hold the [`Permit`] until the response arrives.
    pub async fn admit(&self, turn: Turn) -> Permit {
        let token = turn.token;
        // A 6/9 report while we slept (or an earlier request that slipped past its slot) may have
        // pushed the token's next grant back; wait that out before taking a permit, so the permit
        // is not held through a pause.
        loop {
            let earliest = self.with_pace(token, |pace| pace.earliest_grant);
            if earliest <= Instant::now() {
                break;
            }
            sleep_until(earliest).await;
        }

        // Step 2: the process-wide in-flight budget.
        let in_flight = Arc::clone(&self.inner.in_flight)
            .acquire_owned()
            .await
            // Nothing ever calls `close` on this semaphore, so acquiring cannot fail.
            .expect("the in-flight semaphore is never closed");

        // Step 3: record the grant, spaced from the previous actual grant.
        let grant = self.grant(token, turn.jitter);
        if grant > Instant::now() {
            sleep_until(grant).await;
        }
        Permit {
            _in_flight: in_flight,
        }
    }

    /// Feeds VK's answer back: slows the token down after 6/9, recovers gradually on success.
    pub fn report(&self, token: TokenKey, outcome: PaceOutcome) {
        let settings = &self.inner.settings;
        let now = Instant::now();
        self.with_pace(token, |pace| match outcome {
            PaceOutcome::Success => {
                // Move a fraction of the way back; `current >= base` keeps the result >= base.
                let excess = pace.current.saturating_sub(settings.interval);
                let keep = 1.0 - settings.recovery_per_success;
                pace.current = settings.interval + scale(excess, keep);
            }
            PaceOutcome::RateLimited | PaceOutcome::Flood => {
                let ceiling = scale(settings.interval, settings.max_slowdown);
                pace.current = scale(pace.current, settings.slowdown_factor).min(ceiling);
                // VK just said we were too fast: nobody on this token goes before a full new
                // interval has passed, including requests already queued.
                let resume = now + pace.current;
                pace.next_free = pace.next_free.max(resume);
                pace.earliest_grant = pace.earliest_grant.max(resume);
            }
        });
    }

    /// The token's current spacing, without warm-up or jitter (for metrics and tests).
    pub fn current_interval(&self, token: TokenKey) -> Duration {
        self.peek(token, |pace| pace.current)
            .unwrap_or(self.inner.settings.interval)
    }

    /// Requests granted so far for this token (for tests and metrics). A grant is counted when
    /// it is recorded, so an acquire cancelled during its final wait (see step 3) still counts.
    pub fn granted(&self, token: TokenKey) -> u64 {
        self.peek(token, |pace| pace.granted).unwrap_or(0)
    }

    /// Step 1: reserve the token's next slot and move `next_free` past it.
    fn reserve(&self, token: TokenKey) -> Turn {
        // Drawn outside the lock; `rand::rng()` is a cheap thread-local generator.
        let jitter = random_jitter(self.inner.settings.jitter);
        let now = Instant::now();
        self.with_pace(token, |pace| {
            let slot = pace.next_free.max(now);
            let spacing = self.spacing(pace, pace.reserved) + jitter;
            pace.next_free = slot + spacing;
            pace.reserved += 1;
            Turn {
                token,
                slot,
                jitter,
                spacing,
            }
        })
    }

    /// Step 3: the grant instant, at least one spacing after the previous grant.
    fn grant(&self, token: TokenKey, jitter: Duration) -> Instant {
        let now = Instant::now();
        self.with_pace(token, |pace| {
            let grant = pace.earliest_grant.max(now);
            // Warm-up counts actual grants here, so cancelled reservations cannot shorten it.
            let spacing = self.spacing(pace, pace.granted) + jitter;
            pace.earliest_grant = grant + spacing;
            // Keep later reservations behind this grant if we slipped past our slot.
            pace.next_free = pace.next_free.max(pace.earliest_grant);
            pace.granted += 1;
            grant
        })
    }

    /// The spacing after the token's request number `index` (0-based), without jitter.
    fn spacing(&self, pace: &TokenPace, index: u64) -> Duration {
        let settings = &self.inner.settings;
        if index < u64::from(settings.warmup_requests) {
            scale(pace.current, settings.warmup_factor)
        } else {
            pace.current
        }
    }

    /// Runs `f` on the token's pace under the lock, creating the pace on first use.
    fn with_pace<T>(&self, token: TokenKey, f: impl FnOnce(&mut TokenPace) -> T) -> T {
        let now = Instant::now();
        let mut tokens = self.lock();
        let pace = tokens.entry(token).or_insert_with(|| TokenPace {
            next_free: now,
            earliest_grant: now,
            current: self.inner.settings.interval,
            reserved: 0,
            granted: 0,
        });
        f(pace)
    }

    /// Reads the token's pace, if it has one, without creating it.
    fn peek<T>(&self, token: TokenKey, f: impl FnOnce(&TokenPace) -> T) -> Option<T> {
        self.lock().get(&token).map(f)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TokenKey, TokenPace>> {
        // Every critical section leaves the map consistent and cannot panic midway, so a poisoned
        // lock (a panic elsewhere on that thread) still guards valid state: keep pacing.
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for RpsGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpsGuard")
            .field("settings", &self.inner.settings)
            .field(
                "available_in_flight",
                &self.inner.in_flight.available_permits(),
            )
            .finish_non_exhaustive()
    }
}

/// `d * factor`, rounded to the nanosecond and capped at `MAX_SPACING * MAX_SLOWDOWN_CAP`; never
/// panics (`Duration::mul_f64` does on NaN or overflow, and `f64 as u64` saturates instead).
fn scale(d: Duration, factor: f64) -> Duration {
    let nanos = (d.as_nanos() as f64 * factor).round() as u64;
    Duration::from_nanos(nanos).min(MAX_SPACING.saturating_mul(MAX_SLOWDOWN_CAP as u32))
}

/// A uniformly random duration in `0..=max`.
fn random_jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    // `max` is at most MAX_SPACING after sanitizing, so its nanoseconds fit in u64.
    let max_nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=max_nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::task::JoinSet;

    const MS: Duration = Duration::from_millis(1);

    fn settings() -> PaceSettings {
        PaceSettings::default()
    }

    /// Runs `n` concurrent acquires per token and returns each token's grant instants, sorted.
    /// Permits are dropped right away (the request "completes" instantly).
    async fn grant_times(guard: &RpsGuard, tokens: &[TokenKey], n: usize) -> Vec<Vec<Instant>> {
        let mut tasks = JoinSet::new();
        for (t, &token) in tokens.iter().enumerate() {
            for _ in 0..n {
                let guard = guard.clone();
                tasks.spawn(async move {
                    let _permit = guard.acquire(token).await;
                    (t, Instant::now())
                });
            }
        }
        let mut times = vec![Vec::new(); tokens.len()];
        while let Some(done) = tasks.join_next().await {
            let (t, at) = done.expect("task panicked");
            times[t].push(at);
        }
        for list in &mut times {
            list.sort();
        }
        times
    }

    fn gaps(times: &[Instant]) -> Vec<Duration> {
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn fifty_tasks_on_one_token_never_break_the_interval() {
        let s = settings();
        let guard = RpsGuard::new(s.clone());
        let token = TokenKey::of("token-a");

        let times = grant_times(&guard, &[token], 50).await.remove(0);

        assert_eq!(times.len(), 50);
        assert_eq!(guard.granted(token), 50);
        for (i, gap) in gaps(&times).into_iter().enumerate() {
            // A gap of zero would mean two tasks shared a slot; the bounds below exclude it.
            let min = if i < s.warmup_requests as usize {
                s.interval.mul_f64(s.warmup_factor)
            } else {
                s.interval
            };
            assert!(gap >= min, "gap {i} is {gap:?}, below {min:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_keep_separate_budgets_and_run_in_parallel() {
        let s = PaceSettings {
            warmup_requests: 0,
            ..settings()
        };
        let (a, b) = (TokenKey::of("token-a"), TokenKey::of("token-b"));
        let n = 10;

        let start = Instant::now();
        let two = grant_times(&RpsGuard::new(s.clone()), &[a, b], n).await;
        let two_tokens = Instant::now() - start;

        let start = Instant::now();
        grant_times(&RpsGuard::new(s.clone()), &[a], 2 * n).await;
        let one_token = Instant::now() - start;

        for times in &two {
            assert!(gaps(times).iter().all(|&gap| gap >= s.interval));
        }
        // N on each of two tokens: N-1 spacings; 2N on one token: 2N-1 spacings.
        let spacing = |k: u32| s.interval * k;
        assert!(two_tokens >= spacing(n as u32 - 1) && two_tokens < spacing(n as u32 - 1) + 5 * MS);
        assert!(one_token >= spacing(2 * n as u32 - 1));
        assert!(
            two_tokens * 2 < one_token,
            "{two_tokens:?} vs {one_token:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_stays_within_its_bounds() {
        let s = PaceSettings {
            jitter: Duration::from_millis(100),
            warmup_requests: 0,
            ..settings()
        };
        let guard = RpsGuard::new(s.clone());
        let times = grant_times(&guard, &[TokenKey::of("token-a")], 40)
            .await
            .remove(0);

        let gaps = gaps(&times);
        // Paused time wakes timers on whole milliseconds, so allow one more on top.
        for &gap in &gaps {
            assert!(
                gap >= s.interval && gap <= s.interval + s.jitter + MS,
                "gap {gap:?}"
            );
        }
        // With 39 draws from 0..=100 ms, all of them under 1 ms would mean no jitter at all.
        assert!(gaps.iter().any(|&gap| gap > s.interval + MS));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_slows_down_capped_and_success_recovers_to_the_base() {
        let s = settings();
        let guard = RpsGuard::new(s.clone());
        let token = TokenKey::of("token-a");
        assert_eq!(guard.current_interval(token), s.interval);

        guard.report(token, PaceOutcome::RateLimited);
        assert_eq!(guard.current_interval(token), s.interval.mul_f64(1.5));
        guard.report(token, PaceOutcome::Flood);
        assert_eq!(guard.current_interval(token), s.interval.mul_f64(2.25));
        for _ in 0..10 {
            guard.report(token, PaceOutcome::RateLimited);
        }
        assert_eq!(
            guard.current_interval(token),
            s.interval.mul_f64(s.max_slowdown)
        );

        let mut last = guard.current_interval(token);
        guard.report(token, PaceOutcome::Success);
        // 10% of the way back: 4x - 0.1 * 3x = 3.7x.
        assert_eq!(guard.current_interval(token), s.interval.mul_f64(3.7));
        for _ in 0..500 {
            guard.report(token, PaceOutcome::Success);
            let now = guard.current_interval(token);
            assert!(now <= last && now >= s.interval);
            last = now;
        }
        assert!(last - s.interval < MS);

        // Other tokens are untouched.
        assert_eq!(guard.current_interval(TokenKey::of("token-b")), s.interval);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_pushes_even_queued_requests_back() {
        let s = PaceSettings {
            warmup_requests: 0,
            ..settings()
        };
        let guard = RpsGuard::new(s.clone());
        let token = TokenKey::of("token-a");

        drop(guard.acquire(token).await);
        // Queue the next request before VK's error 6 comes back.
        let queued = tokio::spawn({
            let guard = guard.clone();
            async move {
                drop(guard.acquire(token).await);
                Instant::now()
            }
        });
        tokio::time::sleep(100 * MS).await;
        let reported = Instant::now();
        guard.report(token, PaceOutcome::RateLimited);

        let granted = queued.await.expect("task panicked");
        assert!(
            granted >= reported + s.interval.mul_f64(1.5),
            "{:?}",
            granted - reported
        );
        // Requests after it use the slower spacing.
        drop(guard.acquire(token).await);
        assert!(Instant::now() - granted >= s.interval.mul_f64(1.5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_acquire_lets_nobody_go_early() {
        let s = PaceSettings {
            warmup_requests: 0,
            ..settings()
        };
        let guard = RpsGuard::new(s.clone());
        let token = TokenKey::of("token-a");

        drop(guard.acquire(token).await);
        let first = Instant::now();
        // Reserve the next slot, then give up before it comes.
        let cancelled = tokio::time::timeout(s.interval / 2, guard.acquire(token)).await;
        assert!(cancelled.is_err());
        drop(guard.acquire(token).await);

        // The promise: at least one interval. The abandoned slot is wasted, not reused.
        assert!(Instant::now() - first >= s.interval);
        assert_eq!(Instant::now() - first, s.interval * 2);
        assert_eq!(guard.granted(token), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn max_in_flight_blocks_until_a_permit_is_dropped() {
        let guard = RpsGuard::new(PaceSettings {
            max_in_flight: 2,
            ..settings()
        });
        let first = guard.acquire(TokenKey::of("token-a")).await;
        let _second = guard.acquire(TokenKey::of("token-b")).await;

        let third = tokio::spawn({
            let guard = guard.clone();
            async move { guard.acquire(TokenKey::of("token-c")).await }
        });
        // Token c has no pacing to wait for, only the in-flight budget; a minute of virtual time
        // passes and it is still waiting.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!third.is_finished());
        assert_eq!(guard.granted(TokenKey::of("token-c")), 0);

        drop(first);
        let _third = third.await.expect("task panicked");
        assert_eq!(guard.granted(TokenKey::of("token-c")), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_queue_on_one_token_does_not_hold_the_in_flight_budget() {
        // Queued requests sleep without a permit, so with a single permit in the process another
        // token still gets it as soon as the current request is done.
        let guard = RpsGuard::new(PaceSettings {
            max_in_flight: 1,
            ..settings()
        });
        let (a, b) = (TokenKey::of("token-a"), TokenKey::of("token-b"));
        let mut queue = JoinSet::new();
        for _ in 0..20 {
            let guard = guard.clone();
            queue.spawn(async move { drop(guard.acquire(a).await) });
        }
        tokio::time::sleep(100 * MS).await;
        assert_eq!(guard.granted(a), 1);

        let start = Instant::now();
        drop(guard.acquire(b).await);
        assert_eq!(Instant::now(), start);
        assert!(guard.granted(a) < 20);
        while queue.join_next().await.is_some() {}
        assert_eq!(guard.granted(a), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn scarce_permits_cannot_squeeze_two_grants_together() {
        // Two requests of token a reserve slots 420 ms apart, but the only permit is busy past
        // both slots; when it frees, both want it at once. The grant step keeps them apart.
        let s = PaceSettings {
            warmup_requests: 0,
            max_in_flight: 1,
            ..settings()
        };
        let guard = RpsGuard::new(s.clone());
        let a = TokenKey::of("token-a");

        let busy = guard.acquire(TokenKey::of("token-b")).await;
        let mut tasks = JoinSet::new();
        for _ in 0..2 {
            let guard = guard.clone();
            tasks.spawn(async move {
                drop(guard.acquire(a).await);
                Instant::now()
            });
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(busy);
        let mut times = Vec::new();
        while let Some(done) = tasks.join_next().await {
            times.push(done.expect("task panicked"));
        }
        times.sort();
        assert!(
            times[1] - times[0] >= s.interval,
            "{:?}",
            times[1] - times[0]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_carries_the_spacing_the_token_needs_after_it() {
        let s = settings();
        let guard = RpsGuard::new(s.clone());
        let token = TokenKey::of("token-a");
        let warm = s.interval.mul_f64(s.warmup_factor);
        let mut spacings = Vec::new();
        for _ in 0..4 {
            let turn = guard.queue(token).await;
            assert_eq!(turn.token(), token);
            spacings.push(turn.spacing());
            drop(guard.admit(turn).await);
        }
        assert_eq!(spacings, vec![warm, warm, warm, s.interval]);

        guard.report(token, PaceOutcome::RateLimited);
        let turn = guard.queue(token).await;
        assert_eq!(turn.spacing(), s.interval.mul_f64(s.slowdown_factor));
        drop(guard.admit(turn).await);
        assert_eq!(guard.granted(token), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_turn_lets_nobody_go_early() {
        let s = PaceSettings {
            warmup_requests: 0,
            ..settings()
        };
        let guard = RpsGuard::new(s.clone());
        let token = TokenKey::of("token-a");
        drop(guard.acquire(token).await);
        let first = Instant::now();
        // Queued, then given up (a shared limiter that failed, say): its slot is wasted.
        drop(guard.queue(token).await);
        drop(guard.acquire(token).await);
        assert_eq!(Instant::now() - first, s.interval * 2);
        assert_eq!(guard.granted(token), 2);
    }

    #[test]
    fn token_keys_are_stable_and_distinct() {
        assert_eq!(TokenKey::of("vk1.a.secret"), TokenKey::of("vk1.a.secret"));
        assert_ne!(TokenKey::of("vk1.a.secret"), TokenKey::of("vk1.a.secreT"));
        // SHA-256("abc") starts ba7816bf8f01cfea: the key must not depend on the process.
        assert_eq!(TokenKey::of("abc").to_string(), "ba7816bf8f01cfea");
        assert!(!format!("{:?}", TokenKey::of("vk1.a.secret")).contains("secret"));
        assert_eq!(
            TokenKey::of("abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_settings_are_clamped_instead_of_panicking() {
        let guard = RpsGuard::new(PaceSettings {
            interval: Duration::MAX,
            jitter: Duration::MAX,
            warmup_requests: u32::MAX,
            warmup_factor: f64::NAN,
            slowdown_factor: f64::INFINITY,
            max_slowdown: -3.0,
            recovery_per_success: f64::NAN,
            max_in_flight: 0,
        });
        let token = TokenKey::of("token-a");
        assert_eq!(guard.settings().max_in_flight, 1);
        assert_eq!(guard.settings().interval, MAX_SPACING);
        drop(guard.acquire(token).await);
        guard.report(token, PaceOutcome::Flood);
        guard.report(token, PaceOutcome::Success);
        assert_eq!(guard.current_interval(token), MAX_SPACING);
        drop(guard.acquire(token).await);
        assert_eq!(guard.granted(token), 2);
    }
}
