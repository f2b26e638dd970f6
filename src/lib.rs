//! vk-parser: collects VK social graphs for reports, posts campaigns into communities, and
//! collects communities' members, posts and audiences.
//!
//! The backend publishes `ReportCreated` / `Stage2Created` on a Redis stream,
//! `SuggestPostCreated` on the poster's and `CommunityTaskCreated` on the community stream; this
//! service runs the job ([`parser`], [`poster`], [`community`]),
//! writes parquet through [`storage`], and reports on the status stream. See
//! `ARCHITECTURE.md` for the map; each module's header says what it owns.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod app;
pub mod community;
pub mod demo;
pub mod events;
pub mod export;
#[cfg(test)]
mod fuzz;
pub mod ids;
pub mod internal_events;
pub mod key;
pub mod metrics;
pub mod ops;
pub mod parser;
pub mod poster;
pub mod redis_conn;
pub mod secret;
pub mod settings;
pub mod stage_files;
pub mod storage;
pub mod stream;
pub mod tables;
pub mod telemetry;
pub mod vk;
