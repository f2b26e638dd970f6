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
use super::schema::df_chains;
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
    if let Some(chains) = near_chains((a.get(), friends_a), (b.get(), friends_b)) {
        return Ok(chains);
    }
    // Expand the smaller side: its friends are the getMutual targets.
    let side = if friends_a.len() <= friends_b.len() {
        Sides::new((a, friends_a), (b, friends_b), false)
    } else {
        Sides::new((b, friends_b), (a, friends_a), true)
    };
    let targets: Vec<i64> = side
        .small_list
        .iter()
        .copied()
        .filter(|x| *x != side.big.get())
        .collect();
    let results = methods::mutual_friends(session, side.big, &targets).await?;
    tally.record_mutual(targets.len(), &results);
    let mut found: Vec<(i64, Vec<i64>)> = results
        .found
        .into_iter()
        .map(|m| (m.id, m.common_friends))
        .collect();
    if !results.denied.is_empty() {
        found.extend(denied_links(session, &side, &results.denied, tally).await?);
    }
    Ok(side.chains(found))
}

/// One and two handshakes, from the seeds' lists alone: `None` when the seeds are further apart.
fn near_chains(
    (a, friends_a): (i64, &[i64]),
    (b, friends_b): (i64, &[i64]),
) -> Option<Vec<Vec<i64>>> {
    if friends_a.contains(&b) || friends_b.contains(&a) {
        return Some(vec![vec![a, b]]);
    }
    let set_b: HashSet<i64> = friends_b.iter().copied().collect();
    let common: BTreeSet<i64> = friends_a
        .iter()
        .copied()
        .filter(|x| set_b.contains(x))
        .collect();
    (!common.is_empty()).then(|| common.into_iter().map(|x| vec![a, x, b]).collect())
}

/// The two seeds of a three-handshake search: `small`, whose friends x are expanded, and `big`,
/// whose friends y close the chain small–x–y–big.
struct Sides<'a> {
    small: VkUserId,
    big: VkUserId,
    small_list: &'a [i64],
    big_list: &'a [i64],
    /// `small` is the pair's second seed: chains are reversed to run from the first.
    reversed: bool,
}

impl<'a> Sides<'a> {
    fn new(small: (VkUserId, &'a [i64]), big: (VkUserId, &'a [i64]), reversed: bool) -> Self {
        Sides {
            small: small.0,
            big: big.0,
            small_list: small.1,
            big_list: big.1,
            reversed,
        }
    }

    /// The chains small–x–y–big of each x and its friends y in big's list, from the pair's
    /// first seed to its second.
    fn chains(&self, found: Vec<(i64, Vec<i64>)>) -> Vec<Vec<i64>> {
        let (small, big) = (self.small.get(), self.big.get());
        let mut chains = BTreeSet::new();
        for (x, common) in found {
            for y in common.into_iter().filter(|y| *y != small && *y != x) {
                let mut path = vec![small, x, y, big];
                if self.reversed {
                    path.reverse();
                }
                chains.insert(path);
            }
        }
        chains.into_iter().collect()
    }
}

/// No token may call getMutual for the friends x in `denied`: the x–y friendships between the
/// two seeds' lists come from the lists themselves, read from both sides, so a chain is lost
/// only when neither x's nor y's list is readable (both private: a documented skip).
async fn denied_links(
    session: &mut Session,
    side: &Sides<'_>,
    denied: &[i64],
    tally: &mut Tally,
) -> Result<Vec<(i64, Vec<i64>)>, ParserError> {
    let small_set: HashSet<i64> = side.small_list.iter().copied().collect();
    let big_set: HashSet<i64> = side.big_list.iter().copied().collect();
    let ids = |list: &[i64]| -> Vec<VkUserId> {
        list.iter()
            .filter(|&&u| u != side.small.get() && u != side.big.get())
            .filter_map(|&u| VkUserId::new(u).ok())
            .collect()
    };
    let x_side = methods::friend_lists(session, &ids(denied)).await?;
    let y_side = methods::friend_lists(session, &ids(side.big_list)).await?;
    let mut pairs: BTreeSet<(i64, i64)> = BTreeSet::new();
    for (lists, set, x_first) in [(&x_side, &big_set, true), (&y_side, &small_set, false)] {
        tally.record(
            ListKind::FriendLists,
            lists.len(),
            lists.values().filter_map(|r| r.as_ref().err()),
        );
        for (u, list) in lists {
            for &w in list.iter().flatten().filter(|w| set.contains(w)) {
                pairs.insert(if x_first { (u.get(), w) } else { (w, u.get()) });
            }
        }
    }
    let denied: HashSet<i64> = denied.iter().copied().collect();
    Ok(pairs
        .into_iter()
        .filter(|(x, _)| denied.contains(x))
        .map(|(x, y)| (x, vec![y]))
        .collect())
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
    let df_chains = Table::new(df_chains::TABLE)
        .with(df_chains::MAIN_A, ColumnData::I64(from))
        .with(df_chains::MAIN_B, ColumnData::I64(to))
        .with(df_chains::HANDSHAKES, ColumnData::I64(length))
        .with(df_chains::PATH, ColumnData::Str(path));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: i64) -> VkUserId {
        VkUserId::new(raw).unwrap()
    }

    #[test]
    fn one_and_two_handshakes_need_only_the_seeds_lists() {
        assert_eq!(near_chains((1, &[2, 5]), (2, &[])), Some(vec![vec![1, 2]]));
        assert_eq!(near_chains((1, &[]), (2, &[1])), Some(vec![vec![1, 2]]));
        assert_eq!(
            near_chains((1, &[7, 5, 9]), (2, &[9, 5])),
            Some(vec![vec![1, 5, 2], vec![1, 9, 2]])
        );
        assert_eq!(near_chains((1, &[7]), (2, &[8])), None);
    }

    #[test]
    fn three_handshake_chains_run_from_the_first_seed() {
        let small_list = [10, 11];
        let big_list = [20];
        // The pair is (2, 1) with 1 the smaller side: chains come back from 2 to 1.
        let side = Sides::new((id(1), &small_list), (id(2), &big_list), true);
        let found = vec![(10, vec![20, 1, 10]), (11, vec![20])];
        assert_eq!(
            side.chains(found),
            vec![vec![2, 20, 10, 1], vec![2, 20, 11, 1]]
        );
        let side = Sides::new((id(1), &small_list), (id(2), &big_list), false);
        assert_eq!(side.chains(vec![(10, vec![20])]), vec![vec![1, 10, 20, 2]]);
    }
}
