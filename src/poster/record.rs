//! What the campaign records per community in its job ledger, and what a later attempt makes
//! of it: the pure half of exactly-once posting, unit-tested here.
//!
//! A community's field is `g:{group id}`; it moves `sent` (written before wall.post goes out)
//! to `posted` or `skipped` (written when the answer came). A `sent` without an answer means
//! the process died, or the answer was lost, with the post maybe made: inside VK's guid window
//! the post is sent again with the same guid (VK answers the first post's id and creates
//! nothing); past it a repeat could post twice, so the community becomes `unknown` and is never
//! posted again. An uploaded attachment is recorded as `u:{index}:{group id}` = the attachment
//! string, so a retry does not upload it again.

use std::collections::HashMap;
use std::time::Duration;

use crate::ids::GroupId;

/// One community's last recorded step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// wall.post was sent at `at_ms`; no answer recorded.
    Sent {
        /// When it was sent (unix ms).
        at_ms: u64,
    },
    /// VK answered the post's id.
    Posted {
        /// The post on the community's wall.
        post_id: i64,
        /// When it was sent (unix ms).
        at_ms: u64,
    },
    /// Not posted, for a documented reason.
    Skipped {
        /// The reason (`wall_closed`, `captcha`, …).
        reason: String,
        /// VK's error code, 0 when VK gave none.
        code: i64,
    },
    /// Sent, its answer lost, and the guid window passed: whether it was posted is unknown.
    Unknown {
        /// When it was sent (unix ms).
        at_ms: u64,
    },
    /// VK refused the post for the sender's sake (daily limit, flood control, dead token):
    /// nothing was posted, and a later attempt or campaign may post it.
    Deferred {
        /// Why.
        reason: String,
    },
}

impl Record {
    /// The ledger field of a community.
    pub fn field(group: GroupId) -> String {
        format!("g:{group}")
    }

    /// The ledger field of an uploaded attachment.
    pub fn upload_field(index: usize, group: GroupId) -> String {
        format!("u:{index}:{group}")
    }

    /// As stored.
    pub fn encode(&self) -> String {
        match self {
            Record::Sent { at_ms } => format!("sent|{at_ms}"),
            Record::Posted { post_id, at_ms } => format!("posted|{post_id}|{at_ms}"),
            Record::Skipped { reason, code } => format!("skipped|{code}|{reason}"),
            Record::Unknown { at_ms } => format!("unknown|{at_ms}"),
            Record::Deferred { reason } => format!("deferred|{reason}"),
        }
    }

    /// Read back; `None` for anything this version did not write.
    pub fn decode(raw: &str) -> Option<Record> {
        let mut parts = raw.splitn(3, '|');
        let kind = parts.next()?;
        let a = parts.next();
        let b = parts.next();
        match kind {
            "sent" => Some(Record::Sent {
                at_ms: a?.parse().ok()?,
            }),
            "posted" => Some(Record::Posted {
                post_id: a?.parse().ok()?,
                at_ms: b?.parse().ok()?,
            }),
            "skipped" => Some(Record::Skipped {
                code: a?.parse().ok()?,
                reason: b?.to_owned(),
            }),
            "unknown" => Some(Record::Unknown {
                at_ms: a?.parse().ok()?,
            }),
            "deferred" => Some(Record::Deferred {
                // A reason may hold `|`: the rest of the value.
                reason: match b {
                    Some(b) => format!("{}|{b}", a?),
                    None => a?.to_owned(),
                },
            }),
            _ => None,
        }
    }

    /// Whether the community needs nothing more from this job.
    pub fn is_final(&self) -> bool {
        !matches!(self, Record::Sent { .. } | Record::Deferred { .. })
    }
}

/// What an attempt does about one community, given its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing sent yet: check, upload, post.
    Post,
    /// Sent before, answer lost, inside the guid window: send again with the same guid.
    Repeat,
    /// Sent before, answer lost, past the window: record `unknown`, never post again.
    GiveUp,
    /// Already final.
    Done(Record),
}

/// The decision for a community from its record, at `now_ms`. `guid_window` is the setting,
/// kept under VK's hour (default 50 minutes) so a repeat never lands just past VK's window.
pub fn next(record: Option<&Record>, now_ms: u64, guid_window: Duration) -> Next {
    match record {
        None | Some(Record::Deferred { .. }) => Next::Post,
        Some(Record::Sent { at_ms }) => {
            let age = now_ms.saturating_sub(*at_ms);
            if u128::from(age) < guid_window.as_millis() {
                Next::Repeat
            } else {
                Next::GiveUp
            }
        }
        Some(done) => Next::Done(done.clone()),
    }
}

