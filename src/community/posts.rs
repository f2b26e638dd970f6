//! POSTS: the latest `postsPerGroup` posts of each community, every comment of each
//! (`withComments`), thread replies (`withThreads`), and the profiles of everyone who signed,
//! published or commented (`authors`, users.get 1,000 a call).
//!
//! A community with a page of posts or comments lost is `incomplete` and leaves no rows.

use std::collections::BTreeSet;

use super::output::{
    authors, comments as comment_cols, posts as post_cols, CommunityResult, ListCount,
};
use super::scan::{Ending, Persistence};
use super::targets::Target;
use super::wall::{comments, walls, Post};
use super::{fail_list, results_for, Collected, CommunityError};
use crate::events::CommunityTaskCreated;
use crate::tables::{ColumnData, Table};
use crate::vk::methods::profiles;
use crate::vk::orchestrator::Session;

/// users.get fields of `authors`.
const AUTHOR_FIELDS: &str = "screen_name";

/// Reads the posts (and comments) of every readable target.
pub async fn collect(
    task: &CommunityTaskCreated,
    session: &mut Session,
    targets: &[Target],
    persistence: Persistence,
) -> Result<Collected, CommunityError> {
    let mut results = results_for(targets);
    let walls_read = read_walls(session, targets, &mut results, task, persistence).await?;

    // (target index, post) of the communities still complete.
    let mut posts: Vec<(usize, Post)> = walls_read;
    let mut comment_rows = CommentRows::default();
    if task.options.with_comments {
        let asked: Vec<(i64, i64, u64)> = posts
            .iter()
            .map(|(_, p)| (p.owner_id, p.id, p.comments.count))
            .collect();
        let read = comments(session, &asked, task.options.with_threads, persistence).await?;
        for ((i, _), got) in posts.iter().zip(&read) {
            let entry = results[*i]
                .lists
                .entry(comment_cols::TABLE.into())
                .or_default();
            entry.add(got.expected, got.comments.len() as u64, got.failed_pages);
            if got.failed_pages > 0 {
                results[*i].fail("incomplete", got.error_code);
            }
        }
        for ((i, post), got) in posts.iter().zip(read) {
            if results[*i].complete() {
                comment_rows.extend(post, got.comments.into_values());
            }
        }
    }
    posts.retain(|(i, _)| results[*i].complete());

    let mut ids: BTreeSet<i64> = BTreeSet::new();
    for (_, p) in &posts {
        ids.extend(
            p.signer_id
                .into_iter()
                .chain(p.created_by)
                .filter(|&u| u > 0),
        );
    }
    ids.extend(comment_rows.authors.iter().copied().filter(|&u| u > 0));
    let ids: Vec<i64> = ids.into_iter().collect();
    let people = profiles(session, &ids, AUTHOR_FIELDS).await?;

    let tables = vec![
        posts_table(posts.iter().map(|(_, p)| p)),
        comment_rows.table(),
        Table::new(authors::TABLE)
            .with(
                authors::USER_ID,
                ColumnData::I64(people.iter().map(|p| p.id).collect()),
            )
            .with(
                authors::FIRST_NAME,
                ColumnData::Str(people.iter().map(|p| Some(p.first_name.clone())).collect()),
            )
            .with(
                authors::LAST_NAME,
                ColumnData::Str(people.iter().map(|p| Some(p.last_name.clone())).collect()),
            )
            .with(
                authors::SCREEN_NAME,
                ColumnData::Str(people.iter().map(|p| p.screen_name.clone()).collect()),
            )
            .with(
                authors::DEACTIVATED,
                ColumnData::Str(people.iter().map(|p| p.deactivated.clone()).collect()),
            )
            .with(
                authors::IS_CLOSED,
                ColumnData::Bool(people.iter().map(|p| p.is_closed).collect()),
            ),
    ];
    Ok(Collected { tables, results })
}

