//! HANDSHAKES stage 2: every shortest chain of 1 to 3 handshakes between each pair of seeds.
//!
//! With both seeds' friend lists from stage 1, distances 1 and 2 cost nothing: B in A's list is
//! one handshake, the intersection of the lists gives the two-handshake chains. Distance 3
//! (A–x–y–B) needs, for each friend x of the seed with the shorter list, x's friends inside the
//! other seed's list: `friends.getMutual(source = B, target_uids = friends(A))`, 100 targets a
//! call and 25 calls an execute, so ceil(min(|A|, |B|) / 2500) requests settle it.

use std::collections::{BTreeSet, HashSet};

use super::stage2::seed_lists;
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
    a: VkUserId,
    friends_a: &[i64],
    b: VkUserId,
    friends_b: &[i64],
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
    let mut chains = BTreeSet::new();
    for entry in methods::mutual_friends(session, big, &targets)
        .await?
        .into_iter()
        .flatten()
    {
        for y in entry.common_friends {
            if y == small.get() || y == entry.id {
                continue;
            }
            let path = [small.get(), entry.id, y, big.get()];
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
    lists: &Table,
    ctx: &JobContext,
) -> Result<Vec<Table>, ParserError> {
    let (friends, _) = seed_lists(lists)?;
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
        for chain in shortest_chains(session, a, fa, b, fb).await? {
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
    let df_connect = Table::new("df_connect")
        .with(
            "source",
            ColumnData::I64(edges.iter().map(|e| e.0).collect()),
        )
        .with(
            "target",
            ColumnData::I64(edges.iter().map(|e| e.1).collect()),
        )
        .with(
            "relation",
            ColumnData::I8(vec![super::stage1::FRIEND; edges.len()]),
        );
    output::check_edges(&df_connect)?;
    let ids: BTreeSet<i64> = edges.iter().flat_map(|(s, t)| [*s, *t]).collect();
    let mains: BTreeSet<i64> = main_ids.iter().map(|m| m.get()).collect();
    let profiles = methods::profiles(
        session,
        &ids.into_iter().collect::<Vec<_>>(),
        "is_closed,can_access_closed,counters,screen_name",
    )
    .await?;
    Ok(vec![
        df_chains,
        df_connect,
        output::profiles_table(&profiles, &mains),
    ])
}
