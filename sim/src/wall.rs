//! Walls: `wall.post` (a user's post to its own wall, a friend's, or a community's, where the
//! community's settings and the caller's role decide whether it is published, becomes a
//! suggestion or is refused), `wall.getById`, and the posts `/sim/truth/posts` reports.
//!
//! A community post, in the order VK's answers imply: the community must exist (100), be alive
//! (15) and its wall visible to the caller (closed/private: members and managers only, else 15);
//! `from_group = 1` needs an editor (214); an editor's or administrator's post is published, a
//! member's on an open wall too; on a public page's limited wall it becomes `post_type =
//! suggest`; on a group's limited wall it is refused (214). Attachments must be the caller's own
//! photos/documents saved for that wall, or existing media; at most `wall_post_max_media` media,
//! `wall_post_max_docs` documents and one link (else 100). The same `guid` from the same user to
//! the same wall within `guid_window_secs` returns the first post's id and creates nothing.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::error::VkError;
use crate::graph::{Graph, WallMode};
use crate::media::{self, Media};
use crate::methods::{group_object, user_object, Caller, Params};
use crate::state::{lock, Sim};
use crate::tokens::unix_now;

/// Media types wall.post's `attachments` names (dev.vk.com, wall.post), longest first so a
/// prefix does not shadow a longer one.
const MEDIA_TYPES: &[&str] = &[
    "audio_playlist",
    "market_album",
    "market",
    "photo",
    "video",
    "audio",
    "album",
    "page",
    "note",
    "poll",
    "doc",
];

/// Most posts one wall.getById takes (VK's limit).
const MAX_POSTS_PER_GET: usize = 100;

/// Whether a post is on the wall or waits for an editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostType {
    Post,
    Suggest,
}

impl PostType {
    fn as_str(self) -> &'static str {
        match self {
            PostType::Post => "post",
            PostType::Suggest => "suggest",
        }
    }
}

/// One attachment of a post: its canonical string (`photo6_457239017_key`, a URL) and the
/// object wall.getById renders.
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub kind: &'static str,
    pub id: String,
    pub object: Value,
}

/// One post made through wall.post.
#[derive(Debug, Clone)]
pub(crate) struct Post {
    pub owner_id: i64,
    pub id: i64,
    /// The user who called wall.post.
    pub author: u32,
    /// `-group` for a post from the community (`from_group = 1` by an editor), else the author.
    pub from_id: i64,
    pub post_type: PostType,
    pub text: String,
    pub attachments: Vec<Attachment>,
    pub guid: Option<String>,
    pub signed: bool,
    pub date: u64,
    pub created: Instant,
}

/// Every post made through wall.post, and the guid window.
#[derive(Debug, Default)]
pub(crate) struct Wall {
    pub posts: Vec<Post>,
    index: HashMap<(i64, i64), usize>,
    /// (user, wall owner, guid) -> (post id, when it was made).
    by_guid: HashMap<(u32, i64, String), (i64, Instant)>,
    next_id: HashMap<i64, i64>,
    /// wall.post calls answered from the guid window (nothing created).
    pub guid_repeats: u64,
}

fn parse_owner(p: &Params) -> Result<Option<i64>, VkError> {
    p.get("owner_id")
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| VkError::param("owner_id not integer"))
        })
        .transpose()
}

/// `{type}{owner}_{id}[_{access_key}]`, split.
fn parse_media(item: &str) -> Option<(&'static str, i64, i64, Option<&str>)> {
    let kind = MEDIA_TYPES.iter().find(|t| item.starts_with(**t))?;
    let rest = &item[kind.len()..];
    let mut fields = rest.splitn(3, '_');
    let owner: i64 = fields.next()?.parse().ok()?;
    let id: i64 = fields.next()?.parse().ok().filter(|&id| id > 0)?;
    let key = fields.next();
    if key.is_some_and(|k| k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return None;
    }
    Some((kind, owner, id, key))
}