/// Reads the walls of the readable targets into `results`; the posts of those that read whole.
pub(super) async fn read_walls(
    session: &mut Session,
    targets: &[Target],
    results: &mut [CommunityResult],
    task: &CommunityTaskCreated,
    persistence: Persistence,
) -> Result<Vec<(usize, Post)>, CommunityError> {
    let readable: Vec<(usize, i64)> = targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.readable().map(|g| (i, g.get())))
        .collect();
    let groups: Vec<i64> = readable.iter().map(|&(_, g)| g).collect();
    let mut read = walls(session, &groups, task.options.posts_per_group, persistence).await?;
    // A closed community's wall shows to members: what a leased token was refused, the
    // author's token (a member, perhaps) is asked.
    let refused: Vec<usize> = (0..read.len())
        .filter(|&k| matches!(&read[k].ending, Ending::Skipped(e) if e.error_code == 15))
        .collect();
    if !refused.is_empty() {
        if let Some(previous) = session.to_author("wall.get").await {
            let again: Vec<i64> = refused.iter().map(|&k| groups[k]).collect();
            let reread = walls(session, &again, task.options.posts_per_group, persistence).await;
            session.restore(previous);
            for (&k, wall) in refused.iter().zip(reread?) {
                read[k] = wall;
            }
        }
    }
    let mut out = Vec::new();
    for (&(i, _), wall) in readable.iter().zip(read) {
        let mut count = ListCount::new(wall.expected, wall.posts.len() as u64);
        match &wall.ending {
            Ending::Skipped(error) => fail_list(&mut results[i], &targets[i], error),
            Ending::Failed { pages, error } => {
                count.failed_pages = *pages;
                results[i].fail("incomplete", Some(error.error_code));
            }
            Ending::Complete => out.extend(wall.posts.into_iter().map(|p| (i, p))),
        }
        results[i].lists.insert(post_cols::TABLE.into(), count);
    }
    Ok(out)
}

/// `posts` of `posts`.
pub(super) fn posts_table<'a>(posts: impl Iterator<Item = &'a Post> + Clone) -> Table {
    let i64s = |f: fn(&Post) -> i64| ColumnData::I64(posts.clone().map(f).collect());
    let opts = |f: fn(&Post) -> Option<i64>| ColumnData::OptI64(posts.clone().map(f).collect());
    Table::new(post_cols::TABLE)
        .with(post_cols::OWNER_ID, i64s(|p| p.owner_id))
        .with(post_cols::POST_ID, i64s(|p| p.id))
        .with(post_cols::GROUP_ID, i64s(|p| -p.owner_id))
        .with(post_cols::FROM_ID, i64s(|p| p.from_id))
        .with(
            post_cols::TEXT,
            ColumnData::Str(posts.clone().map(|p| Some(p.text.clone())).collect()),
        )
        .with(post_cols::DATE, i64s(|p| p.date))
        .with(post_cols::LIKES, i64s(|p| p.likes.count as i64))
        .with(post_cols::COMMENTS, i64s(|p| p.comments.count as i64))
        .with(post_cols::REPOSTS, i64s(|p| p.reposts.count as i64))
        .with(post_cols::VIEWS, opts(|p| p.views.map(|v| v.count as i64)))
        .with(post_cols::SIGNER_ID, opts(|p| p.signer_id))
        .with(post_cols::CREATED_BY, opts(|p| p.created_by))
}

/// `comments` rows, as they are collected.
#[derive(Default)]
struct CommentRows {
    owner: Vec<i64>,
    post: Vec<i64>,
    id: Vec<i64>,
    parent: Vec<Option<i64>>,
    thread: Vec<i64>,
    authors: Vec<i64>,
    text: Vec<Option<String>>,
    date: Vec<i64>,
    likes: Vec<Option<i64>>,
    deleted: Vec<bool>,
}

impl CommentRows {
    fn extend(&mut self, post: &Post, comments: impl Iterator<Item = super::wall::Placed>) {
        for placed in comments {
            let c = placed.comment;
            self.owner.push(post.owner_id);
            self.post.push(post.id);
            self.id.push(c.id);
            self.parent.push(placed.parent);
            self.thread.push(c.thread.map_or(0, |t| t.count as i64));
            self.authors.push(c.from_id);
            self.text.push(Some(c.text));
            self.date.push(c.date);
            self.likes.push(c.likes.map(|l| l.count as i64));
            self.deleted.push(c.deleted);
        }
    }

    fn table(self) -> Table {
        Table::new(comment_cols::TABLE)
            .with(comment_cols::OWNER_ID, ColumnData::I64(self.owner))
            .with(comment_cols::POST_ID, ColumnData::I64(self.post))
            .with(comment_cols::COMMENT_ID, ColumnData::I64(self.id))
            .with(comment_cols::PARENT_ID, ColumnData::OptI64(self.parent))
            .with(comment_cols::THREAD_COUNT, ColumnData::I64(self.thread))
            .with(comment_cols::AUTHOR_ID, ColumnData::I64(self.authors))
            .with(comment_cols::TEXT, ColumnData::Str(self.text))
            .with(comment_cols::DATE, ColumnData::I64(self.date))
            .with(comment_cols::LIKES, ColumnData::OptI64(self.likes))
            .with(comment_cols::DELETED, ColumnData::Bool(self.deleted))
    }
}
