//! Walls, read for POSTS and INTERACTIONS: the latest posts of each community (one wall.get
//! of up to 100, 25 communities per execute) and every comment of a post (wall.getComments,
//! 100 a page, paged by `current_level_count`), with thread replies when asked: the first 10
//! of each thread come with their comment (`thread_items_count`), longer threads are paged on
//! their own (`comment_id`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::scan::{scan, Ending, List, Persistence, Scanned};
use super::CommunityError;
use crate::vk::methods::decode;
use crate::vk::orchestrator::Session;

/// Posts per wall.get and comments per wall.getComments (VK's maximum).
pub const WALL_PAGE: u64 = 100;
/// Replies that come with each top-level comment (VK's maximum `thread_items_count`).
pub const THREAD_ITEMS: u64 = 10;

/// VK's `{count}` counters.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Counter {
    /// The count.
    #[serde(default)]
    pub count: u64,
}

/// A post as wall.get gives it.
#[derive(Debug, Clone, Deserialize)]
pub struct Post {
    /// Its id on the owner's wall.
    pub id: i64,
    /// The wall's owner.
    pub owner_id: i64,
    /// Who it is from.
    #[serde(default)]
    pub from_id: i64,
    /// Unix seconds.
    #[serde(default)]
    pub date: i64,
    /// Text.
    #[serde(default)]
    pub text: String,
    /// Likes.
    #[serde(default)]
    pub likes: Counter,
    /// Comments.
    #[serde(default)]
    pub comments: Counter,
    /// Reposts.
    #[serde(default)]
    pub reposts: Counter,
    /// Views, when VK gives them.
    #[serde(default)]
    pub views: Option<Counter>,
    /// The signer.
    #[serde(default)]
    pub signer_id: Option<i64>,
    /// The manager who published it (shown to editors).
    #[serde(default)]
    pub created_by: Option<i64>,
}

/// A comment's thread as it comes with the comment.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Thread {
    /// Replies in the thread.
    #[serde(default)]
    pub count: u64,
    /// The first `thread_items_count` of them.
    #[serde(default)]
    pub items: Vec<Comment>,
}

/// A comment as wall.getComments gives it.
#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    /// Its id (per wall owner).
    pub id: i64,
    /// The commenter (0 when deleted).
    #[serde(default)]
    pub from_id: i64,
    /// Unix seconds.
    #[serde(default)]
    pub date: i64,
    /// Text.
    #[serde(default)]
    pub text: String,
    /// Likes (with `need_likes`).
    #[serde(default)]
    pub likes: Option<Counter>,
    /// Deleted, kept for its replies.
    #[serde(default)]
    pub deleted: bool,
    /// The thread (top-level comments).
    #[serde(default)]
    pub thread: Option<Thread>,
}

/// One comment with where it sits.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The comment.
    pub comment: Comment,
    /// The top-level comment a reply belongs to.
    pub parent: Option<i64>,
}

/// A wall as read: its latest posts.
#[derive(Debug)]
pub struct Wall {
    /// Posts, newest first.
    pub posts: Vec<Post>,
    /// Posts VK has (the wall's `count`), capped at what was asked.
    pub expected: u64,
    /// How the read ended.
    pub ending: Ending,
}

/// The latest `per_group` posts of each of `groups`, in order.
pub async fn walls(
    session: &mut Session,
    groups: &[i64],
    per_group: u32,
    persistence: Persistence,
) -> Result<Vec<Wall>, CommunityError> {
    let lists: Vec<List> = groups
        .iter()
        .map(|g| {
            List::new(
                "wall.get",
                json!({"owner_id": -g, "filter": "all"}),
                WALL_PAGE,
            )
            .limited(u64::from(per_group))
        })
        .collect();
    let mut out = Vec::with_capacity(groups.len());
    for list in scan(session, &lists, persistence).await? {
        let mut posts: Vec<Post> = decoded("wall.get", &list)?;
        // A rescan may repeat posts: keep the first of each id.
        let mut seen = std::collections::HashSet::new();
        posts.retain(|p| seen.insert(p.id));
        posts.truncate(per_group as usize);
        out.push(Wall {
            expected: list.expected.min(u64::from(per_group)),
            posts,
            ending: list.ending,
        });
    }
    Ok(out)
}

