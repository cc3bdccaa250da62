//! Every string of a request the provider will read, redacted in place — known fields and
//! unknown ones alike. The only strings left as they are sit at the places [`kind`] lists:
//! identifiers, enums and names the protocol needs intact (the model, roles, ids, tool
//! and schema names, content-part types) and base64 payloads that are not text (inline
//! images, audio, files). Tool-call arguments are JSON inside a string: their string
//! values are redacted and the JSON stays valid. Inputs given as token ids are decoded
//! with the model's tokenizer, redacted, and sent as text when anything changed (or
//! refused, per profile). Each message's texts are attributed to its role, so answers can
//! be restored only from the sources a profile allows.

use serde_json::{Map, Value};

use super::redact::Redactor;
use crate::config::{RestoreSource, TokenInput};
use crate::openai::request::{
    ApiRequest, ChatCompletionRequest, ChatMessage, CompletionRequest, EmbeddingInput,
    EmbeddingRequest, MessageContent, ResponsesRequest,
};
use crate::tokens::Encoding;

/// How the string at one place of a request is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Not content: left as it is.
    Keep,
    /// Text: redacted.
    Text,
    /// JSON held in a string (tool-call arguments): its string values are redacted.
    JsonText,
    /// A URL that may be an inline `data:` payload (kept) or a link (redacted as text).
    Url,
}

/// The treatment of the string at `path`: object keys from the body's root, array
/// positions left out (`["messages", "tool_calls", "function", "name"]`). This is the one
/// list of what is not content; everything else the provider reads is redacted.
pub fn kind(path: &[&str]) -> Kind {
    use Kind::*;
    match path {
        // Which model, and enums the provider interprets.
        ["model" | "service_tier" | "reasoning_effort" | "verbosity" | "modalities"]
        | ["encoding_format"]
        | ["audio", "voice" | "format"]
        | ["response_format", "type"]
        | ["prediction", "type"] => Keep,
        // Messages: role, ids, content-part types and their enums, base64 payloads.
        ["messages", "role" | "tool_call_id"]
        | ["messages", "content", "type"]
        | ["messages", "content", "image_url", "detail"]
        | ["messages", "content", "input_audio", "data" | "format"]
        | ["messages", "content", "file", "file_data" | "file_id"]
        | ["messages", "audio", "id"] => Keep,
        ["messages", "content", "image_url", "url"] | ["messages", "content", "image_url"] => Url,
        // Tool calls in the history: ids and names must match the tools; arguments are JSON.
        ["messages", "tool_calls", "id" | "type"]
        | ["messages", "tool_calls", "function", "name"]
        | ["messages", "function_call", "name"] => Keep,
        ["messages", "tool_calls", "function", "arguments"]
        | ["messages", "function_call", "arguments"] => JsonText,
        // Tool definitions and choices: types and names (descriptions and schemas are text).
        ["tools", "type"]
        | ["tools", "function" | "custom", "name"]
        | ["functions", "name"]
        | ["function_call"]
        | ["function_call", "name"]
        | ["tool_choice"]
        | ["tool_choice", "type"]
        | ["tool_choice", "function" | "custom", "name"]
        | ["tool_choice", "allowed_tools", "mode"]
        | ["tool_choice", "allowed_tools", "tools", "type"]
        | [
            "tool_choice",
            "allowed_tools",
            "tools",
            "function" | "custom",
            "name",
        ]
        | ["response_format", "json_schema", "name"] => Keep,
        _ => Text,
    }
}

/// The treatment of the string at `path` of a Responses request (`POST /v1/responses`),
/// as [`kind`] for chat: the one list of what is not content there.
pub fn responses_kind(path: &[&str]) -> Kind {
    use Kind::*;
    match path {
        ["model" | "previous_response_id" | "service_tier" | "truncation" | "include"]
        | ["reasoning", "effort" | "summary" | "generate_summary"]
        | ["text", "format", "type" | "name"]
        | ["text", "verbosity"] => Keep,
        // Input items: types, roles, ids, statuses, names of the tools called, opaque
        // provider payloads (encrypted reasoning) and content-part enums and files.
        [
            "input",
            "type" | "role" | "id" | "call_id" | "status" | "name" | "encrypted_content",
        ]
        | [
            "input",
            "content" | "output",
            "type" | "detail" | "file_id" | "file_data",
        ]
        | [
            "input",
            "content" | "output",
            "input_audio",
            "data" | "format",
        ]
        | ["input", "summary", "type"] => Keep,
        ["input", "content" | "output", "image_url"] => Url,
        ["input", "arguments"] => JsonText,
        // Tool definitions and choices: types and names (descriptions and schemas are text).
        ["tools", "type" | "name" | "server_label"]
        | ["tool_choice"]
        | ["tool_choice", "type" | "name" | "mode" | "server_label"]
        | ["tool_choice", "tools", "type" | "name" | "server_label"] => Keep,
        _ => Text,
    }
}

