//! Property-based fuzzing of the code that reads outside input: stream entries ([`events`]),
//! VK's answers ([`vk`]) and seeds as people type them ([`names`]). Test-only.
//!
//! Every target asserts the same thing first: any input gives a value or a typed error, never a
//! panic (the service must not die, or block its stream, on one bad entry or one odd answer).
//! Where a value can be written back (an event re-encoded, an id turned into a link) the targets
//! also check that it reads back the same. Inputs are both arbitrary bytes and structure-aware:
//! valid-shaped JSON with one field mutated (wrong types, huge numbers, odd strings, path
//! characters, NUL, bytes that are not UTF-8), since purely random bytes rarely get past the
//! JSON parser.
//!
//! Case counts are proptest's (256 per property, or `PROPTEST_CASES`), so CI pays a few seconds
//! and a long run is `PROPTEST_CASES=N cargo test --lib fuzz::events` (see BENCHMARKS.md,
//! "Fuzzing"). A failure is shrunk and saved under `proptest-regressions/`, and replayed first
//! on later runs: commit that file with the fix.

mod events;
mod names;
mod vk;

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Strings that have broken parsers before: path tricks, encodings, NUL, bidi and BOM marks,
/// number-like text, VK link shapes, very long ones.
pub(crate) fn odd_string() -> impl Strategy<Value = String> {
    let fixed: Vec<String> = [
        "",
        " ",
        "\t\n",
        "..",
        "../../etc/passwd",
        "a/b",
        "a\\b",
        "/",
        "%2F",
        "%00",
        "\0",
        "a\0b",
        "é",
        "дуров",
        "\u{202e}evil",
        "\u{feff}1",
        "\u{fffd}",
        "😀",
        "0",
        "-0",
        "-1",
        "+5",
        "1e3",
        "0x10",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "id",
        "id0",
        "id-1",
        "id99999999999999999999",
        "vk.com",
        "vk.com/",
        "https://vk.com/",
        "https://vk.com/../x",
        "https://vk.com@evil.example/durov",
        "http://VK.COM/Durov?x=1#y",
        "//vk.com/id1",
        "DEFAULT",
        "DEFAULT/1/job_stage1/",
        "DEFAULT/../job_stage1/",
        "user",
        "group",
        "ReportCreated",
        "null",
        "true",
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.123456789123+03:00",
        "2024-02-30T00:00:00Z",
        "2024-01-01T00:00:00+25:00",
        "2024-01-01 00:00:00",
        "2024-01-01T00:00:00",
        "0000-01-01T00:00:00Z",
        "-0001-01-01T00:00:00",
        "+12345-01-01T00:00:00",
        "9999-12-31T23:59:60Z",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain(["a".repeat(65), "x".repeat(129), "1".repeat(300)])
    .collect();
    prop_oneof![
        prop::sample::select(fixed),
        prop::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter),
        "[a-zA-Z0-9_./:?#@%-]{0,40}",
    ]
}

