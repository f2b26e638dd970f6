//! Proxy emulation: the second listener. A request must carry `X-Proxy-Key` (wrong or missing:
//! 407 `{"error":"bad_proxy_key"}`) and `X-Target-Host` naming VK (`api.vk.com`, `api.vk.ru`)
//! or the simulator's API listener (`127.0.0.1:PORT`, with or without `http://`); anything
//! else is 502 `{"error":"unknown_target_host"}`. Accepted requests are handed to the API
//! router in-process as if they came from `proxy_ip`, so IP-bound tokens work only here.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;

use crate::server::{call_router, ClientIp};
use crate::state::{lock, Sim};

/// State of the proxy listener: the simulator and the API router it forwards to.
#[derive(Clone)]
pub(crate) struct Proxy {
    pub sim: Arc<Sim>,
    pub api: Router,
}

fn known_target(sim: &Sim, host: &str) -> bool {
    let host = host
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let api = sim.api_url.trim_start_matches("http://");
    matches!(host, "api.vk.com" | "api.vk.ru") || host == api
}

/// Fallback handler of the proxy listener: every path is forwarded.
pub(crate) async fn forward(State(p): State<Proxy>, mut req: Request<Body>) -> Response {
    let sim = &p.sim;
    let headers = req.headers();
    let key_ok = headers
        .get("x-proxy-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|k| k == sim.settings.cfg.proxy_key);
    if !key_ok {
        lock(&sim.stats).proxy_rejected += 1;
        return (
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            Json(json!({"error": "bad_proxy_key"})),
        )
            .into_response();
    }
    let target = headers
        .get("x-target-host")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(target) = target else {
        lock(&sim.stats).proxy_rejected += 1;
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "missing_target_host"})),
        )
            .into_response();
    };
    if !known_target(sim, &target) {
        lock(&sim.stats).proxy_rejected += 1;
        return (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": "unknown_target_host", "target": target})),
        )
            .into_response();
    }
    lock(&sim.stats).proxy_forwarded += 1;
    req.headers_mut().remove("x-proxy-key");
    req.headers_mut().remove("x-target-host");
    req.extensions_mut()
        .insert(ClientIp(sim.settings.cfg.proxy_ip));
    let Ok(resp) = call_router(p.api.clone(), req).await;
    resp
}
