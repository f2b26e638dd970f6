//! Storage keys: the only way a path reaches a backend.
//!
//! Layout (the seed service's): `{reportType}/{mainIds}/{jobId}_stage{n}/{file}`. Every segment
//! is built from validated values or checked against one alphabet, `[A-Za-z0-9_.-]`, with a
//! leading dot refused (so `.` and `..` too), so no key can climb out of its prefix on the local backend or address a
//! surprising object on S3. Long seed lists are cut and suffixed with a hash so the segment stays
//! short but distinct.

use std::fmt;

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::ids::{CommunityTaskKind, JobId, ReportType, Stage, VkUserId};

/// Longest segment (one path component).
pub const MAX_SEGMENT_LEN: usize = 128;

/// Longest `mainIds` segment before it is cut and hashed.
pub const MAX_MAIN_IDS_LEN: usize = 80;

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A segment is empty, too long, starts with a dot, or has a character outside `[A-Za-z0-9_.-]`.
    #[error("invalid key segment {0:?}: expected 1 to {MAX_SEGMENT_LEN} of [A-Za-z0-9_.-], not starting with a dot")]
    BadSegment(String),
    /// A stage prefix does not have the `{reportType}/{mainIds}/{jobId}_stage{n}/` shape.
    #[error(
        "invalid stage prefix {0:?}: expected {{reportType}}/{{mainIds}}/{{jobId}}_stage{{n}}/"
    )]
    BadStagePrefix(String),
}

/// Checks one path component.
pub fn check_segment(segment: &str) -> Result<(), KeyError> {
    // A leading dot is refused too: it covers `.` and `..`, and keeps the local backend's
    // in-flight temporary files (`.name.tmp-…`) out of every valid key.
    let ok = !segment.is_empty()
        && segment.len() <= MAX_SEGMENT_LEN
        && !segment.starts_with('.')
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        // Shown with Debug escaping, cut, so control characters cannot forge log lines.
        Err(KeyError::BadSegment(segment.chars().take(40).collect()))
    }
}

/// A folder-like prefix: validated segments, rendered with a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    /// Parses `a/b/c` or `a/b/c/`; the empty string is the root.
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        if trimmed.is_empty() {
            return Ok(KeyPrefix(String::new()));
        }
        for segment in trimmed.split('/') {
            check_segment(segment)?;
        }
        Ok(KeyPrefix(format!("{trimmed}/")))
    }

    /// `a/b/c/` (or empty for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A file directly under this prefix.
    pub fn join(&self, file: &str) -> Result<ObjectKey, KeyError> {
        check_segment(file)?;
        Ok(ObjectKey(format!("{}{file}", self.0)))
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key of one stored object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Parses `a/b/file`: at least one segment, each valid.
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        for segment in raw.split('/') {
            check_segment(segment)?;
        }
        Ok(ObjectKey(raw.to_owned()))
    }

    /// `a/b/file`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The storage folder every campaign's results go under (`SUGGEST/{userId}/{jobId}_stage1/`).
pub const CAMPAIGN_ROOT: &str = "SUGGEST";

/// Where a campaign writes: `SUGGEST/{userId}/{jobId}_stage1/` (one stage, the layout of a
/// report's stage 1, so the backend finds it the same way).
pub fn campaign_prefix(sender: VkUserId, job: &JobId) -> KeyPrefix {
    // Every part is validated: digits and the job id's alphabet.
    KeyPrefix(format!("{CAMPAIGN_ROOT}/{sender}/{job}_stage1/"))
}

/// The storage folder every community task's results go under
/// (`COMMUNITY/{kind}/{jobId}_stage1/`).
pub const COMMUNITY_ROOT: &str = "COMMUNITY";

/// Where a community task writes: `COMMUNITY/{kind}/{jobId}_stage1/`.
pub fn community_prefix(kind: CommunityTaskKind, job: &JobId) -> KeyPrefix {
    KeyPrefix(format!("{COMMUNITY_ROOT}/{kind}/{job}_stage1/"))
}

/// Where every task of `kind` writes: `COMMUNITY/{kind}/` (listed to find earlier snapshots).
pub fn community_kind_root(kind: CommunityTaskKind) -> KeyPrefix {
    KeyPrefix(format!("{COMMUNITY_ROOT}/{kind}/"))
}

/// A MEMBERS snapshot's prefix given from outside (`sinceSnapshot`): exactly
/// `COMMUNITY/MEMBERS/{jobId}_stage1/` (the trailing `/` optional); answers the snapshot's job.
pub fn parse_members_snapshot(raw: &str) -> Result<JobId, KeyError> {
    let bad = || KeyError::BadStagePrefix(raw.chars().take(200).collect());
    let trimmed = raw.strip_suffix('/').unwrap_or(raw);
    let rest = trimmed
        .strip_prefix(COMMUNITY_ROOT)
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|r| r.strip_prefix(CommunityTaskKind::Members.as_str()))
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(bad)?;
    check_segment(rest)?;
    let job = rest.strip_suffix("_stage1").ok_or_else(bad)?;
    JobId::parse(job).map_err(|_| bad())
}

/// Where one stage of one job writes: `{reportType}/{mainIds}/{jobId}_stage{n}/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StagePrefix {
    report_type: ReportType,
    main_ids: String,
    job_id: JobId,
    stage: Stage,
}

impl StagePrefix {
    /// The prefix of a stage, from validated parts.
    pub fn new(
        report_type: ReportType,
        main_ids: &[VkUserId],
        job_id: &JobId,
        stage: Stage,
    ) -> Self {
        StagePrefix {
            report_type,
            main_ids: main_ids_segment(main_ids),
            job_id: job_id.clone(),
            stage,
        }
    }

