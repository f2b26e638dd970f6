//! VK's errors and the one table that decides what each one means for us.
//!
//! VK answers HTTP 200 with `{"error": {...}}` for most failures; transport problems, 5xx and
//! broken JSON come on top. Every caller asks [`VkError::action`] what to do next, so the policy
//! for a code lives here once: the orchestrator rotates or benches tokens from it, the execute
//! builder splits batches from it, the stages skip targets from it, and the consumer maps what
//! is left to a [`FailureReason`].

use std::time::Duration;

use serde::Deserialize;

use super::shared_rate::SharedRateError;
use crate::events::FailureReason;

/// An error body of the VK API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    /// VK's error code.
    pub error_code: i64,
    /// VK's message (never contains the token: VK echoes parameters without it).
    #[serde(default)]
    pub error_msg: String,
    /// Present for some codes (e.g. 5 with a ban).
    #[serde(default)]
    pub error_subcode: Option<i64>,
}

/// Everything a VK call can fail with. Messages never contain a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VkError {
    /// VK answered with an error body.
    #[error("vk {method}: error {} {}", .error.error_code, .error.error_msg)]
    Api {
        /// The method called (`execute` for a whole batch).
        method: String,
        /// VK's error.
        error: ApiError,
    },
    /// No answer: connection refused or reset, timeout, proxy down (after retries).
    #[error("vk {method}: transport error: {message}")]
    Transport {
        /// The method called.
        method: String,
        /// What failed.
        message: String,
    },
    /// An HTTP status other than 200 (after retries for 5xx).
    #[error("vk {method}: http status {status}")]
    Http {
        /// The method called.
        method: String,
        /// The status.
        status: u16,
    },
    /// A 200 answer that is not VK's JSON (truncated, invalid, unexpected shape).
    #[error("vk {method}: unreadable answer: {message}")]
    Decode {
        /// The method called.
        method: String,
        /// What is wrong.
        message: String,
    },
    /// No usable token: the author's failed first, or the global pool is empty.
    #[error("no usable VK token: {message}")]
    NoToken {
        /// The failure reason to report.
        reason: FailureReason,
        /// What happened.
        message: String,
    },
    /// The token manager failed.
    #[error("token manager: {0}")]
    TokenSource(String),
    /// An upload server refused a file (its type, size or pixels), or its answer was unusable.
    #[error("vk upload: {message}")]
    Upload {
        /// What the server said.
        message: String,
    },
    /// The shared rate limiter (Redis) could not reserve a slot, so nothing was sent: sending
    /// unpaced could break the token's limit for every replica.
    #[error("vk {method}: {source}")]
    RateLimiter {
        /// The method that was not sent.
        method: String,
        /// What failed.
        source: SharedRateError,
    },
}

/// Why a token can no longer be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDeath {
    /// Invalid, expired or revoked (5, 1117), or the app lost its rights (28).
    Invalid,
    /// The account is blocked ("user is blocked", 5 with a ban) or needs validation (17).
    Banned,
    /// The token is bound to another IP address (5 "another ip address", 1118): it needs its proxy.
    IpMismatch,
}

/// What to do after an error, decided once per code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the same request again on the same token after this pause (10, 5xx, transport).
    Retry(Duration),
    /// Too fast (6): slow the token's pace, then retry on it.
    SlowDown,
    /// Flood control (9): pause this token, then move to another.
    Rotate,
    /// Captcha (14) or daily quota (29): do not use this token for this method for a while.
    Bench(Duration),
    /// The token is dead for this job.
    DropToken(TokenDeath),
    /// This target cannot be read (private, deleted, invalid id): skip it, not a job failure.
    SkipTarget,
    /// This token may not call this method (it lacks the right): move the work to a token
    /// that has it, or to another method. Never a skip.
    MethodDenied,
    /// The execute response was too big or failed at run time (13): split the batch.
    SplitBatch,
    /// Nothing to retry: fail the job with this reason.
    Fail(FailureReason),
}

/// How long a token is benched after a captcha.
pub const CAPTCHA_BENCH: Duration = Duration::from_secs(10 * 60);
/// How long a token is benched for a method after its daily quota ran out.
pub const QUOTA_BENCH: Duration = Duration::from_secs(60 * 60);

