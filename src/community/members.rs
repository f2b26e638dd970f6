//! MEMBERS: every member of each community (groups.getMembers, 1,000 a call, 25 calls per
//! execute), then the safety threshold, then the change against the previous snapshot.
//!
//! A community is `complete` only when every page was read and at least
//! `community.min_members_ratio` of VK's `count` arrived; otherwise it fails with
//! `below_threshold` (too little arrived) or `incomplete` (pages lost, though the share
//! passed), and none of its rows are written: no members, no joined, no left. A members list
//! with a hole would read as users who left.

use serde_json::{json, Value};

use super::output::{change, member_counts, members, CommunityResult, ListCount};
use super::scan::{scan, scan_with, Ending, List, Persistence, Scanned};
use super::snapshot::{baselines, diff};
use super::targets::Target;
use super::{fail_list, results_for, Collected, CommunityError};
use crate::events::CommunityTaskCreated;
use crate::storage::Storage;
use crate::tables::{ColumnData, Table};
use crate::vk::orchestrator::Session;

/// Members per groups.getMembers (VK's maximum).
pub const MEMBERS_PAGE: u64 = 1000;

/// Reads the members of every readable target and compares them with their baselines.
pub async fn collect(
    task: &CommunityTaskCreated,
    session: &mut Session,
    helpers: &mut [Session],
    storage: &dyn Storage,
    targets: &[Target],
    persistence: Persistence,
    min_ratio: f64,
) -> Result<Collected, CommunityError> {
    let readable: Vec<(usize, i64)> = targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.readable().map(|g| (i, g.get())))
        .collect();
    // groups.getById's `members_count` lets every page go out in the first round.
    let lists: Vec<List> = readable
        .iter()
        .map(|&(i, g)| {
            let list = List::new(
                "groups.getMembers",
                json!({"group_id": g, "sort": "id_asc"}),
                MEMBERS_PAGE,
            );
            match targets[i].members_count {
                Some(n) => list.expecting(n),
                None => list,
            }
        })
        .collect();
    let mut scanned = scan_with(session, helpers, &lists, persistence).await?;
    // A closed community shows its members to members: what a leased token was refused, the
    // author's token (a member, perhaps) is asked.
    let refused: Vec<usize> = (0..scanned.len())
        .filter(|&i| matches!(&scanned[i].ending, Ending::Skipped(e) if e.error_code == 15))
        .collect();
    // With helpers the refusal may have come from a helper's leased token: the job's own
    // session (on the author's token, or moved there) asks again.
    if !refused.is_empty() {
        let previous = session.to_author("groups.getMembers").await;
        if previous.is_some() || !helpers.is_empty() {
            let again: Vec<List> = refused.iter().map(|&i| lists[i].clone()).collect();
            let read = scan(session, &again, persistence).await;
            if let Some(previous) = previous {
                session.restore(previous);
            }
            for (&i, list) in refused.iter().zip(read?) {
                scanned[i] = list;
            }
        }
    }

    let mut results = results_for(targets);
    let mut fetched: Vec<Option<Vec<i64>>> = vec![None; targets.len()];
    for (&(i, _), list) in readable.iter().zip(scanned) {
        let ids = member_ids(&list);
        // A first page lost leaves no `count`: groups.getById's says what was expected.
        let expected = match list.expected {
            0 => targets[i].members_count.unwrap_or(0),
            n => n,
        };
        let count = ListCount {
            failed_pages: match &list.ending {
                Ending::Failed { pages, .. } => *pages,
                _ => 0,
            },
            rescans: u64::from(list.rescans),
            ..ListCount::new(expected, ids.len() as u64)
        };
        let share = count.ratio;
        results[i].lists.insert(members::TABLE.into(), count);
        match &list.ending {
            Ending::Skipped(error) => fail_list(&mut results[i], &targets[i], error),
            _ if share < min_ratio => {
                let error = match &list.ending {
                    Ending::Failed { error, .. } => Some(error.error_code),
                    _ => None,
                };
                results[i].fail("below_threshold", error);
            }
            Ending::Failed { error, .. } => {
                results[i].fail("incomplete", Some(error.error_code));
            }
            Ending::Complete => fetched[i] = Some(ids),
        }
    }

    let complete: Vec<i64> = readable
        .iter()
        .filter(|(i, _)| fetched[*i].is_some())
        .map(|&(_, g)| g)
        .collect();
    let before = baselines(
        storage,
        &task.job_id,
        task.options.since_snapshot.as_ref(),
        &complete,
    )
    .await?;
    let mut all = Pairs::default();
    let mut joined = Pairs::default();
    let mut left = Pairs::default();
    for &(i, g) in &readable {
        let Some(ids) = &fetched[i] else { continue };
        all.extend(g, ids);
        if let Some(base) = before.get(&g) {
            let (j, l) = diff(ids, &base.members);
            results[i].joined = Some(j.len() as u64);
            results[i].left = Some(l.len() as u64);
            results[i].baseline_job = Some(base.job.to_string());
            joined.extend(g, &j);
            left.extend(g, &l);
        }
    }
    let tables = vec![
        all.table(members::TABLE),
        joined.table(change::JOINED),
        left.table(change::LEFT),
        counts_table(&results),
    ];
    Ok(Collected { tables, results })
}

