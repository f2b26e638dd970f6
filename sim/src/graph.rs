//! The synthetic VK: users, friendships, followers, communities and subscriptions, generated
//! deterministically from a seed. Immutable once built; every method reads it without locks.
//!
//! Shape of the generated graph:
//! - friend degrees are heavy-tailed (a truncated Pareto weight per user), most under 500, a
//!   few above 5,000, none above [`MAX_FRIENDS`];
//! - about half of a user's own edges go to users with nearby ids (a ring neighbourhood whose
//!   width grows with the user's degree), which gives clustering: mutual friends and 2–3 hop
//!   chains; the rest go to users picked in proportion to their weight (hubs attract);
//! - followers are one-way edges to users picked by weight, never between friends;
//! - the fixed named users (ids 1..=8) exist in every graph so tests can rely on them;
//! - communities have managers (moderators, editors, administrators) and named communities of
//!   every kind a poster meets, both drawn after everything else from their own random stream.
//!
//! Adjacency is stored as CSR (offsets + one flat `Vec<u32>` of ids), every list sorted ascending.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::SimConfig;

/// No user has more friends than VK allows (10,000).
pub const MAX_FRIENDS: usize = 10_000;

/// The fixed users every graph contains.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct NamedUsers {
    /// An open profile with more than 5,000 friends (paging matters).
    pub hub: u32,
    /// A closed profile (friends.get answers 30 to strangers).
    pub closed: u32,
    /// A friend of `closed` (its token may read `closed`'s friends).
    pub closed_friend: u32,
    /// A deleted profile (error 18).
    pub deleted: u32,
    /// A banned profile (error 18).
    pub banned: u32,
    /// An ordinary open profile with a few hundred friends.
    pub open: u32,
    /// The most-followed user (`--celebrity-share` of all users follow it when
    /// `--celebrities` is at least 1): paging users.getFollowers to its end matters.
    pub celebrity: u32,
    /// An open profile that hides every friendship it has: friends.get answers an empty list,
    /// while its followers and the users it follows show (a seed without friends).
    pub loner: u32,
}

/// Communities of every kind a poster meets, found in every graph (tests rely on them). Each
/// is the lowest id with its properties (so the graph is what it was without them); only a
/// graph that has none gets one made so (a tiny graph, or `deactivated_groups_share` 0).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct NamedCommunities {
    /// The user `admin` lists as its administrator (the named user `open`): its posts there are
    /// published. It manages no other community.
    pub admin_user: u32,
    /// A public page with a limited wall that takes suggestions: a non-manager's wall.post is
    /// created with `post_type = suggest`.
    pub suggest: u32,
    /// A limited wall without suggestions (214 for others) that lists `admin_user` as
    /// administrator (level 3): its posts are published.
    pub admin: u32,
    /// An open wall: anyone's post is published.
    pub open_wall: u32,
    /// An open wall reachable by a custom screen name (not club{N}/public{N}).
    pub screen_name: u32,
    /// A limited wall without suggestions: wall.post answers 214.
    pub wall_closed: u32,
    /// A closed community (`is_closed` 1) `admin_user` is no member of: wall.post answers 15.
    pub closed: u32,
    /// A private community (`is_closed` 2) `admin_user` is no member of: wall.post answers 15.
    pub private: u32,
    /// A deleted or banned community: groups.getById says `deactivated`, wall.post answers 15.
    pub deactivated: u32,
    /// An open, active public page with a busy wall whatever the draw: its newest post has
    /// more than 1,000 likes, more than 100 top-level comments, a thread of more than 10
    /// replies and reposts; at least 25 posts. The named user `hub` is its administrator
    /// (level 3) and the only one: its other managers are editors or moderators, so only hub's
    /// token reads its reposts.
    pub busy: u32,
    /// The open community with the most members: with `--big-community-members N` an open
    /// public page given exactly N members (paging groups.getMembers far matters).
    pub big: u32,
}

/// How a community's wall takes a post from someone who is not one of its editors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WallMode {
    /// Members post (`can_post` 1): the post is published.
    Open,
    /// A public page's limited wall: posts are suggestions (`can_suggest` 1), published only
    /// when an editor accepts them.
    Suggestions,
    /// A limited wall of a group or event: only editors post; others get 214.
    Closed,
}

impl WallMode {
    /// The spelling `/sim/truth` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            WallMode::Open => "open",
            WallMode::Suggestions => "suggestions",
            WallMode::Closed => "closed",
        }
    }
}

/// A community manager's level, as groups.getById's `admin_level`: 1 moderator, 2 editor,
/// 3 administrator. Editors and administrators publish on any wall; a moderator posts as a
/// member does.
pub type AdminLevel = u8;

/// The managers of each community: (user, level) in the order drawn.
pub type Managers = HashMap<u32, Vec<(u32, AdminLevel)>>;

/// Deactivation state of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deactivated {
    /// Profile deleted by its owner.
    Deleted,
    /// Profile banned by VK.
    Banned,
}

impl Deactivated {
    /// VK's spelling of the `deactivated` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Deactivated::Deleted => "deleted",
            Deactivated::Banned => "banned",
        }
    }
}

/// One user's profile data (adjacency lives in [`Graph`]).
#[derive(Debug, Clone)]
pub struct User {
    pub first_name: &'static str,
    pub last_name: &'static str,
    /// 1 female, 2 male.
    pub sex: u8,
    pub is_closed: bool,
    pub deactivated: Option<Deactivated>,
    /// Custom screen name, if any (otherwise `id{N}`).
    pub screen_name: Option<String>,
    pub verified: bool,
    pub birth_year: u16,
}

/// Community type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Group,
    Page,
    Event,
}

