//! One entry's run: decode it, take the job's lease, run the handler with a heartbeat beside it,
//! and turn how it ended into exactly one fenced outcome (final status and ack, a retry, or
//! nothing when a peer took over).
//!
//! [`Runner`] is what every job task of a consumer shares. The decision of what an ended
//! attempt means ([`decide`]) is a pure function with its table tested below; the Redis side of
//! each decision is a script of [`super::scripts`].
//!
//! The file runs past 600 lines only for its unit tests, which sit next to the code they pin;
//! the code is about 580 lines.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::entry::RawEntry;
use super::job::{JobContext, JobFailure, JobHandler, JobOutput, Progress};
use super::keys::{JobKeys, StreamNames};
use super::ledger::JobLedger;
use super::records::job_state::{self, State};
use super::scripts::{self, Acquired, Beat, Finished, Scripts};
use crate::events::{
    EventError, FailureReason, GraphReady, IncomingEvent, JobKind, StatusUpdate, FIELD_EVENT_TYPE,
    FIELD_PAYLOAD,
};
use crate::ids::Stage;
use crate::internal_events::{DeadLetterReason, DeadLettered, JobFinished};
use crate::key::StagePrefix;
use crate::metrics::Metrics;
use crate::redis_conn::RedisConn;
use crate::settings::StreamSettings;

/// How one entry ended, as seen by this consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// The stage finished; its final status was published and the entry acknowledged.
    Completed,
    /// The stage failed for good; FAILED was published and the entry acknowledged.
    Failed(FailureReason),
    /// The entry went to the dead-letter stream (why) and was acknowledged.
    DeadLettered(String),
    /// The job stage had already finished: acknowledged, nothing published.
    AlreadyDone,
    /// The job runs elsewhere under a live lease: left pending, untouched.
    HeldElsewhere,
    /// An attempt failed in a way a retry may fix: left pending for a later attempt.
    RetryLater(FailureReason),
    /// Stopped by shutdown: left pending for a peer.
    Interrupted,
    /// A peer took the entry over: this consumer stopped and published nothing.
    LostOwnership,
    /// Redis failed while handling the entry: left pending.
    RedisError(String),
}

impl EntryOutcome {
    /// The `outcome` label of `vkp_jobs_finished_total` and the reason beside it.
    pub fn metric_labels(&self) -> (&'static str, Option<FailureReason>) {
        match self {
            EntryOutcome::Completed => ("completed", None),
            EntryOutcome::Failed(r) => ("failed", Some(*r)),
            EntryOutcome::DeadLettered(_) => ("failed", Some(FailureReason::MaxRetriesExceeded)),
            // Not final: the entry goes back to the group, with the reason the attempt failed.
            EntryOutcome::RetryLater(r) => ("retried", Some(*r)),
            _ => ("interrupted", None),
        }
    }
}

/// The consumer's settings, resolved.
#[derive(Debug, Clone)]
pub(super) struct Config {
    /// The job kind this consumer runs; events of another kind are dead-lettered.
    pub kind: JobKind,
    pub names: StreamNames,
    pub stream: StreamSettings,
    pub max_concurrent: usize,
    pub max_retries: u32,
}

/// What every job task of one consumer shares.
pub(super) struct Runner {
    pub conn: RedisConn,
    pub config: Config,
    pub handler: Arc<dyn JobHandler>,
    pub metrics: Arc<Metrics>,
    pub scripts: Scripts,
}

/// How the handler's run ended, before anything is published.
struct Ended {
    /// `None`: stopped before the handler returned.
    result: Option<Result<JobOutput, JobFailure>>,
    /// The heartbeat found a peer owning the entry.
    lost: bool,
    /// The job was told to stop (shutdown or lost ownership) before it ended.
    stopped: bool,
}

/// What an ended attempt means.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// A peer owns the entry: publish nothing, touch nothing.
    LostOwnership,
    /// Stopped by a shutdown: give the lease and the attempt back.
    Interrupted,
    /// Publish the final status and ack.
    Complete(JobOutput),
    /// Publish FAILED and ack; `dead_letter` when retries ran out.
    Fail {
        failure: JobFailure,
        dead_letter: bool,
    },
    /// Record the failure, give the lease back, leave the entry pending.
    Retry(JobFailure),
}

