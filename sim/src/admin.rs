//! Test controls under `/sim/` on the API listener (no key: the simulator is a test tool):
//! stats, reset, the ground truth of the graph, of the posts and uploads, of the generated walls
//! and of each day's membership, the simulated day, and runtime switches (revoke/ban/expire a
//! token, fault rates, captcha rate).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::config::FaultRates;
use crate::state::{lock, Sim};

fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn bad_request(detail: impl Into<String>) -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        json!({"error": "bad_request", "detail": detail.into()}),
    )
}

/// The whole `/sim/stats` document.
pub(crate) fn stats_json(sim: &Sim) -> Value {
    let mut v = serde_json::to_value(&*lock(&sim.stats)).expect("serializable");
    v["token_manager"] = crate::manager::manager_stats(sim);
    v["quota_today"] = json!(sim.quota_today());
    v
}

/// `GET /sim/stats`.
pub(crate) async fn stats(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(stats_json(&sim))
}

/// `POST /sim/reset`: counters, rate windows, flood penalties, quotas, wall posts, uploads.
pub(crate) async fn reset(State(sim): State<Arc<Sim>>) -> Json<Value> {
    sim.reset();
    Json(json!({"reset": true}))
}

#[derive(serde::Deserialize)]
pub(crate) struct IdsQuery {
    ids: Option<String>,
}

fn truth(sim: &Sim, ids: Vec<u32>) -> Response {
    let g = &*sim.graph;
    if let Some(bad) = ids.iter().find(|&&id| g.user(id).is_none()) {
        return bad_request(format!("unknown user id {bad}"));
    }
    let set: HashSet<u32> = ids.iter().copied().collect();
    let mut users = Map::new();
    let mut edges = Vec::new();
    let mut follow_edges = Vec::new();
    for &id in &ids {
        let u = g.user(id).expect("checked");
        // `friends` is what VK shows other tokens; `hidden_friends` what it hides from them.
        let friends = g.visible.of(id);
        let hidden: Vec<u32> = g
            .friends
            .of(id)
            .iter()
            .copied()
            .filter(|f| friends.binary_search(f).is_err())
            .collect();
        users.insert(
            id.to_string(),
            json!({
                "friends": friends,
                "hidden_friends": hidden,
                "followers": g.followers.of(id),
                "subscriptions": {"users": g.following.of(id), "groups": g.subscriptions.of(id)},
                "is_closed": u.is_closed,
                "deactivated": u.deactivated.map(|d| d.as_str()),
                "screen_name": u.screen_name,
            }),
        );
        for &f in friends {
            if f > id && set.contains(&f) {
                edges.push([id, f]);
            }
        }
        for &f in g.followers.of(id) {
            if set.contains(&f) {
                follow_edges.push([f, id]);
            }
        }
    }
    edges.sort_unstable();
    follow_edges.sort_unstable();
    reply(
        StatusCode::OK,
        json!({"users": users, "edges": edges, "follow_edges": follow_edges}),
    )
}

fn parse_id_list(s: &str) -> Result<Vec<u32>, Box<Response>> {
    s.split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| Box::new(bad_request(format!("{x:?} is not a user id"))))
        })
        .collect()
}

/// `GET /sim/truth?ids=1,2,3`: friend lists, followers, subscriptions of the users, and the
/// friendship (`edges`, smaller id first) and follower (`follow_edges`, [follower, followed])
/// edges among them.
pub(crate) async fn truth_get(State(sim): State<Arc<Sim>>, Query(q): Query<IdsQuery>) -> Response {
    match parse_id_list(q.ids.as_deref().unwrap_or("")) {
        Ok(ids) => truth(&sim, ids),
        Err(r) => *r,
    }
}

/// `POST /sim/truth` `{"ids": [1, 2, 3]}`: the same for long id lists.
pub(crate) async fn truth_post(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Body {
        ids: Vec<u32>,
    }
    match serde_json::from_slice::<Body>(&body) {
        Ok(b) => truth(&sim, b.ids),
        Err(e) => bad_request(e.to_string()),
    }
}

