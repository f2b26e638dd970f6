//! Internal events: what happened inside the service, each as one typed value that writes its
//! log line and counts its metric, so the two can never disagree.
//!
//! This is Vector's internal-events pattern. A call site builds the event (`VkRequest { .. }`)
//! and calls `emit`; the event decides the log level, the field names and the metric labels from
//! the same fields. Before it, a VK answer was logged as `outcome = <the error's message>` and
//! counted as `outcome = "error_6"`, and a failure reason was written three ways. Now a label
//! such as `error_6` or `VK_RATE_LIMIT` is one function's output ([`VkOutcome::label`],
//! [`FailureReason::as_str`]) and appears identically in both.
//!
//! Only events that are both logged and counted live here; a plain log line stays a
//! `tracing` call where it happens. The module depends on [`crate::metrics`] and the event
//! vocabulary only, so `stream` and `vk` both emit into it without knowing each other.

use std::borrow::Cow;
use std::fmt::Display;
use std::time::Duration;

use crate::events::FailureReason;
use crate::metrics::Metrics;

/// How one VK request ended, as logs and `vkp_vk_requests_total{outcome}` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VkOutcome {
    /// VK answered with a response.
    Ok,
    /// VK answered with an API error.
    Api(i64),
    /// An HTTP status other than 200.
    Http(u16),
    /// The connection failed or timed out.
    Transport,
    /// A 200 whose body is not VK's JSON.
    Unreadable,
}

impl VkOutcome {
    /// The label: `ok`, `error_{code}`, `http_{status}`, `transport`, `unreadable`.
    pub fn label(self) -> Cow<'static, str> {
        match self {
            VkOutcome::Ok => Cow::Borrowed("ok"),
            VkOutcome::Api(code) => Cow::Owned(format!("error_{code}")),
            VkOutcome::Http(status) => Cow::Owned(format!("http_{status}")),
            VkOutcome::Transport => Cow::Borrowed("transport"),
            VkOutcome::Unreadable => Cow::Borrowed("unreadable"),
        }
    }
}

/// One request sent to VK and its answer.
pub struct VkRequest<'a> {
    /// The API method.
    pub method: &'a str,
    /// The token's last 4 characters.
    pub token: &'a str,
    /// From send to answer.
    pub latency: Duration,
    /// How it ended.
    pub outcome: VkOutcome,
    /// The error, when it failed (logged, never a label).
    pub error: Option<&'a dyn Display>,
}

impl VkRequest<'_> {
    /// Logs at debug and counts `vkp_vk_requests_total{method, outcome}`.
    pub fn emit(&self, metrics: Option<&Metrics>) {
        let outcome = self.outcome.label();
        let latency_ms = self.latency.as_millis() as u64;
        match self.error {
            None => {
                tracing::debug!(method = self.method, token = self.token, latency_ms, outcome = %outcome, "vk request")
            }
            Some(error) => {
                tracing::debug!(method = self.method, token = self.token, latency_ms, outcome = %outcome, error = %error, "vk request")
            }
        }
        if let Some(metrics) = metrics {
            metrics.vk_request(self.method, &outcome);
        }
    }
}

/// A request not sent because the shared rate limiter (Redis) failed.
pub struct RateLimiterFailed<'a> {
    /// The API method.
    pub method: &'a str,
    /// The token's last 4 characters.
    pub token: &'a str,
    /// What failed.
    pub error: &'a dyn Display,
}

impl RateLimiterFailed<'_> {
    /// Logs at warn and counts `vkp_rate_limiter_errors_total`.
    pub fn emit(&self, metrics: Option<&Metrics>) {
        tracing::warn!(method = self.method, token = self.token, error = %self.error, "shared rate limiter failed: request not sent");
        if let Some(metrics) = metrics {
            metrics.rate_limiter_error();
        }
    }
}

/// Why a token is kept off a method for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchCause {
    /// VK asked for a captcha (14).
    Captcha,
    /// VK said the token's daily quota for the method is spent (29).
    QuotaSpent,
    /// Another replica recorded the quota as spent in the shared ledger.
    QuotaInLedger,
}

