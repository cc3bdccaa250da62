//! The mock provider's Responses API: `POST /v1/responses` answered as the chat answer to
//! the same conversation would be (instructions as a system message, input items as
//! messages, function tools as chat's), rendered as a response object or as the
//! Responses stream's named events; stored responses (`store`, the default) can be
//! continued with `previous_response_id`, read, listed (`input_items`) and deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::reply::{Kind, Plan, next_id, now_secs, split_in, stream_response};
use super::{MockSettings, MockStats, error_response, json_response};
use crate::http_client::UpstreamBody;
use crate::openai::responses::content_text;
use crate::openai::sse::Event;

/// Responses kept at most; the oldest half is forgotten beyond it.
const KEPT: usize = 10_000;

/// One stored response: the response object, the conversation up to and including its
/// answer (as chat messages), and the input items of its request.
struct Stored {
    response: Value,
    conversation: Vec<Value>,
    input_items: Vec<Value>,
    seq: u64,
}

/// The responses the mock keeps.
#[derive(Default)]
pub struct Store {
    kept: Mutex<HashMap<String, Stored>>,
}

impl Store {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Stored>) -> T) -> T {
        f(&mut self.kept.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// `GET`/`DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`.
    pub fn read(&self, method: &http::Method, rest: &str) -> Response<UpstreamBody> {
        let (id, items) = match rest.strip_suffix("/input_items") {
            Some(id) => (id, true),
            None => (rest, false),
        };
        let not_found = || {
            error_response(
                StatusCode::NOT_FOUND,
                &format!("Response with id '{id}' not found."),
                "not_found",
            )
        };
        match (method.as_str(), items) {
            ("GET", false) => self.with(|kept| match kept.get(id) {
                Some(s) => json_response(StatusCode::OK, &s.response),
                None => not_found(),
            }),
            ("GET", true) => self.with(|kept| match kept.get(id) {
                Some(s) => {
                    let data: Vec<&Value> = s.input_items.iter().rev().collect();
                    json_response(
                        StatusCode::OK,
                        &json!({"object": "list", "data": data, "has_more": false,
                                "first_id": null, "last_id": null}),
                    )
                }
                None => not_found(),
            }),
            ("DELETE", false) => self.with(|kept| match kept.remove(id) {
                Some(_) => json_response(
                    StatusCode::OK,
                    &json!({"id": id, "object": "response.deleted", "deleted": true}),
                ),
                None => not_found(),
            }),
            _ => error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "use GET or DELETE",
                "method_not_allowed",
            ),
        }
    }

    fn put(&self, id: String, stored: Stored) {
        self.with(|kept| {
            if kept.len() >= KEPT {
                let mut seqs: Vec<u64> = kept.values().map(|s| s.seq).collect();
                seqs.sort_unstable();
                let cut = seqs.get(KEPT / 2).copied().unwrap_or(0);
                kept.retain(|_, s| s.seq >= cut);
            }
            kept.insert(id, stored);
        });
    }
}