/// `GET /sim/truth/named`: the fixed users and the size of the graph.
pub(crate) async fn named(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let g = &*sim.graph;
    Json(json!({
        "named": g.named,
        "users": g.n_users(),
        "groups": g.groups.len(),
        "friendship_edges": g.friends.total() / 2,
        "follow_edges": g.followers.total(),
        "hub_friends": g.visible.of(g.named.hub).len(),
        "celebrity_followers": g.followers.of(g.named.celebrity).len(),
        "hidden_friendships": (g.friends.total() - g.visible.total()) / 2,
        "deactivated_groups": g.groups.iter().filter(|x| x.deactivated.is_some()).count(),
        "named_communities": g.named_communities,
        "named_communities_made": g.named_communities_made,
        "communities": named_communities(&sim),
    }))
}

/// Each named community's settings, as `/sim/truth/named` reports them under `communities`.
fn named_communities(sim: &Sim) -> Value {
    let n = sim.graph.named_communities;
    let mut out = Map::new();
    for (name, gid) in [
        ("suggest", n.suggest),
        ("admin", n.admin),
        ("open_wall", n.open_wall),
        ("screen_name", n.screen_name),
        ("wall_closed", n.wall_closed),
        ("closed", n.closed),
        ("private", n.private),
        ("deactivated", n.deactivated),
        ("busy", n.busy),
        ("big", n.big),
    ] {
        out.insert(name.to_string(), community_truth(sim, gid));
    }
    Value::Object(out)
}

/// One community's settings: what groups.getById and wall.post act on (`members_count` of
/// the current simulated day).
fn community_truth(sim: &Sim, gid: u32) -> Value {
    let g = &*sim.graph;
    let grp = g.group(gid).expect("existing community");
    json!({
        "id": gid,
        "screen_name": grp.screen_name,
        "type": grp.kind.as_str(),
        "is_closed": grp.is_closed,
        "wall": grp.wall_mode().as_str(),
        "deactivated": grp.deactivated.map(|d| d.as_str()),
        "members_count": sim.members(gid).len(),
        "admins": g.admins.get(&gid).cloned().unwrap_or_default()
            .into_iter()
            .map(|(user, level)| json!({"user_id": user, "admin_level": level}))
            .collect::<Vec<_>>(),
    })
}

#[derive(serde::Deserialize)]
pub(crate) struct PostsQuery {
    group_id: Option<u32>,
}

/// `GET /sim/truth/posts[?group_id=N]`: every post made through wall.post (guid, post_type,
/// attachments, times), posts per community, guid repeats and every upload.
pub(crate) async fn posts(State(sim): State<Arc<Sim>>, Query(q): Query<PostsQuery>) -> Response {
    if let Some(gid) = q.group_id {
        if sim.graph.group(gid).is_none() {
            return bad_request(format!("unknown community id {gid}"));
        }
    }
    let mut v = crate::wall::posts_truth(&sim, q.group_id);
    if let Some(gid) = q.group_id {
        v["community"] = community_truth(&sim, gid);
    }
    reply(StatusCode::OK, v)
}

