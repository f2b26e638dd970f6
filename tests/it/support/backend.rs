//! The backend's side of the service's streams, written once for every test and bench: publish
//! an event on the input stream (built by [`report_created`] and [`stage2_created`], given as raw
//! JSON, or as raw fields for the bad-input cases), read a stream's entries, and wait for a job's
//! statuses up to its final one.
//!
//! Statuses are checked to decode as [`StatusUpdate`] (the contract) and handed back as the JSON
//! the backend reads, which the tests index and print. A wait that runs out panics with what the
//! status stream held for the job by then.
//!
//! [`Streams`] holds one connection (to a single Redis or a cluster) and clones it per command;
//! a test that restarts Redis opens a new one after the restart. The `try_` forms return the
//! error instead of panicking, for the chaos run, where Redis is away at times.
//! This file uses nothing else of `support` but [`super::wait`], so a bench can include the two
//! with `#[path]` (benches/report_requests.rs does).

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::streams::{StreamInfoGroup, StreamInfoGroupsReply, StreamPendingReply};
use redis::RedisResult;
use serde_json::{json, Value};
use vk_parser::events::StatusUpdate;

use super::wait::within;

/// The input stream (the settings' default).
pub const INPUT: &str = "stream:parser:vk";
/// Where statuses go.
pub const STATUS: &str = "stream:report:status-change";
/// Where GraphReady goes.
pub const GRAPH: &str = "stream:graph-worker";
/// Dead letters of the input stream.
pub const DEAD: &str = "stream:parser:vk:dead";
/// The service's consumer group.
pub const GROUP: &str = "cg_vk_parser";

/// How long [`Streams::final_status`] waits: far beyond any stage of the small simulated graph.
pub const FINAL_STATUS_DEADLINE: Duration = Duration::from_secs(60);

/// An entry's fields as XRANGE gives them, names and values as bytes.
type RawFields = Vec<(Vec<u8>, Vec<u8>)>;

/// A stream entry: its id and its fields (names read lossily: a poison entry's may not be UTF-8).
pub type Entry = (String, BTreeMap<String, Vec<u8>>);

/// The ReportCreated the tests publish: seeds as `id{n}` screen names, the subscriptions graph on.
pub fn report_created(job: &str, kind: &str, seeds: &[u32], author: u32) -> Value {
    json!({"reportId": format!("r-{job}"), "jobId": job, "userId": author, "reportType": kind,
           "socialNetworkIds": seeds.iter().map(|s| format!("id{s}")).collect::<Vec<_>>(),
           "options": {"subsGraph": true}})
}

/// The Stage2Created that follows [`report_created`]'s stage 1.
pub fn stage2_created(job: &str, kind: &str, author: u32) -> Value {
    json!({"reportId": format!("r-{job}"), "jobId": job, "userId": author, "reportType": kind})
}

/// Whether a status is a stage's last word (anything but IN_PROGRESS).
pub fn is_final(status: &Value) -> bool {
    status["status"] != "IN_PROGRESS"
}

/// The service's streams on one Redis (or cluster), as the backend sees them.
#[derive(Clone)]
pub struct Streams<C = MultiplexedConnection> {
    conn: C,
    input: String,
    status: String,
    group: String,
}

impl Streams {
    /// The default stream names on the Redis at `url`.
    pub async fn open(url: &str) -> Streams {
        Streams::try_open(url)
            .await
            .unwrap_or_else(|e| panic!("redis at {url}: {e}"))
    }

    /// As [`Streams::open`], or the error while Redis is away.
    pub async fn try_open(url: &str) -> RedisResult<Streams> {
        let conn = redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await?;
        Ok(Streams::on(conn))
    }
}

impl<C: ConnectionLike + Clone> Streams<C> {
    /// The default stream names over `conn`.
    pub fn on(conn: C) -> Streams<C> {
        Streams {
            conn,
            input: INPUT.to_owned(),
            status: STATUS.to_owned(),
            group: GROUP.to_owned(),
        }
    }

    /// Other stream and group names (a cluster's tagged ones).
    pub fn named(self, input: &str, status: &str, group: &str) -> Streams<C> {
        Streams {
            input: input.to_owned(),
            status: status.to_owned(),
            group: group.to_owned(),
            ..self
        }
    }

    /// The connection, for a command this type does not cover.
    pub fn connection(&self) -> C {
        self.conn.clone()
    }