    /// Parses a prefix given from outside (`stage1Prefix`, the `inspect` command).
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        let bad = || KeyError::BadStagePrefix(raw.chars().take(200).collect());
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        let parts: Vec<&str> = trimmed.split('/').collect();
        let [report_type, main_ids, job_stage] = parts[..] else {
            return Err(bad());
        };
        for segment in &parts {
            check_segment(segment)?;
        }
        let report_type = report_type.parse::<ReportType>().map_err(|_| bad())?;
        let (job, stage) = job_stage.rsplit_once("_stage").ok_or_else(bad)?;
        let job_id = JobId::parse(job).map_err(|_| bad())?;
        let stage = match stage {
            "1" => Stage::One,
            "2" => Stage::Two,
            _ => return Err(bad()),
        };
        Ok(StagePrefix {
            report_type,
            main_ids: main_ids.to_owned(),
            job_id,
            stage,
        })
    }

    /// The same report and job at another stage (stage 2 writes beside stage 1).
    pub fn with_stage(&self, stage: Stage) -> Self {
        StagePrefix {
            stage,
            ..self.clone()
        }
    }

    /// The report type segment.
    pub fn report_type(&self) -> ReportType {
        self.report_type
    }

    /// The job.
    pub fn job_id(&self) -> &JobId {
        &self.job_id
    }

    /// The stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// As a generic prefix, for listing.
    pub fn prefix(&self) -> KeyPrefix {
        KeyPrefix(self.to_string())
    }

    /// A file of this stage.
    pub fn key(&self, file: &str) -> Result<ObjectKey, KeyError> {
        self.prefix().join(file)
    }
}

impl fmt::Display for StagePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}_stage{}/",
            self.report_type, self.main_ids, self.job_id, self.stage
        )
    }
}

impl Serialize for StagePrefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `1_2_3`; when longer than [`MAX_MAIN_IDS_LEN`], the ids that fit plus `-h` and 12 hex digits
/// of a SHA-256 over the whole list, so two long lists sharing a head still differ.
fn main_ids_segment(ids: &[VkUserId]) -> String {
    let full = ids
        .iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join("_");
    if full.len() <= MAX_MAIN_IDS_LEN && !full.is_empty() {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hash = hex::encode(&digest[..6]);
    let budget = MAX_MAIN_IDS_LEN - hash.len() - 2;
    let mut head = String::new();
    for id in ids {
        let piece = id.to_string();
        let extra = if head.is_empty() { 0 } else { 1 };
        if head.len() + extra + piece.len() > budget {
            break;
        }
        if !head.is_empty() {
            head.push('_');
        }
        head.push_str(&piece);
    }
    if head.is_empty() {
        format!("h{hash}")
    } else {
        format!("{head}-h{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(raw: &[i64]) -> Vec<VkUserId> {
        raw.iter().map(|&n| VkUserId::new(n).unwrap()).collect()
    }

    #[test]
    fn stage_prefix_layout_and_round_trip() {
        let job = JobId::parse("job_42").unwrap();
        let p = StagePrefix::new(ReportType::Default, &ids(&[1, 2, 3]), &job, Stage::One);
        assert_eq!(p.to_string(), "DEFAULT/1_2_3/job_42_stage1/");
        assert_eq!(StagePrefix::parse(&p.to_string()).unwrap(), p);
        assert_eq!(
            p.key("manifest.json").unwrap().as_str(),
            "DEFAULT/1_2_3/job_42_stage1/manifest.json"
        );
        assert_eq!(
            p.with_stage(Stage::Two).to_string(),
            "DEFAULT/1_2_3/job_42_stage2/"
        );
    }

    #[test]
    fn long_main_id_lists_are_cut_and_hashed() {
        let job = JobId::parse("j").unwrap();
        let many: Vec<i64> = (100_000_000..100_000_050).collect();
        let a = StagePrefix::new(ReportType::Default, &ids(&many), &job, Stage::One).to_string();
        let mut other = many.clone();
        other[49] += 1;
        let b = StagePrefix::new(ReportType::Default, &ids(&other), &job, Stage::One).to_string();
        let segment = a.split('/').nth(1).unwrap();
        assert!(segment.len() <= MAX_MAIN_IDS_LEN, "{segment}");
        assert!(segment.starts_with("100000000_100000001"));
        assert_ne!(a, b, "lists with the same head must not collide");
        assert!(StagePrefix::parse(&a).is_ok());
    }

    #[test]
    fn rejected_segments() {
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "a b",
            "a\nb",
            "a\0b",
            "é",
            "%2F",
            &"x".repeat(129),
        ] {
            assert!(check_segment(bad).is_err(), "{bad:?}");
        }
        assert!(ObjectKey::parse("DEFAULT/../etc/passwd").is_err());
        assert!(ObjectKey::parse("/abs").is_err());
        assert!(ObjectKey::parse("a//b").is_err());
        assert!(KeyPrefix::parse("a/../b/").is_err());
        for bad in [
            "DEFAULT/1/job",
            "DEFAULT/1/job_stage3/",
            "NOPE/1/job_stage1/",
            "DEFAULT/1/x/job_stage1/",
            "DEFAULT/../job_stage1/",
            "DEFAULT/1/jo%b_stage1/",
        ] {
            assert!(StagePrefix::parse(bad).is_err(), "{bad:?}");
        }
    }
}
