//! Decoding `CommunityTaskCreated`: collect what VK shows about up to 500 communities, the
//! third job kind (issue 18): their members (with who joined and left since the previous
//! snapshot), their latest posts with all comments, or the audience that interacts with them.
//!
//! Read field by field like the other events ([`super::fields`]), so a refusal names its field.
//! `groups` takes every form a campaign takes ([`super::community`]). An option another kind
//! reads is refused with a value other than its default (`sinceSnapshot` on POSTS,
//! `postsPerGroup: 5` on MEMBERS) rather than ignored: a backend that sends it expects
//! something that would not happen. At its default it changes nothing, so it is accepted
//! (and a task re-encodes to a payload that decodes to itself).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::community::{community_list, CommunityRef};
use super::fields::{
    backend_id, created_at, event_id, invalid, opaque, parse_object, present, user_id, wrong_type,
};
use super::EventError;
use crate::ids::{CommunityTaskKind, JobId, TaskId, VkUserId};

/// The stream's `event_type` of a community task.
pub const EVENT_TYPE: &str = "CommunityTaskCreated";

/// Most communities one task may name.
pub const MAX_TASK_GROUPS: usize = 500;

/// Most posts per community a task may ask for (one wall.get page).
pub const MAX_POSTS_PER_GROUP: u32 = 100;

/// `CommunityTaskCreated`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunityTaskCreated {
    /// The backend's task id (`reportId` of the statuses).
    pub task_id: TaskId,
    /// The backend's job id.
    pub job_id: JobId,
    /// Whose user token goes first (leased global tokens after), as for reports.
    pub user_id: VkUserId,
    /// What to collect.
    pub kind: CommunityTaskKind,
    /// 1 to [`MAX_TASK_GROUPS`] communities, in the order given, duplicates removed.
    pub groups: Vec<CommunityRef>,
    /// Collection switches.
    pub options: TaskOptions,
    /// The backend's own event id, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// When the backend created the task, if it said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

/// `options` of a community task. [`Default`] is what an absent `options` (or option) means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOptions {
    /// POSTS, INTERACTIONS: the latest posts per community (1–100); default 10.
    pub posts_per_group: u32,
    /// POSTS: also every comment of each post; default true.
    pub with_comments: bool,
    /// POSTS: also the replies in comment threads; default false.
    pub with_threads: bool,
    /// MEMBERS: the job whose snapshot the diff is against (given as its prefix
    /// `COMMUNITY/MEMBERS/{jobId}_stage1/`); absent means the latest snapshot found.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "snapshot_prefix"
    )]
    pub since_snapshot: Option<JobId>,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            posts_per_group: 10,
            with_comments: true,
            with_threads: false,
            since_snapshot: None,
        }
    }
}

fn snapshot_prefix<S: serde::Serializer>(job: &Option<JobId>, s: S) -> Result<S::Ok, S::Error> {
    match job {
        Some(job) => {
            s.serialize_str(crate::key::community_prefix(CommunityTaskKind::Members, job).as_str())
        }
        None => s.serialize_none(),
    }
}

impl CommunityTaskCreated {
    /// Decodes a payload.
    pub fn decode(payload: &[u8]) -> Result<CommunityTaskCreated, EventError> {
        let o = parse_object(payload)?;
        let kind = opaque(&o, "kind", str::parse::<CommunityTaskKind>)?;
        let job_id = backend_id(&o, "jobId", JobId::parse)?;
        let options = options(&o, kind)?;
        if options.since_snapshot.as_ref() == Some(&job_id) {
            return Err(invalid(
                "options.sinceSnapshot",
                "expected an earlier job's snapshot, not this job's own",
            ));
        }
        Ok(CommunityTaskCreated {
            task_id: backend_id(&o, "taskId", TaskId::parse)?,
            job_id,
            user_id: user_id(&o)?,
            kind,
            groups: community_list(&o, "groups", MAX_TASK_GROUPS)?,
            options,
            event_id: event_id(&o)?,
            created_at: created_at(&o)?,
        })
    }
}

