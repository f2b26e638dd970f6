//! Where stage files live: a small [`Storage`] seam with two backends, chosen by URL.
//!
//! - `s3://bucket/optional/prefix`: [`s3::S3Storage`] (aws-sdk-s3; custom endpoint, path-style);
//! - `file:///abs/path` or a plain path (default `./data`): [`local::LocalStorage`].
//!
//! Keys are [`ObjectKey`]s, validated in [`key`], so a backend never sees a path it has to
//! second-guess. A stage is written through [`manifest::write_stage`]: its files first, then
//! `manifest.json`, so whoever sees a manifest sees complete data.

pub mod key;
pub mod local;
pub mod manifest;
pub mod s3;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub use key::{KeyError, KeyPrefix, ObjectKey, StagePrefix};
pub use manifest::{
    read_manifest, write_stage, Column, Completeness, ListTally, Manifest, ManifestFile, StageFile,
    StageMeta, MANIFEST_FILE,
};

use crate::settings::StorageSettings;

/// What can go wrong with storage. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist.
    #[error("object {0} not found")]
    NotFound(String),
    /// A key or prefix was refused.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The storage URL or credentials are unusable.
    #[error("storage configuration: {0}")]
    Config(String),
    /// The local file system failed.
    #[error("local storage {op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The S3 server failed or refused.
    #[error("s3 {op} {key}: {message}")]
    S3 {
        /// What was attempted.
        op: &'static str,
        /// The key or prefix.
        key: String,
        /// The SDK's description (service error code and message).
        message: String,
    },
    /// A manifest could not be read or written as JSON.
    #[error("manifest {key}: {message}")]
    Manifest {
        /// The manifest key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A place to put, get and list objects. Implemented by the local folder and S3 backends.
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Writes an object whole; readers never see a partial object.
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), StorageError>;
    /// Reads an object; [`StorageError::NotFound`] when absent.
    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StorageError>;
    /// True when the object exists.
    async fn exists(&self, key: &ObjectKey) -> Result<bool, StorageError>;
    /// Every object under `prefix` (at any depth), sorted by key.
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<ObjectKey>, StorageError>;
    /// Where this backend writes, for logs and the demo's summary (no credentials).
    fn describe(&self) -> String;
}

/// A resolved storage location, from `storage.url` / `storage.bucket_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// A local folder.
    Local(PathBuf),
    /// An S3 bucket and an optional key prefix inside it.
    S3 {
        /// The bucket.
        bucket: String,
        /// Prepended to every key.
        prefix: KeyPrefix,
    },
}

impl Default for StorageLocation {
    fn default() -> Self {
        StorageLocation::Local(PathBuf::from("./data"))
    }
}

impl StorageLocation {
    /// `url` when set, else `s3://{bucket}` when a bucket is set, else `./data`.
    pub fn resolve(url: &str, bucket: &str) -> Result<Self, StorageError> {
        let url = url.trim();
        let bucket = bucket.trim();
        if !url.is_empty() {
            return Self::parse(url);
        }
        if !bucket.is_empty() {
            return Self::parse(&format!("s3://{bucket}"));
        }
        Ok(Self::default())
    }

    /// Parses `s3://bucket/prefix`, `file:///path` or a plain path.
    pub fn parse(url: &str) -> Result<Self, StorageError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            if !bucket_ok {
                return Err(StorageError::Config(format!(
                    "invalid S3 bucket {bucket:?}: expected 3 to 63 of [a-z0-9.-]"
                )));
            }
            return Ok(StorageLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: KeyPrefix::parse(prefix)?,
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(StorageError::Config(
                    "file:// URL without a path".to_owned(),
                ));
            }
            return Ok(StorageLocation::Local(PathBuf::from(path)));
        }
        if url.contains("://") {
            return Err(StorageError::Config(format!(
                "unsupported storage URL scheme in {url:?}: expected s3://, file:// or a path"
            )));
        }
        Ok(StorageLocation::Local(PathBuf::from(url)))
    }
}

/// Opens the backend the settings name.
pub async fn open(settings: &StorageSettings) -> Result<Arc<dyn Storage>, StorageError> {
    match &settings.location {
        StorageLocation::Local(root) => Ok(Arc::new(local::LocalStorage::open(root).await?)),
        StorageLocation::S3 { bucket, prefix } => Ok(Arc::new(s3::S3Storage::new(
            settings,
            bucket.clone(),
            prefix.clone(),
        )?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            StorageLocation::resolve("", "").unwrap(),
            StorageLocation::Local("./data".into())
        );
        assert_eq!(
            StorageLocation::resolve("", "reports").unwrap(),
            StorageLocation::S3 {
                bucket: "reports".into(),
                prefix: KeyPrefix::parse("").unwrap()
            }
        );
        assert_eq!(
            StorageLocation::resolve("s3://b-1.x/vk/out", "ignored").unwrap(),
            StorageLocation::S3 {
                bucket: "b-1.x".into(),
                prefix: KeyPrefix::parse("vk/out").unwrap()
            }
        );
        assert_eq!(
            StorageLocation::parse("file:///tmp/x").unwrap(),
            StorageLocation::Local("/tmp/x".into())
        );
        for bad in ["s3://", "s3://UPPER", "s3://b/../x", "gs://b", "file://"] {
            assert!(StorageLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
