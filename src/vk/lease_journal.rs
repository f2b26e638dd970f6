//! The lease journal: a record in Redis of the global tokens the fleet holds, so the leases of a
//! replica that dies without releasing them (SIGKILL, OOM, a lost node) are released by a
//! survivor instead of draining the token manager's pool for good.
//!
//! The token manager's leases have no expiry: only a release ends one. The chaos run found the
//! consequence: every killed replica kept its leases, and after a few kills the pool was empty
//! and every job failed with `VK_GLOBAL_POOL_EXHAUSTED`. So each process:
//! - records a lease in the hash `{prefix}:leases` (lease id → its consumer name) right after
//!   leasing it, and forgets it right after releasing it;
//! - keeps `{prefix}:holder:{consumer}` alive (a key with a TTL of `stream.lease_ttl`,
//!   refreshed every `stream.heartbeat_interval`, like a job lease);
//! - reaps: every heartbeat, a recorded lease whose holder key has expired belongs to a dead
//!   process; it is released with reason `job_failed`, then forgotten. Two reapers may race;
//!   the second release gets "unknown lease", which the token manager client treats as done.
//!
//! Only lease ids and consumer names are stored, never tokens. The journal is a safety net: if
//! Redis fails, leasing and releasing go on and the failure is logged. A process that dies in
//! the instant between the manager's answer and the record still leaks that one lease.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::error::VkError;
use super::tokens::{ReleaseReason, Token, TokenOrigin, TokenSource};
use crate::ids::{JobId, VkUserId};
use crate::redis_conn::{ConnectOptions, RedisConn, RedisTarget};
use crate::secret::Secret;

/// A Redis command's time limit here: the journal must never hold a job up for long.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// A [`TokenSource`] that journals the leases of the one it wraps.
#[derive(Debug)]
pub struct LeaseJournal {
    inner: Arc<dyn TokenSource>,
    target: RedisTarget,
    conn: OnceCell<RedisConn>,
    leases_key: String,
    holder_prefix: String,
    holder: String,
    ttl: Duration,
}

/// Where the journal keeps its records and how long a holder stays alive without a heartbeat.
#[derive(Debug, Clone)]
pub struct JournalSettings {
    /// Key prefix (`stream.key_prefix`).
    pub key_prefix: String,
    /// This process's consumer name (`redis.consumer_name`).
    pub holder: String,
    /// Life of the holder key after a heartbeat (`stream.lease_ttl`).
    pub ttl: Duration,
}

impl LeaseJournal {
    /// Wraps `inner`, journaling in the Redis `target` (one server or a cluster; every command
    /// touches one key, so a cluster needs no hash tag here). Does not connect.
    pub fn new(
        inner: Arc<dyn TokenSource>,
        target: RedisTarget,
        settings: JournalSettings,
    ) -> Result<LeaseJournal, redis::RedisError> {
        Ok(LeaseJournal {
            inner,
            target,
            conn: OnceCell::new(),
            leases_key: format!("{}:leases", settings.key_prefix),
            holder_prefix: format!("{}:holder:", settings.key_prefix),
            holder: settings.holder,
            ttl: settings.ttl,
        })
    }

    async fn connection(&self) -> Result<RedisConn, redis::RedisError> {
        let conn = self
            .conn
            .get_or_try_init(|| {
                self.target.managed(ConnectOptions {
                    connection_timeout: Some(COMMAND_TIMEOUT),
                    response_timeout: Some(COMMAND_TIMEOUT),
                    retries: Some(1),
                    max_delay: None,
                })
            })
            .await?;
        Ok(conn.clone())
    }

    /// Marks this process alive for another TTL.
    async fn refresh_holder(&self, conn: &mut RedisConn) -> redis::RedisResult<()> {
        redis::cmd("SET")
            .arg(format!("{}{}", self.holder_prefix, self.holder))
            .arg(1)
            .arg("PX")
            .arg(self.ttl.as_millis() as u64)
            .query_async(conn)
            .await
    }

