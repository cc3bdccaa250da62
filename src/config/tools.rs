//! Where tools' backends are (`tools:`): each backend's base URL, the headers every call
//! carries (credentials from `${ENV}`), its response size cap, CA bundle and timeout to
//! connect — or `kind: mock`, the demo shop's backends in process. The tools
//! themselves — arguments, request templates, risk — live in the policy directory's
//! `kind: ToolRegistry` files and name these backends; the scheme, host and port of a call
//! always come from here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Invalid, invalid, is_http_url};

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolsConfig {
    /// The backends tools may call, by the name tools give in `backend:`.
    #[serde(default)]
    pub backends: BTreeMap<String, BackendConfig>,
    /// Who decides on `high` calls that wait for a person.
    #[serde(default)]
    pub approvals: ApprovalsConfig,
    /// The sentence-embedding model that offers tools by meaning (policy rules'
    /// `settings.tools.routing`).
    #[serde(default)]
    pub selection: Option<SelectionConfig>,
    /// The loop Warden runs for rules with `settings.tools.execution: gateway`.
    #[serde(default)]
    pub gateway_loop: GatewayLoopConfig,
}

/// Bounds of the tool loop Warden runs itself (`execution: gateway`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayLoopConfig {
    /// Most model calls per request when the rule sets no `settings.tools.max_steps`.
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    /// The whole loop's deadline — every model call and tool call before the final
    /// answer starts.
    #[serde(default = "default_loop_deadline")]
    pub deadline_seconds: u64,
}

impl Default for GatewayLoopConfig {
    fn default() -> Self {
        GatewayLoopConfig {
            max_steps: default_max_steps(),
            deadline_seconds: default_loop_deadline(),
        }
    }
}

fn default_max_steps() -> u32 {
    5
}

fn default_loop_deadline() -> u64 {
    120
}

/// Semantic tool selection: all-MiniLM-L6-v2 (int8) in process (`scripts/fetch-models.sh`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectionConfig {
    /// Directory with the model and `tokenizer.json` (relative to the config file).
    pub model_dir: PathBuf,
    /// The model file in `model_dir`: `model_dynamic_int8.onnx` (derived by
    /// `scripts/fetch-models.sh`, about twice as fast) or the published `model.onnx`.
    #[serde(default = "default_selection_model")]
    pub model_file: PathBuf,
    /// The ONNX Runtime shared library (relative to the config file).
    pub runtime: PathBuf,
    /// The lowest score (cosine similarity) at which a tool is offered, unless a rule's
    /// `routing.min_score` says otherwise.
    #[serde(default = "default_min_score")]
    pub min_score: f32,
    /// How much the keyword overlap of a query with a tool's texts (0 to 1, rare words
    /// weighing more) adds to the embedding score; 0 ranks by meaning alone.
    #[serde(default = "default_lexical_weight")]
    pub lexical_weight: f32,
    /// Model sessions: embeddings that can run at once.
    #[serde(default = "one")]
    pub sessions: usize,
    /// Threads per inference.
    #[serde(default = "one")]
    pub threads: usize,
    /// Query embeddings kept (keyed by a hash of the text, never the text).
    #[serde(default = "default_selection_cache")]
    pub cache_entries: usize,
}

fn default_min_score() -> f32 {
    0.4
}

fn default_selection_model() -> PathBuf {
    PathBuf::from("model_dynamic_int8.onnx")
}

fn default_lexical_weight() -> f32 {
    0.1
}

fn one() -> usize {
    1
}

fn default_selection_cache() -> usize {
    4096
}

/// The approval queue of `high`-risk calls (`/admin/v1/approvals` on the admin listener).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// Principals holding one of these roles (their own API key or token, of the
    /// approval's tenant) may list and decide approvals; never the requester.
    #[serde(default = "default_approver_roles")]
    pub approver_roles: Vec<String>,
    /// Announces each new pending approval with a POST of `{"event":
    /// "approval.pending", "approval_id", "tool", "tenant", "expires_at"}` (no arguments).
    #[serde(default)]
    pub webhook_url: Option<String>,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            approver_roles: default_approver_roles(),
            webhook_url: None,
        }
    }
}

