//! Where stage files go: `storage.url` / `storage.bucket_name` resolved into a local folder or
//! an S3 bucket and key prefix, checked when settings load.

use std::path::PathBuf;

use crate::key::{KeyError, KeyPrefix};

/// Why `storage.url` names no place to write.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// Not an S3 bucket name.
    #[error("invalid S3 bucket {0:?}: expected 3 to 63 of [a-z0-9.-]")]
    Bucket(String),
    /// `file://` and nothing after it.
    #[error("file:// URL without a path")]
    EmptyPath,
    /// A scheme other than `s3://` and `file://`.
    #[error("unsupported storage URL scheme in {0:?}: expected s3://, file:// or a path")]
    Scheme(String),
    /// The S3 key prefix is not a valid key prefix.
    #[error(transparent)]
    Prefix(#[from] KeyError),
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
    pub fn resolve(url: &str, bucket: &str) -> Result<Self, LocationError> {
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
    pub fn parse(url: &str) -> Result<Self, LocationError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            if !bucket_ok {
                return Err(LocationError::Bucket(bucket.to_owned()));
            }
            return Ok(StorageLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: KeyPrefix::parse(prefix)?,
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(LocationError::EmptyPath);
            }
            return Ok(StorageLocation::Local(PathBuf::from(path)));
        }
        if url.contains("://") {
            return Err(LocationError::Scheme(url.to_owned()));
        }
        Ok(StorageLocation::Local(PathBuf::from(url)))
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
