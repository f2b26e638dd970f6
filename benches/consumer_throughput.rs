//! Consumer throughput: trivial jobs per second through one consumer, against the floor of raw
//! `XADD` + `XREADGROUP` + `XACK` on the same private redis-server, in the same run.
//!
//! Run: `cargo bench --bench consumer_throughput` (or `--profile dev`: the ratio is what to
//! read). What the consumer adds per job: the lease/attempt script, an IN_PROGRESS status, the
//! heartbeat task, and the fenced finish script (status, state record, ack, lease).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use vk_parser::events::{Artifacts, IncomingEvent, JobKind};
use vk_parser::metrics::Metrics;
use vk_parser::settings::Settings;
use vk_parser::stream::{Consumer, JobContext, JobFailure, JobHandler, JobOutput};

// The tests' private redis-server, shared rather than copied.
#[allow(dead_code)]
#[path = "../tests/it/support/redis_server.rs"]
mod redis_server;

const JOBS: usize = 5000;

struct Trivial;

#[async_trait]
impl JobHandler for Trivial {
    async fn run(&self, event: IncomingEvent, _ctx: JobContext) -> Result<JobOutput, JobFailure> {
        let prefix = format!("DEFAULT/1/{}_stage1/", event.job_id());
        Ok(JobOutput {
            artifacts: Artifacts {
                manifest: format!("{prefix}manifest.json"),
                prefix,
            },
            main_ids: Vec::new(),
            message: String::new(),
            metrics: None,
            failed: None,
        })
    }
}

fn payload(n: usize) -> String {
    format!(
        r#"{{"reportId":"r{n}","jobId":"j{n}","userId":1,"reportType":"DEFAULT","socialNetworkIds":[1]}}"#
    )
}

async fn publish(conn: &mut redis::aio::MultiplexedConnection, stream: &str) {
    for chunk in (0..JOBS).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for n in chunk {
            pipe.cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("event_type")
                .arg("ReportCreated")
                .arg("payload")
                .arg(payload(*n))
                .ignore();
        }
        let _: () = pipe.query_async(conn).await.expect("xadd");
    }
}

async fn xlen(conn: &mut redis::aio::MultiplexedConnection, stream: &str) -> usize {
    redis::cmd("XLEN")
        .arg(stream)
        .query_async(conn)
        .await
        .unwrap_or(0)
}

/// Raw ceiling: read 100 at a time, ack each batch in one XACK (no work, no statuses).
async fn raw(url: &str) -> f64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("raw")
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await;
    let started = Instant::now();
    publish(&mut conn, "raw").await;
    let mut done = 0;
    while done < JOBS {
        let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("COUNT")
            .arg(100)
            .arg("STREAMS")
            .arg("raw")
            .arg(">")
            .query_async(&mut conn)
            .await
            .unwrap();
        let ids: Vec<String> = reply
            .keys
            .into_iter()
            .flat_map(|k| k.ids)
            .map(|e| e.id)
            .collect();
        if !ids.is_empty() {
            let _: i64 = redis::cmd("XACK")
                .arg("raw")
                .arg("g")
                .arg(&ids)
                .query_async(&mut conn)
                .await
                .unwrap();
            done += ids.len();
        }
    }
    JOBS as f64 / started.elapsed().as_secs_f64()
}

async fn consumer(url: &str) -> f64 {
    let vars = [
        ("REDIS_URL", url),
        ("CONSUMER_VK_PARSER", "bench"),
        ("VKP_STREAM__BLOCK", "50ms"),
    ];
    let env = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings = Settings::load(None, &env).unwrap();
    let consumer = Consumer::connect(
        &settings,
        JobKind::Report,
        Arc::new(Trivial),
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap();
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stop = CancellationToken::new();
    let run = tokio::spawn(consumer.run(stop.clone()));
    let started = Instant::now();
    publish(&mut conn, "stream:parser:vk").await;
    // Each job publishes IN_PROGRESS and its final status: 2 entries per job.
    while xlen(&mut conn, "stream:report:status-change").await < 2 * JOBS {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let rate = JOBS as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    run.await.unwrap().unwrap();
    rate
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let redis = redis_server::RedisServer::start();
        let raw_rate = raw(&redis.url()).await;
        let consumer_rate = consumer(&redis.url()).await;
        println!("{JOBS} trivial jobs on a private redis-server (unix socket), one process");
        println!("  raw XADD + XREADGROUP (100) + XACK (batch): {raw_rate:>8.0} entries/s");
        println!(
            "  vk-parser consumer (100 slots)             : {consumer_rate:>8.0} jobs/s  ({:.2} of raw)",
            consumer_rate / raw_rate
        );
    });
}
