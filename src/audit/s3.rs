//! The S3 sink (aws-sdk-s3 over rustls; any S3-compatible store with endpoint, region,
//! credentials and path-style addressing): segments are uploaded zstd-compressed, every
//! object with a SHA-256 checksum and, when configured, Object Lock (COMPLIANCE or
//! GOVERNANCE) with a retain-until date. An object that already exists with the same
//! content is accepted (re-upload after a crash is idempotent); one with other content
//! is an error, never overwritten.

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::config::{LockMode, S3SinkConfig};

pub struct S3Sink {
    client: aws_sdk_s3::Client,
    config: S3SinkConfig,
    rt: tokio::runtime::Runtime,
}

/// Builds a client from the sink settings (also used by `audit verify --s3`).
pub fn client(config: &S3SinkConfig) -> anyhow::Result<aws_sdk_s3::Client> {
    let access = config
        .access_key_id
        .clone()
        .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok());
    let secret = config
        .secret_access_key
        .clone()
        .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok());
    let (Some(access), Some(secret)) = (access, secret) else {
        anyhow::bail!(
            "S3 credentials missing: set access_key_id/secret_access_key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        );
    };
    let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .operation_timeout(Duration::from_millis(config.timeout_ms))
        .build();
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .credentials_provider(Credentials::new(
            access,
            secret,
            None,
            None,
            "warden-config",
        ))
        .force_path_style(config.path_style)
        .timeout_config(timeouts);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(aws_sdk_s3::Client::from_conf(builder.build()))
}

impl S3Sink {
    pub fn new(config: &S3SinkConfig) -> anyhow::Result<S3Sink> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(S3Sink {
            client: client(config)?,
            config: config.clone(),
            rt,
        })
    }

    fn key(&self, name: &str) -> String {
        let prefix = self.config.prefix.trim_matches('/');
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        }
    }

    /// Uploads `bytes` as `name` (segments compressed, as `name.zst`) once.
    pub fn put(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let (key, body) = if name.ends_with(".jsonl") {
            (
                self.key(&format!("{name}.zst")),
                zstd::encode_all(bytes, 3)?,
            )
        } else {
            (self.key(name), bytes.to_vec())
        };
        let content_sha = hex::encode(Sha256::digest(bytes));
        self.rt.block_on(self.put_once(&key, body, &content_sha))
    }

    async fn put_once(&self, key: &str, body: Vec<u8>, content_sha: &str) -> anyhow::Result<()> {
        let head = self
            .client
            .head_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await;
        if let Ok(existing) = head {
            let same = existing
                .metadata()
                .and_then(|m| m.get("content-sha256"))
                .is_some_and(|v| v == content_sha);
            if same {
                return Ok(());
            }
            anyhow::bail!(
                "s3://{}/{key} already exists with different content",
                self.config.bucket
            );
        }
        let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
        let mut put = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(checksum)
            .metadata("content-sha256", content_sha);
        if let Some(lock) = self.config.object_lock {
            let until = std::time::SystemTime::now()
                + Duration::from_secs(u64::from(lock.retain_days) * 86_400);
            let mode = match lock.mode {
                LockMode::Compliance => ObjectLockMode::Compliance,
                LockMode::Governance => ObjectLockMode::Governance,
            };
            put = put
                .object_lock_mode(mode)
                .object_lock_retain_until_date(DateTime::from(until));
        }
        put.send().await.map_err(|e| {
            anyhow::anyhow!(
                "put s3://{}/{key}: {}",
                self.config.bucket,
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        })?;
        Ok(())
    }

    /// Downloads every object under `prefix` into `dest`, decompressing segments, so
    /// `verify_dir` can check them.
    pub fn download_all(config: &S3SinkConfig, dest: &std::path::Path) -> anyhow::Result<usize> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = client(config)?;
        rt.block_on(async {
            let prefix = config.prefix.trim_matches('/');
            let list_prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            let mut token = None;
            let mut count = 0;
            loop {
                let page = client
                    .list_objects_v2()
                    .bucket(&config.bucket)
                    .prefix(&list_prefix)
                    .set_continuation_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "list s3://{}/{list_prefix}: {}",
                            config.bucket,
                            aws_sdk_s3::error::DisplayErrorContext(e)
                        )
                    })?;
                for obj in page.contents() {
                    let Some(key) = obj.key() else { continue };
                    let rel = key.strip_prefix(&list_prefix).unwrap_or(key);
                    let data = client
                        .get_object()
                        .bucket(&config.bucket)
                        .key(key)
                        .send()
                        .await
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "get {key}: {}",
                                aws_sdk_s3::error::DisplayErrorContext(e)
                            )
                        })?
                        .body
                        .collect()
                        .await?
                        .into_bytes();
                    let (rel, data) = match rel.strip_suffix(".zst") {
                        Some(plain) => (plain.to_string(), zstd::decode_all(&data[..])?),
                        None => (rel.to_string(), data.to_vec()),
                    };
                    let path = dest.join(&rel);
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    std::fs::write(path, data)?;
                    count += 1;
                }
                match page.next_continuation_token() {
                    Some(t) => token = Some(t.to_string()),
                    None => break,
                }
            }
            Ok(count)
        })
    }
}
