//! vk-sim on free ports, the service settings that point at it, and its truth (quick seeds).
//!
//! Tests run the simulator 20 times faster than VK (3 requests/second become 60): the service's
//! interval is scaled the same way, so the pacing arithmetic is VK's.

use std::collections::HashMap;

use serde_json::{json, Value};
use vk_parser::ids::{JobId, VkUserId};
use vk_parser::settings::Settings;
use vk_sim::{SimConfig, SimHandle};

/// Simulated seconds per real second in tests.
pub const TIME_SCALE: f64 = 20.0;

/// A small simulator (12,000 users) at [`TIME_SCALE`], tweaked by `adjust`.
pub async fn start(adjust: impl FnOnce(&mut SimConfig)) -> SimHandle {
    crate::support::logs::init();
    let mut config = SimConfig::small();
    config.time_scale = TIME_SCALE;
    adjust(&mut config);
    vk_sim::spawn(config).await.expect("vk-sim starts")
}

/// Environment for settings that use `sim` as VK and as the token manager, paced for
/// [`TIME_SCALE`] (420 ms / 20 = 21 ms, the stealth jitter 100 ms / 20 = 5 ms), with short
/// switch backoffs. Stealth stays on, as in production.
pub fn env(sim: &SimHandle) -> HashMap<String, String> {
    let interval_us = (420_000.0 / TIME_SCALE) as u64;
    let jitter_us = (100_000.0 / TIME_SCALE) as u64;
    crate::support::env(&[
        ("VK_API_BASE_URL", sim.api_url()),
        ("TOKEN_SERVICE_URL", sim.token_manager_url()),
        ("TOKEN_SERVICE_API_KEY", sim.manager_api_key()),
        ("VK_REQUEST_INTERVAL", &format!("{interval_us}us")),
        ("VKP_VK__REQUEST_JITTER", &format!("{jitter_us}us")),
        ("VKP_VK__SWITCH_BACKOFF", "10ms"),
        ("VK_REQUEST_TIMEOUT", "5s"),
    ])
}

/// Settings from [`env`] plus `extra`.
pub fn settings(sim: &SimHandle, extra: &[(&str, &str)]) -> Settings {
    let mut vars = env(sim);
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Settings::load(None, &vars).expect("test settings")
}

/// `stats[path...]` as u64 (0 when absent).
pub fn stat(stats: &Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(stats, |v, key| &v[*key])
        .as_u64()
        .unwrap_or(0)
}

/// Every token the simulator knows (`GET /sim/tokens`): token, owner, kind, scopes, ...
pub async fn tokens(sim: &SimHandle) -> Vec<Value> {
    let list: Value = reqwest::get(format!("{}/sim/tokens", sim.api_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["tokens"].as_array().cloned().unwrap_or_default()
}

/// POSTs JSON to a simulator control endpoint.
pub async fn control(sim: &SimHandle, path: &str, body: Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", sim.api_url()))
        .json(&body)
        .send()
        .await
        .expect("sim control");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

/// `/sim/truth` for `ids`: friend lists, followers, subscriptions and the edges among them.
pub async fn truth(sim: &SimHandle, ids: &[u32]) -> Value {
    reqwest::Client::new()
        .post(format!("{}/sim/truth", sim.api_url()))
        .json(&json!({ "ids": ids }))
        .send()
        .await
        .expect("sim truth")
        .json()
        .await
        .expect("sim truth is JSON")
}

/// Up to `count` quick seeds among the 200 users from `from` (see [`pick_seeds_in`]).
pub async fn pick_seeds(sim: &SimHandle, from: u32, count: usize) -> Vec<u32> {
    pick_seeds_in(sim, from..from + 200, count).await
}

/// Up to `count` quick seeds among `candidates`, by the truth: open, active users with a
/// modest friend list (20 to 149 friends).
pub async fn pick_seeds_in(
    sim: &SimHandle,
    candidates: std::ops::Range<u32>,
    count: usize,
) -> Vec<u32> {
    let candidates: Vec<u32> = candidates.collect();
    let t = truth(sim, &candidates).await;
    candidates
        .into_iter()
        .filter(|u| {
            let info = &t["users"][u.to_string()];
            let friends = info["friends"].as_array().map(Vec::len).unwrap_or(0);
            info["is_closed"] == false
                && info["deactivated"].is_null()
                && (20..150).contains(&friends)
        })
        .take(count)
        .collect()
}

/// A job id for tests.
pub fn job(name: &str) -> JobId {
    JobId::parse(name).expect("test job id")
}

/// A VK id from a simulator id.
pub fn uid(id: u32) -> VkUserId {
    VkUserId::new(i64::from(id)).expect("simulator ids are positive")
}

/// The ids of a JSON array of numbers.
pub fn ids_of(value: &Value) -> Vec<i64> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

/// Makes VK refuse `token` from now on (error 5, invalid access_token).
pub async fn revoke(sim: &SimHandle, token: &str) {
    control(sim, "/sim/tokens/revoke", json!({ "token": token })).await;
}

/// Parameters of `users.get` for one id: the cheapest real call.
pub fn users_get(id: u32) -> Vec<(String, String)> {
    vec![("user_ids".to_owned(), id.to_string())]
}

/// The service's VK stack pointed at `sim` with the test settings.
pub fn connect(sim: &SimHandle) -> vk_parser::vk::orchestrator::Orchestrator {
    vk_parser::vk::connect(&settings(sim, &[])).expect("the VK stack builds")
}

/// `/sim/truth/posts`: every post made through wall.post, the counts per community, the guid
/// repeats and every upload.
pub async fn posts_truth(sim: &SimHandle) -> Value {
    reqwest::get(format!("{}/sim/truth/posts", sim.api_url()))
        .await
        .expect("sim posts truth")
        .json()
        .await
        .expect("sim posts truth is JSON")
}

/// The truth's members of community `group` on simulated day `day`, ascending.
pub async fn members_truth(
    sim: &SimHandle,
    group: u32,
    day: u64,
) -> std::collections::BTreeSet<i64> {
    let t: Value = reqwest::get(format!(
        "{}/sim/truth/members?group_id={group}&day={day}",
        sim.api_url()
    ))
    .await
    .expect("sim members truth")
    .json()
    .await
    .expect("sim members truth is JSON");
    t["items"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

/// A PNG header the simulator's upload server reads as a `width`×`height` picture.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
    v.extend_from_slice(b"IHDR");
    v.extend_from_slice(&width.to_be_bytes());
    v.extend_from_slice(&height.to_be_bytes());
    v.extend_from_slice(&[8, 2, 0, 0, 0]);
    v
}