impl GroupKind {
    /// VK's spelling of the `type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Group => "group",
            GroupKind::Page => "page",
            GroupKind::Event => "event",
        }
    }

    fn default_prefix(self) -> &'static str {
        match self {
            GroupKind::Group => "club",
            GroupKind::Page => "public",
            GroupKind::Event => "event",
        }
    }
}

/// One community.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub kind: GroupKind,
    /// 0 open, 1 closed, 2 private.
    pub is_closed: u8,
    pub screen_name: String,
    /// Whether members may post on the wall (otherwise wall.post answers 214).
    pub wall_open: bool,
    pub members_count: u32,
    /// A deleted or banned community: groups.getById says so, the rest refuses.
    pub deactivated: Option<Deactivated>,
}

impl Group {
    /// How the wall takes a non-editor's post (from `wall_open` and the kind: only public
    /// pages take suggestions).
    pub fn wall_mode(&self) -> WallMode {
        if self.wall_open {
            WallMode::Open
        } else if self.kind == GroupKind::Page {
            WallMode::Suggestions
        } else {
            WallMode::Closed
        }
    }

    /// Whether the screen name is a custom one (not `club{N}`, `public{N}`, `event{N}`).
    pub fn has_custom_screen_name(&self) -> bool {
        !["club", "public", "event"].iter().any(|p| {
            self.screen_name
                .strip_prefix(p)
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        })
    }
}

/// What a screen name resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    User(u32),
    Group(u32),
}

/// A CSR adjacency: the list of node `i` (index = id - 1) is `ids[off[i]..off[i + 1]]`.
#[derive(Debug, Default, Clone)]
pub struct Csr {
    off: Vec<usize>,
    ids: Vec<u32>,
}

impl Csr {
    /// Builds the adjacency of `n` nodes from `(from_index, to_id)` pairs sorted by `from` then `to`.
    fn from_sorted_pairs(n: usize, pairs: impl Iterator<Item = (usize, u32)> + Clone) -> Csr {
        let mut off = vec![0usize; n + 1];
        for (from, _) in pairs.clone() {
            off[from + 1] += 1;
        }
        for i in 0..n {
            off[i + 1] += off[i];
        }
        let ids = pairs.map(|(_, to)| to).collect();
        Csr { off, ids }
    }

    /// The sorted list of node `id` (1-based).
    pub fn of(&self, id: u32) -> &[u32] {
        let i = id as usize - 1;
        &self.ids[self.off[i]..self.off[i + 1]]
    }

    /// Number of entries in all lists.
    pub fn total(&self) -> usize {
        self.ids.len()
    }
}

/// The whole synthetic VK.
#[derive(Debug)]
pub struct Graph {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    /// Symmetric friendships, hidden ones included (what the two users themselves see).
    pub friends: Csr,
    /// The friendships VK shows to everyone else: `friends` without the hidden ones.
    pub visible: Csr,
    /// Users following a user (one-way; never friends of that user).
    pub followers: Csr,
    /// Users a user follows (the reverse of `followers`).
    pub following: Csr,
    /// Communities a user is subscribed to.
    pub subscriptions: Csr,
    /// Members (subscribers) of a community, indexed by community id.
    pub members: Csr,
    pub named: NamedUsers,
    /// Managers of each community that has any: (user, level), in the order drawn.
    pub admins: Managers,
    pub named_communities: NamedCommunities,
    /// The named communities the graph had none of, made so (empty for the default graphs).
    pub named_communities_made: Vec<&'static str>,
    screen_names: HashMap<String, Resolved>,
}

const FIRST_M: &[&str] = &[
    "Alexander",
    "Dmitry",
    "Maxim",
    "Sergey",
    "Andrey",
    "Alexey",
    "Artem",
    "Ilya",
    "Kirill",
    "Mikhail",
    "Nikita",
    "Matvey",
    "Roman",
    "Egor",
    "Arseny",
    "Ivan",
    "Denis",
    "Evgeny",
    "Timofey",
    "Vladislav",
    "Igor",
    "Vladimir",
    "Pavel",
    "Ruslan",
    "Mark",
    "Konstantin",
    "Oleg",
    "Stepan",
];
const FIRST_F: &[&str] = &[
    "Anastasia",
    "Maria",
    "Anna",
    "Victoria",
    "Ekaterina",
    "Natalia",
    "Marina",
    "Polina",
    "Sofia",
    "Daria",
    "Alisa",
    "Ksenia",
    "Alexandra",
    "Elena",
    "Olga",
    "Tatiana",
    "Irina",
    "Yulia",
    "Vera",
    "Svetlana",
    "Kristina",
    "Valeria",
    "Arina",
    "Milana",
    "Eva",
    "Varvara",
    "Lyudmila",
    "Nadezhda",
];
const LAST: &[&str] = &[
    "Ivanov",
    "Smirnov",
    "Kuznetsov",
    "Popov",
    "Vasiliev",
    "Petrov",
    "Sokolov",
    "Mikhailov",
    "Novikov",
    "Fedorov",
    "Morozov",
    "Volkov",
    "Alekseev",
    "Lebedev",
    "Semenov",
    "Egorov",
    "Pavlov",
    "Kozlov",
    "Stepanov",
    "Nikolaev",
    "Orlov",
    "Andreev",
    "Makarov",
    "Nikitin",
    "Zakharov",
    "Zaitsev",
    "Soloviev",
    "Borisov",
    "Yakovlev",
    "Grigoriev",
    "Romanov",
    "Vorobiev",
];
const GROUP_WORDS: &[&str] = &[
    "music",
    "news",
    "memes",
    "football",
    "travel",
    "cooking",
    "science",
    "books",
    "cinema",
    "games",
    "fitness",
    "art",
    "history",
    "coding",
    "photo",
    "cars",
    "fashion",
    "humor",
    "nature",
    "space",
    "chess",
    "anime",
    "design",
    "business",
    "startups",
    "math",
    "languages",
    "pets",
];

