//! The stream consumer: reads report events, runs each as a job, and publishes exactly one
//! final status per job stage, however many replicas run and whichever of them dies.
//!
//! # Redis Streams in brief
//!
//! - **Keys.** Events arrive on `stream:parser:vk`. Statuses go to
//!   `stream:report:status-change`, GraphReady events to `stream:graph-worker`, entries we give up
//!   on to `stream:parser:vk:dead`. Per job, `vkp:job:{jobId}:stage{n}` (a hash) records its state
//!   and `vkp:lease:{jobId}` (a string with a TTL) says who runs it. On a Redis Cluster every
//!   one of these names carries the `redis.hash_tag` (`stream:{vkp}:parser:vk`,
//!   `vkp:{vkp}:job:…`), so each script's keys share one slot ([`super::keys`]).
//! - **Group and consumer.** All replicas read as one group (`cg_vk_parser`), each under its own
//!   consumer name; `XREADGROUP … >` hands every new entry to exactly one of them and records it
//!   in the group's pending list (PEL) under that consumer. The group is created at start
//!   (`XGROUP CREATE … $ MKSTREAM`) and again whenever Redis answers NOGROUP (a restarted, empty
//!   Redis).
//! - **When we ack.** Only when a job stage has a final result, in the same Lua script that
//!   publishes the final status (and GraphReady) and only if the PEL still names this consumer
//!   as the entry's owner ([`super::scripts::finish`]). A job that fails in a way another attempt
//!   could fix is not acknowledged: its entry stays pending and is retried.
//! - **Reclaiming.** A running job heartbeats: it resets its entry's idle time (`XCLAIM … JUSTID`)
//!   and extends its lease. An entry idle for `min_idle` therefore belongs to a dead consumer or a
//!   failed attempt, and `XAUTOCLAIM` (every `reclaim_interval`) moves it to a live one. A job
//!   whose heartbeat finds its entry owned by someone else stops at once.
//! - **Idempotency.** The state record makes redelivery harmless: an entry whose job stage already
//!   finished is acknowledged without running or publishing anything; one whose job runs
//!   elsewhere under a live lease is left alone. Event ids are deterministic, so even a repeated
//!   publication would carry the same `eventId`.
//! - **Poison messages.** An entry that does not decode is copied to the dead-letter stream with
//!   its error and acknowledged at once (with a FAILED/INVALID_EVENT status when its reportId and
//!   jobId can be read). A job that keeps failing is failed for good after `max_retries`
//!   attempts: FAILED with the last error's reason, a dead letter, an ack. Nothing blocks the
//!   group.
//!
//! [`Consumer::run`] is the service loop; [`Consumer::try_process_next`] and
//! [`Consumer::try_reclaim`] are one-step versions that let tests drive it deterministically.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use redis::{Script, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::entry::{parse_autoclaim_reply, parse_read_reply, RawEntry};
use super::job::{JobContext, JobFailure, JobHandler, JobOutput, Progress};
use super::keys::{JobKeys, StreamNames};
use super::records::job_state;
use super::scripts::{self, STATE_TTL_MS};
use crate::events::{
    salvage_ids, EventError, FailureReason, GraphReady, IncomingEvent, StatusUpdate,
    FIELD_EVENT_TYPE, FIELD_PAYLOAD,
};
use crate::ids::Stage;
use crate::key::StagePrefix;
use crate::metrics::Metrics;
use crate::redis_conn::{ConnectOptions, RedisConn, RedisTarget};
use crate::settings::{Settings, StreamSettings};

/// Timeout of ordinary Redis commands (blocking reads get their block time on top).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// What can stop the consumer.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Redis refused or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

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

/// The consumer's settings, resolved.
#[derive(Debug, Clone)]
struct Config {
    names: StreamNames,
    stream: StreamSettings,
    max_concurrent: usize,
    max_retries: u32,
}

/// What every job task shares.
struct Shared {
    conn: RedisConn,
    config: Config,
    handler: Arc<dyn JobHandler>,
    metrics: Arc<Metrics>,
    acquire: Script,
    heartbeat: Script,
    finish: Script,
    dead_letter: Script,
    release: Script,
}

/// A stream consumer of the group.
pub struct Consumer {
    target: RedisTarget,
    shared: Arc<Shared>,
    reader: Option<RedisConn>,
    /// Own pending entries are read (from this id on) before new ones; `None` once done.
    pending_cursor: Option<String>,
}

