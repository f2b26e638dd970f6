//! Event contracts: golden JSON for each event (decode and encode), the malformed-entry
//! catalogue, and docs/events.md kept true.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use serde_json::Value;

use vk_parser::events::{
    salvage_ids, Artifacts, Attachment, CommunityRef, EventError, FailureReason, GraphReady,
    IncomingEvent, PostOptions, ReportOptions, SeedRef, StatusUpdate, SuggestPostCreated,
    MAX_PAYLOAD_BYTES,
};
use vk_parser::ids::{GroupId, JobId, ReportId, ReportType, Stage, VkUserId};
use vk_parser::storage::StagePrefix;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/events/{name}.json"))
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture_path(name)).expect("fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Compares `actual` with a golden file; `UPDATE_GOLDEN=1` rewrites the file instead.
fn assert_golden(name: &str, actual: &Value) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(fixture_path(name), text).unwrap();
        return;
    }
    assert_eq!(
        actual,
        &fixture(name),
        "golden {name} differs (UPDATE_GOLDEN=1 rewrites it)"
    );
}

fn decode(event_type: &str, payload: &str) -> Result<IncomingEvent, EventError> {
    IncomingEvent::decode(Some(event_type.as_bytes()), Some(payload.as_bytes()))
}

fn id(n: i64) -> VkUserId {
    VkUserId::new(n).unwrap()
}

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 30, 0).unwrap()
}

fn report() -> ReportId {
    ReportId::parse("rep-2026-0001").unwrap()
}

fn job() -> JobId {
    JobId::parse("job_42").unwrap()
}

#[test]
fn report_created_golden_decodes() {
    let payload = fixture("ReportCreated").to_string();
    let IncomingEvent::ReportCreated(e) = decode("ReportCreated", &payload).unwrap() else {
        panic!("wrong kind");
    };
    assert_eq!(e.report_id, report());
    assert_eq!(e.job_id, job());
    assert_eq!(e.user_id, id(1));
    assert_eq!(e.report_type, ReportType::Default);
    assert_eq!(
        e.social_network_ids,
        vec![
            SeedRef::Id(id(1)),
            SeedRef::Id(id(2)),
            SeedRef::ScreenName("durov".into()),
            SeedRef::Id(id(3)),
        ]
    );
    assert_eq!(
        e.options,
        ReportOptions {
            fast_graph: false,
            subs_graph: true,
            can_access_closed: false
        }
    );
    assert_eq!(e.event_id.as_deref(), Some("evt-1"));
    assert_eq!(
        e.created_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap())
    );
}

/// A suggested-posts campaign: decodes from its golden file and re-encodes to it.
#[test]
fn suggest_post_created_golden_decodes_and_encodes() {
    let payload = fixture("SuggestPostCreated");
    let campaign = SuggestPostCreated::decode(payload.to_string().as_bytes()).unwrap();
    assert_eq!(campaign.campaign_id.as_str(), "camp-2026-0007");
    assert_eq!(campaign.user_id, id(6));
    let group = |n| CommunityRef::Id(GroupId::new(n).unwrap());
    assert_eq!(
        campaign.groups,
        vec![
            group(1),
            group(2),
            CommunityRef::ScreenName("apiclub".into()),
            group(3)
        ]
    );
    assert!(
        matches!(&campaign.attachments[1], Attachment::Doc { title: Some(t), .. } if t == "Prices, December")
    );
    assert_eq!(campaign.options, PostOptions::default());
    assert_golden(
        "SuggestPostCreated",
        &serde_json::to_value(&campaign).unwrap(),
    );
}

