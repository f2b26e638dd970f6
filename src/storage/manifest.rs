//! A stage's `manifest.json` and the write order that makes it trustworthy.
//!
//! [`write_stage`] puts every data file, and only when all are stored puts the manifest, which
//! lists them with their row counts, columns and sizes. Readers (stage 2, the graph worker,
//! `inspect`) start from the manifest: present means complete. A crash between the two leaves
//! files without a manifest, which a retry overwrites (keys are deterministic per job and stage).

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::{KeyPrefix, ObjectKey, StagePrefix, Storage, StorageError};
use crate::ids::{JobId, ReportId, ReportType, VkUserId};

/// The manifest's file name within a stage prefix.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Version of the stage file layout; bumped when columns or files change incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

/// One column of a data file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Arrow/parquet type name, e.g. `int64`.
    pub dtype: String,
}

/// A data file as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    /// File name within the stage prefix.
    pub name: String,
    /// Rows in the table.
    pub rows: u64,
    /// Its columns, in order.
    pub columns: Vec<Column>,
    /// Size in bytes as stored.
    pub bytes: u64,
}

/// What became of the VK calls of one list kind a stage planned (friend lists, follower lists,
/// profiles, mutual tests, subscriptions): each ended answered, skipped for a documented reason
/// (`private`, `deactivated`, `access_denied`), or failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListTally {
    /// Targets the stage asked VK about.
    pub planned: u64,
    /// Targets VK answered.
    pub answered: u64,
    /// Targets VK refused for a documented reason, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Targets lost to another error.
    pub failed: u64,
}

/// The manifest's `completeness` section: a [`ListTally`] per list kind.
pub type Completeness = BTreeMap<String, ListTally>;

/// `manifest.json`: what a stage wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// [`SCHEMA_VERSION`] at write time.
    pub schema_version: u32,
    /// The report.
    pub report_id: ReportId,
    /// The job.
    pub job_id: JobId,
    /// What was collected.
    pub report_type: ReportType,
    /// 1 or 2.
    pub stage: u8,
    /// The resolved seeds.
    pub main_ids: Vec<VkUserId>,
    /// The stage prefix the files are under.
    pub prefix: String,
    /// The data files, all written before this manifest.
    pub files: Vec<ManifestFile>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// What became of every VK call the stage planned, per list kind (absent in manifests
    /// written before it existed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub completeness: Completeness,
}

/// A data file to write: its bytes plus what the manifest says of it.
#[derive(Debug, Clone)]
pub struct StageFile {
    /// File name within the stage prefix (a valid key segment).
    pub name: String,
    /// Rows in the table.
    pub rows: u64,
    /// Its columns.
    pub columns: Vec<Column>,
    /// The encoded file.
    pub body: Bytes,
}

/// Who wrote a stage: the fields of the manifest that are not about files.
#[derive(Debug, Clone)]
pub struct StageMeta {
    /// The report.
    pub report_id: ReportId,
    /// The resolved seeds.
    pub main_ids: Vec<VkUserId>,
    /// Write time.
    pub created_at: DateTime<Utc>,
    /// The stage's completeness section.
    pub completeness: Completeness,
}

/// Writes `files`, then the manifest; returns the manifest's key.
pub async fn write_stage(
    storage: &dyn Storage,
    prefix: &StagePrefix,
    meta: StageMeta,
    files: Vec<StageFile>,
) -> Result<ObjectKey, StorageError> {
    let listed = put_files(storage, &prefix.prefix(), files).await?;
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        report_id: meta.report_id,
        job_id: prefix.job_id().clone(),
        report_type: prefix.report_type(),
        stage: prefix.stage().number(),
        main_ids: meta.main_ids,
        prefix: prefix.to_string(),
        files: listed,
        created_at: meta.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        completeness: meta.completeness,
    };
    put_manifest(storage, &prefix.prefix(), &manifest).await
}

/// Stores every data file under `prefix` (none may be named [`MANIFEST_FILE`]) and answers
/// what a manifest lists of them: the first half of any job's write, manifest last.
pub async fn put_files(
    storage: &dyn Storage,
    prefix: &KeyPrefix,
    files: Vec<StageFile>,
) -> Result<Vec<ManifestFile>, StorageError> {
    let mut listed = Vec::with_capacity(files.len());
    for file in files {
        if file.name == MANIFEST_FILE {
            return Err(StorageError::Manifest {
                key: prefix.to_string(),
                message: format!("a data file may not be named {MANIFEST_FILE}"),
            });
        }
        let key = prefix.join(&file.name)?;
        let bytes = file.body.len() as u64;
        storage.put(&key, file.body).await?;
        listed.push(ManifestFile {
            name: file.name,
            rows: file.rows,
            columns: file.columns,
            bytes,
        });
    }
    Ok(listed)
}

/// Stores `manifest` as `{prefix}manifest.json`, after the files it lists; returns its key.
pub async fn put_manifest<M: Serialize>(
    storage: &dyn Storage,
    prefix: &KeyPrefix,
    manifest: &M,
) -> Result<ObjectKey, StorageError> {
    let key = prefix.join(MANIFEST_FILE)?;
    let body = serde_json::to_vec_pretty(manifest).map_err(|e| StorageError::Manifest {
        key: key.to_string(),
        message: e.to_string(),
    })?;
    storage.put(&key, Bytes::from(body)).await?;
    Ok(key)
}

/// Reads a stage's manifest; [`StorageError::NotFound`] when the stage is absent or incomplete.
pub async fn read_manifest(
    storage: &dyn Storage,
    prefix: &StagePrefix,
) -> Result<Manifest, StorageError> {
    let key = prefix.key(MANIFEST_FILE)?;
    let body = storage.get(&key).await?;
    serde_json::from_slice(&body).map_err(|e| StorageError::Manifest {
        key: key.to_string(),
        message: e.to_string(),
    })
}
