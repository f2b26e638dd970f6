//! Walls, comments, likes and reposts of communities, generated lazily and deterministically
//! per community from (seed, group id) on first use and cached: a graph of 10,000 communities
//! would otherwise draw millions of comments nobody reads. Post ids run 1..=k per owner (newest
//! = k) and comment ids per owner across all its posts, so ids collide across communities as
//! on VK: key by (owner_id, id). Counts are heavy-tailed (most communities up to about 60 posts,
//! a few hundreds; most posts a handful of likes and comments); likes come mostly from the
//! community's members. The named `busy` community gets forced parameters so its newest post
//! always has more than 1,000 likes, more than 100 top-level comments, a thread of more than 10
//! replies and reposts. The methods reading these walls live here too: wall.get,
//! wall.getComments, likes.getList, wall.getReposts.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use crate::error::VkError;
use crate::graph::{pareto, Graph, Resolved};
use crate::methods::{Caller, Params};
use crate::state::{lock, Sim};

/// One comment of a generated post.
#[derive(Debug, Clone)]
pub(crate) struct Comment {
    /// Unique per community, across all its posts.
    pub id: u32,
    /// The top-level comment a reply answers; `None` for a top-level comment.
    pub parent: Option<u32>,
    /// The author; 0 for a deleted comment.
    pub from_id: u32,
    pub date: u64,
    pub text: String,
    pub likes: u32,
    /// Deleted top-level comments stay because they have replies (as on VK).
    pub deleted: bool,
}

/// One repost: who shared the post, when, and the id of the copy on its wall.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Repost {
    pub user: u32,
    pub date: u64,
    pub post_id: u32,
}

/// One generated post of a community wall.
#[derive(Debug, Clone)]
pub(crate) struct GenPost {
    pub id: u32,
    /// `-group`, or the user who posted on an open wall.
    pub from_id: i64,
    pub date: u64,
    pub text: String,
    pub signer_id: Option<u32>,
    /// The manager who published it (shown only to editors and administrators).
    pub created_by: Option<u32>,
    pub views: u32,
    /// Distinct users, in the order they liked.
    pub likes: Vec<u32>,
    pub reposts: Vec<Repost>,
    /// Top-level comments and replies, in id order.
    pub comments: Vec<Comment>,
}

impl GenPost {
    /// Comments VK counts on the post: every comment but the deleted ones, replies included.
    fn live_comments(&self) -> usize {
        self.comments.iter().filter(|c| !c.deleted).count()
    }
}

/// One community's generated wall, newest post first.
#[derive(Debug)]
pub(crate) struct CommunityWall {
    pub posts: Vec<GenPost>,
}

impl CommunityWall {
    fn post(&self, id: i64) -> Option<&GenPost> {
        let k = self.posts.len() as i64;
        // Newest first with ids k..=1: post `id` sits at index k - id.
        (1..=k)
            .contains(&id)
            .then(|| &self.posts[(k - id) as usize])
    }
}

/// The generated walls, each made on first use.
pub(crate) struct Content {
    seed: u64,
    /// Dates are before this instant (the simulator's start, unix seconds).
    anchor: u64,
    active: Vec<u32>,
    walls: Mutex<HashMap<u32, Arc<CommunityWall>>>,
}

/// How much a wall holds: drawn, or forced for `busy`.
struct Shape {
    posts: usize,
    /// For the newest post: likes, top-level comments, replies of its first comment, reposts.
    newest: Option<(usize, usize, usize, usize)>,
}

const WORDS: &[&str] = &[
    "today",
    "news",
    "photo",
    "concert",
    "match",
    "recipe",
    "review",
    "contest",
    "meeting",
    "update",
    "story",
    "question",
    "announcement",
    "weekend",
    "release",
    "tips",
];