/// The request holds token ids the profile refuses, or the model's tokenizer cannot
/// decode them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenInputRefused;

/// Redacts `request`; returns whether anything changed.
pub fn redact(
    request: &mut ApiRequest,
    r: &mut Redactor<'_>,
    encoding: Option<&Encoding>,
) -> Result<bool, TokenInputRefused> {
    let mut w = Walk {
        r,
        encoding,
        kinds: kind,
        changed: false,
    };
    match request {
        ApiRequest::Chat(chat) => w.chat(chat),
        ApiRequest::Completion(c) => w.completion(c)?,
        ApiRequest::Embedding(e) => w.embedding(e)?,
        ApiRequest::Responses(r) => {
            w.kinds = responses_kind;
            w.responses(r);
        }
    }
    Ok(w.changed)
}

/// Redacts the string values of a JSON text (all of them: inside a JSON text every string
/// is content); non-JSON text is redacted as text.
pub fn json_text(json: &str, r: &mut Redactor<'_>) -> Option<String> {
    match serde_json::from_str::<Value>(json) {
        Ok(mut v) => {
            let mut w = Walk {
                r,
                encoding: None,
                kinds: kind,
                changed: false,
            };
            w.value(&mut v, &mut Vec::new(), false);
            w.changed.then(|| v.to_string())
        }
        Err(_) => r.text(json),
    }
}

/// Redacts every string of a JSON value as text (a tool's result); returns whether
/// anything changed.
pub fn json_value(v: &mut Value, r: &mut Redactor<'_>) -> bool {
    let mut w = Walk {
        r,
        encoding: None,
        kinds: kind,
        changed: false,
    };
    w.value(v, &mut Vec::new(), false);
    w.changed
}

struct Walk<'w, 'p> {
    r: &'w mut Redactor<'p>,
    encoding: Option<&'w Encoding>,
    /// What is content in this request's shape ([`kind`] or [`responses_kind`]).
    kinds: fn(&[&str]) -> Kind,
    changed: bool,
}

impl Walk<'_, '_> {
    fn string(&mut self, s: &mut String, kind: Kind) {
        let new = match kind {
            Kind::Keep => None,
            Kind::Url if s.starts_with("data:") => None,
            Kind::Text | Kind::Url => self.r.text(s),
            Kind::JsonText => json_text(s, self.r),
        };
        if let Some(new) = new {
            *s = new;
            self.changed = true;
        }
    }

    /// A string at a typed field.
    fn field(&mut self, s: &mut String, path: &[&str]) {
        self.string(s, (self.kinds)(path));
    }

