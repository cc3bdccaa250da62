//! Warden's configuration file (`warden.yaml`): typed settings, defaults, `${ENV}`
//! substitution and validation. A config that fails to load names its file, line and
//! reason; nothing here ever prints a secret value.

mod audit;
mod auth;
mod entity;
mod env;
mod limits;
mod locate;
mod pii;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use audit::{
    AuditConfig, CaptureMode, LockMode, ObjectLockConfig, OnFull, S3SinkConfig, SinkConfig,
    SubjectMode,
};
pub use auth::{
    ApiKeyConfig, AuthConfig, ClaimMapping, IntrospectionConfig, JwksSettings, JwtAlgorithm,
    JwtIssuerConfig,
};
pub use entity::Entity;
pub use env::substitute;
pub use limits::{
    Budget, BudgetPeriod, ConcurrencyLimit, KeyPart, LimitBackend, LimitProfile, LimitsConfig,
    OnStoreError, OnUnpriced, Period, RedisConfig, RequestLimit, TokenLimit,
};
pub use pii::{NerConfig, NerMode, PiiAction, PiiConfig, PiiProfile, RestoreSource, TokenInput};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the OpenAI-compatible listener.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Address of the admin listener (health, readiness, metrics).
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    /// Bearer token for `/admin/v1/*`; without it those endpoints answer 403.
    #[serde(default)]
    pub admin_token: Option<String>,
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub retry: RetrySettings,
    /// Rate limits; without this section requests are not rate-limited.
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
    /// PII redaction profiles; without this section prompts are forwarded as sent.
    #[serde(default)]
    pub pii: Option<PiiConfig>,
    /// The tamper-evident audit log; without this section no records are written.
    #[serde(default)]
    pub audit: Option<AuditConfig>,
    /// Authorization policies; without this section every authenticated caller may use
    /// every configured model.
    #[serde(default)]
    pub policy: Option<PolicyConfig>,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub models: BTreeMap<String, ModelConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Largest accepted request body (bytes); larger bodies get 413.
    pub max_body_bytes: usize,
    /// How long SIGTERM waits for in-flight requests and streams before exiting.
    pub shutdown_grace_seconds: u64,
    /// Worker threads of the proxy listener; 0 means one per CPU.
    pub threads: usize,
    /// Limit on reading one request body from the client.
    pub client_body_timeout_ms: u64,
    /// Limit on receiving one request's head (request line and headers), from its first
    /// byte to the blank line, however the client paces its reads.
    pub client_header_timeout_ms: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_body_bytes: 4 * 1024 * 1024,
            shutdown_grace_seconds: 30,
            threads: 0,
            client_body_timeout_ms: 30_000,
            client_header_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `warden=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Directory of policy files (`kind: Policy`); tests live in `DIR/tests`.
    pub dir: PathBuf,
    /// Reload on file changes (SIGHUP always reloads).
    #[serde(default = "default_true")]
    pub watch: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Total tries per request across the model's targets (1 = no retry).
    pub max_attempts: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 3,
            backoff_initial_ms: 50,
            backoff_max_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Openai,
    Azure,
    Vllm,
    Mock,
}

impl ProviderKind {
    pub fn label(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Azure => "azure",
            ProviderKind::Vllm => "vllm",
            ProviderKind::Mock => "mock",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// OpenAI-compatible base URL ending in `/v1` (openai, vllm).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Azure resource endpoint, e.g. `https://NAME.openai.azure.com`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Azure `api-version` query parameter.
    #[serde(default)]
    pub api_version: Option<String>,
    /// The provider's key; use `${ENV_VAR}` to read it from the environment.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Extra PEM CA bundle trusted for this provider, on top of the webpki roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Ask the provider for the usage chunk of every stream (`stream_options.include_usage`)
    /// so usage is exact; Warden removes it again when the client did not ask for it.
    #[serde(default = "default_true")]
    pub stream_usage: bool,
    /// Mock only: delay before the response starts.
    #[serde(default)]
    pub latency_ms: u64,
    /// Mock only: streaming pace; 0 streams as fast as possible.
    #[serde(default)]
    pub tokens_per_sec: u64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub connect_ms: u64,
    /// Until the response headers (and, for streams, the first chunk) arrive.
    pub first_byte_ms: u64,
    /// Longest gap between two chunks of a stream.
    pub idle_ms: u64,
    /// Whole exchange, stream included.
    pub total_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_ms: 5_000,
            first_byte_ms: 120_000,
            idle_ms: 60_000,
            total_ms: 600_000,
        }
    }
}

