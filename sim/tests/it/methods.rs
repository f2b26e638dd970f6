//! Each method's limits, paging, privacy and error semantics.

use serde_json::{json, Value};

use crate::{sim_get, sim_post, small_config, spawn_sim, Vk};

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("id"))
        .collect()
}

async fn truth_friends(sim: &vk_sim::SimHandle, id: u32) -> Vec<u64> {
    let t = sim_get(sim, &format!("/sim/truth?ids={id}")).await;
    ids(&t["users"][id.to_string()]["friends"])
}

#[tokio::test]
async fn friends_get_pages_a_hub_with_more_than_5000_friends() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let hub = sim.named().hub.to_string();
    let first = vk.ok("friends.get", &[("user_id", &hub)]).await;
    let total = first["count"].as_u64().unwrap();
    assert!(total > 5000, "hub has {total} friends");
    assert_eq!(
        first["items"].as_array().unwrap().len(),
        5000,
        "default count is 5000"
    );
    // count above the maximum is clamped to 5000
    let clamped = vk
        .ok("friends.get", &[("user_id", &hub), ("count", "9000")])
        .await;
    assert_eq!(clamped["items"].as_array().unwrap().len(), 5000);
    let second = vk
        .ok("friends.get", &[("user_id", &hub), ("offset", "5000")])
        .await;
    let mut all = ids(&first["items"]);
    all.extend(ids(&second["items"]));
    assert_eq!(all.len() as u64, total);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "ascending ids");
    assert_eq!(all, truth_friends(&sim, sim.named().hub).await);
    // fields turn items into user objects
    let with_fields = vk
        .ok(
            "friends.get",
            &[
                ("user_id", &hub),
                ("count", "3"),
                ("fields", "screen_name,sex"),
            ],
        )
        .await;
    let item = &with_fields["items"][0];
    assert!(item["id"].is_u64() && item["first_name"].is_string());
    assert!(item.get("screen_name").is_some() || item.get("deactivated").is_some());
    assert_eq!(
        vk.err("friends.get", &[("user_id", &hub), ("count", "-1")])
            .await,
        100
    );
}

