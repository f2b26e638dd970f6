//! Generated community walls (wall.get, wall.getComments, likes.getList, wall.getReposts)
//! against `/sim/truth/wall`, their privacy, and membership over simulated days.

use serde_json::{json, Value};

use crate::{sim_get, sim_post, small_config, spawn_sim, Vk};

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("id"))
        .collect()
}

async fn truth_wall(sim: &vk_sim::SimHandle, gid: u32) -> Value {
    sim_get(sim, &format!("/sim/truth/wall?group_id={gid}")).await
}

/// An active member of `gid` today (its token works), per `/sim/truth/members`.
async fn active_member(sim: &vk_sim::SimHandle, gid: u32) -> u32 {
    let t = sim_get(sim, &format!("/sim/truth/members?group_id={gid}")).await;
    let g = sim.graph();
    ids(&t["items"])
        .into_iter()
        .map(|u| u as u32)
        .find(|&u| u > 8 && g.user(u).is_some_and(|x| x.deactivated.is_none()))
        .expect("an active member")
}

#[tokio::test]
async fn wall_get_pages_to_the_end_and_gives_every_truth_post_once() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let n = sim.named_communities();
    for gid in [n.busy, n.open_wall, n.big] {
        let truth = truth_wall(&sim, gid).await;
        let owner = format!("-{gid}");
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page = vk
                .ok(
                    "wall.get",
                    &[
                        ("owner_id", &owner),
                        ("offset", &offset.to_string()),
                        ("count", "500"),
                    ],
                )
                .await;
            assert_eq!(page["count"], truth["count"]);
            let items = page["items"].as_array().unwrap().clone();
            assert!(items.len() <= 100, "count is clamped to 100");
            if items.is_empty() {
                break;
            }
            offset += items.len();
            seen.extend(items);
        }
        let posts = truth["posts"].as_array().unwrap();
        assert_eq!(seen.len(), posts.len(), "community {gid}");
        for (got, want) in seen.iter().zip(posts) {
            for key in ["id", "owner_id", "from_id", "date", "text"] {
                assert_eq!(got[key], want[key], "{key} of post {}", want["id"]);
            }
            assert_eq!(got["post_type"], "post");
            assert_eq!(
                got["likes"]["count"].as_u64().unwrap() as usize,
                want["likes"].as_array().unwrap().len()
            );
            assert_eq!(
                got["reposts"]["count"].as_u64().unwrap() as usize,
                want["reposts"].as_array().unwrap().len()
            );
            let live = want["comments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["deleted"] == false)
                .count();
            assert_eq!(got["comments"]["count"].as_u64().unwrap() as usize, live);
            assert!(got["views"]["count"].as_u64() >= got["likes"]["count"].as_u64());
            assert_eq!(
                got.get("signer_id").cloned().unwrap_or(Value::Null),
                want["signer_id"]
            );
            assert!(
                got.get("created_by").is_none(),
                "a pool token manages nothing here"
            );
        }
        let dates: Vec<u64> = seen.iter().map(|p| p["date"].as_u64().unwrap()).collect();
        assert!(dates.windows(2).all(|w| w[0] > w[1]), "newest first");
    }
    // The default count is 20; filters split the wall; domain names the community.
    let busy = format!("-{}", n.busy);
    let first = vk.ok("wall.get", &[("owner_id", &busy)]).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 20);
    let total = first["count"].as_u64().unwrap();
    let own = vk
        .ok("wall.get", &[("owner_id", &busy), ("filter", "owner")])
        .await;
    let others = vk
        .ok("wall.get", &[("owner_id", &busy), ("filter", "others")])
        .await;
    assert_eq!(
        own["count"].as_u64().unwrap() + others["count"].as_u64().unwrap(),
        total
    );
    let screen = sim.graph().group(n.busy).unwrap().screen_name.clone();
    let by_domain = vk.ok("wall.get", &[("domain", &screen)]).await;
    assert_eq!(by_domain["count"], first["count"]);
    // A user's wall is empty; bad parameters are 100.
    let user_wall = vk.ok("wall.get", &[("owner_id", "6")]).await;
    assert_eq!(user_wall, json!({"count": 0, "items": []}));
    assert_eq!(vk.err("wall.get", &[("owner_id", "-99999999")]).await, 100);
    assert_eq!(
        vk.err("wall.get", &[("owner_id", &busy), ("filter", "x")])
            .await,
        100
    );
    // The hub administers busy: it sees who published each post.
    let hub = Vk::new(&sim, &sim.user_token(sim.named().hub));
    let page = hub
        .ok("wall.get", &[("owner_id", &busy), ("count", "100")])
        .await;
    let truth = truth_wall(&sim, n.busy).await;
    for (got, want) in page["items"]
        .as_array()
        .unwrap()
        .iter()
        .zip(truth["posts"].as_array().unwrap())
    {
        assert_eq!(
            got.get("created_by").cloned().unwrap_or(Value::Null),
            want["created_by"]
        );
    }
    let level = hub
        .ok("groups.getById", &[("group_id", &n.busy.to_string())])
        .await;
    assert_eq!(level["groups"][0]["admin_level"], 3);
}

