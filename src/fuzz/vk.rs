//! Fuzz target `vk`: VK's answers, from the HTTP body to the typed values the stages use:
//! [`parse_answer`] (response, error, `execute_errors`), [`attribute`] (execute slots to calls),
//! the error table ([`VkError::action`], [`VkError::failure_reason`]) and the method decoders
//! (id pages and their paging, profiles, getMutual, groups, subscriptions).
//!
//! Properties: any body gives an answer or a [`VkError::Api`] / [`VkError::Decode`], with a short
//! message for the latter; a valid answer or error reads back as written; attribution gives one
//! result per call, keeps every non-`false` slot's value, never invents a value for a missing or
//! `false` slot, and only ever attributes an error VK listed; decoders give a value or a decode
//! error, and paging plans only offsets inside the list, never an unbounded number of them.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::{arb_json, byte_damage, field_mutations, mutate_object, odd_string};
use crate::vk::error::{ApiError, VkError};
use crate::vk::execute::{attribute, Call};
use crate::vk::http::{parse_answer, ExecuteErrorEntry};
use crate::vk::methods::{
    decode, decode_groups, decode_subscriptions, later_offsets, IdPage, Mutual, Profile,
    MAX_LIST_LEN,
};

/// Longest decode message accepted (it ends up in logs and failure messages).
const MAX_DECODE_MESSAGE_LEN: usize = 512;

/// The envelope's members, for mutations.
const ENVELOPE_FIELDS: [&str; 3] = ["response", "error", "execute_errors"];

/// The methods the service packs into executes.
const METHODS: [&str; 6] = [
    "friends.get",
    "users.getFollowers",
    "users.get",
    "friends.getMutual",
    "users.getSubscriptions",
    "utils.resolveScreenName",
];

/// Error codes with a meaning in the table, and a few without.
fn error_code() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => prop::sample::select(vec![
            1, 3, 5, 6, 8, 9, 10, 12, 13, 14, 15, 17, 18, 28, 29, 30, 100, 113, 125, 214, 1117,
            1118,
        ]),
        1 => any::<i64>(),
    ]
}

fn error_message() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "User authorization failed: invalid access_token (4).",
            "User authorization failed: access_token was given to another ip address.",
            "User authorization failed: user is blocked.",
            "Too many requests per second",
            "Flood control",
            "Runtime error occurred during code invocation: response size is too big",
            "Captcha needed",
            "This profile is private",
        ])
        .prop_map(str::to_owned),
        odd_string(),
    ]
}

fn api_error() -> impl Strategy<Value = ApiError> {
    (
        error_code(),
        error_message(),
        prop::option::of(any::<i64>()),
    )
        .prop_map(|(error_code, error_msg, error_subcode)| ApiError {
            error_code,
            error_msg,
            error_subcode,
        })
}

fn execute_error() -> impl Strategy<Value = ExecuteErrorEntry> {
    (
        prop_oneof![
            4 => prop::sample::select(METHODS.to_vec()).prop_map(str::to_owned),
            1 => odd_string(),
        ],
        error_code(),
        error_message(),
    )
        .prop_map(|(method, error_code, error_msg)| ExecuteErrorEntry {
            method,
            error_code,
            error_msg,
        })
}

fn error_json(error: &ApiError) -> Value {
    let mut body = json!({
        "error_code": error.error_code,
        "error_msg": error.error_msg,
        // VK echoes the parameters (never the token): the decoder must skip them.
        "request_params": [{"key": "method", "value": "friends.get"}, {"key": "v", "value": "5.199"}],
    });
    if let Some(sub) = error.error_subcode {
        body["error_subcode"] = json!(sub);
    }
    body
}

fn entry_json(entry: &ExecuteErrorEntry) -> Value {
    json!({"method": entry.method, "error_code": entry.error_code, "error_msg": entry.error_msg})
}

/// One execute slot: a value, `false` (the inner call failed), or absent.
fn slot() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => arb_json().prop_map(Some),
        2 => Just(Some(Value::Bool(false))),
        1 => Just(None),
    ]
}

/// The calls of an execute and VK's answer to it (before any mutation).
fn execute_case() -> impl Strategy<Value = (Vec<Call>, Value, Vec<ExecuteErrorEntry>)> {
    (1usize..=25).prop_flat_map(|n| {
        (
            prop::collection::vec(prop::sample::select(METHODS.to_vec()), n),
            prop::collection::vec(slot(), n),
            prop::collection::vec(execute_error(), 0..=n + 2),
            // Sometimes the response is not the keyed object at all.
            prop::option::weighted(0.1, arb_json()),
        )
            .prop_map(|(methods, slots, errors, other)| {
                let calls: Vec<Call> = methods
                    .into_iter()
                    .map(|m| Call::new(m, json!({"user_id": 1})))
                    .collect();
                let response = other.unwrap_or_else(|| {
                    let keyed: Map<String, Value> = slots
                        .into_iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| (format!("c{i}"), v)))
                        .collect();
                    Value::Object(keyed)
                });
                (calls, response, errors)
            })
    })
}

