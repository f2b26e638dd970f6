//! `vk-parser demo --job community`: community tasks on the simulator. MEMBERS of three
//! communities, then the simulator's day moves on (`POST /sim/day`: members join and leave),
//! MEMBERS again, whose `joined` and `left` are printed beside the simulator's own count of
//! the change; then POSTS (with comments and thread replies) of two communities. Each task's
//! VK requests are printed by method.

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{
    follow, publish_on, requests_between, service_settings, sim_get as get, DemoError, SimInfo,
};
use crate::app::App;
use crate::key::ObjectKey;
use crate::storage::local::LocalStorage;
use crate::storage::Storage;
use crate::tables::{from_parquet, ColumnData, Table};

/// Runs the three tasks and prints what they found.
pub(super) async fn run(
    data_dir: &Path,
    redis_url: &str,
    sim: &SimInfo,
    stop: &CancellationToken,
    started: Instant,
) -> Result<(), DemoError> {
    let named = get(&sim.api, "/sim/truth/named").await?;
    let n = &named["named_communities"];
    let ids: Vec<i64> = ["big", "busy", "open_wall"]
        .iter()
        .filter_map(|k| n[*k].as_i64())
        .collect();
    let hub = named["named"]["hub"].as_i64().unwrap_or(1);
    let app = App::build(service_settings(redis_url, sim, data_dir, &[])?).await?;
    println!("vk-parser is running (ops port {})", app.ops_addr());
    let service_stop = stop.child_token();
    let service = tokio::spawn(app.run_until_stopped(service_stop.clone()));
    let mut conn = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let storage = LocalStorage::open(data_dir).await?;
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let groups: Vec<Value> = ids.iter().map(|g| json!(format!("club{g}"))).collect();
    let result = async {
        let mut task = async |job: String, kind: &str, groups: &[Value], options: Value| {
            let before = get(&sim.api, "/sim/stats").await?;
            publish_on(
                &mut conn,
                "stream:community:vk",
                crate::events::COMMUNITY_TASK_CREATED,
                json!({"taskId": job, "jobId": job, "userId": hub, "kind": kind,
                       "groups": groups, "options": options}),
            )
            .await?;
            let status = follow(&mut conn, &job, 1, "").await?;
            let after = get(&sim.api, "/sim/stats").await?;
            println!("  {}", status["message"].as_str().unwrap_or(""));
            let (total, by_method) = requests_between(&before, &after);
            println!("  VK requests: {total} ({by_method})");
            Ok::<Value, DemoError>(status)
        };
        println!("MEMBERS of {} communities", groups.len());
        task(format!("members-a-{stamp}"), "MEMBERS", &groups, json!({})).await?;
        let day = reqwest::Client::new()
            .post(format!("{}/sim/day", sim.api))
            .json(&json!({"advance": 1}))
            .send()
            .await
            .map_err(|source| DemoError::Sim {
                what: "/sim/day".to_owned(),
                source,
            })?;
        let _ = day.error_for_status().map_err(|source| DemoError::Sim {
            what: "/sim/day".to_owned(),
            source,
        })?;
        println!("a simulated day passes; MEMBERS again");
        let second = task(format!("members-b-{stamp}"), "MEMBERS", &groups, json!({})).await?;
        let counts = table(&storage, &second, "member_counts").await?;
        println!();
        println!(
            "{:<20} {:>9} {:>8} {:>8}   truth joined/left",
            "community", "members", "joined", "left"
        );
        for (i, g) in ints(&counts, "group_id").iter().enumerate() {
            let before = get(&sim.api, &format!("/sim/truth/members?group_id={g}&day=0")).await?;
            let now = get(&sim.api, &format!("/sim/truth/members?group_id={g}&day=1")).await?;
            let (truth_joined, truth_left) = change(&before["items"], &now["items"]);
            println!(
                "{:<20} {:>9} {:>8} {:>8}   {truth_joined}/{truth_left}",
                format!("club{g}"),
                ints(&counts, "fetched")[i],
                ints(&counts, "joined")[i],
                ints(&counts, "left")[i],
            );
        }
        println!();
        println!("POSTS (10 latest, every comment and thread reply) of 2 communities");
        let posts = task(
            format!("posts-{stamp}"),
            "POSTS",
            &groups[..2],
            json!({"withThreads": true}),
        )
        .await?;
        let comments = table(&storage, &posts, "comments").await?;
        let m = &posts["metrics"]["totals"];
        println!(
            "  {} posts, {} comments ({} thread replies), {} authors",
            m["posts"],
            comments.rows(),
            ints(&comments, "parent_id")
                .iter()
                .filter(|p| **p != 0)
                .count(),
            table(&storage, &posts, "authors").await?.rows()
        );
        println!(
            "  parquet: {}",
            data_dir
                .join(posts["artifacts"]["prefix"].as_str().unwrap_or_default())
                .display()
        );
        Ok::<(), DemoError>(())
    }
    .await;
    service_stop.cancel();
    let _ = service.await;
    result?;
    println!("done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The truth's (joined, left) between two member lists.
fn change(before: &Value, now: &Value) -> (usize, usize) {
    let set = |v: &Value| -> std::collections::BTreeSet<i64> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    };
    let (b, n) = (set(before), set(now));
    (n.difference(&b).count(), b.difference(&n).count())
}

async fn table(storage: &LocalStorage, status: &Value, name: &str) -> Result<Table, DemoError> {
    let prefix = status["artifacts"]["prefix"].as_str().unwrap_or_default();
    let key = ObjectKey::parse(&format!("{prefix}{name}.parquet"))?;
    from_parquet(name, &storage.get(&key).await?).map_err(|e| DemoError::Report(e.to_string()))
}

/// An integer column (nulls as 0).
fn ints(table: &Table, name: &str) -> Vec<i64> {
    match table.column(name) {
        Some(ColumnData::I64(v)) => v.clone(),
        Some(ColumnData::OptI64(v)) => v.iter().map(|n| n.unwrap_or(0)).collect(),
        _ => vec![0; table.rows()],
    }
}
