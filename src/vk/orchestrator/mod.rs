//! Which token a job uses, and what happens when one fails (the seed's `VkTokenOrchestrator`).
//!
//! A job starts on its author's user token. If that token fails with an auth or ban error on
//! the job's very first request, the user must reconnect VK: the job fails with
//! `VK_RECONNECT_REQUIRED` (a global token would only hide the broken connection). Later auth,
//! ban or IP-mismatch errors, flood control and persistent rate limits move the job to leased
//! global tokens, at most `max_global_switches` times, with exponential backoff between
//! switches; when the pool has nothing left the job fails with `VK_GLOBAL_POOL_EXHAUSTED`.
//! An author's token VK calls expired (1117) mid-job is refreshed through the token manager once
//! and the request retried before any move.
//! Leased tokens are rotated every 30–40 requests so no pool token carries a whole job, and a
//! token benched for a method (captcha, daily quota) is not used for that method again until
//! its bench ends.
//!
//! A method a token may not call (it lacks the right: 15/1133) is remembered for that token;
//! [`Session::seek_right`] then moves the job once to a leased token for it, and the stages
//! fall back to another method when that fails too (see `parser::stage2`).
//!
//! Every leased token is released exactly once with its reason: explicitly by [`Session::finish`],
//! or, when a job is cancelled or panics, by the session's `Drop`, which releases what is still
//! held as `cancelled` on a background task.
//!
//! This file holds the orchestrator, the session's state and its token moves; the session's
//! other concerns are its submodules: `budget` (daily quotas and benches), `rights` (methods a
//! token may not call, the author-token pass) and `rotation` (rotation, error bursts, decoys).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

mod budget;
mod rights;
mod rotation;

use super::client::VkClient;
use super::error::{Action, TokenDeath, VkError};
use super::execute::BatchStats;
use super::http::{Answer, Params};
use super::quota::QuotaLedger;
use super::rate::TokenKey;
use super::tokens::{ReleaseReason, Token, TokenOrigin, TokenSource};
use crate::events::FailureReason;
use crate::ids::{JobId, VkUserId};

/// Knobs of the orchestrator.
#[derive(Debug, Clone)]
pub struct OrchestratorSettings {
    /// Moves to a (new) global token one job may make.
    pub max_global_switches: u32,
    /// Pause before the first switch; doubled for each further one.
    pub switch_backoff: Duration,
    /// Rotate a leased token after a number of requests drawn from this range.
    pub rotate_every: (u32, u32),
    /// API calls packed into one execute (1 to 25).
    pub calls_per_execute: usize,
    /// Longest `code` of one execute; batches are cut to fit.
    pub execute_max_code_bytes: usize,
    /// Executes a job keeps in flight on its token at once.
    pub in_flight_per_token: usize,
    /// Calls of one method a token is assumed to have per quota day.
    pub daily_quota: u64,
    /// Every Nth execute carries one decoy call ([`super::execute::decoy`]), as the seed
    /// service did to look less like a crawler; 0 turns them off (with `vk.stealth = "off"`).
    pub decoy_every: u32,
    /// A standalone decoy request after about this many real requests of a token (drawn from
    /// half to one and a half times it); 0 turns them off.
    pub standalone_decoy_every: u32,
    /// Consecutive executes with a failed call (a reason about the token or VK, not the target)
    /// after which the job moves to a fresh token; 0 turns it off.
    pub rotate_after_errors: u32,
    /// Whether an execute whose list calls (three or more) all came back empty moves the job to
    /// a fresh token and is asked again there.
    pub rotate_on_empty_lists: bool,
    /// End-of-read passes for calls still failed (not about the target), each on a fresh token.
    pub retry_passes: u32,
}

impl Default for OrchestratorSettings {
    fn default() -> Self {
        OrchestratorSettings {
            max_global_switches: 5,
            switch_backoff: Duration::from_secs(1),
            rotate_every: (30, 40),
            calls_per_execute: 25,
            execute_max_code_bytes: 60_000,
            in_flight_per_token: 4,
            daily_quota: 5000,
            decoy_every: 0,
            standalone_decoy_every: 0,
            rotate_after_errors: 3,
            rotate_on_empty_lists: true,
            retry_passes: 2,
        }
    }
}

