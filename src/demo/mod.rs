//! `vk-parser demo`: one DEFAULT report end to end on a laptop, with nothing to configure.
//!
//! It starts what a deployment would have around the service, as child processes it owns: a
//! private `redis-server` on a temporary unix socket and the `vk-sim` binary (a simulated VK
//! with its token manager). The simulator is a separate process reached over HTTP, exactly as
//! VK would be: the service never calls it in-process. Then it runs the service itself with
//! local storage in `./data`, publishes a ReportCreated for three seeds, follows the status
//! stream with a progress bar, publishes Stage2Created, and prints a summary. Every child is
//! killed when the demo ends, Ctrl-C included (`kill_on_drop`). `--job suggest` runs a small
//! campaign instead (`suggest`), `--job community` community tasks (`community`).

mod community;
mod suggest;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::export::{graph_of, Graph};
use crate::settings::Settings;
use crate::storage::local::LocalStorage;
use crate::storage::StagePrefix;

/// How fast the simulated VK runs: 20x, with the service's pacing scaled alike.
const TIME_SCALE: u32 = 20;

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A helper program answered oddly or not in time.
    #[error("{0}")]
    Setup(String),
    /// A file or a helper program could not be created or started; `what` says which and how
    /// to fix it.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// vk-sim's own endpoints failed.
    #[error("vk-sim {what}: {source}")]
    Sim {
        /// Which endpoint.
        what: String,
        /// The HTTP error.
        #[source]
        source: reqwest::Error,
    },
    /// The demo's settings did not load.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// The written stage could not be read back.
    #[error(transparent)]
    Stage(#[from] crate::stage_files::StageReadError),
    /// The local folder could not be opened.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The status named no valid stage prefix.
    #[error(transparent)]
    Key(#[from] crate::key::KeyError),
    /// The stage holds no graph the export can read.
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
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

/// The report the demo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoReport {
    /// The graph of three seeds' friends and followers and the connections among them.
    Default,
    /// Chains of 1 to 3 handshakes between the seeds.
    Handshakes,
    /// The communities the seeds' audience subscribes to.
    SubGraph,
}

impl DemoReport {
    fn event_name(self) -> &'static str {
        match self {
            DemoReport::Default => "DEFAULT",
            DemoReport::Handshakes => "HANDSHAKES",
            DemoReport::SubGraph => "SUB_GRAPH",
        }
    }
}

/// Which job kind the demo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoJob {
    /// A report (`--report-type`), stage 1 then stage 2.
    Report,
    /// A campaign: one post with a picture into the simulator's named communities.
    Suggest,
    /// Community tasks: MEMBERS twice across a simulated day, then POSTS.
    Community,
}

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The job kind.
    pub job: DemoJob,
    /// Users in the simulated graph.
    pub users: u32,
    /// The report type.
    pub report: DemoReport,
    /// Where the parquet goes.
    pub data_dir: PathBuf,
    /// The vk-sim binary (default: next to this binary).
    pub sim_binary: Option<PathBuf>,
    /// Also run the report with the seed service's request policy and compare (DEFAULT only).
    pub compare: bool,
}

fn setup(message: impl Into<String>) -> DemoError {
    DemoError::Setup(message.into())
}

/// Runs the demo; `stop` (Ctrl-C, SIGTERM) ends it early, at any step, stopping everything it
/// started.
pub async fn run(options: DemoOptions, stop: CancellationToken) -> Result<(), DemoError> {
    let scratch = std::env::temp_dir().join(format!("vk-parser-demo-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|source| DemoError::Io {
        what: format!("cannot create {}", scratch.display()),
        source,
    })?;
    // The children live in `children`, outside the future below, so they are killed
    // (kill_on_drop) when this function returns, whether the demo finished, failed or was
    // interrupted in the middle of any step.
    let mut children = Vec::new();
    let outcome = tokio::select! {
        outcome = run_steps(&options, &scratch, &mut children, &stop) => outcome,
        _ = stop.cancelled() => Err(DemoError::Report("interrupted".to_owned())),
    };
    drop(children);
    let _ = std::fs::remove_dir_all(&scratch);
    outcome
}

