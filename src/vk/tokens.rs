//! Where VK tokens come from: the token manager, or a static list from settings.
//!
//! [`TokenSource`] is a real seam with two implementations. The token manager (HTTP + API key)
//! hands out the author's user token by VK user id (refreshing it when it has expired or is
//! about to) and leases global tokens exclusively until they are released with a reason.
//! Deployments without a token manager configure a static list, which acts as a shared pool:
//! leasing picks the least-used token and releasing is a no-op.
//!
//! Tokens are [`Secret`]s from the moment they are parsed; only the HTTP layer exposes them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::error::VkError;
use super::rate::TokenKey;
use crate::events::FailureReason;
use crate::ids::{JobId, VkUserId};
use crate::secret::Secret;

/// A user token is refreshed when it expires within this margin.
const REFRESH_MARGIN: Duration = Duration::from_secs(120);

/// A proxy a token must be used through (IP-bound tokens).
#[derive(Debug, Clone)]
pub struct ProxyRoute {
    /// The proxy's base URL.
    pub url: Url,
    /// Sent as `X-Proxy-Key`.
    pub key: Secret,
}

/// Where a token came from, which decides how it is given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOrigin {
    /// The author's own token.
    User(VkUserId),
    /// A leased global token, to be released.
    Global {
        /// The manager's lease id.
        lease_id: String,
    },
    /// An entry of the static list.
    Static(usize),
}

/// A VK access token ready to use.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token itself.
    pub secret: Secret,
    /// Its pacing key (a hash, never the token).
    pub key: TokenKey,
    /// Its proxy, when it must use one.
    pub proxy: Option<ProxyRoute>,
    /// Where it came from.
    pub origin: TokenOrigin,
}

impl Token {
    /// A token with its pacing key computed.
    pub fn new(secret: Secret, proxy: Option<ProxyRoute>, origin: TokenOrigin) -> Token {
        Token {
            key: TokenKey::of(secret.expose()),
            secret,
            proxy,
            origin,
        }
    }

    /// `…abcd`, for logs.
    pub fn suffix(&self) -> String {
        self.secret.suffix()
    }
}

/// Why a leased token is given back (the token manager's reason codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// The job finished with the token healthy.
    Completed,
    /// The job failed for reasons unrelated to the token.
    JobFailed,
    /// VK said "too many requests" repeatedly.
    RateLimited,
    /// VK's flood control (9).
    FloodControl,
    /// VK asked for a captcha (14).
    Captcha,
    /// A daily quota ran out (29).
    QuotaExceeded,
    /// The token is invalid, banned or bound to another IP.
    AuthFailed,
    /// Rotated out after its share of requests.
    Rotated,
    /// The job was cancelled (shutdown, lost ownership, timeout).
    Cancelled,
}

impl ReleaseReason {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::Completed => "completed",
            ReleaseReason::JobFailed => "job_failed",
            ReleaseReason::RateLimited => "rate_limited",
            ReleaseReason::FloodControl => "flood_control",
            ReleaseReason::Captcha => "captcha",
            ReleaseReason::QuotaExceeded => "quota_exceeded",
            ReleaseReason::AuthFailed => "auth_failed",
            ReleaseReason::Rotated => "rotated",
            ReleaseReason::Cancelled => "cancelled",
        }
    }
}

/// Hands out tokens. Implemented by [`TokenManager`] and [`StaticTokens`].
#[async_trait]
pub trait TokenSource: Send + Sync + std::fmt::Debug {
    /// The author's user token; `None` when this source has no user tokens.
    async fn user_token(&self, user: VkUserId) -> Result<Option<Token>, VkError>;
    /// A global token for `job`; `None` when the pool is exhausted.
    async fn lease(&self, job: &JobId) -> Result<Option<Token>, VkError>;
    /// Gives a leased token back. Tokens not leased (user, static) are ignored.
    async fn release(&self, token: &Token, reason: ReleaseReason) -> Result<(), VkError>;
    /// A new token for `user` in place of one VK says has expired (1117); `None` when this
    /// source cannot refresh user tokens.
    async fn refresh_user_token(&self, _user: VkUserId) -> Result<Option<Token>, VkError> {
        Ok(None)
    }
    /// How many global tokens there are, when the source knows.
    async fn pool_size(&self) -> Option<u64> {
        None
    }
}