/// A truncated Pareto draw: `xm * u^(-1/alpha)`, capped.
pub(crate) fn pareto(rng: &mut ChaCha8Rng, xm: f64, alpha: f64, cap: f64) -> f64 {
    let u: f64 = rng.random::<f64>().max(1e-12);
    (xm * u.powf(-1.0 / alpha)).min(cap)
}

/// Picks an index with probability proportional to its weight (`cum` is the running sum).
fn pick_weighted(rng: &mut ChaCha8Rng, cum: &[u64]) -> usize {
    let total = *cum.last().expect("non-empty weights");
    let x = rng.random_range(0..total);
    cum.partition_point(|&c| c <= x)
}

fn cumulative(weights: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut acc = 0u64;
    weights
        .map(|w| {
            acc += w.max(1);
            acc
        })
        .collect()
}

/// Packs an undirected edge (smaller id first).
fn edge(a: u32, b: u32) -> u64 {
    let (x, y) = if a < b { (a, b) } else { (b, a) };
    ((x as u64) << 32) | y as u64
}

impl Graph {
    /// Generates the graph the configuration describes. Deterministic: the same settings give
    /// the same graph.
    pub fn generate(cfg: &SimConfig) -> Graph {
        let n = cfg.users as usize;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x005e_ed0f_67a9);
        let named = NamedUsers {
            hub: 1,
            closed: 2,
            closed_friend: 3,
            deleted: 4,
            banned: 5,
            open: 6,
            celebrity: 7,
            loner: 8,
        };

        // Profiles.
        let mut users = Vec::with_capacity(n);
        for i in 0..n {
            let id = i as u32 + 1;
            let sex = if rng.random_bool(0.5) { 1 } else { 2 };
            let first = if sex == 1 {
                FIRST_F[rng.random_range(0..FIRST_F.len())]
            } else {
                FIRST_M[rng.random_range(0..FIRST_M.len())]
            };
            let last = LAST[rng.random_range(0..LAST.len())];
            let roll: f64 = rng.random();
            let mut deactivated = if roll < cfg.deleted_share {
                Some(Deactivated::Deleted)
            } else if roll < cfg.deleted_share + cfg.banned_share {
                Some(Deactivated::Banned)
            } else {
                None
            };
            let mut is_closed = deactivated.is_none() && rng.random_bool(cfg.closed_share);
            if id <= named.celebrity {
                deactivated = None;
                is_closed = false;
            }
            // After the draws, so the rest of the graph stays as it was.
            if id == named.loner {
                deactivated = None;
                is_closed = false;
            }
            if id == named.closed {
                is_closed = true;
            } else if id == named.deleted {
                deactivated = Some(Deactivated::Deleted);
            } else if id == named.banned {
                deactivated = Some(Deactivated::Banned);
            }
            let screen_name = if id == named.hub {
                Some("sim_hub".to_string())
            } else if rng.random_bool(cfg.screen_name_share) {
                Some(format!(
                    "{}.{}{}",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    id
                ))
            } else {
                None
            };
            users.push(User {
                first_name: if deactivated == Some(Deactivated::Deleted) {
                    "DELETED"
                } else {
                    first
                },
                last_name: if deactivated == Some(Deactivated::Deleted) {
                    ""
                } else {
                    last
                },
                sex,
                is_closed,
                deactivated,
                screen_name,
                verified: rng.random_bool(0.002),
                birth_year: rng.random_range(1960..2010),
            });
        }

        // Friend weights: heavy-tailed, most under 500.
        let mut weights: Vec<u32> = (0..n)
            .map(|_| pareto(&mut rng, 12.0, 1.1, 9_000.0) as u32)
            .collect();
        weights[named.closed as usize - 1] = 300;
        weights[named.open as usize - 1] = 250;
        weights[named.closed_friend as usize - 1] = 150;
        let cum = cumulative(weights.iter().map(|&w| w as u64));

        let mut edges: Vec<u64> =
            Vec::with_capacity(weights.iter().map(|&w| w as usize).sum::<usize>() / 2 + 8_000);
        for (i, &w) in weights.iter().enumerate() {
            let id = i as u32 + 1;
            if id == named.hub {
                continue;
            }
            let own = (w as f64 * 0.5).round() as u32;
            let window = (w as usize * 2).clamp(50, 2_000).min(n / 2).max(1);
            for _ in 0..own {
                let j = if rng.random_bool(0.5) {
                    let d = rng.random_range(1..=window);
                    if rng.random_bool(0.5) {
                        (i + d) % n
                    } else {
                        (i + n - d) % n
                    }
                } else {
                    pick_weighted(&mut rng, &cum)
                };
                if j != i {
                    edges.push(edge(id, j as u32 + 1));
                }
            }
        }
        // The hub: a fixed share of everyone, so paging past 5,000 always matters.
        let hub_target = (n * 2 / 3).min(9_000);
        for _ in 0..hub_target + hub_target / 8 {
            let j = rng.random_range(1..n);
            edges.push(edge(named.hub, j as u32 + 1));
        }
        edges.push(edge(named.closed, named.closed_friend));
        edges.push(edge(named.open, named.closed_friend));
        edges.sort_unstable();
        edges.dedup();

