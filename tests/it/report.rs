//! Reports end to end: a real redis-server, vk-sim over HTTP, the whole app (consumer, parser,
//! VK client) and local storage. Each test publishes the backend's events on the stream and
//! checks the parquet against `/sim/truth`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use serde_json::{json, Value};
use vk_parser::tables::{ColumnData, Table};
use vk_sim::SimHandle;

use crate::support::backend::{is_final, report_created, stage2_created, Streams};
use crate::support::redis_server::RedisServer;
use crate::support::s3_server::S3Server;
use crate::support::service::Service;
use crate::support::sim::{self, ids_of, pick_seeds, stat, truth};
use crate::support::wait::eventually;

fn i64s(table: &Table, column: &str) -> Vec<i64> {
    match table.column(column) {
        Some(ColumnData::I64(v)) => v.clone(),
        other => panic!("{}.{column}: {other:?}", table.name),
    }
}

fn i8s(table: &Table, column: &str) -> Vec<i8> {
    match table.column(column) {
        Some(ColumnData::I8(v)) => v.clone(),
        other => panic!("{}.{column}: {other:?}", table.name),
    }
}

/// The valid users by the truth: the seeds' audience (friends, followers, followed users),
/// active and open or closed but readable by `author`'s token (its friends), plus the seeds.
async fn truth_valid(sim: &SimHandle, seeds: &[u32], author: u32) -> BTreeSet<i64> {
    let t = truth(sim, seeds).await;
    let mut audience: BTreeSet<u32> = seeds.iter().copied().collect();
    for s in seeds {
        let info = &t["users"][s.to_string()];
        audience.extend(
            ids_of(&info["friends"])
                .iter()
                .chain(ids_of(&info["followers"]).iter())
                .chain(ids_of(&info["subscriptions"]["users"]).iter())
                .map(|&u| u as u32),
        );
    }
    let all: Vec<u32> = audience.into_iter().collect();
    let t = truth(sim, &all).await;
    let ta = truth(sim, &[author]).await;
    let info = &ta["users"][author.to_string()];
    let author_friends: BTreeSet<i64> = ids_of(&info["friends"])
        .into_iter()
        .chain(ids_of(&info["hidden_friends"]))
        .collect();
    all.into_iter()
        .filter(|u| {
            let info = &t["users"][u.to_string()];
            let readable = info["is_closed"] == false || author_friends.contains(&i64::from(*u));
            seeds.contains(u) || (readable && info["deactivated"].is_null())
        })
        .map(i64::from)
        .collect()
}

/// Who holds the `friends` right friends.getMutual needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Rights {
    /// vk-sim's default: the author's token has the seed's OAuth scope (no `friends`), the
    /// pool's tokens have it.
    PoolOnly,
    /// No token has it: the stages must get the same edges without getMutual.
    Nobody,
    /// Every token has it.
    Everyone,
}

impl Rights {
    pub(crate) fn apply(self, c: &mut vk_sim::SimConfig) {
        let without = "wall,photos,docs,offline,groups".to_owned();
        match self {
            Rights::PoolOnly => {}
            Rights::Nobody => c.pool_token_scopes = without,
            Rights::Everyone => c.user_token_scopes = c.pool_token_scopes.clone(),
        }
    }
}

/// The manifest's completeness section of a stage.
fn completeness(service: &Service, prefix: &str) -> Value {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(service.files.join(prefix).join("manifest.json")).unwrap(),
    )
    .unwrap();
    manifest["completeness"].clone()
}

async fn default_report_matches_the_truth(strategy: &str, rights: Rights) -> u64 {
    default_report_checked(strategy, rights, None).await
}