/// The token manager's HTTP API (as emulated by vk-sim; see sim/README.md).
#[derive(Debug)]
pub struct TokenManager {
    http: reqwest::Client,
    base: Url,
    api_key: Secret,
}

#[derive(Deserialize)]
struct UserTokenBody {
    token: String,
    #[serde(default)]
    access_expires_at: Option<u64>,
    #[serde(default)]
    expired: bool,
    #[serde(default)]
    proxy_url: Option<String>,
    #[serde(default)]
    proxy_api_key: Option<String>,
}

#[derive(Deserialize)]
struct LeaseBody {
    lease_id: String,
    token: String,
    #[serde(default)]
    proxy_url: Option<String>,
    #[serde(default)]
    proxy_api_key: Option<String>,
}

fn proxy_route(url: Option<String>, key: Option<String>) -> Option<ProxyRoute> {
    let url = Url::parse(url?.trim()).ok()?;
    Some(ProxyRoute {
        url,
        key: Secret::new(key.unwrap_or_default()),
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenManager {
    /// A client for the manager at `base`.
    pub fn new(base: Url, api_key: Secret, timeout: Duration) -> Result<TokenManager, VkError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| VkError::TokenSource(format!("cannot build http client: {e}")))?;
        Ok(TokenManager {
            http,
            base,
            api_key,
        })
    }

    fn url(&self, path: &str) -> Result<Url, VkError> {
        self.base
            .join(path)
            .map_err(|e| VkError::TokenSource(format!("bad token manager url: {e}")))
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<(u16, bytes::Bytes), VkError> {
        let response = request
            .header("X-Api-Key", self.api_key.expose())
            .send()
            .await
            // reqwest's message names the URL, never our headers.
            .map_err(|e| VkError::TokenSource(format!("{what}: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| VkError::TokenSource(format!("{what}: {e}")))?;
        if status == 401 || status == 403 {
            return Err(VkError::TokenSource(format!(
                "{what}: the token manager refused the API key (HTTP {status})"
            )));
        }
        Ok((status, body))
    }

    async fn user_token_body(
        &self,
        path: &str,
        post: bool,
    ) -> Result<Option<UserTokenBody>, VkError> {
        let url = self.url(path)?;
        let request = if post {
            self.http.post(url)
        } else {
            self.http.get(url)
        };
        let (status, body) = self.send(request, "user token").await?;
        match status {
            200 => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| VkError::TokenSource(format!("user token: unreadable answer: {e}"))),
            404 => Ok(None),
            other => Err(VkError::TokenSource(format!("user token: HTTP {other}"))),
        }
    }
}

#[async_trait]
impl TokenSource for TokenManager {
    async fn user_token(&self, user: VkUserId) -> Result<Option<Token>, VkError> {
        let path = format!("tokens/user/{user}");
        let Some(mut body) = self.user_token_body(&path, false).await? else {
            return Err(VkError::NoToken {
                reason: FailureReason::VkReconnectRequired,
                message: format!("the token manager has no token for user {user}"),
            });
        };
        let expiring = body
            .access_expires_at
            .is_some_and(|at| at <= unix_now() + REFRESH_MARGIN.as_secs());
        if body.expired || expiring {
            tracing::info!(user = %user, "user token expired or expiring: refreshing");
            body = self
                .user_token_body(&format!("{path}/refresh"), true)
                .await?
                .ok_or_else(|| VkError::NoToken {
                    reason: FailureReason::VkReconnectRequired,
                    message: format!(
                        "the token manager could not refresh the token of user {user}"
                    ),
                })?;
        }
        Ok(Some(Token::new(
            Secret::new(body.token),
            proxy_route(body.proxy_url, body.proxy_api_key),
            TokenOrigin::User(user),
        )))
    }

    async fn pool_size(&self) -> Option<u64> {
        let request = self.http.get(self.url("tokens/stats").ok()?);
        let (status, body) = self.send(request, "stats").await.ok()?;
        if status != 200 {
            return None;
        }
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()?
            .get("pool_size")?
            .as_u64()
    }

    async fn refresh_user_token(&self, user: VkUserId) -> Result<Option<Token>, VkError> {
        let path = format!("tokens/user/{user}/refresh");
        Ok(self.user_token_body(&path, true).await?.map(|body| {
            Token::new(
                Secret::new(body.token),
                proxy_route(body.proxy_url, body.proxy_api_key),
                TokenOrigin::User(user),
            )
        }))
    }

    async fn lease(&self, job: &JobId) -> Result<Option<Token>, VkError> {
        let request = self
            .http
            .post(self.url("tokens/global/lease")?)
            .json(&json!({ "job_id": job.as_str() }));
        let (status, body) = self.send(request, "lease").await?;
        match status {
            200 => {
                let lease: LeaseBody = serde_json::from_slice(&body)
                    .map_err(|e| VkError::TokenSource(format!("lease: unreadable answer: {e}")))?;
                Ok(Some(Token::new(
                    Secret::new(lease.token),
                    proxy_route(lease.proxy_url, lease.proxy_api_key),
                    TokenOrigin::Global {
                        lease_id: lease.lease_id,
                    },
                )))
            }
            409 => Ok(None),
            other => Err(VkError::TokenSource(format!("lease: HTTP {other}"))),
        }
    }

    async fn release(&self, token: &Token, reason: ReleaseReason) -> Result<(), VkError> {
        let TokenOrigin::Global { lease_id } = &token.origin else {
            return Ok(());
        };
        let request = self
            .http
            .post(self.url("tokens/global/release")?)
            .json(&json!({ "lease_id": lease_id, "reason": reason.as_str() }));
        let (status, _) = self.send(request, "release").await?;
        match status {
            200 => Ok(()),
            // Unknown lease: already released (a retried release after a lost answer).
            404 => {
                tracing::warn!(lease_id, "release of an unknown lease");
                Ok(())
            }
            other => Err(VkError::TokenSource(format!("release: HTTP {other}"))),
        }
    }
}

/// A fixed list of tokens from settings, shared by all jobs of the process.
#[derive(Debug)]
pub struct StaticTokens {
    tokens: Vec<Secret>,
    uses: Vec<AtomicU64>,
    /// Tokens VK refused as invalid, banned or IP-bound: never handed out again.
    dead: Vec<AtomicBool>,
}

impl StaticTokens {
    /// Wraps the configured list.
    pub fn new(tokens: Vec<Secret>) -> StaticTokens {
        let uses = tokens.iter().map(|_| AtomicU64::new(0)).collect();
        let dead = tokens.iter().map(|_| AtomicBool::new(false)).collect();
        StaticTokens { tokens, uses, dead }
    }
}

#[async_trait]
impl TokenSource for StaticTokens {
    async fn user_token(&self, _user: VkUserId) -> Result<Option<Token>, VkError> {
        Ok(None)
    }

    async fn pool_size(&self) -> Option<u64> {
        Some(self.tokens.len() as u64)
    }

    async fn lease(&self, _job: &JobId) -> Result<Option<Token>, VkError> {
        // The least-used token: static tokens are shared, the RPS guard keeps each one paced.
        let Some(index) = (0..self.tokens.len())
            .filter(|&i| !self.dead[i].load(Ordering::Relaxed))
            .min_by_key(|&i| self.uses[i].load(Ordering::Relaxed))
        else {
            return Ok(None);
        };
        self.uses[index].fetch_add(1, Ordering::Relaxed);
        Ok(Some(Token::new(
            self.tokens[index].clone(),
            None,
            TokenOrigin::Static(index),
        )))
    }

    async fn release(&self, token: &Token, reason: ReleaseReason) -> Result<(), VkError> {
        if let (TokenOrigin::Static(index), ReleaseReason::AuthFailed) = (&token.origin, reason) {
            if let Some(dead) = self.dead.get(*index) {
                dead.store(true, Ordering::Relaxed);
                tracing::warn!(token = %token.suffix(), "static token refused by VK: no longer used");
            }
        }
        Ok(())
    }
}
