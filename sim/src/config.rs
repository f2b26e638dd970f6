//! Every setting of the simulator, in one typed struct that is both the command line of the
//! `vk-sim` binary (clap) and the library's configuration (`SimConfig::default()` is exactly what
//! the binary does with no arguments). Parsing of the compact string forms (`--quota`,
//! `--fault`) happens once, in [`SimConfig::validate`], into domain types the rest of the crate uses.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;

/// Settings of one simulator instance. Durations given in seconds are *simulated* seconds:
/// they are divided by `time_scale` (see `--time-scale`).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "vk-sim",
    version,
    about = "A deterministic VK API simulator with token-manager and proxy emulation",
    long_about = "A deterministic VK API simulator with token-manager and proxy emulation.\n\n\
        Serves VK methods at /method/{name}, the token manager at /tokens/..., test controls at \
        /sim/... on the API listener, and a forwarding proxy on the proxy listener. Prints where it \
        listens and which tokens it issued, then serves until Ctrl-C. See sim/README.md."
)]
pub struct SimConfig {
    /// Address of the API listener (VK methods, token manager, /sim controls); port 0 = a free port
    #[arg(long, default_value = "127.0.0.1:0")]
    pub api_addr: SocketAddr,

    /// Address of the proxy listener; port 0 = a free port
    #[arg(long, default_value = "127.0.0.1:0")]
    pub proxy_addr: SocketAddr,

    /// Seed of everything random: the graph, token strings, captcha and fault draws
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Number of users (ids 1..=N); ids 1..=6 are the fixed named users (see /sim/truth/named)
    #[arg(long, default_value_t = 100_000)]
    pub users: u32,

    /// Number of communities (ids 1..=N): groups, pages and events
    #[arg(long, default_value_t = 10_000)]
    pub groups: u32,

    /// Share of active users with a closed profile
    #[arg(long, default_value_t = 0.10)]
    pub closed_share: f64,

    /// Share of users deactivated as "deleted"
    #[arg(long, default_value_t = 0.02)]
    pub deleted_share: f64,

    /// Share of users deactivated as "banned"
    #[arg(long, default_value_t = 0.01)]
    pub banned_share: f64,

    /// Share of users with a custom screen name (the others are reachable as id{N})
    #[arg(long, default_value_t = 0.30)]
    pub screen_name_share: f64,

    /// Number of tokens in the global pool the token manager leases out
    #[arg(long, default_value_t = 4)]
    pub global_pool: u32,

    /// Requests per (simulated) second one token may make (VK: 3 for user tokens)
    #[arg(long, default_value_t = 3)]
    pub rate_per_second: u32,

    /// Time scale: every simulated duration is divided by it (rate windows, flood control, the
    /// quota day, token lifetimes). 100 means 300 requests/s per token at the default rate
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,

    /// Rate-limit violations (requests answered 6) within --flood-window-secs after which a
    /// token gets error 9 (flood control) for --flood-penalty-secs
    #[arg(long, default_value_t = 20)]
    pub flood_threshold: u32,

    /// Window (simulated seconds) in which rate-limit violations are counted for flood control
    #[arg(long, default_value_t = 10.0)]
    pub flood_window_secs: f64,

    /// How long (simulated seconds) a token that kept breaking the rate limit gets error 9
    #[arg(long, default_value_t = 60.0)]
    pub flood_penalty_secs: f64,

    /// Per-token daily quota of a method, METHOD=N (repeatable; inner execute calls count too).
    /// A day is 86400 simulated seconds. Replaces the defaults when given. Defaults: VK's
    /// published wall.post 50, wall.get 5000, wall.search 1000; 5000 for each read method the
    /// service uses (unpublished: users report 29 after about 1,000 to 6,000 calls of one
    /// method a day; sim/README.md names the reports)
    #[arg(long = "quota", value_name = "METHOD=N", default_values_t = DEFAULT_QUOTAS.iter().map(|q| q.to_string()))]
    pub quotas: Vec<String>,

    /// Probability that a request (after auth and rate limit) is answered with captcha error 14
    #[arg(long, default_value_t = 0.0)]
    pub captcha_rate: f64,

    /// Global fault injection, KIND=RATE (repeatable). Kinds: error10, error100, http500, http502, http503,
    /// slow, truncated, invalid_json, drop
    #[arg(long = "fault", value_name = "KIND=RATE")]
    pub faults: Vec<String>,

