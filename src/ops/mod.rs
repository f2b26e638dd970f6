//! The operations surface: one HTTP port with `/healthz`, `/readyz` and `/metrics`.
//!
//! Ops run several replicas behind an orchestrator that probes them and a Prometheus that scrapes
//! them; this module answers both and nothing else. It owns no business state: readiness is a
//! [`ReadinessCheck`] handed in by the app (which knows whether Redis and storage answer), and
//! the numbers come from the shared [`Metrics`] registry.
//!
//! - `GET /healthz`: `200 ok` while the process can serve HTTP. It checks no dependency, so a
//!   Redis outage makes the replica unready, not restarted in a loop.
//! - `GET /readyz`: `200 ready`, or `503` with the check's reason. The check gets
//!   [`READINESS_TIMEOUT`]; a probe that hangs would otherwise look like a healthy replica.
//! - `GET /metrics`: the registry in the OpenMetrics text format 1.0.0 (which Prometheus asks
//!   for first and parses natively). Each scrape runs the readiness check first (same timeout)
//!   and exports its outcome as `vkp_ready`: Prometheus does not probe `/readyz`, and `up` only
//!   says the port answers, so this is how an alert sees a replica that serves but cannot work.
//!
//! Unknown paths are `404`; a known path with another method is `405` (with `Allow`), which tells
//! whoever misconfigured a probe more than a `404` would. Shutdown is a `CancellationToken`
//! passed to [`OpsServer::run`], never a global, so tests can run many servers in one process.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Answers /readyz: Ok when the service can take work, Err(reason) otherwise.
pub type ReadinessCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// How long `/readyz` waits for the readiness check before answering 503.
///
/// Two seconds stays under the usual probe timeouts (Kubernetes defaults to one second, most
/// setups raise it to a few), so the orchestrator gets our answer rather than its own timeout.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// The `Content-Type` of the OpenMetrics text exposition format, version 1.0.0.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why the ops server could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The port is taken, or the address is not ours to bind.
    #[error("cannot bind the ops port on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The socket was bound but its address could not be read back.
    #[error("cannot read the bound address of the ops port")]
    LocalAddr(#[source] io::Error),
    /// Accepting or serving connections failed.
    #[error("the ops server stopped with an error")]
    Serve(#[source] io::Error),
}

/// The ops HTTP server, bound and ready to [`run`](OpsServer::run).
pub struct OpsServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
}

/// What the handlers share: the registry and the readiness check.
#[derive(Clone)]
struct OpsState {
    metrics: Arc<Metrics>,
    ready: ReadinessCheck,
}

impl OpsServer {
    /// Binds `addr` (port 0 allowed) and returns the server; `local_addr()` gives the bound
    /// address.
    pub async fn bind(
        addr: SocketAddr,
        metrics: Arc<Metrics>,
        ready: ReadinessCheck,
    ) -> Result<OpsServer, OpsError> {
        // Binding here rather than in `run` lets the app fail start-up on a taken port and lets
        // tests learn the port chosen for `:0` before anything is served.
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| OpsError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(OpsError::LocalAddr)?;
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(render_metrics))
            .with_state(OpsState { metrics, ready });
        Ok(OpsServer {
            listener,
            local_addr,
            router,
        })
    }

    /// The address the server is bound to (the real port when `bind` was given port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` is cancelled.
    ///
    /// After cancellation the listener closes and requests in progress finish; every handler
    /// returns within [`READINESS_TIMEOUT`], so the wait is short and bounded.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), OpsError> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(OpsError::Serve)
    }
}

/// `GET /healthz`: the process is alive and serving HTTP.
async fn healthz() -> &'static str {
    "ok"
}

/// Runs the readiness check under [`READINESS_TIMEOUT`] and records its outcome in `vkp_ready`.
async fn check_ready(state: &OpsState) -> Result<(), String> {
    let outcome = match tokio::time::timeout(READINESS_TIMEOUT, (state.ready)()).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => Err("readiness check timed out".to_owned()),
    };
    state.metrics.set_ready(outcome.is_ok());
    outcome
}