        // Enforce VK's cap: drop edges that would push an endpoint past it (deterministic order).
        let mut degree = vec![0u32; n];
        for &e in &edges {
            degree[(e >> 32) as usize - 1] += 1;
            degree[(e & 0xffff_ffff) as usize - 1] += 1;
        }
        if degree.iter().any(|&d| d as usize > MAX_FRIENDS) {
            let mut kept = vec![0u32; n];
            edges.retain(|&e| {
                let a = (e >> 32) as usize - 1;
                let b = (e & 0xffff_ffff) as usize - 1;
                if kept[a] as usize >= MAX_FRIENDS || kept[b] as usize >= MAX_FRIENDS {
                    return false;
                }
                kept[a] += 1;
                kept[b] += 1;
                true
            });
        }
        let friends = symmetric_csr(n, &edges);
        drop(edges);

        // Followers: one-way, towards popular users (many friends, many followers), never
        // between friends.
        let popular = cumulative((1..=n as u32).map(|id| friends.of(id).len() as u64 + 1));
        let mut follows: Vec<u64> = Vec::new();
        for i in 0..n {
            let id = i as u32 + 1;
            let k = pareto(&mut rng, 2.0, 1.3, 300.0) as u32;
            let own_friends = friends.of(id);
            for _ in 0..k {
                let j = pick_weighted(&mut rng, &popular) as u32 + 1;
                if j != id && own_friends.binary_search(&j).is_err() {
                    follows.push(((id as u64) << 32) | j as u64);
                }
            }
        }
        add_celebrity_followers(cfg, &named, &users, &friends, &mut follows);
        follows.sort_unstable();
        follows.dedup();
        let following = Csr::from_sorted_pairs(
            n,
            follows
                .iter()
                .map(|&e| ((e >> 32) as usize - 1, (e & 0xffff_ffff) as u32)),
        );
        let mut reversed: Vec<u64> = follows.iter().map(|&e| e.rotate_left(32)).collect();
        drop(follows);
        reversed.sort_unstable();
        let followers = Csr::from_sorted_pairs(
            n,
            reversed
                .iter()
                .map(|&e| ((e >> 32) as usize - 1, (e & 0xffff_ffff) as u32)),
        );
        drop(reversed);

        // Communities and subscriptions.
        let m = cfg.groups as usize;
        let popularity = cumulative((0..m).map(|_| pareto(&mut rng, 1.0, 0.9, 100_000.0) as u64));
        let mut subs: Vec<u64> = Vec::new();
        for i in 0..n {
            let k = pareto(&mut rng, 2.0, 1.2, 1_000.0) as u32;
            for _ in 0..k {
                let g = pick_weighted(&mut rng, &popularity) as u64 + 1;
                subs.push(((i as u64) << 32) | g);
            }
        }
        subs.sort_unstable();
        subs.dedup();
        let mut members = vec![0u32; m];
        for &s in &subs {
            members[(s & 0xffff_ffff) as usize - 1] += 1;
        }
        let subscriptions = Csr::from_sorted_pairs(
            n,
            subs.iter()
                .map(|&e| ((e >> 32) as usize, (e & 0xffff_ffff) as u32)),
        );
        let mut by_group: Vec<u64> = subs
            .iter()
            .map(|&e| ((e & 0xffff_ffff) - 1) << 32 | ((e >> 32) + 1))
            .collect();
        drop(subs);
        by_group.sort_unstable();
        let group_members = Csr::from_sorted_pairs(
            m,
            by_group
                .iter()
                .map(|&e| ((e >> 32) as usize, (e & 0xffff_ffff) as u32)),
        );
        drop(by_group);
        let mut groups = Vec::with_capacity(m);
        for (g, &members_count) in members.iter().enumerate() {
            let id = g as u32 + 1;
            let roll: f64 = rng.random();
            let kind = if roll < 0.6 {
                GroupKind::Page
            } else if roll < 0.9 {
                GroupKind::Group
            } else {
                GroupKind::Event
            };
            let is_closed = if kind == GroupKind::Page {
                0
            } else {
                let r: f64 = rng.random();
                if r < 0.8 {
                    0
                } else if r < 0.95 {
                    1
                } else {
                    2
                }
            };
            let word = GROUP_WORDS[rng.random_range(0..GROUP_WORDS.len())];
            let screen_name = if rng.random_bool(0.5) {
                format!("{word}_{id}")
            } else {
                format!("{}{id}", kind.default_prefix())
            };
            groups.push(Group {
                name: format!("{} {}", capitalize(word), id),
                kind,
                is_closed,
                screen_name,
                wall_open: rng.random_bool(0.6),
                members_count,
                deactivated: None,
            });
        }
        deactivate_groups(cfg, &mut groups);
        let mut subscriptions = subscriptions;
        let mut group_members = group_members;
        let big = grow_big_community(
            cfg,
            &users,
            &mut groups,
            &mut subscriptions,
            &mut group_members,
        );
        let visible = hide_friendships(cfg, &named, &users, &friends);
        let (admins, named_communities, named_communities_made) =
            manage_communities(cfg, &named, &mut groups, &group_members, big);

        let mut screen_names = HashMap::new();
        for (i, u) in users.iter().enumerate() {
            if let Some(s) = &u.screen_name {
                screen_names.insert(s.clone(), Resolved::User(i as u32 + 1));
            }
        }
        for (g, grp) in groups.iter().enumerate() {
            screen_names.insert(grp.screen_name.clone(), Resolved::Group(g as u32 + 1));
        }

