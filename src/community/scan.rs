//! Paged VK lists read to their end, many at once: members of communities, posts of walls,
//! comments of posts, likes and reposts. Every list a community task reads goes through
//! [`scan`], so "no gaps" is decided in one place:
//!
//! 1. the first page of every list, packed 25 calls per `execute` (the fast scan: most lists
//!    end there), and with it every page of a list whose length another answer gave already
//!    (`List::expecting`: groups.getById's `members_count`);
//! 2. the later pages their `count` calls for (the deep scan), again packed; lists without a
//!    `count` (wall.getReposts) page on until a short page;
//! 3. pages whose call failed for a reason another try can fix go round again in up to
//!    `vk.retry_passes` passes, each on a fresh token (the execute layer already re-asked each
//!    once on its own);
//! 4. what is still failed is asked once more, one direct call at a time, `retry_interval`
//!    apart (the sibling service's slower sequential retry), before it is declared missing;
//! 5. a list whose `count` moved while it was paged (members joined or left mid-scan, and every
//!    page after the change shifted, so a member could fall between two pages) is read again
//!    from the start, at most `max_rescans` times, and the reads are merged: VK clients re-page
//!    from the start when the count grows, and a shrinking count shifts pages as much. A member
//!    who left mid-scan may stay in the merged list (reported left next time); none who stayed
//!    is missed, so the change never holds a false "left".
//!
//! A first page VK refuses for the target (closed, private, deleted) is a documented skip of
//! that list, never retried; an answer no retry changes (100: a post deleted meanwhile) is a
//! missing page at once.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::vk::error::{Action, ApiError};
use crate::vk::execute::{run_calls, Call, CallResult};
use crate::vk::orchestrator::Session;
use crate::vk::VkError;

/// One list to read: a method, its parameters without `offset`/`count`, and how it pages.
#[derive(Debug, Clone)]
pub struct List {
    /// `section.method`.
    pub method: &'static str,
    /// Parameters of every page (the scan adds `offset` and `count`).
    pub params: Map<String, Value>,
    /// Items per page (VK's maximum for the method).
    pub page: u64,
    /// Read no more than this many items (a wall's latest posts); `None`: the whole list.
    pub limit: Option<u64>,
    /// Where the page's `count` is: `count`, or `current_level_count` for comments.
    pub count_field: &'static str,
    /// The length another answer gave (groups.getById's `members_count`): its pages are asked
    /// with the first, saving the round that waits for the first page's `count`.
    pub expecting: Option<u64>,
}

impl List {
    /// A list of `method` read whole, `page` items a call.
    pub fn new(method: &'static str, params: Value, page: u64) -> List {
        let params = match params {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        List {
            method,
            params,
            page,
            limit: None,
            count_field: "count",
            expecting: None,
        }
    }

    /// Pages as far as `count` are asked at once, before the first page says its `count`.
    pub fn expecting(mut self, count: u64) -> List {
        self.expecting = Some(count.min(crate::vk::methods::MAX_LIST_LEN));
        self
    }

    /// The offsets asked in the first round: the first page, and those `expecting` calls for.
    fn first_offsets(&self) -> Vec<u64> {
        let end = self.end(self.expecting.unwrap_or(0)).max(1);
        (0..end).step_by(self.page.max(1) as usize).collect()
    }

    /// Only the first `limit` items.
    pub fn limited(mut self, limit: u64) -> List {
        self.limit = Some(limit);
        self
    }

    /// Pages by `field` instead of `count`.
    pub fn counted_by(mut self, field: &'static str) -> List {
        self.count_field = field;
        self
    }

    fn call(&self, offset: u64) -> Call {
        let mut params = self.params.clone();
        let count = match self.limit {
            Some(limit) => self.page.min(limit.saturating_sub(offset)).max(1),
            None => self.page,
        };
        params.insert("offset".into(), Value::from(offset));
        params.insert("count".into(), Value::from(count));
        Call {
            method: self.method,
            params,
        }
    }

    /// The end of the list as far as this scan reads it.
    fn end(&self, count: u64) -> u64 {
        self.limit.map_or(count, |limit| limit.min(count))
    }
}

/// How a list ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Every page read.
    Complete,
    /// VK refused the list for its target (closed, private, deleted, not found): no items.
    Skipped(ApiError),
    /// Some pages stayed unanswered after every retry; the error of the last one.
    Failed {
        /// Pages missing.
        pages: u64,
        /// What VK last answered for one of them.
        error: ApiError,
    },
}

