//! The VK methods the simulator implements, as pure functions of the graph, the caller and
//! the parameters. Authentication, rate limits, quotas and faults happen before these run
//! (in `api`); privacy (30), deactivation (18), bad ids (113) and bad parameters (100) here.
//! Walls live in `wall`, uploads and saved media in `media`.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::error::VkError;
use crate::graph::{Deactivated, Graph, GroupKind, Resolved, WallMode};
use crate::state::{lock, Sim};
use crate::tokens::unix_now;

/// The methods `/method/{name}` knows (besides `execute`).
pub const METHODS: &[&str] = &[
    "friends.get",
    "friends.getMutual",
    "users.getFollowers",
    "users.get",
    "users.getSubscriptions",
    "groups.getById",
    "groups.getMembers",
    "utils.resolveScreenName",
    "utils.getServerTime",
    "wall.post",
    "wall.getById",
    "wall.get",
    "wall.getComments",
    "wall.getReposts",
    "likes.getList",
    "photos.getWallUploadServer",
    "photos.saveWallPhoto",
    "docs.getWallUploadServer",
    "docs.save",
];

/// Methods `execute` refuses (error 3, as for a method it cannot dispatch): an upload needs a
/// plain HTTP POST between the upload server and the save, which no VKScript can make
/// (shared/vk-api.md: uploads are not allowed inside execute).
pub const NOT_IN_EXECUTE: &[&str] = &[
    "photos.getWallUploadServer",
    "photos.saveWallPhoto",
    "docs.getWallUploadServer",
    "docs.save",
];

/// The right (OAuth scope) each method needs, from dev.vk.com's method pages; a method not
/// listed needs none. Without it VK answers 15 with subcode 1133.
pub const METHOD_RIGHTS: &[(&str, &str)] = &[
    ("friends.getMutual", "friends"),
    ("wall.post", "wall"),
    ("wall.getById", "wall"),
    ("photos.getWallUploadServer", "photos"),
    ("photos.saveWallPhoto", "photos"),
    ("docs.getWallUploadServer", "docs"),
    ("docs.save", "docs"),
];

/// Who is calling: the token's owner, its rights and the API version.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub token: String,
    pub owner: u32,
    pub scopes: std::collections::BTreeSet<String>,
    /// Minor part of `v` (131 for 5.131).
    pub v_minor: u32,
}

/// Request parameters in their original order (`request_params` echoes them).
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(pub Vec<(String, String)>);

impl Params {
    /// The last non-empty value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn int(&self, key: &str) -> Result<Option<i64>, VkError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| VkError::param(format!("{key} not integer"))),
        }
    }

    /// `count`: default `default`, clamped to `max` as VK does; negative is an error.
    pub(crate) fn count(&self, default: usize, max: usize) -> Result<usize, VkError> {
        match self.int("count")? {
            None => Ok(default),
            Some(c) if c < 0 => Err(VkError::param("count should be positive")),
            Some(c) => Ok((c as usize).min(max)),
        }
    }

    pub(crate) fn offset(&self) -> Result<usize, VkError> {
        match self.int("offset")? {
            None => Ok(0),
            Some(o) if o < 0 => Err(VkError::param("offset should be positive")),
            Some(o) => Ok(o as usize),
        }
    }

    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1") | Some("true"))
    }
}

/// Runs one method. `method` must be one of [`METHODS`].
pub(crate) fn call(sim: &Sim, caller: &Caller, method: &str, p: &Params) -> Result<Value, VkError> {
    if let Some((_, right)) = METHOD_RIGHTS.iter().find(|(m, _)| *m == method) {
        if !caller.scopes.contains(*right) {
            return Err(VkError::no_method_right());
        }
    }
    let (error, empty) = sim.degradation(&caller.token, caller.owner, method);
    if let Some(error) = error {
        return Err(error);
    }
    let answer = answer_method(sim, caller, method, p)?;
    Ok(match method {
        "friends.get" | "users.getFollowers" if empty => json!({"count": 0, "items": []}),
        "users.getSubscriptions" if empty && !p.flag("extended") => json!({
            "users": {"count": 0, "items": []},
            "groups": {"count": 0, "items": []},
        }),
        _ => answer,
    })
}