/// Starts token sessions for jobs.
#[derive(Debug, Clone)]
pub struct Orchestrator {
    client: VkClient,
    source: Arc<dyn TokenSource>,
    settings: OrchestratorSettings,
    quota: Option<QuotaLedger>,
}

impl Orchestrator {
    /// An orchestrator over `client`, taking tokens from `source`.
    pub fn new(
        client: VkClient,
        source: Arc<dyn TokenSource>,
        settings: OrchestratorSettings,
    ) -> Self {
        Orchestrator {
            client,
            source,
            settings,
            quota: None,
        }
    }

    /// Counts calls per (token, method, day) in `ledger`, and reads what other replicas found.
    pub fn with_quota(mut self, ledger: QuotaLedger) -> Self {
        self.quota = Some(ledger);
        self
    }

    /// Counts VK requests, pacing waits, quota use and benched tokens in `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.client = self.client.with_metrics(metrics);
        self
    }

    /// The client (for its statistics).
    pub fn client(&self) -> &VkClient {
        &self.client
    }

    /// A session for `job`, on the author's token (or a leased one when the source has no user
    /// tokens).
    pub async fn session(&self, job: &JobId, author: VkUserId) -> Result<Session, VkError> {
        let mut session = self.new_session(job, author);
        session.decoy_at = session.draw_decoy();
        match self.source.user_token(author).await? {
            Some(token) => {
                session.on_author = true;
                session.current = Some(token);
            }
            None => session.switch_to_global(None).await?,
        }
        Ok(session)
    }

    /// A session on `sender`'s own token and nothing else, for work VK attributes to the user
    /// (a campaign's posts, and the reads whose answers are about the caller's rights): it never
    /// leases a global token. Errors the client cannot get past on the token come back to the
    /// caller as they are; a dead token is `VK_RECONNECT_REQUIRED`.
    pub async fn sender_session(&self, job: &JobId, sender: VkUserId) -> Result<Session, VkError> {
        let mut session = self.new_session(job, sender);
        session.sender_only = true;
        session.decoy_at = session.draw_decoy();
        match self.source.user_token(sender).await? {
            Some(token) => {
                session.on_author = true;
                session.current = Some(token);
                Ok(session)
            }
            None => Err(VkError::NoToken {
                reason: FailureReason::VkReconnectRequired,
                message: format!("the token manager has no token of user {sender}"),
            }),
        }
    }

    fn new_session(&self, job: &JobId, author: VkUserId) -> Session {
        Session {
            client: self.client.clone(),
            source: self.source.clone(),
            settings: self.settings.clone(),
            job: job.clone(),
            current: None,
            author,
            author_ok: false,
            author_refreshed: false,
            on_author: false,
            switches: 0,
            requests_on_current: 0,
            rotate_at: 0,
            benched: HashMap::new(),
            quota: self.quota.clone(),
            checked: HashSet::new(),
            denied: HashSet::new(),
            sought: HashSet::new(),
            leased: Vec::new(),
            batch: BatchStats::default(),
            since_decoy: 0,
            decoy_at: 0,
            decoys_sent: 0,
            error_streak: 0,
            rotations: Vec::new(),
            sender_only: false,
        }
    }
}