/// A well-formed envelope: an answer (maybe with `execute_errors`) or an error.
fn envelope() -> impl Strategy<Value = Value> {
    prop_oneof![
        (arb_json(), prop::collection::vec(execute_error(), 0..4)).prop_map(|(r, errors)| {
            json!({"response": r, "execute_errors": errors.iter().map(entry_json).collect::<Vec<_>>()})
        }),
        execute_case().prop_map(|(_, r, errors)| {
            json!({"response": r, "execute_errors": errors.iter().map(entry_json).collect::<Vec<_>>()})
        }),
        api_error().prop_map(|e| json!({"error": error_json(&e)})),
    ]
}

/// Checks what any parse result must satisfy; returns the answer when there is one.
fn check_parsed(
    body: &[u8],
    result: Result<crate::vk::http::Answer, VkError>,
) -> Result<(), TestCaseError> {
    match result {
        Ok(answer) => {
            prop_assert_eq!(answer.bytes, body.len());
            prop_assert!(!answer.response.is_null(), "a null response is unreadable");
        }
        Err(error) => {
            // The table is total; the call only has to return.
            let _ = (error.action(), error.failure_reason(), error.code());
            match &error {
                VkError::Api { error: api, .. } => {
                    prop_assert_eq!(error.code(), Some(api.error_code));
                }
                VkError::Decode { message, .. } => {
                    prop_assert!(
                        message.len() <= MAX_DECODE_MESSAGE_LEN,
                        "decode message of {} bytes",
                        message.len()
                    );
                }
                other => prop_assert!(false, "parse_answer gave {:?}", other),
            }
        }
    }
    Ok(())
}

