//! Counting what became of every VK call a stage planned, so that a stage that lost data says
//! so instead of completing with holes.
//!
//! Each per-target outcome of a list read lands in one of three bins: answered, skipped for a
//! documented reason (the target is private, deactivated, or refuses access: VK's answer about
//! that target, which no retry changes), or failed (anything else that reached the stage as a
//! per-target error). A token's or a method's refusal (15/1133, 7) is never a skip: the stages
//! move that work elsewhere before it gets here. The tally becomes the manifest's `completeness`
//! section; [`Tally::check`] fails the stage with `INCOMPLETE_DATA` when the failed share passes
//! `parser.max_failed_share`.

use std::collections::BTreeMap;

use super::ParserError;
use crate::storage::{Completeness, ListTally};
use crate::vk::methods::MutualResults;
use crate::vk::ApiError;

/// The list kinds a stage tallies (the keys of the manifest's `completeness`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ListKind {
    /// friends.get of one user.
    FriendLists,
    /// users.getFollowers of one user.
    FollowerLists,
    /// users.get of one id.
    Profiles,
    /// One target of friends.getMutual.
    MutualTests,
    /// users.getSubscriptions of one user.
    Subscriptions,
}

impl ListKind {
    /// The key in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::FriendLists => "friend_lists",
            ListKind::FollowerLists => "follower_lists",
            ListKind::Profiles => "profiles",
            ListKind::MutualTests => "mutual_tests",
            ListKind::Subscriptions => "subscriptions",
        }
    }
}

/// The documented reason VK gave for not answering about one target, if it is one.
pub fn skip_reason(error: &ApiError) -> Option<&'static str> {
    if error.is_method_denied() {
        return None;
    }
    if error.is_missing_target() {
        return Some("deactivated");
    }
    match error.error_code {
        30 => Some("private"),
        15 | 203 | 260 => Some("access_denied"),
        _ => None,
    }
}

/// The outcomes of one stage, per list kind.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    lists: BTreeMap<ListKind, ListTally>,
}