fn now_ms() -> u64 {
    Utc::now().timestamp_millis().max(0) as u64
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

impl Consumer {
    /// Connects to Redis and makes sure the group exists.
    pub async fn connect(
        settings: &Settings,
        handler: Arc<dyn JobHandler>,
        metrics: Arc<Metrics>,
    ) -> Result<Consumer, StreamError> {
        let target = RedisTarget::from_settings(&settings.redis)?;
        let conn = target
            .managed(ConnectOptions {
                connection_timeout: Some(COMMAND_TIMEOUT),
                response_timeout: Some(COMMAND_TIMEOUT),
                retries: Some(3),
                max_delay: Some(Duration::from_secs(2)),
            })
            .await?;
        let config = Config {
            names: StreamNames::from_settings(settings),
            stream: settings.stream.clone(),
            max_concurrent: settings.service.max_concurrent_messages.get() as usize,
            max_retries: settings.service.max_retries.get(),
        };
        let shared = Arc::new(Shared {
            conn,
            config,
            handler,
            metrics,
            acquire: scripts::acquire(),
            heartbeat: scripts::heartbeat(),
            finish: scripts::finish(),
            dead_letter: scripts::dead_letter(),
            release: scripts::release(),
        });
        let consumer = Consumer {
            target,
            shared,
            reader: None,
            pending_cursor: Some("0".to_owned()),
        };
        consumer.ensure_group().await?;
        Ok(consumer)
    }

    /// The stream and group names in use.
    pub fn names(&self) -> &StreamNames {
        &self.shared.config.names
    }

    async fn ensure_group(&self) -> Result<(), StreamError> {
        let names = &self.shared.config.names;
        let mut conn = self.shared.conn.clone();
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&names.input)
            .arg(&names.group)
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Ok(()) => {
                tracing::info!(stream = %names.input, group = %names.group, "consumer group created");
                Ok(())
            }
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The dedicated connection for blocking reads: its response timeout must outlast BLOCK, and
    /// it must not be the multiplexed connection other commands wait behind.
    async fn reader(&mut self) -> Result<RedisConn, StreamError> {
        if let Some(reader) = &self.reader {
            return Ok(reader.clone());
        }
        let reader = self
            .target
            .dedicated(ConnectOptions {
                connection_timeout: Some(COMMAND_TIMEOUT),
                response_timeout: Some(self.shared.config.stream.block + COMMAND_TIMEOUT),
                ..ConnectOptions::default()
            })
            .await?;
        self.reader = Some(reader.clone());
        Ok(reader)
    }

    /// Reads up to `count` entries: own pending ones first (no blocking), then new ones.
    async fn read(&mut self, count: usize) -> Result<Vec<RawEntry>, StreamError> {
        let names = self.shared.config.names.clone();
        let mut reader = self.reader().await?;
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&names.group)
            .arg(&names.consumer)
            .arg("COUNT")
            .arg(count.max(1));
        let from = match &self.pending_cursor {
            Some(cursor) => cursor.clone(),
            None => {
                cmd.arg("BLOCK")
                    .arg(millis(self.shared.config.stream.block));
                ">".to_owned()
            }
        };
        cmd.arg("STREAMS").arg(&names.input).arg(&from);
        let reply: redis::RedisResult<Value> = cmd.query_async(&mut reader).await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                self.recover(&e).await;
                return Err(e.into());
            }
        };
        let entries = parse_read_reply(&reply);
        tracing::trace!(from = %from, entries = entries.len(), "read");
        if self.pending_cursor.is_some() {
            // Own pending entries come back in id order; an empty page ends that phase.
            self.pending_cursor = entries.last().map(|e| e.id.clone());
        }
        Ok(entries)
    }

    /// Repairs what an error says is broken: a missing group (a restarted, empty Redis) is
    /// recreated, a broken reader is rebuilt on the next read.
    async fn recover(&mut self, error: &redis::RedisError) {
        if error.code() == Some("NOGROUP") {
            tracing::warn!("consumer group missing (Redis restarted?): recreating it");
            if let Err(e) = self.ensure_group().await {
                tracing::warn!(error = %e, "consumer group not recreated yet");
            }
        } else {
            self.reader = None;
        }
    }

    /// Takes over up to `count` entries idle for `min_idle` (dead consumers, failed attempts),
    /// and refreshes the lag and pending gauges.
    async fn reclaim(&mut self, count: usize) -> Result<Vec<RawEntry>, StreamError> {
        let names = self.shared.config.names.clone();
        let mut conn = self.shared.conn.clone();
        let reply: redis::RedisResult<Value> = redis::cmd("XAUTOCLAIM")
            .arg(&names.input)
            .arg(&names.group)
            .arg(&names.consumer)
            .arg(millis(self.shared.config.stream.min_idle))
            .arg("0-0")
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut conn)
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                self.recover(&e).await;
                return Err(e.into());
            }
        };
        let (_, entries) = parse_autoclaim_reply(&reply);
        if !entries.is_empty() {
            tracing::info!(count = entries.len(), "reclaimed idle entries");
            self.shared.metrics.entries_reclaimed(entries.len() as u64);
        }
        self.refresh_gauges().await;
        Ok(entries)
    }

    async fn refresh_gauges(&self) {
        let names = &self.shared.config.names;
        let mut conn = self.shared.conn.clone();
        let Ok(info) = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&names.input)
            .query_async::<redis::streams::StreamInfoGroupsReply>(&mut conn)
            .await
        else {
            return;
        };
        if let Some(ours) = info.groups.iter().find(|g| g.name == names.group) {
            self.shared.metrics.set_pending(ours.pending as i64);
            if let Some(lag) = ours.lag {
                self.shared.metrics.set_group_lag(lag as i64);
            }
        }
    }

    /// One step for tests: reads the next entry (own pending first) and runs it to its end.
    /// `Ok(None)` when nothing arrived within the block time.
    pub async fn try_process_next(
        &mut self,
    ) -> Result<Option<(String, EntryOutcome)>, StreamError> {
        loop {
            let was_pending_phase = self.pending_cursor.is_some();
            let mut entries = self.read(1).await?;
            match entries.pop() {
                Some(entry) => {
                    let id = entry.id.clone();
                    let outcome = self
                        .shared
                        .clone()
                        .process(entry, CancellationToken::new())
                        .await;
                    return Ok(Some((id, outcome)));
                }
                // The pending phase just ended: go on to new entries.
                None if was_pending_phase => continue,
                None => return Ok(None),
            }
        }
    }

    /// One step for tests: reclaims idle entries and runs each to its end.
    pub async fn try_reclaim(&mut self) -> Result<Vec<(String, EntryOutcome)>, StreamError> {
        let mut outcomes = Vec::new();
        for entry in self.reclaim(self.shared.config.max_concurrent).await? {
            let id = entry.id.clone();
            outcomes.push((
                id,
                self.shared
                    .clone()
                    .process(entry, CancellationToken::new())
                    .await,
            ));
        }
        Ok(outcomes)
    }

    /// Serves until `shutdown` fires, then drains: running jobs get `shutdown_grace` to finish,
    /// the rest are stopped and their entries left pending for a peer.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), StreamError> {
        let config = self.shared.config.clone();
        let slots = Arc::new(Semaphore::new(config.max_concurrent));
        let stop_jobs = CancellationToken::new();
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut next_reclaim = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        tracing::info!(
            stream = %config.names.input,
            group = %config.names.group,
            consumer = %config.names.consumer,
            "consumer started"
        );
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            let free = slots.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = tasks.join_next() => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            // Reclaiming takes its turn between reads rather than racing them: a read dropped
            // mid-flight would strand the entries Redis had just handed us until the next reclaim.
            let batch = if tokio::time::Instant::now() >= next_reclaim {
                next_reclaim = tokio::time::Instant::now() + config.stream.reclaim_interval;
                self.reclaim(free).await
            } else {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    read = self.read(free) => read,
                }
            };
            let entries = match batch {
                Ok(entries) => {
                    backoff = Duration::from_millis(100);
                    entries
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = millis(backoff), "redis read failed");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            for entry in entries {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let shared = self.shared.clone();
                let cancel = stop_jobs.child_token();
                tasks.spawn(async move {
                    let _permit = permit;
                    shared.process(entry, cancel).await;
                });
            }
        }
        tracing::info!(
            running = tasks.len(),
            grace_secs = config.stream.shutdown_grace.as_secs(),
            "shutting down: draining jobs"
        );
        let drained = tokio::time::timeout(config.stream.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                running = tasks.len(),
                "grace period over: stopping the remaining jobs"
            );
            stop_jobs.cancel();
            while tasks.join_next().await.is_some() {}
        }
        tracing::info!("consumer stopped");
        Ok(())
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Shared {
    /// Runs one entry to its end; never fails: every path ends in an [`EntryOutcome`].
    async fn process(self: Arc<Self>, entry: RawEntry, cancel: CancellationToken) -> EntryOutcome {
        let decoded =
            IncomingEvent::decode(entry.field(FIELD_EVENT_TYPE), entry.field(FIELD_PAYLOAD));
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
        self.run_job(entry, event, cancel).instrument(span).await
    }

    fn lease_value(&self, entry: &RawEntry, stage: Stage) -> String {
        format!("{}|{}|{}", entry.id, self.config.names.consumer, stage)
    }

    async fn run_job(
        self: Arc<Self>,
        entry: RawEntry,
        event: IncomingEvent,
        cancel: CancellationToken,
    ) -> EntryOutcome {
        let names = &self.config.names;
        let keys = names.job(event.job_id(), event.stage());
        let lease = self.lease_value(&entry, event.stage());
        let mut conn = self.conn.clone();
        let attempt: redis::RedisResult<i64> = self
            .acquire
            .key(&keys.lease)
            .key(&keys.state)
            .arg(&lease)
            .arg(&entry.id)
            .arg(millis(self.config.stream.lease_ttl))
            .arg(now_ms())
            .arg(&names.consumer)
            .arg(STATE_TTL_MS)
            .invoke_async(&mut conn)
            .await;
        let attempt = match attempt {
            Ok(-2) => return self.ack_duplicate(&entry).await,
            Ok(-1) => {
                tracing::info!("job runs elsewhere under a live lease: left alone");
                return EntryOutcome::HeldElsewhere;
            }
            Ok(n) => n.max(1) as u32,
            Err(e) => return EntryOutcome::RedisError(e.to_string()),
        };
        let report_type = match &event {
            IncomingEvent::ReportCreated(e) => e.report_type,
            IncomingEvent::Stage2Created(e) => e.report_type,
        };
        if attempt > self.config.max_retries {
            let (reason, message) = self.last_failure(&keys).await;
            let failure = JobFailure::permanent(
                reason.unwrap_or(FailureReason::MaxRetriesExceeded),
                format!("gave up after {} attempts: {message}", attempt - 1),
            );
            return self
                .fail(&entry, &event, &keys, &lease, failure, true)
                .await;
        }
        tracing::info!(attempt, "job started");
        let started = tokio::time::Instant::now();
        self.metrics
            .job_started(report_type.as_str(), event.stage().number());
        self.metrics.in_flight_add(1);
        let progress = Arc::new(Progress::new(
            self.conn.clone(),
            names.clone(),
            self.config.stream.output_maxlen.get(),
            &event,
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
            entry.id.clone(),
            keys.clone(),
            lease.clone(),
            job_cancel.clone(),
            lost.clone(),
        ));
        let ctx = JobContext {
            attempt,
            cancel: job_cancel.clone(),
            progress,
        };
        let event = self.with_stage1_prefix(event).await;
        // The handler runs as its own task: a panic in it becomes a failed attempt, and stopping
        // a job aborts it (dropping a VK session releases its tokens).
        // The task keeps the job's span, so what the handler logs names its job.
        let mut work = AbortOnDrop(tokio::spawn({
            let handler = self.handler.clone();
            let event = event.clone();
            async move { handler.run(event, ctx).await }.instrument(tracing::Span::current())
        }));
        let result: Option<Result<JobOutput, JobFailure>> = tokio::select! {
            joined = &mut work.0 => Some(joined.unwrap_or_else(|e| Err(JobFailure::retryable(
                FailureReason::InternalError,
                format!("the job panicked or was aborted: {e}"),
            )))),
            _ = job_cancel.cancelled() => None,
            _ = tokio::time::sleep(self.config.stream.max_job_runtime) => Some(Err(JobFailure::retryable(
                FailureReason::InternalError,
                format!("the job ran longer than {}s", self.config.stream.max_job_runtime.as_secs()),
            ))),
        };
        // Whether the job was told to stop (shutdown or lost ownership) before it ended: a
        // handler that returns an error as it stops is interrupted, not failed.
        let stopped = job_cancel.is_cancelled();
        work.0.abort();
        job_cancel.cancel();
        let _ = beat.await;
        self.metrics.in_flight_add(-1);
        let outcome = match result {
            _ if lost.load(Ordering::Relaxed) => {
                tracing::warn!("ownership lost to a peer: job stopped, nothing published");
                EntryOutcome::LostOwnership
            }
            None | Some(Err(_)) if stopped => {
                self.release_lease(&keys, &lease, None, true).await;
                tracing::info!("job interrupted by shutdown: entry left pending");
                EntryOutcome::Interrupted
            }
            None => {
                self.release_lease(&keys, &lease, None, true).await;
                EntryOutcome::Interrupted
            }
            Some(Ok(output)) => self.complete(&entry, &event, &keys, &lease, output).await,
            Some(Err(failure)) if !failure.retryable || attempt >= self.config.max_retries => {
                let exhausted = failure.retryable;
                self.fail(&entry, &event, &keys, &lease, failure, exhausted)
                    .await
            }
            Some(Err(failure)) => {
                tracing::warn!(reason = ?failure.reason, error = %failure.message, attempt, "attempt failed: will be retried");
                self.release_lease(&keys, &lease, Some(&failure), false)
                    .await;
                EntryOutcome::RetryLater(failure.reason)
            }
        };
        let (finished, reason) = match &outcome {
            EntryOutcome::Completed => ("completed", None),
            EntryOutcome::Failed(r) => ("failed", Some(*r)),
            EntryOutcome::DeadLettered(_) => ("failed", Some(FailureReason::MaxRetriesExceeded)),
            // Not final: the entry goes back to the group, with the reason the attempt failed.
            EntryOutcome::RetryLater(r) => ("retried", Some(*r)),
            _ => ("interrupted", None),
        };
        let reason = reason.map(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        });
        self.metrics.job_finished(
            report_type.as_str(),
            event.stage().number(),
            finished,
            reason.as_deref(),
            started.elapsed(),
        );
        outcome
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
        let names = &self.config.names;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.config.stream.heartbeat_interval) => {}
            }
            let mut conn = self.conn.clone();
            let alive: redis::RedisResult<i64> = self
                .heartbeat
                .key(&names.input)
                .key(&keys.lease)
                .arg(&names.group)
                .arg(&names.consumer)
                .arg(&entry_id)
                .arg(&lease)
                .arg(millis(self.config.stream.lease_ttl))
                .invoke_async(&mut conn)
                .await;
            match alive {
                Ok(1) => {}
                Ok(_) => {
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
        entry: &RawEntry,
        event: &IncomingEvent,
        keys: &JobKeys,
        lease: &str,
        output: JobOutput,
    ) -> EntryOutcome {
        let stage = event.stage();
        let status = StatusUpdate::completed(
            event.report_id(),
            event.job_id(),
            stage,
            output.artifacts.clone(),
            output.message.clone(),
            Utc::now(),
        );
        let graph = match event {
            IncomingEvent::Stage2Created(e) => Some(GraphReady::new(
                &e.report_id,
                &e.job_id,
                e.report_type,
                output.main_ids.clone(),
                output.artifacts.clone(),
            )),
            IncomingEvent::ReportCreated(_) => None,
        };
        let outcome = self
            .finish_entry(
                entry,
                keys,
                lease,
                "completed",
                &output.artifacts.prefix,
                &status,
                graph.as_ref(),
                &[],
            )
            .await;
        match outcome {
            Ok(1) => {
                tracing::info!(prefix = %output.artifacts.prefix, "job completed");
                EntryOutcome::Completed
            }
            Ok(2) => EntryOutcome::AlreadyDone,
            Ok(_) => EntryOutcome::LostOwnership,
            Err(e) => EntryOutcome::RedisError(e.to_string()),
        }
    }

    async fn fail(
        &self,
        entry: &RawEntry,
        event: &IncomingEvent,
        keys: &JobKeys,
        lease: &str,
        failure: JobFailure,
        dead_letter: bool,
    ) -> EntryOutcome {
        let status = StatusUpdate::failed(
            event.report_id(),
            event.job_id(),
            event.stage(),
            failure.reason,
            failure.message.clone(),
            Utc::now(),
        );
        let dead = if dead_letter {
            self.dead_fields(entry, &failure.message).await
        } else {
            Vec::new()
        };
        match self
            .finish_entry(entry, keys, lease, "failed", "", &status, None, &dead)
            .await
        {
            Ok(1) if dead_letter => {
                tracing::warn!(reason = ?failure.reason, error = %failure.message, "job failed for good: dead-lettered");
                self.metrics.dead_lettered("max_retries");
                EntryOutcome::DeadLettered(failure.message)
            }
            Ok(1) => {
                tracing::warn!(reason = ?failure.reason, error = %failure.message, "job failed");
                EntryOutcome::Failed(failure.reason)
            }
            Ok(2) => EntryOutcome::AlreadyDone,
            Ok(_) => EntryOutcome::LostOwnership,
            Err(e) => EntryOutcome::RedisError(e.to_string()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_entry(
        &self,
        entry: &RawEntry,
        keys: &JobKeys,
        lease: &str,
        final_state: &str,
        result: &str,
        status: &StatusUpdate,
        graph: Option<&GraphReady>,
        dead: &[(Vec<u8>, Vec<u8>)],
    ) -> redis::RedisResult<i64> {
        let names = &self.config.names;
        let status = serde_json::to_string(status).unwrap_or_default();
        let graph = graph
            .and_then(|g| serde_json::to_string(g).ok())
            .unwrap_or_default();
        let mut invocation = self.finish.prepare_invoke();
        invocation
            .key(&names.input)
            .key(&names.status)
            .key(&names.graph)
            .key(&keys.state)
            .key(&keys.lease)
            .key(&names.dead)
            .arg(&names.group)
            .arg(&names.consumer)
            .arg(&entry.id)
            .arg(lease)
            .arg(self.config.stream.output_maxlen.get())
            .arg(final_state)
            .arg(result)
            .arg(now_ms())
            .arg(status)
            .arg(graph)
            .arg(STATE_TTL_MS);
        for (k, v) in dead {
            invocation.arg(k.as_slice()).arg(v.as_slice());
        }
        let mut conn = self.conn.clone();
        invocation.invoke_async(&mut conn).await
    }

    /// Gives the lease back; `interrupted`: the attempt was stopped by a shutdown and is not
    /// counted against `max_retries`.
    async fn release_lease(
        &self,
        keys: &JobKeys,
        lease: &str,
        failure: Option<&JobFailure>,
        interrupted: bool,
    ) {
        let reason = failure
            .and_then(|f| serde_json::to_value(f.reason).ok())
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let message = failure.map(|f| f.message.clone()).unwrap_or_default();
        let mut conn = self.conn.clone();
        let released: redis::RedisResult<i64> = self
            .release
            .key(&keys.lease)
            .key(&keys.state)
            .arg(lease)
            .arg(reason)
            .arg(message)
            .arg(if interrupted { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "lease not released: it will expire");
        }
    }

    /// The reason and message of the last failed attempt, from the state record.
    /// A Stage2Created without `stage1Prefix` gets the prefix stage 1 recorded as the `result` of
    /// its completed state record, so stage 2 finds stage 1 in O(1); without a record (expired,
    /// or stage 1 ran elsewhere) the event stays as it is and stage 2 lists the storage.
    async fn with_stage1_prefix(&self, event: IncomingEvent) -> IncomingEvent {
        let IncomingEvent::Stage2Created(mut e) = event else {
            return event;
        };
        if e.stage1_prefix.is_none() {
            let keys = self.config.names.job(&e.job_id, Stage::One);
            let mut conn = self.conn.clone();
            let fields: redis::RedisResult<(Option<String>, Option<String>)> = redis::cmd("HMGET")
                .arg(&keys.state)
                .arg(job_state::STATE)
                .arg(job_state::RESULT)
                .query_async(&mut conn)
                .await;
            if let Ok((Some(state), Some(result))) = fields {
                let prefix = StagePrefix::parse(result.trim_end_matches('/'))
                    .ok()
                    .filter(|p| {
                        p.report_type() == e.report_type
                            && p.job_id() == &e.job_id
                            && p.stage() == Stage::One
                    });
                if job_state::State::parse(&state) == Some(job_state::State::Completed) {
                    if let Some(prefix) = prefix {
                        tracing::debug!(%prefix, "stage 1 prefix from its state record");
                        e.stage1_prefix = Some(prefix);
                    }
                }
            }
        }
        IncomingEvent::Stage2Created(e)
    }

    async fn last_failure(&self, keys: &JobKeys) -> (Option<FailureReason>, String) {
        let mut conn = self.conn.clone();
        let fields: redis::RedisResult<(Option<String>, Option<String>)> = redis::cmd("HMGET")
            .arg(&keys.state)
            .arg(job_state::LAST_REASON)
            .arg(job_state::LAST_ERROR)
            .query_async(&mut conn)
            .await;
        let (reason, message) = fields.unwrap_or((None, None));
        let reason = reason.and_then(|r| serde_json::from_value(serde_json::Value::String(r)).ok());
        (
            reason,
            message
                .unwrap_or_else(|| "no attempt finished (the process died each time)".to_owned()),
        )
    }

    async fn ack_duplicate(&self, entry: &RawEntry) -> EntryOutcome {
        let names = &self.config.names;
        let mut conn = self.conn.clone();
        let acked: redis::RedisResult<i64> = redis::cmd("XACK")
            .arg(&names.input)
            .arg(&names.group)
            .arg(&entry.id)
            .query_async(&mut conn)
            .await;
        match acked {
            Ok(_) => {
                tracing::info!(entry = %entry.id, "job stage already finished: duplicate acknowledged");
                EntryOutcome::AlreadyDone
            }
            Err(e) => EntryOutcome::RedisError(e.to_string()),
        }
    }

    /// The dead-letter record ([`super::records::dead_letter`]).
    async fn dead_fields(&self, entry: &RawEntry, error: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let deliveries = self.delivery_count(&entry.id).await;
        super::records::dead_letter::fields(
            error,
            &entry.id,
            deliveries,
            &self.config.names.consumer,
            &Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            &entry.fields,
        )
    }

    async fn delivery_count(&self, entry_id: &str) -> i64 {
        let names = &self.config.names;
        let mut conn = self.conn.clone();
        let reply: redis::RedisResult<redis::streams::StreamPendingCountReply> =
            redis::cmd("XPENDING")
                .arg(&names.input)
                .arg(&names.group)
                .arg(entry_id)
                .arg(entry_id)
                .arg(1)
                .query_async(&mut conn)
                .await;
        reply
            .ok()
            .and_then(|r| r.ids.first().map(|p| p.times_delivered as i64))
            .unwrap_or(0)
    }

    /// An entry that is not a valid event: dead letter, FAILED/INVALID_EVENT if its ids are
    /// readable, ack.
    async fn dead_letter_invalid(&self, entry: &RawEntry, error: &EventError) -> EntryOutcome {
        let names = &self.config.names;
        let message = error.to_string();
        tracing::warn!(entry = %entry.id, error = %message, "invalid event: dead-lettered");
        let status = entry
            .field(FIELD_PAYLOAD)
            .and_then(salvage_ids)
            .map(|(report, job)| {
                // The stage is a guess from the event type (or its alias); Stage2Created fails
                // stage 2.
                let stage = entry
                    .field(FIELD_EVENT_TYPE)
                    .and_then(|raw| std::str::from_utf8(raw).ok())
                    .and_then(IncomingEvent::stage_of)
                    .unwrap_or(Stage::One);
                let update = StatusUpdate::failed(
                    &report,
                    &job,
                    stage,
                    FailureReason::InvalidEvent,
                    message.clone(),
                    Utc::now(),
                );
                serde_json::to_string(&update).unwrap_or_default()
            })
            .unwrap_or_default();
        let dead = self.dead_fields(entry, &message).await;
        let mut invocation = self.dead_letter.prepare_invoke();
        invocation
            .key(&names.input)
            .key(&names.dead)
            .key(&names.status)
            .arg(&names.group)
            .arg(&names.consumer)
            .arg(&entry.id)
            .arg(self.config.stream.output_maxlen.get())
            .arg(status);
        for (k, v) in &dead {
            invocation.arg(k.as_slice()).arg(v.as_slice());
        }
        let mut conn = self.conn.clone();
        match invocation.invoke_async::<i64>(&mut conn).await {
            Ok(1) => {
                self.metrics.dead_lettered("invalid_event");
                EntryOutcome::DeadLettered(message)
            }
            Ok(_) => EntryOutcome::LostOwnership,
            Err(e) => EntryOutcome::RedisError(e.to_string()),
        }
    }
}
