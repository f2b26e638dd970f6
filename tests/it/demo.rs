//! The README's first command as a new user runs it: the real `vk-parser demo` binary with the
//! real `vk-sim` binary and redis-server, then `inspect` and `export` on what it wrote, and the
//! exported graph opened by networkx. Also: Ctrl-C in the middle leaves no process behind.
//!
//! Needs python3 with networkx (`./scripts/test.sh` installs it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const VK_PARSER: &str = env!("CARGO_BIN_EXE_vk-parser");

/// The vk-sim binary beside vk-parser; built here when `cargo test` did not build it (as when
/// only this package is tested).
fn sim_binary() -> PathBuf {
    let path = Path::new(VK_PARSER).with_file_name("vk-sim");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "-p", "vk-sim", "--bin", "vk-sim"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building vk-sim failed");
    }
    path
}

fn demo(data: &Path, users: u32) -> Command {
    let mut command = Command::new(VK_PARSER);
    command
        .args(["demo", "--users", &users.to_string(), "--data-dir"])
        .arg(data)
        .arg("--sim-binary")
        .arg(sim_binary())
        .env_remove("REDIS_URL")
        .env_remove("STORAGE_URL");
    command
}

fn vk_parser(args: &[&str], storage: &Path) -> Output {
    Command::new(VK_PARSER)
        .args(args)
        .env("STORAGE_URL", storage)
        .output()
        .expect("vk-parser runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The stage prefixes (`{type}/{seeds}/{job}_stage{n}/`) under `data` that have a manifest.
fn stage_prefixes(data: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![data.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "manifest.json") {
                let rel = path.parent().unwrap().strip_prefix(data).unwrap();
                found.push(format!("{}/", rel.display()));
            }
        }
    }
    found.sort();
    found
}

/// Opens the files with networkx and prints what it sees as JSON.
const READ_WITH_NETWORKX: &str = r#"
import csv, json, sys
import networkx as nx
gexf = nx.read_gexf(sys.argv[1])
graphml = nx.read_graphml(sys.argv[2])
with open(sys.argv[3] + "/edges.csv", newline="") as f:
    csv_edges = sum(1 for _ in csv.DictReader(f))
with open(sys.argv[3] + "/nodes.csv", newline="") as f:
    csv_nodes = sum(1 for _ in csv.DictReader(f))
seeds = sorted(int(n) for n, d in gexf.nodes(data=True) if d.get("seed"))
relations = sorted({d["relation"] for _, _, d in gexf.edges(data=True)})
print(json.dumps({
    "gexf": [gexf.number_of_nodes(), gexf.number_of_edges(), gexf.is_directed()],
    "graphml": [graphml.number_of_nodes(), graphml.number_of_edges()],
    "csv": [csv_nodes, csv_edges],
    "seeds": seeds,
    "relations": relations,
}))
"#;

#[test]
fn demo_then_inspect_and_export_open_in_networkx() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = demo(&data, 3000).output().expect("the demo runs");
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
    for line in [
        "summary",
        "nodes",
        "edges",
        "VK requests",
        "seed policy",
        "parquet",
    ] {
        assert!(
            stdout.contains(line),
            "no {line:?} in the summary:\n{stdout}"
        );
    }
    let prefixes = stage_prefixes(&data);
    assert_eq!(prefixes.len(), 2, "stage 1 and stage 2: {prefixes:?}");
    let stage2 = &prefixes[1];
    assert!(stage2.ends_with("_stage2/"), "{stage2}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(data.join(stage2).join("manifest.json")).unwrap())
            .unwrap();
    let rows = |name: &str| {
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == format!("{name}.parquet"))
            .map(|f| f["rows"].as_u64().unwrap())
            .unwrap()
    };

    let inspect = vk_parser(&["inspect", stage2], &data);
    assert!(inspect.status.success(), "{}", text(&inspect.stderr));
    let shown = text(&inspect.stdout);
    assert!(
        shown.contains(&format!("df_connect.parquet: {} rows", rows("df_connect"))),
        "{shown}"
    );

    let gexf = dir.path().join("graph.gexf");
    let graphml = dir.path().join("graph.graphml");
    let csv = dir.path().join("csv");
    for (format, out) in [("gexf", &gexf), ("graphml", &graphml), ("csv", &csv)] {
        let export = vk_parser(
            &[
                "export",
                stage2,
                "--format",
                format,
                "--out",
                out.to_str().unwrap(),
            ],
            &data,
        );
        assert!(export.status.success(), "{}", text(&export.stderr));
        assert!(text(&export.stdout).contains("wrote"));
    }

    let python = Command::new("python3")
        .args(["-c", READ_WITH_NETWORKX])
        .args([&gexf, &graphml, &csv])
        .output()
        .expect("python3 runs");
    assert!(
        python.status.success(),
        "networkx could not read the export (./scripts/test.sh installs networkx): {}",
        text(&python.stderr)
    );
    let seen: Value = serde_json::from_slice(&python.stdout).unwrap();
    let (nodes, edges) = (rows("df_users"), rows("df_connect"));
    assert_eq!(seen["gexf"], serde_json::json!([nodes, edges, true]));
    assert_eq!(seen["graphml"], serde_json::json!([nodes, edges]));
    assert_eq!(seen["csv"], serde_json::json!([nodes, edges]));
    let seeds: Vec<i64> = manifest["mainIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let mut expected = seeds.clone();
    expected.sort();
    assert_eq!(seen["seeds"], serde_json::json!(expected));
    assert_eq!(seen["relations"], serde_json::json!(["follower", "friend"]));

    // A stage 1 prefix holds no graph: a clear error, not an empty file.
    let stage1 = vk_parser(&["export", &prefixes[0]], &data);
    assert!(!stage1.status.success());
    assert!(text(&stage1.stderr).contains("stage 1 prefix"));
}

