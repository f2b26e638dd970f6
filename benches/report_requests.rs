//! VK requests per DEFAULT report (stages 1 and 2) on a fixed vk-sim graph: this service's
//! strategy (friends.getMutual from each seed, 25 calls per execute) against the seed
//! service's policy (friends.get of every valid user, 17 calls per execute), and the lower bound
//! of the arithmetic in shared/vk-api.md. Both runs must produce the same edges.
//!
//! Run: `cargo bench --bench report_requests` (`--profile dev` gives the same counts: they do
//! not depend on speed). The seed also packed followers 20 per execute; one setting packs every
//! method here, so its follower requests are counted at 17 (a few percent against it).
//!
//! The comparisons run with `vk.stealth = "off"`, so they count the work alone; one row runs
//! the default (`"on"`: jitter, decoys inside executes and standalone) to price the masking.
//!
//! Everything runs twice in one run: on vk-sim's defaults (strict: the author's token has no
//! `friends` right, latency, hidden friends, inner-call faults, quotas) and on
//! `SimConfig::kind()` (the simulator before issue 13). Each run's edges are checked against
//! `/sim/truth`, and a run that found fewer says so rather than failing the bench: measuring
//! what the strict simulator costs the service is the point.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use vk_parser::app::App;
use vk_parser::settings::Settings;
use vk_parser::tables::{from_parquet, ColumnData};
use vk_sim::{SimConfig, SimHandle};

// The tests' private redis-server and their publish-and-wait, shared rather than copied.
#[allow(dead_code)]
#[path = "../tests/it/support/backend.rs"]
mod backend;
#[allow(dead_code)]
#[path = "../tests/it/support/redis_server.rs"]
mod redis_server;
#[allow(dead_code)]
#[path = "../tests/it/support/wait.rs"]
mod wait;

/// How long one stage may take: a bound on a hang, far beyond a stage at any time scale.
const STAGE_DEADLINE: Duration = Duration::from_secs(3600);