impl Timeouts {
    pub fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms)
    }
    pub fn first_byte(&self) -> Duration {
        Duration::from_millis(self.first_byte_ms)
    }
    pub fn idle(&self) -> Duration {
        Duration::from_millis(self.idle_ms)
    }
    pub fn total(&self) -> Duration {
        Duration::from_millis(self.total_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `owned_by` shown in `/v1/models`.
    #[serde(default)]
    pub owned_by: Option<String>,
    /// How prompt tokens are counted: `o200k_base`, `cl100k_base`, `estimate`, or a path
    /// to a Hugging Face `tokenizer.json` (relative to the config file); by default chosen from the first target's
    /// upstream model name (OpenAI families), else the estimate.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Completion tokens assumed for admission when a request sets no `max_tokens`.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u64,
    pub targets: Vec<TargetConfig>,
}

fn default_max_tokens() -> u64 {
    1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Name of an entry under `providers`.
    pub provider: String,
    /// Upstream model name (openai, vllm, mock) or deployment name (azure); defaults to
    /// the client-facing model name.
    #[serde(default)]
    pub model: Option<String>,
    /// Share of traffic among targets of the same priority.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Lower priorities are tried first; higher ones are fallbacks.
    #[serde(default)]
    pub priority: u32,
}

/// The position and the message (without serde's trailing "at line …") of a YAML error.
pub fn yaml_error(e: &serde_yaml_ng::Error) -> (Option<(usize, usize)>, String) {
    let text = e.to_string();
    let message = text.split(" at line ").next().unwrap_or(&text).to_string();
    (e.location().map(|l| (l.line(), l.column())), message)
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_admin_listen() -> String {
    "127.0.0.1:9090".into()
}
fn default_weight() -> u32 {
    1
}

/// A configuration error that names the file and, where known, the line and column.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", position.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl Config {
    /// Reads, substitutes, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let raw = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            position: None,
            message: format!("cannot read: {e}"),
        })?;
        let mut config = Self::from_str_named(&raw, &file)?;
        // Relative paths are relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(policy) = config.policy.as_mut()
            && policy.dir.is_relative()
        {
            policy.dir = base.join(&policy.dir);
        }
        if let Some(ner) = config.pii.as_mut().and_then(|p| p.ner.as_mut()) {
            ner.model_dir = base.join(&ner.model_dir);
            ner.runtime = base.join(&ner.runtime);
        }
        for model in config.models.values_mut() {
            if let Some(t) = model.tokenizer.as_mut()
                && t.ends_with(".json")
                && Path::new(t.as_str()).is_relative()
            {
                *t = base.join(&*t).display().to_string();
            }
        }
        if let Some(audit) = config.audit.as_mut() {
            audit.spool_dir = base.join(&audit.spool_dir);
            if let SinkConfig::File { dir } = &mut audit.sink {
                *dir = base.join(&*dir);
            }
            if let Some(key) = audit.signing_key_file.as_mut() {
                *key = base.join(&*key);
            }
        }
        if let Some(keys_file) = config.auth.api_keys_file.clone() {
            let keys_path = base.join(keys_file);
            let keys_name = keys_path.display().to_string();
            let text = std::fs::read_to_string(&keys_path).map_err(|e| ConfigError {
                file: keys_name.clone(),
                position: None,
                message: format!("cannot read: {e}"),
            })?;
            let keys: Vec<ApiKeyConfig> = if text.trim().is_empty() {
                Vec::new()
            } else {
                serde_yaml_ng::from_str(&text).map_err(|e| {
                    let (position, message) = yaml_error(&e);
                    ConfigError {
                        file: keys_name.clone(),
                        position,
                        message,
                    }
                })?
            };
            if keys.is_empty() {
                // Authentication stays on: an empty key set would make every caller
                // anonymous instead.
                return Err(ConfigError {
                    file: keys_name,
                    position: None,
                    message: "holds no API keys; with `auth.api_keys_file` set, at least one key is required".into(),
                });
            }
            if let Some(bad) = keys.iter().find(|k| !is_sha256_hex(&k.sha256)) {
                return Err(ConfigError {
                    file: keys_name,
                    position: None,
                    message: format!("key `{}`: `sha256` must be 64 hex digits", bad.id),
                });
            }
            config.auth.api_keys.extend(keys);
        }
        Ok(config)
    }

    /// Parses config text with `${VAR}` taken from the process environment; `file` is only
    /// used in error messages.
    pub fn from_str_named(raw: &str, file: &str) -> Result<Config, ConfigError> {
        Self::from_str_with_env(raw, file, |name| std::env::var(name).ok())
    }

    /// Parses config text with `${VAR}` resolved by `lookup`.
    pub fn from_str_with_env(
        raw: &str,
        file: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = substitute(raw, lookup).map_err(|e| ConfigError {
            file: file.to_string(),
            position: Some((e.line, e.column)),
            message: e.message,
        })?;
        let config: Config = serde_yaml_ng::from_str(&text).map_err(|e| {
            let (position, message) = yaml_error(&e);
            ConfigError {
                file: file.to_string(),
                position,
                message,
            }
        })?;
        config.validate().map_err(|(path, message)| ConfigError {
            file: file.to_string(),
            position: locate::key_path(&text, &path),
            message: format!("{}: {message}", path.join(".")),
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (Vec<String>, String)> {
        let err = |path: &[&str], msg: String| {
            Err((path.iter().map(|s| s.to_string()).collect::<Vec<_>>(), msg))
        };
        for addr in [&self.listen, &self.admin_listen] {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return err(
                    &["listen"],
                    format!("`{addr}` is not a socket address (HOST:PORT)"),
                );
            }
        }
        if self.server.max_body_bytes == 0 {
            return err(
                &["server", "max_body_bytes"],
                "must be greater than 0".into(),
            );
        }
        if let Some(a) = &self.audit {
            if matches!(a.sink, SinkConfig::S3(_)) && a.signing_key_file.is_none() {
                return err(
                    &["audit", "sink"],
                    "an `s3` sink needs `audit.signing_key_file` (a key kept apart from the spool, e.g. a mounted secret; `warden audit keygen --out FILE` makes one)".into(),
                );
            }
            if a.digest_interval_seconds == 0 {
                return err(
                    &["audit", "digest_interval_seconds"],
                    "must be at least 1".into(),
                );
            }
        }
        if self.retry.max_attempts == 0 {
            return err(&["retry", "max_attempts"], "must be at least 1".into());
        }
        for (i, key) in self.auth.api_keys.iter().enumerate() {
            if !is_sha256_hex(&key.sha256) {
                return err(
                    &["auth", "api_keys"],
                    format!("entry {i} (`{}`): `sha256` must be 64 hex digits", key.id),
                );
            }
        }
        let is_url = |url: &str| {
            url.parse::<http::Uri>().ok().is_some_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            })
        };
        for issuer in &self.auth.jwt_issuers {
            let path = ["auth", "jwt_issuers"];
            for url in std::iter::once(&issuer.issuer).chain(issuer.jwks_uri.as_ref()) {
                if !is_url(url) {
                    return err(&path, format!("`{url}` is not an http(s) URL"));
                }
            }
            if issuer.audiences.is_empty() || issuer.algorithms.is_empty() {
                return err(
                    &path,
                    format!(
                        "issuer `{}` needs at least one audience and one algorithm",
                        issuer.issuer
                    ),
                );
            }
        }
        if let Some(i) = &self.auth.introspection
            && !is_url(&i.endpoint)
        {
            return err(
                &["auth", "introspection"],
                format!("`{}` is not an http(s) URL", i.endpoint),
            );
        }
        for (name, p) in &self.providers {
            let path = ["providers", name.as_str()];
            let need = |field: &str, value: &Option<String>| -> Result<(), (Vec<String>, String)> {
                match value.as_deref().map(str::trim) {
                    Some(v) if !v.is_empty() => Ok(()),
                    _ => err(
                        &path,
                        format!("`{field}` is required for kind {}", p.kind.label()),
                    ),
                }
            };
            match p.kind {
                ProviderKind::Openai => need("api_key", &p.api_key)?,
                ProviderKind::Azure => {
                    need("endpoint", &p.endpoint)?;
                    need("api_version", &p.api_version)?;
                    need("api_key", &p.api_key)?;
                }
                ProviderKind::Vllm => need("base_url", &p.base_url)?,
                ProviderKind::Mock => {}
            }
            for url in [&p.base_url, &p.endpoint].into_iter().flatten() {
                let ok = url.parse::<http::Uri>().ok().is_some_and(|u| {
                    matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
                });
                if !ok {
                    return err(&path, format!("`{url}` is not an http(s) URL"));
                }
            }
            let t = &p.timeouts;
            if [t.connect_ms, t.first_byte_ms, t.idle_ms, t.total_ms].contains(&0) {
                return err(&path, "timeouts must be greater than 0".into());
            }
        }
        if let Some(l) = &self.limits {
            if let Some(d) = &l.default_profile
                && !l.profiles.contains_key(d)
            {
                return err(
                    &["limits", "default_profile"],
                    format!("unknown profile `{d}`"),
                );
            }
            if l.backend == LimitBackend::Redis && l.redis.is_none() {
                return err(
                    &["limits"],
                    "`redis: {url}` is required for backend redis".into(),
                );
            }
            for (name, p) in &l.profiles {
                let path = ["limits", "profiles", name.as_str()];
                if p.requests.iter().any(|r| r.limit == 0)
                    || p.tokens.iter().any(|r| r.limit == 0)
                    || p.concurrent.iter().any(|r| r.limit == 0)
                {
                    return err(&path, "limits must be at least 1".into());
                }
                for b in &p.budgets {
                    match (b.usd, b.tokens) {
                        (Some(usd), None) if usd > 0.0 && usd.is_finite() => {}
                        (None, Some(tokens)) if tokens > 0 => {}
                        _ => {
                            return err(
                                &path,
                                format!(
                                    "budget `{}` needs exactly one of `usd` or `tokens`, greater than 0",
                                    b.label()
                                ),
                            );
                        }
                    }
                    if b.soft.iter().any(|s| !(*s > 0.0 && *s < 1.0)) {
                        return err(
                            &path,
                            format!(
                                "budget `{}`: `soft` shares must be between 0 and 1",
                                b.label()
                            ),
                        );
                    }
                }
            }
        }
        if let Some(p) = &self.pii {
            if let Some(d) = &p.default_profile
                && !p.profiles.contains_key(d)
            {
                return err(
                    &["pii", "default_profile"],
                    format!("unknown profile `{d}`"),
                );
            }
            for (name, profile) in &p.profiles {
                for entity in profile.actions.keys() {
                    if Entity::from_name(entity).is_none() {
                        return err(
                            &["pii", "profiles", name.as_str(), "actions"],
                            format!("unknown entity type `{entity}`"),
                        );
                    }
                }
                if !(0.0..=1.0).contains(&profile.min_score) {
                    return err(
                        &["pii", "profiles", name.as_str()],
                        "`min_score` must be between 0 and 1".into(),
                    );
                }
            }
        }
        if self.models.is_empty() {
            return err(&["models"], "at least one model must be configured".into());
        }
        for (name, m) in &self.models {
            let path = ["models", name.as_str()];
            if m.targets.is_empty() {
                return err(&path, "at least one target is required".into());
            }
            for t in &m.targets {
                if !self.providers.contains_key(&t.provider) {
                    return err(&path, format!("unknown provider `{}`", t.provider));
                }
                if t.weight == 0 {
                    return err(&path, "target weight must be at least 1".into());
                }
            }
        }
        Ok(())
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_grace_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "providers:\n  m:\n    kind: mock\nmodels:\n  a:\n    targets:\n      - provider: m\n";

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_str_named(MINIMAL, "t.yaml").unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.admin_listen, "127.0.0.1:9090");
        assert_eq!(c.server.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(c.models["a"].targets[0].weight, 1);
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let bad = "providers:\n  m:\n    kind: mock\n    bogus: 1\nmodels: {}\n";
        let e = Config::from_str_named(bad, "w.yaml").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("w.yaml:4:"), "{text}");
        assert!(text.contains("bogus"), "{text}");
    }

    #[test]
    fn semantic_errors_point_at_the_key() {
        let bad = "providers:\n  m:\n    kind: mock\nmodels:\n  a:\n    targets:\n      - provider: nope\n";
        let e = Config::from_str_named(bad, "w.yaml").unwrap_err();
        assert_eq!(e.position, Some((5, 3)), "{e}");
        assert!(e.to_string().contains("unknown provider `nope`"), "{e}");
    }

    #[test]
    fn missing_env_var_is_reported_without_value() {
        let text = format!("{MINIMAL}listen: ${{WARDEN_TEST_SURELY_UNSET_VAR}}\n");
        let e = Config::from_str_named(&text, "w.yaml").unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(8));
        assert!(e.message.contains("WARDEN_TEST_SURELY_UNSET_VAR"));
    }

    #[test]
    fn an_s3_sink_needs_a_signing_key_kept_apart_from_the_spool() {
        let audit = "audit:\n  spool_dir: spool\n  sink:\n    kind: s3\n    bucket: b\n";
        let err = Config::from_str_named(&format!("{MINIMAL}{audit}"), "t.yaml").unwrap_err();
        assert!(err.to_string().contains("signing_key_file"), "{err}");
        let ok = format!("{MINIMAL}{audit}  signing_key_file: /run/secrets/audit.pem\n");
        assert!(Config::from_str_named(&ok, "t.yaml").is_ok());
    }

    #[test]
    fn an_api_keys_file_without_keys_is_a_start_up_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("w.yaml"),
            format!("{MINIMAL}auth:\n  api_keys_file: keys.yaml\n"),
        )
        .unwrap();
        for empty in ["", "\n# rotated out\n", "[]\n"] {
            std::fs::write(dir.path().join("keys.yaml"), empty).unwrap();
            let err = Config::load(&dir.path().join("w.yaml")).unwrap_err();
            assert!(err.to_string().contains("holds no API keys"), "{err}");
        }
    }

    #[test]
    fn api_keys_file_is_merged_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let hash = "a".repeat(64);
        std::fs::write(
            dir.path().join("keys.yaml"),
            format!("- id: batch\n  sha256: {hash}\n  roles: [batch]\n"),
        )
        .unwrap();
        let cfg = format!("{MINIMAL}auth:\n  api_keys_file: keys.yaml\n");
        std::fs::write(dir.path().join("w.yaml"), cfg).unwrap();
        let c = Config::load(&dir.path().join("w.yaml")).unwrap();
        assert_eq!(c.auth.api_keys.len(), 1);
        assert_eq!(c.auth.api_keys[0].roles, vec!["batch"]);

        std::fs::write(
            dir.path().join("keys.yaml"),
            "- id: bad\n  sha256: nothex\n",
        )
        .unwrap();
        let e = Config::load(&dir.path().join("w.yaml")).unwrap_err();
        assert!(e.to_string().contains("keys.yaml"), "{e}");
    }

    #[test]
    fn shipped_configs_are_valid() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![root.join("warden.yaml")];
        for entry in std::fs::read_dir(root.join("examples")).unwrap() {
            files.push(entry.unwrap().path());
        }
        assert!(files.len() >= 5);
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.display().to_string();
            let config = Config::from_str_with_env(&text, &name, |_| Some("test-value".into()));
            assert!(config.is_ok(), "{}", config.unwrap_err());
        }
    }

    #[test]
    fn provider_kinds_require_their_fields() {
        let bad = "providers:\n  az:\n    kind: azure\n    endpoint: https://x.openai.azure.com\nmodels:\n  a:\n    targets:\n      - provider: az\n";
        let e = Config::from_str_named(bad, "w.yaml").unwrap_err();
        assert!(e.message.contains("api_version"), "{e}");
        assert_eq!(e.position, Some((2, 3)));
    }
}
