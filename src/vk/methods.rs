//! The VK methods the stages use, typed: call builders, response decoders, and the batched
//! operations on a [`Session`] that page and pack them.
//!
//! Limits are VK's (see shared/vk-api.md): friends.get pages by 5,000, users.getFollowers by
//! 1,000, users.get takes 1,000 ids, friends.getMutual 100 targets, users.getSubscriptions 200,
//! groups.getById 500. Every operation asks for the first page of everything first, then packs
//! the remaining pages of the few long lists together, so paging never costs a request per
//! user.
//!
//! The file runs past 600 lines only for its unit tests, which sit next to the code they pin;
//! the code is about 560 lines.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{Action, ApiError, VkError};
use super::execute::{run_calls, Call};
use super::orchestrator::Session;
use crate::ids::{GroupId, VkUserId};

/// friends.get page size (VK's maximum).
pub const FRIENDS_PAGE: u32 = 5000;
/// users.getFollowers page size.
pub const FOLLOWERS_PAGE: u32 = 1000;
/// users.get ids per call.
pub const USERS_PER_CALL: usize = 1000;
/// friends.getMutual targets per call.
pub const MUTUAL_TARGETS: usize = 100;
/// users.getSubscriptions page size.
pub const SUBSCRIPTIONS_PAGE: u32 = 200;
/// groups.getById ids per call.
pub const GROUPS_PER_CALL: usize = 500;

/// Profile fields the stages need. Never `counters`: VK returns them only when users.get asks
/// about one user, and profiles are read 1,000 a call; `followers_count` works in bulk.
pub const PROFILE_FIELDS: &str = "is_closed,can_access_closed,followers_count,screen_name";

/// A page of ids with the list's total.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IdPage {
    /// Total length of the list.
    pub count: u64,
    /// This page.
    pub items: Vec<i64>,
}

/// The counters of a profile that matter to us.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Counters {
    /// Friends.
    #[serde(default)]
    pub friends: Option<u64>,
    /// Followers.
    #[serde(default)]
    pub followers: Option<u64>,
    /// Subscriptions (users and communities).
    #[serde(default)]
    pub subscriptions: Option<u64>,
}

/// A users.get entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Profile {
    /// The id.
    pub id: i64,
    /// First name.
    #[serde(default)]
    pub first_name: String,
    /// Last name.
    #[serde(default)]
    pub last_name: String,
    /// `deleted` or `banned` when deactivated.
    #[serde(default)]
    pub deactivated: Option<String>,
    /// A closed profile.
    #[serde(default)]
    pub is_closed: bool,
    /// Whether this token may see it anyway.
    #[serde(default)]
    pub can_access_closed: bool,
    /// The screen name, if set.
    #[serde(default)]
    pub screen_name: Option<String>,
    /// Counters (only in a one-user users.get; absent for deactivated users).
    #[serde(default)]
    pub counters: Option<Counters>,
    /// Followers, which VK gives in bulk (absent for deactivated and unreadable profiles).
    #[serde(default)]
    pub followers_count: Option<u64>,
}

/// A friends.getMutual entry: the target and its friends inside the source's friend list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Mutual {
    /// The target.
    pub id: i64,
    /// Friends the target shares with the source.
    #[serde(default)]
    pub common_friends: Vec<i64>,
    /// Their number.
    #[serde(default)]
    pub common_count: u64,
}

/// A groups.getById entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Group {
    /// The community id (positive).
    pub id: i64,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its screen name.
    #[serde(default)]
    pub screen_name: String,
    /// Members, when asked for.
    #[serde(default)]
    pub members_count: Option<u64>,
    /// The 100px photo.
    #[serde(default)]
    pub photo_100: Option<String>,
}

/// A list per user: the ids, or the error that kept us from reading them.
pub type Lists = HashMap<VkUserId, Result<Vec<i64>, ApiError>>;

/// One `response` (or one slot of an execute) as `T`; a shape we do not expect is a decode error.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    method: &str,
    value: Value,
) -> Result<T, VkError> {
    serde_json::from_value(value).map_err(|e| VkError::Decode {
        method: method.to_owned(),
        message: e.to_string(),
    })
}

