//! Campaigns end to end (issue 17): the app on a private Redis and local storage (one run on
//! S3), the simulator's named communities of every kind, and `/sim/truth/posts` as the judge.
//! Each test sets the simulator's wall.post captcha rate to 0 (VK's is unpublished; the sim's
//! default is 1 in 50) so outcomes are deterministic, except the one that tests captchas.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use vk_sim::SimHandle;

use crate::support::backend::{Streams, STATUS};
use crate::support::s3_server::S3Server;
use crate::support::service::{table_rows, Service};
use crate::support::sim::{self, TIME_SCALE};

/// The campaign stream and group.
const INPUT: &str = "stream:poster:vk";
const GROUP: &str = "cg_vk_poster";

/// Posting pace for the simulator's clock: VK's 0.5 s interval and 1 s jitter, 20 times
/// faster; the pauses likewise, and the guid window under the simulator's hour / 20.
fn pace() -> Vec<(&'static str, String)> {
    let scaled = |secs: f64| format!("{}ms", (secs * 1000.0 / TIME_SCALE) as u64);
    vec![
        ("VKP_POSTER__INTERVAL", scaled(0.5)),
        ("VKP_POSTER__JITTER", scaled(1.0)),
        ("VKP_POSTER__CAPTCHA_PAUSE", scaled(30.0)),
        ("VKP_POSTER__FLOOD_PAUSE", scaled(60.0)),
        ("VKP_POSTER__GUID_WINDOW", scaled(3000.0)),
    ]
}

async fn start(sim: &SimHandle, extra: &[(&str, &str)]) -> Service {
    let pace = pace();
    let mut vars: Vec<(&str, &str)> = pace.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.extend_from_slice(extra);
    Service::start(sim, &vars).await
}

/// Posts the simulator holds.
async fn post_count(sim: &SimHandle) -> usize {
    sim::posts_truth(sim).await["posts"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Publishes a campaign and waits for its final status.
async fn run(streams: &Streams, payload: Value) -> Value {
    let job = payload["jobId"].as_str().unwrap().to_owned();
    streams.publish("SuggestPostCreated", &payload).await;
    streams.final_status(&job, 1).await
}

fn streams_of(streams: Streams) -> Streams {
    streams.named(INPUT, STATUS, GROUP)
}

/// Puts `body` at `uploads/{name}` of the service's local storage, as the backend would.
fn upload(files: &Path, name: &str, body: &[u8]) {
    let dir = files.join("uploads");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), body).unwrap();
}

fn campaign(job: &str, sender: u32, groups: Vec<Value>, extra: Value) -> Value {
    let mut payload = json!({
        "campaignId": format!("camp-{job}"),
        "jobId": job,
        "userId": sender,
        "groups": groups,
        "message": "Hello from the campaign",
    });
    if let (Value::Object(p), Value::Object(e)) = (&mut payload, extra) {
        p.extend(e);
    }
    payload
}

/// The `posts` rows of a finished campaign, by `screen_name` (as the event named it).
fn rows_of(svc: &Service, status: &Value) -> BTreeMap<String, BTreeMap<String, Value>> {
    let prefix = status["artifacts"]["prefix"].as_str().expect("artifacts");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(svc.files.join(prefix).join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["files"][0]["name"], "posts.parquet", "{manifest}");
    let table = svc.table(prefix, "posts");
    let mut out = BTreeMap::new();
    for row in table_rows(&table) {
        let name = row["screen_name"].as_str().unwrap().to_owned();
        out.insert(name, row);
    }
    out
}

/// The `posts` columns docs/data.md's "Campaigns" section lists: (name, dtype).
fn documented_columns() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/data.md");
    let text = std::fs::read_to_string(path).unwrap();
    let section = text
        .split("## Campaigns")
        .nth(1)
        .expect("a Campaigns section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let dtype = cells[2].split(',').next().unwrap().trim();
            (cells[1].trim_matches('`').to_owned(), dtype.to_owned())
        })
        .collect()
}

