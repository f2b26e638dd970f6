//! The Redis keys of the consumer: input, output and dead-letter streams, and per job its state
//! record and lease. Job keys are built from a validated [`JobId`], so a job id cannot address
//! another key.

use crate::ids::{JobId, Stage};
use crate::settings::Settings;

/// Names of the streams and the group.
#[derive(Debug, Clone)]
pub struct StreamNames {
    /// The input stream.
    pub input: String,
    /// Where undecodable and exhausted entries go: `{input}:dead`.
    pub dead: String,
    /// The status stream.
    pub status: String,
    /// The graph-worker stream.
    pub graph: String,
    /// The consumer group.
    pub group: String,
    /// This process in the group.
    pub consumer: String,
    /// Prefix of job keys.
    pub key_prefix: String,
}

impl StreamNames {
    /// From settings.
    pub fn from_settings(settings: &Settings) -> StreamNames {
        let redis = &settings.redis;
        StreamNames {
            input: redis.stream_vk_parser.clone(),
            dead: format!("{}:dead", redis.stream_vk_parser),
            status: redis.stream_status_change.clone(),
            graph: redis.stream_graph_worker.clone(),
            group: redis.consumer_group.clone(),
            consumer: redis.consumer_name.clone(),
            key_prefix: settings.stream.key_prefix.clone(),
        }
    }

    /// The keys of one job stage.
    pub fn job(&self, job: &JobId, stage: Stage) -> JobKeys {
        JobKeys {
            state: format!("{}:job:{job}:stage{stage}", self.key_prefix),
            lease: format!("{}:lease:{job}", self.key_prefix),
        }
    }
}

/// The keys of one job stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKeys {
    /// Hash: state (running | retrying | completed | failed), attempt, owner, entry, started_at,
    /// finished_at, result, last_reason, last_error.
    pub state: String,
    /// String `{entry}|{consumer}|{stage}` with a TTL: one per job, shared by both stages.
    pub lease: String,
}
