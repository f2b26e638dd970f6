//! Daily quotas per (token, method), counted in Redis so every replica sees the same use.
//!
//! VK caps calls of a method per token per day (error 29), inner calls of an execute included.
//! It publishes the cap for a few methods only (wall.get 5,000) and not when its day turns, so
//! the ledger counts what this service sent, per token, method and quota day (a day that starts
//! at `vk.quota_reset_utc_hour`, 21:00 UTC by default: midnight in Moscow), and marks a method
//! spent on a token when VK answers 29, until the day turns. Sessions read the marks when they
//! take a token (so a replica does not spend requests on a token another replica found spent),
//! and stage 2 compares its estimate with what the reachable tokens have left
//! ([`QuotaLedger::used`]).
//!
//! Keys never hold the token: `{stream.key_prefix}:quota:{SHA-256 of the token}:{day}`, a hash of
//! method → calls, plus `!{method}` → 1 for a spent method. Keys expire two days after their day.
//!
//! Counting is advisory: it is sent on a background task and a Redis failure is logged, never a
//! reason to hold or fail a VK request (the RPS guard and VK's own 29 still bound the damage).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use tokio::sync::OnceCell;

use super::rate::TokenKey;
use crate::redis_conn::{ConnectOptions, RedisConn, RedisTarget};

/// Longest wait for Redis on a read the session makes before using a token.
const READ_TIMEOUT: Duration = Duration::from_millis(500);
/// Keys outlive their day by this much, for operators and the next day's first minutes.
const KEY_TTL_SECS: u64 = 2 * 86_400;

/// The quota ledger of one process.
#[derive(Clone)]
pub struct QuotaLedger {
    inner: Arc<Inner>,
}

struct Inner {
    target: RedisTarget,
    conn: OnceCell<RedisConn>,
    key_prefix: String,
    reset_hour: u32,
}

impl std::fmt::Debug for QuotaLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaLedger")
            .field("key_prefix", &self.inner.key_prefix)
            .field("reset_hour", &self.inner.reset_hour)
            .finish_non_exhaustive()
    }
}

/// The quota day `at` falls in: days since the epoch, counted from `reset_hour` UTC.
pub fn quota_day(at: DateTime<Utc>, reset_hour: u32) -> i64 {
    let shifted = at - chrono::Duration::hours(i64::from(reset_hour.min(23)));
    shifted.timestamp().div_euclid(86_400)
}

/// How long from `at` until the quota day turns.
pub fn until_reset(at: DateTime<Utc>, reset_hour: u32) -> Duration {
    let next = (quota_day(at, reset_hour) + 1) * 86_400 + i64::from(reset_hour.min(23)) * 3_600;
    let secs = (next - at.timestamp()).max(1) as u64;
    Duration::from_secs(secs).saturating_sub(Duration::from_nanos(u64::from(at.nanosecond())))
}

impl QuotaLedger {
    /// A ledger on `target` under `{key_prefix}:quota:`. Does not connect.
    pub fn on(target: RedisTarget, key_prefix: &str, reset_hour: u32) -> QuotaLedger {
        QuotaLedger {
            inner: Arc::new(Inner {
                target,
                conn: OnceCell::new(),
                key_prefix: key_prefix.to_owned(),
                reset_hour,
            }),
        }
    }

    /// The key of `token`'s use on the current quota day.
    pub fn key(&self, token: TokenKey) -> String {
        let day = quota_day(Utc::now(), self.inner.reset_hour);
        format!("{}:quota:{}:{day}", self.inner.key_prefix, token.hex())
    }

    /// How long until the quota day turns.
    pub fn until_reset(&self) -> Duration {
        until_reset(Utc::now(), self.inner.reset_hour)
    }

    async fn connection(&self) -> Result<RedisConn, redis::RedisError> {
        let conn = self
            .inner
            .conn
            .get_or_try_init(|| {
                self.inner.target.managed(ConnectOptions {
                    connection_timeout: Some(READ_TIMEOUT * 4),
                    response_timeout: Some(READ_TIMEOUT * 4),
                    retries: Some(1),
                    max_delay: None,
                })
            })
            .await?;
        Ok(conn.clone())
    }

    /// Adds `calls` (method → count) to `token`'s use today, on a background task.
    pub fn count(&self, token: TokenKey, calls: HashMap<String, u64>) {
        if calls.is_empty() {
            return;
        }
        let ledger = self.clone();
        tokio::spawn(async move {
            let key = ledger.key(token);
            let write = async {
                let mut conn = ledger.connection().await?;
                let mut pipe = redis::pipe();
                for (method, n) in &calls {
                    pipe.hincr(&key, method, *n).ignore();
                }
                pipe.expire(&key, KEY_TTL_SECS as i64).ignore();
                pipe.query_async::<()>(&mut conn).await
            };
            match tokio::time::timeout(READ_TIMEOUT * 4, write).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "quota use not counted (redis)"),
                Err(_) => tracing::debug!("quota use not counted (redis timeout)"),
            }
        });
    }

    /// Marks `method` spent on `token` until the quota day turns (VK answered 29), on a
    /// background task.
    pub fn mark_spent(&self, token: TokenKey, method: &str) {
        self.count(token, HashMap::from([(format!("!{method}"), 1)]));
    }

    /// `token`'s use today: method → calls, and the methods marked spent. Empty when Redis does
    /// not answer in time (the caller then knows nothing, which is what it knew before).
    pub async fn used(&self, token: TokenKey) -> (HashMap<String, u64>, Vec<String>) {
        let key = self.key(token);
        let read = async {
            let mut conn = self.connection().await?;
            redis::cmd("HGETALL")
                .arg(&key)
                .query_async::<HashMap<String, u64>>(&mut conn)
                .await
        };
        let all = match tokio::time::timeout(READ_TIMEOUT, read).await {
            Ok(Ok(all)) => all,
            _ => return (HashMap::new(), Vec::new()),
        };
        let spent = all
            .keys()
            .filter_map(|k| k.strip_prefix('!').map(str::to_owned))
            .collect();
        let used = all
            .into_iter()
            .filter(|(k, _)| !k.starts_with('!'))
            .collect();
        (used, spent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_quota_day_turns_at_the_reset_hour() {
        let before = Utc.with_ymd_and_hms(2026, 12, 1, 20, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 12, 1, 21, 0, 0).unwrap();
        assert_eq!(quota_day(after, 21), quota_day(before, 21) + 1);
        assert_eq!(until_reset(before, 21), Duration::from_secs(1));
        assert_eq!(until_reset(after, 21), Duration::from_secs(86_400));
        let noon = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        assert_eq!(until_reset(noon, 0), Duration::from_secs(12 * 3600));
    }

    #[test]
    fn keys_hold_the_hash_never_the_token() {
        let ledger = QuotaLedger::on(
            RedisTarget::single(&crate::settings::RedisUrl::parse("redis://127.0.0.1:1").unwrap())
                .unwrap(),
            "vkp",
            21,
        );
        let key = ledger.key(TokenKey::of("vk1.a.secret-token"));
        assert!(key.starts_with("vkp:quota:"), "{key}");
        assert!(!key.contains("secret"), "{key}");
    }
}
