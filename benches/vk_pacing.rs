//! VK pacing benchmark: friend lists per second per token against vk-sim at VK's limit of
//! 3 requests/second (time-scaled), for this service's policy and the seed's, side by side.
//!
//! Run: `cargo bench --bench vk_pacing`. The simulator runs `TIME_SCALE` times faster than VK
//! and the service's interval is scaled alike, so every figure is reported in VK seconds.
//! The anchors: 75 lists/s per token is the ceiling (3 requests/s × 25 calls per execute).
//! Every row runs twice in the same run: on vk-sim's defaults (strict: latency, inner-call
//! faults, quotas...) and on `SimConfig::kind()` (the simulator before issue 13), so the table
//! shows what the kindness was worth.

use std::time::Instant;

use vk_parser::ids::{JobId, VkUserId};
use vk_parser::settings::Settings;
use vk_parser::vk::tokens::ReleaseReason;
use vk_parser::vk::{self, methods};
use vk_sim::{SimConfig, SimHandle};

const TIME_SCALE: f64 = 10.0;
const LISTS: i64 = 1500;

struct Policy {
    name: &'static str,
    calls_per_execute: u8,
    interval_ms: f64,
    /// Executes of the job in flight at once (the seed service: one).
    in_flight: u8,
}

fn settings(sim: &SimHandle, policy: &Policy, tokens: &[String]) -> Settings {
    let interval_us = (policy.interval_ms * 1000.0 / TIME_SCALE) as u64;
    let vars = [
        ("VK_API_BASE_URL", sim.api_url().to_owned()),
        ("VK_STATIC_TOKENS", tokens.join(",")),
        ("VK_REQUEST_INTERVAL", format!("{interval_us}us")),
        ("VK_CALLS_PER_EXECUTE", policy.calls_per_execute.to_string()),
        ("VKP_VK__WARMUP_REQUESTS", "0".to_owned()),
        // Pacing of real requests alone: masking (jitter, decoys) is priced in report_requests.
        ("VKP_VK__STEALTH", "off".to_owned()),
        ("VKP_VK__IN_FLIGHT_PER_TOKEN", policy.in_flight.to_string()),
    ];
    let env = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Settings::load(None, &env).expect("bench settings")
}

fn stat(stats: &serde_json::Value, key: &str) -> u64 {
    stats[key].as_u64().unwrap_or(0)
}

/// The bench's simulator: the defaults at `TIME_SCALE`, or their kind variant.
fn sim_config(strict: bool, pool: u32) -> SimConfig {
    let config = SimConfig {
        time_scale: TIME_SCALE,
        global_pool: pool,
        ..SimConfig::small()
    };
    if strict {
        config
    } else {
        config.kind()
    }
}

fn label(strict: bool) -> &'static str {
    if strict {
        "strict"
    } else {
        "kind"
    }
}

async fn friend_lists_per_second(policy: &Policy, strict: bool) -> (f64, u64, u64) {
    lists_on(policy, sim_config(strict, 4)).await
}

/// 1,500 friend lists on one token of a simulator built from `config`: (lists per VK second,
/// requests, answers 6).
async fn lists_on(policy: &Policy, config: SimConfig) -> (f64, u64, u64) {
    let sim = vk_sim::spawn(config).await.expect("sim");
    let token = sim.pool_tokens()[0].clone();
    let orchestrator = vk::connect(&settings(&sim, policy, &[token])).expect("vk");
    let mut session = orchestrator
        .session(&JobId::parse("bench").unwrap(), VkUserId::new(1).unwrap())
        .await
        .expect("session");
    let users: Vec<VkUserId> = (100..100 + LISTS)
        .map(|id| VkUserId::new(id).unwrap())
        .collect();
    let started = Instant::now();
    let lists = methods::friend_lists(&mut session, &users)
        .await
        .expect("lists");
    let vk_seconds = started.elapsed().as_secs_f64() * TIME_SCALE;
    session.finish(ReleaseReason::Completed).await;
    assert_eq!(lists.len(), users.len());
    let stats = sim.stats();
    (
        LISTS as f64 / vk_seconds,
        stat(&stats, "requests"),
        stat(&stats, "rate_limit_violations"),
    )
}

