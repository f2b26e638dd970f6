//! The report parser (the seed's `VKParser`): the consumer's [`JobHandler`] for production.
//! It turns a report's seeds into graph tables in parquet, using only [`crate::vk`] to reach VK
//! and [`crate::storage`] to write.
//!
//! - [`stage1`]: `ReportCreated`: resolve the seeds, collect their friends and followers (and,
//!   per report type, profiles and subscriptions), keep the valid users;
//! - [`stage2`]: `Stage2Created`: the connections among the valid users (DEFAULT), the
//!   communities of the audience (SUB_GRAPH);
//! - [`handshakes`]: `Stage2Created` for HANDSHAKES: shortest chains of 1 to 3 handshakes;
//! - [`output`]: writing a stage's tables and validating them;
//! - [`relations`]: what each user is to each seed (`relations_{main_id}`, the relation codes,
//!   the minimal link keeping every seed in `df_connect`);
//! - [`communities`]: the community columns of `subscriptions_df` and `df_subs`;
//! - [`completeness`]: what became of every VK call a stage planned (the manifest's section,
//!   and `INCOMPLETE_DATA` past `parser.max_failed_share`).
//!
//! Errors become a [`JobFailure`] here, once: what another attempt could fix (network, rate
//! limits, storage) is retryable; what it could not (a dead author token, nothing collected, no
//! stage 1) is not.

pub mod communities;
pub mod completeness;
pub mod graph;
pub mod handshakes;
pub mod output;
pub mod relations;
pub mod schema;
pub mod stage1;
pub mod stage2;

use std::sync::Arc;

use async_trait::async_trait;

use crate::events::{FailureReason, IncomingEvent};
pub use crate::settings::EdgeStrategy;
use crate::settings::ParserSettings;
use crate::storage::{Storage, StorageError};
use crate::stream::{JobContext, JobFailure, JobHandler, JobOutput};
use crate::tables::TableError;
use crate::vk::orchestrator::Orchestrator;
use crate::vk::resolve::Resolver;
use crate::vk::VkError;

/// Why a stage failed, before it is told to the consumer as a [`JobFailure`].
#[derive(Debug, thiserror::Error)]
pub enum ParserError {
    /// VK (or the token manager) failed.
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
    /// Nothing (or not enough) was collected; says which table.
    #[error("{0}")]
    Empty(String),
    /// Stage 2 found no stage 1 output.
    #[error("{0}")]
    Stage1NotFound(String),
    /// A bug: an encoding or decoding task panicked.
    #[error("the {what} task failed: {source}")]
    Task {
        /// Which task: `encoding` or `decoding`.
        what: &'static str,
        /// Why it ended.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The report is larger than the configured limits allow.
    #[error("{0}")]
    TooLarge(String),
    /// More planned VK calls failed than `parser.max_failed_share` allows; says what is missing.
    #[error("{0}")]
    Incomplete(String),
    /// The job's tokens cannot cover the calls the stage needs today; names the shortfall.
    #[error("{0}")]
    QuotaShortfall(String),
    /// The job was asked to stop.
    #[error("cancelled")]
    Cancelled,
}

impl From<ParserError> for JobFailure {
    fn from(error: ParserError) -> JobFailure {
        let message = error.to_string();
        match error {
            ParserError::Vk(vk) => JobFailure::for_reason(vk.failure_reason(), message),
            ParserError::Storage(StorageError::NotFound(_)) => {
                JobFailure::permanent(FailureReason::Stage1NotFound, message)
            }
            ParserError::Storage(_) => JobFailure::retryable(FailureReason::StorageError, message),
            ParserError::Table(_) | ParserError::Key(_) | ParserError::Task { .. } => {
                JobFailure::permanent(FailureReason::InternalError, message)
            }
            ParserError::Empty(_) => JobFailure::permanent(FailureReason::EmptyResult, message),
            ParserError::Stage1NotFound(_) => {
                JobFailure::permanent(FailureReason::Stage1NotFound, message)
            }
            // The event asked for more than this deployment accepts: the backend must change
            // it, so the same answer as any other event the service refuses.
            ParserError::TooLarge(_) => JobFailure::permanent(FailureReason::InvalidEvent, message),
            ParserError::Incomplete(_) => {
                JobFailure::permanent(FailureReason::IncompleteData, message)
            }
            // Retrying before VK's day turns would fail the same way.
            ParserError::QuotaShortfall(_) => {
                JobFailure::permanent(FailureReason::VkRateLimit, message)
            }
            ParserError::Cancelled => JobFailure::retryable(FailureReason::InternalError, message),
        }
    }
}

/// The report parser: one per process, shared by all jobs.
pub struct ReportParser {
    orchestrator: Orchestrator,
    storage: Arc<dyn Storage>,
    resolver: Resolver,
    stage2: stage2::Policy,
    max_audience: usize,
}

impl ReportParser {
    /// A parser reaching VK through `orchestrator` and writing to `storage`.
    pub fn new(
        orchestrator: Orchestrator,
        storage: Arc<dyn Storage>,
        settings: &ParserSettings,
    ) -> ReportParser {
        ReportParser {
            orchestrator,
            storage,
            resolver: Resolver::new(),
            stage2: stage2::Policy {
                strategy: settings.edge_strategy,
                max_failed_share: settings.max_failed_share,
            },
            max_audience: settings.max_audience,
        }
    }

    /// The VK orchestrator (for its request statistics).
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.orchestrator
    }
}

#[async_trait]
impl JobHandler for ReportParser {
    async fn run(&self, event: IncomingEvent, ctx: JobContext) -> Result<JobOutput, JobFailure> {
        // The consumer routes each job kind to its own handler: another kind here is a wiring
        // mistake, refused before any token is taken.
        let (job, author, stage) = match &event {
            IncomingEvent::ReportCreated(e) => (e.job_id.clone(), e.user_id, Ok(e)),
            IncomingEvent::Stage2Created(e) => (e.job_id.clone(), e.user_id, Err(e)),
            IncomingEvent::SuggestPostCreated(_) | IncomingEvent::CommunityTaskCreated(_) => {
                return Err(JobFailure::permanent(
                    FailureReason::InvalidEvent,
                    "another job kind's event reached the report parser",
                ))
            }
        };
        let mut session = self
            .orchestrator
            .session(&job, author)
            .await
            .map_err(|e| JobFailure::from(ParserError::from(e)))?;
        let result = tokio::select! {
            result = async {
                match stage {
                    Ok(e) => {
                        let limits = stage1::Limits {
                            max_audience: self.max_audience,
                            max_failed_share: self.stage2.max_failed_share,
                        };
                        stage1::run(e, &mut session, &self.resolver, self.storage.as_ref(), limits, &ctx).await
                    }
                    Err(e) => {
                        stage2::run(e, &mut session, self.storage.as_ref(), self.stage2, &ctx).await
                    }
                }
            } => result,
            _ = ctx.cancel.cancelled() => Err(ParserError::Cancelled),
        };
        session.finish_after(&result).await;
        result.map_err(JobFailure::from)
    }
}
