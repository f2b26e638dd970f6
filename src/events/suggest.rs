//! Decoding `SuggestPostCreated`: publish one post into the suggested posts (or, where the
//! sender is an admin, the wall) of many communities, the second job kind (issue 17).
//!
//! The payload is read field by field like the report events ([`super::fields`]), so a refusal
//! names its field. Limits are VK's where VK has one (a post's text, ten media per post) and the
//! service's otherwise (500 communities a campaign); files come only from the storage's
//! `uploads/` prefix, so an event cannot make the service read (and post) a stage's data.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::community::{community_list, CommunityRef};
use super::fields::{
    backend_id, created_at, event_id, invalid, parse_object, present, user_id, wrong_type,
};
use super::EventError;
use crate::ids::{CampaignId, JobId, VkUserId};
use crate::key::ObjectKey;

/// The stream's `event_type` of a campaign.
pub const EVENT_TYPE: &str = "SuggestPostCreated";

/// Most communities one campaign may name.
pub const MAX_GROUPS: usize = 500;

/// Longest post text, in characters (VK's limit for a wall post).
pub const MAX_MESSAGE_CHARS: usize = 16_384;

/// Most attachments of one post (VK attaches at most 10 media).
pub const MAX_ATTACHMENTS: usize = 10;

/// Most documents of one post (dev.vk.com, wall.post: "a single file").
pub const MAX_DOCS: usize = 1;

/// The only storage prefix a campaign may read files from.
pub const UPLOADS_PREFIX: &str = "uploads/";

/// Longest document title kept (VK cuts longer ones; refusing keeps the outcome predictable).
pub const MAX_TITLE_CHARS: usize = 128;

/// `SuggestPostCreated`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestPostCreated {
    /// The backend's campaign id (`reportId` of the statuses).
    pub campaign_id: CampaignId,
    /// The backend's job id.
    pub job_id: JobId,
    /// The sender: only their user token posts.
    pub user_id: VkUserId,
    /// 1 to [`MAX_GROUPS`] communities, in the order given, duplicates removed.
    pub groups: Vec<CommunityRef>,
    /// The post's text; may be empty when the post has attachments.
    pub message: String,
    /// 0 to [`MAX_ATTACHMENTS`] attachments, in order.
    pub attachments: Vec<Attachment>,
    /// Posting switches.
    pub options: PostOptions,
    /// The backend's own event id, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// When the backend created the campaign, if it said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

/// One attachment of the post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Attachment {
    /// A picture the backend stored under `uploads/`, uploaded to each community's wall.
    Photo {
        /// Its storage key.
        #[serde(serialize_with = "key_text")]
        key: ObjectKey,
    },
    /// A document the backend stored under `uploads/`, uploaded for each community.
    Doc {
        /// Its storage key.
        #[serde(serialize_with = "key_text")]
        key: ObjectKey,
        /// Its title on VK; the file's name when absent.
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    /// Media already on VK: `photo1_2`, `doc-5_7_abc`, `video…`, `audio…`.
    Vk {
        /// VK's attachment string.
        value: String,
    },
}

fn key_text<S: serde::Serializer>(key: &ObjectKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(key.as_str())
}

/// `options` of a campaign. [`Default`] is what an absent `options` (or switch) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostOptions {
    /// Sign the post with the sender's name; default false, VK's own default (a signature shows
    /// who sent it, so only on request).
    pub signed: bool,
    /// Check each community's rights with groups.getById before posting; default true.
    pub check_rights: bool,
}

impl Default for PostOptions {
    fn default() -> Self {
        PostOptions {
            signed: false,
            check_rights: true,
        }
    }
}

impl SuggestPostCreated {
    /// Decodes a payload.
    pub fn decode(payload: &[u8]) -> Result<SuggestPostCreated, EventError> {
        let o = parse_object(payload)?;
        let campaign = SuggestPostCreated {
            campaign_id: backend_id(&o, "campaignId", CampaignId::parse)?,
            job_id: backend_id(&o, "jobId", JobId::parse)?,
            user_id: user_id(&o)?,
            groups: community_list(&o, "groups", MAX_GROUPS)?,
            message: message(&o)?,
            attachments: attachments(&o)?,
            options: options(&o)?,
            event_id: event_id(&o)?,
            created_at: created_at(&o)?,
        };
        if campaign.message.trim().is_empty() && campaign.attachments.is_empty() {
            // VK refuses a post with neither (error 100): say so before any request.
            return Err(invalid("message", "expected a text, attachments, or both"));
        }
        Ok(campaign)
    }
}

