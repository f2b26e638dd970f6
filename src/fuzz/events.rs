//! Fuzz target `events`: [`IncomingEvent::decode`] (and [`salvage_ids`]) on stream entries.
//!
//! Properties: any two fields give an event or an [`EventError`](crate::events::EventError) with
//! a short message (it lands in the dead-letter stream and in a status event); an accepted event,
//! re-encoded the way `publish` writes it, decodes to the same event; a valid event survives the
//! round trip. Reports are generated; campaigns and community tasks start from their golden
//! payloads and are mutated.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::Value;

use super::{
    byte_damage, field_mutations, json_text, magnitude, mutate_object, odd_string, FieldMutation,
};
use crate::events::{
    salvage_ids, IncomingEvent, ReportCreated, ReportOptions, SeedRef, Stage2Created,
    MAX_PAYLOAD_BYTES, MAX_SEEDS,
};
use crate::ids::{JobId, ReportId, ReportType, Stage, VkUserId};
use crate::key::StagePrefix;

/// Longest error message accepted from the decoder: it is stored per dead letter.
const MAX_MESSAGE_LEN: usize = 1024;

/// Every field either event reads, in one list so mutations can aim at them by index.
const FIELDS: [&str; 9] = [
    "reportId",
    "jobId",
    "userId",
    "reportType",
    "socialNetworkIds",
    "options",
    "eventId",
    "createdAt",
    "stage1Prefix",
];

fn opaque_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,64}"
}

fn vk_id() -> impl Strategy<Value = VkUserId> {
    (1..=i64::MAX).prop_map(|n| VkUserId::new(n).expect("positive"))
}

fn report_type() -> impl Strategy<Value = ReportType> {
    prop_oneof![
        Just(ReportType::Default),
        Just(ReportType::Handshakes),
        Just(ReportType::SubGraph),
    ]
}

/// A seed the decoder accepts: an id, or whatever a typed name or link parses to.
fn seed() -> impl Strategy<Value = SeedRef> {
    prop_oneof![
        vk_id().prop_map(SeedRef::Id),
        // Mapped, not filtered: a filter's rejects add up over a long run and abort it.
        "((https?://)?(m\\.)?vk\\.(com|ru)/)?[A-Za-z0-9_.]{1,40}".prop_map(|raw| {
            SeedRef::parse(&raw).unwrap_or_else(|_| SeedRef::ScreenName("durov".to_owned()))
        }),
    ]
}

/// 1 to MAX_SEEDS distinct seeds (the decoder drops duplicates, so a valid event has none).
fn seeds() -> impl Strategy<Value = Vec<SeedRef>> {
    prop::collection::vec(seed(), 1..=MAX_SEEDS).prop_map(|list| {
        let mut distinct: Vec<SeedRef> = Vec::with_capacity(list.len());
        for seed in list {
            if !distinct.contains(&seed) {
                distinct.push(seed);
            }
        }
        distinct
    })
}

/// 1 to 32 characters of any kind (NUL and controls included): at most 128 bytes.
fn event_id() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::collection::vec(any::<char>(), 1..=32).prop_map(String::from_iter))
}

/// Any instant RFC 3339 can write: years 0000 to 9999, with nanoseconds.
fn created_at() -> impl Strategy<Value = Option<DateTime<Utc>>> {
    prop::option::of(
        (-62_167_219_200_i64..=253_402_300_799, 0u32..1_000_000_000)
            .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).expect("in range")),
    )
}

fn report_created() -> impl Strategy<Value = IncomingEvent> {
    (
        (opaque_id(), opaque_id(), vk_id(), report_type()),
        seeds(),
        any::<(bool, bool, bool)>(),
        event_id(),
        created_at(),
    )
        .prop_map(
            |((report, job, user, kind), seeds, (fast, subs, closed), event_id, created_at)| {
                IncomingEvent::ReportCreated(ReportCreated {
                    report_id: ReportId::parse(&report).expect("valid id"),
                    job_id: JobId::parse(&job).expect("valid id"),
                    user_id: user,
                    report_type: kind,
                    social_network_ids: seeds,
                    options: ReportOptions {
                        fast_graph: fast,
                        subs_graph: subs,
                        can_access_closed: closed,
                    },
                    event_id,
                    created_at,
                })
            },
        )
}

