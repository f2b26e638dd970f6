//! A task's communities as VK shows them to the job's first token (the author's): resolved,
//! deduplicated, and looked up with groups.getById, so each is either readable or skipped for a
//! named reason before any list is asked for.
//!
//! The lookup runs while the session is still on the author's token, so `admin_level` is the
//! author's: wall.getReposts is asked only where it is 3 (an administrator), on that token.

use std::collections::HashSet;

use serde::Deserialize;

use super::CommunityError;
use crate::events::CommunityRef;
use crate::ids::GroupId;
use crate::vk::methods::{decode, known_groups};
use crate::vk::orchestrator::Session;
use crate::vk::resolve::{Resolution, Resolver};

/// The groups.getById fields a task reads.
const FIELDS: &str = "members_count,is_member";

/// One community of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The community as the event named it.
    pub given: String,
    /// Its id, when the name resolved to a community.
    pub group_id: Option<GroupId>,
    /// VK's screen name (or the name as given).
    pub screen_name: String,
    /// 0 open, 1 closed, 2 private.
    pub is_closed: u8,
    /// VK's `members_count` when the lookup gave one.
    pub members_count: Option<u64>,
    /// The author's manager level (3: administrator), when the author manages it.
    pub admin_level: u8,
    /// Whether the author is a member (a closed community shows its members to members).
    pub is_member: bool,
    /// Why nothing is asked about it: `not_found`, `not_a_community`, `duplicate`,
    /// `deactivated`.
    pub skip: Option<&'static str>,
}

impl Target {
    /// The id, when the community is to be read.
    pub fn readable(&self) -> Option<GroupId> {
        self.group_id.filter(|_| self.skip.is_none())
    }

    fn skipped(given: String, group_id: Option<GroupId>, why: &'static str) -> Target {
        Target {
            screen_name: given.clone(),
            given,
            group_id,
            is_closed: 0,
            members_count: None,
            admin_level: 0,
            is_member: false,
            skip: Some(why),
        }
    }
}

/// groups.getById's entry, the fields a task reads.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    screen_name: String,
    #[serde(default)]
    is_closed: u8,
    #[serde(default)]
    deactivated: Option<String>,
    #[serde(default)]
    members_count: Option<u64>,
    #[serde(default)]
    admin_level: Option<u8>,
    #[serde(default)]
    is_member: Option<u8>,
}

/// The task's communities, in the event's order, one per entry.
pub async fn look_up(
    session: &mut Session,
    resolver: &Resolver,
    groups: &[CommunityRef],
) -> Result<Vec<Target>, CommunityError> {
    let resolved = resolver.resolve_communities(session, groups).await?;
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    let mut out = Vec::with_capacity(groups.len());
    for (given, resolution) in groups.iter().zip(resolved) {
        let given = given.to_string();
        out.push(match resolution {
            Resolution::Community(id) if seen.insert(id) => {
                ids.push(id);
                Target::skipped(given, Some(id), "not_found")
            }
            Resolution::Community(id) => Target::skipped(given, Some(id), "duplicate"),
            Resolution::User(_) | Resolution::Other => {
                Target::skipped(given, None, "not_a_community")
            }
            Resolution::NotFound => Target::skipped(given, None, "not_found"),
        });
    }
    let found = known_groups(session, &ids, FIELDS).await?;
    for target in out.iter_mut().filter(|t| t.skip == Some("not_found")) {
        let Some(value) = target.group_id.and_then(|id| found.get(&id)) else {
            continue;
        };
        let entry: Entry = decode("groups.getById", value.clone())?;
        if !entry.screen_name.is_empty() {
            target.screen_name = entry.screen_name;
        }
        target.is_closed = entry.is_closed;
        target.members_count = entry.members_count;
        target.admin_level = entry.admin_level.unwrap_or(0);
        target.is_member = entry.is_member == Some(1);
        target.skip = entry.deactivated.is_some().then_some("deactivated");
    }
    Ok(out)
}
