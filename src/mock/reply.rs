//! Deterministic answers of the mock provider. The same request always yields the same
//! text, tool calls, usage and embedding vectors; only ids and timestamps vary.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use futures_util::stream;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{MockSettings, MockStats, json_response};
use crate::http_client::{BoxError, UpstreamBody};
use crate::openai::responses::content_text;
use crate::openai::sse;
use crate::openai::{ApiRequest, Endpoint};
use crate::tokens::{self, Encoding};

/// Words of the user's message echoed back at most.
const ECHO_WORDS: usize = 32;
/// Default embedding size when the request names no `dimensions`.
const DEFAULT_DIMENSIONS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chat,
    Completion,
    Embedding,
    /// The Responses API (`super::responses`).
    Responses,
}

/// Maps OpenAI paths (`/v1/chat/completions`) and Azure deployment paths
/// (`/openai/deployments/{d}/chat/completions`) to the kind of answer.
pub fn endpoint_of(path: &str) -> Option<Kind> {
    let tail = path.trim_end_matches('/');
    if tail.ends_with("/chat/completions") {
        Some(Kind::Chat)
    } else if tail.ends_with("/completions") {
        Some(Kind::Completion)
    } else if tail.ends_with("/embeddings") {
        Some(Kind::Embedding)
    } else if tail.ends_with("/responses") {
        Some(Kind::Responses)
    } else {
        None
    }
}

pub fn model_list() -> Value {
    let data: Vec<Value> = ["mock-gpt", "mock-embedding"]
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "mock"}))
        .collect();
    json!({"object": "list", "data": data})
}

pub fn respond(
    kind: Kind,
    body: &Value,
    settings: &MockSettings,
    stats: &Arc<MockStats>,
) -> Response<UpstreamBody> {
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    match kind {
        Kind::Embedding => json_response(StatusCode::OK, &embeddings(body, &model_of(body))),
        // Served by `super::responses`, which keeps the conversations.
        Kind::Responses => json_response(StatusCode::NOT_FOUND, &Value::Null),
        Kind::Chat | Kind::Completion => {
            let plan = Plan::for_request(kind, body, settings);
            if stream {
                let include_usage = !settings.no_usage
                    && body
                        .pointer("/stream_options/include_usage")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                stream_response(plan.chunks(include_usage), settings, stats)
            } else {
                json_response(StatusCode::OK, &plan.whole())
            }
        }
    }
}

fn model_of(body: &Value) -> String {
    body.get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-gpt")
        .to_string()
}

/// What the mock will answer, before it is rendered as one object or as chunks.
pub(super) struct Plan {
    kind: Kind,
    pub(super) id: String,
    pub(super) created: u64,
    pub(super) model: String,
    n: usize,
    pub(super) words: Vec<String>,
    /// The tool calls of the answer (name, arguments), in order.
    pub(super) tool_calls: Vec<(String, String)>,
    pub(super) prompt_tokens: u64,
    /// Counts like the provider it stands in for: OpenAI's tokenizers by model family.
    encoding: Encoding,
    pub(super) no_usage: bool,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A new number for an id.
pub(super) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

impl Plan {
    /// The answer to a chat-shaped (or completion) `body`, in pieces of the configured
    /// size when the mock is told to stream in characters.
    pub(super) fn for_request(kind: Kind, body: &Value, settings: &MockSettings) -> Plan {
        let mut plan = Plan::new(kind, body, model_of(body), settings);
        if let Some(n) = settings.chunk_chars.filter(|n| *n > 0) {
            let chars: Vec<char> = plan.words.concat().chars().collect();
            plan.words = chars.chunks(n).map(|c| c.iter().collect()).collect();
        }
        plan
    }