/// The tokens of one job, used one at a time.
#[derive(Debug)]
pub struct Session {
    client: VkClient,
    source: Arc<dyn TokenSource>,
    settings: OrchestratorSettings,
    job: JobId,
    current: Option<Token>,
    /// The job's author.
    author: VkUserId,
    /// The author's token has answered at least once in this job.
    author_ok: bool,
    /// The author's token was already refreshed once after VK said it expired (1117).
    author_refreshed: bool,
    on_author: bool,
    switches: u32,
    requests_on_current: u32,
    rotate_at: u32,
    benched: HashMap<(TokenKey, String), Instant>,
    /// The shared quota ledger, when the stack has Redis.
    quota: Option<QuotaLedger>,
    /// Tokens whose spent methods were read from the ledger.
    checked: HashSet<TokenKey>,
    /// Methods VK refused to a token for its rights (15/1133, 7), for the whole job.
    denied: HashSet<(TokenKey, String)>,
    /// Methods for which the session already moved to another token once.
    sought: HashSet<String>,
    /// Leased tokens not yet released (the current one included).
    leased: Vec<Token>,
    /// What execute packing did in this session.
    pub(super) batch: BatchStats,
    /// Real requests on the current token since its last standalone decoy.
    since_decoy: u32,
    /// After how many the next decoy goes.
    decoy_at: u32,
    /// Standalone decoys sent in this session.
    decoys_sent: u64,
    /// Consecutive executes with a failed call.
    error_streak: u32,
    /// Why the session moved to a fresh token on its own, in order (for tests and logs).
    rotations: Vec<&'static str>,
    /// Only the author's (the sender's) token may be used: see [`Orchestrator::sender_session`].
    sender_only: bool,
}

impl Session {
    /// Calls `method`, moving between tokens as the errors require. Errors that are about the
    /// target or the request (skip, split, fail) come back to the caller.
    pub async fn call(&mut self, method: &str, params: &Params) -> Result<Answer, VkError> {
        if self.sender_only {
            return self.call_as_sender(method, params).await;
        }
        loop {
            let token = self.token_for(method).await?;
            let error = match self.client.call(&token, method, params).await {
                Ok(answer) => {
                    self.answered(method).await;
                    return Ok(answer);
                }
                Err(error) => error,
            };
            let reason = match error.action() {
                // VK says the author's token expired mid-job: the token manager may have a
                // fresh one. Once; then the usual move to global tokens.
                Action::DropToken(_)
                    if error.code() == Some(1117) && self.on_author && !self.author_refreshed =>
                {
                    if self.refresh_author().await {
                        continue;
                    }
                    self.fail_if_author_never_worked(&error)?;
                    ReleaseReason::AuthFailed
                }
                Action::DropToken(death) => {
                    if self.on_author {
                        self.fail_if_author_never_worked(&error)?;
                    }
                    tracing::warn!(token = %token.suffix(), ?death, "token dropped: moving to a global token");
                    match death {
                        TokenDeath::Invalid | TokenDeath::Banned | TokenDeath::IpMismatch => {
                            ReleaseReason::AuthFailed
                        }
                    }
                }
                Action::Rotate => ReleaseReason::FloodControl,
                // The client already slowed down and retried on this token: move on.
                Action::SlowDown => ReleaseReason::RateLimited,
                Action::Bench(period) => self.bench_after(&token, method, period, &error),
                _ => return Err(error),
            };
            self.switch_to_global(Some(reason)).await?;
        }
    }

    /// [`Session::call`] on the sender's token alone: the expired-token refresh once, a dead
    /// token as `VK_RECONNECT_REQUIRED`, a spent quota recorded in the ledger; every other
    /// error is the caller's to act on (a campaign skips, defers or pauses).
    async fn call_as_sender(&mut self, method: &str, params: &Params) -> Result<Answer, VkError> {
        loop {
            let token = self.token_for(method).await?;
            let error = match self.client.call(&token, method, params).await {
                Ok(answer) => {
                    self.answered(method).await;
                    return Ok(answer);
                }
                Err(error) => error,
            };
            match error.action() {
                Action::DropToken(_) if error.code() == Some(1117) && !self.author_refreshed => {
                    if self.refresh_author().await {
                        continue;
                    }
                }
                Action::DropToken(_) => {}
                Action::Bench(_) if error.code() == Some(29) => {
                    if let Some(ledger) = &self.quota {
                        ledger.mark_spent(token.key, method);
                    }
                    return Err(error);
                }
                // VK charges a refused call (214, 15, 100...) to the quota like an answered
                // one; a captcha'd call is not charged.
                _ if matches!(error, VkError::Api { .. }) && error.code() != Some(14) => {
                    self.count_calls([method]);
                    return Err(error);
                }
                _ => return Err(error),
            }
            let when = if self.author_ok {
                "mid-campaign"
            } else {
                "on its first request"
            };
            return Err(VkError::NoToken {
                reason: FailureReason::VkReconnectRequired,
                message: format!("the sender's token failed {when} ({error})"),
            });
        }
    }

