//! One campaign attempt, in order: read the ledger (what earlier attempts did), read the files
//! from storage, resolve the communities, check the sender's rights, then per community upload
//! the files, record `sent`, post, record the answer, and wait the posting interval; at the end
//! read the posts' types back (wall.getById, 100 a call) and write the table.
//!
//! What each VK answer makes of a community (shared/vk-api.md): 214, 15, 30, 203 skip it with
//! their reason; 14 (captcha) skips it and pauses, never retried; 9 pauses and tries it once
//! more, then defers the rest; 29 (the sender's daily wall.post limit) defers it and the rest;
//! a dead token (5, IP mismatch) fails the campaign as `VK_RECONNECT_REQUIRED` when nothing was
//! posted yet, else defers the rest. A transport error after `sent` leaves the post's fate open:
//! the attempt fails (retryably) and the next one repeats the post with its guid.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use uuid::Uuid;

use super::output::{self, Outcome, Row};
use super::record::{next, Next, Record, Recorded};
use super::PosterError;
use crate::events::{Attachment, CommunityRef, FailureReason, SuggestPostCreated};
use crate::ids::GroupId;
use crate::internal_events::CommunityPosted;
use crate::metrics::Metrics;
use crate::settings::PosterSettings;
use crate::storage::{Storage, StorageError};
use crate::stream::{JobContext, JobOutput};
use crate::vk::orchestrator::Session;
use crate::vk::posting::{self, Rights, UploadKind, WallPost};
use crate::vk::resolve::{Resolution, Resolver};
use crate::vk::VkError;

/// Largest photo VK's wall upload server takes (50 MB).
pub const MAX_PHOTO_BYTES: usize = 50 * 1024 * 1024;
/// Largest document VK takes (200 MB).
pub const MAX_DOC_BYTES: usize = 200 * 1024 * 1024;

/// The guid namespace: a campaign's guid is UUIDv5(namespace, "{jobId}:{groupId}").
const GUID_NAMESPACE: Uuid = Uuid::from_u128(0x7c1f_0d52_8a43_4e0b_9d35_5b1e_6f20_a917);

/// The wall.post guid of `job`'s post into `group`: the same in every attempt.
pub fn guid(job: &crate::ids::JobId, group: GroupId) -> String {
    Uuid::new_v5(&GUID_NAMESPACE, format!("{job}:{group}").as_bytes()).to_string()
}

/// One attempt's inputs.
pub(super) struct Campaign<'a> {
    pub event: &'a SuggestPostCreated,
    pub storage: &'a dyn Storage,
    pub resolver: &'a Resolver,
    pub settings: &'a PosterSettings,
    pub metrics: Option<&'a Metrics>,
    pub ctx: &'a JobContext,
}

/// A file of the post, read from storage.
struct File {
    index: usize,
    kind: UploadKind,
    filename: String,
    title: Option<String>,
    bytes: Vec<u8>,
}

/// The post's attachments, in the event's order.
enum Attach {
    File(File),
    Vk(String),
}

/// What the rights check expects of a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Published,
    Suggested,
}

