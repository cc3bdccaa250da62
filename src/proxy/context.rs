//! Per-request state carried through the stages: the request's identity and one outcome
//! per stage, which the report (audit record, settlement, metrics, access line) reads.

use std::time::{Duration, Instant, SystemTime};

use pingora::http::RequestHeader;

use crate::auth::Principal;
use crate::policy::Decision;
use crate::telemetry::trace::{Carrier, RequestTrace, Stage};

/// One request's state: who and what it is, then one outcome per stage, in the order
/// the stages run (`pipeline`). Each stage writes its own field; the report reads them
/// all at the end.
#[derive(Debug)]
pub struct RequestCtx {
    pub request_id: String,
    pub started: Instant,
    /// Wall-clock start, for the audit record.
    pub started_at: SystemTime,
    /// The endpoint's label (`chat_completions`, …); `unknown` until routed.
    pub route: &'static str,
    /// The request's record, not written yet: taken (once) by the report when it writes
    /// it. See `report`.
    pub unreported: Option<super::report::Unreported>,
    /// Whether the request body has been read to its end.
    pub body_read: bool,
    /// The client went away before the answer ended.
    pub client_gone: bool,
    /// Authentication: who is asking.
    pub principal: Option<Principal>,
    /// Parsing: what the request names and asks for.
    pub parsed: Option<Parsed>,
    /// Authorization: the policy decision.
    pub authorized: Option<Authorized>,
    /// The PII stage: what was found, in the request and in the answer.
    pub pii: PiiFacts,
    /// Counting: what the request may use, and how its usage is counted and priced.
    pub estimate: Option<Estimate>,
    /// Admission: what the limits said, and what to settle.
    pub admission: Admitted,
    /// Dispatch: which provider answered, after how many attempts.
    pub upstream: Upstream,
    /// Tool selection: the registry tools ranked for the latest user message (name,
    /// score, whether it was added to the request).
    pub selection: Option<Vec<(String, f32, bool)>>,
    /// A tool call Warden ran (`POST /v1/tools/{name}/invoke`).
    pub tool: Option<ToolRun>,
    /// The client's idempotency key, claimed for this request's answer.
    pub idempotency: Option<super::replay::Pending>,
    /// A Responses API request the provider stores: what is remembered with the
    /// response's id (`conversation`).
    pub conversation: Option<super::conversation::Turn>,
    /// The answer as it went out.
    pub answered: Answered,
    /// The request's place in its trace, when traces are exported.
    pub trace: Option<RequestTrace>,
}

/// What the request names and asks for.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The configured model the request uses (or, for `GET /v1/models/{id}`, asks about).
    pub model: String,
    pub stream: bool,
    /// Names of the tools the request offered.
    pub tools: Vec<String>,
    /// The request's output cap, when it sets one.
    pub max_tokens: Option<u64>,
}

/// A policy decision and the policy set that made it.
#[derive(Debug, Clone)]
pub struct Authorized {
    pub decision: Decision,
    /// Digest of the policy set that decided.
    pub policy_digest: String,
}

/// Personal data found, by entity type and action, for the audit record.
#[derive(Debug, Default)]
pub struct PiiFacts {
    pub found: Vec<crate::audit::record::PiiCount>,
    /// The profile ran without the NER model it would have used.
    pub ner_skipped: bool,
}

/// How the request's usage is counted and priced.
#[derive(Debug)]
pub struct Estimate {
    /// The model's tokenizer.
    pub encoding: crate::tokens::Encoding,
    /// Prompt tokens as Warden counted them.
    pub prompt_tokens: u64,
    /// The model's price in effect, when it has one.
    pub price: Option<crate::policy::pricing::Price>,
}

/// What admission decided.
#[derive(Debug, Default)]
pub struct Admitted {
    /// The tightest request-rate and token-rate limits, for the `x-ratelimit-*` headers.
    pub rate_requests: Option<crate::limits::Admission>,
    pub rate_tokens: Option<crate::limits::Admission>,
    /// The admission to settle once the response is done.
    pub ticket: Option<crate::limits::Ticket>,
    /// The limits admitted the request.
    pub admitted: bool,
    /// The kind of limit that refused it (`requests`, `tokens`, `budget`, …).
    pub refused: Option<&'static str>,
}

/// Where the request went.
#[derive(Debug, Default)]
pub struct Upstream {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub attempts: u32,
    /// Time until the chosen provider's response headers.
    pub latency: Option<Duration>,
}

