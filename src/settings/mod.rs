//! The typed settings tree and how it is loaded.
//!
//! Three layers, later ones win: the compiled-in `config/default.toml` (which names and documents
//! every key), an optional TOML file, then environment variables. Two kinds of variable are read:
//! the seed service's names (`REDIS_URL`, `BUCKET_NAME`, ..., listed in [`SEED_ENV`]) so existing
//! deployments keep working, and `VKP_<SECTION>__<KEY>` for every key.
//!
//! Environment values are strings; each one is converted to the type its key has in the defaults
//! (so `MAX_RETRIES=5` is an integer but an API key made of digits stays a string). The merged
//! tree is then deserialized once into [`Settings`] with unknown keys denied, and checked; an
//! error names the key, the layer it came from and what was expected. Nothing else in the crate
//! reads the environment.
//!
//! The file runs past 600 lines only for its unit tests, which sit next to the code they pin;
//! the code is about 490 lines.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::secret::Secret;

mod checks;
mod layers;
mod location;

pub use checks::key_hash_tag;
use layers::Layered;
pub use location::{LocationError, StorageLocation};

/// The compiled-in defaults: every key, with comments.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Environment variable that names an optional settings file (the `--config` flag wins).
pub const CONFIG_FILE_ENV: &str = "VKP_CONFIG";

/// The seed service's environment names and the keys they set, applied in this order (so
/// `TOKEN_SERVICE_API_KEY` overrides its fallback `API_KEY`).
pub const SEED_ENV: &[(&str, &str)] = &[
    ("MAX_CONCURRENT_MESSAGES", "service.max_concurrent_messages"),
    ("MAX_RETRIES", "service.max_retries"),
    ("REDIS_URL", "redis.url"),
    ("STREAM_VK_PARSER", "redis.stream_vk_parser"),
    ("STREAM_STATUS_CHANGE", "redis.stream_status_change"),
    ("STREAM_GRAPH_WORKER", "redis.stream_graph_worker"),
    ("CG_VK_PARSER", "redis.consumer_group"),
    ("STREAM_VK_POSTER", "redis.stream_vk_poster"),
    ("CG_VK_POSTER", "redis.poster_group"),
    ("STREAM_VK_COMMUNITY", "redis.stream_vk_community"),
    ("CG_VK_COMMUNITY", "redis.community_group"),
    ("CONSUMER_VK_PARSER", "redis.consumer_name"),
    ("TOKEN_SERVICE_URL", "tokens.service_url"),
    ("API_KEY", "tokens.service_api_key"),
    ("TOKEN_SERVICE_API_KEY", "tokens.service_api_key"),
    ("VK_STATIC_TOKENS", "tokens.static_tokens"),
    ("VK_API_BASE_URL", "vk.api_base_url"),
    ("VK_API_VERSION", "vk.api_version"),
    ("VK_REQUEST_INTERVAL", "vk.request_interval"),
    ("VK_CALLS_PER_EXECUTE", "vk.calls_per_execute"),
    ("VK_REQUEST_TIMEOUT", "vk.request_timeout"),
    ("STORAGE_URL", "storage.url"),
    ("BUCKET_NAME", "storage.bucket_name"),
    ("AWS_ENDPOINT_URL", "storage.endpoint_url"),
    ("AWS_REGION", "storage.region"),
    ("AWS_ACCESS_KEY_ID", "storage.access_key_id"),
    ("AWS_SECRET_ACCESS_KEY", "storage.secret_access_key"),
];

/// Prefix of the generic variables, `VKP_<SECTION>__<KEY>`.
const GENERIC_ENV_PREFIX: &str = "VKP_";