fn options(o: &Map<String, Value>, kind: CommunityTaskKind) -> Result<TaskOptions, EventError> {
    let mut out = TaskOptions::default();
    let map = match present(o, "options") {
        None => return Ok(out),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(wrong_type("options", "an object", other)),
    };
    // Which kinds read each option; on another kind it is refused.
    let allowed = |name: &str, kinds: &[CommunityTaskKind]| -> Result<(), EventError> {
        if kinds.contains(&kind) {
            Ok(())
        } else {
            Err(invalid(
                &format!("options.{name}"),
                format!("not an option of a {kind} task"),
            ))
        }
    };
    let flag = |name: &str| match present(map, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(&format!("options.{name}"), "a boolean", other)),
    };
    use CommunityTaskKind::{Interactions, Members, Posts};
    let defaults = TaskOptions::default();
    if let Some(value) = present(map, "postsPerGroup") {
        out.posts_per_group = value
            .as_u64()
            .filter(|n| (1..=u64::from(MAX_POSTS_PER_GROUP)).contains(n))
            .map(|n| n as u32)
            .ok_or_else(|| {
                invalid(
                    "options.postsPerGroup",
                    format!("expected an integer from 1 to {MAX_POSTS_PER_GROUP}"),
                )
            })?;
        if out.posts_per_group != defaults.posts_per_group {
            allowed("postsPerGroup", &[Posts, Interactions])?;
        }
    }
    if let Some(b) = flag("withComments")? {
        if b != defaults.with_comments {
            allowed("withComments", &[Posts])?;
        }
        out.with_comments = b;
    }
    if let Some(b) = flag("withThreads")? {
        if b != defaults.with_threads {
            allowed("withThreads", &[Posts])?;
        }
        out.with_threads = b;
    }
    if out.with_threads && !out.with_comments {
        return Err(invalid(
            "options.withThreads",
            "thread replies need withComments",
        ));
    }
    match present(map, "sinceSnapshot") {
        None => {}
        Some(Value::String(raw)) => {
            allowed("sinceSnapshot", &[Members])?;
            out.since_snapshot = Some(
                crate::key::parse_members_snapshot(raw)
                    .map_err(|e| invalid("options.sinceSnapshot", e))?,
            );
        }
        Some(other) => {
            return Err(wrong_type("options.sinceSnapshot", "a string", other));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decode(v: Value) -> Result<CommunityTaskCreated, EventError> {
        CommunityTaskCreated::decode(v.to_string().as_bytes())
    }

    fn base(kind: &str) -> Value {
        json!({
            "taskId": "t1", "jobId": "j2", "userId": 6, "kind": kind,
            "groups": ["club1", -2, "apiclub", "https://vk.com/public3", "club1"],
        })
    }

    #[test]
    fn a_task_decodes_with_its_defaults_and_re_encodes() {
        let t = decode(base("POSTS")).unwrap();
        assert_eq!(t.kind, CommunityTaskKind::Posts);
        assert_eq!(t.groups.len(), 4, "the repeated club1 is dropped");
        assert_eq!(t.options, TaskOptions::default());
        let mut members = base("MEMBERS");
        members["options"] = json!({"sinceSnapshot": "COMMUNITY/MEMBERS/j1_stage1/"});
        let m = decode(members).unwrap();
        assert_eq!(m.options.since_snapshot, Some(JobId::parse("j1").unwrap()));
        for task in [t, m] {
            let again = serde_json::to_vec(&task).unwrap();
            assert_eq!(CommunityTaskCreated::decode(&again).unwrap(), task);
        }
    }

    #[test]
    fn every_refusal_names_its_field() {
        let cases: Vec<(&str, &str, Value, &str)> = vec![
            ("POSTS", "kind", json!("LIKES"), "kind"),
            ("POSTS", "groups", json!([]), "groups"),
            (
                "POSTS",
                "groups",
                json!(vec![1; MAX_TASK_GROUPS + 1]),
                "groups",
            ),
            ("POSTS", "groups", json!(["club0"]), "groups[0]"),
            (
                "POSTS",
                "options",
                json!({"postsPerGroup": 0}),
                "options.postsPerGroup",
            ),
            (
                "POSTS",
                "options",
                json!({"postsPerGroup": 101}),
                "options.postsPerGroup",
            ),
            (
                "POSTS",
                "options",
                json!({"postsPerGroup": 2.5}),
                "options.postsPerGroup",
            ),
            (
                "POSTS",
                "options",
                json!({"withComments": "yes"}),
                "options.withComments",
            ),
            (
                "POSTS",
                "options",
                json!({"withComments": false, "withThreads": true}),
                "options.withThreads",
            ),
            (
                "POSTS",
                "options",
                json!({"sinceSnapshot": "COMMUNITY/MEMBERS/j1_stage1/"}),
                "options.sinceSnapshot",
            ),
            (
                "MEMBERS",
                "options",
                json!({"postsPerGroup": 5}),
                "options.postsPerGroup",
            ),
            (
                "MEMBERS",
                "options",
                json!({"sinceSnapshot": "COMMUNITY/POSTS/j1_stage1/"}),
                "options.sinceSnapshot",
            ),
            (
                "MEMBERS",
                "options",
                json!({"sinceSnapshot": "COMMUNITY/MEMBERS/../x_stage1/"}),
                "options.sinceSnapshot",
            ),
            (
                "MEMBERS",
                "options",
                json!({"sinceSnapshot": "COMMUNITY/MEMBERS/j2_stage1/"}),
                "options.sinceSnapshot",
            ),
            (
                "INTERACTIONS",
                "options",
                json!({"withThreads": true}),
                "options.withThreads",
            ),
        ];
        for (kind, field, value, named) in cases {
            let mut payload = base(kind);
            payload[field] = value;
            match decode(payload) {
                Err(EventError::InvalidField { field, .. }) => assert_eq!(field, named),
                other => panic!("{named}: {other:?}"),
            }
        }
        let mut no_kind = base("POSTS");
        no_kind.as_object_mut().unwrap().remove("kind");
        assert_eq!(decode(no_kind), Err(EventError::MissingField("kind")));
    }
}
