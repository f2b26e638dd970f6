//! Daily quotas and benches: calls counted per token and method in the shared ledger, tokens
//! benched for a method after a captcha or a spent quota (and those another replica recorded as
//! spent), and the calls a job can still expect today.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::Session;
use crate::internal_events::{BenchCause, TokenBenched};
use crate::vk::error::VkError;
use crate::vk::rate::TokenKey;
use crate::vk::tokens::{ReleaseReason, Token, TokenOrigin};

impl Session {
    /// Benches the methods the ledger says are spent on `token` today (once per token).
    pub(super) async fn load_spent(&mut self, token: &Token) {
        let Some(ledger) = self.quota.clone() else {
            return;
        };
        if !self.checked.insert(token.key) {
            return;
        }
        let (_, spent) = ledger.used(token.key).await;
        let period = ledger.until_reset();
        for method in spent {
            self.bench(token, &method, period, BenchCause::QuotaInLedger);
        }
    }

    /// Keeps `token` off `method` for `period` in this session, and counts it as benched.
    pub(super) fn bench(
        &mut self,
        token: &Token,
        method: &str,
        period: Duration,
        cause: BenchCause,
    ) {
        TokenBenched {
            key: &token.key.hex(),
            token: &token.suffix(),
            method,
            period,
            cause,
        }
        .emit(self.client.metrics().map(|m| &**m));
        self.benched
            .insert((token.key, method.to_owned()), Instant::now() + period);
    }

    /// Benches `token` for `method` after a captcha (14) or a spent daily quota (29, until VK's
    /// day turns, for every replica); the reason to release it with.
    pub(super) fn bench_after(
        &mut self,
        token: &Token,
        method: &str,
        period: Duration,
        error: &VkError,
    ) -> ReleaseReason {
        let period = match (&self.quota, error.code()) {
            (Some(ledger), Some(29)) => {
                ledger.mark_spent(token.key, method);
                ledger.until_reset()
            }
            _ => period,
        };
        let (cause, reason) = if error.code() == Some(14) {
            (BenchCause::Captcha, ReleaseReason::Captcha)
        } else {
            (BenchCause::QuotaSpent, ReleaseReason::QuotaExceeded)
        };
        self.bench(token, method, period, cause);
        reason
    }

    /// Counts calls of `methods` sent on the current token in the shared ledger.
    pub(in crate::vk) fn count_calls<'a>(&self, methods: impl IntoIterator<Item = &'a str>) {
        if let Some(token) = &self.current {
            self.count_calls_on(token.key, methods);
        }
    }

    /// Counts calls of `methods` sent on `token` in the shared ledger and the quota metric.
    pub(in crate::vk) fn count_calls_on<'a>(
        &self,
        token: TokenKey,
        methods: impl IntoIterator<Item = &'a str>,
    ) {
        let metrics = self.client.metrics();
        if self.quota.is_none() && metrics.is_none() {
            return;
        }
        let mut counts: HashMap<String, u64> = HashMap::new();
        for m in methods {
            *counts.entry(m.to_owned()).or_default() += 1;
        }
        if let Some(metrics) = metrics {
            for (method, calls) in &counts {
                metrics.quota_calls(method, *calls);
            }
        }
        if let Some(ledger) = &self.quota {
            ledger.count(token, counts);
        }
    }

    /// Calls of `method` the job can still expect today: what the current token has left of
    /// `daily_quota` by the ledger, plus a full quota for every token of the pool. `None`
    /// without a ledger or when the pool's size is unknown.
    pub async fn quota_capacity(&mut self, method: &str) -> Option<u64> {
        let ledger = self.quota.clone()?;
        let token = self.current.clone()?;
        let quota = self.settings.daily_quota;
        let (used, spent) = ledger.used(token.key).await;
        let left = if spent.iter().any(|m| m == method) {
            0
        } else {
            quota.saturating_sub(used.get(method).copied().unwrap_or(0))
        };
        let pool = self.source.pool_size().await?;
        let on_pool = if matches!(token.origin, TokenOrigin::User(_)) {
            pool
        } else {
            pool.saturating_sub(1)
        };
        Some(left + on_pool * quota)
    }
}
