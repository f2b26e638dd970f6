//! Seeds as typed by people (`durov`, `vk.com/id1`) to VK user ids.
//!
//! Numeric seeds need no request. Screen names go through `utils.resolveScreenName`, packed 25
//! per execute (a report has at most 50 seeds, so at most two requests), and the answers are
//! cached for the life of the process: names are asked about again and again across reports,
//! and a name's owner rarely changes within a process's lifetime.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::error::VkError;
use super::execute::{run_calls, Call};
use super::orchestrator::Session;
use crate::events::SeedRef;
use crate::ids::VkUserId;

/// What a seed turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// A user.
    User(VkUserId),
    /// A community, group or application: not a user seed.
    NotAUser,
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
        let unknown: Vec<String> = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let mut names: Vec<String> = seeds
                .iter()
                .filter_map(|s| match s {
                    SeedRef::ScreenName(name) if !cache.contains_key(name) => Some(name.clone()),
                    _ => None,
                })
                .collect();
            names.dedup();
            names
        };
        if !unknown.is_empty() {
            let calls: Vec<Call> = unknown
                .iter()
                .map(|name| Call::new("utils.resolveScreenName", json!({ "screen_name": name })))
                .collect();
            let answers = run_calls(session, &calls).await?;
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            for (name, answer) in unknown.into_iter().zip(answers) {
                let resolution = match answer {
                    Ok(value) => interpret(&value),
                    // A name VK refuses to look up is as good as absent for a report.
                    Err(_) => Resolution::NotFound,
                };
                cache.insert(name, resolution);
            }
        }
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        Ok(seeds
            .iter()
            .map(|seed| match seed {
                SeedRef::Id(id) => Resolution::User(*id),
                SeedRef::ScreenName(name) => {
                    cache.get(name).copied().unwrap_or(Resolution::NotFound)
                }
            })
            .collect())
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
        (Some(_), Some(_)) => Resolution::NotAUser,
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
            Resolution::NotAUser
        );
        assert_eq!(interpret(&json!([])), Resolution::NotFound);
        assert_eq!(
            interpret(&json!({"object_id": -5, "type": "user"})),
            Resolution::NotFound
        );
    }
}
