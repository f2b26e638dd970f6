//! The operator commands through the real binary: publish, inspect, dlq list and replay.

use std::process::{Command, Output};

use chrono::Utc;
use vk_parser::ids::{JobId, ReportId, ReportType, Stage, VkUserId};
use vk_parser::storage::{self, write_stage, StageFile, StageMeta, StagePrefix};
use vk_parser::tables::{to_parquet, ColumnData, Table};

use crate::support::env;
use crate::support::redis_server::RedisServer;

fn vk_parser(args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vk-parser"))
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("vk-parser runs")
}

fn xlen(redis: &RedisServer, stream: &str) -> i64 {
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("XLEN").arg(stream).query(&mut conn).unwrap()
}

#[test]
fn publish_checks_the_event_first() {
    let redis = RedisServer::start();
    let vars = [("REDIS_URL", redis.url())];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bad = vk_parser(&["publish", "ReportCreated", r#"{"reportId":"r"}"#], &vars);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("missing field `jobId`"));
    assert_eq!(xlen(&redis, "stream:parser:vk"), 0);
    let payload = r#"{"reportId":"r","jobId":"j","userId":1,"reportType":"DEFAULT","socialNetworkIds":["durov"]}"#;
    let good = vk_parser(&["publish", "ReportCreated", payload], &vars);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert_eq!(xlen(&redis, "stream:parser:vk"), 1);
}

#[test]
fn dead_letters_are_listed_and_replayed() {
    let redis = RedisServer::start();
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let payload =
        r#"{"reportId":"r","jobId":"j","userId":1,"reportType":"DEFAULT","socialNetworkIds":[1]}"#;
    let _: String = redis::cmd("XADD")
        .arg("stream:parser:vk:dead")
        .arg("*")
        .arg("dead_error")
        .arg("storage was down")
        .arg("event_type")
        .arg("ReportCreated")
        .arg("payload")
        .arg(payload)
        .query(&mut conn)
        .unwrap();
    // The job stage failed for good: replay must forget that, or its entry would be
    // acknowledged as a duplicate and never run.
    let _: i64 = redis::cmd("HSET")
        .arg("vkp:job:j:stage1")
        .arg("state")
        .arg("failed")
        .query(&mut conn)
        .unwrap();
    let url = redis.url();
    let vars = [("REDIS_URL", url.as_str())];
    let list = vk_parser(&["dlq", "list"], &vars);
    assert!(String::from_utf8_lossy(&list.stdout).contains("storage was down"));
    let replay = vk_parser(&["dlq", "replay"], &vars);
    assert!(String::from_utf8_lossy(&replay.stdout).contains("replayed 1"));
    assert_eq!(xlen(&redis, "stream:parser:vk:dead"), 0);
    assert_eq!(xlen(&redis, "stream:parser:vk"), 1);
    let state: Option<String> = redis::cmd("HGET")
        .arg("vkp:job:j:stage1")
        .arg("state")
        .query(&mut conn)
        .unwrap();
    assert_eq!(state, None, "the failed state is forgotten");
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_prints_a_stage() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_owned();
    let settings =
        vk_parser::settings::Settings::load(None, &env(&[("STORAGE_URL", &dir)])).unwrap();
    let storage = storage::open(&settings.storage).await.unwrap();
    let prefix = StagePrefix::new(
        ReportType::Default,
        &[VkUserId::new(1).unwrap()],
        &JobId::parse("j").unwrap(),
        Stage::Two,
    );
    let table = Table::new("df_connect")
        .with("source", ColumnData::I64(vec![1, 2]))
        .with("target", ColumnData::I64(vec![2, 3]))
        .with("relation", ColumnData::I8(vec![2, 1]));
    let encoded = to_parquet(&table).unwrap();
    let file = StageFile {
        name: "df_connect.parquet".into(),
        rows: encoded.rows,
        columns: encoded.columns,
        body: encoded.bytes,
    };
    let meta = StageMeta {
        report_id: ReportId::parse("r").unwrap(),
        main_ids: vec![VkUserId::new(1).unwrap()],
        created_at: Utc::now(),
        completeness: Default::default(),
    };
    write_stage(storage.as_ref(), &prefix, meta, vec![file])
        .await
        .unwrap();
    let out = vk_parser(&["inspect", &prefix.to_string()], &[("STORAGE_URL", &dir)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("df_connect.parquet: 2 rows"), "{text}");
    assert!(
        text.contains("source:int64, target:int64, relation:int8"),
        "{text}"
    );
    assert!(text.contains("2 | 3 | 1"), "{text}");
}

/// `community` publishes a checked community task on the community stream; a bad one (posts
/// per group on MEMBERS) publishes nothing.
#[test]
fn community_publishes_a_checked_task() {
    let redis = RedisServer::start();
    let url = redis.url();
    let vars = [("REDIS_URL", url.as_str())];
    let bad = vk_parser(
        &[
            "community",
            "--user",
            "6",
            "--kind",
            "members",
            "--groups",
            "club1",
            "--posts-per-group",
            "5",
        ],
        &vars,
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("postsPerGroup"));
    assert_eq!(xlen(&redis, "stream:community:vk"), 0);
    let good = vk_parser(
        &[
            "community",
            "--user",
            "6",
            "--kind",
            "posts",
            "--groups",
            "club1,apiclub",
            "--threads",
        ],
        &vars,
    );
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).starts_with("community task community-"));
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("stream:community:vk")
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1[0].1, "CommunityTaskCreated");
    let payload: serde_json::Value = serde_json::from_str(&entries[0].1[1].1).unwrap();
    assert_eq!(payload["kind"], "POSTS");
    assert_eq!(payload["options"]["withThreads"], true);
}