    /// Per-method fault injection, METHOD:KIND=RATE (repeatable); overrides the global rate of
    /// that kind for that method
    #[arg(long = "method-fault", value_name = "METHOD:KIND=RATE")]
    pub method_faults: Vec<String>,

    /// Delay of a "slow" fault in real milliseconds (not scaled), meant to exceed client timeouts
    #[arg(long, default_value_t = 30_000)]
    pub slow_delay_ms: u64,

    /// Maximum API calls inside one execute
    #[arg(long, default_value_t = 25)]
    pub execute_max_calls: usize,

    /// Operations budget of one execute (unpublished by VK; about 10,000)
    #[arg(long, default_value_t = 10_000)]
    pub execute_max_operations: u64,

    /// Largest execute response in bytes; above it the answer is error 13
    #[arg(long, default_value_t = 5 * 1024 * 1024)]
    pub execute_max_response_bytes: usize,

    /// Largest execute `code` in bytes; longer code is refused with error 12 (unpublished by
    /// VK: 64 KiB, see sim/README.md)
    #[arg(long, default_value_t = 64 * 1024)]
    pub execute_max_code_bytes: usize,

    /// Probability that one inner call of an execute fails on its own with error 10 while the
    /// execute itself succeeds (an `execute_errors` entry and a `false` slot)
    #[arg(long, default_value_t = 0.002)]
    pub inner_fault_rate: f64,

    /// Rights (OAuth scopes) of user tokens, comma-separated. Default: the seed service's
    /// OAuth link (scope=wall,photos,docs,offline,groups): no `friends`
    #[arg(long, default_value = "wall,photos,docs,offline,groups")]
    pub user_token_scopes: String,

    /// Rights (OAuth scopes) of the global pool's tokens, comma-separated
    #[arg(long, default_value = "wall,photos,docs,offline,groups,friends")]
    pub pool_token_scopes: String,

    /// Kind setting: return `counters` for every id of a many-id users.get (VK returns them
    /// only when one user is asked for)
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub bulk_counters: bool,

    /// Latency model: `on` (answers wait base + per inner call + per KB, with jitter, scaled
    /// by --time-scale) or `off` (answers as fast as the machine allows)
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub latency: String,

    /// Latency: fixed part of every answer, simulated milliseconds
    #[arg(long, default_value_t = 150.0)]
    pub latency_base_ms: f64,

    /// Latency: added per inner call of an execute, simulated milliseconds
    #[arg(long, default_value_t = 10.0)]
    pub latency_per_call_ms: f64,

    /// Latency: added per KiB of the response body, simulated milliseconds
    #[arg(long, default_value_t = 0.2)]
    pub latency_per_kb_ms: f64,

    /// Latency: relative jitter, each answer's wait is drawn within ±this share of the model
    #[arg(long, default_value_t = 0.2)]
    pub latency_jitter: f64,

    /// Users with a huge audience ("celebrities"); the most-followed is the named `celebrity`
    #[arg(long, default_value_t = 5)]
    pub celebrities: u32,

    /// Share of all users following the most-followed celebrity; each next one has half
    #[arg(long, default_value_t = 0.9)]
    pub celebrity_share: f64,

    /// Share of active users who hide some friends (at most 30 each, VK's old cap) from
    /// everyone but themselves: friends.get and friends.getMutual leave them out
    #[arg(long, default_value_t = 0.05)]
    pub hidden_friends_share: f64,

    /// Share of communities that are deactivated (deleted or banned)
    #[arg(long, default_value_t = 0.02)]
    pub deactivated_groups_share: f64,

    /// Members of the big community: when above 0, one open public page gets exactly this many
    /// members drawn from the active users (at most their number; 0 leaves the graph as drawn
    /// and names the open community with the most members)
    #[arg(long, default_value_t = 0)]
    pub big_community_members: u32,

    /// Share of a community's members that leave per simulated day, with about as many active
    /// non-members joining (unpublished by VK; 1% a day, see sim/README.md). Day 0 is the
    /// generated graph; each later day is drawn against it
    #[arg(long, default_value_t = 0.01)]
    pub member_churn: f64,

    /// Probability that a wall.post (direct or inside execute) is answered with captcha error 14
    /// on top of --captcha-rate: VK asks for a captcha on posting far more often than on reads
    /// (unpublished; 1 in 50 by default, its own random stream, so the same seed gives the same
    /// captchas)
    #[arg(long, default_value_t = 0.02)]
    pub wall_post_captcha_rate: f64,