/// The true answer of one method.
fn answer_method(sim: &Sim, caller: &Caller, method: &str, p: &Params) -> Result<Value, VkError> {
    let g = &*sim.graph;
    match method {
        "friends.get" => friends_get(g, caller, p),
        "friends.getMutual" => friends_get_mutual(g, caller, p),
        "users.getFollowers" => users_get_followers(g, caller, p),
        "users.get" => {
            if p.list("user_ids").len() > 1 && fields(p).contains("counters") {
                // Counted so tests can see a client asking for what VK will not send.
                lock(&sim.stats).counters_ignored += 1;
            }
            users_get(g, caller, p, sim.settings.cfg.bulk_counters)
        }
        "users.getSubscriptions" => users_get_subscriptions(sim, caller, p),
        "groups.getById" => groups_get_by_id(sim, caller, p),
        "groups.getMembers" => groups_get_members(sim, caller, p),
        "utils.resolveScreenName" => resolve_screen_name(g, p),
        "utils.getServerTime" => Ok(json!(unix_now() as u64)),
        "wall.post" => crate::wall::wall_post(sim, caller, p),
        "wall.getById" => crate::wall::wall_get_by_id(sim, caller, p),
        "wall.get" => crate::content::wall_get(sim, caller, p),
        "wall.getComments" => crate::content::wall_get_comments(sim, caller, p),
        "wall.getReposts" => crate::content::wall_get_reposts(sim, caller, p),
        "likes.getList" => crate::content::likes_get_list(sim, caller, p),
        "photos.getWallUploadServer" => {
            crate::media::get_wall_upload_server(sim, caller, p, crate::media::MediaKind::Photo)
        }
        "photos.saveWallPhoto" => crate::media::save_wall_photo(sim, caller, p),
        "docs.getWallUploadServer" => {
            crate::media::get_wall_upload_server(sim, caller, p, crate::media::MediaKind::Doc)
        }
        "docs.save" => crate::media::docs_save(sim, caller, p),
        _ => Err(VkError::unknown_method()),
    }
}

/// Parses a numeric user id parameter; 113 when it is not a valid id.
fn user_id_param(g: &Graph, p: &Params, key: &str, default: u32) -> Result<u32, VkError> {
    match p.get(key) {
        None => Ok(default),
        Some(v) => {
            let id: i64 = v.trim().parse().map_err(|_| VkError::invalid_user_id())?;
            if id <= 0 || id > g.n_users() as i64 {
                return Err(VkError::invalid_user_id());
            }
            Ok(id as u32)
        }
    }
}

/// Whether `viewer` may see `id`'s closed data.
fn can_access(g: &Graph, viewer: u32, id: u32) -> bool {
    match g.user(id) {
        Some(u) => !u.is_closed || viewer == id || g.are_friends(viewer, id),
        None => false,
    }
}

/// 18 for deactivated users, 30 for closed profiles the viewer may not see.
fn check_visible(g: &Graph, viewer: u32, id: u32) -> Result<(), VkError> {
    let u = g.user(id).ok_or_else(VkError::invalid_user_id)?;
    if u.deactivated.is_some() {
        return Err(VkError::deleted());
    }
    if !can_access(g, viewer, id) {
        return Err(VkError::private());
    }
    Ok(())
}

fn page<T: Copy>(items: impl Iterator<Item = T>, offset: usize, count: usize) -> Vec<T> {
    items.skip(offset).take(count).collect()
}

