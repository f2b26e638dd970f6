//! Benchmark of the simulator: time to generate the default graph (100,000 users), its degree
//! distribution, and the requests per second it sustains for concurrent clients on loopback
//! (bounded by count and time). Run with `cargo bench -p vk-sim`.
//!
//! The load generator runs in the same process and on the same 2 cores as the simulator, so
//! the figures are a lower bound of what the simulator alone can serve.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vk_sim::SimConfig;

const CLIENTS: usize = 32;
const MAX_REQUESTS: u64 = 60_000;
const MAX_TIME: Duration = Duration::from_secs(4);

async fn load(
    sim: &vk_sim::SimHandle,
    name: &str,
    method: &'static str,
    params: Vec<(&'static str, String)>,
) {
    load_via(sim, name, method, params, false).await
}

/// Runs one scenario, directly or through the proxy listener.
async fn load_via(
    sim: &vk_sim::SimHandle,
    name: &str,
    method: &'static str,
    params: Vec<(&'static str, String)>,
    via_proxy: bool,
) {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut headers = reqwest::header::HeaderMap::new();
        if via_proxy {
            headers.insert("X-Proxy-Key", sim.proxy_key().parse().expect("header"));
            headers.insert("X-Target-Host", "api.vk.com".parse().expect("header"));
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client");
        let base = if via_proxy {
            sim.proxy_url()
        } else {
            sim.api_url()
        };
        let url = format!("{base}/method/{method}");
        let token = sim.pool_tokens()[c % sim.pool_tokens().len()].clone();
        let mut form = params.clone();
        form.push(("access_token", token));
        form.push(("v", "5.199".to_string()));
        let (done, errors, bytes) = (done.clone(), errors.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < MAX_TIME
                && done.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS
            {
                match http.post(&url).form(&form).send().await {
                    Ok(r) => match r.bytes().await {
                        Ok(b) => {
                            bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                            if b.starts_with(b"{\"error\"") {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed).min(MAX_REQUESTS);
    println!(
        "{name:<44} {:>8.0} req/s  ({n} requests in {elapsed:.2} s, {} errors, {:.1} MB/s out)",
        n as f64 / elapsed,
        errors.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed) as f64 / elapsed / 1e6
    );
}

#[tokio::main]
async fn main() {
    // Default graph: generation time and shape.
    let sim = vk_sim::spawn(SimConfig::default())
        .await
        .expect("default simulator");
    println!(
        "default graph ({} users): generated in {:.2?}",
        sim.users(),
        sim.generation_time()
    );
    let named: serde_json::Value = reqwest::get(format!("{}/sim/truth/named", sim.api_url()))
        .await
        .expect("named")
        .json()
        .await
        .expect("json");
    println!(
        "  friendship edges {}, follow edges {}, hub friends {}",
        named["friendship_edges"], named["follow_edges"], named["hub_friends"]
    );
    let g = sim.graph();
    let mut degrees: Vec<usize> = (1..=g.n_users()).map(|id| g.friends.of(id).len()).collect();
    degrees.sort_unstable();
    let pct = |p: f64| degrees[((degrees.len() - 1) as f64 * p) as usize];
    println!(
        "  friend degree: median {}, p90 {}, p99 {}, max {}; users over 500: {}, over 5000: {}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        degrees.last().unwrap(),
        degrees.iter().filter(|&&d| d > 500).count(),
        degrees.iter().filter(|&&d| d > 5000).count()
    );
    drop(g);
    sim.shutdown().await;

    // Throughput: 64 pool tokens and a huge time scale so the rate limit never binds.
    let config = SimConfig {
        global_pool: 64,
        time_scale: 1e9,
        ..SimConfig::default()
    };
    let sim = vk_sim::spawn(config).await.expect("simulator");
    println!("load: {CLIENTS} concurrent keep-alive clients, at most {MAX_REQUESTS} requests or {MAX_TIME:?} per scenario");
    load(&sim, "utils.getServerTime", "utils.getServerTime", vec![]).await;
    load(
        &sim,
        "users.get (1 id, fields=counters)",
        "users.get",
        vec![("user_ids", "6".into()), ("fields", "counters".into())],
    )
    .await;
    load_via(
        &sim,
        "users.get through the proxy",
        "users.get",
        vec![("user_ids", "6".into()), ("fields", "counters".into())],
        true,
    )
    .await;
    load(
        &sim,
        "friends.get (user 6, ids only)",
        "friends.get",
        vec![("user_id", "6".into())],
    )
    .await;
    load(
        &sim,
        "friends.getMutual (100 target_uids)",
        "friends.getMutual",
        vec![
            ("source_uid", "6".into()),
            (
                "target_uids",
                (7..107)
                    .map(|i: u32| i.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ],
    )
    .await;
    let code = "var ids = Args.ids.split(\",\"); var i = 0, r = {}; \
        while (i < ids.length) { r[ids[i]] = API.friends.get({\"user_id\": parseInt(ids[i])}); i = i + 1; } \
        return r;";
    load(
        &sim,
        "execute (25 x friends.get)",
        "execute",
        vec![
            ("code", code.into()),
            (
                "ids",
                (7..32)
                    .map(|i: u32| i.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ],
    )
    .await;
    let stats = sim.stats();
    println!(
        "sim counted {} requests, {} inner calls, {:.1} MB out",
        stats["requests"],
        stats["inner_calls"],
        stats["bytes_out"].as_f64().unwrap_or(0.0) / 1e6
    );
    sim.shutdown().await;
}
