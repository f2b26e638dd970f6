//! Rate limiting (6, flood control 9), the time scale, and stats accounting.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{sim_get, small_config, spawn_sim, Vk};

#[tokio::test]
async fn n_plus_one_requests_in_a_second_get_exactly_one_6_per_token() {
    let mut config = small_config();
    config.rate_per_second = 3;
    let sim = spawn_sim(config).await;
    let a = Vk::new(&sim, &sim.pool_tokens()[0]);
    let b = Vk::new(&sim, &sim.pool_tokens()[1]);
    let started = Instant::now();
    let mut codes_a = Vec::new();
    let mut codes_b = Vec::new();
    for _ in 0..4 {
        codes_a.push(a.call("utils.getServerTime", &[]).await["error"]["error_code"].as_i64());
        codes_b.push(b.call("utils.getServerTime", &[]).await["error"]["error_code"].as_i64());
    }
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "all inside one window"
    );
    assert_eq!(
        codes_a,
        vec![None, None, None, Some(6)],
        "exactly the excess is answered 6"
    );
    assert_eq!(
        codes_b,
        vec![None, None, None, Some(6)],
        "tokens do not share a budget"
    );
    let stats = sim_get(&sim, "/sim/stats").await;
    assert_eq!(stats["rate_limit_violations"], json!(2));
    assert_eq!(stats["errors_by_code"]["6"], json!(2));
    assert_eq!(
        stats["per_token"][&sim.pool_tokens()[0]]["rate_limit_violations"],
        json!(1)
    );
    assert_eq!(
        stats["per_token"][&sim.pool_tokens()[0]]["requests"],
        json!(4)
    );
    assert_eq!(stats["requests"], json!(8));
    assert!(stats["bytes_out"].as_u64().unwrap() > 0 && stats["bytes_in"].as_u64().unwrap() > 0);
    // the window slides: a second later the token works again
    tokio::time::sleep(Duration::from_millis(1050)).await;
    a.ok("utils.getServerTime", &[]).await;
}

#[tokio::test]
async fn concurrent_burst_gets_exactly_the_excess() {
    let mut config = small_config();
    config.rate_per_second = 3;
    config.flood_threshold = 1000;
    let sim = spawn_sim(config).await;
    let token = sim.pool_tokens()[0].clone();
    let vk = std::sync::Arc::new(Vk::new(&sim, &token));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let vk = vk.clone();
        tasks.push(tokio::spawn(async move {
            vk.call("utils.getServerTime", &[]).await["error"]["error_code"].as_i64()
        }));
    }
    let mut sixes = 0;
    for t in tasks {
        if t.await.unwrap() == Some(6) {
            sixes += 1;
        }
    }
    assert_eq!(sixes, 7, "10 requests at once, 3 allowed");
}

#[tokio::test]
async fn a_token_that_keeps_breaking_the_limit_gets_flood_control() {
    let mut config = small_config();
    config.rate_per_second = 3;
    config.flood_threshold = 3;
    let sim = spawn_sim(config).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let mut codes = Vec::new();
    for _ in 0..8 {
        codes.push(vk.call("utils.getServerTime", &[]).await["error"]["error_code"].as_i64());
    }
    assert_eq!(
        codes,
        vec![
            None,
            None,
            None,
            Some(6),
            Some(6),
            Some(6),
            Some(9),
            Some(9)
        ]
    );
    let stats = sim_get(&sim, "/sim/stats").await;
    assert_eq!(stats["flood_errors"], json!(2));
}

#[tokio::test]
async fn time_scale_speeds_up_the_same_accounting() {
    let mut config = small_config();
    // 30 requests per second: the same 3 per window, the window is 100 ms
    config.rate_per_second = 3;
    config.time_scale = 10.0;
    let sim = spawn_sim(config).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let started = Instant::now();
    for _ in 0..3 {
        vk.ok("utils.getServerTime", &[]).await;
    }
    let body = vk.call("utils.getServerTime", &[]).await;
    if started.elapsed() < Duration::from_millis(95) {
        assert_eq!(body["error"]["error_code"], json!(6));
    }
    tokio::time::sleep(Duration::from_millis(110)).await;
    vk.ok("utils.getServerTime", &[]).await;
}