fn intersect_count(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The requested `fields`, lowercased.
fn fields(p: &Params) -> HashSet<String> {
    p.list("fields")
        .into_iter()
        .map(|f| f.to_lowercase())
        .collect()
}

/// A user object as VK renders it for `viewer`.
pub(crate) fn user_object(g: &Graph, id: u32, fields: &HashSet<String>, viewer: u32) -> Value {
    let Some(u) = g.user(id) else {
        return json!({"id": id, "first_name": "DELETED", "last_name": "", "deactivated": "deleted"});
    };
    let mut o = Map::new();
    o.insert("id".into(), json!(id));
    o.insert("first_name".into(), json!(u.first_name));
    o.insert("last_name".into(), json!(u.last_name));
    if let Some(d) = u.deactivated {
        o.insert("deactivated".into(), json!(d.as_str()));
        if d == Deactivated::Deleted {
            return Value::Object(o);
        }
    }
    let access = can_access(g, viewer, id);
    o.insert("can_access_closed".into(), json!(access));
    o.insert("is_closed".into(), json!(u.is_closed));
    let has = |f: &str| fields.contains(f);
    if has("screen_name") {
        o.insert("screen_name".into(), json!(g.user_screen_name(id)));
    }
    if has("domain") {
        o.insert("domain".into(), json!(g.user_screen_name(id)));
    }
    if has("sex") {
        o.insert("sex".into(), json!(u.sex));
    }
    for size in ["50", "100", "200", "max"] {
        let f = format!("photo_{size}");
        if has(&f) {
            o.insert(
                f,
                json!(format!("https://sun.userapi.com/sim/u{id}_{size}.jpg")),
            );
        }
    }
    if has("has_photo") {
        o.insert("has_photo".into(), json!(1));
    }
    if has("verified") {
        o.insert("verified".into(), json!(u.verified as u8));
    }
    if has("online") {
        o.insert("online".into(), json!(id.is_multiple_of(7) as u8));
    }
    if u.deactivated.is_none() && access {
        if has("bdate") {
            let day = id % 28 + 1;
            let month = id % 12 + 1;
            o.insert(
                "bdate".into(),
                json!(format!("{day}.{month}.{}", u.birth_year)),
            );
        }
        if has("city") {
            let title = ["Moscow", "Saint Petersburg", "Kazan"][(id % 3) as usize];
            o.insert("city".into(), json!({"id": 1 + id % 3, "title": title}));
        }
        if has("last_seen") {
            o.insert(
                "last_seen".into(),
                json!({"time": 1_700_000_000 + id as u64 * 37 % 1_000_000, "platform": 7}),
            );
        }
        if has("followers_count") {
            o.insert("followers_count".into(), json!(g.followers.of(id).len()));
        }
        if has("common_count") && viewer != id && g.user(viewer).is_some() {
            o.insert(
                "common_count".into(),
                json!(intersect_count(g.visible.of(viewer), g.visible.of(id))),
            );
        }
        if has("counters") {
            let subs = g.subscriptions.of(id);
            let pages = subs
                .iter()
                .filter(|&&gid| g.group(gid).is_some_and(|x| x.kind == GroupKind::Page))
                .count();
            o.insert(
                "counters".into(),
                json!({
                    "friends": friends_seen(g, viewer, id).len(),
                    "followers": g.followers.of(id).len(),
                    "subscriptions": g.following.of(id).len(),
                    "groups": subs.len() - pages,
                    "pages": pages,
                    "photos": id % 300,
                    "videos": id % 40,
                }),
            );
        }
    }
    if has("is_friend") && viewer != id {
        o.insert("is_friend".into(), json!(g.are_friends(viewer, id) as u8));
    }
    Value::Object(o)
}

/// A community object as VK renders it for the caller. `can_post` / `can_suggest` say what
/// wall.post does with the caller's post (see `wall`); `is_admin` (and `admin_level` for
/// managers) come with a token that has the `groups` right, as dev.vk.com documents.
/// Membership (`members_count`, `is_member`, closed walls) is the current simulated day's.
pub(crate) fn group_object(sim: &Sim, gid: u32, fields: &HashSet<String>, c: &Caller) -> Value {
    let g = &*sim.graph;
    let viewer = c.owner;
    let grp = g.group(gid).expect("existing group");
    let mut o = Map::new();
    o.insert("id".into(), json!(gid));
    o.insert("name".into(), json!(grp.name));
    o.insert("screen_name".into(), json!(grp.screen_name));
    o.insert("is_closed".into(), json!(grp.is_closed));
    o.insert("type".into(), json!(grp.kind.as_str()));
    for size in ["50", "100", "200"] {
        o.insert(
            format!("photo_{size}"),
            json!(format!("https://sun.userapi.com/sim/g{gid}_{size}.jpg")),
        );
    }
    if let Some(d) = grp.deactivated {
        // A deactivated community has no optional fields.
        o.insert("deactivated".into(), json!(d.as_str()));
        return Value::Object(o);
    }
    let level = g.admin_level(gid, viewer);
    if c.scopes.contains("groups") {
        o.insert("is_admin".into(), json!(level.is_some() as u8));
        if let Some(level) = level {
            o.insert("admin_level".into(), json!(level));
        }
    }
    // What wall.post would do: the wall must be visible (closed and private communities: to
    // members and managers), then the role and the wall's mode decide.
    let member = sim.is_member(gid, viewer);
    let sees_wall = grp.is_closed == 0 || member || level.is_some();
    let can_post = sees_wall
        && crate::wall::post_type_for(g, gid, viewer) == Some(crate::wall::PostType::Post);
    let can_suggest = sees_wall && grp.wall_mode() == WallMode::Suggestions;
    let has = |f: &str| fields.contains(f);
    if has("members_count") {
        o.insert("members_count".into(), json!(sim.members(gid).len()));
    }
    if has("can_post") {
        o.insert("can_post".into(), json!(can_post as u8));
    }
    if has("can_suggest") {
        o.insert("can_suggest".into(), json!(can_suggest as u8));
    }
    if has("wall") {
        o.insert("wall".into(), json!(if grp.wall_open { 1 } else { 2 }));
    }
    if has("activity") {
        o.insert(
            "activity".into(),
            json!(grp.name.split(' ').next().unwrap_or("")),
        );
    }
    if has("description") {
        o.insert(
            "description".into(),
            json!(format!("Community {gid} of the simulator")),
        );
    }
    if has("verified") {
        o.insert("verified".into(), json!(gid.is_multiple_of(97) as u8));
    }
    if has("is_member") {
        o.insert("is_member".into(), json!(member as u8));
    }
    Value::Object(o)
}

/// The friend list of `id` as `viewer` sees it: all of it for the user itself, the visible
/// part (hidden friendships left out) for everyone else.
fn friends_seen(g: &Graph, viewer: u32, id: u32) -> &[u32] {
    if viewer == id {
        g.friends.of(id)
    } else {
        g.visible.of(id)
    }
}

/// `check_visible` for friends.get and users.getFollowers, where VK answers a deactivated
/// user with 15 "Access denied: user deactivated" rather than 18.
fn check_list_visible(g: &Graph, viewer: u32, id: u32) -> Result<(), VkError> {
    match check_visible(g, viewer, id) {
        Err(e) if e.code == 18 => Err(VkError::user_deactivated()),
        other => other,
    }
}

fn friends_get(g: &Graph, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let id = user_id_param(g, p, "user_id", c.owner)?;
    check_list_visible(g, c.owner, id)?;
    let count = p.count(5000, 5000)?;
    let offset = p.offset()?;
    let list = friends_seen(g, c.owner, id);
    let ids = page(list.iter().copied(), offset, count);
    let f = fields(p);
    let items: Vec<Value> = if f.is_empty() {
        ids.into_iter().map(|x| json!(x)).collect()
    } else {
        ids.into_iter()
            .map(|x| user_object(g, x, &f, c.owner))
            .collect()
    };
    Ok(json!({"count": list.len(), "items": items}))
}

fn friends_get_mutual(g: &Graph, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let source = user_id_param(g, p, "source_uid", c.owner)?;
    check_visible(g, c.owner, source)?;
    // Hidden friendships count on neither side, whoever asks.
    let src = g.visible.of(source);
    let targets = p.list("target_uids");
    if !targets.is_empty() {
        if targets.len() > 100 {
            return Err(VkError::param("target_uids is too long (at most 100)"));
        }
        let mut out = Vec::with_capacity(targets.len());
        for t in targets {
            let id: i64 = t
                .parse()
                .map_err(|_| VkError::param("target_uids not integer"))?;
            let Some(u) = (id > 0).then(|| g.user(id as u32)).flatten() else {
                continue;
            };
            if u.deactivated.is_some() {
                continue;
            }
            let common = intersect(src, g.visible.of(id as u32));
            out.push(json!({"id": id, "common_friends": common, "common_count": common.len()}));
        }
        return Ok(Value::Array(out));
    }
    let target = match p.get("target_uid") {
        None => return Err(VkError::param("target_uid is undefined")),
        Some(_) => user_id_param(g, p, "target_uid", 0)?,
    };
    if g.user(target).is_some_and(|u| u.deactivated.is_some()) {
        return Err(VkError::deleted());
    }
    let common = intersect(src, g.visible.of(target));
    let count = p.count(usize::MAX, usize::MAX)?;
    let offset = p.offset()?;
    Ok(json!(page(common.into_iter(), offset, count)))
}

fn users_get_followers(g: &Graph, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let id = user_id_param(g, p, "user_id", c.owner)?;
    check_list_visible(g, c.owner, id)?;
    let count = p.count(100, 1000)?;
    let offset = p.offset()?;
    // Newest first: followers are stored ascending, a larger id stands for a later follow.
    let list = g.followers.of(id);
    let ids = page(list.iter().rev().copied(), offset, count);
    let f = fields(p);
    let items: Vec<Value> = if f.is_empty() {
        ids.into_iter().map(|x| json!(x)).collect()
    } else {
        ids.into_iter()
            .map(|x| user_object(g, x, &f, c.owner))
            .collect()
    };
    Ok(json!({"count": list.len(), "items": items}))
}

fn users_get(g: &Graph, c: &Caller, p: &Params, bulk_counters: bool) -> Result<Value, VkError> {
    let mut wanted = p.list("user_ids");
    if wanted.is_empty() {
        if let Some(one) = p.get("user_id") {
            wanted.push(one.trim().to_string());
        }
    }
    if wanted.len() > 1000 {
        return Err(VkError::param("user_ids is too long (at most 1000)"));
    }
    let mut ids = Vec::with_capacity(wanted.len().max(1));
    if wanted.is_empty() {
        ids.push(c.owner);
    }
    for w in &wanted {
        if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            match w.parse::<i64>() {
                Ok(id) if id > 0 && id <= u32::MAX as i64 => ids.push(id as u32),
                _ => return Err(VkError::invalid_user_id()),
            }
        } else {
            match g.resolve(w) {
                Some(Resolved::User(id)) => ids.push(id),
                _ => return Err(VkError::invalid_user_id()),
            }
        }
    }
    let mut f = fields(p);
    // VK returns counters only when one user is asked for (dev.vk.com, the User object).
    if ids.len() > 1 && !bulk_counters {
        f.remove("counters");
    }
    Ok(Value::Array(
        ids.into_iter()
            .map(|id| user_object(g, id, &f, c.owner))
            .collect(),
    ))
}

