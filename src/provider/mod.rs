//! Upstream providers: the adapters that turn a parsed request into a call to OpenAI,
//! Azure OpenAI, vLLM or the built-in mock, the model → targets routing table, and the
//! dispatcher that retries across targets until a byte has reached the client.
//! Provider keys live here and are only ever written into upstream request headers.

mod adapter;
mod balance;
pub mod dispatch;
pub mod transport;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, ProviderKind, Timeouts};
use crate::mock::{Mock, MockSettings};

pub use balance::attempt_order;
pub use dispatch::{Dispatched, Reply, UpstreamStream};
pub use transport::Transport;

pub use crate::http_client::{BoxError, UpstreamBody};

/// One configured provider.
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    pub timeouts: Timeouts,
    /// Whether streams ask this provider for their usage chunk.
    pub stream_usage: bool,
    pub transport: Box<dyn Transport>,
}

/// One target of a client-facing model.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: usize,
    /// Upstream model name, or Azure deployment.
    pub upstream_model: String,
    pub weight: u32,
    pub priority: u32,
}

/// A client-facing model and where it may be served.
#[derive(Debug, Clone)]
pub struct ModelRoute {
    pub name: String,
    pub owned_by: String,
    pub targets: Vec<Target>,
    /// How this model's prompts and completions are counted.
    pub encoding: crate::tokens::Encoding,
    /// Completion tokens assumed for admission when a request sets no `max_tokens`.
    pub default_max_tokens: u64,
}

/// Providers and models, built once from the configuration.
pub struct Upstreams {
    pub providers: Vec<Provider>,
    pub models: HashMap<String, ModelRoute>,
    /// Model names in configuration order, for `/v1/models`.
    pub model_names: Vec<String>,
}

impl Upstreams {
    pub fn from_config(config: &Config) -> anyhow::Result<Upstreams> {
        let mut providers = Vec::new();
        let mut index = HashMap::new();
        for (name, p) in &config.providers {
            let transport: Box<dyn Transport> = match p.kind {
                ProviderKind::Mock => {
                    let settings = MockSettings {
                        latency: std::time::Duration::from_millis(p.latency_ms),
                        tokens_per_sec: p.tokens_per_sec,
                        ..MockSettings::default()
                    };
                    Box::new(Arc::new(Mock::new(settings, false)))
                }
                _ => Box::new(
                    adapter::HttpUpstream::new(p)
                        .map_err(|e| anyhow::anyhow!("provider `{name}`: {e}"))?,
                ),
            };
            index.insert(name.clone(), providers.len());
            providers.push(Provider {
                name: name.clone(),
                kind: p.kind,
                timeouts: p.timeouts,
                stream_usage: p.stream_usage,
                transport,
            });
        }
        let mut models = HashMap::new();
        let mut model_names = Vec::new();
        for (name, m) in &config.models {
            let mut targets = Vec::new();
            for t in &m.targets {
                let provider = *index.get(&t.provider).ok_or_else(|| {
                    anyhow::anyhow!("model `{name}`: unknown provider `{}`", t.provider)
                })?;
                let upstream_model = t.model.clone().unwrap_or_else(|| name.clone());
                if providers
                    .get(provider)
                    .is_some_and(|p| p.kind == ProviderKind::Azure)
                    && !upstream_model
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    anyhow::bail!(
                        "model `{name}`: `{upstream_model}` is not a valid Azure deployment name"
                    );
                }
                targets.push(Target {
                    provider,
                    upstream_model,
                    weight: t.weight,
                    priority: t.priority,
                });
            }
            let owned_by = m.owned_by.clone().unwrap_or_else(|| "warden".to_string());
            let first_upstream = targets.first().map_or(name.as_str(), |t| &t.upstream_model);
            let encoding = crate::tokens::Encoding::for_model(
                m.tokenizer.as_deref(),
                first_upstream,
                std::path::Path::new("."),
            )
            .map_err(|e| anyhow::anyhow!("model `{name}`: {e}"))?;
            model_names.push(name.clone());
            models.insert(
                name.clone(),
                ModelRoute {
                    name: name.clone(),
                    owned_by,
                    targets,
                    encoding,
                    default_max_tokens: m.default_max_tokens,
                },
            );
        }
        Ok(Upstreams {
            providers,
            models,
            model_names,
        })
    }

    pub fn route(&self, model: &str) -> Option<&ModelRoute> {
        self.models.get(model)
    }
}
