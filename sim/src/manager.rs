//! Token-manager emulation (JSON over HTTP on the API listener, under `/tokens/`). Every
//! endpoint requires the API key (`X-Api-Key: KEY` or `Authorization: Bearer KEY`); without it
//! the answer is 401 `{"error":"unauthorized"}`. Endpoints and reason codes are documented in
//! sim/README.md; vk-parser's token client follows them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::state::{lock, Sim};
use crate::tokens::{unix_now, RELEASE_REASONS};

fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// Whether the request carries the manager's API key.
fn authorized(sim: &Sim, headers: &HeaderMap) -> bool {
    let key = sim.settings.cfg.manager_api_key.as_str();
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    api_key == Some(key) || bearer == Some(key)
}

fn unauthorized(sim: &Sim) -> Response {
    lock(&sim.tokens).stats.unauthorized += 1;
    reply(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}))
}

fn user_token_body(sim: &Sim, user_id: u32, token: &str) -> Value {
    let tokens = lock(&sim.tokens);
    let record = tokens.by_token.get(token);
    let expires_at = record.and_then(|r| r.expires_at).unwrap_or(f64::MAX);
    json!({
        "user_id": user_id,
        "token": token,
        "access_expires_at": expires_at as u64,
        "expired": expires_at <= unix_now(),
        "scopes": record.map(|r| &r.scopes),
        "proxy_url": sim.proxy_url,
        "proxy_api_key": sim.settings.cfg.proxy_key,
    })
}

fn parse_user(sim: &Sim, raw: &str) -> Result<u32, Box<Response>> {
    match raw.parse::<u32>() {
        Ok(id) if sim.graph.user(id).is_some() => Ok(id),
        _ => Err(Box::new(reply(
            StatusCode::NOT_FOUND,
            json!({"error": "user_not_found", "user_id": raw}),
        ))),
    }
}

/// `GET /tokens/user/{user_id}`: the user's current token (issued on first request). An
/// expired token is returned as is (`expired: true`); refresh it with the refresh endpoint.
pub(crate) async fn get_user_token(
    State(sim): State<Arc<Sim>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    user_token_reply(&sim, &user_id, &headers, false)
}

/// `POST /tokens/user/{user_id}/refresh`: a new token for the user; the old one stops working.
pub(crate) async fn refresh_user_token(
    State(sim): State<Arc<Sim>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    user_token_reply(&sim, &user_id, &headers, true)
}

/// The shared body of the two user-token endpoints: the current token, or a fresh one.
fn user_token_reply(sim: &Sim, user_id: &str, headers: &HeaderMap, refresh: bool) -> Response {
    if !authorized(sim, headers) {
        return unauthorized(sim);
    }
    let id = match parse_user(sim, user_id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let grant = sim.user_grant();
    let token = if refresh {
        lock(&sim.tokens).refresh_user_token(id, &grant)
    } else {
        lock(&sim.tokens).user_token(id, &grant)
    };
    reply(StatusCode::OK, user_token_body(sim, id, &token))
}

fn parse_body(body: &Bytes) -> Result<Value, Box<Response>> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_json", "detail": e.to_string()}),
        ))
    })
}

/// `POST /tokens/global/lease` `{"job_id": "..."}`: an exclusive lease of a pool token, or
/// 409 `{"error":"pool_exhausted"}`.
pub(crate) async fn lease(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized(&sim);
    }
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(job_id) = body
        .get("job_id")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
    else {
        return reply(StatusCode::BAD_REQUEST, json!({"error": "missing_job_id"}));
    };
    let mut tokens = lock(&sim.tokens);
    match tokens.lease(job_id) {
        Some(l) => reply(
            StatusCode::OK,
            json!({
                "lease_id": l.lease_id,
                "token": l.token,
                "job_id": l.job_id,
                "leased_at": l.leased_at as u64,
                "scopes": tokens.by_token.get(&l.token).map(|r| &r.scopes),
                "proxy_url": null,
                "proxy_api_key": null,
            }),
        ),
        None => reply(
            StatusCode::CONFLICT,
            json!({
                "error": "pool_exhausted",
                "pool_size": tokens.pool.len(),
                "outstanding": tokens.leases.len(),
            }),
        ),
    }
}

/// `POST /tokens/global/release` `{"lease_id": "...", "reason": "completed"}`.
pub(crate) async fn release(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized(&sim);
    }
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(lease_id) = body.get("lease_id").and_then(Value::as_str) else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "missing_lease_id"}),
        );
    };
    let reason = body.get("reason").and_then(Value::as_str).unwrap_or("");
    if !RELEASE_REASONS.contains(&reason) {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_reason", "allowed": RELEASE_REASONS}),
        );
    }
    let mut tokens = lock(&sim.tokens);
    match tokens.release(lease_id, reason) {
        Some(l) => {
            let retired = !tokens.pool.contains(&l.token);
            reply(
                StatusCode::OK,
                json!({"released": true, "lease_id": lease_id, "retired": retired}),
            )
        }
        None => reply(
            StatusCode::NOT_FOUND,
            json!({"error": "unknown_lease", "lease_id": lease_id}),
        ),
    }
}

/// The token manager's counters and outstanding leases (also part of `/sim/stats`).
pub(crate) fn manager_stats(sim: &Sim) -> Value {
    let tokens = lock(&sim.tokens);
    let mut outstanding: Vec<&crate::tokens::Lease> = tokens.leases.values().collect();
    outstanding.sort_by(|a, b| a.lease_id.cmp(&b.lease_id));
    json!({
        "pool_size": tokens.pool.len(),
        "outstanding": outstanding.len(),
        "outstanding_leases": outstanding,
        "counters": tokens.stats,
    })
}

/// `GET /tokens/stats`.
pub(crate) async fn stats(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized(&sim);
    }
    reply(StatusCode::OK, manager_stats(&sim))
}
