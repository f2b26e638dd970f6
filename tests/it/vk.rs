//! The VK client against vk-sim over real HTTP: pacing, token orchestration, execute packing,
//! faults, proxies, and what reaches the logs.

use std::collections::HashSet;

use serde_json::json;
use vk_parser::events::FailureReason;
use vk_parser::ids::VkUserId;
use vk_parser::secret::Secret;
use vk_parser::vk::execute::{run_calls, Call};
use vk_parser::vk::methods::{self, FRIENDS_PAGE};
use vk_parser::vk::tokens::{ProxyRoute, ReleaseReason, Token, TokenOrigin};
use vk_parser::vk::{self, VkError};

use crate::support::sim::{self, control, job, revoke, stat, truth, uid};
use crate::support::wait::within;

fn static_token(raw: &str) -> Token {
    Token::new(Secret::new(raw), None, TokenOrigin::Static(0))
}

/// Sends `per_task` cheap requests from each of `tasks` tasks, spread over `tokens`.
async fn hammer(
    client: &vk::client::VkClient,
    tokens: &[Token],
    tasks: usize,
    per_task: usize,
) -> usize {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let client = client.clone();
        let token = tokens[t % tokens.len()].clone();
        handles.push(tokio::spawn(async move {
            let mut ok = 0;
            for _ in 0..per_task {
                if client
                    .call(&token, "utils.getServerTime", &Vec::new())
                    .await
                    .is_ok()
                {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for h in handles {
        ok += h.await.unwrap();
    }
    ok
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_tasks_sharing_a_token_never_draw_error_6() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let token = static_token(&sim.pool_tokens()[0]);
    let ok = hammer(orchestrator.client(), &[token], 50, 2).await;
    let stats = sim.stats();
    assert_eq!(ok, 100);
    assert_eq!(stat(&stats, &["rate_limit_violations"]), 0, "{stats:#}");
    assert_eq!(stat(&stats, &["requests"]), 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn five_tokens_pace_independently() {
    let sim = sim::start(|c| c.global_pool = 5).await;
    let orchestrator = sim::connect(&sim);
    let tokens: Vec<Token> = sim.pool_tokens().iter().map(|t| static_token(t)).collect();
    assert_eq!(tokens.len(), 5);
    let ok = hammer(orchestrator.client(), &tokens, 50, 2).await;
    let stats = sim.stats();
    assert_eq!(ok, 100);
    assert_eq!(stat(&stats, &["rate_limit_violations"]), 0, "{stats:#}");
    for t in sim.pool_tokens() {
        assert_eq!(
            stat(&stats, &["per_token", t, "requests"]),
            20,
            "each token carries a fifth"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_author_token_dead_on_the_first_request_means_reconnect() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let author = sim.named().open;
    revoke(&sim, &sim.user_token(author)).await;
    let mut session = orchestrator.session(&job("j1"), uid(author)).await.unwrap();
    let err = session
        .call("users.get", &sim::users_get(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            VkError::NoToken {
                reason: FailureReason::VkReconnectRequired,
                ..
            }
        ),
        "{err}"
    );
    session.finish(ReleaseReason::JobFailed).await;
    assert_eq!(
        stat(&sim.stats(), &["token_manager", "counters", "granted"]),
        0,
        "no global token for a dead author"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mid_job_ban_moves_to_a_global_token_and_releases_it() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let author = sim.named().open;
    let mut session = orchestrator.session(&job("j2"), uid(author)).await.unwrap();
    let params = sim::users_get(author);
    session.call("users.get", &params).await.unwrap();
    control(
        &sim,
        "/sim/tokens/ban",
        json!({"token": sim.user_token(author)}),
    )
    .await;
    let answer = session.call("users.get", &params).await.unwrap();
    assert_eq!(answer.response[0]["id"], author);
    assert_eq!(session.leased_count(), 1);
    session.finish(ReleaseReason::Completed).await;
    let stats = sim.stats();
    assert_eq!(stat(&stats, &["token_manager", "counters", "granted"]), 1);
    assert_eq!(
        stat(
            &stats,
            &[
                "token_manager",
                "counters",
                "released_by_reason",
                "completed"
            ]
        ),
        1
    );
    assert_eq!(stat(&stats, &["token_manager", "outstanding"]), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_pool_fails_with_global_pool_exhausted() {
    let sim = sim::start(|c| c.global_pool = 0).await;
    let orchestrator = sim::connect(&sim);
    let author = sim.named().open;
    let mut session = orchestrator.session(&job("j3"), uid(author)).await.unwrap();
    let params = sim::users_get(author);
    session.call("users.get", &params).await.unwrap();
    revoke(&sim, &sim.user_token(author)).await;
    let err = session.call("users.get", &params).await.unwrap_err();
    assert_eq!(
        err.failure_reason(),
        FailureReason::VkGlobalPoolExhausted,
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_are_released_when_a_job_is_cancelled() {
    let sim = sim::start(|c| c.global_pool = 2).await;
    // No user token: the static path is not used here; revoke the author's so the job leases.
    let orchestrator = sim::connect(&sim);
    let author = sim.named().open;
    let mut session = orchestrator.session(&job("j4"), uid(author)).await.unwrap();
    let params = sim::users_get(author);
    session.call("users.get", &params).await.unwrap();
    revoke(&sim, &sim.user_token(author)).await;
    session.call("users.get", &params).await.unwrap();
    assert_eq!(stat(&sim.stats(), &["token_manager", "outstanding"]), 1);
    // A job cancelled mid-flight: the session is dropped without finish().
    let task = tokio::spawn(async move {
        let ids: Vec<(String, String)> = vec![("user_ids".into(), "1".into())];
        loop {
            let _ = session.call("users.get", &ids).await;
        }
    });
    // Let it run a while on purpose, so that it is cut off in the middle of its calls.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    task.abort();
    let _ = task.await;
    let released = within(std::time::Duration::from_secs(10), async || {
        (stat(&sim.stats(), &["token_manager", "outstanding"]) == 0).then_some(())
    })
    .await;
    assert!(released.is_some(), "lease not released: {:#}", sim.stats());
    let stats = sim.stats();
    assert_eq!(
        stat(
            &stats,
            &[
                "token_manager",
                "counters",
                "released_by_reason",
                "cancelled"
            ]
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn execute_packs_25_calls_and_attributes_failures_to_the_right_ids() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let named = sim.named();
    let author = named.open;
    let mut session = orchestrator.session(&job("j5"), uid(author)).await.unwrap();
    // 50 users: ordinary ones (some closed) with a deleted, a banned and a closed one added.
    let mut users: Vec<u32> = (100..147).collect();
    users.extend([named.deleted, named.banned, named.closed]);
    let ids: Vec<VkUserId> = users.iter().map(|&u| uid(u)).collect();
    let lists = methods::friend_lists(&mut session, &ids).await.unwrap();
    let batch = session.batch_stats();
    session.finish(ReleaseReason::Completed).await;

    assert_eq!(batch.executes, 2, "{batch:?}");
    assert_eq!(batch.packed_calls, 50);
    assert_eq!(
        batch.direct_calls, 0,
        "every false slot attributed: {batch:?}"
    );
    let truth = truth(&sim, &users).await;
    for &u in &users {
        let got = &lists[&uid(u)];
        let info = &truth["users"][u.to_string()];
        if !info["deactivated"].is_null() {
            // VK answers friends.get of a deactivated user with 15 "user deactivated".
            let error = got.as_ref().unwrap_err();
            assert!(error.is_missing_target(), "user {u}: {error:?}");
        } else if got.is_err() {
            // Only a closed profile the author is no friend of may be refused, and with 30.
            assert_eq!(info["is_closed"], true, "user {u}");
            assert_eq!(got.as_ref().unwrap_err().error_code, 30, "user {u}");
        } else {
            let want: HashSet<i64> = info["friends"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            let have: HashSet<i64> = got.as_ref().unwrap().iter().copied().collect();
            assert_eq!(have, want, "friends of {u}");
        }
    }
    assert_eq!(
        lists[&uid(named.closed)].as_ref().unwrap_err().error_code,
        30
    );
    let stats = sim.stats();
    assert_eq!(stat(&stats, &["execute_calls"]), 2);
    assert_eq!(stat(&stats, &["inner_calls"]), 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_with_more_than_5000_friends_is_paged_completely() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let hub = sim.named().hub;
    let mut session = orchestrator
        .session(&job("j6"), uid(sim.named().open))
        .await
        .unwrap();
    let lists = methods::friend_lists(&mut session, &[uid(hub)])
        .await
        .unwrap();
    session.finish(ReleaseReason::Completed).await;
    let friends = lists[&uid(hub)].as_ref().unwrap();
    let truth = truth(&sim, &[hub]).await;
    let want = truth["users"][hub.to_string()]["friends"]
        .as_array()
        .unwrap()
        .len();
    assert!(want > FRIENDS_PAGE as usize, "the hub has {want} friends");
    assert_eq!(friends.len(), want);
    assert_eq!(
        friends.iter().collect::<HashSet<_>>().len(),
        want,
        "no page twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_too_big_response_is_split_until_it_fits() {
    // 2 KB responses: 25 friend lists do not fit in one execute, nor in half of one.
    let sim = sim::start(|c| c.execute_max_response_bytes = 2 * 1024).await;
    let orchestrator = sim::connect(&sim);
    let mut session = orchestrator
        .session(&job("j7"), uid(sim.named().open))
        .await
        .unwrap();
    let users: Vec<u32> = (200..225).collect();
    let ids: Vec<VkUserId> = users.iter().map(|&u| uid(u)).collect();
    let lists = methods::friend_lists(&mut session, &ids).await.unwrap();
    let batch = session.batch_stats();
    session.finish(ReleaseReason::Completed).await;
    assert!(batch.splits > 0, "{batch:?}");
    let truth = truth(&sim, &users).await;
    for &u in &users {
        let info = &truth["users"][u.to_string()];
        match &lists[&uid(u)] {
            Ok(friends) => assert_eq!(
                friends.len(),
                info["friends"].as_array().unwrap().len(),
                "friends of {u}"
            ),
            Err(e) => assert!(
                e.error_code == 30 && info["is_closed"] == true || e.error_code == 18,
                "user {u}: {e:?}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_storm_changes_nothing_in_the_results() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let users: Vec<u32> = (300..700).collect();
    let ids: Vec<VkUserId> = users.iter().map(|&u| uid(u)).collect();
    let author = uid(sim.named().open);

    let mut session = orchestrator.session(&job("calm"), author).await.unwrap();
    let calm = methods::friend_lists(&mut session, &ids).await.unwrap();
    session.finish(ReleaseReason::Completed).await;

    control(
        &sim,
        "/sim/faults",
        json!({"global": {"error10": 0.15, "http500": 0.1, "http503": 0.1, "truncated": 0.1, "invalid_json": 0.05, "drop": 0.05}}),
    )
    .await;
    let mut session = orchestrator.session(&job("storm"), author).await.unwrap();
    let stormy = methods::friend_lists(&mut session, &ids).await.unwrap();
    session.finish(ReleaseReason::Completed).await;
    assert_eq!(stormy, calm);
    let stats = sim.stats();
    assert!(
        stats["faults"].as_object().is_some_and(|f| !f.is_empty()),
        "faults were injected: {stats:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ip_bound_token_fails_directly_and_works_through_the_proxy() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let client = orchestrator.client();
    let params = sim::users_get(1);
    let direct = static_token(sim.ip_bound_token());
    let err = client
        .call(&direct, "users.get", &params)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(5));
    assert!(err.to_string().contains("another ip"), "{err}");
    let proxied = Token::new(
        Secret::new(sim.ip_bound_token()),
        Some(ProxyRoute {
            url: url::Url::parse(sim.proxy_url()).unwrap(),
            key: Secret::new(sim.proxy_key()),
        }),
        TokenOrigin::Static(0),
    );
    client.call(&proxied, "users.get", &params).await.unwrap();
    assert_eq!(stat(&sim.stats(), &["proxy_forwarded"]), 1);
    // A wrong proxy key is refused by the proxy.
    let wrong = Token::new(
        Secret::new(sim.ip_bound_token()),
        Some(ProxyRoute {
            url: url::Url::parse(sim.proxy_url()).unwrap(),
            key: Secret::new("not-the-key"),
        }),
        TokenOrigin::Static(0),
    );
    let err = client.call(&wrong, "users.get", &params).await.unwrap_err();
    assert!(matches!(err, VkError::Http { status: 407, .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn vk_s_2025_host_is_the_default_and_both_hosts_work_through_the_proxy() {
    let sim = sim::start(|_| {}).await;
    let defaults = vk_parser::settings::Settings::load(None, &Default::default()).unwrap();
    assert_eq!(defaults.vk.api_base_url.as_str(), "https://api.vk.ru/");
    let proxied = Token::new(
        Secret::new(sim.ip_bound_token()),
        Some(ProxyRoute {
            url: url::Url::parse(sim.proxy_url()).unwrap(),
            key: Secret::new(sim.proxy_key()),
        }),
        TokenOrigin::Static(0),
    );
    // No machine here reaches VK: the proxy is the only way to either host, which it names by
    // X-Target-Host (the base URL's host).
    for base in ["https://api.vk.ru", "https://api.vk.com"] {
        let settings = sim::settings(&sim, &[("VK_API_BASE_URL", base)]);
        let orchestrator = vk_parser::vk::connect(&settings).unwrap();
        orchestrator
            .client()
            .call(&proxied, "users.get", &sim::users_get(1))
            .await
            .unwrap_or_else(|e| panic!("{base}: {e}"));
    }
    assert_eq!(stat(&sim.stats(), &["proxy_forwarded"]), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn screen_names_resolve_and_unknown_ones_say_so() {
    use vk_parser::events::SeedRef;
    use vk_parser::vk::resolve::{Resolution, Resolver};
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let named = sim.named();
    let truth = truth(&sim, &[named.open]).await;
    let screen_name = truth["users"][named.open.to_string()]["screen_name"]
        .as_str()
        .map(str::to_owned);
    let mut seeds = vec![
        SeedRef::Id(uid(5)),
        SeedRef::ScreenName("no_such_name_here".into()),
    ];
    if let Some(name) = &screen_name {
        seeds.push(SeedRef::ScreenName(name.clone()));
    }
    let resolver = Resolver::new();
    let mut session = orchestrator
        .session(&job("j8"), uid(named.open))
        .await
        .unwrap();
    let got = resolver.resolve(&mut session, &seeds).await.unwrap();
    session.finish(ReleaseReason::Completed).await;
    assert_eq!(got[0], Resolution::User(uid(5)));
    assert_eq!(got[1], Resolution::NotFound);
    if screen_name.is_some() {
        assert_eq!(got[2], Resolution::User(uid(named.open)));
    }
}

/// A campaign's communities resolve with the seeds' cache: ids as they are, a community's
/// screen name to its id, a user's name to a user (not a community), an unknown name to none.
#[tokio::test(flavor = "multi_thread")]
async fn community_names_resolve_to_communities() {
    use vk_parser::events::CommunityRef;
    use vk_parser::ids::GroupId;
    use vk_parser::vk::resolve::{Resolution, Resolver};
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let named = sim.named();
    let communities = sim.named_communities();
    let named_truth: serde_json::Value = reqwest::get(format!("{}/sim/truth/named", sim.api_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let community_name = named_truth["communities"]["screen_name"]["screen_name"]
        .as_str()
        .expect("the named community has a screen name")
        .to_owned();
    let user_name = truth(&sim, &[named.open]).await["users"][named.open.to_string()]
        ["screen_name"]
        .as_str()
        .map(str::to_owned);
    let mut groups = vec![
        CommunityRef::parse(&format!("club{}", communities.suggest)).unwrap(),
        CommunityRef::parse(&format!("https://vk.com/{community_name}")).unwrap(),
        CommunityRef::parse("no_such_community_here").unwrap(),
    ];
    if let Some(name) = &user_name {
        groups.push(CommunityRef::ScreenName(name.clone()));
    }
    let resolver = Resolver::new();
    let mut session = orchestrator
        .session(&job("j9"), uid(named.open))
        .await
        .unwrap();
    let got = resolver
        .resolve_communities(&mut session, &groups)
        .await
        .unwrap();
    session.finish(ReleaseReason::Completed).await;
    let group = |id: u32| Resolution::Community(GroupId::new(i64::from(id)).unwrap());
    assert_eq!(got[0], group(communities.suggest));
    assert_eq!(got[1], group(communities.screen_name));
    assert_eq!(got[2], Resolution::NotFound);
    if user_name.is_some() {
        assert_eq!(
            got[3],
            Resolution::User(uid(named.open)),
            "a user is no community"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_calls_never_wastes_a_slot() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let mut session = orchestrator
        .session(&job("j9"), uid(sim.named().open))
        .await
        .unwrap();
    let calls: Vec<Call> = (1..=60)
        .map(|i| Call::new("users.get", json!({"user_ids": i.to_string()})))
        .collect();
    let results = run_calls(&mut session, &calls).await.unwrap();
    let batch = session.batch_stats();
    session.finish(ReleaseReason::Completed).await;
    assert_eq!(results.len(), 60);
    // ceil(60 / 25) = 3 requests, carrying 25, 25 and 10 calls.
    assert_eq!((batch.executes, batch.packed_calls), (3, 60));
    assert_eq!(stat(&sim.stats(), &["requests"]), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn decoys_take_one_slot_of_every_nth_execute_when_enabled() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = vk::connect(&sim::settings(&sim, &[("VKP_VK__DECOY_EVERY", "2")])).unwrap();
    let mut session = orchestrator
        .session(&job("j10"), uid(sim.named().open))
        .await
        .unwrap();
    let calls: Vec<Call> = (1..=75)
        .map(|i| Call::new("users.get", json!({"user_ids": i.to_string()})))
        .collect();
    let results = run_calls(&mut session, &calls).await.unwrap();
    let batch = session.batch_stats();
    session.finish(ReleaseReason::Completed).await;
    assert!(results.iter().all(Result::is_ok));
    // Executes 1 and 3 carry 25 real calls, execute 2 carries 24 and the decoy; the last call
    // goes alone as a direct request (a lone call never carries a decoy).
    assert_eq!(batch.decoy_calls, 1, "{batch:?}");
    assert_eq!(batch.packed_calls + batch.direct_calls, 75, "{batch:?}");
    let stats = sim.stats();
    assert_eq!(
        stat(&stats, &["inner_by_method", "utils.getServerTime"]),
        1,
        "{stats:#}"
    );
}

/// A job that meets every kind of token event, logged at trace level in production format:
/// no token, proxy key or API key appears whole in the logs, the errors or the Debug output.
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_logs_or_errors() {
    let logs = crate::support::logs::captured();

    let sim = sim::start(|_| {}).await;
    let settings = sim::settings(&sim, &[]);
    let orchestrator = vk::connect(&settings).unwrap();
    let author = sim.named().open;
    let mut seen_errors = Vec::new();
    let mut session = orchestrator
        .session(&job("secrets"), uid(author))
        .await
        .unwrap();
    let params = sim::users_get(author);
    session.call("users.get", &params).await.unwrap();
    // A private profile, an invalid call, then the author's token dies: move to the pool.
    let closed = vec![("user_id".to_owned(), sim.named().closed.to_string())];
    seen_errors.push(
        session
            .call("friends.get", &closed)
            .await
            .unwrap_err()
            .to_string(),
    );
    revoke(&sim, &sim.user_token(author)).await;
    session.call("users.get", &params).await.unwrap();
    seen_errors.push(format!("{session:?} {orchestrator:?} {settings:?}"));
    session.finish(ReleaseReason::Completed).await;
    // A direct call with a revoked token and one through a proxy with a wrong key.
    let client = orchestrator.client();
    seen_errors.push(
        client
            .call(&static_token(sim.revoked_token()), "users.get", &params)
            .await
            .unwrap_err()
            .to_string(),
    );
    let wrong = Token::new(
        Secret::new(sim.ip_bound_token()),
        Some(ProxyRoute {
            url: url::Url::parse(sim.proxy_url()).unwrap(),
            key: Secret::new("wrong-proxy-key-123"),
        }),
        TokenOrigin::Static(0),
    );
    seen_errors.push(
        client
            .call(&wrong, "users.get", &params)
            .await
            .unwrap_err()
            .to_string(),
    );

    // The capture holds every test's logs since it was installed: all the better.
    let text = logs.text() + &seen_errors.join("\n");
    assert!(text.contains("vk request"), "requests were logged: {text}");
    let mut secrets: Vec<String> = sim.pool_tokens().to_vec();
    secrets.extend([
        sim.user_token(author),
        sim.revoked_token().to_owned(),
        sim.ip_bound_token().to_owned(),
        sim.manager_api_key().to_owned(),
        sim.proxy_key().to_owned(),
        "wrong-proxy-key-123".to_owned(),
    ]);
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret leaked: …{}",
            &secret[secret.len() - 4..]
        );
    }
}

/// The lease journal: the leases of a process that stopped heartbeating (killed) are released
/// by a survivor; a live holder's leases are left alone; a normal release forgets its record.
#[tokio::test(flavor = "multi_thread")]
async fn a_survivor_releases_the_leases_of_a_dead_process() {
    use std::sync::Arc;
    use std::time::Duration;
    use vk_parser::vk::lease_journal::{JournalSettings, LeaseJournal};
    use vk_parser::vk::tokens::{TokenManager, TokenSource};

    let sim = sim::start(|c| c.global_pool = 6).await;
    let redis = crate::support::redis_server::RedisServer::start();
    let url = redis.url();
    let settings = sim::settings(&sim, &[("REDIS_URL", url.as_str())]);
    let journal = |holder: &str| {
        let manager = TokenManager::new(
            settings.tokens.service_url.clone().unwrap(),
            settings.tokens.service_api_key.clone(),
            Duration::from_secs(5),
        )
        .unwrap();
        LeaseJournal::new(
            Arc::new(manager),
            vk_parser::redis_conn::RedisTarget::from_settings(&settings.redis).unwrap(),
            JournalSettings {
                key_prefix: "vkp".to_owned(),
                holder: holder.to_owned(),
                ttl: Duration::from_millis(300),
            },
        )
        .unwrap()
    };
    let outstanding = || stat(&sim.stats(), &["token_manager", "outstanding"]);
    let (dead, alive) = (journal("dead"), journal("alive"));
    let _d1 = dead.lease(&job("d1")).await.unwrap().unwrap();
    let _d2 = dead.lease(&job("d2")).await.unwrap().unwrap();
    let a1 = alive.lease(&job("a1")).await.unwrap().unwrap();
    assert_eq!(outstanding(), 3);
    // While "dead" is still within its TTL, nothing of it is touched.
    assert_eq!(alive.heartbeat().await.unwrap(), 0);
    // "dead" never heartbeats again; "alive" does, and outlives it: once dead's TTL has run
    // out, one of alive's heartbeats releases what dead held.
    within(Duration::from_secs(20), async || {
        alive.heartbeat().await.unwrap();
        (outstanding() == 1).then_some(())
    })
    .await;
    assert_eq!(
        outstanding(),
        1,
        "the dead holder's two leases are released"
    );
    assert_eq!(
        stat(
            &sim.stats(),
            &[
                "token_manager",
                "counters",
                "released_by_reason",
                "job_failed"
            ]
        ),
        2
    );
    alive.release(&a1, ReleaseReason::Completed).await.unwrap();
    assert_eq!(outstanding(), 0);
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let left: i64 = redis::cmd("HLEN")
        .arg("vkp:leases")
        .query(&mut conn)
        .unwrap();
    assert_eq!(left, 0, "every record forgotten");
}

/// Friend lists of 500 users on the author's token, against a VK whose answers take 2 s (400 ms
/// at 5x), with `in_flight` executes allowed at once; returns the sim's stats.
async fn lists_under_latency(in_flight: &str) -> serde_json::Value {
    // 5x rather than the tests' 20x: requests in flight reach VK with the loopback's own
    // jitter, and at 20x a millisecond of it is 20 ms of VK time against the 87 ms between the
    // service's 420 ms spacing and VK's 333 ms floor.
    let sim = sim::start(|c| {
        c.time_scale = 5.0;
        c.latency_base_ms = 2000.0;
        c.global_pool = 1;
    })
    .await;
    let settings = sim::settings(
        &sim,
        &[
            ("VK_REQUEST_INTERVAL", "84ms"),
            ("VKP_VK__IN_FLIGHT_PER_TOKEN", in_flight),
            ("VKP_VK__WARMUP_REQUESTS", "0"),
        ],
    );
    let orchestrator = vk::connect(&settings).unwrap();
    let mut session = orchestrator.session(&job("lat"), uid(6)).await.unwrap();
    let users: Vec<VkUserId> = (100..600).map(uid).collect();
    let lists = methods::friend_lists(&mut session, &users).await.unwrap();
    assert_eq!(lists.len(), 500);
    let truth = truth(&sim, &(100..600).collect::<Vec<_>>()).await;
    for u in 100..600u32 {
        if let Ok(list) = &lists[&uid(u)] {
            let want: Vec<i64> = sim::ids_of(&truth["users"][u.to_string()]["friends"]);
            assert_eq!(list, &want, "friends of {u}");
        }
    }
    session.finish(ReleaseReason::Completed).await;
    sim.stats()
}

#[tokio::test(flavor = "multi_thread")]
async fn executes_stay_in_flight_together_under_latency_and_never_break_the_rate() {
    let overlapped = lists_under_latency("4").await;
    let sequential = lists_under_latency("1").await;
    for stats in [&overlapped, &sequential] {
        assert_eq!(stat(stats, &["rate_limit_violations"]), 0, "{stats}");
    }
    let most = |stats: &serde_json::Value| {
        stats["per_token"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|t| t["max_in_flight"].as_u64())
            .max()
            .unwrap()
    };
    // 400 ms answers against an 84 ms spacing: with room for 4, 4 are out at once.
    assert_eq!(most(&overlapped), 4, "{overlapped}");
    assert_eq!(most(&sequential), 1, "{sequential}");
}

/// A sender session (a campaign's) never moves to a leased token: a rotation asked for by an
/// error burst, empty lists or a retry pass does nothing, and its calls stay on the sender's.
#[tokio::test(flavor = "multi_thread")]
async fn a_sender_session_never_leaves_the_senders_token() {
    let sim = sim::start(|_| {}).await;
    let orchestrator = sim::connect(&sim);
    let sender = sim.named_communities().admin_user;
    let mut session = orchestrator
        .sender_session(&job("j-sender"), uid(sender))
        .await
        .unwrap();
    assert!(!session.rotate_now("a test").await, "no rotation");
    // Every execute carries a failed call (a closed profile's friends): the error bursts
    // that move a report to a fresh token must leave a campaign where it is.
    let private = sim.named().closed;
    for _ in 0..6 {
        let calls: Vec<Call> = (0..5)
            .map(|_| methods::friends_get(uid(private), 0))
            .chain([Call::new("users.get", json!({"user_ids": "1"}))])
            .collect();
        run_calls(&mut session, &calls).await.unwrap();
    }
    assert_eq!(session.leased_count(), 0, "no global token leased");
    assert!(session.rotations().is_empty(), "{:?}", session.rotations());
    session.finish(ReleaseReason::Completed).await;
    assert_eq!(
        stat(&sim.stats(), &["token_manager", "counters", "granted"]),
        0
    );
}

/// A name whose resolve call failed inside its execute (VK's error 10 on a third of the inner
/// calls) is asked again on its own by the execute layer, never taken for a free name: every
/// community name resolves.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_resolve_call_is_retried_not_taken_for_a_free_name() {
    use vk_parser::events::CommunityRef;
    use vk_parser::ids::GroupId;
    use vk_parser::vk::resolve::{Resolution, Resolver};
    let sim = sim::start(|c| c.inner_fault_rate = 0.3).await;
    let graph = sim.graph();
    let named: Vec<(String, u32)> = (1..=40u32)
        .filter_map(|gid| Some((graph.group(gid)?.screen_name.clone(), gid)))
        .filter(|(name, gid)| *name != format!("club{gid}") && *name != format!("public{gid}"))
        .collect();
    let refs: Vec<CommunityRef> = named
        .iter()
        .map(|(name, _)| CommunityRef::ScreenName(name.clone()))
        .collect();
    assert!(refs.len() >= 10, "{} named communities", refs.len());
    let orchestrator = sim::connect(&sim);
    let mut session = orchestrator
        .session(&job("j-resolve"), uid(sim.named().open))
        .await
        .unwrap();
    let got = Resolver::new()
        .resolve_communities(&mut session, &refs)
        .await
        .unwrap();
    session.finish(ReleaseReason::Completed).await;
    for ((name, gid), resolution) in named.iter().zip(&got) {
        assert_eq!(
            *resolution,
            Resolution::Community(GroupId::new(i64::from(*gid)).unwrap()),
            "{name}"
        );
    }
    assert!(
        stat(&sim.stats(), &["inner_faults"]) > 0,
        "faults were drawn"
    );
}
