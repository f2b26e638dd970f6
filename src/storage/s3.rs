//! The S3 backend (aws-sdk-s3): AWS or any S3-compatible server (MinIO, Ceph, s3s).
//!
//! Built from settings alone, without `aws-config`: an endpoint URL (path-style addressing when
//! one is set, which S3-compatible servers expect), a region and static credentials. That keeps
//! the AWS build small (aws-config pulls STS and adds a minute to every clean build); the price
//! is no default credential chain, so credentials must be configured. Every call has an
//! operation timeout so a stalled server surfaces as `STORAGE_ERROR`, never as a hung job.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;

use super::{KeyPrefix, ObjectKey, Storage, StorageError};
use crate::settings::StorageSettings;

/// Upper bound on one S3 operation, retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

/// Objects in one bucket, under an optional key prefix.
#[derive(Debug, Clone)]
pub struct S3Storage {
    client: Client,
    bucket: String,
    base: KeyPrefix,
}

impl S3Storage {
    /// A client for `bucket` with the endpoint, region and credentials of `settings`.
    pub fn new(
        settings: &StorageSettings,
        bucket: String,
        base: KeyPrefix,
    ) -> Result<Self, StorageError> {
        if settings.access_key_id.is_empty() || settings.secret_access_key.is_empty() {
            return Err(StorageError::Config(
                "S3 storage needs storage.access_key_id and storage.secret_access_key \
                 (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
                    .to_owned(),
            ));
        }
        let credentials = Credentials::new(
            settings.access_key_id.expose(),
            settings.secret_access_key.expose(),
            None,
            None,
            "vk-parser-settings",
        );
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(Region::new(settings.region.clone()))
            .credentials_provider(credentials)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        if let Some(endpoint) = &settings.endpoint_url {
            config = config
                .endpoint_url(endpoint.as_str().trim_end_matches('/'))
                .force_path_style(true);
        }
        Ok(S3Storage {
            client: Client::from_conf(config.build()),
            bucket,
            base,
        })
    }

    fn full_key(&self, key: &ObjectKey) -> String {
        format!("{}{}", self.base, key)
    }

    fn s3_err<E>(op: &'static str, key: &str, err: E) -> StorageError
    where
        E: std::error::Error + 'static,
    {
        StorageError::S3 {
            op,
            key: key.to_owned(),
            message: DisplayErrorContext(&err).to_string(),
        }
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), StorageError> {
        let full = self.full_key(key);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| Self::s3_err("put", &full, e))?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StorageError> {
        let full = self.full_key(key);
        let response = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(StorageError::NotFound(key.to_string()))
            }
            Err(e) => return Err(Self::s3_err("get", &full, e)),
        };
        let body = response
            .body
            .collect()
            .await
            .map_err(|e| Self::s3_err("get", &full, e))?;
        Ok(body.into_bytes())
    }

    async fn exists(&self, key: &ObjectKey) -> Result<bool, StorageError> {
        let full = self.full_key(key);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(Self::s3_err("head", &full, e)),
        }
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<ObjectKey>, StorageError> {
        let full_prefix = format!("{}{}", self.base, prefix);
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Self::s3_err("list", &full_prefix, e))?;
            for object in page.contents() {
                let Some(full) = object.key() else { continue };
                let Some(relative) = full.strip_prefix(self.base.as_str()) else {
                    continue;
                };
                // Objects put there by other tools may not be valid keys: not ours, skip them.
                if let Ok(key) = ObjectKey::parse(relative) {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.base)
    }
}
