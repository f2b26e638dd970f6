//! The Lua scripts that make job state changes atomic and fenced, each with the one Rust type
//! that owns its KEYS and ARGV order and decodes its reply.
//!
//! Redis runs a script as one command, so a check ("does this consumer still own the entry?")
//! and the writes that depend on it cannot be separated by a peer's reclaim. Every script that
//! acknowledges or publishes a final result starts with that ownership check (`XPENDING` on the
//! one entry): a consumer that lost its entry to a peer can no longer publish or acknowledge.
//!
//! Keys used (see [`super::keys::JobKeys`]): the input stream, the output streams, a job's state
//! record (a hash per job and stage, fields in [`super::records::job_state`]) and its lease (one
//! string per job, shared by both stages, so stage 1 and stage 2 of one job never run at once).
//! A lease's value is `{entry id}|{consumer}|{stage}`: entry ids never contain `|`, so the entry
//! is what precedes the first one.
//!
//! A call is a struct whose fields are the script's inputs; its `invocation` lays them out as
//! KEYS and ARGV in the order the Lua source reads them, and nothing else builds that order.
//! Replies are small integers decoded into one enum per script; a reply the script never sends
//! decodes to the reading that does nothing (held elsewhere, ownership lost), never to success.
//!
//! The file runs past 600 lines only for its unit tests, which sit next to the code they pin;
//! the code is about 530 lines.

use redis::{RedisResult, Script};

use super::keys::{JobKeys, StreamNames};
use super::records::job_state::State;
use crate::events::FailureReason;
use crate::redis_conn::RedisConn;

/// How long a finished job's state record is kept (deduplicates late redeliveries).
pub const STATE_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

/// A script's inputs as Redis receives them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// KEYS, in order.
    pub keys: Vec<String>,
    /// ARGV, in order.
    pub argv: Vec<Vec<u8>>,
}

impl Invocation {
    fn key(mut self, key: &str) -> Self {
        self.keys.push(key.to_owned());
        self
    }

    fn arg(mut self, arg: impl ToString) -> Self {
        self.argv.push(arg.to_string().into_bytes());
        self
    }

    fn pairs(mut self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Self {
        for (k, v) in pairs {
            self.argv.push(k.clone());
            self.argv.push(v.clone());
        }
        self
    }
}

/// The service's scripts, loaded once per consumer (each is sent by its SHA1 after the first
/// call).
pub struct Scripts {
    acquire: Script,
    heartbeat: Script,
    finish: Script,
    dead_letter: Script,
    release: Script,
    forget_failed: Script,
    record: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

impl Scripts {
    /// Every script, ready to run.
    pub fn new() -> Scripts {
        Scripts {
            acquire: Script::new(ACQUIRE_SOURCE),
            heartbeat: Script::new(HEARTBEAT_SOURCE),
            finish: Script::new(FINISH_SOURCE),
            dead_letter: Script::new(DEAD_LETTER_SOURCE),
            release: Script::new(RELEASE_SOURCE),
            forget_failed: Script::new(FORGET_FAILED_SOURCE),
            record: Script::new(RECORD_SOURCE),
        }
    }

    /// Runs [`ACQUIRE_SOURCE`].
    pub async fn acquire(&self, conn: &mut RedisConn, call: &Acquire<'_>) -> RedisResult<Acquired> {
        run(&self.acquire, conn, call.invocation())
            .await
            .map(Acquired::from_reply)
    }

    /// Runs [`HEARTBEAT_SOURCE`].
    pub async fn heartbeat(&self, conn: &mut RedisConn, call: &Heartbeat<'_>) -> RedisResult<Beat> {
        run(&self.heartbeat, conn, call.invocation())
            .await
            .map(Beat::from_reply)
    }

    /// Runs [`FINISH_SOURCE`].
    pub async fn finish(&self, conn: &mut RedisConn, call: &Finish<'_>) -> RedisResult<Finished> {
        run(&self.finish, conn, call.invocation())
            .await
            .map(Finished::from_reply)
    }

