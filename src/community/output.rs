//! A community task's files under `COMMUNITY/{kind}/{jobId}_stage1/`: its tables (columns named
//! once here, one module per table; docs/data.md describes them), and `manifest.json`, written
//! last, whose `communities` section says what became of each community: every list's expected
//! count (VK's `count`), what was fetched, the ratio, and why a community failed.
//!
//! Posts and comments are keyed by `(owner_id, id)` everywhere: VK numbers them per wall owner.

use std::collections::BTreeMap;

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::CommunityError;
use crate::events::Artifacts;
use crate::ids::{CommunityTaskKind, JobId, TaskId, VkUserId};
use crate::key::community_prefix;
use crate::storage::{put_files, put_manifest, ManifestFile, Storage};
use crate::tables::{into_files, Table};

/// Version of the community file layout.
pub const SCHEMA_VERSION: u32 = 1;

/// `members` (MEMBERS): who is a member of each community read whole.
pub mod members {
    /// The table.
    pub const TABLE: &str = "members";
    /// The community (positive id).
    pub const GROUP_ID: &str = "group_id";
    /// The member.
    pub const USER_ID: &str = "user_id";
}

/// `joined` and `left` (MEMBERS): the change since the community's previous snapshot, same
/// columns as [`members`].
pub mod change {
    /// Members now who were not in the previous snapshot.
    pub const JOINED: &str = "joined";
    /// Members of the previous snapshot who are no longer.
    pub const LEFT: &str = "left";
}

/// `member_counts` (MEMBERS): one row per community.
pub mod member_counts {
    /// The table.
    pub const TABLE: &str = "member_counts";
    /// The community; null when the name did not resolve to one.
    pub const GROUP_ID: &str = "group_id";
    /// VK's screen name (or the name as given).
    pub const SCREEN_NAME: &str = "screen_name";
    /// VK's `count` of members.
    pub const EXPECTED: &str = "expected";
    /// Distinct members fetched.
    pub const FETCHED: &str = "fetched";
    /// fetched / expected (1 for an empty community).
    pub const RATIO: &str = "ratio";
    /// `complete` or `failed`.
    pub const STATUS: &str = "status";
    /// Why it failed.
    pub const REASON: &str = "reason";
    /// The job whose snapshot `joined`/`left` compare with; null without one.
    pub const BASELINE_JOB: &str = "baseline_job";
    /// Rows in `joined` for the community; null without a baseline or when it failed.
    pub const JOINED: &str = "joined";
    /// Rows in `left` for the community; null without a baseline or when it failed.
    pub const LEFT: &str = "left";
}

/// `posts` (POSTS, INTERACTIONS): the latest posts of each community.
pub mod posts {
    /// The table.
    pub const TABLE: &str = "posts";
    /// The wall's owner (negative: a community).
    pub const OWNER_ID: &str = "owner_id";
    /// The post's id on that wall.
    pub const POST_ID: &str = "post_id";
    /// The community (positive id).
    pub const GROUP_ID: &str = "group_id";
    /// Who the post is from (the community, or a user).
    pub const FROM_ID: &str = "from_id";
    /// Its text.
    pub const TEXT: &str = "text";
    /// Unix seconds.
    pub const DATE: &str = "date";
    /// VK's counters.
    pub const LIKES: &str = "likes";
    /// Comments VK counts.
    pub const COMMENTS: &str = "comments";
    /// Reposts VK counts.
    pub const REPOSTS: &str = "reposts";
    /// Views; null when VK gives none.
    pub const VIEWS: &str = "views";
    /// The user who signed the post; null when unsigned.
    pub const SIGNER_ID: &str = "signer_id";
    /// The manager who published it (VK shows it to the community's editors); else null.
    pub const CREATED_BY: &str = "created_by";
}

/// `comments` (POSTS): every comment of each post, thread replies with `withThreads`.
pub mod comments {
    /// The table.
    pub const TABLE: &str = "comments";
    /// The wall's owner.
    pub const OWNER_ID: &str = "owner_id";
    /// The post commented on.
    pub const POST_ID: &str = "post_id";
    /// The comment's id (per wall owner).
    pub const COMMENT_ID: &str = "comment_id";
    /// The top-level comment a reply belongs to; null for a top-level comment.
    pub const PARENT_ID: &str = "parent_id";
    /// Replies in the comment's thread (VK's `thread.count`); 0 for replies.
    pub const THREAD_COUNT: &str = "thread_count";
    /// The commenter (0 for a deleted comment kept for its replies).
    pub const AUTHOR_ID: &str = "author_id";
    /// Its text.
    pub const TEXT: &str = "text";
    /// Unix seconds.
    pub const DATE: &str = "date";
    /// Likes of the comment; null when VK gave none.
    pub const LIKES: &str = "likes";
    /// VK kept it deleted (it has replies).
    pub const DELETED: &str = "deleted";
}