/// A list as read.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// The list's length as VK last gave it (`count`; for lists without one, what was read).
    pub expected: u64,
    /// The items, page by page; after a rescan they may repeat (the caller keys them).
    pub items: Vec<Value>,
    /// How it ended.
    pub ending: Ending,
    /// Times it was read again from the start because its count moved.
    pub rescans: u32,
}

impl Scanned {
    fn new() -> Scanned {
        Scanned {
            expected: 0,
            items: Vec::new(),
            ending: Ending::Complete,
            rescans: 0,
        }
    }
}

/// How hard the scan tries before it calls a page missing.
#[derive(Debug, Clone, Copy)]
pub struct Persistence {
    /// Pause between the calls of the sequential retry.
    pub retry_interval: Duration,
    /// Reads from the start of a list whose count moved.
    pub max_rescans: u32,
}

/// A page of any list: its `count` (if the method gives one) and its items.
fn page_of(list: &List, value: &Value) -> Result<(Option<u64>, Vec<Value>), VkError> {
    let bad = |what: &str| VkError::Decode {
        method: list.method.to_owned(),
        message: what.to_owned(),
    };
    let items = match value.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => return Err(bad("expected an object with `items`")),
    };
    let count = value
        .get(list.count_field)
        .or_else(|| value.get("count"))
        .and_then(Value::as_u64);
    if count.is_some_and(|c| c > crate::vk::methods::MAX_LIST_LEN) {
        return Err(bad("a count beyond what the service reads"));
    }
    Ok((count, items))
}

/// One page to ask: list `i` at `offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ask {
    list: usize,
    offset: u64,
}

/// What a round of pages left behind.
#[derive(Default)]
struct Round {
    /// Pages still failed (with the error), to retry.
    failed: Vec<(Ask, ApiError)>,
    /// Pages to ask next (lists without a count, paging on).
    next: Vec<Ask>,
}

/// Reads every list in `lists` to its end (see the module header); one [`Scanned`] per list,
/// in order. `Err` only for what ends the job (no token left, a broken answer).
pub async fn scan(
    session: &mut Session,
    lists: &[List],
    persistence: Persistence,
) -> Result<Vec<Scanned>, VkError> {
    scan_with(session, &mut [], lists, persistence).await
}

/// [`scan`], the pages of each round shared out between `session` and `helpers` (sessions
/// on other leased tokens), which read their parts at the same time; the retries stay on
/// `session`.
pub async fn scan_with(
    session: &mut Session,
    helpers: &mut [Session],
    lists: &[List],
    persistence: Persistence,
) -> Result<Vec<Scanned>, VkError> {
    let mut out: Vec<Scanned> = lists.iter().map(|_| Scanned::new()).collect();
    // The count each list's first page gave: later pages that disagree mean it moved.
    let mut first_count: Vec<Option<u64>> = vec![None; lists.len()];
    let mut moved = vec![false; lists.len()];
    let mut asks: Vec<Ask> = (0..lists.len())
        .flat_map(|list| {
            lists[list]
                .first_offsets()
                .into_iter()
                .map(move |offset| Ask { list, offset })
        })
        .collect();
    loop {
        let mut failed = Vec::new();
        while !asks.is_empty() {
            let calls: Vec<Call> = asks.iter().map(|a| lists[a.list].call(a.offset)).collect();
            let results = spread(session, helpers, &calls).await?;
            let mut round = Round::default();
            for (&at, result) in asks.iter().zip(results) {
                file(
                    lists,
                    at,
                    result,
                    &mut out,
                    &mut first_count,
                    &mut moved,
                    &mut round,
                )?;
            }
            failed.extend(round.failed);
            asks = round.next;
        }
        let failed = retry(
            session,
            lists,
            failed,
            &mut out,
            &mut first_count,
            &mut moved,
            persistence,
        )
        .await?;
        for (at, error) in failed {
            lose(&mut out[at.list], error);
        }
        // Lists whose count moved, read again from the start while rescans are left.
        asks = (0..lists.len())
            .filter(|&i| moved[i] && out[i].rescans < persistence.max_rescans)
            .filter(|&i| out[i].ending == Ending::Complete)
            .map(|list| Ask { list, offset: 0 })
            .collect();

        if asks.is_empty() {
            return Ok(out);
        }
        for a in &asks {
            tracing::info!(
                method = lists[a.list].method,
                count = out[a.list].expected,
                "the list's count moved while it was read: reading it again from the start"
            );
            out[a.list].rescans += 1;
            moved[a.list] = false;
            first_count[a.list] = None;
        }
    }
}