/// Why settings could not be loaded. Messages never contain secret values.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The settings file could not be read.
    #[error("cannot read settings file {path}: {source}")]
    ReadFile {
        /// The file given by `--config` or `VKP_CONFIG`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The settings file is not valid TOML.
    #[error("settings file {path} is not valid TOML: {message}")]
    ParseFile {
        /// The file given by `--config` or `VKP_CONFIG`.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A `VKP_…` variable names a key that does not exist.
    #[error("environment variable {var} names an unknown setting `{key}`")]
    UnknownEnv {
        /// The variable.
        var: String,
        /// The key it maps to.
        key: String,
    },
    /// A key has a value of the wrong type or out of range.
    #[error("setting `{key}` (from {origin}): {message}")]
    Invalid {
        /// Dotted key, e.g. `service.max_retries`.
        key: String,
        /// Which layer set it: the defaults, the file, or an environment variable.
        origin: String,
        /// What was expected.
        message: String,
    },
}

/// Everything the service can be configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Process-wide behaviour.
    pub service: ServiceSettings,
    /// Redis connection, streams and group.
    pub redis: RedisSettings,
    /// How the stream consumer runs jobs.
    pub stream: StreamSettings,
    /// How the stages collect.
    pub parser: ParserSettings,
    /// The operations port.
    pub ops: OpsSettings,
    /// Where VK tokens come from.
    pub tokens: TokenSettings,
    /// The VK API and its pacing.
    pub vk: VkSettings,
    /// How suggested-post campaigns are posted.
    pub poster: PosterSettings,
    /// How community tasks collect.
    pub community: CommunitySettings,
    /// Where stage files are written.
    pub storage: StorageSettings,
    /// Logging.
    pub telemetry: TelemetrySettings,
}

/// `[service]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// Development (pretty logs) or production (JSON logs).
    pub environment: Environment,
    /// Jobs run at once by this process.
    pub max_concurrent_messages: NonZeroU32,
    /// Deliveries of one entry before it is failed and dead-lettered.
    pub max_retries: NonZeroU32,
}

/// Where the process runs; decides the log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Human-readable logs.
    Development,
    /// JSON logs, one object per line.
    Production,
}

/// `[redis]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// Connection URL (may carry a password: printed redacted); in cluster mode a comma list of
    /// seed node URLs.
    pub url: RedisUrl,
    /// Whether `url` points at a Redis Cluster.
    pub cluster: bool,
    /// Hash tag put in the job keys (and required in the stream names) so that every script's
    /// keys share one cluster slot; empty: plain names, as on a single server.
    pub hash_tag: String,
    /// Input stream.
    pub stream_vk_parser: String,
    /// Status output stream.
    pub stream_status_change: String,
    /// Graph-worker output stream.
    pub stream_graph_worker: String,
    /// Consumer group name.
    pub consumer_group: String,
    /// Input stream of suggested-post campaigns.
    pub stream_vk_poster: String,
    /// Consumer group of the campaign stream.
    pub poster_group: String,
    /// Input stream of community tasks (decoded, not yet consumed).
    pub stream_vk_community: String,
    /// Consumer group of the community stream.
    pub community_group: String,
    /// This process's consumer name; filled with `<host>-<pid>` at load when empty.
    pub consumer_name: String,
}

/// `[stream]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// XREADGROUP BLOCK time.
    #[serde(with = "humantime_serde")]
    pub block: Duration,
    /// Heartbeat period of a running job.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Life of a job lease after its last heartbeat.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// Idle time after which a pending entry is reclaimed.
    #[serde(with = "humantime_serde")]
    pub min_idle: Duration,
    /// Period of the reclaim pass.
    #[serde(with = "humantime_serde")]
    pub reclaim_interval: Duration,
    /// Longest a job may run.
    #[serde(with = "humantime_serde")]
    pub max_job_runtime: Duration,
    /// Least time between two IN_PROGRESS updates of a job.
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
    /// Time running jobs get to finish on shutdown.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Approximate MAXLEN of the output streams.
    pub output_maxlen: NonZeroU32,
    /// Prefix of the service's own keys.
    pub key_prefix: String,
}

/// `[parser]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserSettings {
    /// DEFAULT stage 2's way of finding friendships.
    pub edge_strategy: EdgeStrategy,
    /// Most users the seeds' friend and follower lists may hold; a larger report is refused
    /// (`INVALID_EVENT`) before its profiles are read, instead of exhausting memory.
    pub max_audience: usize,
    /// Largest share of a stage's planned VK calls that may fail (not skipped for privacy or
    /// deactivation) before the stage fails with `INCOMPLETE_DATA` instead of completing.
    pub max_failed_share: f64,
}

/// `[poster]`: the suggested-post job kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PosterSettings {
    /// Whether this process consumes the campaign stream at all.
    pub enabled: bool,
    /// Least time between two wall.post calls of one campaign (the RPS guard paces on top).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Random extra spacing between posts, 0 to this, drawn per post.
    #[serde(with = "humantime_serde")]
    pub jitter: Duration,
    /// How long after it was sent a post whose answer was lost is sent again with its guid
    /// (VK deduplicates a guid for about an hour); later it is recorded `unknown`.
    #[serde(with = "humantime_serde")]
    pub guid_window: Duration,
    /// wall.post calls one sender's token may make per quota day (VK publishes 50).
    pub daily_posts: u64,
    /// Extra pause after a captcha before the next post.
    #[serde(with = "humantime_serde")]
    pub captcha_pause: Duration,
    /// Pause after flood control (9) before the same post is tried again, once.
    #[serde(with = "humantime_serde")]
    pub flood_pause: Duration,
}

