//! `/method/{name}`: the request pipeline VK applies, in VK's order: fault injection (the
//! infrastructure in front of VK), version, token checks (missing, invalid, revoked, banned,
//! expired, IP-bound), the per-token rate limit (6, then 9), captcha (14: any method at the
//! captcha rate, wall.post also at its own), then the method
//! itself with its daily quota (29) and its access right (15/1133). Errors are HTTP 200 bodies
//! built by `error`. Every answer that is not a transport fault then waits as the latency model
//! says (a request counts against the rate window when it arrives, as on VK).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::Value;

use crate::config::FaultKind;
use crate::error::VkError;
use crate::methods::{self, Caller, Params};
use crate::server::{ClientIp, DropConnection};
use crate::state::{lock, Sim};
use crate::tokens::unix_now;

/// Response header with the real milliseconds the answer was held by the latency model (so tests
/// can check the model without timing the network).
pub const LATENCY_HEADER: &str = "x-sim-latency-ms";

/// Axum handler of `GET|POST /method/{name}`.
pub(crate) async fn method_handler(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let mut params: Vec<(String, String)> = Vec::new();
    let query = query.unwrap_or_default();
    params.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
    params.extend(form_urlencoded::parse(&body).into_owned());
    let bytes_in = (query.len() + body.len()) as u64;
    handle(sim, name, ip, Params(params), bytes_in).await
}

fn count_fault(sim: &Sim, kind: FaultKind) {
    *lock(&sim.stats)
        .faults
        .entry(kind.name().to_string())
        .or_default() += 1;
}

async fn handle(
    sim: Arc<Sim>,
    method: String,
    ip: IpAddr,
    params: Params,
    bytes_in: u64,
) -> Response {
    {
        let mut st = lock(&sim.stats);
        st.requests += 1;
        st.bytes_in += bytes_in;
        *st.by_method.entry(method.clone()).or_default() += 1;
    }
    let _in_flight = params
        .get("access_token")
        .map(|t| InFlight::enter(Arc::clone(&sim), t));
    answer(&sim, &method, ip, &params).await
}

/// Counts one request of a token as being answered until dropped (also when the client hangs
/// up mid-answer), for `per_token.max_in_flight`.
struct InFlight {
    sim: Arc<Sim>,
    token: String,
}