/// How much faster than VK the simulator runs: `REPORT_TIME_SCALE`, 50 by default. Request
/// counts do not depend on it; wall times do (each real second of the service's own work counts
/// as this many VK seconds), so the wall-time figure in BENCHMARKS.md comes from a run at 5.
fn time_scale() -> f64 {
    std::env::var("REPORT_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v: &f64| *v > 0.0)
        .unwrap_or(50.0)
}

async fn truth(sim: &SimHandle, ids: &[i64]) -> Value {
    reqwest::Client::new()
        .post(format!("{}/sim/truth", sim.api_url()))
        .json(&json!({ "ids": ids }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Three open seeds with several hundred friends each, far apart in the graph.
async fn seeds(sim: &SimHandle) -> Vec<i64> {
    let mut seeds = Vec::new();
    for start in [100_i64, 4000, 8000] {
        let ids: Vec<i64> = (start..start + 500).collect();
        let t = truth(sim, &ids).await;
        let pick = ids.into_iter().find(|id| {
            let u = &t["users"][id.to_string()];
            let n = u["friends"].as_array().map(Vec::len).unwrap_or(0);
            u["is_closed"] == false && u["deactivated"].is_null() && (400..1500).contains(&n)
        });
        seeds.push(pick.expect("a seed with several hundred friends"));
    }
    seeds
}

struct Run {
    requests: u64,
    valid: usize,
    edges: usize,
    /// The edges `/sim/truth` has among the valid users (friendships and follows).
    truth_edges: usize,
    seconds: f64,
}

/// Whether a run masks its requests (`vk.stealth`): the comparisons run without, so their
/// counts are the work alone; one row prices the default masking.
#[derive(Clone, Copy, PartialEq)]
enum Stealth {
    On,
    Off,
}

async fn run(
    sim: &SimHandle,
    seeds: &[i64],
    strategy: &str,
    per_execute: u8,
    report_type: &str,
    stealth: Stealth,
) -> Run {
    // Each report starts on a fresh simulated day: quotas, rate windows and counters reset (the
    // tokens and their rights stay), so one run's quota use does not cost the next.
    reqwest::Client::new()
        .post(format!("{}/sim/reset", sim.api_url()))
        .send()
        .await
        .unwrap();
    let redis = redis_server::RedisServer::start();
    let data = tempfile::tempdir().unwrap();
    let interval_us = (420_000.0 / time_scale()) as u64;
    let jitter_us = (100_000.0 / time_scale()) as u64;
    let vars: HashMap<String, String> = [
        (
            "VKP_VK__STEALTH",
            if stealth == Stealth::On { "on" } else { "off" }.to_owned(),
        ),
        ("VKP_VK__REQUEST_JITTER", format!("{jitter_us}us")),
        ("REDIS_URL", redis.url()),
        ("STORAGE_URL", data.path().display().to_string()),
        ("VK_API_BASE_URL", sim.api_url().to_owned()),
        ("TOKEN_SERVICE_URL", sim.api_url().to_owned()),
        ("TOKEN_SERVICE_API_KEY", sim.manager_api_key().to_owned()),
        ("VK_REQUEST_INTERVAL", format!("{interval_us}us")),
        ("VK_CALLS_PER_EXECUTE", per_execute.to_string()),
        ("VKP_PARSER__EDGE_STRATEGY", strategy.to_owned()),
        ("VKP_OPS__LISTEN", "127.0.0.1:0".to_owned()),
        ("VKP_STREAM__BLOCK", "50ms".to_owned()),
        ("VKP_TELEMETRY__LOG_LEVEL", "error".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let app = App::build(Settings::load(None, &vars).unwrap())
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(stop.clone()));
    let streams = backend::Streams::open(&redis.url()).await;
    let before = sim.stats()["requests"].as_u64().unwrap_or(0);
    let started = Instant::now();
    let author = sim.named().open;
    let mut prefixes = BTreeMap::new();
    for (stage, event_type) in [(1, "ReportCreated"), (2, "Stage2Created")] {
        let payload = json!({"reportId": "bench", "jobId": strategy, "userId": author, "reportType": report_type, "socialNetworkIds": seeds});
        streams.publish(event_type, &payload).await;
        let status = streams
            .final_status_within(strategy, stage, STAGE_DEADLINE)
            .await;
        assert_ne!(status["status"], "FAILED", "{status}");
        prefixes.insert(
            stage,
            status["artifacts"]["prefix"].as_str().unwrap().to_owned(),
        );
    }
    let seconds = started.elapsed().as_secs_f64() * time_scale();
    let requests = sim.stats()["requests"].as_u64().unwrap_or(0) - before;
    stop.cancel();
    task.await.unwrap().unwrap();
    let read = |stage: u8, name: &str| {
        let bytes = std::fs::read(
            data.path()
                .join(&prefixes[&stage])
                .join(format!("{name}.parquet")),
        )
        .unwrap();
        from_parquet(name, &bytes).unwrap()
    };
    let ids = |stage: u8, name: &str| match read(stage, name).columns.first().map(|c| &c.data) {
        Some(ColumnData::I64(v)) => v.clone(),
        _ => Vec::new(),
    };
    let rows = |stage: u8, name: &str| ids(stage, name).len();
    let valid = ids(1, "valid_users");
    let t = truth(sim, &valid).await;
    let count = |key: &str| t[key].as_array().map(Vec::len).unwrap_or(0);
    let truth_edges = count("edges") + count("follow_edges");
    Run {
        requests,
        valid: rows(1, "valid_users"),
        edges: rows(2, "df_connect"),
        truth_edges,
        seconds,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for strict in [true, false] {
            let config = SimConfig {
                time_scale: time_scale(),
                ..SimConfig::small()
            };
            let (label, config) = if strict {
                ("strict (defaults)", config)
            } else {
                ("kind (SimConfig::kind)", config.kind())
            };
            println!("=== vk-sim {label}");
            bench(vk_sim::spawn(config).await.unwrap(), strict).await;
            println!();
        }
    });
}

/// Gives (or takes) the `friends` right to the author's token and to the pool's.
async fn friends_right(sim: &SimHandle, user: bool, pool: bool) {
    // The author's token exists before its scopes are set.
    sim.user_token(sim.named().open);
    let tokens: Value = reqwest::get(format!("{}/sim/tokens", sim.api_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for t in tokens["tokens"].as_array().unwrap() {
        let give = if t["kind"] == "pool" { pool } else { user };
        let mut scopes = vec!["wall", "photos", "docs", "offline", "groups"];
        if give {
            scopes.push("friends");
        }
        reqwest::Client::new()
            .post(format!("{}/sim/tokens/scopes", sim.api_url()))
            .json(&json!({"token": t["token"], "scopes": scopes}))
            .send()
            .await
            .unwrap();
    }
}

async fn bench(sim: SimHandle, strict: bool) {
    {
        let seeds = seeds(&sim).await;
        let ours = run(&sim, &seeds, "mutual", 25, "DEFAULT", Stealth::Off).await;
        let seed = run(&sim, &seeds, "friends", 17, "DEFAULT", Stealth::Off).await;
        let handshakes = run(&sim, &seeds, "mutual", 25, "HANDSHAKES", Stealth::Off).await;
        let complete = |r: &Run| {
            if r.edges == r.truth_edges {
                "complete".to_owned()
            } else {
                format!("{} of {} truth edges", r.edges, r.truth_edges)
            }
        };
        // The lower bound: stage 1 reads 2 lists per seed (one execute) and the profiles of the
        // audience (1,000 per call, 25 calls per execute); stage 2 needs K x |V| getMutual pairs
        // (2,500 per request), one follower list per valid user (25 per request), and the
        // profiles of the graph.
        let k = seeds.len() as f64;
        let v = ours.valid as f64;
        let bound = 1.0
            + (v / 25_000.0).ceil()
            + (k * v / 2500.0).ceil()
            + (v / 25.0).ceil()
            + (v / 25_000.0).ceil();
        println!(
            "DEFAULT report on vk-sim, seeds {seeds:?}: {} valid users, {} edges",
            ours.valid, ours.edges
        );
        println!(
            "{:<44} {:>9} {:>12}  edges",
            "policy", "requests", "VK seconds"
        );
        println!(
            "{:<44} {:>9} {:>12.1}  {}",
            "seed: friends.get, 17 per execute",
            seed.requests,
            seed.seconds,
            complete(&seed)
        );
        println!(
            "{:<44} {:>9} {:>12.1}  {}   ({:.2}x fewer requests)",
            "vk-parser: getMutual, 25 per execute",
            ours.requests,
            ours.seconds,
            complete(&ours),
            seed.requests as f64 / ours.requests as f64
        );
        println!("{:<44} {:>9}", "lower bound (arithmetic)", bound);
        println!(
            "vk-parser wall time {:.1} VK s for {} requests at 420 ms ({:.1} s): {:.2}x the pace",
            ours.seconds,
            ours.requests,
            ours.requests as f64 * 0.42,
            ours.seconds / (ours.requests as f64 * 0.42)
        );
        if strict {
            // The price of masking: the same report with `vk.stealth = "on"`, the default.
            let masked = run(&sim, &seeds, "mutual", 25, "DEFAULT", Stealth::On).await;
            println!(
                "{:<44} {:>9} {:>12.1}  {}   ({:.2}x the requests, {:.2}x the VK seconds of stealth off)",
                "vk-parser, stealth on (the default)",
                masked.requests,
                masked.seconds,
                complete(&masked),
                masked.requests as f64 / ours.requests as f64,
                masked.seconds / ours.seconds
            );
            // Who holds the `friends` right getMutual needs; the default above is "pool only".
            for (name, user, pool) in [
                ("vk-parser, friends right on no token", false, false),
                ("vk-parser, friends right on every token", true, true),
            ] {
                friends_right(&sim, user, pool).await;
                let r = run(&sim, &seeds, "mutual", 25, "DEFAULT", Stealth::Off).await;
                println!(
                    "{:<44} {:>9} {:>12.1}  {}",
                    name,
                    r.requests,
                    r.seconds,
                    complete(&r)
                );
            }
            friends_right(&sim, false, true).await;
        }
        // HANDSHAKES anchor: a breadth-first search by friends.get, expanding the smaller seed
        // of each pair (one friend list per friend, 25 per execute), after the same stage 1.
        let t = truth(&sim, &seeds).await;
        let friends = |id: i64| {
            t["users"][id.to_string()]["friends"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0)
        };
        let mut bfs = 1.0 + (handshakes.valid as f64 / 25_000.0).ceil();
        for (i, a) in seeds.iter().enumerate() {
            for b in &seeds[i + 1..] {
                bfs += (friends(*a).min(friends(*b)) as f64 / 25.0).ceil();
            }
        }
        let mut distances = Vec::new();
        for (i, a) in seeds.iter().enumerate() {
            for b in &seeds[i + 1..] {
                let path: Value =
                    reqwest::get(format!("{}/sim/truth/path?from={a}&to={b}", sim.api_url()))
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                distances.push(path["distance"].clone());
            }
        }
        println!();
        println!("HANDSHAKES truth: shortest chain lengths between the seed pairs {distances:?}");
        println!(
            "HANDSHAKES report, same seeds: {} chain edges; vk-parser {} requests ({:.1} VK seconds), \
             BFS by friends.get {} requests ({:.1}x as many)",
            handshakes.edges,
            handshakes.requests,
            handshakes.seconds,
            bfs,
            bfs / handshakes.requests.max(1) as f64
        );
    }
}
