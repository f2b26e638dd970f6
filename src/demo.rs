//! `vk-parser demo`: one DEFAULT report end to end on a laptop, with nothing to configure.
//!
//! It starts what a deployment would have around the service, as child processes it owns: a
//! private `redis-server` on a temporary unix socket and the `vk-sim` binary (a simulated VK
//! with its token manager). The simulator is a separate process reached over HTTP, exactly as
//! VK would be: the service never calls it in-process. Then it runs the service itself with
//! local storage in `./data`, publishes a ReportCreated for three seeds, follows the status
//! stream with a progress bar, publishes Stage2Created, and prints a summary. Every child is
//! killed when the demo ends, Ctrl-C included (`kill_on_drop`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::settings::Settings;
use crate::tables::{from_parquet, ColumnData};

/// How fast the simulated VK runs: 20x, with the service's pacing scaled alike.
const TIME_SCALE: u32 = 20;

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A helper program could not be started or answered oddly.
    #[error("{0}")]
    Setup(String),
    /// The service failed.
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The report failed or took too long.
    #[error("{0}")]
    Report(String),
}

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Users in the simulated graph.
    pub users: u32,
    /// Where the parquet goes.
    pub data_dir: PathBuf,
    /// The vk-sim binary (default: next to this binary).
    pub sim_binary: Option<PathBuf>,
}

fn setup(message: impl Into<String>) -> DemoError {
    DemoError::Setup(message.into())
}