/// `GET /readyz`: `200 ready`, or `503` with the reason the check failed.
async fn readyz(State(state): State<OpsState>) -> (StatusCode, String) {
    match check_ready(&state).await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

/// `GET /metrics`: the registry in the OpenMetrics text format, `vkp_ready` fresh.
async fn render_metrics(State(state): State<OpsState>) -> impl IntoResponse {
    // A failed check is already in `vkp_ready`; the scrape itself still succeeds.
    let _ = check_ready(&state).await;
    // `render` takes the registry's locks synchronously and releases them before returning, so
    // no lock is held across this handler's (or any) await point.
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A readiness check that always gives `answer`.
    fn fixed(answer: Result<(), String>) -> ReadinessCheck {
        Arc::new(move || {
            let answer = answer.clone();
            Box::pin(async move { answer })
        })
    }

    /// Binds on a free local port, spawns `run`, and returns the base URL, token and task.
    async fn start(
        ready: ReadinessCheck,
    ) -> (
        String,
        Arc<Metrics>,
        CancellationToken,
        tokio::task::JoinHandle<Result<(), OpsError>>,
    ) {
        let metrics = Arc::new(Metrics::new());
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
        let server = OpsServer::bind(addr, Arc::clone(&metrics), ready)
            .await
            .expect("bind");
        let base = format!("http://{}", server.local_addr());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        (base, metrics, shutdown, task)
    }

    #[tokio::test]
    async fn bind_reports_the_real_port() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
        let server = OpsServer::bind(addr, Arc::new(Metrics::new()), fixed(Ok(())))
            .await
            .expect("bind");
        assert_ne!(server.local_addr().port(), 0);
    }

    #[tokio::test]
    async fn bind_on_a_taken_port_is_a_bind_error() {
        let (base, _metrics, shutdown, _task) = start(fixed(Ok(()))).await;
        let taken: SocketAddr = base
            .trim_start_matches("http://")
            .parse()
            .expect("bound address");
        let err = OpsServer::bind(taken, Arc::new(Metrics::new()), fixed(Ok(())))
            .await
            .err()
            .expect("second bind fails");
        assert!(matches!(err, OpsError::Bind { addr, .. } if addr == taken));
        shutdown.cancel();
    }

    #[tokio::test]
    async fn healthz_answers_ok_even_when_not_ready() {
        let (base, _metrics, shutdown, _task) = start(fixed(Err("redis down".into()))).await;
        let resp = reqwest::get(format!("{base}/healthz")).await.expect("get");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.expect("body"), "ok");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn readyz_is_200_when_the_check_passes() {
        let (base, _metrics, shutdown, _task) = start(fixed(Ok(()))).await;
        let resp = reqwest::get(format!("{base}/readyz")).await.expect("get");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.expect("body"), "ready");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn readyz_is_503_with_the_reason_when_the_check_fails() {
        let (base, _metrics, shutdown, _task) =
            start(fixed(Err("redis: connection refused".into()))).await;
        let resp = reqwest::get(format!("{base}/readyz")).await.expect("get");
        assert_eq!(resp.status(), 503);
        assert_eq!(
            resp.text().await.expect("body"),
            "redis: connection refused"
        );
        shutdown.cancel();
    }

    #[tokio::test]
    async fn readyz_is_503_when_the_check_hangs() {
        let slow: ReadinessCheck = Arc::new(|| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
        });
        let (base, _metrics, shutdown, _task) = start(slow).await;
        let started = std::time::Instant::now();
        let resp = reqwest::get(format!("{base}/readyz")).await.expect("get");
        let took = started.elapsed();
        assert_eq!(resp.status(), 503);
        assert_eq!(
            resp.text().await.expect("body"),
            "readiness check timed out"
        );
        assert!(
            took >= READINESS_TIMEOUT && took < Duration::from_secs(3),
            "{took:?}"
        );
        shutdown.cancel();
    }

    #[tokio::test]
    async fn metrics_serves_the_registry_with_the_exposition_content_type() {
        let (base, metrics, shutdown, _task) = start(fixed(Ok(()))).await;
        metrics.vk_request("friends.get", "ok");
        let resp = reqwest::get(format!("{base}/metrics")).await.expect("get");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some(METRICS_CONTENT_TYPE)
        );
        let body = resp.text().await.expect("body");
        assert!(body.contains("# TYPE vkp_vk_requests counter\n"));
        assert!(body.contains("vkp_vk_requests_total{method=\"friends.get\",outcome=\"ok\"} 1\n"));
        assert!(body.ends_with("# EOF\n"));
        shutdown.cancel();
    }

    #[tokio::test]
    async fn metrics_export_the_readiness_of_the_scrape() {
        let (base, _metrics, shutdown, _task) = start(fixed(Err("redis down".into()))).await;
        let body = reqwest::get(format!("{base}/metrics"))
            .await
            .expect("get")
            .text()
            .await
            .expect("body");
        assert!(body.contains("\nvkp_ready 0\n"), "{body}");
        shutdown.cancel();

        let (base, _metrics, shutdown, _task) = start(fixed(Ok(()))).await;
        let body = reqwest::get(format!("{base}/metrics"))
            .await
            .expect("get")
            .text()
            .await
            .expect("body");
        assert!(body.contains("\nvkp_ready 1\n"), "{body}");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn unknown_paths_are_404() {
        let (base, _metrics, shutdown, _task) = start(fixed(Ok(()))).await;
        for path in ["/", "/nope", "/metrics/extra", "/healthz/"] {
            let resp = reqwest::get(format!("{base}{path}")).await.expect("get");
            assert_eq!(resp.status(), 404, "{path}");
        }
        shutdown.cancel();
    }

    #[tokio::test]
    async fn cancelling_the_token_ends_run() {
        let (base, _metrics, shutdown, task) = start(fixed(Ok(()))).await;
        // One request first, so shutdown also has to close a kept-alive connection.
        let resp = reqwest::get(format!("{base}/healthz")).await.expect("get");
        assert_eq!(resp.status(), 200);
        shutdown.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("run ends within 2 s of cancellation")
            .expect("run task did not panic");
        assert!(ended.is_ok(), "{ended:?}");
        // The listener is closed: new connections are refused.
        assert!(reqwest::get(format!("{base}/healthz")).await.is_err());
    }
}
