//! Identifiers that cross the service's boundaries, each with a parsing constructor.
//!
//! Report and job ids come from the backend and end up in Redis keys and storage keys, so they
//! are held to a strict alphabet here, once; everything downstream can use them without
//! re-checking. VK ids are positive integers that fit an `i64` (the parquet column type).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest report or job id accepted.
pub const MAX_ID_LEN: usize = 64;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty, too long or outside `[A-Za-z0-9_-]`.
    #[error("expected 1 to {MAX_ID_LEN} characters of [A-Za-z0-9_-]")]
    BadOpaqueId,
    /// Not a positive integer that fits an i64.
    #[error("expected a positive integer VK id")]
    BadVkId,
    /// Not one of the report types.
    #[error("expected one of DEFAULT, HANDSHAKES, SUB_GRAPH")]
    BadReportType,
    /// Not one of the community task kinds.
    #[error("expected one of MEMBERS, POSTS, INTERACTIONS")]
    BadTaskKind,
}

fn check_opaque(raw: &str) -> Result<(), IdError> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_ID_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(IdError::BadOpaqueId)
    }
}

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks the alphabet and length.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                check_opaque(raw)?;
                Ok(Self(raw.to_owned()))
            }

            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

opaque_id!(
    /// The backend's report id.
    ReportId
);
opaque_id!(
    /// The backend's job id (one report may be re-run as several jobs).
    JobId
);
opaque_id!(
    /// The backend's campaign id (a suggested-posts job's owner, as a report is a report job's).
    CampaignId
);

opaque_id!(
    /// The backend's community task id (a community job's owner).
    TaskId
);

impl From<&TaskId> for ReportId {
    /// A task's statuses carry its id as `reportId`: the alphabet is the same.
    fn from(id: &TaskId) -> ReportId {
        ReportId(id.0.clone())
    }
}

impl From<&CampaignId> for ReportId {
    /// A campaign's statuses carry its id as `reportId`: the alphabet is the same, so this
    /// cannot fail.
    fn from(id: &CampaignId) -> ReportId {
        ReportId(id.0.clone())
    }
}

macro_rules! vk_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "i64", into = "i64")]
        pub struct $name(i64);

        impl $name {
            /// Accepts 1..=i64::MAX.
            pub fn new(id: i64) -> Result<Self, IdError> {
                if id > 0 {
                    Ok(Self(id))
                } else {
                    Err(IdError::BadVkId)
                }
            }

            /// The id as the i64 stored in parquet.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = IdError;
            fn try_from(id: i64) -> Result<Self, IdError> {
                Self::new(id)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                // Only plain decimal digits: "+5", " 5" or "5e3" are not ids.
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(IdError::BadVkId);
                }
                s.parse::<i64>()
                    .map_err(|_| IdError::BadVkId)
                    .and_then(Self::new)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

vk_id!(
    /// A VK user id: positive, fits an `i64`.
    VkUserId
);
vk_id!(
    /// A VK community id: positive, as groups.getById gives it (a wall's `owner_id` is its
    /// negative).
    GroupId
);

impl GroupId {
    /// The community's wall as an `owner_id`: `-id`.
    pub fn owner_id(self) -> i64 {
        -self.0
    }
}

/// What a report collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReportType {
    /// The graph of the seeds' friends and followers and the connections among them.
    Default,
    /// Chains of 1 to 3 handshakes between seeds.
    Handshakes,
    /// The communities the seeds' audience subscribes to.
    SubGraph,
}

impl ReportType {
    /// The wire name, also the first storage key component.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportType::Default => "DEFAULT",
            ReportType::Handshakes => "HANDSHAKES",
            ReportType::SubGraph => "SUB_GRAPH",
        }
    }
}

impl FromStr for ReportType {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s {
            "DEFAULT" => Ok(ReportType::Default),
            "HANDSHAKES" => Ok(ReportType::Handshakes),
            "SUB_GRAPH" => Ok(ReportType::SubGraph),
            _ => Err(IdError::BadReportType),
        }
    }
}

impl fmt::Display for ReportType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a community task collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommunityTaskKind {
    /// Every member, and who joined or left since the previous snapshot.
    Members,
    /// The latest posts and all their comments.
    Posts,
    /// Who liked, commented on and reposted the latest posts: the active audience.
    Interactions,
}

impl CommunityTaskKind {
    /// The wire name, also a storage key segment.
    pub fn as_str(self) -> &'static str {
        match self {
            CommunityTaskKind::Members => "MEMBERS",
            CommunityTaskKind::Posts => "POSTS",
            CommunityTaskKind::Interactions => "INTERACTIONS",
        }
    }
}

impl FromStr for CommunityTaskKind {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s {
            "MEMBERS" => Ok(CommunityTaskKind::Members),
            "POSTS" => Ok(CommunityTaskKind::Posts),
            "INTERACTIONS" => Ok(CommunityTaskKind::Interactions),
            _ => Err(IdError::BadTaskKind),
        }
    }
}

impl fmt::Display for CommunityTaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stage 1 (collect the seeds' audience) or stage 2 (connections among it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Stage {
    /// Triggered by ReportCreated.
    One,
    /// Triggered by Stage2Created.
    Two,
}

impl Stage {
    /// 1 or 2.
    pub fn number(self) -> u8 {
        match self {
            Stage::One => 1,
            Stage::Two => 2,
        }
    }
}

impl TryFrom<u8> for Stage {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        match n {
            1 => Ok(Stage::One),
            2 => Ok(Stage::Two),
            _ => Err(format!("expected stage 1 or 2, found {n}")),
        }
    }
}

impl From<Stage> for u8 {
    fn from(s: Stage) -> u8 {
        s.number()
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_ids() {
        assert!(ReportId::parse("rep_1-A").is_ok());
        for bad in [
            "",
            "a/b",
            "..",
            "a b",
            "é",
            &"x".repeat(65),
            "a\0b",
            "a%2Fb",
        ] {
            assert_eq!(ReportId::parse(bad), Err(IdError::BadOpaqueId), "{bad:?}");
        }
        assert!(JobId::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn vk_ids() {
        assert_eq!("42".parse::<VkUserId>().unwrap().get(), 42);
        for bad in ["0", "-1", "+5", " 5", "5e3", "", "99999999999999999999"] {
            assert!(bad.parse::<VkUserId>().is_err(), "{bad:?}");
        }
        assert!(VkUserId::new(0).is_err());
    }
}