impl ApiError {
    /// Whether VK says the target account is gone: 18 (deleted or banned), 113 (no such id),
    /// or 15 "Access denied: user deactivated", which friends.get and users.getFollowers answer
    /// for a deactivated user (shared/vk-api.md).
    pub fn is_missing_target(&self) -> bool {
        match self.error_code {
            18 | 113 | 3610 => true,
            15 => self.error_msg.to_ascii_lowercase().contains("deactivated"),
            _ => false,
        }
    }

    /// Whether VK refuses the method to this token (15 with subcode 1133
    /// `method_permission_denied`, the same 15 inside execute, which carries its message but
    /// no subcode, or 7 "Permission to perform this action is denied"): about the token's
    /// rights, not the target, so never a skip.
    pub fn is_method_denied(&self) -> bool {
        match self.error_code {
            7 => true,
            15 => {
                self.error_subcode == Some(1133)
                    || self
                        .error_msg
                        .to_ascii_lowercase()
                        .contains("no access to call this method")
            }
            _ => false,
        }
    }

    /// The decision table for VK error codes.
    pub fn action(&self) -> Action {
        let msg = self.error_msg.to_ascii_lowercase();
        if self.is_method_denied() {
            return Action::MethodDenied;
        }
        match self.error_code {
            5 if msg.contains("another ip") => Action::DropToken(TokenDeath::IpMismatch),
            5 if msg.contains("blocked")
                || msg.contains("banned")
                || self.error_subcode.is_some() =>
            {
                Action::DropToken(TokenDeath::Banned)
            }
            5 | 1117 | 28 => Action::DropToken(TokenDeath::Invalid),
            1118 => Action::DropToken(TokenDeath::IpMismatch),
            17 => Action::DropToken(TokenDeath::Banned),
            6 => Action::SlowDown,
            9 => Action::Rotate,
            10 => Action::Retry(Duration::from_millis(500)),
            13 => Action::SplitBatch,
            14 => Action::Bench(CAPTCHA_BENCH),
            29 => Action::Bench(QUOTA_BENCH),
            // 203 a community, 260 a user's group list, 3610 a deactivated account.
            15 | 18 | 30 | 113 | 203 | 260 | 3610 => Action::SkipTarget,
            // 100 (bad parameters), 12 (compile error) and the rest are our bugs or VK's
            // changes: retrying will not help.
            _ => Action::Fail(FailureReason::VkApiError),
        }
    }
}

impl VkError {
    /// What to do next.
    pub fn action(&self) -> Action {
        match self {
            VkError::Api { error, .. } => error.action(),
            VkError::Transport { .. } => Action::Retry(Duration::from_secs(1)),
            VkError::Http { status, .. } if *status >= 500 => Action::Retry(Duration::from_secs(1)),
            VkError::Http { .. } => Action::Fail(FailureReason::VkApiError),
            VkError::Decode { .. } => Action::Retry(Duration::from_secs(1)),
            VkError::NoToken { reason, .. } => Action::Fail(*reason),
            VkError::TokenSource(_) => Action::Fail(FailureReason::NetworkError),
            VkError::Upload { .. } => Action::Fail(FailureReason::VkApiError),
            // Redis may be back in a moment; the same token is fine.
            VkError::RateLimiter { .. } => Action::Retry(Duration::from_secs(1)),
        }
    }

    /// The reason to report if this error ends the job.
    pub fn failure_reason(&self) -> FailureReason {
        match self {
            VkError::Api { error, .. } => match error.action() {
                Action::SlowDown | Action::Rotate | Action::Bench(_) => FailureReason::VkRateLimit,
                Action::DropToken(_) => FailureReason::VkReconnectRequired,
                Action::SkipTarget if error.is_missing_target() => FailureReason::VkUserNotFound,
                Action::SkipTarget | Action::MethodDenied => FailureReason::VkAccessDenied,
                Action::Fail(reason) => reason,
                Action::Retry(_) | Action::SplitBatch => FailureReason::VkApiError,
            },
            VkError::Transport { .. } => FailureReason::NetworkError,
            VkError::Http { .. } | VkError::Decode { .. } | VkError::Upload { .. } => {
                FailureReason::VkApiError
            }
            VkError::NoToken { reason, .. } => *reason,
            VkError::TokenSource(_) | VkError::RateLimiter { .. } => FailureReason::NetworkError,
        }
    }

