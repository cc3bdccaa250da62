//! Providers, models and retries (`providers:`, `models:`, `retry:`): how each provider
//! is reached, which targets serve a client-facing model, and how calls are retried.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Invalid, default_true, invalid, is_http_url};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
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

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
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

    /// The OpenTelemetry GenAI `gen_ai.provider.name` of this kind of provider.
    pub fn gen_ai_name(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Azure => "azure.ai.openai",
            ProviderKind::Vllm => "vllm",
            ProviderKind::Mock => "warden.mock",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
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

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
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

#[derive(Debug, Clone, Deserialize, JsonSchema)]
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

#[derive(Debug, Clone, Deserialize, JsonSchema)]
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

fn default_weight() -> u32 {
    1
}

impl RetrySettings {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if self.max_attempts == 0 {
            return Err(invalid(&["retry", "max_attempts"], "must be at least 1"));
        }
        Ok(())
    }
}

impl ProviderConfig {
    /// The fields the provider's kind requires, its URLs, its timeouts.
    pub(crate) fn validate(&self, name: &str) -> Result<(), Invalid> {
        let path = ["providers", name];
        let need = |field: &str, value: &Option<String>| match value.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => Ok(()),
            _ => Err(invalid(
                &path,
                format!("`{field}` is required for kind {}", self.kind.label()),
            )),
        };
        match self.kind {
            ProviderKind::Openai => need("api_key", &self.api_key)?,
            ProviderKind::Azure => {
                need("endpoint", &self.endpoint)?;
                need("api_version", &self.api_version)?;
                need("api_key", &self.api_key)?;
            }
            ProviderKind::Vllm => need("base_url", &self.base_url)?,
            ProviderKind::Mock => {}
        }
        for url in [&self.base_url, &self.endpoint].into_iter().flatten() {
            if !is_http_url(url) {
                return Err(invalid(&path, format!("`{url}` is not an http(s) URL")));
            }
        }
        let t = &self.timeouts;
        if [t.connect_ms, t.first_byte_ms, t.idle_ms, t.total_ms].contains(&0) {
            return Err(invalid(&path, "timeouts must be greater than 0"));
        }
        Ok(())
    }
}

impl ModelConfig {
    /// A relative `tokenizer.json` path is relative to the config file's directory.
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        if let Some(t) = self.tokenizer.as_mut()
            && t.ends_with(".json")
            && Path::new(t.as_str()).is_relative()
        {
            *t = base.join(&*t).display().to_string();
        }
    }
}

/// At least one model; each with targets on configured providers.
pub(crate) fn validate_models(
    models: &BTreeMap<String, ModelConfig>,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<(), Invalid> {
    if models.is_empty() {
        return Err(invalid(
            &["models"],
            "at least one model must be configured",
        ));
    }
    for (name, m) in models {
        let path = ["models", name.as_str()];
        if m.targets.is_empty() {
            return Err(invalid(&path, "at least one target is required"));
        }
        for t in &m.targets {
            if !providers.contains_key(&t.provider) {
                return Err(invalid(&path, format!("unknown provider `{}`", t.provider)));
            }
            if t.weight == 0 {
                return Err(invalid(&path, "target weight must be at least 1"));
            }
        }
    }
    Ok(())
}