/// `demo --job suggest`: a campaign over one community of every kind, its outcome table
/// printed, its table and manifest under `SUGGEST/`.
#[test]
fn the_campaign_demo_prints_one_outcome_per_community() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = demo(&data, 3000)
        .args(["--job", "suggest"])
        .output()
        .expect("the demo runs");
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
    for line in [
        "community",
        "suggested",
        "published",
        "wall_closed",
        "not_found",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    let prefixes = stage_prefixes(&data);
    assert_eq!(prefixes.len(), 1, "{prefixes:?}");
    assert!(prefixes[0].starts_with("SUGGEST/"), "{prefixes:?}");
    assert!(data.join(&prefixes[0]).join("posts.parquet").exists());
}

/// `demo --job community`: MEMBERS twice across a simulated day (joined and left printed beside
/// the simulator's own change), then POSTS; three task prefixes under `COMMUNITY/`.
#[test]
fn the_community_demo_prints_the_days_change_and_the_posts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = demo(&data, 3000)
        .args(["--job", "community"])
        .output()
        .expect("the demo runs");
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
    for line in [
        "a simulated day passes",
        "joined",
        "truth joined/left",
        "thread replies",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    // Every row's joined/left equals the truth's, printed after it.
    for row in stdout.lines().filter(|l| l.starts_with("club")) {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(format!("{}/{}", cells[2], cells[3]), cells[4], "{row}");
    }
    let prefixes: Vec<String> = walk_manifests(&data.join("COMMUNITY"));
    assert_eq!(prefixes.len(), 3, "{prefixes:?}");
}

/// The folders under `root` (any depth) that hold a manifest.json.
fn walk_manifests(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "manifest.json") {
                out.push(dir.display().to_string());
            }
        }
    }
    out
}

/// Process ids of `pid`'s children (Linux /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        found.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    found
}

/// Alive: /proc has it and it is not a zombie waiting to be reaped.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_during_the_demo_leaves_no_process_behind() {
    // Two moments: while the simulator starts, and while the report runs.
    for moment in ["starting vk-sim", "report:"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = demo(&dir.path().join("data"), 20_000)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            if line.unwrap().starts_with(moment) {
                break;
            }
        }
        // Both helpers are started by then, or vk-sim is being started: wait for it to show.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut helpers = children_of(child.id());
        while helpers.len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            helpers = children_of(child.id());
        }
        assert_eq!(helpers.len(), 2, "redis-server and vk-sim run: {helpers:?}");
        // SIGINT to the demo alone (a terminal would also signal the children; this is the
        // harder case, where only the demo's own handling can stop them).
        let killed = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        std::thread::spawn(move || for _ in lines {});
        let status = wait_exit(&mut child);
        assert!(!status.success(), "an interrupted demo reports failure");
        let deadline = Instant::now() + Duration::from_secs(10);
        while helpers.iter().any(|&p| alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<u32> = helpers.into_iter().filter(|&p| alive(p)).collect();
        assert!(
            left.is_empty(),
            "after Ctrl-C at {moment:?}, still running: {left:?}"
        );
    }
}