/// The distinct member ids of a list (a rescan may repeat some), sorted.
fn member_ids(list: &Scanned) -> Vec<i64> {
    let mut ids: Vec<i64> = list.items.iter().filter_map(Value::as_i64).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// `(group_id, user_id)` rows.
#[derive(Default)]
struct Pairs {
    groups: Vec<i64>,
    users: Vec<i64>,
}

impl Pairs {
    fn extend(&mut self, group: i64, users: &[i64]) {
        self.groups.extend(std::iter::repeat_n(group, users.len()));
        self.users.extend_from_slice(users);
    }

    fn table(self, name: &str) -> Table {
        Table::new(name)
            .with(members::GROUP_ID, ColumnData::I64(self.groups))
            .with(members::USER_ID, ColumnData::I64(self.users))
    }
}

fn counts_table(results: &[CommunityResult]) -> Table {
    let count = |r: &CommunityResult| r.lists.get(members::TABLE).cloned().unwrap_or_default();
    let opt = |f: fn(&CommunityResult) -> Option<i64>| {
        ColumnData::OptI64(results.iter().map(f).collect())
    };
    let strs = |f: fn(&CommunityResult) -> Option<String>| {
        ColumnData::Str(results.iter().map(f).collect())
    };
    Table::new(member_counts::TABLE)
        .with(member_counts::GROUP_ID, opt(|r| r.group_id))
        .with(
            member_counts::SCREEN_NAME,
            strs(|r| Some(r.screen_name.clone())),
        )
        .with(
            member_counts::EXPECTED,
            ColumnData::I64(results.iter().map(|r| count(r).expected as i64).collect()),
        )
        .with(
            member_counts::FETCHED,
            ColumnData::I64(results.iter().map(|r| count(r).fetched as i64).collect()),
        )
        .with(
            member_counts::RATIO,
            ColumnData::F64(
                results
                    .iter()
                    .map(|r| r.lists.get(members::TABLE).map_or(0.0, |c| c.ratio))
                    .collect(),
            ),
        )
        .with(
            member_counts::STATUS,
            strs(|r| Some(r.status.as_str().to_owned())),
        )
        .with(member_counts::REASON, strs(|r| r.reason.clone()))
        .with(
            member_counts::BASELINE_JOB,
            strs(|r| r.baseline_job.clone()),
        )
        .with(member_counts::JOINED, opt(|r| r.joined.map(|n| n as i64)))
        .with(member_counts::LEFT, opt(|r| r.left.map(|n| n as i64)))
}
