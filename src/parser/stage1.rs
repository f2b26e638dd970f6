//! Stage 1 (`ReportCreated`): from seeds to the seeds' audience.
//!
//! Every report type resolves its seeds, reads their friend and follower lists
//! (`df_main_friends`), the users they follow (`df_main_outgoing`: their outgoing friendships)
//! and the profiles of everyone in them, and keeps the valid users: not deactivated, and open
//! or closed but readable by the token (the seed's rule; `canAccessClosed: false` narrows it).
//! The seeds themselves stay whenever their lists could be read. Then: DEFAULT writes
//! `df_users` (with one `relations_{main_id}` column per seed, see [`super::relations`]) and
//! the seeds' communities (`subscriptions_df`); HANDSHAKES writes the lists and the valid
//! users; SUB_GRAPH adds the raw subscriptions of every valid user (`df_subs_raw`).

use std::collections::{BTreeSet, HashMap};

use super::communities;
use super::completeness::{ListKind, Tally};
use super::relations::{SeedLists, FOLLOWER, FRIEND};
use super::schema::{df_main_friends, df_subs_raw, valid_users};
use super::{output, ParserError};
use crate::events::ReportCreated;
use crate::ids::{ReportType, Stage, VkUserId};
use crate::storage::{StagePrefix, Storage};
use crate::stream::{JobContext, JobOutput};
use crate::tables::{ColumnData, Table};
use crate::vk::error::ApiError;
use crate::vk::methods::{self, Profile};
use crate::vk::orchestrator::Session;
use crate::vk::resolve::{Resolution, Resolver};
use crate::vk::VkError;

/// Profile fields asked for; `fastGraph` skips the follower counts too.
const FULL_FIELDS: &str = methods::PROFILE_FIELDS;
const FAST_FIELDS: &str = "is_closed,can_access_closed,screen_name";

/// The seeds' friends, followers and subscriptions.
#[derive(Debug, Default)]
pub struct Audience {
    /// The seeds' lists, for each seed whose friend list could be read.
    pub lists: SeedLists,
    /// The communities each seed subscribes to.
    pub groups: HashMap<i64, Vec<i64>>,
}

impl Audience {
    /// Everyone in any list (friends, followers, followed users), seeds included, sorted.
    pub fn everyone(&self, main_ids: &[VkUserId]) -> Vec<i64> {
        let mut all: BTreeSet<i64> = main_ids.iter().map(|m| m.get()).collect();
        let l = &self.lists;
        for list in l
            .friends
            .values()
            .chain(l.followers.values())
            .chain(l.outgoing.values())
        {
            all.extend(list);
        }
        all.into_iter().collect()
    }

    /// Whether `seed`'s friend list could be read.
    pub fn read(&self, seed: VkUserId) -> bool {
        self.lists.friends.contains_key(&seed.get())
    }

    /// `df_main_friends`: main_id, id, relation (2 friend, 1 follower).
    pub fn table(&self, main_ids: &[VkUserId]) -> Table {
        let (mut main, mut id, mut relation) = (Vec::new(), Vec::new(), Vec::new());
        for m in main_ids {
            for (lists, kind) in [
                (&self.lists.friends, FRIEND),
                (&self.lists.followers, FOLLOWER),
            ] {
                for &u in lists.get(&m.get()).map(Vec::as_slice).unwrap_or_default() {
                    main.push(m.get());
                    id.push(u);
                    relation.push(kind);
                }
            }
        }
        Table::new(df_main_friends::TABLE)
            .with(df_main_friends::MAIN_ID, ColumnData::I64(main))
            .with(df_main_friends::ID, ColumnData::I64(id))
            .with(df_main_friends::RELATION, ColumnData::I8(relation))
    }
}

/// What stage 1 refuses to collect.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most users in the seeds' lists together (`parser.max_audience`).
    pub max_audience: usize,
    /// Largest share of planned VK calls that may fail (`parser.max_failed_share`).
    pub max_failed_share: f64,
}