/// Why a community's work stopped short of a post.
enum Stop {
    /// Skip it: reason, VK's code (0 none).
    Skip(String, i64),
    /// Defer it and every later one: reason.
    Defer(&'static str),
    /// End the attempt.
    Fail(PosterError),
}

/// A community as the event named it, resolved.
struct Target {
    named: String,
    group: Option<GroupId>,
    /// Not posted: why (resolution, duplicate, rights).
    skip: Option<(String, i64)>,
    expect: Option<Expect>,
}

impl Campaign<'_> {
    /// Runs the attempt to its table.
    pub async fn run(self, session: &mut Session) -> Result<JobOutput, PosterError> {
        let mut recorded = Recorded::parse(&self.ctx.ledger.read().await?);
        let attachments = self.load_files().await?;
        let mut targets = self.resolve(session).await?;
        if self.event.options.check_rights {
            self.check_rights(session, &mut targets, &recorded).await?;
        }
        let (used, spent) = session.used_today("wall.post").await.unwrap_or((0, false));
        let mut budget = if spent {
            0
        } else {
            self.settings.daily_posts.saturating_sub(used)
        };
        let total = targets.len();
        let mut deferred: Option<&'static str> = None;
        let mut sent_now = 0u32;
        for (i, target) in targets.iter().enumerate() {
            let (Some(group), None) = (target.group, &target.skip) else {
                continue;
            };
            if self.ctx.cancel.is_cancelled() {
                return Err(PosterError::Cancelled);
            }
            let now = now_ms();
            let repeat_at = match next(
                recorded.communities.get(&group),
                now,
                self.settings.guid_window,
            ) {
                Next::Done(_) => continue,
                Next::GiveUp => {
                    let at_ms = match recorded.communities.get(&group) {
                        Some(Record::Sent { at_ms }) => *at_ms,
                        _ => now,
                    };
                    self.record(&mut recorded, group, Record::Unknown { at_ms })
                        .await?;
                    continue;
                }
                Next::Repeat => match recorded.communities.get(&group) {
                    Some(Record::Sent { at_ms }) => Some(*at_ms),
                    _ => None,
                },
                Next::Post => None,
            };
            if deferred.is_some() {
                continue;
            }
            if budget == 0 {
                deferred = Some("daily_limit");
                continue;
            }
            let post_attachments = match self
                .attachments_for(session, group, &attachments, &mut recorded)
                .await
            {
                Ok(list) => list,
                Err(stop) => {
                    if let Some(reason) = self.stop(stop, &mut recorded, group, repeat_at).await? {
                        deferred = Some(reason);
                    }
                    continue;
                }
            };
            if sent_now > 0 {
                self.pause().await;
            }
            let at_ms = match repeat_at {
                Some(at) => at,
                None => {
                    self.record(&mut recorded, group, Record::Sent { at_ms: now_ms() })
                        .await?;
                    now_ms()
                }
            };
            budget -= 1;
            sent_now += 1;
            let posted_before = recorded.posted_elsewhere(group);
            match self
                .post(session, group, &post_attachments, posted_before)
                .await
            {
                Ok(post_id) => {
                    self.record(&mut recorded, group, Record::Posted { post_id, at_ms })
                        .await?;
                }
                Err(stop) => {
                    if let Some(reason) = self.stop(stop, &mut recorded, group, repeat_at).await? {
                        deferred = Some(reason);
                    }
                }
            }
            self.ctx
                .progress
                .report(
                    ((i + 1) * 100 / total.max(1)) as u8,
                    &format!("{} of {total} communities", i + 1),
                )
                .await;
        }
        let rows = self
            .rows(session, &targets, &recorded, &attachments, deferred)
            .await;
        for row in &rows {
            if let Some(metrics) = self.metrics {
                CommunityPosted {
                    group: row.group_id,
                    outcome: row.outcome.as_str(),
                    reason: row.reason.as_deref(),
                }
                .emit(metrics);
            }
        }
        let artifacts = output::write(
            self.storage,
            &self.event.campaign_id,
            &self.event.job_id,
            self.event.user_id,
            &rows,
        )
        .await?;
        let counts = output::counts(&rows);
        let shown: Vec<String> = counts
            .iter()
            .map(|(outcome, n)| format!("{outcome} {n}"))
            .collect();
        Ok(JobOutput {
            artifacts,
            main_ids: Vec::new(),
            message: format!("{} communities: {}", rows.len(), shown.join(", ")),
            metrics: Some(serde_json::json!({ "outcomes": counts })),
            failed: None,
        })
    }

    /// Records `record` for `group`, fenced by the lease.
    async fn record(
        &self,
        recorded: &mut Recorded,
        group: GroupId,
        record: Record,
    ) -> Result<(), PosterError> {
        self.ctx
            .ledger
            .record(&[(Record::field(group), record.encode())])
            .await?;
        recorded.communities.insert(group, record);
        Ok(())
    }

