//! Decoding a stream entry: `ReportCreated` and `Stage2Created` (reports),
//! `SuggestPostCreated` (campaigns, decoded in [`super::suggest`]) and `CommunityTaskCreated`
//! (community tasks, [`super::community_task`]).
//!
//! Fields are read one by one from the JSON object rather than through a derived `Deserialize`,
//! so that every refusal names its field and says what was expected; serde's messages for
//! nested enums and lists are vaguer, and the backend team reads these in the dead-letter stream.
//!
//! The decoder also accepts what the seed (Python) backend sends, so that either backend can
//! feed the stream: the event names `ReportCreatedEvent` and `Stage2CreatedEvent`, integer
//! `reportId`/`jobId`, an empty or absent `socialNetworkIds` (the author is the only seed), and
//! `options` without `canAccessClosed` (closed profiles the token may read count as valid).
//! Whatever it accepted re-encodes in the canonical form (`event_type()`, `payload_json()`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::community_task::{CommunityTaskCreated, EVENT_TYPE as COMMUNITY_TASK_CREATED};
use super::fields::{
    backend_id, created_at, event_id, id_text, invalid, opaque, parse_object, present, user_id,
    wrong_type,
};
use super::seed::SeedRef;
use super::suggest::{SuggestPostCreated, EVENT_TYPE as SUGGEST_POST_CREATED};
use super::EventError;
use crate::ids::{JobId, ReportId, ReportType, Stage, VkUserId};
use crate::key::StagePrefix;

/// Largest payload decoded; larger entries are refused before parsing.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// Most seeds one report may name.
pub const MAX_SEEDS: usize = 50;

/// A decoded input event.
#[derive(Debug, Clone, PartialEq)]
pub enum IncomingEvent {
    /// Run stage 1.
    ReportCreated(ReportCreated),
    /// Run stage 2.
    Stage2Created(Stage2Created),
    /// Post into many communities (the poster's one stage).
    SuggestPostCreated(SuggestPostCreated),
    /// Collect members, posts or interactions of communities (one stage; decoded, not yet
    /// consumed: issue 18).
    CommunityTaskCreated(CommunityTaskCreated),
}

/// Which job kind an event starts: each kind has its own stream, group and handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Reports: `ReportCreated`, `Stage2Created` on `stream:parser:vk`.
    Report,
    /// Suggested-post campaigns: `SuggestPostCreated` on `stream:poster:vk`.
    Poster,
    /// Community tasks: `CommunityTaskCreated` on `stream:community:vk` (no consumer yet).
    Community,
}

impl JobKind {
    /// For logs and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Report => "report",
            JobKind::Poster => "poster",
            JobKind::Community => "community",
        }
    }
}

/// `ReportCreated`: collect a report's seeds and their audience (stage 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportCreated {
    /// The backend's report id.
    pub report_id: ReportId,
    /// The backend's job id.
    pub job_id: JobId,
    /// The author: whose user token is used first.
    pub user_id: VkUserId,
    /// What to collect.
    pub report_type: ReportType,
    /// 1 to [`MAX_SEEDS`] seeds, in the order given, duplicates removed; the author alone when
    /// the event names none.
    pub social_network_ids: Vec<SeedRef>,
    /// Collection switches.
    pub options: ReportOptions,
    /// The backend's own event id, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// When the backend created the report, if it said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

/// `options` of a ReportCreated. [`Default`] is what an absent `options` object (or an absent
/// switch) means: `fastGraph` and `subsGraph` off, `canAccessClosed` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportOptions {
    /// Skip what only the full graph needs; default false.
    pub fast_graph: bool,
    /// Also collect the main ids' subscriptions; default false.
    pub subs_graph: bool,
    /// Count closed profiles the token may see as valid; default true, the seed's rule
    /// (`_filter_valid_profiles` keeps them), so only an explicit `false` narrows it.
    pub can_access_closed: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            fast_graph: false,
            subs_graph: false,
            can_access_closed: true,
        }
    }
}

