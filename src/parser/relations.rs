//! What each user is to each seed, as the seed service wrote it: the relation codes of
//! `df_main_friends` and `df_connect`, the `relations_{main_id}` columns of `df_users`, and the
//! minimal link that keeps every seed in `df_connect`.
//!
//! The seed's description lists the values `main_id | mutual | friend | follower` and calls
//! relation 2 of `df_connect` "friendship (mutual or outgoing)". Read the way VK's lists give
//! them (docs/data.md quotes the same sentences):
//! - `mutual`: in the seed's friends.get, a friendship both sides accepted;
//! - `friend`: an outgoing friendship: the seed follows the user (the `users` of the seed's
//!   users.getSubscriptions: a friend request the seed sent that stays unanswered); in
//!   `df_connect` a relation-2 edge directed seed → user;
//! - `follower`: incoming: the user follows the seed (users.getFollowers); relation 1.
//!
//! VK never lists one user in two of these lists of one seed; were it to, that order decides.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::schema::{df_main_outgoing, df_users};
use crate::ids::VkUserId;
use crate::tables::{ColumnData, Table};

/// `relation`: a friendship (mutual, or a seed's outgoing one).
pub const FRIEND: i8 = 2;
/// `relation`: a follower (subscription) edge, `source` follows `target`.
pub const FOLLOWER: i8 = 1;
/// `relation` of a seed's minimal link to itself: nothing of its lists could be read, or they
/// are empty (see [`minimal_links`]).
pub const ALONE: i8 = 0;

/// The seeds' own lists, keyed by seed id; a seed whose lists could not be read has no entry.
#[derive(Debug, Clone, Default)]
pub struct SeedLists {
    /// friends.get of each seed.
    pub friends: HashMap<i64, Vec<i64>>,
    /// users.getFollowers of each seed.
    pub followers: HashMap<i64, Vec<i64>>,
    /// The users each seed follows (users.getSubscriptions `users`): outgoing friendships.
    pub outgoing: HashMap<i64, Vec<i64>>,
}

impl SeedLists {
    /// Appends one `relations_{main_id}` string column per seed for the rows `ids`:
    /// `main_id`, `mutual`, `friend`, `follower`, or null.
    pub fn add_columns(&self, mut table: Table, ids: &[i64], main_ids: &[VkUserId]) -> Table {
        let set = |lists: &HashMap<i64, Vec<i64>>, m: i64| -> HashSet<i64> {
            lists.get(&m).into_iter().flatten().copied().collect()
        };
        for m in main_ids {
            let m = m.get();
            let (friends, outgoing, followers) = (
                set(&self.friends, m),
                set(&self.outgoing, m),
                set(&self.followers, m),
            );
            let relation = |id: &i64| -> Option<String> {
                let value = if *id == m {
                    "main_id"
                } else if friends.contains(id) {
                    "mutual"
                } else if outgoing.contains(id) {
                    "friend"
                } else if followers.contains(id) {
                    "follower"
                } else {
                    return None;
                };
                Some(value.to_owned())
            };
            table = table.with(
                &df_users::relations(m),
                ColumnData::Str(ids.iter().map(relation).collect()),
            );
        }
        table
    }

    /// The outgoing friendships `(seed, user)` whose user is in `valid`.
    pub fn outgoing_edges(&self, valid: &BTreeSet<i64>) -> BTreeSet<(i64, i64)> {
        self.outgoing
            .iter()
            .flat_map(|(m, users)| users.iter().map(move |u| (*m, *u)))
            .filter(|(m, u)| m != u && valid.contains(u))
            .collect()
    }

    /// `df_main_outgoing`: main_id, id (the users each seed follows).
    pub fn outgoing_table(&self, main_ids: &[VkUserId]) -> Table {
        let (mut main, mut id) = (Vec::new(), Vec::new());
        for m in main_ids {
            for &u in self.outgoing.get(&m.get()).into_iter().flatten() {
                main.push(m.get());
                id.push(u);
            }
        }
        Table::new(df_main_outgoing::TABLE)
            .with(df_main_outgoing::MAIN_ID, ColumnData::I64(main))
            .with(df_main_outgoing::ID, ColumnData::I64(id))
    }
}

/// One edge of `df_connect`.
pub type Edge = (i64, i64, i8);

/// The edges that put every seed absent from `present` into `df_connect`, as the seed service
/// kept a seed without edges: its first friend (relation 2, smaller id first); a seed without
/// friends its first follower (relation 1, follower → seed), else the first user it follows
/// (relation 2, seed → user); a seed none of whose lists holds anyone (or could be read, a
/// private profile) a self-loop `(seed, seed)` with relation [`ALONE`].
pub fn minimal_links(
    main_ids: &[VkUserId],
    lists: &SeedLists,
    present: &HashSet<i64>,
) -> Vec<Edge> {
    let first = |of: &HashMap<i64, Vec<i64>>, m: i64| {
        of.get(&m)
            .and_then(|list| list.iter().copied().find(|u| *u != m && *u > 0))
    };
    main_ids
        .iter()
        .map(|m| m.get())
        .filter(|m| !present.contains(m))
        .map(|m| {
            if let Some(f) = first(&lists.friends, m) {
                (m.min(f), m.max(f), FRIEND)
            } else if let Some(f) = first(&lists.followers, m) {
                (f, m, FOLLOWER)
            } else if let Some(u) = first(&lists.outgoing, m) {
                (m, u, FRIEND)
            } else {
                (m, m, ALONE)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(id: i64) -> VkUserId {
        VkUserId::new(id).unwrap()
    }

    fn lists() -> SeedLists {
        let mut l = SeedLists::default();
        l.friends.insert(1, vec![10, 11]);
        l.outgoing.insert(1, vec![12]);
        l.followers.insert(1, vec![13]);
        l.friends.insert(2, vec![]);
        l.followers.insert(2, vec![20]);
        l.friends.insert(3, vec![]);
        l.outgoing.insert(3, vec![30]);
        l
    }

    #[test]
    fn the_four_values_follow_the_lists() {
        let t = lists().add_columns(Table::new("df_users"), &[1, 10, 12, 13, 99], &[seed(1)]);
        let values: Vec<Option<&str>> = t
            .strs("relations_1")
            .unwrap()
            .iter()
            .map(Option::as_deref)
            .collect();
        assert_eq!(
            values,
            [
                Some("main_id"),
                Some("mutual"),
                Some("friend"),
                Some("follower"),
                None
            ]
        );
    }

    #[test]
    fn every_seed_gets_a_minimal_link() {
        let present: HashSet<i64> = [1].into();
        let links = minimal_links(&[seed(1), seed(2), seed(3), seed(4)], &lists(), &present);
        assert_eq!(links, [(20, 2, FOLLOWER), (3, 30, FRIEND), (4, 4, ALONE)]);
    }
}
