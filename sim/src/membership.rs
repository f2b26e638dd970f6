//! Community membership that changes over simulated days (`--member-churn`). Day 0 is the
//! generated graph exactly; on a later day d each base member of community g stays unless
//! `hash(seed, g, u, d, leave) < churn`, and each active non-member joins when
//! `hash(seed, g, u, d, join) < churn * |base members| / active users`, so about `churn` of the
//! members leave and about as many join. Every day is drawn against the base graph (not against
//! the day before), so any day can be computed alone: groups.getMembers, `members_count`,
//! users.getSubscriptions, the privacy checks and `/sim/truth/members` all ask this one
//! predicate and agree. The named users (ids 1..=8) never join or leave: tests rely on what
//! they are members of. Each (community, day) list is cached, so paging a big community does
//! not recompute it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::graph::Graph;
use crate::state::lock;

/// Cached lists beyond this many are dropped at once (a long run over many days).
const MAX_CACHED_LISTS: usize = 20_000;

/// Member lists by (community, day).
type ListCache = HashMap<(u32, u64), Arc<Vec<u32>>>;

/// The members of every community on any simulated day.
pub(crate) struct Membership {
    seed: u64,
    churn: f64,
    /// Active users in the graph (joiners are drawn among them).
    active_users: f64,
    cache: Mutex<ListCache>,
}

/// A uniform draw in [0, 1) from (seed, community, user, day, salt): splitmix64.
fn unit(seed: u64, gid: u32, user: u32, day: u64, salt: u64) -> f64 {
    let mut x = seed
        ^ (u64::from(gid) << 40)
        ^ (u64::from(user) << 8)
        ^ day.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ salt;
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

const LEAVE: u64 = 0x1ea7_e5ed;
const JOIN: u64 = 0x7015_5eed;

impl Membership {
    /// Membership of `graph` under `churn` (share leaving per day).
    pub fn new(seed: u64, churn: f64, graph: &Graph) -> Membership {
        let active = graph
            .users
            .iter()
            .filter(|u| u.deactivated.is_none())
            .count();
        Membership {
            seed,
            churn,
            active_users: active.max(1) as f64,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn unchanging(&self, day: u64, user: u32, g: &Graph) -> bool {
        day == 0 || self.churn <= 0.0 || user <= g.named.loner
    }

    /// Whether `user` is a member of `gid` on `day`, given whether it is one in the base graph.
    fn member_on(&self, g: &Graph, gid: u32, user: u32, day: u64, in_base: bool) -> bool {
        if self.unchanging(day, user, g) {
            return in_base;
        }
        if in_base {
            return unit(self.seed, gid, user, day, LEAVE) >= self.churn;
        }
        if g.user(user).is_none_or(|u| u.deactivated.is_some()) {
            return false;
        }
        let base = g.members.of(gid).len() as f64;
        unit(self.seed, gid, user, day, JOIN) < self.churn * base / self.active_users
    }

    /// Whether `user` is a member of community `gid` on `day`.
    pub fn is_member(&self, g: &Graph, gid: u32, user: u32, day: u64) -> bool {
        if g.group(gid).is_none() {
            return false;
        }
        let in_base = g.members.of(gid).binary_search(&user).is_ok();
        self.member_on(g, gid, user, day, in_base)
    }

    /// The members of `gid` on `day`, ascending (cached per community and day).
    pub fn members(&self, g: &Graph, gid: u32, day: u64) -> Arc<Vec<u32>> {
        if let Some(list) = lock(&self.cache).get(&(gid, day)) {
            return Arc::clone(list);
        }
        let base = g.members.of(gid);
        let list: Vec<u32> = if day == 0 || self.churn <= 0.0 {
            base.to_vec()
        } else {
            // One pass over all users in id order, merging with the sorted base list.
            let mut out = Vec::with_capacity(base.len() + base.len() / 50 + 8);
            let mut next = 0;
            for user in 1..=g.n_users() {
                let in_base = base.get(next) == Some(&user);
                if in_base {
                    next += 1;
                }
                if self.member_on(g, gid, user, day, in_base) {
                    out.push(user);
                }
            }
            out
        };
        let list = Arc::new(list);
        let mut cache = lock(&self.cache);
        if cache.len() >= MAX_CACHED_LISTS {
            cache.clear();
        }
        cache.insert((gid, day), Arc::clone(&list));
        list
    }

    /// The communities `user` is a member of on `day`, ascending.
    pub fn groups_of<'g>(&self, g: &'g Graph, user: u32, day: u64) -> Cow<'g, [u32]> {
        let base = g.subscriptions.of(user);
        if self.unchanging(day, user, g) {
            return Cow::Borrowed(base);
        }
        Cow::Owned(
            (1..=g.groups.len() as u32)
                .filter(|&gid| {
                    let in_base = base.binary_search(&gid).is_ok();
                    self.member_on(g, gid, user, day, in_base)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;

    #[test]
    fn day_zero_is_the_graph_and_later_days_churn_consistently() {
        let g = Graph::generate(&SimConfig {
            users: 3_000,
            groups: 40,
            ..SimConfig::default()
        });
        let m = Membership::new(42, 0.05, &g);
        let gid = g.named_communities.big;
        assert_eq!(&m.members(&g, gid, 0)[..], g.members.of(gid));
        let base = g.members.of(gid);
        let day3 = m.members(&g, gid, 3);
        assert!(day3.windows(2).all(|w| w[0] < w[1]));
        let left = base
            .iter()
            .filter(|u| day3.binary_search(u).is_err())
            .count();
        let joined = day3
            .iter()
            .filter(|u| base.binary_search(u).is_err())
            .count();
        let expected = base.len() as f64 * 0.05;
        assert!(
            (left as f64 - expected).abs() < expected * 0.5 + 5.0,
            "{left}"
        );
        assert!(
            (joined as f64 - expected).abs() < expected * 0.6 + 5.0,
            "{joined}"
        );
        for user in 1..=g.n_users() {
            let listed = day3.binary_search(&user).is_ok();
            assert_eq!(m.is_member(&g, gid, user, 3), listed);
            assert_eq!(m.groups_of(&g, user, 3).contains(&gid), listed);
        }
        assert_eq!(m.members(&g, gid, 3), day3, "deterministic");
    }
}