/// `Stage2Created`: build the connections of a report whose stage 1 is done.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage2Created {
    /// The backend's report id.
    pub report_id: ReportId,
    /// The backend's job id (the same as stage 1's).
    pub job_id: JobId,
    /// The author: whose user token is used first.
    pub user_id: VkUserId,
    /// What to collect.
    pub report_type: ReportType,
    /// Where stage 1 wrote; derived from the stage 1 manifest when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage1_prefix: Option<StagePrefix>,
    /// The backend's own event id, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl IncomingEvent {
    /// Decodes the two fields of a stream entry.
    pub fn decode(event_type: Option<&[u8]>, payload: Option<&[u8]>) -> Result<Self, EventError> {
        let event_type = event_type.ok_or(EventError::MissingEventType)?;
        let event_type =
            std::str::from_utf8(event_type).map_err(|_| EventError::NotUtf8("event_type"))?;
        let payload = payload.ok_or(EventError::MissingPayload)?;
        if event_type == SUGGEST_POST_CREATED {
            return SuggestPostCreated::decode(payload).map(IncomingEvent::SuggestPostCreated);
        }
        if event_type == COMMUNITY_TASK_CREATED {
            return CommunityTaskCreated::decode(payload).map(IncomingEvent::CommunityTaskCreated);
        }
        let object = parse_object(payload)?;
        match Self::stage_of(event_type) {
            Some(Stage::One) => decode_report_created(&object).map(IncomingEvent::ReportCreated),
            Some(Stage::Two) => decode_stage2_created(&object).map(IncomingEvent::Stage2Created),
            None => Err(EventError::UnknownEventType(
                event_type.chars().take(64).collect(),
            )),
        }
    }

    /// The stage an `event_type` value starts, its seed-backend alias included
    /// (`ReportCreatedEvent`, `Stage2CreatedEvent`); `None` for a name we do not consume.
    /// Exact and case-sensitive, as the backends write them.
    pub fn stage_of(event_type: &str) -> Option<Stage> {
        match event_type {
            "ReportCreated"
            | "ReportCreatedEvent"
            | SUGGEST_POST_CREATED
            | COMMUNITY_TASK_CREATED => Some(Stage::One),
            "Stage2Created" | "Stage2CreatedEvent" => Some(Stage::Two),
            _ => None,
        }
    }

    /// The job kind an `event_type` value belongs to; `None` for a name we do not consume.
    pub fn kind_of(event_type: &str) -> Option<JobKind> {
        match event_type {
            SUGGEST_POST_CREATED => Some(JobKind::Poster),
            COMMUNITY_TASK_CREATED => Some(JobKind::Community),
            other => Self::stage_of(other).map(|_| JobKind::Report),
        }
    }

    /// The job kind of this event.
    pub fn kind(&self) -> JobKind {
        match self {
            IncomingEvent::SuggestPostCreated(_) => JobKind::Poster,
            IncomingEvent::CommunityTaskCreated(_) => JobKind::Community,
            _ => JobKind::Report,
        }
    }

    /// The stream's canonical `event_type` value for this event (never an alias).
    pub fn event_type(&self) -> &'static str {
        match self {
            IncomingEvent::ReportCreated(_) => "ReportCreated",
            IncomingEvent::Stage2Created(_) => "Stage2Created",
            IncomingEvent::SuggestPostCreated(_) => SUGGEST_POST_CREATED,
            IncomingEvent::CommunityTaskCreated(_) => COMMUNITY_TASK_CREATED,
        }
    }

    /// The JSON payload, as the backend would publish it (used by `publish` and tests).
    pub fn payload_json(&self) -> String {
        let value = match self {
            IncomingEvent::ReportCreated(e) => serde_json::to_value(e),
            IncomingEvent::Stage2Created(e) => serde_json::to_value(e),
            IncomingEvent::SuggestPostCreated(e) => serde_json::to_value(e),
            IncomingEvent::CommunityTaskCreated(e) => serde_json::to_value(e),
        };
        value
            .expect("events serialize to JSON: plain strings, numbers and bools")
            .to_string()
    }

    /// The id statuses carry as `reportId`: the report's, or the campaign's.
    pub fn report_id(&self) -> ReportId {
        match self {
            IncomingEvent::ReportCreated(e) => e.report_id.clone(),
            IncomingEvent::Stage2Created(e) => e.report_id.clone(),
            IncomingEvent::SuggestPostCreated(e) => ReportId::from(&e.campaign_id),
            IncomingEvent::CommunityTaskCreated(e) => ReportId::from(&e.task_id),
        }
    }

    /// Job id of either kind.
    pub fn job_id(&self) -> &JobId {
        match self {
            IncomingEvent::ReportCreated(e) => &e.job_id,
            IncomingEvent::Stage2Created(e) => &e.job_id,
            IncomingEvent::SuggestPostCreated(e) => &e.job_id,
            IncomingEvent::CommunityTaskCreated(e) => &e.job_id,
        }
    }

    /// The `report_type` label of job metrics: the report's type, or `SUGGEST` for a campaign.
    pub fn type_label(&self) -> &'static str {
        match self {
            IncomingEvent::ReportCreated(e) => e.report_type.as_str(),
            IncomingEvent::Stage2Created(e) => e.report_type.as_str(),
            IncomingEvent::SuggestPostCreated(_) => "SUGGEST",
            IncomingEvent::CommunityTaskCreated(e) => match e.kind {
                crate::ids::CommunityTaskKind::Members => "COMMUNITY_MEMBERS",
                crate::ids::CommunityTaskKind::Posts => "COMMUNITY_POSTS",
                crate::ids::CommunityTaskKind::Interactions => "COMMUNITY_INTERACTIONS",
            },
        }
    }

    /// The stage this event starts.
    pub fn stage(&self) -> Stage {
        match self {
            IncomingEvent::ReportCreated(_)
            | IncomingEvent::SuggestPostCreated(_)
            | IncomingEvent::CommunityTaskCreated(_) => Stage::One,
            IncomingEvent::Stage2Created(_) => Stage::Two,
        }
    }
}

