//! `StatusUpdate` and `GraphReady`: what the service publishes.
//!
//! Event ids are UUIDv5 over (report, job, stage, transition), not random: when a completion is
//! retried after a crash, the republished event carries the same id, so consumers that drop
//! duplicates by id see each transition once.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{JobId, ReportId, ReportType, Stage, VkUserId};

/// Namespace of this service's event ids (a fixed random UUID; changing it changes every id).
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b0f_52d4_9a3e_4c61_8d2a_1f5e_7c90_b3a4);

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Started or progressing.
    InProgress,
    /// Stage 1 done; the backend may publish Stage2Created.
    Stage1Completed,
    /// Stage 2 done; a GraphReady follows on the graph-worker stream.
    Completed,
    /// Given up; `failureReason` says why.
    Failed,
}

impl JobStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::InProgress => "IN_PROGRESS",
            JobStatus::Stage1Completed => "STAGE1_COMPLETED",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Failed => "FAILED",
        }
    }
}

/// Why a job failed: one value per cause the backend can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureReason {
    /// The author's token is dead on its first request: the user must reconnect VK.
    VkReconnectRequired,
    /// No global token could be leased.
    VkGlobalPoolExhausted,
    /// VK kept refusing for rate limits.
    VkRateLimit,
    /// VK denied access to what the report needs.
    VkAccessDenied,
    /// A seed does not exist or is deleted.
    VkUserNotFound,
    /// VK answered an error with no better mapping.
    VkApiError,
    /// VK (or the token manager) could not be reached.
    NetworkError,
    /// Reading or writing stage files failed.
    StorageError,
    /// The event itself is malformed.
    InvalidEvent,
    /// Nothing was collected.
    EmptyResult,
    /// More of the stage's planned VK calls failed than `parser.max_failed_share` allows: the
    /// stage would have holes, so it does not complete.
    IncompleteData,
    /// Stage 2 found no stage 1 output.
    Stage1NotFound,
    /// The entry was delivered too often without success.
    MaxRetriesExceeded,
    /// A bug: anything else.
    InternalError,
}

impl FailureReason {
    /// Whether another attempt may end otherwise: the network, VK's rate limits, a pool that
    /// may refill, VK's own hiccups.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureReason::NetworkError
                | FailureReason::VkRateLimit
                | FailureReason::VkGlobalPoolExhausted
                | FailureReason::VkApiError
        )
    }

    /// Every reason, in declaration order.
    pub const ALL: [FailureReason; 14] = [
        FailureReason::VkReconnectRequired,
        FailureReason::VkGlobalPoolExhausted,
        FailureReason::VkRateLimit,
        FailureReason::VkAccessDenied,
        FailureReason::VkUserNotFound,
        FailureReason::VkApiError,
        FailureReason::NetworkError,
        FailureReason::StorageError,
        FailureReason::InvalidEvent,
        FailureReason::EmptyResult,
        FailureReason::IncompleteData,
        FailureReason::Stage1NotFound,
        FailureReason::MaxRetriesExceeded,
        FailureReason::InternalError,
    ];

    /// The wire name (as in `failureReason`), also used in logs, metrics and the state record.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::VkReconnectRequired => "VK_RECONNECT_REQUIRED",
            FailureReason::VkGlobalPoolExhausted => "VK_GLOBAL_POOL_EXHAUSTED",
            FailureReason::VkRateLimit => "VK_RATE_LIMIT",
            FailureReason::VkAccessDenied => "VK_ACCESS_DENIED",
            FailureReason::VkUserNotFound => "VK_USER_NOT_FOUND",
            FailureReason::VkApiError => "VK_API_ERROR",
            FailureReason::NetworkError => "NETWORK_ERROR",
            FailureReason::StorageError => "STORAGE_ERROR",
            FailureReason::InvalidEvent => "INVALID_EVENT",
            FailureReason::EmptyResult => "EMPTY_RESULT",
            FailureReason::IncompleteData => "INCOMPLETE_DATA",
            FailureReason::Stage1NotFound => "STAGE1_NOT_FOUND",
            FailureReason::MaxRetriesExceeded => "MAX_RETRIES_EXCEEDED",
            FailureReason::InternalError => "INTERNAL_ERROR",
        }
    }

    /// The reason with this wire name.
    pub fn parse(raw: &str) -> Option<FailureReason> {
        FailureReason::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a stage's files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifacts {
    /// The stage's storage prefix, e.g. `DEFAULT/1_2_3/job42_stage1/`.
    pub prefix: String,
    /// The manifest's key, written last.
    pub manifest: String,
}

/// Published on the status stream at every transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusUpdate {
    /// Deterministic per (report, job, stage, transition).
    pub event_id: String,
    /// The report.
    pub report_id: ReportId,
    /// The job.
    pub job_id: JobId,
    /// 1 or 2.
    pub stage: Stage,
    /// The new status.
    pub status: JobStatus,
    /// 0 to 100.
    pub progress: u8,
    /// Set exactly when `status` is FAILED.
    pub failure_reason: Option<FailureReason>,
    /// For people: what happened.
    pub message: String,
    /// Set on STAGE1_COMPLETED and COMPLETED (and on the FAILED end of a community task whose
    /// tables were written).
    pub artifacts: Option<Artifacts>,
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: String,
    /// The final status of a campaign or a community task: its counts (docs/events.md).
    /// Absent from every report status, as the backend has always read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<serde_json::Value>,
}

