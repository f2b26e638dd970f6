//! The event contracts: what the backend sends us and what we send back.
//!
//! Every stream entry carries two fields, `event_type` and `payload` (JSON, camelCase keys).
//! In, on `stream:parser:vk`: [`ReportCreated`] (run stage 1) and [`Stage2Created`] (run stage 2),
//! also accepted in the seed backend's spelling (`ReportCreatedEvent`, integer ids, no seeds).
//! Out: [`StatusUpdate`] on the status stream and [`GraphReady`] on the graph-worker stream.
//! `docs/events.md` shows one example of each; a test keeps those examples true.
//!
//! Decoding is total: any bytes give either an event or an [`EventError`] naming the field at
//! fault, so the consumer can dead-letter a bad entry and answer `INVALID_EVENT` without ever
//! panicking. Unknown extra fields are ignored (the backend may add some before we read them).

mod community;
mod community_task;
mod fields;
mod incoming;
mod outgoing;
mod seed;
mod suggest;

pub use community::CommunityRef;
pub use community_task::{
    CommunityTaskCreated, TaskOptions, EVENT_TYPE as COMMUNITY_TASK_CREATED, MAX_POSTS_PER_GROUP,
    MAX_TASK_GROUPS,
};
pub use incoming::{
    salvage_ids, IncomingEvent, JobKind, ReportCreated, ReportOptions, Stage2Created,
    MAX_PAYLOAD_BYTES, MAX_SEEDS,
};
pub use outgoing::{Artifacts, FailureReason, GraphReady, JobStatus, StatusUpdate};
pub use seed::{SeedError, SeedRef};
pub use suggest::{
    Attachment, PostOptions, SuggestPostCreated, EVENT_TYPE as SUGGEST_POST_CREATED,
    MAX_ATTACHMENTS, MAX_GROUPS, MAX_MESSAGE_CHARS, UPLOADS_PREFIX,
};

/// The stream field that names the event.
pub const FIELD_EVENT_TYPE: &str = "event_type";
/// The stream field that carries the JSON body.
pub const FIELD_PAYLOAD: &str = "payload";

/// Why a stream entry is not a valid event. Each variant says which part is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The entry has no `event_type` field.
    #[error("entry has no `event_type` field")]
    MissingEventType,
    /// The entry has no `payload` field.
    #[error("entry has no `payload` field")]
    MissingPayload,
    /// A stream field is not UTF-8.
    #[error("field `{0}` is not valid UTF-8")]
    NotUtf8(&'static str),
    /// `event_type` is not one we consume.
    #[error("unknown event_type {0:?}")]
    UnknownEventType(String),
    /// A valid event of another job kind than the stream's (each kind has its own stream).
    #[error("event_type {event_type} does not belong on {stream}: publish it on its own job kind's stream")]
    WrongStream {
        /// The event's type.
        event_type: &'static str,
        /// The stream it arrived on.
        stream: String,
    },
    /// The payload is larger than [`MAX_PAYLOAD_BYTES`].
    #[error("payload is {size} bytes, more than the {limit} accepted")]
    PayloadTooLarge {
        /// Bytes received.
        size: usize,
        /// Bytes accepted.
        limit: usize,
    },
    /// The payload is not JSON.
    #[error("payload is not valid JSON: {0}")]
    MalformedJson(String),
    /// The payload is JSON but not an object.
    #[error("payload is not a JSON object")]
    NotAnObject,
    /// A required field is absent (or null).
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field is present but wrong.
    #[error("invalid field `{field}`: {reason}")]
    InvalidField {
        /// The field, with an index for list entries (`socialNetworkIds[3]`).
        field: String,
        /// What was expected.
        reason: String,
    },
}
