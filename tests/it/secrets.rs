//! No secret leaves a whole job: the VK tokens (user, pool, refreshed), the proxy key, the token
//! manager's API key and the S3 secret, given distinctive values, appear nowhere in what the
//! service emits while it runs DEFAULT reports on S3 (both stages) and fails others for auth
//! reasons: every log line at every level of every crate, every entry of every Redis key it
//! writes (status, graph-worker and dead-letter streams, job records), the stored files, and the
//! Display and Debug text of the errors a test can provoke. A token's last four characters may
//! appear (logs tell tokens apart by them), and the test checks that they do, so it would notice
//! if the logs went quiet instead.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{json, Value};
use vk_parser::ids::JobId;
use vk_parser::storage::ObjectKey;

use crate::support::backend::report_created;
use crate::support::logs;
use crate::support::s3_server::S3Server;
use crate::support::service::Service;
use crate::support::sim::{self, control, pick_seeds, revoke, uid};

/// The token manager's API key.
const MANAGER_KEY: &str = "mgr-key-7Hq2Zr9Lw4XcP5";
/// The proxy key (the token manager hands it out with IP-bound user tokens).
const PROXY_KEY: &str = "proxy-key-3Vn8Tb6Jk1QsM2";
/// The S3 secret access key.
const S3_SECRET: &str = "s3-secret-9Pd4Wm2Ry7GfA6";
/// A wrong S3 secret, for the storage failure path.
const WRONG_S3_SECRET: &str = "s3-wrong-5Kx1Nc8Hv3BaE7";
/// A wrong API key, for the token manager failure path.
const WRONG_MANAGER_KEY: &str = "mgr-wrong-2Lf6Yt9Ed4UoR1";

