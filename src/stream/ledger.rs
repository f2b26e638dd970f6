//! A job's ledger: what its handler recorded as it went, kept across attempts, written only
//! under the job's lease.
//!
//! Some work must never be done twice even when the process dies between doing it and saying
//! so: a post on a community's wall is not a read that a retry repeats harmlessly. The handler
//! records each step in the ledger before and after it, and a later attempt (on any replica)
//! reads the ledger first and goes on from there. Writes run in [`super::scripts::Record`],
//! which checks the lease: an attempt whose lease passed to a peer cannot overwrite what the
//! peer records. The ledger lives beside the job's state record (`…:stage1:ledger`) with the
//! same time to live, so a redelivered entry long after the job finished still finds it.

use std::collections::HashMap;

use super::keys::JobKeys;
use super::scripts::{Fenced, Record, Scripts};
use crate::redis_conn::RedisConn;

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The job's lease is no longer this attempt's: a peer runs the job now.
    #[error("the job's lease passed to another attempt: nothing recorded")]
    LeaseLost,
}

/// One job stage's ledger, as one attempt sees it.
pub struct JobLedger {
    conn: RedisConn,
    scripts: Scripts,
    keys: JobKeys,
    lease: String,
}

impl std::fmt::Debug for JobLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobLedger")
            .field("key", &self.keys.ledger)
            .finish_non_exhaustive()
    }
}

impl JobLedger {
    pub(super) fn new(conn: RedisConn, keys: JobKeys, lease: String) -> JobLedger {
        JobLedger {
            conn,
            scripts: Scripts::new(),
            keys,
            lease,
        }
    }

    /// Every field recorded so far, by any attempt.
    pub async fn read(&self) -> Result<HashMap<String, String>, LedgerError> {
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&self.keys.ledger)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(fields)
    }

    /// Sets `pairs`, all or none, if this attempt still holds the job's lease.
    pub async fn record(&self, pairs: &[(String, String)]) -> Result<(), LedgerError> {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = pairs
            .iter()
            .map(|(k, v)| (k.clone().into_bytes(), v.clone().into_bytes()))
            .collect();
        let call = Record {
            job: &self.keys,
            lease: &self.lease,
            pairs: &pairs,
        };
        match self.scripts.record(&mut self.conn.clone(), &call).await? {
            Fenced::Done => Ok(()),
            Fenced::OwnershipLost => Err(LedgerError::LeaseLost),
        }
    }
}
