//! The VK methods a campaign uses, typed: a community's rights (groups.getById), a post
//! (wall.post), what became of posts (wall.getById), and the three-step wall uploads of photos
//! and documents.
//!
//! Every call is a direct request, never packed into `execute`: uploads cannot run inside it
//! (vk-api.md), and a post must be one request so that a lost answer loses one post's outcome,
//! not 25. The campaign's logic (what to post where, in which order, what to record) lives in
//! `poster`; this module only speaks VK.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::VkError;
use super::execute::Call;
use super::methods::{decode, known_groups};
use super::orchestrator::Session;
use crate::ids::GroupId;

/// The groups.getById fields the rights check reads.
pub const RIGHTS_FIELDS: &str = "can_post,can_suggest,is_closed,wall";

/// Most posts one wall.getById names (VK's limit).
pub const POSTS_PER_GET: usize = 100;

/// What the sender may do on a community's wall, as groups.getById tells the caller.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rights {
    /// The community id.
    pub id: i64,
    /// Its screen name.
    #[serde(default)]
    pub screen_name: String,
    /// 0 open, 1 closed, 2 private.
    #[serde(default)]
    pub is_closed: u8,
    /// `deleted` or `banned`.
    #[serde(default)]
    pub deactivated: Option<String>,
    /// The sender's post is published (an editor's, or an open wall).
    #[serde(default)]
    pub can_post: u8,
    /// The sender's post becomes a suggestion.
    #[serde(default)]
    pub can_suggest: u8,
}

/// The rights of each community asked about; one VK does not know is absent (see
/// [`super::methods::known_groups`]).
pub async fn rights(
    session: &mut Session,
    ids: &[GroupId],
) -> Result<HashMap<GroupId, Rights>, VkError> {
    let mut out = HashMap::with_capacity(ids.len());
    for (id, value) in known_groups(session, ids, RIGHTS_FIELDS).await? {
        out.insert(id, decode::<Rights>("groups.getById", value)?);
    }
    Ok(out)
}

/// One wall.post of the sender into a community.
#[derive(Debug, Clone)]
pub struct WallPost<'a> {
    /// The community.
    pub group: GroupId,
    /// The text.
    pub message: &'a str,
    /// Attachment strings (`photo6_457239017_ab12`, `doc6_1_cd`), at most 10.
    pub attachments: &'a [String],
    /// Sign with the sender's name.
    pub signed: bool,
    /// VK's deduplication key: the same guid to the same wall within about an hour returns
    /// the first post instead of a second one.
    pub guid: &'a str,
}

impl WallPost<'_> {
    fn call(&self) -> Call {
        let mut params = json!({
            "owner_id": self.group.owner_id(),
            "from_group": 0,
            "signed": u8::from(self.signed),
            "guid": self.guid,
        });
        if !self.message.is_empty() {
            params["message"] = json!(self.message);
        }
        if !self.attachments.is_empty() {
            params["attachments"] = json!(self.attachments.join(","));
        }
        Call::new("wall.post", params)
    }
}

#[derive(Deserialize)]
struct PostId {
    post_id: i64,
}

/// Posts; answers the new (or, within the guid window, the first) post's id.
pub async fn wall_post(session: &mut Session, post: &WallPost<'_>) -> Result<i64, VkError> {
    let call = post.call();
    let answer = session.call(call.method, &call.form()).await?;
    Ok(decode::<PostId>("wall.post", answer.response)?.post_id)
}

/// A post as wall.getById shows it to its author.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PostState {
    /// The wall (`-group`).
    pub owner_id: i64,
    /// The post.
    pub id: i64,
    /// `post` (published) or `suggest` (waiting for an editor).
    #[serde(default)]
    pub post_type: String,
}

/// The state of each post asked about, 100 a call; a post VK no longer shows (an editor
/// deleted it or rejected the suggestion) is absent.
pub async fn post_states(
    session: &mut Session,
    posts: &[(GroupId, i64)],
) -> Result<HashMap<(GroupId, i64), PostState>, VkError> {
    let mut out = HashMap::with_capacity(posts.len());
    for chunk in posts.chunks(POSTS_PER_GET) {
        let names: Vec<String> = chunk
            .iter()
            .map(|(g, id)| format!("{}_{id}", g.owner_id()))
            .collect();
        let call = Call::new("wall.getById", json!({"posts": names.join(",")}));
        let answer = session.call(call.method, &call.form()).await?;
        // From API 5.199 `{items}`, before a bare array.
        let items = match answer.response {
            Value::Object(mut o) => o.remove("items").unwrap_or(Value::Array(Vec::new())),
            other => other,
        };
        for state in decode::<Vec<PostState>>("wall.getById", items)? {
            if let Ok(group) = GroupId::new(-state.owner_id) {
                out.insert((group, state.id), state);
            }
        }
    }
    Ok(out)
}

