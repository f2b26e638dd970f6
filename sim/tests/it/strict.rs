//! The strictness VK has and the simulator once lacked, one test per behaviour, over real HTTP:
//! access rights (friends.getMutual needs `friends`), counters only for a one-user users.get,
//! the latency model, daily quotas of the read methods, a celebrity's follower list, 15 for a
//! deactivated user's lists, hidden friends, inner-call faults, the execute code-size limit,
//! deactivated communities, and every VK host through the proxy.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vk_sim::SimConfig;

use crate::{sim_get, sim_post, small_config, spawn_sim, Vk};

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn get_mutual_needs_the_friends_right_direct_and_inside_execute() {
    let sim = spawn_sim(small_config()).await;
    let named = sim.named();
    let target = named.hub.to_string();
    // A user token has the seed's OAuth scope: no `friends`.
    let user = Vk::new(&sim, &sim.user_token(named.open));
    let body = user
        .call("friends.getMutual", &[("target_uid", &target)])
        .await;
    assert_eq!(body["error"]["error_code"], json!(15), "{body}");
    assert_eq!(body["error"]["error_subcode"], json!(1133), "{body}");
    assert_eq!(
        body["error"]["error_msg"],
        json!("Access denied: no access to call this method")
    );
    let code = format!(
        "return {{\"m\": API.friends.getMutual({{\"target_uid\": {target}}}), \"f\": API.friends.get({{\"user_id\": {target}, \"count\": 1}})}};"
    );
    let body = user.call("execute", &[("code", &code)]).await;
    assert!(body.get("error").is_none(), "the execute succeeds: {body}");
    assert_eq!(body["response"]["m"], json!(false));
    assert_eq!(body["response"]["f"]["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        body["execute_errors"],
        json!([{"method": "friends.getMutual", "error_code": 15,
                "error_msg": "Access denied: no access to call this method"}])
    );
    // A pool token has `friends`.
    let pool = Vk::new(&sim, &sim.pool_tokens()[0]);
    let common = pool
        .ok(
            "friends.getMutual",
            &[
                ("source_uid", &named.open.to_string()),
                ("target_uid", &target),
            ],
        )
        .await;
    assert!(common.is_array());
    // The token manager reports each token's rights.
    let http = reqwest::Client::new();
    let issued: Value = http
        .get(format!("{}/tokens/user/{}", sim.api_url(), named.open))
        .header("X-Api-Key", sim.manager_api_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        issued["scopes"],
        json!(["docs", "groups", "offline", "photos", "wall"])
    );
    let lease: Value = http
        .post(format!("{}/tokens/global/lease", sim.api_url()))
        .header("X-Api-Key", sim.manager_api_key())
        .json(&json!({"job_id": "j"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(lease["scopes"]
        .as_array()
        .unwrap()
        .contains(&json!("friends")));
}

#[tokio::test]
async fn user_token_scopes_are_a_setting() {
    let mut config = small_config();
    config.user_token_scopes = "friends,offline".into();
    let sim = spawn_sim(config).await;
    let named = sim.named();
    let user = Vk::new(&sim, &sim.user_token(named.open));
    user.ok(
        "friends.getMutual",
        &[("target_uid", &named.hub.to_string())],
    )
    .await;
    let mut bad = small_config();
    bad.pool_token_scopes = "friends,telepathy".into();
    let err = vk_sim::spawn(bad).await.unwrap_err().to_string();
    assert!(err.contains("pool_token_scopes"), "{err}");
}

#[tokio::test]
async fn counters_come_only_for_a_one_user_users_get() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let fields = ("fields", "counters,followers_count");
    let one = vk.ok("users.get", &[("user_ids", "6"), fields]).await;
    assert!(one[0]["counters"]["friends"].as_u64().is_some(), "{one}");
    let two = vk.ok("users.get", &[("user_ids", "6,7"), fields]).await;
    for u in two.as_array().unwrap() {
        assert!(u.get("counters").is_none(), "no counters in bulk: {u}");
        assert!(u["followers_count"].as_u64().is_some(), "{u}");
    }
    assert_eq!(sim.stats()["counters_ignored"], json!(1));
    // The old behaviour is a kind setting, for measuring what it was worth.
    let mut kind = small_config();
    kind.bulk_counters = true;
    let kind = spawn_sim(kind).await;
    let vk = Vk::new(&kind, &kind.pool_tokens()[0]);
    let two = vk.ok("users.get", &[("user_ids", "6,7"), fields]).await;
    assert!(two[1]["counters"].is_object());
}

/// POSTs a method and returns (the latency header in real ms, the elapsed time, the body).
async fn timed(
    sim: &vk_sim::SimHandle,
    token: &str,
    form: &[(&str, &str)],
) -> (f64, Duration, Value) {
    let mut form = form.to_vec();
    form.push(("access_token", token));
    form.push(("v", "5.199"));
    let method = form[0].1.to_string();
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{}/method/{method}", sim.api_url()))
        .form(&form[1..])
        .send()
        .await
        .unwrap();
    let header: f64 = resp.headers()["x-sim-latency-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    (header, started.elapsed(), body)
}

#[tokio::test]
async fn answers_wait_as_the_latency_model_says() {
    let mut config = small_config();
    config.latency = "on".into();
    config.latency_base_ms = 200.0;
    config.latency_per_call_ms = 20.0;
    config.latency_per_kb_ms = 0.0;
    config.latency_jitter = 0.0;
    config.time_scale = 2.0; // every term is halved in real time
    let sim = spawn_sim(config).await;
    let token = sim.pool_tokens()[0].clone();
    let (wait, elapsed, _) = timed(&sim, &token, &[("m", "users.get"), ("user_ids", "6")]).await;
    assert_eq!(wait, 100.0, "base 200 simulated ms at time scale 2");
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    let code = "var i = 0; while (i < 5) { API.utils.getServerTime({}); i = i + 1; } return i;";
    let (wait, elapsed, body) = timed(&sim, &token, &[("m", "execute"), ("code", code)]).await;
    assert_eq!(body["response"], json!(5));
    assert_eq!(wait, 150.0, "(200 + 5 x 20) / 2");
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");

    // Per KiB of the answer, and jitter within its share.
    let mut config = small_config();
    config.latency = "on".into();
    config.latency_base_ms = 0.0;
    config.latency_per_call_ms = 0.0;
    config.latency_per_kb_ms = 10.0;
    config.latency_jitter = 0.0;
    let sim = spawn_sim(config).await;
    let token = sim.pool_tokens()[0].clone();
    let hub = sim.named().hub.to_string();
    let (wait, _, body) = timed(&sim, &token, &[("m", "friends.get"), ("user_id", &hub)]).await;
    let bytes = serde_json::to_vec(&body).unwrap().len() as f64;
    assert!(
        (wait - 10.0 * bytes / 1024.0).abs() < 0.01,
        "{wait} for {bytes} bytes"
    );
    let mut config = small_config();
    config.latency = "on".into();
    config.latency_jitter = 0.2;
    config.time_scale = 100.0;
    let sim = spawn_sim(config).await;
    let token = sim.pool_tokens()[0].clone();
    let mut waits = Vec::new();
    for _ in 0..20 {
        let (wait, _, _) = timed(&sim, &token, &[("m", "utils.getServerTime")]).await;
        waits.push(wait);
    }
    let base = 150.0 / 100.0;
    assert!(
        waits
            .iter()
            .all(|w| (base * 0.8..=base * 1.2 + 0.01).contains(w)),
        "{waits:?}"
    );
    assert!(
        waits.iter().any(|w| *w != waits[0]),
        "jitter varies: {waits:?}"
    );

    // --latency off: the old speed.
    let sim = spawn_sim(small_config()).await;
    let token = sim.pool_tokens()[0].clone();
    let (wait, _, _) = timed(&sim, &token, &[("m", "users.get")]).await;
    assert_eq!(wait, 0.0);
}

#[tokio::test]
async fn a_request_counts_against_the_rate_window_when_it_arrives() {
    let mut config = small_config();
    config.rate_per_second = 3;
    config.latency = "on".into();
    config.latency_base_ms = 1500.0; // answers come after the one-second window has passed
    config.latency_jitter = 0.0;
    let sim = spawn_sim(config).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let call = || vk.call("utils.getServerTime", &[]);
    let (a, b, c, d) = tokio::join!(call(), call(), call(), call());
    let bodies = [a, b, c, d];
    let sixes = bodies
        .iter()
        .filter(|b| b["error"]["error_code"] == json!(6))
        .count();
    assert_eq!(
        sixes, 1,
        "4 requests arriving at once: exactly one 6 ({bodies:?})"
    );
}

#[tokio::test]
async fn read_methods_have_daily_quotas_inside_and_outside_execute_that_reset() {
    assert!(
        SimConfig::default()
            .quotas
            .contains(&"users.getFollowers=5000".to_string()),
        "the read methods have default quotas"
    );
    let mut config = small_config();
    config.quotas = vec!["users.getFollowers=3".into()];
    // A simulated day of 3 real seconds.
    config.time_scale = 86_400.0 / 3.0;
    let sim = spawn_sim(config).await;
    let token = sim.pool_tokens()[0].clone();
    let vk = Vk::new(&sim, &token);
    let started = Instant::now();
    vk.ok("users.getFollowers", &[("user_id", "1")]).await;
    vk.ok("users.getFollowers", &[("user_id", "1")]).await;
    let body = vk
        .call(
            "execute",
            &[(
                "code",
                "return [API.users.getFollowers({\"user_id\": 1}), API.users.getFollowers({\"user_id\": 1})];",
            )],
        )
        .await;
    assert!(
        body["response"][0].is_object(),
        "the third call fits: {body}"
    );
    assert_eq!(body["response"][1], json!(false));
    assert_eq!(body["execute_errors"][0]["error_code"], json!(29));
    assert_eq!(vk.err("users.getFollowers", &[("user_id", "1")]).await, 29);
    assert!(started.elapsed() < Duration::from_secs(2), "all on day 0");
    let stats = sim_get(&sim, "/sim/stats").await;
    assert_eq!(stats["quota_today"][&token]["users.getFollowers"], json!(3));
    // Another token has its own quota; the next day resets it.
    let other = Vk::new(&sim, &sim.pool_tokens()[1]);
    other.ok("users.getFollowers", &[("user_id", "1")]).await;
    tokio::time::sleep(
        Duration::from_secs(3).saturating_sub(started.elapsed()) + Duration::from_millis(200),
    )
    .await;
    vk.ok("users.getFollowers", &[("user_id", "1")]).await;
    let stats = sim_get(&sim, "/sim/stats").await;
    assert_eq!(stats["quota_today"][&token]["users.getFollowers"], json!(1));
}

#[tokio::test]
async fn the_celebrity_s_follower_list_pages_to_its_full_length() {
    let sim = spawn_sim(small_config()).await;
    let named = sim_get(&sim, "/sim/truth/named").await;
    let celebrity = named["named"]["celebrity"].as_u64().unwrap();
    let expected = named["celebrity_followers"].as_u64().unwrap();
    assert!(
        expected > 10_000,
        "90% of 12,000 users minus its friends: {expected}"
    );
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = vk
            .ok(
                "users.getFollowers",
                &[
                    ("user_id", &celebrity.to_string()),
                    ("count", "1000"),
                    ("offset", &offset.to_string()),
                ],
            )
            .await;
        assert_eq!(page["count"].as_u64(), Some(expected));
        let items = ids(&page["items"]);
        if items.is_empty() {
            break;
        }
        offset += items.len();
        seen.extend(items);
    }
    assert_eq!(seen.len() as u64, expected);
    let truth = sim_get(&sim, &format!("/sim/truth?ids={celebrity}")).await;
    let mut truth_ids = ids(&truth["users"][celebrity.to_string()]["followers"]);
    seen.sort_unstable();
    truth_ids.sort_unstable();
    assert_eq!(seen, truth_ids);
}

#[tokio::test]
async fn a_deactivated_user_s_lists_answer_15() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let body = vk
        .call(
            "friends.get",
            &[("user_id", &sim.named().deleted.to_string())],
        )
        .await;
    assert_eq!(body["error"]["error_code"], json!(15));
    assert_eq!(
        body["error"]["error_msg"],
        json!("Access denied: user deactivated")
    );
}

#[tokio::test]
async fn hidden_friends_are_absent_from_friends_get_and_get_mutual() {
    let sim = spawn_sim(small_config()).await;
    let probe: Vec<u32> = (8..400).collect();
    let truth = sim_post(&sim, "/sim/truth", json!({ "ids": probe })).await;
    let (user, hidden) = probe
        .iter()
        .find_map(|id| {
            let t = &truth["users"][id.to_string()];
            let hidden = ids(&t["hidden_friends"]);
            let open = t["is_closed"] == json!(false) && t["deactivated"].is_null();
            (open && !hidden.is_empty() && !ids(&t["friends"]).is_empty()).then_some((*id, hidden))
        })
        .expect("some users hide friends");
    let named = sim_get(&sim, "/sim/truth/named").await;
    assert!(named["hidden_friendships"].as_u64().unwrap() > 0);
    let visible = ids(&truth["users"][user.to_string()]["friends"]);
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let listed = ids(&vk
        .ok("friends.get", &[("user_id", &user.to_string())])
        .await["items"]);
    assert_eq!(
        listed, visible,
        "friends.get shows exactly the visible friends"
    );
    for h in &hidden {
        assert!(!listed.contains(h));
        // Hidden from the other side too (where that list is readable at all).
        let theirs = vk.call("friends.get", &[("user_id", &h.to_string())]).await;
        assert!(!ids(&theirs["response"]["items"]).contains(&u64::from(user)));
    }
    // getMutual(source = a hidden friend, target = a visible friend of the user): the user is a
    // common friend in the real graph, but the hidden friendship does not count.
    let h = *hidden
        .iter()
        .find(|h| {
            let u = sim.graph().user(**h as u32).cloned().unwrap();
            !u.is_closed && u.deactivated.is_none()
        })
        .expect("an open hidden friend");
    let w = visible[0];
    let common = ids(&vk
        .ok(
            "friends.getMutual",
            &[
                ("source_uid", &h.to_string()),
                ("target_uid", &w.to_string()),
            ],
        )
        .await);
    assert!(!common.contains(&u64::from(user)), "{user} hidden from {h}");
    // The user's own token sees every friend.
    let own = Vk::new(&sim, &sim.user_token(user));
    let all = ids(&own.ok("friends.get", &[]).await["items"]);
    assert!(hidden.iter().all(|h| all.contains(h)));
}

#[tokio::test]
async fn inner_calls_fail_on_their_own_while_the_execute_succeeds() {
    let mut config = small_config();
    config.inner_fault_rate = 0.5;
    let sim = spawn_sim(config).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let code = "var out = []; var i = 0; while (i < 20) { out.push(API.utils.getServerTime({})); i = i + 1; } return out;";
    let body = vk.call("execute", &[("code", code)]).await;
    assert!(body.get("error").is_none(), "{body}");
    let slots = body["response"].as_array().unwrap();
    let failed = slots.iter().filter(|v| **v == json!(false)).count();
    assert!(failed > 0 && failed < 20, "{failed} of 20 failed");
    let errors = body["execute_errors"].as_array().unwrap();
    assert_eq!(errors.len(), failed);
    assert!(errors.iter().all(|e| e["error_code"] == json!(10)));
    assert_eq!(sim.stats()["inner_faults"], json!(failed));
    assert!(
        SimConfig::default().inner_fault_rate > 0.0,
        "on by default at a small rate"
    );
}

#[tokio::test]
async fn execute_code_has_a_size_limit() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let limit = SimConfig::default().execute_max_code_bytes;
    assert_eq!(limit, 64 * 1024);
    let padding = |n: usize| format!("return 1;{}", " ".repeat(n - 9));
    let fits = vk.call("execute", &[("code", &padding(limit))]).await;
    assert_eq!(fits["response"], json!(1), "exactly the limit is accepted");
    let body = vk.call("execute", &[("code", &padding(limit + 1))]).await;
    assert_eq!(body["error"]["error_code"], json!(12), "{body}");
}

#[tokio::test]
async fn deactivated_communities_say_so_and_refuse_their_members() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let all: Vec<String> = (1..=400).map(|i| i.to_string()).collect();
    let groups = vk
        .ok(
            "groups.getById",
            &[
                ("group_ids", &all.join(",")),
                ("fields", "members_count,can_post"),
            ],
        )
        .await;
    let dead: Vec<&Value> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g.get("deactivated").is_some())
        .collect();
    assert!(!dead.is_empty(), "2% of 400 communities");
    for g in &dead {
        assert!(["deleted", "banned"].contains(&g["deactivated"].as_str().unwrap()));
        assert!(g.get("members_count").is_none(), "no optional fields: {g}");
    }
    let gid = dead[0]["id"].to_string();
    assert_eq!(vk.err("groups.getMembers", &[("group_id", &gid)]).await, 15);
}