/// Checks and resolves wall.post's `attachments` for a post by `c` on the wall of `group`
/// (`None`: a user's wall).
fn attachments(
    sim: &Sim,
    c: &Caller,
    p: &Params,
    group: Option<u32>,
) -> Result<Vec<Attachment>, VkError> {
    let cfg = &sim.settings.cfg;
    let items = p.list("attachments");
    let links = items.iter().filter(|i| i.contains("://")).count();
    if links > 1 {
        return Err(VkError::param("attachments: only one link may be attached"));
    }
    let media_items: Vec<&String> = items.iter().filter(|i| !i.contains("://")).collect();
    if media_items.len() > cfg.wall_post_max_media {
        return Err(VkError::param(format!(
            "attachments: at most {} media may be attached",
            cfg.wall_post_max_media
        )));
    }
    let docs = media_items.iter().filter(|i| i.starts_with("doc")).count();
    if docs > cfg.wall_post_max_docs {
        return Err(VkError::param(format!(
            "attachments: at most {} file may be attached",
            cfg.wall_post_max_docs
        )));
    }
    let g = &*sim.graph;
    let media = lock(&sim.media);
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        if item.contains("://") {
            let ok = (item.starts_with("http://") || item.starts_with("https://"))
                && item
                    .split_once("://")
                    .is_some_and(|(_, rest)| !rest.is_empty());
            if !ok {
                return Err(VkError::param("attachments: link is invalid"));
            }
            out.push(Attachment {
                kind: "link",
                id: item.clone(),
                object: json!({"url": item, "title": "", "description": "", "is_external": true}),
            });
            continue;
        }
        let (kind, owner, id, key) =
            parse_media(item).ok_or_else(|| VkError::param("attachments is invalid"))?;
        let mine = |user: u32, bound: Option<u32>, access: &str| {
            user == c.owner && bound == group && key.is_none_or(|k| k == access)
        };
        let attachment = match kind {
            "photo" => match media.photos.get(&(owner, id)) {
                Some(ph) if mine(ph.user, ph.group, &ph.access_key) => Attachment {
                    kind: "photo",
                    id: Media::photo_attachment(ph),
                    object: media::photo_object(ph),
                },
                Some(_) => {
                    return Err(VkError::param(
                        "attachments: the photo is not the caller's upload for this wall",
                    ))
                }
                None if existing_photo(g, owner, id) => Attachment {
                    kind: "photo",
                    id: format!("photo{owner}_{id}"),
                    object: media::existing_photo_object(owner as u32, id),
                },
                None => return Err(VkError::param("attachments: photo not found")),
            },
            "doc" => match media.docs.get(&(owner, id)) {
                Some(d) if mine(d.user, d.group, &d.access_key) => Attachment {
                    kind: "doc",
                    id: Media::doc_attachment(d),
                    object: media::doc_object(d),
                },
                Some(_) => {
                    return Err(VkError::param(
                        "attachments: the document is not the caller's upload for this wall",
                    ))
                }
                None => return Err(VkError::param("attachments: document not found")),
            },
            // The simulator has no videos, audio, polls...: VK refuses media it cannot find.
            _ => return Err(VkError::param(format!("attachments: {kind} not found"))),
        };
        out.push(attachment);
    }
    Ok(out)
}

/// The graph's existing photos: photo{user}_{k} for k in 1..=user % 300 of an active, open
/// profile (the `photos` counter users.get reports), public to everyone.
fn existing_photo(g: &Graph, owner: i64, id: i64) -> bool {
    let Ok(uid) = u32::try_from(owner) else {
        return false;
    };
    g.user(uid)
        .is_some_and(|u| u.deactivated.is_none() && !u.is_closed)
        && id >= 1
        && id <= i64::from(uid % 300)
}

/// Whether `viewer` may see community `gid`'s wall: an open community, or a member or manager
/// of a closed/private one.
fn sees_group_wall(sim: &Sim, gid: u32, viewer: u32) -> bool {
    let g = &*sim.graph;
    g.group(gid).is_some_and(|grp| {
        grp.deactivated.is_none()
            && (grp.is_closed == 0
                || sim.is_member(gid, viewer)
                || g.admin_level(gid, viewer).is_some())
    })
}

/// Whether `user` publishes on community `gid` (editor or administrator).
pub(crate) fn is_editor(g: &Graph, gid: u32, user: u32) -> bool {
    g.admin_level(gid, user).is_some_and(|level| level >= 2)
}

/// What the wall of community `gid` does with a post of `user`: `Some(post type)` or `None`
/// (refused, 214). Visibility and deactivation are checked before. groups.getById's `can_post`
/// and `can_suggest` say the same.
pub(crate) fn post_type_for(g: &Graph, gid: u32, user: u32) -> Option<PostType> {
    let grp = g.group(gid)?;
    if is_editor(g, gid, user) {
        return Some(PostType::Post);
    }
    match grp.wall_mode() {
        WallMode::Open => Some(PostType::Post),
        WallMode::Suggestions => Some(PostType::Suggest),
        WallMode::Closed => None,
    }
}

