//! Packing API calls into `execute` requests: up to 25 calls for the price of one request.
//!
//! [`script`] writes the VKScript: every call's result stored under its own key of one object
//! (`r.c0 = API.friends.get({...});`), so a `false` slot is attributed to the right call by
//! key, not by position. VK's `execute_errors` may hold extra entries and need not line up with
//! the `false` slots, so [`attribute`] only trusts them when they do line up (or agree on one
//! code); a slot it cannot attribute, or whose inner call failed for a reason a retry can fix
//! (10, 6, 9, a captcha), is re-asked on its own through the client's retries and the session's
//! token moves, which costs one request and is always right.
//!
//! [`run_calls`] cuts any number of calls into executes of `calls_per_execute` (fewer when the
//! script would pass `execute_max_code_bytes`), splits a batch in
//! half on error 13 (response too big) until it fits, and falls back to direct calls for a
//! batch that execute cannot run at all.
//!
//! The file runs past 600 lines only for its unit tests, which sit next to the code they pin;
//! the code is about 500 lines.

use serde_json::{Map, Value};

use super::error::{Action, ApiError, VkError};
use super::http::{Answer, ExecuteErrorEntry, Params};
use super::orchestrator::Session;
use super::rate::TokenKey;

/// One API call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `section.method`.
    pub method: &'static str,
    /// Its parameters, as JSON values (numbers stay numbers in the script).
    pub params: Map<String, Value>,
}

impl Call {
    /// A call of `method` with `params` given as a JSON object.
    pub fn new(method: &'static str, params: Value) -> Call {
        let params = match params {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Call { method, params }
    }

    /// The call as form parameters of a direct request.
    pub fn form(&self) -> Params {
        self.params
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Array(items) => items
                        .iter()
                        .map(|i| match i {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                (k.clone(), value)
            })
            .collect()
    }
}

/// The outcome of one call of a batch.
pub type CallResult = Result<Value, ApiError>;

/// The VKScript that runs `calls` and returns `{"c0": …, "c1": …}`.
pub fn script(calls: &[Call]) -> String {
    let mut code = String::from("var r = {};\n");
    for (i, call) in calls.iter().enumerate() {
        // JSON is valid VKScript for literals; parameters are ids, numbers and short strings.
        let params = Value::Object(call.params.clone()).to_string();
        code.push_str(&format!("r.c{i} = API.{}({params});\n", call.method));
    }
    code.push_str("return r;");
    code
}

/// Splits an execute answer into one result per call. `None` marks a `false` slot whose error
/// could not be attributed with certainty.
pub fn attribute(calls: &[Call], answer: &Answer) -> Vec<Option<CallResult>> {
    let object = answer.response.as_object();
    let slots: Vec<Option<&Value>> = (0..calls.len())
        .map(|i| object.and_then(|o| o.get(&format!("c{i}"))))
        .collect();
    let failed: Vec<usize> = slots
        .iter()
        .enumerate()
        .filter(|(_, v)| matches!(v, None | Some(Value::Bool(false))))
        .map(|(i, _)| i)
        .collect();
    let errors = &answer.execute_errors;
    let lined_up = errors.len() == failed.len()
        && failed
            .iter()
            .zip(errors)
            .all(|(&i, e)| e.method.is_empty() || e.method == calls[i].method);
    let mut results: Vec<Option<CallResult>> = slots
        .iter()
        .map(|v| match v {
            Some(Value::Bool(false)) | None => None,
            Some(value) => Some(Ok((*value).clone())),
        })
        .collect();
    for (n, &i) in failed.iter().enumerate() {
        let error = if lined_up {
            Some(&errors[n])
        } else {
            single_code(calls[i].method, errors)
        };
        // A missing slot (not even `false`) is never guessed at.
        if slots[i].is_some() {
            results[i] = error.map(|e| Err(api_error(e)));
        }
    }
    results
}

/// The error of a method when every entry for that method carries the same code.
fn single_code<'a>(method: &str, errors: &'a [ExecuteErrorEntry]) -> Option<&'a ExecuteErrorEntry> {
    let mut of_method = errors.iter().filter(|e| e.method == method);
    let first = of_method.next()?;
    of_method
        .all(|e| e.error_code == first.error_code)
        .then_some(first)
}

fn api_error(e: &ExecuteErrorEntry) -> ApiError {
    ApiError {
        error_code: e.error_code,
        error_msg: e.error_msg.clone(),
        error_subcode: None,
    }
}