/// Best effort for an entry that failed to decode: its report (campaign, task) and job ids, if both
/// are readable, so that a `FAILED`/`INVALID_EVENT` status can reach the report's owner.
pub fn salvage_ids(payload: &[u8]) -> Option<(ReportId, JobId)> {
    let object = parse_object(payload).ok()?;
    let owner = object
        .get("reportId")
        .or_else(|| object.get("campaignId"))
        .or_else(|| object.get("taskId"))?;
    let report = ReportId::parse(&id_text(owner)?).ok()?;
    let job = JobId::parse(&id_text(object.get("jobId")?)?).ok()?;
    Some((report, job))
}

fn decode_report_created(o: &Map<String, Value>) -> Result<ReportCreated, EventError> {
    let report_id = backend_id(o, "reportId", ReportId::parse)?;
    let job_id = backend_id(o, "jobId", JobId::parse)?;
    let user_id = user_id(o)?;
    Ok(ReportCreated {
        report_id,
        job_id,
        user_id,
        report_type: report_type(o)?,
        social_network_ids: seeds(o, user_id)?,
        options: options(o)?,
        event_id: event_id(o)?,
        created_at: created_at(o)?,
    })
}

fn decode_stage2_created(o: &Map<String, Value>) -> Result<Stage2Created, EventError> {
    let job_id = backend_id(o, "jobId", JobId::parse)?;
    let report_type = report_type(o)?;
    let stage1_prefix = match present(o, "stage1Prefix") {
        None => None,
        Some(Value::String(raw)) => {
            let prefix = StagePrefix::parse(raw).map_err(|e| invalid("stage1Prefix", e))?;
            // The prefix must be this job's stage 1 of this report type: a prefix naming another
            // job would let one event read (and later write beside) someone else's data.
            if prefix.report_type() != report_type
                || prefix.job_id() != &job_id
                || prefix.stage() != Stage::One
            {
                return Err(invalid(
                    "stage1Prefix",
                    format!(
                        "expected a stage 1 prefix of job {job_id} under {report_type}/, found {raw:?}"
                    ),
                ));
            }
            Some(prefix)
        }
        Some(other) => return Err(wrong_type("stage1Prefix", "a string", other)),
    };
    Ok(Stage2Created {
        report_id: backend_id(o, "reportId", ReportId::parse)?,
        job_id,
        user_id: user_id(o)?,
        report_type,
        stage1_prefix,
        event_id: event_id(o)?,
    })
}

fn report_type(o: &Map<String, Value>) -> Result<ReportType, EventError> {
    opaque(o, "reportType", str::parse::<ReportType>)
}

/// `socialNetworkIds`; none (absent, null or `[]`) means the author alone, as the seed service
/// resolves ids "with a fallback to the author's userId".
fn seeds(o: &Map<String, Value>, author: VkUserId) -> Result<Vec<SeedRef>, EventError> {
    const FIELD: &str = "socialNetworkIds";
    let list = match present(o, FIELD) {
        None => return Ok(vec![SeedRef::Id(author)]),
        Some(Value::Array(list)) if list.is_empty() => return Ok(vec![SeedRef::Id(author)]),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong_type(FIELD, "an array", other)),
    };
    if list.len() > MAX_SEEDS {
        return Err(invalid(
            FIELD,
            format!("expected at most {MAX_SEEDS} entries, found {}", list.len()),
        ));
    }
    let mut seeds: Vec<SeedRef> = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let field = format!("{FIELD}[{i}]");
        let seed = match entry {
            Value::String(s) => SeedRef::parse(s),
            Value::Number(n) => n
                .as_i64()
                .map(SeedRef::from_number)
                .unwrap_or(Err(super::SeedError::BadId)),
            other => return Err(wrong_type(&field, "a string or a number", other)),
        }
        .map_err(|e| invalid(&field, e))?;
        if !seeds.contains(&seed) {
            seeds.push(seed);
        }
    }
    Ok(seeds)
}

fn options(o: &Map<String, Value>) -> Result<ReportOptions, EventError> {
    let map = match present(o, "options") {
        None => return Ok(ReportOptions::default()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(wrong_type("options", "an object", other)),
    };
    // An absent (or null) switch keeps its default, the same as an absent `options`.
    let defaults = ReportOptions::default();
    let flag = |name: &str, default: bool| match present(map, name) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(wrong_type(&format!("options.{name}"), "a boolean", other)),
    };
    Ok(ReportOptions {
        fast_graph: flag("fastGraph", defaults.fast_graph)?,
        subs_graph: flag("subsGraph", defaults.subs_graph)?,
        can_access_closed: flag("canAccessClosed", defaults.can_access_closed)?,
    })
}