    /// Runs [`DEAD_LETTER_SOURCE`].
    pub async fn dead_letter(
        &self,
        conn: &mut RedisConn,
        call: &DeadLetter<'_>,
    ) -> RedisResult<Fenced> {
        run(&self.dead_letter, conn, call.invocation())
            .await
            .map(Fenced::from_reply)
    }

    /// Runs [`RELEASE_SOURCE`].
    pub async fn release(&self, conn: &mut RedisConn, call: &Release<'_>) -> RedisResult<Released> {
        run(&self.release, conn, call.invocation())
            .await
            .map(Released::from_reply)
    }

    /// Runs [`RECORD_SOURCE`].
    pub async fn record(&self, conn: &mut RedisConn, call: &Record<'_>) -> RedisResult<Fenced> {
        run(&self.record, conn, call.invocation())
            .await
            .map(Fenced::from_reply)
    }

    /// Runs [`FORGET_FAILED_SOURCE`]: true when a failed state was forgotten.
    pub async fn forget_failed(&self, conn: &mut RedisConn, job: &JobKeys) -> RedisResult<bool> {
        let invocation = Invocation::default().key(&job.state);
        run(&self.forget_failed, conn, invocation)
            .await
            .map(|n| n == 1)
    }
}

async fn run(script: &Script, conn: &mut RedisConn, call: Invocation) -> RedisResult<i64> {
    let mut invocation = script.prepare_invoke();
    for key in &call.keys {
        invocation.key(key);
    }
    for arg in &call.argv {
        invocation.arg(arg.as_slice());
    }
    invocation.invoke_async(conn).await
}

/// Takes a job's lease for an entry and counts the attempt ([`ACQUIRE_SOURCE`]).
#[derive(Debug, Clone)]
pub struct Acquire<'a> {
    /// The job stage's keys.
    pub job: &'a JobKeys,
    /// The lease value to set.
    pub lease: &'a str,
    /// The entry being run.
    pub entry_id: &'a str,
    /// The lease's time to live.
    pub lease_ttl_ms: u64,
    /// Now, in ms since the epoch (recorded as `started_at`).
    pub now_ms: u64,
    /// This consumer (recorded as `owner`).
    pub consumer: &'a str,
}

impl Acquire<'_> {
    /// KEYS: lease, state. ARGV: lease value, entry id, ttl ms, now ms, consumer, state ttl ms.
    pub fn invocation(&self) -> Invocation {
        Invocation::default()
            .key(&self.job.lease)
            .key(&self.job.state)
            .arg(self.lease)
            .arg(self.entry_id)
            .arg(self.lease_ttl_ms)
            .arg(self.now_ms)
            .arg(self.consumer)
            .arg(STATE_TTL_MS)
    }
}

/// What [`Acquire`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The lease is ours; this is attempt number n (from 1).
    Attempt(u32),
    /// Another entry holds the job's lease.
    HeldElsewhere,
    /// The job stage already finished (completed or failed).
    AlreadyFinished,
}

impl Acquired {
    /// Decodes the script's reply: the attempt, -1 held elsewhere, -2 already finished.
    pub fn from_reply(reply: i64) -> Acquired {
        match reply {
            -2 => Acquired::AlreadyFinished,
            n if n >= 1 => Acquired::Attempt(u32::try_from(n).unwrap_or(u32::MAX)),
            _ => Acquired::HeldElsewhere,
        }
    }
}

/// Keeps a running job's entry and lease alive, if this consumer still owns both
/// ([`HEARTBEAT_SOURCE`]).
#[derive(Debug, Clone)]
pub struct Heartbeat<'a> {
    /// The streams and group.
    pub names: &'a StreamNames,
    /// The job stage's keys.
    pub job: &'a JobKeys,
    /// The entry being run.
    pub entry_id: &'a str,
    /// The lease value this attempt set.
    pub lease: &'a str,
    /// The lease's new time to live.
    pub lease_ttl_ms: u64,
}

impl Heartbeat<'_> {
    /// KEYS: stream, lease. ARGV: group, consumer, entry id, lease value, ttl ms.
    pub fn invocation(&self) -> Invocation {
        Invocation::default()
            .key(&self.names.input)
            .key(&self.job.lease)
            .arg(&self.names.group)
            .arg(&self.names.consumer)
            .arg(self.entry_id)
            .arg(self.lease)
            .arg(self.lease_ttl_ms)
    }
}