    /// How long (simulated seconds) wall.post's `guid` deduplicates: the same (user, wall, guid)
    /// within it returns the first post's id and creates nothing; later it creates a new post
    /// (VK's guid is not an idempotency ledger; clients report about an hour)
    #[arg(long, default_value_t = 3600.0)]
    pub guid_window_secs: f64,

    /// Most media (photos, docs, videos...) one wall.post may attach (VK: 10; more is error 100)
    #[arg(long, default_value_t = 10)]
    pub wall_post_max_media: usize,

    /// Most documents (files) one wall.post may attach (dev.vk.com, wall.post: "you can attach
    /// a single file to the post"; more is error 100)
    #[arg(long, default_value_t = 1)]
    pub wall_post_max_docs: usize,

    /// Longest wall.post `message` in characters (more is error 100; VK's limit is unpublished,
    /// 16,384 is what clients cap posts at)
    #[arg(long, default_value_t = 16_384)]
    pub wall_post_max_message_chars: usize,

    /// Largest photo a wall upload server accepts, bytes (VK: 50 MB; larger ones come back as
    /// an empty photo list, which photos.saveWallPhoto refuses)
    #[arg(long, default_value_t = 50_000_000)]
    pub photo_max_bytes: usize,

    /// Largest document a wall upload server accepts, bytes (VK: 200 MB; larger: an upload error)
    #[arg(long, default_value_t = 200_000_000)]
    pub doc_max_bytes: usize,

    /// How long (simulated seconds) an upload may wait for photos.saveWallPhoto / docs.save
    /// before it is refused as stale (unpublished by VK; an upload is meant to be saved at once)
    #[arg(long, default_value_t = 3600.0)]
    pub upload_ttl_secs: f64,

    /// Lifetime of a user token issued by the token manager (simulated seconds)
    #[arg(long, default_value_t = 86_400)]
    pub user_token_ttl_secs: u64,

    /// Whether user tokens issued by the token manager are bound to the proxy's address (then
    /// they work only through the proxy, as real user tokens bound to the user's IP do)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub user_tokens_ip_bound: bool,

    /// The address the proxy forwards requests as (IP-bound tokens are bound to it)
    #[arg(long, default_value = "10.13.37.1")]
    pub proxy_ip: IpAddr,

    /// API key the token manager requires in the X-Api-Key header (or Authorization: Bearer)
    #[arg(long, default_value = "sim-manager-key")]
    pub manager_api_key: String,

    /// Key the proxy requires in the X-Proxy-Key header
    #[arg(long, default_value = "sim-proxy-key")]
    pub proxy_key: String,
}

/// The default daily quotas (`--quota`): VK's published ones and the read methods' 5000.
pub const DEFAULT_QUOTAS: &[&str] = &[
    "wall.post=50",
    "wall.get=5000",
    "wall.search=1000",
    "friends.get=5000",
    "friends.getMutual=5000",
    "users.get=5000",
    "users.getFollowers=5000",
    "users.getSubscriptions=5000",
    "groups.getById=5000",
    "groups.getMembers=5000",
    "wall.getComments=5000",
    "wall.getReposts=5000",
    "likes.getList=5000",
];

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::parse_from(["vk-sim"])
    }
}

impl SimConfig {
    /// The defaults with a graph small enough for tests (12,000 users, 400 communities; about a
    /// second to generate in a debug build) that still has the > 5,000-friend hub.
    pub fn small() -> SimConfig {
        SimConfig {
            users: 12_000,
            groups: 400,
            ..SimConfig::default()
        }
    }

    /// These settings with every strictness of VK that the simulator once lacked turned off:
    /// every token has `friends`, counters in bulk, no latency, quotas only on wall.*, no
    /// celebrities, no hidden friends, no inner-call faults, no code-size limit, no
    /// deactivated communities (but the named one), no wall.post captcha. For measuring what each kindness was worth (BENCHMARKS.md),
    /// never as a default.
    pub fn kind(self) -> SimConfig {
        SimConfig {
            user_token_scopes: self.pool_token_scopes.clone(),
            bulk_counters: true,
            latency: "off".into(),
            quotas: DEFAULT_QUOTAS[..3].iter().map(|q| q.to_string()).collect(),
            celebrities: 0,
            hidden_friends_share: 0.0,
            inner_fault_rate: 0.0,
            execute_max_code_bytes: usize::MAX,
            deactivated_groups_share: 0.0,
            wall_post_captcha_rate: 0.0,
            ..self
        }
    }
}