/// Counters of what [`run_calls`] did, for benchmarks and the no-wasted-slot promise.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    /// Execute requests answered.
    pub executes: u64,
    /// Real calls carried by them.
    pub packed_calls: u64,
    /// Decoy calls carried by them.
    pub decoy_calls: u64,
    /// Direct requests (fallbacks and re-asked slots).
    pub direct_calls: u64,
    /// Batches split after error 13.
    pub splits: u64,
}

/// The `n`th decoy call: cheap, harmless, answered by every token, and what any VK app asks now
/// and then: the server's time and the token's own profile, in turn (the seed service's two).
pub fn decoy(n: u64) -> Call {
    if n.is_multiple_of(2) {
        Call::new("utils.getServerTime", Value::Object(Map::new()))
    } else {
        Call::new("users.get", Value::Object(Map::new()))
    }
}

/// The longer decoy's script, for the code-size budget.
fn decoy_room() -> usize {
    script(&[decoy(0)]).len().max(script(&[decoy(1)]).len())
}

/// Runs `calls` through execute, `calls_per_execute` of the session at a time; one result per
/// call, in order. Errors that end the job (no token, persistent failures) are returned as `Err`.
///
/// The executes go out `in_flight_per_token` at a time on the session's token (the RPS guard
/// spaces their grants as it spaces any requests of one token), so VK's latency does not set the
/// job's pace. Each answer is then settled in order; a batch whose execute failed is sent again
/// through the session, which moves tokens, splits and falls back as one request at a time.
pub async fn run_calls(session: &mut Session, calls: &[Call]) -> Result<Vec<CallResult>, VkError> {
    let batches = plan(session, calls);
    let (sent_on, mut answers) = prefetch(session, calls, &batches).await?;
    let mut results = Vec::with_capacity(calls.len());
    for (i, batch) in batches.iter().enumerate() {
        let chunk = &calls[batch.start..batch.end];
        let first = answers
            .get_mut(i)
            .and_then(Option::take)
            .map(|answer| (sent_on, answer));
        results.extend(run_batch(session, chunk, batch.decoy, first).await?);
    }
    Ok(results)
}

/// One planned execute: `calls[start..end]`, with the `n`th decoy in a slot or not.
#[derive(Debug, Clone, Copy)]
struct Planned {
    start: usize,
    end: usize,
    decoy: Option<u64>,
}

impl Planned {
    /// The execute's parameters.
    fn params(&self, calls: &[Call]) -> Params {
        let mut packed = calls[self.start..self.end].to_vec();
        if let Some(n) = self.decoy {
            packed.push(decoy(n));
        }
        vec![("code".to_owned(), script(&packed))]
    }
}

/// Cuts `calls` into executes: `calls_per_execute` each (fewer where the code would be too
/// long), a decoy slot in every `decoy_every`th.
fn plan(session: &Session, calls: &[Call]) -> Vec<Planned> {
    let settings = session.settings();
    let per_execute = settings.calls_per_execute.clamp(1, 25);
    let decoy_every = u64::from(settings.decoy_every);
    let max_code = settings.execute_max_code_bytes;
    let mut executes = session.batch.executes;
    let mut out = Vec::new();
    let mut start = 0;
    while start < calls.len() {
        // A decoy takes one slot of every Nth execute (never of a single call, which goes direct).
        let with_decoy = decoy_every > 0 && (executes + 1).is_multiple_of(decoy_every);
        let room = if with_decoy && per_execute > 1 {
            per_execute - 1
        } else {
            per_execute
        };
        let rest = &calls[start..];
        let fit = fitting(&rest[..room.min(rest.len())], max_code);
        out.push(Planned {
            start,
            end: start + fit,
            decoy: (with_decoy && fit > 1).then_some(executes / decoy_every.max(1)),
        });
        if fit > 1 {
            executes += 1;
        }
        start += fit;
    }
    out
}