    /// Every string in `v`; `by_path` treats each by its place in the request ([`kind`]),
    /// otherwise (inside a JSON text) each is text.
    fn value(&mut self, v: &mut Value, path: &mut Vec<String>, by_path: bool) {
        match v {
            Value::String(s) => {
                let k = if by_path {
                    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
                    (self.kinds)(&keys)
                } else {
                    Kind::Text
                };
                self.string(s, k);
            }
            Value::Array(items) => {
                for item in items {
                    self.value(item, path, by_path);
                }
            }
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    path.push(key.clone());
                    self.value(v, path, by_path);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// The unknown fields of an object at `prefix`.
    fn extra(&mut self, extra: &mut Map<String, Value>, prefix: &[&str]) {
        for (key, v) in extra.iter_mut() {
            let mut path: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
            path.push(key.clone());
            self.value(v, &mut path, true);
        }
    }

    fn chat(&mut self, chat: &mut ChatCompletionRequest) {
        for m in &mut chat.messages {
            let before = self.r.set_origin(RestoreSource::of_role(&m.role));
            self.message(m);
            self.r.set_origin(before);
        }
        for tool in chat.tools.iter_mut().flatten() {
            if let Some(f) = tool.function.as_mut() {
                if let Some(d) = f.description.as_mut() {
                    self.field(d, &["tools", "function", "description"]);
                }
                if let Some(p) = f.parameters.as_mut() {
                    let mut path = vec!["tools".into(), "function".into(), "parameters".into()];
                    self.value(p, &mut path, true);
                }
                self.extra(&mut f.extra, &["tools", "function"]);
            }
            self.extra(&mut tool.extra, &["tools"]);
        }
        if let Some(choice) = chat.tool_choice.as_mut() {
            self.value(choice, &mut vec!["tool_choice".into()], true);
        }
        if let Some(o) = chat.stream_options.as_mut() {
            self.extra(&mut o.extra, &["stream_options"]);
        }
        self.extra(&mut chat.extra, &[]);
    }

    fn message(&mut self, m: &mut ChatMessage) {
        match &mut m.content {
            Some(MessageContent::Text(s)) => self.field(s, &["messages", "content"]),
            Some(MessageContent::Parts(parts)) => {
                for part in parts {
                    if let Some(s) = part.text.as_mut() {
                        self.field(s, &["messages", "content", "text"]);
                    }
                    self.extra(&mut part.extra, &["messages", "content"]);
                }
            }
            None => {}
        }
        if let Some(name) = m.name.as_mut() {
            self.field(name, &["messages", "name"]);
        }
        for call in m.tool_calls.iter_mut().flatten() {
            self.field(
                &mut call.function.arguments,
                &["messages", "tool_calls", "function", "arguments"],
            );
            self.extra(
                &mut call.function.extra,
                &["messages", "tool_calls", "function"],
            );
            self.extra(&mut call.extra, &["messages", "tool_calls"]);
        }
        self.extra(&mut m.extra, &["messages"]);
    }

    /// A Responses request: `instructions` as the system's, each input item under its
    /// role (function-call outputs as the tool's, calls as the assistant's), the rest as
    /// other text.
    fn responses(&mut self, r: &mut ResponsesRequest) {
        let before = self.r.set_origin(RestoreSource::System);
        if let Some(instructions) = r.instructions.as_mut() {
            self.value(instructions, &mut vec!["instructions".into()], true);
        }
        match r.input.as_mut() {
            Some(Value::Array(items)) => {
                for item in items {
                    let origin = match (
                        item.get("role").and_then(Value::as_str),
                        item.get("type").and_then(Value::as_str),
                    ) {
                        (Some(role), _) => RestoreSource::of_role(role),
                        (None, Some("function_call_output" | "custom_tool_call_output")) => {
                            RestoreSource::Tool
                        }
                        (None, Some("function_call" | "custom_tool_call")) => {
                            RestoreSource::Assistant
                        }
                        _ => RestoreSource::Other,
                    };
                    self.r.set_origin(origin);
                    self.value(item, &mut vec!["input".into()], true);
                }
            }
            Some(input) => {
                self.r.set_origin(RestoreSource::User);
                self.value(input, &mut vec!["input".into()], true);
            }
            None => {}
        }
        self.r.set_origin(RestoreSource::Other);
        for tool in r.tools.iter_mut().flatten() {
            self.value(tool, &mut vec!["tools".into()], true);
        }
        if let Some(choice) = r.tool_choice.as_mut() {
            self.value(choice, &mut vec!["tool_choice".into()], true);
        }
        self.extra(&mut r.extra, &[]);
        self.r.set_origin(before);
    }

    fn completion(&mut self, c: &mut CompletionRequest) -> Result<(), TokenInputRefused> {
        let before = self.r.set_origin(RestoreSource::Prompt);
        if let Some(prompt) = c.prompt.as_mut() {
            self.prompt(prompt)?;
        }
        for (key, v) in c.extra.iter_mut() {
            let origin = if key == "suffix" {
                RestoreSource::Prompt
            } else {
                RestoreSource::Other
            };
            self.r.set_origin(origin);
            self.value(v, &mut vec![key.clone()], true);
        }
        self.r.set_origin(RestoreSource::Other);
        if let Some(o) = c.stream_options.as_mut() {
            self.extra(&mut o.extra, &["stream_options"]);
        }
        self.r.set_origin(before);
        Ok(())
    }

    /// A completion prompt: a string, strings, token ids or lists of token ids.
    fn prompt(&mut self, prompt: &mut Value) -> Result<(), TokenInputRefused> {
        let token_ids = |v: &Value| {
            v.as_array()
                .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_number))
        };
        if token_ids(prompt) {
            if let Some(text) = self.tokens(ids_of(prompt))? {
                *prompt = Value::String(text);
            }
            return Ok(());
        }
        if let Value::Array(items) = prompt {
            for item in items {
                if token_ids(item) {
                    if let Some(text) = self.tokens(ids_of(item))? {
                        *item = Value::String(text);
                    }
                } else {
                    self.value(item, &mut vec!["prompt".into()], true);
                }
            }
            return Ok(());
        }
        self.value(prompt, &mut vec!["prompt".into()], true);
        Ok(())
    }

