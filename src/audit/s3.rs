//! The S3 sink (aws-sdk-s3 over rustls; any S3-compatible store with endpoint, region,
//! credentials and path-style addressing): segments are uploaded zstd-compressed, every
//! object with a SHA-256 checksum and, when configured, Object Lock (COMPLIANCE or
//! GOVERNANCE) with a retain-until date. Uploads are conditional (`If-None-Match: *`), so
//! no race can overwrite an object: one that already exists with the same content is
//! accepted (re-upload after a crash is idempotent), one with other content is an error.
//! Verification downloads every object *version*: a key with a delete marker or with
//! versions of different content was deleted or overwritten, which is reported, and the
//! first version is the one verified. Object keys are checked before they become paths.

use std::collections::BTreeMap;
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
    /// Per chain, the newest digest seen and its key: later listings start after it.
    digests_seen: std::sync::Mutex<BTreeMap<String, (u64, String)>>,
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
            digests_seen: Default::default(),
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

    /// Every chain under the prefix with the number of its newest digest. Each chain's
    /// digests are listed from the newest one seen before, so a listing stays short.
    pub fn latest_digests(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        self.rt.block_on(async {
            let root = self.key("");
            let chains = self.common_prefixes(&root).await?;
            let mut seen = self
                .digests_seen
                .lock()
                .map_err(|_| anyhow::anyhow!("digest listing state poisoned"))?
                .clone();
            for chain_prefix in chains {
                let chain = chain_prefix
                    .strip_prefix(&root)
                    .unwrap_or(&chain_prefix)
                    .trim_end_matches('/')
                    .to_string();
                let digests = format!("{chain_prefix}digests/");
                let mut after = seen.get(&chain).map(|(_, key)| key.clone());
                loop {
                    let page = self
                        .client
                        .list_objects_v2()
                        .bucket(&self.config.bucket)
                        .prefix(&digests)
                        .set_start_after(after.clone())
                        .send()
                        .await
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "list {digests}: {}",
                                aws_sdk_s3::error::DisplayErrorContext(e)
                            )
                        })?;
                    for key in page.contents().iter().filter_map(|o| o.key()) {
                        let name = key.rsplit('/').next().unwrap_or_default();
                        if let Some(n) = super::sink::digest_number(name)
                            && seen.get(&chain).is_none_or(|(m, _)| n > *m)
                        {
                            seen.insert(chain.clone(), (n, key.to_string()));
                        }
                        after = Some(key.to_string());
                    }
                    if page.is_truncated() != Some(true) {
                        break;
                    }
                }
            }
            let latest = seen.iter().map(|(c, (n, _))| (c.clone(), *n)).collect();
            if let Ok(mut kept) = self.digests_seen.lock() {
                *kept = seen;
            }
            Ok(latest)
        })
    }

    /// The "directories" directly under `prefix`.
    async fn common_prefixes(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.config.bucket)
                .prefix(prefix)
                .delimiter("/")
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "list {prefix}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                })?;
            out.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
            match page.next_continuation_token() {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(out),
            }
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
        let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
        let mut put = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(key)
            .if_none_match("*")
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
        let err = match put.send().await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let status = err.raw_response().map(|r| r.status().as_u16());
        if status != Some(412) {
            anyhow::bail!(
                "put s3://{}/{key}: {}",
                self.config.bucket,
                aws_sdk_s3::error::DisplayErrorContext(err)
            );
        }
        // The key exists: a retry after a crash stored it already, or something else did.
        let existing = self
            .client
            .head_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "head s3://{}/{key}: {}",
                    self.config.bucket,
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })?;
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
        )
    }

    /// Downloads every object under `prefix` into `dest`, decompressing segments, so
    /// `verify_dir` can check them. Every version is listed: deleted or overwritten keys
    /// are problems, and the first version of each key is the one downloaded.
    pub fn download_all(
        config: &S3SinkConfig,
        dest: &std::path::Path,
    ) -> anyhow::Result<Downloaded> {
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
            let keys = list_versions(&client, &config.bucket, &list_prefix).await?;
            let mut out = Downloaded::default();
            for (key, history) in keys {
                let rel = key.strip_prefix(&list_prefix).unwrap_or(&key);
                let Some(rel) = rel.strip_suffix(".zst").map_or(Some(rel), Some) else {
                    continue;
                };
                let Some(path) = safe_path(dest, rel) else {
                    out.problems
                        .push(format!("{key}: not a safe object key for an audit log; skipped"));
                    continue;
                };
                if history.deleted {
                    out.problems.push(format!(
                        "{key}: was deleted (a delete marker); audit objects are never deleted"
                    ));
                }
                let mut tags: Vec<&str> = history.versions.iter().map(|v| v.etag.as_str()).collect();
                tags.dedup();
                if tags.len() > 1 {
                    out.problems.push(format!(
                        "{key}: was overwritten ({} versions with different content); the first version is verified",
                        history.versions.len()
                    ));
                }
                let Some(first) = history.versions.first() else {
                    continue; // only delete markers: nothing to read
                };
                let data = client
                    .get_object()
                    .bucket(&config.bucket)
                    .key(&key)
                    .set_version_id(first.id.clone())
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("get {key}: {}", aws_sdk_s3::error::DisplayErrorContext(e))
                    })?
                    .body
                    .collect()
                    .await?
                    .into_bytes();
                let data = if key.ends_with(".zst") {
                    zstd::decode_all(&data[..])?
                } else {
                    data.to_vec()
                };
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(path, data)?;
                out.objects += 1;
            }
            Ok(out)
        })
    }
}