impl BenchCause {
    /// The log's `cause` field.
    pub fn as_str(self) -> &'static str {
        match self {
            BenchCause::Captcha => "captcha",
            BenchCause::QuotaSpent => "quota_spent",
            BenchCause::QuotaInLedger => "quota_in_ledger",
        }
    }
}

/// A token benched for a method.
pub struct TokenBenched<'a> {
    /// The token's key (a hash, never the token): one bench per token and method.
    pub key: &'a str,
    /// The token's last 4 characters.
    pub token: &'a str,
    /// The API method.
    pub method: &'a str,
    /// How long.
    pub period: Duration,
    /// Why.
    pub cause: BenchCause,
}

impl TokenBenched<'_> {
    /// Logs at warn (info when another replica saw it first), sets `vkp_vk_tokens_benched`, and
    /// for a quota VK just said is spent counts `vkp_vk_quota_exhausted_total`.
    pub fn emit(&self, metrics: Option<&Metrics>) {
        let bench_secs = self.period.as_secs();
        let cause = self.cause.as_str();
        match self.cause {
            BenchCause::QuotaInLedger => tracing::info!(
                token = self.token,
                method = self.method,
                bench_secs,
                cause,
                "token benched for method"
            ),
            _ => tracing::warn!(
                token = self.token,
                method = self.method,
                bench_secs,
                cause,
                "token benched for method"
            ),
        }
        if let Some(metrics) = metrics {
            if self.cause == BenchCause::QuotaSpent {
                metrics.quota_exhausted(self.method);
            }
            metrics.token_benched(self.key, self.method, self.period);
        }
    }
}

/// A job stage attempt that ended (final or not).
pub struct JobFinished<'a> {
    /// The report type's wire name.
    pub report_type: &'a str,
    /// 1 or 2.
    pub stage: u8,
    /// `completed`, `failed`, `retried` or `interrupted`.
    pub outcome: &'static str,
    /// Why it failed or is retried.
    pub reason: Option<FailureReason>,
    /// From start to end.
    pub duration: Duration,
}

impl JobFinished<'_> {
    /// Logs at info and counts `vkp_jobs_finished_total` and `vkp_job_duration_seconds`.
    pub fn emit(&self, metrics: &Metrics) {
        let reason = self.reason.map(FailureReason::as_str);
        tracing::info!(
            report_type = self.report_type,
            stage = self.stage,
            outcome = self.outcome,
            reason = reason.unwrap_or(""),
            duration_ms = self.duration.as_millis() as u64,
            "job attempt finished"
        );
        metrics.job_finished(
            self.report_type,
            self.stage,
            self.outcome,
            reason,
            self.duration,
        );
    }
}

/// Why an entry went to the dead-letter stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// Not a valid event.
    InvalidEvent,
    /// Every allowed attempt failed.
    MaxRetries,
}

impl DeadLetterReason {
    /// The `reason` label of `vkp_dead_lettered_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::InvalidEvent => "invalid_event",
            DeadLetterReason::MaxRetries => "max_retries",
        }
    }
}

/// An entry moved to the dead-letter stream.
pub struct DeadLettered<'a> {
    /// The stream entry.
    pub entry: &'a str,
    /// Why.
    pub reason: DeadLetterReason,
    /// The error the dead letter records.
    pub error: &'a str,
}

impl DeadLettered<'_> {
    /// Logs at warn and counts `vkp_dead_lettered_total{reason}`.
    pub fn emit(&self, metrics: &Metrics) {
        let reason = self.reason.as_str();
        tracing::warn!(
            entry = self.entry,
            reason,
            error = self.error,
            "entry dead-lettered"
        );
        metrics.dead_lettered(reason);
    }
}

/// Entries taken over from consumers that stopped answering.
pub struct EntriesReclaimed {
    /// How many.
    pub count: usize,
}

impl EntriesReclaimed {
    /// Logs at info and counts `vkp_entries_reclaimed_total`; nothing for none.
    pub fn emit(&self, metrics: &Metrics) {
        if self.count == 0 {
            return;
        }
        tracing::info!(count = self.count, "reclaimed idle entries");
        metrics.entries_reclaimed(self.count as u64);
    }
}