#[tokio::test]
async fn wall_get_comments_reproduces_the_truth_tree_of_busy_newest_post() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let n = sim.named_communities();
    let truth = truth_wall(&sim, n.busy).await;
    let post = &truth["posts"][0];
    let post_id = post["id"].to_string();
    let owner = format!("-{}", n.busy);
    let comments = post["comments"].as_array().unwrap();
    let tops: Vec<&Value> = comments
        .iter()
        .filter(|c| c["parent_id"].is_null())
        .collect();
    let replies_of =
        |id: &Value| -> Vec<&Value> { comments.iter().filter(|c| &c["parent_id"] == id).collect() };
    assert!(tops.len() > 100);
    assert!(tops.iter().any(|t| replies_of(&t["id"]).len() > 10));
    // Top level with threads, paged by current_level_count.
    let mut got = Vec::new();
    loop {
        let page = vk
            .ok(
                "wall.getComments",
                &[
                    ("owner_id", &owner),
                    ("post_id", &post_id),
                    ("offset", &got.len().to_string()),
                    ("count", "100"),
                    ("thread_items_count", "10"),
                    ("need_likes", "1"),
                ],
            )
            .await;
        assert_eq!(page["count"].as_u64().unwrap() as usize, comments.len());
        assert_eq!(
            page["current_level_count"].as_u64().unwrap() as usize,
            tops.len()
        );
        let items = page["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        got.extend(items);
    }
    assert_eq!(got.len(), tops.len());
    for (g, t) in got.iter().zip(&tops) {
        assert_eq!(g["id"], t["id"]);
        assert_eq!(g["from_id"], t["from_id"]);
        assert_eq!(g["text"], t["text"]);
        assert_eq!(g["likes"]["count"], t["likes"]);
        assert_eq!(g["parents_stack"], json!([]));
        assert_eq!(g.get("deleted").is_some(), t["deleted"] == true);
        let replies = replies_of(&t["id"]);
        assert_eq!(
            g["thread"]["count"].as_u64().unwrap() as usize,
            replies.len()
        );
        let shown = g["thread"]["items"].as_array().unwrap();
        assert_eq!(shown.len(), replies.len().min(10));
        for (s, r) in shown.iter().zip(&replies) {
            assert_eq!(s["id"], r["id"]);
            assert_eq!(s["parents_stack"], json!([t["id"]]));
        }
    }
    // The long thread through comment_id, paged.
    let long = tops
        .iter()
        .find(|t| replies_of(&t["id"]).len() > 10)
        .unwrap();
    let want = replies_of(&long["id"]);
    let mut thread = Vec::new();
    while thread.len() < want.len() {
        let page = vk
            .ok(
                "wall.getComments",
                &[
                    ("owner_id", &owner),
                    ("post_id", &post_id),
                    ("comment_id", &long["id"].to_string()),
                    ("offset", &thread.len().to_string()),
                    ("count", "4"),
                ],
            )
            .await;
        assert_eq!(
            page["current_level_count"].as_u64().unwrap() as usize,
            want.len()
        );
        let items = page["items"].as_array().unwrap().clone();
        assert!(!items.is_empty());
        thread.extend(items);
    }
    for (g, r) in thread.iter().zip(&want) {
        assert_eq!(g["id"], r["id"]);
        assert_eq!(g["from_id"], r["from_id"]);
        assert_eq!(g["reply_to_comment"], long["id"]);
        assert_eq!(g["parents_stack"], json!([long["id"]]));
    }
    // Defaults, sort, and the errors.
    let default = vk
        .ok(
            "wall.getComments",
            &[("owner_id", &owner), ("post_id", &post_id)],
        )
        .await;
    assert_eq!(default["items"].as_array().unwrap().len(), 10);
    assert!(default["items"][0].get("likes").is_none());
    assert_eq!(default["items"][0]["thread"]["items"], json!([]));
    let desc = vk
        .ok(
            "wall.getComments",
            &[
                ("owner_id", &owner),
                ("post_id", &post_id),
                ("sort", "desc"),
                ("count", "1"),
            ],
        )
        .await;
    assert_eq!(desc["items"][0]["id"], tops.last().unwrap()["id"]);
    let p = [("owner_id", owner.as_str()), ("post_id", post_id.as_str())];
    let with = |extra: (&'static str, &'static str)| {
        let mut v = p.to_vec();
        v.push(extra);
        v
    };
    assert_eq!(
        vk.err("wall.getComments", &with(("thread_items_count", "11")))
            .await,
        100
    );
    assert_eq!(
        vk.err("wall.getComments", &with(("sort", "sideways")))
            .await,
        100
    );
    assert_eq!(
        vk.err("wall.getComments", &with(("comment_id", "999999999")))
            .await,
        100
    );
    assert_eq!(
        vk.err(
            "wall.getComments",
            &[("owner_id", &owner), ("post_id", "999999")]
        )
        .await,
        100
    );
    assert_eq!(
        vk.err("wall.getComments", &[("owner_id", &owner)]).await,
        100
    );
}