#[tokio::test]
async fn closed_deleted_and_invalid_users() {
    let mut config = small_config();
    config.user_tokens_ip_bound = false;
    let sim = spawn_sim(config).await;
    let named = sim.named();
    let stranger = Vk::new(&sim, &sim.pool_tokens()[0]);
    let closed = named.closed.to_string();
    assert_eq!(
        stranger.err("friends.get", &[("user_id", &closed)]).await,
        30
    );
    assert_eq!(
        stranger
            .err("users.getFollowers", &[("user_id", &closed)])
            .await,
        30
    );
    assert_eq!(
        stranger
            .err("users.getSubscriptions", &[("user_id", &closed)])
            .await,
        30
    );
    let friend = Vk::new(&sim, &sim.user_token(named.closed_friend));
    let list = friend.ok("friends.get", &[("user_id", &closed)]).await;
    assert!(ids(&list["items"]).contains(&(named.closed_friend as u64)));
    for id in [named.deleted, named.banned] {
        assert_eq!(
            stranger
                .err("friends.get", &[("user_id", &id.to_string())])
                .await,
            15,
            "friends.get of a deactivated user: 15 (Access denied: user deactivated)"
        );
        assert_eq!(
            stranger
                .err("users.getFollowers", &[("user_id", &id.to_string())])
                .await,
            15
        );
        assert_eq!(
            stranger
                .err("users.getSubscriptions", &[("user_id", &id.to_string())])
                .await,
            18,
            "other methods keep 18"
        );
    }
    for bad in ["abc", "0", "-5", "99999999"] {
        assert_eq!(
            stranger.err("friends.get", &[("user_id", bad)]).await,
            113,
            "{bad}"
        );
    }
    // users.get: closed and deactivated profiles as VK renders them
    let users = stranger
        .ok(
            "users.get",
            &[
                (
                    "user_ids",
                    &format!(
                        "{},{},{},sim_hub",
                        named.closed, named.deleted, named.banned
                    ),
                ),
                ("fields", "counters,screen_name"),
            ],
        )
        .await;
    assert_eq!(users[0]["is_closed"], json!(true));
    assert_eq!(users[0]["can_access_closed"], json!(false));
    assert!(
        users[0].get("counters").is_none(),
        "no counters of a closed profile"
    );
    assert_eq!(users[1]["deactivated"], json!("deleted"));
    assert!(users[1].get("is_closed").is_none());
    assert_eq!(users[2]["deactivated"], json!("banned"));
    assert_eq!(users[3]["id"], json!(named.hub));
    assert!(
        users[3].get("counters").is_none(),
        "no counters in a many-id users.get"
    );
    assert_eq!(users[3]["screen_name"], json!("sim_hub"));
    let hub = stranger
        .ok(
            "users.get",
            &[("user_ids", &named.hub.to_string()), ("fields", "counters")],
        )
        .await;
    assert!(hub[0]["counters"]["friends"].as_u64().unwrap() > 5000);
    assert_eq!(
        stranger
            .err("users.get", &[("user_ids", "no_such_name_xyz")])
            .await,
        113
    );
    let many: Vec<String> = (1..=1001).map(|i| i.to_string()).collect();
    assert_eq!(
        stranger
            .err("users.get", &[("user_ids", &many.join(","))])
            .await,
        100
    );
    let thousand = stranger
        .ok("users.get", &[("user_ids", &many[..1000].join(","))])
        .await;
    assert_eq!(thousand.as_array().unwrap().len(), 1000);
    // without ids: the token's owner
    let me = stranger.ok("users.get", &[]).await;
    assert_eq!(me.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn get_mutual_matches_the_truth_and_checks_limits() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let open = sim.named().open;
    let friends = truth_friends(&sim, open).await;
    let targets: Vec<String> = friends.iter().take(100).map(|x| x.to_string()).collect();
    let res = vk
        .ok(
            "friends.getMutual",
            &[
                ("source_uid", &open.to_string()),
                ("target_uids", &targets.join(",")),
            ],
        )
        .await;
    let truth = sim_get(&sim, &format!("/sim/truth?ids={}", targets.join(","))).await;
    let mut checked = 0;
    for item in res.as_array().unwrap() {
        let id = item["id"].as_u64().unwrap();
        let theirs = ids(&truth["users"][id.to_string()]["friends"]);
        let expect: Vec<u64> = friends
            .iter()
            .filter(|f| theirs.contains(f))
            .copied()
            .collect();
        assert_eq!(ids(&item["common_friends"]), expect);
        assert_eq!(
            item["common_count"].as_u64().unwrap() as usize,
            expect.len()
        );
        checked += 1;
    }
    assert!(checked > 0);
    let too_many: Vec<String> = (1..=101).map(|x: u32| (x + 10).to_string()).collect();
    assert_eq!(
        vk.err(
            "friends.getMutual",
            &[
                ("source_uid", &open.to_string()),
                ("target_uids", &too_many.join(","))
            ]
        )
        .await,
        100
    );
    assert_eq!(
        vk.err("friends.getMutual", &[("source_uid", &open.to_string())])
            .await,
        100
    );
    let single = vk
        .ok(
            "friends.getMutual",
            &[
                ("source_uid", &open.to_string()),
                ("target_uid", &targets[0]),
            ],
        )
        .await;
    assert!(single.is_array());
}

#[tokio::test]
async fn followers_subscriptions_groups_and_utils() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let hub = sim.named().hub.to_string();
    let f = vk
        .ok(
            "users.getFollowers",
            &[("user_id", &hub), ("count", "5000")],
        )
        .await;
    let items = ids(&f["items"]);
    assert!(items.len() <= 1000, "count is capped at 1000");
    assert!(items.windows(2).all(|w| w[0] > w[1]), "newest first");
    let default = vk.ok("users.getFollowers", &[("user_id", &hub)]).await;
    assert!(default["items"].as_array().unwrap().len() <= 100);

    let subs = vk.ok("users.getSubscriptions", &[("user_id", &hub)]).await;
    assert!(subs["users"]["count"].is_u64() && subs["groups"]["items"].is_array());
    let ext = vk
        .ok(
            "users.getSubscriptions",
            &[("user_id", &hub), ("extended", "1"), ("count", "500")],
        )
        .await;
    let items = ext["items"].as_array().unwrap();
    assert!(items.len() <= 200);
    assert!(items
        .iter()
        .all(|i| ["profile", "group", "page", "event"].contains(&i["type"].as_str().unwrap())));

    let old = Vk {
        v: "5.131",
        ..Vk::new(&sim, &sim.pool_tokens()[0])
    };
    let arr = old
        .ok(
            "groups.getById",
            &[("group_ids", "1,2,3"), ("fields", "members_count,can_post")],
        )
        .await;
    assert_eq!(arr.as_array().unwrap().len(), 3);
    assert!(arr[0]["members_count"].is_u64());
    let new = vk
        .ok(
            "groups.getById",
            &[("group_ids", "1,2"), ("fields", "can_suggest")],
        )
        .await;
    assert_eq!(new["groups"].as_array().unwrap().len(), 2);
    assert!(new["profiles"].is_array());
    assert_eq!(vk.err("groups.getById", &[]).await, 100);
    let many: Vec<String> = (1..=501).map(|i| i.to_string()).collect();
    assert_eq!(
        vk.err("groups.getById", &[("group_ids", &many.join(","))])
            .await,
        100
    );

    // groups.getMembers: paging, the 1000 cap, closed communities, bad ids
    let all: Vec<String> = (1..=400).map(|i| i.to_string()).collect();
    let info = vk
        .ok(
            "groups.getById",
            &[("group_ids", &all.join(",")), ("fields", "members_count")],
        )
        .await;
    let info = info["groups"].as_array().unwrap();
    let big_open = info
        .iter()
        .filter(|g| g["is_closed"] == json!(0) && g.get("deactivated").is_none())
        .max_by_key(|g| g["members_count"].as_u64().unwrap())
        .unwrap();
    let gid = big_open["id"].to_string();
    let members_count = big_open["members_count"].as_u64().unwrap();
    assert!(members_count > 1000, "a popular community: {members_count}");
    let first = vk
        .ok(
            "groups.getMembers",
            &[("group_id", &gid), ("count", "5000")],
        )
        .await;
    assert_eq!(first["count"].as_u64().unwrap(), members_count);
    let items = ids(&first["items"]);
    assert_eq!(items.len(), 1000);
    assert!(items.windows(2).all(|w| w[0] < w[1]));
    let next = vk
        .ok(
            "groups.getMembers",
            &[("group_id", &gid), ("offset", "1000"), ("count", "10")],
        )
        .await;
    assert!(ids(&next["items"])[0] > *items.last().unwrap());
    let closed_group = info.iter().find(|g| g["is_closed"] != json!(0)).unwrap()["id"].to_string();
    let code = vk
        .err("groups.getMembers", &[("group_id", &closed_group)])
        .await;
    assert_eq!(
        code, 15,
        "a closed community hides its members from non-members"
    );
    assert_eq!(
        vk.err("groups.getMembers", &[("group_id", "999999")]).await,
        125
    );
    assert_eq!(vk.err("groups.getMembers", &[]).await, 100);

    let hub_resolved = vk
        .ok("utils.resolveScreenName", &[("screen_name", "sim_hub")])
        .await;
    assert_eq!(hub_resolved, json!({"object_id": 1, "type": "user"}));
    let club = vk
        .ok("utils.resolveScreenName", &[("screen_name", "id42")])
        .await;
    assert_eq!(club["object_id"], json!(42));
    let none = vk
        .ok(
            "utils.resolveScreenName",
            &[("screen_name", "nobody_here_zz")],
        )
        .await;
    assert_eq!(none, json!([]));
    assert_eq!(vk.err("utils.resolveScreenName", &[]).await, 100);
    let t = vk.ok("utils.getServerTime", &[]).await.as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(t.abs_diff(now) < 5);
}

