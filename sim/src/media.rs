//! Wall uploads the way VK takes them, and the photos and documents they become.
//!
//! Three steps, as on VK: `photos.getWallUploadServer` / `docs.getWallUploadServer` hand out an
//! upload URL bound to the caller and the community (a ticket); a multipart POST of the file to
//! that URL (`/upload/photo/{ticket}`, field `photo`; `/upload/doc/{ticket}`, field `file`),
//! served by this listener as plain HTTP (no token, no rate limit: VK's upload servers are
//! separate hosts), answers what the save method needs; `photos.saveWallPhoto` / `docs.save`
//! turn a fresh upload of that caller for that community into a photo or document, once.
//!
//! The upload server checks what VK documents (photos: JPG, PNG or GIF by their magic bytes,
//! at most `photo_max_bytes`, width + height at most 14,000 px, sides at most 1:20; documents:
//! at most `doc_max_bytes`, no executables and no mp3). A refused photo comes back as VK's
//! empty list (`"photo": "[]"`), which `photos.saveWallPhoto` refuses with 100 "photos_list is
//! invalid"; a refused document gets an upload error body `{"error", "error_descr"}`.
//!
//! This module owns the upload records and the saved media; `wall` attaches them to posts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::error::VkError;
use crate::methods::{Caller, Params};
use crate::state::{lock, Sim};
use crate::tokens::unix_now;

/// The album VK reports for wall photos (`album_id` of getWallUploadServer and saved photos).
pub const WALL_ALBUM_ID: i64 = -14;

/// VK's limits on a photo's pixels (dev.vk.com upload page, as quoted in SevereCloud/vksdk's
/// api/upload.go): width + height at most 14,000 px, aspect ratio at least 1:20.
pub const PHOTO_MAX_SIDES_SUM: u32 = 14_000;
pub const PHOTO_MAX_RATIO: u32 = 20;

/// Saved photo and document ids start here (VK's are large numbers; distinct from the
/// graph's existing photos 1..=300 of each user).
const FIRST_PHOTO_ID: i64 = 457_239_017;
const FIRST_DOC_ID: i64 = 667_000_001;

/// File extensions the document upload server refuses: executables and scripts (VK: "any
/// format except mp3 and executable files").
const FORBIDDEN_DOC_EXTENSIONS: &[&str] = &[
    "exe", "com", "bat", "cmd", "msi", "msp", "scr", "pif", "cpl", "dll", "sys", "vbs", "vbe",
    "jse", "wsf", "wsh", "ps1", "jar", "app", "mp3",
];

/// What an upload is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Photo,
    Doc,
}

impl MediaKind {
    fn path(self) -> &'static str {
        match self {
            MediaKind::Photo => "photo",
            MediaKind::Doc => "doc",
        }
    }

    /// The multipart field VK's upload server reads.
    fn field(self) -> &'static str {
        match self {
            MediaKind::Photo => "photo",
            MediaKind::Doc => "file",
        }
    }
}

/// An upload URL handed out by a getWallUploadServer call.
#[derive(Debug, Clone)]
struct Ticket {
    kind: MediaKind,
    user: u32,
    /// The community the upload is for; `None` for the user's own wall.
    group: Option<u32>,
}

/// One POST to an upload URL.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub kind: MediaKind,
    pub user: u32,
    pub group: Option<u32>,
    pub server: u64,
    pub hash: String,
    pub filename: String,
    pub size: usize,
    /// `jpg`/`png`/`gif` for photos, the file's extension for documents.
    pub format: String,
    pub width: u32,
    pub height: u32,
    /// Why the upload server refused the file, if it did.
    pub refused: Option<String>,
    pub created: Instant,
    pub date: u64,
    /// What it was saved as (`photo6_457239017_...`), once saved.
    pub saved_as: Option<String>,
}

/// A photo saved with photos.saveWallPhoto.
#[derive(Debug, Clone)]
pub(crate) struct SavedPhoto {
    pub owner_id: i64,
    pub id: i64,
    pub user: u32,
    pub group: Option<u32>,
    pub access_key: String,
    pub date: u64,
    pub width: u32,
    pub height: u32,
}

/// A document saved with docs.save.
#[derive(Debug, Clone)]
pub(crate) struct SavedDoc {
    pub owner_id: i64,
    pub id: i64,
    pub user: u32,
    pub group: Option<u32>,
    pub access_key: String,
    pub title: String,
    pub ext: String,
    pub size: usize,
    pub date: u64,
}