/// Any JSON value, a few levels deep, with odd strings and extreme numbers at the leaves.
pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        magnitude().prop_map(Value::from),
        // NaN and infinities become null, as serde_json writes them.
        any::<f64>().prop_map(Value::from),
        odd_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((odd_string(), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Integers of every magnitude (a random bit length, then random bits), both signs: uniform
/// `i64`s are almost all near 2^63 and never land in ranges such as "a plausible timestamp".
pub(crate) fn magnitude() -> impl Strategy<Value = i64> {
    (0u32..64, any::<u64>(), any::<bool>()).prop_map(|(bits, raw, negative)| {
        let n = if bits == 0 {
            0
        } else {
            (raw >> (64 - bits)) as i64
        };
        if negative {
            n.wrapping_neg()
        } else {
            n
        }
    })
}

/// JSON text for one value: an arbitrary value, or a literal serde_json's `Value` cannot hold
/// (numbers past i64/u64/f64, lone surrogates, deep nesting, broken tokens).
pub(crate) fn json_text() -> impl Strategy<Value = String> {
    let literals: Vec<String> = [
        "1e400",
        "-1e400",
        "18446744073709551616",
        "-9223372036854775809",
        "9223372036854775807",
        "-0",
        "0.0",
        "1.0",
        "1e2",
        "1.5",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\\udc00x\"",
        "\"a\\/b\"",
        "\"\"",
        "NaN",
        "Infinity",
        "\"",
        "[",
        "{\"a\":}",
        "01",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain(["[".repeat(200) + &"]".repeat(200)])
    .collect();
    prop_oneof![
        3 => arb_json().prop_map(|v| v.to_string()),
        1 => prop::sample::select(literals),
    ]
}

/// A byte-level damage to apply after the JSON is written.
#[derive(Debug, Clone)]
pub(crate) enum ByteDamage {
    /// Leave the text alone.
    None,
    /// Cut it at a fraction (per mille) of its length.
    Truncate(u16),
    /// Insert a byte (often not UTF-8) at a fraction of its length.
    Insert(u16, u8),
    /// Replace the byte at a fraction of its length.
    Replace(u16, u8),
}

/// Mostly harmless: most cases should reach the field checks, not die in the JSON parser.
pub(crate) fn byte_damage() -> impl Strategy<Value = ByteDamage> {
    prop_oneof![
        6 => Just(ByteDamage::None),
        1 => (0u16..=1000).prop_map(ByteDamage::Truncate),
        1 => (0u16..=1000, any::<u8>()).prop_map(|(at, b)| ByteDamage::Insert(at, b)),
        1 => (0u16..=1000, any::<u8>()).prop_map(|(at, b)| ByteDamage::Replace(at, b)),
    ]
}

impl ByteDamage {
    /// The damaged bytes.
    pub(crate) fn apply(&self, text: String) -> Vec<u8> {
        let mut bytes = text.into_bytes();
        let at = |per_mille: u16, len: usize| len * usize::from(per_mille) / 1000;
        match *self {
            ByteDamage::None => {}
            ByteDamage::Truncate(p) => bytes.truncate(at(p, bytes.len())),
            ByteDamage::Insert(p, b) => {
                let i = at(p, bytes.len());
                bytes.insert(i, b);
            }
            ByteDamage::Replace(p, b) => {
                if !bytes.is_empty() {
                    let i = at(p, bytes.len() - 1);
                    bytes[i] = b;
                }
            }
        }
        bytes
    }
}

/// A JSON object written from `(key, value text)` pairs, keys escaped, values as given.
pub(crate) fn object_text(fields: &[(String, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// One change to a valid object: a known field dropped, or set to another value text, or an
/// extra field added.
#[derive(Debug, Clone)]
pub(crate) enum FieldMutation {
    /// Drop the `n`-th known field.
    Remove(usize),
    /// Set the `n`-th known field (added if absent) to this JSON text.
    Set(usize, String),
    /// Add a field with any name.
    Extra(String, String),
}

/// Up to three mutations, each aimed at one of `known` fields (by index) or at a new one.
pub(crate) fn field_mutations(known: usize) -> impl Strategy<Value = Vec<FieldMutation>> {
    let one = prop_oneof![
        1 => (0..known).prop_map(FieldMutation::Remove),
        3 => (0..known, json_text()).prop_map(|(i, v)| FieldMutation::Set(i, v)),
        1 => (odd_string(), json_text()).prop_map(|(k, v)| FieldMutation::Extra(k, v)),
    ];
    prop::collection::vec(one, 0..=3)
}

/// Applies `mutations` to the fields of `object` (the keys of `known` are the targets).
pub(crate) fn mutate_object(
    object: &Map<String, Value>,
    known: &[&str],
    mutations: &[FieldMutation],
) -> String {
    let mut fields: Vec<(String, String)> = object
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    for mutation in mutations {
        match mutation {
            FieldMutation::Remove(i) => fields.retain(|(k, _)| k != known[*i]),
            FieldMutation::Set(i, text) => {
                let key = known[*i];
                match fields.iter_mut().find(|(k, _)| k == key) {
                    Some(field) => field.1 = text.clone(),
                    None => fields.push((key.to_owned(), text.clone())),
                }
            }
            FieldMutation::Extra(k, v) => fields.push((k.clone(), v.clone())),
        }
    }
    object_text(&fields)
}
