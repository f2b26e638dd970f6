//! Proxy emulation: the second listener. A request must carry `X-Proxy-Key` (wrong or missing:
//! 407 `{"error":"bad_proxy_key"}`) and `X-Target-Host` naming VK (`api`, `oauth` or `id` on
//! `vk.ru` or `vk.com`) or the simulator's API listener (`127.0.0.1:PORT`, with or without `http://`); anything
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

/// The VK hosts the proxy forwards to: the API, OAuth and VK ID hosts, on VK's 2025 `.ru`
/// domain and the old `.com` one (the seed service's proxy rewrite covers all six).
pub const VK_HOSTS: &[&str] = &[
    "api.vk.ru",
    "oauth.vk.ru",
    "id.vk.ru",
    "api.vk.com",
    "oauth.vk.com",
    "id.vk.com",
];

fn known_target(sim: &Sim, host: &str) -> bool {
    let host = host
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let api = sim.api_url.trim_start_matches("http://");
    VK_HOSTS.contains(&host) || host == api
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