/// `[community]`: the community-task job kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunitySettings {
    /// Whether this process consumes the community-task stream at all.
    pub enabled: bool,
    /// Least share of a community's `count` a members scan must fetch; below it the community
    /// fails (`below_threshold`) and no `left` list is written for it.
    pub min_members_ratio: f64,
    /// Pause between the calls of the sequential retry that follows the packed scan.
    #[serde(with = "humantime_serde")]
    pub retry_interval: Duration,
    /// How often a list whose `count` moved during its scan is read again from the start.
    pub max_rescans: u32,
    /// Tokens a MEMBERS task reads its pages on at once: the job's own and up to this many
    /// minus one leased global tokens more (1: the job's own only).
    pub parallel_tokens: u32,
}

/// `[ops]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsSettings {
    /// Where /healthz, /readyz and /metrics listen.
    pub listen: std::net::SocketAddr,
}

/// `[tokens]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Token manager base URL; `None` when only static tokens are used.
    #[serde(deserialize_with = "optional_url")]
    pub service_url: Option<Url>,
    /// Token manager API key.
    pub service_api_key: Secret,
    /// Tokens for deployments without a token manager.
    pub static_tokens: Vec<Secret>,
}

/// `[vk]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VkSettings {
    /// Base URL; requests go to `{api_base_url}/method/{name}`.
    pub api_base_url: Url,
    /// Sent as `v`.
    pub api_version: String,
    /// Minimum interval between two requests of one token.
    #[serde(with = "humantime_serde")]
    pub request_interval: Duration,
    /// API calls packed into one `execute` (1 to 25).
    pub calls_per_execute: u8,
    /// Longest `code` an execute may carry; a batch whose script would be longer is cut.
    pub execute_max_code_bytes: usize,
    /// Timeout of one HTTP request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Random extra spacing, 0 to this.
    #[serde(with = "humantime_serde")]
    pub request_jitter: Duration,
    /// Requests of a token paced more gently at first.
    pub warmup_requests: u32,
    /// The warm-up spacing factor (>= 1).
    pub warmup_factor: f64,
    /// Requests in flight at once across all tokens.
    pub max_in_flight: NonZeroU32,
    /// The UTC hour VK's quota day turns (21: midnight in Moscow).
    pub quota_reset_utc_hour: u32,
    /// Calls of one read method one token is assumed to have per quota day (VK publishes no
    /// number; error 29 is reported after about 5,000): what stage 2 plans against.
    pub daily_quota: u64,
    /// Executes one job keeps in flight on its token, so VK's latency does not set the pace:
    /// the RPS guard still grants them no closer than the token's spacing.
    pub in_flight_per_token: NonZeroU32,
    /// Whether a token's pace is kept in this process only or shared through Redis.
    pub rate_limiter: RateLimiterKind,
    /// Moves to a global token one job may make.
    pub max_global_switches: u32,
    /// Pause before the first move; doubled for each further one.
    #[serde(with = "humantime_serde")]
    pub switch_backoff: Duration,
    /// Rotate a leased token after at least this many requests...
    pub rotate_every_min: NonZeroU32,
    /// ...and at most this many.
    pub rotate_every_max: NonZeroU32,
    /// Every Nth execute carries a decoy call; 0 = off. Only with `stealth = "on"`.
    pub decoy_every: u32,
    /// A standalone decoy request after about this many real requests of a token (drawn from
    /// half to one and a half times it); 0 = off. Only with `stealth = "on"`.
    pub standalone_decoy_every: u32,
    /// The seed service's masking (jitter, decoys) on or off; off for benchmarks.
    pub stealth: Stealth,
    /// Consecutive executes with a call failed for a reason about the token or VK after which
    /// the job moves to a fresh token; 0 = off.
    pub rotate_after_errors: u32,
    /// Whether an execute whose list calls all came back empty is asked again on a fresh token.
    pub rotate_on_empty_lists: bool,
    /// Passes over the calls still failed at the end of a read, each on a fresh token.
    pub retry_passes: u32,
}