/// Fault kinds the simulator can inject.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// VK error 10 "Internal server error" (HTTP 200 with an error body).
    Error10,
    /// VK error 100 for a request that is fine: what a client sees after VK changes a method,
    /// a per-call failure no retry fixes.
    Error100,
    /// HTTP 500 with an HTML body.
    Http500,
    /// HTTP 502 with an HTML body.
    Http502,
    /// HTTP 503 with an HTML body.
    Http503,
    /// The answer comes after `slow_delay_ms`.
    Slow,
    /// A correct answer cut in half (valid HTTP, invalid JSON).
    Truncated,
    /// HTTP 200 with a body that is not JSON.
    InvalidJson,
    /// The connection is closed without an answer.
    Drop,
}

impl FaultKind {
    /// All kinds, in the order draws are made.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Drop,
        FaultKind::Http500,
        FaultKind::Http502,
        FaultKind::Http503,
        FaultKind::Slow,
        FaultKind::Truncated,
        FaultKind::InvalidJson,
        FaultKind::Error10,
        FaultKind::Error100,
    ];

    /// Parses the command-line spelling (`error10`, `http500`, ...).
    pub fn parse(s: &str) -> Option<FaultKind> {
        Some(match s {
            "error10" => FaultKind::Error10,
            "error100" => FaultKind::Error100,
            "http500" => FaultKind::Http500,
            "http502" => FaultKind::Http502,
            "http503" => FaultKind::Http503,
            "slow" => FaultKind::Slow,
            "truncated" => FaultKind::Truncated,
            "invalid_json" => FaultKind::InvalidJson,
            "drop" => FaultKind::Drop,
            _ => return None,
        })
    }

    /// The spelling used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Error10 => "error10",
            FaultKind::Error100 => "error100",
            FaultKind::Http500 => "http500",
            FaultKind::Http502 => "http502",
            FaultKind::Http503 => "http503",
            FaultKind::Slow => "slow",
            FaultKind::Truncated => "truncated",
            FaultKind::InvalidJson => "invalid_json",
            FaultKind::Drop => "drop",
        }
    }
}

/// Fault rates: a global rate per kind plus per-method overrides. Also the JSON body of
/// `POST /sim/faults`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRates {
    /// Rate per kind for every method.
    #[serde(default)]
    pub global: HashMap<FaultKind, f64>,
    /// Rate per kind for one method (overrides the global rate of that kind).
    #[serde(default)]
    pub methods: HashMap<String, HashMap<FaultKind, f64>>,
}

impl FaultRates {
    /// The rate of `kind` for `method`.
    pub fn rate(&self, method: &str, kind: FaultKind) -> f64 {
        self.methods
            .get(method)
            .and_then(|m| m.get(&kind))
            .or_else(|| self.global.get(&kind))
            .copied()
            .unwrap_or(0.0)
    }

    /// Whether any fault can fire at all (lets the hot path skip the random draws).
    pub fn any(&self) -> bool {
        self.global.values().any(|r| *r > 0.0)
            || self
                .methods
                .values()
                .flat_map(|m| m.values())
                .any(|r| *r > 0.0)
    }
}

/// A setting that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    /// The setting's name.
    pub setting: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

pub(crate) fn config_err(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        reason: reason.into(),
    }
}

/// The settings converted to the types the simulator works with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub cfg: SimConfig,
    /// Rights of user tokens and of pool tokens.
    pub user_scopes: BTreeSet<String>,
    pub pool_scopes: BTreeSet<String>,
    /// The latency model, `None` when `--latency off`.
    pub latency: Option<Latency>,
    pub quotas: HashMap<String, u64>,
    pub faults: FaultRates,
    /// Length of the rate-limit window (one simulated second).
    pub rate_window: Duration,
    pub flood_window: Duration,
    pub flood_penalty: Duration,
    /// Length of a quota day.
    pub day: Duration,
    pub user_token_ttl: Duration,
    /// wall.post's guid window and an upload's lifetime before it is saved.
    pub guid_window: Duration,
    pub upload_ttl: Duration,
}

/// VK's access rights (dev.vk.com, "Access rights" of user tokens) the simulator knows.
pub const KNOWN_SCOPES: &[&str] = &[
    "notify",
    "friends",
    "photos",
    "audio",
    "video",
    "stories",
    "pages",
    "status",
    "notes",
    "messages",
    "wall",
    "ads",
    "offline",
    "docs",
    "groups",
    "notifications",
    "stats",
    "email",
    "market",
    "phone",
];

/// The latency model: how long an answer waits before it is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Latency {
    pub base_ms: f64,
    pub per_call_ms: f64,
    pub per_kb_ms: f64,
    pub jitter: f64,
    pub time_scale: f64,
}

