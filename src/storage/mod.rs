//! Where stage files live: a small [`Storage`] seam with two backends, chosen by URL.
//!
//! - `s3://bucket/optional/prefix`: [`s3::S3Storage`] (aws-sdk-s3; custom endpoint, path-style);
//! - `file:///abs/path` or a plain path (default `./data`): [`local::LocalStorage`].
//!
//! Keys are [`ObjectKey`]s, validated in [`key`], so a backend never sees a path it has to
//! second-guess. A stage is written through [`manifest::write_stage`]: its files first, then
//! `manifest.json`, so whoever sees a manifest sees complete data.

pub mod local;
pub mod manifest;
pub mod s3;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub use crate::key::{KeyError, KeyPrefix, ObjectKey, StagePrefix};
pub use manifest::{
    put_files, put_manifest, read_manifest, write_stage, Column, Completeness, ListTally, Manifest,
    ManifestFile, StageFile, StageMeta, MANIFEST_FILE,
};

use crate::settings::{StorageLocation, StorageSettings};

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