fn joined(ids: impl IntoIterator<Item = i64>) -> String {
    ids.into_iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// friends.get of one page.
pub fn friends_get(user: VkUserId, offset: u64) -> Call {
    Call::new(
        "friends.get",
        json!({"user_id": user.get(), "count": FRIENDS_PAGE, "offset": offset}),
    )
}

/// users.getFollowers of one page.
pub fn followers_get(user: VkUserId, offset: u64) -> Call {
    Call::new(
        "users.getFollowers",
        json!({"user_id": user.get(), "count": FOLLOWERS_PAGE, "offset": offset}),
    )
}

/// users.get for up to 1,000 ids or screen names.
pub fn users_get(ids: &[String], fields: &str) -> Call {
    Call::new(
        "users.get",
        json!({"user_ids": ids.join(","), "fields": fields}),
    )
}

/// friends.getMutual of `source` with up to 100 targets.
pub fn get_mutual(source: VkUserId, targets: &[i64]) -> Call {
    Call::new(
        "friends.getMutual",
        json!({"source_uid": source.get(), "target_uids": joined(targets.iter().copied())}),
    )
}

/// Whether a per-target error is worth asking again on another token: not VK's answer about
/// the target (private, deleted) and not a refused right (the stages move that work).
pub fn worth_retry(error: &ApiError) -> bool {
    !matches!(error.action(), Action::SkipTarget | Action::MethodDenied)
}

/// The targets whose result is an error worth retrying.
fn still_failed<T>(
    results: &HashMap<VkUserId, Result<T, ApiError>>,
    of: &[VkUserId],
) -> Vec<VkUserId> {
    of.iter()
        .copied()
        .filter(|u| matches!(results.get(u), Some(Err(e)) if worth_retry(e)))
        .collect()
}

/// Whether to run another retry pass over `failed`: there is something to ask, and a pass is
/// left. Each pass moves the job to a fresh token first (when the pool has one), since the
/// seed service's passes switched tokens: a failure the token caused does not repeat there.
async fn next_pass(session: &mut Session, failed: &[VkUserId], pass: u32) -> bool {
    if failed.is_empty() || pass >= session.settings().retry_passes {
        return false;
    }
    tracing::info!(
        targets = failed.len(),
        pass = pass + 1,
        "retry pass over calls still failed"
    );
    session.rotate_now("retry pass").await;
    true
}

/// Pages through one kind of id list for many users, then re-asks what is still failed in
/// retry passes, and what a leased token was refused as private on the author's token.
async fn paged_lists(
    session: &mut Session,
    users: &[VkUserId],
    page: u32,
    build: fn(VkUserId, u64) -> Call,
) -> Result<Lists, VkError> {
    let mut lists = read_lists(session, users, page, build).await?;
    let mut pass = 0;
    loop {
        let failed = still_failed(&lists, users);
        if !next_pass(session, &failed, pass).await {
            break;
        }
        pass += 1;
        lists.extend(read_lists(session, &failed, page, build).await?);
    }
    let private = private_ones(&lists, users);
    let method = users.first().map(|&u| build(u, 0).method);
    if let (false, Some(method)) = (private.is_empty(), method) {
        if let Some(previous) = session.to_author(method).await {
            let again = read_lists(session, &private, page, build).await;
            session.restore(previous);
            lists.extend(again?);
        }
    }
    Ok(lists)
}

/// The targets VK called private (30): on a leased token, the author's may still read them.
fn private_ones<T>(
    results: &HashMap<VkUserId, Result<T, ApiError>>,
    of: &[VkUserId],
) -> Vec<VkUserId> {
    of.iter()
        .copied()
        .filter(|u| matches!(results.get(u), Some(Err(e)) if e.error_code == 30))
        .collect()
}

/// One pass of [`paged_lists`]: first pages of all, then the rest.
async fn read_lists(
    session: &mut Session,
    users: &[VkUserId],
    page: u32,
    build: fn(VkUserId, u64) -> Call,
) -> Result<Lists, VkError> {
    let calls: Vec<Call> = users.iter().map(|&u| build(u, 0)).collect();
    let Some(method) = calls.first().map(|c| c.method) else {
        return Ok(HashMap::new());
    };
    let first = run_calls(session, &calls).await?;
    let mut lists: Lists = HashMap::with_capacity(users.len());
    let mut more: Vec<(VkUserId, u64)> = Vec::new();
    for (&user, result) in users.iter().zip(first) {
        match result {
            Ok(value) => {
                let page_data: IdPage = decode(method, value)?;
                more.extend(
                    later_offsets(method, &page_data, page)?
                        .into_iter()
                        .map(|offset| (user, offset)),
                );
                lists.insert(user, Ok(page_data.items));
            }
            Err(error) => {
                lists.insert(user, Err(error));
            }
        }
    }
    if !more.is_empty() {
        let calls: Vec<Call> = more.iter().map(|&(u, offset)| build(u, offset)).collect();
        let pages = run_calls(session, &calls).await?;
        for (&(user, _), result) in more.iter().zip(pages) {
            let entry = lists.entry(user).or_insert_with(|| Ok(Vec::new()));
            match (entry, result) {
                (Ok(items), Ok(value)) => {
                    let page_data: IdPage = decode(method, value)?;
                    items.extend(page_data.items);
                }
                // A later page failing (the profile closed meanwhile) fails the whole list:
                // half a list would be a wrong graph.
                (entry, Err(error)) => *entry = Err(error),
                (Err(_), Ok(_)) => {}
            }
        }
    }
    Ok(lists)
}

/// Longest list the service pages through. VK caps friend lists at 10,000; follower lists of the
/// most followed accounts are in the tens of millions. A larger `count` is not a list we can
/// collect but a broken answer, and trusting it would plan billions of page requests.
pub const MAX_LIST_LEN: u64 = 100_000_000;

/// The offsets of the pages after `first`, whose `count` gives the list's length.
pub(crate) fn later_offsets(method: &str, first: &IdPage, page: u32) -> Result<Vec<u64>, VkError> {
    if first.count > MAX_LIST_LEN {
        return Err(VkError::Decode {
            method: method.to_owned(),
            message: format!(
                "a list of {} ids is beyond the {MAX_LIST_LEN} the service reads",
                first.count
            ),
        });
    }
    // An empty first page means VK has nothing to show (closed meanwhile, or count is stale).
    if first.items.is_empty() || page == 0 {
        return Ok(Vec::new());
    }
    let start = first.items.len() as u64;
    Ok((start..first.count).step_by(page as usize).collect())
}

/// Friend lists of `users`, complete past 5,000 friends.
pub async fn friend_lists(session: &mut Session, users: &[VkUserId]) -> Result<Lists, VkError> {
    paged_lists(session, users, FRIENDS_PAGE, friends_get).await
}

/// Follower lists of `users`, complete past 1,000 followers.
pub async fn follower_lists(session: &mut Session, users: &[VkUserId]) -> Result<Lists, VkError> {
    paged_lists(session, users, FOLLOWERS_PAGE, followers_get).await
}

/// Profiles of `ids`, 1,000 per users.get. Ids VK does not know are absent from the result.
pub async fn profiles(
    session: &mut Session,
    ids: &[i64],
    fields: &str,
) -> Result<Vec<Profile>, VkError> {
    let calls: Vec<Call> = ids
        .chunks(USERS_PER_CALL)
        .map(|chunk| {
            let names: Vec<String> = chunk.iter().map(i64::to_string).collect();
            users_get(&names, fields)
        })
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for result in run_calls(session, &calls).await? {
        match result {
            Ok(value) => out.extend(decode::<Vec<Profile>>("users.get", value)?),
            // 113 for a whole chunk means none of its ids exist.
            Err(error) if error.is_missing_target() => {}
            Err(error) => {
                return Err(VkError::Api {
                    method: "users.get".to_owned(),
                    error,
                })
            }
        }
    }
    Ok(out)
}

/// The method name, as the session's right bookkeeping knows it.
pub const GET_MUTUAL: &str = "friends.getMutual";

/// What friends.getMutual of one source gave for a list of targets.
#[derive(Debug, Default)]
pub struct MutualResults {
    /// Each answered target with its friends inside the source's list. VK leaves deactivated
    /// targets out.
    pub found: Vec<Mutual>,
    /// Targets no token of the job could test: VK refused the method itself (it needs the
    /// `friends` right). The caller reads these targets' own friend lists instead.
    pub denied: Vec<i64>,
    /// Targets of calls VK refused for another reason, with the error.
    pub failed: Vec<(i64, ApiError)>,
}

/// For `source`, each target's friends inside `source`'s friend list (100 targets per call).
/// A refusal of the method (15/1133) is not a per-target answer: the session moves once to a
/// global token for it and asks again; what still cannot be tested comes back as `denied`.
pub async fn mutual_friends(
    session: &mut Session,
    source: VkUserId,
    targets: &[i64],
) -> Result<MutualResults, VkError> {
    let mut out = test_mutual(session, source, targets).await?;
    let mut pass = 0;
    loop {
        let failed: Vec<i64> = out
            .failed
            .iter()
            .filter(|(_, e)| worth_retry(e))
            .map(|(t, _)| *t)
            .collect();
        let as_ids: Vec<VkUserId> = failed
            .iter()
            .filter_map(|&t| VkUserId::new(t).ok())
            .collect();
        if !next_pass(session, &as_ids, pass).await {
            return Ok(out);
        }
        pass += 1;
        out.failed.retain(|(t, _)| !failed.contains(t));
        let again = test_mutual(session, source, &failed).await?;
        out.found.extend(again.found);
        out.denied.extend(again.denied);
        out.failed.extend(again.failed);
    }
}

/// One pass of [`mutual_friends`].
async fn test_mutual(
    session: &mut Session,
    source: VkUserId,
    targets: &[i64],
) -> Result<MutualResults, VkError> {
    let mut out = MutualResults::default();
    let mut pending: Vec<i64> = targets.to_vec();
    while !pending.is_empty() {
        if !session.seek_right(GET_MUTUAL).await {
            out.denied.append(&mut pending);
            break;
        }
        let chunks: Vec<&[i64]> = pending.chunks(MUTUAL_TARGETS).collect();
        let calls: Vec<Call> = chunks.iter().map(|c| get_mutual(source, c)).collect();
        let mut refused = Vec::new();
        for (chunk, result) in chunks.iter().zip(run_calls(session, &calls).await?) {
            match result {
                Ok(value) => out.found.extend(decode::<Vec<Mutual>>(GET_MUTUAL, value)?),
                Err(error) if error.is_method_denied() => refused.extend_from_slice(chunk),
                Err(error) => out.failed.extend(chunk.iter().map(|&t| (t, error.clone()))),
            }
        }
        if !refused.is_empty() {
            session.note_denied(GET_MUTUAL);
        }
        pending = refused;
    }
    Ok(out)
}

/// What a user subscribes to: users (public pages of people) and communities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriptions {
    /// Followed users.
    pub users: Vec<i64>,
    /// Communities (positive ids).
    pub groups: Vec<i64>,
}