    async fn record(&self, lease_id: &str) -> redis::RedisResult<()> {
        let mut conn = self.connection().await?;
        // Alive first: a peer must never see the record with no live holder behind it.
        self.refresh_holder(&mut conn).await?;
        redis::cmd("HSET")
            .arg(&self.leases_key)
            .arg(lease_id)
            .arg(&self.holder)
            .query_async(&mut conn)
            .await
    }

    async fn forget(&self, lease_id: &str) -> redis::RedisResult<()> {
        let mut conn = self.connection().await?;
        redis::cmd("HDEL")
            .arg(&self.leases_key)
            .arg(lease_id)
            .query_async(&mut conn)
            .await
    }

    /// One heartbeat: keeps this process alive, then releases the leases of dead holders.
    /// Returns how many were released.
    pub async fn heartbeat(&self) -> Result<usize, redis::RedisError> {
        let mut conn = self.connection().await?;
        self.refresh_holder(&mut conn).await?;
        let records: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&self.leases_key)
            .query_async(&mut conn)
            .await?;
        let mut released = 0;
        for (lease_id, holder) in records {
            let alive: bool = redis::cmd("EXISTS")
                .arg(format!("{}{holder}", self.holder_prefix))
                .query_async(&mut conn)
                .await?;
            if alive {
                continue;
            }
            // The token's value is not needed to release: only the lease id.
            let orphan = Token::new(
                Secret::new(String::new()),
                None,
                TokenOrigin::Global {
                    lease_id: lease_id.clone(),
                },
            );
            match self.inner.release(&orphan, ReleaseReason::JobFailed).await {
                Ok(()) => {
                    self.forget(&lease_id).await?;
                    released += 1;
                    tracing::warn!(%lease_id, %holder, "released the lease of a dead process");
                }
                Err(e) => tracing::warn!(%lease_id, error = %e, "orphaned lease not released yet"),
            }
        }
        Ok(released)
    }

    /// Heartbeats every `interval` until `stop` fires.
    pub async fn run(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        loop {
            match tokio::time::timeout(COMMAND_TIMEOUT * 4, self.heartbeat()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "lease journal heartbeat failed"),
                Err(_) => tracing::warn!("lease journal heartbeat timed out"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

fn lease_id(token: &Token) -> Option<&str> {
    match &token.origin {
        TokenOrigin::Global { lease_id } => Some(lease_id),
        _ => None,
    }
}

#[async_trait]
impl TokenSource for LeaseJournal {
    async fn user_token(&self, user: VkUserId) -> Result<Option<Token>, VkError> {
        self.inner.user_token(user).await
    }

    async fn refresh_user_token(&self, user: VkUserId) -> Result<Option<Token>, VkError> {
        self.inner.refresh_user_token(user).await
    }

    async fn pool_size(&self) -> Option<u64> {
        self.inner.pool_size().await
    }

    async fn lease(&self, job: &JobId) -> Result<Option<Token>, VkError> {
        let token = self.inner.lease(job).await?;
        if let Some(id) = token.as_ref().and_then(lease_id) {
            let recorded = tokio::time::timeout(COMMAND_TIMEOUT * 2, self.record(id)).await;
            if !matches!(recorded, Ok(Ok(()))) {
                tracing::warn!(lease_id = id, "lease not journaled (Redis failed)");
            }
        }
        Ok(token)
    }

    async fn release(&self, token: &Token, reason: ReleaseReason) -> Result<(), VkError> {
        self.inner.release(token, reason).await?;
        if let Some(id) = lease_id(token) {
            let forgotten = tokio::time::timeout(COMMAND_TIMEOUT * 2, self.forget(id)).await;
            if !matches!(forgotten, Ok(Ok(()))) {
                tracing::warn!(lease_id = id, "released lease not forgotten (Redis failed)");
            }
        }
        Ok(())
    }
}
