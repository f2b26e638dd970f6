//! The Redis Streams side: reading job events (one consumer group per job kind) and running them as jobs
//! with at-least-once delivery, idempotent results, reclaiming of dead consumers' work, dead
//! letters and a graceful drain. `consumer` opens with "Redis Streams in brief".
//!
//! Only this module acknowledges entries.

mod attempt;
pub mod consumer;
mod dead_letters;
pub mod entry;
pub mod job;
pub mod keys;
pub mod ledger;
pub mod records;
pub mod scripts;

pub use attempt::EntryOutcome;
pub use consumer::{Consumer, StreamError};
pub use job::{JobContext, JobFailure, JobHandler, JobOutput, Progress};
pub use keys::StreamNames;
pub use ledger::{JobLedger, LedgerError};