    /// Carries out a [`Stop`] for `group`; answers the reason to defer the rest with, if any.
    /// A repeat (`repeat_at`) that VK refused may still have posted the first time: it is
    /// recorded `unknown`, never skipped or deferred.
    async fn stop(
        &self,
        stop: Stop,
        recorded: &mut Recorded,
        group: GroupId,
        repeat_at: Option<u64>,
    ) -> Result<Option<&'static str>, PosterError> {
        let (record, defer) = match stop {
            Stop::Fail(error) => return Err(error),
            _ if repeat_at.is_some() => (
                Record::Unknown {
                    at_ms: repeat_at.unwrap_or_default(),
                },
                None,
            ),
            Stop::Skip(reason, code) => (Record::Skipped { reason, code }, None),
            Stop::Defer(reason) => (
                Record::Deferred {
                    reason: reason.to_owned(),
                },
                Some(reason),
            ),
        };
        self.record(recorded, group, record).await?;
        Ok(defer)
    }

    /// Every file the event names, from storage, checked against VK's size limits.
    async fn load_files(&self) -> Result<Vec<Attach>, PosterError> {
        let mut out = Vec::with_capacity(self.event.attachments.len());
        for (index, attachment) in self.event.attachments.iter().enumerate() {
            let (key, kind, title, limit) = match attachment {
                Attachment::Vk { value } => {
                    out.push(Attach::Vk(value.clone()));
                    continue;
                }
                Attachment::Photo { key } => (key, UploadKind::Photo, None, MAX_PHOTO_BYTES),
                Attachment::Doc { key, title } => {
                    (key, UploadKind::Doc, title.clone(), MAX_DOC_BYTES)
                }
            };
            let bytes = match self.storage.get(key).await {
                Ok(bytes) => bytes,
                Err(StorageError::NotFound(_)) => {
                    return Err(PosterError::Attachment(format!(
                        "attachments[{index}]: {key} is not in storage"
                    )))
                }
                Err(e) => return Err(e.into()),
            };
            if bytes.len() > limit {
                return Err(PosterError::Attachment(format!(
                    "attachments[{index}]: {key} is {} bytes, more than VK's {limit}",
                    bytes.len()
                )));
            }
            out.push(Attach::File(File {
                index,
                kind,
                filename: key.file_name().to_owned(),
                title,
                bytes: bytes.to_vec(),
            }));
        }
        Ok(out)
    }

    /// One target per community the event named, in order; later names of a community
    /// already named are skipped as duplicates.
    async fn resolve(&self, session: &mut Session) -> Result<Vec<Target>, PosterError> {
        let resolutions = self
            .resolver
            .resolve_communities(session, &self.event.groups)
            .await?;
        let mut seen = HashSet::new();
        Ok(self
            .event
            .groups
            .iter()
            .zip(resolutions)
            .map(|(named, resolution)| {
                let named_as = match named {
                    CommunityRef::Id(id) => format!("club{id}"),
                    CommunityRef::ScreenName(name) => name.clone(),
                };
                let (group, skip) = match resolution {
                    Resolution::Community(group) if seen.insert(group) => (Some(group), None),
                    Resolution::Community(group) => {
                        (Some(group), Some(("duplicate".to_owned(), 0)))
                    }
                    Resolution::User(_) | Resolution::Other => {
                        (None, Some(("not_a_community".to_owned(), 0)))
                    }
                    Resolution::NotFound => (None, Some(("not_found".to_owned(), 0))),
                };
                Target {
                    named: named_as,
                    group,
                    skip,
                    expect: None,
                }
            })
            .collect())
    }

    /// groups.getById over the communities still to post: skips those the sender cannot post
    /// to, with the reason, and notes what the others expect.
    async fn check_rights(
        &self,
        session: &mut Session,
        targets: &mut [Target],
        recorded: &Recorded,
    ) -> Result<(), PosterError> {
        let open: Vec<GroupId> = targets
            .iter()
            .filter(|t| t.skip.is_none())
            .filter_map(|t| t.group)
            .filter(|g| recorded.communities.get(g).is_none_or(|r| !r.is_final()))
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        let rights = posting::rights(session, &open).await?;
        for target in targets.iter_mut() {
            let Some(group) = target.group.filter(|g| open.contains(g)) else {
                continue;
            };
            if target.skip.is_some() {
                continue;
            }
            match precheck(rights.get(&group)) {
                Ok(expect) => target.expect = Some(expect),
                Err(reason) => target.skip = Some((reason.to_owned(), 0)),
            }
        }
        Ok(())
    }

    /// The attachment strings of `group`'s post: VK media as given, files uploaded for this
    /// community once (recorded, so a retry reuses them).
    async fn attachments_for(
        &self,
        session: &mut Session,
        group: GroupId,
        attachments: &[Attach],
        recorded: &mut Recorded,
    ) -> Result<Vec<String>, Stop> {
        let mut out = Vec::with_capacity(attachments.len());
        for attachment in attachments {
            let file = match attachment {
                Attach::Vk(value) => {
                    out.push(value.clone());
                    continue;
                }
                Attach::File(file) => file,
            };
            if let Some(done) = recorded.uploads.get(&(file.index, group)) {
                out.push(done.clone());
                continue;
            }
            let uploaded = posting::upload(
                session,
                group,
                file.kind,
                &file.filename,
                file.title.as_deref(),
                file.bytes.clone(),
            )
            .await;
            let attachment = match uploaded {
                Ok(attachment) => attachment,
                // A file VK will not take fails the campaign while nothing is posted (it would
                // be refused everywhere); later, only this community goes without.
                Err(VkError::Upload { message }) if !recorded.posted_elsewhere(group) => {
                    return Err(Stop::Fail(PosterError::Attachment(format!(
                        "attachments[{}]: VK's upload server refused it: {message}",
                        file.index
                    ))))
                }
                Err(VkError::Upload { .. }) => {
                    return Err(Stop::Skip("upload_refused".to_owned(), 0))
                }
                Err(e) => return Err(classify(e, recorded.posted_elsewhere(group))),
            };
            self.ctx
                .ledger
                .record(&[(Record::upload_field(file.index, group), attachment.clone())])
                .await
                .map_err(|e| Stop::Fail(e.into()))?;
            recorded
                .uploads
                .insert((file.index, group), attachment.clone());
            out.push(attachment);
        }
        Ok(out)
    }

    /// wall.post, once more after a flood-control pause; `posted_before`: another community
    /// may already carry the post (a dead token then defers instead of failing).
    async fn post(
        &self,
        session: &mut Session,
        group: GroupId,
        attachments: &[String],
        posted_before: bool,
    ) -> Result<i64, Stop> {
        let guid = guid(&self.event.job_id, group);
        let post = WallPost {
            group,
            message: &self.event.message,
            attachments,
            signed: self.event.options.signed,
            guid: &guid,
        };
        let mut flooded = false;
        loop {
            match posting::wall_post(session, &post).await {
                Ok(id) => return Ok(id),
                Err(e) if matches!(e.code(), Some(6 | 9)) && !flooded => {
                    tracing::warn!(group = %group, code = ?e.code(), "flood control: pausing before one more try");
                    flooded = true;
                    self.sleep(self.settings.flood_pause).await;
                }
                Err(e) if e.code() == Some(14) => {
                    self.sleep(self.settings.captcha_pause).await;
                    return Err(Stop::Skip("captcha".to_owned(), 14));
                }
                Err(e) => return Err(classify(e, posted_before)),
            }
        }
    }

    /// The posting interval plus a random part of the jitter.
    async fn pause(&self) {
        let jitter = self.settings.jitter.as_millis() as u64;
        let extra = if jitter == 0 {
            0
        } else {
            rand::rng().random_range(0..=jitter)
        };
        self.sleep(self.settings.interval + Duration::from_millis(extra))
            .await;
    }

    /// Sleeps, or returns early when the job is stopped (the loop then notices).
    async fn sleep(&self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.ctx.cancel.cancelled() => {}
        }
    }

    /// One row per community the event named, with the post types read back.
    async fn rows(
        &self,
        session: &mut Session,
        targets: &[Target],
        recorded: &Recorded,
        attachments: &[Attach],
        deferred: Option<&'static str>,
    ) -> Vec<Row> {
        let posted: Vec<(GroupId, i64)> = targets
            .iter()
            .filter_map(|t| t.group)
            .filter_map(|g| match recorded.communities.get(&g) {
                Some(Record::Posted { post_id, .. }) => Some((g, *post_id)),
                _ => None,
            })
            .collect();
        let states = match posting::post_states(session, &posted).await {
            Ok(states) => Some(states),
            Err(e) => {
                tracing::warn!(error = %e, "post types not read back: outcomes from the rights check");
                None
            }
        };
        targets
            .iter()
            .map(|t| {
                let mut row = Row {
                    group_id: t.group.map(GroupId::get),
                    screen_name: t.named.clone(),
                    outcome: Outcome::Skipped,
                    post_id: None,
                    post_type: None,
                    reason: None,
                    error_code: None,
                    guid: t.group.map(|g| guid(&self.event.job_id, g)),
                    attachments: None,
                    posted_at: None,
                };
                if let Some((reason, code)) = &t.skip {
                    row.reason = Some(reason.clone());
                    row.error_code = (*code != 0).then_some(*code);
                    row.guid = None;
                    return row;
                }
                let Some(group) = t.group else {
                    return row;
                };
                let used: Vec<String> = attachments
                    .iter()
                    .filter_map(|a| match a {
                        Attach::Vk(v) => Some(v.clone()),
                        Attach::File(f) => recorded.uploads.get(&(f.index, group)).cloned(),
                    })
                    .collect();
                match recorded.communities.get(&group) {
                    Some(Record::Posted { post_id, at_ms }) => {
                        row.post_id = Some(*post_id);
                        row.posted_at = Some((*at_ms / 1000) as i64);
                        row.attachments = (!used.is_empty()).then(|| used.join(","));
                        let state = states.as_ref().map(|s| s.get(&(group, *post_id)));
                        let (outcome, post_type, reason) = match state {
                            Some(Some(s)) if s.post_type == "suggest" => {
                                (Outcome::Suggested, Some("suggest"), None)
                            }
                            Some(Some(_)) => (Outcome::Published, Some("post"), None),
                            // Posted, but VK no longer shows it (an editor removed it).
                            Some(None) => (expected(t.expect), None, Some("not_visible")),
                            None => (expected(t.expect), None, Some("post_type_unread")),
                        };
                        row.outcome = outcome;
                        row.post_type = post_type.map(str::to_owned);
                        row.reason = reason.map(str::to_owned);
                    }
                    Some(Record::Skipped { reason, code }) => {
                        row.reason = Some(reason.clone());
                        row.error_code = (*code != 0).then_some(*code);
                    }
                    Some(Record::Unknown { at_ms }) => {
                        row.outcome = Outcome::Unknown;
                        row.posted_at = Some((*at_ms / 1000) as i64);
                        row.reason = Some("answer_lost_past_guid_window".to_owned());
                    }
                    Some(Record::Deferred { reason }) => {
                        row.outcome = Outcome::Deferred;
                        row.reason = Some(reason.clone());
                    }
                    // Sent, and this attempt could not repeat it (deferred or out of budget
                    // first): it may be on the wall, so it is not deferred.
                    Some(Record::Sent { at_ms }) => {
                        row.outcome = Outcome::Unknown;
                        row.posted_at = Some((*at_ms / 1000) as i64);
                        row.reason = Some("answer_lost".to_owned());
                    }
                    None => {
                        row.outcome = Outcome::Deferred;
                        row.reason = Some(deferred.unwrap_or("not_reached").to_owned());
                    }
                }
                row
            })
            .collect()
    }
}

