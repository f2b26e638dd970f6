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

use super::communities;
use super::completeness::{ListKind, Tally};
use super::graph::{self, EdgeSet};
use super::relations::{SeedLists, FRIEND};
use super::schema::{
    df_main_friends, df_main_outgoing, df_subs, df_subs_raw, df_users, subscriptions_df,
    valid_users,
};
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
    let lists = read_table(storage, &stage1, df_main_friends::TABLE).await?;
    let outgoing = read_optional(storage, &stage1, &manifest, df_main_outgoing::TABLE).await?;
    let seeds = read_seed_lists(&lists, outgoing.as_ref())?;
    let valid = match event.report_type {
        ReportType::Default => ids_of(
            &read_table(storage, &stage1, valid_users::TABLE).await?,
            valid_users::ID,
        )?,
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
                seeds: &seeds,
                valid: &valid,
            };
            let mut tables =
                default_graph(session, graph, policy.strategy, &mut tally, ctx).await?;
            // The seeds' communities, as stage 1 read them: GraphReady points at stage 2 only.
            if let Some(subs) =
                read_optional(storage, &stage1, &manifest, subscriptions_df::TABLE).await?
            {
                tables.push(subs);
            }
            tables
        }
        ReportType::SubGraph => {
            let raw = read_table(storage, &stage1, df_subs_raw::TABLE).await?;
            let mut tables = sub_graph(session, &main_ids, &seeds, &raw, ctx).await?;
            // The audience's profiles with their relations, as stage 1 wrote them.
            tables.push(read_table(storage, &stage1, df_users::TABLE).await?);
            tables
        }
        ReportType::Handshakes => {
            handshakes::chains(session, &main_ids, &seeds, &mut tally, ctx).await?
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
        metrics: None,
        failed: None,
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
        .map_err(|source| ParserError::Task {
            what: "decoding",
            source,
        })?
        .map_err(ParserError::from)
}