/// Requests per VK second from 50 tasks over `tokens` tokens (cheap calls), and error-6 count.
async fn concurrent_throughput(tokens: usize, strict: bool) -> (f64, u64) {
    let sim = vk_sim::spawn(sim_config(strict, tokens as u32))
        .await
        .expect("sim");
    let policy = Policy {
        name: "",
        calls_per_execute: 25,
        interval_ms: 420.0,
        in_flight: 4,
    };
    let pool: Vec<String> = sim.pool_tokens().to_vec();
    let orchestrator = vk::connect(&settings(&sim, &policy, &pool)).expect("vk");
    let client = orchestrator.client().clone();
    let per_token = 60;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..50 {
        let client = client.clone();
        let token = vk::tokens::Token::new(
            vk_parser::secret::Secret::new(pool[t % tokens].clone()),
            None,
            vk::tokens::TokenOrigin::Static(t % tokens),
        );
        let share = per_token * tokens / 50 + usize::from(t < per_token * tokens % 50);
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                client
                    .call(&token, "utils.getServerTime", &Vec::new())
                    .await
                    .expect("call");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let vk_seconds = started.elapsed().as_secs_f64() * TIME_SCALE;
    let stats = sim.stats();
    (
        stat(&stats, "requests") as f64 / vk_seconds,
        stat(&stats, "rate_limit_violations"),
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("VK pacing against vk-sim (3 requests/s per token, time scale {TIME_SCALE}x; figures in VK seconds)");
        println!("{LISTS} friend lists on one token; the ceiling is 75 lists/s (3 req/s x 25 calls)");
        println!("{:<36} {:>7} {:>10} {:>9} {:>8} {:>9}", "policy", "vk-sim", "lists/s", "of 75/s", "requests", "error 6");
        let policies = [
            Policy { name: "seed: 17 per execute, 420 ms", calls_per_execute: 17, interval_ms: 420.0, in_flight: 1 },
            Policy { name: "vk-parser: 25 per execute, 420 ms", calls_per_execute: 25, interval_ms: 420.0, in_flight: 4 },
            Policy { name: "vk-parser: 25 per execute, 350 ms", calls_per_execute: 25, interval_ms: 350.0, in_flight: 4 },
        ];
        for strict in [true, false] {
            let mut seed_rate = 0.0;
            for policy in &policies {
                let (rate, requests, violations) = friend_lists_per_second(policy, strict).await;
                if seed_rate == 0.0 {
                    seed_rate = rate;
                }
                println!(
                    "{:<36} {:>7} {:>10.1} {:>8.0}% {:>8} {:>9}   ({:.2}x seed)",
                    policy.name,
                    label(strict),
                    rate,
                    rate / 75.0 * 100.0,
                    requests,
                    violations,
                    rate / seed_rate
                );
            }
        }
        println!();
        println!("A token's pace against VK's latency (strict vk-sim, base latency swept; 25 per execute,");
        println!("420 ms: the budget is 1 / 0.42 s = 2.38 requests/s per token)");
        println!("{:>10} {:>10} {:>13} {:>10} {:>8}", "base ms", "in flight", "requests/s", "of budget", "error 6");
        for base in [0.0, 200.0, 400.0, 800.0] {
            for in_flight in [1, 4] {
                let policy = Policy { name: "", calls_per_execute: 25, interval_ms: 420.0, in_flight };
                let config = SimConfig { latency_base_ms: base, ..sim_config(true, 4) };
                let (rate, requests, violations) = lists_on(&policy, config).await;
                // lists/s over lists per request is requests/s.
                let per_second = rate * requests as f64 / LISTS as f64;
                println!(
                    "{base:>10.0} {in_flight:>10} {per_second:>13.2} {:>9.0}% {violations:>8}",
                    per_second * 0.42 * 100.0
                );
            }
        }
        println!();
        println!("50 concurrent tasks, cheap calls, 420 ms per token:");
        for strict in [true, false] {
            let (one, v1) = concurrent_throughput(1, strict).await;
            let (five, v5) = concurrent_throughput(5, strict).await;
            let vk_sim = label(strict);
            println!("  {vk_sim:<6} 1 token : {one:>6.2} requests/s, error 6: {v1}");
            println!("  {vk_sim:<6} 5 tokens: {five:>6.2} requests/s, error 6: {v5}   ({:.2}x one token)", five / one);
        }
    });
}