/// Runs `calls` packed into executes, cut into one contiguous part per session (whole
/// executes each) that the sessions send at the same time; one result per call, in order. A
/// part whose helper failed (its token died, the pool ran dry) is sent again on `session`.
async fn spread(
    session: &mut Session,
    helpers: &mut [Session],
    calls: &[Call],
) -> Result<Vec<CallResult>, VkError> {
    let per_execute = session.settings().calls_per_execute.clamp(1, 25);
    let executes = calls.len().div_ceil(per_execute);
    let crew = (1 + helpers.len()).min(executes);
    if crew <= 1 {
        return run_calls(session, calls).await;
    }
    let part = executes.div_ceil(crew) * per_execute;
    let parts: Vec<&[Call]> = calls.chunks(part).collect();
    let (first, rest) = parts.split_first().expect("at least two parts");
    let (main, others) = tokio::join!(
        run_calls(session, first),
        futures_util::future::join_all(
            helpers
                .iter_mut()
                .zip(rest)
                .map(|(helper, part)| run_calls(helper, part))
        )
    );
    let mut out = main?;
    for (part, result) in rest.iter().zip(others) {
        match result {
            Ok(results) => out.extend(results),
            Err(error) => {
                tracing::warn!(error = %error, "a helper token failed: its pages go to the job's own");
                out.extend(run_calls(session, part).await?);
            }
        }
    }
    Ok(out)
}

/// Asks `asks` packed into executes and files the answers.
async fn ask(
    session: &mut Session,
    lists: &[List],
    asks: &[Ask],
    out: &mut [Scanned],
    first_count: &mut [Option<u64>],
    moved: &mut [bool],
) -> Result<Round, VkError> {
    let calls: Vec<Call> = asks.iter().map(|a| lists[a.list].call(a.offset)).collect();
    let results = run_calls(session, &calls).await?;
    let mut round = Round::default();
    for (&at, result) in asks.iter().zip(results) {
        file(lists, at, result, out, first_count, moved, &mut round)?;
    }
    Ok(round)
}

