//! VK requests and token-days per community task kind on vk-sim (issue 18), against the
//! sequential approach of one call per request (the sibling services' collectors), and the
//! lower bound of 25 calls per execute.
//!
//! Run: `cargo bench --profile dev --bench community_requests` (counts do not depend on the
//! build profile). Each task runs on a fresh simulated day with `vk.stealth = "off"`, so the
//! counts are the work alone. "Sequential" counts every API call the task made (the direct
//! ones and every call inside an execute) as its own request. Token-days: the requests at the
//! service's 0.42 s spacing over 86,400 s, or the calls of the busiest quota'd method over its
//! daily quota (wall.get 5,000), whichever is larger.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use vk_parser::app::App;
use vk_parser::settings::Settings;
use vk_sim::{SimConfig, SimHandle};

#[allow(dead_code)]
#[path = "../tests/it/support/backend.rs"]
mod backend;
#[allow(dead_code)]
#[path = "../tests/it/support/redis_server.rs"]
mod redis_server;
#[allow(dead_code)]
#[path = "../tests/it/support/wait.rs"]
mod wait;

const TIME_SCALE: f64 = 50.0;
const TASK_DEADLINE: Duration = Duration::from_secs(3600);
/// The daily quota of every method the tasks call that has a published (or default) one.
const QUOTA: f64 = 5000.0;
const QUOTA_METHODS: [&str; 4] = [
    "wall.get",
    "wall.getComments",
    "likes.getList",
    "wall.getReposts",
];

/// What one task cost.
struct Cost {
    requests: u64,
    calls: u64,
    busiest_quota: u64,
    status: String,
    /// Wall time on VK's clock (real seconds × the time scale).
    seconds: f64,
}

async fn run_task(
    sim: &SimHandle,
    kind: &str,
    groups: &[u32],
    options: Value,
    extra: &[(&str, &str)],
) -> Cost {
    reqwest::Client::new()
        .post(format!("{}/sim/reset", sim.api_url()))
        .send()
        .await
        .unwrap();
    let redis = redis_server::RedisServer::start();
    let data = tempfile::tempdir().unwrap();
    let interval_us = (420_000.0 / TIME_SCALE) as u64;
    let vars: HashMap<String, String> = [
        ("VKP_VK__STEALTH", "off".to_owned()),
        ("REDIS_URL", redis.url()),
        ("STORAGE_URL", data.path().display().to_string()),
        ("VK_API_BASE_URL", sim.api_url().to_owned()),
        ("TOKEN_SERVICE_URL", sim.api_url().to_owned()),
        ("TOKEN_SERVICE_API_KEY", sim.manager_api_key().to_owned()),
        ("VK_REQUEST_INTERVAL", format!("{interval_us}us")),
        ("VKP_OPS__LISTEN", "127.0.0.1:0".to_owned()),
        ("VKP_STREAM__BLOCK", "50ms".to_owned()),
        ("VKP_TELEMETRY__LOG_LEVEL", "error".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    .collect();
    let app = App::build(Settings::load(None, &vars).unwrap())
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(stop.clone()));
    let streams = backend::Streams::open(&redis.url()).await.named(
        "stream:community:vk",
        backend::STATUS,
        "cg_vk_community",
    );
    // The group reads from `$`: publish once it exists.
    wait::within(Duration::from_secs(30), async || {
        let mut conn = streams.connection();
        let info: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg("stream:community:vk")
            .query_async(&mut conn)
            .await
            .ok()?;
        (!info.groups.is_empty()).then_some(())
    })
    .await
    .expect("the community group exists");
    let before = sim.stats();
    let started = std::time::Instant::now();
    let job = kind.to_ascii_lowercase();
    let groups: Vec<Value> = groups.iter().map(|g| json!(format!("club{g}"))).collect();
    streams
        .publish(
            "CommunityTaskCreated",
            &json!({"taskId": "bench", "jobId": job, "userId": sim.named().hub, "kind": kind,
                    "groups": groups, "options": options}),
        )
        .await;
    let status = streams.final_status_within(&job, 1, TASK_DEADLINE).await;
    let seconds = started.elapsed().as_secs_f64() * TIME_SCALE;
    let after = sim.stats();
    stop.cancel();
    task.await.unwrap().unwrap();
    let n = |v: &Value, path: &[&str]| path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0);
    let delta = |path: &[&str]| n(&after, path) - n(&before, path);
    let requests = delta(&["requests"]);
    let executes = delta(&["by_method", "execute"]);
    let calls = requests - executes + delta(&["inner_calls"]);
    let busiest_quota = QUOTA_METHODS
        .iter()
        .map(|m| delta(&["by_method", m]) + delta(&["inner_by_method", m]))
        .max()
        .unwrap_or(0);
    Cost {
        requests,
        calls,
        busiest_quota,
        status: format!(
            "{} {}",
            status["status"].as_str().unwrap_or(""),
            status["message"].as_str().unwrap_or("")
        ),
        seconds,
    }
}

