//! INTERACTIONS: who liked, commented on and reposted each community's latest posts, and the
//! per-user roll-up (`active_audience`).
//!
//! Two phases, as the sibling service scanned: the fast scan asks the first page of every list
//! at once (1,000 likes, 100 comments with 10 replies each, 1,000 reposts), 25 calls per
//! execute; the deep scan pages on only for the posts above those limits (both are
//! [`super::scan::scan`]'s rounds). Reposts (wall.getReposts) are read only where the author's
//! token administers the community (`admin_level` 3), on that token; elsewhere they are a
//! documented skip (`no_admin_token`), not a failure.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::json;

use super::output::{
    active_audience, commenters, comments as comment_cols, reactions, CommunityResult,
};
use super::posts::{posts_table, read_walls};
use super::scan::{scan, Ending, List, Persistence, Scanned};
use super::targets::Target;
use super::wall::{comments, decoded, Post};
use super::{results_for, Collected, CommunityError};
use crate::events::CommunityTaskCreated;
use crate::tables::{ColumnData, Table};
use crate::vk::orchestrator::Session;

/// Users per likes.getList and reposts per wall.getReposts (VK's maximum).
pub const REACTIONS_PAGE: u64 = 1000;

/// The manager level that may read a post's reposts.
pub const REPOSTS_ADMIN_LEVEL: u8 = 3;

/// A repost as wall.getReposts lists it: a post on the reposter's wall.
#[derive(Debug, Deserialize)]
struct Repost {
    #[serde(default)]
    from_id: i64,
}

/// Reads the interactions with the latest posts of every readable target.
pub async fn collect(
    task: &CommunityTaskCreated,
    session: &mut Session,
    targets: &[Target],
    persistence: Persistence,
) -> Result<Collected, CommunityError> {
    let mut results = results_for(targets);
    let mut posts = read_walls(session, targets, &mut results, task, persistence).await?;

    let likes_of: Vec<usize> = (0..posts.len())
        .filter(|&k| posts[k].1.likes.count > 0)
        .collect();
    let lists: Vec<List> = likes_of
        .iter()
        .map(|&k| {
            let p = &posts[k].1;
            List::new(
                "likes.getList",
                json!({"type": "post", "owner_id": p.owner_id, "item_id": p.id}),
                REACTIONS_PAGE,
            )
        })
        .collect();
    let likes = scan(session, &lists, persistence).await?;
    let asked: Vec<(i64, i64, u64)> = posts
        .iter()
        .map(|(_, p)| (p.owner_id, p.id, p.comments.count))
        .collect();
    let comment_lists = comments(session, &asked, true, persistence).await?;
    let reposts = read_reposts(session, targets, &posts, persistence).await?;

    // Per post: users who liked, commented (with counts), reposted.
    let mut liked: Vec<Vec<i64>> = vec![Vec::new(); posts.len()];
    for (&k, list) in likes_of.iter().zip(likes) {
        let i = posts[k].0;
        let users = distinct(list.items.iter().filter_map(|v| v.as_i64()));
        account(
            &mut results[i],
            reactions::LIKES,
            posts[k].1.likes.count,
            users.len(),
            &list,
        );
        liked[k] = users;
    }
    let mut commented: Vec<BTreeMap<i64, i64>> = vec![BTreeMap::new(); posts.len()];
    for (k, got) in comment_lists.into_iter().enumerate() {
        let i = posts[k].0;
        let entry = results[i]
            .lists
            .entry(comment_cols::TABLE.into())
            .or_default();
        entry.add(got.expected, got.comments.len() as u64, got.failed_pages);
        if got.failed_pages > 0 {
            results[i].fail("incomplete", got.error_code);
        }
        for placed in got.comments.values() {
            if placed.comment.from_id > 0 && !placed.comment.deleted {
                *commented[k].entry(placed.comment.from_id).or_default() += 1;
            }
        }
    }
    let mut reposted: Vec<Vec<i64>> = vec![Vec::new(); posts.len()];
    for (i, target) in targets.iter().enumerate() {
        if target.readable().is_some() && target.admin_level < REPOSTS_ADMIN_LEVEL {
            let entry = results[i]
                .lists
                .entry(reactions::REPOSTS.into())
                .or_default();
            entry.skipped = Some("no_admin_token".into());
        }
    }
    for (k, list) in reposts {
        let i = posts[k].0;
        let users: Vec<i64> = distinct(
            decoded::<Repost>("wall.getReposts", &list)?
                .into_iter()
                .map(|r| r.from_id)
                .filter(|&u| u > 0),
        );
        account(
            &mut results[i],
            reactions::REPOSTS,
            posts[k].1.reposts.count,
            users.len(),
            &list,
        );
        reposted[k] = users;
    }

    // Rows of the communities that read whole.
    let keep: Vec<usize> = (0..posts.len())
        .filter(|&k| results[posts[k].0].complete())
        .collect();
    let mut audience: BTreeMap<i64, Roll> = BTreeMap::new();
    let mut like_rows = Triples::default();
    let mut repost_rows = Triples::default();
    let mut commenter_rows = (Triples::default(), Vec::new());
    for &k in &keep {
        let (_, p) = &posts[k];
        let group = -p.owner_id;
        for &u in &liked[k] {
            like_rows.push(p, u);
            audience.entry(u).or_default().likes(group);
        }
        for &u in &reposted[k] {
            repost_rows.push(p, u);
            audience.entry(u).or_default().reposts(group);
        }
        for (&u, &n) in &commented[k] {
            commenter_rows.0.push(p, u);
            commenter_rows.1.push(n);
            audience.entry(u).or_default().comments(group, n);
        }
    }
    posts.retain(|(i, _)| results[*i].complete());
    let tables = vec![
        posts_table(posts.iter().map(|(_, p)| p)),
        like_rows.table(reactions::LIKES),
        repost_rows.table(reactions::REPOSTS),
        commenter_rows
            .0
            .table(commenters::TABLE)
            .with(commenters::COUNT, ColumnData::I64(commenter_rows.1)),
        audience_table(audience),
    ];
    Ok(Collected { tables, results })
}