/// What became of one community of a finished campaign.
pub struct CommunityPosted<'a> {
    /// The community, when the name resolved to one.
    pub group: Option<i64>,
    /// `published`, `suggested`, `skipped`, `deferred` or `unknown`.
    pub outcome: &'a str,
    /// Why, for the last three.
    pub reason: Option<&'a str>,
}

impl CommunityPosted<'_> {
    /// Logs at info and counts `vkp_posts_total{outcome}`.
    pub fn emit(&self, metrics: &Metrics) {
        tracing::info!(
            group = ?self.group,
            outcome = self.outcome,
            reason = self.reason.unwrap_or(""),
            "campaign community"
        );
        metrics.post_outcome(self.outcome);
    }
}

/// A community of a finished community task: complete, or failed with its reason.
#[derive(Debug, Clone, Copy)]
pub struct CommunityCollected<'a> {
    /// `MEMBERS`, `POSTS` or `INTERACTIONS`.
    pub kind: &'a str,
    /// The community, when the name resolved to one.
    pub group: Option<i64>,
    /// `complete` or `failed`.
    pub status: &'a str,
    /// Why it failed.
    pub reason: Option<&'a str>,
}

impl CommunityCollected<'_> {
    /// Logs (warn when failed) and counts `vkp_communities_total{kind,status,reason}`.
    pub fn emit(&self, metrics: &Metrics) {
        let reason = self.reason.unwrap_or("");
        if self.status == "complete" {
            tracing::info!(kind = self.kind, group = ?self.group, status = self.status, "community collected");
        } else {
            tracing::warn!(kind = self.kind, group = ?self.group, status = self.status, reason, "community not collected");
        }
        metrics.community_outcome(self.kind, self.status, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_outcome_has_one_label() {
        assert_eq!(VkOutcome::Ok.label(), "ok");
        assert_eq!(VkOutcome::Api(6).label(), "error_6");
        assert_eq!(VkOutcome::Http(502).label(), "http_502");
        assert_eq!(VkOutcome::Transport.label(), "transport");
        assert_eq!(VkOutcome::Unreadable.label(), "unreadable");
    }

    #[test]
    fn events_count_under_the_labels_they_log() {
        let metrics = Metrics::new();
        VkRequest {
            method: "friends.get",
            token: "abcd",
            latency: Duration::from_millis(3),
            outcome: VkOutcome::Api(6),
            error: Some(&"Too many requests per second"),
        }
        .emit(Some(&metrics));
        JobFinished {
            report_type: "DEFAULT",
            stage: 1,
            outcome: "retried",
            reason: Some(FailureReason::VkRateLimit),
            duration: Duration::from_secs(2),
        }
        .emit(&metrics);
        DeadLettered {
            entry: "1-0",
            reason: DeadLetterReason::MaxRetries,
            error: "gave up",
        }
        .emit(&metrics);
        TokenBenched {
            key: "k1",
            token: "abcd",
            method: "users.get",
            period: Duration::from_secs(60),
            cause: BenchCause::QuotaSpent,
        }
        .emit(Some(&metrics));
        CommunityPosted {
            group: Some(7),
            outcome: "skipped",
            reason: Some("wall_closed"),
        }
        .emit(&metrics);
        CommunityCollected {
            kind: "MEMBERS",
            group: Some(9),
            status: "failed",
            reason: Some("below_threshold"),
        }
        .emit(&metrics);
        let text = metrics.render();
        for expected in [
            r#"vkp_vk_requests_total{method="friends.get",outcome="error_6"} 1"#,
            r#"reason="VK_RATE_LIMIT""#,
            r#"vkp_dead_lettered_total{reason="max_retries"} 1"#,
            r#"vkp_vk_quota_exhausted_total{method="users.get"} 1"#,
            r#"vkp_vk_tokens_benched{method="users.get"} 1"#,
            r#"vkp_posts_total{outcome="skipped"} 1"#,
            r#"vkp_communities_total{kind="MEMBERS",status="failed",reason="below_threshold"} 1"#,
        ] {
            assert!(text.contains(expected), "{expected} in\n{text}");
        }
    }
}
