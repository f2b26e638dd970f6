//! The start-up seam: [`App::build`] checks and opens every dependency, [`App::run_until_stopped`]
//! runs until the shutdown token fires.
//!
//! Shutdown is passed in, never global, so tests can run several apps in one process. For now
//! the app verifies its settings, storage and Redis and then stops: the stream consumer that
//! gives it work is the next slice (issue "Stream consumer"), and this seam is where it plugs in.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::settings::Settings;
use crate::storage::{self, Storage, StorageError};

/// How long start-up waits for Redis before saying it is unreachable.
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the app could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Redis is unreachable or refused the connection.
    #[error("cannot reach Redis at {url}: {message} (set REDIS_URL)")]
    Redis {
        /// The URL, password redacted.
        url: String,
        /// What failed.
        message: String,
    },
    /// The storage backend could not be opened.
    #[error("cannot open storage: {0}")]
    Storage(#[from] StorageError),
    /// A part of the service that this build does not have yet.
    #[error("{0} is not built yet")]
    NotBuilt(&'static str),
}

/// A started service: settings plus live connections.
#[derive(Debug)]
pub struct App {
    settings: Settings,
    storage: Arc<dyn Storage>,
}

impl App {
    /// Opens storage and checks Redis with a PING.
    pub async fn build(settings: Settings) -> Result<App, AppError> {
        let storage = storage::open(&settings.storage).await?;
        ping_redis(&settings).await?;
        tracing::info!(
            storage = %storage.describe(),
            redis = %settings.redis.url,
            consumer = %settings.redis.consumer_name,
            "start-up checks passed"
        );
        Ok(App { settings, storage })
    }

    /// The storage backend in use.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The settings the app was built with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), AppError> {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        Err(AppError::NotBuilt("the stream consumer"))
    }
}

async fn ping_redis(settings: &Settings) -> Result<(), AppError> {
    let url = &settings.redis.url;
    let fail = |message: String| AppError::Redis {
        url: url.to_string(),
        message,
    };
    let client = redis::Client::open(url.expose()).map_err(|e| fail(e.to_string()))?;
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(REDIS_CONNECT_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Err(_) => Err(fail(format!(
            "no answer within {}s",
            REDIS_CONNECT_TIMEOUT.as_secs()
        ))),
    }
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