    /// Posts a file to an upload server `upload_url` handed to this session's token, from the
    /// same address (the token's proxy) as its API calls.
    pub async fn upload(
        &mut self,
        upload_url: &str,
        field: &'static str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<serde_json::Value, VkError> {
        let token = self.current.clone().ok_or_else(|| VkError::NoToken {
            reason: FailureReason::VkReconnectRequired,
            message: "the session holds no token to upload with".to_owned(),
        })?;
        self.client
            .upload(&token, upload_url, field, filename, bytes)
            .await
    }

    /// Whether the session's only token has answered once (a sender session).
    pub fn token_proved(&self) -> bool {
        self.author_ok
    }

    /// Calls of `method` the current token made today by the shared ledger, and whether the
    /// ledger says its quota is spent; `None` without a ledger.
    pub async fn used_today(&mut self, method: &str) -> Option<(u64, bool)> {
        let ledger = self.quota.clone()?;
        let token = self.current.clone()?;
        let (used, spent) = ledger.used(token.key).await;
        Some((
            used.get(method).copied().unwrap_or(0),
            spent.iter().any(|m| m == method),
        ))
    }

    /// Book-keeping after an answer: the author's token proved alive, quotas, rotation.
    async fn answered(&mut self, method: &str) {
        if self.on_author {
            self.author_ok = true;
        }
        if method != "execute" {
            self.count_calls([method]);
        }
        self.requests_on_current += 1;
        self.after_real_requests(1).await;
        self.maybe_rotate().await;
    }

