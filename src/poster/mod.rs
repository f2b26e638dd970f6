//! The poster: the second job kind. A `SuggestPostCreated` campaign publishes one post into the
//! suggested posts (or, where the sender is an editor, the wall) of up to 500 communities, on
//! the sender's token alone, and reports one outcome per community.
//!
//! It runs on the same engine as the reports: the stream consumer (leases, fencing, reclaim,
//! dead letters, drain) delivers the event to [`Poster`], the VK stack paces and retries its
//! calls, storage keeps the files it posts and the table it writes. What is its own:
//! - `record`: the per-community ledger entries that make posting exactly-once across crashes
//!   (the pure half, unit-tested);
//! - `campaign`: the order of work (resolve, check rights, upload, post, pace, record) and what
//!   each VK answer makes of a community;
//! - `output`: `posts.parquet` and the campaign manifest.
//!
//! A campaign completes whatever its communities' outcomes (a closed wall is an answer, not a
//! failure); it fails only when nothing could be tried: the sender's token dead before the first
//! post, a file the event names missing from storage or refused by VK's upload server.

mod campaign;
pub mod output;
pub mod record;

use std::sync::Arc;

use async_trait::async_trait;

use crate::events::{FailureReason, IncomingEvent};
use crate::settings::PosterSettings;
use crate::storage::{Storage, StorageError};
use crate::stream::{JobContext, JobFailure, JobHandler, JobOutput, LedgerError};
use crate::tables::TableError;
use crate::vk::orchestrator::Orchestrator;
use crate::vk::resolve::Resolver;
use crate::vk::VkError;

pub use output::Outcome;

/// Why a campaign attempt did not finish.
#[derive(Debug, thiserror::Error)]
pub enum PosterError {
    /// VK (or the token manager) failed in a way that ends the attempt.
    #[error(transparent)]
    Vk(#[from] VkError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The results could not be encoded.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The job ledger could not be read or written (or the lease passed to a peer).
    #[error("job ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// An attachment the event names cannot be posted (missing, too large, refused by VK's
    /// upload server); says which.
    #[error("{0}")]
    Attachment(String),
    /// A bug.
    #[error("{0}")]
    Internal(String),
    /// The job was asked to stop.
    #[error("cancelled")]
    Cancelled,
}

impl From<PosterError> for JobFailure {
    fn from(error: PosterError) -> JobFailure {
        let message = error.to_string();
        match error {
            PosterError::Vk(vk) => JobFailure::for_reason(vk.failure_reason(), message),
            PosterError::Storage(_) => JobFailure::retryable(FailureReason::StorageError, message),
            PosterError::Ledger(_) => JobFailure::retryable(FailureReason::NetworkError, message),
            PosterError::Attachment(_) => {
                JobFailure::permanent(FailureReason::InvalidEvent, message)
            }
            PosterError::Table(_) | PosterError::Internal(_) => {
                JobFailure::permanent(FailureReason::InternalError, message)
            }
            PosterError::Cancelled => JobFailure::retryable(FailureReason::InternalError, message),
        }
    }
}

/// The campaign [`JobHandler`].
pub struct Poster {
    orchestrator: Orchestrator,
    storage: Arc<dyn Storage>,
    resolver: Resolver,
    settings: PosterSettings,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Poster {
    /// A poster over the VK stack and storage.
    pub fn new(
        orchestrator: Orchestrator,
        storage: Arc<dyn Storage>,
        settings: PosterSettings,
    ) -> Poster {
        Poster {
            orchestrator,
            storage,
            resolver: Resolver::new(),
            settings,
            metrics: None,
        }
    }

    /// Also counts posts by outcome in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Poster {
        self.metrics = Some(metrics);
        self
    }
}

#[async_trait]
impl JobHandler for Poster {
    async fn run(&self, event: IncomingEvent, ctx: JobContext) -> Result<JobOutput, JobFailure> {
        let IncomingEvent::SuggestPostCreated(campaign) = event else {
            return Err(JobFailure::permanent(
                FailureReason::InvalidEvent,
                "another job kind's event reached the poster",
            ));
        };
        let mut session = self
            .orchestrator
            .sender_session(&campaign.job_id, campaign.user_id)
            .await
            .map_err(|e| JobFailure::from(PosterError::from(e)))?;
        let work = campaign::Campaign {
            event: &campaign,
            storage: self.storage.as_ref(),
            resolver: &self.resolver,
            settings: &self.settings,
            metrics: self.metrics.as_deref(),
            ctx: &ctx,
        };
        let result = tokio::select! {
            result = work.run(&mut session) => result,
            _ = ctx.cancel.cancelled() => Err(PosterError::Cancelled),
        };
        session.finish_after(&result).await;
        result.map_err(JobFailure::from)
    }
}