/// The outcome table of one attempt. A handler that returns an error as it is being stopped
/// was interrupted, not failed; a retryable failure on the last allowed attempt is final and
/// dead-lettered.
pub(super) fn decide(
    result: Option<Result<JobOutput, JobFailure>>,
    lost: bool,
    stopped: bool,
    attempt: u32,
    max_retries: u32,
) -> Decision {
    match result {
        _ if lost => Decision::LostOwnership,
        None => Decision::Interrupted,
        Some(Err(_)) if stopped => Decision::Interrupted,
        Some(Ok(output)) => Decision::Complete(output),
        Some(Err(failure)) if !failure.retryable || attempt >= max_retries => Decision::Fail {
            dead_letter: failure.retryable,
            failure,
        },
        Some(Err(failure)) => Decision::Retry(failure),
    }
}

/// Milliseconds since the epoch.
pub(super) fn now_ms() -> u64 {
    Utc::now().timestamp_millis().max(0) as u64
}

/// A duration in whole milliseconds, saturating.
pub(super) fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One attempt's identity: its entry, job keys and lease value.
struct Attempt<'a> {
    entry: &'a RawEntry,
    keys: JobKeys,
    lease: String,
}

impl Runner {
    /// Runs one entry to its end; never fails: every path ends in an [`EntryOutcome`].
    pub async fn process(
        self: Arc<Self>,
        entry: RawEntry,
        cancel: CancellationToken,
    ) -> EntryOutcome {
        let decoded =
            IncomingEvent::decode(entry.field(FIELD_EVENT_TYPE), entry.field(FIELD_PAYLOAD))
                .and_then(|event| {
                    if event.kind() == self.config.kind {
                        Ok(event)
                    } else {
                        Err(EventError::WrongStream {
                            event_type: event.event_type(),
                            stream: self.config.names.input.clone(),
                        })
                    }
                });
        let event = match decoded {
            Ok(event) => event,
            Err(error) => return self.dead_letter_invalid(&entry, &error).await,
        };
        let span = tracing::info_span!(
            "job",
            report_id = %event.report_id(),
            job_id = %event.job_id(),
            stage = event.stage().number(),
            entry = %entry.id,
        );
        self.run_job(&entry, event, cancel).instrument(span).await
    }

    async fn run_job(
        self: Arc<Self>,
        entry: &RawEntry,
        event: IncomingEvent,
        cancel: CancellationToken,
    ) -> EntryOutcome {
        let names = &self.config.names;
        let at = Attempt {
            entry,
            keys: names.job(event.job_id(), event.stage()),
            lease: format!("{}|{}|{}", entry.id, names.consumer, event.stage()),
        };
        let attempt = match self.acquire(&at).await {
            Ok(Acquired::Attempt(n)) => n,
            Ok(Acquired::AlreadyFinished) => return self.ack_duplicate(entry).await,
            Ok(Acquired::HeldElsewhere) => {
                tracing::info!("job runs elsewhere under a live lease: left alone");
                return EntryOutcome::HeldElsewhere;
            }
            Err(e) => return EntryOutcome::RedisError(e.to_string()),
        };
        if attempt > self.config.max_retries {
            let (reason, message) = self.last_failure(&at.keys).await;
            let failure = JobFailure::permanent(
                reason.unwrap_or(FailureReason::MaxRetriesExceeded),
                format!("gave up after {} attempts: {message}", attempt - 1),
            );
            return self.fail(&at, &event, failure, true).await;
        }
        tracing::info!(attempt, "job started");
        let started = tokio::time::Instant::now();
        let report_type = event.type_label();
        self.metrics
            .job_started(report_type, event.stage().number());
        self.metrics.in_flight_add(1);
        let ended = self.clone().execute(&at, &event, attempt, cancel).await;
        self.metrics.in_flight_add(-1);
        let decision = decide(
            ended.result,
            ended.lost,
            ended.stopped,
            attempt,
            self.config.max_retries,
        );
        let outcome = self.apply(&at, &event, attempt, decision).await;
        let (finished, reason) = outcome.metric_labels();
        JobFinished {
            report_type,
            stage: event.stage().number(),
            outcome: finished,
            reason,
            duration: started.elapsed(),
        }
        .emit(&self.metrics);
        outcome
    }