/// The comments of one post as read.
#[derive(Debug)]
pub struct Comments {
    /// Top-level comments and (when asked) their replies, by id.
    pub comments: BTreeMap<i64, Placed>,
    /// What VK counts: the post's `comments.count` with replies, else the top-level count.
    pub expected: u64,
    /// Pages lost, over the post's lists.
    pub failed_pages: u64,
    /// The first failure's VK error code.
    pub error_code: Option<i64>,
}

/// Every comment of each post in `posts` (`(owner_id, post_id, comments.count)`), with thread
/// replies when `threads`.
pub async fn comments(
    session: &mut Session,
    posts: &[(i64, i64, u64)],
    threads: bool,
    persistence: Persistence,
) -> Result<Vec<Comments>, CommunityError> {
    let asked: Vec<usize> = (0..posts.len()).filter(|&i| posts[i].2 > 0).collect();
    let lists: Vec<List> = asked
        .iter()
        .map(|&i| {
            let (owner, post, _) = posts[i];
            List::new(
                "wall.getComments",
                json!({
                    "owner_id": owner,
                    "post_id": post,
                    "need_likes": 1,
                    "sort": "asc",
                    "thread_items_count": if threads { THREAD_ITEMS } else { 0 },
                }),
                WALL_PAGE,
            )
            .counted_by("current_level_count")
        })
        .collect();
    let mut out: Vec<Comments> = posts
        .iter()
        .map(|_| Comments {
            comments: BTreeMap::new(),
            expected: 0,
            failed_pages: 0,
            error_code: None,
        })
        .collect();
    // Threads longer than what came with their comment: (post index, comment id).
    let mut long: Vec<(usize, i64)> = Vec::new();
    for (&i, list) in asked.iter().zip(scan(session, &lists, persistence).await?) {
        let entry = &mut out[i];
        entry.expected = if threads { posts[i].2 } else { list.expected };
        note_ending(entry, &list.ending);
        for top in decoded::<Comment>("wall.getComments", &list)? {
            if let Some(thread) = top.thread.as_ref().filter(|_| threads) {
                for reply in &thread.items {
                    entry.comments.insert(
                        reply.id,
                        Placed {
                            comment: Comment {
                                thread: None,
                                ..reply.clone()
                            },
                            parent: Some(top.id),
                        },
                    );
                }
                if thread.count > thread.items.len() as u64 {
                    long.push((i, top.id));
                }
            }
            entry.comments.insert(
                top.id,
                Placed {
                    comment: top,
                    parent: None,
                },
            );
        }
    }
    let lists: Vec<List> = long
        .iter()
        .map(|&(i, comment)| {
            let (owner, post, _) = posts[i];
            List::new(
                "wall.getComments",
                json!({
                    "owner_id": owner,
                    "post_id": post,
                    "comment_id": comment,
                    "need_likes": 1,
                    "sort": "asc",
                }),
                WALL_PAGE,
            )
            .counted_by("current_level_count")
        })
        .collect();
    for (&(i, parent), list) in long.iter().zip(scan(session, &lists, persistence).await?) {
        let entry = &mut out[i];
        note_ending(entry, &list.ending);
        for reply in decoded::<Comment>("wall.getComments", &list)? {
            entry.comments.insert(
                reply.id,
                Placed {
                    comment: reply,
                    parent: Some(parent),
                },
            );
        }
    }
    Ok(out)
}

/// Counts a list's lost pages against its post (a refused list is one lost page).
fn note_ending(entry: &mut Comments, ending: &Ending) {
    let (pages, code) = match ending {
        Ending::Complete => return,
        Ending::Skipped(e) => (1, e.error_code),
        Ending::Failed { pages, error } => (*pages, error.error_code),
    };
    entry.failed_pages += pages;
    entry.error_code.get_or_insert(code);
}

/// A list's items as `T`.
pub fn decoded<T: for<'de> Deserialize<'de>>(
    method: &str,
    list: &Scanned,
) -> Result<Vec<T>, CommunityError> {
    Ok(list
        .items
        .iter()
        .cloned()
        .map(|v: Value| decode::<T>(method, v))
        .collect::<Result<Vec<T>, _>>()?)
}
