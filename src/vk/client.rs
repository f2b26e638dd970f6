//! A paced, retrying VK call on one token.
//!
//! Every request, first attempt or retry, first waits for the token's slot in the
//! [`RpsGuard`] (and, with `vk.rate_limiter = "redis"`, for its slot in the [`SharedLimiter`],
//! between the local queue and the in-flight permit), so no retry can break the rate limit.
//! When the shared limiter cannot reserve a slot, the attempt fails without sending and is
//! retried like a transport error. Failures that the same token can get past
//! are retried here with exponential backoff: transport errors, 5xx, unreadable answers, error
//! 10, and error 6 (after telling the guard to slow the token down). Everything else goes back
//! to the caller with its [`Action`] for the orchestrator to act on. Each request is logged at
//! debug level with the method, the token's last 4 characters, the outcome and the latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::error::{Action, VkError};
use super::http::{Answer, Params, VkHttp};
use super::rate::{PaceOutcome, Permit, RpsGuard, TokenKey};
use super::shared_rate::{SharedLimiter, SharedRateError};
use super::tokens::Token;
use crate::internal_events::{RateLimiterFailed, VkOutcome, VkRequest};
use crate::metrics::Metrics;

/// Retries of one call on one token before its error is handed up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (first one included).
    pub attempts: u32,
    /// The pause before the second attempt; doubled each time, capped at `max_backoff`.
    pub base_backoff: Duration,
    /// Longest pause.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// Counters of what the client sent and got, for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// HTTP requests sent (each attempt counts).
    pub requests: AtomicU64,
    /// Of which `execute`.
    pub executes: AtomicU64,
    /// Answers with error 6.
    pub rate_limited: AtomicU64,
    /// Attempts repeated after a retryable failure.
    pub retries: AtomicU64,
    /// Bytes received.
    pub bytes: AtomicU64,
}

/// Sends calls on a given token, paced and retried.
#[derive(Debug, Clone)]
pub struct VkClient {
    http: Arc<VkHttp>,
    guard: RpsGuard,
    shared: Option<SharedLimiter>,
    retry: RetryPolicy,
    stats: Arc<ClientStats>,
    metrics: Option<Arc<Metrics>>,
}

impl VkClient {
    /// A client over `http`, pacing through `guard`.
    pub fn new(http: VkHttp, guard: RpsGuard, retry: RetryPolicy) -> VkClient {
        VkClient {
            http: Arc::new(http),
            guard,
            shared: None,
            retry,
            stats: Arc::new(ClientStats::default()),
            metrics: None,
        }
    }

    /// Also counts requests (by method and outcome) and pacing waits in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> VkClient {
        self.metrics = Some(metrics);
        self
    }

    /// Also paces every request through `shared`, so other processes using the same tokens
    /// share their budget.
    pub fn with_shared_limiter(mut self, shared: SharedLimiter) -> VkClient {
        self.shared = Some(shared);
        self
    }

    /// The pacing guard (shared with the orchestrator for its decisions).
    pub fn guard(&self) -> &RpsGuard {
        &self.guard
    }

    /// What the client has sent so far.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// The registry requests are counted in, when one is set (the session counts quota and
    /// benches there too).
    pub(super) fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// Posts a file to an upload server (see [`VkHttp::upload`]); once, as a retry could
    /// upload twice.
    pub async fn upload(
        &self,
        token: &Token,
        upload_url: &str,
        field: &'static str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<serde_json::Value, VkError> {
        self.http
            .upload(token, upload_url, field, filename, bytes)
            .await
    }

    /// Calls `method` on `token`, retrying what the same token can get past.
    pub async fn call(
        &self,
        token: &Token,
        method: &str,
        params: &Params,
    ) -> Result<Answer, VkError> {
        let mut attempt = 1;
        loop {
            let queued = Instant::now();
            let paced = self.pace(token.key).await;
            if let Some(metrics) = &self.metrics {
                metrics.rate_limit_wait(queued.elapsed());
            }
            let result = match paced {
                Ok(permit) => {
                    self.stats.requests.fetch_add(1, Ordering::Relaxed);
                    if method == "execute" {
                        self.stats.executes.fetch_add(1, Ordering::Relaxed);
                    }
                    let started = Instant::now();
                    let result = self.http.send(token, method, params).await;
                    drop(permit);
                    VkRequest {
                        method,
                        token: &token.suffix(),
                        latency: started.elapsed(),
                        outcome: outcome_of(&result),
                        error: result.as_ref().err().map(|e| e as &dyn std::fmt::Display),
                    }
                    .emit(self.metrics.as_deref());
                    result
                }
                Err(source) => {
                    // Nothing was sent: this is not a VK request, so it is counted apart.
                    RateLimiterFailed {
                        method,
                        token: &token.suffix(),
                        error: &source,
                    }
                    .emit(self.metrics.as_deref());
                    Err(VkError::RateLimiter {
                        method: method.to_owned(),
                        source,
                    })
                }
            };
            let error = match result {
                Ok(answer) => {
                    self.guard.report(token.key, PaceOutcome::Success);
                    self.stats
                        .bytes
                        .fetch_add(answer.bytes as u64, Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(error) => error,
            };
            let Some(pause) = self.retry_pause(token, method, &error, attempt) else {
                return Err(error);
            };
            if attempt >= self.retry.attempts {
                tracing::warn!(method, token = %token.suffix(), attempts = attempt, error = %error, "vk call gave up");
                return Err(error);
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            attempt += 1;
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// How long to wait before the same token asks again, after telling the guard what the
    /// error says about the pace; `None` for an error this token cannot get past.
    fn retry_pause(
        &self,
        token: &Token,
        method: &str,
        error: &VkError,
        attempt: u32,
    ) -> Option<Duration> {
        match error.action() {
            Action::SlowDown => {
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                self.guard.report(token.key, PaceOutcome::RateLimited);
                // The guard already pushed this token's next slot back.
                Some(Duration::ZERO)
            }
            Action::Retry(pause) => Some(pause.max(self.backoff(attempt))),
            action => {
                if let Action::Rotate = action {
                    self.guard.report(token.key, PaceOutcome::Flood);
                }
                tracing::warn!(method, token = %token.suffix(), code = ?error.code(), error = %error, "vk error");
                None
            }
        }
    }

    /// Waits for `token`'s turn: its local slot, then its shared slot (when a shared limiter is
    /// set), then an in-flight permit. See the rate module's header for why in this order.
    async fn pace(&self, token: TokenKey) -> Result<Permit, SharedRateError> {
        let turn = self.guard.queue(token).await;
        if let Some(shared) = &self.shared {
            // On failure the local turn is dropped unused: its slot is wasted, never reused.
            shared.wait_turn(token, turn.spacing()).await?;
        }
        Ok(self.guard.admit(turn).await)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        (self.retry.base_backoff * factor).min(self.retry.max_backoff)
    }
}

/// How a sent request ended, for its [`VkRequest`] event.
fn outcome_of(result: &Result<Answer, VkError>) -> VkOutcome {
    match result {
        Ok(_) => VkOutcome::Ok,
        Err(VkError::Api { error, .. }) => VkOutcome::Api(error.error_code),
        Err(VkError::Transport { .. }) => VkOutcome::Transport,
        Err(VkError::Http { status, .. }) => VkOutcome::Http(*status),
        Err(_) => VkOutcome::Unreadable,
    }
}
