//! Community tasks end to end (issue 18): the app on a private Redis and local storage, vk-sim
//! over HTTP, and `/sim/truth/members` and `/sim/truth/wall` as the judge. The simulator keeps
//! its defaults (latency, inner faults, quotas, churn) unless a test says otherwise.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use vk_sim::SimHandle;

use crate::support::backend::{Streams, STATUS};
use crate::support::service::{table_rows, Service};
use crate::support::sim::{self, members_truth};

const INPUT: &str = "stream:community:vk";
const GROUP: &str = "cg_vk_community";

/// `club{id}` references of `ids`.
fn clubs(ids: &[u32]) -> Vec<Value> {
    ids.iter().map(|g| json!(format!("club{g}"))).collect()
}

fn task(job: &str, author: u32, kind: &str, groups: Vec<Value>, options: Value) -> Value {
    json!({
        "taskId": format!("task-{job}"),
        "jobId": job,
        "userId": author,
        "kind": kind,
        "groups": groups,
        "options": options,
    })
}

async fn run(streams: &Streams, payload: Value) -> Value {
    let job = payload["jobId"].as_str().unwrap().to_owned();
    streams.publish("CommunityTaskCreated", &payload).await;
    streams.final_status(&job, 1).await
}

async fn streams_of(svc: &Service) -> Streams {
    svc.streams().await.named(INPUT, STATUS, GROUP)
}

