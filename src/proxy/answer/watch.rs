//! What the audit record learns from the answer as it passes, before anything in it is
//! restored: the tools the model called and, with `capture: redacted`, the text of the
//! first choice as the provider wrote it (placeholders, not the values behind them), which
//! is scanned for personal data the model wrote when the record is made. Chat answers
//! and Responses (output items, stream events) alike; for a Responses request the
//! provider stores, also the response's id (`proxy::conversation`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::Value;

use super::{AnswerFilter, Event, Events, WholeAnswer};
use crate::audit::record;
use crate::pii::response::OutputScan;
use crate::proxy::context::RequestCtx;

/// Bytes kept past the cap so a value cut by it is still recognised, and withheld, whole.
const LOOKAHEAD: usize = 256;

/// The text kept for `capture: redacted`, at most `max` bytes of prompt and of answer.
#[derive(Debug)]
pub struct Capture {
    scan: OutputScan,
    max: usize,
    prompt: String,
    content: String,
    /// Tool calls of the first choice by index: name and arguments.
    calls: BTreeMap<u64, (String, String)>,
    truncated: bool,
}

impl Capture {
    /// `prompt` is the request body after PII redaction.
    pub fn new(scan: OutputScan, max: usize, prompt: &[u8]) -> Capture {
        let prompt = String::from_utf8_lossy(prompt);
        let cut = prompt.floor_char_boundary(max);
        Capture {
            scan,
            max,
            truncated: cut < prompt.len(),
            prompt: prompt.get(..cut).unwrap_or_default().to_string(),
            content: String::new(),
            calls: BTreeMap::new(),
        }
    }

    fn push(&mut self, text: &str) {
        let room = (self.max + LOOKAHEAD).saturating_sub(self.content.len());
        let cut = text.floor_char_boundary(room.min(text.len()));
        self.content.push_str(text.get(..cut).unwrap_or_default());
    }

    /// The record's capture: the answer scanned with the request's PII profile (patterns
    /// and deny-list; `pseudonymize` and `block` withhold values as `redact` does).
    pub fn finish(mut self) -> record::Capture {
        for (name, args) in std::mem::take(&mut self.calls).into_values() {
            let call = format!("\n[tool call] {name}({args})");
            self.push(&call);
        }
        let mut answer = self
            .scan
            .redactor()
            .text(&self.content)
            .unwrap_or(self.content);
        let mut truncated = self.truncated;
        if answer.len() > self.max {
            answer.truncate(answer.floor_char_boundary(self.max));
            truncated = true;
        }
        record::Capture {
            prompt: self.prompt,
            answer,
            truncated,
        }
    }
}

/// Reads the tools the model called and the text to capture, as the provider wrote them.
pub struct Watch;

impl AnswerFilter for Watch {
    fn rewrites(&self) -> bool {
        false
    }

    fn body(&mut self, answer: &mut WholeAnswer, ctx: &mut RequestCtx) {
        if ctx.conversation.is_some() {
            response_id(ctx, answer.bytes(), false);
        }
        if traced(ctx) {
            outcome(ctx, answer.bytes());
        }
        if ctx.answered.capture.is_none() && !calls_tools(answer.bytes()) {
            return;
        }
        if let Some(v) = answer.json() {
            watch(ctx, v, "message");
        }
    }

    fn event(&mut self, event: Event, ctx: &mut RequestCtx) -> Events {
        if ctx
            .conversation
            .as_ref()
            .is_some_and(|t| t.response_id.is_none())
            && event.data.contains("\"response\":{")
        {
            response_id(ctx, event.data.as_bytes(), true);
        }
        if traced(ctx)
            && (ctx.answered.response_model.is_none() || ends_answer(event.data.as_bytes()))
        {
            outcome(ctx, event.data.as_bytes());
        }
        if (ctx.answered.capture.is_some() || calls_tools(event.data.as_bytes()))
            && let Ok(v) = serde_json::from_str::<Value>(&event.data)
        {
            watch(ctx, &v, "delta");
        }
        smallvec::smallvec![event]
    }
}

/// The id of the response object in `json` (a whole answer, or with `nested` a stream
/// event's `response`), for the request's conversation turn. Only the two fields are
/// read: the rest is skipped, not built.
fn response_id(ctx: &mut RequestCtx, json: &[u8], nested: bool) {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow, default)]
        object: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        id: Option<Cow<'a, str>>,
    }
    #[derive(serde::Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        response: Head<'a>,
    }
    let head = if nested {
        serde_json::from_slice::<Event>(json).map(|e| e.response)
    } else {
        serde_json::from_slice::<Head>(json)
    };
    let Ok(Head {
        object: Some(object),
        id: Some(id),
    }) = head
    else {
        return;
    };
    if let (true, Some(turn)) = (object == "response", ctx.conversation.as_mut()) {
        turn.response_id = Some(id.into_owned());
    }
}

fn traced(ctx: &RequestCtx) -> bool {
    ctx.trace.as_ref().is_some_and(|t| t.sampled())
}