#[tokio::test]
async fn wall_post_guid_closed_walls_and_daily_quota() {
    let mut config = small_config();
    config.quotas = vec!["wall.post=5".into()];
    let sim = spawn_sim(config).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let ids_list: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
    let groups = vk
        .ok(
            "groups.getById",
            &[
                ("group_ids", &ids_list.join(",")),
                ("fields", "can_post,can_suggest"),
            ],
        )
        .await;
    let groups = groups["groups"].as_array().unwrap();
    let open = groups.iter().find(|g| g["can_post"] == json!(1)).unwrap()["id"]
        .as_i64()
        .unwrap();
    // A limited wall without suggestions, visible to everyone: 214.
    let closed = groups
        .iter()
        .find(|g| g["can_post"] == json!(0) && g["can_suggest"] == json!(0) && g["is_closed"] == 0)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let open_owner = (-open).to_string();
    let a = vk
        .ok(
            "wall.post",
            &[("owner_id", &open_owner), ("message", "hi"), ("guid", "g1")],
        )
        .await;
    let b = vk
        .ok(
            "wall.post",
            &[("owner_id", &open_owner), ("message", "hi"), ("guid", "g1")],
        )
        .await;
    assert_eq!(a, b, "same guid, same post");
    let c = vk
        .ok(
            "wall.post",
            &[("owner_id", &open_owner), ("message", "hi"), ("guid", "g2")],
        )
        .await;
    assert_ne!(a["post_id"], c["post_id"]);
    assert_eq!(
        vk.err(
            "wall.post",
            &[("owner_id", &(-closed).to_string()), ("message", "hi")]
        )
        .await,
        214
    );
    assert_eq!(
        vk.err("wall.post", &[("owner_id", &open_owner)]).await,
        100,
        "empty post"
    );
    // 5 per day: 5 calls made (including the failed ones that passed auth), the next is 29
    assert_eq!(
        vk.err("wall.post", &[("owner_id", &open_owner), ("message", "x")])
            .await,
        29
    );
    // another token has its own quota
    let other = Vk::new(&sim, &sim.pool_tokens()[1]);
    other
        .ok("wall.post", &[("owner_id", &open_owner), ("message", "x")])
        .await;
    // reset forgets quotas
    sim_post(&sim, "/sim/reset", json!({})).await;
    vk.ok("wall.post", &[("owner_id", &open_owner), ("message", "x")])
        .await;
}