/// Answers `POST /v1/responses`.
pub fn create(
    body: &Value,
    settings: &MockSettings,
    stats: &Arc<MockStats>,
    store: &Store,
) -> Response<UpstreamBody> {
    let mut conversation = match body.get("previous_response_id").and_then(Value::as_str) {
        Some(prev) => match store.with(|kept| kept.get(prev).map(|s| s.conversation.clone())) {
            Some(c) => c,
            None => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("Previous response with id '{prev}' not found."),
                    "previous_response_not_found",
                );
            }
        },
        None => Vec::new(),
    };
    let input_items = input_items(body);
    if let Some(text) = body.get("instructions").and_then(Value::as_str) {
        conversation.retain(|m| m.get("role").and_then(Value::as_str) != Some("system"));
        conversation.insert(0, json!({"role": "system", "content": text}));
    }
    conversation.extend(input_items.iter().filter_map(as_message));
    let chat = json!({
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "messages": conversation,
        "tools": body.get("tools").and_then(Value::as_array).map(|tools| {
            tools.iter().filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
                .map(|t| json!({"type": "function", "function": {
                    "name": t.get("name"), "description": t.get("description"),
                    "parameters": t.get("parameters")}}))
                .collect::<Vec<_>>()
        }),
        "tool_choice": match body.get("tool_choice") {
            Some(Value::Object(o)) => json!({"type": "function", "function": {"name": o.get("name")}}),
            Some(other) => other.clone(),
            None => Value::Null,
        },
    });
    let plan = Plan::for_request(Kind::Chat, &chat, settings);
    let rendered = Rendered::new(&plan, body);
    let response = rendered.response("completed", true);
    if body.get("store").and_then(Value::as_bool) != Some(false) {
        let mut conversation = chat
            .get("messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        conversation.extend(rendered.output.iter().filter_map(as_message));
        store.put(
            rendered.id.clone(),
            Stored {
                response: response.clone(),
                conversation,
                input_items,
                seq: next_id(),
            },
        );
    }
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        stream_response(rendered.events(&plan), settings, stats)
    } else {
        json_response(StatusCode::OK, &response)
    }
}

/// The request's input as items, as the provider lists them: a string is one user
/// message, and a message's string content one `input_text` part.
fn input_items(body: &Value) -> Vec<Value> {
    let items = match body.get("input") {
        Some(Value::String(s)) => vec![json!({"type": "message", "role": "user", "content": s})],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    (0..)
        .zip(items)
        .map(|(i, mut item)| {
            if let Some(o) = item.as_object_mut() {
                if let Some(Value::String(text)) = o.get("content").cloned() {
                    o.insert(
                        "content".into(),
                        json!([{"type": "input_text", "text": text}]),
                    );
                }
                o.entry("type").or_insert_with(|| "message".into());
                o.entry("id")
                    .or_insert_with(|| format!("msg_in_{}_{i}", next_id()).into());
            }
            item
        })
        .collect()
}

/// An input or output item as a chat message, when it is one.
fn as_message(item: &Value) -> Option<Value> {
    match item.get("type").and_then(Value::as_str) {
        None | Some("message") => Some(json!({
            "role": item.get("role").and_then(Value::as_str).unwrap_or("user"),
            "content": content_text(item.get("content")),
        })),
        Some("function_call") => Some(json!({"role": "assistant", "content": null,
            "tool_calls": [{"id": item.get("call_id"), "type": "function", "function": {
                "name": item.get("name"), "arguments": item.get("arguments")}}]})),
        Some("function_call_output") => Some(json!({"role": "tool",
            "tool_call_id": item.get("call_id"), "content": content_text(item.get("output"))})),
        _ => None,
    }
}

/// A plan rendered as the Responses API's objects.
struct Rendered<'a> {
    id: String,
    body: &'a Value,
    output: Vec<Value>,
    usage: Value,
    created: u64,
    model: String,
}

