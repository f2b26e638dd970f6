//! Rate limiter cost per request: one acquire of the in-process guard beside one reservation of
//! the shared (Redis) limiter, at an unlimited rate so nothing ever waits and only the
//! limiter's own work is timed.
//!
//! Run: `cargo bench --profile dev --bench rate_limiter` (this machine never builds release; the
//! dev profile's figures are upper bounds). Private redis-servers are started for the run, one
//! on a unix socket and one on TCP loopback (what a replica next to its Redis would see; a
//! Redis across a network adds its round trip). Figures go to BENCHMARKS.md.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vk_parser::settings::RedisUrl;
use vk_parser::vk::rate::{PaceSettings, RpsGuard, TokenKey};
use vk_parser::vk::shared_rate::SharedLimiter;

// The tests' private redis-server, shared rather than copied.
#[allow(dead_code)]
#[path = "../tests/it/support/redis_server.rs"]
mod redis_server;

/// Timed acquires per measurement, after `WARMUP` untimed ones.
const N: usize = 20_000;
const WARMUP: usize = 1_000;

/// A redis-server on a free TCP port of 127.0.0.1, killed on drop.
struct TcpRedis {
    child: Child,
    port: u16,
}

impl TcpRedis {
    fn start() -> TcpRedis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (apt-get install -y redis-server)");
        let server = TcpRedis { child, port };
        let client = redis::Client::open(server.url()).expect("url");
        for _ in 0..500 {
            if let Ok(mut conn) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return server;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {port} did not answer");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for TcpRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Median, p99 and mean in microseconds.
fn summary(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |q: f64| us(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    let mean = us(samples.iter().sum::<Duration>()) / samples.len() as f64;
    (at(0.5), at(0.99), mean)
}

fn row(name: &str, samples: Vec<Duration>) {
    let (median, p99, mean) = summary(samples);
    println!("{name:<52} {median:>9.1} {p99:>9.1} {mean:>9.1}");
}

/// Times `op` `N` times, one after another.
async fn time<F, Fut>(mut op: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..WARMUP {
        op().await;
    }
    let mut samples = Vec::with_capacity(N);
    for _ in 0..N {
        let started = Instant::now();
        op().await;
        samples.push(started.elapsed());
    }
    samples
}

fn unlimited_guard() -> RpsGuard {
    RpsGuard::new(PaceSettings {
        interval: Duration::ZERO,
        warmup_requests: 0,
        ..PaceSettings::default()
    })
}

fn shared(url: &str) -> SharedLimiter {
    SharedLimiter::new(&RedisUrl::parse(url).expect("url"), "bench").expect("limiter")
}

/// Reservations per second from `tasks` tasks on one token through one limiter (one
/// multiplexed connection), and the median and p99 of one reservation under that load.
async fn concurrent(limiter: &SharedLimiter, tasks: usize) -> (f64, f64, f64) {
    let token = TokenKey::of("bench-token");
    let per_task = N / tasks;
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let limiter = limiter.clone();
        handles.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                let t = Instant::now();
                limiter
                    .reserve(token, Duration::ZERO)
                    .await
                    .expect("reserve");
                samples.push(t.elapsed());
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for h in handles {
        samples.extend(h.await.expect("task"));
    }
    let per_second = samples.len() as f64 / started.elapsed().as_secs_f64();
    let (median, p99, _) = summary(samples);
    (per_second, median, p99)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let unix = redis_server::RedisServer::start();
    let tcp = TcpRedis::start();
    runtime.block_on(async {
        let token = TokenKey::of("bench-token");
        println!("Rate limiter cost per request, unlimited rate (nothing waits); {N} sequential acquires each");
        println!("{:<52} {:>9} {:>9} {:>9}", "limiter", "median µs", "p99 µs", "mean µs");

        let guard = unlimited_guard();
        row(
            "local guard: acquire + drop the permit",
            time(|| {
                let guard = guard.clone();
                async move { drop(guard.acquire(token).await) }
            })
            .await,
        );

        for (transport, url) in [("unix socket", unix.url()), ("tcp 127.0.0.1", tcp.url())] {
            // The floor: one plain round trip to the same server, same client crate.
            let conn = redis::Client::open(url.as_str())
                .expect("url")
                .get_multiplexed_async_connection()
                .await
                .expect("connection");
            row(
                &format!("floor, {transport}: PING round trip"),
                time(|| {
                    let mut conn = conn.clone();
                    async move {
                        let _: String = redis::cmd("PING").query_async(&mut conn).await.expect("ping");
                    }
                })
                .await,
            );
            let limiter = shared(&url);
            row(
                &format!("shared, {transport}: one reservation (EVALSHA)"),
                time(|| {
                    let limiter = limiter.clone();
                    async move {
                        limiter.reserve(token, Duration::ZERO).await.expect("reserve");
                    }
                })
                .await,
            );
            let guard = unlimited_guard();
            row(
                &format!("redis limiter, {transport}: local + shared, as sent"),
                time(|| {
                    let (guard, limiter) = (guard.clone(), limiter.clone());
                    async move {
                        let turn = guard.queue(token).await;
                        limiter
                            .wait_turn(token, turn.spacing())
                            .await
                            .expect("reserve");
                        drop(guard.admit(turn).await);
                    }
                })
                .await,
            );
        }

        println!();
        println!("Shared limiter under concurrency: one token, one connection, tcp 127.0.0.1");
        println!("{:<12} {:>16} {:>10} {:>9}", "tasks", "reservations/s", "median µs", "p99 µs");
        let limiter = Arc::new(shared(&tcp.url()));
        for tasks in [1, 8, 64] {
            let (per_second, median, p99) = concurrent(&limiter, tasks).await;
            println!("{tasks:<12} {per_second:>16.0} {median:>10.1} {p99:>9.1}");
        }
    });
}