/// Runs stage 1 of `event`.
pub async fn run(
    event: &ReportCreated,
    session: &mut Session,
    resolver: &Resolver,
    storage: &dyn Storage,
    limits: Limits,
    ctx: &JobContext,
) -> Result<JobOutput, ParserError> {
    ctx.progress.report(5, "resolving seeds").await;
    let (main_ids, mut message) = resolve_seeds(event, session, resolver).await?;
    ctx.progress
        .report(15, "reading friend and follower lists")
        .await;
    let mut tally = Tally::default();
    let audience = collect_audience(session, &main_ids, &mut tally).await?;
    let df_main_friends = audience.table(&main_ids);
    output::require_rows(&df_main_friends)?;
    // Checked here, before profiles (the bulk of stage 1's memory and requests) and before
    // stage 2 (whose edges are among these users).
    let everyone = audience.everyone(&main_ids);
    if everyone.len() > limits.max_audience {
        return Err(ParserError::TooLarge(format!(
            "report too large: the seeds' friend and follower lists hold {} users, over \
             parser.max_audience = {}",
            everyone.len(),
            limits.max_audience
        )));
    }

    ctx.progress.report(40, "reading profiles").await;
    let fields = if event.options.fast_graph {
        FAST_FIELDS
    } else {
        FULL_FIELDS
    };
    let profiles = methods::profiles(session, &everyone, fields).await?;
    tally.record_answered(ListKind::Profiles, everyone.len(), profiles.len());
    let valid = valid_users(
        &profiles,
        &main_ids,
        &audience,
        event.options.can_access_closed,
    );
    let valid_table = Table::new(valid_users::TABLE).with(
        valid_users::ID,
        ColumnData::I64(valid.iter().copied().collect()),
    );
    output::require_rows(&valid_table)?;

    let outgoing = audience.lists.outgoing_table(&main_ids);
    let mut tables = vec![df_main_friends, outgoing];
    let found = Found {
        main_ids: &main_ids,
        audience: &audience,
        profiles: &profiles,
        valid: &valid,
    };
    tables.extend(per_type_tables(event.report_type, session, found, &mut tally, ctx).await?);
    tables.push(valid_table);
    tally.check(limits.max_failed_share)?;
    ctx.progress.report(90, "writing parquet").await;
    let prefix = StagePrefix::new(event.report_type, &main_ids, &event.job_id, Stage::One);
    let artifacts = output::write(
        storage,
        &prefix,
        &event.report_id,
        &main_ids,
        tables,
        tally.completeness(),
    )
    .await?;
    message.push_str(&format!("{} valid users; {}", valid.len(), tally.summary()));
    Ok(JobOutput {
        artifacts,
        main_ids,
        message,
        metrics: None,
        failed: None,
    })
}

/// What stage 1 found before its per-type tables.
#[derive(Clone, Copy)]
struct Found<'a> {
    main_ids: &'a [VkUserId],
    audience: &'a Audience,
    profiles: &'a [Profile],
    valid: &'a BTreeSet<i64>,
}

/// The tables only one report type writes: DEFAULT `df_users` and the seeds' communities,
/// SUB_GRAPH `df_users` and the audience's subscriptions; HANDSHAKES none.
async fn per_type_tables(
    report_type: ReportType,
    session: &mut Session,
    found: Found<'_>,
    tally: &mut Tally,
    ctx: &JobContext,
) -> Result<Vec<Table>, ParserError> {
    let Found {
        main_ids,
        audience,
        profiles,
        valid,
    } = found;
    let mut tables = Vec::new();
    match report_type {
        ReportType::Default => {
            tables.push(users_table(profiles, valid, main_ids, audience));
            ctx.progress
                .report(70, "reading the seeds' communities")
                .await;
            tables.push(seed_subscriptions(session, main_ids, audience).await?);
        }
        ReportType::Handshakes => {}
        ReportType::SubGraph => {
            tables.push(users_table(profiles, valid, main_ids, audience));
            ctx.progress
                .report(60, "reading subscriptions of the audience")
                .await;
            let raw = audience_subscriptions(session, valid, tally).await?;
            output::require_rows(&raw)?;
            tables.push(raw);
        }
    }
    Ok(tables)
}

