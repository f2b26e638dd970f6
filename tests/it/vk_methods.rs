//! The typed VK operations against vk-sim's truth, and the orchestrator's token moves that
//! need a whole session (refresh, rotation, benches, static tokens).

use std::collections::{BTreeSet, HashSet};

use serde_json::json;
use vk_parser::ids::VkUserId;
use vk_parser::vk::methods::{self, PROFILE_FIELDS};
use vk_parser::vk::tokens::ReleaseReason;
use vk_parser::vk::{self, VkError};

use crate::support::sim::{self, control, ids_of, job, revoke, stat, truth, uid};

fn set(ids: &[i64]) -> BTreeSet<i64> {
    ids.iter().copied().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn followers_subscriptions_and_mutuals_match_the_truth() {
    // The author's token has vk-sim's default user scope (no `friends`): VK refuses its
    // friends.getMutual, and the session moves to a global token that may call it.
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let named = sim.named();
    let mut session = orchestrator
        .session(&job("m1"), uid(named.open))
        .await
        .unwrap();
    let users: Vec<u32> = (400..440).chain([named.hub, named.open]).collect();
    let ids: Vec<VkUserId> = users.iter().map(|&u| uid(u)).collect();
    let truth = truth(&sim, &users).await;

    let followers = methods::follower_lists(&mut session, &ids).await.unwrap();
    let subscriptions = methods::subscriptions(&mut session, &ids).await.unwrap();
    for &u in &users {
        let info = &truth["users"][u.to_string()];
        match (&followers[&uid(u)], &subscriptions[&uid(u)]) {
            (Ok(f), Ok(s)) => {
                assert_eq!(set(f), set(&ids_of(&info["followers"])), "followers of {u}");
                assert_eq!(
                    set(&s.users),
                    set(&ids_of(&info["subscriptions"]["users"])),
                    "subscriptions of {u}"
                );
                assert_eq!(
                    set(&s.groups),
                    set(&ids_of(&info["subscriptions"]["groups"])),
                    "groups of {u}"
                );
            }
            (f, s) => assert!(
                info["is_closed"] == true || !info["deactivated"].is_null(),
                "user {u} refused though readable: {f:?} {s:?}"
            ),
        }
    }

    // getMutual(source=open, targets) gives each target's friends inside open's friend list.
    let open_friends: HashSet<i64> = ids_of(&truth["users"][named.open.to_string()]["friends"])
        .into_iter()
        .collect();
    let targets: Vec<i64> = (400..440).collect();
    let mutuals = methods::mutual_friends(&mut session, uid(named.open), &targets)
        .await
        .unwrap();
    assert!(mutuals.denied.is_empty(), "{:?}", mutuals.denied);
    assert!(mutuals.failed.is_empty(), "{:?}", mutuals.failed);
    assert_eq!(
        session.leased_count(),
        1,
        "moved to a global token for getMutual"
    );
    let mut checked = 0;
    for entry in mutuals.found {
        let theirs: HashSet<i64> = ids_of(&truth["users"][entry.id.to_string()]["friends"])
            .into_iter()
            .collect();
        let want: BTreeSet<i64> = theirs.intersection(&open_friends).copied().collect();
        assert_eq!(
            set(&entry.common_friends),
            want,
            "mutual friends of {} and open",
            entry.id
        );
        checked += 1;
    }
    assert!(checked > 30, "{checked} targets checked");
    session.finish(ReleaseReason::Completed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_and_groups_decode() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let named = sim.named();
    let mut session = orchestrator
        .session(&job("m2"), uid(named.open))
        .await
        .unwrap();
    // 2,500 ids: three users.get calls in one execute.
    let ids: Vec<i64> = (1..=2500).collect();
    let profiles = methods::profiles(&mut session, &ids, PROFILE_FIELDS)
        .await
        .unwrap();
    assert_eq!(profiles.len(), 2500);
    let deleted = profiles
        .iter()
        .find(|p| p.id == i64::from(named.deleted))
        .unwrap();
    assert_eq!(deleted.deactivated.as_deref(), Some("deleted"));
    let closed = profiles
        .iter()
        .find(|p| p.id == i64::from(named.closed))
        .unwrap();
    assert!(closed.is_closed && !closed.can_access_closed);
    let hub = profiles
        .iter()
        .find(|p| p.id == i64::from(named.hub))
        .unwrap();
    // Counters come only for one user: the bulk read has followers_count and no counters.
    assert!(hub.counters.is_none());
    let hub_followers = sim.graph().followers.of(named.hub).len() as u64;
    assert_eq!(hub.followers_count, Some(hub_followers));
    assert_eq!(stat(&sim.stats(), &["counters_ignored"]), 0);
    assert_eq!(session.batch_stats().executes, 1);

    let groups = methods::groups(
        &mut session,
        &(1..=600).collect::<Vec<_>>(),
        "members_count",
    )
    .await;
    // The small graph has 400 communities: ids past it are refused as a whole call (VK's 100).
    assert!(matches!(groups, Err(VkError::Api { .. })), "{groups:?}");
    let groups = methods::groups(
        &mut session,
        &(1..=400).collect::<Vec<_>>(),
        "members_count",
    )
    .await
    .unwrap();
    assert_eq!(groups.len(), 400);
    assert!(groups.iter().all(|g| !g.name.is_empty()));
    // Deactivated communities come without members_count, as VK sends them.
    let deactivated = sim
        .graph()
        .groups
        .iter()
        .filter(|g| g.deactivated.is_some())
        .count();
    assert!(deactivated > 0);
    assert_eq!(
        groups.iter().filter(|g| g.members_count.is_none()).count(),
        deactivated
    );

    // 25,000 ids are 25 users.get of 1,000: about 150 KB of script, past the 64 KiB vk-sim
    // (like VK) accepts as `code`, so the batch is cut by size and every profile still comes.
    let many: Vec<i64> = (1..=25_000).collect();
    let before = session.batch_stats().executes;
    let profiles = methods::profiles(&mut session, &many, "").await.unwrap();
    assert_eq!(profiles.len(), 25_000);
    let executes = session.batch_stats().executes - before;
    assert!(executes >= 3, "cut by code size: {executes} executes");
    session.finish(ReleaseReason::Completed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_user_token_is_refreshed_before_use() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let author = sim.named().open;
    let old = sim.user_token(author);
    control(&sim, "/sim/tokens/expire", json!({ "token": old })).await;
    let mut session = orchestrator.session(&job("m3"), uid(author)).await.unwrap();
    session.call("users.get", &sim::users_get(1)).await.unwrap();
    session.finish(ReleaseReason::Completed).await;
    let stats = sim.stats();
    assert_eq!(
        stat(
            &stats,
            &["token_manager", "counters", "user_tokens_refreshed"]
        ),
        1
    );
    assert_ne!(sim.user_token(author), old);
    assert_eq!(
        stat(&stats, &["token_manager", "counters", "granted"]),
        0,
        "no global token needed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_token_that_expires_mid_job_is_refreshed_and_the_job_goes_on() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let author = sim.named().open;
    let mut session = orchestrator.session(&job("m5"), uid(author)).await.unwrap();
    session.call("users.get", &sim::users_get(1)).await.unwrap();
    // VK now answers 1117 for the author's token: the session refreshes it through the token
    // manager and retries, on the author's own (new) token.
    let old = sim.user_token(author);
    control(&sim, "/sim/tokens/expire", json!({ "token": old })).await;
    session.call("users.get", &sim::users_get(1)).await.unwrap();
    assert_eq!(session.leased_count(), 0, "no move to a global token");
    session.finish(ReleaseReason::Completed).await;
    let stats = sim.stats();
    assert_eq!(stat(&stats, &["errors_by_code", "1117"]), 1);
    assert_eq!(
        stat(
            &stats,
            &["token_manager", "counters", "user_tokens_refreshed"]
        ),
        1
    );
    assert_ne!(sim.user_token(author), old);
    assert_eq!(stat(&stats, &["token_manager", "counters", "granted"]), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn leased_tokens_rotate_and_every_lease_is_released_once() {
    let sim = sim::start(|c| c.global_pool = 3).await;
    let settings = sim::settings(
        &sim,
        &[
            ("VKP_VK__ROTATE_EVERY_MIN", "5"),
            ("VKP_VK__ROTATE_EVERY_MAX", "5"),
        ],
    );
    let orchestrator = vk::connect(&settings).unwrap();
    let author = sim.named().open;
    let mut session = orchestrator.session(&job("m4"), uid(author)).await.unwrap();
    let params = sim::users_get(1);
    session.call("users.get", &params).await.unwrap();
    revoke(&sim, &sim.user_token(author)).await;
    for _ in 0..12 {
        session.call("users.get", &params).await.unwrap();
    }
    session.finish(ReleaseReason::Completed).await;
    let stats = sim.stats();
    let counters = &stats["token_manager"]["counters"];
    // 12 requests on leased tokens, rotated every 5: three leases, two rotated, one completed.
    assert_eq!(stat(counters, &["granted"]), 3, "{counters}");
    assert_eq!(
        stat(counters, &["released_by_reason", "rotated"]),
        2,
        "{counters}"
    );
    assert_eq!(
        stat(counters, &["released_by_reason", "completed"]),
        1,
        "{counters}"
    );
    assert_eq!(stat(&stats, &["token_manager", "outstanding"]), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_captcha_benches_the_token_and_the_job_goes_on() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let author = sim.named().open;
    let mut session = orchestrator.session(&job("m5"), uid(author)).await.unwrap();
    let params = sim::users_get(1);
    session.call("users.get", &params).await.unwrap();
    control(
        &sim,
        "/sim/captcha",
        json!({"rate": 1.0, "token": sim.user_token(author)}),
    )
    .await;
    session.call("users.get", &params).await.unwrap();
    assert_eq!(session.leased_count(), 1, "moved to a global token");
    session.finish(ReleaseReason::Completed).await;
    let stats = sim.stats();
    assert_eq!(
        stat(&stats, &["errors_by_code", "14"]),
        1,
        "one captcha, never solved, never retried"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn static_tokens_serve_without_a_token_manager() {
    let sim = sim::start(|_| {}).await;
    let mut vars = sim::env(&sim);
    vars.remove("TOKEN_SERVICE_URL");
    vars.insert("VK_STATIC_TOKENS".into(), sim.pool_tokens()[..2].join(","));
    let settings = vk_parser::settings::Settings::load(None, &vars).unwrap();
    let orchestrator = vk::connect(&settings).unwrap();
    let mut session = orchestrator
        .session(&job("m6"), uid(sim.named().open))
        .await
        .unwrap();
    let friends = methods::friend_lists(&mut session, &[uid(400)])
        .await
        .unwrap();
    assert!(friends[&uid(400)].is_ok());
    session.finish(ReleaseReason::Completed).await;
    let stats = sim.stats();
    assert_eq!(stat(&stats, &["token_manager", "counters", "granted"]), 0);
    assert_eq!(
        stat(&stats, &["per_token", &sim.pool_tokens()[0], "requests"]),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_static_token_is_not_handed_out_again() {
    let sim = sim::start(|_| {}).await;
    let mut vars = sim::env(&sim);
    vars.remove("TOKEN_SERVICE_URL");
    let good = sim.pool_tokens()[0].clone();
    vars.insert(
        "VK_STATIC_TOKENS".into(),
        format!("{},{good}", sim.revoked_token()),
    );
    let settings = vk_parser::settings::Settings::load(None, &vars).unwrap();
    let orchestrator = vk::connect(&settings).unwrap();
    for n in 0..3 {
        let mut session = orchestrator
            .session(&job(&format!("s{n}")), uid(1))
            .await
            .unwrap();
        session.call("users.get", &sim::users_get(1)).await.unwrap();
        session.finish(ReleaseReason::Completed).await;
    }
    let stats = sim.stats();
    assert_eq!(
        stat(&stats, &["per_token", sim.revoked_token(), "requests"]),
        1,
        "tried once, then retired"
    );
    assert_eq!(stat(&stats, &["per_token", &good, "requests"]), 3);
}
