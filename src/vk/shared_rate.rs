//! The shared RPS limiter: a token's pace kept in Redis, so every replica that uses the token
//! (a user's token on two jobs on two replicas, a static token list) draws on one budget.
//!
//! [`super::rate::RpsGuard`] keeps its promise inside one process. VK counts requests per token,
//! wherever they come from, so two replicas each spacing a shared token at 420 ms send it twice
//! as fast as VK allows. With `vk.rate_limiter = "redis"` every request also reserves a slot
//! here, after its local slot and before its in-flight permit (the rate module's header says why
//! there), and sleeps until that slot.
//!
//! # The algorithm: GCRA as a reservation
//!
//! One Redis string per token holds its *theoretical arrival time* (TAT): the earliest moment,
//! in microseconds of Redis's clock, at which the token's next request may go. One Lua script,
//! atomic like every Redis script, reads the clock, takes `slot = max(TAT, now)`, stores
//! `TAT = slot + spacing` and returns `slot - now`, the wait. Every caller thus gets its own
//! slot, one spacing after the previous one, in arrival order across all processes: the same
//! spacing the local guard keeps within one. The spacing is the one the local guard chose for
//! the request ([`super::rate::Turn::spacing`]: warm-up, slow-down after 6/9, jitter), so a
//! replica that VK told to slow down also spaces the others after its requests. The burst
//! tolerance is zero, as locally: VK's sliding window has no room for a burst.
//!
//! - **One clock.** The script reads Redis's `TIME` (allowed in scripts since Redis 5, which
//!   replicates scripts by their effects; streams need Redis 5 anyway), never the callers'
//!   clocks, so clock skew between replicas cannot shorten a spacing. Callers only see a
//!   duration to sleep.
//! - **Keys never hold the token.** The key is `{stream.key_prefix}:rate:{SHA-256 of the token
//!   in hex}`; the value is a number. It expires one second after its TAT has passed: by then a
//!   missing key and a stale one mean the same thing.
//! - **A clock step is bounded.** A TAT more than [`MAX_AHEAD`] ahead of Redis's clock can only
//!   come from Redis's clock stepping back; it is reset to now rather than parking the token.
//! - **Cancelled waits waste their slot**, as in the local guard: never faster, at worst slower.
//! - **No Redis, no request.** When Redis does not answer within [`OPERATION_TIMEOUT`], the
//!   reservation fails with a [`SharedRateError`] and the client fails the attempt with a
//!   retryable error instead of sending unpaced. One round trip per request (EVALSHA; the
//!   script is loaded again by `redis::Script` after a Redis restart).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use tokio::sync::OnceCell;

use super::rate::{TokenKey, MAX_SPACING};
use crate::redis_conn::{ConnectOptions, RedisConn, RedisTarget};
use crate::settings::RedisUrl;

/// Longest one reservation may take, connecting included, before it fails.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

/// A stored TAT further ahead of Redis's clock than this is treated as a clock step and reset.
/// A real queue on one token never gets near it (100 waiting requests at 4 x 420 ms: 3 minutes).
pub const MAX_AHEAD: Duration = MAX_SPACING;

/// Why a shared reservation failed. Messages never contain a token or a Redis password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SharedRateError {
    /// Redis refused the connection or the command.
    #[error("shared rate limiter: redis error: {0}")]
    Redis(String),
    /// Redis did not answer in time.
    #[error("shared rate limiter: no answer from redis within {}s", .0.as_secs())]
    Timeout(Duration),
    /// The script answered something other than a wait (a Redis without `TIME` in scripts?).
    #[error("shared rate limiter: unexpected reply: {0}")]
    Reply(String),
}

impl From<redis::RedisError> for SharedRateError {
    fn from(e: redis::RedisError) -> Self {
        SharedRateError::Redis(e.to_string())
    }
}

/// Reserves per-token slots in Redis (cheap `Clone`: an `Arc` inside).
#[derive(Clone)]
pub struct SharedLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    target: RedisTarget,
    /// Connected on first use, so building the VK stack needs no Redis (and no runtime); a failed
    /// connect leaves it empty and the next reservation tries again.
    conn: OnceCell<RedisConn>,
    script: Script,
    key_prefix: String,
}

impl fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedLimiter")
            .field("key_prefix", &self.inner.key_prefix)
            .finish_non_exhaustive()
    }
}

/// KEYS: the token's key. ARGV: spacing after this request (µs), max ahead (µs).
/// Returns the wait before the reserved slot (µs, by Redis's clock).
const RESERVE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now or tat - now > tonumber(ARGV[2]) then tat = now end
local after = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.floor((after - now) / 1000) + 1000)
return tat - now
"#;

