//! The start-up seam: [`App::build`] opens every dependency and wires the service together,
//! [`App::run_until_stopped`] serves until the shutdown token fires.
//!
//! The wiring: storage and Redis are checked first (so a bad setting fails at start-up, not at
//! the first job), then the VK stack, one consumer per job kind (the report parser on the report
//! stream; the poster on the campaign stream, unless `poster.enabled` is off; the community
//! collector on the community-task stream, unless `community.enabled` is off), and the ops
//! port. Shutdown is passed in, never global, so tests can run several apps in one process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::community::CommunityCollector;
use crate::events::JobKind;
use crate::metrics::Metrics;
use crate::ops::{OpsError, OpsServer, ReadinessCheck};
use crate::parser::ReportParser;
use crate::poster::Poster;
use crate::redis_conn::{ConnectOptions, RedisConn, RedisTarget};
use crate::settings::Settings;
use crate::storage::{self, Storage, StorageError};
use crate::stream::{Consumer, StreamError, StreamNames};
use crate::vk::lease_journal::LeaseJournal;
use crate::vk::{self, VkError};

/// How long start-up waits for Redis before saying it is unreachable.
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the app could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Redis is unreachable or refused the connection.
    #[error("cannot reach Redis at {url}: {source} (set REDIS_URL)")]
    Redis {
        /// The URL, password redacted.
        url: String,
        /// What failed.
        #[source]
        source: redis::RedisError,
    },
    /// Redis took the connection but did not answer PING in time.
    #[error("cannot reach Redis at {url}: no answer within {secs}s (set REDIS_URL)")]
    RedisTimeout {
        /// The URL, password redacted.
        url: String,
        /// How long the service waited.
        secs: u64,
    },
    /// The storage backend could not be opened.
    #[error("cannot open storage: {0}")]
    Storage(#[from] StorageError),
    /// The VK client could not be built.
    #[error("cannot set up the VK client: {0}")]
    Vk(#[from] VkError),
    /// The consumer failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The ops port failed.
    #[error(transparent)]
    Ops(#[from] OpsError),
}

/// A started service: live connections, the consumer and the ops port.
pub struct App {
    storage: Arc<dyn Storage>,
    consumer: Consumer,
    poster: Option<Consumer>,
    community: Option<Consumer>,
    ops: OpsServer,
    parser: Arc<ReportParser>,
    journal: Option<Arc<LeaseJournal>>,
    heartbeat: Duration,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("storage", &self.storage.describe())
            .field("ops", &self.ops.local_addr())
            .finish_non_exhaustive()
    }
}

impl App {
    /// Opens storage, checks Redis, and wires VK, the parser, the consumer and the ops port.
    pub async fn build(settings: Settings) -> Result<App, AppError> {
        let storage = storage::open(&settings.storage).await?;
        let redis = connect_redis(&settings).await?;
        let metrics = Arc::new(Metrics::new());
        let vk = vk::connect_stack(&settings)?;
        let orchestrator = vk.orchestrator.with_metrics(metrics.clone());
        let parser = Arc::new(ReportParser::new(
            orchestrator.clone(),
            storage.clone(),
            &settings.parser,
        ));
        let consumer =
            Consumer::connect(&settings, JobKind::Report, parser.clone(), metrics.clone()).await?;
        if settings.poster.enabled && settings.poster.interval < Duration::from_millis(500) {
            // Fine against a time-scaled simulator; against VK the seed's rule is 0.5 s.
            tracing::warn!(
                interval_ms = settings.poster.interval.as_millis() as u64,
                "poster.interval is under 500ms: too fast for VK's flood control"
            );
        }
        let community = if settings.community.enabled {
            let handler = CommunityCollector::new(
                orchestrator.clone(),
                storage.clone(),
                settings.community.clone(),
            )
            .with_metrics(metrics.clone());
            Some(
                Consumer::connect(
                    &settings,
                    JobKind::Community,
                    Arc::new(handler),
                    metrics.clone(),
                )
                .await?,
            )
        } else {
            None
        };
        let poster = if settings.poster.enabled {
            let handler = Poster::new(orchestrator, storage.clone(), settings.poster.clone())
                .with_metrics(metrics.clone());
            Some(
                Consumer::connect(
                    &settings,
                    JobKind::Poster,
                    Arc::new(handler),
                    metrics.clone(),
                )
                .await?,
            )
        } else {
            None
        };
        let groups: Vec<StreamNames> = std::iter::once(consumer.names().clone())
            .chain(poster.as_ref().map(|p| p.names().clone()))
            .chain(community.as_ref().map(|c| c.names().clone()))
            .collect();
        let ops = OpsServer::bind(settings.ops.listen, metrics, readiness(redis, groups)).await?;
        tracing::info!(
            storage = %storage.describe(),
            redis = %settings.redis.url,
            consumer = %settings.redis.consumer_name,
            cluster = settings.redis.cluster,
            ops = %ops.local_addr(),
            "vk-parser ready"
        );
        Ok(App {
            storage,
            consumer,
            poster,
            community,
            ops,
            parser,
            journal: vk.journal,
            heartbeat: settings.stream.heartbeat_interval,
        })
    }

    /// The storage backend in use.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops.local_addr()
    }

    /// The report parser (for its VK request statistics).
    pub fn parser(&self) -> &Arc<ReportParser> {
        &self.parser
    }

    /// Serves until `shutdown` is cancelled, then drains running jobs (see the consumer).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let ops_stop = CancellationToken::new();
        let ops = tokio::spawn(self.ops.run(ops_stop.clone()));
        // The journal's heartbeat runs as long as jobs may hold leases: through the drain.
        let journal = self
            .journal
            .map(|j| tokio::spawn(j.run(self.heartbeat, ops_stop.clone())));
        let poster = self.poster.map(|p| tokio::spawn(p.run(shutdown.clone())));
        let community = self
            .community
            .map(|c| tokio::spawn(c.run(shutdown.clone())));
        let served = self.consumer.run(shutdown).await;
        let posted = joined(poster, "poster").await;
        let collected = joined(community, "community").await;
        // The ops port outlives the drain so probes and scrapes see it through.
        ops_stop.cancel();
        if let Some(journal) = journal {
            let _ = journal.await;
        }
        match ops.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "ops port stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "ops task failed"),
            Ok(Ok(())) => {}
        }
        served.and(posted).and(collected).map_err(AppError::from)
    }
}

