//! Warden's configuration file (`warden.yaml`): reading, `${ENV}` substitution, parsing
//! and the order of the checks. Each section owns its settings, defaults, validation and
//! path resolution in its own file (`server`, `auth`, `providers`, `limits`, `pii`,
//! `audit`, `policy`); this module only sequences them. A config that fails to load names
//! its file, line and reason; nothing here ever prints a secret value.

mod audit;
mod auth;
mod entity;
mod env;
mod limits;
pub mod locate;
mod pii;
mod policy;
mod providers;
mod server;
mod state;
mod telemetry;
mod tools;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

pub use audit::{
    AuditConfig, CaptureMode, LockMode, ObjectLockConfig, OnFull, S3SinkConfig, SinkConfig,
    SubjectMode,
};
pub use auth::{
    ApiKeyConfig, AuthConfig, ClaimMapping, IntrospectionConfig, JwksSettings, JwtAlgorithm,
    JwtIssuerConfig, MtlsIdentityConfig,
};
pub use entity::Entity;
pub use env::substitute;
pub use limits::{
    Budget, BudgetPeriod, ConcurrencyLimit, KeyPart, LimitProfile, LimitsConfig, OnStoreError,
    OnUnpriced, Period, RequestLimit, TagScope, TokenLimit,
};
pub use pii::{
    NerConfig, NerMode, PiiAction, PiiConfig, PiiProfile, RestoreSource, ScanOutput, TokenInput,
};
pub use policy::PolicyConfig;
pub use providers::{
    ModelConfig, ProviderConfig, ProviderKind, RetrySettings, TargetConfig, Timeouts,
};
pub use server::{ClientAuth, ListenerTls, LogFormat, LogSettings, ServerSettings};
pub use state::{
    DEFAULT_LOCAL_MAX_ENTRIES, RedisConfig, RedisTopology, SentinelConfig, StateBackend,
    StateConfig,
};
pub use telemetry::{TelemetryConfig, TracesConfig};
pub use tools::{ApprovalsConfig, BackendConfig, BackendKind, SelectionConfig, ToolsConfig};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
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
    /// OpenTelemetry export; without this section nothing is traced.
    #[serde(default)]
    pub telemetry: Option<TelemetryConfig>,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub retry: RetrySettings,
    /// Where shared state (limit counters, usage) lives; in process by default.
    #[serde(default)]
    pub state: Option<StateConfig>,
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
    /// The backends the policy directory's tools call; a tool naming a backend not
    /// configured here is refused at start-up.
    #[serde(default)]
    pub tools: Option<ToolsConfig>,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub models: BTreeMap<String, ModelConfig>,
}

pub(crate) fn default_true() -> bool {
    true
}

/// The position and the message (without serde's trailing "at line …") of a YAML error.
pub fn yaml_error(e: &serde_yaml_ng::Error) -> (Option<(usize, usize)>, String) {
    let text = e.to_string();
    let message = text.split(" at line ").next().unwrap_or(&text).to_string();
    (e.location().map(|l| (l.line(), l.column())), message)
}

/// A semantic error: the key path it is about (e.g. `limits.profiles.shop`) and what is
/// wrong. Each section's `validate` returns one; `Config` turns it into a [`ConfigError`]
/// with the key's line.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub path: Vec<String>,
    pub message: String,
}

pub(crate) fn invalid(path: &[&str], message: impl Into<String>) -> Invalid {
    Invalid {
        path: path.iter().map(|s| s.to_string()).collect(),
        message: message.into(),
    }
}

/// Whether `url` is an absolute http(s) URL.
pub(crate) fn is_http_url(url: &str) -> bool {
    url.parse::<http::Uri>()
        .ok()
        .is_some_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
}

pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_admin_listen() -> String {
    "127.0.0.1:9090".into()
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
        config.server.resolve_paths(base);
        if let Some(state) = config.state.as_mut() {
            state.resolve_paths(base);
        }
        if let Some(redis) = config.limits.as_mut().and_then(|l| l.redis.as_mut()) {
            redis.resolve_paths(base);
        }
        if let Some(policy) = config.policy.as_mut() {
            policy.resolve_paths(base);
        }
        if let Some(pii) = config.pii.as_mut() {
            pii.resolve_paths(base);
        }
        for model in config.models.values_mut() {
            model.resolve_paths(base);
        }
        if let Some(audit) = config.audit.as_mut() {
            audit.resolve_paths(base);
        }
        if let Some(tools) = config.tools.as_mut() {
            tools.resolve_paths(base);
        }
        if let Some(telemetry) = config.telemetry.as_mut() {
            telemetry.resolve_paths(base);
        }
        config.auth.merge_keys_file(base)?;
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
        config
            .validate()
            .map_err(|Invalid { path, message }| ConfigError {
                file: file.to_string(),
                position: locate::key_path(&text, &path),
                message: format!("{}: {message}", path.join(".")),
            })?;
        Ok(config)
    }

    /// Checks every section, in file order; the first problem found is reported.
    fn validate(&self) -> Result<(), Invalid> {
        server::validate_listeners(&self.listen, &self.admin_listen)?;
        self.server.validate()?;
        if let Some(telemetry) = &self.telemetry {
            telemetry.validate()?;
        }
        if let Some(audit) = &self.audit {
            audit.validate()?;
        }
        self.retry.validate()?;
        self.auth.validate()?;
        if !self.auth.mtls_identities.is_empty()
            && self
                .server
                .tls
                .as_ref()
                .is_none_or(|t| t.client_ca_file.is_none())
        {
            return Err(invalid(
                &["auth", "mtls_identities"],
                "client certificates are only verified with `server.tls.client_ca_file`",
            ));
        }
        for (name, p) in &self.providers {
            p.validate(name)?;
        }
        if let Some(state) = &self.state {
            state.validate(&["state"])?;
            if self
                .limits
                .as_ref()
                .is_some_and(|l| l.backend.is_some() || l.redis.is_some())
            {
                return Err(invalid(
                    &["limits"],
                    "`limits.backend` and `limits.redis` are aliases of the `state` section; set only `state`",
                ));
            }
        }
        if let Some(limits) = &self.limits {
            if self.state.is_none() {
                // The aliases `limits.backend` and `limits.redis` configure the state.
                self.state().validate(&["limits"])?;
            }
            let cluster = self.state().redis.is_some_and(|r| r.is_cluster());
            limits.validate(cluster)?;
        }
        if let Some(pii) = &self.pii {
            pii.validate()?;
        }
        if let Some(tools) = &self.tools {
            tools.validate()?;
        }
        providers::validate_models(&self.models, &self.providers)
    }

    /// The JSON Schema of the configuration file (every key, with its type and doc
    /// comment), generated from these types.
    pub fn schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
    }

    /// Where shared state lives: the `state` section, else its aliases in `limits`, else
    /// in process.
    pub fn state(&self) -> StateConfig {
        if let Some(state) = &self.state {
            return state.clone();
        }
        match &self.limits {
            Some(l) => StateConfig {
                backend: l.backend.unwrap_or_default(),
                redis: l.redis.clone(),
                ..StateConfig::default()
            },
            None => StateConfig::default(),
        }
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
    fn a_ner_threshold_below_the_models_floor_is_refused() {
        let text = format!("{MINIMAL}pii:\n  profiles:\n    p:\n      ner_min_score: 0.3\n");
        let e = Config::from_str_named(&text, "w.yaml").unwrap_err();
        assert!(e.message.contains("ner_min_score"), "{e}");
    }

    #[test]
    fn scan_output_takes_a_flag_or_a_mode_and_ner_needs_the_model() {
        let load = |p: &str| Config::from_str_named(&format!("{MINIMAL}pii:\n{p}"), "w.yaml");
        let mode = |c: Config| c.pii.unwrap().profiles["p"].scan_output;
        let flag = load("  profiles:\n    p:\n      scan_output: true\n").unwrap();
        assert_eq!(mode(flag), ScanOutput::Patterns);
        let off = load("  profiles:\n    p:\n      scan_output: false\n").unwrap();
        assert_eq!(mode(off), ScanOutput::Off);
        let ner = load(
            "  ner:\n    model_dir: m\n    runtime: r.so\n  profiles:\n    p:\n      scan_output: ner\n",
        )
        .unwrap();
        assert_eq!(mode(ner), ScanOutput::Ner);
        let e = load("  profiles:\n    p:\n      scan_output: ner\n").unwrap_err();
        assert!(e.to_string().contains("scan_output"), "{e}");
        let e = load("  profiles:\n    p:\n      scan_output: maybe\n").unwrap_err();
        assert!(e.to_string().contains("false, patterns or ner"), "{e}");
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
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
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