fn not_found(detail: impl Into<String>) -> Response {
    reply(
        StatusCode::NOT_FOUND,
        json!({"error": "not_found", "detail": detail.into()}),
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct MembersQuery {
    group_id: u32,
    day: Option<u64>,
}

/// `GET /sim/truth/members?group_id=G[&day=D]`: the members of a community on a simulated day
/// (default: today), ascending, with what decides who may read them.
pub(crate) async fn members(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<MembersQuery>,
) -> Response {
    let Some(grp) = sim.graph.group(q.group_id) else {
        return not_found(format!("unknown community id {}", q.group_id));
    };
    let day = q.day.unwrap_or_else(|| sim.current_day());
    let items = sim.membership.members(&sim.graph, q.group_id, day);
    reply(
        StatusCode::OK,
        json!({
            "group_id": q.group_id,
            "day": day,
            "count": items.len(),
            "items": &items[..],
            "is_closed": grp.is_closed,
            "deactivated": grp.deactivated.map(|d| d.as_str()),
        }),
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct WallQuery {
    group_id: u32,
}

/// `GET /sim/truth/wall?group_id=G`: the community's generated wall, newest post first, with
/// likes, reposts and comments.
pub(crate) async fn wall(State(sim): State<Arc<Sim>>, Query(q): Query<WallQuery>) -> Response {
    if sim.graph.group(q.group_id).is_none() {
        return not_found(format!("unknown community id {}", q.group_id));
    }
    reply(StatusCode::OK, crate::content::wall_truth(&sim, q.group_id))
}

/// `GET /sim/day`: the current simulated day.
pub(crate) async fn day_get(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({"day": sim.current_day()}))
}

/// `POST /sim/day` `{"advance": N}` (N ≥ 1): moves the simulated day forward N days (quotas
/// reset, membership churns).
pub(crate) async fn day_advance(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        advance: u64,
    }
    match serde_json::from_slice::<Body>(&body) {
        Ok(b) if b.advance >= 1 => {
            reply(StatusCode::OK, json!({"day": sim.advance_day(b.advance)}))
        }
        Ok(_) => bad_request("advance must be at least 1"),
        Err(e) => bad_request(e.to_string()),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct PathQuery {
    from: u32,
    to: u32,
}

/// `GET /sim/truth/path?from=A&to=B`: a shortest chain of visible friendships (BFS), or `null`.
pub(crate) async fn path(State(sim): State<Arc<Sim>>, Query(q): Query<PathQuery>) -> Response {
    let g = &*sim.graph;
    if g.user(q.from).is_none() || g.user(q.to).is_none() {
        return bad_request("unknown user id");
    }
    let n = g.n_users() as usize;
    let mut prev = vec![0u32; n + 1];
    let mut seen = vec![false; n + 1];
    let mut queue = VecDeque::from([q.from]);
    seen[q.from as usize] = true;
    while let Some(u) = queue.pop_front() {
        if u == q.to {
            break;
        }
        for &f in g.visible.of(u) {
            if !seen[f as usize] {
                seen[f as usize] = true;
                prev[f as usize] = u;
                queue.push_back(f);
            }
        }
    }
    if !seen[q.to as usize] {
        return reply(StatusCode::OK, json!({"distance": null, "path": null}));
    }
    let mut chain = vec![q.to];
    while *chain.last().expect("non-empty") != q.from {
        chain.push(prev[*chain.last().expect("non-empty") as usize]);
    }
    chain.reverse();
    reply(
        StatusCode::OK,
        json!({"distance": chain.len() - 1, "path": chain}),
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct TokenBody {
    token: String,
}

fn change_token(
    sim: &Sim,
    body: &Bytes,
    f: impl FnOnce(&mut crate::tokens::TokenRecord),
) -> Response {
    let Ok(b) = serde_json::from_slice::<TokenBody>(body) else {
        return bad_request("expected {\"token\": \"...\"}");
    };
    let mut tokens = lock(&sim.tokens);
    match tokens.by_token.get_mut(&b.token) {
        Some(r) => {
            f(r);
            reply(StatusCode::OK, json!({"ok": true}))
        }
        None => reply(StatusCode::NOT_FOUND, json!({"error": "unknown_token"})),
    }
}

/// `POST /sim/tokens/revoke` `{"token"}`: VK answers 5 (invalid access_token) from now on.
pub(crate) async fn revoke(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    change_token(&sim, &body, |r| r.revoked = true)
}

/// `POST /sim/tokens/ban` `{"token"}`: VK answers 5 (user is blocked) from now on.
pub(crate) async fn ban(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    change_token(&sim, &body, |r| r.banned = true)
}

/// `POST /sim/tokens/expire` `{"token"}`: the token is expired from now on (refresh it).
pub(crate) async fn expire(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    change_token(&sim, &body, |r| {
        r.expires_at = Some(crate::tokens::unix_now() - 1.0)
    })
}

/// `POST /sim/tokens/scopes` `{"token", "scopes": ["wall", ...]}`: the token's rights from now
/// on (a user taking a right back in VK's settings, mid-job).
pub(crate) async fn scopes(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Body {
        token: String,
        scopes: Vec<String>,
    }
    let Ok(b) = serde_json::from_slice::<Body>(&body) else {
        return bad_request("expected {\"token\": \"...\", \"scopes\": [...]}");
    };
    let scopes = b.scopes.into_iter().map(|s| s.to_lowercase()).collect();
    let mut tokens = lock(&sim.tokens);
    match tokens.by_token.get_mut(&b.token) {
        Some(r) => {
            r.scopes = scopes;
            reply(StatusCode::OK, json!({"ok": true}))
        }
        None => reply(StatusCode::NOT_FOUND, json!({"error": "unknown_token"})),
    }
}

/// `POST /sim/tokens/degrade` `{"token": "...", "empty_lists": true}` or `{"owner": 6,
/// "error_code": 100, "error_rate": 1.0, "methods": ["users.getFollowers"]}`: VK treats that
/// token (or every token of that user, also ones issued later) worse than others from now on;
/// the same body without a degradation clears it.
pub(crate) async fn degrade(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Body {
        token: Option<String>,
        owner: Option<u32>,
        #[serde(flatten)]
        how: crate::state::Degraded,
    }
    let Ok(b) = serde_json::from_slice::<Body>(&body) else {
        return bad_request("expected {\"token\" or \"owner\", \"empty_lists\"?, \"error_code\"?, \"error_rate\"?, \"methods\"?}");
    };
    if b.how.error_code.is_some_and(|c| c != 10 && c != 100) {
        return bad_request("error_code must be 10 or 100");
    }
    if b.how.error_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
        return bad_request("error_rate must be within 0 and 1");
    }
    let clear = b.how == crate::state::Degraded::default();
    let mut rt = sim.runtime.write().unwrap_or_else(|e| e.into_inner());
    match (b.token, b.owner) {
        (Some(token), None) if clear => drop(rt.degraded.remove(&token)),
        (Some(token), None) => drop(rt.degraded.insert(token, b.how)),
        (None, Some(owner)) if clear => drop(rt.degraded_owners.remove(&owner)),
        (None, Some(owner)) => drop(rt.degraded_owners.insert(owner, b.how)),
        _ => return bad_request("give either \"token\" or \"owner\""),
    }
    reply(StatusCode::OK, json!({"ok": true}))
}

/// `GET /sim/faults`: the fault rates in force.
pub(crate) async fn faults_get(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let rt = sim.runtime.read().unwrap_or_else(|e| e.into_inner());
    Json(json!({
        "faults": rt.faults,
        "captcha_rate": rt.captcha_rate,
        "captcha_by_token": rt.captcha_by_token,
        "captcha_by_method": rt.captcha_by_method,
        "degraded": rt.degraded,
    }))
}

/// `POST /sim/faults` `{"global": {"error10": 0.1}, "methods": {"friends.get": {"drop": 0.5}}}`:
/// replaces the fault rates.
pub(crate) async fn faults_set(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultRates>(&body) {
        Ok(f) => {
            if let Some(bad) = f
                .global
                .values()
                .chain(f.methods.values().flat_map(|m| m.values()))
                .find(|r| !(0.0..=1.0).contains(*r))
            {
                return bad_request(format!("rate {bad} is outside 0..=1"));
            }
            sim.runtime
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .faults = f;
            reply(StatusCode::OK, json!({"ok": true}))
        }
        Err(e) => bad_request(e.to_string()),
    }
}

/// `POST /sim/captcha` `{"rate": 0.05}`: changes the captcha rate of every token, or, with
/// `"token": "..."`, of that token only, or, with `"method": "wall.post"`, that method's own
/// rate (drawn on top of the others).
pub(crate) async fn captcha_set(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        rate: f64,
        token: Option<String>,
        method: Option<String>,
    }
    match serde_json::from_slice::<Body>(&body) {
        Ok(b) if (0.0..=1.0).contains(&b.rate) => {
            let mut rt = sim.runtime.write().unwrap_or_else(|e| e.into_inner());
            match (b.token, b.method) {
                (Some(_), Some(_)) => return bad_request("give \"token\" or \"method\", not both"),
                (Some(token), None) => {
                    rt.captcha_by_token.insert(token, b.rate);
                }
                (None, Some(method)) => {
                    rt.captcha_by_method.insert(method, b.rate);
                }
                (None, None) => rt.captcha_rate = b.rate,
            }
            reply(StatusCode::OK, json!({"ok": true}))
        }
        Ok(b) => bad_request(format!("rate {} is outside 0..=1", b.rate)),
        Err(e) => bad_request(e.to_string()),
    }
}

/// `GET /sim/tokens`: every token with its owner, kind and state.
pub(crate) async fn tokens(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let tokens = lock(&sim.tokens);
    let mut list: Vec<Value> = tokens
        .by_token
        .iter()
        .map(|(t, r)| {
            json!({
                "token": t,
                "owner": r.owner,
                "kind": r.kind,
                "bound_ip": r.bound_ip.map(|ip| ip.to_string()),
                "revoked": r.revoked,
                "banned": r.banned,
                "expires_at": r.expires_at.map(|x| x as u64),
                "scopes": r.scopes,
            })
        })
        .collect();
    list.sort_by(|a, b| a["token"].as_str().cmp(&b["token"].as_str()));
    Json(json!({ "tokens": list }))
}
