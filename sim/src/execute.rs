//! `execute`: runs VKScript through the `vkscript` interpreter with an [`ApiHost`] that
//! dispatches inner calls to the simulator's methods. Inner calls are counted (stats) and
//! charged against the same daily quotas as direct calls, but not against the per-second rate
//! limit: an execute is one request. A failed inner call becomes `false` in the script and an
//! entry of `execute_errors`; a response above the size limit is error 13, code above the
//! code-size limit error 12. An inner call may also fail on its own with 10
//! (`inner_fault_rate`), as VK's do, while the execute succeeds. The upload methods are refused
//! inside execute (3, as a method it cannot dispatch); an inner wall.post meets its own captcha
//! rate as a direct one does.

use serde_json::{json, Map, Value};
use vkscript::{ApiCallError, ApiHost, Limits};

use crate::error::VkError;
use crate::methods::{self, Caller, Params};
use crate::state::{lock, Sim};

struct Host<'a> {
    sim: &'a Sim,
    caller: &'a Caller,
    /// Inner calls made so far (the latency model charges them).
    calls: u32,
}

/// How a VKScript value travels as a request parameter: arrays become comma lists.
fn param_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => (if *b { "1" } else { "0" }).to_string(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(param_string).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

impl ApiHost for Host<'_> {
    fn call(&mut self, method: &str, params: &Map<String, Value>) -> Result<Value, ApiCallError> {
        let sim = self.sim;
        let token = &self.caller.token;
        self.calls += 1;
        {
            let mut st = lock(&sim.stats);
            st.inner_calls += 1;
            *st.inner_by_method.entry(method.to_string()).or_default() += 1;
            let ts = st.token(token);
            ts.inner_calls += 1;
            *ts.inner_by_method.entry(method.to_string()).or_default() += 1;
        }
        let p = Params(
            params
                .iter()
                .map(|(k, v)| (k.clone(), param_string(v)))
                .collect(),
        );
        let result = if sim.draw_inner_fault() {
            // VK's inner calls fail on their own now and then while the execute succeeds.
            lock(&sim.stats).inner_faults += 1;
            Err(VkError::internal())
        } else if methods::METHODS.contains(&method) && !methods::NOT_IN_EXECUTE.contains(&method) {
            match sim.draw_method_captcha(method) {
                Some(captcha) => Err(captcha),
                None => sim
                    .charge_quota(token, method)
                    .and_then(|()| methods::call(sim, self.caller, method, &p)),
            }
        } else {
            Err(VkError::unknown_method())
        };
        result.map_err(|e| {
            *lock(&sim.stats)
                .inner_errors_by_code
                .entry(e.code)
                .or_default() += 1;
            ApiCallError {
                error_code: e.code,
                error_msg: e.msg,
            }
        })
    }
}

/// Runs an execute request; returns the whole success body (`response` plus
/// `execute_errors` when inner calls failed) and the number of inner calls made.
pub(crate) fn execute(
    sim: &Sim,
    caller: &Caller,
    params: &Params,
) -> (Result<Value, VkError>, u32) {
    let mut host = Host {
        sim,
        caller,
        calls: 0,
    };
    let result = run(&mut host, params);
    (result, host.calls)
}

fn run(host: &mut Host<'_>, params: &Params) -> Result<Value, VkError> {
    let sim = host.sim;
    let code = params
        .get("code")
        .ok_or_else(|| VkError::param("code is undefined"))?;
    let max_code = sim.settings.cfg.execute_max_code_bytes;
    if code.len() > max_code {
        return Err(VkError::code_too_long(max_code));
    }
    // Every request parameter except the token is visible to the script as Args.name.
    let mut args = Map::new();
    for (k, v) in &params.0 {
        if k != "access_token" {
            args.insert(k.clone(), Value::String(v.clone()));
        }
    }
    let cfg = &sim.settings.cfg;
    let limits = Limits {
        max_api_calls: cfg.execute_max_calls,
        max_operations: cfg.execute_max_operations,
    };
    // The interpreter's messages already carry VK's wording ("Unable to compile code: ...").
    let outcome = vkscript::run(code, &args, host, &limits)
        .map_err(|e| VkError::new(e.error_code(), e.to_string()))?;
    let size = serde_json::to_vec(&outcome.response)
        .map(|b| b.len())
        .unwrap_or(0);
    if size > cfg.execute_max_response_bytes {
        return Err(VkError::runtime("response size is too big"));
    }
    let mut body = json!({ "response": outcome.response });
    if !outcome.execute_errors.is_empty() {
        body["execute_errors"] = Value::Array(
            outcome
                .execute_errors
                .into_iter()
                .map(|e| json!({"method": e.method, "error_code": e.error_code, "error_msg": e.error_msg}))
                .collect(),
        );
    }
    Ok(body)
}