#[tokio::test]
async fn likes_get_list_pages_to_the_truth_likes_and_copies() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[1]);
    let n = sim.named_communities();
    let truth = truth_wall(&sim, n.busy).await;
    let owner = format!("-{}", n.busy);
    for post in truth["posts"].as_array().unwrap().iter().take(3) {
        let item = post["id"].to_string();
        for (filter, key, page_size) in [("likes", "likes", 1000), ("copies", "reposts", 2)] {
            let want = ids(&post[key]);
            let mut got = Vec::new();
            loop {
                let page = vk
                    .ok(
                        "likes.getList",
                        &[
                            ("type", "post"),
                            ("owner_id", &owner),
                            ("item_id", &item),
                            ("filter", filter),
                            ("offset", &got.len().to_string()),
                            ("count", &page_size.to_string()),
                        ],
                    )
                    .await;
                assert_eq!(page["count"].as_u64().unwrap() as usize, want.len());
                let items = ids(&page["items"]);
                if items.is_empty() {
                    break;
                }
                got.extend(items);
            }
            assert_eq!(got, want, "{filter} of post {item}");
        }
    }
    let newest = truth["posts"][0]["id"].to_string();
    let first = vk
        .ok(
            "likes.getList",
            &[("type", "post"), ("owner_id", &owner), ("item_id", &newest)],
        )
        .await;
    assert_eq!(ids(&first["items"]).len(), 100, "default count 100");
    let clamped = vk
        .ok(
            "likes.getList",
            &[
                ("type", "post"),
                ("owner_id", &owner),
                ("item_id", &newest),
                ("count", "5000"),
            ],
        )
        .await;
    assert_eq!(
        ids(&clamped["items"]).len(),
        1000,
        "count is clamped to 1000"
    );
    assert_eq!(
        vk.err(
            "likes.getList",
            &[
                ("type", "video"),
                ("owner_id", &owner),
                ("item_id", &newest)
            ]
        )
        .await,
        100
    );
    assert_eq!(
        vk.err(
            "likes.getList",
            &[
                ("type", "post"),
                ("owner_id", &owner),
                ("item_id", "999999")
            ]
        )
        .await,
        100
    );
}