/// The columns the manifest lists for `posts.parquet`.
fn written_columns(svc: &Service, status: &Value) -> Vec<(String, String)> {
    let prefix = status["artifacts"]["prefix"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(svc.files.join(prefix).join("manifest.json")).unwrap(),
    )
    .unwrap();
    manifest["files"][0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["dtype"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_reaches_every_kind_of_community_as_the_truth_says() {
    let sim = sim::start(|c| c.wall_post_captcha_rate = 0.0).await;
    let named = sim.named_communities();
    let svc = start(&sim, &[]).await;
    upload(&svc.files, "banner.png", &sim::png(800, 600));
    upload(
        &svc.files,
        "brief.pdf",
        b"%PDF-1.4 a brief for the community\n",
    );
    let names: Value = reqwest::get(format!("{}/sim/truth/named", sim.api_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let screen_name = names["communities"]["screen_name"]["screen_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let club = |id: u32| json!(format!("club{id}"));
    let groups = vec![
        club(named.suggest),
        club(named.admin),
        json!(format!("https://vk.com/public{}", named.open_wall)),
        json!(format!("https://vk.com/{screen_name}")),
        club(named.wall_closed),
        club(named.closed),
        club(named.private),
        json!(-i64::from(named.deactivated)),
        json!("no_such_community_anywhere"),
    ];
    let payload = campaign(
        "camp1",
        named.admin_user,
        groups,
        json!({"attachments": [
            {"type": "photo", "key": "uploads/banner.png"},
            {"type": "doc", "key": "uploads/brief.pdf", "title": "Brief"}
        ]}),
    );
    let streams = streams_of(svc.streams().await);
    let status = run(&streams, payload).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    assert_eq!(status["reportId"], "camp-camp1");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("published 3")
            && message.contains("suggested 1")
            && message.contains("skipped 5"),
        "{message}"
    );
    let rows = rows_of(&svc, &status);
    assert_eq!(rows.len(), 9, "one row per community named: {rows:?}");
    assert_eq!(written_columns(&svc, &status), documented_columns());
    let outcome = |name: &str| {
        let row = &rows[name];
        (
            row["outcome"].as_str().unwrap().to_owned(),
            row["reason"].as_str().map(str::to_owned),
        )
    };
    let s = |o: &str| (o.to_owned(), None);
    let skip = |r: &str| ("skipped".to_owned(), Some(r.to_owned()));
    assert_eq!(outcome(&format!("club{}", named.suggest)), s("suggested"));
    assert_eq!(outcome(&format!("club{}", named.admin)), s("published"));
    assert_eq!(outcome(&format!("club{}", named.open_wall)), s("published"));
    assert_eq!(outcome(&screen_name), s("published"));
    assert_eq!(
        outcome(&format!("club{}", named.wall_closed)),
        skip("wall_closed")
    );
    assert_eq!(outcome(&format!("club{}", named.closed)), skip("closed"));
    assert_eq!(outcome(&format!("club{}", named.private)), skip("private"));
    assert_eq!(
        outcome(&format!("club{}", named.deactivated)),
        skip("deactivated")
    );
    assert_eq!(outcome("no_such_community_anywhere"), skip("not_found"));
    assert_eq!(rows["no_such_community_anywhere"]["group_id"], Value::Null);

    // The truth: exactly the four posts, each once, where the rows say, with both files.
    let truth = sim::posts_truth(&sim).await;
    let posts = truth["posts"].as_array().unwrap();
    assert_eq!(posts.len(), 4, "{truth}");
    assert_eq!(truth["guid_repeats"], 0);
    for post in posts {
        let group = post["group_id"].as_u64().unwrap();
        let row = rows
            .values()
            .find(|r| r["group_id"] == json!(group))
            .expect("a row for every post");
        assert_eq!(row["post_id"], post["post_id"], "{row:?} {post}");
        assert_eq!(row["guid"], post["guid"]);
        assert_eq!(row["post_type"], post["post_type"]);
        assert_eq!(post["author"], named.admin_user);
        assert_eq!(post["text"], "Hello from the campaign");
        let attachments: Vec<&str> = post["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(attachments.len(), 2, "{post}");
        assert!(attachments[0].starts_with("photo") && attachments[1].starts_with("doc"));
        assert_eq!(row["attachments"], json!(attachments.join(",")));
    }
    let suggested: Vec<&Value> = posts
        .iter()
        .filter(|p| p["post_type"] == "suggest")
        .collect();
    assert_eq!(suggested.len(), 1);
    assert_eq!(suggested[0]["group_id"], named.suggest);
    // One upload of each file per community posted to, none for the skipped ones.
    assert_eq!(truth["uploads"].as_array().unwrap().len(), 8);

    // Without the rights check, wall.post's own answers skip the same communities.
    let groups = vec![
        club(named.wall_closed),
        club(named.closed),
        club(named.deactivated),
    ];
    let payload = campaign(
        "camp2",
        named.admin_user,
        groups,
        json!({"options": {"checkRights": false}}),
    );
    let status = run(&streams, payload).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    let rows = rows_of(&svc, &status);
    let coded = |name: String| {
        (
            rows[&name]["reason"].clone(),
            rows[&name]["error_code"].clone(),
        )
    };
    assert_eq!(
        coded(format!("club{}", named.wall_closed)),
        (json!("wall_closed"), json!(214))
    );
    assert_eq!(
        coded(format!("club{}", named.closed)),
        (json!("access_denied"), json!(15))
    );
    assert_eq!(
        coded(format!("club{}", named.deactivated)),
        (json!("access_denied"), json!(15))
    );
    assert_eq!(post_count(&sim).await, 4);
    svc.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_senders_daily_limit_defers_the_rest_and_the_campaign_completes() {
    // VK's wall.post limit cut to 2 a day for this token, so the third post meets error 29.
    let sim = sim::start(|c| {
        c.wall_post_captcha_rate = 0.0;
        c.quotas.push("wall.post=2".to_owned());
    })
    .await;
    let named = sim.named_communities();
    let svc = start(&sim, &[]).await;
    let groups: Vec<Value> = [
        named.suggest,
        named.admin,
        named.open_wall,
        named.screen_name,
    ]
    .iter()
    .map(|id| json!(id))
    .collect();
    let streams = streams_of(svc.streams().await);
    let status = run(
        &streams,
        campaign("quota1", named.admin_user, groups, json!({})),
    )
    .await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("deferred 2"), "{message}");
    let rows = rows_of(&svc, &status);
    let deferred: Vec<_> = rows
        .values()
        .filter(|r| r["outcome"] == "deferred")
        .map(|r| r["reason"].clone())
        .collect();
    assert_eq!(deferred, [json!("daily_limit"), json!("daily_limit")]);
    assert_eq!(post_count(&sim).await, 2);

    // The service's own budget (poster.daily_posts) defers before VK has to say it.
    // Another sender (user 101, fresh quota) on open walls: one post allowed, one deferred.
    let svc2 = start(&sim, &[("VKP_POSTER__DAILY_POSTS", "1")]).await;
    let streams2 = streams_of(svc2.streams().await);
    let groups = vec![json!(named.open_wall), json!(named.screen_name)];
    let status = run(&streams2, campaign("quota2", 101, groups, json!({}))).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    assert!(
        status["message"].as_str().unwrap().contains("deferred 1"),
        "{status}"
    );
    svc.stop.cancel();
    svc2.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_sender_token_on_the_first_request_fails_the_campaign() {
    let sim = sim::start(|c| c.wall_post_captcha_rate = 0.0).await;
    let named = sim.named_communities();
    sim::revoke(&sim, &sim.user_token(named.admin_user)).await;
    let svc = start(&sim, &[]).await;
    let streams = streams_of(svc.streams().await);
    let groups = vec![json!(named.open_wall)];
    let status = run(
        &streams,
        campaign("dead1", named.admin_user, groups, json!({})),
    )
    .await;
    assert_eq!(status["status"], "FAILED", "{status}");
    assert_eq!(status["failureReason"], "VK_RECONNECT_REQUIRED", "{status}");
    assert_eq!(post_count(&sim).await, 0);
    svc.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_captcha_skips_the_community_and_is_never_retried() {
    // Every wall.post asks for a captcha: the harshest reading of VK's unpublished rate.
    let sim = sim::start(|c| c.wall_post_captcha_rate = 1.0).await;
    let named = sim.named_communities();
    let svc = start(&sim, &[]).await;
    let streams = streams_of(svc.streams().await);
    let groups = vec![json!(named.open_wall)];
    let status = run(
        &streams,
        campaign("captcha1", named.admin_user, groups, json!({})),
    )
    .await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    let rows = rows_of(&svc, &status);
    let row = rows.values().next().unwrap();
    assert_eq!(
        (row["outcome"].clone(), row["reason"].clone()),
        (json!("skipped"), json!("captcha"))
    );
    assert_eq!(row["error_code"], 14);
    let stats = sim.stats();
    assert_eq!(sim::stat(&stats, &["by_method", "wall.post"]), 1, "{stats}");
    svc.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_writes_its_table_to_s3() {
    let sim = sim::start(|c| c.wall_post_captcha_rate = 0.0).await;
    let named = sim.named_communities();
    let s3 = S3Server::start("reports").await;
    let pace = pace();
    let vars: Vec<(&str, &str)> = pace.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let svc = Service::start_s3_with(&sim, &s3, crate::support::s3_server::SECRET_KEY, &vars).await;
    let streams = streams_of(svc.streams().await);
    let groups = vec![json!(named.open_wall), json!(named.wall_closed)];
    let status = run(
        &streams,
        campaign("s3camp", named.admin_user, groups, json!({})),
    )
    .await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    let rows = rows_of(&svc, &status);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[&format!("club{}", named.open_wall)]["outcome"],
        "published"
    );
    svc.stop.cancel();
}