/// `post` stores the files under `uploads/{job}/`, then publishes a checked campaign on the
/// campaign stream; a bad campaign publishes nothing and stores nothing.
#[test]
fn post_uploads_the_files_then_publishes_the_campaign() {
    let redis = RedisServer::start();
    let data = tempfile::tempdir().unwrap();
    let picture = data.path().join("my banner.png");
    std::fs::write(&picture, b"\x89PNG....").unwrap();
    let store = data.path().join("store");
    let url = redis.url();
    let vars = [
        ("REDIS_URL", url.as_str()),
        ("STORAGE_URL", store.to_str().unwrap()),
    ];
    let bad = vk_parser(
        &[
            "post",
            "--user",
            "6",
            "--groups",
            "club0",
            "--message",
            "hi",
        ],
        &vars,
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("groups[0]"));
    assert_eq!(xlen(&redis, "stream:poster:vk"), 0);
    let good = vk_parser(
        &[
            "post",
            "--user",
            "6",
            "--groups",
            "club1,apiclub",
            "--message",
            "hi",
            "--attach",
            picture.to_str().unwrap(),
        ],
        &vars,
    );
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let job = stdout
        .split_whitespace()
        .nth(1)
        .expect("the campaign id")
        .to_owned();
    assert_eq!(xlen(&redis, "stream:poster:vk"), 1);
    let stored = store.join("uploads").join(&job).join("my_banner.png");
    assert_eq!(std::fs::read(&stored).unwrap(), b"\x89PNG....");
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("stream:poster:vk")
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    let payload: serde_json::Value = serde_json::from_str(&entries[0].1[1].1).unwrap();
    assert_eq!(entries[0].1[0].1, "SuggestPostCreated");
    assert_eq!(payload["groups"], serde_json::json!(["club1", "apiclub"]));
    assert_eq!(
        payload["attachments"][0],
        serde_json::json!({"type": "photo", "key": format!("uploads/{job}/my_banner.png")})
    );
}

/// `dlq --poster` reads and replays the campaign stream's dead letters, onto the campaign stream.
#[test]
fn campaign_dead_letters_are_listed_and_replayed_onto_their_stream() {
    let redis = RedisServer::start();
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let payload = r#"{"campaignId":"c","jobId":"j","userId":1,"groups":[1],"message":"hi"}"#;
    let _: String = redis::cmd("XADD")
        .arg("stream:poster:vk:dead")
        .arg("*")
        .arg("dead_error")
        .arg("redis was away")
        .arg("event_type")
        .arg("SuggestPostCreated")
        .arg("payload")
        .arg(payload)
        .query(&mut conn)
        .unwrap();
    let url = redis.url();
    let vars = [("REDIS_URL", url.as_str())];
    let reports = vk_parser(&["dlq", "list"], &vars);
    assert!(!String::from_utf8_lossy(&reports.stdout).contains("redis was away"));
    let list = vk_parser(&["dlq", "--poster", "list"], &vars);
    assert!(String::from_utf8_lossy(&list.stdout).contains("redis was away"));
    let replay = vk_parser(&["dlq", "--poster", "replay"], &vars);
    assert!(String::from_utf8_lossy(&replay.stdout).contains("replayed 1"));
    assert_eq!(xlen(&redis, "stream:poster:vk"), 1);
    assert_eq!(xlen(&redis, "stream:poster:vk:dead"), 0);
    assert_eq!(xlen(&redis, "stream:parser:vk"), 0);

    // The community stream's likewise, with `--community`.
    let task = r#"{"taskId":"t","jobId":"j","userId":1,"kind":"MEMBERS","groups":[1]}"#;
    let _: String = redis::cmd("XADD")
        .arg("stream:community:vk:dead")
        .arg("*")
        .arg("dead_error")
        .arg("storage was away")
        .arg("event_type")
        .arg("CommunityTaskCreated")
        .arg("payload")
        .arg(task)
        .query(&mut conn)
        .unwrap();
    let list = vk_parser(&["dlq", "--community", "list"], &vars);
    assert!(String::from_utf8_lossy(&list.stdout).contains("storage was away"));
    let replay = vk_parser(&["dlq", "--community", "replay"], &vars);
    assert!(String::from_utf8_lossy(&replay.stdout).contains("replayed 1"));
    assert_eq!(xlen(&redis, "stream:community:vk"), 1);
    assert_eq!(xlen(&redis, "stream:community:vk:dead"), 0);
}