/// `wall.post`.
pub(crate) fn wall_post(sim: &Sim, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let g = &*sim.graph;
    let owner_id = parse_owner(p)?.unwrap_or(i64::from(c.owner));
    let text = p.get("message").unwrap_or("").to_string();
    if text.is_empty() && p.get("attachments").is_none() {
        return Err(VkError::param("message is empty or invalid"));
    }
    let max_chars = sim.settings.cfg.wall_post_max_message_chars;
    if text.chars().count() > max_chars {
        return Err(VkError::param(format!(
            "message is too long (at most {max_chars} characters)"
        )));
    }
    let from_group = p.flag("from_group");
    let (group, post_type) = if owner_id < 0 {
        let gid = u32::try_from(-owner_id)
            .ok()
            .filter(|&gid| g.group(gid).is_some())
            .ok_or_else(|| VkError::param("owner_id is invalid"))?;
        let grp = g.group(gid).expect("checked");
        if grp.deactivated.is_some() {
            return Err(VkError::group_deactivated());
        }
        if !sees_group_wall(sim, gid, c.owner) {
            return Err(VkError::wall_members_only());
        }
        if from_group && !is_editor(g, gid, c.owner) {
            return Err(VkError::post_denied());
        }
        let post_type = post_type_for(g, gid, c.owner).ok_or_else(VkError::post_denied)?;
        (Some(gid), post_type)
    } else {
        if owner_id != i64::from(c.owner) {
            let target = u32::try_from(owner_id)
                .ok()
                .and_then(|id| g.user(id))
                .ok_or_else(VkError::invalid_user_id)?;
            if target.deactivated.is_some()
                || target.is_closed
                || !g.are_friends(c.owner, owner_id as u32)
            {
                return Err(VkError::post_denied());
            }
        }
        (None, PostType::Post)
    };
    let attachments = attachments(sim, c, p, group)?;
    let guid = p.get("guid").map(str::to_string);
    let mut wall = lock(&sim.wall);
    if let Some(guid) = &guid {
        let key = (c.owner, owner_id, guid.clone());
        if let Some(&(id, at)) = wall.by_guid.get(&key) {
            if at.elapsed() < sim.settings.guid_window {
                wall.guid_repeats += 1;
                return Ok(json!({ "post_id": id }));
            }
        }
    }
    let next = wall.next_id.entry(owner_id).or_insert(0);
    *next += 1;
    let id = *next;
    let now = Instant::now();
    if let Some(guid) = &guid {
        wall.by_guid
            .insert((c.owner, owner_id, guid.clone()), (id, now));
    }
    let editor_post = from_group && group.is_some();
    let post = Post {
        owner_id,
        id,
        author: c.owner,
        from_id: if editor_post {
            owner_id
        } else {
            i64::from(c.owner)
        },
        post_type,
        text,
        attachments,
        guid,
        signed: editor_post && p.flag("signed"),
        date: unix_now() as u64,
        created: now,
    };
    let index = wall.posts.len();
    wall.index.insert((owner_id, id), index);
    wall.posts.push(post);
    Ok(json!({ "post_id": id }))
}

/// Whether `viewer` sees `post`: a published post wherever the wall is visible; a suggestion
/// only by its author and the community's editors.
fn sees_post(sim: &Sim, post: &Post, viewer: u32) -> bool {
    let g = &*sim.graph;
    if post.owner_id > 0 {
        let owner = post.owner_id as u32;
        return g.user(owner).is_some_and(|u| {
            u.deactivated.is_none()
                && (!u.is_closed || viewer == owner || g.are_friends(viewer, owner))
        });
    }
    let gid = (-post.owner_id) as u32;
    if !sees_group_wall(sim, gid, viewer) {
        return false;
    }
    post.post_type == PostType::Post || post.author == viewer || is_editor(g, gid, viewer)
}

/// A post as VK renders it to `viewer` (wall_wallpost_full).
fn post_object(g: &Graph, post: &Post, viewer: u32) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(post.id));
    o.insert("owner_id".into(), json!(post.owner_id));
    o.insert("from_id".into(), json!(post.from_id));
    if post.from_id < 0 {
        o.insert("created_by".into(), json!(post.author));
    }
    if post.signed {
        o.insert("signer_id".into(), json!(post.author));
    }
    o.insert("date".into(), json!(post.date));
    o.insert("post_type".into(), json!(post.post_type.as_str()));
    o.insert("text".into(), json!(post.text));
    let manager = post.owner_id < 0 && is_editor(g, (-post.owner_id) as u32, viewer);
    let own = post.author == viewer || post.owner_id == i64::from(viewer) || manager;
    o.insert("can_delete".into(), json!(own as u8));
    o.insert("can_edit".into(), json!((post.author == viewer) as u8));
    o.insert(
        "attachments".into(),
        Value::Array(
            post.attachments
                .iter()
                .map(|a| json!({"type": a.kind, a.kind: a.object}))
                .collect(),
        ),
    );
    o.insert("post_source".into(), json!({"type": "api"}));
    o.insert(
        "comments".into(),
        json!({"count": 0, "can_post": (post.post_type == PostType::Post) as u8}),
    );
    o.insert(
        "likes".into(),
        json!({"count": 0, "user_likes": 0, "can_like": (post.post_type == PostType::Post) as u8, "can_publish": 1}),
    );
    o.insert("reposts".into(), json!({"count": 0, "user_reposted": 0}));
    if post.post_type == PostType::Post {
        o.insert("views".into(), json!({"count": 1}));
    }
    o.insert("is_favorite".into(), json!(false));
    Value::Object(o)
}

