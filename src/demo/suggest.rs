//! `vk-parser demo --job suggest`: one campaign on the simulator. The sender is the user the
//! simulator lists as an administrator of one community; the post, with a picture stored under
//! `uploads/` first as the backend would, goes to one community of every kind (suggestions, an
//! administered wall, an open wall, a closed wall, a private and a deleted community, a name
//! nobody has); the outcome table is read back from `posts.parquet` and printed beside what the
//! simulator says was posted.

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{
    follow, publish_on, requests_between, service_settings, sim_get as get, DemoError, SimInfo,
    TIME_SCALE,
};
use crate::app::App;
use crate::key::ObjectKey;
use crate::storage::local::LocalStorage;
use crate::storage::Storage;
use crate::tables::{from_parquet, ColumnData};

/// A PNG header the simulator's upload server reads as 800×600.
fn picture() -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
    v.extend_from_slice(b"IHDR");
    v.extend_from_slice(&800u32.to_be_bytes());
    v.extend_from_slice(&600u32.to_be_bytes());
    v.extend_from_slice(&[8, 2, 0, 0, 0]);
    v
}

/// Runs the campaign and prints its outcomes.
pub(super) async fn run(
    data_dir: &Path,
    redis_url: &str,
    sim: &SimInfo,
    stop: &CancellationToken,
    started: Instant,
) -> Result<(), DemoError> {
    let named = get(&sim.api, "/sim/truth/named").await?;
    let n = &named["named_communities"];
    let sender = n["admin_user"].as_i64().unwrap_or(sim.open_user);
    let mut groups: Vec<Value> = [
        "suggest",
        "admin",
        "open_wall",
        "wall_closed",
        "private",
        "deactivated",
    ]
    .iter()
    .map(|k| json!(format!("club{}", n[*k])))
    .collect();
    if let Some(name) = named["communities"]["screen_name"]["screen_name"].as_str() {
        groups.push(json!(format!("https://vk.com/{name}")));
    }
    groups.push(json!("no_such_community_here"));
    let job = format!("suggest-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let storage = LocalStorage::open(data_dir).await?;
    let key = ObjectKey::parse(&format!("uploads/{job}/banner.png"))?;
    storage.put(&key, picture().into()).await?;
    // VK's posting pace (0.5 s plus up to 1 s) on the simulator's clock.
    let interval = format!("{}ms", 500 / TIME_SCALE);
    let jitter = format!("{}ms", 1000 / TIME_SCALE);
    let overrides = [
        ("VKP_POSTER__INTERVAL", interval.as_str()),
        ("VKP_POSTER__JITTER", jitter.as_str()),
    ];
    let app = App::build(service_settings(redis_url, sim, data_dir, &overrides)?).await?;
    println!("vk-parser is running (ops port {})", app.ops_addr());
    let service_stop = stop.child_token();
    let service = tokio::spawn(app.run_until_stopped(service_stop.clone()));
    println!(
        "campaign {job}: sender {sender}, {} communities, one picture",
        groups.len()
    );
    let before = get(&sim.api, "/sim/stats").await?;
    let mut conn = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let result = async {
        publish_on(
            &mut conn,
            "stream:poster:vk",
            crate::events::SUGGEST_POST_CREATED,
            json!({"campaignId": job, "jobId": job, "userId": sender, "groups": groups,
                   "message": "Hello from the vk-parser demo",
                   "attachments": [{"type": "photo", "key": key.as_str()}]}),
        )
        .await?;
        follow(&mut conn, &job, 1, "").await
    }
    .await;
    service_stop.cancel();
    let _ = service.await;
    let status = result?;
    let prefix = status["artifacts"]["prefix"].as_str().unwrap_or_default();
    let table_key = ObjectKey::parse(&format!("{prefix}posts.parquet"))?;
    let table = from_parquet("posts", &storage.get(&table_key).await?)
        .map_err(|e| DemoError::Report(e.to_string()))?;
    let column = |name: &str| -> Vec<String> {
        match table.column(name) {
            Some(ColumnData::Str(v)) => v.iter().map(|s| s.clone().unwrap_or_default()).collect(),
            Some(ColumnData::OptI64(v)) => v
                .iter()
                .map(|n| n.map(|n| n.to_string()).unwrap_or_default())
                .collect(),
            _ => vec![String::new(); table.rows()],
        }
    };
    let (names, outcomes, reasons, posts) = (
        column("screen_name"),
        column("outcome"),
        column("reason"),
        column("post_id"),
    );
    println!();
    println!(
        "{:<36} {:<10} {:<14} post",
        "community", "outcome", "reason"
    );
    for i in 0..table.rows() {
        println!(
            "{:<36} {:<10} {:<14} {}",
            names[i], outcomes[i], reasons[i], posts[i]
        );
    }
    let after = get(&sim.api, "/sim/stats").await?;
    let (requests, by_method) = requests_between(&before, &after);
    let truth = get(&sim.api, "/sim/truth/posts").await?;
    println!();
    println!(
        "{}; the simulator holds {} posts of this sender; {:.1}s",
        status["message"].as_str().unwrap_or(""),
        truth["posts"]
            .as_array()
            .map(|p| p.iter().filter(|p| p["author"] == sender).count())
            .unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
    println!("  VK requests          {requests} ({by_method})");
    println!("  parquet              {}", data_dir.join(prefix).display());
    Ok(())
}
