//! Table encoding benchmark: a 5,000,000-row edge table (source i64, target i64, relation i8)
//! through `tables::to_parquet` and `tables::from_parquet`, with the parquet size and the peak
//! memory of each step, against pyarrow writing and reading the same columns in the same run.
//!
//! Run: `cargo bench --bench frames` (release; `--profile dev` works but polars unoptimised is
//! several times slower, so only its ratios mean anything). The anchor is pyarrow, which the
//! backend uses to read these files: the same arrays built with numpy, written as zstd parquet,
//! timed inside python so interpreter start-up is not counted. Without python3 + pyarrow the
//! anchor row says so and the rest still runs.
//!
//! Peak memory is the process's VmHWM from /proc/self/status, reset before each step through
//! /proc/self/clear_refs where the kernel allows it, so each figure is that step's own peak.

use std::process::Command;
use std::time::{Duration, Instant};

use vk_parser::tables::{from_parquet, into_parquet, to_parquet, ColumnData, Table};

const ROWS: usize = 5_000_000;

/// The python anchor: builds the same columns as [`edges`] with numpy, then times a zstd write
/// and a read of it, printing one JSON object.
const PYARROW_BASELINE: &str = r#"
import json, sys, time, tempfile, os
import numpy as np
import pyarrow as pa, pyarrow.parquet as pq
n = int(sys.argv[1])
i = np.arange(n, dtype=np.int64)
table = pa.table({
    "source": i // 50 + 1_000_000,
    "target": (i * 7919 + 13) % 50_000_000,
    "relation": (i % 3).astype(np.int8),
})
path = os.path.join(tempfile.mkdtemp(), "edges.parquet")
t0 = time.perf_counter(); pq.write_table(table, path, compression="zstd"); t1 = time.perf_counter()
back = pq.read_table(path); t2 = time.perf_counter()
assert back.num_rows == n
print(json.dumps({"write_s": t1 - t0, "read_s": t2 - t1, "bytes": os.path.getsize(path)}))
"#;

/// Synthetic, deterministic edges: 50 friends per source, scattered targets, three relations.
fn edges(rows: usize) -> Table {
    let (mut source, mut target, mut relation) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    for i in 0..rows as i64 {
        source.push(i / 50 + 1_000_000);
        target.push((i * 7919 + 13) % 50_000_000);
        relation.push((i % 3) as i8);
    }
    Table::new("edges")
        .with("source", ColumnData::I64(source))
        .with("target", ColumnData::I64(target))
        .with("relation", ColumnData::I8(relation))
}

/// VmHWM in MiB, if /proc says.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets VmHWM to the current RSS ("5" to clear_refs); false where the kernel refuses.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

struct Step {
    name: &'static str,
    time: Duration,
    peak_before: Option<f64>,
    peak_after: Option<f64>,
}

fn measure<T>(name: &'static str, steps: &mut Vec<Step>, work: impl FnOnce() -> T) -> T {
    reset_peak();
    let peak_before = peak_rss_mib();
    let start = Instant::now();
    let out = work();
    let time = start.elapsed();
    steps.push(Step {
        name,
        time,
        peak_before,
        peak_after: peak_rss_mib(),
    });
    out
}

struct Baseline {
    write: Duration,
    read: Duration,
    bytes: u64,
}

fn pyarrow_baseline(rows: usize) -> Result<Baseline, String> {
    let out = Command::new("python3")
        .args(["-c", PYARROW_BASELINE, &rows.to_string()])
        .output()
        .map_err(|err| format!("python3 not runnable: {err}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("no output");
        return Err(format!("python3 + pyarrow + numpy unavailable: {last}"));
    }
    let seen: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|err| format!("baseline output: {err}"))?;
    let secs = |key: &str| seen[key].as_f64().map(Duration::from_secs_f64);
    match (secs("write_s"), secs("read_s"), seen["bytes"].as_u64()) {
        (Some(write), Some(read), Some(bytes)) => Ok(Baseline { write, read, bytes }),
        _ => Err(format!("baseline output not understood: {seen}")),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn fmt_mib(value: Option<f64>) -> String {
    value.map_or("n/a".to_owned(), |v| format!("{v:.0}"))
}

fn main() {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("tables: {ROWS} edges (i64, i64, i8), zstd parquet, {profile} build");
    println!(
        "peak RSS per step: {}",
        if reset_peak() {
            "reset before each step"
        } else {
            "cumulative (clear_refs refused)"
        }
    );

    let mut steps = Vec::new();
    let table = measure("build table", &mut steps, || edges(ROWS));
    let encoded = measure("to_parquet (copies)", &mut steps, || {
        to_parquet(&table).expect("encode")
    });
    let decoded = measure("from_parquet", &mut steps, || {
        from_parquet("edges", &encoded.bytes).expect("decode")
    });
    assert!(decoded == table, "round trip changed the table");
    drop(decoded);
    let moved = measure("into_parquet (moves)", &mut steps, || {
        into_parquet(table).expect("encode")
    });
    assert_eq!(moved.bytes, encoded.bytes);

    let raw = ROWS as u64 * (8 + 8 + 1);
    println!(
        "\nin memory {:.1} MiB, parquet {:.1} MiB ({:.1}% of raw, {:.2} bytes/row)\n",
        mib(raw),
        mib(encoded.bytes.len() as u64),
        100.0 * encoded.bytes.len() as f64 / raw as f64,
        encoded.bytes.len() as f64 / ROWS as f64
    );
    println!("| step | time ms | peak RSS before MiB | peak RSS during MiB |");
    println!("|---|---|---|---|");
    for step in &steps {
        println!(
            "| {} | {:.0} | {} | {} |",
            step.name,
            step.time.as_secs_f64() * 1000.0,
            fmt_mib(step.peak_before),
            fmt_mib(step.peak_after)
        );
    }

    let ours = |name: &str| {
        steps
            .iter()
            .find(|s| s.name == name)
            .map_or(Duration::ZERO, |s| s.time)
    };
    println!();
    match pyarrow_baseline(ROWS) {
        Ok(base) => {
            println!("| anchor: pyarrow (numpy arrays) | write ms | read ms | MiB |");
            println!("|---|---|---|---|");
            println!(
                "| pyarrow | {:.0} | {:.0} | {:.1} |",
                base.write.as_secs_f64() * 1000.0,
                base.read.as_secs_f64() * 1000.0,
                mib(base.bytes)
            );
            println!(
                "| tables / pyarrow | {:.2}x | {:.2}x | {:.2}x |",
                ours("to_parquet (copies)").as_secs_f64() / base.write.as_secs_f64(),
                ours("from_parquet").as_secs_f64() / base.read.as_secs_f64(),
                encoded.bytes.len() as f64 / base.bytes as f64
            );
        }
        Err(why) => println!("anchor: {why}"),
    }
}