impl Latency {
    /// The wait, real milliseconds, of an answer of `bytes` after `inner_calls` inner calls;
    /// `draw` in [-1, 1] places it within the jitter.
    pub fn wait_ms(&self, inner_calls: u32, bytes: usize, draw: f64) -> f64 {
        let model = self.base_ms
            + self.per_call_ms * f64::from(inner_calls)
            + self.per_kb_ms * bytes as f64 / 1024.0;
        model * (1.0 + self.jitter * draw.clamp(-1.0, 1.0)) / self.time_scale
    }
}

fn parse_rate(setting: &'static str, s: &str) -> Result<f64, ConfigError> {
    let r: f64 = s
        .parse()
        .map_err(|_| config_err(setting, format!("{s:?} is not a number")))?;
    if !(0.0..=1.0).contains(&r) {
        return Err(config_err(setting, format!("rate {r} is outside 0..=1")));
    }
    Ok(r)
}

impl SimConfig {
    /// Checks every setting and converts it to domain types.
    pub(crate) fn validate(&self) -> Result<Settings, ConfigError> {
        if self.users < 10 {
            return Err(config_err("users", "at least 10 users are needed"));
        }
        if self.groups < 1 {
            return Err(config_err("groups", "at least 1 community is needed"));
        }
        if !(self.time_scale > 0.0 && self.time_scale.is_finite()) {
            return Err(config_err("time_scale", "must be a positive number"));
        }
        if self.rate_per_second == 0 {
            return Err(config_err("rate_per_second", "must be at least 1"));
        }
        for (name, v) in [
            ("closed_share", self.closed_share),
            ("deleted_share", self.deleted_share),
            ("banned_share", self.banned_share),
            ("screen_name_share", self.screen_name_share),
            ("captcha_rate", self.captcha_rate),
            ("inner_fault_rate", self.inner_fault_rate),
            ("celebrity_share", self.celebrity_share),
            ("hidden_friends_share", self.hidden_friends_share),
            ("deactivated_groups_share", self.deactivated_groups_share),
            ("latency_jitter", self.latency_jitter),
            ("wall_post_captcha_rate", self.wall_post_captcha_rate),
            ("member_churn", self.member_churn),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(config_err(name, format!("{v} is outside 0..=1")));
            }
        }
        // The number of active users is known only once the graph is drawn: `spawn` checks
        // that bound; the total is checked here.
        if self.big_community_members > self.users {
            return Err(config_err(
                "big_community_members",
                format!(
                    "{} is more than the {} users",
                    self.big_community_members, self.users
                ),
            ));
        }
        let mut quotas = HashMap::new();
        for q in &self.quotas {
            let (m, n) = q
                .split_once('=')
                .ok_or_else(|| config_err("quota", format!("{q:?} is not METHOD=N")))?;
            let n: u64 = n
                .parse()
                .map_err(|_| config_err("quota", format!("{q:?}: N is not a number")))?;
            quotas.insert(m.to_string(), n);
        }
        let mut faults = FaultRates::default();
        for f in &self.faults {
            let (k, r) = f
                .split_once('=')
                .ok_or_else(|| config_err("fault", format!("{f:?} is not KIND=RATE")))?;
            let kind = FaultKind::parse(k)
                .ok_or_else(|| config_err("fault", format!("unknown fault kind {k:?}")))?;
            faults.global.insert(kind, parse_rate("fault", r)?);
        }
        for f in &self.method_faults {
            let (m, rest) = f.split_once(':').ok_or_else(|| {
                config_err("method_fault", format!("{f:?} is not METHOD:KIND=RATE"))
            })?;
            let (k, r) = rest.split_once('=').ok_or_else(|| {
                config_err("method_fault", format!("{f:?} is not METHOD:KIND=RATE"))
            })?;
            let kind = FaultKind::parse(k)
                .ok_or_else(|| config_err("method_fault", format!("unknown fault kind {k:?}")))?;
            faults
                .methods
                .entry(m.to_string())
                .or_default()
                .insert(kind, parse_rate("method_fault", r)?);
        }
        for (name, v) in [
            ("guid_window_secs", self.guid_window_secs),
            ("upload_ttl_secs", self.upload_ttl_secs),
            ("latency_base_ms", self.latency_base_ms),
            ("latency_per_call_ms", self.latency_per_call_ms),
            ("latency_per_kb_ms", self.latency_per_kb_ms),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(config_err(
                    name,
                    format!("{v} is not a non-negative number"),
                ));
            }
        }
        let scopes = |setting: &'static str, list: &str| -> Result<BTreeSet<String>, ConfigError> {
            let set: BTreeSet<String> = list
                .split(',')
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
            match set.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
                Some(bad) => Err(config_err(setting, format!("unknown right {bad:?}"))),
                None => Ok(set),
            }
        };
        let latency = (self.latency == "on").then_some(Latency {
            base_ms: self.latency_base_ms,
            per_call_ms: self.latency_per_call_ms,
            per_kb_ms: self.latency_per_kb_ms,
            jitter: self.latency_jitter,
            time_scale: self.time_scale,
        });
        let scaled = |secs: f64| Duration::from_secs_f64(secs / self.time_scale);
        Ok(Settings {
            cfg: self.clone(),
            user_scopes: scopes("user_token_scopes", &self.user_token_scopes)?,
            pool_scopes: scopes("pool_token_scopes", &self.pool_token_scopes)?,
            latency,
            quotas,
            faults,
            rate_window: scaled(1.0),
            flood_window: scaled(self.flood_window_secs),
            flood_penalty: scaled(self.flood_penalty_secs),
            day: scaled(86_400.0),
            user_token_ttl: scaled(self.user_token_ttl_secs as f64),
            guid_window: scaled(self.guid_window_secs),
            upload_ttl: scaled(self.upload_ttl_secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_scale() {
        let s = SimConfig::default().validate().unwrap();
        assert_eq!(s.quotas.get("wall.post"), Some(&50));
        assert_eq!(s.rate_window, Duration::from_secs(1));
        let fast = SimConfig {
            time_scale: 100.0,
            ..SimConfig::default()
        }
        .validate()
        .unwrap();
        assert_eq!(fast.rate_window, Duration::from_millis(10));
        assert_eq!(fast.day, Duration::from_secs(864));
    }

    #[test]
    fn the_latency_model_and_the_kind_variant() {
        let model = Latency {
            base_ms: 150.0,
            per_call_ms: 10.0,
            per_kb_ms: 0.2,
            jitter: 0.2,
            time_scale: 1.0,
        };
        // An execute of 25 calls answering 200 KiB: 440 ms, within ±20%.
        assert_eq!(model.wait_ms(25, 200 * 1024, 0.0), 440.0);
        assert_eq!(model.wait_ms(0, 0, 1.0), 180.0);
        assert_eq!(model.wait_ms(0, 0, -1.0), 120.0);
        let strict = SimConfig::default().validate().unwrap();
        assert!(strict.latency.is_some());
        assert!(!strict.user_scopes.contains("friends"));
        assert!(strict.pool_scopes.contains("friends"));
        assert_eq!(strict.quotas.get("users.getFollowers"), Some(&5000));
        let kind = SimConfig::default().kind().validate().unwrap();
        assert!(kind.latency.is_none());
        assert!(kind.user_scopes.contains("friends"));
        assert_eq!(kind.quotas.len(), 3, "only wall.*");
        assert!(kind.cfg.bulk_counters && kind.cfg.celebrities == 0);
    }

    #[test]
    fn compact_forms_parse_and_bad_ones_are_named() {
        let cfg = SimConfig::parse_from([
            "vk-sim",
            "--quota",
            "friends.get=3000",
            "--fault",
            "error10=0.25",
            "--method-fault",
            "users.get:drop=1",
        ]);
        let s = cfg.validate().unwrap();
        assert_eq!(s.quotas.len(), 1, "given quotas replace the defaults");
        assert_eq!(s.faults.rate("friends.get", FaultKind::Error10), 0.25);
        assert_eq!(s.faults.rate("users.get", FaultKind::Drop), 1.0);
        assert_eq!(s.faults.rate("friends.get", FaultKind::Drop), 0.0);
        for (args, setting) in [
            (vec!["--quota", "friends.get"], "quota"),
            (vec!["--fault", "meteor=0.1"], "fault"),
            (vec!["--fault", "drop=2"], "fault"),
            (vec!["--method-fault", "users.get=0.1"], "method_fault"),
            (vec!["--time-scale", "0"], "time_scale"),
            (vec!["--member-churn", "1.5"], "member_churn"),
            (
                vec!["--users", "100", "--big-community-members", "101"],
                "big_community_members",
            ),
        ] {
            let cfg = SimConfig::parse_from(std::iter::once("vk-sim").chain(args));
            assert_eq!(cfg.validate().unwrap_err().setting, setting);
        }
    }
}