#[derive(Deserialize)]
struct SubscriptionsBody {
    users: IdPage,
    groups: IdPage,
}

/// A users.getSubscriptions answer with `extended=0`.
pub(crate) fn decode_subscriptions(value: Value) -> Result<Subscriptions, VkError> {
    let body: SubscriptionsBody = decode("users.getSubscriptions", value)?;
    Ok(Subscriptions {
        users: body.users.items,
        groups: body.groups.items,
    })
}

/// The method name of [`subscriptions_get`].
const GET_SUBSCRIPTIONS: &str = "users.getSubscriptions";

/// users.getSubscriptions (extended=0 answers the whole lists in one call).
pub fn subscriptions_get(user: VkUserId) -> Call {
    Call::new(
        GET_SUBSCRIPTIONS,
        json!({"user_id": user.get(), "extended": 0}),
    )
}

/// Subscriptions of `users`, one call each, packed; what is still failed is re-asked in retry
/// passes.
pub async fn subscriptions(
    session: &mut Session,
    users: &[VkUserId],
) -> Result<HashMap<VkUserId, Result<Subscriptions, ApiError>>, VkError> {
    let mut out = read_subscriptions(session, users).await?;
    let mut pass = 0;
    loop {
        let failed = still_failed(&out, users);
        if !next_pass(session, &failed, pass).await {
            break;
        }
        pass += 1;
        out.extend(read_subscriptions(session, &failed).await?);
    }
    let private = private_ones(&out, users);
    if !private.is_empty() {
        if let Some(previous) = session.to_author(GET_SUBSCRIPTIONS).await {
            let again = read_subscriptions(session, &private).await;
            session.restore(previous);
            out.extend(again?);
        }
    }
    Ok(out)
}