/// What the rights check says of a community: the expected post, or why it is skipped.
fn precheck(rights: Option<&Rights>) -> Result<Expect, &'static str> {
    let Some(r) = rights else {
        return Err("not_found");
    };
    if r.deactivated.is_some() {
        return Err("deactivated");
    }
    if r.can_post == 1 {
        return Ok(Expect::Published);
    }
    if r.can_suggest == 1 {
        return Ok(Expect::Suggested);
    }
    Err(match r.is_closed {
        1 => "closed",
        2 => "private",
        _ => "wall_closed",
    })
}

fn expected(expect: Option<Expect>) -> Outcome {
    match expect {
        Some(Expect::Suggested) => Outcome::Suggested,
        _ => Outcome::Published,
    }
}

/// What a VK error on an upload or a post makes of the community; `posted_before`: some other
/// community may already carry the post, so a dead token defers the rest instead of failing.
fn classify(error: VkError, posted_before: bool) -> Stop {
    if let VkError::NoToken { reason, .. } = &error {
        if *reason == FailureReason::VkReconnectRequired && posted_before {
            tracing::warn!(error = %error, "the sender's token died mid-campaign: the rest is deferred");
            return Stop::Defer("sender_token_dead");
        }
        return Stop::Fail(error.into());
    }
    let Some(code) = error.code() else {
        // Transport, HTTP, unreadable answers: the post's fate is open; the next attempt
        // repeats it with its guid.
        return Stop::Fail(error.into());
    };
    let reason = match code {
        29 => return Stop::Defer("daily_limit"),
        6 | 9 => return Stop::Defer("flood_control"),
        14 => "captcha",
        214 => "wall_closed",
        15 | 203 => "access_denied",
        30 => "private",
        100 if error.to_string().contains("owner_id") => "not_found",
        100 => "invalid_request",
        _ => "vk_error",
    };
    Stop::Skip(reason.to_owned(), code)
}