#[tokio::test]
async fn vk_error_bodies_and_token_checks() {
    let sim = spawn_sim(small_config()).await;
    let pool = Vk::new(&sim, &sim.pool_tokens()[0]);
    let body = pool.call("friends.get", &[("user_id", "abc")]).await;
    let params = body["error"]["request_params"].as_array().unwrap();
    assert!(
        params.iter().all(|p| p["key"] != json!("access_token")),
        "token never echoed"
    );
    assert!(params.contains(&json!({"key": "method", "value": "friends.get"})));
    assert!(params.contains(&json!({"key": "user_id", "value": "abc"})));
    assert_eq!(pool.err("no.suchMethod", &[]).await, 3);

    let no_token = Vk::new(&sim, "");
    assert_eq!(no_token.err("users.get", &[]).await, 5);
    let no_version = reqwest::get(format!(
        "{}/method/users.get?access_token={}",
        sim.api_url(),
        sim.pool_tokens()[0]
    ))
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    assert_eq!(no_version["error"]["error_code"], json!(8));

    let bound = Vk::new(&sim, sim.ip_bound_token());
    let e = bound.call("users.get", &[]).await;
    assert_eq!(e["error"]["error_code"], json!(5));
    assert!(e["error"]["error_msg"]
        .as_str()
        .unwrap()
        .contains("another ip address"));
    let revoked = Vk::new(&sim, sim.revoked_token())
        .call("users.get", &[])
        .await;
    assert!(revoked["error"]["error_msg"]
        .as_str()
        .unwrap()
        .contains("invalid access_token"));
    let banned = Vk::new(&sim, sim.banned_token())
        .call("users.get", &[])
        .await;
    assert!(banned["error"]["error_msg"]
        .as_str()
        .unwrap()
        .contains("user is blocked"));
    assert_eq!(
        Vk::new(&sim, "vk1.a.nonsense").err("users.get", &[]).await,
        5
    );

    // revoke at runtime
    let victim = sim.pool_tokens()[1].clone();
    Vk::new(&sim, &victim).ok("users.get", &[]).await;
    sim_post(&sim, "/sim/tokens/ban", json!({"token": victim})).await;
    let e = Vk::new(&sim, &victim).call("users.get", &[]).await;
    assert!(e["error"]["error_msg"]
        .as_str()
        .unwrap()
        .contains("user is blocked"));

    // GET works like POST
    let get: Value = reqwest::get(format!(
        "{}/method/utils.resolveScreenName?screen_name=sim_hub&v=5.199&access_token={}",
        sim.api_url(),
        sim.pool_tokens()[0]
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(get["response"]["object_id"], json!(1));
}

#[tokio::test]
async fn truth_reports_edges_among_a_set_and_paths() {
    let sim = spawn_sim(small_config()).await;
    let named = sim.named();
    let t = sim_get(
        &sim,
        &format!("/sim/truth?ids={},{}", named.closed, named.closed_friend),
    )
    .await;
    assert_eq!(t["edges"], json!([[named.closed, named.closed_friend]]));
    let p = sim_get(
        &sim,
        &format!("/sim/truth/path?from={}&to={}", named.open, named.closed),
    )
    .await;
    assert!(p["distance"].as_u64().unwrap() <= 2);
    let n = sim_get(&sim, "/sim/truth/named").await;
    assert!(n["hub_friends"].as_u64().unwrap() > 5000);
}