/// A community task (issue 18): decodes from its golden file and re-encodes to it.
#[test]
fn community_task_created_golden_decodes_and_encodes() {
    use vk_parser::events::CommunityTaskCreated;
    use vk_parser::ids::CommunityTaskKind;
    let payload = fixture("CommunityTaskCreated");
    let task = CommunityTaskCreated::decode(payload.to_string().as_bytes()).unwrap();
    assert_eq!(task.task_id.as_str(), "task-2026-0003");
    assert_eq!(task.kind, CommunityTaskKind::Members);
    assert_eq!(task.groups.len(), 3);
    assert_eq!(
        task.options.since_snapshot.as_ref().map(|j| j.as_str()),
        Some("job_90")
    );
    let event = vk_parser::events::IncomingEvent::decode(
        Some(b"CommunityTaskCreated"),
        Some(payload.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(event.report_id().as_str(), "task-2026-0003");
    assert_eq!(event.kind(), vk_parser::events::JobKind::Community);
    assert_golden(
        "CommunityTaskCreated",
        &serde_json::to_value(&task).unwrap(),
    );
}

/// The seed backend's `ReportCreatedEvent`: integer ids, no seeds (the author alone), options
/// without `canAccessClosed` (on), a naive `isoformat()` timestamp.
#[test]
fn seed_style_report_created_golden_decodes() {
    let payload = fixture("ReportCreatedEvent.seed").to_string();
    let event = decode("ReportCreatedEvent", &payload).unwrap();
    assert_eq!(event.event_type(), "ReportCreated", "the canonical name");
    assert_eq!(event, decode("ReportCreated", &payload).unwrap(), "alias");
    let IncomingEvent::ReportCreated(e) = event else {
        panic!("wrong kind");
    };
    assert_eq!(e.report_id.as_str(), "2026001");
    assert_eq!(e.job_id.as_str(), "42");
    assert_eq!(e.user_id, id(1));
    assert_eq!(e.social_network_ids, vec![SeedRef::Id(id(1))]);
    assert_eq!(
        e.options,
        ReportOptions {
            fast_graph: false,
            subs_graph: true,
            can_access_closed: true
        }
    );
    assert!(e.event_id.is_none());
    assert_eq!(
        e.created_at,
        Some(
            Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
                + chrono::Duration::milliseconds(250)
        )
    );
}

/// The seed backend's `Stage2CreatedEvent`: integer ids, the prefix of job `42`.
#[test]
fn seed_style_stage2_created_golden_decodes() {
    let payload = fixture("Stage2CreatedEvent.seed").to_string();
    let event = decode("Stage2CreatedEvent", &payload).unwrap();
    assert_eq!(event.event_type(), "Stage2Created", "the canonical name");
    assert_eq!(event, decode("Stage2Created", &payload).unwrap(), "alias");
    let IncomingEvent::Stage2Created(e) = event else {
        panic!("wrong kind");
    };
    let job = JobId::parse("42").unwrap();
    assert_eq!(e.report_id.as_str(), "2026001");
    assert_eq!(e.job_id, job);
    assert_eq!(
        e.stage1_prefix,
        Some(StagePrefix::new(
            ReportType::Default,
            &[id(1)],
            &job,
            Stage::One
        ))
    );
}

#[test]
fn aliases_decode_to_the_canonical_events() {
    for (alias, name) in [
        ("ReportCreatedEvent", "ReportCreated"),
        ("Stage2CreatedEvent", "Stage2Created"),
    ] {
        let payload = fixture(name).to_string();
        let event = decode(alias, &payload).unwrap();
        assert_eq!(event, decode(name, &payload).unwrap(), "{alias}");
        assert_eq!(event.event_type(), name);
        assert_eq!(
            IncomingEvent::stage_of(alias),
            IncomingEvent::stage_of(name)
        );
    }
    assert_eq!(
        IncomingEvent::stage_of("Stage2CreatedEvent"),
        Some(Stage::Two)
    );
    assert_eq!(IncomingEvent::stage_of("ReportCreatedEventX"), None);
}

#[test]
fn integer_ids_read_as_their_decimal_strings() {
    let with_ids = |report: &str, job: &str| {
        format!(
            r#"{{"reportId":{report},"jobId":{job},"userId":1,"reportType":"DEFAULT","socialNetworkIds":[1]}}"#
        )
    };
    for (number, text) in [
        ("7", "7"),
        ("0", "0"),
        ("18446744073709551615", "18446744073709551615"),
    ] {
        let from_numbers = decode("ReportCreated", &with_ids(number, number)).unwrap();
        let quoted = format!("\"{text}\"");
        let from_strings = decode("ReportCreated", &with_ids(&quoted, &quoted)).unwrap();
        assert_eq!(from_numbers, from_strings, "{number}");
        assert_eq!(from_numbers.report_id().as_str(), text);
        assert_eq!(from_numbers.job_id().as_str(), text);
    }
}

#[test]
fn no_seeds_means_the_author_alone() {
    const HEAD: &str = r#""reportId":"r","jobId":"j","userId":"77","reportType":"DEFAULT""#;
    for seeds in [
        "",
        r#","socialNetworkIds":null"#,
        r#","socialNetworkIds":[]"#,
    ] {
        let IncomingEvent::ReportCreated(e) =
            decode("ReportCreated", &format!("{{{HEAD}{seeds}}}")).unwrap()
        else {
            panic!("wrong kind");
        };
        assert_eq!(e.social_network_ids, vec![SeedRef::Id(id(77))], "{seeds:?}");
    }
    // Exactly MAX_SEEDS is still fine.
    let fifty: Vec<String> = (1..=50).map(|n| n.to_string()).collect();
    let payload = format!(r#"{{{HEAD},"socialNetworkIds":[{}]}}"#, fifty.join(","));
    let IncomingEvent::ReportCreated(e) = decode("ReportCreated", &payload).unwrap() else {
        panic!("wrong kind");
    };
    assert_eq!(e.social_network_ids.len(), 50);
}

#[test]
fn can_access_closed_defaults_to_true_and_false_narrows_it() {
    const HEAD: &str =
        r#""reportId":"r","jobId":"j","userId":1,"reportType":"DEFAULT","socialNetworkIds":[1]"#;
    let options = |extra: &str| {
        let IncomingEvent::ReportCreated(e) =
            decode("ReportCreated", &format!("{{{HEAD}{extra}}}")).unwrap()
        else {
            panic!("wrong kind");
        };
        e.options
    };
    let open = ReportOptions {
        fast_graph: false,
        subs_graph: false,
        can_access_closed: true,
    };
    assert_eq!(ReportOptions::default(), open);
    for absent in [
        "",
        r#","options":null"#,
        r#","options":{}"#,
        r#","options":{"canAccessClosed":null}"#,
        r#","options":{"canAccessClosed":true}"#,
    ] {
        assert_eq!(options(absent), open, "{absent:?}");
    }
    assert_eq!(
        options(r#","options":{"canAccessClosed":false,"fastGraph":true}"#),
        ReportOptions {
            fast_graph: true,
            subs_graph: false,
            can_access_closed: false,
        }
    );
}

#[test]
fn incoming_events_encode_to_what_they_decode_from() {
    for (name, fixture_name) in [
        ("ReportCreated", "ReportCreated"),
        ("Stage2Created", "Stage2Created"),
        ("ReportCreatedEvent", "ReportCreatedEvent.seed"),
        ("Stage2CreatedEvent", "Stage2CreatedEvent.seed"),
    ] {
        let event = decode(name, &fixture(fixture_name).to_string()).unwrap();
        // Aliases and seed-style fields re-encode in the canonical form.
        let again = decode(event.event_type(), &event.payload_json()).unwrap();
        assert_eq!(again, event, "{fixture_name} round trip");
    }
}

#[test]
fn stage2_created_golden_decodes() {
    let payload = fixture("Stage2Created").to_string();
    let IncomingEvent::Stage2Created(e) = decode("Stage2Created", &payload).unwrap() else {
        panic!("wrong kind");
    };
    assert_eq!(e.report_id, report());
    assert_eq!(e.job_id, job());
    assert_eq!(e.report_type, ReportType::Default);
    assert_eq!(
        e.stage1_prefix,
        Some(StagePrefix::new(
            ReportType::Default,
            &[id(1), id(2), id(3)],
            &job(),
            Stage::One
        ))
    );
}

#[test]
fn optional_fields_default_and_extra_fields_are_ignored() {
    let payload = r#"{"reportId":"r","jobId":"j","userId":"77","reportType":"SUB_GRAPH",
        "socialNetworkIds":[5, "5", "id5", "club1"],"futureField":{"x":1},"options":null}"#;
    let IncomingEvent::ReportCreated(e) = decode("ReportCreated", payload).unwrap() else {
        panic!("wrong kind");
    };
    assert_eq!(e.user_id, id(77));
    assert_eq!(e.options, ReportOptions::default());
    // Duplicates (5, "5", "id5") collapse to one seed, order kept.
    assert_eq!(
        e.social_network_ids,
        vec![SeedRef::Id(id(5)), SeedRef::ScreenName("club1".into())]
    );
    assert!(e.event_id.is_none() && e.created_at.is_none());
}

#[test]
fn status_updates_golden_encode() {
    let artifacts = Artifacts {
        prefix: "DEFAULT/1_2_3/job_42_stage1/".into(),
        manifest: "DEFAULT/1_2_3/job_42_stage1/manifest.json".into(),
    };
    let cases = [
        (
            "StatusUpdate.in_progress",
            StatusUpdate::in_progress(
                &report(),
                &job(),
                Stage::One,
                40,
                "friends lists: 12 of 30",
                at(),
            ),
        ),
        (
            "StatusUpdate.stage1_completed",
            StatusUpdate::completed(
                &report(),
                &job(),
                Stage::One,
                artifacts,
                "stage 1 done",
                at(),
            ),
        ),
        (
            "StatusUpdate.campaign_completed",
            StatusUpdate::completed_final(
                &vk_parser::ids::ReportId::parse("camp-2026-0007").unwrap(),
                &vk_parser::ids::JobId::parse("job_77").unwrap(),
                Stage::One,
                Artifacts {
                    prefix: "SUGGEST/6/job_77_stage1/".into(),
                    manifest: "SUGGEST/6/job_77_stage1/manifest.json".into(),
                },
                "4 communities: deferred 0, published 1, skipped 1, suggested 2, unknown 0",
                at(),
            ),
        ),
        ("StatusUpdate.community_failed", community_failed()),
        (
            "StatusUpdate.failed",
            StatusUpdate::failed(
                &report(),
                &job(),
                Stage::Two,
                FailureReason::Stage1NotFound,
                "no stage 1 manifest under DEFAULT/1_2_3/job_42_stage1/",
                at(),
            ),
        ),
    ];
    for (name, update) in cases {
        let value = serde_json::to_value(&update).unwrap();
        assert_golden(name, &value);
        let back: StatusUpdate = serde_json::from_value(value).unwrap();
        assert_eq!(back, update);
    }
}

/// A community task's final status with one community private: FAILED with its files and the
/// metrics, built by the service's own metrics builder.
fn community_failed() -> StatusUpdate {
    use vk_parser::community::output::{metrics, CommunityResult, ListCount};
    let mut open = CommunityResult::new(Some(1), "apiclub");
    open.lists
        .insert("members".into(), ListCount::new(1520, 1520));
    open.joined = Some(14);
    open.left = Some(9);
    let mut private = CommunityResult::new(Some(12), "club12");
    private.lists.insert("members".into(), ListCount::new(0, 0));
    private.fail("private", Some(15));
    StatusUpdate::failed(
        &vk_parser::ids::ReportId::parse("task-2026-0003").unwrap(),
        &vk_parser::ids::JobId::parse("job_91").unwrap(),
        Stage::One,
        FailureReason::VkAccessDenied,
        "1 of 2 communities failed: club12 private (15)",
        at(),
    )
    .with_artifacts(Artifacts {
        prefix: "COMMUNITY/MEMBERS/job_91_stage1/".into(),
        manifest: "COMMUNITY/MEMBERS/job_91_stage1/manifest.json".into(),
    })
    .with_metrics(Some(metrics(&[open, private])))
}

#[test]
fn graph_ready_golden_encodes() {
    let event = GraphReady::new(
        &report(),
        &job(),
        ReportType::Default,
        vec![id(1), id(2), id(3)],
        Artifacts {
            prefix: "DEFAULT/1_2_3/job_42_stage2/".into(),
            manifest: "DEFAULT/1_2_3/job_42_stage2/manifest.json".into(),
        },
    );
    assert_golden("GraphReady", &serde_json::to_value(&event).unwrap());
}

#[test]
fn event_ids_are_deterministic_per_transition() {
    let a = StatusUpdate::in_progress(&report(), &job(), Stage::One, 40, "x", at());
    let b = StatusUpdate::in_progress(&report(), &job(), Stage::One, 40, "y", Utc::now());
    let c = StatusUpdate::in_progress(&report(), &job(), Stage::One, 41, "x", at());
    let d = StatusUpdate::in_progress(&report(), &job(), Stage::Two, 40, "x", at());
    assert_eq!(a.event_id, b.event_id, "same transition, same id");
    assert_ne!(a.event_id, c.event_id);
    assert_ne!(a.event_id, d.event_id);
    let f1 = StatusUpdate::failed(
        &report(),
        &job(),
        Stage::One,
        FailureReason::VkRateLimit,
        "a",
        at(),
    );
    let f2 = StatusUpdate::failed(
        &report(),
        &job(),
        Stage::One,
        FailureReason::NetworkError,
        "b",
        at(),
    );
    assert_eq!(f1.event_id, f2.event_id, "one FAILED per job and stage");
    // Progress 100 is reserved for final statuses.
    assert_eq!(
        StatusUpdate::in_progress(&report(), &job(), Stage::One, 250, "", at()).progress,
        99
    );
}

fn invalid(field: &str) -> EventError {
    EventError::InvalidField {
        field: field.into(),
        reason: String::new(),
    }
}

/// Compares errors by variant and field, not by the wording of the reason.
fn same_error(a: &EventError, b: &EventError) -> bool {
    match (a, b) {
        (
            EventError::InvalidField { field: fa, .. },
            EventError::InvalidField { field: fb, .. },
        ) => fa == fb,
        (EventError::MalformedJson(_), EventError::MalformedJson(_)) => true,
        (EventError::PayloadTooLarge { .. }, EventError::PayloadTooLarge { .. }) => true,
        _ => a == b,
    }
}

/// (event_type field, payload field, the error it must give)
type MalformedCase = (Option<&'static [u8]>, Option<Vec<u8>>, EventError);

#[test]
fn malformed_entries_give_typed_errors() {
    const OK: &str = r#""reportId":"r","jobId":"j","userId":1,"reportType":"DEFAULT""#;
    let with = |extra: &str| format!("{{{OK},{extra}}}");
    let huge = format!(
        "{{{OK},\"socialNetworkIds\":[1],\"pad\":\"{}\"}}",
        "x".repeat(MAX_PAYLOAD_BYTES)
    );
    let many: Vec<String> = (1..=51).map(|n| n.to_string()).collect();
    let cases: Vec<MalformedCase> = vec![
        (None, Some(b"{}".to_vec()), EventError::MissingEventType),
        (Some(b"ReportCreated"), None, EventError::MissingPayload),
        (Some(b"Report\xffCreated"), Some(b"{}".to_vec()), EventError::NotUtf8("event_type")),
        (Some(b"ReportDeleted"), Some(b"{}".to_vec()), EventError::UnknownEventType("ReportDeleted".into())),
        // Aliases are exact: no other spelling, case or suffix.
        (Some(b"ReportCreatedEventX"), Some(b"{}".to_vec()), EventError::UnknownEventType("ReportCreatedEventX".into())),
        (Some(b"reportCreatedEvent"), Some(b"{}".to_vec()), EventError::UnknownEventType("reportCreatedEvent".into())),
        (Some(b"Stage2CreatedEvent "), Some(b"{}".to_vec()), EventError::UnknownEventType("Stage2CreatedEvent ".into())),
        (Some(b"ReportCreated"), Some(b"\xff\xfe".to_vec()), EventError::NotUtf8("payload")),
        (Some(b"ReportCreated"), Some(b"{\"reportId\":".to_vec()), EventError::MalformedJson(String::new())),
        (Some(b"ReportCreated"), Some(b"[1,2]".to_vec()), EventError::NotAnObject),
        (Some(b"ReportCreated"), Some(huge.into_bytes()), EventError::PayloadTooLarge { size: 0, limit: 0 }),
        (Some(b"ReportCreated"), Some(b"{}".to_vec()), EventError::MissingField("reportId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":"r"}"#.to_vec()), EventError::MissingField("jobId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":"r","jobId":"j","reportType":"DEFAULT","socialNetworkIds":[1]}"#.to_vec()), EventError::MissingField("userId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":"../etc","jobId":"j"}"#.to_vec()), invalid("reportId")),
        // Integer ids are read as text, so this one gets as far as the next field.
        (Some(b"ReportCreated"), Some(br#"{"reportId":7,"jobId":"j"}"#.to_vec()), EventError::MissingField("userId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":-7,"jobId":"j"}"#.to_vec()), invalid("reportId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":7.5,"jobId":"j"}"#.to_vec()), invalid("reportId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":true,"jobId":"j"}"#.to_vec()), invalid("reportId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":[7],"jobId":"j"}"#.to_vec()), invalid("reportId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":"r","jobId":4.2}"#.to_vec()), invalid("jobId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":"r","jobId":42.0}"#.to_vec()), invalid("jobId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":"r","jobId":1e3}"#.to_vec()), invalid("jobId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":"r","jobId":18446744073709551616}"#.to_vec()), invalid("jobId")),
        (Some(b"Stage2CreatedEvent"), Some(br#"{"reportId":"r","jobId":-1}"#.to_vec()), invalid("jobId")),
        (Some(b"ReportCreated"), Some(format!(r#"{{"reportId":"r","jobId":"{}"}}"#, "j".repeat(65)).into_bytes()), invalid("jobId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":"r","jobId":"j","userId":-4,"reportType":"DEFAULT","socialNetworkIds":[1]}"#.to_vec()), invalid("userId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":"r","jobId":"j","userId":1.5,"reportType":"DEFAULT","socialNetworkIds":[1]}"#.to_vec()), invalid("userId")),
        (Some(b"ReportCreated"), Some(br#"{"reportId":"r","jobId":"j","userId":1,"reportType":"FULL","socialNetworkIds":[1]}"#.to_vec()), invalid("reportType")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":"1,2""#).into_bytes()), invalid("socialNetworkIds")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":{}"#).into_bytes()), invalid("socialNetworkIds")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":1"#).into_bytes()), invalid("socialNetworkIds")),
        (Some(b"ReportCreatedEvent"), Some(with(&format!(r#""socialNetworkIds":[{}]"#, many.join(","))).into_bytes()), invalid("socialNetworkIds")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":[null]"#).into_bytes()), invalid("socialNetworkIds[0]")),
        (Some(b"ReportCreated"), Some(with(&format!(r#""socialNetworkIds":[{}]"#, many.join(","))).into_bytes()), invalid("socialNetworkIds")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":[1,"https://evil.example/x"]"#).into_bytes()), invalid("socialNetworkIds[1]")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":[0]"#).into_bytes()), invalid("socialNetworkIds[0]")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":[1,{"id":2}]"#).into_bytes()), invalid("socialNetworkIds[1]")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":["a/../../b"]"#).into_bytes()), invalid("socialNetworkIds[0]")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":[1],"options":[true]"#).into_bytes()), invalid("options")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":[1],"options":{"fastGraph":"yes"}"#).into_bytes()), invalid("options.fastGraph")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":[1],"options":{"canAccessClosed":"false"}"#).into_bytes()), invalid("options.canAccessClosed")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":[1],"createdAt":"yesterday""#).into_bytes()), invalid("createdAt")),
        // Found by the fuzz harness: instants RFC 3339 cannot write would not re-encode.
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":[1],"createdAt":-62167219201"#).into_bytes()), invalid("createdAt")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":[1],"createdAt":253402300800"#).into_bytes()), invalid("createdAt")),
        (Some(b"ReportCreated"), Some(with(r#""socialNetworkIds":[1],"eventId":"""#).into_bytes()), invalid("eventId")),
        (Some(b"Stage2Created"), Some(with(r#""stage1Prefix":"DEFAULT/1/other_stage1/""#).into_bytes()), invalid("stage1Prefix")),
        (Some(b"Stage2Created"), Some(with(r#""stage1Prefix":"DEFAULT/../j_stage1/""#).into_bytes()), invalid("stage1Prefix")),
        (Some(b"Stage2Created"), Some(with(r#""stage1Prefix":"HANDSHAKES/1/j_stage1/""#).into_bytes()), invalid("stage1Prefix")),
        (Some(b"Stage2Created"), Some(with(r#""stage1Prefix":"DEFAULT/1/j_stage2/""#).into_bytes()), invalid("stage1Prefix")),
        (Some(b"Stage2Created"), Some(br#"{"reportId":"r","jobId":"j","userId":1}"#.to_vec()), EventError::MissingField("reportType")),
    ];
    assert!(cases.len() >= 30);
    for (event_type, payload, want) in &cases {
        let got = IncomingEvent::decode(*event_type, payload.as_deref());
        match got {
            Err(err) => assert!(
                same_error(&err, want),
                "{:?}: got {err:?}, want {want:?}",
                payload
                    .as_ref()
                    .map(|p| String::from_utf8_lossy(&p[..p.len().min(120)]).into_owned())
            ),
            Ok(event) => panic!("decoded {event:?}, want {want:?}"),
        }
    }
}

#[test]
fn error_messages_name_the_field() {
    let err = decode(
        "ReportCreated",
        r#"{"reportId":"r","jobId":"j","userId":1,"reportType":"DEFAULT","socialNetworkIds":[1,"bad name!"]}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid field `socialNetworkIds[1]`: not a VK id, screen name or vk.com link"
    );
    let err = decode(
        "ReportCreated",
        r#"{"reportId":"r","jobId":"j","userId":"x"}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid field `userId`: expected a positive integer VK id"
    );
    for (ids, message) in [
        (
            r#""reportId":-7,"jobId":"j""#,
            "invalid field `reportId`: expected a string or a non-negative integer, found a negative number",
        ),
        (
            r#""reportId":"r","jobId":4.2"#,
            "invalid field `jobId`: expected a string or a non-negative integer, found a fractional or out-of-range number",
        ),
        (
            r#""reportId":false,"jobId":"j""#,
            "invalid field `reportId`: expected a string or a non-negative integer, found a boolean",
        ),
    ] {
        let err = decode("ReportCreated", &format!("{{{ids}}}")).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    let many: Vec<String> = (1..=51).map(|n| n.to_string()).collect();
    let err = decode(
        "ReportCreated",
        &format!(
            r#"{{"reportId":"r","jobId":"j","userId":1,"reportType":"DEFAULT","socialNetworkIds":[{}]}}"#,
            many.join(",")
        ),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid field `socialNetworkIds`: expected at most 50 entries, found 51"
    );
}

#[test]
fn ids_are_salvaged_from_undecodable_payloads() {
    let (r, j) = salvage_ids(br#"{"reportId":"r1","jobId":"j1","reportType":"NOPE"}"#).unwrap();
    assert_eq!((r.as_str(), j.as_str()), ("r1", "j1"));
    assert!(salvage_ids(br#"{"reportId":"../x","jobId":"j1"}"#).is_none());
    // Integer ids, as the seed backend sends them, are salvaged as their decimal strings.
    let (r, j) = salvage_ids(br#"{"reportId":2026001,"jobId":42,"userId":"x"}"#).unwrap();
    assert_eq!((r.as_str(), j.as_str()), ("2026001", "42"));
    assert!(salvage_ids(br#"{"reportId":-1,"jobId":42}"#).is_none());
    assert!(salvage_ids(br#"{"reportId":1.5,"jobId":42}"#).is_none());
    assert!(salvage_ids(b"not json").is_none());
}

#[test]
fn decoding_never_panics_on_mangled_payloads() {
    // Every prefix and a byte-flipped copy of the golden payloads: errors, never a panic.
    for (name, fixture_name) in [
        ("ReportCreated", "ReportCreated"),
        ("Stage2Created", "Stage2Created"),
        ("ReportCreatedEvent", "ReportCreatedEvent.seed"),
        ("Stage2CreatedEvent", "Stage2CreatedEvent.seed"),
    ] {
        let payload = fixture(fixture_name).to_string().into_bytes();
        for cut in 0..payload.len() {
            let _ = IncomingEvent::decode(Some(name.as_bytes()), Some(&payload[..cut]));
            let mut flipped = payload.clone();
            flipped[cut] ^= 0x5a;
            let _ = IncomingEvent::decode(Some(name.as_bytes()), Some(&flipped));
        }
    }
}

/// Every ```json block in docs/events.md equals one of the golden files, and every golden file
/// appears there: the document shows the contracts exactly as implemented.
#[test]
fn docs_events_md_matches_the_golden_files() {
    let doc =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/events.md"))
            .expect("docs/events.md");
    let blocks: Vec<Value> = doc
        .split("```json")
        .skip(1)
        .map(|rest| {
            let body = rest.split("```").next().unwrap();
            serde_json::from_str(body)
                .unwrap_or_else(|e| panic!("bad JSON block in docs: {e}\n{body}"))
        })
        .collect();
    let names = [
        "ReportCreated",
        "Stage2Created",
        "ReportCreatedEvent.seed",
        "Stage2CreatedEvent.seed",
        "SuggestPostCreated",
        "CommunityTaskCreated",
        "StatusUpdate.in_progress",
        "StatusUpdate.stage1_completed",
        "StatusUpdate.campaign_completed",
        "StatusUpdate.community_failed",
        "StatusUpdate.failed",
        "GraphReady",
    ];
    let golden: Vec<Value> = names.iter().map(|n| fixture(n)).collect();
    for (name, value) in names.iter().zip(&golden) {
        assert!(
            blocks.contains(value),
            "docs/events.md lacks the {name} example"
        );
    }
    for block in &blocks {
        assert!(
            golden.contains(block),
            "docs/events.md shows an example no test checks:\n{block:#}"
        );
    }
}