/// Files one page's answer: its items, the pages it calls for, or its failure.
fn file(
    lists: &[List],
    at: Ask,
    result: CallResult,
    out: &mut [Scanned],
    first_count: &mut [Option<u64>],
    moved: &mut [bool],
    round: &mut Round,
) -> Result<(), VkError> {
    let list = &lists[at.list];
    let value = match result {
        Ok(value) => value,
        Err(error) => {
            match error.action() {
                // A target VK refuses on the first page: a documented skip, not worth a retry.
                Action::SkipTarget if at.offset == 0 => {
                    out[at.list].ending = Ending::Skipped(error)
                }
                // A bad parameter (a post deleted meanwhile: 100), a refused right, a target
                // that closed mid-list: another try would answer the same.
                Action::SkipTarget | Action::MethodDenied | Action::Fail(_) => {
                    lose(&mut out[at.list], error)
                }
                _ => round.failed.push((at, error)),
            }
            return Ok(());
        }
    };
    let (count, items) = page_of(list, &value)?;
    let got = items.len() as u64;
    let scanned = &mut out[at.list];
    scanned.items.extend(items);
    match count {
        Some(count) => {
            scanned.expected = scanned.expected.max(count);
            match first_count[at.list] {
                None if at.offset == 0 => {
                    first_count[at.list] = Some(count);
                    // An empty first page: VK shows nothing more whatever `count` says. Pages
                    // the first round asked already (`expecting`) are not asked again.
                    if got > 0 {
                        let end = list.end(count);
                        let from = match list.expecting {
                            Some(_) if scanned.rescans == 0 => {
                                list.first_offsets().last().map_or(got, |o| o + list.page)
                            }
                            _ => got,
                        };
                        round.next.extend(
                            (from.max(got)..end)
                                .step_by(list.page.max(1) as usize)
                                .map(|offset| Ask {
                                    list: at.list,
                                    offset,
                                }),
                        );
                    }
                }
                Some(first) if count != first => moved[at.list] = true,
                _ => {}
            }
        }
        None => {
            // No count (wall.getReposts): a full page means there may be more.
            scanned.expected = scanned.expected.max(at.offset + got);
            let next = at.offset + got;
            if got >= list.page && list.limit.is_none_or(|l| next < l) {
                round.next.push(Ask {
                    list: at.list,
                    offset: next,
                });
            }
        }
    }
    Ok(())
}

/// Counts one page of `scanned` as lost for good; a list refused whole (its first page) stays
/// refused whatever its other pages, asked in the same round, answered.
fn lose(scanned: &mut Scanned, error: ApiError) {
    if matches!(scanned.ending, Ending::Skipped(_)) {
        return;
    }
    scanned.ending = match std::mem::replace(&mut scanned.ending, Ending::Complete) {
        Ending::Failed { pages, .. } => Ending::Failed {
            pages: pages + 1,
            error,
        },
        _ => Ending::Failed { pages: 1, error },
    };
}