        Graph {
            users,
            groups,
            friends,
            visible,
            followers,
            following,
            subscriptions,
            members: group_members,
            named,
            admins,
            named_communities,
            named_communities_made,
            screen_names,
        }
    }

    /// Number of users.
    pub fn n_users(&self) -> u32 {
        self.users.len() as u32
    }

    /// The user with this id, if it exists.
    pub fn user(&self, id: u32) -> Option<&User> {
        if id == 0 {
            return None;
        }
        self.users.get(id as usize - 1)
    }

    /// The community with this id, if it exists.
    pub fn group(&self, id: u32) -> Option<&Group> {
        if id == 0 {
            return None;
        }
        self.groups.get(id as usize - 1)
    }

    /// Whether `a` and `b` are friends.
    pub fn are_friends(&self, a: u32, b: u32) -> bool {
        self.user(a).is_some() && self.friends.of(a).binary_search(&b).is_ok()
    }

    /// The level at which `user` manages community `gid`, if it does.
    pub fn admin_level(&self, gid: u32, user: u32) -> Option<AdminLevel> {
        self.admins
            .get(&gid)?
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(_, level)| *level)
    }

    /// Whether `user` is a member (subscriber) of community `gid`.
    pub fn is_member(&self, gid: u32, user: u32) -> bool {
        self.group(gid).is_some() && self.members.of(gid).binary_search(&user).is_ok()
    }

    /// Resolves a screen name: custom names, `id{N}`, `club{N}`, `public{N}`, `event{N}`.
    pub fn resolve(&self, name: &str) -> Option<Resolved> {
        let name = name.trim().trim_start_matches('@').to_lowercase();
        if let Some(r) = self.screen_names.get(&name) {
            return Some(*r);
        }
        let numeric = |prefix: &str| -> Option<u32> {
            let rest = name.strip_prefix(prefix)?;
            if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            rest.parse().ok()
        };
        if let Some(id) = numeric("id") {
            return self.user(id).map(|_| Resolved::User(id));
        }
        for prefix in ["club", "public", "event"] {
            if let Some(id) = numeric(prefix) {
                return self.group(id).map(|_| Resolved::Group(id));
            }
        }
        None
    }

    /// The screen name VK shows for a user (`id{N}` when there is no custom one).
    pub fn user_screen_name(&self, id: u32) -> String {
        match self.user(id).and_then(|u| u.screen_name.clone()) {
            Some(s) => s,
            None => format!("id{id}"),
        }
    }
}

/// The extra follow edges (packed `follower << 32 | followed`) of the celebrities: the k-th
/// (k = 0, 1, ...) is followed by `celebrity_share / 2^k` of all users, never by its friends.
/// Drawn from their own random stream, so the rest of the graph stays what it was.
fn add_celebrity_followers(
    cfg: &SimConfig,
    named: &NamedUsers,
    users: &[User],
    friends: &Csr,
    follows: &mut Vec<u64>,
) {
    if cfg.celebrities == 0 {
        return;
    }
    let n = users.len() as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xce1e_b817_7135);
    let mut stars = vec![named.celebrity];
    let mut tries = 0;
    while stars.len() < cfg.celebrities as usize && tries < 10_000 {
        tries += 1;
        let id = rng.random_range(named.celebrity + 1..=n);
        let active = users[id as usize - 1].deactivated.is_none();
        if active && !stars.contains(&id) {
            stars.push(id);
        }
    }
    for (k, &star) in stars.iter().enumerate() {
        let share = cfg.celebrity_share / f64::from(1u32 << k.min(30));
        let own_friends = friends.of(star);
        for follower in 1..=n {
            if rng.random_bool(share)
                && follower != star
                && own_friends.binary_search(&follower).is_err()
            {
                follows.push(((follower as u64) << 32) | star as u64);
            }
        }
    }
}

/// Marks a share of communities deleted or banned (their own random stream).
fn deactivate_groups(cfg: &SimConfig, groups: &mut [Group]) {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xdead_c0aa);
    for grp in groups.iter_mut() {
        if rng.random_bool(cfg.deactivated_groups_share) {
            grp.deactivated = Some(if rng.random_bool(0.5) {
                Deactivated::Deleted
            } else {
                Deactivated::Banned
            });
        }
    }
}