    async fn acquire(&self, at: &Attempt<'_>) -> redis::RedisResult<Acquired> {
        let call = scripts::Acquire {
            job: &at.keys,
            lease: &at.lease,
            entry_id: &at.entry.id,
            lease_ttl_ms: millis(self.config.stream.lease_ttl),
            now_ms: now_ms(),
            consumer: &self.config.names.consumer,
        };
        self.scripts.acquire(&mut self.conn.clone(), &call).await
    }

    /// Publishes the start, runs the handler as its own task beside a heartbeat, and waits for
    /// the first of: the handler's end, a stop (shutdown, lost ownership), the runtime limit.
    async fn execute(
        self: Arc<Self>,
        at: &Attempt<'_>,
        event: &IncomingEvent,
        attempt: u32,
        cancel: CancellationToken,
    ) -> Ended {
        let progress = Arc::new(Progress::new(
            self.conn.clone(),
            self.config.names.clone(),
            self.config.stream.output_maxlen.get(),
            event,
            self.config.stream.progress_interval,
        ));
        progress
            .publish(0, &format!("started (attempt {attempt})"))
            .await;
        let job_cancel = cancel.child_token();
        // If this future is dropped (the consumer task aborted), the heartbeat and the handler
        // stop with it, as they would with the process.
        let _stop_on_drop = job_cancel.clone().drop_guard();
        let lost = Arc::new(AtomicBool::new(false));
        let beat = tokio::spawn(self.clone().heartbeat_loop(
            at.entry.id.clone(),
            at.keys.clone(),
            at.lease.clone(),
            job_cancel.clone(),
            lost.clone(),
        ));
        let ctx = JobContext {
            attempt,
            cancel: job_cancel.clone(),
            progress,
            ledger: Arc::new(JobLedger::new(
                self.conn.clone(),
                at.keys.clone(),
                at.lease.clone(),
            )),
        };
        let event = self.with_stage1_prefix(event.clone()).await;
        // The handler runs as its own task: a panic in it becomes a failed attempt, and stopping
        // a job aborts it (dropping a VK session releases its tokens). The task keeps the job's
        // span, so what the handler logs names its job.
        let mut work = AbortOnDrop(tokio::spawn({
            let handler = self.handler.clone();
            async move { handler.run(event, ctx).await }.instrument(tracing::Span::current())
        }));
        let max_runtime = self.config.stream.max_job_runtime;
        let result = tokio::select! {
            joined = &mut work.0 => Some(joined.unwrap_or_else(|e| Err(JobFailure::retryable(
                FailureReason::InternalError,
                format!("the job panicked or was aborted: {e}"),
            )))),
            _ = job_cancel.cancelled() => None,
            _ = tokio::time::sleep(max_runtime) => Some(Err(JobFailure::retryable(
                FailureReason::InternalError,
                format!("the job ran longer than {}s", max_runtime.as_secs()),
            ))),
        };
        let stopped = job_cancel.is_cancelled();
        work.0.abort();
        job_cancel.cancel();
        let _ = beat.await;
        Ended {
            result,
            lost: lost.load(Ordering::Relaxed),
            stopped,
        }
    }

    /// Carries a [`Decision`] out in Redis.
    async fn apply(
        &self,
        at: &Attempt<'_>,
        event: &IncomingEvent,
        attempt: u32,
        decision: Decision,
    ) -> EntryOutcome {
        match decision {
            Decision::LostOwnership => {
                tracing::warn!("ownership lost to a peer: job stopped, nothing published");
                EntryOutcome::LostOwnership
            }
            Decision::Interrupted => {
                self.release_lease(at, None, true).await;
                tracing::info!("job interrupted by shutdown: entry left pending");
                EntryOutcome::Interrupted
            }
            Decision::Complete(output) => self.complete(at, event, output).await,
            Decision::Fail {
                failure,
                dead_letter,
            } => self.fail(at, event, failure, dead_letter).await,
            Decision::Retry(failure) => {
                tracing::warn!(reason = %failure.reason, error = %failure.message, attempt, "attempt failed: will be retried");
                self.release_lease(at, Some(&failure), false).await;
                EntryOutcome::RetryLater(failure.reason)
            }
        }
    }

