//! DEFAULT stage 2's pure half: the edges of `df_connect` and the tables built from lists
//! already read. [`super::stage2`] does the VK calls and hands their answers here, so every rule
//! about which edge counts is tested without a network.
//!
//! The rules: only valid users (stage 1's filter) take part; a friendship is undirected and kept
//! once (smaller id first); a follower edge is directed follower → followed; a seed following a
//! user is an outgoing friendship (relation 2, seed → user) and never also a follower edge;
//! self-edges are dropped; every seed ends up in `df_connect` ([`relations::minimal_links`]).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::relations::{self, Edge, SeedLists, FOLLOWER, FRIEND};
use super::schema::unfiltered;
use crate::ids::VkUserId;
use crate::tables::{ColumnData, Table};

/// The graph's edges as they are found.
#[derive(Debug)]
pub struct EdgeSet {
    valid: BTreeSet<i64>,
    outgoing: BTreeSet<(i64, i64)>,
    friendships: BTreeSet<(i64, i64)>,
    follows: BTreeSet<(i64, i64)>,
}

impl EdgeSet {
    /// The edges the seeds' own stage 1 lists already give.
    pub fn from_seeds(valid: &[i64], seeds: &SeedLists) -> EdgeSet {
        let valid: BTreeSet<i64> = valid.iter().copied().collect();
        let outgoing = seeds.outgoing_edges(&valid);
        let mut set = EdgeSet {
            valid,
            outgoing,
            friendships: BTreeSet::new(),
            follows: BTreeSet::new(),
        };
        for (m, friends) in &seeds.friends {
            for &f in friends {
                set.add_friendship(*m, f);
            }
        }
        for (m, followers) in &seeds.followers {
            for &f in followers {
                set.add_follow(f, *m);
            }
        }
        set
    }

    /// Adds the friendship a–b if both are valid and distinct.
    pub fn add_friendship(&mut self, a: i64, b: i64) {
        if a != b && self.valid.contains(&a) && self.valid.contains(&b) {
            self.friendships.insert((a.min(b), a.max(b)));
        }
    }

    /// Adds "`follower` follows `user`" if both are valid, distinct, and it is not an outgoing
    /// friendship of a seed.
    pub fn add_follow(&mut self, follower: i64, user: i64) {
        if follower != user
            && self.valid.contains(&follower)
            && self.valid.contains(&user)
            && !self.outgoing.contains(&(follower, user))
        {
            self.follows.insert((follower, user));
        }
    }

    /// Adds every friendship of `user`'s friend list.
    pub fn add_friend_list(&mut self, user: i64, friends: &[i64]) {
        for &w in friends {
            self.add_friendship(user, w);
        }
    }

    /// Adds every follower edge of `user`'s follower list.
    pub fn add_follower_list(&mut self, user: i64, followers: &[i64]) {
        for &f in followers {
            self.add_follow(f, user);
        }
    }

    /// The valid users that are not seeds: the targets of stage 2's calls.
    pub fn others(&self, main_ids: &[VkUserId]) -> Vec<i64> {
        let mains: HashSet<i64> = main_ids.iter().map(|m| m.get()).collect();
        self.valid
            .iter()
            .copied()
            .filter(|u| !mains.contains(u))
            .collect()
    }

    /// The edges of `df_connect`: friendships, outgoing friendships, follows, then the minimal
    /// link of every seed none of them touches.
    pub fn into_edges(self, main_ids: &[VkUserId], seeds: &SeedLists) -> Vec<Edge> {
        let mut edges: Vec<Edge> = self
            .friendships
            .iter()
            .chain(&self.outgoing)
            .map(|(a, b)| (*a, *b, FRIEND))
            .chain(self.follows.iter().map(|(f, u)| (*f, *u, FOLLOWER)))
            .collect();
        let linked: HashSet<i64> = edges.iter().flat_map(|(a, b, _)| [*a, *b]).collect();
        edges.extend(relations::minimal_links(main_ids, seeds, &linked));
        edges
    }
}

/// The users whose own friend list the `mutual` strategy still reads: those in no seed's
/// friend list (getMutual from a seed cannot see their edges) and those getMutual could not
/// test on any token (`denied`).
pub fn friend_list_targets(
    others: &[i64],
    seed_friends: &HashMap<i64, Vec<i64>>,
    denied: &BTreeSet<i64>,
) -> Vec<i64> {
    let in_a_list: HashSet<i64> = seed_friends.values().flatten().copied().collect();
    others
        .iter()
        .copied()
        .filter(|u| !in_a_list.contains(u) || denied.contains(u))
        .collect()
}

/// The users `df_users` describes: every end of an edge and every seed, in id order.
pub fn users_in_graph(edges: &[Edge], main_ids: &[VkUserId]) -> Vec<i64> {
    let in_graph: BTreeSet<i64> = edges
        .iter()
        .flat_map(|(a, b, _)| [*a, *b])
        .chain(main_ids.iter().map(|m| m.get()))
        .collect();
    in_graph.into_iter().collect()
}