    /// Asks the token manager once for a fresh author token; true when the session has one.
    async fn refresh_author(&mut self) -> bool {
        self.author_refreshed = true;
        match self.source.refresh_user_token(self.author).await {
            Ok(Some(fresh)) => {
                tracing::info!(token = %fresh.suffix(), "the author's token expired mid-job: refreshed");
                self.current = Some(fresh);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "refreshing the author's expired token failed");
                false
            }
        }
    }

    /// A dead author token on the job's first request fails the job: the user must reconnect.
    fn fail_if_author_never_worked(&self, error: &VkError) -> Result<(), VkError> {
        if self.author_ok {
            return Ok(());
        }
        Err(VkError::NoToken {
            reason: FailureReason::VkReconnectRequired,
            message: format!("the author's token failed on the job's first request ({error})"),
        })
    }

    /// The current token, unless it is benched for `method`.
    async fn token_for(&mut self, method: &str) -> Result<Token, VkError> {
        loop {
            let Some(token) = self.current.clone() else {
                self.switch_to_global(None).await?;
                continue;
            };
            self.load_spent(&token).await;
            let key = (token.key, method.to_owned());
            match self.benched.get(&key) {
                Some(until) if *until > Instant::now() => {
                    // Keep the token (other methods may use it) but move this job on.
                    self.switch_to_global(None).await?;
                }
                Some(_) => {
                    self.benched.remove(&key);
                    return Ok(token);
                }
                None => return Ok(token),
            }
        }
    }

    /// Releases the current token (if leased) with `reason` and leases another, with backoff.
    async fn switch_to_global(&mut self, release: Option<ReleaseReason>) -> Result<(), VkError> {
        if self.sender_only {
            // A rotation the session would make on its own (error bursts, empty answers,
            // benches) has nowhere to go: the sender's work stays on the sender's token.
            return Err(VkError::NoToken {
                reason: FailureReason::VkRateLimit,
                message: "the sender's token cannot be replaced by a global one".to_owned(),
            });
        }
        if let Some(reason) = release {
            if let Some(old) = self.current.take() {
                self.release_one(&old, reason).await;
            }
        }
        loop {
            if self.switches >= self.settings.max_global_switches {
                return Err(VkError::NoToken {
                    reason: FailureReason::VkGlobalPoolExhausted,
                    message: format!("gave up after {} moves to global tokens", self.switches),
                });
            }
            if self.switches > 0 {
                let factor = 1u32 << (self.switches - 1).min(10);
                tokio::time::sleep(self.settings.switch_backoff * factor).await;
            }
            self.switches += 1;
            match self.source.lease(&self.job).await? {
                Some(token) => {
                    tracing::info!(token = %token.suffix(), switches = self.switches, "using a global token");
                    self.leased.push(token.clone());
                    if let Some(previous) = self.current.replace(token) {
                        // A switch without a release reason (bench): keep the old token leased
                        // until the session ends; it may serve other methods later.
                        let _ = previous;
                    }
                    self.on_author = false;
                    self.requests_on_current = 0;
                    self.rotate_at = self.draw_rotation();
                    return Ok(());
                }
                None => {
                    tracing::warn!(switches = self.switches, "global token pool exhausted");
                }
            }
        }
    }

    /// The token the next `method` request goes out on (moving first if it is benched for it).
    pub(super) async fn ready_token(&mut self, method: &str) -> Result<Token, VkError> {
        self.token_for(method).await
    }

    /// The client requests go through.
    pub(super) fn client(&self) -> &VkClient {
        &self.client
    }

    /// Why the session moved to a fresh token on its own so far (error bursts, empty answers,
    /// retry passes), in order.
    pub fn rotations(&self) -> &[&'static str] {
        &self.rotations
    }

    /// The key of the token requests go out on now.
    pub(super) fn current_key(&self) -> Option<TokenKey> {
        self.current.as_ref().map(|t| t.key)
    }

    async fn release_one(&mut self, token: &Token, reason: ReleaseReason) {
        // The author's own token is not leased: nothing to give back.
        if matches!(token.origin, TokenOrigin::User(_)) {
            return;
        }
        // Forgotten only once released: a job aborted mid-release (ownership lost, shutdown)
        // leaves the token in `leased`, and `Drop` releases it (a second release of a lease is
        // "unknown lease" to the token manager, which counts as done).
        if let Err(e) = self.source.release(token, reason).await {
            tracing::warn!(token = %token.suffix(), error = %e, "token release failed");
        }
        self.leased.retain(|t| t.key != token.key);
    }

    /// Ends the session after a job's work: its tokens go back `Completed` when `result` is
    /// `Ok`, else `JobFailed`.
    pub async fn finish_after<T, E>(self, result: &Result<T, E>) {
        let reason = if result.is_ok() {
            ReleaseReason::Completed
        } else {
            ReleaseReason::JobFailed
        };
        self.finish(reason).await;
    }

    /// Ends the session, releasing every token still leased with `reason`.
    pub async fn finish(mut self, reason: ReleaseReason) {
        // One at a time, each forgotten after its release: if the job is aborted here (it lost
        // its entry to a peer), `Drop` still releases what is left, the one in flight included.
        // The chaos run found the lease that leaked when the whole list was taken first.
        while let Some(token) = self.leased.first().cloned() {
            if let Err(e) = self.source.release(&token, reason).await {
                tracing::warn!(token = %token.suffix(), error = %e, "token release failed");
            }
            self.leased.remove(0);
        }
    }

    /// Tokens currently leased by this session.
    pub fn leased_count(&self) -> usize {
        self.leased.len()
    }

    /// What execute packing did so far in this session.
    pub fn batch_stats(&self) -> BatchStats {
        self.batch
    }

    /// The settings this session runs with.
    pub fn settings(&self) -> &OrchestratorSettings {
        &self.settings
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let held = std::mem::take(&mut self.leased);
        if held.is_empty() {
            return;
        }
        // Dropped without finish(): the job was cancelled or panicked. Release on a task so the
        // pool gets its tokens back even though Drop cannot await.
        let source = self.source.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    for token in held {
                        if let Err(e) = source.release(&token, ReleaseReason::Cancelled).await {
                            tracing::warn!(token = %token.suffix(), error = %e, "token release failed");
                        }
                    }
                });
            }
            Err(_) => tracing::error!(
                leased = held.len(),
                "session dropped outside a runtime: leases not released"
            ),
        }
    }
}