/// What [`Heartbeat`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Entry and lease are still ours, and refreshed.
    Alive,
    /// A peer owns the entry or the lease: the job must stop.
    Lost,
}

impl Beat {
    /// Decodes the script's reply: 1 alive, anything else lost.
    pub fn from_reply(reply: i64) -> Beat {
        if reply == 1 {
            Beat::Alive
        } else {
            Beat::Lost
        }
    }
}

/// Publishes a job's final status (and GraphReady, and a dead letter, when given), marks the
/// state record final, acknowledges the entry and drops the lease: all or nothing, and only if
/// this consumer still owns the entry ([`FINISH_SOURCE`]).
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    /// The streams and group.
    pub names: &'a StreamNames,
    /// The job stage's keys.
    pub job: &'a JobKeys,
    /// The entry being run.
    pub entry_id: &'a str,
    /// The lease value this attempt set.
    pub lease: &'a str,
    /// Approximate MAXLEN of the output streams.
    pub maxlen: u64,
    /// `Completed` or `Failed`.
    pub state: State,
    /// The stage's storage prefix ('' for a failure), recorded as `result`.
    pub result: &'a str,
    /// Now, in ms since the epoch (recorded as `finished_at`).
    pub now_ms: u64,
    /// The final StatusUpdate, as JSON.
    pub status: &'a str,
    /// The GraphReady event, as JSON, after a stage 2.
    pub graph: Option<&'a str>,
    /// The dead letter's field/value pairs; empty for none.
    pub dead_letter: &'a [(Vec<u8>, Vec<u8>)],
}

impl Finish<'_> {
    /// KEYS: stream, status stream, graph stream, state, lease, dead-letter stream.
    /// ARGV: group, consumer, entry id, lease value, maxlen, final state, result prefix, now ms,
    /// status payload, GraphReady payload ('' for none), state ttl ms, then the dead letter's
    /// field/value pairs.
    pub fn invocation(&self) -> Invocation {
        Invocation::default()
            .key(&self.names.input)
            .key(&self.names.status)
            .key(&self.names.graph)
            .key(&self.job.state)
            .key(&self.job.lease)
            .key(&self.names.dead)
            .arg(&self.names.group)
            .arg(&self.names.consumer)
            .arg(self.entry_id)
            .arg(self.lease)
            .arg(self.maxlen)
            .arg(self.state.as_str())
            .arg(self.result)
            .arg(self.now_ms)
            .arg(self.status)
            .arg(self.graph.unwrap_or(""))
            .arg(STATE_TTL_MS)
            .pairs(self.dead_letter)
    }
}

/// What [`Finish`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Published, recorded, acknowledged.
    Published,
    /// The stage had already finished: acknowledged only.
    AlreadyFinished,
    /// A peer owns the entry: nothing done.
    OwnershipLost,
}

impl Finished {
    /// Decodes the script's reply: 1 published, 2 already finished, anything else lost.
    pub fn from_reply(reply: i64) -> Finished {
        match reply {
            1 => Finished::Published,
            2 => Finished::AlreadyFinished,
            _ => Finished::OwnershipLost,
        }
    }
}

/// Dead-letters an entry that is not a valid event, with an optional FAILED status, and
/// acknowledges it, if this consumer still owns it ([`DEAD_LETTER_SOURCE`]).
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    /// The streams and group.
    pub names: &'a StreamNames,
    /// The entry.
    pub entry_id: &'a str,
    /// Approximate MAXLEN of the output streams.
    pub maxlen: u64,
    /// A FAILED StatusUpdate as JSON, when the entry's ids could be read.
    pub status: Option<&'a str>,
    /// The dead letter's field/value pairs.
    pub fields: &'a [(Vec<u8>, Vec<u8>)],
}

impl DeadLetter<'_> {
    /// KEYS: stream, dead-letter stream, status stream. ARGV: group, consumer, entry id, maxlen,
    /// status payload ('' for none), then the dead letter's field/value pairs.
    pub fn invocation(&self) -> Invocation {
        Invocation::default()
            .key(&self.names.input)
            .key(&self.names.dead)
            .key(&self.names.status)
            .arg(&self.names.group)
            .arg(&self.names.consumer)
            .arg(self.entry_id)
            .arg(self.maxlen)
            .arg(self.status.unwrap_or(""))
            .pairs(self.fields)
    }
}

