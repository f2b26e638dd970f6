//! Real servers for tests, each private to the test that starts it.

pub mod logs;
pub mod redis_cluster;
pub mod redis_server;
pub mod s3_server;
pub mod service;
pub mod sim;

use std::collections::HashMap;

/// An environment map from pairs (settings take the environment as a map, not from the process).
pub fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
