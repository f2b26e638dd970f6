//! What a suggested-posts job meets, over real HTTP: wall uploads of photos and documents (the
//! happy path and every refusal), wall.post's post_type by role and wall (published, suggest,
//! 214, 15), attachments, the guid window, wall.post's own captcha rate and daily quota,
//! groups.getById's rights fields agreeing with wall.post, wall.getById, and the truth
//! endpoints (`/sim/truth/named` communities, `/sim/truth/posts`).

use std::time::Duration;

use serde_json::{json, Value};
use vk_sim::{SimConfig, SimHandle};

use crate::{sim_get, sim_post, small_config, spawn_sim, Vk};

/// A PNG header of `w` x `h` pixels (the simulator reads the IHDR, not the pixels).
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
    v.extend_from_slice(b"IHDR");
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    v
}

/// POSTs one file as multipart/form-data to an upload URL; returns the JSON answer.
pub async fn post_file(url: &str, field: &str, filename: &str, data: &[u8]) -> Value {
    let boundary = "simBoundary7MA4YWxkTrZu0gW";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let resp = reqwest::Client::new()
        .post(url)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("upload request");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json upload answer")
}

/// photos.getWallUploadServer for `group`, then the POST: the upload server's answer.
pub async fn upload_photo(vk: &Vk, group: u32, data: &[u8]) -> Value {
    let server = vk
        .ok(
            "photos.getWallUploadServer",
            &[("group_id", &group.to_string())],
        )
        .await;
    post_file(
        server["upload_url"].as_str().unwrap(),
        "photo",
        "a.png",
        data,
    )
    .await
}

/// The saveWallPhoto parameters of an upload answer.
fn save_params(group: u32, up: &Value) -> Vec<(&'static str, String)> {
    vec![
        ("group_id", group.to_string()),
        ("server", up["server"].to_string()),
        ("photo", up["photo"].as_str().unwrap().to_string()),
        ("hash", up["hash"].as_str().unwrap().to_string()),
    ]
}