/// What a fenced write that has no other outcome answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fenced {
    /// Written and acknowledged.
    Done,
    /// A peer owns the entry: nothing done.
    OwnershipLost,
}

impl Fenced {
    /// Decodes the script's reply: 1 done, anything else lost.
    pub fn from_reply(reply: i64) -> Fenced {
        if reply == 1 {
            Fenced::Done
        } else {
            Fenced::OwnershipLost
        }
    }
}

/// Gives a job's lease back after a failed or interrupted attempt, recording why, so the entry
/// can be retried (by anyone) once it is reclaimed ([`RELEASE_SOURCE`]). An attempt stopped by a
/// shutdown gives its attempt back: a drain is not the job's fault, and a few rolling deploys
/// during one long job must not use up `max_retries`.
#[derive(Debug, Clone)]
pub struct Release<'a> {
    /// The job stage's keys.
    pub job: &'a JobKeys,
    /// The lease value this attempt set.
    pub lease: &'a str,
    /// Why the attempt failed, recorded as `last_reason`/`last_error`; `None` keeps them.
    pub failure: Option<(FailureReason, &'a str)>,
    /// Whether the attempt is given back (not counted against `max_retries`).
    pub give_back_attempt: bool,
}

impl Release<'_> {
    /// KEYS: lease, state. ARGV: lease value, last reason ('' to keep), last message, '1' to give
    /// the attempt back.
    pub fn invocation(&self) -> Invocation {
        let (reason, message) = self
            .failure
            .map(|(reason, message)| (reason.as_str(), message))
            .unwrap_or(("", ""));
        Invocation::default()
            .key(&self.job.lease)
            .key(&self.job.state)
            .arg(self.lease)
            .arg(reason)
            .arg(message)
            .arg(if self.give_back_attempt { "1" } else { "0" })
    }
}

/// Writes fields of a job's ledger if this attempt still holds the job's lease
/// ([`RECORD_SOURCE`]): a consumer whose lease passed to a peer cannot overwrite what the peer
/// records.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// The job stage's keys.
    pub job: &'a JobKeys,
    /// The lease value this attempt set.
    pub lease: &'a str,
    /// Field/value pairs to set.
    pub pairs: &'a [(Vec<u8>, Vec<u8>)],
}

impl Record<'_> {
    /// KEYS: lease, ledger. ARGV: lease value, ledger ttl ms, then the field/value pairs.
    pub fn invocation(&self) -> Invocation {
        Invocation::default()
            .key(&self.job.lease)
            .key(&self.job.ledger)
            .arg(self.lease)
            .arg(STATE_TTL_MS)
            .pairs(self.pairs)
    }
}

/// What [`Release`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The lease was ours and is gone.
    Released,
    /// The lease had expired or a peer holds it: left alone.
    NotHeld,
}

impl Released {
    /// Decodes the script's reply: 1 released, anything else not held.
    pub fn from_reply(reply: i64) -> Released {
        if reply == 1 {
            Released::Released
        } else {
            Released::NotHeld
        }
    }
}

/// The Lua source of [`Acquire`]: replies the attempt number, -1 when another entry holds the
/// lease, -2 when the job stage already finished.
pub const ACQUIRE_SOURCE: &str = r#"
local held = redis.call('GET', KEYS[1])
if held then
  local cut = string.find(held, '|', 1, true)
  if not cut or string.sub(held, 1, cut - 1) ~= ARGV[2] then return -1 end
