//! A campaign's results: `posts.parquet`, one row per community the event named, and its
//! `manifest.json`, written last under `SUGGEST/{userId}/{jobId}_stage1/`. The table's columns
//! are named once here ([`posts`]); docs/data.md describes them.

use std::collections::BTreeMap;

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::PosterError;
use crate::events::Artifacts;
use crate::ids::{CampaignId, JobId, VkUserId};
use crate::key::campaign_prefix;
use crate::storage::{put_files, put_manifest, ManifestFile, Storage};
use crate::tables::{into_files, ColumnData, Table};

/// Version of the campaign file layout.
pub const SCHEMA_VERSION: u32 = 1;

/// `posts`: what became of the post in each community.
pub mod posts {
    /// The table.
    pub const TABLE: &str = "posts";
    /// The community (positive id); null when the name did not resolve to one.
    pub const GROUP_ID: &str = "group_id";
    /// The community as the event named it (a screen name, `club1`, a link), or VK's screen
    /// name when the event gave an id.
    pub const SCREEN_NAME: &str = "screen_name";
    /// `published`, `suggested`, `skipped`, `deferred` or `unknown` ([`super::Outcome`]).
    pub const OUTCOME: &str = "outcome";
    /// The post's id on the community's wall (published, suggested).
    pub const POST_ID: &str = "post_id";
    /// VK's `post_type` of the post: `post` or `suggest`.
    pub const POST_TYPE: &str = "post_type";
    /// Why it was skipped, deferred or unknown.
    pub const REASON: &str = "reason";
    /// VK's error code behind the reason, when VK gave one.
    pub const ERROR_CODE: &str = "error_code";
    /// The guid wall.post carried (UUIDv5 of job and community).
    pub const GUID: &str = "guid";
    /// The attachment strings of the post, comma-separated.
    pub const ATTACHMENTS: &str = "attachments";
    /// When wall.post was sent (unix seconds).
    pub const POSTED_AT: &str = "posted_at";
}

/// What became of a community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// On the wall (the sender is an editor, or the wall is open).
    Published,
    /// Waiting in the community's suggested posts.
    Suggested,
    /// Not posted, for the row's reason (closed wall, private, deactivated, captcha, …).
    Skipped,
    /// Not tried: the sender's daily limit or token ran out first. Another campaign may.
    Deferred,
    /// Sent, but its answer was lost and VK's guid window passed: not repeated.
    Unknown,
}

impl Outcome {
    /// As written in the table and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Published => "published",
            Outcome::Suggested => "suggested",
            Outcome::Skipped => "skipped",
            Outcome::Deferred => "deferred",
            Outcome::Unknown => "unknown",
        }
    }

    /// Every outcome, in the order counts are shown.
    pub const ALL: [Outcome; 5] = [
        Outcome::Published,
        Outcome::Suggested,
        Outcome::Skipped,
        Outcome::Deferred,
        Outcome::Unknown,
    ];
}

/// One row of `posts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// [`posts::GROUP_ID`].
    pub group_id: Option<i64>,
    /// [`posts::SCREEN_NAME`].
    pub screen_name: String,
    /// [`posts::OUTCOME`].
    pub outcome: Outcome,
    /// [`posts::POST_ID`].
    pub post_id: Option<i64>,
    /// [`posts::POST_TYPE`].
    pub post_type: Option<String>,
    /// [`posts::REASON`].
    pub reason: Option<String>,
    /// [`posts::ERROR_CODE`].
    pub error_code: Option<i64>,
    /// [`posts::GUID`].
    pub guid: Option<String>,
    /// [`posts::ATTACHMENTS`].
    pub attachments: Option<String>,
    /// [`posts::POSTED_AT`].
    pub posted_at: Option<i64>,
}

/// The campaign's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignManifest {
    /// [`SCHEMA_VERSION`] at write time.
    pub schema_version: u32,
    /// `SUGGEST`.
    pub kind: String,
    /// The campaign.
    pub campaign_id: CampaignId,
    /// The job.
    pub job_id: JobId,
    /// The sender.
    pub user_id: VkUserId,
    /// The prefix the files are under.
    pub prefix: String,
    /// The data files, all written before this manifest.
    pub files: Vec<ManifestFile>,
    /// Communities per outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// Rows per outcome, every outcome present.
pub fn counts(rows: &[Row]) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = Outcome::ALL
        .iter()
        .map(|o| (o.as_str().to_owned(), 0))
        .collect();
    for row in rows {
        *out.entry(row.outcome.as_str().to_owned()).or_default() += 1;
    }
    out
}

/// `posts` of `rows`.
pub fn table(rows: &[Row]) -> Table {
    let strs = |f: fn(&Row) -> Option<String>| ColumnData::Str(rows.iter().map(f).collect());
    Table::new(posts::TABLE)
        .with(
            posts::GROUP_ID,
            ColumnData::OptI64(rows.iter().map(|r| r.group_id).collect()),
        )
        .with(posts::SCREEN_NAME, strs(|r| Some(r.screen_name.clone())))
        .with(
            posts::OUTCOME,
            strs(|r| Some(r.outcome.as_str().to_owned())),
        )
        .with(
            posts::POST_ID,
            ColumnData::OptI64(rows.iter().map(|r| r.post_id).collect()),
        )
        .with(posts::POST_TYPE, strs(|r| r.post_type.clone()))
        .with(posts::REASON, strs(|r| r.reason.clone()))
        .with(
            posts::ERROR_CODE,
            ColumnData::OptI64(rows.iter().map(|r| r.error_code).collect()),
        )
        .with(posts::GUID, strs(|r| r.guid.clone()))
        .with(posts::ATTACHMENTS, strs(|r| r.attachments.clone()))
        .with(
            posts::POSTED_AT,
            ColumnData::OptI64(rows.iter().map(|r| r.posted_at).collect()),
        )
}

/// Writes `posts.parquet`, then the manifest.
pub async fn write(
    storage: &dyn Storage,
    campaign: &CampaignId,
    job: &JobId,
    sender: VkUserId,
    rows: &[Row],
) -> Result<Artifacts, PosterError> {
    let prefix = campaign_prefix(sender, job);
    let outcomes = counts(rows);
    let table = table(rows);
    let files = tokio::task::spawn_blocking(move || into_files(vec![table]))
        .await
        .map_err(|e| PosterError::Internal(format!("the encoding task failed: {e}")))??;
    let listed = put_files(storage, &prefix, files).await?;
    let manifest = CampaignManifest {
        schema_version: SCHEMA_VERSION,
        kind: crate::key::CAMPAIGN_ROOT.to_owned(),
        campaign_id: campaign.clone(),
        job_id: job.clone(),
        user_id: sender,
        prefix: prefix.to_string(),
        files: listed,
        outcomes,
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

    fn row(outcome: Outcome) -> Row {
        Row {
            group_id: Some(1),
            screen_name: "club1".into(),
            outcome,
            post_id: None,
            post_type: None,
            reason: None,
            error_code: None,
            guid: None,
            attachments: None,
            posted_at: None,
        }
    }

    #[test]
    fn counts_name_every_outcome() {
        let rows = [
            row(Outcome::Published),
            row(Outcome::Skipped),
            row(Outcome::Skipped),
        ];
        let counts = counts(&rows);
        assert_eq!(counts["published"], 1);
        assert_eq!(counts["skipped"], 2);
        assert_eq!(counts["deferred"], 0);
        assert_eq!(counts.len(), 5);
        assert_eq!(table(&rows).rows(), 3);
    }
}
