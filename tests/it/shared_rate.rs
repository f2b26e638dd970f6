//! The shared (Redis) rate limiter: its script against a real redis-server, what a call does
//! while Redis is down, and two replicas sharing one token against vk-sim's limit.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use vk_parser::app::App;
use vk_parser::events::FailureReason;
use vk_parser::secret::Secret;
use vk_parser::settings::RedisUrl;
use vk_parser::vk::client::{RetryPolicy, VkClient};
use vk_parser::vk::error::Action;
use vk_parser::vk::http::VkHttp;
use vk_parser::vk::rate::{PaceSettings, RpsGuard, TokenKey};
use vk_parser::vk::shared_rate::{SharedLimiter, SharedRateError};
use vk_parser::vk::tokens::{Token, TokenOrigin};
use vk_parser::vk::VkError;
use vk_sim::SimHandle;

use crate::support::backend::{Streams, GROUP};
use crate::support::redis_server::RedisServer;
use crate::support::sim::{self, stat};
use crate::support::wait::within;

const MINUTE: Duration = Duration::from_secs(60);

/// The two-replica test runs the simulator only 5x faster than VK (the other tests: 20x), so
/// VK's spacing of 420 ms becomes 84 ms and the room the sim's one-second window leaves beyond
/// three spacings (1260 ms against 1000) is 52 ms rather than 13: two apps, the simulator and
/// Redis share a small, busy machine here, and a request the scheduler delays by more than that
/// room would read as the limiter's fault. It still takes seconds.
const TWO_REPLICA_TIME_SCALE: f64 = 5.0;

fn limiter(redis: &RedisServer) -> SharedLimiter {
    SharedLimiter::new(&RedisUrl::parse(&redis.url()).unwrap(), "vkp").unwrap()
}