impl<'a> Rendered<'a> {
    fn new(plan: &Plan, body: &'a Value) -> Rendered<'a> {
        let seq = next_id();
        let output: Vec<Value> = if plan.tool_calls.is_empty() {
            vec![
                json!({"type": "message", "id": format!("msg_mock_{seq}"), "status": "completed",
                "role": "assistant", "content": [{"type": "output_text", "text": plan.words.concat(),
                "annotations": [], "logprobs": []}]}),
            ]
        } else {
            (0..)
                .zip(&plan.tool_calls)
                .map(|(i, (name, args))| {
                    json!({"type": "function_call", "id": format!("fc_mock_{seq}_{i}"),
                       "call_id": plan.call_id(i), "name": name, "arguments": args,
                       "status": "completed"})
                })
                .collect()
        };
        let (input, output_tokens) = (plan.prompt_tokens, plan.completion_tokens());
        let usage = if plan.no_usage {
            Value::Null
        } else {
            json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
                   "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                   "total_tokens": input + output_tokens})
        };
        Rendered {
            id: format!("resp_mock_{seq}"),
            body,
            output,
            usage,
            created: now_secs(),
            model: plan.model.clone(),
        }
    }

    /// The response object, with its output and usage when `finished`.
    fn response(&self, status: &str, finished: bool) -> Value {
        let field = |k: &str| self.body.get(k).cloned().unwrap_or(Value::Null);
        json!({"id": self.id, "object": "response", "created_at": self.created,
            "status": status, "error": null, "incomplete_details": null,
            "instructions": field("instructions"), "max_output_tokens": field("max_output_tokens"),
            "model": self.model,
            "output": if finished { Value::Array(self.output.clone()) } else { json!([]) },
            "parallel_tool_calls": true,
            "previous_response_id": field("previous_response_id"),
            "store": self.body.get("store").cloned().unwrap_or(Value::Bool(true)),
            "temperature": 1.0, "text": {"format": {"type": "text"}},
            "tool_choice": self.body.get("tool_choice").cloned().unwrap_or("auto".into()),
            "tools": self.body.get("tools").cloned().unwrap_or(json!([])),
            "top_p": 1.0, "truncation": "disabled",
            "usage": if finished { self.usage.clone() } else { Value::Null },
            "metadata": self.body.get("metadata").cloned().unwrap_or(json!({}))})
    }

    /// The stream's named events: created, each output item added, its text or
    /// arguments in deltas, done, and completed.
    fn events(&self, plan: &Plan) -> Vec<Bytes> {
        let mut events = Vec::new();
        let mut emit = |mut v: Value| {
            let kind = v
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(o) = v.as_object_mut() {
                o.insert("sequence_number".into(), events.len().into());
            }
            events.push(
                Event {
                    event: Some(kind),
                    ..Event::data(v.to_string())
                }
                .encode(),
            );
        };
        emit(json!({"type": "response.created", "response": self.response("in_progress", false)}));
        emit(
            json!({"type": "response.in_progress", "response": self.response("in_progress", false)}),
        );
        for (index, item) in (0u64..).zip(&self.output) {
            let id = item.get("id").cloned().unwrap_or(Value::Null);
            let mut added = item.clone();
            if let Some(o) = added.as_object_mut() {
                o.insert("status".into(), "in_progress".into());
                if o.contains_key("arguments") {
                    o.insert("arguments".into(), "".into());
                } else {
                    o.insert("content".into(), json!([]));
                }
            }
            emit(
                json!({"type": "response.output_item.added", "output_index": index, "item": added}),
            );
            match item.get("arguments").and_then(Value::as_str) {
                Some(args) => {
                    for piece in split_in(args, 3) {
                        emit(json!({"type": "response.function_call_arguments.delta",
                            "item_id": id, "output_index": index, "delta": piece}));
                    }
                    emit(json!({"type": "response.function_call_arguments.done",
                        "item_id": id, "output_index": index, "arguments": args}));
                }
                None => {
                    let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                    let with = |mut v: Value| {
                        if let (Some(o), Some(a)) = (v.as_object_mut(), at.as_object()) {
                            o.extend(a.clone());
                        }
                        v
                    };
                    emit(with(json!({"type": "response.content_part.added",
                        "part": {"type": "output_text", "text": "", "annotations": []}})));
                    for w in &plan.words {
                        emit(with(
                            json!({"type": "response.output_text.delta", "delta": w,
                            "logprobs": []}),
                        ));
                    }
                    let text = plan.words.concat();
                    emit(with(
                        json!({"type": "response.output_text.done", "text": text,
                        "logprobs": []}),
                    ));
                    emit(with(json!({"type": "response.content_part.done",
                        "part": {"type": "output_text", "text": text, "annotations": []}})));
                }
            }
            emit(json!({"type": "response.output_item.done", "output_index": index, "item": item}));
        }
        emit(json!({"type": "response.completed", "response": self.response("completed", true)}));
        events
    }
}
