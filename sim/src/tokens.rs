//! The tokens the simulator knows: user tokens (one current token per user, issued and refreshed
//! by the token manager), the global pool (leased exclusively), and special tokens for tests
//! (IP-bound, revoked, banned). Token strings are derived from the seed, so runs repeat.
//!
//! This module only keeps the records; VK-side checks live in `api`, HTTP in `manager`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What kind of token this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    User,
    Pool,
    Special,
}

/// One issued token.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub owner: u32,
    pub kind: TokenKind,
    /// The address the token works from (through the proxy), if it is bound.
    pub bound_ip: Option<IpAddr>,
    pub revoked: bool,
    pub banned: bool,
    /// Unix seconds (fractional) after which the token is expired.
    pub expires_at: Option<f64>,
    /// The rights (OAuth scopes) the token was granted.
    pub scopes: BTreeSet<String>,
}

/// Why a leased pool token is given back. The token manager counts releases per reason.
pub const RELEASE_REASONS: &[&str] = &[
    "completed",
    "job_failed",
    "rate_limited",
    "flood_control",
    "captcha",
    "quota_exceeded",
    "auth_failed",
    "rotated",
    "cancelled",
    "shutdown",
];

/// A lease of a pool token.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lease {
    pub lease_id: String,
    pub token: String,
    pub job_id: String,
    pub leased_at: f64,
}

/// Counters of the token manager.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LeaseStats {
    pub granted: u64,
    pub exhausted: u64,
    pub released_by_reason: BTreeMap<String, u64>,
    pub retired: u64,
    pub user_tokens_issued: u64,
    pub user_tokens_refreshed: u64,
    pub unauthorized: u64,
}

/// What a user token is issued with: its lifetime, the address it is bound to, its rights.
#[derive(Debug, Clone)]
pub struct UserGrant {
    pub ttl: Duration,
    pub bound_ip: Option<IpAddr>,
    pub scopes: BTreeSet<String>,
}

/// All tokens of one simulator.
#[derive(Debug)]
pub struct TokenRegistry {
    seed: u64,
    counter: u64,
    pub by_token: HashMap<String, TokenRecord>,
    /// The current token of each user that has one.
    pub user_current: HashMap<u32, String>,
    /// Pool tokens in lease order (retired ones removed).
    pub pool: Vec<String>,
    pub leases: HashMap<String, Lease>,
    pub stats: LeaseStats,
}

/// Current time as fractional unix seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

impl TokenRegistry {
    pub fn new(seed: u64) -> TokenRegistry {
        TokenRegistry {
            seed,
            counter: 0,
            by_token: HashMap::new(),
            user_current: HashMap::new(),
            pool: Vec::new(),
            leases: HashMap::new(),
            stats: LeaseStats::default(),
        }
    }

    /// A fresh token string, deterministic in (seed, issue order). VK user tokens look like
    /// `vk1.a.` followed by a long opaque string.
    fn mint(&mut self, tag: &str) -> String {
        self.counter += 1;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed.rotate_left(17) ^ self.counter);
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("vk1.a.{tag}{hex}")
    }

    /// Adds a token with the given record and returns its string.
    pub fn issue(&mut self, tag: &str, record: TokenRecord) -> String {
        let token = self.mint(tag);
        self.by_token.insert(token.clone(), record);
        token
    }

    /// The current token of `user`, issuing one if there is none.
    pub fn user_token(&mut self, user: u32, grant: &UserGrant) -> String {
        if let Some(t) = self.user_current.get(&user) {
            return t.clone();
        }
        self.stats.user_tokens_issued += 1;
        let token = self.issue(
            "u",
            TokenRecord {
                owner: user,
                kind: TokenKind::User,
                bound_ip: grant.bound_ip,
                revoked: false,
                banned: false,
                expires_at: Some(unix_now() + grant.ttl.as_secs_f64()),
                scopes: grant.scopes.clone(),
            },
        );
        self.user_current.insert(user, token.clone());
        token
    }

    /// Replaces the user's token with a new one; the old one stops working.
    pub fn refresh_user_token(&mut self, user: u32, grant: &UserGrant) -> String {
        if let Some(old) = self.user_current.remove(&user) {
            if let Some(r) = self.by_token.get_mut(&old) {
                r.revoked = true;
            }
        }
        self.stats.user_tokens_refreshed += 1;
        self.stats.user_tokens_issued = self.stats.user_tokens_issued.saturating_sub(1);
        self.user_token(user, grant)
    }

    /// Whether a token is dead for good (revoked, banned or expired).
    pub fn is_dead(&self, token: &str) -> bool {
        match self.by_token.get(token) {
            Some(r) => r.revoked || r.banned || r.expires_at.is_some_and(|t| t <= unix_now()),
            None => true,
        }
    }

    /// Leases a free pool token to `job_id`; `None` when every live token is leased.
    pub fn lease(&mut self, job_id: &str) -> Option<Lease> {
        let leased: std::collections::HashSet<&str> =
            self.leases.values().map(|l| l.token.as_str()).collect();
        let free = self
            .pool
            .iter()
            .find(|t| !leased.contains(t.as_str()) && !self.is_dead(t))
            .cloned();
        let Some(token) = free else {
            self.stats.exhausted += 1;
            return None;
        };
        self.counter += 1;
        let lease = Lease {
            lease_id: format!("lease-{}", self.counter),
            token,
            job_id: job_id.to_string(),
            leased_at: unix_now(),
        };
        self.leases.insert(lease.lease_id.clone(), lease.clone());
        self.stats.granted += 1;
        Some(lease)
    }

    /// Ends a lease. A token that is dead (revoked, banned, expired) leaves the pool.
    pub fn release(&mut self, lease_id: &str, reason: &str) -> Option<Lease> {
        let lease = self.leases.remove(lease_id)?;
        *self
            .stats
            .released_by_reason
            .entry(reason.to_string())
            .or_default() += 1;
        if self.is_dead(&lease.token) {
            self.pool.retain(|t| *t != lease.token);
            self.stats.retired += 1;
        }
        Some(lease)
    }
}