    fn new(kind: Kind, body: &Value, model: String, settings: &MockSettings) -> Plan {
        let no_usage = settings.no_usage;
        let encoding = Encoding::for_model(None, &model, std::path::Path::new("."))
            .unwrap_or(Encoding::Estimate);
        let n = body
            .get("n")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .clamp(1, 16) as usize;
        let (prompt_text, prompt_tokens) = match kind {
            Kind::Chat => last_user_text(body),
            _ => {
                let p = prompt_of(body);
                let t = count_tokens(&p);
                (p, t)
            }
        };
        let tool_calls = if kind == Kind::Chat {
            tool_calls_for(body, &prompt_text)
        } else {
            Vec::new()
        };
        let mut reply = if let Some(result) = tool_result_text(body) {
            format!("Tool result received: {}", summarize(&result))
        } else if prompt_text
            .to_lowercase()
            .contains("repeat your instructions")
        {
            // A model that follows an injected request and quotes its system prompt.
            format!("My instructions: {}", summarize(&system_text(body)))
        } else if prompt_text
            .to_lowercase()
            .contains("repeat my first message")
        {
            // A model that remembers the start of a long conversation.
            format!("You first said: {}", summarize(&first_user_text(body)))
        } else {
            format!("You said: {}", summarize(&prompt_text))
        };
        if let Some(extra) = &settings.also_say {
            reply.push(' ');
            reply.push_str(extra);
        }
        let words = split_words(&reply);
        let endpoint = match kind {
            Kind::Chat | Kind::Responses => Endpoint::ChatCompletions,
            Kind::Completion => Endpoint::Completions,
            Kind::Embedding => Endpoint::Embeddings,
        };
        let prompt_tokens = ApiRequest::parse(endpoint, body.to_string().as_bytes())
            .map(|r| tokens::prompt_tokens(&encoding, &r))
            .unwrap_or(prompt_tokens);
        let seq = next_id();
        let prefix = if kind == Kind::Chat {
            "chatcmpl-mock"
        } else {
            "cmpl-mock"
        };
        Plan {
            kind,
            id: format!("{prefix}-{seq}"),
            created: now_secs(),
            model,
            n,
            words,
            tool_calls,
            prompt_tokens,
            encoding,
            no_usage,
        }
    }

    pub(super) fn completion_tokens(&self) -> u64 {
        let per_choice = match self.tool_calls.is_empty() {
            false => self
                .tool_calls
                .iter()
                .map(|(name, args)| self.encoding.count(&format!("{name}{args}")))
                .sum(),
            true => self.encoding.count(&self.words.concat()),
        };
        per_choice * self.n as u64
    }

    fn usage(&self) -> Value {
        let c = self.completion_tokens();
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": c,
               "total_tokens": self.prompt_tokens + c})
    }

    pub(super) fn call_id(&self, i: usize) -> String {
        match i {
            0 => format!("call_{}", self.id),
            i => format!("call_{}_{i}", self.id),
        }
    }

    fn tool_calls_value(&self) -> Option<Value> {
        if self.tool_calls.is_empty() {
            return None;
        }
        let calls: Vec<Value> = self
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| {
                json!({"id": self.call_id(i), "type": "function",
                       "function": {"name": name, "arguments": args}})
            })
            .collect();
        Some(Value::Array(calls))
    }

    fn whole(&self) -> Value {
        let text = self.words.concat();
        let choices: Vec<Value> = (0..self.n)
            .map(|i| match self.kind {
                Kind::Chat => {
                    let (message, finish) = match self.tool_calls_value() {
                        Some(calls) => (
                            json!({"role": "assistant", "content": null, "tool_calls": calls}),
                            "tool_calls",
                        ),
                        None => (json!({"role": "assistant", "content": text}), "stop"),
                    };
                    json!({"index": i, "message": message, "logprobs": null, "finish_reason": finish})
                }
                _ => json!({"index": i, "text": text, "logprobs": null, "finish_reason": "stop"}),
            })
            .collect();
        let object = if self.kind == Kind::Chat {
            "chat.completion"
        } else {
            "text_completion"
        };
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model,
               "choices": choices, "usage": if self.no_usage { Value::Null } else { self.usage() },
               "system_fingerprint": "fp_warden_mock"})
    }

    fn chunk(&self, choices: Vec<Value>, usage: Option<Value>) -> Bytes {
        let object = if self.kind == Kind::Chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        let mut v = json!({"id": self.id, "object": object, "created": self.created,
                           "model": self.model, "system_fingerprint": "fp_warden_mock",
                           "choices": choices});
        if let (Some(u), Some(obj)) = (usage, v.as_object_mut()) {
            obj.insert("usage".into(), u);
        }
        sse::data_event(&serde_json::to_vec(&v).unwrap_or_default())
    }

    /// The SSE events of a streamed answer, `[DONE]` included.
    fn chunks(&self, include_usage: bool) -> Vec<Bytes> {
        let mut out = Vec::new();
        let null_usage = include_usage.then_some(Value::Null);
        for i in 0..self.n {
            if self.kind == Kind::Chat {
                let first = json!({"index": i, "delta": {"role": "assistant", "content": ""},
                                   "logprobs": null, "finish_reason": null});
                out.push(self.chunk(vec![first], null_usage.clone()));
            }
            match self.tool_calls.is_empty() {
                false => {
                    for (c, (name, args)) in self.tool_calls.iter().enumerate() {
                        let head = json!([{"index": c, "id": self.call_id(c), "type": "function",
                                           "function": {"name": name, "arguments": ""}}]);
                        out.push(self.delta_chunk(i, json!({"tool_calls": head}), &null_usage));
                        for piece in split_in(args, 3) {
                            let d = json!({"tool_calls": [{"index": c, "function": {"arguments": piece}}]});
                            out.push(self.delta_chunk(i, d, &null_usage));
                        }
                    }
                }
                true => {
                    for w in &self.words {
                        let choice = match self.kind {
                            Kind::Chat => json!({"index": i, "delta": {"content": w},
                                                 "logprobs": null, "finish_reason": null}),
                            _ => {
                                json!({"index": i, "text": w, "logprobs": null, "finish_reason": null})
                            }
                        };
                        out.push(self.chunk(vec![choice], null_usage.clone()));
                    }
                }
            }
            let finish = if !self.tool_calls.is_empty() {
                "tool_calls"
            } else {
                "stop"
            };
            let last = match self.kind {
                Kind::Chat => {
                    json!({"index": i, "delta": {}, "logprobs": null, "finish_reason": finish})
                }
                _ => json!({"index": i, "text": "", "logprobs": null, "finish_reason": finish}),
            };
            out.push(self.chunk(vec![last], null_usage.clone()));
        }
        if include_usage {
            out.push(self.chunk(Vec::new(), Some(self.usage())));
        }
        out.push(sse::done_event());
        out
    }

    fn delta_chunk(&self, index: usize, delta: Value, usage: &Option<Value>) -> Bytes {
        let choice =
            json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": null});
        self.chunk(vec![choice], usage.clone())
    }
}

