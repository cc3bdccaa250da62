//! The audit record (schema version 1). It holds counts, names, hashes and decisions —
//! never raw prompt text, PII values, tokens or keys (`capture: redacted` adds text only
//! after PII redaction). Fields are added without a version change when they are optional
//! and readers may ignore them; the version changes when a field changes meaning or type.

use serde::{Deserialize, Serialize};

pub use crate::openai::usage::Usage;

/// Schema version written in every record.
pub const SCHEMA_VERSION: u32 = 1;

/// What one request contributes to the log; the chain fields are added when appended.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    /// RFC 3339 time the request started.
    pub time: String,
    pub request_id: String,
    /// W3C trace id (32 hex digits) of the request's trace, when traces are exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    pub tenant: Option<String>,
    /// HMAC-SHA256 of the subject (hex), or the API key id for API keys.
    pub subject: Option<String>,
    pub auth_method: Option<String>,
    pub endpoint: String,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    /// `sha256:` digest of the policy set that decided.
    pub policy_digest: Option<String>,
    pub rule: Option<String>,
    /// `allow`, `deny`, or absent when no policy is configured.
    pub decision: Option<String>,
    /// Non-sensitive reason of a denial.
    pub reason: Option<String>,
    pub status: u16,
    pub error_code: Option<String>,
    pub stream: bool,
    pub attempts: u32,
    pub latency_ms: f64,
    pub upstream_latency_ms: Option<f64>,
    pub time_to_first_byte_ms: Option<f64>,
    pub client_disconnected: bool,
    /// Names of the tools the request offered.
    pub tools: Vec<String>,
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
    /// PII findings by entity type and action: counts only.
    pub pii: Vec<PiiCount>,
    /// The PII profile wanted the NER model but ran on patterns only (`ner: optional`
    /// with the model not loaded). Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pii_ner_skipped: bool,
    /// Each offered tool with the policy's verdict (`allow`/`deny`); absent without a
    /// policy or when no rule allowed the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_decisions: Vec<ToolDecision>,
    /// Tools the model called in its answer, with how often.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCalls>,
    /// The tool call Warden ran (`tools_invoke`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_execution: Option<ToolExecution>,
    /// Tool selection: the tools offered by meaning, with their scores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_selection: Vec<ToolSelected>,
    /// A person's decision on an approval (`approval_decision` records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_decision: Option<ApprovalDecision>,
    /// The subject is written as the token says (`subject: plain`), not pseudonymized.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub subject_plain: bool,
    /// With `capture: redacted`: the redacted prompt and answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<Capture>,
    /// Per field, how many list entries were left out or strings shortened to keep the
    /// record bounded ([`MAX_LIST`] entries, [`MAX_TEXT`] bytes).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub cut: std::collections::BTreeMap<String, u64>,
}

/// A tool call Warden ran: never its arguments or result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolExecution {
    pub name: String,
    /// `read`, `write` or `high`.
    pub risk: String,
    pub backend: String,
    /// `sha256:` digest of the tool's definition.
    pub definition_digest: String,
    /// `ok`, `rejected` (the backend refused), a failure (`timeout`, `unreachable`,
    /// `server_error`, `redirect`, `too_large`, `not_json`, `arguments`), `replayed` (a
    /// repeated write of the tool loop answered with its kept result), or absent when the
    /// call was refused before it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// The approval the call waits for (`pending`) or ran under (`executed`), or that
    /// refused it (`rejected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalState>,
}

/// A tool semantic selection offered.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolSelected {
    pub name: String,
    /// Cosine similarity to the latest user message, three decimals.
    pub score: f64,
    /// Added to the request (false: the client offered it already).
    pub added: bool,
}

/// A decision on an approval: who (as subjects are written) decided what.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ApprovalDecision {
    pub approval_id: String,
    pub tool: String,
    /// `approve` or `reject`.
    pub action: String,
    /// The approval's state after the decision (or why it was refused: `own_call`,
    /// `decided`, …).
    pub outcome: String,
}

/// An approval and its state, as one record saw it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ApprovalState {
    pub id: String,
    pub status: String,
}

/// Most entries a list of a record keeps (tools, decisions, calls, PII counts).
pub const MAX_LIST: usize = 128;
/// Most bytes a name or reason in a record keeps.
pub const MAX_TEXT: usize = 256;

/// Keeps a record's lists and strings within [`MAX_LIST`] and [`MAX_TEXT`], counting
/// what was cut in `cut`.
#[derive(Debug, Default)]
pub struct Bounds {
    pub cut: std::collections::BTreeMap<String, u64>,
}

impl Bounds {
    /// The first [`MAX_LIST`] items; the rest are counted under `field`.
    pub fn list<T>(&mut self, field: &str, items: impl IntoIterator<Item = T>) -> Vec<T> {
        let mut out = Vec::new();
        let mut dropped = 0u64;
        for item in items {
            if out.len() < MAX_LIST {
                out.push(item);
            } else {
                dropped += 1;
            }
        }
        self.count(field, dropped);
        out
    }

    /// `text` cut to [`MAX_TEXT`] bytes at a character boundary (counted under `field`).
    pub fn text(&mut self, field: &str, text: &str) -> String {
        if text.len() <= MAX_TEXT {
            return text.to_string();
        }
        self.count(field, 1);
        text.get(..text.floor_char_boundary(MAX_TEXT))
            .unwrap_or_default()
            .to_string()
    }

    fn count(&mut self, field: &str, n: u64) {
        if n > 0 {
            *self.cut.entry(field.to_string()).or_default() += n;
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolDecision {
    pub name: String,
    pub decision: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolCalls {
    pub name: String,
    pub count: u64,
}

/// Text kept with `capture: redacted`; never raw text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Capture {
    /// The request body as the provider received it (JSON text, after PII redaction).
    pub prompt: String,
    /// The answer's text as the provider wrote it (placeholders, not restored values),
    /// scanned for personal data the model wrote.
    pub answer: String,
    /// Either text was cut at `capture_max_bytes`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PiiCount {
    pub entity: String,
    pub action: String,
    pub count: u64,
    /// `answer` for what output scanning found in the model's answer; absent for the
    /// request's findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// The body of a chained entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Body {
    Request(Box<RequestRecord>),
    /// Written at recovery when records may have been lost (a torn or invalid tail).
    Gap {
        reason: String,
        dropped_bytes: u64,
    },
}

/// One line of a segment: chain position, body and hashes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub v: u32,
    pub chain: String,
    pub seq: u64,
    pub prev_hash: String,
    #[serde(flatten)]
    pub body: Body,
    /// `sha256(prev_hash ‖ JCS(entry without hash))`, hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl Entry {
    /// The record time, when the body has one.
    pub fn time(&self) -> Option<&str> {
        match &self.body {
            Body::Request(r) => Some(&r.time),
            Body::Gap { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_cut_lists_and_strings_and_count_what_they_cut() {
        let mut b = Bounds::default();
        let kept = b.list("tools", (0..300).map(|i| i.to_string()));
        assert_eq!(kept.len(), MAX_LIST);
        let long = "é".repeat(MAX_TEXT);
        let short = b.text("reason", &long);
        assert!(short.len() <= MAX_TEXT && long.starts_with(&short));
        assert_eq!(b.text("reason", "fine"), "fine");
        assert_eq!(b.cut["tools"], 300 - MAX_LIST as u64);
        assert_eq!(b.cut["reason"], 1);
    }
}