async fn get(sim: &SimHandle, path: &str) -> Value {
    reqwest::get(format!("{}{path}", sim.api_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn ids(v: &Value) -> BTreeSet<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn manifest(svc: &Service, status: &Value) -> Value {
    let prefix = status["artifacts"]["prefix"].as_str().expect("artifacts");
    serde_json::from_slice(&std::fs::read(svc.files.join(prefix).join("manifest.json")).unwrap())
        .unwrap()
}

fn rows(svc: &Service, status: &Value, table: &str) -> Vec<BTreeMap<String, Value>> {
    table_rows(&svc.table(status["artifacts"]["prefix"].as_str().unwrap(), table))
}

/// `(group_id, user_id)` rows of a members-shaped table, by group.
fn by_group(svc: &Service, status: &Value, table: &str) -> BTreeMap<i64, BTreeSet<i64>> {
    let mut out: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for row in rows(svc, status, table) {
        out.entry(row["group_id"].as_i64().unwrap())
            .or_default()
            .insert(row["user_id"].as_i64().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn members_twice_across_a_day_give_the_truths_joined_and_left() {
    let sim = sim::start(|_| {}).await;
    let named = sim.named_communities();
    let svc = Service::start(&sim, &[]).await;
    let streams = streams_of(&svc).await;
    let groups = [named.busy, named.open_wall, named.suggest];
    let refs: Vec<Value> = clubs(&groups);

    let first = run(
        &streams,
        task("m1", named.admin_user, "MEMBERS", refs.clone(), json!({})),
    )
    .await;
    assert_eq!(first["status"], "COMPLETED", "{first}");
    assert_eq!(first["reportId"], "task-m1");
    let day0 = by_group(&svc, &first, "members");
    for g in groups {
        assert_eq!(
            day0[&i64::from(g)],
            members_truth(&sim, g, 0).await,
            "club{g}"
        );
    }
    let counts = rows(&svc, &first, "member_counts");
    assert!(counts
        .iter()
        .all(|r| r["status"] == "complete" && r["joined"].is_null()));
    assert_eq!(
        first["metrics"]["totals"]["failedCommunities"], 0,
        "{first}"
    );

    assert_eq!(sim.advance_day(1), 1);
    let second = run(
        &streams,
        task("m2", named.admin_user, "MEMBERS", refs, json!({})),
    )
    .await;
    assert_eq!(second["status"], "COMPLETED", "{second}");
    let joined = by_group(&svc, &second, "joined");
    let left = by_group(&svc, &second, "left");
    let mut changed = 0;
    for g in groups {
        let (before, now) = (
            members_truth(&sim, g, 0).await,
            members_truth(&sim, g, 1).await,
        );
        let want_joined: BTreeSet<i64> = now.difference(&before).copied().collect();
        let want_left: BTreeSet<i64> = before.difference(&now).copied().collect();
        let key = i64::from(g);
        assert_eq!(
            joined.get(&key).cloned().unwrap_or_default(),
            want_joined,
            "club{g}"
        );
        assert_eq!(
            left.get(&key).cloned().unwrap_or_default(),
            want_left,
            "club{g}"
        );
        changed += want_joined.len() + want_left.len();
    }
    assert!(changed > 0, "a simulated day changes some membership");
    let m = manifest(&svc, &second);
    for c in m["communities"].as_array().unwrap() {
        assert_eq!(c["baselineJob"], "m1", "{c}");
        assert_eq!(c["lists"]["members"]["ratio"], 1.0, "{c}");
    }
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_community_vk_refuses_fails_alone_and_the_status_says_which_and_why() {
    let sim = sim::start(|_| {}).await;
    let named = sim.named_communities();
    let svc = Service::start(&sim, &[]).await;
    let streams = streams_of(&svc).await;
    let groups = vec![
        json!(format!("club{}", named.open_wall)),
        json!(format!("club{}", named.closed)),
        json!(format!("club{}", named.private)),
        json!(-i64::from(named.deactivated)),
        json!("no_such_community_anywhere"),
    ];
    let status = run(
        &streams,
        task("f1", named.admin_user, "MEMBERS", groups, json!({})),
    )
    .await;
    assert_eq!(status["status"], "FAILED", "{status}");
    assert_eq!(status["failureReason"], "VK_ACCESS_DENIED", "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with("4 of 5 communities failed"),
        "{message}"
    );
    for (g, why) in [
        (named.closed, "closed"),
        (named.private, "private"),
        (named.deactivated, "deactivated"),
    ] {
        assert!(message.contains(why), "club{g} {why}: {message}");
    }
    assert!(
        message.contains("no_such_community_anywhere not_found"),
        "{message}"
    );
    // The open community is collected and written all the same.
    let members = by_group(&svc, &status, "members");
    assert_eq!(
        members.keys().copied().collect::<Vec<_>>(),
        [i64::from(named.open_wall)]
    );
    assert_eq!(
        members[&i64::from(named.open_wall)],
        members_truth(&sim, named.open_wall, 0).await
    );
    let per: Vec<(Value, Value)> = status["metrics"]["communities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["status"].clone(), c["reason"].clone()))
        .collect();
    assert_eq!(per[0], (json!("complete"), Value::Null));
    assert_eq!(per[1], (json!("failed"), json!("closed")));
    assert_eq!(per[2], (json!("failed"), json!("private")));
    assert_eq!(per[3], (json!("failed"), json!("deactivated")));
    assert_eq!(per[4], (json!("failed"), json!("not_found")));
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn posts_with_every_comment_and_thread_reply_equal_the_truth() {
    let sim = sim::start(|_| {}).await;
    let named = sim.named_communities();
    let svc = Service::start(&sim, &[]).await;
    let streams = streams_of(&svc).await;
    let groups = [named.busy, named.open_wall];
    let refs: Vec<Value> = clubs(&groups);
    let options = json!({"postsPerGroup": 12, "withComments": true, "withThreads": true});
    // The hub administers `busy`: its token sees who published each post there.
    let status = run(
        &streams,
        task("p1", named_hub(&sim), "POSTS", refs, options),
    )
    .await;
    assert_eq!(status["status"], "COMPLETED", "{status}");

    let posts = rows(&svc, &status, "posts");
    let comments = rows(&svc, &status, "comments");
    let authors: BTreeSet<i64> = rows(&svc, &status, "authors")
        .iter()
        .map(|r| r["user_id"].as_i64().unwrap())
        .collect();
    let mut want_authors = BTreeSet::new();
    for g in groups {
        let wall = get(&sim, &format!("/sim/truth/wall?group_id={g}")).await;
        let latest: Vec<&Value> = wall["posts"].as_array().unwrap().iter().take(12).collect();
        let owner = -i64::from(g);
        let mine: Vec<_> = posts.iter().filter(|p| p["owner_id"] == owner).collect();
        assert_eq!(mine.len(), latest.len(), "club{g}");
        for (row, truth) in mine.iter().zip(&latest) {
            assert_eq!(row["post_id"], truth["id"]);
            assert_eq!(row["text"], truth["text"]);
            assert_eq!(row["date"], truth["date"]);
            assert_eq!(row["signer_id"], truth["signer_id"]);
            assert_eq!(
                row["likes"],
                json!(truth["likes"].as_array().unwrap().len())
            );
            if g == named.busy {
                assert_eq!(row["created_by"], truth["created_by"], "{row:?}");
            }
            want_authors.extend(truth["signer_id"].as_i64());
            if g == named.busy {
                want_authors.extend(truth["created_by"].as_i64());
            }
            let got: BTreeMap<i64, (Value, Value, Value)> = comments
                .iter()
                .filter(|c| c["owner_id"] == owner && c["post_id"] == truth["id"])
                .map(|c| {
                    (
                        c["comment_id"].as_i64().unwrap(),
                        (
                            c["parent_id"].clone(),
                            c["author_id"].clone(),
                            c["deleted"].clone(),
                        ),
                    )
                })
                .collect();
            let want: BTreeMap<i64, (Value, Value, Value)> = truth["comments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["id"].as_i64().unwrap(),
                        (
                            c["parent_id"].clone(),
                            c["from_id"].clone(),
                            c["deleted"].clone(),
                        ),
                    )
                })
                .collect();
            assert_eq!(got, want, "club{g} post {}", truth["id"]);
            for c in truth["comments"].as_array().unwrap() {
                want_authors.extend(c["from_id"].as_i64().filter(|&u| u > 0));
            }
        }
    }
    // The busy wall's newest post needs paging: over 100 comments and a long thread.
    let m = manifest(&svc, &status);
    let busy = &m["communities"][0];
    assert!(
        busy["lists"]["comments"]["fetched"].as_u64().unwrap() > 100,
        "{busy}"
    );
    assert_eq!(authors, want_authors);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn interactions_equal_the_truth_and_reposts_need_an_administrator() {
    let sim = sim::start(|_| {}).await;
    let named = sim.named_communities();
    let svc = Service::start(&sim, &[]).await;
    let streams = streams_of(&svc).await;
    let groups = [named.busy, named.open_wall];
    let refs: Vec<Value> = clubs(&groups);
    let status = run(
        &streams,
        task(
            "i1",
            named_hub(&sim),
            "INTERACTIONS",
            refs,
            json!({"postsPerGroup": 5}),
        ),
    )
    .await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    let triples = |table: &str| -> BTreeSet<(i64, i64, i64)> {
        rows(&svc, &status, table)
            .iter()
            .map(|r| {
                (
                    r["owner_id"].as_i64().unwrap(),
                    r["post_id"].as_i64().unwrap(),
                    r["user_id"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let (likes, reposts) = (triples("likes"), triples("reposts"));
    let commenters: BTreeMap<(i64, i64, i64), i64> = rows(&svc, &status, "commenters")
        .iter()
        .map(|r| {
            (
                (
                    r["owner_id"].as_i64().unwrap(),
                    r["post_id"].as_i64().unwrap(),
                    r["user_id"].as_i64().unwrap(),
                ),
                r["count"].as_i64().unwrap(),
            )
        })
        .collect();
    let (mut want_likes, mut want_reposts, mut want_commenters) =
        (BTreeSet::new(), BTreeSet::new(), BTreeMap::new());
    for g in groups {
        let wall = get(&sim, &format!("/sim/truth/wall?group_id={g}")).await;
        let owner = -i64::from(g);
        for post in wall["posts"].as_array().unwrap().iter().take(5) {
            let id = post["id"].as_i64().unwrap();
            want_likes.extend(ids(&post["likes"]).into_iter().map(|u| (owner, id, u)));
            if g == named.busy {
                want_reposts.extend(ids(&post["reposts"]).into_iter().map(|u| (owner, id, u)));
            }
            for c in post["comments"].as_array().unwrap() {
                if c["deleted"] == false && c["from_id"].as_i64().unwrap() > 0 {
                    *want_commenters
                        .entry((owner, id, c["from_id"].as_i64().unwrap()))
                        .or_insert(0) += 1;
                }
            }
        }
    }
    assert_eq!(likes, want_likes);
    assert!(!want_reposts.is_empty());
    assert_eq!(reposts, want_reposts);
    assert_eq!(commenters, want_commenters);
    // The hub administers `busy` only: elsewhere reposts are a documented skip.
    let m = manifest(&svc, &status);
    assert_eq!(
        m["communities"][1]["lists"]["reposts"]["skipped"],
        "no_admin_token"
    );
    // The roll-up agrees with the lists.
    let audience = rows(&svc, &status, "active_audience");
    let total = |col: &str| {
        audience
            .iter()
            .map(|r| r[col].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(total("likes") as usize, likes.len());
    assert_eq!(total("reposts") as usize, reposts.len());
    assert_eq!(total("comments"), want_commenters.values().sum::<i64>());
    svc.stop().await;
}

/// The named user who administers `busy`.
fn named_hub(sim: &SimHandle) -> u32 {
    sim.named().hub
}

/// A 105,000-member community paged through whole; read again while a simulated day passes
/// mid-scan (the count moves: read again from the start); then, with a fifth of every token's
/// member pages refused, the community fails with the threshold reason and writes no left list.
#[tokio::test(flavor = "multi_thread")]
async fn a_big_community_is_read_whole_and_a_lossy_scan_fails_the_threshold() {
    let sim = sim::start(|c| {
        c.users = 110_000;
        c.groups = 60;
        c.big_community_members = 105_000;
    })
    .await;
    let named = sim.named_communities();
    let svc = Service::start(&sim, &[]).await;
    let streams = streams_of(&svc).await;
    let refs = vec![json!(format!("club{}", named.big))];
    let first = run(
        &streams,
        task("b1", named.admin_user, "MEMBERS", refs.clone(), json!({})),
    )
    .await;
    assert_eq!(first["status"], "COMPLETED", "{first}");
    let members = by_group(&svc, &first, "members");
    assert_eq!(members[&i64::from(named.big)].len(), 105_000);
    assert_eq!(
        members[&i64::from(named.big)],
        members_truth(&sim, named.big, 0).await
    );

    // The same on three tokens at once: the pages are shared out, the list is the same.
    let wide = Service::start(&sim, &[("VKP_COMMUNITY__PARALLEL_TOKENS", "3")]).await;
    let wide_streams = streams_of(&wide).await;
    let before = sim.stats();
    let status = run(
        &wide_streams,
        task(
            "b-wide",
            named.admin_user,
            "MEMBERS",
            refs.clone(),
            json!({}),
        ),
    )
    .await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    assert_eq!(
        by_group(&wide, &status, "members")[&i64::from(named.big)],
        members_truth(&sim, named.big, sim.day()).await
    );
    let after = sim.stats();
    let readers = after["per_token"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(token, t)| {
            let was = before["per_token"][token.as_str()]["inner_by_method"]["groups.getMembers"]
                .as_u64()
                .unwrap_or(0);
            t["inner_by_method"]["groups.getMembers"]
                .as_u64()
                .unwrap_or(0)
                > was
        })
        .count();
    assert_eq!(readers, 3, "three tokens read pages");
    wide.stop().await;

    // A day passes in the middle of a scan (one call per request, so it is long): every page
    // after it counts another length, and the list is read again from the start. The merged
    // list holds every member of the new day, and nobody who was a member on neither day.
    let slow = Service::start(&sim, &[("VK_CALLS_PER_EXECUTE", "1")]).await;
    let slow_streams = streams_of(&slow).await;
    let job = "b-drift";
    slow_streams
        .publish(
            "CommunityTaskCreated",
            &task(job, named.admin_user, "MEMBERS", refs.clone(), json!({})),
        )
        .await;
    crate::support::wait::within(std::time::Duration::from_secs(60), async || {
        let seen = slow_streams.statuses().await;
        seen.iter().any(|s| s["jobId"] == job).then_some(())
    })
    .await
    .expect("the slow scan started");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let day = sim.advance_day(1);
    let drift = slow_streams.final_status(job, 1).await;
    assert_eq!(drift["status"], "COMPLETED", "{drift}");
    let read = &by_group(&slow, &drift, "members")[&i64::from(named.big)];
    let (before, after) = (
        members_truth(&sim, named.big, day - 1).await,
        members_truth(&sim, named.big, day).await,
    );
    assert!(
        after.is_subset(read),
        "{} of the new day's members missing",
        after.difference(read).count()
    );
    assert!(read.iter().all(|u| before.contains(u) || after.contains(u)));
    let m = manifest(&slow, &drift);
    assert!(
        m["communities"][0]["lists"]["members"]["rescans"].as_u64() >= Some(1),
        "{m}"
    );
    slow.stop().await;

    for token in sim::tokens(&sim).await {
        sim::control(
            &sim,
            "/sim/tokens/degrade",
            json!({"token": token["token"], "error_code": 100, "error_rate": 0.2,
                   "methods": ["groups.getMembers"]}),
        )
        .await;
    }
    let second = run(
        &streams,
        task("b2", named.admin_user, "MEMBERS", refs, json!({})),
    )
    .await;
    assert_eq!(second["status"], "FAILED", "{second}");
    assert_eq!(second["failureReason"], "INCOMPLETE_DATA", "{second}");
    assert!(
        second["message"]
            .as_str()
            .unwrap()
            .contains("below_threshold"),
        "{second}"
    );
    let counts = rows(&svc, &second, "member_counts");
    assert_eq!(counts[0]["status"], "failed");
    assert!(counts[0]["ratio"].as_f64().unwrap() < 0.95, "{counts:?}");
    assert!(counts[0]["left"].is_null());
    assert!(rows(&svc, &second, "left").is_empty());
    assert!(rows(&svc, &second, "members").is_empty());
    svc.stop().await;
}

/// wall.get's daily quota (15 here, for 40 walls) spent on one token after another: the task
/// moves its walls on to fresh tokens and reads them; each token hears VK's 29 in one execute.
#[tokio::test(flavor = "multi_thread")]
async fn a_spent_wall_get_quota_moves_the_walls_to_other_tokens() {
    let sim = sim::start(|c| c.quotas.push("wall.get=15".to_owned())).await;
    let named = sim.named_communities();
    let svc = Service::start(&sim, &[]).await;
    let streams = streams_of(&svc).await;
    let groups: Vec<Value> = (1..=40).map(|g| json!(format!("club{g}"))).collect();
    let status = run(
        &streams,
        task(
            "q1",
            named.admin_user,
            "POSTS",
            groups,
            json!({"withComments": false}),
        ),
    )
    .await;
    // Closed and private communities among the 40 fail on their own; none fails for the quota.
    let reasons: Vec<&Value> = status["metrics"]["communities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.get("reason"))
        .collect();
    assert!(reasons.iter().all(|r| *r != "incomplete"), "{status}");
    let stats: Value = get(&sim, "/sim/stats").await;
    let refused = stats["errors_by_code"]["29"].as_u64().unwrap_or(0)
        + stats["inner_errors_by_code"]["29"].as_u64().unwrap_or(0);
    let tokens = sim::tokens(&sim).await.len() as u64;
    assert!(refused > 0, "the quota was reached: {stats}");
    // A token that heard 29 is benched for wall.get: VK refuses at most the rest of the one
    // execute (25 calls) that crossed its quota, never a token asked again and again.
    assert!(
        refused <= 25 * tokens,
        "{refused} refusals over {tokens} tokens"
    );
    let posts = rows(&svc, &status, "posts");
    let complete = status["metrics"]["communities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "complete")
        .count();
    assert!(complete >= 30, "{status}");
    assert!(!posts.is_empty());
    svc.stop().await;
}

/// A closed community shows its members to its members: with a member's token first, the task
/// reads it whole (the same community fails `closed` for a stranger's token, above), also when
/// its pages went to a leased token first.
#[tokio::test(flavor = "multi_thread")]
async fn a_members_token_reads_a_closed_community() {
    let sim = sim::start(|_| {}).await;
    let named = sim.named_communities();
    let svc = Service::start(&sim, &[]).await;
    let streams = streams_of(&svc).await;
    let truth = members_truth(&sim, named.closed, 0).await;
    let member = *truth
        .iter()
        .next()
        .expect("the closed community has members") as u32;
    let refs = vec![json!(format!("club{}", named.closed))];
    let status = run(&streams, task("cm1", member, "MEMBERS", refs, json!({}))).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    assert_eq!(
        by_group(&svc, &status, "members")[&i64::from(named.closed)],
        truth
    );
    svc.stop().await;

    // With pages shared out over leased tokens (one call per request, so four lists make four
    // requests and the closed community's lands on a leased token, which VK refuses): the
    // job's own token, the member's, asks again.
    let wide = Service::start(
        &sim,
        &[
            ("VKP_COMMUNITY__PARALLEL_TOKENS", "3"),
            ("VK_CALLS_PER_EXECUTE", "1"),
        ],
    )
    .await;
    let streams = streams_of(&wide).await;
    let refs = clubs(&[named.open_wall, named.suggest, named.busy, named.closed]);
    let status = run(&streams, task("cm2", member, "MEMBERS", refs, json!({}))).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    assert_eq!(
        by_group(&wide, &status, "members")[&i64::from(named.closed)],
        truth
    );
    // Its wall too: the member's POSTS task reads the latest posts the truth has.
    let refs = vec![json!(format!("club{}", named.closed))];
    let status = run(
        &streams,
        task("cm3", member, "POSTS", refs, json!({"withComments": false})),
    )
    .await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    let wall = get(&sim, &format!("/sim/truth/wall?group_id={}", named.closed)).await;
    let want = wall["posts"].as_array().unwrap().len().min(10);
    assert_eq!(rows(&wide, &status, "posts").len(), want);
    wide.stop().await;
}