fn words(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A heavy-tailed count: 0 often, a handful usually, up to `cap`.
fn tail(rng: &mut ChaCha8Rng, alpha: f64, cap: f64) -> usize {
    (pareto(rng, 1.0, alpha, cap + 1.0) - 1.0) as usize
}

impl Content {
    /// Walls of `graph`, dated before `anchor` (unix seconds).
    pub fn new(seed: u64, anchor: u64, graph: &Graph) -> Content {
        Content {
            seed,
            anchor,
            active: (1..=graph.n_users())
                .filter(|&u| graph.user(u).is_some_and(|x| x.deactivated.is_none()))
                .collect(),
            walls: Mutex::new(HashMap::new()),
        }
    }

    /// The wall of community `gid` (empty for unknown or deactivated communities).
    pub fn wall(&self, g: &Graph, gid: u32) -> Arc<CommunityWall> {
        if let Some(w) = lock(&self.walls).get(&gid) {
            return Arc::clone(w);
        }
        let wall = Arc::new(self.generate(g, gid));
        Arc::clone(lock(&self.walls).entry(gid).or_insert(wall))
    }

    /// Distinct users: mostly members, the rest any active users (bounded tries, so a small
    /// graph gives fewer rather than looping).
    fn draw_users(&self, rng: &mut ChaCha8Rng, members: &[u32], n: usize) -> Vec<u32> {
        let mut seen = HashSet::with_capacity(n);
        let mut out = Vec::with_capacity(n);
        let mut tries = 0;
        while out.len() < n && tries < n * 20 + 100 {
            tries += 1;
            let u = if !members.is_empty() && rng.random_bool(0.8) {
                members[rng.random_range(0..members.len())]
            } else if !self.active.is_empty() {
                self.active[rng.random_range(0..self.active.len())]
            } else {
                continue;
            };
            if seen.insert(u) {
                out.push(u);
            }
        }
        out
    }

    fn generate(&self, g: &Graph, gid: u32) -> CommunityWall {
        let Some(grp) = g.group(gid).filter(|x| x.deactivated.is_none()) else {
            return CommunityWall { posts: Vec::new() };
        };
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed ^ 0xc0_47e4_7000 ^ u64::from(gid).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let drawn = tail(&mut rng, 1.0, 400.0) / 2;
        let shape = if gid == g.named_communities.busy {
            Shape {
                posts: drawn.max(rng.random_range(30..=45)),
                newest: Some((
                    rng.random_range(1_100..=1_400),
                    rng.random_range(110..=140),
                    rng.random_range(12..=20),
                    rng.random_range(3..=8),
                )),
            }
        } else {
            Shape {
                posts: drawn,
                newest: None,
            }
        };
        let members = g.members.of(gid);
        let managers = g.admins.get(&gid).cloned().unwrap_or_default();
        let publisher = managers
            .iter()
            .find(|(_, level)| *level >= 2)
            .or(managers.first())
            .map(|(u, _)| *u);
        let owner = -i64::from(gid);
        // Dates from the newest post back; each post's comments fall between it and the anchor.
        let mut dates = Vec::with_capacity(shape.posts);
        let mut date = self.anchor.saturating_sub(rng.random_range(600..86_400));
        for _ in 0..shape.posts {
            dates.push(date);
            date = date.saturating_sub(rng.random_range(1_800..3 * 86_400));
        }
        dates.reverse();
        let mut next_comment = 0u32;
        let mut posts = Vec::with_capacity(shape.posts);
        for (i, &date) in dates.iter().enumerate() {
            let id = i as u32 + 1;
            let forced = (id as usize == shape.posts)
                .then_some(shape.newest)
                .flatten();
            let by_user = grp.wall_open && forced.is_none() && rng.random_bool(0.3);
            let from_id = if by_user {
                self.draw_users(&mut rng, members, 1)
                    .first()
                    .map_or(owner, |&u| i64::from(u))
            } else {
                owner
            };
            let signer_id = (from_id == owner && !members.is_empty() && rng.random_bool(0.15))
                .then(|| members[rng.random_range(0..members.len())]);
            let created_by = if from_id == owner { publisher } else { None };
            let (n_likes, n_top, n_thread, n_reposts) = forced.unwrap_or_else(|| {
                (
                    tail(&mut rng, 0.9, 3_000.0),
                    tail(&mut rng, 1.1, 300.0),
                    0,
                    tail(&mut rng, 1.6, 200.0),
                )
            });
            let likes = self.draw_users(&mut rng, members, n_likes);
            let span = self.anchor.saturating_sub(date).max(1);
            let reposts = self
                .draw_users(&mut rng, members, n_reposts)
                .into_iter()
                .map(|user| Repost {
                    user,
                    date: date + rng.random_range(0..span),
                    post_id: 1 + (user.wrapping_mul(31) ^ gid.wrapping_mul(7) ^ id) % 5_000,
                })
                .collect();
            // Top-level comments first, then the replies of each (ids grow with time).
            let mut comments = Vec::new();
            let mut tops = Vec::with_capacity(n_top);
            for t in 0..n_top {
                next_comment += 1;
                let author = self.draw_users(&mut rng, members, 1);
                let Some(&from) = author.first() else { break };
                let replies = if t == 0 && forced.is_some() {
                    n_thread
                } else if rng.random_bool(0.25) {
                    1 + tail(&mut rng, 1.3, 40.0)
                } else {
                    0
                };
                let deleted = replies > 0 && !(t == 0 && forced.is_some()) && rng.random_bool(0.1);
                tops.push((next_comment, replies));
                comments.push(Comment {
                    id: next_comment,
                    parent: None,
                    from_id: if deleted { 0 } else { from },
                    date: 0,
                    text: if deleted {
                        String::new()
                    } else {
                        format!("{} {}", words(&mut rng, 2), next_comment)
                    },
                    likes: tail(&mut rng, 1.2, 500.0) as u32,
                    deleted,
                });
            }
            for (parent, replies) in tops {
                for _ in 0..replies {
                    let author = self.draw_users(&mut rng, members, 1);
                    let Some(&from) = author.first() else { break };
                    next_comment += 1;
                    comments.push(Comment {
                        id: next_comment,
                        parent: Some(parent),
                        from_id: from,
                        date: 0,
                        text: format!("re: {} {}", words(&mut rng, 2), next_comment),
                        likes: tail(&mut rng, 1.4, 100.0) as u32,
                        deleted: false,
                    });
                }
            }
            let m = comments.len() as u64;
            for (k, c) in comments.iter_mut().enumerate() {
                c.date = date + span * (k as u64 + 1) / (m + 1);
            }
            let views = likes.len() as u32 * rng.random_range(2..12) + rng.random_range(10..1_000);
            posts.push(GenPost {
                id,
                from_id,
                date,
                text: format!("{} #{id}", words(&mut rng, 4)),
                signer_id,
                created_by,
                views,
                likes,
                reposts,
                comments,
            });
        }
        posts.reverse();
        CommunityWall { posts }
    }
}

/// The community a request's `owner_id` names (negative), after VK's checks: unknown → 100,
/// deactivated → 15, closed/private and the caller neither member nor manager → 15.
fn readable_community(sim: &Sim, c: &Caller, gid_raw: i64) -> Result<u32, VkError> {
    let g = &*sim.graph;
    let gid = u32::try_from(-gid_raw)
        .ok()
        .filter(|&gid| g.group(gid).is_some())
        .ok_or_else(|| VkError::param("owner_id is invalid"))?;
    let grp = g.group(gid).expect("checked");
    if grp.deactivated.is_some() {
        return Err(VkError::group_deactivated());
    }
    if grp.is_closed != 0 && !sim.is_member(gid, c.owner) && g.admin_level(gid, c.owner).is_none() {
        return Err(VkError::wall_members_only());
    }
    Ok(gid)
}

fn int(p: &Params, key: &str) -> Result<Option<i64>, VkError> {
    p.get(key)
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| VkError::param(format!("{key} not integer")))
        })
        .transpose()
}

