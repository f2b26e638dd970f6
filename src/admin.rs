//! Operator commands: publish an event, start a campaign (its files uploaded into storage
//! first), inspect a stage's files, list and replay dead letters.
//!
//! They use the same settings as the service (REDIS_URL, the stream names, the storage URL), so
//! an operator runs them next to a deployment with its environment. `publish` refuses an event
//! the service would refuse: it decodes it first with the service's own decoder.

use std::collections::HashMap;

use crate::events::{IncomingEvent, JobKind, FIELD_EVENT_TYPE, FIELD_PAYLOAD};
use crate::redis_conn::{ConnectOptions, RedisConn, RedisTarget};
use crate::settings::Settings;
use crate::storage::{self, StagePrefix};
use crate::stream::keys::StreamNames;
use crate::tables::ColumnData;

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The event would be refused by the service.
    #[error("invalid event: {0}")]
    InvalidEvent(#[from] crate::events::EventError),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// The prefix is not a stage prefix.
    #[error(transparent)]
    Prefix(#[from] crate::key::KeyError),
    /// The stage could not be read back.
    #[error(transparent)]
    Read(#[from] crate::stage_files::StageReadError),
    /// A file to attach could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A campaign as the operator gives it on the command line.
#[derive(Debug, Clone)]
pub struct PostRequest {
    /// The sender.
    pub user: i64,
    /// Communities: ids, `club1`, screen names, links.
    pub groups: Vec<String>,
    /// The post's text.
    pub message: String,
    /// Local files to attach: pictures (jpg, jpeg, png, gif) as photos, anything else as a
    /// document.
    pub attach: Vec<std::path::PathBuf>,
    /// Sign with the sender's name.
    pub signed: bool,
    /// Skip groups.getById before posting.
    pub no_check_rights: bool,
}

/// A community task as the operator gives it on the command line.
#[derive(Debug, Clone)]
pub struct CommunityRequest {
    /// Whose token goes first.
    pub user: i64,
    /// `MEMBERS`, `POSTS` or `INTERACTIONS` (any case).
    pub kind: String,
    /// Communities: ids, `club1`, screen names, links.
    pub groups: Vec<String>,
    /// POSTS, INTERACTIONS: posts per community.
    pub posts_per_group: Option<u32>,
    /// POSTS: no comments.
    pub no_comments: bool,
    /// POSTS: thread replies too.
    pub threads: bool,
    /// MEMBERS: the snapshot to compare with (`COMMUNITY/MEMBERS/{jobId}_stage1/`).
    pub since: Option<String>,
}

/// Publishes a community task on the community stream, checked by the service's decoder
/// first; answers the entry and the task's job id (`community-{time}`).
pub async fn community(
    settings: &Settings,
    request: &CommunityRequest,
) -> Result<Posted, AdminError> {
    let job = format!("community-{}", chrono::Utc::now().format("%Y%m%d%H%M%S%3f"));
    let mut options = serde_json::Map::new();
    if let Some(n) = request.posts_per_group {
        options.insert("postsPerGroup".into(), n.into());
    }
    if request.no_comments {
        options.insert("withComments".into(), false.into());
    }
    if request.threads {
        options.insert("withThreads".into(), true.into());
    }
    if let Some(since) = &request.since {
        options.insert("sinceSnapshot".into(), since.clone().into());
    }
    let payload = serde_json::json!({
        "taskId": job, "jobId": job, "userId": request.user,
        "kind": request.kind.to_ascii_uppercase(), "groups": request.groups,
        "options": options,
    })
    .to_string();
    let event_type = crate::events::COMMUNITY_TASK_CREATED;
    IncomingEvent::decode(Some(event_type.as_bytes()), Some(payload.as_bytes()))?;
    let mut conn = redis(settings).await?;
    let entry = add_event(&mut conn, settings, event_type, &payload).await?;
    Ok(Posted { entry, job })
}

/// A published campaign or community task.
#[derive(Debug, Clone)]
pub struct Posted {
    /// The stream entry.
    pub entry: String,
    /// Its campaign (task) and job id (`post-{time}`, `community-{time}`).
    pub job: String,
}

/// Uploads the files of `request` into storage under `uploads/{job}/`, then publishes the
/// campaign on the campaign stream, checked by the service's own decoder first.
pub async fn post(settings: &Settings, request: &PostRequest) -> Result<Posted, AdminError> {
    let job = format!("post-{}", chrono::Utc::now().format("%Y%m%d%H%M%S%3f"));
    let mut attachments = Vec::with_capacity(request.attach.len());
    let mut files = Vec::with_capacity(request.attach.len());
    for path in &request.attach {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| AdminError::File {
            path: shown.clone(),
            source,
        })?;
        let name = upload_name(path);
        let key = format!("{}{job}/{name}", crate::events::UPLOADS_PREFIX);
        let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
        let kind = if ["jpg", "jpeg", "png", "gif"].contains(&ext.as_str()) {
            "photo"
        } else {
            "doc"
        };
        attachments.push(serde_json::json!({"type": kind, "key": key}));
        files.push((crate::storage::ObjectKey::parse(&key)?, bytes));
    }
    let payload = serde_json::json!({
        "campaignId": job, "jobId": job, "userId": request.user,
        "groups": request.groups, "message": request.message, "attachments": attachments,
        "options": {"signed": request.signed, "checkRights": !request.no_check_rights},
    })
    .to_string();
    let event_type = crate::events::SUGGEST_POST_CREATED;
    // Refused before anything is stored: a bad campaign leaves no files behind.
    IncomingEvent::decode(Some(event_type.as_bytes()), Some(payload.as_bytes()))?;
    if !files.is_empty() {
        let storage = storage::open(&settings.storage).await?;
        for (key, bytes) in files {
            storage.put(&key, bytes.into()).await?;
        }
    }
    let mut conn = redis(settings).await?;
    let entry = add_event(&mut conn, settings, event_type, &payload).await?;
    Ok(Posted { entry, job })
}

/// A file's name as a storage key segment: `[A-Za-z0-9_.-]`, others replaced by `_`, no
/// leading dot.
fn upload_name(path: &std::path::Path) -> String {
    let raw = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if name.is_empty() || name.starts_with('.') {
        name.insert_str(0, "file");
    }
    name
}

async fn redis(settings: &Settings) -> Result<RedisConn, AdminError> {
    let target = RedisTarget::from_settings(&settings.redis)?;
    Ok(target.dedicated(ConnectOptions::default()).await?)
}

/// Publishes `event_type` with `payload` on the input stream, after checking it decodes.
/// Returns the entry id.
pub async fn publish(
    settings: &Settings,
    event_type: &str,
    payload: &str,
) -> Result<String, AdminError> {
    IncomingEvent::decode(Some(event_type.as_bytes()), Some(payload.as_bytes()))?;
    let mut conn = redis(settings).await?;
    add_event(&mut conn, settings, event_type, payload).await
}

/// Appends one event to its job kind's input stream (reports' for a type no kind consumes, so
/// the service dead-letters it), as the backend does; returns the entry id.
async fn add_event(
    conn: &mut RedisConn,
    settings: &Settings,
    event_type: &str,
    payload: &str,
) -> Result<String, AdminError> {
    let kind = IncomingEvent::kind_of(event_type).unwrap_or(JobKind::Report);
    Ok(redis::cmd("XADD")
        .arg(StreamNames::from_settings(settings, kind).input)
        .arg("*")
        .arg(FIELD_EVENT_TYPE)
        .arg(event_type)
        .arg(FIELD_PAYLOAD)
        .arg(payload)
        .query_async(conn)
        .await?)
}

/// A readable description of a stage: its manifest, then a few rows of each table.
pub async fn inspect(settings: &Settings, prefix: &str, rows: usize) -> Result<String, AdminError> {
    let prefix = StagePrefix::parse(prefix)?;
    let storage = storage::open(&settings.storage).await?;
    let (manifest, tables) = crate::stage_files::read_stage(storage.as_ref(), &prefix).await?;
    let mut out = format!(
        "{} (report {}, job {}, stage {}, seeds {:?}, written {})\n",
        manifest.prefix,
        manifest.report_id,
        manifest.job_id,
        manifest.stage,
        manifest.main_ids,
        manifest.created_at
    );
    for (file, table) in manifest.files.iter().zip(&tables) {
        let columns: Vec<String> = file
            .columns
            .iter()
            .map(|c| format!("{}:{}", c.name, c.dtype))
            .collect();
        out.push_str(&format!(
            "\n{}: {} rows, {} bytes\n  {}\n",
            file.name,
            file.rows,
            file.bytes,
            columns.join(", ")
        ));
        for row in 0..table.rows().min(rows) {
            let cells: Vec<String> = table
                .columns
                .iter()
                .map(|c| match &c.data {
                    ColumnData::I64(v) => v[row].to_string(),
                    ColumnData::OptI64(v) => {
                        v[row].map_or_else(|| "null".to_owned(), |n| n.to_string())
                    }
                    ColumnData::I8(v) => v[row].to_string(),
                    ColumnData::Bool(v) => v[row].to_string(),
                    ColumnData::F64(v) => v[row].to_string(),
                    ColumnData::Str(v) => v[row].clone().unwrap_or_else(|| "null".to_owned()),
                })
                .collect();
            out.push_str(&format!("  {}\n", cells.join(" | ")));
        }
    }
    Ok(out)
}

/// A stream field as Redis holds it: name and value as bytes (a poison entry's need not be UTF-8).
type RawField = (Vec<u8>, Vec<u8>);

/// One dead letter: its id in the dead-letter stream and its fields (lossy UTF-8).
pub type DeadLetter = (String, HashMap<String, String>);

fn dead_stream(settings: &Settings, kind: JobKind) -> String {
    StreamNames::from_settings(settings, kind).dead
}

/// Up to `count` dead letters, oldest first.
/// Up to `count` dead letters of `kind`'s stream, oldest first.
pub async fn dlq_list(
    settings: &Settings,
    kind: JobKind,
    count: usize,
) -> Result<Vec<DeadLetter>, AdminError> {
    let mut conn = redis(settings).await?;
    let entries: Vec<(String, Vec<RawField>)> = redis::cmd("XRANGE")
        .arg(dead_stream(settings, kind))
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(&mut conn)
        .await?;
    Ok(entries
        .into_iter()
        .map(|(id, fields)| {
            let fields = fields
                .into_iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect();
            (id, fields)
        })
        .collect())
}

/// Puts dead letters back on the input stream (after a fix) and removes them from the
/// dead-letter stream; `ids` empty means all. A letter of a job stage that failed for good
/// reruns from attempt 1 (its `failed` state is forgotten first). Entries without `event_type`
/// and `payload` (not events at all) are left where they are. Returns how many were replayed.
pub async fn dlq_replay(
    settings: &Settings,
    kind: JobKind,
    ids: &[String],
) -> Result<usize, AdminError> {
    let mut conn = redis(settings).await?;
    let dead = dead_stream(settings, kind);
    let mut replayed = 0;
    for (id, fields) in dlq_list(settings, kind, usize::MAX >> 1).await? {
        if !ids.is_empty() && !ids.contains(&id) {
            continue;
        }
        let (Some(event_type), Some(payload)) =
            (fields.get(FIELD_EVENT_TYPE), fields.get(FIELD_PAYLOAD))
        else {
            continue;
        };
        if let Ok(event) =
            IncomingEvent::decode(Some(event_type.as_bytes()), Some(payload.as_bytes()))
        {
            let keys = StreamNames::from_settings(settings, event.kind())
                .job(event.job_id(), event.stage());
            crate::stream::scripts::Scripts::new()
                .forget_failed(&mut conn, &keys)
                .await?;
        }
        add_event(&mut conn, settings, event_type, payload).await?;
        let _: i64 = redis::cmd("XDEL")
            .arg(&dead)
            .arg(&id)
            .query_async(&mut conn)
            .await?;
        replayed += 1;
    }
    Ok(replayed)
}