/// Community managers and the named communities, from their own random stream (drawn last, so
/// the rest of the graph is what it was without them). Each community gets 1 to 3 managers
/// drawn among its members (any user when it has none): half administrators, 30% editors, 20%
/// moderators; the named users manage nothing but `admin_user` manages `admin`.
fn manage_communities(
    cfg: &SimConfig,
    named: &NamedUsers,
    groups: &mut [Group],
    members: &Csr,
    big: u32,
) -> (Managers, NamedCommunities, Vec<&'static str>) {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xad31_5eed_c0aa);
    let n = cfg.users;
    let mut admins = Managers::new();
    for gid in 1..=groups.len() as u32 {
        let list = members.of(gid);
        let k = 1 + u32::from(rng.random_bool(0.5)) + u32::from(rng.random_bool(0.2));
        for _ in 0..k {
            let user = if list.is_empty() {
                rng.random_range(1..=n)
            } else {
                list[rng.random_range(0..list.len())]
            };
            let roll: f64 = rng.random();
            let level = if roll < 0.5 {
                3
            } else if roll < 0.8 {
                2
            } else {
                1
            };
            let managers = admins.entry(gid).or_default();
            if user > named.loner && !managers.iter().any(|(u, _)| *u == user) {
                managers.push((user, level));
            }
        }
    }
    let admin_user = named.open;
    let mut picker = Picker {
        groups,
        members,
        outsider: admin_user,
        used: Vec::new(),
        made: Vec::new(),
    };
    let live = |g: &Group| g.deactivated.is_none();
    let deactivated = picker.pick(
        "deactivated",
        |_, g| g.deactivated.is_some(),
        |_, g| g.deactivated = Some(Deactivated::Deleted),
    );
    let suggest = picker.pick(
        "suggest",
        |_, g| live(g) && g.is_closed == 0 && g.wall_mode() == WallMode::Suggestions,
        |_, g| {
            g.deactivated = None;
            g.kind = GroupKind::Page;
            g.is_closed = 0;
            g.wall_open = false;
        },
    );
    let limited =
        |_: u32, g: &Group| live(g) && g.is_closed == 0 && g.wall_mode() == WallMode::Closed;
    let make_limited = |_: u32, g: &mut Group| {
        g.deactivated = None;
        g.kind = GroupKind::Group;
        g.is_closed = 0;
        g.wall_open = false;
    };
    let admin = picker.pick("admin", limited, make_limited);
    let wall_closed = picker.pick("wall_closed", limited, make_limited);
    let open = |_: u32, g: &Group| live(g) && g.is_closed == 0 && g.wall_open;
    let make_open = |_: u32, g: &mut Group| {
        g.deactivated = None;
        g.is_closed = 0;
        g.wall_open = true;
    };
    let open_wall = picker.pick("open_wall", open, make_open);
    let screen_name = picker.pick(
        "screen_name",
        |gid, g| open(gid, g) && g.has_custom_screen_name(),
        |gid, g| {
            make_open(gid, g);
            g.screen_name = format!("sim_wall_{gid}");
        },
    );
    let make_closed = |level: u8| {
        move |_: u32, g: &mut Group| {
            g.deactivated = None;
            g.kind = GroupKind::Group;
            g.is_closed = level;
        }
    };
    let closed = picker.pick("closed", |_, g| live(g) && g.is_closed == 1, make_closed(1));
    let private = picker.pick(
        "private",
        |_, g| live(g) && g.is_closed == 2,
        make_closed(2),
    );
    // Picked after the others (so they are what they were) and never the big community.
    let busy = picker.pick(
        "busy",
        |gid, g| gid != big && live(g) && g.is_closed == 0 && g.kind == GroupKind::Page,
        |_, g| {
            g.deactivated = None;
            g.kind = GroupKind::Page;
            g.is_closed = 0;
        },
    );
    let made = picker.made;
    for managers in admins.values_mut() {
        managers.retain(|(u, _)| *u != admin_user);
    }
    admins.entry(admin).or_default().insert(0, (admin_user, 3));
    // The hub administers busy alone: its other managers keep at most the editor's level, so
    // no pool token (whoever owns it) reads busy's reposts.
    let busy_managers = admins.entry(busy).or_default();
    for m in busy_managers.iter_mut() {
        m.1 = m.1.min(2);
    }
    busy_managers.retain(|(u, _)| *u != named.hub);
    busy_managers.insert(0, (named.hub, 3));
    let named_communities = NamedCommunities {
        admin_user,
        suggest,
        admin,
        open_wall,
        screen_name,
        wall_closed,
        closed,
        private,
        deactivated,
        busy,
        big,
    };
    (admins, named_communities, made)
}

/// Finds the named communities: the lowest free id with the wanted properties, else (a graph
/// that has none) the highest free id the named admin user is no member of, made so (in a
/// graph too small for that, any free id, then id 1).
struct Picker<'a> {
    groups: &'a mut [Group],
    members: &'a Csr,
    /// The user none of the closed named communities may have as a member.
    outsider: u32,
    used: Vec<u32>,
    /// The kinds that had to be made.
    made: Vec<&'static str>,
}

impl Picker<'_> {
    fn pick(
        &mut self,
        kind: &'static str,
        wanted: impl Fn(u32, &Group) -> bool,
        make: impl Fn(u32, &mut Group),
    ) -> u32 {
        let outsider = |gid: u32| self.members.of(gid).binary_search(&self.outsider).is_err();
        let found = (1..=self.groups.len() as u32).find(|&gid| {
            !self.used.contains(&gid)
                && outsider(gid)
                && wanted(gid, &self.groups[gid as usize - 1])
        });
        let gid = match found {
            Some(gid) => gid,
            None => {
                let free = |gid: &u32| !self.used.contains(gid);
                let all = 1..=self.groups.len() as u32;
                let gid = all
                    .clone()
                    .rev()
                    .find(|gid| free(gid) && outsider(*gid))
                    .or_else(|| all.rev().find(free))
                    .unwrap_or(1);
                make(gid, &mut self.groups[gid as usize - 1]);
                self.made.push(kind);
                gid
            }
        };
        self.used.push(gid);
        gid
    }
}

