//! Stage 2 (`Stage2Created`): the connections among the audience stage 1 found.
//!
//! DEFAULT: every friendship and follower edge among the valid users (`df_connect`), their
//! profiles (`df_users`) and each seed's unfiltered lists. Friendships come from
//! `friends.getMutual(source = seed, target_uids = 100 valid users)`: for each target, its friends
//! inside that seed's friend list, so one execute tests 2,500 pairs. An edge u–w is found from
//! the seed whose friend list holds w (or u); edges whose ends are in no seed's friend list
//! (followers only) come from those users' own `friends.get`. The `friends` strategy reads every
//! valid user's list instead: the same edges, more requests (a test checks both). Follower edges
//! come from `users.getFollowers` of every valid user.
//!
//! SUB_GRAPH: subscriptions counted per community and seed audience (`df_subs`), and the
//! communities' details (`df_users`). HANDSHAKES is in [`super::handshakes`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::completeness::{ListKind, Tally};
use super::stage1::{FOLLOWER, FRIEND};
use super::{handshakes, output, EdgeStrategy, ParserError};
use crate::events::Stage2Created;
use crate::ids::{ReportType, Stage, VkUserId};
use crate::storage::{
    read_manifest, KeyPrefix, Manifest, StagePrefix, Storage, StorageError, MANIFEST_FILE,
};
use crate::stream::{JobContext, JobOutput};
use crate::tables::{from_parquet, ColumnData, Table};
use crate::vk::methods;
use crate::vk::orchestrator::Session;

/// How stage 2 runs: the DEFAULT edge strategy and the failed share it accepts.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// DEFAULT's way of finding friendships.
    pub strategy: EdgeStrategy,
    /// Largest share of planned VK calls that may fail before the stage is `INCOMPLETE_DATA`.
    pub max_failed_share: f64,
}

/// Runs stage 2 of `event`.
pub async fn run(
    event: &Stage2Created,
    session: &mut Session,
    storage: &dyn Storage,
    policy: Policy,
    ctx: &JobContext,
) -> Result<JobOutput, ParserError> {
    let mut tally = Tally::default();
    let (stage1, manifest) = load_stage1(event, storage).await?;
    let main_ids = manifest.main_ids.clone();
    let lists = read_table(storage, &stage1, "df_main_friends").await?;
    let valid = match event.report_type {
        ReportType::Default => ids_of(&read_table(storage, &stage1, "valid_users").await?, "id")?,
        _ => Vec::new(),
    };
    let estimate = estimate_calls(event.report_type, policy.strategy, &lists, &valid)?;
    if !estimate.is_empty() {
        let listed: Vec<String> = estimate.iter().map(|(m, n)| format!("{m} {n}")).collect();
        // The stage's first progress message, so the backend sees the plan at once.
        let message = format!("estimated VK calls: {}", listed.join(", "));
        ctx.progress.report(5, &message).await;
        check_quota(session, &estimate).await?;
    }
    let tables = match event.report_type {
        ReportType::Default => {
            let graph = Graph {
                main_ids: &main_ids,
                lists: &lists,
                valid: &valid,
            };
            default_graph(session, graph, policy.strategy, &mut tally, ctx).await?
        }
        ReportType::SubGraph => {
            let raw = read_table(storage, &stage1, "df_subs_raw").await?;
            sub_graph(session, &main_ids, &lists, &raw, ctx).await?
        }
        ReportType::Handshakes => {
            handshakes::chains(session, &main_ids, &lists, &mut tally, ctx).await?
        }
    };
    tally.check(policy.max_failed_share)?;
    ctx.progress.report(95, "writing parquet").await;
    let prefix = stage1.with_stage(Stage::Two);
    let summary = tally.summary();
    let artifacts = output::write(
        storage,
        &prefix,
        &event.report_id,
        &main_ids,
        tables,
        tally.completeness(),
    )
    .await?;
    Ok(JobOutput {
        artifacts,
        main_ids,
        message: if summary.is_empty() {
            "stage 2 done".to_owned()
        } else {
            format!("stage 2 done: {summary}")
        },
    })
}