fn stage2_created() -> impl Strategy<Value = IncomingEvent> {
    (
        (opaque_id(), opaque_id(), vk_id(), report_type()),
        prop::option::of(prop::collection::vec(vk_id(), 1..=MAX_SEEDS)),
        event_id(),
    )
        .prop_map(|((report, job, user, kind), main_ids, event_id)| {
            let job_id = JobId::parse(&job).expect("valid id");
            let stage1_prefix =
                main_ids.map(|ids| StagePrefix::new(kind, &ids, &job_id, Stage::One));
            IncomingEvent::Stage2Created(Stage2Created {
                report_id: ReportId::parse(&report).expect("valid id"),
                job_id,
                user_id: user,
                report_type: kind,
                stage1_prefix,
                event_id,
            })
        })
}

fn valid_event() -> impl Strategy<Value = IncomingEvent> {
    prop_oneof![report_created(), stage2_created()]
}

/// `socialNetworkIds` as a list of odd entries: seeds, numbers, odd strings, other JSON.
fn seeds_text() -> impl Strategy<Value = String> {
    let entry = prop_oneof![
        seed().prop_map(|s| serde_json::to_string(&s).expect("a seed serializes")),
        any::<i64>().prop_map(|n| n.to_string()),
        odd_string().prop_map(|s| Value::from(s).to_string()),
        json_text(),
    ];
    prop::collection::vec(entry, 0..=MAX_SEEDS + 2).prop_map(|list| format!("[{}]", list.join(",")))
}

/// `options` with each flag a boolean or something else.
fn options_text() -> impl Strategy<Value = String> {
    let flag = prop_oneof![
        3 => any::<bool>().prop_map(|b| b.to_string()),
        1 => json_text(),
    ];
    (flag.clone(), flag.clone(), flag).prop_map(|(a, b, c)| {
        format!("{{\"fastGraph\":{a},\"subsGraph\":{b},\"canAccessClosed\":{c}}}")
    })
}

/// Field mutations, plus ones aimed inside `socialNetworkIds` and `options`.
fn event_mutations() -> impl Strategy<Value = Vec<FieldMutation>> {
    let nested = prop_oneof![
        seeds_text().prop_map(|t| FieldMutation::Set(4, t)),
        // Numbers of every size where numbers are read (report, job and user ids, timestamps).
        (prop::sample::select(vec![0usize, 1, 2, 7]), magnitude())
            .prop_map(|(field, n)| FieldMutation::Set(field, n.to_string())),
        options_text().prop_map(|t| FieldMutation::Set(5, t)),
        // A prefix of another job or type, or of stage 2, or a path trick.
        (
            report_type(),
            "[A-Za-z0-9_.-]{1,20}",
            opaque_id(),
            0u8..4,
            odd_string()
        )
            .prop_map(|(kind, main, job, stage, odd)| {
                let raw = if stage == 3 {
                    odd
                } else {
                    format!("{kind}/{main}/{job}_stage{stage}/")
                };
                FieldMutation::Set(8, Value::from(raw).to_string())
            }),
    ];
    (field_mutations(FIELDS.len()), prop::option::of(nested)).prop_map(|(mut list, nested)| {
        list.extend(nested);
        list
    })
}

/// The stream's `event_type`: a known one (or its seed-backend alias) mostly, anything sometimes.
fn event_type() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::weighted(
        0.95,
        prop_oneof![
            4 => prop::sample::select(vec![
                "ReportCreated",
                "Stage2Created",
                "ReportCreatedEvent",
                "Stage2CreatedEvent",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..80),
            1 => odd_string().prop_map(String::into_bytes),
        ],
    )
}