fn now_ms() -> u64 {
    Utc::now().timestamp_millis().max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::JobId;
    use crate::vk::ApiError;

    fn rights(can_post: u8, can_suggest: u8, is_closed: u8, deactivated: Option<&str>) -> Rights {
        Rights {
            id: 1,
            screen_name: "club1".into(),
            is_closed,
            deactivated: deactivated.map(str::to_owned),
            can_post,
            can_suggest,
        }
    }

    #[test]
    fn the_rights_check_says_what_a_post_would_become() {
        assert_eq!(
            precheck(Some(&rights(1, 0, 0, None))),
            Ok(Expect::Published)
        );
        assert_eq!(
            precheck(Some(&rights(0, 1, 0, None))),
            Ok(Expect::Suggested)
        );
        assert_eq!(precheck(Some(&rights(0, 0, 0, None))), Err("wall_closed"));
        assert_eq!(precheck(Some(&rights(0, 0, 1, None))), Err("closed"));
        assert_eq!(precheck(Some(&rights(0, 0, 2, None))), Err("private"));
        assert_eq!(
            precheck(Some(&rights(1, 1, 0, Some("banned")))),
            Err("deactivated")
        );
        assert_eq!(precheck(None), Err("not_found"));
    }

    fn api(code: i64, msg: &str) -> VkError {
        VkError::Api {
            method: "wall.post".into(),
            error: ApiError {
                error_code: code,
                error_msg: msg.into(),
                error_subcode: None,
            },
        }
    }

    #[test]
    fn vk_errors_skip_defer_or_fail() {
        let skip = |e| match classify(e, false) {
            Stop::Skip(reason, code) => Some((reason, code)),
            _ => None,
        };
        assert_eq!(skip(api(214, "denied")), Some(("wall_closed".into(), 214)));
        assert_eq!(skip(api(15, "denied")), Some(("access_denied".into(), 15)));
        assert_eq!(skip(api(14, "captcha")), Some(("captcha".into(), 14)));
        assert_eq!(
            skip(api(100, "owner_id is invalid")),
            Some(("not_found".into(), 100))
        );
        assert!(matches!(
            classify(api(29, "limit"), false),
            Stop::Defer("daily_limit")
        ));
        let dead = || VkError::NoToken {
            reason: FailureReason::VkReconnectRequired,
            message: "dead".into(),
        };
        assert!(matches!(classify(dead(), false), Stop::Fail(_)));
        assert!(matches!(
            classify(dead(), true),
            Stop::Defer("sender_token_dead")
        ));
        let transport = VkError::Transport {
            method: "wall.post".into(),
            message: "reset".into(),
        };
        assert!(matches!(classify(transport, true), Stop::Fail(_)));
    }

    #[test]
    fn a_guid_is_the_same_in_every_attempt_and_differs_by_community() {
        let job = JobId::parse("j1").unwrap();
        let (a, b) = (GroupId::new(1).unwrap(), GroupId::new(2).unwrap());
        assert_eq!(guid(&job, a), guid(&job, a));
        assert_ne!(guid(&job, a), guid(&job, b));
    }
}
