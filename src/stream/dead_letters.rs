//! Dead letters: entries the consumer gives up on, copied with their error to
//! `{input}:dead` and acknowledged, so one bad entry never blocks the group.
//!
//! Two roads lead here: an entry that does not decode as an event (dead-lettered at once, with
//! a FAILED/INVALID_EVENT status when its report and job ids can be salvaged), and a job that
//! failed on every allowed attempt (dead-lettered by the same script that publishes its FAILED
//! status, [`super::scripts::Finish`]). The record's fields are [`super::records::dead_letter`].

use chrono::{SecondsFormat, Utc};

use super::attempt::{EntryOutcome, Runner};
use super::entry::RawEntry;
use super::records::dead_letter;
use super::scripts::{self, Fenced};
use crate::events::{
    salvage_ids, EventError, FailureReason, IncomingEvent, StatusUpdate, FIELD_EVENT_TYPE,
    FIELD_PAYLOAD,
};
use crate::ids::Stage;
use crate::internal_events::{DeadLetterReason, DeadLettered};

impl Runner {
    /// The dead-letter record of `entry` failing with `error`.
    pub(super) async fn dead_fields(
        &self,
        entry: &RawEntry,
        error: &str,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let deliveries = self.delivery_count(&entry.id).await;
        dead_letter::fields(
            error,
            &entry.id,
            deliveries,
            &self.config.names.consumer,
            &Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            &entry.fields,
        )
    }

    /// How often the group delivered the entry (0 when it is not pending any more).
    async fn delivery_count(&self, entry_id: &str) -> i64 {
        let names = &self.config.names;
        let reply: redis::RedisResult<redis::streams::StreamPendingCountReply> =
            redis::cmd("XPENDING")
                .arg(&names.input)
                .arg(&names.group)
                .arg(entry_id)
                .arg(entry_id)
                .arg(1)
                .query_async(&mut self.conn.clone())
                .await;
        reply
            .ok()
            .and_then(|r| r.ids.first().map(|p| p.times_delivered as i64))
            .unwrap_or(0)
    }

    /// An entry that is not a valid event: dead letter, FAILED/INVALID_EVENT if its ids are
    /// readable, ack.
    pub(super) async fn dead_letter_invalid(
        &self,
        entry: &RawEntry,
        error: &EventError,
    ) -> EntryOutcome {
        let message = error.to_string();
        let status = invalid_event_status(entry, &message);
        let fields = self.dead_fields(entry, &message).await;
        let call = scripts::DeadLetter {
            names: &self.config.names,
            entry_id: &entry.id,
            maxlen: u64::from(self.config.stream.output_maxlen.get()),
            status: status.as_deref(),
            fields: &fields,
        };
        match self
            .scripts
            .dead_letter(&mut self.conn.clone(), &call)
            .await
        {
            Ok(Fenced::Done) => {
                DeadLettered {
                    entry: &entry.id,
                    reason: DeadLetterReason::InvalidEvent,
                    error: &message,
                }
                .emit(&self.metrics);
                EntryOutcome::DeadLettered(message)
            }
            Ok(Fenced::OwnershipLost) => EntryOutcome::LostOwnership,
            Err(e) => EntryOutcome::RedisError(e.to_string()),
        }
    }
}

/// The FAILED/INVALID_EVENT status of an undecodable entry, as JSON, when its report and job
/// ids can be read from the payload.
fn invalid_event_status(entry: &RawEntry, message: &str) -> Option<String> {
    let (report, job) = entry.field(FIELD_PAYLOAD).and_then(salvage_ids)?;
    // The stage is a guess from the event type (or its alias); Stage2Created fails stage 2.
    let stage = entry
        .field(FIELD_EVENT_TYPE)
        .and_then(|raw| std::str::from_utf8(raw).ok())
        .and_then(IncomingEvent::stage_of)
        .unwrap_or(Stage::One);
    let update = StatusUpdate::failed(
        &report,
        &job,
        stage,
        FailureReason::InvalidEvent,
        message.to_owned(),
        Utc::now(),
    );
    serde_json::to_string(&update).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(event_type: &str, payload: &str) -> RawEntry {
        RawEntry {
            id: "1-0".into(),
            fields: vec![
                (
                    FIELD_EVENT_TYPE.as_bytes().to_vec(),
                    event_type.as_bytes().to_vec(),
                ),
                (
                    FIELD_PAYLOAD.as_bytes().to_vec(),
                    payload.as_bytes().to_vec(),
                ),
            ],
        }
    }

    #[test]
    fn an_invalid_event_with_readable_ids_fails_the_stage_its_type_names() {
        let payload = r#"{"reportId":"r1","jobId":"j1","reportType":"NOPE"}"#;
        for (event_type, stage) in [("ReportCreated", 1), ("Stage2Created", 2), ("Weird", 1)] {
            let status = invalid_event_status(&entry(event_type, payload), "bad type")
                .expect("ids are readable");
            let status: serde_json::Value = serde_json::from_str(&status).unwrap();
            assert_eq!(status["stage"], stage, "{event_type}");
            assert_eq!(status["status"], "FAILED");
            assert_eq!(status["failureReason"], "INVALID_EVENT");
            assert_eq!(status["reportId"], "r1");
        }
    }

    #[test]
    fn an_invalid_event_without_ids_gets_no_status() {
        assert_eq!(
            invalid_event_status(&entry("ReportCreated", "not json"), "x"),
            None
        );
        assert_eq!(
            invalid_event_status(&entry("ReportCreated", r#"{"jobId":"j1"}"#), "x"),
            None
        );
    }
}