async fn call_owned(vk: &Vk, method: &str, params: &[(&'static str, String)]) -> Value {
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vk.call(method, &p).await
}

/// A photo uploaded and saved for `group`: its attachment string.
pub async fn saved_photo(vk: &Vk, group: u32) -> String {
    let up = upload_photo(vk, group, &png(800, 600)).await;
    let body = call_owned(vk, "photos.saveWallPhoto", &save_params(group, &up)).await;
    let p = &body["response"][0];
    assert!(p["id"].is_i64(), "{body}");
    format!(
        "photo{}_{}_{}",
        p["owner_id"],
        p["id"],
        p["access_key"].as_str().unwrap()
    )
}

/// A document uploaded for `group` and saved: docs.save's answer.
pub async fn saved_doc(vk: &Vk, group: u32, filename: &str, data: &[u8]) -> Value {
    let server = vk
        .ok(
            "docs.getWallUploadServer",
            &[("group_id", &group.to_string())],
        )
        .await;
    let up = post_file(
        server["upload_url"].as_str().unwrap(),
        "file",
        filename,
        data,
    )
    .await;
    vk.ok("docs.save", &[("file", up["file"].as_str().unwrap())])
        .await
}

fn doc_attachment(saved: &Value) -> String {
    let d = &saved["doc"];
    format!(
        "doc{}_{}_{}",
        d["owner_id"],
        d["id"],
        d["access_key"].as_str().unwrap()
    )
}

fn code(body: &Value) -> Option<i64> {
    body["error"]["error_code"].as_i64()
}

async fn sender(sim: &SimHandle) -> Vk {
    Vk::new(sim, &sim.user_token(sim.named_communities().admin_user))
}

#[tokio::test]
async fn photo_uploads_save_once_for_their_user_and_community() {
    let mut config = small_config();
    config.photo_max_bytes = 4096;
    let sim = spawn_sim(config).await;
    let n = sim.named_communities();
    let vk = sender(&sim).await;
    let g = n.suggest;
    let server = vk
        .ok(
            "photos.getWallUploadServer",
            &[("group_id", &g.to_string())],
        )
        .await;
    assert_eq!(server["album_id"], json!(-14));
    assert_eq!(server["user_id"], json!(n.admin_user));
    let url = server["upload_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/upload/photo/", sim.api_url())),
        "{url}"
    );
    let up = post_file(url, "photo", "cat.png", &png(800, 600)).await;
    assert!(up["server"].is_u64() && up["hash"].is_string(), "{up}");
    assert_ne!(up["photo"], json!("[]"));
    let params = save_params(g, &up);
    // A wrong hash, a wrong server, a garbled photo, another community, another user.
    let mut bad = params.clone();
    bad[3].1 = "0123abcd".into();
    assert_eq!(
        code(&call_owned(&vk, "photos.saveWallPhoto", &bad).await),
        Some(121)
    );
    let mut bad = params.clone();
    bad[1].1 = "1".into();
    assert_eq!(
        code(&call_owned(&vk, "photos.saveWallPhoto", &bad).await),
        Some(118)
    );
    let mut bad = params.clone();
    bad[2].1 = "[{\"photo\":\"nonsense\"}]".into();
    assert_eq!(
        code(&call_owned(&vk, "photos.saveWallPhoto", &bad).await),
        Some(100)
    );
    let mut bad = params.clone();
    bad[0].1 = n.open_wall.to_string();
    assert_eq!(
        code(&call_owned(&vk, "photos.saveWallPhoto", &bad).await),
        Some(121)
    );
    let stranger = Vk::new(&sim, &sim.user_token(sim.named().hub));
    assert_eq!(
        code(&call_owned(&stranger, "photos.saveWallPhoto", &params).await),
        Some(121)
    );
    // The real thing, once.
    let saved = call_owned(&vk, "photos.saveWallPhoto", &params).await;
    let photo = &saved["response"][0];
    assert_eq!(photo["owner_id"], json!(n.admin_user), "{saved}");
    assert!(photo["id"].as_i64().unwrap() > 0);
    assert!(!photo["access_key"].as_str().unwrap().is_empty());
    assert_eq!(photo["width"], json!(800));
    assert_eq!(
        code(&call_owned(&vk, "photos.saveWallPhoto", &params).await),
        Some(121),
        "a reused upload"
    );
    // What the upload server refuses comes back as an empty photo list, which save refuses.
    let refusals: Vec<(&str, &str, Vec<u8>)> = vec![
        ("not an image", "photo", b"%PDF-1.4 not a photo".to_vec()),
        ("too big", "photo", [png(800, 600), vec![0; 5000]].concat()),
        ("beyond 1:20", "photo", png(2100, 100)),
        ("above 14000 px", "photo", png(9000, 6000)),
        ("the wrong field", "file", png(800, 600)),
    ];
    for (why, field, data) in refusals {
        let server = vk
            .ok(
                "photos.getWallUploadServer",
                &[("group_id", &g.to_string())],
            )
            .await;
        let up = post_file(
            server["upload_url"].as_str().unwrap(),
            field,
            "x.png",
            &data,
        )
        .await;
        assert_eq!(up["photo"], json!("[]"), "{why}: {up}");
        let body = call_owned(&vk, "photos.saveWallPhoto", &save_params(g, &up)).await;
        assert_eq!(code(&body), Some(100), "{why}: {body}");
        assert!(body["error"]["error_msg"]
            .as_str()
            .unwrap()
            .contains("photos_list is invalid"));
    }
    let unknown = post_file(
        &format!("{}/upload/photo/deadbeef", sim.api_url()),
        "photo",
        "a.png",
        &png(10, 10),
    )
    .await;
    assert_eq!(unknown["error"], json!("invalid_upload_url"));
    // Upload servers of communities the sender may not use.
    for (gid, expected) in [(n.deactivated, 15), (n.private, 15), (999_999, 100)] {
        assert_eq!(
            vk.err(
                "photos.getWallUploadServer",
                &[("group_id", &gid.to_string())]
            )
            .await,
            expected,
            "community {gid}"
        );
    }
    let truth = sim_get(&sim, "/sim/truth/posts").await;
    let uploads = truth["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 6);
    assert_eq!(
        uploads[0]["saved_as"].as_str().unwrap().split('_').count(),
        3
    );
    assert_eq!(
        uploads.iter().filter(|u| u["refused"].is_string()).count(),
        5
    );
    assert_eq!(sim.stats()["uploads_refused"], json!(5));
}

#[tokio::test]
async fn document_uploads_refuse_executables_and_big_files_and_save_once() {
    let mut config = small_config();
    config.doc_max_bytes = 2048;
    let sim = spawn_sim(config).await;
    let n = sim.named_communities();
    let vk = sender(&sim).await;
    let g = n.suggest.to_string();
    let server = vk.ok("docs.getWallUploadServer", &[("group_id", &g)]).await;
    assert_eq!(
        server.as_object().unwrap().len(),
        1,
        "only upload_url: {server}"
    );
    let url = server["upload_url"].as_str().unwrap().to_string();
    let up = post_file(&url, "file", "Report.PDF", b"%PDF-1.4 hello").await;
    let file = up["file"].as_str().expect("a file token").to_string();
    let stranger = Vk::new(&sim, &sim.user_token(sim.named().hub));
    assert_eq!(stranger.err("docs.save", &[("file", &file)]).await, 105);
    assert_eq!(vk.err("docs.save", &[("file", "garbage")]).await, 105);
    assert_eq!(vk.err("docs.save", &[]).await, 100, "file is undefined");
    let saved = vk
        .ok("docs.save", &[("file", &file), ("title", "Quarterly")])
        .await;
    assert_eq!(saved["type"], json!("doc"));
    let doc = &saved["doc"];
    assert_eq!(doc["owner_id"], json!(n.admin_user));
    assert_eq!(doc["title"], json!("Quarterly"));
    assert_eq!(doc["ext"], json!("pdf"));
    assert_eq!(doc["size"], json!(14));
    assert_eq!(doc["type"], json!(1));
    assert!(doc["url"].as_str().unwrap().starts_with("https://"));
    assert_eq!(vk.err("docs.save", &[("file", &file)]).await, 105, "reused");
    for (name, data) in [
        ("setup.exe", b"anything at all".to_vec()),
        ("notes.pdf", b"MZ\x90\x00 a renamed executable".to_vec()),
        ("song.mp3", b"ID3 tag".to_vec()),
        ("big.pdf", vec![b'x'; 3000]),
    ] {
        let up = post_file(&url, "file", name, &data).await;
        assert_eq!(up["error"], json!("upload_refused"), "{name}: {up}");
        assert!(up.get("file").is_none());
    }
    let up = post_file(&url, "photo", "a.pdf", b"%PDF").await;
    assert_eq!(
        up["error"],
        json!("upload_refused"),
        "the wrong field: {up}"
    );
}

#[tokio::test]
async fn a_stale_upload_is_refused() {
    let mut config = small_config();
    config.time_scale = 3600.0; // an upload lives one simulated hour: one real second
    let sim = spawn_sim(config).await;
    let n = sim.named_communities();
    let vk = sender(&sim).await;
    let up = upload_photo(&vk, n.suggest, &png(100, 100)).await;
    let server = vk
        .ok(
            "docs.getWallUploadServer",
            &[("group_id", &n.suggest.to_string())],
        )
        .await;
    let doc = post_file(
        server["upload_url"].as_str().unwrap(),
        "file",
        "a.txt",
        b"hi",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let body = call_owned(&vk, "photos.saveWallPhoto", &save_params(n.suggest, &up)).await;
    assert_eq!(code(&body), Some(121), "{body}");
    assert_eq!(
        vk.err("docs.save", &[("file", doc["file"].as_str().unwrap())])
            .await,
        105
    );
}

#[tokio::test]
async fn upload_methods_need_their_rights_and_stay_out_of_execute() {
    let sim = spawn_sim(small_config()).await;
    let n = sim.named_communities();
    let token = sim.user_token(n.admin_user);
    let vk = Vk::new(&sim, &token);
    let g = n.suggest.to_string();
    sim_post(
        &sim,
        "/sim/tokens/scopes",
        json!({"token": token, "scopes": ["wall", "docs"]}),
    )
    .await;
    let body = vk
        .call("photos.getWallUploadServer", &[("group_id", &g)])
        .await;
    assert_eq!(code(&body), Some(15));
    assert_eq!(body["error"]["error_subcode"], json!(1133));
    assert_eq!(vk.err("photos.saveWallPhoto", &[("photo", "x")]).await, 15);
    vk.ok("docs.getWallUploadServer", &[("group_id", &g)]).await;
    sim_post(
        &sim,
        "/sim/tokens/scopes",
        json!({"token": token, "scopes": ["photos"]}),
    )
    .await;
    assert_eq!(
        vk.err("docs.getWallUploadServer", &[("group_id", &g)])
            .await,
        15
    );
    assert_eq!(vk.err("docs.save", &[("file", "x")]).await, 15);
    assert_eq!(
        vk.err(
            "wall.post",
            &[("owner_id", &format!("-{g}")), ("message", "x")]
        )
        .await,
        15,
        "wall.post needs wall"
    );
    assert_eq!(vk.err("wall.getById", &[("posts", "-1_1")]).await, 15);
    vk.ok("photos.getWallUploadServer", &[("group_id", &g)])
        .await;
    sim_post(
        &sim,
        "/sim/tokens/scopes",
        json!({"token": token, "scopes": ["photos", "docs", "wall"]}),
    )
    .await;
    let code_js = format!(
        "return [API.photos.getWallUploadServer({{\"group_id\": {g}}}), API.docs.getWallUploadServer({{\"group_id\": {g}}}), API.utils.getServerTime({{}})];"
    );
    let body = vk.call("execute", &[("code", &code_js)]).await;
    assert!(body.get("error").is_none(), "{body}");
    assert_eq!(body["response"][0], json!(false));
    assert_eq!(body["response"][1], json!(false));
    assert!(body["response"][2].is_u64());
    let errors = body["execute_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert!(
        errors.iter().all(|e| e["error_code"] == json!(3)),
        "{errors:?}"
    );
}

/// Posts `message` to community `gid`; the body.
async fn post_to(vk: &Vk, gid: u32, extra: &[(&str, &str)]) -> Value {
    let owner = format!("-{gid}");
    let mut params = vec![
        ("owner_id", owner.as_str()),
        ("message", "Hello from the sim"),
    ];
    params.extend_from_slice(extra);
    vk.call("wall.post", &params).await
}

/// The post_type wall.getById shows `vk` for `-gid_id`, if it shows the post at all.
async fn post_type(vk: &Vk, gid: u32, id: &Value) -> Option<String> {
    let got = vk
        .ok("wall.getById", &[("posts", &format!("-{gid}_{id}"))])
        .await;
    got["items"][0]["post_type"].as_str().map(str::to_string)
}

#[tokio::test]
async fn wall_post_publishes_suggests_or_refuses_by_role_and_wall() {
    let sim = spawn_sim(small_config()).await;
    let n = sim.named_communities();
    let vk = sender(&sim).await;
    let other = Vk::new(&sim, &sim.user_token(sim.named().hub));
    // Suggestions: a suggested post, seen by its author, not by others.
    let body = post_to(&vk, n.suggest, &[]).await;
    let id = body["response"]["post_id"].clone();
    assert!(id.as_i64().unwrap() > 0, "{body}");
    assert_eq!(
        post_type(&vk, n.suggest, &id).await.as_deref(),
        Some("suggest")
    );
    assert_eq!(
        post_type(&other, n.suggest, &id).await,
        None,
        "a suggestion is private"
    );
    // The admin community: published for its administrator, 214 for anyone else.
    let body = post_to(&vk, n.admin, &[]).await;
    let id = body["response"]["post_id"].clone();
    assert_eq!(
        post_type(&other, n.admin, &id).await.as_deref(),
        Some("post")
    );
    assert_eq!(code(&post_to(&other, n.admin, &[]).await), Some(214));
    // An open wall, also by screen name; a closed one; closed, private, deactivated communities.
    let body = post_to(&vk, n.open_wall, &[]).await;
    let id = body["response"]["post_id"].clone();
    assert_eq!(
        post_type(&other, n.open_wall, &id).await.as_deref(),
        Some("post")
    );
    let named = sim_get(&sim, "/sim/truth/named").await;
    let screen_name = named["communities"]["screen_name"]["screen_name"]
        .as_str()
        .unwrap()
        .to_string();
    let resolved = vk
        .ok("utils.resolveScreenName", &[("screen_name", &screen_name)])
        .await;
    assert_eq!(resolved["object_id"], json!(n.screen_name));
    let gid = resolved["object_id"].as_u64().unwrap() as u32;
    assert!(post_to(&vk, gid, &[]).await["response"]["post_id"].is_i64());
    assert_eq!(code(&post_to(&vk, n.wall_closed, &[]).await), Some(214));
    for gid in [n.closed, n.private, n.deactivated] {
        let body = post_to(&vk, gid, &[]).await;
        assert_eq!(code(&body), Some(15), "community {gid}: {body}");
    }
    assert_eq!(
        post_to(&vk, n.private, &[]).await["error"]["error_msg"],
        json!("Access denied: this wall available only for community members")
    );
    // from_group: only an editor posts as the community (and signs).
    assert_eq!(
        code(&post_to(&other, n.open_wall, &[("from_group", "1")]).await),
        Some(214)
    );
    let body = post_to(&vk, n.admin, &[("from_group", "1"), ("signed", "1")]).await;
    let id = body["response"]["post_id"].clone();
    let got = other
        .ok("wall.getById", &[("posts", &format!("-{}_{id}", n.admin))])
        .await;
    let post = &got["items"][0];
    assert_eq!(post["from_id"], json!(-i64::from(n.admin)));
    assert_eq!(post["signer_id"], json!(n.admin_user));
    assert_eq!(post["created_by"], json!(n.admin_user));
    // The truth has every post, per community.
    let truth = sim_get(&sim, "/sim/truth/posts").await;
    assert_eq!(truth["posts"].as_array().unwrap().len(), 5);
    let per = &truth["per_community"];
    assert_eq!(per[n.suggest.to_string()]["suggested"], json!(1));
    assert_eq!(per[n.admin.to_string()]["published"], json!(2));
    assert!(per.get(n.wall_closed.to_string()).is_none());
}

#[tokio::test]
async fn attachments_are_the_callers_media_for_that_wall_within_vk_s_limits() {
    let sim = spawn_sim(small_config()).await;
    let n = sim.named_communities();
    let vk = sender(&sim).await;
    let other = Vk::new(&sim, &sim.user_token(sim.named().hub));
    let photo = saved_photo(&vk, n.suggest).await;
    let doc = doc_attachment(&saved_doc(&vk, n.suggest, "plan.txt", b"the plan").await);
    let existing = format!("photo{}_1", sim.named().open);
    let list = format!("{photo},{doc},{existing},https://example.org/page");
    let body = post_to(&vk, n.suggest, &[("attachments", &list)]).await;
    let id = body["response"]["post_id"].clone();
    assert!(id.is_i64(), "{body}");
    let got = vk
        .ok(
            "wall.getById",
            &[("posts", &format!("-{}_{id}", n.suggest))],
        )
        .await;
    let kinds: Vec<&str> = got["items"][0]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["photo", "doc", "photo", "link"]);
    assert_eq!(
        got["items"][0]["attachments"][3]["link"]["url"],
        json!("https://example.org/page")
    );
    let truth = sim_get(&sim, &format!("/sim/truth/posts?group_id={}", n.suggest)).await;
    assert_eq!(
        truth["posts"][0]["attachments"],
        json!(list.split(',').collect::<Vec<_>>())
    );
    // Only attachments without a text are a post too.
    assert!(
        post_to(&vk, n.suggest, &[("attachments", &photo), ("message", "")]).await["response"]
            ["post_id"]
            .is_i64()
    );
    // Refusals, all 100.
    let other_photo = saved_photo(&other, n.suggest).await;
    let wrong_key = format!("{}_ffff", photo.rsplit_once('_').unwrap().0);
    let second_doc = doc_attachment(&saved_doc(&vk, n.suggest, "b.txt", b"b").await);
    let eleven = [existing.as_str(); 11].join(",");
    let cases: Vec<(&str, String, u32)> = vec![
        (
            "a photo saved for another community",
            photo.clone(),
            n.open_wall,
        ),
        ("another user's photo", other_photo, n.suggest),
        ("a wrong access key", wrong_key, n.suggest),
        ("unknown media", "photo6_999999999".into(), n.suggest),
        (
            "a video the simulator does not have",
            "video6_1".into(),
            n.suggest,
        ),
        ("garbage", "photo_x".into(), n.suggest),
        ("11 media", eleven, n.suggest),
        ("two documents", format!("{doc},{second_doc}"), n.suggest),
        (
            "two links",
            "https://a.example,https://b.example".into(),
            n.suggest,
        ),
    ];
    for (why, list, gid) in cases {
        let body = post_to(&vk, gid, &[("attachments", &list)]).await;
        assert_eq!(code(&body), Some(100), "{why}: {body}");
    }
    let ten = [existing.as_str(); 10].join(",");
    assert!(
        post_to(&vk, n.suggest, &[("attachments", &ten)]).await["response"]["post_id"].is_i64()
    );
    let long = "x".repeat(16_385);
    assert_eq!(
        code(
            &vk.call(
                "wall.post",
                &[("owner_id", &format!("-{}", n.suggest)), ("message", &long)]
            )
            .await
        ),
        Some(100)
    );
}

#[tokio::test]
async fn guid_deduplicates_within_its_window_only() {
    let mut config = small_config();
    config.time_scale = 3600.0 / 1.5; // the default one-hour window lasts 1.5 real seconds
    let sim = spawn_sim(config).await;
    let n = sim.named_communities();
    let vk = sender(&sim).await;
    let other = Vk::new(&sim, &sim.user_token(sim.named().hub));
    let guid = [("guid", "job-1:club")];
    let a = post_to(&vk, n.open_wall, &guid).await["response"]["post_id"].clone();
    let b = post_to(&vk, n.open_wall, &guid).await["response"]["post_id"].clone();
    assert_eq!(a, b, "same user, wall and guid within the window");
    let c = post_to(&other, n.open_wall, &guid).await["response"]["post_id"].clone();
    assert_ne!(a, c, "another user's guid is its own");
    let d = post_to(&vk, n.suggest, &guid).await["response"]["post_id"].clone();
    assert!(d.is_i64(), "another wall");
    let truth = sim_get(&sim, &format!("/sim/truth/posts?group_id={}", n.open_wall)).await;
    assert_eq!(truth["posts"].as_array().unwrap().len(), 2);
    assert_eq!(truth["guid_repeats"], json!(1));
    assert_eq!(truth["posts"][0]["guid"], json!("job-1:club"));
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let e = post_to(&vk, n.open_wall, &guid).await["response"]["post_id"].clone();
    assert_ne!(a, e, "past the window the guid makes a new post");
    let truth = sim_get(&sim, &format!("/sim/truth/posts?group_id={}", n.open_wall)).await;
    assert_eq!(truth["posts"].as_array().unwrap().len(), 3);
    let t0 = truth["posts"][0]["sim_time"].as_f64().unwrap();
    let t2 = truth["posts"][2]["sim_time"].as_f64().unwrap();
    assert!(t2 - t0 > 3600.0, "{t0} .. {t2} simulated seconds");
}

/// The error codes (None = success) of `count` wall.posts of a fresh simulator.
async fn captcha_run(rate: f64, count: usize) -> (Vec<Option<i64>>, Value) {
    let mut config = small_config();
    config.wall_post_captcha_rate = rate;
    config.quotas = vec!["wall.post=1000".into()];
    let sim = spawn_sim(config).await;
    let vk = sender(&sim).await;
    let mut codes = Vec::new();
    let mut last_captcha = Value::Null;
    for _ in 0..count {
        let body = post_to(&vk, sim.named_communities().open_wall, &[]).await;
        if code(&body) == Some(14) {
            last_captcha = body["error"].clone();
        }
        codes.push(code(&body));
    }
    (codes, last_captcha)
}

#[tokio::test]
async fn wall_post_meets_captcha_at_its_own_deterministic_rate() {
    assert_eq!(SimConfig::default().wall_post_captcha_rate, 0.02, "1 in 50");
    let (codes, captcha) = captcha_run(0.25, 80).await;
    let captchas = codes.iter().filter(|c| **c == Some(14)).count();
    assert!((8..=35).contains(&captchas), "{captchas} of 80 at 25%");
    assert!(codes.iter().all(|c| c.is_none() || *c == Some(14)));
    assert!(captcha["captcha_sid"].is_string() && captcha["captcha_img"].is_string());
    let (again, _) = captcha_run(0.25, 80).await;
    assert_eq!(codes, again, "the same seed draws the same captchas");
    // Runtime switch for the method, and inside execute.
    let sim = spawn_sim(small_config()).await;
    let n = sim.named_communities();
    let vk = sender(&sim).await;
    assert!(post_to(&vk, n.open_wall, &[]).await["response"].is_object());
    sim_post(
        &sim,
        "/sim/captcha",
        json!({"method": "wall.post", "rate": 1.0}),
    )
    .await;
    assert_eq!(code(&post_to(&vk, n.open_wall, &[]).await), Some(14));
    vk.ok("utils.getServerTime", &[]).await;
    let js = format!(
        "return API.wall.post({{\"owner_id\": -{}, \"message\": \"x\"}});",
        n.open_wall
    );
    let body = vk.call("execute", &[("code", &js)]).await;
    assert_eq!(body["execute_errors"][0]["error_code"], json!(14), "{body}");
    assert_eq!(sim.stats()["method_captchas"]["wall.post"], json!(2));
    sim_post(
        &sim,
        "/sim/captcha",
        json!({"method": "wall.post", "rate": 0.0}),
    )
    .await;
    assert!(post_to(&vk, n.open_wall, &[]).await["response"].is_object());
    let truth = sim_get(&sim, "/sim/truth/posts").await;
    assert_eq!(
        truth["posts"].as_array().unwrap().len(),
        2,
        "captchas create nothing"
    );
}

#[tokio::test]
async fn wall_post_s_daily_quota_of_50_answers_29() {
    let config = small_config();
    assert!(config.quotas.contains(&"wall.post=50".to_string()));
    let sim = spawn_sim(config).await;
    let n = sim.named_communities();
    let vk = sender(&sim).await;
    for i in 0..50 {
        let body = post_to(&vk, n.open_wall, &[]).await;
        assert!(body["response"]["post_id"].is_i64(), "post {i}: {body}");
    }
    let body = post_to(&vk, n.open_wall, &[]).await;
    assert_eq!(code(&body), Some(29), "{body}");
    assert_eq!(body["error"]["error_msg"], json!("Rate limit reached"));
    let truth = sim_get(&sim, "/sim/truth/posts").await;
    assert_eq!(truth["posts"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn groups_get_by_id_says_what_wall_post_does() {
    let mut config = small_config();
    config.quotas = vec!["wall.post=1000".into()];
    let sim = spawn_sim(config).await;
    let n = sim.named_communities();
    let vk = sender(&sim).await;
    let all: Vec<String> = (1..=400).map(|i| i.to_string()).collect();
    let fields = ("fields", "can_post,can_suggest,is_closed,wall,is_member");
    let first = vk
        .ok("groups.getById", &[("group_ids", &all.join(",")), fields])
        .await;
    let groups = first["groups"].as_array().unwrap().clone();
    assert_eq!(groups.len(), 400);
    let by_id = |id: u32| {
        groups
            .iter()
            .find(|g| g["id"] == json!(id))
            .unwrap()
            .clone()
    };
    let admin = by_id(n.admin);
    assert_eq!(
        (admin["is_admin"].clone(), admin["admin_level"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(admin["can_post"], json!(1));
    let suggest = by_id(n.suggest);
    assert_eq!(
        (
            suggest["can_post"].clone(),
            suggest["can_suggest"].clone(),
            suggest["is_admin"].clone()
        ),
        (json!(0), json!(1), json!(0))
    );
    assert!(suggest.get("admin_level").is_none());
    let dead = by_id(n.deactivated);
    assert!(dead["deactivated"].is_string() && dead.get("can_post").is_none());
    assert_eq!(by_id(n.private)["is_closed"], json!(2));
    assert_eq!(by_id(n.closed)["is_closed"], json!(1));
    // Every live community among the first 150: what the fields say is what wall.post does.
    for g in groups.iter().take(150) {
        let gid = g["id"].as_u64().unwrap() as u32;
        let body = post_to(&vk, gid, &[]).await;
        if g.get("deactivated").is_some() {
            assert_eq!(code(&body), Some(15), "{g}");
            continue;
        }
        let expected = if g["can_post"] == json!(1) {
            Ok("post")
        } else if g["can_suggest"] == json!(1) {
            Ok("suggest")
        } else if g["is_closed"] != json!(0) && g["is_member"] == json!(0) {
            Err(15)
        } else {
            Err(214)
        };
        match expected {
            Ok(kind) => {
                let id = &body["response"]["post_id"];
                assert_eq!(
                    post_type(&vk, gid, id).await.as_deref(),
                    Some(kind),
                    "{g}: {body}"
                );
            }
            Err(c) => assert_eq!(code(&body), Some(c), "{g}: {body}"),
        }
    }
    // Batches of at most 500; a token without `groups` gets no is_admin.
    let many: Vec<String> = (1..=501).map(|i| i.to_string()).collect();
    assert_eq!(
        vk.err("groups.getById", &[("group_ids", &many.join(","))])
            .await,
        100
    );
    let token = sim.user_token(n.admin_user);
    sim_post(
        &sim,
        "/sim/tokens/scopes",
        json!({"token": token, "scopes": ["wall"]}),
    )
    .await;
    let plain = vk
        .ok(
            "groups.getById",
            &[("group_ids", &n.admin.to_string()), fields],
        )
        .await;
    assert!(plain["groups"][0].get("is_admin").is_none(), "{plain}");
}

#[tokio::test]
async fn wall_get_by_id_returns_posts_as_vk_renders_them() {
    let sim = spawn_sim(small_config()).await;
    let n = sim.named_communities();
    let vk = sender(&sim).await;
    let photo = saved_photo(&vk, n.open_wall).await;
    let body = post_to(&vk, n.open_wall, &[("attachments", &photo)]).await;
    let id = body["response"]["post_id"].as_i64().unwrap();
    let key = format!("-{}_{id}", n.open_wall);
    let got = vk
        .ok(
            "wall.getById",
            &[("posts", &format!("{key},-{}_999", n.open_wall))],
        )
        .await;
    let items = got["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "unknown posts are left out");
    let post = &items[0];
    assert_eq!(post["id"], json!(id));
    assert_eq!(post["owner_id"], json!(-i64::from(n.open_wall)));
    assert_eq!(post["from_id"], json!(n.admin_user));
    assert_eq!(post["post_type"], json!("post"));
    assert_eq!(post["text"], json!("Hello from the sim"));
    assert_eq!(post["attachments"][0]["type"], json!("photo"));
    assert_eq!(
        format!(
            "photo{}_{}_{}",
            post["attachments"][0]["photo"]["owner_id"],
            post["attachments"][0]["photo"]["id"],
            post["attachments"][0]["photo"]["access_key"]
                .as_str()
                .unwrap()
        ),
        photo
    );
    let old = Vk {
        v: "5.131",
        ..Vk::new(&sim, &sim.user_token(n.admin_user))
    };
    let arr = old.ok("wall.getById", &[("posts", &key)]).await;
    assert_eq!(arr[0]["id"], json!(id), "before 5.199 a bare array");
    let ext = vk
        .ok("wall.getById", &[("posts", &key), ("extended", "1")])
        .await;
    assert_eq!(ext["profiles"][0]["id"], json!(n.admin_user));
    assert_eq!(ext["groups"][0]["id"], json!(n.open_wall));
    assert_eq!(vk.err("wall.getById", &[]).await, 100);
    assert_eq!(vk.err("wall.getById", &[("posts", "nonsense")]).await, 100);
    let many: Vec<String> = (1..=101).map(|i| format!("-1_{i}")).collect();
    assert_eq!(
        vk.err("wall.getById", &[("posts", &many.join(","))]).await,
        100
    );
}

#[tokio::test]
async fn truth_names_the_communities_and_lists_posts_and_uploads() {
    let sim = spawn_sim(small_config()).await;
    let n = sim.named_communities();
    let named = sim_get(&sim, "/sim/truth/named").await;
    assert_eq!(named["named_communities"]["suggest"], json!(n.suggest));
    assert_eq!(
        named["named_communities"]["admin_user"],
        json!(sim.named().open)
    );
    assert_eq!(named["named_communities_made"], json!([]));
    let c = &named["communities"];
    assert_eq!(c["suggest"]["wall"], json!("suggestions"));
    assert_eq!(c["suggest"]["type"], json!("page"));
    assert_eq!(c["admin"]["wall"], json!("closed"));
    assert_eq!(
        c["admin"]["admins"][0],
        json!({"user_id": n.admin_user, "admin_level": 3})
    );
    assert_eq!(c["wall_closed"]["wall"], json!("closed"));
    assert_eq!(c["open_wall"]["wall"], json!("open"));
    assert_eq!(c["private"]["is_closed"], json!(2));
    assert_eq!(c["closed"]["is_closed"], json!(1));
    assert!(c["deactivated"]["deactivated"].is_string());
    let sn = c["screen_name"]["screen_name"].as_str().unwrap();
    assert!(!sn.starts_with("club") && !sn.starts_with("public"), "{sn}");
    let vk = sender(&sim).await;
    let photo = saved_photo(&vk, n.suggest).await;
    post_to(&vk, n.suggest, &[("attachments", &photo), ("guid", "g-1")]).await;
    post_to(&vk, n.open_wall, &[]).await;
    let truth = sim_get(&sim, "/sim/truth/posts").await;
    let post = &truth["posts"][0];
    for key in [
        "owner_id",
        "group_id",
        "post_id",
        "author",
        "from_id",
        "post_type",
        "text",
        "attachments",
        "guid",
        "signed",
        "date",
        "sim_time",
    ] {
        assert!(post.get(key).is_some(), "{key} in {post}");
    }
    assert_eq!(post["group_id"], json!(n.suggest));
    assert_eq!(post["post_type"], json!("suggest"));
    assert_eq!(post["guid"], json!("g-1"));
    assert_eq!(post["attachments"], json!([photo]));
    assert_eq!(
        truth["per_community"][n.suggest.to_string()],
        json!({"posts": 1, "published": 0, "suggested": 1})
    );
    let upload = &truth["uploads"][0];
    assert_eq!(upload["kind"], json!("photo"));
    assert_eq!(upload["group_id"], json!(n.suggest));
    assert_eq!(upload["saved_as"], json!(photo));
    let one = sim_get(&sim, &format!("/sim/truth/posts?group_id={}", n.open_wall)).await;
    assert_eq!(one["posts"].as_array().unwrap().len(), 1);
    assert_eq!(one["community"]["wall"], json!("open"));
    let status = reqwest::get(format!("{}/sim/truth/posts?group_id=999999", sim.api_url()))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
    sim_post(&sim, "/sim/reset", json!({})).await;
    let truth = sim_get(&sim, "/sim/truth/posts").await;
    assert_eq!(truth["posts"], json!([]));
    assert_eq!(truth["uploads"], json!([]));
}

#[tokio::test]
async fn uploads_work_through_the_proxy_and_for_the_user_s_own_wall() {
    let sim = spawn_sim(small_config()).await;
    let vk = sender(&sim).await;
    // No group_id: the caller's own wall.
    let server = vk.ok("photos.getWallUploadServer", &[]).await;
    let url = server["upload_url"].as_str().unwrap();
    let path = url.strip_prefix(sim.api_url()).unwrap();
    let boundary = "b0undary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"me.png\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&png(640, 480));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let up: Value = reqwest::Client::new()
        .post(format!("{}{path}", sim.proxy_url()))
        .header("X-Proxy-Key", sim.proxy_key())
        .header("X-Target-Host", sim.api_url())
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(up["photo"], json!("[]"), "{up}");
    let mut params = save_params(0, &up);
    params.remove(0);
    let saved = call_owned(&vk, "photos.saveWallPhoto", &params).await;
    let p = &saved["response"][0];
    let photo = format!(
        "photo{}_{}_{}",
        p["owner_id"],
        p["id"],
        p["access_key"].as_str().unwrap()
    );
    let body = vk
        .call("wall.post", &[("message", "mine"), ("attachments", &photo)])
        .await;
    assert!(body["response"]["post_id"].is_i64(), "{body}");
    // A photo for the own wall is not one for a community's.
    let n = sim.named_communities();
    assert_eq!(
        code(&post_to(&vk, n.open_wall, &[("attachments", &photo)]).await),
        Some(100)
    );
    let truth = sim_get(&sim, "/sim/truth/posts").await;
    assert_eq!(truth["posts"][0]["owner_id"], json!(n.admin_user));
    assert_eq!(truth["posts"][0]["group_id"], Value::Null);
}
