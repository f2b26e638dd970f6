//! execute: the loop shape public clients send, keyed results, inner failures, limits,
//! quotas inside execute, and that an execute is one request for the rate limit.

use serde_json::{json, Value};

use crate::{sim_get, small_config, spawn_sim, Vk};

/// The shape vk_api / vk-io style clients send: ids as a comma list, split and parsed.
const LOOP: &str = r#"
var ids = Args.ids.split(",");
var i = 0, r = {}, order = [];
while (i < ids.length) {
    var id = parseInt(ids[i]);
    r["" + id] = API.friends.get({"user_id": id, "count": 10});
    order.push(id);
    i = i + 1;
}
return {"friends": r, "ids": order};
"#;

#[tokio::test]
async fn loop_over_split_ids_returns_keyed_results_and_execute_errors() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let named = sim.named();
    let ids = format!("{},{},{}", named.open, named.deleted, named.hub);
    let body = vk.call("execute", &[("code", LOOP), ("ids", &ids)]).await;
    assert!(body.get("error").is_none(), "{body}");
    let r = &body["response"];
    assert_eq!(r["ids"], json!([named.open, named.deleted, named.hub]));
    assert_eq!(
        r["friends"][named.open.to_string()]["items"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        r["friends"][named.deleted.to_string()],
        json!(false),
        "failed call is false"
    );
    assert!(
        r["friends"][named.hub.to_string()]["count"]
            .as_u64()
            .unwrap()
            > 5000
    );
    let errors = body["execute_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["method"], json!("friends.get"));
    // friends.get of a deactivated user: 15 "Access denied: user deactivated", as VK.
    assert_eq!(errors[0]["error_code"], json!(15));
    let stats = sim_get(&sim, "/sim/stats").await;
    assert_eq!(stats["execute_calls"], json!(1));
    assert_eq!(stats["inner_calls"], json!(3));
    assert_eq!(stats["inner_by_method"]["friends.get"], json!(3));
    assert_eq!(stats["inner_errors_by_code"]["15"], json!(1));
    assert_eq!(
        stats["per_token"][&sim.pool_tokens()[0]]["inner_calls"],
        json!(3)
    );
}

fn calls(n: usize) -> String {
    format!(
        "var i = 0; var r = []; while (i < {n}) {{ r.push(API.utils.getServerTime({{}})); i = i + 1; }} return r.length;"
    )
}

#[tokio::test]
async fn twenty_five_calls_pass_twenty_six_fail_with_13() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    assert_eq!(vk.ok("execute", &[("code", &calls(25))]).await, json!(25));
    assert_eq!(vk.err("execute", &[("code", &calls(26))]).await, 13);
}

#[tokio::test]
async fn syntax_errors_are_12_and_big_responses_13() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    assert_eq!(vk.err("execute", &[("code", "return [1, 2;")]).await, 12);
    assert_eq!(vk.err("execute", &[]).await, 100, "code is required");
    // The hub's friends with fields, several times over: well above 5 MB.
    let hub = sim.named().hub;
    let big = format!(
        r#"var r = []; var i = 0;
        while (i < 12) {{ r.push(API.friends.get({{"user_id": {hub}, "fields": "screen_name,photo_100,photo_200,bdate,city,sex,domain,online"}})); i = i + 1; }}
        return r;"#
    );
    let body = vk.call("execute", &[("code", &big)]).await;
    assert_eq!(
        body["error"]["error_code"],
        json!(13),
        "{}",
        &body.to_string()[..200.min(body.to_string().len())]
    );
    assert!(body["error"]["error_msg"]
        .as_str()
        .unwrap()
        .contains("too big"));
}

#[tokio::test]
async fn quotas_count_inside_and_outside_execute() {
    let mut config = small_config();
    config.quotas = vec!["friends.get=3".into()];
    let sim = spawn_sim(config).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let open = sim.named().open.to_string();
    vk.ok("friends.get", &[("user_id", &open)]).await;
    let code = format!(
        r#"return [API.friends.get({{"user_id": {open}}}), API.friends.get({{"user_id": {open}}}), API.friends.get({{"user_id": {open}}})];"#
    );
    let body = vk.call("execute", &[("code", &code)]).await;
    let r = body["response"].as_array().unwrap();
    assert!(
        r[0].is_object() && r[1].is_object(),
        "quota 3: direct + 2 inner pass"
    );
    assert_eq!(r[2], json!(false));
    assert_eq!(body["execute_errors"][0]["error_code"], json!(29));
    assert_eq!(vk.err("friends.get", &[("user_id", &open)]).await, 29);
    // other methods and other tokens are unaffected
    vk.ok("users.get", &[]).await;
    Vk::new(&sim, &sim.pool_tokens()[1])
        .ok("friends.get", &[("user_id", &open)])
        .await;
}

#[tokio::test]
async fn an_execute_is_one_request_for_the_rate_limit() {
    let mut config = small_config();
    config.rate_per_second = 3;
    let sim = spawn_sim(config).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    assert_eq!(vk.ok("execute", &[("code", &calls(25))]).await, json!(25));
    vk.ok("utils.getServerTime", &[]).await;
    vk.ok("utils.getServerTime", &[]).await;
    let body: Value = vk.call("execute", &[("code", &calls(1))]).await;
    assert_eq!(body["error"]["error_code"], json!(6));
}

#[tokio::test]
async fn collection_filter_args_and_the_operations_budget() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let r = vk
        .ok(
            "execute",
            &[
                ("code", r#"var u = API.users.get({"user_ids": Args.ids, "fields": "sex"}); return {"ids": u@.id, "n": u.length, "first": Args.ids.split(",")[0]};"#),
                ("ids", "1,6,sim_hub"),
            ],
        )
        .await;
    assert_eq!(r, json!({"ids": [1, 6, 1], "n": 3, "first": "1"}));
    assert_eq!(
        vk.err(
            "execute",
            &[("code", "var i = 0; while (true) { i = i + 1; } return i;")]
        )
        .await,
        13,
        "the operations budget ends endless loops"
    );
}