/// `vk.stealth`: whether requests are masked as the seed service masked them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stealth {
    /// Random spacing (`request_jitter`), decoys inside executes (`decoy_every`) and between
    /// requests (`standalone_decoy_every`).
    On,
    /// None of it: every request carries real calls, spaced by `request_interval` alone.
    Off,
}

/// Where a token's pace is kept (`vk.rate_limiter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimiterKind {
    /// In this process only: right when no other process uses the same tokens.
    Local,
    /// Also in Redis (`redis.url`), shared by every replica: for tokens used by several.
    Redis,
}

/// DEFAULT stage 2's way of finding friendships among the valid users (`parser.edge_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeStrategy {
    /// `friends.getMutual(source = seed, 100 targets)`, 25 per execute: 2,500 pairs a request;
    /// `friends.get` only for users in no seed's friend list.
    Mutual,
    /// `friends.get` of every valid user, intersected with the set.
    Friends,
}

/// `[storage]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// `s3://bucket/prefix`, `file:///path` or a path; empty: derived (see default.toml).
    pub url: String,
    /// S3 bucket used when `url` is empty.
    pub bucket_name: String,
    /// S3-compatible endpoint; `None` means AWS.
    #[serde(deserialize_with = "optional_url")]
    pub endpoint_url: Option<Url>,
    /// S3 region.
    pub region: String,
    /// S3 access key id.
    pub access_key_id: Secret,
    /// S3 secret access key.
    pub secret_access_key: Secret,
    /// The resolved location, computed from `url` and `bucket_name` at load.
    #[serde(skip)]
    pub location: StorageLocation,
}

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// Log filter used when `RUST_LOG` is not set.
    pub log_level: String,
}

/// A Redis URL whose password never reaches a log; in cluster mode, several (a comma list).
#[derive(Clone)]
pub struct RedisUrl(Vec<Url>);

impl RedisUrl {
    /// The URL to connect with (contains the password, if any); of a list, the first.
    pub fn expose(&self) -> &str {
        self.0[0].as_str()
    }

    /// Every URL of the list (passwords included), in order.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(Url::as_str)
    }

    /// How many URLs the list holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true (a parsed list holds at least one URL); here for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, url) in self.0.iter().enumerate() {
            let mut shown = url.clone();
            if shown.password().is_some() {
                // Cannot fail: only URLs with a host can carry a password.
                let _ = shown.set_password(Some("***"));
            }
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(shown.as_str())?;
        }
        Ok(())
    }
}

impl RedisUrl {
    /// Parses a `redis://`, `rediss://` or `redis+unix://` URL, or a comma list of them; the
    /// error never echoes `raw`.
    pub fn parse(raw: &str) -> Result<RedisUrl, String> {
        let mut urls = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            // The parse error of `url` never echoes its input, so a password cannot leak through it.
            let url = Url::parse(part)
                .map_err(|e| format!("expected a Redis URL (redis://host:port): {e}"))?;
            match url.scheme() {
                "redis" | "rediss" | "redis+unix" | "unix" => urls.push(url),
                other => {
                    return Err(format!(
                    "expected a redis://, rediss:// or redis+unix:// URL, found scheme `{other}`"
                ))
                }
            }
        }
        if urls.is_empty() {
            return Err("expected a Redis URL (redis://host:port)".to_owned());
        }
        Ok(RedisUrl(urls))
    }

    /// Whether every URL is a TCP one (a cluster's nodes announce host:port, never a socket).
    pub fn all_tcp(&self) -> bool {
        self.0
            .iter()
            .all(|u| matches!(u.scheme(), "redis" | "rediss"))
    }
}

impl<'de> Deserialize<'de> for RedisUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        RedisUrl::parse(&raw).map_err(serde::de::Error::custom)
    }
}

fn optional_url<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Url>, D::Error> {
    let raw = String::deserialize(deserializer)?;
    if raw.trim().is_empty() {
        return Ok(None);
    }
    Url::parse(raw.trim())
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("expected an absolute URL or \"\": {e}")))
}