fn required(p: &Params, key: &str) -> Result<i64, VkError> {
    int(p, key)?.ok_or_else(|| VkError::param(format!("{key} is undefined")))
}

/// The owner a request names: `owner_id`, else the caller's own wall.
fn owner(p: &Params, c: &Caller) -> Result<i64, VkError> {
    Ok(int(p, "owner_id")?.unwrap_or(i64::from(c.owner)))
}

/// The post `post_id` of community wall `owner_id` the caller may read.
fn readable_post(
    sim: &Sim,
    c: &Caller,
    owner_id: i64,
    post_id: i64,
    what: &str,
) -> Result<(u32, Arc<CommunityWall>), VkError> {
    if owner_id >= 0 {
        // Users' walls hold no generated posts.
        return Err(VkError::param(format!("{what} is invalid")));
    }
    let gid = readable_community(sim, c, owner_id)?;
    let wall = sim.content.wall(&sim.graph, gid);
    if wall.post(post_id).is_none() {
        return Err(VkError::param(format!("{what} is invalid")));
    }
    Ok((gid, wall))
}

/// A generated post as wall.get renders it (`created_by` only for editors and administrators).
fn post_object(g: &Graph, gid: u32, post: &GenPost, viewer: u32) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(post.id));
    o.insert("owner_id".into(), json!(-i64::from(gid)));
    o.insert("from_id".into(), json!(post.from_id));
    if let Some(signer) = post.signer_id {
        o.insert("signer_id".into(), json!(signer));
    }
    if let Some(by) = post.created_by {
        if g.admin_level(gid, viewer).is_some_and(|level| level >= 2) {
            o.insert("created_by".into(), json!(by));
        }
    }
    o.insert("date".into(), json!(post.date));
    o.insert("post_type".into(), json!("post"));
    o.insert("text".into(), json!(post.text));
    o.insert("marked_as_ads".into(), json!(0));
    o.insert("attachments".into(), json!([]));
    o.insert(
        "comments".into(),
        json!({"count": post.live_comments(), "can_post": 1}),
    );
    o.insert(
        "likes".into(),
        json!({"count": post.likes.len(), "user_likes": 0, "can_like": 1}),
    );
    o.insert(
        "reposts".into(),
        json!({"count": post.reposts.len(), "user_reposted": 0}),
    );
    o.insert("views".into(), json!({"count": post.views}));
    Value::Object(o)
}

