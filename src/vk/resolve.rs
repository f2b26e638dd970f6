//! Names as typed by people (`durov`, `vk.com/id1`, `apiclub`) to VK user and community ids.
//!
//! Numeric forms need no request. Screen names go through `utils.resolveScreenName`, packed 25
//! per execute (a report has at most 50 seeds, a campaign at most 500 communities: at most 20
//! requests), and the answers are cached for the life of the process: names are asked about
//! again and again across jobs, and a name's owner rarely changes within a process's lifetime.
//! One cache serves seeds and communities, since VK's screen names share one namespace.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::error::VkError;
use super::execute::{run_calls, Call};
use super::orchestrator::Session;
use crate::events::{CommunityRef, SeedRef};
use crate::ids::{GroupId, VkUserId};

/// What a seed turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// A user.
    User(VkUserId),
    /// A community (VK's `group`, `page` or `event`).
    Community(GroupId),
    /// Something else VK knows by that name (an application).
    Other,
    /// VK knows no such name.
    NotFound,
}

/// Resolves screen names with a process-wide cache.
#[derive(Debug, Default)]
pub struct Resolver {
    cache: Mutex<HashMap<String, Resolution>>,
}

impl Resolver {
    /// An empty cache.
    pub fn new() -> Resolver {
        Resolver::default()
    }

    /// One resolution per seed, in order.
    pub async fn resolve(
        &self,
        session: &mut Session,
        seeds: &[SeedRef],
    ) -> Result<Vec<Resolution>, VkError> {
        let names = seeds.iter().filter_map(|s| match s {
            SeedRef::ScreenName(name) => Some(name.as_str()),
            SeedRef::Id(_) => None,
        });
        self.fill(session, names).await?;
        Ok(seeds
            .iter()
            .map(|seed| match seed {
                SeedRef::Id(id) => Resolution::User(*id),
                SeedRef::ScreenName(name) => self.cached(name),
            })
            .collect())
    }

    /// One resolution per community reference, in order: a numeric one is a community as it
    /// stands (whether VK knows it, groups.getById says later).
    pub async fn resolve_communities(
        &self,
        session: &mut Session,
        groups: &[CommunityRef],
    ) -> Result<Vec<Resolution>, VkError> {
        let names = groups.iter().filter_map(|g| match g {
            CommunityRef::ScreenName(name) => Some(name.as_str()),
            CommunityRef::Id(_) => None,
        });
        self.fill(session, names).await?;
        Ok(groups
            .iter()
            .map(|group| match group {
                CommunityRef::Id(id) => Resolution::Community(*id),
                CommunityRef::ScreenName(name) => self.cached(name),
            })
            .collect())
    }

    /// Asks VK about the names not in the cache yet, 25 per execute, and caches the answers.
    async fn fill<'a>(
        &self,
        session: &mut Session,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<(), VkError> {
        let unknown: Vec<String> = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let mut unknown: Vec<String> = Vec::new();
            for name in names {
                if !cache.contains_key(name) && !unknown.iter().any(|u| u == name) {
                    unknown.push(name.to_owned());
                }
            }
            unknown
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let calls: Vec<Call> = unknown
            .iter()
            .map(|name| Call::new("utils.resolveScreenName", json!({ "screen_name": name })))
            .collect();
        let answers = run_calls(session, &calls).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        for (name, answer) in unknown.into_iter().zip(answers) {
            let resolution = match answer {
                Ok(value) => interpret(&value),
                // A name VK refuses to look up is as good as absent for a job.
                Err(_) => Resolution::NotFound,
            };
            cache.insert(name, resolution);
        }
        Ok(())
    }

    fn cached(&self, name: &str) -> Resolution {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(name).copied().unwrap_or(Resolution::NotFound)
    }
}

/// `{"object_id": 1, "type": "user"}`, or `[]` when the name is free.
pub(crate) fn interpret(value: &Value) -> Resolution {
    let Some(object) = value.as_object() else {
        return Resolution::NotFound;
    };
    match (
        object.get("type").and_then(Value::as_str),
        object.get("object_id").and_then(Value::as_i64),
    ) {
        (Some("user"), Some(id)) => VkUserId::new(id)
            .map(Resolution::User)
            .unwrap_or(Resolution::NotFound),
        (Some("group" | "page" | "event"), Some(id)) => GroupId::new(id)
            .map(Resolution::Community)
            .unwrap_or(Resolution::NotFound),
        (Some(_), Some(_)) => Resolution::Other,
        _ => Resolution::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interprets_answers() {
        assert_eq!(
            interpret(&json!({"object_id": 1, "type": "user"})),
            Resolution::User(VkUserId::new(1).unwrap())
        );
        assert_eq!(
            interpret(&json!({"object_id": 1, "type": "group"})),
            Resolution::Community(GroupId::new(1).unwrap())
        );
        assert_eq!(
            interpret(&json!({"object_id": 3, "type": "page"})),
            Resolution::Community(GroupId::new(3).unwrap())
        );
        assert_eq!(
            interpret(&json!({"object_id": 2, "type": "application"})),
            Resolution::Other
        );
        assert_eq!(interpret(&json!([])), Resolution::NotFound);
        assert_eq!(
            interpret(&json!({"object_id": -5, "type": "user"})),
            Resolution::NotFound
        );
    }
}