/// A stage file the manifest lists, as a table; `None` when the stage did not write it (a stage
/// 1 written before the file existed).
async fn read_optional(
    storage: &dyn Storage,
    prefix: &StagePrefix,
    manifest: &Manifest,
    name: &str,
) -> Result<Option<Table>, ParserError> {
    let file = format!("{name}.parquet");
    if !manifest.files.iter().any(|f| f.name == file) {
        return Ok(None);
    }
    read_table(storage, prefix, name).await.map(Some)
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
    let main = ids_of(lists, df_main_friends::MAIN_ID)?;
    let id = ids_of(lists, df_main_friends::ID)?;
    let Some(ColumnData::I8(relation)) = lists.column(df_main_friends::RELATION) else {
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

/// The seeds' lists stage 1 wrote: df_main_friends and, when present, df_main_outgoing.
pub fn read_seed_lists(lists: &Table, outgoing: Option<&Table>) -> Result<SeedLists, ParserError> {
    let (friends, followers) = seed_lists(lists)?;
    let mut seeds = SeedLists {
        friends,
        followers,
        outgoing: HashMap::new(),
    };
    if let Some(table) = outgoing {
        for (m, u) in ids_of(table, df_main_outgoing::MAIN_ID)?
            .into_iter()
            .zip(ids_of(table, df_main_outgoing::ID)?)
        {
            seeds.outgoing.entry(m).or_default().push(u);
        }
    }
    Ok(seeds)
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
    seeds: &'a SeedLists,
    valid: &'a [i64],
}

/// The errors among per-user list results, for the tally.
fn list_errors(lists: &methods::Lists) -> impl Iterator<Item = &crate::vk::ApiError> {
    lists.values().filter_map(|r| r.as_ref().err())
}

/// DEFAULT: df_connect, df_users and the unfiltered lists. The edge rules are [`graph`]'s.
async fn default_graph(
    session: &mut Session,
    graph: Graph<'_>,
    strategy: EdgeStrategy,
    tally: &mut Tally,
    ctx: &JobContext,
) -> Result<Vec<Table>, ParserError> {
    let Graph {
        main_ids,
        seeds,
        valid,
    } = graph;
    let mut edges = EdgeSet::from_seeds(valid, seeds);
    let others = edges.others(main_ids);
    ctx.progress.report(15, "finding friendships").await;
    let by_friends_get = match strategy {
        EdgeStrategy::Friends => others.clone(),
        EdgeStrategy::Mutual => {
            let denied = mutual_edges(session, main_ids, seeds, &others, &mut edges, tally).await?;
            graph::friend_list_targets(&others, &seeds.friends, &denied)
        }
    };
    let lists = methods::friend_lists(session, &user_ids(by_friends_get)).await?;
    tally.record(ListKind::FriendLists, lists.len(), list_errors(&lists));
    let read_lists = || {
        lists
            .iter()
            .filter_map(|(u, l)| Some((u.get(), l.as_ref().ok()?.as_slice())))
    };
    for (u, friends) in read_lists() {
        edges.add_friend_list(u, friends);
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
            edges.add_follower_list(u.get(), list);
        }
    }
    let edges = edges.into_edges(main_ids, seeds);
    let df_connect = output::edges_table(&edges);
    output::check_edges(&df_connect)?;
    output::require_rows(&df_connect)?;

    ctx.progress.report(80, "reading profiles").await;
    let wanted = graph::users_in_graph(&edges, main_ids);
    let profiles = methods::profiles(session, &wanted, methods::PROFILE_FIELDS).await?;
    tally.record_answered(ListKind::Profiles, wanted.len(), profiles.len());
    let mains: BTreeSet<i64> = main_ids.iter().map(|m| m.get()).collect();
    let friend_counts = graph::friend_counts(seeds, read_lists());
    let df_users = output::users_table(&profiles, &mains, &friend_counts, seeds, main_ids);
    let mut tables = vec![df_connect, df_users];
    tables.extend(graph::unfiltered_tables(main_ids, seeds));
    Ok(tables)
}

/// The `mutual` strategy's friendships: friends.getMutual from each seed with a friend list to
/// every other valid user. Returns the targets getMutual could not test on any token of the job
/// (the method needs the `friends` right): their own friend lists give the same edges.
async fn mutual_edges(
    session: &mut Session,
    main_ids: &[VkUserId],
    seeds: &SeedLists,
    others: &[i64],
    edges: &mut EdgeSet,
    tally: &mut Tally,
) -> Result<BTreeSet<i64>, ParserError> {
    let mut denied: BTreeSet<i64> = BTreeSet::new();
    for m in main_ids {
        if !seeds.friends.contains_key(&m.get()) {
            continue;
        }
        let results = methods::mutual_friends(session, *m, others).await?;
        tally.record_mutual(others.len(), &results);
        for entry in results.found {
            edges.add_friend_list(entry.id, &entry.common_friends);
        }
        denied.extend(results.denied);
    }
    Ok(denied)
}

/// SUB_GRAPH: `df_subs`, one row per community the seeds' valid audience subscribes to, with
/// the seed's columns, how many of that audience subscribe (`subscribers`) and how many of each
/// seed's (`subscribers_{main_id}`).
async fn sub_graph(
    session: &mut Session,
    main_ids: &[VkUserId],
    seeds: &SeedLists,
    raw: &Table,
    ctx: &JobContext,
) -> Result<Vec<Table>, ParserError> {
    let users = ids_of(raw, df_subs_raw::USER_ID)?;
    let groups = ids_of(raw, df_subs_raw::GROUP_ID)?;
    let mut subscribed: HashMap<i64, Vec<i64>> = HashMap::new();
    for (u, g) in users.iter().zip(&groups) {
        subscribed.entry(*u).or_default().push(*g);
    }
    // Per community: its subscribers in the whole audience, and per seed.
    let mut everyone: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    let mut per_seed: HashMap<(i64, i64), i64> = HashMap::new();
    for m in main_ids {
        // Everyone with a relation to the seed: friends, followed users, followers.
        let audience: BTreeSet<i64> = seeds
            .friends
            .get(&m.get())
            .into_iter()
            .chain(seeds.outgoing.get(&m.get()))
            .chain(seeds.followers.get(&m.get()))
            .flatten()
            .copied()
            .collect();
        for u in audience {
            for g in subscribed.get(&u).map(Vec::as_slice).unwrap_or_default() {
                *per_seed.entry((*g, m.get())).or_default() += 1;
                everyone.entry(*g).or_default().insert(u);
            }
        }
    }
    let ids: Vec<i64> = everyone.keys().copied().collect();
    if ids.is_empty() {
        return Err(ParserError::Empty("table df_subs is empty".to_owned()));
    }
    ctx.progress.report(50, "reading communities").await;
    let details = communities::details(session, &ids).await?;
    let mut df_subs = communities::add_columns(Table::new(df_subs::TABLE), &ids, &details).with(
        df_subs::SUBSCRIBERS,
        ColumnData::I64(everyone.values().map(|u| u.len() as i64).collect()),
    );
    for m in main_ids {
        let counts = ids
            .iter()
            .map(|g| per_seed.get(&(*g, m.get())).copied().unwrap_or(0))
            .collect();
        df_subs = df_subs.with(&df_subs::subscribers_of(m), ColumnData::I64(counts));
    }
    Ok(vec![df_subs])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> Table {
        // Seed 1: friends 10, 11; follower 12. Seed 2: friend 10.
        Table::new("df_main_friends")
            .with("main_id", ColumnData::I64(vec![1, 1, 1, 2]))
            .with("id", ColumnData::I64(vec![10, 11, 12, 10]))
            .with("relation", ColumnData::I8(vec![2, 2, 1, 2]))
    }

    #[test]
    fn seed_lists_read_back_with_the_outgoing_ones() {
        let outgoing = Table::new("df_main_outgoing")
            .with("main_id", ColumnData::I64(vec![1]))
            .with("id", ColumnData::I64(vec![13]));
        let seeds = read_seed_lists(&lists(), Some(&outgoing)).unwrap();
        assert_eq!(seeds.friends[&1], [10, 11]);
        assert_eq!(seeds.followers[&1], [12]);
        assert_eq!(seeds.outgoing[&1], [13]);
        assert!(read_seed_lists(&lists(), None).unwrap().outgoing.is_empty());
    }

    #[test]
    fn the_estimate_counts_calls_per_method() {
        // Valid: the seeds, their friends and the follower 12 (in no seed's friend list).
        let valid = [1, 2, 10, 11, 12];
        let mutual =
            estimate_calls(ReportType::Default, EdgeStrategy::Mutual, &lists(), &valid).unwrap();
        assert_eq!(mutual["users.getFollowers"], 3);
        assert_eq!(
            mutual[methods::GET_MUTUAL],
            2,
            "one call of 100 targets per seed"
        );
        assert_eq!(mutual["friends.get"], 1, "the follower in no friend list");
        let friends =
            estimate_calls(ReportType::Default, EdgeStrategy::Friends, &lists(), &valid).unwrap();
        assert_eq!(friends["friends.get"], 3);
        assert!(!friends.contains_key(methods::GET_MUTUAL));
        let chains =
            estimate_calls(ReportType::Handshakes, EdgeStrategy::Mutual, &lists(), &[]).unwrap();
        assert_eq!(chains[methods::GET_MUTUAL], 1);
    }
}