/// `wall.get`: `owner_id` or `domain`, `offset`, `count` (default 20, clamped to 100), `filter`
/// all/owner/others. A user's wall answers an empty list (the simulator generates none).
pub(crate) fn wall_get(sim: &Sim, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let g = &*sim.graph;
    let owner_id = match (int(p, "owner_id")?, p.get("domain")) {
        (Some(id), _) => id,
        (None, Some(domain)) => match g.resolve(domain) {
            Some(Resolved::Group(gid)) => -i64::from(gid),
            Some(Resolved::User(u)) => i64::from(u),
            None => return Err(VkError::param("domain is invalid")),
        },
        (None, None) => i64::from(c.owner),
    };
    let count = p.count(20, 100)?;
    let offset = p.offset()?;
    let filter = p.get("filter").unwrap_or("all");
    if !["all", "owner", "others"].contains(&filter) {
        return Err(VkError::param(format!(
            "filter {filter:?} is not supported"
        )));
    }
    if owner_id >= 0 {
        return Ok(json!({"count": 0, "items": []}));
    }
    let gid = readable_community(sim, c, owner_id)?;
    let wall = sim.content.wall(g, gid);
    let kept: Vec<&GenPost> = wall
        .posts
        .iter()
        .filter(|post| match filter {
            "owner" => post.from_id == owner_id,
            "others" => post.from_id != owner_id,
            _ => true,
        })
        .collect();
    let items: Vec<Value> = kept
        .iter()
        .skip(offset)
        .take(count)
        .map(|post| post_object(g, gid, post, c.owner))
        .collect();
    Ok(json!({"count": kept.len(), "items": items}))
}

/// A comment as wall.getComments renders it.
fn comment_object(
    c: &Comment,
    owner_id: i64,
    post_id: u32,
    parent: Option<&Comment>,
    need_likes: bool,
) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(c.id));
    o.insert("from_id".into(), json!(c.from_id));
    o.insert("post_id".into(), json!(post_id));
    o.insert("owner_id".into(), json!(owner_id));
    o.insert(
        "parents_stack".into(),
        json!(parent.map(|x| vec![x.id]).unwrap_or_default()),
    );
    o.insert("date".into(), json!(c.date));
    o.insert("text".into(), json!(c.text));
    if c.deleted {
        o.insert("deleted".into(), json!(true));
    }
    if let Some(parent) = parent {
        if parent.from_id != 0 {
            o.insert("reply_to_user".into(), json!(parent.from_id));
        }
        o.insert("reply_to_comment".into(), json!(parent.id));
    }
    if need_likes {
        o.insert(
            "likes".into(),
            json!({"count": c.likes, "user_likes": 0, "can_like": 1}),
        );
    }
    Value::Object(o)
}

/// Comments in id order, or newest first for `sort = desc`.
fn ordered(mut list: Vec<&Comment>, desc: bool) -> Vec<&Comment> {
    if desc {
        list.reverse();
    }
    list
}