impl Settings {
    /// Loads the three layers: defaults, the file (if any), then `env`.
    ///
    /// `env` is passed in (the binary gives `std::env::vars()`) so tests need not touch the
    /// process environment.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Settings, SettingsError> {
        let mut tree = Layered::defaults();
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.get(CONFIG_FILE_ENV).map(PathBuf::from));
        if let Some(path) = file {
            tree.apply_file(&path)?;
        }
        tree.apply_env(env)?;
        checks::settings(tree, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_every_key_is_commented() {
        let s = Settings::load(None, &HashMap::new()).unwrap();
        assert_eq!(s.redis.stream_vk_parser, "stream:parser:vk");
        assert_eq!(s.vk.request_interval, Duration::from_millis(420));
        // Every key line in the defaults is preceded by a comment line (the file is the manual).
        let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
                continue;
            }
            let documented = lines[..i]
                .iter()
                .rev()
                .take_while(|l| !l.trim().is_empty())
                .any(|l| l.trim_start().starts_with('#'));
            assert!(documented, "undocumented key in default.toml: {line}");
        }
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let env = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load(None, &env)
    }

    fn refused_key(pairs: &[(&str, &str)]) -> String {
        match load(pairs) {
            Err(SettingsError::Invalid { key, .. }) => key,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    const TAGGED: [(&str, &str); 5] = [
        ("STREAM_VK_PARSER", "stream:{vkp}:parser:vk"),
        ("STREAM_VK_POSTER", "stream:{vkp}:poster:vk"),
        ("STREAM_VK_COMMUNITY", "stream:{vkp}:community:vk"),
        ("STREAM_STATUS_CHANGE", "stream:{vkp}:report:status-change"),
        ("STREAM_GRAPH_WORKER", "stream:{vkp}:graph-worker"),
    ];

    #[test]
    fn hash_tags_are_read_as_redis_cluster_reads_them() {
        assert_eq!(key_hash_tag("stream:{vkp}:parser:vk"), Some("vkp"));
        assert_eq!(key_hash_tag("a{b}{c}"), Some("b"));
        assert_eq!(key_hash_tag("a{}{c}"), None);
        assert_eq!(key_hash_tag("stream:parser:vk"), None);
        assert_eq!(key_hash_tag("a{b"), None);
    }

    #[test]
    fn cluster_mode_takes_a_node_list_a_tag_and_tagged_streams() {
        let mut pairs = vec![
            (
                "REDIS_URL",
                "redis://127.0.0.1:7001, redis://:pw@127.0.0.1:7002",
            ),
            ("VKP_REDIS__CLUSTER", "true"),
            ("VKP_REDIS__HASH_TAG", "vkp"),
        ];
        pairs.extend(TAGGED);
        let s = load(&pairs).unwrap();
        assert!(s.redis.cluster);
        assert_eq!(s.redis.url.len(), 2);
        assert_eq!(
            s.redis.url.to_string(),
            "redis://127.0.0.1:7001,redis://:***@127.0.0.1:7002"
        );
    }

    #[test]
    fn cluster_mode_refuses_names_that_would_split_a_script_across_slots() {
        let cluster = [("VKP_REDIS__CLUSTER", "true")];
        assert_eq!(refused_key(&cluster), "redis.hash_tag");
        let mut untagged = vec![
            ("VKP_REDIS__CLUSTER", "true"),
            ("VKP_REDIS__HASH_TAG", "vkp"),
        ];
        untagged.extend(&TAGGED[..4]);
        assert_eq!(refused_key(&untagged), "redis.stream_graph_worker");
        let mut other_tag = untagged.clone();
        other_tag.push(("STREAM_GRAPH_WORKER", "stream:{other}:graph-worker"));
        assert_eq!(refused_key(&other_tag), "redis.stream_graph_worker");
        let mut prefix = vec![
            ("VKP_REDIS__CLUSTER", "true"),
            ("VKP_REDIS__HASH_TAG", "vkp"),
        ];
        prefix.extend(TAGGED);
        prefix.push(("VKP_STREAM__KEY_PREFIX", "{x}"));
        assert_eq!(refused_key(&prefix), "stream.key_prefix");
        let mut unix = vec![
            ("VKP_REDIS__CLUSTER", "true"),
            ("VKP_REDIS__HASH_TAG", "vkp"),
        ];
        unix.extend(TAGGED);
        unix.push(("REDIS_URL", "redis+unix:///tmp/redis.sock"));
        assert_eq!(refused_key(&unix), "redis.url");
    }

    #[test]
    fn a_single_server_takes_one_url_and_keeps_plain_names() {
        assert_eq!(
            refused_key(&[("REDIS_URL", "redis://a:1,redis://b:2")]),
            "redis.url"
        );
        let s = load(&[]).unwrap();
        assert!(!s.redis.cluster);
        assert!(s.redis.hash_tag.is_empty());
        assert_eq!(
            refused_key(&[("VKP_REDIS__HASH_TAG", "vkp")]),
            "redis.stream_vk_parser"
        );
    }
}
