//! HANDSHAKES stage 2: every shortest chain of 1 to 3 handshakes between each pair of seeds.
//!
//! With both seeds' friend lists from stage 1, distances 1 and 2 cost nothing: B in A's list is
//! one handshake, the intersection of the lists gives the two-handshake chains. Distance 3
//! (A–x–y–B) needs, for each friend x of the seed with the shorter list, x's friends inside the
//! other seed's list: `friends.getMutual(source = B, target_uids = friends(A))`, 100 targets a
//! call and 25 calls an execute, so ceil(min(|A|, |B|) / 2500) requests settle it. When no
//! token of the job may call getMutual (it needs the `friends` right), the same chains come
//! from the friend lists of those friends x, intersected with the other seed's list.

use std::collections::{BTreeSet, HashSet};

use super::completeness::{ListKind, Tally};
use super::relations::{self, SeedLists, FRIEND};
use super::{output, ParserError};
use crate::ids::VkUserId;
use crate::stream::JobContext;
use crate::tables::{ColumnData, Table};
use crate::vk::methods;
use crate::vk::orchestrator::Session;

/// All shortest chains (as id paths from `a` to `b`) of at most 3 handshakes; empty when the
/// seeds are further apart.
pub async fn shortest_chains(
    session: &mut Session,
    (a, friends_a): (VkUserId, &[i64]),
    (b, friends_b): (VkUserId, &[i64]),
    tally: &mut Tally,
) -> Result<Vec<Vec<i64>>, ParserError> {
    let (a_id, b_id) = (a.get(), b.get());
    if friends_a.contains(&b_id) || friends_b.contains(&a_id) {
        return Ok(vec![vec![a_id, b_id]]);
    }
    let set_b: HashSet<i64> = friends_b.iter().copied().collect();
    let common: BTreeSet<i64> = friends_a
        .iter()
        .copied()
        .filter(|x| set_b.contains(x))
        .collect();
    if !common.is_empty() {
        return Ok(common.into_iter().map(|x| vec![a_id, x, b_id]).collect());
    }
    // Expand the smaller side: its friends are the getMutual targets.
    let a_is_small = friends_a.len() <= friends_b.len();
    let (small, big, small_list) = if a_is_small {
        (a, b, friends_a)
    } else {
        (b, a, friends_b)
    };
    let targets: Vec<i64> = small_list
        .iter()
        .copied()
        .filter(|x| *x != big.get())
        .collect();
    let results = methods::mutual_friends(session, big, &targets).await?;
    tally.record_mutual(targets.len(), &results);
    let mut found: Vec<(i64, Vec<i64>)> = results
        .found
        .into_iter()
        .map(|m| (m.id, m.common_friends))
        .collect();
    if !results.denied.is_empty() {
        // No token may call getMutual: the x–y friendships between the two seeds' lists come
        // from the lists themselves, read from both sides, so a chain is lost only when
        // neither x's nor y's list is readable (both private: a documented skip).
        let small_set: HashSet<i64> = small_list.iter().copied().collect();
        let big_list: Vec<i64> = if a_is_small {
            friends_b.to_vec()
        } else {
            friends_a.to_vec()
        };
        let big_set: HashSet<i64> = big_list.iter().copied().collect();
        let ids = |list: &[i64]| -> Vec<VkUserId> {
            list.iter()
                .filter(|&&u| u != small.get() && u != big.get())
                .filter_map(|&u| VkUserId::new(u).ok())
                .collect()
        };
        let x_side = methods::friend_lists(session, &ids(&results.denied)).await?;
        let y_side = methods::friend_lists(session, &ids(&big_list)).await?;
        let mut pairs: BTreeSet<(i64, i64)> = BTreeSet::new();
        for (side, set, x_first) in [(&x_side, &big_set, true), (&y_side, &small_set, false)] {
            tally.record(
                ListKind::FriendLists,
                side.len(),
                side.values().filter_map(|r| r.as_ref().err()),
            );
            for (u, list) in side {
                for &w in list.iter().flatten().filter(|w| set.contains(w)) {
                    pairs.insert(if x_first { (u.get(), w) } else { (w, u.get()) });
                }
            }
        }
        let denied: HashSet<i64> = results.denied.iter().copied().collect();
        for (x, y) in pairs.into_iter().filter(|(x, _)| denied.contains(x)) {
            found.push((x, vec![y]));
        }
    }
    let mut chains = BTreeSet::new();
    for (x, common) in found {
        let entry_id = x;
        for y in common {
            if y == small.get() || y == entry_id {
                continue;
            }
            let path = [small.get(), entry_id, y, big.get()];
            let mut path = path.to_vec();
            if !a_is_small {
                path.reverse();
            }
            chains.insert(path);
        }
    }
    Ok(chains.into_iter().collect())
}

