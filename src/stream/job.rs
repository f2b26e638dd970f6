//! What the consumer asks of the work it runs: the [`JobHandler`] seam and its inputs and
//! outputs.
//!
//! The consumer owns delivery (leases, heartbeats, retries, acknowledgement, final statuses);
//! a handler owns the work of one stage and says how it ended. A [`JobFailure`] carries the
//! decision the consumer needs: the `FailureReason` to report, and whether another attempt could
//! succeed (a network error may; an invalid event or a missing stage 1 will not).

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::keys::StreamNames;
use crate::events::{Artifacts, FailureReason, IncomingEvent, StatusUpdate};
use crate::ids::{JobId, ReportId, Stage, VkUserId};

/// Runs the work of one job stage. The production implementation is the report parser.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Runs `event`'s stage. Must return soon after `ctx.cancel` fires.
    async fn run(&self, event: IncomingEvent, ctx: JobContext) -> Result<JobOutput, JobFailure>;
}

/// A finished stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutput {
    /// Where the stage wrote (prefix and manifest).
    pub artifacts: Artifacts,
    /// The resolved seeds (published in GraphReady after stage 2).
    pub main_ids: Vec<VkUserId>,
    /// For people: what was done.
    pub message: String,
    /// Counts the final status carries (community tasks: per community and in total).
    pub metrics: Option<serde_json::Value>,
    /// Set when the files are written but the job still ends `FAILED`, for this reason (a
    /// community task some of whose communities could not be collected): the status carries
    /// the artifacts, so the communities that were collected are not lost.
    pub failed: Option<JobFailure>,
}

/// A stage that did not finish, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason:?}: {message}")]
pub struct JobFailure {
    /// What to report if this ends the job.
    pub reason: FailureReason,
    /// For people.
    pub message: String,
    /// Another attempt may succeed (network, rate limits, storage hiccups).
    pub retryable: bool,
}

impl JobFailure {
    /// A failure another attempt will not fix.
    pub fn permanent(reason: FailureReason, message: impl Into<String>) -> JobFailure {
        JobFailure {
            reason,
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure with `reason`, retryable exactly when the reason is transient
    /// ([`FailureReason::is_transient`]): how a VK error ends an attempt of any job kind.
    pub fn for_reason(reason: FailureReason, message: impl Into<String>) -> JobFailure {
        JobFailure {
            reason,
            message: message.into(),
            retryable: reason.is_transient(),
        }
    }

    /// A failure another attempt may fix.
    pub fn retryable(reason: FailureReason, message: impl Into<String>) -> JobFailure {
        JobFailure {
            reason,
            message: message.into(),
            retryable: true,
        }
    }
}

/// What a running handler gets besides its event.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Fires when the job must stop (shutdown, lost ownership, runtime limit).
    pub cancel: CancellationToken,
    /// Publishes progress.
    pub progress: std::sync::Arc<Progress>,
    /// What this job recorded in earlier attempts, and where it records steps that must not
    /// be repeated.
    pub ledger: std::sync::Arc<super::ledger::JobLedger>,
}

/// Publishes `IN_PROGRESS` updates for one job, at most once per interval.
#[derive(Debug)]
pub struct Progress {
    conn: crate::redis_conn::RedisConn,
    names: StreamNames,
    maxlen: u32,
    report_id: ReportId,
    job_id: JobId,
    stage: Stage,
    interval: Duration,
    last: Mutex<Option<(Instant, u8)>>,
}

impl Progress {
    pub(super) fn new(
        conn: crate::redis_conn::RedisConn,
        names: StreamNames,
        maxlen: u32,
        event: &IncomingEvent,
        interval: Duration,
    ) -> Progress {
        Progress {
            conn,
            names,
            maxlen,
            report_id: event.report_id(),
            job_id: event.job_id().clone(),
            stage: event.stage(),
            interval,
            last: Mutex::new(None),
        }
    }

    /// Reports `percent` done with a message; dropped when the last update is too recent or
    /// the percentage did not move. Publishing failures are logged, never fatal to the job.
    pub async fn report(&self, percent: u8, message: &str) {
        let percent = percent.min(99);
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, previous)) = *last {
                if previous == percent || at.elapsed() < self.interval {
                    return;
                }
            }
            *last = Some((Instant::now(), percent));
        }
        self.publish(percent, message).await;
    }

    /// Publishes an update now, whatever the interval (used at job start).
    pub(super) async fn publish(&self, percent: u8, message: &str) {
        let update = StatusUpdate::in_progress(
            &self.report_id,
            &self.job_id,
            self.stage,
            percent,
            message,
            Utc::now(),
        );
        let payload = match serde_json::to_string(&update) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a status update");
                return;
            }
        };
        let mut conn = self.conn.clone();
        let result: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(&self.names.status)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.maxlen)
            .arg("*")
            .arg("event_type")
            .arg(StatusUpdate::EVENT_TYPE)
            .arg("payload")
            .arg(payload)
            .query_async(&mut conn)
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "progress update not published");
        }
    }
}
