//! The previous members snapshot of each community, for `joined` and `left`.
//!
//! With `sinceSnapshot` the baseline is that job's snapshot (which must exist). Without it, the
//! latest earlier snapshot in which the community was read whole: every MEMBERS manifest under
//! `COMMUNITY/MEMBERS/` is read (newest first by `createdAt`) and each community takes the first
//! one that has it `complete`. A failed community never becomes a baseline, so a scan that
//! lost pages can never turn into thousands of false "left" users on the next run.

use std::collections::{BTreeMap, HashMap};

use super::output::{members, CommunityManifest};
use super::CommunityError;
use crate::ids::{CommunityTaskKind, JobId};
use crate::key::{community_kind_root, community_prefix, parse_members_snapshot};
use crate::storage::{Storage, StorageError, MANIFEST_FILE};
use crate::tables::from_parquet;

/// A community's members in an earlier snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// The job that wrote it.
    pub job: JobId,
    /// Its members, sorted.
    pub members: Vec<i64>,
}

/// The baseline of each of `groups` that has one.
pub async fn baselines(
    storage: &dyn Storage,
    own: &JobId,
    since: Option<&JobId>,
    groups: &[i64],
) -> Result<HashMap<i64, Baseline>, CommunityError> {
    let manifests = match since {
        Some(job) => match read(storage, job).await {
            Ok(m) => vec![m],
            Err(CommunityError::Storage(StorageError::NotFound(_))) => {
                return Err(CommunityError::SnapshotMissing(format!(
                    "sinceSnapshot {}: no members snapshot there",
                    community_prefix(CommunityTaskKind::Members, job)
                )))
            }
            Err(e) => return Err(e),
        },
        None => earlier(storage, own).await?,
    };
    // For each community, the newest manifest that has it complete.
    let mut chosen: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    for &group in groups {
        let found = manifests.iter().position(|m| {
            m.communities
                .iter()
                .any(|c| c.group_id == Some(group) && c.complete())
        });
        if let Some(i) = found {
            chosen.entry(i).or_default().push(group);
        }
    }
    let mut out = HashMap::new();
    for (i, wanted) in chosen {
        let manifest = &manifests[i];
        let by_group = members_of(storage, &manifest.job_id).await?;
        for group in wanted {
            let mut list = by_group.get(&group).cloned().unwrap_or_default();
            list.sort_unstable();
            out.insert(
                group,
                Baseline {
                    job: manifest.job_id.clone(),
                    members: list,
                },
            );
        }
    }
    Ok(out)
}

/// Every MEMBERS manifest but `own`'s, newest first.
async fn earlier(
    storage: &dyn Storage,
    own: &JobId,
) -> Result<Vec<CommunityManifest>, CommunityError> {
    let root = community_kind_root(CommunityTaskKind::Members);
    let mut out = Vec::new();
    for key in storage.list(&root).await? {
        if key.file_name() != MANIFEST_FILE {
            continue;
        }
        let prefix = key.as_str().trim_end_matches(MANIFEST_FILE);
        let Ok(job) = parse_members_snapshot(prefix) else {
            continue;
        };
        if &job == own {
            continue;
        }
        match read(storage, &job).await {
            Ok(m) => out.push(m),
            // Someone else's file under our root: not a snapshot, not a reason to fail.
            Err(CommunityError::Storage(StorageError::Manifest { key, message })) => {
                tracing::warn!(%key, %message, "unreadable members manifest skipped");
            }
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    Ok(out)
}

async fn read(storage: &dyn Storage, job: &JobId) -> Result<CommunityManifest, CommunityError> {
    let key = community_prefix(CommunityTaskKind::Members, job).join(MANIFEST_FILE)?;
    let body = storage.get(&key).await?;
    serde_json::from_slice(&body).map_err(|e| {
        CommunityError::Storage(StorageError::Manifest {
            key: key.to_string(),
            message: e.to_string(),
        })
    })
}

/// The `members` table of `job`'s snapshot, by community.
async fn members_of(
    storage: &dyn Storage,
    job: &JobId,
) -> Result<HashMap<i64, Vec<i64>>, CommunityError> {
    let key = community_prefix(CommunityTaskKind::Members, job)
        .join(&format!("{}.parquet", members::TABLE))?;
    let body = storage.get(&key).await?;
    let table = tokio::task::spawn_blocking(move || from_parquet(members::TABLE, &body))
        .await
        .map_err(|e| CommunityError::Internal(format!("the decoding task failed: {e}")))??;
    let groups = table.i64s(members::GROUP_ID)?;
    let users = table.i64s(members::USER_ID)?;
    let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
    for (&g, &u) in groups.iter().zip(users) {
        out.entry(g).or_default().push(u);
    }
    Ok(out)
}

/// `(joined, left)`: sorted `now` against sorted `before`.
pub fn diff(now: &[i64], before: &[i64]) -> (Vec<i64>, Vec<i64>) {
    let (mut joined, mut left) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < now.len() || j < before.len() {
        match (now.get(i), before.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                joined.push(*a);
                i += 1;
            }
            (Some(_), Some(b)) => {
                left.push(*b);
                j += 1;
            }
            (Some(a), None) => {
                joined.push(*a);
                i += 1;
            }
            (None, Some(b)) => {
                left.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (joined, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_is_new_minus_stored_and_stored_minus_new() {
        assert_eq!(diff(&[1, 2, 4, 7], &[2, 3, 4, 9]), (vec![1, 7], vec![3, 9]));
        assert_eq!(diff(&[], &[1]), (vec![], vec![1]));
        assert_eq!(diff(&[5], &[]), (vec![5], vec![]));
    }
}