/// Chains between every pair of seeds: df_chains, df_connect (their edges), df_users.
pub async fn chains(
    session: &mut Session,
    main_ids: &[VkUserId],
    seeds: &SeedLists,
    tally: &mut Tally,
    ctx: &JobContext,
) -> Result<Vec<Table>, ParserError> {
    let friends = &seeds.friends;
    let (mut from, mut to, mut length, mut path) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut edges: BTreeSet<(i64, i64)> = BTreeSet::new();
    let pairs: Vec<(usize, usize)> = (0..main_ids.len())
        .flat_map(|i| (i + 1..main_ids.len()).map(move |j| (i, j)))
        .collect();
    for (n, (i, j)) in pairs.iter().enumerate() {
        let (a, b) = (main_ids[*i], main_ids[*j]);
        let (Some(fa), Some(fb)) = (friends.get(&a.get()), friends.get(&b.get())) else {
            continue;
        };
        for chain in shortest_chains(session, (a, fa), (b, fb), tally).await? {
            for w in chain.windows(2) {
                edges.insert((w[0].min(w[1]), w[0].max(w[1])));
            }
            from.push(a.get());
            to.push(b.get());
            length.push(chain.len() as i64 - 1);
            path.push(Some(
                chain
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ));
        }
        let done = 10 + (70 * (n + 1) / pairs.len().max(1)) as u8;
        ctx.progress.report(done, "searching chains").await;
    }
    let df_chains = Table::new("df_chains")
        .with("main_a", ColumnData::I64(from))
        .with("main_b", ColumnData::I64(to))
        .with("handshakes", ColumnData::I64(length))
        .with("path", ColumnData::Str(path));
    if df_chains.rows() == 0 {
        return Err(ParserError::Empty(
            "table df_chains is empty: no chain of at most 3 handshakes between the seeds"
                .to_owned(),
        ));
    }
    let mut edges: Vec<relations::Edge> = edges.into_iter().map(|(a, b)| (a, b, FRIEND)).collect();
    // Every seed appears in df_connect, a seed without a chain by its minimal link.
    let linked: std::collections::HashSet<i64> = edges.iter().flat_map(|e| [e.0, e.1]).collect();
    edges.extend(relations::minimal_links(main_ids, seeds, &linked));
    let df_connect = output::edges_table(&edges);
    output::check_edges(&df_connect)?;
    let ids: BTreeSet<i64> = edges.iter().flat_map(|e| [e.0, e.1]).collect();
    let mains: BTreeSet<i64> = main_ids.iter().map(|m| m.get()).collect();
    let wanted: Vec<i64> = ids.into_iter().collect();
    let profiles = methods::profiles(session, &wanted, methods::PROFILE_FIELDS).await?;
    tally.record_answered(ListKind::Profiles, wanted.len(), profiles.len());
    let friend_counts: std::collections::HashMap<i64, usize> =
        friends.iter().map(|(m, list)| (*m, list.len())).collect();
    Ok(vec![
        df_chains,
        df_connect,
        output::users_table(&profiles, &mains, &friend_counts, seeds, main_ids),
    ])
}