/// `wall.getComments`: `owner_id`, `post_id`, `offset`, `count` (default 10, clamped to 100),
/// `sort` asc/desc, `need_likes`, `comment_id` (page that comment's replies) and
/// `thread_items_count` 0..=10 (each top-level comment's first replies).
pub(crate) fn wall_get_comments(sim: &Sim, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let owner_id = owner(p, c)?;
    let post_id = required(p, "post_id")?;
    let count = p.count(10, 100)?;
    let offset = p.offset()?;
    let desc = match p.get("sort") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(VkError::param(format!("sort {other:?} is not supported"))),
    };
    let thread_items = int(p, "thread_items_count")?.unwrap_or(0);
    if !(0..=10).contains(&thread_items) {
        return Err(VkError::param(
            "thread_items_count should be not more than 10",
        ));
    }
    let need_likes = p.flag("need_likes");
    let comment_id = int(p, "comment_id")?;
    let (_, wall) = readable_post(sim, c, owner_id, post_id, "post_id")?;
    let post = wall.post(post_id).expect("checked");
    let by_id: HashMap<u32, &Comment> = post.comments.iter().map(|x| (x.id, x)).collect();
    let replies_of = |id: u32| post.comments.iter().filter(move |x| x.parent == Some(id));
    let (level, items): (usize, Vec<Value>) = match comment_id {
        Some(cid) => {
            let parent = u32::try_from(cid)
                .ok()
                .and_then(|id| by_id.get(&id).copied())
                .filter(|x| x.parent.is_none())
                .ok_or_else(|| VkError::param("comment_id is invalid"))?;
            let list = ordered(replies_of(parent.id).collect(), desc);
            let items = list
                .iter()
                .skip(offset)
                .take(count)
                .map(|r| comment_object(r, owner_id, post.id, Some(parent), need_likes))
                .collect();
            (list.len(), items)
        }
        None => {
            let list = ordered(
                post.comments
                    .iter()
                    .filter(|x| x.parent.is_none())
                    .collect(),
                desc,
            );
            let items = list
                .iter()
                .skip(offset)
                .take(count)
                .map(|top| {
                    let mut o = comment_object(top, owner_id, post.id, None, need_likes);
                    let replies: Vec<&Comment> = replies_of(top.id).collect();
                    let shown: Vec<Value> = replies
                        .iter()
                        .take(thread_items as usize)
                        .map(|r| comment_object(r, owner_id, post.id, Some(top), need_likes))
                        .collect();
                    o["thread"] = json!({
                        "count": replies.len(),
                        "items": shown,
                        "can_post": true,
                        "show_reply_button": true,
                        "groups_can_post": true,
                    });
                    o
                })
                .collect();
            (list.len(), items)
        }
    };
    Ok(json!({
        "count": post.comments.len(),
        "current_level_count": level,
        "can_post": true,
        "show_reply_button": true,
        "groups_can_post": true,
        "items": items,
    }))
}

/// `likes.getList`: `type` (only `post`), `owner_id`, `item_id`, `filter` likes/copies,
/// `offset`, `count` (default 100, clamped to 1000): user ids in the order they liked.
pub(crate) fn likes_get_list(sim: &Sim, c: &Caller, p: &Params) -> Result<Value, VkError> {
    match p.get("type") {
        None => return Err(VkError::param("type is undefined")),
        Some("post") => {}
        Some(other) => return Err(VkError::param(format!("type {other:?} is not supported"))),
    }
    let copies = match p.get("filter") {
        None | Some("likes") => false,
        Some("copies") => true,
        Some(other) => return Err(VkError::param(format!("filter {other:?} is not supported"))),
    };
    let owner_id = owner(p, c)?;
    let item_id = required(p, "item_id")?;
    let count = p.count(100, 1000)?;
    let offset = p.offset()?;
    let (_, wall) = readable_post(sim, c, owner_id, item_id, "item_id")?;
    let post = wall.post(item_id).expect("checked");
    let users: Vec<u32> = if copies {
        post.reposts.iter().map(|r| r.user).collect()
    } else {
        post.likes.clone()
    };
    let items: Vec<u32> = users.iter().copied().skip(offset).take(count).collect();
    Ok(json!({"count": users.len(), "items": items}))
}