fn message(o: &Map<String, Value>) -> Result<String, EventError> {
    const FIELD: &str = "message";
    match present(o, FIELD) {
        None => Ok(String::new()),
        Some(Value::String(s)) => {
            let chars = s.chars().count();
            if chars > MAX_MESSAGE_CHARS {
                Err(invalid(
                    FIELD,
                    format!("expected at most {MAX_MESSAGE_CHARS} characters, found {chars}"),
                ))
            } else {
                Ok(s.clone())
            }
        }
        Some(other) => Err(wrong_type(FIELD, "a string", other)),
    }
}

fn attachments(o: &Map<String, Value>) -> Result<Vec<Attachment>, EventError> {
    const FIELD: &str = "attachments";
    let list = match present(o, FIELD) {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong_type(FIELD, "an array", other)),
    };
    if list.len() > MAX_ATTACHMENTS {
        return Err(invalid(
            FIELD,
            format!(
                "expected at most {MAX_ATTACHMENTS} entries, found {}",
                list.len()
            ),
        ));
    }
    let attachments: Vec<Attachment> = list
        .iter()
        .enumerate()
        .map(|(i, entry)| attachment(&format!("{FIELD}[{i}]"), entry))
        .collect::<Result<_, _>>()?;
    let docs = attachments
        .iter()
        .filter(|a| match a {
            Attachment::Doc { .. } => true,
            Attachment::Vk { value } => value.starts_with("doc"),
            Attachment::Photo { .. } => false,
        })
        .count();
    if docs > MAX_DOCS {
        // VK refuses the post (100): "you can attach a single file to the post".
        return Err(invalid(
            FIELD,
            format!("expected at most {MAX_DOCS} document (VK attaches one file to a post), found {docs}"),
        ));
    }
    Ok(attachments)
}

fn attachment(field: &str, entry: &Value) -> Result<Attachment, EventError> {
    let Value::Object(a) = entry else {
        return Err(wrong_type(field, "an object", entry));
    };
    let text = |name: &str| -> Result<Option<&str>, EventError> {
        match present(a, name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(wrong_type(&format!("{field}.{name}"), "a string", other)),
        }
    };
    let required = |name: &str| -> Result<&str, EventError> {
        text(name)?.ok_or_else(|| invalid(&format!("{field}.{name}"), "missing"))
    };
    match required("type")? {
        "photo" => Ok(Attachment::Photo {
            key: upload_key(&format!("{field}.key"), required("key")?)?,
        }),
        "doc" => Ok(Attachment::Doc {
            key: upload_key(&format!("{field}.key"), required("key")?)?,
            title: match text("title")? {
                Some(t) if t.chars().count() > MAX_TITLE_CHARS => {
                    return Err(invalid(
                        &format!("{field}.title"),
                        format!("expected at most {MAX_TITLE_CHARS} characters"),
                    ))
                }
                Some(t) if !t.trim().is_empty() => Some(t.to_owned()),
                _ => None,
            },
        }),
        "vk" => {
            let value = required("value")?;
            if is_vk_media(value) {
                Ok(Attachment::Vk {
                    value: value.to_owned(),
                })
            } else {
                Err(invalid(
                    &format!("{field}.value"),
                    "expected VK media such as photo1_2 or doc-5_7_abc",
                ))
            }
        }
        other => Err(invalid(
            &format!("{field}.type"),
            format!("expected photo, doc or vk, found {:?}", truncate(other)),
        )),
    }
}

/// A storage key under [`UPLOADS_PREFIX`], each segment valid (no `..`, no hidden files).
fn upload_key(field: &str, raw: &str) -> Result<ObjectKey, EventError> {
    let Some(name) = raw.strip_prefix(UPLOADS_PREFIX) else {
        return Err(invalid(
            field,
            format!(
                "expected a key under {UPLOADS_PREFIX}, found {:?}",
                truncate(raw)
            ),
        ));
    };
    if name.is_empty() {
        return Err(invalid(field, "expected a file name after uploads/"));
    }
    ObjectKey::parse(raw).map_err(|e| invalid(field, e))
}