/// Runs the demo; `stop` (Ctrl-C) ends it early, stopping everything it started.
pub async fn run(options: DemoOptions, stop: CancellationToken) -> Result<(), DemoError> {
    let started = Instant::now();
    let scratch = std::env::temp_dir().join(format!("vk-parser-demo-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .map_err(|e| setup(format!("cannot create {}: {e}", scratch.display())))?;
    let socket = scratch.join("redis.sock");
    println!("starting redis-server on {}", socket.display());
    let redis_child = start_redis(&socket, &scratch).await?;
    let sim_binary = options
        .sim_binary
        .clone()
        .unwrap_or_else(sibling_sim_binary);
    println!(
        "starting vk-sim ({} users, {TIME_SCALE}x VK speed)",
        options.users
    );
    let (sim_child, sim) = start_sim(&sim_binary, options.users).await?;

    let redis_url = format!("redis+unix://{}", socket.display());
    let interval_us = 420_000 / TIME_SCALE;
    let env: HashMap<String, String> = [
        ("REDIS_URL", redis_url.clone()),
        ("STORAGE_URL", options.data_dir.display().to_string()),
        ("VK_API_BASE_URL", sim.api.clone()),
        ("TOKEN_SERVICE_URL", sim.api.clone()),
        ("TOKEN_SERVICE_API_KEY", sim.manager_key.clone()),
        ("VK_REQUEST_INTERVAL", format!("{interval_us}us")),
        ("VKP_OPS__LISTEN", "127.0.0.1:0".to_owned()),
        ("VKP_STREAM__BLOCK", "200ms".to_owned()),
        ("VKP_STREAM__PROGRESS_INTERVAL", "200ms".to_owned()),
        ("VKP_TELEMETRY__LOG_LEVEL", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let settings = Settings::load(None, &env).map_err(|e| setup(e.to_string()))?;
    let app = App::build(settings).await?;
    println!("vk-parser is running (ops port {})", app.ops_addr());
    let service_stop = stop.child_token();
    let service = tokio::spawn(app.run_until_stopped(service_stop.clone()));

    let seeds = pick_seeds(&sim.api, sim.open_user).await?;
    println!(
        "report: DEFAULT graph of seeds {seeds:?}, author {}",
        sim.open_user
    );
    let mut conn = redis::Client::open(redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let job = format!("demo-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let result = async {
        publish(
            &mut conn,
            "ReportCreated",
            json!({"reportId": job, "jobId": job, "userId": sim.open_user,
            "reportType": "DEFAULT", "socialNetworkIds": seeds, "options": {"subsGraph": true}}),
        )
        .await?;
        let stage1 = follow(&mut conn, &job, 1, &stop).await?;
        publish(
            &mut conn,
            "Stage2Created",
            json!({"reportId": job, "jobId": job, "userId": sim.open_user,
            "reportType": "DEFAULT"}),
        )
        .await?;
        let stage2 = follow(&mut conn, &job, 2, &stop).await?;
        Ok::<_, DemoError>((stage1, stage2))
    }
    .await;
    service_stop.cancel();
    let _ = service.await;
    let outcome = match result {
        Ok((_, stage2)) => summary(&options.data_dir, &stage2, &sim.api, started).await,
        Err(e) => Err(e),
    };
    // kill_on_drop: dropping the handles stops the children; then the scratch folder goes.
    drop(sim_child);
    drop(redis_child);
    let _ = std::fs::remove_dir_all(&scratch);
    outcome
}

/// The vk-sim binary built beside this one (`cargo build` puts both in one folder).
fn sibling_sim_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("vk-sim")))
        .unwrap_or_else(|| PathBuf::from("vk-sim"))
}

async fn start_redis(socket: &Path, dir: &Path) -> Result<Child, DemoError> {
    let child = Command::new("redis-server")
        .args(["--port", "0", "--unixsocket"])
        .arg(socket)
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| setup(format!("cannot start redis-server ({e}): install it with `apt-get install -y redis-server`, or use ./scripts/demo.sh, which does")))?;
    let url = format!("redis+unix://{}", socket.display());
    for _ in 0..200 {
        if let Ok(client) = redis::Client::open(url.as_str()) {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                if redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
                {
                    return Ok(child);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(setup("redis-server did not answer within 5s"))
}

/// Where the simulator listens, as it printed.
struct SimInfo {
    api: String,
    manager_key: String,
    open_user: i64,
}

async fn start_sim(binary: &Path, users: u32) -> Result<(Child, SimInfo), DemoError> {
    let mut child = Command::new(binary)
        .args([
            "--users",
            &users.to_string(),
            "--time-scale",
            &TIME_SCALE.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            setup(format!(
                "cannot start {} ({e}): build it with `cargo build --bin vk-sim`",
                binary.display()
            ))
        })?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| setup("vk-sim has no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut api, mut key, mut open) = (None, None, None);
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("api (VK methods, /tokens, /sim):") {
                api = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("token manager api key:") {
                key = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("named users:") {
                open = serde_json::from_str::<Value>(rest.trim())
                    .ok()
                    .and_then(|v| v["open"].as_i64());
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .map_err(|_| setup("vk-sim did not start within 120s"))?;
    // Keep draining its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    match (api, key, open) {
        (Some(api), Some(manager_key), Some(open_user)) => Ok((
            child,
            SimInfo {
                api,
                manager_key,
                open_user,
            },
        )),
        _ => Err(setup("vk-sim printed no address, key or named users")),
    }
}

/// Three open, active users with a few dozen to a few hundred friends.
async fn pick_seeds(api: &str, around: i64) -> Result<Vec<i64>, DemoError> {
    let ids: Vec<i64> = (around + 1..around + 400).collect();
    let truth: Value = reqwest::Client::new()
        .post(format!("{api}/sim/truth"))
        .json(&json!({ "ids": ids }))
        .send()
        .await
        .map_err(|e| setup(format!("vk-sim truth: {e}")))?
        .json()
        .await
        .map_err(|e| setup(format!("vk-sim truth: {e}")))?;
    let seeds: Vec<i64> = ids
        .into_iter()
        .filter(|id| {
            let u = &truth["users"][id.to_string()];
            let friends = u["friends"].as_array().map(Vec::len).unwrap_or(0);
            u["is_closed"] == false && u["deactivated"].is_null() && (30..300).contains(&friends)
        })
        .take(3)
        .collect();
    if seeds.len() < 3 {
        return Err(setup("no three suitable seeds in the simulated graph"));
    }
    Ok(seeds)
}

async fn publish(
    conn: &mut redis::aio::MultiplexedConnection,
    event_type: &str,
    payload: Value,
) -> Result<(), DemoError> {
    let _: String = redis::cmd("XADD")
        .arg("stream:parser:vk")
        .arg("*")
        .arg("event_type")
        .arg(event_type)
        .arg("payload")
        .arg(payload.to_string())
        .query_async(conn)
        .await?;
    Ok(())
}

/// Follows the status stream for one stage with a progress bar; returns its final status.
async fn follow(
    conn: &mut redis::aio::MultiplexedConnection,
    job: &str,
    stage: u8,
    stop: &CancellationToken,
) -> Result<Value, DemoError> {
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("stage {prefix} [{bar:40}] {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(stage.to_string());
    let mut last_id = "0".to_owned();
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        if stop.is_cancelled() {
            bar.abandon_with_message("interrupted");
            return Err(DemoError::Report("interrupted".to_owned()));
        }
        let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
            .arg("stream:report:status-change")
            .arg(format!("({last_id}"))
            .arg("+")
            .query_async(conn)
            .await
            .or_else(|_| Ok::<_, redis::RedisError>(Vec::new()))?;
        for (id, fields) in entries {
            last_id = id;
            let Some(status) = fields
                .get("payload")
                .and_then(|p| serde_json::from_str::<Value>(p).ok())
            else {
                continue;
            };
            if status["jobId"] != job || status["stage"] != stage {
                continue;
            }
            bar.set_position(status["progress"].as_u64().unwrap_or(0));
            bar.set_message(status["message"].as_str().unwrap_or("").to_owned());
            match status["status"].as_str() {
                Some("IN_PROGRESS") => {}
                Some("FAILED") => {
                    bar.abandon_with_message("failed");
                    return Err(DemoError::Report(format!(
                        "stage {stage} failed: {} ({})",
                        status["message"], status["failureReason"]
                    )));
                }
                _ => {
                    bar.finish_with_message("done");
                    return Ok(status);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(DemoError::Report(format!(
        "stage {stage} did not finish within 10 minutes"
    )))
}

async fn summary(
    data: &Path,
    stage2: &Value,
    api: &str,
    started: Instant,
) -> Result<(), DemoError> {
    let prefix = stage2["artifacts"]["prefix"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let dir = data.join(&prefix);
    let bytes = std::fs::read(dir.join("df_connect.parquet"))
        .map_err(|e| DemoError::Report(format!("reading df_connect: {e}")))?;
    let table = tokio::task::spawn_blocking(move || from_parquet("df_connect", &bytes))
        .await
        .map_err(|e| DemoError::Report(e.to_string()))?
        .map_err(|e| DemoError::Report(e.to_string()))?;
    let (
        Some(ColumnData::I64(source)),
        Some(ColumnData::I64(target)),
        Some(ColumnData::I8(relation)),
    ) = (
        table.column("source"),
        table.column("target"),
        table.column("relation"),
    )
    else {
        return Err(DemoError::Report("df_connect lacks its columns".to_owned()));
    };
    let nodes: std::collections::BTreeSet<i64> = source.iter().chain(target).copied().collect();
    let friendships = relation.iter().filter(|r| **r == 2).count();
    let stats: Value = reqwest::get(format!("{api}/sim/stats"))
        .await
        .map_err(|e| DemoError::Report(e.to_string()))?
        .json()
        .await
        .map_err(|e| DemoError::Report(e.to_string()))?;
    println!();
    println!("summary");
    println!("  nodes                {}", nodes.len());
    println!(
        "  edges                {} ({} friendships, {} follower edges)",
        source.len(),
        friendships,
        source.len() - friendships
    );
    println!(
        "  VK requests          {} ({} execute, {} calls packed in them, {} error 6)",
        stats["requests"],
        stats["execute_calls"],
        stats["inner_calls"],
        stats["rate_limit_violations"]
    );
    println!(
        "  time                 {:.1}s",
        started.elapsed().as_secs_f64()
    );
    println!("  parquet              {}", dir.display());
    println!();
    println!("next: read the tables with pandas, e.g.");
    println!(
        "  python3 -c \"import pandas as pd; print(pd.read_parquet('{}'))\"",
        dir.join("df_connect.parquet").display()
    );
    Ok(())
}
