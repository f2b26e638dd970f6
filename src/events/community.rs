//! One entry of a job's `groups`: how an event names a VK community.
//!
//! People paste what they see: `123`, `-123` (a wall's owner id), `club123`, `public123`,
//! `event123`, a screen name (`apiclub`), or a link (`https://vk.com/apiclub`, `vk.ru/club1`).
//! Numeric forms become ids here; names stay names and are resolved against VK later
//! (`utils.resolveScreenName`: a name may belong to a user or an application, which is then
//! not a community). Links follow the seed rules ([`super::seed`]): only VK's hosts, only the
//! first path segment.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::fields::{invalid, present, wrong_type};
use super::seed::{page_name, screen_name};
use super::{EventError, SeedError};
use crate::ids::GroupId;

/// A community as the event gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CommunityRef {
    /// A numeric id (`123`, `-123`, `club123`, `public123`, `event123`).
    Id(GroupId),
    /// A screen name to resolve (`apiclub`, `vk.com/apiclub`).
    ScreenName(String),
}

/// The prefixes VK gives a community's default address.
const ID_PREFIXES: [&str; 3] = ["club", "public", "event"];

impl CommunityRef {
    /// Parses one entry given as a string.
    pub fn parse(raw: &str) -> Result<Self, SeedError> {
        let name = page_name(raw)?;
        let digits = name.strip_prefix('-').unwrap_or(name);
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            return parse_id(digits);
        }
        let lower = name.to_ascii_lowercase();
        for prefix in ID_PREFIXES {
            if let Some(rest) = lower.strip_prefix(prefix) {
                if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                    return parse_id(rest);
                }
            }
        }
        screen_name(&lower).map(CommunityRef::ScreenName)
    }

    /// Parses an entry given as a JSON number: a community id, or its wall's negative owner id.
    pub fn from_number(n: i64) -> Result<Self, SeedError> {
        GroupId::new(n.checked_abs().ok_or(SeedError::BadId)?)
            .map(CommunityRef::Id)
            .map_err(|_| SeedError::BadId)
    }
}

/// A job's `field`: 1 to `max` communities in any of the forms above, in the order given,
/// duplicates removed; a refusal names the entry (`groups[3]`).
pub(super) fn community_list(
    o: &Map<String, Value>,
    field: &'static str,
    max: usize,
) -> Result<Vec<CommunityRef>, EventError> {
    let list = match present(o, field) {
        None => return Err(EventError::MissingField(field)),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong_type(field, "an array", other)),
    };
    if list.is_empty() || list.len() > max {
        return Err(invalid(
            field,
            format!("expected 1 to {max} entries, found {}", list.len()),
        ));
    }
    let mut groups: Vec<CommunityRef> = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let entry_field = format!("{field}[{i}]");
        let group = match entry {
            Value::String(s) => CommunityRef::parse(s),
            Value::Number(n) => n
                .as_i64()
                .map(CommunityRef::from_number)
                .unwrap_or(Err(SeedError::BadId)),
            other => return Err(wrong_type(&entry_field, "a string or a number", other)),
        }
        .map_err(|e| invalid(&entry_field, e))?;
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    Ok(groups)
}

fn parse_id(digits: &str) -> Result<CommunityRef, SeedError> {
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| GroupId::new(n).ok())
        .map(CommunityRef::Id)
        .ok_or(SeedError::BadId)
}

impl fmt::Display for CommunityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommunityRef::Id(id) => write!(f, "club{id}"),
            CommunityRef::ScreenName(name) => f.write_str(name),
        }
    }
}

/// Serialized as the backend would send it: a number for ids, a string for names.
impl Serialize for CommunityRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CommunityRef::Id(id) => s.serialize_i64(id.get()),
            CommunityRef::ScreenName(name) => s.serialize_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: i64) -> CommunityRef {
        CommunityRef::Id(GroupId::new(n).unwrap())
    }
    fn name(s: &str) -> CommunityRef {
        CommunityRef::ScreenName(s.to_owned())
    }

    #[test]
    fn accepted_forms() {
        let cases = [
            ("1", id(1)),
            ("-42", id(42)),
            ("club7", id(7)),
            ("Public15", id(15)),
            ("event3", id(3)),
            ("apiclub", name("apiclub")),
            ("ApiClub", name("apiclub")),
            ("club", name("club")),
            ("clubfans", name("clubfans")),
            ("https://vk.com/apiclub", name("apiclub")),
            ("vk.ru/club1?w=wall-1_5", id(1)),
            ("https://m.vk.com/public9/", id(9)),
        ];
        for (raw, want) in cases {
            assert_eq!(CommunityRef::parse(raw), Ok(want), "{raw:?}");
        }
        assert_eq!(CommunityRef::from_number(-5), Ok(id(5)));
        assert_eq!(CommunityRef::from_number(5), Ok(id(5)));
    }

    #[test]
    fn refused_forms() {
        let cases = [
            ("", SeedError::Empty),
            ("0", SeedError::BadId),
            ("-0", SeedError::BadId),
            ("club0", SeedError::BadId),
            ("99999999999999999999", SeedError::BadId),
            ("https://evil.example/club1", SeedError::ForeignLink),
            ("vk.com/", SeedError::Empty),
            ("api club", SeedError::BadScreenName),
            ("группа", SeedError::BadScreenName),
        ];
        for (raw, want) in cases {
            assert_eq!(CommunityRef::parse(raw), Err(want), "{raw:?}");
        }
        assert_eq!(CommunityRef::from_number(0), Err(SeedError::BadId));
        assert_eq!(CommunityRef::from_number(i64::MIN), Err(SeedError::BadId));
        assert_eq!(
            CommunityRef::parse(&"a".repeat(300)),
            Err(SeedError::TooLong)
        );
    }
}
