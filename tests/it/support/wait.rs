//! Waiting for a condition instead of sleeping for a guessed time.
//!
//! A test that sleeps "lease_ttl + 100 ms" and then looks is slow when the machine is idle and
//! flaky when it is busy. [`eventually`] polls a check every [`POLL`] until it gives a value and
//! fails, naming what it waited for, only when a generous deadline has passed; [`within`] is the
//! same without the panic, for callers that explain a timeout themselves. A deadline is a bound
//! on a hang, never a claim about speed: no test asserts on wall-clock time.
//!
//! This file uses nothing else of `support`, so a bench can include it with `#[path]`.

use std::time::{Duration, Instant};

/// How often a check is repeated.
pub const POLL: Duration = Duration::from_millis(50);

/// Runs `check` every [`POLL`] until it gives `Some`, or until `deadline` has passed (then
/// `None`). The check runs at least once, and once more after the deadline.
pub async fn within<T>(deadline: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        let timed_out = Instant::now() >= end;
        if let Some(value) = check().await {
            return Some(value);
        }
        if timed_out {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// As [`within`], but a timeout panics with `what` (say what was awaited: "the job to start").
pub async fn eventually<T>(
    what: &str,
    deadline: Duration,
    check: impl AsyncFnMut() -> Option<T>,
) -> T {
    within(deadline, check)
        .await
        .unwrap_or_else(|| panic!("timed out after {deadline:?} waiting for {what}"))
}