/// One pass of [`subscriptions`].
async fn read_subscriptions(
    session: &mut Session,
    users: &[VkUserId],
) -> Result<HashMap<VkUserId, Result<Subscriptions, ApiError>>, VkError> {
    let calls: Vec<Call> = users.iter().map(|&u| subscriptions_get(u)).collect();
    let mut out = HashMap::with_capacity(users.len());
    for (&user, result) in users.iter().zip(run_calls(session, &calls).await?) {
        let entry = match result {
            Ok(value) => Ok(decode_subscriptions(value)?),
            Err(error) => Err(error),
        };
        out.insert(user, entry);
    }
    Ok(out)
}

/// groups.getById for up to 500 ids.
pub fn groups_get_by_id(ids: &[i64], fields: &str) -> Call {
    Call::new(
        "groups.getById",
        json!({"group_ids": joined(ids.iter().copied()), "fields": fields}),
    )
}

/// groups.getById answers an array before API 5.199 and `{groups, profiles}` from it on.
pub(crate) fn decode_groups(value: Value) -> Result<Vec<Group>, VkError> {
    let list = match value {
        Value::Object(mut object) => object.remove("groups").unwrap_or(Value::Array(Vec::new())),
        other => other,
    };
    decode("groups.getById", list)
}

/// Communities by id, 500 per call, packed.
pub async fn groups(
    session: &mut Session,
    ids: &[i64],
    fields: &str,
) -> Result<Vec<Group>, VkError> {
    let calls: Vec<Call> = ids
        .chunks(GROUPS_PER_CALL)
        .map(|chunk| groups_get_by_id(chunk, fields))
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for result in run_calls(session, &calls).await? {
        match result {
            Ok(value) => out.extend(decode_groups(value)?),
            Err(error) => {
                return Err(VkError::Api {
                    method: "groups.getById".to_owned(),
                    error,
                })
            }
        }
    }
    Ok(out)
}