end
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'completed' or state == 'failed' then return -2 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
local attempt = redis.call('HINCRBY', KEYS[2], 'attempt', 1)
redis.call('HSET', KEYS[2], 'state', 'running', 'owner', ARGV[5], 'entry', ARGV[2], 'started_at', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return attempt
"#;

/// The Lua source of [`Heartbeat`]: replies 1, or 0 when ownership was lost.
pub const HEARTBEAT_SOURCE: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
if redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
"#;

/// The Lua source of [`Finish`]: replies 1 when published, 2 when the job had already finished
/// (acknowledged only), 0 when ownership was lost (nothing done).
pub const FINISH_SOURCE: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
local state = redis.call('HGET', KEYS[4], 'state')
if state == 'completed' or state == 'failed' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
  return 2
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'event_type', 'StatusUpdate', 'payload', ARGV[9])
if ARGV[10] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'event_type', 'GraphReady', 'payload', ARGV[10])
end
if #ARGV > 11 then
  local dead = {}
  for i = 12, #ARGV do dead[#dead + 1] = ARGV[i] end
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[5], '*', unpack(dead))
end
redis.call('HSET', KEYS[4], 'state', ARGV[6], 'finished_at', ARGV[8], 'result', ARGV[7])
redis.call('PEXPIRE', KEYS[4], ARGV[11])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
if redis.call('GET', KEYS[5]) == ARGV[4] then redis.call('DEL', KEYS[5]) end
return 1
"#;

/// The Lua source of [`DeadLetter`]: replies 1, or 0 when ownership was lost.
pub const DEAD_LETTER_SOURCE: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
local dead = {}
for i = 6, #ARGV do dead[#dead + 1] = ARGV[i] end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', unpack(dead))
if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'event_type', 'StatusUpdate', 'payload', ARGV[5])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
return 1
"#;

/// The Lua source of [`Release`]: replies 1 when the lease was ours and is dropped, else 0.
pub const RELEASE_SOURCE: &str = r#"
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[2], 'state', 'retrying', 'last_reason', ARGV[2], 'last_error', ARGV[3])
end
if ARGV[4] == '1' and tonumber(redis.call('HGET', KEYS[2], 'attempt') or '0') > 0 then
  redis.call('HINCRBY', KEYS[2], 'attempt', -1)
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

/// The Lua source of [`Record`]: replies 1 when written, 0 when the lease is not this
/// attempt's (nothing written).
pub const RECORD_SOURCE: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"#;

