//! Real servers for tests, each private to the test that starts it, and the one way to drive
//! the service through its streams.
//!
//! - [`service::Service`] is `spawn_app`: the whole app in-process on its own redis-server,
//!   storage folder and the simulator ([`sim::start`]); it runs a report's stages for a test.
//! - [`backend::Streams`] publishes events and waits for a job's statuses, on any Redis (the
//!   cluster's tagged streams too); [`wait::eventually`] waits for any other condition, in place
//!   of sleeping for a time tied to a setting.
//! - `TEST_LOG=1 cargo test --test it <name>` shows the logs of the services a failing test ran
//!   (`RUST_LOG` picks the level, `info` by default; add `-- --nocapture` to see a passing
//!   test's too): see [`logs`], which otherwise keeps them in memory for the tests that read them.

pub mod backend;
pub mod logs;
pub mod redis_cluster;
pub mod redis_server;
pub mod s3_server;
pub mod service;
pub mod sim;
pub mod wait;

use std::collections::HashMap;

/// An environment map from pairs (settings take the environment as a map, not from the process).
pub fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
