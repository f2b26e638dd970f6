//! Stage 1 (`ReportCreated`): from seeds to the seeds' audience.
//!
//! Every report type resolves its seeds, reads their friend and follower lists
//! (`df_main_friends`) and the profiles of everyone in them, and keeps the valid users: not
//! deactivated, and open (or closed but readable by the token when the report allows
//! `canAccessClosed`). The seeds themselves stay whenever their lists could be read. Then:
//! DEFAULT writes `df_users` (with one `relations_{main_id}` column per seed) and, with
//! `subsGraph`, the seeds' communities; HANDSHAKES writes the lists and the valid users;
//! SUB_GRAPH adds the raw subscriptions of every valid user (`df_subs_raw`).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::completeness::{ListKind, Tally};
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

/// `relation` of df_main_friends and df_connect: a friendship.
pub const FRIEND: i8 = 2;
/// `relation` of df_main_friends and df_connect: a follower (subscription) edge.
pub const FOLLOWER: i8 = 1;

/// Profile fields asked for; `fastGraph` skips the follower counts too.
const FULL_FIELDS: &str = methods::PROFILE_FIELDS;
const FAST_FIELDS: &str = "is_closed,can_access_closed,screen_name";

/// The seeds' friends and followers.
#[derive(Debug, Default)]
pub struct Audience {
    /// Friends per seed whose list could be read.
    pub friends: HashMap<VkUserId, Vec<i64>>,
    /// Followers per seed whose list could be read.
    pub followers: HashMap<VkUserId, Vec<i64>>,
}

impl Audience {
    /// Everyone in any list, seeds included, sorted.
    pub fn everyone(&self, main_ids: &[VkUserId]) -> Vec<i64> {
        let mut all: BTreeSet<i64> = main_ids.iter().map(|m| m.get()).collect();
        for list in self.friends.values().chain(self.followers.values()) {
            all.extend(list);
        }
        all.into_iter().collect()
    }

    /// `df_main_friends`: main_id, id, relation (2 friend, 1 follower).
    pub fn table(&self, main_ids: &[VkUserId]) -> Table {
        let (mut main, mut id, mut relation) = (Vec::new(), Vec::new(), Vec::new());
        for m in main_ids {
            for (lists, kind) in [(&self.friends, FRIEND), (&self.followers, FOLLOWER)] {
                for &u in lists.get(m).map(Vec::as_slice).unwrap_or_default() {
                    main.push(m.get());
                    id.push(u);
                    relation.push(kind);
                }
            }
        }
        Table::new("df_main_friends")
            .with("main_id", ColumnData::I64(main))
            .with("id", ColumnData::I64(id))
            .with("relation", ColumnData::I8(relation))
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
    let valid_table =
        Table::new("valid_users").with("id", ColumnData::I64(valid.iter().copied().collect()));
    output::require_rows(&valid_table)?;

    let mut tables = vec![df_main_friends];
    match event.report_type {
        ReportType::Default => {
            tables.push(users_table(&profiles, &valid, &main_ids, &audience));
            if event.options.subs_graph {
                ctx.progress
                    .report(70, "reading the seeds' communities")
                    .await;
                tables.push(seed_subscriptions(session, &main_ids, &mut tally).await?);
            }
        }
        ReportType::Handshakes => {}
        ReportType::SubGraph => {
            tables.push(users_table(&profiles, &valid, &main_ids, &audience));
            ctx.progress
                .report(60, "reading subscriptions of the audience")
                .await;
            let raw = audience_subscriptions(session, &valid, &mut tally).await?;
            output::require_rows(&raw)?;
            tables.push(raw);
        }
    }
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
    })
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
            Resolution::NotAUser | Resolution::NotFound => unresolved.push(seed.to_string()),
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

