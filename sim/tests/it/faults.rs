//! Fault injection (per method and global, at start and at runtime) and captcha.

use std::time::Duration;

use serde_json::{json, Value};

use crate::{sim_post, small_config, spawn_sim, Vk};

async fn raw(sim: &vk_sim::SimHandle, method: &str) -> Result<(u16, String), reqwest::Error> {
    let r = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap()
        .post(format!("{}/method/{method}", sim.api_url()))
        .form(&[
            ("access_token", sim.pool_tokens()[0].as_str()),
            ("v", "5.199"),
        ])
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.text().await?))
}

#[tokio::test]
async fn each_fault_kind_looks_like_it_should() {
    let mut config = small_config();
    config.slow_delay_ms = 5_000;
    config.method_faults = vec!["users.get:http502=1".into()];
    let sim = spawn_sim(config).await;
    // per-method fault from the command line; other methods unaffected
    assert_eq!(raw(&sim, "users.get").await.unwrap().0, 502);
    assert_eq!(raw(&sim, "utils.getServerTime").await.unwrap().0, 200);

    let set = |kind: &str| json!({"global": {kind: 1.0}});
    sim_post(&sim, "/sim/faults", set("error10")).await;
    let (s, body) = raw(&sim, "utils.getServerTime").await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["error_code"],
        json!(10)
    );
    for (kind, status) in [("http500", 500), ("http503", 503)] {
        sim_post(&sim, "/sim/faults", set(kind)).await;
        assert_eq!(raw(&sim, "utils.getServerTime").await.unwrap().0, status);
    }
    for kind in ["truncated", "invalid_json"] {
        sim_post(&sim, "/sim/faults", set(kind)).await;
        let (s, body) = raw(&sim, "utils.getServerTime").await.unwrap();
        assert_eq!(s, 200);
        assert!(
            serde_json::from_str::<Value>(&body).is_err(),
            "{kind}: {body}"
        );
    }
    sim_post(&sim, "/sim/faults", set("drop")).await;
    let dropped = raw(&sim, "utils.getServerTime").await;
    assert!(dropped.is_err(), "connection dropped");
    sim_post(&sim, "/sim/faults", set("slow")).await;
    let slow = raw(&sim, "utils.getServerTime").await;
    assert!(slow.unwrap_err().is_timeout());
    sim_post(&sim, "/sim/faults", json!({})).await;
    assert_eq!(raw(&sim, "utils.getServerTime").await.unwrap().0, 200);
    let stats = crate::sim_get(&sim, "/sim/stats").await;
    for kind in [
        "http502",
        "error10",
        "http500",
        "http503",
        "truncated",
        "invalid_json",
        "drop",
        "slow",
    ] {
        assert_eq!(stats["faults"][kind], json!(1), "{kind}");
    }
    assert_eq!(
        sim_post(&sim, "/sim/faults", json!({"global": {"nope": 1}})).await["error"],
        json!("bad_request")
    );
}

#[tokio::test]
async fn faults_and_captcha_are_deterministic_by_seed() {
    async fn pattern() -> Vec<Option<i64>> {
        let mut config = small_config();
        config.faults = vec!["error10=0.3".into()];
        config.captcha_rate = 0.2;
        let sim = spawn_sim(config).await;
        let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(vk.call("utils.getServerTime", &[]).await["error"]["error_code"].as_i64());
        }
        out
    }
    let a = pattern().await;
    assert_eq!(a, pattern().await);
    assert!(a.contains(&Some(10)) && a.contains(&Some(14)) && a.contains(&None));
}

#[tokio::test]
async fn captcha_rate_changes_at_runtime() {
    let mut config = small_config();
    config.captcha_rate = 1.0;
    let sim = spawn_sim(config).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let body = vk.call("users.get", &[]).await;
    assert_eq!(body["error"]["error_code"], json!(14));
    assert!(body["error"]["captcha_sid"].is_string());
    assert!(body["error"]["captcha_img"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    sim_post(&sim, "/sim/captcha", json!({"rate": 0.0})).await;
    vk.ok("users.get", &[]).await;
    // one token only
    let other = Vk::new(&sim, &sim.pool_tokens()[1]);
    sim_post(
        &sim,
        "/sim/captcha",
        json!({"rate": 1.0, "token": sim.pool_tokens()[1]}),
    )
    .await;
    assert_eq!(other.err("users.get", &[]).await, 14);
    vk.ok("users.get", &[]).await;
}

#[tokio::test]
async fn a_degraded_token_sees_empty_lists_or_errors_while_others_see_the_truth() {
    let sim = spawn_sim(small_config()).await;
    let pool = sim.pool_tokens();
    let (bad, good) = (Vk::new(&sim, &pool[0]), Vk::new(&sim, &pool[1]));
    let open = sim.named().open.to_string();
    let friends = |v: &Value| v["response"]["items"].as_array().map(Vec::len);
    let truth = friends(&good.call("friends.get", &[("user_id", &open)]).await);
    assert!(truth.unwrap() > 0);

    sim_post(
        &sim,
        "/sim/tokens/degrade",
        json!({"token": pool[0], "empty_lists": true}),
    )
    .await;
    assert_eq!(
        friends(&bad.call("friends.get", &[("user_id", &open)]).await),
        Some(0)
    );
    let subs = bad
        .call("users.getSubscriptions", &[("user_id", &open)])
        .await;
    assert_eq!(subs["response"]["groups"]["count"], 0);
    assert_eq!(
        friends(&good.call("friends.get", &[("user_id", &open)]).await),
        truth
    );
    // Inside execute too.
    let code = format!("return API.friends.get({{\"user_id\": {open}}});");
    let inner = bad.call("execute", &[("code", &code)]).await;
    assert_eq!(inner["response"]["count"], 0);

    // By owner, an error for one method only; an empty degradation clears it.
    let owner = sim_get_owner(&sim, &pool[0]).await;
    sim_post(&sim, "/sim/tokens/degrade", json!({"token": pool[0]})).await;
    sim_post(
        &sim,
        "/sim/tokens/degrade",
        json!({"owner": owner, "error_code": 100, "methods": ["users.getFollowers"]}),
    )
    .await;
    let followers = bad.call("users.getFollowers", &[("user_id", &open)]).await;
    assert_eq!(followers["error"]["error_code"], 100);
    assert_eq!(
        friends(&bad.call("friends.get", &[("user_id", &open)]).await),
        truth
    );
    assert!(sim.stats()["degraded_answers"].as_u64().unwrap() >= 4);
}

/// The owner of `token` by `GET /sim/tokens`.
async fn sim_get_owner(sim: &vk_sim::SimHandle, token: &str) -> u64 {
    let list: Value = reqwest::get(format!("{}/sim/tokens", sim.api_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["token"] == token)
        .and_then(|t| t["owner"].as_u64())
        .expect("the token is listed")
}
