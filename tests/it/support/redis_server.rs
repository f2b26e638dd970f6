//! A private `redis-server` per test: its own temp folder and unix socket, killed when dropped.
//! Never a shared server: tests run in parallel. No persistence, unless a test asks for a
//! durable one (the chaos run restarts Redis and expects its streams back, as in production).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server owned by one test.
pub struct RedisServer {
    child: Child,
    dir: tempfile::TempDir,
    durable: bool,
}

impl RedisServer {
    /// Starts a server and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(false)
    }

    /// Starts a server with an append-only file synced on every write: a restart keeps every
    /// acknowledged write.
    pub fn start_durable() -> RedisServer {
        RedisServer::start_with(true)
    }

    fn start_with(durable: bool) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = spawn(&dir.path().join("redis.sock"), dir.path(), durable);
        let server = RedisServer {
            child,
            dir,
            durable,
        };
        server.wait_ready();
        server
    }

    /// Stops the server and leaves nothing listening on its socket (a Redis that is down) until
    /// [`RedisServer::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.socket());
    }

    /// Kills the server (SIGKILL) and starts a new one on the same socket: empty, or with the
    /// old data when durable (a crashed and restarted Redis).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.socket());
        self.child = spawn(&self.socket(), self.dir.path(), self.durable);
        self.wait_ready();
    }

    /// `redis+unix:///…/redis.sock`, for REDIS_URL.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url()).expect("redis url");
        while Instant::now() < deadline {
            if let Ok(mut conn) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not answer PING within 10s");
    }
}

fn spawn(socket: &std::path::Path, dir: &std::path::Path, durable: bool) -> Child {
    let persistence: &[&str] = if durable {
        &["--appendonly", "yes", "--appendfsync", "always"]
    } else {
        &["--appendonly", "no"]
    };
    Command::new("redis-server")
        .args(["--port", "0", "--unixsocket"])
        .arg(socket)
        .args(["--save", ""])
        .args(persistence)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start redis-server ({e}): run ./scripts/test.sh, which installs it, \
                 or `apt-get install -y redis-server`"
            )
        })
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
