//! vk-parser's integration tests: one binary (each extra test binary would link polars and the
//! AWS SDK again). Real parts only: redis-server, an S3-protocol server, the simulator over HTTP.
//!
//! What each module proves (its own `//!` says how):
//! - `admin`: publish, inspect, dlq list and replay work through the real binary.
//! - `app`: start-up checks Redis and storage and names what is missing, the password hidden.
//! - `bad_input`: each bad input (docs/events.md) gets its documented answer; the service stays up.
//! - `chaos`: under kills, Redis restarts and faults: one final status per stage, no lease leaked;
//!   campaigns under kills (one right after a lost wall.post answer): no community posted twice.
//! - `cluster`: on a Redis Cluster every script runs (no CROSSSLOT): both stages, a dead letter.
//! - `contract`: the stages write exactly docs/data.md's tables, as the seed's readers expect.
//! - `dashboard`: every metric deploy/'s dashboard and alerting rules name is one we export.
//! - `demo`: the README's first command, then `inspect`, `export`, networkx; Ctrl-C leaves nothing.
//! - `events`: golden JSON decodes and encodes, malformed entries are refused, docs/events.md true.
//! - `poster`: campaigns through the app match `/sim/truth/posts`: every kind of community,
//!   the daily limit, a dead token, captchas, S3.
//! - `report`: whole reports through the app match `/sim/truth`.
//! - `rotation`: rotation and retry passes keep a report exact when the author's token degrades.
//! - `secrets`: no secret reaches logs, Redis, stored files or error text, jobs failing included.
//! - `settings`: defaults < file < environment, the seed's variable names, bad values' messages.
//! - `shared_rate`: the `redis` limiter keeps a shared token's limit; no Redis, no request.
//! - `storage`: the same checks pass on the local folder and on S3 (s3s-fs).
//! - `stream`: sharing, reclaiming, heartbeats, duplicates, poison, retries, Redis restart, drain.
//! - `structure`: the top-level modules of `src/` form no cycle.
//! - `tables`: pyarrow reads our parquet with the dtypes and values the backend expects.
//! - `vk`: the client over HTTP: pacing, token orchestration, execute packing, faults, proxies.
//! - `vk_methods`: typed operations match the truth; refresh, rotation, benches, static tokens.
//! - `support`: per-test servers, the app in-process, the backend's streams, `eventually`, logs.

mod admin;
mod app;
mod bad_input;
mod chaos;
mod cluster;
mod community;
mod contract;
mod dashboard;
mod demo;
mod events;
mod poster;
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