impl SharedLimiter {
    /// A limiter on the Redis at `url`, with keys under `{key_prefix}:rate:`. Does not connect.
    pub fn new(url: &RedisUrl, key_prefix: &str) -> Result<SharedLimiter, SharedRateError> {
        Ok(SharedLimiter::on(RedisTarget::single(url)?, key_prefix))
    }

    /// A limiter on `target` (a single server or a cluster: each reservation touches one key,
    /// so keys need no hash tag), with keys under `{key_prefix}:rate:`. Does not connect.
    pub fn on(target: RedisTarget, key_prefix: &str) -> SharedLimiter {
        SharedLimiter {
            inner: Arc::new(Inner {
                target,
                conn: OnceCell::new(),
                script: Script::new(RESERVE),
                key_prefix: key_prefix.to_owned(),
            }),
        }
    }

    /// The Redis key holding `token`'s pace (a hash of the token, never the token).
    pub fn key(&self, token: TokenKey) -> String {
        format!("{}:rate:{}", self.inner.key_prefix, token.hex())
    }

    /// Reserves `token`'s next slot across all processes, `spacing` before the one after it,
    /// and returns how long to wait for it. Does not sleep.
    pub async fn reserve(
        &self,
        token: TokenKey,
        spacing: Duration,
    ) -> Result<Duration, SharedRateError> {
        let key = self.key(token);
        let spacing_us = micros(spacing.min(MAX_SPACING));
        let attempt = async {
            let mut conn = self.connection().await?;
            let wait_us: i64 = self
                .inner
                .script
                .key(&key)
                .arg(spacing_us)
                .arg(micros(MAX_AHEAD))
                .invoke_async(&mut conn)
                .await?;
            u64::try_from(wait_us)
                .map(Duration::from_micros)
                .map_err(|_| SharedRateError::Reply(format!("a negative wait ({wait_us} µs)")))
        };
        tokio::time::timeout(OPERATION_TIMEOUT, attempt)
            .await
            .unwrap_or(Err(SharedRateError::Timeout(OPERATION_TIMEOUT)))
    }

    /// [`SharedLimiter::reserve`], then sleeps until the slot; returns the time slept.
    /// Cancel-safe: dropping the future wastes the slot, it is never handed to anyone else.
    pub async fn wait_turn(
        &self,
        token: TokenKey,
        spacing: Duration,
    ) -> Result<Duration, SharedRateError> {
        let wait = self.reserve(token, spacing).await?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(wait)
    }

    async fn connection(&self) -> Result<RedisConn, SharedRateError> {
        let conn = self
            .inner
            .conn
            .get_or_try_init(|| {
                // Short timeouts and one reconnect attempt: a request waiting on a dead Redis
                // should fail (and be retried by the client) rather than hang.
                self.inner.target.managed(ConnectOptions {
                    connection_timeout: Some(OPERATION_TIMEOUT / 2),
                    response_timeout: Some(OPERATION_TIMEOUT / 2),
                    retries: Some(1),
                    max_delay: Some(Duration::from_millis(500)),
                })
            })
            .await?;
        Ok(conn.clone())
    }
}

/// Whole microseconds, saturating (durations here are capped far below the limit).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> RedisUrl {
        RedisUrl::parse(raw).expect("a redis url")
    }

    #[test]
    fn keys_hold_the_hash_under_the_prefix_never_the_token() {
        let limiter = SharedLimiter::new(&url("redis://127.0.0.1:6379"), "vkp").unwrap();
        let key = limiter.key(TokenKey::of("vk1.a.secret-token"));
        assert_eq!(
            key,
            format!("vkp:rate:{}", TokenKey::of("vk1.a.secret-token").hex())
        );
        assert_eq!(key.len(), "vkp:rate:".len() + 64);
        assert!(!key.contains("secret"));
        assert!(!format!("{limiter:?}").contains("6379"));
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_typed_error_not_a_pass() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("nobody-listens.sock");
        let limiter =
            SharedLimiter::new(&url(&format!("redis+unix://{}", socket.display())), "vkp").unwrap();
        let err = limiter
            .reserve(TokenKey::of("token-a"), Duration::from_millis(420))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SharedRateError::Redis(_) | SharedRateError::Timeout(_)),
            "{err}"
        );
        assert!(err.to_string().starts_with("shared rate limiter:"), "{err}");
    }
}