/// `wall.getById(posts = "-12_3,6_1", extended)`: the posts the caller may see, in the order
/// asked; unknown or hidden ones are left out. From 5.199 `{items}` (with `extended`, also
/// `profiles` and `groups`), before a bare array.
pub(crate) fn wall_get_by_id(sim: &Sim, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let g = &*sim.graph;
    let wanted = p.list("posts");
    if wanted.is_empty() {
        return Err(VkError::param("posts is undefined"));
    }
    if wanted.len() > MAX_POSTS_PER_GET {
        return Err(VkError::param(format!(
            "posts is too long (at most {MAX_POSTS_PER_GET})"
        )));
    }
    let mut keys = Vec::with_capacity(wanted.len());
    for w in &wanted {
        let key = w
            .split_once('_')
            .and_then(|(o, i)| Some((o.parse::<i64>().ok()?, i.parse::<i64>().ok()?)))
            .ok_or_else(|| VkError::param("posts is invalid"))?;
        keys.push(key);
    }
    let wall = lock(&sim.wall);
    let posts: Vec<&Post> = keys
        .iter()
        .filter_map(|k| wall.index.get(k).map(|&i| &wall.posts[i]))
        .filter(|post| sees_post(sim, post, c.owner))
        .collect();
    let items: Vec<Value> = posts
        .iter()
        .map(|post| post_object(g, post, c.owner))
        .collect();
    if c.v_minor < 199 {
        return Ok(Value::Array(items));
    }
    if !p.flag("extended") {
        return Ok(json!({ "items": items }));
    }
    let fields = p
        .list("fields")
        .into_iter()
        .map(|f| f.to_lowercase())
        .collect();
    let mut profiles: Vec<u32> = Vec::new();
    let mut groups: Vec<u32> = Vec::new();
    for post in &posts {
        for owner in [post.owner_id, post.from_id, i64::from(post.author)] {
            if owner > 0 {
                profiles.push(owner as u32);
            } else {
                groups.push((-owner) as u32);
            }
        }
    }
    profiles.sort_unstable();
    profiles.dedup();
    groups.sort_unstable();
    groups.dedup();
    Ok(json!({
        "items": items,
        "profiles": profiles.iter().map(|&u| user_object(g, u, &fields, c.owner)).collect::<Vec<_>>(),
        "groups": groups.iter().map(|&gid| group_object(sim, gid, &fields, c)).collect::<Vec<_>>(),
    }))
}

/// `/sim/truth/posts`: every post made through wall.post (optionally of one community), the
/// count per community, the guid repeats, and every upload.
pub(crate) fn posts_truth(sim: &Sim, group: Option<u32>) -> Value {
    let wall = lock(&sim.wall);
    let start = sim.start;
    let scale = sim.settings.cfg.time_scale;
    let mut per_community: BTreeMap<String, Value> = BTreeMap::new();
    let mut posts = Vec::new();
    for post in &wall.posts {
        let gid = (post.owner_id < 0).then_some((-post.owner_id) as u32);
        if group.is_some() && gid != group {
            continue;
        }
        if let Some(gid) = gid {
            let entry = per_community
                .entry(gid.to_string())
                .or_insert_with(|| json!({"posts": 0, "published": 0, "suggested": 0}));
            entry["posts"] = json!(entry["posts"].as_u64().unwrap_or(0) + 1);
            let key = match post.post_type {
                PostType::Post => "published",
                PostType::Suggest => "suggested",
            };
            entry[key] = json!(entry[key].as_u64().unwrap_or(0) + 1);
        }
        posts.push(json!({
            "owner_id": post.owner_id,
            "group_id": gid,
            "post_id": post.id,
            "author": post.author,
            "from_id": post.from_id,
            "post_type": post.post_type.as_str(),
            "text": post.text,
            "attachments": post.attachments.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
            "guid": post.guid,
            "signed": post.signed,
            "date": post.date,
            "sim_time": post.created.duration_since(start).as_secs_f64() * scale,
        }));
    }
    let guid_repeats = wall.guid_repeats;
    drop(wall);
    json!({
        "posts": posts,
        "per_community": per_community,
        "guid_repeats": guid_repeats,
        "uploads": media::uploads_truth(sim),
    })
}
