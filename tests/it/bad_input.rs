//! The bad-input catalogue, run through the whole service: every case is published on the
//! input stream as the backend (or a broken client) would, next to a good report, and must get
//! its documented answer (docs/events.md, "Bad input"):
//!
//! - `Dead`: no report can be named, so no status; a dead letter keeps the entry.
//! - `Invalid`: the report is known: FAILED with `INVALID_EVENT`, and a dead letter.
//! - `Failed`: FAILED with the reason given (a permanent answer, not retried).
//! - `Once`: a duplicate or late event: the stage has exactly one final status.
//!
//! The service must stay up and finish the good report; nothing stays pending; and no file is
//! ever written outside a valid stage prefix.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::backend::{is_final, Streams, DEAD, GRAPH, STATUS};

/// The campaign stream and its dead letters.
const POSTER_INPUT: &str = "stream:poster:vk";
const POSTER_DEAD: &str = "stream:poster:vk:dead";
const COMMUNITY_INPUT: &str = "stream:community:vk";
const COMMUNITY_DEAD: &str = "stream:community:vk:dead";
use crate::support::service::Service;
use crate::support::sim::{self, pick_seeds};
use crate::support::wait::within;

#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Dead,
    Invalid(&'static str),
    Failed(&'static str, u8, &'static str),
    Once(&'static str, u8),
    /// Stage 1 of the job completes: the input was not bad after all.
    Stage1Completed(&'static str),
}

struct Case {
    name: &'static str,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    answer: Answer,
}

fn event(event_type: &str, payload: impl Into<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (b"event_type".to_vec(), event_type.as_bytes().to_vec()),
        (b"payload".to_vec(), payload.into()),
    ]
}

/// A ReportCreated for `job` with `ids` as socialNetworkIds (raw JSON).
fn report(job: &str, ids: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    event(
        "ReportCreated",
        format!(
            r#"{{"reportId":"r-{job}","jobId":"{job}","userId":1,"reportType":"DEFAULT","socialNetworkIds":{ids}}}"#
        ),
    )
}

fn catalogue(seed: u32, hub: u32) -> Vec<Case> {
    let case = |name, fields, answer| Case {
        name,
        fields,
        answer,
    };
    let ten_thousand: Vec<String> = (1..=10_000).map(|n| n.to_string()).collect();
    let ten_mb = format!(
        r#"{{"reportId":"r-big","jobId":"big","userId":1,"reportType":"DEFAULT","socialNetworkIds":[1],"pad":"{}"}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let seeds = format!("[{seed}]");
    vec![
        case(
            "malformed JSON",
            event("ReportCreated", r#"{"reportId":"#),
            Answer::Dead,
        ),
        case(
            "payload not an object",
            event("ReportCreated", "[1,2]"),
            Answer::Dead,
        ),
        case(
            "payload JSON null",
            event("ReportCreated", "null"),
            Answer::Dead,
        ),
        case("empty payload", event("ReportCreated", ""), Answer::Dead),
        case(
            "100,000 nested arrays",
            event("ReportCreated", nested),
            Answer::Dead,
        ),
        case(
            "no event_type field",
            vec![(b"payload".to_vec(), b"{}".to_vec())],
            Answer::Dead,
        ),
        case(
            "no payload field",
            vec![(b"event_type".to_vec(), b"ReportCreated".to_vec())],
            Answer::Dead,
        ),
        case(
            "unknown event type",
            event("ReportDeleted", r#"{"reportId":"r","jobId":"j"}"#),
            Answer::Dead,
        ),
        case(
            "non-UTF-8 event type",
            vec![
                (b"event_type".to_vec(), b"Report\xffCreated".to_vec()),
                (b"payload".to_vec(), b"{}".to_vec()),
            ],
            Answer::Dead,
        ),
        case(
            "non-UTF-8 payload",
            event("ReportCreated", b"{\"reportId\":\"\xff\xfe\"}".to_vec()),
            Answer::Dead,
        ),
        case(
            "10 MB payload",
            event("ReportCreated", ten_mb),
            Answer::Dead,
        ),
        case(
            "reportId of the wrong type",
            event("ReportCreated", r#"{"reportId":true,"jobId":"j7"}"#),
            Answer::Dead,
        ),
        case(
            "missing reportId",
            event("ReportCreated", r#"{"jobId":"j8","userId":1}"#),
            Answer::Dead,
        ),
        case(
            "jobId ../ (path)",
            report("../escape", &seeds),
            Answer::Dead,
        ),
        case("jobId with /", report("a/b", &seeds), Answer::Dead),
        case("jobId with %2F", report("a%2Fb", &seeds), Answer::Dead),
        case("jobId with NUL", report("a\\u0000b", &seeds), Answer::Dead),
        case(
            "reportId ../../",
            event(
                "ReportCreated",
                format!(
                    r#"{{"reportId":"../../etc","jobId":"j9","userId":1,"reportType":"DEFAULT","socialNetworkIds":{seeds}}}"#
                ),
            ),
            Answer::Dead,
        ),
        case(
            "userId of the wrong type",
            event(
                "ReportCreated",
                format!(
                    r#"{{"reportId":"r-t1","jobId":"t1","userId":"one","reportType":"DEFAULT","socialNetworkIds":{seeds}}}"#
                ),
            ),
            Answer::Invalid("t1"),
        ),
        case(
            "negative userId",
            event(
                "ReportCreated",
                format!(
                    r#"{{"reportId":"r-t2","jobId":"t2","userId":-1,"reportType":"DEFAULT","socialNetworkIds":{seeds}}}"#
                ),
            ),
            Answer::Invalid("t2"),
        ),
        // The seed service's fallback: no seeds means the author's own report.
        case(
            "missing socialNetworkIds (the author's report)",
            event(
                "ReportCreated",
                r#"{"reportId":"r-t3","jobId":"t3","userId":6,"reportType":"DEFAULT"}"#,
            ),
            Answer::Stage1Completed("t3"),
        ),
        case(
            "unknown reportType",
            event(
                "ReportCreated",
                format!(
                    r#"{{"reportId":"r-t4","jobId":"t4","userId":1,"reportType":"FULL","socialNetworkIds":{seeds}}}"#
                ),
            ),
            Answer::Invalid("t4"),
        ),
        case(
            "options of the wrong type",
            event(
                "ReportCreated",
                format!(
                    r#"{{"reportId":"r-t5","jobId":"t5","userId":1,"reportType":"DEFAULT","socialNetworkIds":{seeds},"options":[1]}}"#
                ),
            ),
            Answer::Invalid("t5"),
        ),
        case(
            "empty socialNetworkIds (the author's report)",
            event(
                "ReportCreated",
                r#"{"reportId":"r-t6","jobId":"t6","userId":6,"reportType":"DEFAULT","socialNetworkIds":[]}"#,
            ),
            Answer::Stage1Completed("t6"),
        ),
        case(
            "10,000 socialNetworkIds",
            report("t7", &format!("[{}]", ten_thousand.join(","))),
            Answer::Invalid("t7"),
        ),
        case(
            "socialNetworkIds not a list",
            report("t8", r#""1,2""#),
            Answer::Invalid("t8"),
        ),
        case("zero id", report("t9", "[0]"), Answer::Invalid("t9")),
        // The seed backend's class name as the event type: refused on stage 2, as Stage2Created.
        case(
            "Stage2CreatedEvent with a bad userId",
            event(
                "Stage2CreatedEvent",
                r#"{"reportId":"r-t30","jobId":"t30","userId":"x","reportType":"DEFAULT"}"#,
            ),
            Answer::Failed("t30", 2, "INVALID_EVENT"),
        ),
        case("negative id", report("t10", "[-5]"), Answer::Invalid("t10")),
        case(
            "id beyond 64 bits",
            report("t11", "[100000000000000000000000000000]"),
            Answer::Invalid("t11"),
        ),
        case(
            "fractional id",
            report("t12", "[1.5]"),
            Answer::Invalid("t12"),
        ),
        case(
            "seed ../ (path)",
            report("t13", r#"["../../x"]"#),
            Answer::Invalid("t13"),
        ),
        case(
            "seed with /",
            report("t14", r#"["a/b"]"#),
            Answer::Invalid("t14"),
        ),
        case(
            "seed with %2F",
            report("t15", r#"["a%2Fb"]"#),
            Answer::Invalid("t15"),
        ),
        case(
            "seed with NUL",
            report("t16", r#"["a\u0000b"]"#),
            Answer::Invalid("t16"),
        ),
        case(
            "seed link to another site",
            report("t17", r#"["https://evil.example/id1"]"#),
            Answer::Invalid("t17"),
        ),
        case(
            "stage1Prefix outside the report",
            event(
                "Stage2Created",
                r#"{"reportId":"r-t18","jobId":"t18","userId":1,"reportType":"DEFAULT","stage1Prefix":"DEFAULT/../t18_stage1/"}"#,
            ),
            Answer::Invalid("t18"),
        ),
        case(
            "id at the top of i64",
            report("t19", "[9223372036854775807]"),
            Answer::Failed("t19", 1, "VK_USER_NOT_FOUND"),
        ),
        case(
            "Stage2Created without a stage 1",
            event(
                "Stage2Created",
                r#"{"reportId":"r-t20","jobId":"t20","userId":1,"reportType":"DEFAULT"}"#,
            ),
            Answer::Failed("t20", 2, "STAGE1_NOT_FOUND"),
        ),
        case(
            "seeds over parser.max_audience",
            report("t22", &format!("[{hub}]")),
            Answer::Failed("t22", 1, "INVALID_EVENT"),
        ),
        case(
            "extra unknown fields",
            event(
                "ReportCreated",
                format!(
                    r#"{{"reportId":"r-t21","jobId":"t21","userId":1,"reportType":"DEFAULT","socialNetworkIds":{seeds},"colour":"blue","nested":{{"a":[1]}}}}"#
                ),
            ),
            Answer::Once("t21", 1),
        ),
    ]
}

fn finals<'a>(statuses: &'a [Value], job: &str, stage: u8) -> Vec<&'a Value> {
    statuses
        .iter()
        .filter(|s| s["jobId"] == job && s["stage"] == stage && is_final(s))
        .collect()
}

/// The cases without their documented answer yet, each with what it has instead.
async fn unanswered(
    streams: &Streams,
    dead_stream: &str,
    cases: &[Case],
    entry_ids: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    let statuses = streams.statuses().await;
    let dead = streams.entries(dead_stream).await;
    let dead_for = |id: &str| {
        dead.iter()
            .any(|(_, f)| f.get("dead_entry_id").is_some_and(|v| v == id.as_bytes()))
    };
    for (case, id) in cases.iter().zip(entry_ids) {
        let ok = match &case.answer {
            Answer::Dead => dead_for(id),
            Answer::Invalid(job) => {
                let f = finals(&statuses, job, 1)
                    .into_iter()
                    .chain(finals(&statuses, job, 2))
                    .collect::<Vec<_>>();
                dead_for(id) && f.len() == 1 && f[0]["failureReason"] == "INVALID_EVENT"
            }
            Answer::Failed(job, stage, reason) => {
                let f = finals(&statuses, job, *stage);
                f.len() == 1 && f[0]["failureReason"] == *reason
            }
            Answer::Once(job, stage) => finals(&statuses, job, *stage).len() == 1,
            Answer::Stage1Completed(job) => {
                let f = finals(&statuses, job, 1);
                f.len() == 1 && f[0]["status"] == "STAGE1_COMPLETED"
            }
        };
        if !ok {
            let job = match &case.answer {
                Answer::Dead => "",
                Answer::Invalid(job)
                | Answer::Failed(job, ..)
                | Answer::Once(job, _)
                | Answer::Stage1Completed(job) => job,
            };
            let seen: Vec<String> = statuses
                .iter()
                .filter(|s| s["jobId"] == job && is_final(s))
                .map(|s| format!("{} {} {}", s["stage"], s["status"], s["failureReason"]))
                .collect();
            problems.push(format!(
                "{}: want {:?}, dead letter {}, statuses {seen:?}",
                case.name,
                case.answer,
                dead_for(id)
            ));
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_gets_its_documented_answer() {
    let sim = sim::start(|_| {}).await;
    // A duplicate that arrives while its job runs is left pending until reclaimed (then
    // acknowledged as already done): a short min_idle lets the test see the end of that.
    let service = Service::start(
        &sim,
        &[
            ("MAX_RETRIES", "2"),
            // The hub's 5,000+ friends are over it; the good report's seed is far below.
            ("VKP_PARSER__MAX_AUDIENCE", "3000"),
            ("VKP_STREAM__HEARTBEAT_INTERVAL", "200ms"),
            ("VKP_STREAM__LEASE_TTL", "1s"),
            ("VKP_STREAM__MIN_IDLE", "1s"),
            ("VKP_STREAM__RECLAIM_INTERVAL", "250ms"),
        ],
    )
    .await;
    let seed = *pick_seeds(&sim, 300, 1)
        .await
        .first()
        .expect("a quick seed");
    let author = sim.named().open;
    let cases = catalogue(seed, sim.named().hub);
    assert!(cases.len() >= 30, "{} cases", cases.len());

    let streams = service.streams().await;
    let mut entry_ids = Vec::new();
    for case in &cases {
        entry_ids.push(streams.publish_raw(&case.fields).await);
    }
    // Duplicates and late events: the same ReportCreated twice at once, and again once done.
    let good = json!({"reportId": "r-good", "jobId": "good", "userId": author,
                      "reportType": "DEFAULT", "socialNetworkIds": [seed]});
    service.publish("ReportCreated", good.clone()).await;
    service.publish("ReportCreated", good.clone()).await;
    let stage1 = service.final_status("good", 1).await;
    assert_eq!(stage1["status"], "STAGE1_COMPLETED", "{stage1}");
    service.publish("ReportCreated", good.clone()).await;
    let stage2 = json!({"reportId": "r-good", "jobId": "good", "userId": author,
                        "reportType": "DEFAULT"});
    service.publish("Stage2Created", stage2.clone()).await;
    let done = service.final_status("good", 2).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    service.publish("Stage2Created", stage2).await;
    let last = streams
        .publish_raw(&event("ReportCreated", good.to_string()))
        .await;

    // Wait for every answer, then for the late duplicates to be consumed.
    let mut problems = Vec::new();
    within(Duration::from_secs(60), async || {
        problems = unanswered(&streams, DEAD, &cases, &entry_ids).await;
        problems.is_empty().then_some(())
    })
    .await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The late duplicates are acknowledged without a second answer.
    let (mut pending, mut delivered) = (0, String::new());
    let drained = within(Duration::from_secs(30), async || {
        pending = streams.pending().await;
        delivered = streams.try_groups().await.unwrap()[0]
            .last_delivered_id
            .clone();
        (pending == 0 && delivered == last).then_some(())
    })
    .await;
    if drained.is_none() {
        let detail: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg("stream:parser:vk")
            .arg("cg_vk_parser")
            .arg("-")
            .arg("+")
            .arg(10)
            .query_async(&mut streams.connection())
            .await
            .unwrap();
        let names: Vec<&str> = detail
            .iter()
            .map(|(id, ..)| {
                entry_ids
                    .iter()
                    .position(|e| e == id)
                    .map(|i| cases[i].name)
                    .unwrap_or("a duplicate of the good report")
            })
            .collect();
        panic!("{pending} pending ({detail:?}: {names:?}), delivered up to {delivered}");
    }
    let statuses = streams.statuses().await;
    assert_eq!(finals(&statuses, "good", 1).len(), 1, "one stage 1 answer");
    assert_eq!(finals(&statuses, "good", 2).len(), 1, "one stage 2 answer");
    let graph = streams.entries(GRAPH).await;
    assert_eq!(graph.len(), 1, "one graph-worker event");

    // Storage: only valid stage prefixes, all inside the data folder.
    let mut files = Vec::new();
    collect_files(&service.files, &service.files, &mut files);
    assert!(!files.is_empty());
    for file in &files {
        let parts: Vec<&str> = file.split('/').collect();
        assert_eq!(parts.len(), 4, "{file}");
        assert!(
            ["DEFAULT", "HANDSHAKES", "SUB_GRAPH"].contains(&parts[0]),
            "{file}"
        );
        assert!(
            parts[1].chars().all(|c| c.is_ascii_digit() || c == '_'),
            "{file}"
        );
        let job = parts[2]
            .trim_end_matches("_stage1")
            .trim_end_matches("_stage2");
        assert!(["good", "t21", "t3", "t6"].contains(&job), "{file}");
    }
    let root = service.files.parent().unwrap();
    let outside: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| service.files.file_name() != Some(n.as_os_str()))
        .filter(|n| n.to_string_lossy().contains("escape") || n.to_string_lossy() == "etc")
        .collect();
    assert!(
        outside.is_empty(),
        "written beside the data folder: {outside:?}"
    );
    service.stop().await;
}

/// A SuggestPostCreated for `job` with `groups` and `rest` (raw JSON members after them).
fn campaign(job: &str, groups: &str, rest: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    event(
        "SuggestPostCreated",
        format!(
            r#"{{"campaignId":"c-{job}","jobId":"{job}","userId":1,"groups":{groups},"message":"hi"{rest}}}"#
        ),
    )
}

/// The poster's cases (docs/events.md, "Bad input"), published on the campaign stream; the
/// last two are events of one kind on the other kind's stream.
fn poster_catalogue() -> Vec<Case> {
    let case = |name, fields, answer| Case {
        name,
        fields,
        answer,
    };
    let many = format!(
        "[{}]",
        (1..=501)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let eleven = format!(
        r#","attachments":[{}]"#,
        [r#"{"type":"vk","value":"photo1_2"}"#; 11].join(",")
    );
    vec![
        case("no groups", campaign("p1", "[]", ""), Answer::Invalid("p1")),
        case(
            "501 groups",
            campaign("p2", &many, ""),
            Answer::Invalid("p2"),
        ),
        case(
            "group id 0",
            campaign("p3", r#"["club0"]"#, ""),
            Answer::Invalid("p3"),
        ),
        case(
            "a group link to another site",
            campaign("p4", r#"["https://example.com/apiclub"]"#, ""),
            Answer::Invalid("p4"),
        ),
        case(
            "11 attachments",
            campaign("p5", "[1]", &eleven),
            Answer::Invalid("p5"),
        ),
        case(
            "a storage key outside uploads/",
            campaign(
                "p6",
                "[1]",
                r#","attachments":[{"type":"photo","key":"DEFAULT/1/j_stage1/df_users.parquet"}]"#,
            ),
            Answer::Invalid("p6"),
        ),
        case(
            "a storage key climbing out of uploads/",
            campaign(
                "p7",
                "[1]",
                r#","attachments":[{"type":"doc","key":"uploads/../x"}]"#,
            ),
            Answer::Invalid("p7"),
        ),
        case(
            "two documents",
            campaign(
                "p8",
                "[1]",
                r#","attachments":[{"type":"doc","key":"uploads/a.pdf"},{"type":"doc","key":"uploads/b.pdf"}]"#,
            ),
            Answer::Invalid("p8"),
        ),
        case(
            "an oversized message",
            event(
                "SuggestPostCreated",
                format!(
                    r#"{{"campaignId":"c-p9","jobId":"p9","userId":1,"groups":[1],"message":"{}"}}"#,
                    "я".repeat(16_385)
                ),
            ),
            Answer::Invalid("p9"),
        ),
        case(
            "no message and no attachments",
            event(
                "SuggestPostCreated",
                r#"{"campaignId":"c-p10","jobId":"p10","userId":1,"groups":[1]}"#,
            ),
            Answer::Invalid("p10"),
        ),
        case(
            "a file under uploads/ that storage does not hold",
            campaign(
                "p11",
                "[1]",
                r#","attachments":[{"type":"photo","key":"uploads/missing.png"}]"#,
            ),
            Answer::Failed("p11", 1, "INVALID_EVENT"),
        ),
        case(
            "a report on the campaign stream",
            report("p12", "[1]"),
            Answer::Invalid("p12"),
        ),
        // Issue 18's event, decoded but consumed nowhere yet: refused wherever it lands.
        case(
            "a community task on the campaign stream",
            event(
                "CommunityTaskCreated",
                r#"{"taskId":"t-p14","jobId":"p14","userId":1,"kind":"POSTS","groups":[1]}"#,
            ),
            Answer::Invalid("p14"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_campaign_gets_its_documented_answer() {
    let sim = sim::start(|c| c.wall_post_captcha_rate = 0.0).await;
    let service = Service::start(&sim, &[("VKP_POSTER__INTERVAL", "25ms")]).await;
    let cases = poster_catalogue();
    let streams = service
        .streams()
        .await
        .named(POSTER_INPUT, STATUS, "cg_vk_poster");
    let mut entry_ids = Vec::new();
    for case in &cases {
        entry_ids.push(streams.publish_raw(&case.fields).await);
    }
    // And a campaign on the report stream: refused there, with its campaign's status.
    let misrouted = service.streams().await;
    let id = misrouted.publish_raw(&campaign("p13", "[1]", "")).await;
    let mut problems = Vec::new();
    within(Duration::from_secs(60), async || {
        problems = unanswered(&streams, POSTER_DEAD, &cases, &entry_ids).await;
        problems.extend(
            unanswered(
                &misrouted,
                DEAD,
                &[Case {
                    name: "a campaign on the report stream",
                    fields: Vec::new(),
                    answer: Answer::Invalid("p13"),
                }],
                std::slice::from_ref(&id),
            )
            .await,
        );
        problems.is_empty().then_some(())
    })
    .await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(streams.pending().await, 0, "nothing left pending");
    // Nothing was posted, and no file but under uploads/ (none) or a campaign prefix exists.
    let truth: Value = reqwest::get(format!("{}/sim/truth/posts", sim.api_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(truth["posts"].as_array().unwrap().len(), 0, "{truth}");
    let mut files = Vec::new();
    if service.files.exists() {
        collect_files(&service.files, &service.files, &mut files);
    }
    assert!(files.is_empty(), "{files:?}");
    service.stop().await;
}

fn community_task(job: &str, kind: &str, groups: &str, options: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    event(
        "CommunityTaskCreated",
        format!(
            r#"{{"taskId":"t-{job}","jobId":"{job}","userId":6,"kind":"{kind}","groups":{groups},"options":{options}}}"#
        ),
    )
}

/// The community stream's cases (docs/events.md, "Bad input").
fn community_catalogue() -> Vec<Case> {
    let case = |name, fields, answer| Case {
        name,
        fields,
        answer,
    };
    let many = format!(
        "[{}]",
        (1..=501)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let members =
        |job, groups: &str, options: &str| community_task(job, "MEMBERS", groups, options);
    let posts = |job, options: &str| community_task(job, "POSTS", "[1]", options);
    vec![
        case(
            "no groups",
            members("c1", "[]", "{}"),
            Answer::Invalid("c1"),
        ),
        case(
            "501 groups",
            members("c2", &many, "{}"),
            Answer::Invalid("c2"),
        ),
        case(
            "an unknown kind",
            community_task("c3", "FRIENDS", "[1]", "{}"),
            Answer::Invalid("c3"),
        ),
        case(
            "postsPerGroup 0",
            posts("c4", r#"{"postsPerGroup":0}"#),
            Answer::Invalid("c4"),
        ),
        case(
            "postsPerGroup 101",
            posts("c5", r#"{"postsPerGroup":101}"#),
            Answer::Invalid("c5"),
        ),
        case(
            "threads without comments",
            posts("c6", r#"{"withComments":false,"withThreads":true}"#),
            Answer::Invalid("c6"),
        ),
        case(
            "sinceSnapshot on POSTS",
            posts("c7", r#"{"sinceSnapshot":"COMMUNITY/MEMBERS/old_stage1/"}"#),
            Answer::Invalid("c7"),
        ),
        case(
            "sinceSnapshot outside COMMUNITY/MEMBERS/",
            members("c8", "[1]", r#"{"sinceSnapshot":"DEFAULT/1/old_stage1/"}"#),
            Answer::Invalid("c8"),
        ),
        case(
            "sinceSnapshot of the task's own job",
            members(
                "c9",
                "[1]",
                r#"{"sinceSnapshot":"COMMUNITY/MEMBERS/c9_stage1/"}"#,
            ),
            Answer::Invalid("c9"),
        ),
        case(
            "sinceSnapshot of a job that wrote none",
            members(
                "c10",
                "[1]",
                r#"{"sinceSnapshot":"COMMUNITY/MEMBERS/never_stage1/"}"#,
            ),
            Answer::Failed("c10", 1, "STAGE1_NOT_FOUND"),
        ),
        case(
            "a group link to another site",
            members("c11", r#"["https://example.com/apiclub"]"#, "{}"),
            Answer::Invalid("c11"),
        ),
        case(
            "only names no community has",
            members("c12", r#"["no_such_community_anywhere"]"#, "{}"),
            Answer::Failed("c12", 1, "VK_ACCESS_DENIED"),
        ),
        case(
            "a jobId with path characters",
            members("../c13", "[1]", "{}"),
            Answer::Dead,
        ),
        case(
            "options not an object",
            members("c14", "[1]", "[]"),
            Answer::Invalid("c14"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_community_task_gets_its_documented_answer() {
    let sim = sim::start(|_| {}).await;
    let service = Service::start(&sim, &[]).await;
    let cases = community_catalogue();
    let streams = service
        .streams()
        .await
        .named(COMMUNITY_INPUT, STATUS, "cg_vk_community");
    let mut entry_ids = Vec::new();
    for case in &cases {
        entry_ids.push(streams.publish_raw(&case.fields).await);
    }
    let mut problems = Vec::new();
    within(Duration::from_secs(60), async || {
        problems = unanswered(&streams, COMMUNITY_DEAD, &cases, &entry_ids).await;
        problems.is_empty().then_some(())
    })
    .await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(streams.pending().await, 0, "nothing left pending");
    // Only the task that ran (all its names unknown) wrote files, under its own prefix.
    let mut files = Vec::new();
    if service.files.exists() {
        collect_files(&service.files, &service.files, &mut files);
    }
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("COMMUNITY/MEMBERS/c12_stage1/")),
        "{files:?}"
    );
    service.stop().await;
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
}
