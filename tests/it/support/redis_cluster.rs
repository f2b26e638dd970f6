//! A private three-node Redis Cluster per test: three `redis-server` processes in cluster mode
//! on free loopback ports, each in its own temp folder, joined by `redis-cli --cluster create`
//! (no replicas), all killed when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running three-master cluster owned by one test.
pub struct RedisCluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts three nodes, creates the cluster and waits until every node says cluster_state:ok.
    pub fn start() -> RedisCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = free_ports(3);
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            ports: ports.clone(),
            _dir: dir,
        };
        for port in &ports {
            let node_dir = cluster._dir.path().join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(node_dir.join(format!("nodes-{port}.conf")))
                .args(["--save", "", "--appendonly", "no", "--dir"])
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start redis-server ({e}): run ./scripts/test.sh, which installs \
                         it, or `apt-get install -y redis-server`"
                    )
                });
            cluster.nodes.push(child);
        }
        for port in &ports {
            wait_until(&format!("node {port} answers PING"), || {
                query(*port, &["PING"]).is_some_and(|r| r == "PONG")
            });
        }
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs (it comes with redis-server)");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        for port in &ports {
            wait_until(&format!("node {port} reports cluster_state:ok"), || {
                query(*port, &["CLUSTER", "INFO"])
                    .is_some_and(|info| info.contains("cluster_state:ok"))
            });
        }
        cluster
    }

    /// The node URLs as a comma list, for REDIS_URL in cluster mode.
    pub fn url(&self) -> String {
        self.node_urls().join(",")
    }

    /// Each node's `redis://127.0.0.1:port`.
    pub fn node_urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// A cluster connection for the test's own reads and writes.
    pub async fn connection(&self) -> redis::cluster_async::ClusterConnection {
        redis::cluster::ClusterClient::new(self.node_urls())
            .expect("cluster client")
            .get_async_connection()
            .await
            .expect("cluster connection")
    }
}

/// A command on one node (synchronously): its text answer, `None` when the node does not answer.
fn query(port: u16, args: &[&str]) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    let mut cmd = redis::cmd(args[0]);
    cmd.arg(&args[1..]);
    cmd.query::<String>(&mut conn).ok()
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis cluster: not ready within 20s: {what}");
}

/// `count` free loopback ports whose cluster bus ports (port + 10000) are free too.
fn free_ports(count: usize) -> Vec<u16> {
    let mut ports = Vec::new();
    // The listeners stay open until all are chosen, so no port is picked twice.
    let mut held = Vec::new();
    while ports.len() < count {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local addr").port();
        let Some(bus) = port.checked_add(10000) else {
            continue;
        };
        let Ok(bus_listener) = TcpListener::bind(("127.0.0.1", bus)) else {
            continue;
        };
        ports.push(port);
        held.push(listener);
        held.push(bus_listener);
    }
    ports
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}