    /// Publishes an entry of exactly these fields on the input stream; returns its id.
    pub async fn publish_raw<K, V>(&self, fields: &[(K, V)]) -> String
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.try_publish_raw(fields)
            .await
            .unwrap_or_else(|e| panic!("XADD {}: {e}", self.input))
    }

    async fn try_publish_raw<K, V>(&self, fields: &[(K, V)]) -> RedisResult<String>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.input).arg("*");
        for (k, v) in fields {
            cmd.arg(k.as_ref()).arg(v.as_ref());
        }
        cmd.query_async(&mut self.conn.clone()).await
    }

    /// Publishes `event_type` with `payload`, as the backend does; returns the entry's id.
    pub async fn publish(&self, event_type: &str, payload: &Value) -> String {
        self.try_publish(event_type, payload)
            .await
            .unwrap_or_else(|e| panic!("XADD {}: {e}", self.input))
    }

    /// As [`Streams::publish`], or the error while Redis is away.
    pub async fn try_publish(&self, event_type: &str, payload: &Value) -> RedisResult<String> {
        let payload = payload.to_string();
        self.try_publish_raw(&[("event_type", event_type), ("payload", &payload)])
            .await
    }

    /// Every entry of `stream`, oldest first.
    pub async fn entries(&self, stream: &str) -> Vec<Entry> {
        self.try_entries(stream)
            .await
            .unwrap_or_else(|e| panic!("XRANGE {stream}: {e}"))
    }

    /// As [`Streams::entries`], or the error while Redis is away.
    pub async fn try_entries(&self, stream: &str) -> RedisResult<Vec<Entry>> {
        let reply: Vec<(String, RawFields)> = redis::cmd("XRANGE")
            .arg(stream)
            .arg("-")
            .arg("+")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(reply
            .into_iter()
            .map(|(id, fields)| {
                let fields = fields
                    .into_iter()
                    .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                    .collect();
                (id, fields)
            })
            .collect())
    }

    /// The `payload` of every entry of `stream` that has one in JSON, oldest first.
    pub async fn payloads(&self, stream: &str) -> Vec<Value> {
        self.try_payloads(stream)
            .await
            .unwrap_or_else(|e| panic!("XRANGE {stream}: {e}"))
    }

    /// As [`Streams::payloads`], or the error while Redis is away.
    pub async fn try_payloads(&self, stream: &str) -> RedisResult<Vec<Value>> {
        Ok(self
            .try_entries(stream)
            .await?
            .iter()
            .filter_map(|(_, f)| serde_json::from_slice(f.get("payload")?).ok())
            .collect())
    }

    /// Every status on the status stream, oldest first, each checked to be a [`StatusUpdate`].
    pub async fn statuses(&self) -> Vec<Value> {
        self.try_statuses()
            .await
            .unwrap_or_else(|e| panic!("XRANGE {}: {e}", self.status))
    }

    /// As [`Streams::statuses`], or the error while Redis is away.
    pub async fn try_statuses(&self) -> RedisResult<Vec<Value>> {
        let statuses = self.try_payloads(&self.status).await?;
        for status in &statuses {
            if let Err(e) = serde_json::from_value::<StatusUpdate>(status.clone()) {
                panic!("not a StatusUpdate on {} ({e}): {status}", self.status);
            }
        }
        Ok(statuses)
    }

    /// Every status of `job`'s `stage` so far, oldest first.
    pub async fn statuses_of(&self, job: &str, stage: u8) -> Vec<Value> {
        self.statuses()
            .await
            .into_iter()
            .filter(|s| s["jobId"] == job && s["stage"] == stage)
            .collect()
    }

    /// Waits (up to [`FINAL_STATUS_DEADLINE`]) for the one final status of `job`'s `stage`.
    pub async fn final_status(&self, job: &str, stage: u8) -> Value {
        self.final_status_within(job, stage, FINAL_STATUS_DEADLINE)
            .await
    }

    /// As [`Streams::final_status`], waiting up to `deadline`; panics if the stage has two.
    pub async fn final_status_within(&self, job: &str, stage: u8, deadline: Duration) -> Value {
        let finals = within(deadline, async || {
            let finals: Vec<Value> = self
                .statuses_of(job, stage)
                .await
                .into_iter()
                .filter(is_final)
                .collect();
            (!finals.is_empty()).then_some(finals)
        })
        .await;
        let Some(mut finals) = finals else {
            let seen = self.statuses_of(job, stage).await;
            panic!(
                "no final status for {job} stage {stage} within {deadline:?}; its statuses:\n{}",
                lines(&seen)
            );
        };
        assert_eq!(
            finals.len(),
            1,
            "one final status per stage:\n{}",
            lines(&finals)
        );
        finals.remove(0)
    }

    /// Waits (up to `deadline`) until every job in `jobs` has a final status; returns the final
    /// statuses of every job by id (the latest one of a job with several).
    pub async fn final_statuses(
        &self,
        jobs: &[String],
        deadline: Duration,
    ) -> BTreeMap<String, Value> {
        let finals_by_job = async || -> BTreeMap<String, Value> {
            self.statuses()
                .await
                .into_iter()
                .filter(is_final)
                .filter_map(|s| Some((s["jobId"].as_str()?.to_owned(), s)))
                .collect()
        };
        let done = within(deadline, async || {
            let finals = finals_by_job().await;
            jobs.iter()
                .all(|j| finals.contains_key(j))
                .then_some(finals)
        })
        .await;
        if let Some(finals) = done {
            return finals;
        }
        let finals = finals_by_job().await;
        let missing: Vec<&String> = jobs.iter().filter(|j| !finals.contains_key(*j)).collect();
        panic!(
            "not every job reached a final status within {deadline:?}: none for {missing:?}; \
             the final ones:\n{}",
            lines(&finals.into_values().collect::<Vec<_>>())
        );
    }

    /// How many entries of the input stream the group has delivered and not acknowledged.
    pub async fn pending(&self) -> usize {
        let reply: StreamPendingReply = redis::cmd("XPENDING")
            .arg(&self.input)
            .arg(&self.group)
            .query_async(&mut self.conn.clone())
            .await
            .unwrap_or_else(|e| panic!("XPENDING {} {}: {e}", self.input, self.group));
        reply.count()
    }

    /// The input stream's consumer groups (`XINFO GROUPS`), or the error while there is no stream.
    pub async fn try_groups(&self) -> RedisResult<Vec<StreamInfoGroup>> {
        let reply: StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.input)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(reply.groups)
    }
}

/// Statuses one per line, for a failure message.
fn lines(statuses: &[Value]) -> String {
    if statuses.is_empty() {
        return "(none)".to_owned();
    }
    statuses
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