/// groups.getById's entry of each community asked about, as VK sent it; one VK does not know
/// is absent. Direct calls of 500 ids; a batch VK refuses with 100 (it refuses the whole batch
/// when one id is unknown) is split in halves until the unknown ids stand alone.
pub async fn known_groups(
    session: &mut Session,
    ids: &[GroupId],
    fields: &str,
) -> Result<HashMap<GroupId, Value>, VkError> {
    let mut out = HashMap::with_capacity(ids.len());
    let mut batches: Vec<Vec<i64>> = ids
        .chunks(GROUPS_PER_CALL)
        .map(|c| c.iter().map(|g| g.get()).collect())
        .collect();
    while let Some(batch) = batches.pop() {
        let call = groups_get_by_id(&batch, fields);
        match session.call(call.method, &call.form()).await {
            Ok(answer) => {
                let list = match answer.response {
                    Value::Object(mut o) => o.remove("groups").unwrap_or(Value::Array(Vec::new())),
                    other => other,
                };
                let Value::Array(entries) = list else {
                    return Err(VkError::Decode {
                        method: call.method.to_owned(),
                        message: "expected a list of communities".to_owned(),
                    });
                };
                for entry in entries {
                    if let Some(id) = entry
                        .get("id")
                        .and_then(Value::as_i64)
                        .and_then(|id| GroupId::new(id).ok())
                    {
                        out.insert(id, entry);
                    }
                }
            }
            Err(e) if e.code() == Some(100) && batch.len() > 1 => {
                let (a, b) = batch.split_at(batch.len() / 2);
                batches.push(a.to_vec());
                batches.push(b.to_vec());
            }
            // One unknown id: VK knows no such community.
            Err(e) if e.code() == Some(100) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_in_both_shapes() {
        let old = json!([{"id": 1, "name": "a", "screen_name": "a"}]);
        let new = json!({"groups": [{"id": 1, "name": "a", "screen_name": "a"}], "profiles": []});
        assert_eq!(decode_groups(old).unwrap(), decode_groups(new).unwrap());
    }

    #[test]
    fn paging_trusts_count_only_within_bounds() {
        let page = |count, got| IdPage {
            count,
            items: vec![1; got],
        };
        assert_eq!(
            later_offsets("friends.get", &page(12_001, 5000), 5000).unwrap(),
            [5000, 10_000]
        );
        assert!(later_offsets("friends.get", &page(10, 0), 5000)
            .unwrap()
            .is_empty());
        // A broken count must not plan 3.7e15 page requests.
        assert!(matches!(
            later_offsets("users.getFollowers", &page(u64::MAX, 1000), 1000),
            Err(VkError::Decode { .. })
        ));
    }

    #[test]
    fn pages_and_profiles_decode() {
        let page: IdPage = decode("friends.get", json!({"count": 2, "items": [1, 2]})).unwrap();
        assert_eq!(page.items, [1, 2]);
        let deleted: Vec<Profile> = decode(
            "users.get",
            json!([{"id": 4, "first_name": "DELETED", "last_name": "", "deactivated": "deleted"}]),
        )
        .unwrap();
        assert_eq!(deleted[0].deactivated.as_deref(), Some("deleted"));
        assert!(deleted[0].counters.is_none());
        assert!(decode::<IdPage>("friends.get", json!({"items": "x"})).is_err());
    }
}