/// Counts stream completion and cancellation; a stream dropped before its end is cancelled.
struct StreamGuard {
    stats: Arc<MockStats>,
    done: bool,
}

impl StreamGuard {
    fn finish(mut self) {
        self.done = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let counter = if self.done {
            &self.stats.streams_completed
        } else {
            &self.stats.streams_cancelled
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub(super) fn stream_response(
    chunks: Vec<Bytes>,
    settings: &MockSettings,
    stats: &Arc<MockStats>,
) -> Response<UpstreamBody> {
    stats.streams_started.fetch_add(1, Ordering::Relaxed);
    let pace = match settings.tokens_per_sec {
        0 => None,
        n => Some(Duration::from_secs_f64(1.0 / n as f64)),
    };
    let fail_after = settings.fail_after_chunks;
    let guard = StreamGuard {
        stats: stats.clone(),
        done: false,
    };
    let state = (chunks.into_iter().enumerate(), guard);
    let body = stream::unfold(state, move |(mut it, guard)| async move {
        let (i, chunk) = match it.next() {
            Some(next) => next,
            None => {
                guard.finish();
                return None;
            }
        };
        if fail_after == Some(i) {
            let err: BoxError = "mock stream broken on purpose".into();
            // The guard drops with the state: the stream counts as cancelled.
            return Some((Err(err), (it, guard)));
        }
        if let (Some(p), true) = (pace, i > 0) {
            tokio::time::sleep(p).await;
        }
        Some((Ok(Frame::data(chunk)), (it, guard)))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/event-stream")
        .header(http::header::CACHE_CONTROL, "no-cache")
        .body(BodyExt::boxed(StreamBody::new(body)))
        .unwrap_or_else(|_| Response::new(super::full_body(Bytes::new())))
}

fn embeddings(body: &Value, model: &str) -> Value {
    let dims = body
        .get("dimensions")
        .and_then(Value::as_u64)
        .map(|d| d.clamp(1, 4096) as usize)
        .unwrap_or(DEFAULT_DIMENSIONS);
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
            vec![Value::Array(items.clone()).to_string()]
        }
        Some(Value::Array(items)) => items.iter().map(text_of).collect(),
        _ => Vec::new(),
    };
    let mut tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            tokens += count_tokens(text);
            let v = vector_for(text, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json!({"object": "list", "data": data, "model": model,
           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

/// A unit vector derived from the SHA-256 stream of the text.
fn vector_for(text: &str, dims: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(dims);
    let mut block = 0u32;
    while out.len() < dims {
        let digest = Sha256::new()
            .chain_update(block.to_le_bytes())
            .chain_update(text)
            .finalize();
        for pair in digest.chunks_exact(2) {
            if out.len() == dims {
                break;
            }
            if let [a, b] = pair {
                out.push(u16::from_le_bytes([*a, *b]) as f32 / 32767.5 - 1.0);
            }
        }
        block += 1;
    }
    let norm = out
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    out.iter().map(|x| x / norm).collect()
}

/// The text of the last user message and the mock's prompt-token count for the chat.
fn last_user_text(body: &Value) -> (String, u64) {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut tokens = 3;
    let mut last = String::new();
    for m in &messages {
        let text = content_text(m.get("content"));
        tokens += 4 + count_tokens(&text);
        if m.get("role").and_then(Value::as_str) == Some("user") {
            last = text;
        }
    }
    (last, tokens)
}

/// The text of the conversation's first user message.
fn first_user_text(body: &Value) -> String {
    body.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| content_text(m.get("content")))
        .unwrap_or_default()
}

/// The system (or developer) messages' text.
fn system_text(body: &Value) -> String {
    body.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| {
            matches!(
                m.get("role").and_then(Value::as_str),
                Some("system" | "developer")
            )
        })
        .map(|m| content_text(m.get("content")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// When the conversation ends with tool results, their text.
fn tool_result_text(body: &Value) -> Option<String> {
    let last = body.get("messages")?.as_array()?.last()?;
    (last.get("role")?.as_str()? == "tool").then(|| content_text(last.get("content")))
}

/// A string item as its text, any other JSON item (token ids) as its JSON.
fn text_of(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn prompt_of(body: &Value) -> String {
    match body.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items.iter().map(text_of).collect::<Vec<_>>().join("\n"),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Picks the tools to call when tools are offered and the prompt (or `tool_choice`) asks
/// for them: the forced one, else every offered tool the prompt names (in the order
/// offered), else with `tool_choice: required` the first offered.
fn tool_calls_for(body: &Value, prompt: &str) -> Vec<(String, String)> {
    if tool_result_text(body).is_some() {
        return Vec::new();
    }
    let Some(tools) = body.get("tools").and_then(Value::as_array) else {
        return Vec::new();
    };
    let functions: Vec<&Value> = tools.iter().filter_map(|t| t.get("function")).collect();
    let name_of = |f: &Value| f.get("name").and_then(Value::as_str).map(str::to_string);
    let choice = body.get("tool_choice");
    if choice.and_then(Value::as_str) == Some("none") {
        return Vec::new();
    }
    let forced = choice
        .and_then(|c| c.pointer("/function/name"))
        .and_then(Value::as_str);
    let lower = prompt.to_lowercase();
    let picked: Vec<&Value> = if let Some(name) = forced {
        functions
            .iter()
            .filter(|f| name_of(f).as_deref() == Some(name))
            .take(1)
            .copied()
            .collect()
    } else {
        let mentioned: Vec<&Value> = functions
            .iter()
            .filter(|f| name_of(f).is_some_and(|n| lower.contains(&n.to_lowercase())))
            .copied()
            .collect();
        match (mentioned.is_empty(), choice.and_then(Value::as_str)) {
            (false, _) => mentioned,
            (true, Some("required")) => functions.first().copied().into_iter().collect(),
            _ => Vec::new(),
        }
    };
    picked
        .into_iter()
        .filter_map(|f| Some((name_of(f)?, arguments_for(f.get("parameters"), prompt))))
        .collect()
}

/// Arguments that satisfy a simple JSON schema, read from the prompt as a model would:
/// an enum value the prompt names, a number after the word the property is named for
/// (`size 10`, `under $120`, `quantity 3`), an id the prompt carries (`P1021`, `A70000`),
/// else the prompt itself for a query or a summary. Required properties are always
/// filled (numbers with 1, enums with their first value, text with the prompt); optional
/// ones only when the prompt gives them.
fn arguments_for(schema: Option<&Value>, prompt: &str) -> String {
    let mut args = Map::new();
    let props = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object);
    if let Some(props) = props {
        let required: Vec<&str> = schema
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, prop) in props {
            let needed = required.contains(&name.as_str());
            if let Some(v) = from_prompt(name, prop, prompt) {
                args.insert(name.clone(), v);
                continue;
            }
            if !needed {
                continue;
            }
            let value = match prop.get("type").and_then(Value::as_str) {
                Some("integer") | Some("number") => json!(1),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ => match prop
                    .get("enum")
                    .and_then(Value::as_array)
                    .and_then(|e| e.first())
                {
                    Some(first) => first.clone(),
                    None => Value::from(prompt),
                },
            };
            args.insert(name.clone(), value);
        }
    }
    Value::Object(args).to_string()
}

/// What the prompt says for one property, if anything.
fn from_prompt(name: &str, prop: &Value, prompt: &str) -> Option<Value> {
    let lower = prompt.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '$' || c == '-'))
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_end_matches('.'))
        .collect();
    if let Some(options) = prop.get("enum").and_then(Value::as_array) {
        return options
            .iter()
            .find(|o| o.as_str().is_some_and(|o| words.contains(&o)))
            .cloned();
    }
    let number_after = |keys: &[&str]| {
        words.windows(2).find_map(|w| match w {
            [k, v] if keys.contains(k) => v.trim_start_matches('$').parse::<f64>().ok(),
            _ => None,
        })
    };
    let id_like = |prefix: char| {
        prompt
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| {
                w.len() >= 4
                    && w.starts_with(prefix)
                    && w.chars().skip(1).all(|c| c.is_ascii_digit())
            })
            .map(|w| Value::from(w.to_string()))
    };
    match name {
        "product_id" => id_like('P'),
        "order_id" => id_like('A'),
        n if n.contains("size") => number_after(&["size"]).map(|v| Value::from(format!("{v}"))),
        n if n.starts_with("min") => number_after(&["over", "above", "from"]).map(Value::from),
        n if n.contains("price") || n.contains("amount") => {
            number_after(&["under", "below", "than", "of", "for"])
                .or_else(|| {
                    words
                        .iter()
                        .find_map(|w| w.strip_prefix('$').and_then(|v| v.parse::<f64>().ok()))
                })
                .map(Value::from)
        }
        n if n.contains("quantity") || n == "points" => {
            number_after(&[n]).map(|v| Value::from(v as i64))
        }
        "query" | "q" | "summary" | "description" | "reason" => Some(Value::from(prompt)),
        _ => None,
    }
}

fn summarize(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= ECHO_WORDS {
        words.join(" ")
    } else {
        format!(
            "{} … ({} words)",
            words.get(..ECHO_WORDS).unwrap_or_default().join(" "),
            words.len()
        )
    }
}

/// Splits text into word pieces that concatenate back to it (`"a b"` → `["a", " b"]`).
fn split_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if ch == ' ' && !current.is_empty() && !current.ends_with(' ') {
            out.push(std::mem::take(&mut current));
        }
        current.push(ch);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

pub(super) fn split_in(text: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(parts).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// The mock's token count: words and punctuation marks.
fn count_tokens(text: &str) -> u64 {
    text.split_whitespace()
        .map(|w| 1 + w.chars().filter(|c| c.is_ascii_punctuation()).count() as u64)
        .sum()
}

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::sse::Parser;

    fn chat(body: Value) -> Plan {
        Plan::new(Kind::Chat, &body, "m".into(), &MockSettings::default())
    }

    #[test]
    fn echoes_the_last_user_message() {
        let p = chat(json!({"messages": [{"role": "user", "content": "first"},
                                         {"role": "assistant", "content": "x"},
                                         {"role": "user", "content": "hello   there"}]}));
        assert_eq!(
            p.whole()["choices"][0]["message"]["content"],
            "You said: hello there"
        );
    }

    #[test]
    fn stream_concatenates_to_the_whole_answer_and_reports_usage() {
        let p = chat(json!({"messages": [{"role": "user", "content": "one two three"}]}));
        let mut parser = Parser::default();
        let mut events = Vec::new();
        for c in p.chunks(true) {
            parser.feed(&c, &mut events).unwrap();
        }
        assert!(events.last().unwrap().is_done());
        let mut text = String::new();
        let mut usage = Value::Null;
        for e in &events[..events.len() - 1] {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            if let Some(t) = v
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
            {
                text.push_str(t);
            }
            if !v["usage"].is_null() {
                usage = v["usage"].clone();
            }
        }
        assert_eq!(
            text,
            p.whole()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
        );
        assert_eq!(usage, p.whole()["usage"]);
    }

    #[test]
    fn tool_call_when_prompt_names_the_tool() {
        let body = json!({"messages": [{"role": "user", "content": "please check_stock for SKU-1"}],
            "tools": [{"type": "function", "function": {"name": "check_stock",
                "parameters": {"type": "object", "properties": {"sku": {"type": "string"},
                "qty": {"type": "integer"}}, "required": ["sku"]}}}]});
        let p = chat(body);
        let whole = p.whole();
        let call = &whole["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "check_stock");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"sku": "please check_stock for SKU-1"}));
        assert_eq!(whole["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn no_tool_call_without_a_reason() {
        let body = json!({"messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "lookup"}}]});
        assert!(chat(body).tool_calls.is_empty());
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = vector_for("abc", 64);
        assert_eq!(a, vector_for("abc", 64));
        assert_ne!(a, vector_for("abd", 64));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn words_split_and_join() {
        assert_eq!(split_words("You said: a  b").concat(), "You said: a  b");
        assert_eq!(split_words("a b"), vec!["a", " b"]);
    }
}