fn users_get_subscriptions(sim: &Sim, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let g = &*sim.graph;
    let id = user_id_param(g, p, "user_id", c.owner)?;
    check_visible(g, c.owner, id)?;
    let users = g.following.of(id);
    let groups = sim.membership.groups_of(g, id, sim.current_day());
    let groups = &groups[..];
    if !p.flag("extended") {
        return Ok(json!({
            "users": {"count": users.len(), "items": users},
            "groups": {"count": groups.len(), "items": groups},
        }));
    }
    let count = p.count(20, 200)?;
    let offset = p.offset()?;
    let f = fields(p);
    let items: Vec<Value> = users
        .iter()
        .map(|&u| (true, u))
        .chain(groups.iter().map(|&gid| (false, gid)))
        .skip(offset)
        .take(count)
        .map(|(is_user, x)| {
            let mut o = if is_user {
                user_object(g, x, &f, c.owner)
            } else {
                group_object(sim, x, &f, c)
            };
            if is_user {
                o["type"] = json!("profile");
            }
            o
        })
        .collect();
    Ok(json!({"count": users.len() + groups.len(), "items": items}))
}

fn groups_get_by_id(sim: &Sim, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let g = &*sim.graph;
    let mut wanted = p.list("group_ids");
    if wanted.is_empty() {
        if let Some(one) = p.get("group_id") {
            wanted.push(one.trim().to_string());
        }
    }
    if wanted.is_empty() {
        return Err(VkError::param("group_ids is undefined"));
    }
    if wanted.len() > 500 {
        return Err(VkError::param("group_ids is too long (at most 500)"));
    }
    let mut ids = Vec::with_capacity(wanted.len());
    for w in &wanted {
        let id = match w.trim_start_matches('-').parse::<u32>() {
            Ok(id) if g.group(id).is_some() => id,
            Ok(_) => return Err(VkError::param("group_ids is invalid")),
            Err(_) => match g.resolve(w) {
                Some(Resolved::Group(id)) => id,
                _ => return Err(VkError::param("group_ids is invalid")),
            },
        };
        ids.push(id);
    }
    let f = fields(p);
    let groups: Vec<Value> = ids
        .into_iter()
        .map(|id| group_object(sim, id, &f, c))
        .collect();
    if c.v_minor >= 199 {
        Ok(json!({"groups": groups, "profiles": []}))
    } else {
        Ok(Value::Array(groups))
    }
}