/// Whether a stream event may say why the answer ended: a chat chunk's non-null
/// `finish_reason`, or a Responses stream's last event.
fn ends_answer(bytes: &[u8]) -> bool {
    use memchr::memmem::Finder;
    static ENDS: LazyLock<[Finder<'static>; 4]> = LazyLock::new(|| {
        [
            Finder::new(b"\"finish_reason\":\""),
            Finder::new(b"response.completed"),
            Finder::new(b"response.incomplete"),
            Finder::new(b"response.failed"),
        ]
    });
    ENDS.iter().any(|end| end.find(bytes).is_some())
}

/// The parts of an answer (or stream event) a trace reports; the rest is skipped.
#[derive(serde::Deserialize)]
struct Outcome<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
    /// A Responses answer's status; in a stream, its last event's.
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    /// The response a Responses stream event carries.
    #[serde(borrow, default)]
    response: Option<Box<Outcome<'a>>>,
}

#[derive(serde::Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

/// Notes the model the provider named and why the answer ended. Both come from the
/// provider: only short values of the expected shapes are kept.
fn outcome(ctx: &mut RequestCtx, json: &[u8]) {
    let Ok(o) = serde_json::from_slice::<Outcome>(json) else {
        return;
    };
    let response = o.response.as_deref();
    let model = o
        .model
        .as_deref()
        .or(response.and_then(|r| r.model.as_deref()));
    if let (None, Some(model)) = (&ctx.answered.response_model, model)
        && model.len() <= 128
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@+-".contains(&b))
    {
        ctx.answered.response_model = Some(model.to_string());
    }
    let mut reasons: Vec<&str> = o
        .choices
        .iter()
        .filter_map(|c| c.finish_reason.as_deref())
        .collect();
    let ended = matches!(
        o.kind.as_deref(),
        Some("response.completed" | "response.incomplete" | "response.failed")
    );
    match (o.kind.as_deref(), response) {
        (None, _) => reasons.extend(o.status.as_deref()),
        (Some(_), Some(r)) if ended => reasons.extend(r.status.as_deref()),
        _ => {}
    }
    for reason in reasons {
        let kept = &mut ctx.answered.finish_reasons;
        if kept.len() < 8
            && (1..=32).contains(&reason.len())
            && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            && !kept.iter().any(|k| k == reason)
        {
            kept.push(reason.to_string());
        }
    }
}

/// Whether an answer or event may name a tool call (chat's `tool_calls`, a Responses
/// `function_call` or `custom_tool_call` item or its argument deltas). A response's
/// `parallel_tool_calls` setting names none.
fn calls_tools(bytes: &[u8]) -> bool {
    use memchr::memmem::Finder;
    // Built once: every stream event is searched.
    static NAMES: LazyLock<[Finder<'static>; 3]> = LazyLock::new(|| {
        [
            Finder::new(b"\"tool_calls\""),
            Finder::new(b"function_call"),
            Finder::new(b"custom_tool_call"),
        ]
    });
    NAMES.iter().any(|name| name.find(bytes).is_some())
}

/// Reads the choices' `message` (whole answers) or `delta` (stream events). A streamed
/// call's first delta carries its name, later ones only pieces of its arguments.
fn watch(ctx: &mut RequestCtx, v: &Value, part: &str) {
    if v.get("type").is_some() || v.get("output").is_some() {
        return watch_response(ctx, v);
    }
    for choice in v
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let first = choice.get("index").and_then(Value::as_u64).unwrap_or(0) == 0;
        let message = choice.get(part);
        for (i, call) in calls(message).enumerate() {
            let index = call
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(i as u64);
            let name = call.pointer("/function/name").and_then(Value::as_str);
            let args = call.pointer("/function/arguments").and_then(Value::as_str);
            called(ctx, index, name, args, first);
        }
        if let (Some(c), true) = (ctx.answered.capture.as_mut(), first) {
            let text = message
                .and_then(|m| m.get("content"))
                .or_else(|| choice.get("text"))
                .and_then(Value::as_str);
            c.push(text.unwrap_or(""));
        }
    }
}

/// A Responses answer: its output items (whole) or one stream event — a call's item
/// when it is added (its name), pieces of its arguments, pieces of text.
fn watch_response(ctx: &mut RequestCtx, v: &Value) {
    let index = v.get("output_index").and_then(Value::as_u64).unwrap_or(0);
    let text = |k: &str| v.get(k).and_then(Value::as_str);
    match v.get("type").and_then(Value::as_str) {
        Some("response.output_item.added") => {
            if let Some(name) = v.pointer("/item/name").and_then(Value::as_str) {
                called(ctx, index, Some(name), None, true);
            }
        }
        Some(
            "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta",
        ) => called(ctx, index, None, text("delta"), true),
        Some("response.output_text.delta") => {
            if let (Some(c), Some(delta)) = (ctx.answered.capture.as_mut(), text("delta")) {
                c.push(delta);
            }
        }
        Some(_) => {}
        None => {
            for (index, item) in (0u64..).zip(
                v.get("output")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            ) {
                let field = |k: &str| item.get(k).and_then(Value::as_str);
                if let Some(name) = field("name") {
                    called(
                        ctx,
                        index,
                        Some(name),
                        field("arguments").or(field("input")),
                        true,
                    );
                }
                let Some(c) = ctx.answered.capture.as_mut() else {
                    continue;
                };
                for part in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    c.push(part.get("text").and_then(Value::as_str).unwrap_or(""));
                }
            }
        }
    }
}

