//! The Lua scripts that make job state changes atomic and fenced.
//!
//! Redis runs a script as one command, so a check ("does this consumer still own the entry?")
//! and the writes that depend on it cannot be separated by a peer's reclaim. Every script that
//! acknowledges or publishes a final result starts with that ownership check (`XPENDING` on the
//! one entry): a consumer that lost its entry to a peer can no longer publish or acknowledge.
//!
//! Keys used (see [`super::keys::JobKeys`]): the input stream, the output streams, a job's state record
//! (a hash per job and stage) and its lease (one string per job, shared by both stages, so
//! stage 1 and stage 2 of one job never run at once). A lease's value is
//! `{entry id}|{consumer}|{stage}`: entry ids never contain `|`, so the entry is what precedes
//! the first one.

use redis::Script;

/// How long a finished job's state record is kept (deduplicates late redeliveries).
pub const STATE_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

/// Takes a job's lease for an entry and counts the attempt.
///
/// KEYS: lease, state. ARGV: lease value, entry id, ttl ms, now ms, consumer, state ttl ms.
/// Returns the attempt number, -1 when another entry holds the lease, -2 when the job and stage
/// already finished.
pub fn acquire() -> Script {
    Script::new(ACQUIRE_SOURCE)
}

/// The Lua source of [`acquire`].
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

/// Keeps a running job's entry and lease alive, if this consumer still owns both.
///
/// KEYS: stream, lease. ARGV: group, consumer, entry id, lease value, ttl ms.
/// Returns 1, or 0 when ownership was lost (the job must stop).
pub fn heartbeat() -> Script {
    Script::new(HEARTBEAT_SOURCE)
}

/// The Lua source of [`heartbeat`].
pub const HEARTBEAT_SOURCE: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
if redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
"#;

/// Publishes a job's final status (and GraphReady, and a dead letter, when given), marks the
/// state record final, acknowledges the entry and drops the lease: all or nothing, and only if
/// this consumer still owns the entry.
///
/// KEYS: stream, status stream, graph stream, state, lease, dead-letter stream.
/// ARGV: group, consumer, entry id, lease value, maxlen, final state, result prefix, now ms,
/// status payload, GraphReady payload ('' for none), state ttl ms, then dead-letter field/value
/// pairs (none for no dead letter).
/// Returns 1 when published, 2 when the job had already finished (acknowledged only), 0 when
/// ownership was lost (nothing done).
pub fn finish() -> Script {
    Script::new(FINISH_SOURCE)
}

/// The Lua source of [`finish`].
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

/// Dead-letters an entry that is not a valid event, with an optional FAILED status, and
/// acknowledges it, if this consumer still owns it.
///
/// KEYS: stream, dead-letter stream, status stream. ARGV: group, consumer, entry id, maxlen,
/// status payload ('' for none), then dead-letter field/value pairs.
/// Returns 1, or 0 when ownership was lost.
pub fn dead_letter() -> Script {
    Script::new(DEAD_LETTER_SOURCE)
}

/// The Lua source of [`dead_letter`].
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

/// Gives a job's lease back after a failed or interrupted attempt, recording why, so the entry
/// can be retried (by anyone) once it is reclaimed. An attempt stopped by a shutdown gives its
/// attempt back: a drain is not the job's fault, and a few rolling deploys during one long job
/// must not use up `max_retries`.
///
/// KEYS: lease, state. ARGV: lease value, last reason ('' to keep), last message, '1' to give
/// the attempt back.
pub fn release() -> Script {
    Script::new(RELEASE_SOURCE)
}

/// The Lua source of [`release`].
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

/// Forgets a job stage's `failed` state, so a replayed dead letter runs again instead of being
/// acknowledged as a duplicate of a finished stage; a `completed` stage is never touched.
///
/// KEYS: state. Returns 1 when forgotten, 0 otherwise.
pub fn forget_failed() -> Script {
    Script::new(FORGET_FAILED_SOURCE)
}

/// The Lua source of [`forget_failed`].
pub const FORGET_FAILED_SOURCE: &str = r#"
if redis.call('HGET', KEYS[1], 'state') == 'failed' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;