/// `wall.getReposts`: `owner_id`, `post_id`, `offset`, `count` (default 20, clamped to 1000).
/// Only the community's administrators (level 3) get the list; everyone else 15.
pub(crate) fn wall_get_reposts(sim: &Sim, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let owner_id = owner(p, c)?;
    let post_id = required(p, "post_id")?;
    let count = p.count(20, 1000)?;
    let offset = p.offset()?;
    if owner_id >= 0 {
        return Err(VkError::param("post_id is invalid"));
    }
    let gid = readable_community(sim, c, owner_id)?;
    if sim.graph.admin_level(gid, c.owner) != Some(3) {
        return Err(VkError::new(15, "Access denied"));
    }
    let (_, wall) = readable_post(sim, c, owner_id, post_id, "post_id")?;
    let post = wall.post(post_id).expect("checked");
    let original = json!({
        "id": post.id,
        "owner_id": owner_id,
        "from_id": post.from_id,
        "date": post.date,
        "post_type": "post",
        "text": post.text,
    });
    let items: Vec<Value> = post
        .reposts
        .iter()
        .skip(offset)
        .take(count)
        .map(|r| {
            json!({
                "id": r.post_id,
                "owner_id": r.user,
                "from_id": r.user,
                "date": r.date,
                "post_type": "post",
                "text": "",
                "copy_history": [original.clone()],
            })
        })
        .collect();
    Ok(json!({"items": items, "profiles": [], "groups": []}))
}

/// `/sim/truth/wall`: every generated post of community `gid`, newest first, with its likes,
/// reposts and comments (in id order).
pub(crate) fn wall_truth(sim: &Sim, gid: u32) -> Value {
    let wall = sim.content.wall(&sim.graph, gid);
    let posts: Vec<Value> = wall
        .posts
        .iter()
        .map(|post| {
            json!({
                "id": post.id,
                "owner_id": -i64::from(gid),
                "from_id": post.from_id,
                "date": post.date,
                "text": post.text,
                "signer_id": post.signer_id,
                "created_by": post.created_by,
                "views": post.views,
                "likes": post.likes,
                "reposts": post.reposts.iter().map(|r| r.user).collect::<Vec<_>>(),
                "comments": post.comments.iter().map(|x| json!({
                    "id": x.id,
                    "parent_id": x.parent,
                    "from_id": x.from_id,
                    "date": x.date,
                    "text": x.text,
                    "likes": x.likes,
                    "deleted": x.deleted,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "group_id": gid,
        "owner_id": -i64::from(gid),
        "count": posts.len(),
        "posts": posts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;

    #[test]
    fn walls_are_deterministic_heavy_tailed_and_busy_is_busy() {
        let g = Graph::generate(&SimConfig {
            users: 4_000,
            groups: 120,
            ..SimConfig::default()
        });
        let a = Content::new(1, 1_700_000_000, &g);
        let b = Content::new(1, 1_700_000_000, &g);
        let mut sizes = Vec::new();
        for gid in 1..=g.groups.len() as u32 {
            let (wa, wb) = (a.wall(&g, gid), b.wall(&g, gid));
            assert_eq!(wa.posts.len(), wb.posts.len());
            for (x, y) in wa.posts.iter().zip(&wb.posts) {
                assert_eq!((x.id, x.date, &x.likes), (y.id, y.date, &y.likes));
            }
            for (k, post) in wa.posts.iter().enumerate() {
                assert_eq!(post.id as usize, wa.posts.len() - k, "newest first");
                assert!(post.views as usize >= post.likes.len());
                assert!(post.date < 1_700_000_000);
                let distinct: HashSet<_> = post.likes.iter().collect();
                assert_eq!(distinct.len(), post.likes.len());
            }
            assert!(wa.posts.windows(2).all(|w| w[0].date > w[1].date));
            sizes.push(wa.posts.len());
        }
        sizes.sort_unstable();
        assert!(
            sizes[sizes.len() / 2] <= 60,
            "median {}",
            sizes[sizes.len() / 2]
        );
        let busy = a.wall(&g, g.named_communities.busy);
        assert!(busy.posts.len() >= 25);
        let newest = &busy.posts[0];
        assert!(newest.likes.len() > 1_000);
        let tops: Vec<_> = newest
            .comments
            .iter()
            .filter(|c| c.parent.is_none())
            .collect();
        assert!(tops.len() > 100);
        assert!(tops.iter().any(|t| newest
            .comments
            .iter()
            .filter(|r| r.parent == Some(t.id))
            .count()
            > 10));
        assert!(!newest.reposts.is_empty());
        let ids: Vec<u32> = busy
            .posts
            .iter()
            .rev()
            .flat_map(|p| p.comments.iter().map(|c| c.id))
            .collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "comment ids unique per owner"
        );
    }
}