/// What `download_all` fetched and found wrong with the bucket.
#[derive(Debug, Default)]
pub struct Downloaded {
    pub objects: usize,
    pub problems: Vec<String>,
}

/// One version of an object.
struct Version {
    id: Option<String>,
    etag: String,
}

/// The versions of one key, oldest first, and whether it was ever deleted.
#[derive(Default)]
struct History {
    versions: Vec<Version>,
    deleted: bool,
}

async fn list_versions(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, History>> {
    let mut keys: std::collections::BTreeMap<String, History> = Default::default();
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let page = client
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "list versions of s3://{bucket}/{prefix}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })?;
        for v in page.versions() {
            let Some(key) = v.key() else { continue };
            keys.entry(key.to_string())
                .or_default()
                .versions
                .push(Version {
                    id: v.version_id().map(str::to_string),
                    etag: v.e_tag().unwrap_or_default().to_string(),
                });
        }
        for m in page.delete_markers() {
            if let Some(key) = m.key() {
                keys.entry(key.to_string()).or_default().deleted = true;
            }
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() {
            break;
        }
    }
    // S3 lists a key's versions newest first.
    for history in keys.values_mut() {
        history.versions.reverse();
    }
    Ok(keys)
}

/// `dest/rel` when `rel` is a plain relative path (no `..`, no root, no empty parts).
fn safe_path(dest: &std::path::Path, rel: &str) -> Option<std::path::PathBuf> {
    let parts: Vec<&str> = rel.split('/').collect();
    let plain = |p: &&str| !p.is_empty() && *p != "." && *p != ".." && !p.contains(['\\', '\0']);
    parts.iter().all(plain).then(|| {
        parts
            .iter()
            .fold(dest.to_path_buf(), |path, part| path.join(part))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_never_leave_the_download_directory() {
        let dest = std::path::Path::new("/tmp/verify");
        assert_eq!(
            safe_path(dest, "replica-a/2026/12/01/seg-1.jsonl"),
            Some(dest.join("replica-a/2026/12/01/seg-1.jsonl"))
        );
        for bad in [
            "../outside",
            "a/../../etc/passwd",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a\\..\\b",
            "",
        ] {
            assert_eq!(safe_path(dest, bad), None, "{bad}");
        }
    }
}