/// `authors` (POSTS): the profile of every signer, publisher and commenter.
pub mod authors {
    /// The table.
    pub const TABLE: &str = "authors";
    /// The user.
    pub const USER_ID: &str = "user_id";
    /// First name.
    pub const FIRST_NAME: &str = "first_name";
    /// Last name.
    pub const LAST_NAME: &str = "last_name";
    /// Screen name; null when VK gives none.
    pub const SCREEN_NAME: &str = "screen_name";
    /// `deleted` or `banned`; null for an active profile.
    pub const DEACTIVATED: &str = "deactivated";
    /// A closed profile.
    pub const IS_CLOSED: &str = "is_closed";
}

/// `likes` and `reposts` (INTERACTIONS): who liked or reposted each post.
pub mod reactions {
    /// Likes.
    pub const LIKES: &str = "likes";
    /// Reposts (only where the author's token administers the community).
    pub const REPOSTS: &str = "reposts";
    /// The wall's owner.
    pub const OWNER_ID: &str = "owner_id";
    /// The post.
    pub const POST_ID: &str = "post_id";
    /// The user.
    pub const USER_ID: &str = "user_id";
}

/// `commenters` (INTERACTIONS): comments per (post, user), thread replies included.
pub mod commenters {
    /// The table.
    pub const TABLE: &str = "commenters";
    /// The wall's owner.
    pub const OWNER_ID: &str = "owner_id";
    /// The post.
    pub const POST_ID: &str = "post_id";
    /// The user.
    pub const USER_ID: &str = "user_id";
    /// Their comments on the post.
    pub const COUNT: &str = "count";
}

/// `active_audience` (INTERACTIONS): one row per user who interacted with any post.
pub mod active_audience {
    /// The table.
    pub const TABLE: &str = "active_audience";
    /// The user.
    pub const USER_ID: &str = "user_id";
    /// Posts they liked.
    pub const LIKES: &str = "likes";
    /// Comments they wrote.
    pub const COMMENTS: &str = "comments";
    /// Posts they reposted.
    pub const REPOSTS: &str = "reposts";
    /// Communities they interacted with.
    pub const GROUPS: &str = "groups";
}

/// What became of one community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every list read whole.
    Complete,
    /// Not collected, for its reason; its rows are left out.
    Failed,
}

impl Status {
    /// As written in tables and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Failed => "failed",
        }
    }
}

/// One list kind of a community: how much VK said there is, how much was fetched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListCount {
    /// VK's counts, summed over the community's lists of this kind.
    pub expected: u64,
    /// Items fetched (distinct).
    pub fetched: u64,
    /// fetched / expected (1 when nothing was expected).
    pub ratio: f64,
    /// Pages that stayed unanswered.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_pages: u64,
    /// Times a list was read again from the start because its `count` moved mid-scan.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rescans: u64,
    /// Why this kind was not read (e.g. `no_admin_token` for reposts): a documented skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ListCount {
    /// A count of `fetched` out of `expected`.
    pub fn new(expected: u64, fetched: u64) -> ListCount {
        ListCount {
            expected,
            fetched,
            ratio: ratio(expected, fetched),
            failed_pages: 0,
            rescans: 0,
            skipped: None,
        }
    }

    /// Adds another list of the same kind.
    pub fn add(&mut self, expected: u64, fetched: u64, failed_pages: u64) {
        self.expected += expected;
        self.fetched += fetched;
        self.failed_pages += failed_pages;
        self.ratio = ratio(self.expected, self.fetched);
    }
}

/// fetched / expected, 1 when nothing was expected, rounded to 4 places.
pub fn ratio(expected: u64, fetched: u64) -> f64 {
    if expected == 0 {
        1.0
    } else {
        (fetched as f64 / expected as f64 * 10_000.0).round() / 10_000.0
    }
}

/// What became of one community: the manifest's entry, and the status's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunityResult {
    /// The community; null when the name did not resolve to one.
    pub group_id: Option<i64>,
    /// VK's screen name (or the name as given).
    pub screen_name: String,
    /// Complete or failed.
    pub status: Status,
    /// Why it failed (`private`, `closed`, `deactivated`, `not_found`, `access_denied`,
    /// `below_threshold`, `incomplete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// VK's error code behind the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// Per list kind (`members`, `posts`, `comments`, `likes`, `reposts`).
    pub lists: BTreeMap<String, ListCount>,
    /// MEMBERS: members who joined since the baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined: Option<u64>,
    /// MEMBERS: members who left since the baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<u64>,
    /// MEMBERS: the job whose snapshot the change is against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_job: Option<String>,
}