/// Shortest run of a secret that counts as a leak: a token's last four characters may be shown,
/// anything this long taken from a secret may not.
const LEAK_WINDOW: usize = 12;

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_leaves_a_whole_job() {
    let _everything = logs::capture_everything();
    // Its own seed: token strings derive from it, so no other test's tokens look like these.
    let sim = sim::start(|c| {
        c.seed = 0x05EC_2E75;
        c.manager_api_key = MANAGER_KEY.to_owned();
        c.proxy_key = PROXY_KEY.to_owned();
    })
    .await;
    let s3 = S3Server::start_with_secret("reports", S3_SECRET).await;
    // One attempt per job: a retryable failure is final at once.
    let once = [("MAX_RETRIES", "1")];
    let service = Service::start_s3_with(&sim, &s3, S3_SECRET, &once).await;
    let people = pick_seeds(&sim, 700, 5).await;
    let (seeds, authors) = people.split_at(2);
    let named = sim.named();
    let mut errors: Vec<String> = Vec::new();

    // 1. A whole DEFAULT report on the author's IP-bound token, through the proxy.
    service
        .run_report("sec-user", "DEFAULT", seeds, named.open)
        .await;

    // 1b. A campaign with a picture on the same IP-bound token: rights, uploads (through the
    //     proxy) and posts, the poster's paths; then one whose sender's token is revoked.
    let communities = sim.named_communities();
    let storage = vk_parser::storage::open(&service_storage(&sim, &s3))
        .await
        .unwrap();
    let picture = ObjectKey::parse("uploads/sec/banner.png").unwrap();
    storage
        .put(&picture, sim::png(640, 480).into())
        .await
        .unwrap();
    let campaigns = service.streams().await.named(
        "stream:poster:vk",
        crate::support::backend::STATUS,
        "cg_vk_poster",
    );
    let campaign = |job: &str, sender: u32| {
        json!({"campaignId": job, "jobId": job, "userId": sender,
               "groups": [communities.open_wall, communities.suggest], "message": "hi",
               "attachments": [{"type": "photo", "key": picture.as_str()}]})
    };
    campaigns
        .publish(
            "SuggestPostCreated",
            &campaign("sec-post", communities.admin_user),
        )
        .await;
    let posted = campaigns.final_status("sec-post", 1).await;
    assert_eq!(posted["status"], "COMPLETED", "{posted}");

    // 1c. A community task (INTERACTIONS: walls, likes, comments, reposts) on the same
    //     IP-bound token, with a closed community that fails on its own.
    let tasks = service.streams().await.named(
        "stream:community:vk",
        crate::support::backend::STATUS,
        "cg_vk_community",
    );
    tasks
        .publish(
            "CommunityTaskCreated",
            &json!({"taskId": "sec-com", "jobId": "sec-com", "userId": named.open,
                    "kind": "INTERACTIONS",
                    "groups": [communities.busy, communities.open_wall, communities.closed]}),
        )
        .await;
    let collected = tasks.final_status("sec-com", 1).await;
    assert_eq!(
        collected["failureReason"], "VK_ACCESS_DENIED",
        "{collected}"
    );

    // 2. The same on leased pool tokens: every request on the author's token meets a captcha,
    //    so both stages move to the global pool.
    let captcha_author = authors[0];
    let captcha_token = sim.user_token(captcha_author);
    control(
        &sim,
        "/sim/captcha",
        json!({"rate": 1.0, "token": captcha_token}),
    )
    .await;
    service
        .run_report("sec-pool", "DEFAULT", seeds, captcha_author)
        .await;

    // 3. Fails: the author's token is revoked before the job (VK_RECONNECT_REQUIRED).
    let revoked_author = authors[1];
    revoke(&sim, &sim.user_token(revoked_author)).await;
    service
        .publish(
            "ReportCreated",
            report_created("sec-revoked", "DEFAULT", seeds, revoked_author),
        )
        .await;
    let failed = service.final_status("sec-revoked", 1).await;
    assert_eq!(failed["failureReason"], "VK_RECONNECT_REQUIRED", "{failed}");
    campaigns
        .publish(
            "SuggestPostCreated",
            &campaign("sec-post-revoked", revoked_author),
        )
        .await;
    let failed = campaigns.final_status("sec-post-revoked", 1).await;
    assert_eq!(failed["failureReason"], "VK_RECONNECT_REQUIRED", "{failed}");

    // 4. Fails: every pool token is revoked, and the author's meets captchas, so each leased
    //    token is refused in turn until the pool is empty.
    for token in sim.pool_tokens() {
        revoke(&sim, token).await;
    }
    let pool_author = authors[2];
    control(
        &sim,
        "/sim/captcha",
        json!({"rate": 1.0, "token": sim.user_token(pool_author)}),
    )
    .await;
    service
        .publish(
            "ReportCreated",
            report_created("sec-dead-pool", "DEFAULT", seeds, pool_author),
        )
        .await;
    let failed = service.final_status("sec-dead-pool", 1).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");

    // 5. An entry that is no event: a dead letter.
    service
        .publish("ReportCreated", json!({"reportId": "r", "jobId": "j/.."}))
        .await;

    // 6. Fails: a wrong S3 secret (STORAGE_ERROR), and a wrong token manager key.
    let wrong_s3 = Service::start_s3_with(&sim, &s3, WRONG_S3_SECRET, &once).await;
    wrong_s3
        .publish(
            "ReportCreated",
            report_created("sec-wrong-s3", "DEFAULT", seeds, named.open),
        )
        .await;
    let failed = wrong_s3.final_status("sec-wrong-s3", 1).await;
    assert_eq!(failed["failureReason"], "STORAGE_ERROR", "{failed}");
    let wrong_key = [
        ("MAX_RETRIES", "1"),
        ("TOKEN_SERVICE_API_KEY", WRONG_MANAGER_KEY),
    ];
    let wrong_manager = Service::start_s3_with(&sim, &s3, S3_SECRET, &wrong_key).await;
    wrong_manager
        .publish(
            "ReportCreated",
            report_created("sec-wrong-key", "DEFAULT", seeds, named.open),
        )
        .await;
    let failed = wrong_manager.final_status("sec-wrong-key", 1).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");

    // 7. The same failures by hand, for their Display and Debug text.
    let storage_env = |secret: &str| {
        vec![
            ("STORAGE_URL", "s3://reports".to_owned()),
            ("AWS_ENDPOINT_URL", s3.endpoint.clone()),
            (
                "AWS_ACCESS_KEY_ID",
                crate::support::s3_server::ACCESS_KEY.to_owned(),
            ),
            ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
            ("TOKEN_SERVICE_API_KEY", WRONG_MANAGER_KEY.to_owned()),
        ]
    };
    let vars = storage_env(WRONG_S3_SECRET);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let wrong = sim::settings(&sim, &pairs);
    let storage = vk_parser::storage::open(&wrong.storage).await.unwrap();
    let key = ObjectKey::parse("DEFAULT/x/secrets_stage1/probe").unwrap();
    let e = storage.put(&key, "x".into()).await.unwrap_err();
    errors.push(format!("{e} {e:?}"));
    let orchestrator = vk_parser::vk::connect(&wrong).unwrap();
    let job = JobId::parse("secrets-by-hand").unwrap();
    let e = orchestrator
        .session(&job, uid(named.open))
        .await
        .unwrap_err();
    errors.push(format!("{e} {e:?} {orchestrator:?} {wrong:?} {wrong:#?}"));
    let good = sim::settings(&sim, &[]);
    let orchestrator = vk_parser::vk::connect(&good).unwrap();
    let mut session = orchestrator
        .session(&job, uid(revoked_author))
        .await
        .unwrap();
    errors.push(format!("{session:?}"));
    let e = session
        .call("users.get", &sim::users_get(named.open))
        .await
        .unwrap_err();
    errors.push(format!("{e} {e:?} {orchestrator:?} {good:?}"));
    drop(session);

    // Everything the service wrote, once its work is drained.
    let mut written = String::new();
    for service in [&service, &wrong_s3, &wrong_manager] {
        written.push_str(&redis_dump(&service.redis.url()).await);
    }
    written.push_str(&files_text(s3.root.path()));
    let tokens = every_token(&sim).await;
    for service in [service, wrong_s3, wrong_manager] {
        service.stop().await;
    }
    let log_text = service_logs(&logs::captured().text());
    drop(_everything);

    // The capture has teeth: lines at every level, from dependencies too, and token suffixes.
    for level in ["\"TRACE\"", "\"DEBUG\"", "\"INFO\"", "\"WARN\""] {
        assert!(log_text.contains(level), "no {level} line was captured");
    }
    assert!(
        log_text
            .lines()
            .any(|l| !l.contains("\"target\":\"vk_parser") && l.contains("\"level\":\"TRACE\"")),
        "no dependency TRACE line was captured"
    );
    let suffix_of = |t: &str| format!("…{}", &t[t.len() - 4..]);
    assert!(
        sim.pool_tokens()
            .iter()
            .any(|t| log_text.contains(&suffix_of(t))),
        "the logs name leased tokens by suffix"
    );
    for stream in [
        "stream:report:status-change",
        "stream:graph-worker",
        ":dead",
    ] {
        assert!(written.contains(stream), "{stream} was dumped");
    }

    let mut secrets: Vec<String> = tokens;
    secrets.extend(
        [
            MANAGER_KEY,
            PROXY_KEY,
            S3_SECRET,
            WRONG_S3_SECRET,
            WRONG_MANAGER_KEY,
        ]
        .map(str::to_owned),
    );
    assert!(secrets.len() >= 10, "{} secrets", secrets.len());
    let windows = leak_windows(&secrets);
    for (place, text) in [
        ("logs", log_text.as_str()),
        ("redis or files", written.as_str()),
        ("errors", &errors.join("\n")),
    ] {
        if let Some((line, secret)) = find_leak(text, &windows) {
            panic!(
                "a secret (…{}) leaked in the {place}: {:.300}",
                &secret[secret.len() - 4..],
                line
            );
        }
    }
}