/// Friend and follower lists of the seeds. Fails when no seed's lists can be read, with the
/// reason VK gave (deleted → VK_USER_NOT_FOUND, private → VK_ACCESS_DENIED).
pub async fn collect_audience(
    session: &mut Session,
    main_ids: &[VkUserId],
    tally: &mut Tally,
) -> Result<Audience, ParserError> {
    let friends = methods::friend_lists(session, main_ids).await?;
    let followers = methods::follower_lists(session, main_ids).await?;
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
    let mut audience = Audience::default();
    let mut refusals: Vec<ApiError> = Vec::new();
    for m in main_ids {
        match (friends.get(m), followers.get(m)) {
            (Some(Ok(f)), followers_of) => {
                audience.friends.insert(*m, f.clone());
                if let Some(Ok(list)) = followers_of {
                    audience.followers.insert(*m, list.clone());
                }
            }
            (Some(Err(e)), _) | (None, Some(Err(e))) => refusals.push(e.clone()),
            (None, _) => {}
        }
    }
    if audience.friends.is_empty() {
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

/// Valid users: not deactivated, open or (allowed and) readable; seeds with readable lists stay.
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
        if audience.friends.contains_key(m) {
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
        .friends
        .iter()
        .map(|(m, list)| (m.get(), list.len()))
        .collect();
    let mut table = output::profiles_table(rows.iter().copied(), &mains, &friend_counts);
    for m in main_ids {
        let friends: HashSet<i64> = audience
            .friends
            .get(m)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let followers: HashSet<i64> = audience
            .followers
            .get(m)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let relation = |id: i64| -> Option<String> {
            let r = match (
                id == m.get(),
                friends.contains(&id),
                followers.contains(&id),
            ) {
                (true, _, _) => "main_id",
                (false, true, true) => "mutual",
                (false, true, false) => "friend",
                (false, false, true) => "follower",
                (false, false, false) => return None,
            };
            Some(r.to_owned())
        };
        table = table.with(
            &format!("relations_{m}"),
            ColumnData::Str(rows.iter().map(|p| relation(p.id)).collect()),
        );
    }
    table
}

/// `subscriptions_df`: the seeds' communities with their details.
async fn seed_subscriptions(
    session: &mut Session,
    main_ids: &[VkUserId],
    tally: &mut Tally,
) -> Result<Table, ParserError> {
    let subscriptions = methods::subscriptions(session, main_ids).await?;
    tally.record(
        ListKind::Subscriptions,
        main_ids.len(),
        subscriptions.values().filter_map(|r| r.as_ref().err()),
    );
    let mut pairs: Vec<(i64, i64)> = Vec::new();
    for m in main_ids {
        if let Some(Ok(s)) = subscriptions.get(m) {
            pairs.extend(s.groups.iter().map(|&g| (m.get(), g)));
        }
    }
    let ids: Vec<i64> = pairs
        .iter()
        .map(|(_, g)| *g)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let groups = methods::groups(session, &ids, "members_count").await?;
    let by_id: HashMap<i64, &methods::Group> = groups.iter().map(|g| (g.id, g)).collect();
    let known: Vec<&(i64, i64)> = pairs
        .iter()
        .filter(|(_, g)| by_id.contains_key(g))
        .collect();
    let group = |g: &i64| by_id[g];
    Ok(Table::new("subscriptions_df")
        .with(
            "main_id",
            ColumnData::I64(known.iter().map(|(m, _)| *m).collect()),
        )
        .with(
            "id_group",
            ColumnData::I64(known.iter().map(|(_, g)| *g).collect()),
        )
        .with(
            "members_count",
            ColumnData::OptI64(
                known
                    .iter()
                    .map(|(_, g)| group(g).members_count.map(|n| n as i64))
                    .collect(),
            ),
        )
        .with(
            "name",
            ColumnData::Str(
                known
                    .iter()
                    .map(|(_, g)| Some(group(g).name.clone()))
                    .collect(),
            ),
        )
        .with(
            "screen_name",
            ColumnData::Str(
                known
                    .iter()
                    .map(|(_, g)| Some(group(g).screen_name.clone()))
                    .collect(),
            ),
        )
        .with(
            "image_url",
            ColumnData::Str(
                known
                    .iter()
                    .map(|(_, g)| group(g).photo_100.clone())
                    .collect(),
            ),
        ))
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
    Ok(Table::new("df_subs_raw")
        .with("user_id", ColumnData::I64(user_id))
        .with("group_id", ColumnData::I64(group_id)))
}