#[tokio::test]
async fn the_proxy_forwards_to_every_vk_host() {
    let sim = spawn_sim(small_config()).await;
    let token = sim.pool_tokens()[0].clone();
    for host in [
        "api.vk.ru",
        "oauth.vk.ru",
        "id.vk.ru",
        "api.vk.com",
        "oauth.vk.com",
        "id.vk.com",
    ] {
        let (status, body) =
            crate::manager::via_proxy(&sim, sim.proxy_key(), Some(host), &token).await;
        assert_eq!(status, 200, "{host}");
        assert!(body["response"].is_array(), "{host}: {body}");
    }
    let (status, _) =
        crate::manager::via_proxy(&sim, sim.proxy_key(), Some("vk.example.org"), &token).await;
    assert_eq!(status, 502);
}

#[tokio::test]
async fn an_error100_fault_answers_100_for_a_valid_request() {
    let sim = spawn_sim(small_config()).await;
    sim_post(
        &sim,
        "/sim/faults",
        json!({"methods": {"users.getFollowers": {"error100": 1.0}}}),
    )
    .await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    assert_eq!(vk.err("users.getFollowers", &[("user_id", "1")]).await, 100);
    vk.ok("friends.get", &[("user_id", "1"), ("count", "1")])
        .await;
    assert_eq!(sim.stats()["faults"]["error100"], json!(1));
}