/// What attribution must satisfy for any answer.
fn check_attribution(
    calls: &[Call],
    answer: &crate::vk::http::Answer,
) -> Result<(), TestCaseError> {
    let results = attribute(calls, answer);
    prop_assert_eq!(results.len(), calls.len());
    for (i, result) in results.iter().enumerate() {
        let slot = answer
            .response
            .as_object()
            .and_then(|o| o.get(&format!("c{i}")));
        match (slot, result) {
            (None, None) => {}
            (None, Some(r)) => prop_assert!(false, "slot c{} is absent but got {:?}", i, r),
            (Some(Value::Bool(false)), None) => {}
            (Some(Value::Bool(false)), Some(Ok(v))) => {
                prop_assert!(false, "slot c{} is false but got a value {}", i, v)
            }
            (Some(Value::Bool(false)), Some(Err(e))) => {
                let listed = answer
                    .execute_errors
                    .iter()
                    .any(|x| x.error_code == e.error_code && x.error_msg == e.error_msg);
                prop_assert!(listed, "slot c{} got an error VK did not list: {:?}", i, e);
            }
            (Some(v), Some(Ok(got))) => prop_assert_eq!(v, got),
            (Some(v), other) => prop_assert!(false, "slot c{} = {} but got {:?}", i, v, other),
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn fuzz_vk_arbitrary_bodies(body in prop::collection::vec(any::<u8>(), 0..300)) {
        check_parsed(&body, parse_answer("execute", &body))?;
    }

    #[test]
    fn fuzz_vk_mutated_envelopes(
        envelope in envelope(),
        mutations in field_mutations(ENVELOPE_FIELDS.len()),
        damage in byte_damage(),
    ) {
        let Value::Object(object) = envelope else { panic!("envelopes are objects") };
        let body = damage.apply(mutate_object(&object, &ENVELOPE_FIELDS, &mutations));
        check_parsed(&body, parse_answer("execute", &body))?;
    }

    #[test]
    fn fuzz_vk_mutated_errors(
        error in api_error(),
        mutations in field_mutations(4),
        damage in byte_damage(),
    ) {
        let Value::Object(inner) = error_json(&error) else { panic!("errors are objects") };
        let fields = ["error_code", "error_msg", "error_subcode", "request_params"];
        let text = format!("{{\"error\":{}}}", mutate_object(&inner, &fields, &mutations));
        let body = damage.apply(text);
        check_parsed(&body, parse_answer("users.get", &body))?;
    }

    #[test]
    fn fuzz_vk_answers_and_errors_round_trip(
        // Null is no answer; mapped, not filtered (rejects add up over a long run).
        response in arb_json().prop_map(|v| if v.is_null() { json!([]) } else { v }),
        errors in prop::collection::vec(execute_error(), 0..4),
        error in api_error(),
    ) {
        let body = json!({"response": response, "execute_errors": errors.iter().map(entry_json).collect::<Vec<_>>()}).to_string();
        let answer = parse_answer("execute", body.as_bytes());
        prop_assert!(answer.is_ok(), "{:?}", answer);
        let answer = answer.expect("checked");
        // serde_json's float parsing is not bit-exact (no `float_roundtrip`), and no field the
        // service reads is a float: compare with what serde_json itself reads from that text.
        let expected: Value = serde_json::from_str(&response.to_string()).expect("valid JSON");
        prop_assert_eq!(&answer.response, &expected);
        prop_assert_eq!(&answer.execute_errors, &errors);

        let body = json!({"error": error_json(&error)}).to_string();
        match parse_answer("users.get", body.as_bytes()) {
            Err(VkError::Api { error: got, .. }) => prop_assert_eq!(got, error),
            other => prop_assert!(false, "expected the error back, got {:?}", other),
        }
    }

    #[test]
    fn fuzz_vk_execute_attribution(
        (calls, response, errors) in execute_case(),
        mutations in field_mutations(ENVELOPE_FIELDS.len()),
        mutate in prop::bool::weighted(0.2),
    ) {
        let envelope = json!({"response": response, "execute_errors": errors.iter().map(entry_json).collect::<Vec<_>>()});
        let Value::Object(object) = envelope else { panic!("envelopes are objects") };
        let mutations = if mutate { mutations } else { Vec::new() };
        let body = mutate_object(&object, &ENVELOPE_FIELDS, &mutations).into_bytes();
        let parsed = parse_answer("execute", &body);
        check_parsed(&body, parsed.clone())?;
        if let Ok(answer) = parsed {
            check_attribution(&calls, &answer)?;
        }
    }

    #[test]
    fn fuzz_vk_method_decoders(
        value in prop_oneof![
            arb_json(),
            (json_value_or_ids(), json_value_or_ids())
                .prop_map(|(count, items)| json!({"count": count, "items": items})),
            (json_value_or_ids(), arb_json(), arb_json()).prop_map(|(id, a, b)| {
                json!([{"id": id, "first_name": a, "counters": b, "common_friends": a, "is_closed": b}])
            }),
            (arb_json(), arb_json()).prop_map(|(users, groups)| json!({"users": users, "groups": groups})),
            arb_json().prop_map(|groups| json!({"groups": groups, "profiles": []})),
        ],
        page in prop::sample::select(vec![1000u32, 5000]),
    ) {
        let decode_only = |r: Result<(), VkError>| match r {
            Ok(()) | Err(VkError::Decode { .. }) => Ok(()),
            Err(other) => Err(TestCaseError::fail(format!("not a decode error: {other:?}"))),
        };
        decode_only(decode::<Vec<Profile>>("users.get", value.clone()).map(drop))?;
        decode_only(decode::<Vec<Mutual>>("friends.getMutual", value.clone()).map(drop))?;
        decode_only(decode_groups(value.clone()).map(drop))?;
        decode_only(decode_subscriptions(value.clone()).map(drop))?;
        let page_data = decode::<IdPage>("friends.get", value);
        decode_only(page_data.clone().map(drop))?;
        if let Ok(page_data) = page_data {
            check_offsets(&page_data, page)?;
        }
    }

    #[test]
    fn fuzz_vk_paging_plans(
        count in prop_oneof![0u64..30_000, any::<u64>()],
        got in 0usize..6000,
        page in prop::sample::select(vec![1000u32, 5000]),
    ) {
        let page_data = IdPage { count, items: vec![1; got] };
        check_offsets(&page_data, page)?;
    }
}

/// Numbers, including ones past i64, or lists of them, or anything.
fn json_value_or_ids() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::collection::vec(any::<i64>(), 0..20).prop_map(Value::from),
        arb_json(),
    ]
}

/// Paging after a first page: offsets inside the list, increasing by a page, bounded in number.
fn check_offsets(first: &IdPage, page: u32) -> Result<(), TestCaseError> {
    match later_offsets("friends.get", first, page) {
        Ok(offsets) => {
            let most = MAX_LIST_LEN / u64::from(page) + 1;
            prop_assert!(offsets.len() as u64 <= most, "{} pages", offsets.len());
            prop_assert!(offsets.iter().all(|&o| o < first.count));
            prop_assert!(offsets
                .first()
                .is_none_or(|&o| o == first.items.len() as u64));
            prop_assert!(offsets.windows(2).all(|w| w[1] - w[0] == u64::from(page)));
            if let Some(&last) = offsets.last() {
                prop_assert!(last + u64::from(page) >= first.count, "the list is covered");
            } else if !first.items.is_empty() {
                prop_assert!(
                    first.items.len() as u64 >= first.count,
                    "the list is covered"
                );
            }
        }
        Err(VkError::Decode { .. }) => prop_assert!(first.count > MAX_LIST_LEN),
        Err(other) => prop_assert!(false, "not a decode error: {:?}", other),
    }
    Ok(())
}