/// Friend counts of the lists this report read: the seeds' and those stage 2 read.
pub fn friend_counts<'a>(
    seeds: &SeedLists,
    read: impl IntoIterator<Item = (i64, &'a [i64])>,
) -> HashMap<i64, usize> {
    let mut counts: HashMap<i64, usize> = seeds
        .friends
        .iter()
        .map(|(m, list)| (*m, list.len()))
        .collect();
    for (u, list) in read {
        counts.insert(u, list.len());
    }
    counts
}

/// `unfiltered_{main_id}`: each seed's friends (relation 2) then followers (relation 1), before
/// any filter.
pub fn unfiltered_tables(main_ids: &[VkUserId], seeds: &SeedLists) -> Vec<Table> {
    main_ids
        .iter()
        .map(|m| {
            let (mut id, mut rel) = (Vec::new(), Vec::new());
            for (lists, kind) in [(&seeds.friends, FRIEND), (&seeds.followers, FOLLOWER)] {
                for &u in lists.get(&m.get()).map(Vec::as_slice).unwrap_or_default() {
                    id.push(u);
                    rel.push(kind);
                }
            }
            Table::new(unfiltered::table(m))
                .with(unfiltered::ID, ColumnData::I64(id))
                .with(unfiltered::RELATION, ColumnData::I8(rel))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::relations::ALONE;

    fn seeds() -> SeedLists {
        SeedLists {
            friends: HashMap::from([(1, vec![10, 11, 99])]),
            followers: HashMap::from([(1, vec![12, 10])]),
            outgoing: HashMap::from([(1, vec![13])]),
        }
    }

    fn ids(raw: &[i64]) -> Vec<VkUserId> {
        raw.iter().map(|i| VkUserId::new(*i).unwrap()).collect()
    }

    #[test]
    fn seed_lists_give_edges_among_valid_users_only() {
        // 99 is not valid (filtered in stage 1): no edge to it.
        let set = EdgeSet::from_seeds(&[1, 10, 11, 12, 13], &seeds());
        let edges = set.into_edges(&ids(&[1]), &seeds());
        assert_eq!(
            edges,
            vec![
                (1, 10, FRIEND),
                (1, 11, FRIEND),
                (1, 13, FRIEND),
                (10, 1, FOLLOWER),
                (12, 1, FOLLOWER),
            ]
        );
    }

    #[test]
    fn friendships_are_kept_once_and_self_edges_dropped() {
        let mut set = EdgeSet::from_seeds(&[10, 11], &SeedLists::default());
        set.add_friend_list(10, &[11, 10]);
        set.add_friend_list(11, &[10]);
        set.add_follower_list(11, &[11]);
        assert_eq!(
            set.into_edges(&[], &SeedLists::default()),
            vec![(10, 11, FRIEND)]
        );
    }

    #[test]
    fn a_seed_following_a_user_is_not_also_a_follower_edge() {
        // The seed 1 follows 13: stage 2 reading 13's followers finds 1 again.
        let mut set = EdgeSet::from_seeds(&[1, 13], &seeds());
        set.add_follower_list(13, &[1]);
        let edges = set.into_edges(&ids(&[1]), &seeds());
        assert_eq!(edges, vec![(1, 13, FRIEND)]);
    }

    #[test]
    fn a_seed_without_edges_gets_its_minimal_link() {
        let lonely = SeedLists::default();
        let set = EdgeSet::from_seeds(&[5, 6], &lonely);
        assert_eq!(set.others(&ids(&[5])), vec![6]);
        assert_eq!(set.into_edges(&ids(&[5]), &lonely), vec![(5, 5, ALONE)]);
    }

    #[test]
    fn the_mutual_strategy_reads_lists_of_the_unreachable_and_the_denied() {
        let seed_friends = HashMap::from([(1, vec![10, 11])]);
        let denied = BTreeSet::from([11]);
        assert_eq!(
            friend_list_targets(&[10, 11, 12], &seed_friends, &denied),
            vec![11, 12]
        );
    }

    #[test]
    fn users_counts_and_unfiltered_lists() {
        let edges = vec![(10, 11, FRIEND), (12, 1, FOLLOWER)];
        assert_eq!(
            users_in_graph(&edges, &ids(&[1, 7])),
            vec![1, 7, 10, 11, 12]
        );
        let read = [(10, [1, 2, 3].as_slice())];
        let counts = friend_counts(&seeds(), read);
        assert_eq!(counts[&1], 3);
        assert_eq!(counts[&10], 3);
        let tables = unfiltered_tables(&ids(&[1, 7]), &seeds());
        assert_eq!(tables[0].name, "unfiltered_1");
        assert_eq!(tables[0].rows(), 5);
        assert_eq!(tables[1].rows(), 0);
    }
}