async fn run_steps(
    options: &DemoOptions,
    scratch: &Path,
    children: &mut Vec<Child>,
    stop: &CancellationToken,
) -> Result<(), DemoError> {
    let started = Instant::now();
    let socket = scratch.join("redis.sock");
    println!("starting redis-server on {}", socket.display());
    children.push(start_redis(&socket, scratch).await?);
    let sim_binary = options
        .sim_binary
        .clone()
        .unwrap_or_else(sibling_sim_binary);
    println!(
        "starting vk-sim ({} users, {TIME_SCALE}x VK speed)",
        options.users
    );
    let (sim_child, sim) = start_sim(&sim_binary, options.users).await?;
    children.push(sim_child);
    let redis_url = format!("redis+unix://{}", socket.display());
    match options.job {
        DemoJob::Suggest => {
            return suggest::run(&options.data_dir, &redis_url, &sim, stop, started).await
        }
        DemoJob::Community => {
            return community::run(&options.data_dir, &redis_url, &sim, stop, started).await
        }
        DemoJob::Report => {}
    }
    let seeds = pick_seeds(&sim.api, sim.open_user).await?;
    println!(
        "report: {} for seeds {seeds:?}, author {}",
        options.report.event_name(),
        sim.open_user
    );
    let report = Report {
        redis_url: &redis_url,
        sim: &sim,
        seeds: &seeds,
        report: options.report,
        stop,
    };
    let ours = report.run(&options.data_dir, "demo", &[], "").await?;
    let graph = read_graph(&options.data_dir, &ours.stage2).await?;
    let seed_policy = if options.compare && options.report == DemoReport::Default {
        println!("the same report with the seed service's policy (friends.get of everyone, 17 calls per execute):");
        let run = report
            .run(
                &scratch.join("seed-policy"),
                "seedpolicy",
                &[
                    ("VKP_PARSER__EDGE_STRATEGY", "friends"),
                    ("VK_CALLS_PER_EXECUTE", "17"),
                ],
                "seed policy ",
            )
            .await?;
        Some(run)
    } else {
        None
    };
    summary(options, &ours, seed_policy.as_ref(), &graph, started);
    Ok(())
}

/// One report run on the demo's Redis and simulator.
struct Report<'a> {
    redis_url: &'a str,
    sim: &'a SimInfo,
    seeds: &'a [i64],
    report: DemoReport,
    stop: &'a CancellationToken,
}

/// What a run gave: the final stage 2 status, and the VK requests it made.
struct RunOutcome {
    stage2: Value,
    requests: u64,
    calls: u64,
    executes: u64,
    violations: u64,
}

impl Report<'_> {
    /// Starts the service with `overrides`, runs stage 1 then stage 2 for job `{job}-{time}`,
    /// stops the service, and counts the requests from the simulator's statistics.
    async fn run(
        &self,
        data_dir: &Path,
        job: &str,
        overrides: &[(&str, &str)],
        label: &str,
    ) -> Result<RunOutcome, DemoError> {
        let app = App::build(service_settings(
            self.redis_url,
            self.sim,
            data_dir,
            overrides,
        )?)
        .await?;
        if label.is_empty() {
            println!("vk-parser is running (ops port {})", app.ops_addr());
        }
        let service_stop = self.stop.child_token();
        let service = tokio::spawn(app.run_until_stopped(service_stop.clone()));
        let before = sim_stats(&self.sim.api).await?;
        let mut conn = redis::Client::open(self.redis_url)?
            .get_multiplexed_async_connection()
            .await?;
        let job = format!("{job}-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
        let author = self.sim.open_user;
        let report_type = self.report.event_name();
        let result = async {
            publish(
                &mut conn,
                "ReportCreated",
                json!({"reportId": job, "jobId": job, "userId": author,
                "reportType": report_type, "socialNetworkIds": self.seeds,
                "options": {"subsGraph": true}}),
            )
            .await?;
            follow(&mut conn, &job, 1, label).await?;
            publish(
                &mut conn,
                "Stage2Created",
                json!({"reportId": job, "jobId": job, "userId": author,
                "reportType": report_type}),
            )
            .await?;
            follow(&mut conn, &job, 2, label).await
        }
        .await;
        service_stop.cancel();
        let _ = service.await;
        let stage2 = result?;
        let after = sim_stats(&self.sim.api).await?;
        let delta = |key: &str| {
            after[key]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(before[key].as_u64().unwrap_or(0))
        };
        Ok(RunOutcome {
            stage2,
            requests: delta("requests"),
            calls: delta("inner_calls"),
            executes: delta("execute_calls"),
            violations: delta("rate_limit_violations"),
        })
    }
}