fn default_approver_roles() -> Vec<String> {
    vec!["approver".into()]
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// `http` (a service at `base_url`) or `mock` (the demo shop's backends, in process,
    /// as `warden mock-commerce` serves them).
    #[serde(default)]
    pub kind: BackendKind,
    /// Scheme, host, port and base path of every call, e.g. `https://erp.internal/api`
    /// (`kind: http` only).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Headers sent on every call, e.g. `authorization: "Bearer ${ERP_TOKEN}"`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Largest response body read; a larger answer is an error result for the model.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Extra PEM CA bundle trusted for this backend (relative to the config file).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_max_response_bytes() -> usize {
    1024 * 1024
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Http,
    Mock,
}

impl ToolsConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if let Some(sel) = &self.selection
            && !((0.0..=1.0).contains(&sel.min_score) && (0.0..=1.0).contains(&sel.lexical_weight))
        {
            return Err(invalid(
                &["tools", "selection"],
                "`min_score` and `lexical_weight` must be between 0 and 1",
            ));
        }
        let lp = &self.gateway_loop;
        if !(1..=32).contains(&lp.max_steps) || !(1..=3600).contains(&lp.deadline_seconds) {
            return Err(invalid(
                &["tools", "gateway_loop"],
                "`max_steps` must be 1 to 32 and `deadline_seconds` 1 to 3600",
            ));
        }
        let approvals = ["tools", "approvals"];
        if self
            .approvals
            .approver_roles
            .iter()
            .all(|r| r.trim().is_empty())
        {
            return Err(invalid(
                &approvals,
                "`approver_roles` must name at least one role",
            ));
        }
        if let Some(url) = &self.approvals.webhook_url
            && !is_http_url(url)
        {
            return Err(invalid(&approvals, "`webhook_url` must be an http(s) URL"));
        }
        for (name, b) in &self.backends {
            let path = ["tools", "backends", name.as_str()];
            match (b.kind, &b.base_url) {
                (BackendKind::Http, None) => {
                    return Err(invalid(&path, "`base_url` is required"));
                }
                (BackendKind::Mock, Some(_)) => {
                    return Err(invalid(
                        &path,
                        "`kind: mock` runs in process and takes no `base_url`",
                    ));
                }
                (BackendKind::Http, Some(url)) => {
                    let uri = url.parse::<http::Uri>();
                    let plain = uri.as_ref().is_ok_and(|u| {
                        u.query().is_none()
                            && !u.authority().is_some_and(|a| a.as_str().contains('@'))
                    });
                    if !is_http_url(url) || !plain || url.contains('#') {
                        return Err(invalid(
                            &path,
                            format!(
                                "`base_url` `{url}` must be an http(s) URL without credentials, query or fragment"
                            ),
                        ));
                    }
                }
                (BackendKind::Mock, None) => {}
            }
            for (header, value) in &b.headers {
                if http::HeaderName::from_bytes(header.as_bytes()).is_err()
                    || http::HeaderValue::from_str(value).is_err()
                {
                    // The value may be a secret: only the header's name is shown.
                    return Err(invalid(
                        &path,
                        format!("header `{header}` has an invalid name or value"),
                    ));
                }
            }
            if b.max_response_bytes == 0 {
                return Err(invalid(
                    &path,
                    "`max_response_bytes` must be greater than 0",
                ));
            }
        }
        Ok(())
    }

    /// A relative `ca_file` or model path is relative to the config file's directory
    /// `base`.
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        if let Some(sel) = self.selection.as_mut() {
            for p in [&mut sel.model_dir, &mut sel.runtime] {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        for b in self.backends.values_mut() {
            if let Some(ca) = b.ca_file.as_mut()
                && ca.is_relative()
            {
                *ca = base.join(&*ca);
            }
        }
    }
}
