//! The one Redis connection type the service uses, for a single server and a Redis Cluster
//! alike (`redis.cluster`).
//!
//! [`RedisTarget`] is where the settings point (one server, or the cluster's seed nodes);
//! [`RedisConn`] is a connection to it that implements [`redis::aio::ConnectionLike`], so
//! `cmd.query_async` and `Script::invoke_async` work the same in both modes. On a single server
//! ordinary commands go through a [`ConnectionManager`] (it reconnects) exactly as before the
//! cluster mode existed; in a cluster the cluster connection routes each command to the node
//! that owns its key's slot (following MOVED/ASK) and reconnects by itself.
//!
//! This module only connects: which keys share a slot (hash tags) is the key builders' concern
//! (`stream::keys`), and settings checks refuse names that would break the scripts.

use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::settings::{RedisSettings, RedisUrl};

/// Where Redis is: one server, or a cluster reached through its seed nodes.
#[derive(Clone)]
pub enum RedisTarget {
    /// One server (`redis.cluster = false`).
    Single(redis::Client),
    /// A Redis Cluster (`redis.cluster = true`); the nodes are only where discovery starts.
    /// Boxed: the cluster client is twice the size of a plain one.
    Cluster(Box<ClusterClient>),
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The clients hold the URLs, passwords included: never print them.
        f.write_str(match self {
            RedisTarget::Single(_) => "RedisTarget::Single",
            RedisTarget::Cluster(_) => "RedisTarget::Cluster",
        })
    }
}

/// Timeouts and retries of a connection; `None` keeps the redis crate's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectOptions {
    /// Longest wait for a connection to open.
    pub connection_timeout: Option<Duration>,
    /// Longest wait for one command's answer.
    pub response_timeout: Option<Duration>,
    /// Reconnect attempts of a single server's connection manager (a cluster connection
    /// reconnects and retries on its own).
    pub retries: Option<usize>,
    /// Longest pause between reconnect attempts (single server).
    pub max_delay: Option<Duration>,
}

impl RedisTarget {
    /// The target `redis.url` and `redis.cluster` name. Does not connect.
    pub fn from_settings(redis: &RedisSettings) -> RedisResult<RedisTarget> {
        if redis.cluster {
            Ok(RedisTarget::Cluster(Box::new(ClusterClient::new(
                redis.url.nodes().collect::<Vec<_>>(),
            )?)))
        } else {
            RedisTarget::single(&redis.url)
        }
    }

    /// One server at `url`. Does not connect.
    pub fn single(url: &RedisUrl) -> RedisResult<RedisTarget> {
        Ok(RedisTarget::Single(redis::Client::open(url.expose())?))
    }

    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisTarget::Cluster(_))
    }

    /// A shared, self-healing connection for ordinary (non-blocking) commands: cheap to clone,
    /// one per process is enough.
    pub async fn managed(&self, options: ConnectOptions) -> RedisResult<RedisConn> {
        match self {
            RedisTarget::Single(client) => {
                let mut config = ConnectionManagerConfig::new();
                if let Some(t) = options.connection_timeout {
                    config = config.set_connection_timeout(Some(t));
                }
                if let Some(t) = options.response_timeout {
                    config = config.set_response_timeout(Some(t));
                }
                if let Some(n) = options.retries {
                    config = config.set_number_of_retries(n);
                }
                if let Some(d) = options.max_delay {
                    config = config.set_max_delay(d);
                }
                let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
                Ok(RedisConn::Managed(conn))
            }
            RedisTarget::Cluster(client) => cluster(client, options).await,
        }
    }

    /// A connection of its own, not shared with other work: for a blocking command (give it a
    /// response timeout longer than the block time) or a short-lived operator command.
    pub async fn dedicated(&self, options: ConnectOptions) -> RedisResult<RedisConn> {
        match self {
            RedisTarget::Single(client) => {
                let mut config = AsyncConnectionConfig::new();
                if let Some(t) = options.connection_timeout {
                    config = config.set_connection_timeout(Some(t));
                }
                if let Some(t) = options.response_timeout {
                    config = config.set_response_timeout(Some(t));
                }
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(RedisConn::Direct(conn))
            }
            // A separate cluster connection has its own node connections, so a blocking read
            // on it never holds up the commands of the managed one.
            RedisTarget::Cluster(client) => cluster(client, options).await,
        }
    }
}

async fn cluster(client: &ClusterClient, options: ConnectOptions) -> RedisResult<RedisConn> {
    let mut config = ClusterConfig::new();
    if let Some(t) = options.connection_timeout {
        config = config.set_connection_timeout(t);
    }
    if let Some(t) = options.response_timeout {
        config = config.set_response_timeout(t);
    }
    let conn = client.get_async_connection_with_config(config).await?;
    Ok(RedisConn::Cluster(conn))
}

/// A connection to a [`RedisTarget`]; cheap to clone (clones share the underlying connection).
#[derive(Clone)]
pub enum RedisConn {
    /// A single server, through a reconnecting manager.
    Managed(ConnectionManager),
    /// A single server, one multiplexed connection (blocking reads, operator commands).
    Direct(MultiplexedConnection),
    /// A cluster: commands are routed by their keys' slot.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisConn::Managed(_) => "RedisConn::Managed",
            RedisConn::Direct(_) => "RedisConn::Direct",
            RedisConn::Cluster(_) => "RedisConn::Cluster",
        })
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Managed(c) => c.req_packed_command(cmd),
            RedisConn::Direct(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Managed(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Direct(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Managed(c) => c.get_db(),
            RedisConn::Direct(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}