async fn conn(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn reservations_queue_one_spacing_apart_across_limiters_under_a_hashed_key() {
    let redis = RedisServer::start();
    let (replica_a, replica_b) = (limiter(&redis), limiter(&redis));
    let secret = "vk1.a.user-token-that-must-not-reach-redis";
    let token = TokenKey::of(secret);
    let spacing = 10 * MINUTE;

    // Spacings of ten minutes: the calls themselves take milliseconds, so each wait is one more
    // spacing minus that, whichever replica asks.
    let mut waits = Vec::new();
    for limiter in [&replica_a, &replica_b, &replica_a, &replica_b] {
        waits.push(limiter.reserve(token, spacing).await.unwrap());
    }
    assert_eq!(waits[0], Duration::ZERO);
    for (k, wait) in waits.iter().enumerate().skip(1) {
        let due = spacing * k as u32;
        assert!(*wait <= due && *wait > due - MINUTE, "wait {k}: {wait:?}");
    }
    // Another token has its own budget.
    let other = TokenKey::of("vk1.a.another-token");
    assert_eq!(
        replica_b.reserve(other, spacing).await.unwrap(),
        Duration::ZERO
    );

    let mut conn = conn(&redis).await;
    let keys: BTreeSet<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let want: BTreeSet<String> = [replica_a.key(token), replica_a.key(other)].into();
    assert_eq!(keys, want);
    assert!(keys.iter().all(|k| !k.contains("user-token")));
    // The key lives until just after its last reserved slot: four spacings, plus a second.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(replica_a.key(token))
        .query_async(&mut conn)
        .await
        .unwrap();
    let ttl = Duration::from_millis(ttl as u64);
    assert!(ttl > spacing * 4 - MINUTE && ttl <= spacing * 4 + Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_slot_far_beyond_any_real_queue_is_a_clock_step_and_is_reset() {
    let redis = RedisServer::start();
    let limiter = limiter(&redis);
    let token = TokenKey::of("token-a");
    let mut conn = conn(&redis).await;
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let two_hours_ahead = secs * 1_000_000 + micros + 2 * 3600 * 1_000_000;
    let _: () = redis::cmd("SET")
        .arg(limiter.key(token))
        .arg(two_hours_ahead)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        limiter.reserve(token, MINUTE).await.unwrap(),
        Duration::ZERO
    );
    // A zero spacing (an unlimited rate) never waits.
    for _ in 0..3 {
        assert_eq!(
            limiter
                .reserve(TokenKey::of("token-b"), Duration::ZERO)
                .await
                .unwrap(),
            Duration::ZERO
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn while_redis_is_down_calls_fail_retryably_without_reaching_vk_and_recover_after() {
    let sim = sim::start(|_| {}).await;
    let mut redis = RedisServer::start();
    let settings = sim::settings(&sim, &[]);
    let http = VkHttp::new(
        settings.vk.api_base_url.clone(),
        settings.vk.api_version.clone(),
        settings.vk.request_timeout,
    )
    .unwrap();
    let retry = RetryPolicy {
        attempts: 2,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
    };
    let metrics = std::sync::Arc::new(vk_parser::metrics::Metrics::new());
    let client = VkClient::new(http, RpsGuard::new(PaceSettings::default()), retry)
        .with_shared_limiter(limiter(&redis))
        .with_metrics(metrics.clone());
    let token = Token::new(
        Secret::new(sim.pool_tokens()[0].clone()),
        None,
        TokenOrigin::Static(0),
    );
    let params = sim::users_get(1);
    let call = || client.call(&token, "users.get", &params);

    // Down before the first use (the limiter connects lazily), then down after it had connected.
    for round in 0..2 {
        redis.stop();
        let err = call().await.unwrap_err();
        let VkError::RateLimiter { source, .. } = &err else {
            panic!("round {round}: {err}");
        };
        assert!(
            matches!(
                source,
                SharedRateError::Redis(_) | SharedRateError::Timeout(_)
            ),
            "{source}"
        );
        assert!(matches!(err.action(), Action::Retry(_)), "{err}");
        assert_eq!(err.failure_reason(), FailureReason::NetworkError);
        assert!(!err.to_string().contains(&sim.pool_tokens()[0]));
        redis.restart();
        call().await.expect("redis is back");
    }
    let stats = sim.stats();
    assert_eq!(
        stat(&stats, &["requests"]),
        2,
        "nothing was sent unpaced while Redis was down: {stats:#}"
    );
    assert_eq!(
        client
            .stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // Two attempts in each of two rounds were held back: counted, and not as VK requests.
    let rendered = metrics.render();
    assert!(
        rendered.contains("\nvkp_rate_limiter_errors_total 4\n"),
        "{rendered}"
    );
    assert!(rendered.contains(r#"vkp_vk_requests_total{method="users.get",outcome="ok"} 2"#));
}

/// One replica: the app on the shared Redis, its own storage folder and consumer name.
struct Replica {
    app_task: tokio::task::JoinHandle<()>,
    parser: std::sync::Arc<vk_parser::parser::ReportParser>,
    _data: tempfile::TempDir,
}

/// Builds one replica of the service using only `token`, paced by `limiter`.
async fn replica(
    sim: &SimHandle,
    redis: &RedisServer,
    name: &str,
    token: &str,
    limiter: &str,
) -> (App, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let vars = replica_env(sim, redis, name, token, limiter, data.path());
    let settings = vk_parser::settings::Settings::load(None, &vars).unwrap();
    (App::build(settings).await.expect("app builds"), data)
}

/// The environment of one replica using only `token`, paced by `limiter`, writing to `data`.
fn replica_env(
    sim: &SimHandle,
    redis: &RedisServer,
    name: &str,
    token: &str,
    limiter: &str,
    data: &std::path::Path,
) -> std::collections::HashMap<String, String> {
    let mut vars = sim::env(sim);
    vars.remove("TOKEN_SERVICE_URL");
    vars.remove("TOKEN_SERVICE_API_KEY");
    let interval = format!("{}us", (420_000.0 / TWO_REPLICA_TIME_SCALE) as u64);
    for (k, v) in [
        ("VK_REQUEST_INTERVAL", interval.as_str()),
        ("VK_STATIC_TOKENS", token),
        ("VKP_VK__RATE_LIMITER", limiter),
        ("REDIS_URL", &redis.url()),
        ("STORAGE_URL", data.to_str().unwrap()),
        ("CONSUMER_VK_PARSER", name),
        ("VKP_OPS__LISTEN", "127.0.0.1:0"),
        ("VKP_STREAM__BLOCK", "100ms"),
        ("VKP_STREAM__PROGRESS_INTERVAL", "100ms"),
        // Each replica runs a few jobs at once, so both keep the token busy.
        ("MAX_CONCURRENT_MESSAGES", "3"),
        // Every job ends in one attempt (a failure is final), so the run always finishes.
        ("MAX_RETRIES", "1"),
    ] {
        vars.insert(k.to_owned(), v.to_owned());
    }
    vars
}

/// Publishes `jobs` stage-1 reports of two seeds each, ids `{prefix}-{n}`; returns the ids.
async fn publish_reports(
    streams: &Streams,
    prefix: &str,
    seeds: &[u32],
    jobs: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for j in 0..jobs {
        let id = format!("{prefix}-{j}");
        let payload = json!({"reportId": format!("r-{id}"), "jobId": id, "userId": 1,
            "reportType": "DEFAULT",
            "socialNetworkIds": seeds[2 * j..2 * j + 2].iter().map(|s| format!("id{s}")).collect::<Vec<_>>()});
        streams.publish("ReportCreated", &payload).await;
        ids.push(id);
    }
    ids
}

/// Open, active users with a modest friend list: quick seeds.
async fn seeds(sim: &SimHandle, count: usize) -> Vec<u32> {
    sim::pick_seeds_in(sim, 300..700, count).await
}

/// How long a run's jobs may take, all together, to reach their final statuses.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// What one run of two replicas on one token did.
struct Run {
    completed: usize,
    jobs: usize,
    requests: u64,
    violations: u64,
    per_replica: [u64; 2],
}

/// Two replicas in one consumer group, sharing ONE static token, run `jobs` stage-1 reports
/// at once; the simulator enforces VK's 3 requests per second on that token.
async fn two_replicas_on_one_token(limiter: &str, jobs: usize) -> Run {
    // No flood control, so that error 6 is all a too-fast token gets and jobs still finish.
    let sim = sim::start(|c| {
        c.time_scale = TWO_REPLICA_TIME_SCALE;
        c.flood_threshold = 1_000_000;
    })
    .await;
    let redis = RedisServer::start();
    let token = sim.pool_tokens()[0].clone();
    let seeds = seeds(&sim, 2 * jobs).await;
    assert_eq!(seeds.len(), 2 * jobs, "enough seeds");

    let mut replicas = Vec::new();
    let mut apps = Vec::new();
    for name in ["replica-a", "replica-b"] {
        let (app, data) = replica(&sim, &redis, name, &token, limiter).await;
        let parser = app.parser().clone();
        apps.push(app);
        replicas.push((parser, data));
    }
    // Every job is on the stream before either replica reads, so both start at once.
    let streams = Streams::open(&redis.url()).await;
    let ids = publish_reports(&streams, limiter, &seeds, jobs).await;
    let stop = CancellationToken::new();
    let mut running = Vec::new();
    for (app, (parser, data)) in apps.into_iter().zip(replicas) {
        let stop = stop.clone();
        running.push(Replica {
            app_task: tokio::spawn(
                async move { app.run_until_stopped(stop).await.expect("app runs") },
            ),
            parser,
            _data: data,
        });
    }

    let finals = streams.final_statuses(&ids, RUN_DEADLINE).await;
    stop.cancel();
    let mut per_replica = [0; 2];
    for (i, replica) in running.into_iter().enumerate() {
        replica.app_task.await.unwrap();
        per_replica[i] = replica
            .parser
            .orchestrator()
            .client()
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed);
    }
    let stats = sim.stats();
    let run = Run {
        completed: finals
            .values()
            .filter(|s| s["status"] == "STAGE1_COMPLETED")
            .count(),
        jobs,
        requests: stat(&stats, &["per_token", &token, "requests"]),
        violations: stat(&stats, &["rate_limit_violations"]),
        per_replica,
    };
    println!(
        "{limiter}: {} of {} jobs completed, {} requests (replicas {:?}), {} answered error 6",
        run.completed, run.jobs, run.requests, run.per_replica, run.violations
    );
    run
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_sharing_a_token_keep_its_limit_only_with_the_redis_limiter() {
    let jobs = 12;
    let shared = two_replicas_on_one_token("redis", jobs).await;
    assert_eq!(shared.completed, jobs, "every job completes");
    assert!(
        shared.per_replica.iter().all(|&n| n > 0),
        "both replicas used the token: {:?}",
        shared.per_replica
    );
    assert_eq!(shared.violations, 0, "no error 6 with the shared limiter");

    // The same work with only each replica's own guard: together they break the token's limit.
    let local = two_replicas_on_one_token("local", jobs).await;
    assert!(local.per_replica.iter().all(|&n| n > 0));
    assert!(
        local.violations > 0,
        "two local guards on one token should overrun it (what the shared limiter prevents)"
    );
}

/// What two real `vk-parser run` processes on one token did.
struct ProcessRun {
    completed: usize,
    violations: u64,
    /// The consumers that ran jobs (from the job state records).
    owners: BTreeSet<String>,
}

/// As [`two_replicas_on_one_token`], with two real `vk-parser run` processes.
async fn two_processes_on_one_token(limiter: &str, jobs: usize) -> ProcessRun {
    let sim = sim::start(|c| {
        c.time_scale = TWO_REPLICA_TIME_SCALE;
        c.flood_threshold = 1_000_000;
    })
    .await;
    let redis = RedisServer::start();
    let token = sim.pool_tokens()[0].clone();
    let seeds = seeds(&sim, 2 * jobs).await;
    let data = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    for name in ["process-a", "process-b"] {
        let vars = replica_env(&sim, &redis, name, &token, limiter, data.path());
        children.push(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_vk-parser"))
                .arg("run")
                .env_clear()
                .envs(&vars)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("vk-parser starts"),
        );
    }
    let streams = Streams::open(&redis.url()).await;
    // The group is created at `$` when a process starts: publish once both consumers exist
    // (or after 30 s with what there is: the job owners below then tell).
    within(Duration::from_secs(30), async || {
        let groups = streams.try_groups().await;
        groups
            .is_ok_and(|g| g.iter().any(|g| g.name == GROUP && g.consumers == 2))
            .then_some(())
    })
    .await;
    let ids = publish_reports(&streams, &format!("{limiter}-p"), &seeds, jobs).await;
    let finals = streams.final_statuses(&ids, RUN_DEADLINE).await;
    let mut conn = streams.connection();
    let mut owners = BTreeSet::new();
    for id in &ids {
        let owner: Option<String> = redis::cmd("HGET")
            .arg(format!("vkp:job:{id}:stage1"))
            .arg("owner")
            .query_async(&mut conn)
            .await
            .unwrap();
        owners.extend(owner);
    }
    for child in &mut children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let run = ProcessRun {
        completed: finals
            .values()
            .filter(|s| s["status"] == "STAGE1_COMPLETED")
            .count(),
        violations: stat(&sim.stats(), &["rate_limit_violations"]),
        owners,
    };
    println!(
        "{limiter}, two processes: {} of {jobs} jobs completed by {:?}, {} answered error 6",
        run.completed, run.owners, run.violations
    );
    run
}

/// The acceptance test as written: two service processes on one token.
#[tokio::test(flavor = "multi_thread")]
async fn two_processes_sharing_a_token_keep_its_limit_only_with_the_redis_limiter() {
    let jobs = 12;
    let shared = two_processes_on_one_token("redis", jobs).await;
    assert_eq!(shared.completed, jobs, "every job completes");
    assert_eq!(
        shared.owners.len(),
        2,
        "both processes ran jobs: {:?}",
        shared.owners
    );
    assert_eq!(shared.violations, 0, "no error 6 with the shared limiter");
    let local = two_processes_on_one_token("local", jobs).await;
    assert_eq!(
        local.owners.len(),
        2,
        "both processes ran jobs: {:?}",
        local.owners
    );
    assert!(
        local.violations > 0,
        "two local guards on one token should overrun it (what the shared limiter prevents)"
    );
}
