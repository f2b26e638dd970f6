//! Stream entries as Redis sends them, read without trusting them.
//!
//! The redis crate's typed stream replies want UTF-8 field names and fail the whole reply on
//! one bad entry, which would let a single malformed entry block the group. Here replies are
//! walked as raw values: every entry comes out with its id and its fields as bytes, and anything
//! unexpected becomes an entry with no fields (dead-lettered later), never an error for the batch.

use redis::Value;

/// One entry: its id and its field/value pairs as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The entry id, e.g. `1700000000000-0`.
    pub id: String,
    /// Field/value pairs in stream order; empty for an entry deleted while pending.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl RawEntry {
    /// The value of `name`, if present.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// Total size of the fields, for bounding what is copied to the dead-letter stream.
    pub fn size(&self) -> usize {
        self.fields.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

fn bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

/// Parses `[id, [field, value, …] | nil]`.
fn parse_entry(value: &Value) -> Option<RawEntry> {
    let Value::Array(parts) = value else {
        return None;
    };
    let id = String::from_utf8(bytes(parts.first()?)?).ok()?;
    let fields = match parts.get(1) {
        Some(Value::Array(flat)) => flat
            .chunks(2)
            .filter_map(|pair| Some((bytes(pair.first()?)?, bytes(pair.get(1)?)?)))
            .collect(),
        _ => Vec::new(),
    };
    Some(RawEntry { id, fields })
}

fn parse_entries(value: &Value) -> Vec<RawEntry> {
    match value {
        Value::Array(items) => items.iter().filter_map(parse_entry).collect(),
        _ => Vec::new(),
    }
}

/// Entries of an XREADGROUP reply for one stream (RESP2 `[[name, entries]]`, RESP3 map); nil
/// (the block timed out) is no entries.
pub fn parse_read_reply(reply: &Value) -> Vec<RawEntry> {
    match reply {
        Value::Array(streams) => streams
            .iter()
            .flat_map(|stream| match stream {
                Value::Array(pair) if pair.len() == 2 => parse_entries(&pair[1]),
                _ => Vec::new(),
            })
            .collect(),
        Value::Map(streams) => streams.iter().flat_map(|(_, v)| parse_entries(v)).collect(),
        _ => Vec::new(),
    }
}

/// An XAUTOCLAIM reply: `[next cursor, entries, deleted ids]`.
pub fn parse_autoclaim_reply(reply: &Value) -> (String, Vec<RawEntry>) {
    let Value::Array(parts) = reply else {
        return ("0-0".to_owned(), Vec::new());
    };
    let cursor = parts
        .first()
        .and_then(bytes)
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| "0-0".to_owned());
    let entries = parts.get(1).map(parse_entries).unwrap_or_default();
    (cursor, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn reads_good_and_odd_entries() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(b"stream:parser:vk"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk(b"1-0"),
                    Value::Array(vec![
                        bulk(b"event_type"),
                        bulk(b"ReportCreated"),
                        bulk(b"payload"),
                        bulk(b"{}"),
                    ]),
                ]),
                // A field name that is not UTF-8 and an odd number of items.
                Value::Array(vec![
                    bulk(b"2-0"),
                    Value::Array(vec![bulk(b"\xff\xfe"), bulk(b"x"), bulk(b"dangling")]),
                ]),
                // Deleted while pending.
                Value::Array(vec![bulk(b"3-0"), Value::Nil]),
                // Garbage is skipped.
                Value::Int(7),
            ]),
        ])]);
        let entries = parse_read_reply(&reply);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].field("event_type"), Some(&b"ReportCreated"[..]));
        assert_eq!(
            entries[1].fields,
            vec![(b"\xff\xfe".to_vec(), b"x".to_vec())]
        );
        assert!(entries[2].fields.is_empty());
        assert!(parse_read_reply(&Value::Nil).is_empty());
    }

    #[test]
    fn reads_autoclaim_replies() {
        let reply = Value::Array(vec![
            bulk(b"0-0"),
            Value::Array(vec![Value::Array(vec![
                bulk(b"5-0"),
                Value::Array(vec![bulk(b"a"), bulk(b"b")]),
            ])]),
            Value::Array(vec![bulk(b"4-0")]),
        ]);
        let (cursor, entries) = parse_autoclaim_reply(&reply);
        assert_eq!(cursor, "0-0");
        assert_eq!(entries[0].id, "5-0");
    }
}
