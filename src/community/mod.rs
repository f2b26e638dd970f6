//! Community tasks: the third job kind. A `CommunityTaskCreated` collects what VK shows about up
//! to 500 communities: their members with who joined and left since the previous snapshot
//! (MEMBERS), their latest posts with every comment (POSTS), or who liked, commented on and
//! reposted those posts (INTERACTIONS).
//!
//! It runs on the same engine as reports and campaigns: the consumer (leases, fencing, reclaim,
//! dead letters) delivers the task to [`CommunityCollector`], the VK stack paces, packs and
//! rotates tokens (the author's first, leased global ones after). What is its own:
//! - `targets`: the task's communities resolved and looked up;
//! - `scan`: every paged list read to its end, retried, re-read when its count moves;
//! - `members`, `posts`, `interactions`: one module per kind; `wall` the reading they share;
//! - `snapshot`: the previous members snapshot of each community;
//! - `output`: the tables' columns, the manifest, the status's metrics.
//!
//! A community that could not be collected (private, closed, deactivated, not found, pages lost,
//! under the members threshold) fails on its own: the others are collected and written, and the
//! task ends `FAILED` naming each failed community and why, with its files; a task whose
//! communities all read whole ends `COMPLETED`. A rerun writes the same keys, so a task retried
//! after a crash never duplicates rows.

mod interactions;
mod members;
pub mod output;
mod posts;
mod scan;
mod snapshot;
mod targets;
mod wall;

use std::sync::Arc;

use async_trait::async_trait;

use crate::events::{CommunityTaskCreated, FailureReason, IncomingEvent};
use crate::ids::CommunityTaskKind;
use crate::settings::CommunitySettings;
use crate::storage::{Storage, StorageError};
use crate::stream::{JobContext, JobFailure, JobHandler, JobOutput};
use crate::tables::TableError;
use crate::vk::error::ApiError;
use crate::vk::orchestrator::Orchestrator;
use crate::vk::resolve::Resolver;
use crate::vk::tokens::ReleaseReason;
use crate::vk::VkError;

use output::{CommunityResult, Status};
use scan::Persistence;
use targets::Target;

/// What a kind collected: its tables (in the order they are written) and one result per
/// community.
pub struct Collected {
    /// The kind's tables (docs/data.md).
    pub tables: Vec<crate::tables::Table>,
    /// One per community, in the event's order.
    pub results: Vec<CommunityResult>,
}