#[tokio::test]
async fn wall_get_reposts_is_for_the_administrator_only() {
    let sim = spawn_sim(small_config()).await;
    let n = sim.named_communities();
    let truth = truth_wall(&sim, n.busy).await;
    let post = &truth["posts"][0];
    let owner = format!("-{}", n.busy);
    let post_id = post["id"].to_string();
    let params = [
        ("owner_id", owner.as_str()),
        ("post_id", post_id.as_str()),
        ("count", "1000"),
    ];
    let hub = Vk::new(&sim, &sim.user_token(sim.named().hub));
    let answer = hub.ok("wall.getReposts", &params).await;
    assert!(answer.get("count").is_none(), "VK sends no count");
    assert_eq!(answer["profiles"], json!([]));
    let items = answer["items"].as_array().unwrap();
    let reposters: Vec<u64> = items
        .iter()
        .map(|r| r["owner_id"].as_u64().unwrap())
        .collect();
    assert!(!reposters.is_empty());
    assert_eq!(reposters, ids(&post["reposts"]));
    for r in items {
        assert_eq!(r["from_id"], r["owner_id"]);
        assert_eq!(r["copy_history"][0]["id"], post["id"]);
        assert_eq!(r["copy_history"][0]["owner_id"], json!(-(n.busy as i64)));
    }
    let paged = hub
        .ok(
            "wall.getReposts",
            &[
                ("owner_id", &owner),
                ("post_id", &post_id),
                ("offset", "1"),
                ("count", "1"),
            ],
        )
        .await;
    assert_eq!(paged["items"][0]["owner_id"], json!(reposters[1]));
    for token in sim.pool_tokens() {
        assert_eq!(
            Vk::new(&sim, token).err("wall.getReposts", &params).await,
            15
        );
    }
    assert_eq!(
        hub.err(
            "wall.getReposts",
            &[("owner_id", &owner), ("post_id", "999999")]
        )
        .await,
        100
    );
}