/// The community records and uploads of a ledger as read; fields this version does not know
/// are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Per community.
    pub communities: HashMap<GroupId, Record>,
    /// Per (attachment index, community): the attachment string.
    pub uploads: HashMap<(usize, GroupId), String>,
}

impl Recorded {
    /// Parses the ledger's fields.
    pub fn parse(fields: &HashMap<String, String>) -> Recorded {
        let mut out = Recorded::default();
        for (field, value) in fields {
            if let Some(group) = field.strip_prefix("g:") {
                let group = group.parse::<GroupId>().ok();
                if let (Some(group), Some(record)) = (group, Record::decode(value)) {
                    out.communities.insert(group, record);
                }
            } else if let Some(rest) = field.strip_prefix("u:") {
                let parsed = rest.split_once(':').and_then(|(i, g)| {
                    Some((i.parse::<usize>().ok()?, g.parse::<GroupId>().ok()?))
                });
                if let Some(key) = parsed {
                    out.uploads.insert(key, value.clone());
                }
            }
        }
        out
    }

    /// Whether a community other than `group` may carry this job's post (posted, or sent
    /// with its answer lost): a dead token after that is no longer "nothing could be tried".
    pub fn posted_elsewhere(&self, group: GroupId) -> bool {
        self.communities.iter().any(|(g, r)| {
            *g != group
                && matches!(
                    r,
                    Record::Posted { .. } | Record::Sent { .. } | Record::Unknown { .. }
                )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(id: i64) -> GroupId {
        GroupId::new(id).unwrap()
    }

    #[test]
    fn records_round_trip() {
        for record in [
            Record::Sent { at_ms: 5 },
            Record::Posted {
                post_id: 7,
                at_ms: 5,
            },
            Record::Skipped {
                reason: "wall_closed".into(),
                code: 214,
            },
            Record::Skipped {
                reason: "odd|reason".into(),
                code: 0,
            },
            Record::Unknown { at_ms: 9 },
            Record::Deferred {
                reason: "daily_limit".into(),
            },
        ] {
            assert_eq!(Record::decode(&record.encode()), Some(record.clone()));
        }
        for junk in ["", "sent", "sent|x", "posted|1", "later|1", "skipped|x|r"] {
            assert_eq!(Record::decode(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_lost_answer_is_repeated_only_inside_the_guid_window() {
        let window = Duration::from_secs(3000);
        let sent = Record::Sent { at_ms: 1_000 };
        assert_eq!(next(None, 0, window), Next::Post);
        assert_eq!(next(Some(&sent), 1_000, window), Next::Repeat);
        assert_eq!(next(Some(&sent), 3_000_999, window), Next::Repeat);
        assert_eq!(next(Some(&sent), 3_001_000, window), Next::GiveUp);
        // A clock that went backwards is inside the window, not past it.
        assert_eq!(next(Some(&sent), 0, window), Next::Repeat);
        let posted = Record::Posted {
            post_id: 3,
            at_ms: 1,
        };
        assert_eq!(next(Some(&posted), 10, window), Next::Done(posted.clone()));
        let unknown = Record::Unknown { at_ms: 1 };
        assert_eq!(next(Some(&unknown), 10, window), Next::Done(unknown));
        let deferred = Record::Deferred {
            reason: "daily_limit".into(),
        };
        assert_eq!(next(Some(&deferred), 10, window), Next::Post);
    }

    #[test]
    fn a_ledger_parses_into_communities_and_uploads() {
        let fields: HashMap<String, String> = [
            ("g:5", "posted|9|100"),
            ("g:6", "sent|100"),
            ("g:x", "sent|100"),
            ("u:0:5", "photo6_1_ab"),
            ("u:z:5", "photo6_1_ab"),
            ("other", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let recorded = Recorded::parse(&fields);
        assert_eq!(recorded.communities.len(), 2);
        assert_eq!(recorded.communities[&g(6)], Record::Sent { at_ms: 100 });
        assert_eq!(recorded.uploads[&(0, g(5))], "photo6_1_ab");
        assert!(recorded.posted_elsewhere(g(6)));
        assert!(recorded.posted_elsewhere(g(5)));
        let alone = Recorded::parse(&HashMap::from([("g:6".to_owned(), "sent|1".to_owned())]));
        assert!(!alone.posted_elsewhere(g(6)));
        assert_eq!(Record::field(g(5)), "g:5");
        assert_eq!(Record::upload_field(2, g(5)), "u:2:5");
    }
}
