//! The stream consumer against a real redis-server: sharing, reclaiming, heartbeats, duplicate
//! deliveries, poison entries, retries, a Redis restart and a graceful drain.
//!
//! The jobs are trivial: [`TestHandler`] reads what to do from the job id (`ok-…` succeeds,
//! `slow-…` runs until stopped, `slowfirst-…` is slow on its first run only, `sleepN-…` takes
//! N ms, `flaky-…` fails its first two attempts, `down-…` always fails with a network error,
//! `bad-…` fails for good). Waits for a condition go through `support::wait::eventually`, never
//! a sleep as long as a setting; the few sleeps left are the point of their test.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use vk_parser::events::{Artifacts, FailureReason, IncomingEvent, JobKind};
use vk_parser::ids::VkUserId;
use vk_parser::metrics::Metrics;
use vk_parser::settings::Settings;
use vk_parser::stream::{Consumer, EntryOutcome, JobContext, JobFailure, JobHandler, JobOutput};

use crate::support::backend::{is_final, Streams, DEAD, GRAPH, STATUS};
use crate::support::redis_server::RedisServer;
use crate::support::wait::eventually;
use crate::support::{env, logs};

/// How long a test waits for a condition (jobs here take milliseconds).
const WAIT: Duration = Duration::from_secs(20);

/// Runs per job id, shared by every consumer of a test.
#[derive(Default)]
struct TestHandler {
    runs: Mutex<HashMap<String, u32>>,
}

impl TestHandler {
    fn runs(&self, job: &str) -> u32 {
        self.runs.lock().unwrap().get(job).copied().unwrap_or(0)
    }
}

#[async_trait]
impl JobHandler for TestHandler {
    async fn run(&self, event: IncomingEvent, ctx: JobContext) -> Result<JobOutput, JobFailure> {
        let job = event.job_id().to_string();
        let run = {
            let mut runs = self.runs.lock().unwrap();
            let n = runs.entry(job.clone()).or_default();
            *n += 1;
            *n
        };
        // By run, not attempt: an attempt stopped by a shutdown gives its number back.
        let slow = job.starts_with("slow-") || (job.starts_with("slowfirst-") && run == 1);
        if slow {
            ctx.progress.report(10, "working slowly").await;
            ctx.cancel.cancelled().await;
            return Err(JobFailure::retryable(
                FailureReason::InternalError,
                "stopped",
            ));
        }
        if let Some(ms) = job
            .strip_prefix("sleep")
            .and_then(|rest| rest.split('-').next())
            .and_then(|n| n.parse::<u64>().ok())
        {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if job.starts_with("flaky-") && ctx.attempt <= 2 {
            return Err(JobFailure::retryable(
                FailureReason::NetworkError,
                "vk unreachable",
            ));
        }
        if job.starts_with("down-") {
            return Err(JobFailure::retryable(
                FailureReason::NetworkError,
                "vk unreachable",
            ));
        }
        if job.starts_with("bad-") {
            return Err(JobFailure::permanent(
                FailureReason::Stage1NotFound,
                "no stage 1 manifest",
            ));
        }
        let prefix = format!("DEFAULT/1/{job}_stage{}/", event.stage());
        Ok(JobOutput {
            artifacts: Artifacts {
                manifest: format!("{prefix}manifest.json"),
                prefix,
            },
            main_ids: vec![VkUserId::new(1).unwrap()],
            message: "done".into(),
            metrics: None,
            failed: None,
        })
    }
}

/// A private Redis, settings tuned for fast tests, and helpers to publish and inspect.
struct Harness {
    redis: RedisServer,
    handler: Arc<TestHandler>,
}

impl Harness {
    fn new() -> Harness {
        logs::init();
        Harness {
            redis: RedisServer::start(),
            handler: Arc::new(TestHandler::default()),
        }
    }

