//! Smart rotation and retry passes, made to happen with vk-sim's degraded tokens: the author's
//! token answers empty lists, bursts of errors, or a per-call error for one method, while the
//! pool's tokens answer the truth. Each report must still match the truth exactly.

use serde_json::json;

use crate::report::{default_report_checked, Rights};
use crate::support::logs;

/// Log lines of the session moving to a fresh token for `why` in job `job`.
fn rotations(job: &str, why: &str) -> usize {
    logs::captured()
        .text()
        .lines()
        .filter(|l| {
            l.contains("moved to a fresh global token") && l.contains(why) && l.contains(job)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_answers_move_the_job_to_a_fresh_token_and_lose_nothing() {
    logs::captured();
    default_report_checked(
        "mutual",
        Rights::Everyone,
        Some(json!({"empty_lists": true})),
    )
    .await;
    assert!(rotations("def-mutual-everyone-degraded", "empty lists") >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_burst_moves_the_job_to_a_fresh_token_and_loses_nothing() {
    logs::captured();
    // One call in five of the author's token fails with 10, inside execute and direct.
    default_report_checked(
        "friends",
        Rights::Everyone,
        Some(json!({"error_code": 10, "error_rate": 0.2})),
    )
    .await;
    assert!(rotations("def-friends-everyone-degraded", "error burst") >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_passes_on_a_fresh_token_fill_what_the_main_pass_lost() {
    logs::captured();
    // The author's token answers 100 to every users.getFollowers: a per-call failure no inline
    // re-ask fixes. The end-of-read passes ask again on a leased token.
    default_report_checked(
        "mutual",
        Rights::Nobody,
        Some(json!({"error_code": 100, "methods": ["users.getFollowers"]})),
    )
    .await;
    assert!(rotations("def-mutual-nobody-degraded", "retry pass") >= 1);
}