/// Every token the simulator ever issued: user tokens (refreshed ones too), pool and special.
/// The storage settings of the service under test (the S3 server's `reports` bucket).
fn service_storage(sim: &vk_sim::SimHandle, s3: &S3Server) -> vk_parser::settings::StorageSettings {
    let vars = [
        ("STORAGE_URL", "s3://reports".to_owned()),
        ("AWS_ENDPOINT_URL", s3.endpoint.clone()),
        (
            "AWS_ACCESS_KEY_ID",
            crate::support::s3_server::ACCESS_KEY.to_owned(),
        ),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET.to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sim::settings(sim, &pairs).storage
}

async fn every_token(sim: &vk_sim::SimHandle) -> Vec<String> {
    crate::support::sim::tokens(sim)
        .await
        .iter()
        .map(|t| t["token"].as_str().unwrap().to_owned())
        .collect()
}

/// Every key of a Redis server with its whole value, as text.
async fn redis_dump(url: &str) -> String {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut out = String::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut read = match kind.as_str() {
            "stream" => redis::cmd("XRANGE"),
            "hash" => redis::cmd("HGETALL"),
            "string" => redis::cmd("GET"),
            "list" => redis::cmd("LRANGE"),
            "set" => redis::cmd("SMEMBERS"),
            "zset" => redis::cmd("ZRANGE"),
            other => panic!("{key}: unexpected type {other}"),
        };
        read.arg(&key);
        match kind.as_str() {
            "stream" => {
                read.arg("-").arg("+");
            }
            "list" | "zset" => {
                read.arg(0).arg(-1);
            }
            _ => {}
        }
        let value: redis::Value = read.query_async(&mut conn).await.unwrap();
        out.push_str(&format!("{key} {kind} {value:?}\n"));
    }
    out
}

