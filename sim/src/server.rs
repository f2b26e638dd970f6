//! The accept loop shared by both listeners. It runs hyper directly (not `axum::serve`) for two
//! reasons: each request learns its peer address (`ClientIp`), and a handler can ask for the
//! connection to be dropped without an answer (`DropConnection`, the "dropped connection"
//! fault): hyper closes a connection whose service returns an error.

use std::convert::Infallible;
use std::net::IpAddr;

use axum::body::Body;
use axum::http::{Request, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The address a request comes from (the proxy overrides it with its own).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub IpAddr);

/// Marker a handler puts on a response to have the connection closed instead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// Calls the router and turns a `DropConnection` response into a service error.
pub(crate) async fn call_router(
    router: Router,
    req: Request<Body>,
) -> Result<Response<Body>, Infallible> {
    router.oneshot(req).await
}

/// Serves `router` on `listener` until `shutdown` is cancelled; open connections are aborted then.
pub(crate) async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(ClientIp(peer.ip()));
                    let router = router.clone();
                    async move {
                        let Ok(resp) = call_router(router, req.map(Body::new)).await;
                        if resp.extensions().get::<DropConnection>().is_some() {
                            Err(Dropped)
                        } else {
                            Ok(resp)
                        }
                    }
                });
                conns.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    }
    conns.abort_all();
}
