//! The policy file format. Field docs become the JSON Schema's descriptions, which editors
//! show while completing.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::manifest::{ApiVersion, Metadata};

use crate::condition::Condition;

/// A policy file: a named list of rules.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyFile {
    /// Always `warden/v1`.
    pub api_version: ApiVersion,
    /// Always `Policy`.
    pub kind: PolicyKind,
    #[serde(default)]
    pub metadata: Metadata,
    /// Rules in evaluation order. A request is allowed when at least one `allow` rule
    /// matches and no `deny` rule does; otherwise it is denied.
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum PolicyKind {
    Policy,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum PolicyTestKind {
    PolicyTest,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum RuleEffect {
    Allow,
    Deny,
}

/// One rule: when every condition under `match` holds (and `when`, if given, is true),
/// the rule applies with its `effect`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name across all policy files; appears in decisions, 403 answers and audit records.
    pub name: String,
    pub effect: RuleEffect,
    #[serde(default)]
    pub description: Option<String>,
    /// Conditions on the caller and the request. Absent fields match anything; a list
    /// matches when any of its entries does. `*` in a pattern matches any characters.
    #[serde(default, rename = "match")]
    pub matches: Match,
    /// A CEL expression over `principal`, `request` and `claims` that must be true.
    #[serde(default)]
    pub when: Option<Condition>,
    /// The reason given to the client when this rule denies. Never put secrets here.
    #[serde(default)]
    pub reason: Option<String>,
    /// Settings later stages read for requests this rule allows.
    #[serde(default)]
    pub settings: RuleSettings,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Tenant patterns.
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
    /// Subject patterns (user ids, client ids, API key ids).
    #[serde(default)]
    pub subjects: Option<Vec<String>>,
    /// The caller holds at least one of these roles.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// The caller holds at least one of these OAuth2 scopes.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// How the caller authenticated.
    #[serde(default)]
    pub auth_methods: Option<Vec<AuthMethodName>>,
    /// Claims that must equal the given values (dot paths into nested claims).
    #[serde(default)]
    pub claims: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub endpoints: Option<Vec<EndpointName>>,
    /// Model patterns (client-facing names).
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// The request offers at least one of these tools (patterns).
    #[serde(default)]
    pub tools: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethodName {
    Anonymous,
    ApiKey,
    Jwt,
    Introspection,
    Mtls,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EndpointName {
    ChatCompletions,
    Completions,
    Embeddings,
    /// `POST /v1/responses` (the Responses API).
    Responses,
    Models,
    /// `POST /v1/tools/{name}/invoke`: a client runs a registry tool through Warden.
    ToolsInvoke,
}

impl EndpointName {
    /// The name policies use for an API endpoint.
    pub fn of(endpoint: crate::openai::Endpoint) -> EndpointName {
        use crate::openai::Endpoint;
        match endpoint {
            Endpoint::ChatCompletions => EndpointName::ChatCompletions,
            Endpoint::Completions => EndpointName::Completions,
            Endpoint::Embeddings => EndpointName::Embeddings,
            Endpoint::Responses => EndpointName::Responses,
            Endpoint::ListModels | Endpoint::GetModel => EndpointName::Models,
        }
    }
}

/// Settings a rule hands to later stages.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// Name of the rate-limit and budget profile.
    #[serde(default)]
    pub limits: Option<String>,
    /// Name of the PII profile.
    #[serde(default)]
    pub pii: Option<String>,
    /// Which tools the model may be offered and may call.
    #[serde(default)]
    pub tools: Option<ToolPermissions>,
    /// How the audit log records requests this rule decides.
    #[serde(default)]
    pub audit: Option<AuditSettings>,
}

/// Per-rule overrides of the audit log's `subject` and `capture` settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// `pseudonymize` (HMAC, the default) or `plain` (e.g. service accounts).
    #[serde(default)]
    pub subject: Option<crate::config::SubjectMode>,
    /// `none` or `redacted` (the redacted prompt and answer in the record).
    #[serde(default)]
    pub capture: Option<crate::config::CaptureMode>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToolPermissions {
    /// Tool name patterns that may be used; absent means any tool not denied.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Tool name patterns that may never be used.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Provider-hosted tools of the Responses API the model may use, by type
    /// (`web_search`, `file_search`, `code_interpreter`, `mcp`, …); none when absent.
    /// A request offering another one is denied. Policy sees them as `builtin:{type}`.
    #[serde(default)]
    pub builtin: Vec<String>,
    /// Offering registry tools by meaning: with `mode: auto`, the tools the principal may
    /// use that best match the latest user message are offered with the client's.
    #[serde(default)]
    pub routing: Option<Routing>,
    /// Who runs the model's tool calls: `client` (the default: they go back to the
    /// client, which may run them at `/v1/tools/{name}/invoke`) or `gateway`.
    #[serde(default)]
    pub execution: Option<Execution>,
    /// Most model calls one request may make when Warden runs the tool calls.
    #[serde(default)]
    pub max_steps: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    pub mode: RoutingMode,
    /// Most tools offered.
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// The lowest score offered (default: `tools.selection.min_score`).
    #[serde(default)]
    pub min_score: Option<f32>,
}

fn default_top_k() -> usize {
    5
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoutingMode {
    Off,
    Auto,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Execution {
    Client,
    Gateway,
}

/// A policy test file (`policies/tests/*.yaml`): cases of principal + request → expected
/// decision.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestFile {
    pub api_version: ApiVersion,
    /// Always `PolicyTest`.
    pub kind: PolicyTestKind,
    pub cases: Vec<TestCase>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    pub principal: TestPrincipal,
    pub request: TestRequest,
    pub expect: Expectation,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestPrincipal {
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub auth_method: Option<AuthMethodName>,
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    pub endpoint: EndpointName,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    /// A tool call's arguments (`endpoint: tools_invoke`, one tool), for `expect.approval`.
    #[serde(default)]
    pub arguments: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub decision: RuleEffect,
    /// The rule expected to decide; `default-deny` when no rule matched.
    #[serde(default)]
    pub rule: Option<String>,
    /// A substring expected in the reason.
    #[serde(default)]
    pub reason_contains: Option<String>,
    #[serde(default)]
    pub settings: Option<RuleSettings>,
    /// Whether the call (`request.tools[0]` with `request.arguments`) waits for a
    /// person's approval.
    #[serde(default)]
    pub approval: Option<ApprovalExpectation>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalExpectation {
    Required,
    NotRequired,
}