/// The big community: with `big_community_members` N > 0, the active open public page with the
/// most members gets exactly N members, drawn from the active users (its own random stream,
/// a partial Fisher-Yates shuffle), and both adjacencies are rebuilt so users.getSubscriptions,
/// groups.getMembers and `members_count` agree. With N = 0 nothing changes and the big
/// community is the active open community with the most members. N above the number of active
/// users is refused by `spawn` (here it is clamped so generation cannot fail).
fn grow_big_community(
    cfg: &SimConfig,
    users: &[User],
    groups: &mut [Group],
    subscriptions: &mut Csr,
    members: &mut Csr,
) -> u32 {
    let wanted = cfg.big_community_members as usize;
    let most_members = |page_only: bool| {
        (1..=groups.len() as u32)
            .filter(|&gid| {
                let g = &groups[gid as usize - 1];
                g.deactivated.is_none()
                    && g.is_closed == 0
                    && (!page_only || g.kind == GroupKind::Page)
            })
            .max_by_key(|&gid| (groups[gid as usize - 1].members_count, u32::MAX - gid))
    };
    if wanted == 0 {
        return most_members(false).unwrap_or(1);
    }
    let big = most_members(true).unwrap_or_else(|| {
        // No open page at all (a tiny graph): make the last community one.
        let gid = groups.len() as u32;
        let g = &mut groups[gid as usize - 1];
        g.kind = GroupKind::Page;
        g.is_closed = 0;
        g.deactivated = None;
        gid
    });
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xb16c_0331_0e55);
    let mut active: Vec<u32> = (1..=users.len() as u32)
        .filter(|&id| users[id as usize - 1].deactivated.is_none())
        .collect();
    let k = wanted.min(active.len());
    for i in 0..k {
        let j = rng.random_range(i..active.len());
        active.swap(i, j);
    }
    let mut chosen = active[..k].to_vec();
    chosen.sort_unstable();
    let n = users.len();
    let mut pairs: Vec<u64> = Vec::with_capacity(subscriptions.total() + k);
    for id in 1..=n as u32 {
        for &gid in subscriptions.of(id) {
            if gid != big {
                pairs.push((u64::from(id - 1) << 32) | u64::from(gid));
            }
        }
    }
    pairs.extend(
        chosen
            .iter()
            .map(|&u| (u64::from(u - 1) << 32) | u64::from(big)),
    );
    pairs.sort_unstable();
    *subscriptions = Csr::from_sorted_pairs(
        n,
        pairs
            .iter()
            .map(|&e| ((e >> 32) as usize, (e & 0xffff_ffff) as u32)),
    );
    let mut by_group: Vec<u64> = pairs
        .iter()
        .map(|&e| ((e & 0xffff_ffff) - 1) << 32 | ((e >> 32) + 1))
        .collect();
    drop(pairs);
    by_group.sort_unstable();
    *members = Csr::from_sorted_pairs(
        groups.len(),
        by_group
            .iter()
            .map(|&e| ((e >> 32) as usize, (e & 0xffff_ffff) as u32)),
    );
    for (i, g) in groups.iter_mut().enumerate() {
        g.members_count = members.of(i as u32 + 1).len() as u32;
    }
    big
}