/// `{type}{owner_id}_{id}` with an optional `_{access_key}`, as VK writes attachments.
fn is_vk_media(value: &str) -> bool {
    let Some(rest) = ["photo", "video", "audio", "doc"]
        .iter()
        .find_map(|kind| value.strip_prefix(kind))
    else {
        return false;
    };
    let mut parts = rest.split('_');
    let owner = parts.next().unwrap_or("");
    let id = parts.next().unwrap_or("");
    let key = parts.next();
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    let owner_ok = digits(owner.strip_prefix('-').unwrap_or(owner));
    let key_ok = key.is_none_or(|k| {
        !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    owner_ok && digits(id) && key_ok && parts.next().is_none()
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn options(o: &Map<String, Value>) -> Result<PostOptions, EventError> {
    let map = match present(o, "options") {
        None => return Ok(PostOptions::default()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(wrong_type("options", "an object", other)),
    };
    let defaults = PostOptions::default();
    let flag = |name: &str, default: bool| match present(map, name) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(wrong_type(&format!("options.{name}"), "a boolean", other)),
    };
    Ok(PostOptions {
        signed: flag("signed", defaults.signed)?,
        check_rights: flag("checkRights", defaults.check_rights)?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decode(v: Value) -> Result<SuggestPostCreated, EventError> {
        SuggestPostCreated::decode(v.to_string().as_bytes())
    }

    fn base() -> Value {
        json!({
            "campaignId": "c1", "jobId": 7, "userId": 6,
            "groups": ["club1", -2, "apiclub", "https://vk.com/public3", "club1"],
            "message": "Hello",
            "attachments": [
                {"type": "photo", "key": "uploads/cat.jpg"},
                {"type": "doc", "key": "uploads/docs/price.pdf", "title": "Price"},
                {"type": "vk", "value": "photo-1_2_abc"}
            ],
            "options": {"signed": true}
        })
    }

    #[test]
    fn a_campaign_decodes_with_its_defaults() {
        let c = decode(base()).unwrap();
        assert_eq!(c.campaign_id.as_str(), "c1");
        assert_eq!(c.job_id.as_str(), "7");
        assert_eq!(c.groups.len(), 4, "the repeated club1 is dropped");
        assert_eq!(c.groups[1].to_string(), "club2");
        assert_eq!(c.attachments.len(), 3);
        assert_eq!(
            c.options,
            PostOptions {
                signed: true,
                check_rights: true
            }
        );
        let again = serde_json::to_vec(&c).unwrap();
        assert_eq!(
            SuggestPostCreated::decode(&again).unwrap(),
            c,
            "re-encodes to itself"
        );
    }

    #[test]
    fn every_refusal_names_its_field() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("groups", json!([]), "groups"),
            ("groups", json!(vec![1; MAX_GROUPS + 1]), "groups"),
            ("groups", json!(["club0"]), "groups[0]"),
            ("groups", json!([true]), "groups[0]"),
            (
                "message",
                json!("x".repeat(MAX_MESSAGE_CHARS + 1)),
                "message",
            ),
            (
                "attachments",
                json!(vec![
                    json!({"type": "vk", "value": "photo1_2"});
                    MAX_ATTACHMENTS + 1
                ]),
                "attachments",
            ),
            (
                "attachments",
                json!([{"type": "photo", "key": "DEFAULT/1/j_stage1/df_users.parquet"}]),
                "attachments[0].key",
            ),
            (
                "attachments",
                json!([{"type": "photo", "key": "uploads/../secret"}]),
                "attachments[0].key",
            ),
            (
                "attachments",
                json!([{"type": "photo", "key": "uploads/"}]),
                "attachments[0].key",
            ),
            (
                "attachments",
                json!([{"type": "gif", "key": "uploads/a.gif"}]),
                "attachments[0].type",
            ),
            (
                "attachments",
                json!([{"type": "vk", "value": "wall1_2"}]),
                "attachments[0].value",
            ),
            (
                "attachments",
                json!([{"type": "vk", "value": "photo1_2_a_b"}]),
                "attachments[0].value",
            ),
            (
                "attachments",
                json!([
                    {"type": "doc", "key": "uploads/a.pdf"},
                    {"type": "vk", "value": "doc-5_7_abc"}
                ]),
                "attachments",
            ),
            (
                "options",
                json!({"checkRights": "yes"}),
                "options.checkRights",
            ),
        ];
        for (field, value, named) in cases {
            let mut payload = base();
            payload[field] = value;
            match decode(payload) {
                Err(EventError::InvalidField { field, .. }) => assert_eq!(field, named),
                other => panic!("{named}: {other:?}"),
            }
        }
        let mut empty = base();
        empty["message"] = json!("  ");
        empty["attachments"] = json!([]);
        assert!(
            matches!(decode(empty), Err(EventError::InvalidField { field, .. }) if field == "message")
        );
        let mut no_groups = base();
        no_groups.as_object_mut().unwrap().remove("groups");
        assert_eq!(decode(no_groups), Err(EventError::MissingField("groups")));
    }

    #[test]
    fn vk_media_strings() {
        for ok in [
            "photo1_2",
            "photo-1_2_abc",
            "doc5_7",
            "video-10_20",
            "audio1_1",
        ] {
            assert!(is_vk_media(ok), "{ok}");
        }
        for bad in [
            "photo",
            "photo1",
            "photo_2",
            "photo1_",
            "photo1_2_",
            "poll1_2",
            "photo1_2_a-b",
        ] {
            assert!(!is_vk_media(bad), "{bad}");
        }
    }
}