    /// Heartbeats until `stop` fires; on lost ownership, flags it and stops the job.
    async fn heartbeat_loop(
        self: Arc<Self>,
        entry_id: String,
        keys: JobKeys,
        lease: String,
        stop: CancellationToken,
        lost: Arc<AtomicBool>,
    ) {
        let call = scripts::Heartbeat {
            names: &self.config.names,
            job: &keys,
            entry_id: &entry_id,
            lease: &lease,
            lease_ttl_ms: millis(self.config.stream.lease_ttl),
        };
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.config.stream.heartbeat_interval) => {}
            }
            match self.scripts.heartbeat(&mut self.conn.clone(), &call).await {
                Ok(Beat::Alive) => {}
                Ok(Beat::Lost) => {
                    lost.store(true, Ordering::Relaxed);
                    stop.cancel();
                    return;
                }
                // A missed beat is survivable (the lease outlives several); keep trying.
                Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
            }
        }
    }

    async fn complete(
        &self,
        at: &Attempt<'_>,
        event: &IncomingEvent,
        output: JobOutput,
    ) -> EntryOutcome {
        // A campaign has one stage: its end is the job's, COMPLETED.
        let completed = match event {
            IncomingEvent::SuggestPostCreated(_) | IncomingEvent::CommunityTaskCreated(_) => {
                StatusUpdate::completed_final
            }
            _ => StatusUpdate::completed,
        };
        // A job whose files are written may still end FAILED (a community task with a
        // community it could not collect): the status then carries its reason and its files.
        let (status, state) = match &output.failed {
            None => (
                completed(
                    &event.report_id(),
                    event.job_id(),
                    event.stage(),
                    output.artifacts.clone(),
                    output.message.clone(),
                    Utc::now(),
                ),
                State::Completed,
            ),
            Some(failure) => (
                StatusUpdate::failed(
                    &event.report_id(),
                    event.job_id(),
                    event.stage(),
                    failure.reason,
                    failure.message.clone(),
                    Utc::now(),
                )
                .with_artifacts(output.artifacts.clone()),
                State::Failed,
            ),
        };
        let status = status.with_metrics(output.metrics.clone());
        let graph = match event {
            IncomingEvent::Stage2Created(e) => Some(GraphReady::new(
                &e.report_id,
                &e.job_id,
                e.report_type,
                output.main_ids.clone(),
                output.artifacts.clone(),
            )),
            _ => None,
        };
        let graph = graph.and_then(|g| serde_json::to_string(&g).ok());
        let finished = self
            .finish(
                at,
                state,
                &output.artifacts.prefix,
                &status,
                graph.as_deref(),
                &[],
            )
            .await;
        match finished {
            Ok(Finished::Published) => match output.failed {
                None => {
                    tracing::info!(prefix = %output.artifacts.prefix, "job completed");
                    EntryOutcome::Completed
                }
                Some(failure) => {
                    tracing::warn!(
                        prefix = %output.artifacts.prefix,
                        reason = %failure.reason,
                        error = %failure.message,
                        "job failed with its files written"
                    );
                    EntryOutcome::Failed(failure.reason)
                }
            },
            Ok(Finished::AlreadyFinished) => EntryOutcome::AlreadyDone,
            Ok(Finished::OwnershipLost) => EntryOutcome::LostOwnership,
            Err(e) => EntryOutcome::RedisError(e.to_string()),
        }
    }

    async fn fail(
        &self,
        at: &Attempt<'_>,
        event: &IncomingEvent,
        failure: JobFailure,
        dead_letter: bool,
    ) -> EntryOutcome {
        let status = StatusUpdate::failed(
            &event.report_id(),
            event.job_id(),
            event.stage(),
            failure.reason,
            failure.message.clone(),
            Utc::now(),
        );
        let dead = if dead_letter {
            self.dead_fields(at.entry, &failure.message).await
        } else {
            Vec::new()
        };
        match self
            .finish(at, State::Failed, "", &status, None, &dead)
            .await
        {
            Ok(Finished::Published) if dead_letter => {
                DeadLettered {
                    entry: &at.entry.id,
                    reason: DeadLetterReason::MaxRetries,
                    error: &failure.message,
                }
                .emit(&self.metrics);
                EntryOutcome::DeadLettered(failure.message)
            }
            Ok(Finished::Published) => {
                tracing::warn!(reason = %failure.reason, error = %failure.message, "job failed");
                EntryOutcome::Failed(failure.reason)
            }
            Ok(Finished::AlreadyFinished) => EntryOutcome::AlreadyDone,
            Ok(Finished::OwnershipLost) => EntryOutcome::LostOwnership,
            Err(e) => EntryOutcome::RedisError(e.to_string()),
        }
    }

    async fn finish(
        &self,
        at: &Attempt<'_>,
        state: State,
        result: &str,
        status: &StatusUpdate,
        graph: Option<&str>,
        dead: &[(Vec<u8>, Vec<u8>)],
    ) -> redis::RedisResult<Finished> {
        let status = serde_json::to_string(status).unwrap_or_default();
        let call = scripts::Finish {
            names: &self.config.names,
            job: &at.keys,
            entry_id: &at.entry.id,
            lease: &at.lease,
            maxlen: u64::from(self.config.stream.output_maxlen.get()),
            state,
            result,
            now_ms: now_ms(),
            status: &status,
            graph,
            dead_letter: dead,
        };
        self.scripts.finish(&mut self.conn.clone(), &call).await
    }

    /// Gives the lease back; `interrupted`: the attempt was stopped by a shutdown and is not
    /// counted against `max_retries`.
    async fn release_lease(
        &self,
        at: &Attempt<'_>,
        failure: Option<&JobFailure>,
        interrupted: bool,
    ) {
        let call = scripts::Release {
            job: &at.keys,
            lease: &at.lease,
            failure: failure.map(|f| (f.reason, f.message.as_str())),
            give_back_attempt: interrupted,
        };
        if let Err(e) = self.scripts.release(&mut self.conn.clone(), &call).await {
            tracing::warn!(error = %e, "lease not released: it will expire");
        }
    }

    /// A Stage2Created without `stage1Prefix` gets the prefix stage 1 recorded as the `result` of
    /// its completed state record, so stage 2 finds stage 1 in O(1); without a record (expired,
    /// or stage 1 ran elsewhere) the event stays as it is and stage 2 lists the storage.
    async fn with_stage1_prefix(&self, event: IncomingEvent) -> IncomingEvent {
        let IncomingEvent::Stage2Created(mut e) = event else {
            return event;
        };
        if e.stage1_prefix.is_none() {
            let keys = self.config.names.job(&e.job_id, Stage::One);
            let fields: redis::RedisResult<(Option<String>, Option<String>)> = redis::cmd("HMGET")
                .arg(&keys.state)
                .arg(job_state::STATE)
                .arg(job_state::RESULT)
                .query_async(&mut self.conn.clone())
                .await;
            if let Ok((Some(state), Some(result))) = fields {
                let prefix = StagePrefix::parse(result.trim_end_matches('/'))
                    .ok()
                    .filter(|p| {
                        p.report_type() == e.report_type
                            && p.job_id() == &e.job_id
                            && p.stage() == Stage::One
                    });
                if State::parse(&state) == Some(State::Completed) {
                    if let Some(prefix) = prefix {
                        tracing::debug!(%prefix, "stage 1 prefix from its state record");
                        e.stage1_prefix = Some(prefix);
                    }
                }
            }
        }
        IncomingEvent::Stage2Created(e)
    }

    /// The reason and message of the last failed attempt, from the state record.
    async fn last_failure(&self, keys: &JobKeys) -> (Option<FailureReason>, String) {
        let fields: redis::RedisResult<(Option<String>, Option<String>)> = redis::cmd("HMGET")
            .arg(&keys.state)
            .arg(job_state::LAST_REASON)
            .arg(job_state::LAST_ERROR)
            .query_async(&mut self.conn.clone())
            .await;
        let (reason, message) = fields.unwrap_or((None, None));
        (
            reason.as_deref().and_then(FailureReason::parse),
            message
                .unwrap_or_else(|| "no attempt finished (the process died each time)".to_owned()),
        )
    }

    async fn ack_duplicate(&self, entry: &RawEntry) -> EntryOutcome {
        let names = &self.config.names;
        let acked: redis::RedisResult<i64> = redis::cmd("XACK")
            .arg(&names.input)
            .arg(&names.group)
            .arg(&entry.id)
            .query_async(&mut self.conn.clone())
            .await;
        match acked {
            Ok(_) => {
                tracing::info!(entry = %entry.id, "job stage already finished: duplicate acknowledged");
                EntryOutcome::AlreadyDone
            }
            Err(e) => EntryOutcome::RedisError(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Artifacts;

    fn output() -> JobOutput {
        JobOutput {
            artifacts: Artifacts {
                prefix: "p/".into(),
                manifest: "p/manifest.json".into(),
            },
            main_ids: Vec::new(),
            message: "done".into(),
            metrics: None,
            failed: None,
        }
    }

    /// What the handler returned, if it did.
    type Handled = Option<Result<JobOutput, JobFailure>>;

    fn retryable() -> JobFailure {
        JobFailure::retryable(FailureReason::NetworkError, "down")
    }

    fn permanent() -> JobFailure {
        JobFailure::permanent(FailureReason::InvalidEvent, "bad")
    }

    #[test]
    fn the_outcome_table_of_an_attempt() {
        use Decision::*;
        // (result, lost, stopped, attempt, max_retries) -> decision
        let table: Vec<(Handled, bool, bool, u32, Decision)> = vec![
            // A peer owns the entry: whatever the handler did, nothing is published.
            (Some(Ok(output())), true, true, 1, LostOwnership),
            (None, true, true, 1, LostOwnership),
            // Stopped before the handler returned, or it errored while being stopped.
            (None, false, true, 1, Interrupted),
            (Some(Err(permanent())), false, true, 1, Interrupted),
            // A result that made it before the stop is still a result.
            (Some(Ok(output())), false, true, 1, Complete(output())),
            (Some(Ok(output())), false, false, 3, Complete(output())),
            // Permanent failures end the job at once, without a dead letter.
            (
                Some(Err(permanent())),
                false,
                false,
                1,
                Fail {
                    failure: permanent(),
                    dead_letter: false,
                },
            ),
            // Retryable ones are retried until the last allowed attempt, then dead-lettered.
            (Some(Err(retryable())), false, false, 1, Retry(retryable())),
            (Some(Err(retryable())), false, false, 2, Retry(retryable())),
            (
                Some(Err(retryable())),
                false,
                false,
                3,
                Fail {
                    failure: retryable(),
                    dead_letter: true,
                },
            ),
        ];
        for (result, lost, stopped, attempt, expected) in table {
            let shown = format!("{result:?} lost={lost} stopped={stopped} attempt={attempt}");
            assert_eq!(
                decide(result, lost, stopped, attempt, 3),
                expected,
                "{shown}"
            );
        }
    }

    #[test]
    fn outcomes_name_their_metric_labels() {
        let cases = [
            (EntryOutcome::Completed, ("completed", None)),
            (
                EntryOutcome::Failed(FailureReason::VkAccessDenied),
                ("failed", Some(FailureReason::VkAccessDenied)),
            ),
            (
                EntryOutcome::DeadLettered("x".into()),
                ("failed", Some(FailureReason::MaxRetriesExceeded)),
            ),
            (
                EntryOutcome::RetryLater(FailureReason::NetworkError),
                ("retried", Some(FailureReason::NetworkError)),
            ),
            (EntryOutcome::Interrupted, ("interrupted", None)),
            (EntryOutcome::LostOwnership, ("interrupted", None)),
        ];
        for (outcome, labels) in cases {
            assert_eq!(outcome.metric_labels(), labels, "{outcome:?}");
        }
    }
}