fn groups_get_members(sim: &Sim, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let g = &*sim.graph;
    let raw = p
        .get("group_id")
        .ok_or_else(|| VkError::param("group_id is undefined"))?;
    let gid = match raw.trim_start_matches('-').parse::<u32>() {
        Ok(id) if g.group(id).is_some() => id,
        Ok(_) => return Err(VkError::invalid_group_id()),
        Err(_) => match g.resolve(raw) {
            Some(Resolved::Group(id)) => id,
            _ => return Err(VkError::invalid_group_id()),
        },
    };
    // The current simulated day's members (see `membership`).
    let members = sim.members(gid);
    let members = &members[..];
    let grp = g.group(gid).expect("resolved group");
    if grp.deactivated.is_some() {
        return Err(VkError::group_deactivated());
    }
    if grp.is_closed != 0 && members.binary_search(&c.owner).is_err() {
        return Err(VkError::access_denied());
    }
    let count = p.count(1000, 1000)?;
    let offset = p.offset()?;
    let ids = match p.get("sort") {
        None | Some("id_asc") => page(members.iter().copied(), offset, count),
        Some("id_desc") => page(members.iter().rev().copied(), offset, count),
        Some(other) => return Err(VkError::param(format!("sort {other:?} is not supported"))),
    };
    let f = fields(p);
    let items: Vec<Value> = if f.is_empty() {
        ids.into_iter().map(|x| json!(x)).collect()
    } else {
        ids.into_iter()
            .map(|x| user_object(g, x, &f, c.owner))
            .collect()
    };
    Ok(json!({"count": members.len(), "items": items}))
}

fn resolve_screen_name(g: &Graph, p: &Params) -> Result<Value, VkError> {
    let name = p
        .get("screen_name")
        .ok_or_else(|| VkError::param("screen_name is undefined"))?;
    Ok(match g.resolve(name) {
        Some(Resolved::User(id)) if g.user(id).is_some_and(|u| u.deactivated.is_none()) => {
            json!({"object_id": id, "type": "user"})
        }
        Some(Resolved::Group(id)) => {
            json!({"object_id": id, "type": g.group(id).expect("resolved").kind.as_str()})
        }
        _ => json!([]),
    })
}
