//! Audit log settings: the local spool, the sink segments are shipped to, digest signing
//! and how subjects are pseudonymised.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Invalid, invalid};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Identifies this replica's hash chain (one chain per replica).
    #[serde(default = "default_chain_id")]
    pub chain_id: String,
    /// Local append-only spool, relative to the config file.
    pub spool_dir: PathBuf,
    #[serde(default = "default_segment_bytes")]
    pub segment_max_bytes: u64,
    #[serde(default = "default_segment_age")]
    pub segment_max_age_seconds: u64,
    /// Group commit: the spool is fsync'd at most this often.
    #[serde(default = "default_fsync_ms")]
    pub fsync_interval_ms: u64,
    /// Spool capacity; when reached `on_full` decides.
    #[serde(default = "default_spool_bytes")]
    pub spool_max_bytes: u64,
    #[serde(default)]
    pub on_full: OnFull,
    pub sink: SinkConfig,
    /// A signed digest is written at least this often, also when no request came: the
    /// newest digest proves how far the log reached (`warden audit verify --to`).
    #[serde(default = "default_digest_interval")]
    pub digest_interval_seconds: u64,
    /// PKCS#8 PEM Ed25519 key that signs digests (`warden audit keygen` makes one), kept
    /// apart from the data it protects (e.g. a mounted secret). Required with an `s3`
    /// sink; with a `file` sink it is generated in the spool when absent, with a warning.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// At shutdown, mark this chain closed in its final digest: the replica is gone for
    /// good (e.g. pods with generated names), and verification expects nothing more of
    /// it. Leave off for replicas that come back under the same `chain_id`.
    #[serde(default)]
    pub close_on_shutdown: bool,
    /// Environment variable holding the HMAC key that pseudonymises subjects.
    #[serde(default = "default_subject_key_env")]
    pub subject_key_env: String,
    /// How token subjects are written; a policy rule's `settings.audit.subject` overrides.
    #[serde(default)]
    pub subject: SubjectMode,
    /// Whether records carry the redacted prompt and answer; a policy rule's
    /// `settings.audit.capture` overrides.
    #[serde(default)]
    pub capture: CaptureMode,
    /// Most bytes of captured prompt and of captured answer per record (cut at a character
    /// boundary, marked `truncated`).
    #[serde(default = "default_capture_bytes")]
    pub capture_max_bytes: usize,
}

/// How the subject of an OAuth2 token appears in audit records (API key ids always appear
/// as they are: they name a key, not a person).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SubjectMode {
    /// HMAC-SHA256 with the key in `subject_key_env`: linkable, not readable.
    #[default]
    Pseudonymize,
    /// As the token says (service accounts, where the subject names no person).
    Plain,
}

/// Whether prompt and answer text is kept in audit records.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CaptureMode {
    /// Counts, names and decisions only.
    #[default]
    None,
    /// The request as the provider received it (after PII redaction) and the answer with
    /// its placeholders, scanned for personal data the model wrote; only for requests a
    /// PII profile redacted. Raw text is never stored.
    Redacted,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnFull {
    /// Refuse new requests with 503 until the spool drains.
    #[default]
    Reject,
    /// Hold new requests (up to their body timeout) until the spool drains.
    Block,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub enum SinkConfig {
    /// Sealed segments and digests copied to a local directory (relative to the config file).
    File { dir: PathBuf },
    /// Sealed segments (zstd) and digests uploaded to S3 or any S3-compatible store.
    S3(S3SinkConfig),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3SinkConfig {
    pub bucket: String,
    /// Key prefix; objects go to `PREFIX/CHAIN/YYYY/MM/DD/…`.
    #[serde(default)]
    pub prefix: String,
    /// Endpoint of an S3-compatible store; AWS's regional endpoint when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible stores.
    #[serde(default)]
    pub path_style: bool,
    /// Static credentials; `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` when absent.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Object Lock applied to every object; absent: no retention is requested.
    #[serde(default)]
    pub object_lock: Option<ObjectLockConfig>,
    #[serde(default = "default_s3_timeout")]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectLockConfig {
    pub mode: LockMode,
    pub retain_days: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    Compliance,
    Governance,
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_s3_timeout() -> u64 {
    30_000
}

fn default_chain_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "warden".into())
}
fn default_segment_bytes() -> u64 {
    8 * 1024 * 1024
}
fn default_segment_age() -> u64 {
    60
}
fn default_fsync_ms() -> u64 {
    20
}
fn default_spool_bytes() -> u64 {
    1024 * 1024 * 1024
}
fn default_digest_interval() -> u64 {
    3600
}
fn default_capture_bytes() -> usize {
    16 * 1024
}
fn default_subject_key_env() -> String {
    "WARDEN_AUDIT_SUBJECT_KEY".into()
}

impl AuditConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if matches!(self.sink, SinkConfig::S3(_)) && self.signing_key_file.is_none() {
            return Err(invalid(
                &["audit", "sink"],
                "an `s3` sink needs `audit.signing_key_file` (a key kept apart from the spool, e.g. a mounted secret; `warden audit keygen --out FILE` makes one)",
            ));
        }
        if self.digest_interval_seconds == 0 {
            return Err(invalid(
                &["audit", "digest_interval_seconds"],
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The spool, a file sink's directory and the signing key are relative to the config
    /// file's directory `base`.
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        self.spool_dir = base.join(&self.spool_dir);
        if let SinkConfig::File { dir } = &mut self.sink {
            *dir = base.join(&*dir);
        }
        if let Some(key) = self.signing_key_file.as_mut() {
            *key = base.join(&*key);
        }
    }
}
