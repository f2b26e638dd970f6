//! The consumer's Redis records, each field named once: a job stage's state hash
//! (`{prefix}:job:{jobId}:stage{n}`) and a dead letter (an entry of `{input}:dead`).
//!
//! The Lua scripts in [`super::scripts`] write the state hash with these same names as string
//! literals (Lua cannot import a Rust constant); a unit test below checks that every field named
//! here is one the scripts write, so a renamed field fails the build's tests, not production.

/// The fields of a job stage's state hash.
pub mod job_state {
    /// `running`, `retrying`, `completed` or `failed` ([`State`]).
    pub const STATE: &str = "state";
    /// Attempts started (1 for the first).
    pub const ATTEMPT: &str = "attempt";
    /// The consumer running the current attempt.
    pub const OWNER: &str = "owner";
    /// The stream entry id of the current attempt.
    pub const ENTRY: &str = "entry";
    /// When the current attempt started (unix ms).
    pub const STARTED_AT: &str = "started_at";
    /// When the stage finished (unix ms).
    pub const FINISHED_AT: &str = "finished_at";
    /// The stage's prefix when it completed (what stage 2 reads of stage 1), or empty.
    pub const RESULT: &str = "result";
    /// The `FailureReason` of the last failed attempt.
    pub const LAST_REASON: &str = "last_reason";
    /// The message of the last failed attempt.
    pub const LAST_ERROR: &str = "last_error";

    /// Every field, for the check against the scripts.
    pub const ALL: [&str; 9] = [
        STATE,
        ATTEMPT,
        OWNER,
        ENTRY,
        STARTED_AT,
        FINISHED_AT,
        RESULT,
        LAST_REASON,
        LAST_ERROR,
    ];

    /// The values of [`STATE`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum State {
        /// An attempt is under way.
        Running,
        /// An attempt failed and another may follow.
        Retrying,
        /// Final: completed.
        Completed,
        /// Final: failed for good.
        Failed,
    }

    impl State {
        /// The value as stored.
        pub fn as_str(self) -> &'static str {
            match self {
                State::Running => "running",
                State::Retrying => "retrying",
                State::Completed => "completed",
                State::Failed => "failed",
            }
        }

        /// The stored value read back; `None` for anything else.
        pub fn parse(raw: &str) -> Option<State> {
            [
                State::Running,
                State::Retrying,
                State::Completed,
                State::Failed,
            ]
            .into_iter()
            .find(|s| s.as_str() == raw)
        }
    }
}

/// The fields a dead letter adds to the original entry's (which it keeps, long values cut).
pub mod dead_letter {
    /// Why the entry was dead-lettered.
    pub const ERROR: &str = "dead_error";
    /// The original entry's id on the input stream.
    pub const ENTRY_ID: &str = "dead_entry_id";
    /// How often the entry was delivered (XPENDING).
    pub const DELIVERY_COUNT: &str = "dead_delivery_count";
    /// The consumer that dead-lettered it.
    pub const CONSUMER: &str = "dead_consumer";
    /// When (RFC 3339, UTC, milliseconds).
    pub const AT: &str = "dead_at";
    /// After a value that was cut: its original size (`"{n} bytes"`).
    pub const TRUNCATED: &str = "dead_truncated";

    /// Longest original value kept in a dead letter.
    pub const MAX_VALUE: usize = 64 * 1024;

    /// The dead letter's fields: ours first, then the original entry's, each value over
    /// [`MAX_VALUE`] cut and followed by a [`TRUNCATED`] field with its size.
    pub fn fields(
        error: &str,
        entry_id: &str,
        delivery_count: i64,
        consumer: &str,
        at: &str,
        original: &[(Vec<u8>, Vec<u8>)],
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let own = |k: &str, v: &str| (k.as_bytes().to_vec(), v.as_bytes().to_vec());
        let mut fields = vec![
            own(ERROR, error),
            own(ENTRY_ID, entry_id),
            own(DELIVERY_COUNT, &delivery_count.to_string()),
            own(CONSUMER, consumer),
            own(AT, at),
        ];
        for (k, v) in original {
            if v.len() > MAX_VALUE {
                fields.push((k.clone(), v[..MAX_VALUE].to_vec()));
                fields.push(own(TRUNCATED, &format!("{} bytes", v.len())));
            } else {
                fields.push((k.clone(), v.clone()));
            }
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_write_every_state_field_and_value() {
        let scripts: String = [
            crate::stream::scripts::ACQUIRE_SOURCE,
            crate::stream::scripts::FINISH_SOURCE,
            crate::stream::scripts::RELEASE_SOURCE,
            crate::stream::scripts::FORGET_FAILED_SOURCE,
        ]
        .concat();
        for field in job_state::ALL {
            assert!(scripts.contains(&format!("'{field}'")), "{field}");
        }
        use job_state::State;
        for state in [State::Running, State::Retrying, State::Failed] {
            assert!(
                scripts.contains(&format!("'{}'", state.as_str())),
                "{state:?}"
            );
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        assert_eq!(State::parse("completed"), Some(State::Completed));
        assert_eq!(State::parse("done"), None);
    }

    #[test]
    fn dead_letters_keep_the_entry_and_cut_long_values() {
        let long = vec![b'x'; dead_letter::MAX_VALUE + 1];
        let original = vec![
            (b"event_type".to_vec(), b"ReportCreated".to_vec()),
            (b"payload".to_vec(), long),
        ];
        let fields = dead_letter::fields("bad", "1-0", 2, "c1", "now", &original);
        let names: Vec<&[u8]> = fields.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(
            names,
            [
                b"dead_error".as_slice(),
                b"dead_entry_id",
                b"dead_delivery_count",
                b"dead_consumer",
                b"dead_at",
                b"event_type",
                b"payload",
                b"dead_truncated"
            ]
        );
        assert_eq!(fields[6].1.len(), dead_letter::MAX_VALUE);
        assert_eq!(
            fields[7].1,
            format!("{} bytes", dead_letter::MAX_VALUE + 1).into_bytes()
        );
    }
}