/// The seeds as user ids; the author when none resolves (as the seed service did).
async fn resolve_seeds(
    event: &ReportCreated,
    session: &mut Session,
    resolver: &Resolver,
) -> Result<(Vec<VkUserId>, String), ParserError> {
    let resolutions = resolver.resolve(session, &event.social_network_ids).await?;
    let mut main_ids: Vec<VkUserId> = Vec::new();
    let mut unresolved = Vec::new();
    for (seed, resolution) in event.social_network_ids.iter().zip(resolutions) {
        match resolution {
            Resolution::User(id) if !main_ids.contains(&id) => main_ids.push(id),
            Resolution::User(_) => {}
            Resolution::Community(_) | Resolution::Other | Resolution::NotFound => {
                unresolved.push(seed.to_string())
            }
        }
    }
    let mut message = String::new();
    if !unresolved.is_empty() {
        message.push_str(&format!("not users, skipped: {}; ", unresolved.join(", ")));
    }
    if main_ids.is_empty() {
        main_ids.push(event.user_id);
        message.push_str(&format!(
            "no seed resolved to a user: the report uses its author {}; ",
            event.user_id
        ));
    }
    Ok((main_ids, message))
}

/// Friend, follower and subscription lists of the seeds. Fails when no seed's friend list can
/// be read, with the reason VK gave (deleted → VK_USER_NOT_FOUND, private → VK_ACCESS_DENIED).
pub async fn collect_audience(
    session: &mut Session,
    main_ids: &[VkUserId],
    tally: &mut Tally,
) -> Result<Audience, ParserError> {
    let friends = methods::friend_lists(session, main_ids).await?;
    let followers = methods::follower_lists(session, main_ids).await?;
    // The users a seed follows are its outgoing friendships (`friend` in relations_*).
    let subscriptions = methods::subscriptions(session, main_ids).await?;
    for (kind, lists) in [
        (ListKind::FriendLists, &friends),
        (ListKind::FollowerLists, &followers),
    ] {
        tally.record(
            kind,
            lists.len(),
            lists.values().filter_map(|r| r.as_ref().err()),
        );
    }
    tally.record(
        ListKind::Subscriptions,
        subscriptions.len(),
        subscriptions.values().filter_map(|r| r.as_ref().err()),
    );
    let mut audience = Audience::default();
    let mut refusals: Vec<ApiError> = Vec::new();
    for m in main_ids {
        match (friends.get(m), followers.get(m)) {
            (Some(Ok(f)), followers_of) => {
                let id = m.get();
                audience.lists.friends.insert(id, f.clone());
                if let Some(Ok(list)) = followers_of {
                    audience.lists.followers.insert(id, list.clone());
                }
                if let Some(Ok(s)) = subscriptions.get(m) {
                    audience.lists.outgoing.insert(id, s.users.clone());
                    audience.groups.insert(id, s.groups.clone());
                }
            }
            (Some(Err(e)), _) | (None, Some(Err(e))) => refusals.push(e.clone()),
            (None, _) => {}
        }
    }
    if audience.lists.friends.is_empty() {
        return Err(match refusals.into_iter().next() {
            Some(error) => ParserError::Vk(VkError::Api {
                method: "friends.get".to_owned(),
                error,
            }),
            None => ParserError::Empty("no seed's friend list could be read".to_owned()),
        });
    }
    Ok(audience)
}

/// Valid users: not deactivated, open or readable by the token (unless the report narrows it
/// with `canAccessClosed: false`); seeds with readable lists stay.
pub fn valid_users(
    profiles: &[Profile],
    main_ids: &[VkUserId],
    audience: &Audience,
    can_access_closed: bool,
) -> BTreeSet<i64> {
    let mut valid: BTreeSet<i64> = profiles
        .iter()
        .filter(|p| p.deactivated.is_none())
        .filter(|p| !p.is_closed || (can_access_closed && p.can_access_closed))
        .map(|p| p.id)
        .collect();
    for m in main_ids {
        if audience.read(*m) {
            valid.insert(m.get());
        }
    }
    valid
}

/// `df_users`: the valid users' profiles and their relation to each seed.
pub fn users_table(
    profiles: &[Profile],
    valid: &BTreeSet<i64>,
    main_ids: &[VkUserId],
    audience: &Audience,
) -> Table {
    let rows: Vec<&Profile> = profiles.iter().filter(|p| valid.contains(&p.id)).collect();
    let mains: BTreeSet<i64> = main_ids.iter().map(|m| m.get()).collect();
    let friend_counts: HashMap<i64, usize> = audience
        .lists
        .friends
        .iter()
        .map(|(m, list)| (*m, list.len()))
        .collect();
    let table = output::profiles_table(rows.iter().copied(), &mains, &friend_counts);
    let ids: Vec<i64> = rows.iter().map(|p| p.id).collect();
    audience.lists.add_columns(table, &ids, main_ids)
}