    fn embedding(&mut self, e: &mut EmbeddingRequest) -> Result<(), TokenInputRefused> {
        let before = self.r.set_origin(RestoreSource::Other);
        match &mut e.input {
            EmbeddingInput::Text(s) => self.field(s, &["input"]),
            EmbeddingInput::Texts(v) => {
                for s in v {
                    self.field(s, &["input"]);
                }
            }
            EmbeddingInput::Tokens(ids) => {
                let ids: Vec<Option<u32>> = ids.iter().map(|i| u32::try_from(*i).ok()).collect();
                if let Some(text) = self.tokens(ids)? {
                    e.input = EmbeddingInput::Text(text);
                }
            }
            EmbeddingInput::TokenLists(lists) => {
                let mut texts = Vec::with_capacity(lists.len());
                let mut changed = false;
                for ids in lists.iter() {
                    let decoded =
                        self.decode(ids.iter().map(|i| u32::try_from(*i).ok()).collect())?;
                    let redacted = self.r.text(&decoded);
                    changed |= redacted.is_some();
                    texts.push(redacted.unwrap_or(decoded));
                }
                if changed {
                    e.input = EmbeddingInput::Texts(texts);
                    self.changed = true;
                }
            }
        }
        self.extra(&mut e.extra, &[]);
        self.r.set_origin(before);
        Ok(())
    }

    /// Token ids decoded and redacted: the redacted text when anything changed.
    fn tokens(&mut self, ids: Vec<Option<u32>>) -> Result<Option<String>, TokenInputRefused> {
        let text = self.decode(ids)?;
        let redacted = self.r.text(&text);
        self.changed |= redacted.is_some();
        Ok(redacted)
    }

    /// Token ids as text, when the profile decodes them and the model's tokenizer can.
    fn decode(&self, ids: Vec<Option<u32>>) -> Result<String, TokenInputRefused> {
        if self.r.profile().settings.token_input == TokenInput::Refuse {
            return Err(TokenInputRefused);
        }
        let ids: Option<Vec<u32>> = ids.into_iter().collect();
        ids.zip(self.encoding)
            .and_then(|(ids, enc)| enc.decode(&ids))
            .ok_or(TokenInputRefused)
    }
}