    /// VK's error code, if VK answered one.
    pub fn code(&self) -> Option<i64> {
        match self {
            VkError::Api { error, .. } => Some(error.error_code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: i64, msg: &str) -> ApiError {
        ApiError {
            error_code: code,
            error_msg: msg.to_owned(),
            error_subcode: None,
        }
    }

    #[test]
    fn every_listed_code_has_its_decision() {
        let table = [
            (
                5,
                "User authorization failed: invalid access_token (4).",
                Action::DropToken(TokenDeath::Invalid),
            ),
            (
                5,
                "User authorization failed: access_token was given to another ip address.",
                Action::DropToken(TokenDeath::IpMismatch),
            ),
            (
                5,
                "User authorization failed: user is blocked.",
                Action::DropToken(TokenDeath::Banned),
            ),
            (6, "Too many requests per second", Action::SlowDown),
            (9, "Flood control", Action::Rotate),
            (
                10,
                "Internal server error",
                Action::Retry(Duration::from_millis(500)),
            ),
            (
                13,
                "Runtime error occurred during code invocation: response size is too big",
                Action::SplitBatch,
            ),
            (14, "Captcha needed", Action::Bench(CAPTCHA_BENCH)),
            (15, "Access denied", Action::SkipTarget),
            (
                17,
                "Validation required",
                Action::DropToken(TokenDeath::Banned),
            ),
            (18, "User was deleted or banned", Action::SkipTarget),
            (
                28,
                "Application authorization failed",
                Action::DropToken(TokenDeath::Invalid),
            ),
            (29, "Rate limit reached", Action::Bench(QUOTA_BENCH)),
            (30, "This profile is private", Action::SkipTarget),
            (203, "Access to group denied", Action::SkipTarget),
            (
                260,
                "Access to the groups list is denied due to the user's privacy settings",
                Action::SkipTarget,
            ),
            (3610, "User is deactivated", Action::SkipTarget),
            (
                15,
                "Access denied: no access to call this method",
                Action::MethodDenied,
            ),
            (
                7,
                "Permission to perform this action is denied",
                Action::MethodDenied,
            ),
            (113, "Invalid user id", Action::SkipTarget),
            (
                1117,
                "Token expired",
                Action::DropToken(TokenDeath::Invalid),
            ),
            (
                1118,
                "Anonymous token IP mismatch",
                Action::DropToken(TokenDeath::IpMismatch),
            ),
            (
                100,
                "One of the parameters specified was missing or invalid",
                Action::Fail(FailureReason::VkApiError),
            ),
        ];
        for (code, msg, want) in table {
            assert_eq!(api(code, msg).action(), want, "{code} {msg}");
        }
    }

    #[test]
    fn failure_reasons() {
        let err = |code, msg: &str| VkError::Api {
            method: "friends.get".into(),
            error: api(code, msg),
        };
        assert_eq!(err(6, "").failure_reason(), FailureReason::VkRateLimit);
        assert_eq!(err(29, "").failure_reason(), FailureReason::VkRateLimit);
        assert_eq!(
            err(5, "").failure_reason(),
            FailureReason::VkReconnectRequired
        );
        assert_eq!(err(18, "").failure_reason(), FailureReason::VkUserNotFound);
        assert_eq!(
            err(15, "Access denied: user deactivated").failure_reason(),
            FailureReason::VkUserNotFound
        );
        assert_eq!(err(30, "").failure_reason(), FailureReason::VkAccessDenied);
        assert_eq!(err(203, "").failure_reason(), FailureReason::VkAccessDenied);
        assert_eq!(err(260, "").failure_reason(), FailureReason::VkAccessDenied);
        assert_eq!(
            err(3610, "").failure_reason(),
            FailureReason::VkUserNotFound
        );
        let denied = VkError::Api {
            method: "friends.getMutual".into(),
            error: ApiError {
                error_code: 15,
                error_msg: "Access denied".into(),
                error_subcode: Some(1133),
            },
        };
        assert_eq!(denied.action(), Action::MethodDenied);
        let transport = VkError::Transport {
            method: "execute".into(),
            message: "connection refused".into(),
        };
        assert_eq!(transport.failure_reason(), FailureReason::NetworkError);
        // The shared limiter's Redis is down: retry the same token, and if it stays down, a
        // retryable network failure (never a rate-limit failure: VK said nothing).
        let limiter = VkError::RateLimiter {
            method: "execute".into(),
            source: SharedRateError::Timeout(Duration::from_secs(2)),
        };
        assert_eq!(limiter.action(), Action::Retry(Duration::from_secs(1)));
        assert_eq!(limiter.failure_reason(), FailureReason::NetworkError);
        assert_eq!(
            limiter.to_string(),
            "vk execute: shared rate limiter: no answer from redis within 2s"
        );
    }
}