impl Upstream {
    /// Where a dispatch went (its facts taken out of it).
    pub fn taken(d: &mut crate::provider::dispatch::Dispatched) -> Upstream {
        Upstream {
            provider: d.provider.take(),
            model: d.upstream_model.take(),
            attempts: d.attempts,
            latency: d.upstream_latency,
        }
    }
}

/// A tool call through Warden: which tool, and how its execution ended.
#[derive(Debug, Clone)]
pub struct ToolRun {
    pub name: String,
    pub risk: crate::tools::Risk,
    pub backend: String,
    /// SHA-256 of the tool's definition.
    pub digest: String,
    /// `ok`, `rejected` or why it failed; `None` when it was not executed.
    pub outcome: Option<&'static str>,
    /// The backend's HTTP status, when it answered.
    pub backend_status: Option<u16>,
    pub latency: Option<Duration>,
    /// The approval the call waits for or ran under, and its state.
    pub approval: Option<ApprovalRef>,
}

/// An approval a tool call named.
#[derive(Debug, Clone)]
pub struct ApprovalRef {
    pub id: String,
    pub status: &'static str,
}

/// The answer as it went out, and what it used.
#[derive(Debug, Default)]
pub struct Answered {
    pub status: u16,
    pub error_code: Option<String>,
    pub first_byte: Option<Duration>,
    /// Token usage: the provider's, or Warden's count (`usage_counted`).
    pub usage: Option<crate::openai::usage::Usage>,
    pub usage_counted: bool,
    /// Cost of the usage, in nanodollars.
    pub cost: Option<crate::policy::pricing::Nanos>,
    /// What the stream generated, to count completion tokens if no usage arrives.
    pub stream_text: crate::tokens::completion::StreamText,
    /// Tools the model called, with how often (at most `audit::record::MAX_LIST` names;
    /// calls of further names counted in `tool_calls_cut`).
    pub tool_calls: std::collections::BTreeMap<String, u64>,
    pub tool_calls_cut: u64,
    /// The redacted prompt and answer, with `capture: redacted`.
    pub capture: Option<super::answer::Capture>,
    /// The bytes of the answer as written, kept for an idempotency key's replays.
    pub kept: Option<bytes::BytesMut>,
    /// Why the model stopped, as the provider said (`stop`, `length`, `tool_calls`, a
    /// Responses status), and the model it named: read for traces only.
    pub finish_reasons: Vec<String>,
    pub response_model: Option<String>,
}

impl RequestCtx {
    pub fn new() -> RequestCtx {
        RequestCtx {
            request_id: String::new(),
            started: Instant::now(),
            started_at: SystemTime::now(),
            route: "unknown",
            unreported: None,
            body_read: false,
            client_gone: false,
            principal: None,
            parsed: None,
            authorized: None,
            pii: PiiFacts::default(),
            estimate: None,
            admission: Admitted::default(),
            upstream: Upstream::default(),
            selection: None,
            tool: None,
            idempotency: None,
            conversation: None,
            answered: Answered::default(),
            trace: None,
        }
    }

    /// Marks the start of `stage` in the request's trace.
    pub fn stage(&mut self, stage: Stage) {
        if let Some(trace) = self.trace.as_mut() {
            trace.stage(stage);
        }
    }

    /// Adds the spans of calls made for this request to its trace.
    pub fn traced(&mut self, spans: Vec<crate::telemetry::trace::Span>) {
        if let Some(trace) = self.trace.as_mut() {
            for span in spans {
                trace.add(span);
            }
        }
    }

    /// What a call Warden makes for this request needs to continue its trace.
    pub fn carrier(&self) -> Option<Carrier> {
        self.trace.as_ref().map(RequestTrace::carrier)
    }

    /// The request's trace id (hex), when traces are exported.
    pub fn trace_id(&self) -> Option<String> {
        self.trace.as_ref().map(|t| t.trace_id().to_string())
    }

    /// The configured model, once known.
    pub fn model(&self) -> Option<&str> {
        self.parsed.as_ref().map(|p| p.model.as_str())
    }

    pub fn stream(&self) -> bool {
        self.parsed.as_ref().is_some_and(|p| p.stream)
    }

    /// The policy decision, when a policy decided.
    pub fn decision(&self) -> Option<&Decision> {
        self.authorized.as_ref().map(|a| &a.decision)
    }

    pub fn mark_first_byte(&mut self) {
        if self.answered.first_byte.is_none() {
            self.answered.first_byte = Some(self.started.elapsed());
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
