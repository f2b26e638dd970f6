//! The service on a Redis Cluster: three local redis-server nodes in cluster mode, the whole app
//! in cluster mode with tagged stream names, a DEFAULT report through both stages, a poison
//! entry through the dead-letter path. Which node holds which key does not matter; that every
//! script ran (no CROSSSLOT refusal) and the job finished is the point.

use tokio_util::sync::CancellationToken;
use vk_parser::app::App;
use vk_parser::settings::Settings;

use crate::support::backend::{report_created, stage2_created, Streams};
use crate::support::redis_cluster::RedisCluster;
use crate::support::sim::{self, pick_seeds};

const INPUT: &str = "stream:{vkp}:parser:vk";
const STATUS: &str = "stream:{vkp}:report:status-change";
const GRAPH: &str = "stream:{vkp}:graph-worker";

fn cluster_settings(
    sim: &vk_sim::SimHandle,
    cluster: &RedisCluster,
    files: &std::path::Path,
) -> Settings {
    sim::settings(
        sim,
        &[
            ("REDIS_URL", &cluster.url()),
            ("VKP_REDIS__CLUSTER", "true"),
            ("VKP_REDIS__HASH_TAG", "vkp"),
            ("STREAM_VK_PARSER", INPUT),
            ("STREAM_STATUS_CHANGE", STATUS),
            ("STREAM_GRAPH_WORKER", GRAPH),
            ("STREAM_VK_POSTER", "stream:{vkp}:poster:vk"),
            ("STREAM_VK_COMMUNITY", "stream:{vkp}:community:vk"),
            // The shared limiter runs its script on the cluster too.
            ("VKP_VK__RATE_LIMITER", "redis"),
            ("STORAGE_URL", files.to_str().unwrap()),
            ("VKP_OPS__LISTEN", "127.0.0.1:0"),
            ("VKP_STREAM__BLOCK", "100ms"),
            ("VKP_STREAM__PROGRESS_INTERVAL", "100ms"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_complete_through_a_three_node_cluster() {
    let cluster = RedisCluster::start();
    let sim = sim::start(|_| {}).await;
    let data = tempfile::tempdir().unwrap();
    let settings = cluster_settings(&sim, &cluster, data.path());
    let app = App::build(settings.clone())
        .await
        .expect("app builds on the cluster");
    let ops = app.ops_addr();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { app.run_until_stopped(stop).await.expect("app runs") }
    });
    let ready = reqwest::get(format!("http://{ops}/readyz")).await.unwrap();
    assert!(ready.status().is_success(), "readyz: {}", ready.status());

    let streams = Streams::on(cluster.connection().await).named(
        INPUT,
        STATUS,
        &settings.redis.consumer_group,
    );
    let seeds = pick_seeds(&sim, 500, 2).await;
    let author = sim.named().open;
    let job = "cluster-default";
    // Published as an operator would, through the admin command (cluster mode as well).
    let payload = report_created(job, "DEFAULT", &seeds, author).to_string();
    vk_parser::admin::publish(&settings, "ReportCreated", &payload)
        .await
        .unwrap();
    let s1 = streams.final_status(job, 1).await;
    assert_eq!(s1["status"], "STAGE1_COMPLETED", "{s1}");
    let payload = stage2_created(job, "DEFAULT", author).to_string();
    vk_parser::admin::publish(&settings, "Stage2Created", &payload)
        .await
        .unwrap();
    let s2 = streams.final_status(job, 2).await;
    assert_eq!(s2["status"], "COMPLETED", "{s2}");
    let graph = streams.payloads(GRAPH).await;
    assert_eq!(graph.len(), 1, "one GraphReady: {graph:?}");
    assert_eq!(graph[0]["jobId"], job);

    // A poison entry (ids readable, fields missing): dead-lettered with FAILED/INVALID_EVENT,
    // through the dead-letter script's three keys.
    streams
        .publish_raw(&[
            ("event_type", "ReportCreated"),
            (
                "payload",
                r#"{"reportId":"r-poison","jobId":"cluster-poison"}"#,
            ),
        ])
        .await;
    let failed = streams.final_status("cluster-poison", 1).await;
    assert_eq!(failed["failureReason"], "INVALID_EVENT", "{failed}");
    let dead = vk_parser::admin::dlq_list(&settings, vk_parser::events::JobKind::Report, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].1.contains_key("dead_error"));

    assert_eq!(streams.pending().await, 0, "nothing pending");

    stop.cancel();
    task.await.unwrap();
}