impl InFlight {
    fn enter(sim: Arc<Sim>, token: &str) -> InFlight {
        {
            let mut st = lock(&sim.stats);
            let ts = st.token(token);
            ts.in_flight += 1;
            ts.max_in_flight = ts.max_in_flight.max(ts.in_flight);
        }
        InFlight {
            sim,
            token: token.to_owned(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = lock(&self.sim.stats);
        let ts = st.token(&self.token);
        ts.in_flight = ts.in_flight.saturating_sub(1);
    }
}

/// The response to one request, after its latency.
async fn answer(sim: &Arc<Sim>, method: &str, ip: IpAddr, params: &Params) -> Response {
    let fault = sim.draw_fault(method);
    if let Some(kind) = fault {
        tracing::debug!(method = %method, fault = kind.name(), "injecting a fault");
        count_fault(sim, kind);
        match kind {
            FaultKind::Drop => {
                let mut r = Response::new(Body::empty());
                r.extensions_mut().insert(DropConnection);
                return r;
            }
            FaultKind::Http500 | FaultKind::Http502 | FaultKind::Http503 => {
                let status = match kind {
                    FaultKind::Http500 => StatusCode::INTERNAL_SERVER_ERROR,
                    FaultKind::Http502 => StatusCode::BAD_GATEWAY,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                let html = format!(
                    "<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center><hr><center>nginx</center></body></html>"
                );
                return (status, [(header::CONTENT_TYPE, "text/html")], html).into_response();
            }
            FaultKind::Slow => {
                tokio::time::sleep(Duration::from_millis(sim.settings.cfg.slow_delay_ms)).await;
            }
            _ => {}
        }
    }
    let (body, inner_calls) = if let Some(e) = match fault {
        Some(FaultKind::Error10) => Some(VkError::internal()),
        Some(FaultKind::Error100) => Some(VkError::param("the method changed")),
        _ => None,
    } {
        (error_body(sim, None, method, params, &e), 0)
    } else {
        process(sim, method, ip, params).await
    };
    let mut bytes = serde_json::to_vec(&body).expect("serializable");
    // The answer waits as VK's would; the request already counted against the rate window
    // when it arrived (check_rate runs before the method).
    let wait_ms = sim.draw_latency_ms(inner_calls, bytes.len());
    if wait_ms > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(wait_ms / 1000.0)).await;
    }
    match fault {
        Some(FaultKind::Truncated) => bytes.truncate(bytes.len() / 2),
        Some(FaultKind::InvalidJson) => {
            bytes = b"<html><body>upstream sent an invalid response</body></html>".to_vec()
        }
        _ => {}
    }
    lock(&sim.stats).bytes_out += bytes.len() as u64;
    (
        [
            (
                header::CONTENT_TYPE,
                "application/json; charset=utf-8".to_string(),
            ),
            (
                header::HeaderName::from_static(LATENCY_HEADER),
                format!("{wait_ms:.3}"),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// Builds an error body and counts it.
fn error_body(sim: &Sim, token: Option<&str>, method: &str, params: &Params, e: &VkError) -> Value {
    let mut st = lock(&sim.stats);
    *st.errors_by_code.entry(e.code).or_default() += 1;
    match e.code {
        6 => st.rate_limit_violations += 1,
        9 => st.flood_errors += 1,
        _ => {}
    }
    if let Some(t) = token {
        let ts = st.token(t);
        *ts.errors_by_code.entry(e.code).or_default() += 1;
        if e.code == 6 {
            ts.rate_limit_violations += 1;
        }
    }
    e.body(method, &params.0)
}

/// Checks a token the way VK does; returns its owner and rights.
fn authenticate(
    sim: &Sim,
    token: &str,
    ip: IpAddr,
    v_minor: u32,
) -> Result<(u32, BTreeSet<String>), VkError> {
    let tokens = lock(&sim.tokens);
    let rec = tokens
        .by_token
        .get(token)
        .ok_or_else(VkError::invalid_token)?;
    if rec.revoked {
        return Err(VkError::invalid_token());
    }
    let owner = sim.graph.user(rec.owner);
    if rec.banned || owner.is_some_and(|u| u.deactivated.is_some()) {
        return Err(VkError::user_blocked());
    }
    if rec.expires_at.is_some_and(|t| t <= unix_now()) {
        return Err(VkError::expired(v_minor));
    }
    if rec.bound_ip.is_some_and(|b| b != ip) {
        return Err(VkError::ip_mismatch());
    }
    Ok((rec.owner, rec.scopes.clone()))
}

/// Parses `v`: `5.131` gives 131.
fn version(params: &Params) -> Result<u32, VkError> {
    let v = params.get("v").ok_or_else(VkError::no_version)?;
    let (major, minor) = v.split_once('.').unwrap_or((v, "0"));
    match (major.parse::<u32>(), minor.parse::<u32>()) {
        (Ok(5), Ok(minor)) => Ok(minor),
        _ => Err(VkError::bad_version()),
    }
}

/// Runs the request after fault injection; returns the body and how many inner calls an
/// execute made (the latency model charges them).
async fn process(sim: &Arc<Sim>, method: &str, ip: IpAddr, params: &Params) -> (Value, u32) {
    let is_execute = method == "execute";
    if !is_execute && !methods::METHODS.contains(&method) {
        return (
            error_body(sim, None, method, params, &VkError::unknown_method()),
            0,
        );
    }
    let v_minor = match version(params) {
        Ok(v) => v,
        Err(e) => return (error_body(sim, None, method, params, &e), 0),
    };
    let Some(token) = params.get("access_token").map(str::to_string) else {
        return (
            error_body(sim, None, method, params, &VkError::no_token()),
            0,
        );
    };
    {
        let mut st = lock(&sim.stats);
        let ts = st.token(&token);
        ts.requests += 1;
        *ts.by_method.entry(method.to_string()).or_default() += 1;
    }
    let (owner, scopes) = match authenticate(sim, &token, ip, v_minor) {
        Ok(o) => o,
        Err(e) => return (error_body(sim, Some(&token), method, params, &e), 0),
    };
    if let Err(e) = sim.check_rate(&token) {
        return (error_body(sim, Some(&token), method, params, &e), 0);
    }
    if let Some(e) = sim
        .draw_captcha(&token)
        .or_else(|| sim.draw_method_captcha(method))
    {
        return (error_body(sim, Some(&token), method, params, &e), 0);
    }
    let caller = Caller {
        token: token.clone(),
        owner,
        scopes,
        v_minor,
    };
    if is_execute {
        {
            let mut st = lock(&sim.stats);
            st.execute_calls += 1;
            st.token(&token).execute_calls += 1;
        }
        let sim2 = Arc::clone(sim);
        let params2 = params.clone();
        let (result, inner_calls) =
            tokio::task::spawn_blocking(move || crate::execute::execute(&sim2, &caller, &params2))
                .await
                .unwrap_or_else(|_| (Err(VkError::internal()), 0));
        return match result {
            Ok(v) => (v, inner_calls),
            Err(e) => (
                error_body(sim, Some(&token), method, params, &e),
                inner_calls,
            ),
        };
    }
    let result = sim
        .charge_quota(&token, method)
        .and_then(|()| methods::call(sim, &caller, method, params));
    match result {
        Ok(v) => (serde_json::json!({ "response": v }), 0),
        Err(e) => (error_body(sim, Some(&token), method, params, &e), 0),
    }
}