#[tokio::test]
async fn closed_private_and_deactivated_walls() {
    let sim = spawn_sim(small_config()).await;
    let n = sim.named_communities();
    let outsider = Vk::new(&sim, &sim.user_token(n.admin_user));
    for gid in [n.closed, n.private] {
        let owner = format!("-{gid}");
        let body = outsider.call("wall.get", &[("owner_id", &owner)]).await;
        assert_eq!(body["error"]["error_code"], 15, "{body}");
        assert_eq!(
            body["error"]["error_msg"],
            "Access denied: this wall available only for community members"
        );
        assert_eq!(
            outsider
                .err("groups.getMembers", &[("group_id", &gid.to_string())])
                .await,
            15
        );
        assert_eq!(
            outsider
                .err(
                    "likes.getList",
                    &[("type", "post"), ("owner_id", &owner), ("item_id", "1")]
                )
                .await,
            15
        );
        assert_eq!(
            outsider
                .err(
                    "wall.getComments",
                    &[("owner_id", &owner), ("post_id", "1")]
                )
                .await,
            15
        );
        let member = Vk::new(&sim, &sim.user_token(active_member(&sim, gid).await));
        let wall = member.ok("wall.get", &[("owner_id", &owner)]).await;
        assert_eq!(wall["count"], truth_wall(&sim, gid).await["count"]);
        let members = member
            .ok("groups.getMembers", &[("group_id", &gid.to_string())])
            .await;
        let t = sim_get(&sim, &format!("/sim/truth/members?group_id={gid}")).await;
        assert_eq!(members["count"], t["count"]);
        assert_eq!(t["is_closed"], json!(if gid == n.closed { 1 } else { 2 }));
    }
    let dead = format!("-{}", n.deactivated);
    let body = outsider.call("wall.get", &[("owner_id", &dead)]).await;
    assert_eq!(body["error"]["error_code"], 15);
    assert_ne!(
        body["error"]["error_msg"],
        "Access denied: this wall available only for community members"
    );
    let t = sim_get(
        &sim,
        &format!("/sim/truth/members?group_id={}", n.deactivated),
    )
    .await;
    assert!(t["deactivated"].is_string());
    let resp = reqwest::get(format!(
        "{}/sim/truth/members?group_id=99999999",
        sim.api_url()
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn membership_churns_over_simulated_days_and_every_view_agrees() {
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let big = sim.named_communities().big;
    assert_eq!(sim_get(&sim, "/sim/day").await, json!({"day": 0}));
    let day0 = sim_get(&sim, &format!("/sim/truth/members?group_id={big}")).await;
    assert_eq!(
        ids(&day0["items"]),
        sim.graph()
            .members
            .of(big)
            .iter()
            .map(|&u| u as u64)
            .collect::<Vec<_>>(),
        "day 0 is the generated graph"
    );
    let check_views = |truth: Value| {
        let vk = &vk;
        async move {
            let gid = truth["group_id"].to_string();
            let mut listed = Vec::new();
            loop {
                let page = vk
                    .ok(
                        "groups.getMembers",
                        &[("group_id", &gid), ("offset", &listed.len().to_string())],
                    )
                    .await;
                assert_eq!(page["count"], truth["count"]);
                let items = ids(&page["items"]);
                if items.is_empty() {
                    break;
                }
                listed.extend(items);
            }
            assert_eq!(listed, ids(&truth["items"]));
            let info = vk
                .ok(
                    "groups.getById",
                    &[("group_id", &gid), ("fields", "members_count")],
                )
                .await;
            assert_eq!(info["groups"][0]["members_count"], truth["count"]);
        }
    };
    check_views(day0.clone()).await;
    // Bad bodies are refused.
    for bad in [json!({"advance": 0}), json!({"days": 1}), json!("x")] {
        let resp = reqwest::Client::new()
            .post(format!("{}/sim/day", sim.api_url()))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    assert_eq!(
        sim_post(&sim, "/sim/day", json!({"advance": 1})).await,
        json!({"day": 1})
    );
    let day1 = sim_get(&sim, &format!("/sim/truth/members?group_id={big}")).await;
    assert_eq!(day1["day"], 1);
    let (before, after) = (ids(&day0["items"]), ids(&day1["items"]));
    let left = before
        .iter()
        .filter(|u| after.binary_search(u).is_err())
        .count();
    let joined = after
        .iter()
        .filter(|u| before.binary_search(u).is_err())
        .count();
    let expected = before.len() as f64 * 0.01;
    assert!(left > 0 && joined > 0, "left {left}, joined {joined}");
    assert!(
        (left as f64) < expected * 2.0 + 10.0 && (left as f64) > expected * 0.4,
        "left {left} of {}",
        before.len()
    );
    assert!((joined as f64) < expected * 2.5 + 10.0, "joined {joined}");
    check_views(day1.clone()).await;
    // users.getSubscriptions agrees for a joiner and a leaver.
    let joiner = after
        .iter()
        .find(|u| before.binary_search(u).is_err())
        .unwrap();
    let leaver = before
        .iter()
        .find(|u| {
            after.binary_search(u).is_err()
                && sim
                    .graph()
                    .user(**u as u32)
                    .is_some_and(|x| x.deactivated.is_none() && !x.is_closed)
        })
        .unwrap();
    for (user, member) in [(joiner, true), (leaver, false)] {
        let subs = vk
            .ok("users.getSubscriptions", &[("user_id", &user.to_string())])
            .await;
        assert_eq!(
            ids(&subs["groups"]["items"]).contains(&(big as u64)),
            member,
            "user {user}"
        );
    }
    // Any day can be asked for; handle and endpoint agree.
    assert_eq!(sim.advance_day(2), 3);
    assert_eq!(sim_get(&sim, "/sim/day").await, json!({"day": 3}));
    let again = sim_get(&sim, &format!("/sim/truth/members?group_id={big}&day=1")).await;
    assert_eq!(again["items"], day1["items"]);
}

#[tokio::test]
async fn wall_get_meets_its_quota_and_a_new_day_resets_it() {
    let sim = spawn_sim(vk_sim::SimConfig {
        quotas: vec!["wall.get=3".into()],
        ..small_config()
    })
    .await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let owner = format!("-{}", sim.named_communities().busy);
    for _ in 0..3 {
        vk.ok("wall.get", &[("owner_id", &owner)]).await;
    }
    assert_eq!(vk.err("wall.get", &[("owner_id", &owner)]).await, 29);
    let inner = vk
        .call(
            "execute",
            &[(
                "code",
                &format!("return API.wall.get({{owner_id: {owner}}});"),
            )],
        )
        .await;
    assert_eq!(inner["execute_errors"][0]["error_code"], 29, "{inner}");
    sim_post(&sim, "/sim/day", json!({"advance": 1})).await;
    vk.ok("wall.get", &[("owner_id", &owner)]).await;
}

#[tokio::test]
async fn the_wall_methods_run_inside_execute() {
    let sim = spawn_sim(small_config()).await;
    let n = sim.named_communities();
    let hub = Vk::new(&sim, &sim.user_token(sim.named().hub));
    let truth = truth_wall(&sim, n.busy).await;
    let post = truth["posts"][0]["id"].to_string();
    let owner = format!("-{}", n.busy);
    let code = format!(
        "var w = API.wall.get({{owner_id: {owner}, count: 2}});\n\
         var c = API.wall.getComments({{owner_id: {owner}, post_id: {post}, thread_items_count: 11}});\n\
         var l = API.likes.getList({{type: \"post\", owner_id: {owner}, item_id: {post}, count: 5}});\n\
         var r = API.wall.getReposts({{owner_id: {owner}, post_id: {post}}});\n\
         var c2 = API.wall.getComments({{owner_id: {owner}, post_id: {post}, count: 3}});\n\
         return {{w: w.count, c: c, l: l.items, r: r.items.length, c2: c2.current_level_count}};"
    );
    let body = hub.call("execute", &[("code", &code)]).await;
    let r = &body["response"];
    assert_eq!(r["w"], truth["count"], "{body}");
    assert_eq!(
        r["c"], false,
        "thread_items_count 11 fails inside execute too"
    );
    assert_eq!(body["execute_errors"][0]["error_code"], 100);
    assert_eq!(body["execute_errors"][0]["method"], "wall.getComments");
    assert_eq!(ids(&r["l"]), ids(&truth["posts"][0]["likes"])[..5].to_vec());
    assert_eq!(
        r["r"].as_u64().unwrap() as usize,
        truth["posts"][0]["reposts"]
            .as_array()
            .unwrap()
            .len()
            .min(20)
    );
    let tops = truth["posts"][0]["comments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["parent_id"].is_null())
        .count();
    assert_eq!(r["c2"].as_u64().unwrap() as usize, tops);
    let stats = sim.stats();
    for m in [
        "wall.get",
        "wall.getComments",
        "likes.getList",
        "wall.getReposts",
    ] {
        assert!(stats["inner_by_method"][m].as_u64().unwrap() >= 1, "{m}");
        assert!(
            stats["quota_today"][hub.token.as_str()][m]
                .as_u64()
                .unwrap()
                >= 1,
            "{m} is charged"
        );
    }
}

#[tokio::test]
async fn a_big_community_of_105000_members() {
    let sim = spawn_sim(vk_sim::SimConfig {
        users: 110_000,
        groups: 60,
        big_community_members: 105_000,
        ..small_config()
    })
    .await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let big = sim.named_communities().big;
    let named = sim_get(&sim, "/sim/truth/named").await;
    assert_eq!(named["named_communities"]["big"], big);
    assert_eq!(named["communities"]["big"]["members_count"], 105_000);
    assert_eq!(named["communities"]["big"]["type"], "page");
    let truth = sim_get(&sim, &format!("/sim/truth/members?group_id={big}")).await;
    assert_eq!(truth["count"], 105_000);
    let gid = big.to_string();
    let first = vk.ok("groups.getMembers", &[("group_id", &gid)]).await;
    assert_eq!(first["count"], 105_000);
    let last = vk
        .ok(
            "groups.getMembers",
            &[("group_id", &gid), ("offset", "104500")],
        )
        .await;
    assert_eq!(
        ids(&last["items"]),
        ids(&truth["items"])[104_500..].to_vec()
    );
    let info = vk
        .ok(
            "groups.getById",
            &[("group_id", &gid), ("fields", "members_count")],
        )
        .await;
    assert_eq!(info["groups"][0]["members_count"], 105_000);
    // Too many members for the active users: refused at start.
    let err = vk_sim::spawn(vk_sim::SimConfig {
        users: 1_000,
        groups: 20,
        big_community_members: 1_000,
        ..small_config()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("big_community_members"), "{err}");
}