/// Sends the planned executes (those of more than one call) on the session's current token,
/// at most `in_flight_per_token` at once; one answer (or error) per planned execute, `None` for
/// single calls. With one in flight, or one execute, nothing is sent here.
async fn prefetch(
    session: &mut Session,
    calls: &[Call],
    batches: &[Planned],
) -> Result<(Option<TokenKey>, Vec<Option<Result<Answer, VkError>>>), VkError> {
    let limit = session.settings().in_flight_per_token.max(1);
    let packed: Vec<usize> = (0..batches.len())
        .filter(|&i| batches[i].end - batches[i].start > 1)
        .collect();
    let mut answers: Vec<Option<Result<Answer, VkError>>> = vec![None; batches.len()];
    if limit <= 1 || packed.len() <= 1 {
        return Ok((None, answers));
    }
    let token = session.ready_token("execute").await?;
    let client = session.client().clone();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut queue = packed.into_iter();
    let mut answered = 0;
    loop {
        while in_flight.len() < limit {
            let Some(i) = queue.next() else { break };
            let (client, token, params) = (client.clone(), token.clone(), batches[i].params(calls));
            in_flight.spawn(async move { (i, client.call(&token, "execute", &params).await) });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        // A panicked request task leaves its slot empty: the batch is sent again in order.
        if let Ok((i, answer)) = joined {
            if answer.is_ok() {
                answered += 1;
                let batch = &batches[i];
                let mut methods: Vec<&str> = calls[batch.start..batch.end]
                    .iter()
                    .map(|c| c.method)
                    .collect();
                if let Some(n) = batch.decoy {
                    methods.push(decoy(n).method);
                }
                session.count_calls_on(token.key, methods);
            }
            answers[i] = Some(answer);
        }
    }
    session.count_answered(answered).await;
    Ok((Some(token.key), answers))
}

/// How many of `calls` (at least one) fit into one execute whose script, with a decoy's room,
/// stays within `max_code` bytes: VK bounds the size of `code`, and long id lists written into
/// it (users.get of 1,000 ids) reach that bound well before 25 calls.
fn fitting(calls: &[Call], max_code: usize) -> usize {
    let budget = max_code.saturating_sub(decoy_room());
    let mut n = calls.len();
    while n > 1 && script(&calls[..n]).len() > budget {
        n -= 1;
    }
    n
}

/// One batch: execute, split on 13, re-ask unattributed slots, fall back to direct calls.
/// `first` is the whole batch's execute when it was already sent (in flight with others), with
/// the token it went out on: its answer, or an error about the batch itself (13, a refused
/// execute), is used as is; any other error sends the batch again through the session, which
/// knows what to do about tokens.
///
/// Smart rotation happens here, where answers are read: an execute whose list calls all came
/// back empty is asked again on a fresh token (once), and executes with failed calls count
/// towards the session's error burst ([`Session::note_execute`]).
async fn run_batch(
    session: &mut Session,
    calls: &[Call],
    decoy_n: Option<u64>,
    first: Option<(Option<TokenKey>, Result<Answer, VkError>)>,
) -> Result<Vec<CallResult>, VkError> {
    let sent_on = first.as_ref().and_then(|(key, _)| *key);
    let mut first = first.map(|(_, answer)| answer).filter(is_about_the_batch);
    // Work list of sub-batches, so splitting needs no recursion in an async fn.
    let mut pending: Vec<(usize, usize)> = vec![(0, calls.len())];
    let mut results: Vec<Option<CallResult>> = vec![None; calls.len()];
    let mut decoy_pending = decoy_n.map(decoy);
    let mut asked_again = false;
    while let Some((start, end)) = pending.pop() {
        let batch = &calls[start..end];
        if batch.len() == 1 {
            results[start] = Some(direct(session, &batch[0]).await?);
            continue;
        }
        let mut packed = batch.to_vec();
        if let Some(call) = &decoy_pending {
            packed.push(call.clone());
        }
        let (answer, answered_on) = match first.take() {
            // Counted against its token's quotas when it came back.
            Some(answer) => (answer, sent_on),
            None => send(session, &packed).await,
        };
        match answer {
            Ok(answer) => {
                let decoy_sent = decoy_pending.take().is_some();
                let filled = settle(
                    session,
                    batch,
                    &packed,
                    &answer,
                    answered_on,
                    decoy_sent,
                    &mut asked_again,
                )
                .await?;
                match filled {
                    Some(filled) => {
                        for (offset, result) in filled.into_iter().enumerate() {
                            results[start + offset] = Some(result);
                        }
                    }
                    None => pending.push((start, end)),
                }
            }
            Err(error) => match error.action() {
                // Too big (or a run-time failure): halve until it fits; single calls go direct.
                Action::SplitBatch => {
                    session.batch.splits += 1;
                    let mid = start + batch.len() / 2;
                    pending.push((mid, end));
                    pending.push((start, mid));
                }
                // Execute itself is refused (a compile error, a method execute will not run):
                // the calls still deserve an answer, one by one.
                Action::Fail(_) | Action::MethodDenied => {
                    tracing::warn!(error = %error, calls = batch.len(), "execute refused: falling back to direct calls");
                    for (offset, call) in batch.iter().enumerate() {
                        results[start + offset] = Some(direct(session, call).await?);
                    }
                }
                _ => return Err(error),
            },
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every slot of a batch is filled before it returns"))
        .collect())
}

/// An answer to use as is: a response, or an error about the batch itself (13, a refused
/// execute) that sending it again would not change.
fn is_about_the_batch(answer: &Result<Answer, VkError>) -> bool {
    match answer {
        Ok(_) => true,
        Err(error) => matches!(
            error.action(),
            Action::SplitBatch | Action::Fail(_) | Action::MethodDenied
        ),
    }
}

/// Sends one execute of `packed` through the session; the answer and the token it went out on.
async fn send(
    session: &mut Session,
    packed: &[Call],
) -> (Result<Answer, VkError>, Option<TokenKey>) {
    let params: Params = vec![("code".to_owned(), script(packed))];
    let answer = session.call("execute", &params).await;
    if answer.is_ok() {
        // Every inner call ran against its method's daily quota.
        session.count_calls(packed.iter().map(|c| c.method));
    }
    (answer, session.current_key())
}

/// Reads an execute's answer for `batch`: each call's result, the failed ones asked again on
/// their own; `None` when every list came back empty and the batch is to be asked again on a
/// fresh token (once per batch run, `asked_again`).
async fn settle(
    session: &mut Session,
    batch: &[Call],
    packed: &[Call],
    answer: &Answer,
    answered_on: Option<TokenKey>,
    decoy_sent: bool,
    asked_again: &mut bool,
) -> Result<Option<Vec<CallResult>>, VkError> {
    session.batch.executes += 1;
    session.batch.packed_calls += batch.len() as u64;
    if decoy_sent {
        session.batch.decoy_calls += 1;
    }
    let mut slots = attribute(packed, answer);
    slots.truncate(batch.len());
    if !*asked_again && session.settings().rotate_on_empty_lists && all_lists_empty(batch, &slots) {
        *asked_again = true;
        // Answered on a token the session already left: ask the current one.
        let moved = answered_on != session.current_key() || session.rotate_now("empty lists").await;
        if moved {
            tracing::info!(
                calls = batch.len(),
                "every list came back empty: asked again on a fresh token"
            );
            return Ok(None);
        }
    }
    let had_errors = slots.iter().any(|slot| {
        !matches!(slot, Some(Ok(_))) && !matches!(slot, Some(Err(e)) if error_is_per_call(e))
    });
    session.note_execute(had_errors).await;
    let mut filled = Vec::with_capacity(batch.len());
    for (call, slot) in batch.iter().zip(slots) {
        filled.push(match slot {
            // The target's own answer (private, deleted, bad parameter): final.
            Some(Err(error)) if error_is_per_call(&error) => Err(error),
            Some(Ok(value)) => Ok(value),
            // A slot VK could not attribute, or an inner call that failed for a reason a retry
            // can fix (10, 6, 9, a captcha): asked again on its own, through the client's
            // retries and the session's token moves.
            Some(Err(_)) | None => direct(session, call).await?,
        });
    }
    Ok(Some(filled))
}

/// List methods whose empty answer, from every call of an execute, points at the token.
const LIST_METHODS: [&str; 3] = [
    "friends.get",
    "users.getFollowers",
    "users.getSubscriptions",
];

/// Whether `calls` hold three or more list calls and every one of them came back an empty list.
fn all_lists_empty(calls: &[Call], slots: &[Option<CallResult>]) -> bool {
    let empty = |v: &Value| {
        let items_empty = |v: &Value| v["items"].as_array().is_some_and(Vec::is_empty);
        items_empty(v) || (items_empty(&v["users"]) && items_empty(&v["groups"]))
    };
    let mut lists = 0;
    for (call, slot) in calls.iter().zip(slots) {
        if !LIST_METHODS.contains(&call.method) {
            continue;
        }
        lists += 1;
        match slot {
            Some(Ok(value)) if empty(value) => {}
            _ => return false,
        }
    }
    lists >= 3
}

/// One call as its own request; target-level errors become the call's result.
async fn direct(session: &mut Session, call: &Call) -> Result<CallResult, VkError> {
    session.batch.direct_calls += 1;
    match session.call(call.method, &call.form()).await {
        Ok(answer) => Ok(Ok(answer.response)),
        Err(VkError::Api { error, .. }) if error_is_per_call(&error) => Ok(Err(error)),
        Err(error) => Err(error),
    }
}

/// Errors that belong to one call (its target or its parameters), not to the token or the job.
fn error_is_per_call(error: &ApiError) -> bool {
    matches!(
        error.action(),
        Action::SkipTarget | Action::MethodDenied | Action::Fail(_) | Action::SplitBatch
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn batches_are_cut_to_the_code_size_limit() {
        // 25 users.get of 1,000 ids each is about 150 KB of script: far past a 60,000-byte limit.
        let ids: Vec<String> = (1_000_000..1_001_000).map(|i| i.to_string()).collect();
        let calls: Vec<Call> = (0..25)
            .map(|_| Call::new("users.get", json!({"user_ids": ids.join(",")})))
            .collect();
        let n = fitting(&calls, 60_000);
        assert!((1..25).contains(&n), "{n}");
        assert!(script(&calls[..n]).len() + decoy_room() <= 60_000);
        assert!(script(&calls[..n + 1]).len() > 60_000 - decoy_room());
        // Small calls still pack 25 to an execute.
        let small: Vec<Call> = (0..25)
            .map(|i| Call::new("friends.get", json!({"user_id": i})))
            .collect();
        assert_eq!(fitting(&small, 60_000), 25);
        // One call that alone is too long still goes (direct, as a single call).
        assert_eq!(fitting(&calls[..1], 100), 1);
    }

    fn friends(id: i64) -> Call {
        Call::new("friends.get", json!({"user_id": id, "count": 5000}))
    }

    fn answer(response: Value, errors: &[(&str, i64)]) -> Answer {
        Answer {
            response,
            execute_errors: errors
                .iter()
                .map(|(m, c)| ExecuteErrorEntry {
                    method: (*m).to_owned(),
                    error_code: *c,
                    error_msg: format!("error {c}"),
                })
                .collect(),
            bytes: 0,
        }
    }

    #[test]
    fn script_keys_every_call() {
        let code = script(&[
            friends(1),
            Call::new(
                "friends.getMutual",
                json!({"source_uid": 1, "target_uids": [2, 3]}),
            ),
        ]);
        assert_eq!(
            code,
            "var r = {};\nr.c0 = API.friends.get({\"count\":5000,\"user_id\":1});\nr.c1 = API.friends.getMutual({\"source_uid\":1,\"target_uids\":[2,3]});\nreturn r;"
        );
    }

    #[test]
    fn lined_up_errors_are_attributed_by_order() {
        let calls = [friends(1), friends(2), friends(3)];
        let a = answer(
            json!({"c0": false, "c1": {"count": 1, "items": [7]}, "c2": false}),
            &[("friends.get", 30), ("friends.get", 18)],
        );
        let r = attribute(&calls, &a);
        assert_eq!(r[0].as_ref().unwrap().as_ref().unwrap_err().error_code, 30);
        assert_eq!(r[1].as_ref().unwrap().as_ref().unwrap()["items"][0], 7);
        assert_eq!(r[2].as_ref().unwrap().as_ref().unwrap_err().error_code, 18);
    }

    #[test]
    fn misaligned_errors_are_not_guessed() {
        let calls = [friends(1), friends(2), friends(3)];
        // Three errors for two false slots, with different codes: no certainty.
        let a = answer(
            json!({"c0": false, "c1": {"count": 0, "items": []}, "c2": false}),
            &[
                ("friends.get", 30),
                ("friends.get", 18),
                ("friends.get", 30),
            ],
        );
        let r = attribute(&calls, &a);
        assert!(r[0].is_none() && r[2].is_none());
        assert!(r[1].as_ref().unwrap().is_ok());
        // Extra entries that agree on one code are safe to use.
        let a = answer(
            json!({"c0": false, "c1": false, "c2": false}),
            &[("friends.get", 18); 4],
        );
        assert!(attribute(&calls, &a).iter().all(|r| r
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap_err()
            .error_code
            == 18));
    }

    #[test]
    fn direct_form_joins_lists() {
        let call = Call::new(
            "friends.getMutual",
            json!({"source_uid": 1, "target_uids": [2, 3], "name": "x"}),
        );
        let form = call.form();
        assert!(form.contains(&("target_uids".into(), "2,3".into())));
        assert!(form.contains(&("source_uid".into(), "1".into())));
        assert!(form.contains(&("name".into(), "x".into())));
    }
}