/// A DEFAULT report checked against the truth, with every token of its author degraded as
/// `degrade` says first (`POST /sim/tokens/degrade`, without the owner); returns the requests.
pub(crate) async fn default_report_checked(
    strategy: &str,
    rights: Rights,
    degrade: Option<Value>,
) -> u64 {
    let sim = sim::start(|c| rights.apply(c)).await;
    let service = Service::start(&sim, &[("VKP_PARSER__EDGE_STRATEGY", strategy)]).await;
    let seeds = pick_seeds(&sim, 500, 3).await;
    let author = sim.named().open;
    let mut job = format!("def-{strategy}-{rights:?}").to_lowercase();
    let degraded = degrade.is_some();
    if let Some(mut body) = degrade {
        body["owner"] = json!(author);
        sim::control(&sim, "/sim/tokens/degrade", body).await;
        job.push_str("-degraded");
    }
    let (p1, p2) = service.run_report(&job, "DEFAULT", &seeds, author).await;

    let valid: BTreeSet<i64> = i64s(&service.table(&p1, "valid_users"), "id")
        .into_iter()
        .collect();
    let want_valid = truth_valid(&sim, &seeds, author).await;
    if degraded {
        // The job left the author's token early: which closed profiles are readable depends on
        // the token that read them, so only the open ones are compared exactly.
        let all: Vec<u32> = want_valid.union(&valid).map(|&u| u as u32).collect();
        let tc = truth(&sim, &all).await;
        let open = |set: &BTreeSet<i64>| -> BTreeSet<i64> {
            set.iter()
                .copied()
                .filter(|u| tc["users"][u.to_string()]["is_closed"] == false)
                .collect()
        };
        assert_eq!(open(&valid), open(&want_valid), "open valid users");
    } else {
        assert_eq!(valid, want_valid, "valid users");
    }
    edges_match_the_truth(&sim, &service, &seeds, (&p1, &p2), !degraded).await;
    let connect = service.table(&p2, "df_connect");
    let (source, target) = (i64s(&connect, "source"), i64s(&connect, "target"));
    // df_users holds everyone in the graph; unfiltered lists exist per seed.
    let users: HashSet<i64> = i64s(&service.table(&p2, "df_users"), "id")
        .into_iter()
        .collect();
    assert!(source.iter().chain(&target).all(|u| users.contains(u)));
    for s in &seeds {
        assert!(service.table(&p2, &format!("unfiltered_{s}")).rows() > 0);
    }
    // Counts are VK's or null: followers_count from the bulk field, friends_count from the
    // lists the report read (the seeds' at least); never `counters` in a many-id users.get.
    assert_eq!(stat(&sim.stats(), &["counters_ignored"]), 0);
    let df_users = service.table(&p2, "df_users");
    let user_ids = i64s(&df_users, "id");
    let friends_count = df_users.opt_i64s("friends_count").unwrap();
    let followers_count = df_users.opt_i64s("followers_count").unwrap();
    let listed: Vec<u32> = user_ids.iter().map(|&u| u as u32).collect();
    let tu = truth(&sim, &listed).await;
    for (i, u) in user_ids.iter().enumerate() {
        let info = &tu["users"][u.to_string()];
        let readable = info["is_closed"] == false && info["deactivated"].is_null();
        if let Some(n) = friends_count[i] {
            assert_eq!(
                n as usize,
                ids_of(&info["friends"]).len(),
                "friends_count of {u}"
            );
        }
        if seeds.contains(&(*u as u32)) {
            assert!(friends_count[i].is_some(), "a seed's friend count is known");
        }
        match followers_count[i] {
            Some(n) => assert_eq!(
                n as usize,
                ids_of(&info["followers"]).len(),
                "followers of {u}"
            ),
            None => assert!(!readable, "followers_count of readable {u} is known"),
        }
    }

    // The completeness section accounts for every planned call: nothing failed here.
    let section = completeness(&service, &p2);
    for kind in ["friend_lists", "follower_lists", "profiles"] {
        let t = &section[kind];
        if t.is_null() {
            continue;
        }
        let skipped: u64 = t["skipped"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        assert_eq!(
            t["planned"].as_u64().unwrap(),
            t["answered"].as_u64().unwrap() + skipped + t["failed"].as_u64().unwrap(),
            "{kind}: {section}"
        );
        assert_eq!(t["failed"], 0, "{kind}: {section}");
    }
    assert!(section["follower_lists"]["planned"].as_u64().unwrap() > 0);
    let requests = stat(&sim.stats(), &["requests"]);
    println!("DEFAULT report, strategy {strategy}, friends right {rights:?}: {requests} VK requests for stages 1 and 2, {} valid users, {} edges", valid.len(), source.len());
    service.stop().await;
    requests
}

#[tokio::test(flavor = "multi_thread")]
async fn default_report_has_every_edge_of_the_truth_whoever_holds_the_friends_right() {
    let pool_only = default_report_matches_the_truth("mutual", Rights::PoolOnly).await;
    let nobody = default_report_matches_the_truth("mutual", Rights::Nobody).await;
    let everyone = default_report_matches_the_truth("mutual", Rights::Everyone).await;
    let friends = default_report_matches_the_truth("friends", Rights::PoolOnly).await;
    println!(
        "requests: mutual with the right on the pool only {pool_only}, on no token {nobody}, \
         on every token {everyone}; friends strategy {friends}"
    );
    assert!(everyone <= friends, "the mutual strategy never costs more");
}

#[tokio::test(flavor = "multi_thread")]
async fn sub_graph_counts_match_the_truth() {
    let sim = sim::start(|_| {}).await;
    let service = Service::start(&sim, &[]).await;
    let seeds = pick_seeds(&sim, 700, 2).await;
    let (p1, p2) = service
        .run_report("subs", "SUB_GRAPH", &seeds, sim.named().open)
        .await;
    let valid: BTreeSet<i64> = i64s(&service.table(&p1, "valid_users"), "id")
        .into_iter()
        .collect();
    let t = truth(&sim, &seeds).await;
    let mut want: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for s in &seeds {
        let info = &t["users"][s.to_string()];
        let audience: BTreeSet<i64> = ids_of(&info["friends"])
            .into_iter()
            .chain(ids_of(&info["subscriptions"]["users"]))
            .chain(ids_of(&info["followers"]))
            .filter(|u| valid.contains(u))
            .collect();
        let members: Vec<u32> = audience.iter().map(|&u| u as u32).collect();
        let tm = truth(&sim, &members).await;
        for u in &members {
            for g in ids_of(&tm["users"][u.to_string()]["subscriptions"]["groups"]) {
                *want.entry((g, i64::from(*s))).or_default() += 1;
            }
        }
    }
    let subs = service.table(&p2, "df_subs");
    let groups = i64s(&subs, "id_group");
    let mut got: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for s in &seeds {
        let counts = i64s(&subs, &format!("subscribers_{s}"));
        for (g, n) in groups.iter().zip(counts) {
            if n > 0 {
                got.insert((*g, i64::from(*s)), n);
            }
        }
    }
    assert_eq!(got, want);
    let communities: BTreeSet<i64> = groups.iter().copied().collect();
    assert_eq!(communities, got.keys().map(|(g, _)| *g).collect());
    assert!(subs.strs("name").unwrap().iter().any(Option::is_some));
    // df_users are the audience's profiles with their relations, as in stage 1.
    let users: BTreeSet<i64> = i64s(&service.table(&p2, "df_users"), "id")
        .into_iter()
        .collect();
    assert_eq!(users, valid);
    service.stop().await;
}

async fn truth_chains(sim: &SimHandle, a: u32, b: u32) -> BTreeSet<Vec<i64>> {
    let t = truth(sim, &[a, b]).await;
    let fa: BTreeSet<i64> = ids_of(&t["users"][a.to_string()]["friends"])
        .into_iter()
        .collect();
    let fb: BTreeSet<i64> = ids_of(&t["users"][b.to_string()]["friends"])
        .into_iter()
        .collect();
    let (a, b) = (i64::from(a), i64::from(b));
    if fa.contains(&b) {
        return [vec![a, b]].into();
    }
    let common: BTreeSet<Vec<i64>> = fa.intersection(&fb).map(|x| vec![a, *x, b]).collect();
    if !common.is_empty() {
        return common;
    }
    let xs: Vec<u32> = fa.iter().map(|&x| x as u32).collect();
    let tx = truth(sim, &xs).await;
    let mut chains = BTreeSet::new();
    for x in &xs {
        for y in ids_of(&tx["users"][x.to_string()]["friends"]) {
            if fb.contains(&y) && y != a && y != b {
                chains.insert(vec![a, i64::from(*x), y, b]);
            }
        }
    }
    chains
}

/// The friendship edges of a DEFAULT stage 2 and the truth's among its stage 1 valid users.
/// df_connect of a DEFAULT report against the truth among its valid users: friendships,
/// outgoing friendships (seed → user, relation 2) and follower edges. With `closed_exact` false
/// the edges of closed profiles need only be a subset (a run that left the author's token,
/// the one token that may read them, early).
pub(crate) async fn edges_match_the_truth(
    sim: &SimHandle,
    service: &Service,
    seeds: &[u32],
    (p1, p2): (&str, &str),
    closed_exact: bool,
) {
    let connect = service.table(p2, "df_connect");
    let (source, target, relation) = (
        i64s(&connect, "source"),
        i64s(&connect, "target"),
        i8s(&connect, "relation"),
    );
    let with = |r: i8| -> BTreeSet<(i64, i64)> {
        (0..source.len())
            .filter(|&i| relation[i] == r)
            .map(|i| (source[i], target[i]))
            .collect()
    };
    let (got_friends, got_follows) = (with(2), with(1));
    assert_eq!(
        got_friends.len() + got_follows.len(),
        source.len(),
        "no duplicate edge, no other relation"
    );
    let valid: BTreeSet<i64> = i64s(&service.table(p1, "valid_users"), "id")
        .into_iter()
        .collect();
    let ids: Vec<u32> = valid.iter().map(|&u| u as u32).collect();
    let t = truth(sim, &ids).await;
    let pairs = |key: &str| -> BTreeSet<(i64, i64)> {
        t[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_i64().unwrap(), e[1].as_i64().unwrap()))
            .collect()
    };
    // A seed following a user is an outgoing friendship: relation 2, seed → user.
    let ts = truth(sim, seeds).await;
    let outgoing: BTreeSet<(i64, i64)> = seeds
        .iter()
        .flat_map(|s| {
            ids_of(&ts["users"][s.to_string()]["subscriptions"]["users"])
                .into_iter()
                .map(move |u| (i64::from(*s), u))
        })
        .filter(|(_, u)| valid.contains(u))
        .collect();
    let want_friends: BTreeSet<(i64, i64)> = pairs("edges").union(&outgoing).copied().collect();
    let want_follows: BTreeSet<(i64, i64)> = pairs("follow_edges")
        .difference(&outgoing)
        .copied()
        .collect();
    let closed: BTreeSet<i64> = valid
        .iter()
        .copied()
        .filter(|u| !closed_exact && t["users"][u.to_string()]["is_closed"] == true)
        .collect();
    let open_only = |set: &BTreeSet<(i64, i64)>| -> BTreeSet<(i64, i64)> {
        set.iter()
            .copied()
            .filter(|(a, b)| !closed.contains(a) && !closed.contains(b))
            .collect()
    };
    assert_eq!(
        open_only(&got_friends),
        open_only(&want_friends),
        "friendship edges among the valid users"
    );
    assert_eq!(
        open_only(&got_follows),
        open_only(&want_follows),
        "follower edges among the valid users"
    );
    assert!(
        got_friends.is_subset(&want_friends),
        "no friendship the truth lacks"
    );
    assert!(
        got_follows.is_subset(&want_follows),
        "no follower edge the truth lacks"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn get_mutual_refused_mid_report_still_gives_every_edge() {
    let sim = sim::start(|c| Rights::Everyone.apply(c)).await;
    let service = Service::start(&sim, &[]).await;
    let seeds = pick_seeds(&sim, 500, 3).await;
    let author = sim.named().open;
    let job = "def-refused";
    let s1 = service.run_stage1(job, "DEFAULT", &seeds, author).await;
    // Every token loses the `friends` right after stage 1: stage 2's getMutual is refused.
    for t in sim::tokens(&sim).await {
        sim::control(
            &sim,
            "/sim/tokens/scopes",
            json!({"token": t["token"], "scopes": ["wall", "offline"]}),
        )
        .await;
    }
    service
        .publish("Stage2Created", stage2_created(job, "DEFAULT", author))
        .await;
    let s2 = service.final_status(job, 2).await;
    assert_eq!(s2["status"], "COMPLETED", "{s2}");
    let p1 = s1["artifacts"]["prefix"].as_str().unwrap();
    let p2 = s2["artifacts"]["prefix"].as_str().unwrap();
    // Every friendship, without getMutual.
    edges_match_the_truth(&sim, &service, &seeds, (p1, p2), true).await;
    assert!(
        stat(&sim.stats(), &["inner_errors_by_code", "15"]) > 0,
        "getMutual was refused"
    );
    let section = completeness(&service, p2);
    assert_eq!(section["friend_lists"]["failed"], 0, "{section}");
    assert!(
        s2["message"].as_str().unwrap().contains("friend lists"),
        "the status message summarises the completeness: {s2}"
    );
    service.stop().await;
}

/// The length of a shortest chain of visible friendships, by the truth.
async fn distance(sim: &SimHandle, a: u32, b: u32) -> Option<u64> {
    let path: Value = reqwest::get(format!("{}/sim/truth/path?from={a}&to={b}", sim.api_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    path["distance"].as_u64()
}

#[tokio::test(flavor = "multi_thread")]
async fn handshakes_finds_exactly_the_shortest_chains_whoever_holds_the_friends_right() {
    for rights in [Rights::PoolOnly, Rights::Nobody, Rights::Everyone] {
        handshakes_match_the_truth(rights).await;
    }
}

async fn handshakes_match_the_truth(rights: Rights) {
    let sim = sim::start(|c| rights.apply(c)).await;
    let service = Service::start(&sim, &[]).await;
    // Seeds far apart in id (the graph clusters by id) and near: chains of several lengths,
    // one pair three handshakes apart (only getMutual, or the friends' own lists, settle it).
    let near = pick_seeds(&sim, 900, 2).await;
    let far = pick_seeds(&sim, 4000, 20).await;
    let mut three = None;
    for &b in &far {
        if distance(&sim, near[0], b).await == Some(3) {
            three = Some(b);
            break;
        }
    }
    let mut seeds = near;
    seeds.push(three.expect("a seed three handshakes from the first"));
    let job = format!("hs-{rights:?}").to_lowercase();
    let (_, p2) = service
        .run_report(&job, "HANDSHAKES", &seeds, sim.named().open)
        .await;
    let chains = service.table(&p2, "df_chains");
    let (a, b) = (i64s(&chains, "main_a"), i64s(&chains, "main_b"));
    let Some(ColumnData::Str(paths)) = chains.column("path") else {
        panic!("path column")
    };
    for i in 0..seeds.len() {
        for j in i + 1..seeds.len() {
            let (sa, sb) = (i64::from(seeds[i]), i64::from(seeds[j]));
            let got: BTreeSet<Vec<i64>> = (0..a.len())
                .filter(|&k| a[k] == sa && b[k] == sb)
                .map(|k| {
                    paths[k]
                        .as_ref()
                        .unwrap()
                        .split(',')
                        .map(|x| x.parse().unwrap())
                        .collect()
                })
                .collect();
            let want = truth_chains(&sim, seeds[i], seeds[j]).await;
            if rights == Rights::Nobody {
                // Without getMutual, x–y of a chain a–x–y–b comes from x's or y's own friend
                // list: a chain whose x and y are both private is a documented skip.
                assert!(
                    got.is_subset(&want),
                    "chains {sa} .. {sb}: only true chains"
                );
                let middles: Vec<u32> = want
                    .iter()
                    .flat_map(|c| c[1..c.len() - 1].to_vec())
                    .map(|u| u as u32)
                    .collect();
                let t = truth(&sim, &middles).await;
                let readable = |u: i64| {
                    let info = &t["users"][u.to_string()];
                    info["is_closed"] == false && info["deactivated"].is_null()
                };
                for chain in &want {
                    if chain.len() < 4 || readable(chain[1]) || readable(chain[2]) {
                        assert!(got.contains(chain), "chain {chain:?} ({rights:?})");
                    }
                }
            } else {
                assert_eq!(got, want, "chains {sa} .. {sb} ({rights:?})");
            }
        }
    }
    let section = completeness(&service, &p2);
    assert_eq!(section["mutual_tests"]["failed"], 0, "{section}");
    println!(
        "HANDSHAKES, friends right {rights:?}: {} VK requests",
        stat(&sim.stats(), &["requests"])
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_reports_end_complete_or_with_the_right_reason() {
    let sim = sim::start(|_| {}).await;
    let service = Service::start(&sim, &[]).await;
    let named = sim.named();
    let seeds = pick_seeds(&sim, 1500, 1).await;

    // An author whose own profile is closed: their token reads open profiles fine.
    service
        .publish(
            "ReportCreated",
            report_created("closed-author", "DEFAULT", &seeds, named.closed),
        )
        .await;
    assert_eq!(
        service.final_status("closed-author", 1).await["status"],
        "STAGE1_COMPLETED"
    );

    // A deleted seed: nothing to read.
    service
        .publish(
            "ReportCreated",
            report_created("deleted", "DEFAULT", &[named.deleted], named.open),
        )
        .await;
    let deleted = service.final_status("deleted", 1).await;
    assert_eq!(
        (
            deleted["status"].as_str(),
            deleted["failureReason"].as_str()
        ),
        (Some("FAILED"), Some("VK_USER_NOT_FOUND")),
        "{deleted}"
    );

    // A screen name nobody has: the report falls back to its author, and says so.
    let mut unresolvable = report_created("unresolvable", "DEFAULT", &[], named.open);
    unresolvable["socialNetworkIds"] = json!(["no_such_screen_name_42"]);
    service.publish("ReportCreated", unresolvable).await;
    let status = service.final_status("unresolvable", 1).await;
    assert_eq!(status["status"], "STAGE1_COMPLETED", "{status}");
    assert!(
        status["message"].as_str().unwrap().contains("author"),
        "{status}"
    );

    // A seed with more than 5,000 friends: its list is read whole.
    service
        .publish(
            "ReportCreated",
            report_created("hub", "HANDSHAKES", &[named.hub], named.open),
        )
        .await;
    let hub = service.final_status("hub", 1).await;
    assert_eq!(hub["status"], "STAGE1_COMPLETED", "{hub}");
    let lists = service.table(
        hub["artifacts"]["prefix"].as_str().unwrap(),
        "df_main_friends",
    );
    let friends = i8s(&lists, "relation").iter().filter(|r| **r == 2).count();
    let want = truth(&sim, &[named.hub]).await["users"][named.hub.to_string()]["friends"]
        .as_array()
        .unwrap()
        .len();
    assert!(want > 5000);
    assert_eq!(friends, want);

    // Stage 2 without a stage 1.
    service
        .publish(
            "Stage2Created",
            stage2_created("never-started", "DEFAULT", named.open),
        )
        .await;
    let missing = service.final_status("never-started", 2).await;
    assert_eq!(missing["failureReason"], "STAGE1_NOT_FOUND", "{missing}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_storm_does_not_change_the_graph() {
    let sim = sim::start(|_| {}).await;
    let service = Service::start(&sim, &[]).await;
    let seeds = pick_seeds(&sim, 2000, 2).await;
    let author = sim.named().open;
    let (_, calm) = service.run_report("calm", "DEFAULT", &seeds, author).await;
    crate::support::sim::control(
        &sim,
        "/sim/faults",
        json!({"global": {"error10": 0.1, "http503": 0.1, "truncated": 0.05, "drop": 0.05}}),
    )
    .await;
    let (_, stormy) = service
        .run_report("stormy", "DEFAULT", &seeds, author)
        .await;
    let edges = |prefix: &str| {
        let t = service.table(prefix, "df_connect");
        let (s, d, r) = (i64s(&t, "source"), i64s(&t, "target"), i8s(&t, "relation"));
        (0..s.len())
            .map(|i| (s[i], d[i], r[i]))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(edges(&calm), edges(&stormy));
    assert!(sim.stats()["faults"]
        .as_object()
        .is_some_and(|f| !f.is_empty()));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_writes_to_s3() {
    let sim = sim::start(|_| {}).await;
    let s3 = S3Server::start("reports").await;
    let service = Service::start_s3(&sim, &s3).await;
    let seeds = pick_seeds(&sim, 3000, 2).await;
    let (p1, p2) = service
        .run_report("on-s3", "DEFAULT", &seeds, sim.named().open)
        .await;
    assert!(service.table(&p1, "valid_users").rows() > 0);
    assert!(service.table(&p2, "df_connect").rows() > 0);
    assert!(service.files.join(&p2).join("manifest.json").is_file());
    service.stop().await;
}

/// The real binary, SIGTERM in the middle of a job: it exits 0 after the grace period, publishes
/// nothing for the unfinished job, and leaves its entry pending for a peer.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_the_process_and_leaves_the_entry_for_a_peer() {
    // Every VK request hangs: the job is surely running when the signal comes.
    let sim = sim::start(|c| {
        c.faults = vec!["slow=1.0".to_owned()];
        c.slow_delay_ms = 60_000;
    })
    .await;
    let redis = RedisServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut env = sim::env(&sim);
    env.insert("REDIS_URL".into(), redis.url());
    env.insert("STORAGE_URL".into(), data.path().display().to_string());
    env.insert("VKP_OPS__LISTEN".into(), "127.0.0.1:0".into());
    env.insert("VKP_STREAM__SHUTDOWN_GRACE".into(), "1s".into());
    env.insert("VKP_STREAM__BLOCK".into(), "100ms".into());
    env.insert("VKP_SERVICE__ENVIRONMENT".into(), "production".into());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vk-parser"))
        .arg("run")
        .env_clear()
        .envs(&env)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("vk-parser starts");
    let streams = Streams::open(&redis.url()).await;
    let seeds = pick_seeds(&sim, 500, 1).await;
    // The group is created at `$` when the process starts: publish only once it exists.
    eventually(
        "the process to create its group",
        Duration::from_secs(20),
        async || {
            let groups = streams.try_groups().await;
            groups.is_ok_and(|g| !g.is_empty()).then_some(())
        },
    )
    .await;
    streams
        .publish(
            "ReportCreated",
            &report_created("term", "DEFAULT", &seeds, sim.named().open),
        )
        .await;
    eventually("the job to start", Duration::from_secs(20), async || {
        (!streams.statuses_of("term", 1).await.is_empty()).then_some(())
    })
    .await;
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let finals = streams
        .statuses_of("term", 1)
        .await
        .iter()
        .filter(|s| is_final(s))
        .count();
    assert_eq!(finals, 0, "nothing final for the interrupted job");
    assert_eq!(streams.pending().await, 1, "the entry is left pending");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quota_spent_mid_stage_2_moves_to_the_pool_and_every_replica_sees_it() {
    // users.getFollowers capped at 60 a day (the read quotas' default is 5,000: this report
    // needs about 150): the author's token meets 29 in the middle of stage 2.
    // The author's token also has `friends`, so stage 2 stays on it until the 29.
    let sim = sim::start(|c| {
        c.quotas = vec!["users.getFollowers=60".into()];
        Rights::Everyone.apply(c);
    })
    .await;
    let service = Service::start(&sim, &[]).await;
    let seeds = pick_seeds(&sim, 500, 3).await;
    let author = sim.named().open;
    let (p1, p2) = service.run_report("quota", "DEFAULT", &seeds, author).await;
    // The follower edges are all there: the rest of the lists came from pool tokens. Those of
    // the closed profiles only the author's token may read are there when it read them before
    // its quota ran out; after, they are private to every token the job has today (counted
    // as private skips), so they need only be a subset.
    edges_match_the_truth(&sim, &service, &seeds, (&p1, &p2), false).await;
    let token = sim.user_token(author);
    let stats = sim.stats();
    assert_eq!(
        stats["quota_today"][&token]["users.getFollowers"], 60,
        "the author's token spent its quota"
    );
    assert!(stat(&stats, &["token_manager", "counters", "granted"]) >= 1);
    let first = &service.statuses("quota", 2).await[1];
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .starts_with("estimated VK calls: "),
        "the stage's first progress message has the estimate: {first}"
    );

    // The use is in Redis under the token's hash, for every replica.
    let target = vk_parser::redis_conn::RedisTarget::single(
        &vk_parser::settings::RedisUrl::parse(&service.redis.url()).unwrap(),
    )
    .unwrap();
    let ledger = vk_parser::vk::quota::QuotaLedger::on(target, "vkp", 21);
    let (used, spent) = ledger.used(vk_parser::vk::rate::TokenKey::of(&token)).await;
    assert!(used["users.getFollowers"] >= 60, "{used:?}");
    assert_eq!(spent, vec!["users.getFollowers".to_owned()]);

    // Another replica on the same Redis does not spend a request on the spent token.
    let settings = sim::settings(&sim, &[("REDIS_URL", &service.redis.url())]);
    let replica = vk_parser::vk::connect(&settings).unwrap();
    let mut session = replica
        .session(&sim::job("quota2"), sim::uid(author))
        .await
        .unwrap();
    let before = stat(&sim.stats(), &["per_token", &token, "errors_by_code", "29"]);
    session
        .call("users.getFollowers", &sim::users_get(author))
        .await
        .unwrap();
    // On a pool token at once; more than one when the first pool tokens spent their 60 in
    // stage 2 too (the ledger says so, and the replica passes them by as well).
    assert!(session.leased_count() >= 1, "moved to a pool token at once");
    assert_eq!(
        stat(&sim.stats(), &["per_token", &token, "errors_by_code", "29"]),
        before,
        "no 29 more on the author's token"
    );
    session
        .finish(vk_parser::vk::tokens::ReleaseReason::Completed)
        .await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_the_tokens_cannot_cover_fails_at_once_with_the_shortfall() {
    let sim = sim::start(|c| c.global_pool = 1).await;
    // 20 calls a day per token: the author's and one pool token cannot cover ~150 follower lists.
    let service = Service::start(&sim, &[("VKP_VK__DAILY_QUOTA", "20")]).await;
    let seeds = pick_seeds(&sim, 500, 3).await;
    let author = sim.named().open;
    let job = "short";
    service.run_stage1(job, "DEFAULT", &seeds, author).await;
    let before = stat(&sim.stats(), &["requests"]);
    service
        .publish("Stage2Created", stage2_created(job, "DEFAULT", author))
        .await;
    let s2 = service.final_status(job, 2).await;
    assert_eq!(s2["status"], "FAILED", "{s2}");
    assert_eq!(s2["failureReason"], "VK_RATE_LIMIT", "{s2}");
    let message = s2["message"].as_str().unwrap();
    assert!(
        message.contains("users.getFollowers") && message.contains("short"),
        "{message}"
    );
    assert_eq!(
        stat(&sim.stats(), &["requests"]),
        before,
        "failed before any VK request"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_that_lost_lists_fails_incomplete_instead_of_completing() {
    let sim = sim::start(|_| {}).await;
    let service = Service::start(&sim, &[("VKP_PARSER__MAX_FAILED_SHARE", "0.01")]).await;
    let seeds = pick_seeds(&sim, 500, 3).await;
    let author = sim.named().open;
    let job = "holes";
    service.run_stage1(job, "DEFAULT", &seeds, author).await;
    // From stage 2 on, VK refuses every execute and every users.getFollowers with 100 (as after
    // an API change): the packed calls fall back to direct ones, and no follower list comes.
    sim::control(
        &sim,
        "/sim/faults",
        json!({"methods": {"execute": {"error100": 1.0}, "users.getFollowers": {"error100": 1.0}}}),
    )
    .await;
    service
        .publish("Stage2Created", stage2_created(job, "DEFAULT", author))
        .await;
    let s2 = service.final_status(job, 2).await;
    assert_eq!(s2["status"], "FAILED", "never COMPLETED with holes: {s2}");
    assert_eq!(s2["failureReason"], "INCOMPLETE_DATA", "{s2}");
    let message = s2["message"].as_str().unwrap();
    assert!(message.contains("follower lists"), "{message}");
    assert!(
        s2["artifacts"].is_null(),
        "no manifest for a stage with holes"
    );
    service.stop().await;
}