impl StatusUpdate {
    /// `IN_PROGRESS` at `progress` percent (clamped to 0..=99: 100 is reserved for completion).
    pub fn in_progress(
        report_id: &ReportId,
        job_id: &JobId,
        stage: Stage,
        progress: u8,
        message: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        let progress = progress.min(99);
        Self::build(
            report_id,
            job_id,
            stage,
            JobStatus::InProgress,
            progress,
            None,
            message.into(),
            None,
            at,
        )
    }

    /// `STAGE1_COMPLETED` (stage 1) or `COMPLETED` (stage 2), with the stage's files.
    pub fn completed(
        report_id: &ReportId,
        job_id: &JobId,
        stage: Stage,
        artifacts: Artifacts,
        message: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        let status = match stage {
            Stage::One => JobStatus::Stage1Completed,
            Stage::Two => JobStatus::Completed,
        };
        Self::done(
            report_id,
            job_id,
            stage,
            status,
            artifacts,
            message.into(),
            at,
        )
    }

    /// `COMPLETED` whatever the stage: the end of a one-stage job (a campaign).
    pub fn completed_final(
        report_id: &ReportId,
        job_id: &JobId,
        stage: Stage,
        artifacts: Artifacts,
        message: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        let status = JobStatus::Completed;
        Self::done(
            report_id,
            job_id,
            stage,
            status,
            artifacts,
            message.into(),
            at,
        )
    }

    fn done(
        report_id: &ReportId,
        job_id: &JobId,
        stage: Stage,
        status: JobStatus,
        artifacts: Artifacts,
        message: String,
        at: DateTime<Utc>,
    ) -> Self {
        let artifacts = Some(artifacts);
        Self::build(
            report_id, job_id, stage, status, 100, None, message, artifacts, at,
        )
    }

    /// `FAILED` with its reason.
    pub fn failed(
        report_id: &ReportId,
        job_id: &JobId,
        stage: Stage,
        reason: FailureReason,
        message: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        Self::build(
            report_id,
            job_id,
            stage,
            JobStatus::Failed,
            100,
            Some(reason),
            message.into(),
            None,
            at,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        report_id: &ReportId,
        job_id: &JobId,
        stage: Stage,
        status: JobStatus,
        progress: u8,
        failure_reason: Option<FailureReason>,
        message: String,
        artifacts: Option<Artifacts>,
        at: DateTime<Utc>,
    ) -> Self {
        // Progress is part of the transition only while in progress: two updates at 40% are
        // the same event, a FAILED is one event whatever its reason.
        let transition = match status {
            JobStatus::InProgress => format!("{}:{progress}", status.as_str()),
            _ => status.as_str().to_owned(),
        };
        StatusUpdate {
            event_id: event_id(&format!("status:{report_id}:{job_id}:{stage}:{transition}")),
            report_id: report_id.clone(),
            job_id: job_id.clone(),
            stage,
            status,
            progress,
            failure_reason,
            message,
            artifacts,
            timestamp: rfc3339(at),
            metrics: None,
        }
    }

    /// This status with the job's counts.
    pub fn with_metrics(mut self, metrics: Option<serde_json::Value>) -> Self {
        self.metrics = metrics;
        self
    }

    /// This (FAILED) status with the files the job wrote before it ended so.
    pub fn with_artifacts(mut self, artifacts: Artifacts) -> Self {
        self.artifacts = Some(artifacts);
        self
    }

    /// The stream's `event_type` value.
    pub const EVENT_TYPE: &'static str = "StatusUpdate";
}

/// Published on the graph-worker stream once stage 2 succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphReady {
    /// Deterministic per (report, job).
    pub event_id: String,
    /// The report.
    pub report_id: ReportId,
    /// The job.
    pub job_id: JobId,
    /// What was collected.
    pub report_type: ReportType,
    /// The resolved seeds.
    pub main_ids: Vec<VkUserId>,
    /// The stage 2 storage prefix.
    pub prefix: String,
    /// The stage 2 manifest key.
    pub manifest: String,
}

impl GraphReady {
    /// Builds the event for a finished stage 2.
    pub fn new(
        report_id: &ReportId,
        job_id: &JobId,
        report_type: ReportType,
        main_ids: Vec<VkUserId>,
        artifacts: Artifacts,
    ) -> Self {
        GraphReady {
            event_id: event_id(&format!("graph-ready:{report_id}:{job_id}")),
            report_id: report_id.clone(),
            job_id: job_id.clone(),
            report_type,
            main_ids,
            prefix: artifacts.prefix,
            manifest: artifacts.manifest,
        }
    }

    /// The stream's `event_type` value.
    pub const EVENT_TYPE: &'static str = "GraphReady";
}

fn event_id(name: &str) -> String {
    Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()).to_string()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_has_one_wire_name_everywhere() {
        for reason in FailureReason::ALL {
            let serde = serde_json::to_value(reason).unwrap();
            assert_eq!(serde.as_str(), Some(reason.as_str()), "{reason:?}");
            assert_eq!(FailureReason::parse(reason.as_str()), Some(reason));
            assert_eq!(reason.to_string(), reason.as_str());
        }
        assert_eq!(FailureReason::parse("NOPE"), None);
    }
}