/// Why a community task attempt did not finish.
#[derive(Debug, thiserror::Error)]
pub enum CommunityError {
    /// VK (or the token manager) failed in a way that ends the attempt.
    #[error(transparent)]
    Vk(#[from] VkError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A storage key could not be built.
    #[error(transparent)]
    Key(#[from] crate::storage::KeyError),
    /// A table could not be encoded or decoded.
    #[error(transparent)]
    Table(#[from] TableError),
    /// `sinceSnapshot` names a snapshot that is not there.
    #[error("{0}")]
    SnapshotMissing(String),
    /// A bug.
    #[error("{0}")]
    Internal(String),
    /// The job was asked to stop.
    #[error("cancelled")]
    Cancelled,
}

impl From<CommunityError> for JobFailure {
    fn from(error: CommunityError) -> JobFailure {
        let message = error.to_string();
        match error {
            CommunityError::Vk(vk) => JobFailure::for_reason(vk.failure_reason(), message),
            CommunityError::Storage(_) => {
                JobFailure::retryable(FailureReason::StorageError, message)
            }
            CommunityError::SnapshotMissing(_) => {
                JobFailure::permanent(FailureReason::Stage1NotFound, message)
            }
            CommunityError::Key(_) | CommunityError::Table(_) | CommunityError::Internal(_) => {
                JobFailure::permanent(FailureReason::InternalError, message)
            }
            CommunityError::Cancelled => {
                JobFailure::retryable(FailureReason::InternalError, message)
            }
        }
    }
}

/// The community-task [`JobHandler`].
pub struct CommunityCollector {
    orchestrator: Orchestrator,
    storage: Arc<dyn Storage>,
    resolver: Resolver,
    settings: CommunitySettings,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl CommunityCollector {
    /// A collector over the VK stack and storage.
    pub fn new(
        orchestrator: Orchestrator,
        storage: Arc<dyn Storage>,
        settings: CommunitySettings,
    ) -> CommunityCollector {
        CommunityCollector {
            orchestrator,
            storage,
            resolver: Resolver::new(),
            settings,
            metrics: None,
        }
    }

    /// Also counts communities by status in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> CommunityCollector {
        self.metrics = Some(metrics);
        self
    }

    /// Sessions on `community.parallel_tokens - 1` leased global tokens besides the job's own
    /// (fewer when the pool has fewer to lend), for pages read at once.
    async fn helpers(&self, task: &CommunityTaskCreated) -> Vec<crate::vk::orchestrator::Session> {
        let mut helpers = Vec::new();
        for _ in 1..self.settings.parallel_tokens {
            let Ok(mut helper) = self.orchestrator.session(&task.job_id, task.user_id).await else {
                break;
            };
            // A fresh session starts on the author's token, which the job's own session holds.
            if !helper.rotate_now("parallel pages").await {
                helper.finish(ReleaseReason::Completed).await;
                break;
            }
            helpers.push(helper);
        }
        helpers
    }

    async fn collect(
        &self,
        task: &CommunityTaskCreated,
        session: &mut crate::vk::orchestrator::Session,
        ctx: &JobContext,
    ) -> Result<JobOutput, CommunityError> {
        let persistence = Persistence {
            retry_interval: self.settings.retry_interval,
            max_rescans: self.settings.max_rescans,
        };
        ctx.progress.report(5, "looking the communities up").await;
        let targets = targets::look_up(session, &self.resolver, &task.groups).await?;
        // A community named twice (an id and its screen name) is read and reported once.
        let targets: Vec<Target> = targets
            .into_iter()
            .filter(|t| t.skip != Some("duplicate"))
            .collect();
        let readable = targets.iter().filter(|t| t.readable().is_some()).count();
        ctx.progress
            .report(
                10,
                &format!("reading {readable} of {} communities", targets.len()),
            )
            .await;
        let Collected { tables, results } = match task.kind {
            CommunityTaskKind::Members => {
                let mut helpers = self.helpers(task).await;
                let collected = members::collect(
                    task,
                    session,
                    &mut helpers,
                    self.storage.as_ref(),
                    &targets,
                    persistence,
                    self.settings.min_members_ratio,
                )
                .await;
                for helper in helpers {
                    helper.finish(ReleaseReason::Completed).await;
                }
                collected?
            }
            CommunityTaskKind::Posts => {
                posts::collect(task, session, &targets, persistence).await?
            }
            CommunityTaskKind::Interactions => {
                interactions::collect(task, session, &targets, persistence).await?
            }
        };
        let failed = results.iter().filter(|r| !r.complete()).count();
        ctx.progress
            .report(
                95,
                &format!(
                    "writing the tables: {} communities read whole, {failed} failed",
                    results.len() - failed
                ),
            )
            .await;
        if let Some(m) = &self.metrics {
            for r in &results {
                crate::internal_events::CommunityCollected {
                    kind: task.kind.as_str(),
                    group: r.group_id,
                    status: r.status.as_str(),
                    reason: r.reason.as_deref(),
                }
                .emit(m);
            }
        }
        let metrics = output::metrics(&results);
        let failed = verdict(&results);
        let message = summary(&results);
        let artifacts = output::write(self.storage.as_ref(), task, tables, results).await?;
        Ok(JobOutput {
            artifacts,
            main_ids: Vec::new(),
            message,
            metrics: Some(metrics),
            failed,
        })
    }
}

/// The failed communities, as the task's failure; `None` when every community read whole.
fn verdict(results: &[CommunityResult]) -> Option<JobFailure> {
    let failed: Vec<&CommunityResult> = results.iter().filter(|r| !r.complete()).collect();
    if failed.is_empty() {
        return None;
    }
    let lost = |r: &&CommunityResult| {
        matches!(
            r.reason.as_deref(),
            Some("below_threshold") | Some("incomplete")
        )
    };
    // Data lost on the way says more than a community VK would not show.
    let reason = if failed.iter().any(lost) {
        FailureReason::IncompleteData
    } else {
        FailureReason::VkAccessDenied
    };
    let named: Vec<String> = failed
        .iter()
        .map(|r| {
            let code = r.error_code.map(|c| format!(" ({c})")).unwrap_or_default();
            format!(
                "{} {}{code}",
                r.screen_name,
                r.reason.as_deref().unwrap_or("failed")
            )
        })
        .collect();
    Some(JobFailure::permanent(
        reason,
        format!(
            "{} of {} communities failed: {}",
            failed.len(),
            results.len(),
            named.join(", ")
        ),
    ))
}

fn summary(results: &[CommunityResult]) -> String {
    let complete = results
        .iter()
        .filter(|r| r.status == Status::Complete)
        .count();
    format!("{complete} of {} communities collected", results.len())
}

/// One result per target, failed already where the target is skipped.
fn results_for(targets: &[Target]) -> Vec<CommunityResult> {
    targets
        .iter()
        .map(|t| {
            let mut r = CommunityResult::new(t.group_id.map(|g| g.get()), &t.screen_name);
            if let Some(why) = t.skip {
                r.fail(why, None);
            }
            r
        })
        .collect()
}

/// Fails a community whose list VK refused, with the reason VK's answer and the community's
/// privacy give.
fn fail_list(result: &mut CommunityResult, target: &Target, error: &ApiError) {
    let reason = match (error.error_code, target.is_closed) {
        (15 | 203 | 30, 1) => "closed",
        (15 | 203 | 30, 2) => "private",
        (18, _) => "deactivated",
        (100 | 113 | 125, _) => "not_found",
        _ => "access_denied",
    };
    result.fail(reason, Some(error.error_code));
}

#[async_trait]
impl JobHandler for CommunityCollector {
    async fn run(&self, event: IncomingEvent, ctx: JobContext) -> Result<JobOutput, JobFailure> {
        let IncomingEvent::CommunityTaskCreated(task) = event else {
            return Err(JobFailure::permanent(
                FailureReason::InvalidEvent,
                "another job kind's event reached the community collector",
            ));
        };
        let mut session = self
            .orchestrator
            .session(&task.job_id, task.user_id)
            .await
            .map_err(|e| JobFailure::from(CommunityError::from(e)))?;
        let result = tokio::select! {
            result = self.collect(&task, &mut session, &ctx) => result,
            _ = ctx.cancel.cancelled() => Err(CommunityError::Cancelled),
        };
        session.finish_after(&result).await;
        result.map_err(JobFailure::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_fails_with_the_communities_that_failed() {
        let ok = CommunityResult::new(Some(1), "club1");
        let mut private = CommunityResult::new(Some(2), "club2");
        private.fail("private", Some(15));
        assert!(verdict(std::slice::from_ref(&ok)).is_none());
        let f = verdict(&[ok.clone(), private.clone()]).unwrap();
        assert_eq!(f.reason, FailureReason::VkAccessDenied);
        assert!(f.message.contains("club2 private (15)"), "{}", f.message);
        let mut short = CommunityResult::new(Some(3), "club3");
        short.fail("below_threshold", None);
        let f = verdict(&[ok, private, short]).unwrap();
        assert_eq!(f.reason, FailureReason::IncompleteData);
        assert!(f.message.starts_with("2 of 3"), "{}", f.message);
    }
}
