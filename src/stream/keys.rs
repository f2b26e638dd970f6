//! The Redis keys of the consumer: input, output and dead-letter streams, and per job its state
//! record and lease. Job keys are built from a validated [`JobId`], so a job id cannot address
//! another key.
//!
//! In a Redis Cluster a script's keys must live in one slot, and the scripts touch the streams
//! and a job's keys together. With `redis.hash_tag` set, the job keys carry `{tag}` after the
//! prefix and the dead-letter stream inherits the input stream's tag; settings refuse stream
//! names without the same tag. Without a tag the names are the plain ones of a single server.

use crate::events::JobKind;
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
    /// Prefix of job keys: `stream.key_prefix`, then `:{tag}` when `redis.hash_tag` is set,
    /// then `:post` for the poster and `:community` for community tasks (a job id of one kind
    /// may equal another kind's).
    pub key_prefix: String,
}

impl StreamNames {
    /// The names of one job kind's consumer, from settings: reports read `stream:parser:vk` in
    /// `cg_vk_parser`, the poster `stream:poster:vk` in `cg_vk_poster`; both report on the same
    /// status stream.
    pub fn from_settings(settings: &Settings, kind: JobKind) -> StreamNames {
        let redis = &settings.redis;
        let (input, group) = match kind {
            JobKind::Report => (&redis.stream_vk_parser, &redis.consumer_group),
            JobKind::Poster => (&redis.stream_vk_poster, &redis.poster_group),
            JobKind::Community => (&redis.stream_vk_community, &redis.community_group),
        };
        let mut key_prefix = if redis.hash_tag.is_empty() {
            settings.stream.key_prefix.clone()
        } else {
            format!("{}:{{{}}}", settings.stream.key_prefix, redis.hash_tag)
        };
        match kind {
            JobKind::Report => {}
            JobKind::Poster => key_prefix.push_str(":post"),
            JobKind::Community => key_prefix.push_str(":community"),
        }
        StreamNames {
            input: input.clone(),
            dead: format!("{input}:dead"),
            status: redis.stream_status_change.clone(),
            graph: redis.stream_graph_worker.clone(),
            group: group.clone(),
            consumer: redis.consumer_name.clone(),
            key_prefix,
        }
    }

    /// The keys of one job stage.
    pub fn job(&self, job: &JobId, stage: Stage) -> JobKeys {
        let state = format!("{}:job:{job}:stage{stage}", self.key_prefix);
        JobKeys {
            ledger: format!("{state}:ledger"),
            state,
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
    /// Hash: what the handler recorded as it went (the poster's per-community outcomes), kept
    /// across attempts and written only under the lease ([`super::ledger`]).
    pub ledger: String,
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::settings::key_hash_tag;

    fn names(env: &[(&str, &str)]) -> StreamNames {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StreamNames::from_settings(
            &Settings::load(None, &env).expect("settings load"),
            JobKind::Report,
        )
    }

    #[test]
    fn without_a_tag_the_names_are_the_plain_ones() {
        let names = names(&[]);
        let job = JobId::parse("job-1").unwrap();
        let keys = names.job(&job, Stage::One);
        assert_eq!(names.dead, "stream:parser:vk:dead");
        assert_eq!(keys.state, "vkp:job:job-1:stage1");
        assert_eq!(keys.lease, "vkp:lease:job-1");
        assert_eq!(keys.ledger, "vkp:job:job-1:stage1:ledger");
    }

    #[test]
    fn the_poster_has_its_own_stream_group_and_job_keys() {
        let env = HashMap::new();
        let settings = Settings::load(None, &env).expect("settings load");
        let names = StreamNames::from_settings(&settings, JobKind::Poster);
        let keys = names.job(&JobId::parse("job-1").unwrap(), Stage::One);
        assert_eq!(names.input, "stream:poster:vk");
        assert_eq!(names.dead, "stream:poster:vk:dead");
        assert_eq!(names.group, "cg_vk_poster");
        assert_eq!(names.status, "stream:report:status-change");
        assert_eq!(keys.state, "vkp:post:job:job-1:stage1");
        assert_eq!(keys.lease, "vkp:post:lease:job-1");
    }

    #[test]
    fn with_a_tag_every_script_key_shares_it() {
        let names = names(&[
            ("VKP_REDIS__HASH_TAG", "vkp"),
            ("STREAM_VK_PARSER", "stream:{vkp}:parser:vk"),
            ("STREAM_VK_POSTER", "stream:{vkp}:poster:vk"),
            ("STREAM_VK_COMMUNITY", "stream:{vkp}:community:vk"),
            ("STREAM_STATUS_CHANGE", "stream:{vkp}:report:status-change"),
            ("STREAM_GRAPH_WORKER", "stream:{vkp}:graph-worker"),
        ]);
        let job = JobId::parse("job-1").unwrap();
        let keys = names.job(&job, Stage::Two);
        assert_eq!(keys.state, "vkp:{vkp}:job:job-1:stage2");
        for key in [
            &names.input,
            &names.dead,
            &names.status,
            &names.graph,
            &keys.state,
            &keys.lease,
            &keys.ledger,
        ] {
            assert_eq!(key_hash_tag(key), Some("vkp"), "{key}");
        }
    }
}