/// Upload tickets, uploads and saved media of one simulator. Random strings (tickets, hashes,
/// access keys) come from their own stream seeded by `seed`, so runs repeat.
#[derive(Debug)]
pub(crate) struct Media {
    rng: ChaCha8Rng,
    tickets: HashMap<String, Ticket>,
    /// Every upload in arrival order.
    pub uploads: Vec<Upload>,
    by_token: HashMap<String, usize>,
    pub photos: BTreeMap<(i64, i64), SavedPhoto>,
    pub docs: BTreeMap<(i64, i64), SavedDoc>,
}

impl Media {
    pub fn new(seed: u64) -> Media {
        Media {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x0b10_ad5e_ed00),
            tickets: HashMap::new(),
            uploads: Vec::new(),
            by_token: HashMap::new(),
            photos: BTreeMap::new(),
            docs: BTreeMap::new(),
        }
    }

    fn hex(&mut self, bytes: usize) -> String {
        (0..bytes)
            .map(|_| format!("{:02x}", self.rng.random::<u8>()))
            .collect()
    }

    /// A photo's attachment string, with its access key.
    pub fn photo_attachment(p: &SavedPhoto) -> String {
        format!("photo{}_{}_{}", p.owner_id, p.id, p.access_key)
    }

    /// A document's attachment string, with its access key.
    pub fn doc_attachment(d: &SavedDoc) -> String {
        format!("doc{}_{}_{}", d.owner_id, d.id, d.access_key)
    }
}

/// Parses an optional `group_id` of the upload methods: a positive community id VK knows, that
/// is alive and whose wall the caller may see.
fn upload_group(sim: &Sim, c: &Caller, p: &Params) -> Result<Option<u32>, VkError> {
    let Some(raw) = p.get("group_id") else {
        return Ok(None);
    };
    let g = &*sim.graph;
    let gid = raw
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|&id| g.group(id).is_some())
        .ok_or_else(|| VkError::param("group_id is invalid"))?;
    let grp = g.group(gid).expect("checked");
    if grp.deactivated.is_some() {
        return Err(VkError::group_deactivated());
    }
    if grp.is_closed != 0 && !sim.is_member(gid, c.owner) && g.admin_level(gid, c.owner).is_none() {
        return Err(VkError::wall_members_only());
    }
    Ok(Some(gid))
}

/// `photos.getWallUploadServer` / `docs.getWallUploadServer`: a fresh upload URL for the
/// caller and the community.
pub(crate) fn get_wall_upload_server(
    sim: &Sim,
    c: &Caller,
    p: &Params,
    kind: MediaKind,
) -> Result<Value, VkError> {
    let group = upload_group(sim, c, p)?;
    let ticket = {
        let mut media = lock(&sim.media);
        let ticket = media.hex(16);
        media.tickets.insert(
            ticket.clone(),
            Ticket {
                kind,
                user: c.owner,
                group,
            },
        );
        ticket
    };
    let upload_url = format!("{}/upload/{}/{ticket}", sim.api_url, kind.path());
    Ok(match kind {
        MediaKind::Photo => {
            json!({"album_id": WALL_ALBUM_ID, "upload_url": upload_url, "user_id": c.owner})
        }
        MediaKind::Doc => json!({ "upload_url": upload_url }),
    })
}

/// One part of a multipart/form-data body.
#[derive(Debug)]
struct Part<'a> {
    name: String,
    filename: Option<String>,
    data: &'a [u8],
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() || from > haystack.len() - needle.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The boundary of a `multipart/form-data; boundary=...` content type.
fn boundary(content_type: &str) -> Option<String> {
    let (mime, rest) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    rest.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("boundary")).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// A `name="..."` parameter of a Content-Disposition header.
fn disposition_param(value: &str, key: &str) -> Option<String> {
    value.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Splits a multipart/form-data body into its parts (RFC 7578); `None` when it is not one.
fn parse_multipart<'a>(content_type: &str, body: &'a [u8]) -> Option<Vec<Part<'a>>> {
    let boundary = boundary(content_type)?;
    let delimiter = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let mut pos = find(body, delimiter.as_bytes(), 0)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Some(parts);
        }
        pos = find(body, b"\r\n", pos)? + 2;
        let head_end = find(body, b"\r\n\r\n", pos)?;
        let head = std::str::from_utf8(&body[pos..head_end]).ok()?;
        let data_start = head_end + 4;
        let data_end = find(body, next.as_bytes(), data_start)?;
        let mut name = None;
        let mut filename = None;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_param(v, "name");
                filename = disposition_param(v, "filename");
            }
        }
        parts.push(Part {
            name: name?,
            filename,
            data: &body[data_start..data_end],
        });
        pos = data_end + next.len();
    }
}