/// The Lua source of [`Scripts::forget_failed`]: forgets a job stage's `failed` state, so a
/// replayed dead letter runs again instead of being acknowledged as a duplicate of a finished
/// stage; a `completed` stage is never touched. KEYS: state. Replies 1 when forgotten, else 0.
pub const FORGET_FAILED_SOURCE: &str = r#"
if redis.call('HGET', KEYS[1], 'state') == 'failed' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{JobId, Stage};

    /// The highest `{table}[n]` the Lua source reads: the fixed part of its inputs.
    fn highest(source: &str, table: &str) -> usize {
        let needle = format!("{table}[");
        source
            .match_indices(&needle)
            .filter_map(|(at, _)| {
                let rest = &source[at + needle.len()..];
                rest[..rest.find(']')?].parse::<usize>().ok()
            })
            .max()
            .unwrap_or(0)
    }

    fn names() -> StreamNames {
        StreamNames {
            input: "in".into(),
            dead: "in:dead".into(),
            status: "status".into(),
            graph: "graph".into(),
            group: "g".into(),
            consumer: "c1".into(),
            key_prefix: "vkp".into(),
        }
    }

    fn job() -> JobKeys {
        names().job(&JobId::parse("j1").unwrap(), Stage::One)
    }

    fn text(argv: &[Vec<u8>]) -> Vec<String> {
        argv.iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn each_call_gives_exactly_the_keys_and_args_its_source_reads() {
        let (names, job) = (names(), job());
        let dead = vec![(b"dead_error".to_vec(), b"bad".to_vec())];
        let cases: Vec<(&str, Invocation, usize)> = vec![
            (
                ACQUIRE_SOURCE,
                Acquire {
                    job: &job,
                    lease: "1-0|c1|1",
                    entry_id: "1-0",
                    lease_ttl_ms: 1,
                    now_ms: 2,
                    consumer: "c1",
                }
                .invocation(),
                0,
            ),
            (
                HEARTBEAT_SOURCE,
                Heartbeat {
                    names: &names,
                    job: &job,
                    entry_id: "1-0",
                    lease: "l",
                    lease_ttl_ms: 1,
                }
                .invocation(),
                0,
            ),
            (
                FINISH_SOURCE,
                Finish {
                    names: &names,
                    job: &job,
                    entry_id: "1-0",
                    lease: "l",
                    maxlen: 10,
                    state: State::Failed,
                    result: "",
                    now_ms: 3,
                    status: "{}",
                    graph: None,
                    dead_letter: &dead,
                }
                .invocation(),
                2,
            ),
            (
                DEAD_LETTER_SOURCE,
                DeadLetter {
                    names: &names,
                    entry_id: "1-0",
                    maxlen: 10,
                    status: None,
                    fields: &dead,
                }
                .invocation(),
                2,
            ),
            (
                RECORD_SOURCE,
                Record {
                    job: &job,
                    lease: "l",
                    pairs: &dead,
                }
                .invocation(),
                2,
            ),
            (
                RELEASE_SOURCE,
                Release {
                    job: &job,
                    lease: "l",
                    failure: None,
                    give_back_attempt: true,
                }
                .invocation(),
                0,
            ),
        ];
        for (source, invocation, extra) in cases {
            assert_eq!(invocation.keys.len(), highest(source, "KEYS"), "{source}");
            assert_eq!(
                invocation.argv.len(),
                highest(source, "ARGV") + extra,
                "{source}"
            );
        }
    }

    #[test]
    fn finish_lays_out_its_args_in_the_order_the_source_reads_them() {
        let (names, job) = (names(), job());
        let call = Finish {
            names: &names,
            job: &job,
            entry_id: "1-0",
            lease: "1-0|c1|1",
            maxlen: 10,
            state: State::Completed,
            result: "DEFAULT/7/j1_stage1/",
            now_ms: 3,
            status: "{\"status\":\"COMPLETED\"}",
            graph: None,
            dead_letter: &[],
        };
        let invocation = call.invocation();
        assert_eq!(
            invocation.keys,
            ["in", "status", "graph", &job.state, &job.lease, "in:dead"]
        );
        assert_eq!(
            text(&invocation.argv),
            [
                "g",
                "c1",
                "1-0",
                "1-0|c1|1",
                "10",
                "completed",
                "DEFAULT/7/j1_stage1/",
                "3",
                "{\"status\":\"COMPLETED\"}",
                "",
                &STATE_TTL_MS.to_string()
            ]
        );
        // The source reads the final state from ARGV[6] and the GraphReady payload from ARGV[10].
        assert!(FINISH_SOURCE.contains("'state', ARGV[6]"));
        assert!(FINISH_SOURCE.contains("if ARGV[10] ~= ''"));
    }

    #[test]
    fn release_records_the_reason_by_its_wire_name() {
        let job = job();
        let call = Release {
            job: &job,
            lease: "l",
            failure: Some((FailureReason::VkRateLimit, "slow down")),
            give_back_attempt: false,
        };
        assert_eq!(
            text(&call.invocation().argv),
            ["l", "VK_RATE_LIMIT", "slow down", "0"]
        );
    }

    #[test]
    fn replies_decode_and_unknown_ones_do_nothing() {
        assert_eq!(Acquired::from_reply(3), Acquired::Attempt(3));
        assert_eq!(Acquired::from_reply(-1), Acquired::HeldElsewhere);
        assert_eq!(Acquired::from_reply(-2), Acquired::AlreadyFinished);
        assert_eq!(Acquired::from_reply(0), Acquired::HeldElsewhere);
        assert_eq!(Beat::from_reply(1), Beat::Alive);
        assert_eq!(Beat::from_reply(0), Beat::Lost);
        assert_eq!(Finished::from_reply(1), Finished::Published);
        assert_eq!(Finished::from_reply(2), Finished::AlreadyFinished);
        assert_eq!(Finished::from_reply(0), Finished::OwnershipLost);
        assert_eq!(Finished::from_reply(7), Finished::OwnershipLost);
        assert_eq!(Fenced::from_reply(1), Fenced::Done);
        assert_eq!(Fenced::from_reply(0), Fenced::OwnershipLost);
        assert_eq!(Released::from_reply(1), Released::Released);
        assert_eq!(Released::from_reply(0), Released::NotHeld);
    }
}