/// A file to put on a community's wall.
#[derive(Debug, Clone, Copy)]
pub enum UploadKind {
    /// photos.getWallUploadServer, field `photo`, photos.saveWallPhoto.
    Photo,
    /// docs.getWallUploadServer, field `file`, docs.save.
    Doc,
}

#[derive(Deserialize)]
struct UploadServer {
    upload_url: String,
}

#[derive(Deserialize)]
struct Saved {
    owner_id: i64,
    id: i64,
    #[serde(default)]
    access_key: Option<String>,
}

impl Saved {
    fn attachment(&self, kind: &str) -> String {
        match &self.access_key {
            Some(key) if !key.is_empty() => format!("{kind}{}_{}_{key}", self.owner_id, self.id),
            _ => format!("{kind}{}_{}", self.owner_id, self.id),
        }
    }
}

/// Uploads one file for `group`'s wall and saves it: answers the attachment string wall.post
/// takes. A refusal by the upload server (type, size, pixels) is [`VkError::Upload`].
pub async fn upload(
    session: &mut Session,
    group: GroupId,
    kind: UploadKind,
    filename: &str,
    title: Option<&str>,
    bytes: Vec<u8>,
) -> Result<String, VkError> {
    let (server_method, field) = match kind {
        UploadKind::Photo => ("photos.getWallUploadServer", "photo"),
        UploadKind::Doc => ("docs.getWallUploadServer", "file"),
    };
    let params = vec![("group_id".to_owned(), group.get().to_string())];
    let answer = session.call(server_method, &params).await?;
    let server: UploadServer = decode(server_method, answer.response)?;
    let uploaded = session
        .upload(&server.upload_url, field, filename, bytes)
        .await?;
    if let Some(error) = uploaded.get("error") {
        let descr = uploaded
            .get("error_descr")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Err(VkError::Upload {
            message: format!("{filename}: {} {descr}", text(error)),
        });
    }
    match kind {
        UploadKind::Photo => {
            let photo = uploaded.get("photo").map(text).unwrap_or_default();
            if photo.is_empty() || photo == "[]" {
                return Err(VkError::Upload {
                    message: format!("{filename}: the photo was refused (type, size or pixels)"),
                });
            }
            let params = vec![
                ("group_id".to_owned(), group.get().to_string()),
                ("photo".to_owned(), photo),
                (
                    "server".to_owned(),
                    uploaded.get("server").map(text).unwrap_or_default(),
                ),
                (
                    "hash".to_owned(),
                    uploaded.get("hash").map(text).unwrap_or_default(),
                ),
            ];
            let answer = session.call("photos.saveWallPhoto", &params).await?;
            let saved: Vec<Saved> = decode("photos.saveWallPhoto", answer.response)?;
            let first = saved.first().ok_or_else(|| VkError::Decode {
                method: "photos.saveWallPhoto".to_owned(),
                message: "no photo saved".to_owned(),
            })?;
            Ok(first.attachment("photo"))
        }
        UploadKind::Doc => {
            let file = uploaded.get("file").map(text).unwrap_or_default();
            let mut params = vec![("file".to_owned(), file)];
            if let Some(title) = title {
                params.push(("title".to_owned(), title.to_owned()));
            }
            let answer = session.call("docs.save", &params).await?;
            #[derive(Deserialize)]
            struct DocSaved {
                doc: Saved,
            }
            let saved: DocSaved = decode("docs.save", answer.response)?;
            Ok(saved.doc.attachment("doc"))
        }
    }
}

/// A JSON value as the text VK means by it (a string's content, a number's digits).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_asks_for_the_sender_not_the_community() {
        let attachments = vec!["photo6_1_ab".to_owned(), "doc6_2_cd".to_owned()];
        let post = WallPost {
            group: GroupId::new(42).unwrap(),
            message: "hi",
            attachments: &attachments,
            signed: true,
            guid: "g-1",
        };
        let form: HashMap<String, String> = post.call().form().into_iter().collect();
        assert_eq!(form["owner_id"], "-42");
        assert_eq!(form["from_group"], "0");
        assert_eq!(form["signed"], "1");
        assert_eq!(form["guid"], "g-1");
        assert_eq!(form["attachments"], "photo6_1_ab,doc6_2_cd");
    }

    #[test]
    fn saved_media_become_attachment_strings() {
        let with_key = Saved {
            owner_id: 6,
            id: 457,
            access_key: Some("ab".into()),
        };
        assert_eq!(with_key.attachment("photo"), "photo6_457_ab");
        let without = Saved {
            owner_id: -3,
            id: 9,
            access_key: None,
        };
        assert_eq!(without.attachment("doc"), "doc-3_9");
    }
}
