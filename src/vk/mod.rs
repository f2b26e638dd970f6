//! Everything that talks to VK. No other module sends a request to VK.
//!
//! Layers, bottom up:
//! - [`http`]: one form POST to `/method/{name}` (or through a token's proxy), parsed;
//! - [`rate`]: the per-token RPS guard every request waits on;
//! - [`shared_rate`]: the same pace kept in Redis for tokens several replicas use
//!   (`vk.rate_limiter = "redis"`);
//! - [`client`]: a paced call on one token, retried past transport errors, 5xx, 10 and 6;
//! - [`tokens`]: where tokens come from (token manager or a static list);
//! - [`lease_journal`]: the token manager's leases recorded in Redis, so a survivor releases
//!   the leases of a replica that died holding them;
//! - [`orchestrator`]: which token a job uses and when it moves to another;
//! - [`quota`]: calls per (token, method, day) in Redis, shared by replicas;
//! - [`execute`]: 25 calls per request, with per-call results and batch splitting;
//! - [`methods`]: typed methods and the paged, packed operations the stages call;
//! - [`posting`]: a campaign's methods: rights, wall.post, wall.getById, wall uploads;
//! - [`resolve`]: screen names to ids, cached.
//!
//! [`error`] holds the one table that maps each VK error code to what happens next.

pub mod client;
pub mod error;
pub mod execute;
pub mod http;
pub mod lease_journal;
pub mod methods;
pub mod orchestrator;
pub mod posting;
pub mod quota;
pub mod rate;
pub mod resolve;
pub mod shared_rate;
pub mod tokens;

pub use error::{Action, ApiError, VkError};

use std::sync::Arc;
use std::time::Duration;

use crate::redis_conn::RedisTarget;
use crate::settings::{RateLimiterKind, Settings};
use client::{RetryPolicy, VkClient};
use http::VkHttp;
use lease_journal::{JournalSettings, LeaseJournal};
use orchestrator::{Orchestrator, OrchestratorSettings};
use quota::QuotaLedger;
use rate::{PaceSettings, RpsGuard};
use shared_rate::SharedLimiter;
use tokens::{StaticTokens, TokenManager, TokenSource};

/// The VK stack as the app runs it.
pub struct VkStack {
    /// Sessions for jobs.
    pub orchestrator: Orchestrator,
    /// The lease journal, whose heartbeat the app runs (with a token manager only).
    pub journal: Option<Arc<LeaseJournal>>,
}

/// Builds the VK stack from settings: HTTP client, RPS guard (and the shared limiter on
/// `redis.url` when `vk.rate_limiter` is `redis`; it connects on first use), token source,
/// orchestrator. The token manager is used when `tokens.service_url` is set, else the static
/// token list.
pub fn connect(settings: &Settings) -> Result<Orchestrator, VkError> {
    Ok(connect_stack(settings)?.orchestrator)
}

/// [`connect`], plus the lease journal in front of the token manager (on `redis.url`; it
/// connects on first use). The caller runs [`LeaseJournal::run`].
pub fn connect_stack(settings: &Settings) -> Result<VkStack, VkError> {
    let vk = &settings.vk;
    // `vk.stealth = "off"` turns every kind of masking off, whatever its own setting says.
    let stealth = vk.stealth == crate::settings::Stealth::On;
    let masked = |n: u32| if stealth { n } else { 0 };
    let http = VkHttp::new(
        vk.api_base_url.clone(),
        vk.api_version.clone(),
        vk.request_timeout,
    )?;
    let guard = RpsGuard::new(PaceSettings {
        interval: vk.request_interval,
        jitter: if stealth {
            vk.request_jitter
        } else {
            Duration::ZERO
        },
        warmup_requests: vk.warmup_requests,
        warmup_factor: vk.warmup_factor,
        max_in_flight: vk.max_in_flight.get() as usize,
        ..PaceSettings::default()
    });
    let mut client = VkClient::new(http, guard, RetryPolicy::default());
    if vk.rate_limiter == RateLimiterKind::Redis {
        let target =
            RedisTarget::from_settings(&settings.redis).map_err(|e| VkError::RateLimiter {
                method: "(setup)".to_owned(),
                source: e.into(),
            })?;
        let shared = SharedLimiter::on(target, &settings.stream.key_prefix);
        client = client.with_shared_limiter(shared);
    }
    let mut journal = None;
    let source: Arc<dyn TokenSource> = match &settings.tokens.service_url {
        Some(url) => {
            let manager = Arc::new(TokenManager::new(
                url.clone(),
                settings.tokens.service_api_key.clone(),
                vk.request_timeout,
            )?);
            let journaled = Arc::new(
                LeaseJournal::new(
                    manager,
                    RedisTarget::from_settings(&settings.redis)
                        .map_err(|e| VkError::TokenSource(format!("lease journal: {e}")))?,
                    JournalSettings {
                        key_prefix: settings.stream.key_prefix.clone(),
                        holder: settings.redis.consumer_name.clone(),
                        ttl: settings.stream.lease_ttl,
                    },
                )
                .map_err(|e| VkError::TokenSource(format!("lease journal: {e}")))?,
            );
            journal = Some(journaled.clone());
            journaled
        }
        None => Arc::new(StaticTokens::new(settings.tokens.static_tokens.clone())),
    };
    let orchestrator = OrchestratorSettings {
        max_global_switches: vk.max_global_switches,
        switch_backoff: vk.switch_backoff,
        rotate_every: (vk.rotate_every_min.get(), vk.rotate_every_max.get()),
        calls_per_execute: usize::from(vk.calls_per_execute),
        execute_max_code_bytes: vk.execute_max_code_bytes,
        in_flight_per_token: vk.in_flight_per_token.get() as usize,
        daily_quota: vk.daily_quota,
        decoy_every: masked(vk.decoy_every),
        standalone_decoy_every: masked(vk.standalone_decoy_every),
        rotate_after_errors: vk.rotate_after_errors,
        rotate_on_empty_lists: vk.rotate_on_empty_lists,
        retry_passes: vk.retry_passes,
    };
    let quota = RedisTarget::from_settings(&settings.redis)
        .map(|target| QuotaLedger::on(target, &settings.stream.key_prefix, vk.quota_reset_utc_hour))
        .map_err(|e| VkError::TokenSource(format!("quota ledger: {e}")))?;
    Ok(VkStack {
        orchestrator: Orchestrator::new(client, source, orchestrator).with_quota(quota),
        journal,
    })
}
