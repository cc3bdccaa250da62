//! Typed OpenAI request bodies. Every struct keeps the fields it does not model in a
//! flattened `extra` map, so a parameter Warden does not know still reaches the provider.
//! A body is parsed once, here; later stages read and rewrite the typed value.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ApiError;
pub use super::responses::ResponsesRequest;

/// The OpenAI endpoints Warden serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    Responses,
    ListModels,
    GetModel,
}

impl Endpoint {
    /// Stable label used in metrics, logs and audit records.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Responses => "responses",
            Endpoint::ListModels => "list_models",
            Endpoint::GetModel => "get_model",
        }
    }

    /// The OpenTelemetry GenAI `gen_ai.operation.name` of a model request; `None` for the
    /// model listings.
    pub fn gen_ai_operation(self) -> Option<&'static str> {
        match self {
            Endpoint::ChatCompletions | Endpoint::Responses => Some("chat"),
            Endpoint::Completions => Some("text_completion"),
            Endpoint::Embeddings => Some("embeddings"),
            Endpoint::ListModels | Endpoint::GetModel => None,
        }
    }

    /// Whether the endpoint takes a model request (a body); the model listings do not.
    pub fn takes_body(self) -> bool {
        match self {
            Endpoint::ChatCompletions
            | Endpoint::Completions
            | Endpoint::Embeddings
            | Endpoint::Responses => true,
            Endpoint::ListModels | Endpoint::GetModel => false,
        }
    }

    /// The path below an OpenAI-compatible base URL (`…/v1/<path>`).
    pub fn upstream_path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat/completions",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Responses => "responses",
            Endpoint::ListModels | Endpoint::GetModel => "models",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `content` is either a plain string or an array of typed parts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MessageContent {
    /// The text of this content: the string, or the text parts joined by newlines.
    pub fn text(&self) -> String {
        match self {
            MessageContent::Text(s) => s.clone(),
            MessageContent::Parts(parts) => parts
                .iter()
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub function: FunctionCall,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text, as produced by the model.
    #[serde(default)]
    pub arguments: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDef>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CompletionRequest {
    pub model: String,
    /// A string, an array of strings, or token arrays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: EmbeddingInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<i64>),
    TokenLists(Vec<Vec<i64>>),
}

impl EmbeddingInput {
    pub fn len(&self) -> usize {
        match self {
            EmbeddingInput::Text(_) | EmbeddingInput::Tokens(_) => 1,
            EmbeddingInput::Texts(v) => v.len(),
            EmbeddingInput::TokenLists(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One parsed request body of a model-calling endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiRequest {
    Chat(ChatCompletionRequest),
    Completion(CompletionRequest),
    Embedding(EmbeddingRequest),
    Responses(ResponsesRequest),
}

impl ApiRequest {
    /// Parses and validates a body for `endpoint`. Errors are client errors (400) whose
    /// message names the offending field but never echoes its content.
    pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<ApiRequest, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid(
                "The request body is empty; expected a JSON object.",
            ));
        }
        let parsed = match endpoint {
            Endpoint::ChatCompletions => serde_json::from_slice(body).map(ApiRequest::Chat),
            Endpoint::Completions => serde_json::from_slice(body).map(ApiRequest::Completion),
            Endpoint::Embeddings => serde_json::from_slice(body).map(ApiRequest::Embedding),
            Endpoint::Responses => serde_json::from_slice(body).map(ApiRequest::Responses),
            Endpoint::ListModels | Endpoint::GetModel => {
                return Err(ApiError::invalid("This endpoint takes no request body."));
            }
        };
        let request = parsed.map_err(describe_json_error)?;
        request.validate()?;
        Ok(request)
    }

    fn validate(&self) -> Result<(), ApiError> {
        if self.model().trim().is_empty() {
            return Err(
                ApiError::invalid("'model' must be a non-empty string.").with_param("model")
            );
        }
        match self {
            ApiRequest::Chat(chat) => {
                if chat.messages.is_empty() {
                    return Err(
                        ApiError::invalid("'messages' must contain at least one message.")
                            .with_param("messages"),
                    );
                }
                if chat.n == Some(0) {
                    return Err(ApiError::invalid("'n' must be at least 1.").with_param("n"));
                }
            }
            ApiRequest::Completion(c) => {
                if c.prompt.is_none() {
                    return Err(ApiError::invalid("Missing required parameter: 'prompt'.")
                        .with_param("prompt"));
                }
            }
            ApiRequest::Embedding(e) => {
                if e.input.is_empty() {
                    return Err(ApiError::invalid("'input' must not be empty.").with_param("input"));
                }
            }
            ApiRequest::Responses(r) => r.validate()?,
        }
        Ok(())
    }

    pub fn endpoint(&self) -> Endpoint {
        match self {
            ApiRequest::Chat(_) => Endpoint::ChatCompletions,
            ApiRequest::Completion(_) => Endpoint::Completions,
            ApiRequest::Embedding(_) => Endpoint::Embeddings,
            ApiRequest::Responses(_) => Endpoint::Responses,
        }
    }

    pub fn model(&self) -> &str {
        match self {
            ApiRequest::Chat(r) => &r.model,
            ApiRequest::Completion(r) => &r.model,
            ApiRequest::Embedding(r) => &r.model,
            ApiRequest::Responses(r) => &r.model,
        }
    }

    pub fn set_model(&mut self, model: &str) {
        let slot = match self {
            ApiRequest::Chat(r) => &mut r.model,
            ApiRequest::Completion(r) => &mut r.model,
            ApiRequest::Embedding(r) => &mut r.model,
            ApiRequest::Responses(r) => &mut r.model,
        };
        model.clone_into(slot);
    }

    /// Whether the client asked for a server-sent-event stream.
    pub fn is_stream(&self) -> bool {
        match self {
            ApiRequest::Chat(r) => r.stream.unwrap_or(false),
            ApiRequest::Completion(r) => r.stream.unwrap_or(false),
            ApiRequest::Responses(r) => r.stream.unwrap_or(false),
            ApiRequest::Embedding(_) => false,
        }
    }

    /// Every tool the provider could call, by name: `tools[]` (`function` and `custom`),
    /// the legacy `functions[]`, and whatever `tool_choice` or `function_call` names. A
    /// tool Warden cannot name (another type, no name, a name outside OpenAI's
    /// `^[a-zA-Z0-9_-]{1,64}$`) makes the request invalid, so policy never misses one;
    /// endpoints without tools refuse tool fields. Responses name provider-hosted tools
    /// `builtin:{type}` (see [`super::responses`]).
    pub fn offered_tools(&self) -> Result<Vec<String>, ApiError> {
        let mut names = Vec::new();
        match self {
            ApiRequest::Chat(r) => {
                for tool in r.tools.iter().flatten() {
                    let name = match (tool.kind.as_str(), &tool.function) {
                        ("function", Some(f)) => Some(f.name.as_str()),
                        ("custom", _) => tool
                            .extra
                            .get("custom")
                            .and_then(|c| c.get("name"))
                            .and_then(Value::as_str),
                        _ => None,
                    };
                    let name = name.ok_or_else(|| {
                        ApiError::invalid(
                            "Each entry of 'tools' must be a `function` or `custom` tool with a name.",
                        )
                        .with_param("tools")
                    })?;
                    push_tool(&mut names, name, "tools")?;
                }
                for f in r
                    .extra
                    .get("functions")
                    .map(|v| v.as_array().ok_or(()))
                    .transpose()
                    .map_err(|()| {
                        ApiError::invalid("'functions' must be an array.").with_param("functions")
                    })?
                    .into_iter()
                    .flatten()
                {
                    let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                        ApiError::invalid("Each entry of 'functions' must have a name.")
                            .with_param("functions")
                    })?;
                    push_tool(&mut names, name, "functions")?;
                }
                if let Some(choice) = &r.tool_choice {
                    chosen_tools(choice, &mut names, "tool_choice")?;
                }
                if let Some(call) = r.extra.get("function_call") {
                    chosen_tools(call, &mut names, "function_call")?;
                }
            }
            ApiRequest::Responses(r) => r.offered_tools(&mut names)?,
            ApiRequest::Completion(CompletionRequest { extra, .. })
            | ApiRequest::Embedding(EmbeddingRequest { extra, .. }) => {
                if let Some(field) = TOOL_FIELDS.iter().find(|f| extra.contains_key(**f)) {
                    return Err(ApiError::invalid(format!(
                        "'{field}' is only accepted on chat completions."
                    ))
                    .with_param(*field));
                }
            }
        }
        Ok(names)
    }

    /// The output-token cap the client set: the larger of `max_completion_tokens` and
    /// `max_tokens` (providers differ in which one wins, so the estimate and the policy
    /// assume the larger).
    pub fn max_output_tokens(&self) -> Option<u64> {
        match self {
            ApiRequest::Chat(r) => match (r.max_completion_tokens, r.max_tokens) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            ApiRequest::Completion(r) => r.max_tokens,
            ApiRequest::Responses(r) => r.max_output_tokens,
            ApiRequest::Embedding(_) => None,
        }
    }

    /// How many choices the client asked for (`n`, default 1).
    pub fn choices(&self) -> u32 {
        match self {
            ApiRequest::Chat(r) => r.n.unwrap_or(1).max(1),
            ApiRequest::Completion(r) => r.n.unwrap_or(1).max(1),
            ApiRequest::Embedding(_) | ApiRequest::Responses(_) => 1,
        }
    }

    /// Asks for the final usage chunk of a stream (keeping other stream options). A
    /// Responses stream always ends with its usage (`response.completed`).
    pub fn request_stream_usage(&mut self) {
        let opts = match self {
            ApiRequest::Chat(r) => &mut r.stream_options,
            ApiRequest::Completion(r) => &mut r.stream_options,
            ApiRequest::Embedding(_) | ApiRequest::Responses(_) => return,
        };
        opts.get_or_insert_with(|| StreamOptions {
            include_usage: None,
            extra: Map::new(),
        })
        .include_usage = Some(true);
    }

    /// Whether the client asked for the final usage chunk of a stream (a Responses
    /// stream always carries it).
    pub fn wants_stream_usage(&self) -> bool {
        let opts = match self {
            ApiRequest::Chat(r) => r.stream_options.as_ref(),
            ApiRequest::Completion(r) => r.stream_options.as_ref(),
            ApiRequest::Responses(_) => return true,
            ApiRequest::Embedding(_) => None,
        };
        opts.and_then(|o| o.include_usage).unwrap_or(false)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let out = match self {
            ApiRequest::Chat(r) => serde_json::to_vec(r),
            ApiRequest::Completion(r) => serde_json::to_vec(r),
            ApiRequest::Embedding(r) => serde_json::to_vec(r),
            ApiRequest::Responses(r) => serde_json::to_vec(r),
        };
        // Serialising values that were just deserialised from JSON cannot fail.
        out.unwrap_or_default()
    }
}

/// Request fields that offer the model tools.
const TOOL_FIELDS: &[&str] = &["tools", "functions", "tool_choice", "function_call"];

/// OpenAI's rule for function names: `^[a-zA-Z0-9_-]{1,64}$`.
pub fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn push_tool(names: &mut Vec<String>, name: &str, param: &str) -> Result<(), ApiError> {
    if !valid_tool_name(name) {
        return Err(ApiError::invalid(format!(
            "Tool names in '{param}' must match ^[a-zA-Z0-9_-]{{1,64}}$."
        ))
        .with_param(param));
    }
    if !names.iter().any(|n| n == name) {
        names.push(name.to_string());
    }
    Ok(())
}

/// The tools a `tool_choice` or `function_call` value names: a string mode (`auto`,
/// `none`, `required`), `{type: function, function: {name}}`, `{type: custom, custom:
/// {name}}`, `{name}` (legacy) or `{type: allowed_tools, allowed_tools: {tools: […]}}`.
fn chosen_tools(choice: &Value, names: &mut Vec<String>, param: &str) -> Result<(), ApiError> {
    let bad = || {
        ApiError::invalid(format!("'{param}' names no tool Warden can identify.")).with_param(param)
    };
    match choice {
        Value::String(mode) if matches!(mode.as_str(), "auto" | "none" | "required") => Ok(()),
        Value::Object(o) => {
            let kind = o.get("type").and_then(Value::as_str);
            match kind {
                None | Some("function") | Some("custom") => {
                    let name = o
                        .get("name")
                        .or_else(|| {
                            o.get(kind.unwrap_or("function"))
                                .and_then(|f| f.get("name"))
                        })
                        .and_then(Value::as_str)
                        .ok_or_else(bad)?;
                    push_tool(names, name, param)
                }
                Some("allowed_tools") => {
                    let tools = o
                        .get("allowed_tools")
                        .and_then(|a| a.get("tools"))
                        .and_then(Value::as_array)
                        .ok_or_else(bad)?;
                    tools.iter().try_for_each(|t| chosen_tools(t, names, param))
                }
                Some(_) => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

/// Turns a serde_json error into a client message that names the position and the
/// problem (missing field, wrong type) without quoting the body.
fn describe_json_error(err: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let (line, column) = (err.line(), err.column());
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::invalid(format!(
            "The request body is not valid JSON (line {line}, column {column})."
        ))
        .with_code("invalid_json"),
        Category::Data => {
            let text = err.to_string();
            let reason = text.split(" at line ").next().unwrap_or(&text);
            let mut api = ApiError::invalid(format!(
                "Invalid request: {} (line {line}, column {column}).",
                sanitize_reason(reason)
            ));
            if let Some(field) = missing_field(reason) {
                api = ApiError::invalid(format!("Missing required parameter: '{field}'."))
                    .with_param(field);
            }
            api
        }
    }
}

/// serde's data errors quote offending *values* in some messages (e.g. `invalid value:
/// string "…"`); keep only the part before the quoted value.
fn sanitize_reason(reason: &str) -> String {
    match reason.find(['"', '\'']) {
        Some(_) if reason.starts_with("missing field") || reason.starts_with("unknown field") => {
            reason.to_string()
        }
        Some(i) => reason
            .get(..i)
            .unwrap_or_default()
            .trim_end_matches([' ', ':'])
            .to_string(),
        None => reason.to_string(),
    }
}

fn missing_field(reason: &str) -> Option<String> {
    let rest = reason.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_fields_through_a_round_trip() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi","x_note":1}],
            "temperature":0.2,"response_format":{"type":"json_object"},"logprobs":true,
            "vendor_flag":{"a":[1,2]}}"#;
        let req = ApiRequest::parse(Endpoint::ChatCompletions, body).unwrap();
        let back: Value = serde_json::from_slice(&req.to_json()).unwrap();
        let orig: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn content_parts_and_tool_calls_round_trip() {
        let body = br#"{"model":"m","messages":[
            {"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}}]},
            {"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"ok"}],
            "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"},"strict":true}}]}"#;
        let req = ApiRequest::parse(Endpoint::ChatCompletions, body).unwrap();
        let back: Value = serde_json::from_slice(&req.to_json()).unwrap();
        let orig: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(back, orig);
        let ApiRequest::Chat(chat) = req else {
            panic!("chat expected")
        };
        assert_eq!(chat.messages[0].content.as_ref().unwrap().text(), "a");
    }

    #[test]
    fn malformed_json_is_a_400_with_position() {
        let err = ApiRequest::parse(Endpoint::ChatCompletions, b"{\"model\": ").unwrap_err();
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(err.code.as_deref(), Some("invalid_json"));
        assert!(err.message.contains("line 1"), "{}", err.message);
    }

    #[test]
    fn missing_field_names_the_param() {
        let err = ApiRequest::parse(Endpoint::ChatCompletions, br#"{"model":"m"}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages"));
        let err = ApiRequest::parse(Endpoint::Embeddings, br#"{"input":"x"}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("model"));
    }

    #[test]
    fn wrong_type_does_not_echo_the_value() {
        let err = ApiRequest::parse(
            Endpoint::ChatCompletions,
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":"secret-value"}"#,
        )
        .unwrap_err();
        assert!(!err.message.contains("secret-value"), "{}", err.message);
    }

    #[test]
    fn empty_messages_and_body_are_rejected() {
        assert!(
            ApiRequest::parse(Endpoint::ChatCompletions, br#"{"model":"m","messages":[]}"#)
                .is_err()
        );
        assert!(ApiRequest::parse(Endpoint::ChatCompletions, b"  ").is_err());
    }

    #[test]
    fn embedding_inputs_of_every_shape() {
        for input in [r#""a""#, r#"["a","b"]"#, "[1,2,3]", "[[1],[2]]"] {
            let body = format!(r#"{{"model":"e","input":{input}}}"#);
            let req = ApiRequest::parse(Endpoint::Embeddings, body.as_bytes()).unwrap();
            let back: Value = serde_json::from_slice(&req.to_json()).unwrap();
            assert_eq!(back["input"], serde_json::from_str::<Value>(input).unwrap());
        }
    }

    fn tools_of(body: Value) -> Result<Vec<String>, ApiError> {
        ApiRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes())?.offered_tools()
    }

    #[test]
    fn every_tool_shape_is_named_for_policy() {
        let msgs = serde_json::json!([{"role": "user", "content": "x"}]);
        let names = tools_of(serde_json::json!({"model": "m", "messages": msgs,
            "tools": [
                {"type": "function", "function": {"name": "lookup_order"}},
                {"type": "custom", "custom": {"name": "refund_order"}}
            ],
            "functions": [{"name": "legacy_fn", "parameters": {}}],
            "function_call": {"name": "forced_fn"},
            "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto",
                "tools": [{"type": "function", "function": {"name": "lookup_order"}}]}}
        }))
        .unwrap();
        assert_eq!(
            names,
            ["lookup_order", "refund_order", "legacy_fn", "forced_fn"]
        );
        let forced = tools_of(serde_json::json!({"model": "m", "messages": msgs,
            "tool_choice": {"type": "function", "function": {"name": "refund_order"}}}))
        .unwrap();
        assert_eq!(forced, ["refund_order"]);
    }

    #[test]
    fn tools_warden_cannot_name_are_refused() {
        let msgs = serde_json::json!([{"role": "user", "content": "x"}]);
        for bad in [
            serde_json::json!({"tools": [{"type": "web_search"}]}),
            serde_json::json!({"tools": [{"type": "custom", "custom": {}}]}),
            serde_json::json!({"tools": [{"type": "function", "function": {"name": "refund order"}}]}),
            serde_json::json!({"tools": [{"type": "function", "function": {"name": "refund_\u{43e}rder"}}]}),
            serde_json::json!({"functions": [{"description": "no name"}]}),
            serde_json::json!({"functions": {"name": "not-a-list"}}),
            serde_json::json!({"function_call": {"nom": "x"}}),
            serde_json::json!({"tool_choice": "sometimes"}),
            serde_json::json!({"tool_choice": {"type": "file_search"}}),
        ] {
            let mut body = bad.clone();
            body["model"] = "m".into();
            body["messages"] = msgs.clone();
            let err = tools_of(body).unwrap_err();
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST, "{bad}");
        }
        let completion = ApiRequest::parse(
            Endpoint::Completions,
            br#"{"model":"m","prompt":"x","tools":[{"type":"function","function":{"name":"f"}}]}"#,
        )
        .unwrap();
        assert!(completion.offered_tools().is_err());
    }

    #[test]
    fn the_output_cap_is_the_larger_of_both_fields() {
        let cap = |extra: &str| {
            ApiRequest::parse(
                Endpoint::ChatCompletions,
                format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}]{extra}}}"#)
                    .as_bytes(),
            )
            .unwrap()
            .max_output_tokens()
        };
        assert_eq!(
            cap(r#","max_completion_tokens":10,"max_tokens":90000"#),
            Some(90000)
        );
        assert_eq!(
            cap(r#","max_completion_tokens":90000,"max_tokens":10"#),
            Some(90000)
        );
        assert_eq!(cap(r#","max_tokens":10"#), Some(10));
        assert_eq!(cap(""), None);
    }

    #[test]
    fn set_model_and_stream_flags() {
        let mut req = ApiRequest::parse(
            Endpoint::ChatCompletions,
            br#"{"model":"a","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .unwrap();
        assert!(req.is_stream());
        assert!(req.wants_stream_usage());
        req.set_model("b");
        assert_eq!(req.model(), "b");
    }
}