/// The format and pixel size of an image VK's photo upload server accepts: JPEG, PNG or GIF
/// told by magic bytes, dimensions read from the header (PNG IHDR, GIF logical screen, JPEG
/// SOF segment). `Err` says why not.
fn read_image(data: &[u8]) -> Result<(&'static str, u32, u32), &'static str> {
    let be16 = |i: usize| u32::from(data[i]) << 8 | u32::from(data[i + 1]);
    let dims = if data.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        if data.len() < 24 || &data[12..16] != b"IHDR" {
            return Err("a PNG without its IHDR header");
        }
        let be32 = |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        ("png", be32(16), be32(20))
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        if data.len() < 10 {
            return Err("a GIF without its screen descriptor");
        }
        let le16 = |i: usize| u32::from(data[i]) | u32::from(data[i + 1]) << 8;
        ("gif", le16(6), le16(8))
    } else if data.starts_with(&[0xff, 0xd8, 0xff]) {
        let mut i = 2;
        let mut found = None;
        while i + 4 <= data.len() {
            if data[i] != 0xff {
                break;
            }
            let marker = data[i + 1];
            if marker == 0xff {
                i += 1;
                continue;
            }
            if marker == 0x01 || (0xd0..=0xd8).contains(&marker) {
                i += 2;
                continue;
            }
            let len = be16(i + 2) as usize;
            let is_sof = (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker);
            if is_sof && i + 9 <= data.len() {
                found = Some((be16(i + 7), be16(i + 5)));
                break;
            }
            i += 2 + len;
        }
        let (w, h) = found.ok_or("a JPEG without a frame header")?;
        ("jpg", w, h)
    } else {
        return Err("not a JPG, PNG or GIF image");
    };
    let (_, w, h) = dims;
    if w == 0 || h == 0 {
        return Err("an image without pixels");
    }
    if w + h > PHOTO_MAX_SIDES_SUM {
        return Err("width + height above 14000 px");
    }
    if w.max(h) > PHOTO_MAX_RATIO * w.min(h) {
        return Err("an aspect ratio beyond 1:20");
    }
    Ok(dims)
}

/// Why the document upload server refuses a file, if it does: executables (by extension or
/// by their magic bytes: PE `MZ`, ELF, Mach-O) and mp3 (by extension or an ID3 tag).
fn refuse_doc(ext: &str, data: &[u8]) -> Option<&'static str> {
    const MAGIC: &[&[u8]] = &[
        b"MZ",
        b"\x7fELF",
        &[0xfe, 0xed, 0xfa, 0xce],
        &[0xfe, 0xed, 0xfa, 0xcf],
        &[0xce, 0xfa, 0xed, 0xfe],
        &[0xcf, 0xfa, 0xed, 0xfe],
    ];
    if ext == "mp3" || data.starts_with(b"ID3") {
        return Some("mp3 files are not accepted as documents");
    }
    if FORBIDDEN_DOC_EXTENSIONS.contains(&ext) || MAGIC.iter().any(|m| data.starts_with(m)) {
        return Some("executable files are not accepted as documents");
    }
    None
}

/// The extension of a file name, lowercased (`""` when there is none).
fn extension(filename: &str) -> String {
    match filename.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_lowercase(),
        _ => String::new(),
    }
}

/// VK's document type (docs_doc `type`) for an extension.
fn doc_type(ext: &str) -> u8 {
    match ext {
        "txt" | "doc" | "docx" | "pdf" | "rtf" | "odt" | "xls" | "xlsx" | "ppt" | "pptx"
        | "csv" => 1,
        "zip" | "rar" | "7z" | "tar" | "gz" | "bz2" | "xz" => 2,
        "gif" => 3,
        "jpg" | "jpeg" | "png" | "bmp" | "webp" | "tif" | "tiff" => 4,
        "ogg" | "wav" | "flac" | "m4a" | "aac" => 5,
        "mp4" | "avi" | "mkv" | "mov" | "webm" => 6,
        "epub" | "fb2" | "djvu" | "mobi" => 7,
        _ => 8,
    }
}

/// An upload server's error body (VK's upload hosts answer `{"error": ...}`; SevereCloud/vksdk
/// reads `error`, `error_code`, `error_descr`). The codes are the simulator's own wording.
fn upload_error(code: &str, descr: &str) -> Response {
    Json(json!({"error": code, "error_descr": descr})).into_response()
}