/// The shared assertions: typed result, short message, accepted events round-trip.
fn check(event_type: Option<&[u8]>, payload: Option<&[u8]>) -> Result<(), TestCaseError> {
    let result = IncomingEvent::decode(event_type, payload);
    if let Some(payload) = payload {
        // Used on the failure path only; it must be as total as the decoder.
        let _ = salvage_ids(payload);
    }
    match result {
        Ok(event) => {
            let again = IncomingEvent::decode(
                Some(event.event_type().as_bytes()),
                Some(event.payload_json().as_bytes()),
            );
            prop_assert_eq!(
                again,
                Ok(event),
                "an accepted event must read back the same"
            );
        }
        Err(error) => {
            let message = error.to_string();
            prop_assert!(
                !message.is_empty() && message.len() <= MAX_MESSAGE_LEN,
                "message of {} bytes: {:.200}",
                message.len(),
                message
            );
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn fuzz_events_arbitrary_bytes(
        event_type in event_type(),
        payload in prop::option::weighted(0.95, prop::collection::vec(any::<u8>(), 0..400)),
    ) {
        check(event_type.as_deref(), payload.as_deref())?;
    }

    #[test]
    fn fuzz_events_mutated_json(
        event in valid_event(),
        // The stream names one event, the payload may be shaped as the other.
        swap_type in prop::bool::weighted(0.1),
        mutations in event_mutations(),
        damage in byte_damage(),
    ) {
        let Value::Object(object) = serde_json::from_str(&event.payload_json())
            .expect("payload_json writes JSON")
        else {
            panic!("payload_json writes an object");
        };
        let text = mutate_object(&object, &FIELDS, &mutations);
        let payload = damage.apply(text);
        let kind = match (event.event_type(), swap_type) {
            ("ReportCreated", true) => "Stage2Created",
            ("Stage2Created", true) => "ReportCreated",
            (kind, _) => kind,
        };
        check(Some(kind.as_bytes()), Some(&payload))?;
    }

    #[test]
    fn fuzz_events_valid_events_round_trip(event in valid_event()) {
        let payload = event.payload_json();
        prop_assert!(payload.len() <= MAX_PAYLOAD_BYTES);
        let decoded = IncomingEvent::decode(Some(event.event_type().as_bytes()), Some(payload.as_bytes()));
        prop_assert_eq!(decoded, Ok(event));
    }

    #[test]
    fn fuzz_events_oversized_payloads_are_refused_before_parsing(extra in 1usize..4096) {
        let payload = vec![b' '; MAX_PAYLOAD_BYTES + extra];
        let result = IncomingEvent::decode(Some(b"ReportCreated"), Some(&payload));
        prop_assert!(
            matches!(result, Err(crate::events::EventError::PayloadTooLarge { .. })),
            "{:?}", result
        );
    }
}

/// The fields a campaign or a community task reads, for mutations aimed at them by index.
const JOB_KIND_FIELDS: [&str; 11] = [
    "campaignId",
    "taskId",
    "jobId",
    "userId",
    "kind",
    "groups",
    "message",
    "attachments",
    "options",
    "eventId",
    "createdAt",
];

/// The golden payloads of the other job kinds (tests/fixtures/events), as objects.
fn job_kind_payloads() -> Vec<(&'static str, serde_json::Map<String, Value>)> {
    let parse = |text: &str| match serde_json::from_str(text) {
        Ok(Value::Object(o)) => o,
        _ => serde_json::Map::new(),
    };
    vec![
        (
            "SuggestPostCreated",
            parse(include_str!(
                "../../tests/fixtures/events/SuggestPostCreated.json"
            )),
        ),
        (
            "CommunityTaskCreated",
            parse(include_str!(
                "../../tests/fixtures/events/CommunityTaskCreated.json"
            )),
        ),
    ]
}

proptest! {
    /// Campaigns and community tasks, their fields set to odd JSON or removed and their bytes
    /// damaged: an event or a short error, never a panic, and what is accepted reads back.
    #[test]
    fn fuzz_other_job_kinds_mutated(
        which in 0usize..2,
        swap_type in prop::bool::weighted(0.1),
        mutations in field_mutations(JOB_KIND_FIELDS.len()),
        damage in byte_damage(),
    ) {
        let payloads = job_kind_payloads();
        let (event_type, object) = &payloads[which];
        let text = mutate_object(object, &JOB_KIND_FIELDS, &mutations);
        let payload = damage.apply(text);
        let event_type = if swap_type { payloads[1 - which].0 } else { event_type };
        check(Some(event_type.as_bytes()), Some(&payload))?;
    }
}