    fn settings(&self, consumer: &str) -> Settings {
        Settings::load(
            None,
            &env(&[
                ("REDIS_URL", &self.redis.url()),
                ("CONSUMER_VK_PARSER", consumer),
                ("MAX_RETRIES", "3"),
                ("MAX_CONCURRENT_MESSAGES", "20"),
                ("VKP_STREAM__BLOCK", "100ms"),
                ("VKP_STREAM__HEARTBEAT_INTERVAL", "100ms"),
                ("VKP_STREAM__LEASE_TTL", "400ms"),
                ("VKP_STREAM__MIN_IDLE", "600ms"),
                ("VKP_STREAM__RECLAIM_INTERVAL", "200ms"),
                ("VKP_STREAM__PROGRESS_INTERVAL", "50ms"),
                ("VKP_STREAM__SHUTDOWN_GRACE", "1s"),
            ]),
        )
        .unwrap()
    }

    async fn consumer(&self, name: &str) -> Consumer {
        Consumer::connect(
            &self.settings(name),
            JobKind::Report,
            self.handler.clone(),
            Arc::new(Metrics::new()),
        )
        .await
        .unwrap()
    }

    /// The streams on the harness's Redis, opened anew each time (one test restarts Redis).
    async fn streams(&self) -> Streams {
        Streams::open(&self.redis.url()).await
    }

    async fn conn(&self) -> MultiplexedConnection {
        self.streams().await.connection()
    }

    async fn publish_raw(&self, fields: &[(&[u8], &[u8])]) -> String {
        self.streams().await.publish_raw(fields).await
    }

    async fn publish(&self, stage: u8, job: &str) -> String {
        let (event_type, payload) = if stage == 1 {
            (
                "ReportCreated",
                json!({"reportId": format!("r-{job}"), "jobId": job, "userId": 1, "reportType": "DEFAULT", "socialNetworkIds": [1]}),
            )
        } else {
            (
                "Stage2Created",
                json!({"reportId": format!("r-{job}"), "jobId": job, "userId": 1, "reportType": "DEFAULT"}),
            )
        };
        self.streams().await.publish(event_type, &payload).await
    }

    /// Every payload on `stream`, decoded as JSON.
    async fn payloads(&self, stream: &str) -> Vec<Value> {
        self.streams().await.payloads(stream).await
    }

    /// The final statuses of `job`, both stages.
    async fn final_statuses(&self, job: &str) -> Vec<Value> {
        self.streams()
            .await
            .statuses()
            .await
            .into_iter()
            .filter(|s| s["jobId"] == job && is_final(s))
            .collect()
    }

    /// Dead letters' fields (names read lossily: a poison entry's own may not be UTF-8).
    async fn dead_letters(&self) -> Vec<BTreeMap<String, Vec<u8>>> {
        let entries = self.streams().await.entries(DEAD).await;
        entries.into_iter().map(|(_, fields)| fields).collect()
    }