/// Retry passes on fresh tokens, then the slow sequential retry; answers what stays failed.
async fn retry(
    session: &mut Session,
    lists: &[List],
    mut failed: Vec<(Ask, ApiError)>,
    out: &mut [Scanned],
    first_count: &mut [Option<u64>],
    moved: &mut [bool],
    persistence: Persistence,
) -> Result<Vec<(Ask, ApiError)>, VkError> {
    let mut pass = 0;
    while !failed.is_empty() && pass < session.settings().retry_passes {
        pass += 1;
        tracing::info!(
            pages = failed.len(),
            pass,
            "retry pass over pages still failed"
        );
        session.rotate_now("retry pass").await;
        let mut asks: Vec<Ask> = failed.drain(..).map(|(a, _)| a).collect();
        while !asks.is_empty() {
            let round = ask(session, lists, &asks, out, first_count, moved).await?;
            failed.extend(round.failed);
            asks = round.next;
        }
    }
    if failed.is_empty() {
        return Ok(failed);
    }
    tracing::info!(
        pages = failed.len(),
        interval_ms = persistence.retry_interval.as_millis() as u64,
        "sequential retry of the pages still failed"
    );
    session.rotate_now("sequential retry").await;
    let mut still = Vec::new();
    let mut queue: Vec<Ask> = failed.into_iter().map(|(a, _)| a).collect();
    while let Some(at) = queue.pop() {
        tokio::time::sleep(persistence.retry_interval).await;
        let call = lists[at.list].call(at.offset);
        let result = match session.call(call.method, &call.form()).await {
            Ok(answer) => Ok(answer.response),
            Err(VkError::Api { error, .. }) => Err(error),
            Err(other) => return Err(other),
        };
        let mut round = Round::default();
        file(lists, at, result, out, first_count, moved, &mut round)?;
        still.extend(round.failed);
        queue.extend(round.next);
    }
    Ok(still)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_limited_list_asks_for_what_is_left() {
        let list = List::new("wall.get", json!({"owner_id": -1}), 100).limited(30);
        assert_eq!(list.call(0).params["count"], 30);
        let whole = List::new("groups.getMembers", json!({"group_id": 1}), 1000);
        assert_eq!(whole.call(2000).params["offset"], 2000);
        assert_eq!(whole.call(2000).params["count"], 1000);
        assert_eq!(whole.end(5), 5);
        assert_eq!(list.end(500), 30);
    }

    #[test]
    fn an_expected_length_is_asked_at_once_and_not_again() {
        let list = List::new("groups.getMembers", json!({}), 1000).expecting(2500);
        assert_eq!(list.first_offsets(), [0, 1000, 2000]);
        assert_eq!(List::new("x", json!({}), 1000).first_offsets(), [0]);
        let lists = [list];
        let mut out = vec![Scanned::new()];
        let (mut first, mut moved, mut round) = (vec![None], vec![false], Round::default());
        let page = Ok(json!({"count": 4200, "items": vec![1; 1000]}));
        let at = Ask { list: 0, offset: 0 };
        file(
            &lists, at, page, &mut out, &mut first, &mut moved, &mut round,
        )
        .unwrap();
        let planned: Vec<u64> = round.next.iter().map(|a| a.offset).collect();
        assert_eq!(planned, [3000, 4000]);
    }

    #[test]
    fn a_list_refused_whole_stays_refused_whatever_its_other_pages_say() {
        let lists = [List::new("groups.getMembers", json!({}), 1000).expecting(3000)];
        let mut out = vec![Scanned::new()];
        let (mut first, mut moved, mut round) = (vec![None], vec![false], Round::default());
        let refused = || {
            Err(ApiError {
                error_code: 15,
                error_msg: "Access denied".into(),
                error_subcode: None,
            })
        };
        for offset in [0, 1000, 2000] {
            let at = Ask { list: 0, offset };
            file(
                &lists,
                at,
                refused(),
                &mut out,
                &mut first,
                &mut moved,
                &mut round,
            )
            .unwrap();
        }
        assert!(
            matches!(out[0].ending, Ending::Skipped(_)),
            "{:?}",
            out[0].ending
        );
    }

    #[test]
    fn pages_are_read_with_their_count_field() {
        let list = List::new("wall.getComments", json!({}), 100).counted_by("current_level_count");
        let (count, items) = page_of(
            &list,
            &json!({"count": 9, "current_level_count": 4, "items": [1]}),
        )
        .unwrap();
        assert_eq!((count, items.len()), (Some(4), 1));
        let reposts = List::new("wall.getReposts", json!({}), 1000);
        assert_eq!(page_of(&reposts, &json!({"items": []})).unwrap().0, None);
        assert!(page_of(&reposts, &json!({"items": 3})).is_err());
        assert!(page_of(&reposts, &json!({"count": u64::MAX, "items": []})).is_err());
    }

    #[test]
    fn a_first_page_calls_for_the_rest_and_a_grown_count_is_noticed() {
        let lists = [List::new("groups.getMembers", json!({"group_id": 1}), 2)];
        let mut out = vec![Scanned::new()];
        let (mut first, mut moved, mut round) = (vec![None], vec![false], Round::default());
        let page = |count: u64| Ok(json!({"count": count, "items": [1, 2]}));
        let at = |offset| Ask { list: 0, offset };
        file(
            &lists,
            at(0),
            page(5),
            &mut out,
            &mut first,
            &mut moved,
            &mut round,
        )
        .unwrap();
        assert_eq!(round.next, [at(2), at(4)]);
        file(
            &lists,
            at(2),
            page(6),
            &mut out,
            &mut first,
            &mut moved,
            &mut round,
        )
        .unwrap();
        assert!(moved[0]);
        assert_eq!((out[0].expected, out[0].items.len()), (6, 4));
        let refused = Err(ApiError {
            error_code: 15,
            error_msg: "Access denied".into(),
            error_subcode: None,
        });
        let mut other = vec![Scanned::new()];
        let mut round = Round::default();
        file(
            &lists,
            at(0),
            refused,
            &mut other,
            &mut first,
            &mut moved,
            &mut round,
        )
        .unwrap();
        assert!(matches!(other[0].ending, Ending::Skipped(_)));
        assert!(round.failed.is_empty());
    }
}
