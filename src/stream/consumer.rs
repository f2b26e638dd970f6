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
//!   as the entry's owner ([`super::scripts::Finish`]). A job that fails in a way another attempt
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

use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::attempt::{millis, Config, EntryOutcome, Runner};
use super::entry::{parse_autoclaim_reply, parse_read_reply, RawEntry};
use super::job::JobHandler;
use super::keys::StreamNames;
use super::scripts::Scripts;
use crate::events::JobKind;
use crate::internal_events::EntriesReclaimed;
use crate::metrics::Metrics;
use crate::redis_conn::{ConnectOptions, RedisConn, RedisTarget};
use crate::settings::Settings;

/// Timeout of ordinary Redis commands (blocking reads get their block time on top).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// What can stop the consumer.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Redis refused or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// A stream consumer of the group.
pub struct Consumer {
    target: RedisTarget,
    runner: Arc<Runner>,
    reader: Option<RedisConn>,
    /// Own pending entries are read (from this id on) before new ones; `None` once done.
    pending_cursor: Option<String>,
}

impl Consumer {
    /// Connects to Redis and makes sure the group of `kind` exists.
    pub async fn connect(
        settings: &Settings,
        kind: JobKind,
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
            kind,
            names: StreamNames::from_settings(settings, kind),
            stream: settings.stream.clone(),
            max_concurrent: settings.service.max_concurrent_messages.get() as usize,
            max_retries: settings.service.max_retries.get(),
        };
        let runner = Arc::new(Runner {
            conn,
            config,
            handler,
            metrics,
            scripts: Scripts::new(),
        });
        let consumer = Consumer {
            target,
            runner,
            reader: None,
            pending_cursor: Some("0".to_owned()),
        };
        consumer.ensure_group().await?;
        Ok(consumer)
    }

    /// The stream and group names in use.
    pub fn names(&self) -> &StreamNames {
        &self.runner.config.names
    }

    async fn ensure_group(&self) -> Result<(), StreamError> {
        let names = &self.runner.config.names;
        let mut conn = self.runner.conn.clone();
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
                response_timeout: Some(self.runner.config.stream.block + COMMAND_TIMEOUT),
                ..ConnectOptions::default()
            })
            .await?;
        self.reader = Some(reader.clone());
        Ok(reader)
    }

    /// Reads up to `count` entries: own pending ones first (no blocking), then new ones.
    async fn read(&mut self, count: usize) -> Result<Vec<RawEntry>, StreamError> {
        let names = self.runner.config.names.clone();
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
                    .arg(millis(self.runner.config.stream.block));
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
        let names = self.runner.config.names.clone();
        let mut conn = self.runner.conn.clone();
        let reply: redis::RedisResult<Value> = redis::cmd("XAUTOCLAIM")
            .arg(&names.input)
            .arg(&names.group)
            .arg(&names.consumer)
            .arg(millis(self.runner.config.stream.min_idle))
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
        EntriesReclaimed {
            count: entries.len(),
        }
        .emit(&self.runner.metrics);
        self.refresh_gauges().await;
        Ok(entries)
    }

    async fn refresh_gauges(&self) {
        let names = &self.runner.config.names;
        let mut conn = self.runner.conn.clone();
        let Ok(info) = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&names.input)
            .query_async::<redis::streams::StreamInfoGroupsReply>(&mut conn)
            .await
        else {
            return;
        };
        if let Some(ours) = info.groups.iter().find(|g| g.name == names.group) {
            self.runner.metrics.set_pending(ours.pending as i64);
            if let Some(lag) = ours.lag {
                self.runner.metrics.set_group_lag(lag as i64);
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
                        .runner
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
        for entry in self.reclaim(self.runner.config.max_concurrent).await? {
            let id = entry.id.clone();
            outcomes.push((
                id,
                self.runner
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
        let config = self.runner.config.clone();
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
                let runner = self.runner.clone();
                let cancel = stop_jobs.child_token();
                tasks.spawn(async move {
                    let _permit = permit;
                    runner.process(entry, cancel).await;
                });
            }
        }
        drain(tasks, config.stream.shutdown_grace, stop_jobs).await;
        tracing::info!("consumer stopped");
        Ok(())
    }
}

/// Gives running jobs `grace` to finish, then stops the rest (their entries stay pending for a
/// peer) and waits for them to hand back.
async fn drain(mut tasks: JoinSet<()>, grace: Duration, stop_jobs: CancellationToken) {
    tracing::info!(
        running = tasks.len(),
        grace_secs = grace.as_secs(),
        "shutting down: draining jobs"
    );
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            running = tasks.len(),
            "grace period over: stopping the remaining jobs"
        );
        stop_jobs.cancel();
        while tasks.join_next().await.is_some() {}
    }
}