    async fn pending(&self) -> usize {
        self.streams().await.pending().await
    }
}

fn spawn_run(consumer: Consumer) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let handle = tokio::spawn({
        let stop = stop.clone();
        async move { consumer.run(stop).await.unwrap() }
    });
    (stop, handle)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_consumers_share_200_jobs_and_do_each_once() {
    let h = Harness::new();
    let a = h.consumer("a").await;
    let b = h.consumer("b").await;
    let (stop_a, run_a) = spawn_run(a);
    let (stop_b, run_b) = spawn_run(b);
    for n in 0..100 {
        h.publish(1, &format!("ok-{n}")).await;
        h.publish(2, &format!("ok-{n}")).await;
    }
    eventually("200 final statuses", WAIT, || async {
        let finals = h
            .payloads(STATUS)
            .await
            .iter()
            .filter(|s| is_final(s))
            .count();
        (finals >= 200).then_some(())
    })
    .await;
    stop_a.cancel();
    stop_b.cancel();
    run_a.await.unwrap();
    run_b.await.unwrap();

    let statuses = h.payloads(STATUS).await;
    for n in 0..100 {
        let job = format!("ok-{n}");
        assert_eq!(
            h.handler.runs(&job),
            2,
            "{job}: stage 1 and stage 2 once each"
        );
        let finals: Vec<&Value> = statuses
            .iter()
            .filter(|s| s["jobId"] == job.as_str() && is_final(s))
            .collect();
        assert_eq!(finals.len(), 2, "{job}");
        assert!(finals.iter().any(|s| s["status"] == "STAGE1_COMPLETED"));
        assert!(finals.iter().any(|s| s["status"] == "COMPLETED"));
    }
    assert_eq!(h.payloads(GRAPH).await.len(), 100);
    assert_eq!(h.pending().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_killed_mid_job_is_taken_over_by_a_peer() {
    let h = Harness::new();
    let mut a = h.consumer("a").await;
    h.publish(2, "slowfirst-1").await;
    // Consumer A starts the job, then dies without a word (its task is aborted: no ack, no
    // lease release, no more heartbeats).
    let dying = tokio::spawn(async move { a.try_process_next().await });
    eventually("the job to start", WAIT, || async {
        (h.handler.runs("slowfirst-1") == 1).then_some(())
    })
    .await;
    dying.abort();
    let _ = dying.await;

    let mut b = h.consumer("b").await;
    assert!(
        b.try_reclaim().await.unwrap().is_empty(),
        "not reclaimable before min_idle"
    );
    // Reclaimable once idle for min_idle, A's lease having lapsed before (lease_ttl is shorter).
    let outcomes = eventually("B to reclaim the entry", WAIT, async || {
        let outcomes = b.try_reclaim().await.unwrap();
        (!outcomes.is_empty()).then_some(outcomes)
    })
    .await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].1, EntryOutcome::Completed);
    assert_eq!(h.final_statuses("slowfirst-1").await.len(), 1);
    assert_eq!(h.payloads(GRAPH).await.len(), 1);
    assert_eq!(h.pending().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_job_is_not_stolen_while_it_heartbeats() {
    let h = Harness::new();
    let mut a = h.consumer("a").await;
    let mut b = h.consumer("b").await;
    // Runs 2 s, more than three times min_idle.
    h.publish(1, "sleep2000-x").await;
    let running = tokio::spawn(async move { a.try_process_next().await.unwrap() });
    // Sampled over the job's 2 s on purpose: no reclaim may succeed at any point of it.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(
            b.try_reclaim().await.unwrap().is_empty(),
            "a live job was reclaimed"
        );
    }
    let (_, outcome) = running.await.unwrap().unwrap();
    assert_eq!(outcome, EntryOutcome::Completed);
    assert_eq!(h.handler.runs("sleep2000-x"), 1);
    assert_eq!(h.final_statuses("sleep2000-x").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_delivered_twice_publishes_once() {
    let h = Harness::new();
    let mut a = h.consumer("a").await;
    let mut b = h.consumer("b").await;
    let id = h.publish(2, "slowfirst-dup").await;
    let first = tokio::spawn(async move { a.try_process_next().await.unwrap() });
    eventually("the first delivery to start", WAIT, || async {
        (h.handler.runs("slowfirst-dup") == 1).then_some(())
    })
    .await;
    // Force a second delivery of the same entry to B, as a reclaim race would.
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg("stream:parser:vk")
        .arg("cg_vk_parser")
        .arg("b")
        .arg(0)
        .arg(&id)
        .query_async(&mut h.conn().await)
        .await
        .unwrap();
    let (_, second) = b.try_process_next().await.unwrap().unwrap();
    assert_eq!(second, EntryOutcome::Completed);
    let (_, first) = first.await.unwrap().unwrap();
    assert_eq!(first, EntryOutcome::LostOwnership);
    assert_eq!(h.final_statuses("slowfirst-dup").await.len(), 1);
    assert_eq!(h.payloads(GRAPH).await.len(), 1);
    assert_eq!(h.pending().await, 0);
    // A late redelivery of the finished job is acknowledged and publishes nothing.
    h.publish(2, "slowfirst-dup").await;
    let (_, late) = b.try_process_next().await.unwrap().unwrap();
    assert_eq!(late, EntryOutcome::AlreadyDone);
    assert_eq!(h.final_statuses("slowfirst-dup").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_entries_are_dead_lettered_and_block_nothing() {
    let h = Harness::new();
    let mut c = h.consumer("c").await;
    let huge = vec![b'x'; 1024 * 1024];
    let poison: Vec<Vec<(&[u8], &[u8])>> = vec![
        vec![
            (b"event_type", b"ReportCreated"),
            (b"payload", b"{not json"),
        ],
        vec![
            (b"event_type", b"ReportCreated"),
            (b"payload", br#"{"reportId":"r-1","jobId":"j-1"}"#),
        ],
        vec![(b"event_type", b"ReportDeleted"), (b"payload", b"{}")],
        vec![(b"event_type", b"ReportCreated"), (b"payload", &huge)],
        vec![(b"\xff\xfe", b"\x00\x01")],
    ];
    for fields in &poison {
        h.publish_raw(fields).await;
    }
    h.publish(1, "ok-after-poison").await;
    let mut outcomes = Vec::new();
    while let Some((_, outcome)) = c.try_process_next().await.unwrap() {
        outcomes.push(outcome);
    }
    assert_eq!(outcomes.len(), 6);
    assert!(
        outcomes[..5]
            .iter()
            .all(|o| matches!(o, EntryOutcome::DeadLettered(_))),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[5], EntryOutcome::Completed);
    let dead = h.dead_letters().await;
    assert_eq!(dead.len(), 5);
    assert!(dead
        .iter()
        .all(|d| d.contains_key("dead_error") && d.contains_key("dead_entry_id")));
    assert!(String::from_utf8_lossy(&dead[1]["dead_error"]).contains("userId"));
    assert_eq!(dead[3]["payload"].len(), 64 * 1024, "huge values are cut");
    // XPENDING's delivery count, read through redis-rs's typed reply.
    assert!(
        dead.iter().all(|d| d["dead_delivery_count"] == b"1"),
        "{dead:?}"
    );
    // The one whose ids were readable got a FAILED/INVALID_EVENT status.
    let invalid = h.final_statuses("j-1").await;
    assert_eq!(invalid.len(), 1);
    assert_eq!(invalid[0]["failureReason"], "INVALID_EVENT");
    assert_eq!(h.pending().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_attempts_are_retried_then_failed_for_good() {
    let h = Harness::new();
    let mut c = h.consumer("c").await;
    h.publish(1, "flaky-1").await;
    h.publish(1, "down-1").await;
    h.publish(1, "bad-1").await;
    let mut seen: Vec<(String, EntryOutcome)> = Vec::new();
    while let Some(step) = c.try_process_next().await.unwrap() {
        seen.push(step);
    }
    // The retries come by reclaim, each once the entry has been idle for min_idle.
    eventually("flaky-1 and down-1 to end", WAIT, async || {
        seen.extend(c.try_reclaim().await.unwrap());
        let ended = !h.final_statuses("flaky-1").await.is_empty()
            && !h.final_statuses("down-1").await.is_empty();
        ended.then_some(())
    })
    .await;
    assert_eq!(h.handler.runs("flaky-1"), 3);
    assert_eq!(
        h.final_statuses("flaky-1").await[0]["status"],
        "STAGE1_COMPLETED"
    );
    // Three attempts, then FAILED with the last error's reason and a dead letter.
    assert_eq!(h.handler.runs("down-1"), 3);
    let down = h.final_statuses("down-1").await;
    assert_eq!(down.len(), 1);
    assert_eq!(down[0]["failureReason"], "NETWORK_ERROR");
    assert_eq!(h.dead_letters().await.len(), 1);
    // A permanent failure is not retried.
    assert_eq!(h.handler.runs("bad-1"), 1);
    assert_eq!(
        h.final_statuses("bad-1").await[0]["failureReason"],
        "STAGE1_NOT_FOUND"
    );
    assert!(seen
        .iter()
        .any(|(_, o)| *o == EntryOutcome::RetryLater(FailureReason::NetworkError)));
    assert_eq!(h.pending().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn stage_2_waits_while_stage_1_of_the_same_job_runs() {
    let h = Harness::new();
    let mut a = h.consumer("a").await;
    let mut b = h.consumer("b").await;
    h.publish(1, "slow-j").await;
    let stage1 = tokio::spawn(async move {
        let step = a.try_process_next().await;
        (a, step)
    });
    eventually("stage 1 to start", WAIT, || async {
        (h.handler.runs("slow-j") == 1).then_some(())
    })
    .await;
    h.publish(2, "slow-j").await;
    let (_, outcome) = b.try_process_next().await.unwrap().unwrap();
    assert_eq!(outcome, EntryOutcome::HeldElsewhere);
    assert_eq!(h.handler.runs("slow-j"), 1, "stage 2 did not start");
    stage1.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_consumer_survives_a_redis_restart() {
    let mut h = Harness::new();
    let c = h.consumer("c").await;
    let (stop, run) = spawn_run(c);
    h.publish(1, "ok-before").await;
    eventually("the first job", WAIT, || async {
        (h.final_statuses("ok-before").await.len() == 1).then_some(())
    })
    .await;
    h.redis.restart();
    // The restarted Redis is empty: no stream, no group. The consumer recreates the group on
    // NOGROUP; entries published after that are served. So each try publishes a fresh job and
    // gives it 200 ms: one published before the group is back is never read.
    let mut served = false;
    for n in 0..100 {
        let job = format!("ok-after-{n}");
        h.publish(1, &job).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if h.final_statuses(&job).await.len() == 1 {
            served = true;
            break;
        }
    }
    assert!(served, "no job completed after the restart");
    stop.cancel();
    run.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_drains_within_the_grace_and_leaves_the_rest_pending() {
    let h = Harness::new();
    let c = h.consumer("c").await;
    let (stop, run) = spawn_run(c);
    h.publish(1, "slowfirst-s").await;
    h.publish(1, "sleep300-quick").await;
    eventually("both jobs to start", WAIT, || async {
        (h.handler.runs("slowfirst-s") == 1 && h.handler.runs("sleep300-quick") == 1).then_some(())
    })
    .await;
    stop.cancel();
    // `run` returns although `slowfirst-s` never ends by itself: it was stopped when the 1 s
    // grace ran out.
    run.await.unwrap();
    assert_eq!(
        h.final_statuses("sleep300-quick").await.len(),
        1,
        "the quick job finished in the grace"
    );
    assert!(
        h.final_statuses("slowfirst-s").await.is_empty(),
        "nothing published for the stopped job"
    );
    assert_eq!(
        h.pending().await,
        1,
        "the stopped job's entry is left for a peer"
    );
    let attempt: Option<i64> = redis::cmd("HGET")
        .arg("vkp:job:slowfirst-s:stage1")
        .arg("attempt")
        .query_async(&mut h.conn().await)
        .await
        .unwrap();
    assert_eq!(
        attempt,
        Some(0),
        "a drained attempt is not counted against max_retries"
    );

    let mut peer = h.consumer("peer").await;
    let outcomes = eventually("the peer to reclaim the entry", WAIT, async || {
        let outcomes = peer.try_reclaim().await.unwrap();
        (!outcomes.is_empty()).then_some(outcomes)
    })
    .await;
    assert_eq!(outcomes.len(), 1, "the peer picks it up");
    assert_eq!(outcomes[0].1, EntryOutcome::Completed);
    assert_eq!(h.pending().await, 0);
}

/// The group's lag and pending gauges come from `XINFO GROUPS` (redis-rs's typed reply).
#[tokio::test(flavor = "multi_thread")]
async fn group_gauges_follow_xinfo_groups() {
    let h = Harness::new();
    let metrics = Arc::new(Metrics::new());
    let mut c = Consumer::connect(
        &h.settings("gauges"),
        JobKind::Report,
        h.handler.clone(),
        metrics.clone(),
    )
    .await
    .unwrap();
    for n in 0..3 {
        h.publish(1, &format!("g-{n}")).await;
    }
    c.try_reclaim().await.unwrap();
    let text = metrics.render();
    assert!(text.contains("vkp_group_lag 3"), "{text}");
    assert!(text.contains("vkp_group_pending 0"), "{text}");
}