/// Every file under `root`, as lossy text (manifests are JSON; parquet strings are compressed,
/// but a secret written into one would show in its plain footer metadata).
fn files_text(root: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
                out.push('\n');
            }
        }
    }
    out
}

/// The captured lines minus those of the simulated VK and S3 servers (outside parties that are
/// entitled to see the secrets they check).
fn service_logs(text: &str) -> String {
    text.lines()
        .filter(|line| {
            let target = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v["target"].as_str().map(str::to_owned))
                .unwrap_or_default();
            !(target.starts_with("vk_sim") || target.starts_with("s3s"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `LEAK_WINDOW`-byte run of every secret (a whole secret when shorter), with its secret.
fn leak_windows(secrets: &[String]) -> Vec<(Vec<u8>, String)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for secret in secrets {
        let bytes = secret.as_bytes();
        let width = LEAK_WINDOW.min(bytes.len());
        for window in bytes.windows(width) {
            if seen.insert(window.to_vec()) {
                out.push((window.to_vec(), secret.clone()));
            }
        }
    }
    out
}

/// The first line holding a window, with the secret it comes from.
fn find_leak<'a>(text: &'a str, windows: &[(Vec<u8>, String)]) -> Option<(&'a str, String)> {
    // Windows keyed by their first 8 bytes: one hash probe per position of the text.
    let mut by_head: std::collections::HashMap<u64, Vec<usize>> = Default::default();
    for (i, (window, _)) in windows.iter().enumerate() {
        by_head.entry(head(window)).or_default().push(i);
    }
    let bytes = text.as_bytes();
    let width = windows.iter().map(|(w, _)| w.len()).min()?;
    for at in 0..bytes.len().saturating_sub(width - 1) {
        let Some(candidates) = by_head.get(&head(&bytes[at..])) else {
            continue;
        };
        for &i in candidates {
            let (window, secret) = &windows[i];
            if bytes[at..].starts_with(window) {
                let start = text[..at].rfind('\n').map_or(0, |n| n + 1);
                let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
                return Some((&text[start..end], secret.clone()));
            }
        }
    }
    None
}

fn head(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(word)
}