/// One tool call seen: its name counted for the record (when this piece names it) and,
/// for the first choice, its name and arguments kept for the capture.
fn called(ctx: &mut RequestCtx, index: u64, name: Option<&str>, args: Option<&str>, first: bool) {
    let name = name.map(|n| {
        n.get(..n.floor_char_boundary(record::MAX_TEXT))
            .unwrap_or(n)
    });
    if let Some(name) = name {
        // A provider can name any number of tools: the names kept are bounded.
        let room = ctx.answered.tool_calls.len() < record::MAX_LIST;
        match ctx.answered.tool_calls.get_mut(name) {
            Some(n) => *n += 1,
            None if room => {
                ctx.answered.tool_calls.insert(name.to_string(), 1);
            }
            None => ctx.answered.tool_calls_cut += 1,
        }
    }
    if let (Some(c), true) = (ctx.answered.capture.as_mut(), first)
        && (c.calls.contains_key(&index) || c.calls.len() < record::MAX_LIST)
    {
        let max = c.max + LOOKAHEAD;
        let entry = c.calls.entry(index).or_default();
        if entry.0.len() < record::MAX_TEXT {
            entry.0.push_str(name.unwrap_or(""));
        }
        if let Some(args) = args
            && entry.1.len() < max
        {
            entry.1.push_str(args);
        }
    }
}

fn calls(message: Option<&Value>) -> impl Iterator<Item = &Value> {
    message
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn capture(max: usize) -> Capture {
        let profile: crate::config::PiiProfile = serde_yaml_ng::from_str("{}").unwrap();
        let scan = OutputScan {
            profile: Arc::new(crate::pii::Profile::new("p", &profile).unwrap()),
            hash_key: Arc::from(&b"k"[..]),
            tenant: None,
            ner_budget: Default::default(),
        };
        Capture::new(
            scan,
            max,
            br#"{"messages":[{"role":"user","content":"mail <EMAIL_1>"}]}"#,
        )
    }

    #[test]
    fn a_trace_learns_the_model_and_why_the_answer_ended() {
        let mut ctx = RequestCtx::new();
        outcome(
            &mut ctx,
            br#"{"id":"c1","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"content":"hi"},"finish_reason":"stop"},{"index":1,"finish_reason":"length"}]}"#,
        );
        assert_eq!(
            ctx.answered.response_model.as_deref(),
            Some("gpt-4o-mini-2024-07-18")
        );
        assert_eq!(ctx.answered.finish_reasons, vec!["stop", "length"]);

        // A Responses stream: the model from its first event, the status only from its last.
        let mut ctx = RequestCtx::new();
        for event in [
            r#"{"type":"response.created","response":{"model":"gpt-4o","status":"in_progress"}}"#,
            r#"{"type":"response.output_text.delta","delta":"status"}"#,
            r#"{"type":"response.completed","response":{"model":"gpt-4o","status":"completed"}}"#,
        ] {
            outcome(&mut ctx, event.as_bytes());
        }
        assert_eq!(ctx.answered.response_model.as_deref(), Some("gpt-4o"));
        assert_eq!(ctx.answered.finish_reasons, vec!["completed"]);

        // What a provider writes there is kept only in the expected shapes.
        let mut ctx = RequestCtx::new();
        outcome(
            &mut ctx,
            br#"{"model":"call jane@example.com now","choices":[{"finish_reason":"Stop: jane@example.com"}]}"#,
        );
        assert!(ctx.answered.response_model.is_none());
        assert!(ctx.answered.finish_reasons.is_empty());
    }

    #[test]
    fn the_answer_is_scanned_and_placeholders_stay() {
        let mut c = capture(1024);
        c.push("Sure, I wrote to <EMAIL_1>; my colleague is bob@corp.example.");
        let r = c.finish();
        assert_eq!(
            r.answer,
            "Sure, I wrote to <EMAIL_1>; my colleague is [EMAIL]."
        );
        assert!(r.prompt.contains("<EMAIL_1>") && !r.truncated);
    }

    #[test]
    fn a_value_cut_by_the_cap_is_withheld_whole() {
        let mut c = capture(30);
        c.push("Write to him: bob.smith@corp.example today, or call.");
        let r = c.finish();
        assert!(r.truncated);
        assert!(r.answer.len() <= 30, "{}", r.answer);
        assert!(!r.answer.contains("bob"), "{}", r.answer);
        assert!(
            r.answer.starts_with("Write to him: [EMAIL]"),
            "{}",
            r.answer
        );
    }
}
