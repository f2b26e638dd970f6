//! From the merged tree to checked [`Settings`]: one deserialization with unknown keys denied,
//! then the checks a type cannot express (ranges, orderings between keys, the Redis topology),
//! each error naming its key and the layer that set it.

use std::collections::HashMap;

use super::layers::Layered;
use super::{RedisSettings, Settings, SettingsError, StorageLocation};

/// Deserializes the merged tree and checks it; `env` names the consumer when no name is set.
pub(super) fn settings(
    layered: Layered,
    env: &HashMap<String, String>,
) -> Result<Settings, SettingsError> {
    let checker = Checker {
        origins: layered.origins,
    };
    let mut settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(layered.root))
        .map_err(|e| {
            let key = e.path().to_string();
            SettingsError::Invalid {
                origin: checker.origin_of(&key),
                message: e.into_inner().message().to_owned(),
                key,
            }
        })?;
    check_vk(&checker, &settings)?;
    check_parser(&checker, &settings)?;
    check_stream(&checker, &settings)?;
    check_poster(&checker, &settings)?;
    check_community(&checker, &settings)?;
    check_redis_names(&checker, &settings.redis)?;
    check_redis_topology(
        &settings.redis,
        &settings.stream.key_prefix,
        &|key: &str| checker.origin_of(key),
    )?;
    if settings.redis.consumer_name.trim().is_empty() {
        settings.redis.consumer_name = default_consumer_name(env);
    }
    settings.storage.location =
        StorageLocation::resolve(&settings.storage.url, &settings.storage.bucket_name)
            .map_err(|e| checker.invalid("storage.url", e.to_string()))?;
    Ok(settings)
}

/// Which layer set each key, for the error of a check.
struct Checker {
    origins: HashMap<String, String>,
}

impl Checker {
    fn origin_of(&self, key: &str) -> String {
        self.origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| "config/default.toml".to_owned())
    }

    fn invalid(&self, key: &str, message: String) -> SettingsError {
        SettingsError::Invalid {
            key: key.to_owned(),
            origin: self.origin_of(key),
            message,
        }
    }

    /// `Ok` when `ok`, else the error for `key` with `message`.
    fn check(&self, key: &str, ok: bool, message: &str) -> Result<(), SettingsError> {
        if ok {
            Ok(())
        } else {
            Err(self.invalid(key, message.to_owned()))
        }
    }
}

fn check_vk(c: &Checker, settings: &Settings) -> Result<(), SettingsError> {
    let vk = &settings.vk;
    c.check(
        "vk.calls_per_execute",
        (1..=25).contains(&vk.calls_per_execute),
        "expected 1 to 25 (VK runs at most 25 API calls per execute)",
    )?;
    c.check(
        "vk.quota_reset_utc_hour",
        vk.quota_reset_utc_hour < 24,
        "expected an hour from 0 to 23",
    )?;
    c.check("vk.daily_quota", vk.daily_quota > 0, "expected at least 1")?;
    c.check(
        "vk.execute_max_code_bytes",
        vk.execute_max_code_bytes >= 1024,
        "expected at least 1024 bytes",
    )?;
    c.check(
        "vk.request_interval",
        !vk.request_interval.is_zero(),
        "expected a positive duration such as \"420ms\"",
    )?;
    c.check(
        "vk.warmup_factor",
        vk.warmup_factor >= 1.0 && vk.warmup_factor <= 10.0,
        "expected a factor from 1 to 10",
    )?;
    c.check(
        "vk.rotate_every_max",
        vk.rotate_every_max >= vk.rotate_every_min,
        "expected at least vk.rotate_every_min",
    )?;
    c.check(
        "vk.request_timeout",
        !vk.request_timeout.is_zero(),
        "expected a positive duration such as \"30s\"",
    )
}

fn check_parser(c: &Checker, settings: &Settings) -> Result<(), SettingsError> {
    c.check(
        "parser.max_failed_share",
        (0.0..=1.0).contains(&settings.parser.max_failed_share),
        "expected a share from 0 to 1",
    )?;
    c.check(
        "parser.max_audience",
        settings.parser.max_audience > 0,
        "expected a positive number of users",
    )
}

fn check_stream(c: &Checker, settings: &Settings) -> Result<(), SettingsError> {
    let stream = &settings.stream;
    c.check(
        "stream.min_idle",
        stream.min_idle > stream.heartbeat_interval,
        "expected longer than stream.heartbeat_interval (else live jobs would be reclaimed)",
    )?;
    c.check(
        "stream.lease_ttl",
        stream.lease_ttl > stream.heartbeat_interval,
        "expected longer than stream.heartbeat_interval (else live leases would expire)",
    )?;
    for (key, value) in [
        ("stream.block", stream.block),
        ("stream.heartbeat_interval", stream.heartbeat_interval),
        ("stream.reclaim_interval", stream.reclaim_interval),
        ("stream.max_job_runtime", stream.max_job_runtime),
    ] {
        c.check(key, !value.is_zero(), "expected a positive duration")?;
    }
    c.check(
        "stream.key_prefix",
        !stream.key_prefix.is_empty()
            && stream
                .key_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-:{}".contains(&b)),
        "expected a non-empty name of [A-Za-z0-9_-:{}]",
    )
}