impl Tally {
    /// Counts `planned` targets of `kind`, of which the `errors` were not answered.
    pub fn record<'a>(
        &mut self,
        kind: ListKind,
        planned: usize,
        errors: impl IntoIterator<Item = &'a ApiError>,
    ) {
        let entry = self.lists.entry(kind).or_default();
        entry.planned += planned as u64;
        let mut unanswered = 0;
        for error in errors {
            unanswered += 1;
            match skip_reason(error) {
                Some(reason) => *entry.skipped.entry(reason.to_owned()).or_default() += 1,
                None => entry.failed += 1,
            }
        }
        entry.answered += (planned as u64).saturating_sub(unanswered);
    }

    /// Counts a friends.getMutual run over `planned` targets: those no token could test
    /// (`denied`) go elsewhere and are not counted here; VK leaves deactivated targets out of
    /// its answer, which is a skip.
    pub fn record_mutual(&mut self, planned: usize, results: &MutualResults) {
        let tested = planned.saturating_sub(results.denied.len());
        self.record(
            ListKind::MutualTests,
            tested,
            results.failed.iter().map(|(_, e)| e),
        );
        let left_out = tested
            .saturating_sub(results.failed.len())
            .saturating_sub(results.found.len());
        self.skip(ListKind::MutualTests, "deactivated", left_out as u64);
    }

    /// Counts `planned` targets of `kind` of which `answered` came back; the rest failed.
    pub fn record_answered(&mut self, kind: ListKind, planned: usize, answered: usize) {
        let entry = self.lists.entry(kind).or_default();
        entry.planned += planned as u64;
        entry.answered += answered.min(planned) as u64;
        entry.failed += planned.saturating_sub(answered) as u64;
    }

    /// Counts `n` targets of `kind` skipped for `reason` without asking VK (for instance a
    /// deactivated target VK leaves out of a getMutual answer).
    pub fn skip(&mut self, kind: ListKind, reason: &str, n: u64) {
        if n == 0 {
            return;
        }
        let entry = self.lists.entry(kind).or_default();
        entry.answered = entry.answered.saturating_sub(n);
        *entry.skipped.entry(reason.to_owned()).or_default() += n;
    }

    /// The manifest's section.
    pub fn completeness(&self) -> Completeness {
        self.lists
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
            .collect()
    }

    /// One line for the status message: `friend lists 120/120, follower lists 118/120 (2
    /// private)`, failures named.
    pub fn summary(&self) -> String {
        self.lists
            .iter()
            .map(|(kind, t)| {
                let mut notes: Vec<String> = t
                    .skipped
                    .iter()
                    .map(|(reason, n)| format!("{n} {reason}"))
                    .collect();
                if t.failed > 0 {
                    notes.push(format!("{} failed", t.failed));
                }
                let name = kind.as_str().replace('_', " ");
                if notes.is_empty() {
                    format!("{name} {}/{}", t.answered, t.planned)
                } else {
                    format!("{name} {}/{} ({})", t.answered, t.planned, notes.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `INCOMPLETE_DATA` when failed targets exceed `max_failed_share` of the planned ones.
    pub fn check(&self, max_failed_share: f64) -> Result<(), ParserError> {
        let planned: u64 = self.lists.values().map(|t| t.planned).sum();
        let failed: u64 = self.lists.values().map(|t| t.failed).sum();
        if planned == 0 || (failed as f64) <= max_failed_share * planned as f64 {
            return Ok(());
        }
        let missing: Vec<String> = self
            .lists
            .iter()
            .filter(|(_, t)| t.failed > 0)
            .map(|(k, t)| {
                format!(
                    "{} {} of {}",
                    t.failed,
                    k.as_str().replace('_', " "),
                    t.planned
                )
            })
            .collect();
        Err(ParserError::Incomplete(format!(
            "{failed} of {planned} planned VK calls failed ({} allowed): missing {}",
            (max_failed_share * planned as f64).floor(),
            missing.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: i64, msg: &str, subcode: Option<i64>) -> ApiError {
        ApiError {
            error_code: code,
            error_msg: msg.to_owned(),
            error_subcode: subcode,
        }
    }

    #[test]
    fn skips_are_documented_reasons_and_refusals_of_the_token_are_not() {
        assert_eq!(
            skip_reason(&api(30, "This profile is private", None)),
            Some("private")
        );
        assert_eq!(
            skip_reason(&api(18, "User was deleted or banned", None)),
            Some("deactivated")
        );
        assert_eq!(
            skip_reason(&api(15, "Access denied: user deactivated", None)),
            Some("deactivated")
        );
        assert_eq!(
            skip_reason(&api(3610, "User is deactivated", None)),
            Some("deactivated")
        );
        assert_eq!(
            skip_reason(&api(203, "Access to group denied", None)),
            Some("access_denied")
        );
        assert_eq!(skip_reason(&api(15, "Access denied", Some(1133))), None);
        assert_eq!(
            skip_reason(&api(
                15,
                "Access denied: no access to call this method",
                None
            )),
            None
        );
        assert_eq!(skip_reason(&api(10, "Internal server error", None)), None);
    }

    #[test]
    fn the_tally_counts_and_decides() {
        let mut tally = Tally::default();
        let private = api(30, "This profile is private", None);
        let broken = api(100, "One of the parameters specified was missing", None);
        tally.record(ListKind::FriendLists, 1000, [&private, &private]);
        tally.record(ListKind::FollowerLists, 1000, [&broken]);
        let section = tally.completeness();
        assert_eq!(section["friend_lists"].answered, 998);
        assert_eq!(section["friend_lists"].skipped["private"], 2);
        assert_eq!(section["follower_lists"].failed, 1);
        assert_eq!(
            tally.summary(),
            "friend lists 998/1000 (2 private), follower lists 999/1000 (1 failed)"
        );
        assert!(tally.check(0.001).is_ok(), "1 of 2000 is within 0.1%");
        tally.record(ListKind::Profiles, 10, [&broken, &broken]);
        let err = tally.check(0.001).unwrap_err().to_string();
        assert!(err.contains("3 of 2010 planned VK calls failed"), "{err}");
        assert!(err.contains("2 profiles of 10"), "{err}");
        assert!(tally.check(0.01).is_ok());
    }
}