/// The reposts of the posts of communities the author administers, on the author's token:
/// `(post index, list)`.
async fn read_reposts(
    session: &mut Session,
    targets: &[Target],
    posts: &[(usize, Post)],
    persistence: Persistence,
) -> Result<Vec<(usize, Scanned)>, CommunityError> {
    let wanted: Vec<usize> = (0..posts.len())
        .filter(|&k| {
            targets[posts[k].0].admin_level >= REPOSTS_ADMIN_LEVEL && posts[k].1.reposts.count > 0
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let lists: Vec<List> = wanted
        .iter()
        .map(|&k| {
            let p = &posts[k].1;
            List::new(
                "wall.getReposts",
                json!({"owner_id": p.owner_id, "post_id": p.id}),
                REACTIONS_PAGE,
            )
        })
        .collect();
    // None: the session is on the author's token already.
    let previous = session.to_author("wall.getReposts").await;
    let read = scan(session, &lists, persistence).await;
    if let Some(previous) = previous {
        session.restore(previous);
    }
    Ok(wanted.into_iter().zip(read?).collect())
}

/// Adds a list of `kind` to its community, failing the community when pages were lost.
fn account(
    result: &mut CommunityResult,
    kind: &str,
    expected: u64,
    fetched: usize,
    list: &Scanned,
) {
    let (pages, code) = match &list.ending {
        Ending::Complete => (0, None),
        Ending::Skipped(e) => (1, Some(e.error_code)),
        Ending::Failed { pages, error } => (*pages, Some(error.error_code)),
    };
    result
        .lists
        .entry(kind.to_owned())
        .or_default()
        .add(expected, fetched as u64, pages);
    if pages > 0 {
        result.fail("incomplete", code);
    }
}

fn distinct(ids: impl Iterator<Item = i64>) -> Vec<i64> {
    ids.collect::<BTreeSet<i64>>().into_iter().collect()
}

/// `(owner_id, post_id, user_id)` rows.
#[derive(Default)]
struct Triples {
    owner: Vec<i64>,
    post: Vec<i64>,
    user: Vec<i64>,
}

impl Triples {
    fn push(&mut self, post: &Post, user: i64) {
        self.owner.push(post.owner_id);
        self.post.push(post.id);
        self.user.push(user);
    }

    fn table(self, name: &str) -> Table {
        Table::new(name)
            .with(reactions::OWNER_ID, ColumnData::I64(self.owner))
            .with(reactions::POST_ID, ColumnData::I64(self.post))
            .with(reactions::USER_ID, ColumnData::I64(self.user))
    }
}

/// One user's interactions.
#[derive(Default)]
struct Roll {
    likes: i64,
    comments: i64,
    reposts: i64,
    groups: BTreeSet<i64>,
}

impl Roll {
    fn likes(&mut self, group: i64) {
        self.likes += 1;
        self.groups.insert(group);
    }
    fn reposts(&mut self, group: i64) {
        self.reposts += 1;
        self.groups.insert(group);
    }
    fn comments(&mut self, group: i64, n: i64) {
        self.comments += n;
        self.groups.insert(group);
    }
}

fn audience_table(audience: BTreeMap<i64, Roll>) -> Table {
    let mut cols: HashMap<&str, Vec<i64>> = HashMap::new();
    for (user, roll) in audience {
        cols.entry(active_audience::USER_ID).or_default().push(user);
        cols.entry(active_audience::LIKES)
            .or_default()
            .push(roll.likes);
        cols.entry(active_audience::COMMENTS)
            .or_default()
            .push(roll.comments);
        cols.entry(active_audience::REPOSTS)
            .or_default()
            .push(roll.reposts);
        cols.entry(active_audience::GROUPS)
            .or_default()
            .push(roll.groups.len() as i64);
    }
    let mut table = Table::new(active_audience::TABLE);
    for name in [
        active_audience::USER_ID,
        active_audience::LIKES,
        active_audience::COMMENTS,
        active_audience::REPOSTS,
        active_audience::GROUPS,
    ] {
        table = table.with(name, ColumnData::I64(cols.remove(name).unwrap_or_default()));
    }
    table
}