fn check_poster(c: &Checker, settings: &Settings) -> Result<(), SettingsError> {
    let poster = &settings.poster;
    c.check(
        "poster.interval",
        !poster.interval.is_zero(),
        "expected a positive interval between posts (against VK at least 500ms, the default)",
    )?;
    c.check(
        "poster.guid_window",
        !poster.guid_window.is_zero() && poster.guid_window < std::time::Duration::from_secs(3600),
        "expected a positive duration under VK's one-hour guid window",
    )?;
    c.check(
        "poster.daily_posts",
        poster.daily_posts > 0,
        "expected at least one post a day",
    )?;
    let redis = &settings.redis;
    c.check(
        "redis.stream_vk_poster",
        redis.stream_vk_poster != redis.stream_vk_parser,
        "expected a stream of its own, not the report stream",
    )?;
    c.check(
        "redis.stream_vk_community",
        redis.stream_vk_community != redis.stream_vk_parser
            && redis.stream_vk_community != redis.stream_vk_poster,
        "expected a stream of its own, not the report or campaign stream",
    )
}

fn check_community(c: &Checker, settings: &Settings) -> Result<(), SettingsError> {
    let community = &settings.community;
    c.check(
        "community.min_members_ratio",
        community.min_members_ratio > 0.0 && community.min_members_ratio <= 1.0,
        "expected a share in (0, 1], e.g. 0.95",
    )?;
    c.check(
        "community.retry_interval",
        !community.retry_interval.is_zero(),
        "expected a positive pause between the sequential retries",
    )?;
    c.check(
        "community.parallel_tokens",
        (1..=16).contains(&community.parallel_tokens),
        "expected 1 to 16 tokens",
    )
}

fn check_redis_names(c: &Checker, redis: &RedisSettings) -> Result<(), SettingsError> {
    for (key, value) in [
        ("redis.stream_vk_parser", &redis.stream_vk_parser),
        ("redis.stream_status_change", &redis.stream_status_change),
        ("redis.stream_graph_worker", &redis.stream_graph_worker),
        ("redis.consumer_group", &redis.consumer_group),
        ("redis.stream_vk_poster", &redis.stream_vk_poster),
        ("redis.poster_group", &redis.poster_group),
        ("redis.stream_vk_community", &redis.stream_vk_community),
        ("redis.community_group", &redis.community_group),
    ] {
        c.check(key, !value.trim().is_empty(), "expected a non-empty name")?;
    }
    Ok(())
}

/// The hash tag of a key as Redis Cluster computes it: the text between the first `{` and the
/// next `}`, when that is not empty; `None` when the whole key is hashed.
pub fn key_hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let rest = &key[open + 1..];
    let close = rest.find('}')?;
    (close > 0).then(|| &rest[..close])
}

/// A single server takes one URL; a cluster needs TCP node URLs and a hash tag that every
/// stream name carries (the scripts touch the input, output and dead-letter streams and the job
/// keys together, and a script's keys must share one slot).
fn check_redis_topology(
    redis: &RedisSettings,
    key_prefix: &str,
    origin_of: &dyn Fn(&str) -> String,
) -> Result<(), SettingsError> {
    let invalid = |key: &str, message: String| SettingsError::Invalid {
        key: key.to_owned(),
        origin: origin_of(key),
        message,
    };
    let tag = redis.hash_tag.as_str();
    if !tag.is_empty() && (tag.contains('{') || tag.contains('}')) {
        return Err(invalid(
            "redis.hash_tag",
            "expected the tag without braces (\"vkp\", used as {vkp})".to_owned(),
        ));
    }
    if !redis.cluster {
        if redis.url.len() > 1 {
            return Err(invalid(
                "redis.url",
                "a list of URLs needs redis.cluster = true (a single server takes one URL)"
                    .to_owned(),
            ));
        }
        if tag.is_empty() {
            return Ok(());
        }
    } else {
        if !redis.url.all_tcp() {
            return Err(invalid(
                "redis.url",
                "cluster mode needs redis:// or rediss:// node URLs (cluster nodes are reached over TCP)"
                    .to_owned(),
            ));
        }
        if tag.is_empty() {
            return Err(invalid(
                "redis.hash_tag",
                "cluster mode needs a hash tag (e.g. \"vkp\"), and the stream names must carry it as {vkp}"
                    .to_owned(),
            ));
        }
    }
    // The job keys are `{key_prefix}:{tag}:…`: a different tag in the prefix would win.
    if key_hash_tag(key_prefix).is_some_and(|t| t != tag) {
        return Err(invalid(
            "stream.key_prefix",
            format!("with redis.hash_tag = \"{tag}\" the prefix must carry no other hash tag"),
        ));
    }
    for (key, name) in [
        ("redis.stream_vk_parser", &redis.stream_vk_parser),
        ("redis.stream_status_change", &redis.stream_status_change),
        ("redis.stream_graph_worker", &redis.stream_graph_worker),
        ("redis.stream_vk_poster", &redis.stream_vk_poster),
        ("redis.stream_vk_community", &redis.stream_vk_community),
    ] {
        if key_hash_tag(name) != Some(tag) {
            return Err(invalid(
                key,
                format!(
                    "with redis.hash_tag = \"{tag}\" the stream name must carry {{{tag}}} as its hash tag (e.g. \"stream:{{{tag}}}:parser:vk\"), found \"{name}\""
                ),
            ));
        }
    }
    Ok(())
}

/// `<host>-<pid>`: unique per process, stable for its lifetime, readable in `XINFO CONSUMERS`.
fn default_consumer_name(env: &HashMap<String, String>) -> String {
    let host = env
        .get("HOSTNAME")
        .cloned()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "vk-parser".to_owned());
    format!("{host}-{}", std::process::id())
}