/// The stage 1 prefix (given, or found by listing) and its manifest.
async fn load_stage1(
    event: &Stage2Created,
    storage: &dyn Storage,
) -> Result<(StagePrefix, Manifest), ParserError> {
    let prefix = match &event.stage1_prefix {
        Some(prefix) => prefix.clone(),
        None => {
            let suffix = format!("/{}_stage1/{MANIFEST_FILE}", event.job_id);
            let keys = storage
                .list(&KeyPrefix::parse(event.report_type.as_str())?)
                .await?;
            let found = keys
                .iter()
                .find(|k| k.as_str().ends_with(&suffix))
                .ok_or_else(|| {
                    ParserError::Stage1NotFound(format!(
                        "no stage 1 manifest for job {} under {}/",
                        event.job_id, event.report_type
                    ))
                })?;
            let dir = &found.as_str()[..found.as_str().len() - MANIFEST_FILE.len()];
            StagePrefix::parse(dir)?
        }
    };
    match read_manifest(storage, &prefix).await {
        Ok(manifest) => Ok((prefix, manifest)),
        Err(StorageError::NotFound(_)) => Err(ParserError::Stage1NotFound(format!(
            "no stage 1 manifest under {prefix}"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A stage file as a table, decoded off the async threads.
pub async fn read_table(
    storage: &dyn Storage,
    prefix: &StagePrefix,
    name: &str,
) -> Result<Table, ParserError> {
    let bytes = storage
        .get(&prefix.key(&format!("{name}.parquet"))?)
        .await?;
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || from_parquet(&name, &bytes))
        .await
        .map_err(|e| ParserError::Internal(format!("decoding task failed: {e}")))?
        .map_err(ParserError::from)
}

fn ids_of(table: &Table, column: &str) -> Result<Vec<i64>, ParserError> {
    match table.column(column) {
        Some(ColumnData::I64(ids)) => Ok(ids.clone()),
        _ => Err(ParserError::Empty(format!(
            "table {} lacks column {column}",
            table.name
        ))),
    }
}

/// Lists keyed by seed id.
pub type ListsBySeed = HashMap<i64, Vec<i64>>;

/// df_main_friends as (seed → friends, seed → followers).
pub fn seed_lists(lists: &Table) -> Result<(ListsBySeed, ListsBySeed), ParserError> {
    let main = ids_of(lists, "main_id")?;
    let id = ids_of(lists, "id")?;
    let Some(ColumnData::I8(relation)) = lists.column("relation") else {
        return Err(ParserError::Empty(
            "df_main_friends lacks column relation".to_owned(),
        ));
    };
    let (mut friends, mut followers): (ListsBySeed, ListsBySeed) = Default::default();
    for ((m, u), r) in main.iter().zip(&id).zip(relation) {
        let into = if *r == FRIEND {
            &mut friends
        } else {
            &mut followers
        };
        into.entry(*m).or_default().push(*u);
    }
    Ok((friends, followers))
}

fn user_ids(ids: impl IntoIterator<Item = i64>) -> Vec<VkUserId> {
    ids.into_iter()
        .filter_map(|id| VkUserId::new(id).ok())
        .collect()
}

/// The VK calls stage 2 will make, per method, from what stage 1 found (lists of up to 5,000
/// friends or 1,000 followers take one call; the estimate ignores longer ones).
pub fn estimate_calls(
    report_type: ReportType,
    strategy: EdgeStrategy,
    lists: &Table,
    valid: &[i64],
) -> Result<BTreeMap<&'static str, u64>, ParserError> {
    let (friends, _) = seed_lists(lists)?;
    let mut out = BTreeMap::new();
    let per = |n: usize, size: usize| n.div_ceil(size) as u64;
    match report_type {
        ReportType::Default => {
            let seeds: HashSet<i64> = friends.keys().copied().collect();
            let others = valid.iter().filter(|u| !seeds.contains(u)).count();
            out.insert("users.getFollowers", others as u64);
            out.insert("users.get", per(valid.len(), methods::USERS_PER_CALL));
            match strategy {
                EdgeStrategy::Friends => {
                    out.insert("friends.get", others as u64);
                }
                EdgeStrategy::Mutual => {
                    let in_a_list: HashSet<i64> = friends.values().flatten().copied().collect();
                    let alone = valid
                        .iter()
                        .filter(|u| !seeds.contains(u) && !in_a_list.contains(u))
                        .count();
                    out.insert(methods::GET_MUTUAL, friends.len() as u64 * per(others, 100));
                    out.insert("friends.get", alone as u64);
                }
            }
        }
        ReportType::Handshakes => {
            let lens: Vec<usize> = friends.values().map(Vec::len).collect();
            let mut mutual = 0;
            for (i, a) in lens.iter().enumerate() {
                for b in &lens[i + 1..] {
                    mutual += per(*a.min(b), methods::MUTUAL_TARGETS);
                }
            }
            out.insert(methods::GET_MUTUAL, mutual);
        }
        ReportType::SubGraph => {}
    }
    out.retain(|_, n| *n > 0);
    Ok(out)
}

/// Fails at once (`VK_RATE_LIMIT`, the shortfall named) when a method's estimate exceeds what
/// the job's tokens have left of their daily quotas, rather than after hours of requests.
async fn check_quota(
    session: &mut Session,
    estimate: &BTreeMap<&'static str, u64>,
) -> Result<(), ParserError> {
    for (method, needed) in estimate {
        let Some(left) = session.quota_capacity(method).await else {
            continue;
        };
        if *needed > left {
            return Err(ParserError::QuotaShortfall(format!(
                "stage 2 needs about {needed} {method} calls, and the author's token and the \
                 global pool have about {left} left today ({} per token and day): {} short",
                session.settings().daily_quota,
                needed - left
            )));
        }
    }
    Ok(())
}

/// What DEFAULT stage 2 starts from: the seeds, their stage 1 lists, the valid users.
#[derive(Clone, Copy)]
struct Graph<'a> {
    main_ids: &'a [VkUserId],
    lists: &'a Table,
    valid: &'a [i64],
}

/// The errors among per-user list results, for the tally.
fn list_errors(lists: &methods::Lists) -> impl Iterator<Item = &crate::vk::ApiError> {
    lists.values().filter_map(|r| r.as_ref().err())
}

/// DEFAULT: df_connect, df_users and the unfiltered lists.
async fn default_graph(
    session: &mut Session,
    graph: Graph<'_>,
    strategy: EdgeStrategy,
    tally: &mut Tally,
    ctx: &JobContext,
) -> Result<Vec<Table>, ParserError> {
    let Graph {
        main_ids,
        lists,
        valid,
    } = graph;
    let (seed_friends, seed_followers) = seed_lists(lists)?;
    let valid: BTreeSet<i64> = valid.iter().copied().collect();
    let mains: BTreeSet<i64> = main_ids.iter().map(|m| m.get()).collect();
    let mut friendships: BTreeSet<(i64, i64)> = BTreeSet::new();
    let mut follows: BTreeSet<(i64, i64)> = BTreeSet::new();
    let add_friendship = |a: i64, b: i64, set: &mut BTreeSet<(i64, i64)>| {
        if a != b && valid.contains(&a) && valid.contains(&b) {
            set.insert((a.min(b), a.max(b)));
        }
    };
    // The seeds' own edges are in their stage 1 lists.
    for (m, friends) in &seed_friends {
        for &f in friends {
            add_friendship(*m, f, &mut friendships);
        }
    }
    for (m, followers) in &seed_followers {
        for &f in followers {
            if valid.contains(&f) && valid.contains(m) && f != *m {
                follows.insert((f, *m));
            }
        }
    }
    let others: Vec<i64> = valid
        .iter()
        .copied()
        .filter(|u| !mains.contains(u))
        .collect();
    ctx.progress.report(15, "finding friendships").await;
    let by_friends_get: Vec<i64> = match strategy {
        EdgeStrategy::Friends => others.clone(),
        EdgeStrategy::Mutual => {
            // Targets getMutual could not test on any token of the job (the method needs the
            // `friends` right): their own friend lists give the same edges.
            let mut fallback: BTreeSet<i64> = BTreeSet::new();
            for m in main_ids {
                if !seed_friends.contains_key(&m.get()) {
                    continue;
                }
                let targets: Vec<i64> = others.clone();
                let results = methods::mutual_friends(session, *m, &targets).await?;
                tally.record_mutual(targets.len(), &results);
                for entry in results.found {
                    for x in entry.common_friends {
                        add_friendship(entry.id, x, &mut friendships);
                    }
                }
                fallback.extend(results.denied);
            }
            // Users in no seed's friend list: their edges to each other need their own lists.
            let in_a_list: HashSet<i64> = seed_friends.values().flatten().copied().collect();
            others
                .iter()
                .copied()
                .filter(|u| !in_a_list.contains(u) || fallback.contains(u))
                .collect()
        }
    };
    let lists = methods::friend_lists(session, &user_ids(by_friends_get.iter().copied())).await?;
    tally.record(ListKind::FriendLists, lists.len(), list_errors(&lists));
    for (u, list) in &lists {
        if let Ok(friends) = list {
            for &w in friends {
                add_friendship(u.get(), w, &mut friendships);
            }
        }
    }
    ctx.progress.report(55, "finding follower edges").await;
    let followers = methods::follower_lists(session, &user_ids(others.iter().copied())).await?;
    tally.record(
        ListKind::FollowerLists,
        followers.len(),
        list_errors(&followers),
    );
    for (u, list) in &followers {
        if let Ok(list) = list {
            for &f in list {
                if valid.contains(&f) && f != u.get() {
                    follows.insert((f, u.get()));
                }
            }
        }
    }
    // Every seed appears in df_connect: a seed without edges among the valid users keeps its
    // first friend, as the seed service did.
    let mut linked: HashSet<i64> = HashSet::new();
    for (a, b) in friendships.iter().chain(follows.iter()) {
        linked.insert(*a);
        linked.insert(*b);
    }
    for m in &mains {
        if !linked.contains(m) {
            if let Some(&f) = seed_friends
                .get(m)
                .and_then(|l| l.iter().find(|f| **f != *m))
            {
                friendships.insert((f.min(*m), f.max(*m)));
            }
        }
    }
    let mut source = Vec::with_capacity(friendships.len() + follows.len());
    let mut target = Vec::with_capacity(source.capacity());
    let mut relation = Vec::with_capacity(source.capacity());
    for (a, b) in &friendships {
        source.push(*a);
        target.push(*b);
        relation.push(FRIEND);
    }
    for (f, u) in &follows {
        source.push(*f);
        target.push(*u);
        relation.push(FOLLOWER);
    }
    let df_connect = Table::new("df_connect")
        .with("source", ColumnData::I64(source.clone()))
        .with("target", ColumnData::I64(target.clone()))
        .with("relation", ColumnData::I8(relation));
    output::check_edges(&df_connect)?;
    output::require_rows(&df_connect)?;

    ctx.progress.report(80, "reading profiles").await;
    let in_graph: BTreeSet<i64> = source
        .into_iter()
        .chain(target)
        .chain(mains.iter().copied())
        .collect();
    let wanted: Vec<i64> = in_graph.into_iter().collect();
    let profiles = methods::profiles(session, &wanted, methods::PROFILE_FIELDS).await?;
    tally.record_answered(ListKind::Profiles, wanted.len(), profiles.len());
    // Friend counts of the lists this report read: the seeds' and the fallback's.
    let mut friend_counts: HashMap<i64, usize> = seed_friends
        .iter()
        .map(|(m, list)| (*m, list.len()))
        .collect();
    for (u, list) in &lists {
        if let Ok(list) = list {
            friend_counts.insert(u.get(), list.len());
        }
    }
    let df_users = output::profiles_table(&profiles, &mains, &friend_counts);
    let mut tables = vec![df_connect, df_users];
    for m in main_ids {
        let (mut id, mut rel) = (Vec::new(), Vec::new());
        for (list, kind) in [(&seed_friends, FRIEND), (&seed_followers, FOLLOWER)] {
            for &u in list.get(&m.get()).map(Vec::as_slice).unwrap_or_default() {
                id.push(u);
                rel.push(kind);
            }
        }
        tables.push(
            Table::new(format!("unfiltered_{m}"))
                .with("id", ColumnData::I64(id))
                .with("relation", ColumnData::I8(rel)),
        );
    }
    Ok(tables)
}

/// SUB_GRAPH: subscribers per community per seed audience, and the communities.
async fn sub_graph(
    session: &mut Session,
    main_ids: &[VkUserId],
    lists: &Table,
    raw: &Table,
    ctx: &JobContext,
) -> Result<Vec<Table>, ParserError> {
    let (friends, followers) = seed_lists(lists)?;
    let users = ids_of(raw, "user_id")?;
    let groups = ids_of(raw, "group_id")?;
    let mut subscribed: HashMap<i64, Vec<i64>> = HashMap::new();
    for (u, g) in users.iter().zip(&groups) {
        subscribed.entry(*u).or_default().push(*g);
    }
    let mut counts: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for m in main_ids {
        let audience: BTreeSet<i64> = friends
            .get(&m.get())
            .into_iter()
            .chain(followers.get(&m.get()))
            .flatten()
            .copied()
            .collect();
        for u in audience {
            for g in subscribed.get(&u).map(Vec::as_slice).unwrap_or_default() {
                *counts.entry((*g, m.get())).or_default() += 1;
            }
        }
    }
    let df_subs = Table::new("df_subs")
        .with(
            "group_id",
            ColumnData::I64(counts.keys().map(|(g, _)| *g).collect()),
        )
        .with(
            "main_id",
            ColumnData::I64(counts.keys().map(|(_, m)| *m).collect()),
        )
        .with(
            "subscribers",
            ColumnData::I64(counts.values().copied().collect()),
        );
    output::require_rows(&df_subs)?;
    ctx.progress.report(50, "reading communities").await;
    let ids: Vec<i64> = counts
        .keys()
        .map(|(g, _)| *g)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let communities = methods::groups(session, &ids, "members_count").await?;
    let df_users = Table::new("df_users")
        .with(
            "id",
            ColumnData::I64(communities.iter().map(|g| g.id).collect()),
        )
        .with(
            "name",
            ColumnData::Str(communities.iter().map(|g| Some(g.name.clone())).collect()),
        )
        .with(
            "screen_name",
            ColumnData::Str(
                communities
                    .iter()
                    .map(|g| Some(g.screen_name.clone()))
                    .collect(),
            ),
        )
        .with(
            "members_count",
            ColumnData::OptI64(
                communities
                    .iter()
                    .map(|g| g.members_count.map(|n| n as i64))
                    .collect(),
            ),
        )
        .with(
            "image_url",
            ColumnData::Str(communities.iter().map(|g| g.photo_100.clone()).collect()),
        );
    Ok(vec![df_subs, df_users])
}