/// A token's day spent: its pace (0.42 s a request) or its busiest method's quota, whichever
/// binds.
fn token_days(requests: u64, quota_calls: u64) -> f64 {
    let pace = requests as f64 * 0.42 / 86_400.0;
    pace.max(quota_calls as f64 / QUOTA)
}

fn row(label: &str, c: &Cost) {
    println!(
        "| {label} | {} | {} ({:.1}x) | {} | {:.2e} | {:.2e} | {:.1} | {} |",
        c.requests,
        c.calls,
        c.calls as f64 / c.requests.max(1) as f64,
        c.calls.div_ceil(25),
        token_days(c.requests, c.busiest_quota),
        token_days(c.calls, c.busiest_quota),
        c.seconds,
        c.status
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("| task | requests | sequential (one call each) | lower bound | token-days | sequential token-days | VK seconds | status |");
        println!("|---|---|---|---|---|---|---|---|");
        let big = vk_sim::spawn(SimConfig {
            time_scale: TIME_SCALE,
            users: 110_000,
            groups: 60,
            big_community_members: 105_000,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let one = [big.named_communities().big];
        let c = run_task(&big, "MEMBERS", &one, json!({}), &[]).await;
        row("MEMBERS, 1 community of 105,000", &c);
        let wide = [("VKP_COMMUNITY__PARALLEL_TOKENS", "3")];
        let c = run_task(&big, "MEMBERS", &one, json!({}), &wide).await;
        row("the same, `community.parallel_tokens = 3`", &c);
        // Pace-bound: one call per request, so the pages take 106 requests on VK's spacing.
        let narrow = [("VK_CALLS_PER_EXECUTE", "1")];
        let c = run_task(&big, "MEMBERS", &one, json!({}), &narrow).await;
        row("the same, one call per request, 1 token", &c);
        let narrow_wide = [
            ("VK_CALLS_PER_EXECUTE", "1"),
            ("VKP_COMMUNITY__PARALLEL_TOKENS", "3"),
        ];
        let c = run_task(&big, "MEMBERS", &one, json!({}), &narrow_wide).await;
        row("the same, one call per request, 3 tokens", &c);
        big.shutdown().await;

        let sim = vk_sim::spawn(SimConfig {
            time_scale: TIME_SCALE,
            ..SimConfig::small()
        })
        .await
        .unwrap();
        let named = sim.named_communities();
        // Four named communities and the first six other open, active ones.
        let mut groups = vec![named.busy, named.big, named.open_wall, named.suggest];
        for g in 1..=400u32 {
            if groups.len() == 10 {
                break;
            }
            let t: Value = reqwest::get(format!(
                "{}/sim/truth/members?group_id={g}",
                sim.api_url()
            ))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            if t["is_closed"] == 0 && t["deactivated"].is_null() && !groups.contains(&g) {
                groups.push(g);
            }
        }
        let c = run_task(&sim, "MEMBERS", &groups, json!({}), &[]).await;
        row("MEMBERS, 10 communities", &c);
        let c = run_task(
            &sim,
            "POSTS",
            &groups,
            json!({"postsPerGroup": 10, "withThreads": true}),
            &[],
        )
        .await;
        row("POSTS, 10 communities x 10 posts, comments and threads", &c);
        let c = run_task(
            &sim,
            "INTERACTIONS",
            &groups,
            json!({"postsPerGroup": 10}),
            &[],
        )
        .await;
        row("INTERACTIONS, 10 communities x 10 posts", &c);
        sim.shutdown().await;
    });
}