/// Hidden friendships: `hidden_friends_share` of active users hide up to 30 of their friends
/// (VK's cap for years). The simulator hides such a friendship from both users' lists as
/// others see them (VK hides it from the hider's list only: this is the harsher reading, and it
/// keeps the truth one set of edges). Named users neither hide nor are hidden. Returns the
/// visible adjacency.
fn hide_friendships(cfg: &SimConfig, named: &NamedUsers, users: &[User], friends: &Csr) -> Csr {
    let n = users.len();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x41dd_e4f7);
    let mut hidden: std::collections::HashSet<u64> = std::collections::HashSet::new();
    // The loner hides all of its friendships, whatever the share.
    if users.len() >= named.loner as usize {
        hidden.extend(
            friends
                .of(named.loner)
                .iter()
                .map(|&f| edge(named.loner, f)),
        );
    }
    for (i, user) in users.iter().enumerate() {
        if cfg.hidden_friends_share == 0.0 {
            break;
        }
        let id = i as u32 + 1;
        if id <= named.celebrity
            || user.deactivated.is_some()
            || !rng.random_bool(cfg.hidden_friends_share)
        {
            continue;
        }
        let list = friends.of(id);
        let candidates: Vec<u32> = list
            .iter()
            .copied()
            .filter(|&f| f > named.celebrity)
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let k = rng.random_range(1..=candidates.len().min(30));
        for _ in 0..k {
            let f = candidates[rng.random_range(0..candidates.len())];
            hidden.insert(edge(id, f));
        }
    }
    Csr::from_sorted_pairs(
        n,
        (1..=n as u32).flat_map(|id| {
            let hidden = &hidden;
            friends
                .of(id)
                .iter()
                .filter(move |&&f| !hidden.contains(&edge(id, f)))
                .map(move |&f| (id as usize - 1, f))
        }),
    )
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Builds a symmetric adjacency from sorted, deduplicated packed edges. Each list comes out
/// sorted: a node's smaller neighbours are pushed (in order) before its larger ones.
fn symmetric_csr(n: usize, edges: &[u64]) -> Csr {
    let mut off = vec![0usize; n + 1];
    for &e in edges {
        off[(e >> 32) as usize] += 1;
        off[(e & 0xffff_ffff) as usize] += 1;
    }
    for i in 0..n {
        off[i + 1] += off[i];
    }
    let mut fill = off.clone();
    let mut ids = vec![0u32; edges.len() * 2];
    for &e in edges {
        let a = (e >> 32) as u32;
        let b = (e & 0xffff_ffff) as u32;
        ids[fill[a as usize - 1]] = b;
        fill[a as usize - 1] += 1;
        ids[fill[b as usize - 1]] = a;
        fill[b as usize - 1] += 1;
    }
    Csr { off, ids }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SimConfig {
        SimConfig {
            users: 20_000,
            groups: 500,
            ..SimConfig::default()
        }
    }

    #[test]
    fn generation_is_deterministic_and_symmetric() {
        let g1 = Graph::generate(&small());
        let g2 = Graph::generate(&small());
        assert_eq!(g1.friends.ids, g2.friends.ids);
        assert_eq!(g1.followers.ids, g2.followers.ids);
        for id in 1..=g1.n_users() {
            let list = g1.friends.of(id);
            assert!(
                list.windows(2).all(|w| w[0] < w[1]),
                "sorted, no duplicates"
            );
            assert!(list.len() <= MAX_FRIENDS);
            for &f in list {
                assert!(g1.are_friends(f, id), "{id} -> {f} is symmetric");
            }
        }
    }

    #[test]
    fn degrees_are_heavy_tailed_and_named_users_hold() {
        let g = Graph::generate(&small());
        let n = g.n_users() as usize;
        let under_500 = (1..=g.n_users())
            .filter(|&id| g.friends.of(id).len() < 500)
            .count();
        assert!(under_500 * 100 / n >= 95, "most users under 500 friends");
        assert!(g.friends.of(g.named.hub).len() > 5_000);
        assert!(g.users[g.named.closed as usize - 1].is_closed);
        assert!(g.are_friends(g.named.closed, g.named.closed_friend));
        assert_eq!(g.resolve("sim_hub"), Some(Resolved::User(1)));
        assert_eq!(g.resolve("id7"), Some(Resolved::User(7)));
        // Clustering: the open user has friends with mutual friends.
        let open = g.friends.of(g.named.open);
        let with_mutual = open
            .iter()
            .filter(|&&f| {
                g.friends
                    .of(f)
                    .iter()
                    .any(|x| open.binary_search(x).is_ok())
            })
            .count();
        assert!(
            with_mutual * 2 > open.len(),
            "clustering: {with_mutual}/{}",
            open.len()
        );
    }

    /// Checks every named community has the properties its doc promises.
    fn check_named_communities(g: &Graph) {
        let n = g.named_communities;
        let grp = |id: u32| g.group(id).unwrap();
        let outsider = |id: u32| !g.is_member(id, n.admin_user);
        assert_eq!(n.admin_user, g.named.open);
        assert_eq!(grp(n.suggest).wall_mode(), WallMode::Suggestions);
        assert_eq!(grp(n.suggest).is_closed, 0);
        assert_eq!(grp(n.admin).wall_mode(), WallMode::Closed);
        assert_eq!(g.admin_level(n.admin, n.admin_user), Some(3));
        assert_eq!(grp(n.wall_closed).wall_mode(), WallMode::Closed);
        assert_eq!(grp(n.open_wall).wall_mode(), WallMode::Open);
        assert!(grp(n.screen_name).has_custom_screen_name());
        assert_eq!(grp(n.screen_name).wall_mode(), WallMode::Open);
        assert_eq!(grp(n.closed).is_closed, 1);
        assert_eq!(grp(n.private).is_closed, 2);
        assert!(outsider(n.closed) && outsider(n.private));
        assert!(grp(n.deactivated).deactivated.is_some());
        for id in [
            n.suggest,
            n.admin,
            n.wall_closed,
            n.open_wall,
            n.screen_name,
            n.closed,
            n.private,
        ] {
            assert!(grp(id).deactivated.is_none(), "community {id} is alive");
        }
        for (&gid, managers) in &g.admins {
            for &(user, level) in managers {
                assert!((1..=3).contains(&level));
                assert!(
                    user > g.named.loner
                        || (user == n.admin_user && gid == n.admin)
                        || (user == g.named.hub && gid == n.busy),
                    "named users manage nothing but the admin and busy communities"
                );
            }
        }
        assert_eq!(grp(n.busy).kind, GroupKind::Page);
        assert_eq!(grp(n.busy).is_closed, 0);
        assert!(grp(n.busy).deactivated.is_none() && n.busy != n.big);
        assert_eq!(g.admin_level(n.busy, g.named.hub), Some(3));
        let level_3 = g.admins[&n.busy].iter().filter(|m| m.1 == 3).count();
        assert_eq!(level_3, 1, "the hub is busy's only administrator");
        assert_eq!(grp(n.big).is_closed, 0);
        assert!(grp(n.big).deactivated.is_none());
        assert_eq!(
            g.resolve(&grp(n.screen_name).screen_name),
            Some(Resolved::Group(n.screen_name))
        );
    }

    #[test]
    fn named_communities_are_found_in_real_graphs_and_made_in_tiny_ones() {
        for cfg in [small(), SimConfig::small()] {
            let g = Graph::generate(&cfg);
            check_named_communities(&g);
            assert!(
                g.named_communities_made.is_empty(),
                "{:?}",
                g.named_communities_made
            );
            let managed = g.admins.values().filter(|m| !m.is_empty()).count();
            assert!(
                managed * 10 > g.groups.len() * 9,
                "most communities have managers"
            );
        }
        let tiny = Graph::generate(&SimConfig {
            users: 100,
            groups: 30,
            deactivated_groups_share: 0.0,
            ..SimConfig::default()
        });
        check_named_communities(&tiny);
        assert!(tiny.named_communities_made.contains(&"deactivated"));
    }

    #[test]
    fn the_big_community_gets_exactly_its_members_in_both_adjacencies() {
        let base = Graph::generate(&SimConfig::small());
        let cfg = SimConfig {
            big_community_members: 9_000,
            ..SimConfig::small()
        };
        let g = Graph::generate(&cfg);
        let big = g.named_communities.big;
        assert_eq!(g.members.of(big).len(), 9_000);
        assert_eq!(g.group(big).unwrap().members_count, 9_000);
        assert_eq!(g.group(big).unwrap().kind, GroupKind::Page);
        for &u in g.members.of(big) {
            assert!(g.user(u).unwrap().deactivated.is_none());
            assert!(g.subscriptions.of(u).binary_search(&big).is_ok());
        }
        let subscribed = (1..=g.n_users())
            .filter(|&u| g.subscriptions.of(u).binary_search(&big).is_ok())
            .count();
        assert_eq!(subscribed, 9_000);
        // Without the setting the big community is the most-followed open one, and nothing moves.
        let most = (1..=base.groups.len() as u32)
            .filter(|&id| {
                let x = base.group(id).unwrap();
                x.is_closed == 0 && x.deactivated.is_none()
            })
            .map(|id| base.members.of(id).len())
            .max()
            .unwrap();
        assert_eq!(base.members.of(base.named_communities.big).len(), most);
    }
}