/// The end of a consumer task; a task that panicked is logged, not the app's error.
async fn joined(
    task: Option<tokio::task::JoinHandle<Result<(), StreamError>>>,
    kind: &str,
) -> Result<(), StreamError> {
    match task {
        Some(task) => match task.await {
            Ok(result) => result,
            Err(e) => {
                tracing::warn!(error = %e, kind, "consumer task failed");
                Ok(())
            }
        },
        None => Ok(()),
    }
}

async fn connect_redis(settings: &Settings) -> Result<RedisConn, AppError> {
    let url = &settings.redis.url;
    let fail = |source: redis::RedisError| AppError::Redis {
        url: url.to_string(),
        source,
    };
    let target = RedisTarget::from_settings(&settings.redis).map_err(fail)?;
    let connect = async {
        let mut conn = target.managed(ConnectOptions::default()).await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok::<_, redis::RedisError>(conn)
    };
    match tokio::time::timeout(REDIS_CONNECT_TIMEOUT, connect).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(fail(e)),
        Err(_) => Err(AppError::RedisTimeout {
            url: url.to_string(),
            secs: REDIS_CONNECT_TIMEOUT.as_secs(),
        }),
    }
}

/// Ready when Redis answers and every consumer group exists.
fn readiness(redis: RedisConn, groups: Vec<StreamNames>) -> ReadinessCheck {
    let groups = Arc::new(groups);
    Arc::new(move || {
        let mut conn = redis.clone();
        let groups = groups.clone();
        Box::pin(async move {
            for names in groups.iter() {
                let info: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
                    .arg("GROUPS")
                    .arg(&names.input)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| format!("redis: {e}"))?;
                if !info.groups.iter().any(|g| g.name == names.group) {
                    return Err(format!(
                        "consumer group {} does not exist on {}",
                        names.group, names.input
                    ));
                }
            }
            Ok(())
        })
    })
}

/// A token cancelled on the first SIGINT or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops");
                        let _ = ctrl_c.await;
                        trigger.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received");
        trigger.cancel();
    });
    token
}