/// `POST /upload/{photo|doc}/{ticket}`: the upload server. Reads at most the kind's limit (plus
/// room for the multipart framing), checks the file and answers what the save method needs.
pub(crate) async fn upload_handler(
    State(sim): State<Arc<Sim>>,
    Path((kind, ticket)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let kind = match kind.as_str() {
        "photo" => MediaKind::Photo,
        "doc" => MediaKind::Doc,
        _ => return upload_error("invalid_upload_url", "no such upload server"),
    };
    let Some(t) = lock(&sim.media).tickets.get(&ticket).cloned() else {
        return upload_error("invalid_upload_url", "unknown or foreign upload url");
    };
    if t.kind != kind {
        return upload_error("invalid_upload_url", "unknown or foreign upload url");
    }
    let cfg = &sim.settings.cfg;
    let limit = match kind {
        MediaKind::Photo => cfg.photo_max_bytes,
        MediaKind::Doc => cfg.doc_max_bytes,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // The body is held in memory while it is checked, never more than the limit and 1 MiB.
    let bytes = axum::body::to_bytes(body, limit.saturating_add(1 << 20)).await;
    lock(&sim.stats).bytes_in += bytes.as_ref().map(|b| b.len() as u64).unwrap_or(0);
    let mut file: Option<(String, Vec<u8>, usize)> = None;
    let refused: Option<String> = match &bytes {
        Err(_) => Some(format!("larger than {limit} bytes")),
        Ok(b) => match parse_multipart(&content_type, b) {
            None => Some("not a multipart/form-data body".into()),
            Some(parts) => match parts.into_iter().find(|p| p.name == kind.field()) {
                None => Some(format!("no {:?} field", kind.field())),
                Some(part) => {
                    let name = part.filename.unwrap_or_default();
                    let head = part.data[..part.data.len().min(1 << 16)].to_vec();
                    file = Some((name, head, part.data.len()));
                    None
                }
            },
        },
    };
    let (filename, head, size) = file.unwrap_or_default();
    let ext = extension(&filename);
    let (refused, format, width, height) = match (refused, kind) {
        (Some(r), _) => (Some(r), String::new(), 0, 0),
        (None, _) if size > limit => (Some(format!("larger than {limit} bytes")), ext, 0, 0),
        (None, MediaKind::Photo) => match read_image(&head) {
            Ok((format, w, h)) => (None, format.to_string(), w, h),
            Err(why) => (Some(why.to_string()), String::new(), 0, 0),
        },
        (None, MediaKind::Doc) => match refuse_doc(&ext, &head) {
            Some(why) => (Some(why.to_string()), ext, 0, 0),
            None => (None, ext, 0, 0),
        },
    };
    let mut media = lock(&sim.media);
    let server = media.rng.random_range(800_000u64..900_000);
    let hash = media.hex(16);
    let token = match (kind, &refused) {
        (MediaKind::Photo, Some(_)) => "[]".to_string(),
        (MediaKind::Photo, None) => format!(
            "[{{\"photo\":\"{}:w\",\"sizes\":[],\"latitude\":0,\"longitude\":0,\"kid\":\"{}\"}}]",
            media.hex(5),
            media.hex(16)
        ),
        (MediaKind::Doc, _) => format!(
            "{}|0|0|{server}|{}|{}|{size}|{}",
            t.user,
            media.hex(5),
            if format.is_empty() { "bin" } else { &format },
            media.hex(16)
        ),
    };
    let index = media.uploads.len();
    if refused.is_none() {
        media.by_token.insert(token.clone(), index);
    }
    media.uploads.push(Upload {
        kind,
        user: t.user,
        group: t.group,
        server,
        hash: hash.clone(),
        filename,
        size,
        format,
        width,
        height,
        refused: refused.clone(),
        created: Instant::now(),
        date: unix_now() as u64,
        saved_as: None,
    });
    drop(media);
    {
        let mut st = lock(&sim.stats);
        *st.uploads.entry(kind.path().to_string()).or_default() += 1;
        if refused.is_some() {
            st.uploads_refused += 1;
        }
    }
    match (kind, refused) {
        (MediaKind::Photo, _) => {
            Json(json!({"server": server, "photo": token, "hash": hash})).into_response()
        }
        (MediaKind::Doc, Some(why)) => upload_error("upload_refused", &why),
        (MediaKind::Doc, None) => Json(json!({ "file": token })).into_response(),
    }
}

/// Whether an upload is still fresh enough to save.
fn is_fresh(sim: &Sim, u: &Upload) -> bool {
    u.created.elapsed() <= sim.settings.upload_ttl
}

/// The `sizes` of a photo: VK's s, m and x copies (longest side 75, 130, 604 px).
fn sizes(owner: i64, id: i64, w: u32, h: u32) -> Vec<Value> {
    [("s", 75u32), ("m", 130), ("x", 604)]
        .iter()
        .map(|&(t, side)| {
            let scale = f64::from(side) / f64::from(w.max(h).max(1));
            let scale = scale.min(1.0);
            let (sw, sh) = (
                (f64::from(w) * scale).round().max(1.0) as u32,
                (f64::from(h) * scale).round().max(1.0) as u32,
            );
            json!({
                "type": t, "width": sw, "height": sh,
                "url": format!("https://sun.userapi.com/sim/p{owner}_{id}_{t}.jpg"),
            })
        })
        .collect()
}

/// A saved photo as VK renders it (photos_photo).
pub(crate) fn photo_object(p: &SavedPhoto) -> Value {
    json!({
        "id": p.id,
        "album_id": WALL_ALBUM_ID,
        "owner_id": p.owner_id,
        "date": p.date,
        "access_key": p.access_key,
        "has_tags": false,
        "text": "",
        "width": p.width,
        "height": p.height,
        "sizes": sizes(p.owner_id, p.id, p.width, p.height),
    })
}

/// One of the graph's existing photos (photo{user}_{k}, k in 1..=user % 300, of an active open
/// profile), as VK renders it to anyone.
pub(crate) fn existing_photo_object(owner: u32, id: i64) -> Value {
    json!({
        "id": id,
        "album_id": -7,
        "owner_id": owner,
        "date": 1_600_000_000 + u64::from(owner) * 13 % 10_000_000,
        "has_tags": false,
        "text": "",
        "width": 1280,
        "height": 960,
        "sizes": sizes(i64::from(owner), id, 1280, 960),
    })
}

/// A saved document as VK renders it (docs_doc).
pub(crate) fn doc_object(d: &SavedDoc) -> Value {
    json!({
        "id": d.id,
        "owner_id": d.owner_id,
        "title": d.title,
        "size": d.size,
        "ext": d.ext,
        "url": format!("https://vk.com/doc{}_{}?hash={}", d.owner_id, d.id, d.access_key),
        "date": d.date,
        "type": doc_type(&d.ext),
        "access_key": d.access_key,
    })
}

/// `photos.saveWallPhoto(group_id, server, photo, hash)`: saves a fresh upload the caller made
/// for that community (or its own wall without `group_id`), once.
pub(crate) fn save_wall_photo(sim: &Sim, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let photo = p
        .get("photo")
        .ok_or_else(|| VkError::param("photo is undefined"))?;
    let group = match p.get("group_id") {
        None => None,
        Some(raw) => Some(
            raw.trim()
                .parse::<u32>()
                .ok()
                .filter(|&g| sim.graph.group(g).is_some())
                .ok_or_else(|| VkError::param("group_id is invalid"))?,
        ),
    };
    let mut media = lock(&sim.media);
    let index = *media
        .by_token
        .get(photo)
        .ok_or_else(|| VkError::param("photos_list is invalid"))?;
    let u = media.uploads[index].clone();
    if u.kind != MediaKind::Photo {
        return Err(VkError::param("photos_list is invalid"));
    }
    if p.get("hash") != Some(u.hash.as_str()) {
        return Err(VkError::invalid_hash());
    }
    if p.get("server").map(str::trim) != Some(u.server.to_string().as_str()) {
        return Err(VkError::invalid_server());
    }
    // The hash binds the upload to its user and community, once, while fresh.
    if u.user != c.owner || u.group != group || u.saved_as.is_some() || !is_fresh(sim, &u) {
        return Err(VkError::invalid_hash());
    }
    let id = FIRST_PHOTO_ID + media.photos.len() as i64;
    let access_key = media.hex(9);
    let saved = SavedPhoto {
        owner_id: i64::from(c.owner),
        id,
        user: c.owner,
        group,
        access_key,
        date: unix_now() as u64,
        width: u.width,
        height: u.height,
    };
    media.uploads[index].saved_as = Some(Media::photo_attachment(&saved));
    let object = photo_object(&saved);
    media.photos.insert((saved.owner_id, id), saved);
    Ok(json!([object]))
}

/// `docs.save(file, title)`: saves a fresh document upload the caller made, once, bound to the
/// community its upload server was for.
pub(crate) fn docs_save(sim: &Sim, c: &Caller, p: &Params) -> Result<Value, VkError> {
    let file = p
        .get("file")
        .ok_or_else(|| VkError::param("file is undefined"))?;
    let mut media = lock(&sim.media);
    let index = *media.by_token.get(file).ok_or_else(VkError::save_file)?;
    let u = media.uploads[index].clone();
    if u.kind != MediaKind::Doc || u.user != c.owner || u.saved_as.is_some() || !is_fresh(sim, &u) {
        return Err(VkError::save_file());
    }
    let title = p
        .get("title")
        .map(str::to_string)
        .unwrap_or_else(|| u.filename.clone());
    let id = FIRST_DOC_ID + media.docs.len() as i64;
    let access_key = media.hex(9);
    let saved = SavedDoc {
        owner_id: i64::from(c.owner),
        id,
        user: c.owner,
        group: u.group,
        access_key,
        title,
        ext: u.format.clone(),
        size: u.size,
        date: unix_now() as u64,
    };
    media.uploads[index].saved_as = Some(Media::doc_attachment(&saved));
    let object = doc_object(&saved);
    media.docs.insert((saved.owner_id, id), saved);
    Ok(json!({"type": "doc", "doc": object}))
}

/// The uploads for `/sim/truth/posts`.
pub(crate) fn uploads_truth(sim: &Sim) -> Value {
    let media = lock(&sim.media);
    let start = sim.start;
    let scale = sim.settings.cfg.time_scale;
    Value::Array(
        media
            .uploads
            .iter()
            .map(|u| {
                json!({
                    "kind": u.kind,
                    "user_id": u.user,
                    "group_id": u.group,
                    "server": u.server,
                    "filename": u.filename,
                    "size": u.size,
                    "format": u.format,
                    "width": u.width,
                    "height": u.height,
                    "refused": u.refused,
                    "saved_as": u.saved_as,
                    "date": u.date,
                    "sim_time": u.created.duration_since(start).as_secs_f64() * scale,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut v = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[8, 2, 0, 0, 0]);
        v
    }

    #[test]
    fn images_are_told_by_magic_bytes_and_pixel_limits() {
        assert_eq!(read_image(&png(800, 600)), Ok(("png", 800, 600)));
        let gif = [b"GIF89a".as_slice(), &[0x20, 0x03, 0x58, 0x02]].concat();
        assert_eq!(read_image(&gif), Ok(("gif", 800, 600)));
        // SOI, an APP0 segment of 16 bytes, then SOF0 with height 480, width 640.
        let mut jpg = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
        jpg.extend_from_slice(&[0; 14]);
        jpg.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 0x08, 0x01, 0xe0, 0x02, 0x80, 0x03]);
        assert_eq!(read_image(&jpg), Ok(("jpg", 640, 480)));
        assert!(read_image(b"%PDF-1.4").is_err());
        assert!(
            read_image(&png(10_000, 5_000)).is_err(),
            "sides sum above 14000"
        );
        assert!(read_image(&png(2_100, 100)).is_err(), "beyond 1:20");
        assert!(read_image(&png(2_000, 100)).is_ok(), "exactly 1:20");
        assert!(
            read_image(&[0xff, 0xd8, 0xff, 0xd9]).is_err(),
            "no frame header"
        );
    }

    #[test]
    fn documents_refuse_executables_and_mp3() {
        assert!(refuse_doc("pdf", b"%PDF-1.4").is_none());
        assert!(refuse_doc("exe", b"anything").is_some());
        assert!(
            refuse_doc("pdf", b"MZ\x90\x00").is_some(),
            "a renamed executable"
        );
        assert!(refuse_doc("bin", b"\x7fELF\x02").is_some());
        assert!(refuse_doc("mp3", b"").is_some());
        assert_eq!(extension("Report.PDF"), "pdf");
        assert_eq!(extension(".bashrc"), "");
        assert_eq!(doc_type("pdf"), 1);
    }

    #[test]
    fn multipart_bodies_split_into_parts() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ--\r\n";
        let parts = parse_multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].name, "photo");
        assert_eq!(parts[1].filename.as_deref(), Some("a.png"));
        assert_eq!(parts[1].data, b"\x89PNG");
        assert!(parse_multipart("application/json", body).is_none());
        assert!(parse_multipart("multipart/form-data; boundary=\"XyZ\"", body).is_some());
    }
}