fn ids_of(v: &Value) -> Vec<Option<u32>> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|n| n.as_u64().and_then(|n| u32::try_from(n).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::Endpoint;
    use crate::pii::test_profile;

    const EMAIL: &str = "jane.doe@example.com";

    #[test]
    fn covers_contents_parts_tool_arguments_and_results() {
        let p = test_profile("{}");
        let mut r = Redactor::new(&p, b"k", None);
        let body = serde_json::json!({"model": "m", "messages": [
            {"role": "user", "content": "I am jane@x.io"},
            {"role": "user", "content": [{"type": "text", "text": "card 4111 1111 1111 1111"}]},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "lookup", "arguments": "{\"email\":\"jane@x.io\",\"qty\":2}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "{\"customer\":\"jane@x.io\",\"iban\":\"DE89 3704 0044 0532 0130 00\"}"}
        ]});
        let mut req =
            ApiRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes()).unwrap();
        assert!(redact(&mut req, &mut r, None).unwrap());
        let out = String::from_utf8(req.to_json()).unwrap();
        assert!(
            !out.contains("jane@x.io") && !out.contains("4111") && !out.contains("DE89"),
            "{out}"
        );
        let n = r.vault.nonce();
        assert!(
            out.contains(&format!(r#"{{\"email\":\"<EMAIL_1_{n}>\",\"qty\":2}}"#)),
            "arguments stay JSON: {out}"
        );
        assert!(out.contains(&format!("<CREDIT_CARD_1_{n}>")));
    }

    /// Every string of a request as large as the API allows, plus unknown fields: planted
    /// in each, and gone from each after redaction except at the places `kind` keeps.
    #[test]
    fn every_string_of_a_maximal_request_is_redacted_or_listed_as_kept() {
        let p = test_profile("default_action: redact");
        let mut r = Redactor::new(&p, b"k", None);
        let e = EMAIL;
        let body = serde_json::json!({
            "model": "gpt-4o-mini",
            "user": e, "safety_identifier": e, "prompt_cache_key": e,
            "metadata": {"customer": e, "note": format!("ship to {e}")},
            "stop": [e], "seed": 7, "temperature": 0.1, "logit_bias": {"50256": -100},
            "prediction": {"type": "content", "content": e},
            "response_format": {"type": "json_schema", "json_schema": {"name": "order",
                "description": e, "schema": {"type": "object", "properties": {"to": {
                    "type": "string", "description": e, "enum": [e], "default": e,
                    "examples": [e]}}}}},
            "web_search_options": {"user_location": {"type": "approximate",
                "approximate": {"city": e}}},
            "x_vendor_field": {"deep": [{"deeper": e}]},
            "tools": [
                {"type": "function", "function": {"name": "lookup_order", "description": e,
                    "parameters": {"type": "object", "properties": {"email": {
                        "type": "string", "description": e, "enum": [e], "default": e}}},
                    "strict": true, "x_fn": e}, "x_tool": e},
                {"type": "custom", "custom": {"name": "notes", "description": e,
                    "format": {"type": "grammar", "grammar": {"definition": e, "syntax": "lark"}}}}
            ],
            "functions": [{"name": "legacy_fn", "description": e, "parameters": {"default": e}}],
            "tool_choice": {"type": "function", "function": {"name": "lookup_order"}},
            "function_call": {"name": "legacy_fn"},
            "messages": [
                {"role": "system", "content": e, "name": e},
                {"role": "developer", "content": [{"type": "text", "text": e}]},
                {"role": "user", "name": e, "content": [
                    {"type": "text", "text": e},
                    {"type": "image_url", "image_url": {"url": format!("https://img.example/p.png?owner={e}"), "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    {"type": "file", "file": {"filename": e, "file_data": "JVBERi0=", "file_id": "file-1"}},
                    {"type": "x_part", "x_text": e}
                ]},
                {"role": "assistant", "content": e, "refusal": e, "reasoning_content": e,
                    "audio": {"id": "audio_1", "transcript": e},
                    "function_call": {"name": "legacy_fn", "arguments": format!("{{\"to\":\"{e}\"}}")},
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {
                        "name": "lookup_order", "arguments": format!("{{\"email\":\"{e}\"}}")}}]},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": e}]},
                {"role": "tool", "tool_call_id": "call_1", "content": e},
                {"role": "function", "name": "legacy_fn", "content": e},
                {"role": "user", "content": e, "x_message_field": {"k": e}}
            ]
        });
        let mut req =
            ApiRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes()).unwrap();
        assert!(redact(&mut req, &mut r, None).unwrap());
        let out: Value = serde_json::from_slice(&req.to_json()).unwrap();
        let mut leaks = Vec::new();
        let mut kept = Vec::new();
        visit(&out, &mut Vec::new(), &mut |path, s| {
            let keys: Vec<&str> = path.iter().map(String::as_str).collect();
            if s.contains(EMAIL) {
                leaks.push(keys.join("."));
            }
            if kind(&keys) == Kind::Keep {
                kept.push(keys.join("."));
            }
        });
        assert!(leaks.is_empty(), "planted values left at {leaks:?}");
        // The request still means the same: names, ids and inline payloads untouched.
        assert_eq!(out["tools"][0]["function"]["name"], "lookup_order");
        assert_eq!(out["messages"][3]["tool_calls"][0]["id"], "call_1");
        assert_eq!(
            out["messages"][2]["content"][2]["image_url"]["url"],
            "data:image/png;base64,iVBORw0KGgo="
        );
        let args: Value = serde_json::from_str(
            out["messages"][3]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(args["email"], "[EMAIL]", "arguments stay JSON");
        assert!(kept.contains(&"model".to_string()), "{kept:?}");
    }

    /// The same for a Responses request: every text of every input item shape, tool
    /// definitions and unknown fields redacted; ids, types, roles, names and opaque
    /// provider payloads kept.
    #[test]
    fn every_string_of_a_responses_request_is_redacted_or_listed_as_kept() {
        let p = test_profile("default_action: redact");
        let mut r = Redactor::new(&p, b"k", None);
        let e = EMAIL;
        let body = serde_json::json!({
            "model": "gpt-4o-mini", "previous_response_id": "resp_1", "store": true,
            "instructions": format!("The customer is {e}"),
            "user": e, "safety_identifier": e, "metadata": {"customer": e},
            "text": {"format": {"type": "json_schema", "name": "reply", "schema": {
                "type": "object", "properties": {"to": {"description": e}}}}},
            "reasoning": {"effort": "low", "summary": "auto"},
            "x_vendor_field": [{"deep": e}],
            "input": [
                {"role": "user", "content": e},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": e},
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                    {"type": "input_image", "image_url": format!("https://img.example/p.png?owner={e}")},
                    {"type": "input_file", "file_id": "file-1", "filename": e}]},
                {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                    "content": [{"type": "output_text", "text": e, "annotations": []}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "lookup_order",
                    "arguments": format!("{{\"email\":\"{e}\"}}")},
                {"type": "function_call_output", "call_id": "call_1", "output": format!("order for {e}")},
                {"type": "function_call_output", "call_id": "call_2",
                    "output": [{"type": "input_text", "text": e}]},
                {"type": "custom_tool_call", "call_id": "call_3", "name": "notes", "input": e},
                {"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAAAB-opaque",
                    "summary": [{"type": "summary_text", "text": e}]},
                {"type": "x_future_item", "id": "xi_1", "x_text": e}
            ],
            "tools": [
                {"type": "function", "name": "lookup_order", "description": e, "strict": true,
                    "parameters": {"type": "object", "properties": {"email": {"description": e, "enum": [e]}}}},
                {"type": "custom", "name": "notes", "description": e},
                {"type": "mcp", "server_label": "crm", "server_url": format!("https://crm.example/?u={e}")}
            ],
            "tool_choice": {"type": "function", "name": "lookup_order"}
        });
        let mut req = ApiRequest::parse(Endpoint::Responses, body.to_string().as_bytes()).unwrap();
        assert!(redact(&mut req, &mut r, None).unwrap());
        let out: Value = serde_json::from_slice(&req.to_json()).unwrap();
        let mut leaks = Vec::new();
        visit(&out, &mut Vec::new(), &mut |path, s| {
            if s.contains(EMAIL) {
                leaks.push(path.join("."));
            }
        });
        assert!(leaks.is_empty(), "planted values left at {leaks:?}");
        assert_eq!(out["previous_response_id"], "resp_1");
        assert_eq!(out["input"][3]["name"], "lookup_order");
        assert_eq!(out["input"][3]["call_id"], "call_1");
        assert_eq!(out["input"][7]["encrypted_content"], "gAAAAB-opaque");
        assert_eq!(out["input"][8]["id"], "xi_1");
        assert_eq!(
            out["input"][1]["content"][1]["image_url"],
            "data:image/png;base64,iVBORw0KGgo="
        );
        assert_eq!(out["tools"][2]["server_label"], "crm");
        assert_eq!(out["tool_choice"]["name"], "lookup_order");
        let args: Value =
            serde_json::from_str(out["input"][3]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args["email"], "[EMAIL]", "arguments stay JSON");
    }

    fn visit(v: &Value, path: &mut Vec<String>, f: &mut impl FnMut(&[String], &str)) {
        match v {
            Value::String(s) => f(path, s),
            Value::Array(items) => items.iter().for_each(|i| visit(i, path, f)),
            Value::Object(map) => {
                for (k, v) in map {
                    path.push(k.clone());
                    visit(v, path, f);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    #[test]
    fn message_texts_carry_their_role() {
        let p = test_profile("{}");
        let mut r = Redactor::new(&p, b"k", None);
        r.vault = crate::pii::Vault::default().restoring_only(&[RestoreSource::User]);
        let body = serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "ops contact: ops@shop.example"},
            {"role": "user", "content": "I am jane@x.io"},
            {"role": "tool", "tool_call_id": "c", "content": "{\"phone\": \"+1 415 555 2671\"}"}
        ]});
        let mut req =
            ApiRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes()).unwrap();
        redact(&mut req, &mut r, None).unwrap();
        let n = r.vault.nonce().to_string();
        let answer = format!("<EMAIL_1_{n}> <EMAIL_2_{n}> <PHONE_1_{n}>");
        assert_eq!(r.vault.restore(&answer, false), "[EMAIL] jane@x.io [PHONE]");
    }

    #[test]
    fn embeddings_prompts_and_suffixes() {
        let p = test_profile("default_action: redact");
        let mut r = Redactor::new(&p, b"k", None);
        let mut e = ApiRequest::parse(
            Endpoint::Embeddings,
            br#"{"model":"m","input":["a@b.io","plain"],"user":"a@b.io"}"#,
        )
        .unwrap();
        assert!(redact(&mut e, &mut r, None).unwrap());
        let out = String::from_utf8(e.to_json()).unwrap();
        assert!(out.contains(r#"["[EMAIL]","plain"]"#), "{out}");
        assert!(!out.contains("a@b.io"), "{out}");
        let mut c = ApiRequest::parse(
            Endpoint::Completions,
            br#"{"model":"m","prompt":"write to a@b.io","suffix":"signed a@b.io"}"#,
        )
        .unwrap();
        assert!(redact(&mut c, &mut r, None).unwrap());
        assert!(!String::from_utf8(c.to_json()).unwrap().contains("a@b.io"));
        let mut clean = ApiRequest::parse(
            Endpoint::Completions,
            br#"{"model":"m","prompt":"SKU-1 size 42"}"#,
        )
        .unwrap();
        assert!(!redact(&mut clean, &mut r, None).unwrap());
    }

    #[test]
    fn token_inputs_are_decoded_redacted_and_sent_as_text() {
        let p = test_profile("default_action: redact");
        let enc = Encoding::for_model(Some("cl100k_base"), "", std::path::Path::new(".")).unwrap();
        let ids = |text: &str| -> Vec<u32> {
            match &enc {
                Encoding::Tiktoken { bpe, .. } => bpe.encode_ordinary(text),
                _ => unreachable!(),
            }
        };
        let secret = ids("mail jane.doe@example.com now");
        let plain = ids("running shoes size 10");
        let body = serde_json::json!({"model": "m", "input": [secret, plain]});
        let mut r = Redactor::new(&p, b"k", None);
        let mut e = ApiRequest::parse(Endpoint::Embeddings, body.to_string().as_bytes()).unwrap();
        assert!(redact(&mut e, &mut r, Some(&enc)).unwrap());
        let out: Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            out["input"],
            serde_json::json!(["mail [EMAIL] now", "running shoes size 10"])
        );
        // Clean token input stays token ids.
        let body = serde_json::json!({"model": "m", "prompt": plain});
        let mut c = ApiRequest::parse(Endpoint::Completions, body.to_string().as_bytes()).unwrap();
        assert!(!redact(&mut c, &mut r, Some(&enc)).unwrap());
        // Without a tokenizer that can decode, token ids are refused.
        let body = serde_json::json!({"model": "m", "input": secret});
        let mut e = ApiRequest::parse(Endpoint::Embeddings, body.to_string().as_bytes()).unwrap();
        assert_eq!(
            redact(&mut e, &mut r, Some(&Encoding::Estimate)),
            Err(TokenInputRefused)
        );
        assert_eq!(redact(&mut e, &mut r, None), Err(TokenInputRefused));
        // A profile can refuse token ids outright.
        let strict = test_profile("token_input: refuse");
        let mut r = Redactor::new(&strict, b"k", None);
        assert_eq!(redact(&mut e, &mut r, Some(&enc)), Err(TokenInputRefused));
    }
}