/// `subscriptions_df`: the seeds' communities (read with their lists) with their details.
async fn seed_subscriptions(
    session: &mut Session,
    main_ids: &[VkUserId],
    audience: &Audience,
) -> Result<Table, ParserError> {
    let mut pairs: Vec<(i64, i64)> = Vec::new();
    for m in main_ids {
        for &g in audience.groups.get(&m.get()).into_iter().flatten() {
            pairs.push((m.get(), g));
        }
    }
    let ids: Vec<i64> = pairs
        .iter()
        .map(|(_, g)| *g)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let details = communities::details(session, &ids).await?;
    Ok(communities::subscriptions_table(&pairs, &details))
}

/// `df_subs_raw`: every community each valid user subscribes to.
async fn audience_subscriptions(
    session: &mut Session,
    valid: &BTreeSet<i64>,
    tally: &mut Tally,
) -> Result<Table, ParserError> {
    let users: Vec<VkUserId> = valid
        .iter()
        .filter_map(|&id| VkUserId::new(id).ok())
        .collect();
    let subscriptions = methods::subscriptions(session, &users).await?;
    tally.record(
        ListKind::Subscriptions,
        users.len(),
        subscriptions.values().filter_map(|r| r.as_ref().err()),
    );
    let (mut user_id, mut group_id) = (Vec::new(), Vec::new());
    for u in &users {
        if let Some(Ok(s)) = subscriptions.get(u) {
            for &g in &s.groups {
                user_id.push(u.get());
                group_id.push(g);
            }
        }
    }
    Ok(Table::new(df_subs_raw::TABLE)
        .with(df_subs_raw::USER_ID, ColumnData::I64(user_id))
        .with(df_subs_raw::GROUP_ID, ColumnData::I64(group_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(id: i64, closed: bool, readable: bool, deactivated: Option<&str>) -> Profile {
        serde_json::from_value(serde_json::json!({
            "id": id, "first_name": "A", "last_name": "B", "is_closed": closed,
            "can_access_closed": readable, "deactivated": deactivated,
        }))
        .unwrap()
    }

    fn seed(id: i64) -> VkUserId {
        VkUserId::new(id).unwrap()
    }

    fn audience() -> Audience {
        let mut a = Audience::default();
        a.lists.friends.insert(1, vec![10, 11, 12]);
        a.lists.followers.insert(1, vec![13]);
        a.lists.outgoing.insert(1, vec![14]);
        a
    }

    #[test]
    fn everyone_holds_friends_followers_and_followed_users() {
        assert_eq!(
            audience().everyone(&[seed(1), seed(2)]),
            [1, 2, 10, 11, 12, 13, 14]
        );
    }

    #[test]
    fn readable_closed_profiles_are_valid_unless_the_report_narrows_it() {
        let profiles = [
            profile(10, false, true, None),
            profile(11, true, true, None),
            profile(12, true, false, None),
            profile(13, false, true, Some("deleted")),
        ];
        let seeds = [seed(1), seed(2)];
        let valid = valid_users(&profiles, &seeds, &audience(), true);
        // Seed 1's lists were read, seed 2's were not.
        assert_eq!(valid.into_iter().collect::<Vec<_>>(), [1, 10, 11]);
        let narrowed = valid_users(&profiles, &seeds, &audience(), false);
        assert_eq!(narrowed.into_iter().collect::<Vec<_>>(), [1, 10]);
    }

    #[test]
    fn df_main_friends_and_df_users_carry_the_lists() {
        let a = audience();
        let lists = a.table(&[seed(1)]);
        assert_eq!(lists.i64s("id").unwrap(), [10, 11, 12, 13]);
        assert_eq!(lists.i8s("relation").unwrap(), [2, 2, 2, 1]);
        let profiles = [
            profile(1, false, true, None),
            profile(14, false, true, None),
        ];
        let valid: BTreeSet<i64> = [1, 14].into();
        let users = users_table(&profiles, &valid, &[seed(1)], &a);
        let relations: Vec<Option<&str>> = users
            .strs("relations_1")
            .unwrap()
            .iter()
            .map(Option::as_deref)
            .collect();
        assert_eq!(relations, [Some("main_id"), Some("friend")]);
        // The seed's friend count is its list's length.
        assert_eq!(users.opt_i64s("friends_count").unwrap()[0], Some(3));
    }
}
