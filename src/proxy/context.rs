//! Per-request state carried through the stages: the request id and what the access log,
//! metrics and (later) the audit record report about the request.

use std::time::{Duration, Instant, SystemTime};

use pingora::http::RequestHeader;

use crate::auth::Principal;
use crate::policy::Decision;

#[derive(Debug)]
pub struct RequestCtx {
    pub request_id: String,
    pub started: Instant,
    /// Wall-clock start, for the audit record.
    pub started_at: SystemTime,
    /// The request's record, not written yet: taken (once) by the report when it writes
    /// it. See `report`.
    pub unreported: Option<super::report::Unreported>,
    /// Names of the tools the request offered.
    pub tools: Vec<String>,
    /// Tools the model called in its answer, with how often (at most
    /// `audit::record::MAX_LIST` names; calls of further names counted in `tool_calls_cut`).
    pub tool_calls: std::collections::BTreeMap<String, u64>,
    pub tool_calls_cut: u64,
    /// The redacted prompt and answer, with `capture: redacted`.
    pub capture: Option<super::answer::Capture>,
    /// The tightest request-rate and token-rate limits, for the `x-ratelimit-*` headers.
    pub rate_requests: Option<crate::limits::Admission>,
    pub rate_tokens: Option<crate::limits::Admission>,
    /// The admission to settle once the response is done.
    pub ticket: Option<crate::limits::Ticket>,
    /// The model's tokenizer, once the model is known.
    pub encoding: Option<crate::tokens::Encoding>,
    /// Prompt tokens as Warden counted them.
    pub prompt_tokens: u64,
    /// The model's price in effect, when it has one.
    pub price: Option<crate::policy::pricing::Price>,
    /// Cost of the usage, in nanodollars.
    pub cost: Option<crate::policy::pricing::Nanos>,
    /// Whether `usage` was counted by Warden because the provider sent none.
    pub usage_counted: bool,
    /// What the stream generated, to count completion tokens if no usage arrives.
    pub stream_text: crate::tokens::completion::StreamText,
    /// PII findings by entity type and action, for the audit record.
    pub pii: Vec<crate::audit::record::PiiCount>,
    /// What the PII stage does to the answer: restore placeholders, scan for PII.
    pub answer: Option<crate::pii::response::Answer>,
    /// The PII profile ran without the NER model it would have used.
    pub pii_ner_skipped: bool,
    /// Token usage the provider reported.
    pub usage: Option<crate::openai::usage::Usage>,
    pub route: &'static str,
    /// The configured model the request used; `None` until resolved.
    pub model: Option<String>,
    pub principal: Option<Principal>,
    /// The policy decision, when a policy is configured.
    pub decision: Option<Decision>,
    /// Digest of the policy set that decided.
    pub policy_digest: Option<String>,
    pub stream: bool,
    pub status: u16,
    pub error_code: Option<String>,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub attempts: u32,
    pub upstream_latency: Option<Duration>,
    pub first_byte: Option<Duration>,
    /// Whether the request body has been read to its end.
    pub body_read: bool,
    pub client_gone: bool,
}

impl RequestCtx {
    pub fn new() -> RequestCtx {
        RequestCtx {
            request_id: String::new(),
            started: Instant::now(),
            started_at: SystemTime::now(),
            unreported: None,
            tools: Vec::new(),
            tool_calls: std::collections::BTreeMap::new(),
            tool_calls_cut: 0,
            capture: None,
            usage: None,
            rate_requests: None,
            rate_tokens: None,
            ticket: None,
            encoding: None,
            prompt_tokens: 0,
            price: None,
            cost: None,
            usage_counted: false,
            stream_text: Default::default(),
            pii: Vec::new(),
            answer: None,
            pii_ner_skipped: false,
            route: "unknown",
            model: None,
            principal: None,
            decision: None,
            policy_digest: None,
            stream: false,
            status: 0,
            error_code: None,
            provider: None,
            upstream_model: None,
            attempts: 0,
            upstream_latency: None,
            first_byte: None,
            body_read: false,
            client_gone: false,
        }
    }

    pub fn mark_first_byte(&mut self) {
        if self.first_byte.is_none() {
            self.first_byte = Some(self.started.elapsed());
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}

/// The client's `x-request-id` when it is a safe token (≤ 128 of `[A-Za-z0-9._:-]`),
/// otherwise a new UUID.
pub fn request_id(header: &RequestHeader) -> String {
    header
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: Option<&str>) -> RequestHeader {
        let mut h = RequestHeader::build("GET", b"/v1/models", None).unwrap();
        if let Some(id) = id {
            h.insert_header("x-request-id", id).unwrap();
        }
        h
    }

    #[test]
    fn keeps_safe_client_ids_and_replaces_others() {
        assert_eq!(request_id(&header(Some("abc-123.x:y_z"))), "abc-123.x:y_z");
        let fresh = request_id(&header(Some("has space")));
        assert_eq!(fresh.len(), 36);
        assert_ne!(request_id(&header(None)), request_id(&header(None)));
        assert_eq!(request_id(&header(Some(&"a".repeat(129)))).len(), 36);
    }
}