async fn sim_stats(api: &str) -> Result<Value, DemoError> {
    sim_get(api, "/sim/stats").await
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
        .map_err(|source| DemoError::Io {
            what: "cannot start redis-server (install it with `apt-get install -y redis-server`, or use ./scripts/demo.sh, which does)".to_owned(),
            source,
        })?;
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

/// The service's settings on the demo's Redis and simulator, paced for [`TIME_SCALE`].
fn service_settings(
    redis_url: &str,
    sim: &SimInfo,
    data_dir: &Path,
    overrides: &[(&str, &str)],
) -> Result<Settings, DemoError> {
    let interval_us = 420_000 / TIME_SCALE;
    let mut env: HashMap<String, String> = [
        ("REDIS_URL", redis_url.to_owned()),
        ("STORAGE_URL", data_dir.display().to_string()),
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
    env.extend(
        overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    Ok(Settings::load(None, &env)?)
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
        .map_err(|source| DemoError::Io {
            what: format!(
                "cannot start {} (build it with `cargo build --bin vk-sim`)",
                binary.display()
            ),
            source,
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
        .map_err(|source| DemoError::Sim {
            what: "/sim/truth".to_owned(),
            source,
        })?
        .json()
        .await
        .map_err(|source| DemoError::Sim {
            what: "/sim/truth".to_owned(),
            source,
        })?;
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
    publish_on(conn, "stream:parser:vk", event_type, payload).await
}

async fn publish_on(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    event_type: &str,
    payload: Value,
) -> Result<(), DemoError> {
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("event_type")
        .arg(event_type)
        .arg("payload")
        .arg(payload.to_string())
        .query_async(conn)
        .await?;
    Ok(())
}

/// `GET {api}{path}` of one of vk-sim's own endpoints (stats, truth), as JSON.
async fn sim_get(api: &str, path: &str) -> Result<Value, DemoError> {
    let sim = |source| DemoError::Sim {
        what: path.to_owned(),
        source,
    };
    reqwest::get(format!("{api}{path}"))
        .await
        .map_err(sim)?
        .json()
        .await
        .map_err(sim)
}

/// The VK requests between two `/sim/stats`: their number, and `method n` by method.
fn requests_between(before: &Value, after: &Value) -> (u64, String) {
    let total = after["requests"].as_u64().unwrap_or(0);
    let by_method: Vec<String> = after["by_method"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(method, n)| {
                    let n = n.as_u64()? - before["by_method"][method].as_u64().unwrap_or(0);
                    (n > 0).then(|| format!("{method} {n}"))
                })
                .collect()
        })
        .unwrap_or_default();
    (
        total.saturating_sub(before["requests"].as_u64().unwrap_or(0)),
        by_method.join(", "),
    )
}

/// Follows the status stream for one stage with a progress bar; returns its final status.
async fn follow(
    conn: &mut redis::aio::MultiplexedConnection,
    job: &str,
    stage: u8,
    label: &str,
) -> Result<Value, DemoError> {
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("stage {prefix} [{bar:40}] {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{label}{stage}"));
    let mut last_id = "0".to_owned();
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
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

/// The stage 2 graph the run wrote, read back the way `vk-parser export` reads it.
async fn read_graph(data: &Path, stage2: &Value) -> Result<Graph, DemoError> {
    let prefix = stage2["artifacts"]["prefix"].as_str().unwrap_or_default();
    let prefix = StagePrefix::parse(prefix)?;
    let storage = LocalStorage::open(data).await?;
    let (manifest, tables) = crate::stage_files::read_stage(&storage, &prefix).await?;
    Ok(graph_of(&manifest, &tables)?)
}

fn summary(
    options: &DemoOptions,
    ours: &RunOutcome,
    seed_policy: Option<&RunOutcome>,
    graph: &Graph,
    started: Instant,
) {
    let prefix = ours.stage2["artifacts"]["prefix"]
        .as_str()
        .unwrap_or_default();
    let mut by_relation: BTreeMap<&str, usize> = BTreeMap::new();
    for edge in &graph.edges {
        *by_relation.entry(edge.relation).or_default() += 1;
    }
    let relations: Vec<String> = by_relation
        .iter()
        .map(|(relation, n)| format!("{n} {relation}"))
        .collect();
    println!();
    println!("summary");
    println!("  nodes                {}", graph.nodes.len());
    println!(
        "  edges                {} ({})",
        graph.edges.len(),
        relations.join(", ")
    );
    println!(
        "  VK requests          {} ({} execute carrying {} calls; {} error 6)",
        ours.requests, ours.executes, ours.calls, ours.violations
    );
    if let Some(seed) = seed_policy {
        println!(
            "  seed policy          {} requests for the same graph: {:.2}x as many",
            seed.requests,
            seed.requests as f64 / ours.requests.max(1) as f64
        );
    }
    println!(
        "  time                 {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let dir = options.data_dir.join(prefix);
    println!("  parquet              {}", dir.display());
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "vk-parser".to_owned());
    let storage = format!("STORAGE_URL={}", options.data_dir.display());
    println!();
    println!("next:");
    println!("  {storage} {exe} inspect {prefix}");
    println!("  {storage} {exe} export {prefix} --format gexf   # Gephi, networkx");
    println!(
        "  python3 -c \"import pandas as pd; print(pd.read_parquet('{}'))\"",
        dir.join(format!(
            "{}.parquet",
            match options.report {
                DemoReport::SubGraph => crate::parser::schema::df_subs::TABLE,
                _ => crate::parser::schema::df_connect::TABLE,
            }
        ))
        .display()
    );
}
