//! vk-parser's integration tests: one binary (each extra test binary would link polars and the
//! AWS SDK again). Real parts only: redis-server, an S3-protocol server, the simulator over HTTP.

mod admin;
mod app;
mod bad_input;
mod chaos;
mod cluster;
mod contract;
mod dashboard;
mod demo;
mod events;
mod report;
mod rotation;
mod secrets;
mod settings;
mod shared_rate;
mod storage;
mod stream;
mod structure;
mod support;
mod tables;
mod vk;
mod vk_methods;
