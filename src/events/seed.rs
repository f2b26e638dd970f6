//! One entry of `socialNetworkIds`: how a report names a seed.
//!
//! The backend passes whatever the user typed: `1`, `id1`, `durov`, `https://vk.com/durov`,
//! `m.vk.com/id1?from=search`. Numeric forms become ids here; names stay names and are resolved
//! to ids against VK later (a screen name can belong to a user or a community, and only VK knows).

use std::fmt;

use serde::{Serialize, Serializer};

use crate::ids::VkUserId;

/// Longest screen name kept (VK's own limit is 32; links may carry legacy names).
pub const MAX_SCREEN_NAME_LEN: usize = 64;

/// Longest raw entry looked at (a link with tracking parameters fits easily).
pub const MAX_SEED_INPUT_LEN: usize = 256;

/// A seed as the report gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SeedRef {
    /// A numeric id (`1`, `id1`, `vk.com/id1`).
    Id(VkUserId),
    /// A screen name to resolve (`durov`, `vk.com/durov`).
    ScreenName(String),
}

/// Why an entry is not a seed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    /// Nothing left after trimming.
    #[error("empty entry")]
    Empty,
    /// Longer than [`MAX_SEED_INPUT_LEN`].
    #[error("longer than {MAX_SEED_INPUT_LEN} characters")]
    TooLong,
    /// A link to a host other than vk.com / m.vk.com / vk.ru.
    #[error("not a vk.com link")]
    ForeignLink,
    /// A number that is not a valid VK id (zero, negative, too large).
    #[error("not a valid VK id")]
    BadId,
    /// Characters a screen name cannot contain.
    #[error("not a VK id, screen name or vk.com link")]
    BadScreenName,
}

impl SeedRef {
    /// Parses one `socialNetworkIds` entry given as a string.
    pub fn parse(raw: &str) -> Result<Self, SeedError> {
        let name = page_name(raw)?;
        if name.bytes().all(|b| b.is_ascii_digit()) || name.starts_with('-') {
            return name
                .parse::<VkUserId>()
                .map(SeedRef::Id)
                .map_err(|_| SeedError::BadId);
        }
        // `ID5` is `id5`: names are matched without case (the accepted name is lower-cased
        // below), so the id form must be too, or `Id0` would pass as the name `id0`.
        let id_digits = name
            .get(..2)
            .filter(|p| p.eq_ignore_ascii_case("id"))
            .map(|_| &name[2..]);
        if let Some(digits) = id_digits {
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return digits
                    .parse::<VkUserId>()
                    .map(SeedRef::Id)
                    .map_err(|_| SeedError::BadId);
            }
        }
        screen_name(name).map(SeedRef::ScreenName)
    }

    /// Parses an entry given as a JSON number.
    pub fn from_number(n: i64) -> Result<Self, SeedError> {
        VkUserId::new(n)
            .map(SeedRef::Id)
            .map_err(|_| SeedError::BadId)
    }
}

/// The page an entry names: trimmed, its link (if any) cut to the first path segment; refused
/// when too long, empty or a link to another site. Shared by seeds and communities.
pub(super) fn page_name(raw: &str) -> Result<&str, SeedError> {
    if raw.len() > MAX_SEED_INPUT_LEN {
        return Err(SeedError::TooLong);
    }
    let s = raw.trim();
    if s.is_empty() {
        return Err(SeedError::Empty);
    }
    let name = strip_link(s)?;
    if name.is_empty() {
        return Err(SeedError::Empty);
    }
    Ok(name)
}

/// `name` as a screen name (lower-cased), if it can be one.
pub(super) fn screen_name(name: &str) -> Result<String, SeedError> {
    let valid = name.len() <= MAX_SCREEN_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if valid {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(SeedError::BadScreenName)
    }
}

/// Returns the path's first segment for a vk.com link, or the input itself when it is no link.
fn strip_link(s: &str) -> Result<&str, SeedError> {
    let without_scheme = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    let looks_like_link = without_scheme.is_some() || s.contains('/');
    if !looks_like_link {
        return Ok(s);
    }
    let rest = without_scheme.unwrap_or(s);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    if !matches!(host, "vk.com" | "m.vk.com" | "vk.ru" | "m.vk.ru") {
        return Err(SeedError::ForeignLink);
    }
    // `vk.com/durov?w=wall1_1#top`: only the first path segment names the page.
    let end = path.find(['/', '?', '#']).unwrap_or(path.len());
    Ok(&path[..end])
}

impl fmt::Display for SeedRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeedRef::Id(id) => write!(f, "{id}"),
            SeedRef::ScreenName(name) => f.write_str(name),
        }
    }
}

/// Serialized as the backend would send it: a number for ids, a string for names.
impl Serialize for SeedRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SeedRef::Id(id) => s.serialize_i64(id.get()),
            SeedRef::ScreenName(name) => s.serialize_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: i64) -> SeedRef {
        SeedRef::Id(VkUserId::new(n).unwrap())
    }
    fn name(s: &str) -> SeedRef {
        SeedRef::ScreenName(s.to_owned())
    }

    #[test]
    fn accepted_forms() {
        let cases = [
            ("1", id(1)),
            (" 42 ", id(42)),
            ("id7", id(7)),
            ("durov", name("durov")),
            ("Durov", name("durov")),
            ("club1", name("club1")),
            ("ivan.petrov_2", name("ivan.petrov_2")),
            ("https://vk.com/durov", name("durov")),
            ("http://m.vk.com/id1", id(1)),
            ("vk.com/id15?from=search", id(15)),
            ("https://www.vk.com/durov/", name("durov")),
            ("https://vk.ru/durov#wall", name("durov")),
            ("idol", name("idol")),
            ("ID5", id(5)),
            ("vk.com/Id15", id(15)),
        ];
        for (raw, want) in cases {
            assert_eq!(SeedRef::parse(raw), Ok(want), "{raw:?}");
        }
    }

    #[test]
    fn refused_forms() {
        let cases = [
            ("", SeedError::Empty),
            ("   ", SeedError::Empty),
            ("0", SeedError::BadId),
            ("-5", SeedError::BadId),
            ("id0", SeedError::BadId),
            // Found by the fuzz harness: once parsed as the name `id0`.
            ("Id0", SeedError::BadId),
            ("99999999999999999999", SeedError::BadId),
            ("https://evil.example/durov", SeedError::ForeignLink),
            ("../etc/passwd", SeedError::ForeignLink),
            ("vk.com/", SeedError::Empty),
            ("du rov", SeedError::BadScreenName),
            ("a%2Fb", SeedError::BadScreenName),
            ("a\0b", SeedError::BadScreenName),
            ("дуров", SeedError::BadScreenName),
        ];
        for (raw, want) in cases {
            assert_eq!(SeedRef::parse(raw), Err(want), "{raw:?}");
        }
        assert_eq!(SeedRef::parse(&"a".repeat(300)), Err(SeedError::TooLong));
    }
}
