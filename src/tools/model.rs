//! The tool registry file format (`apiVersion: warden/v1`, `kind: ToolRegistry`, in the
//! policy directory). Field docs become the JSON Schema's descriptions
//! (`warden policy schema --tools`), which editors show while completing.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::manifest::{ApiVersion, Metadata};

use crate::condition::{Condition, ToolScope};

/// A tool registry file: the tools a model may be offered and Warden may call.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryFile {
    /// Always `warden/v1`.
    pub api_version: ApiVersion,
    /// Always `ToolRegistry`.
    pub kind: RegistryKind,
    #[serde(default)]
    pub metadata: Metadata,
    pub tools: Vec<ToolDef>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum RegistryKind {
    ToolRegistry,
}

/// One tool.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolDef {
    /// OpenAI's function-name rule: `^[a-zA-Z0-9_-]{1,64}$`, unique across the registry.
    pub name: String,
    /// What the tool does, as the model reads it.
    pub description: String,
    /// Things users say when they need this tool (semantic selection embeds them with
    /// the description).
    #[serde(default)]
    pub examples: Vec<String>,
    /// JSON Schema of the arguments: an object schema, self-contained (no remote
    /// `$ref`). Calls are validated against it.
    pub parameters: serde_json::Value,
    /// `read` (no side effect), `write` (changes something; idempotency key sent) or
    /// `high` (a write that may need a person's approval).
    pub risk: Risk,
    /// The backend the tool calls: a name under `tools.backends` in `warden.yaml`, where
    /// its scheme, host, port and credentials are configured.
    pub backend: String,
    /// An HTTP call to the backend (exactly one of `http` and `graphql`).
    #[serde(default)]
    pub http: Option<HttpCall>,
    /// A GraphQL operation on the backend.
    #[serde(default)]
    pub graphql: Option<GraphqlCall>,
    /// Longest wait for the backend, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// When a `high` tool's call waits for a person.
    #[serde(default)]
    pub approval: Option<Approval>,
    /// How `write` and `high` calls are made exactly once.
    #[serde(default)]
    pub idempotency: Option<Idempotency>,
    /// Cumulative caps on an argument (e.g. refunds per subject per day), so a large
    /// call cannot be split into small ones.
    #[serde(default)]
    pub caps: Vec<Cap>,
    /// How results are searched for personal data before a model reads them: `model`
    /// (patterns and the NER model, for results that carry names and addresses) or
    /// `patterns` (validated patterns only, for catalog data where the model would take
    /// product and brand names for people and places).
    #[serde(default)]
    pub redact_results: ResultScan,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResultScan {
    #[default]
    Model,
    Patterns,
}

fn default_timeout_ms() -> u64 {
    5_000
}

#[derive(
    Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Read,
    Write,
    High,
}

impl Risk {
    pub fn label(self) -> &'static str {
        match self {
            Risk::Read => "read",
            Risk::Write => "write",
            Risk::High => "high",
        }
    }
}

/// An HTTP request built from the arguments. Templates name top-level arguments in
/// braces (`/orders/{order_id}`); values are percent-encoded into their path segment or
/// query value, never into the scheme, host or port.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCall {
    pub method: HttpMethod,
    /// Path below the backend's `base_url`, starting with `/`.
    pub path: String,
    /// Query parameters: name → template. A parameter whose arguments are all absent is
    /// left out.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// The JSON body: `arguments` (the arguments object, the default for POST, PUT and
    /// PATCH), `none` (the default for GET and DELETE), or an object of field →
    /// template, where a template that is exactly `{name}` keeps the argument's JSON type.
    #[serde(default)]
    pub body: Option<Body>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum Body {
    /// `arguments` or `none`.
    Whole(BodyMode),
    /// Field → template.
    Fields(BTreeMap<String, String>),
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BodyMode {
    Arguments,
    None,
}

/// A GraphQL operation: the document is fixed here; only variables come from the call.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphqlCall {
    /// Path of the GraphQL endpoint below the backend's `base_url`.
    #[serde(default = "default_graphql_path")]
    pub path: String,
    /// The operation document (one `query` or `mutation`).
    pub query: String,
    /// Variables: name → template; by default every argument under its own name.
    #[serde(default)]
    pub variables: Option<BTreeMap<String, String>>,
}

fn default_graphql_path() -> String {
    "/graphql".into()
}

/// When a `high` tool's call waits for a person's approval.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// True when the call needs approval, e.g. `args.amount > 100`.
    pub when: Condition<ToolScope>,
    /// How long a pending or granted approval stays valid.
    #[serde(default = "default_approval_seconds")]
    pub expires_seconds: u64,
}

fn default_approval_seconds() -> u64 {
    86_400
}

/// The key that makes a write exactly-once at the backend.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Idempotency {
    /// The request header the backend reads the key from.
    #[serde(default = "default_idempotency_header")]
    pub header: String,
    /// How long a key (and the stored result) is remembered. Two identical calls within
    /// it are one call unless the client sends its own `Idempotency-Key`.
    #[serde(default = "default_idempotency_seconds")]
    pub ttl_seconds: u64,
}

impl Default for Idempotency {
    fn default() -> Self {
        Idempotency {
            header: default_idempotency_header(),
            ttl_seconds: default_idempotency_seconds(),
        }
    }
}

fn default_idempotency_header() -> String {
    "Idempotency-Key".into()
}

fn default_idempotency_seconds() -> u64 {
    86_400
}

/// A cumulative cap on a numeric argument.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    /// Shown in refusals and metrics.
    pub name: String,
    /// The numeric argument that is summed (e.g. `amount`).
    pub sum: String,
    /// The most the sum may reach per period (in the argument's unit, e.g. USD).
    pub limit: f64,
    pub per: CapPeriod,
    /// Who the sum is counted for.
    #[serde(default = "default_cap_key")]
    pub key: Vec<CapKey>,
}

fn default_cap_key() -> Vec<CapKey> {
    vec![CapKey::Subject]
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CapPeriod {
    Day,
    Month,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CapKey {
    Tenant,
    Subject,
}
