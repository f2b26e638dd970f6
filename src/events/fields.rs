//! Reading an event payload's fields one by one, so that every refusal names its field and says
//! what was expected. Shared by every event decoder ([`super::incoming`], [`super::suggest`]).

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::incoming::MAX_PAYLOAD_BYTES;
use super::EventError;
use crate::ids::VkUserId;

/// Longest `eventId` kept.
const MAX_EVENT_ID_LEN: usize = 128;

/// The text of a `reportId` or `jobId`: a string as it is, or a non-negative JSON integer in
/// decimal (the seed backend's ids are database integers). `None` for anything else.
pub(super) fn id_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => n.as_u64().map(|n| Cow::Owned(n.to_string())),
        _ => None,
    }
}

pub(super) fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, EventError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(EventError::PayloadTooLarge {
            size: payload.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let text = std::str::from_utf8(payload).map_err(|_| EventError::NotUtf8("payload"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(EventError::NotAnObject),
        Err(e) => Err(EventError::MalformedJson(e.to_string())),
    }
}

/// A field's value, treating JSON `null` as absent.
pub(super) fn present<'a>(o: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    o.get(field).filter(|v| !v.is_null())
}

pub(super) fn invalid(field: &str, reason: impl ToString) -> EventError {
    EventError::InvalidField {
        field: field.to_owned(),
        reason: reason.to_string(),
    }
}

pub(super) fn wrong_type(field: &str, expected: &str, found: &Value) -> EventError {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    invalid(field, format!("expected {expected}, found {found}"))
}

pub(super) fn opaque<T, E: ToString>(
    o: &Map<String, Value>,
    field: &'static str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T, EventError> {
    match present(o, field) {
        None => Err(EventError::MissingField(field)),
        Some(Value::String(s)) => parse(s).map_err(|e| invalid(field, e)),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

/// `reportId` or `jobId`: a string, or a non-negative integer read as its decimal string; then
/// parsed like any opaque id.
pub(super) fn backend_id<T, E: ToString>(
    o: &Map<String, Value>,
    field: &'static str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T, EventError> {
    const EXPECTED: &str = "a string or a non-negative integer";
    let value = present(o, field).ok_or(EventError::MissingField(field))?;
    match (id_text(value), value) {
        (Some(text), _) => parse(&text).map_err(|e| invalid(field, e)),
        (None, Value::Number(n)) => {
            let found = if n.as_i64().is_some() {
                "a negative number"
            } else {
                "a fractional or out-of-range number"
            };
            Err(invalid(
                field,
                format!("expected {EXPECTED}, found {found}"),
            ))
        }
        (None, other) => Err(wrong_type(field, EXPECTED, other)),
    }
}

/// `userId` as a number or a string of digits (both are seen from the backend).
pub(super) fn user_id(o: &Map<String, Value>) -> Result<VkUserId, EventError> {
    const FIELD: &str = "userId";
    match present(o, FIELD) {
        None => Err(EventError::MissingField(FIELD)),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|n| VkUserId::new(n).ok())
            .ok_or_else(|| invalid(FIELD, "expected a positive integer VK id")),
        Some(Value::String(s)) => s.parse::<VkUserId>().map_err(|e| invalid(FIELD, e)),
        Some(other) => Err(wrong_type(FIELD, "a positive integer", other)),
    }
}

pub(super) fn event_id(o: &Map<String, Value>) -> Result<Option<String>, EventError> {
    match present(o, "eventId") {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_EVENT_ID_LEN => {
            Ok(Some(s.clone()))
        }
        Some(Value::String(_)) => Err(invalid(
            "eventId",
            format!("expected 1 to {MAX_EVENT_ID_LEN} characters"),
        )),
        Some(other) => Err(wrong_type("eventId", "a string", other)),
    }
}

/// RFC 3339, or a naive ISO timestamp (Python's `isoformat()`, taken as UTC), or unix seconds;
/// in years 0000 to 9999, the range RFC 3339 can write, so that an accepted event re-encodes
/// (`publish`, the dead-letter replay) to a payload this decoder accepts again.
pub(super) fn created_at(o: &Map<String, Value>) -> Result<Option<DateTime<Utc>>, EventError> {
    const FIELD: &str = "createdAt";
    let parsed = parse_created_at(o)?;
    match parsed {
        Some(t) if !(0..=9999).contains(&t.year()) => Err(invalid(
            FIELD,
            "expected a timestamp between the years 0000 and 9999",
        )),
        other => Ok(other),
    }
}

pub(super) fn parse_created_at(
    o: &Map<String, Value>,
) -> Result<Option<DateTime<Utc>>, EventError> {
    const FIELD: &str = "createdAt";
    match present(o, FIELD) {
        None => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .or_else(|_| {
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
            })
            .map(Some)
            .map_err(|_| invalid(FIELD, "expected an RFC 3339 timestamp")),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .map(Some)
            .ok_or_else(|| invalid(FIELD, "expected unix seconds in range")),
        Some(other) => Err(wrong_type(FIELD, "a timestamp string", other)),
    }
}