impl CommunityResult {
    /// A community that is being read.
    pub fn new(group_id: Option<i64>, screen_name: &str) -> CommunityResult {
        CommunityResult {
            group_id,
            screen_name: screen_name.to_owned(),
            status: Status::Complete,
            reason: None,
            error_code: None,
            lists: BTreeMap::new(),
            joined: None,
            left: None,
            baseline_job: None,
        }
    }

    /// Marks it failed (the first reason stays).
    pub fn fail(&mut self, reason: &str, error_code: Option<i64>) {
        if self.status == Status::Failed {
            return;
        }
        self.status = Status::Failed;
        self.reason = Some(reason.to_owned());
        self.error_code = error_code;
    }

    /// Whether its rows go into the tables.
    pub fn complete(&self) -> bool {
        self.status == Status::Complete
    }
}

/// The task's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunityManifest {
    /// [`SCHEMA_VERSION`] at write time.
    pub schema_version: u32,
    /// `COMMUNITY`.
    pub kind: String,
    /// `MEMBERS`, `POSTS` or `INTERACTIONS`.
    pub task_kind: CommunityTaskKind,
    /// The backend's task.
    pub task_id: TaskId,
    /// The job.
    pub job_id: JobId,
    /// Whose token went first.
    pub user_id: VkUserId,
    /// The prefix the files are under.
    pub prefix: String,
    /// The data files, all written before this manifest.
    pub files: Vec<ManifestFile>,
    /// What became of each community, in the event's order.
    pub communities: Vec<CommunityResult>,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// The final status's `metrics`: totals, and per community its status, reason and counts.
pub fn metrics(results: &[CommunityResult]) -> Value {
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let communities: Vec<Value> = results
        .iter()
        .map(|r| {
            let mut entry = json!({
                "groupId": r.group_id,
                "screenName": r.screen_name,
                "status": r.status.as_str(),
            });
            if let Some(reason) = &r.reason {
                entry["reason"] = json!(reason);
            }
            let mut errors = 0;
            for (kind, count) in &r.lists {
                entry[kind] = json!(count.fetched);
                errors += count.failed_pages;
                if r.complete() {
                    *totals.entry(kind.clone()).or_default() += count.fetched;
                }
            }
            for (name, value) in [("joined", r.joined), ("left", r.left)] {
                if let Some(n) = value {
                    entry[name] = json!(n);
                    *totals.entry(name.to_owned()).or_default() += n;
                }
            }
            entry["errors"] = json!(errors);
            entry
        })
        .collect();
    let failed = results.iter().filter(|r| !r.complete()).count() as u64;
    totals.insert("communities".into(), results.len() as u64);
    totals.insert("failedCommunities".into(), failed);
    json!({ "totals": totals, "communities": communities })
}

/// Writes `tables` (one parquet file each), then the manifest.
pub async fn write(
    storage: &dyn Storage,
    task: &crate::events::CommunityTaskCreated,
    tables: Vec<Table>,
    communities: Vec<CommunityResult>,
) -> Result<Artifacts, CommunityError> {
    let prefix = community_prefix(task.kind, &task.job_id);
    let encoded = tokio::task::spawn_blocking(move || into_files(tables))
        .await
        .map_err(|e| CommunityError::Internal(format!("the encoding task failed: {e}")))??;
    let files = put_files(storage, &prefix, encoded).await?;
    let manifest = CommunityManifest {
        schema_version: SCHEMA_VERSION,
        kind: crate::key::COMMUNITY_ROOT.to_owned(),
        task_kind: task.kind,
        task_id: task.task_id.clone(),
        job_id: task.job_id.clone(),
        user_id: task.user_id,
        prefix: prefix.to_string(),
        files,
        communities,
        created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
    };
    let key = put_manifest(storage, &prefix, &manifest).await?;
    Ok(Artifacts {
        prefix: prefix.to_string(),
        manifest: key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_total_only_complete_communities() {
        let mut a = CommunityResult::new(Some(1), "club1");
        a.lists.insert("members".into(), ListCount::new(10, 10));
        a.joined = Some(2);
        let mut b = CommunityResult::new(Some(2), "club2");
        b.lists.insert("members".into(), ListCount::new(100, 50));
        b.fail("below_threshold", None);
        b.fail("later", None);
        let m = metrics(&[a, b]);
        assert_eq!(m["totals"]["members"], 10);
        assert_eq!(m["totals"]["failedCommunities"], 1);
        assert_eq!(m["communities"][1]["reason"], "below_threshold");
        assert_eq!(m["communities"][0]["joined"], 2);
        assert_eq!(ratio(3, 2), 0.6667);
        assert_eq!(ratio(0, 0), 1.0);
    }
}
