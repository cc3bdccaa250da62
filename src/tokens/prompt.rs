//! Prompt tokens of a parsed request, as the provider will bill them. Chat requests follow
//! OpenAI's published accounting (the "How to count tokens with tiktoken" cookbook): three
//! tokens framing each message, one more for a `name`, three priming the reply, and function
//! definitions rendered as `name:description` and `key:type:description` lines with
//! fixed per-function, per-property and per-enum overheads. Responses requests are counted
//! the same way: `instructions` and each input item framed as a message, function tools
//! as chat's functions.

use serde_json::Value;

use super::Encoding;
use crate::openai::request::{
    ApiRequest, ChatCompletionRequest, ChatMessage, EmbeddingInput, FunctionDef, MessageContent,
    ResponsesRequest, Tool,
};

const TOKENS_PER_MESSAGE: u64 = 3;
const TOKENS_PER_NAME: u64 = 1;
const REPLY_PRIMING: u64 = 3;
/// Per tool call in an assistant message (tiktoken-rs's heuristic).
const TOKENS_PER_TOOL_CALL: u64 = 1;

/// What an image part costs: OpenAI bills `detail: low` at 85 tokens; without its size
/// Warden charges other images as a 1024×1024 `high` image (4 tiles × 170 + 85).
pub struct ImageCost;

impl ImageCost {
    pub const LOW: u64 = 85;
    pub const HIGH: u64 = 765;
}

/// Prompt tokens of `request` under `enc`.
pub fn prompt_tokens(enc: &Encoding, request: &ApiRequest) -> u64 {
    match request {
        ApiRequest::Chat(chat) => chat_tokens(enc, chat),
        ApiRequest::Completion(c) => c.prompt.as_ref().map_or(0, |p| value_tokens(enc, p)),
        ApiRequest::Embedding(e) => match &e.input {
            EmbeddingInput::Text(t) => enc.count(t),
            EmbeddingInput::Texts(v) => v.iter().map(|t| enc.count(t)).sum(),
            EmbeddingInput::Tokens(v) => v.len() as u64,
            EmbeddingInput::TokenLists(v) => v.iter().map(|l| l.len() as u64).sum(),
        },
        ApiRequest::Responses(r) => responses_tokens(enc, r),
    }
}

fn responses_tokens(enc: &Encoding, r: &ResponsesRequest) -> u64 {
    let mut n = REPLY_PRIMING;
    if let Some(instructions) = &r.instructions {
        n += TOKENS_PER_MESSAGE + item_tokens(enc, instructions);
    }
    match &r.input {
        Some(Value::Array(items)) => {
            n += items
                .iter()
                .map(|item| TOKENS_PER_MESSAGE + item_tokens(enc, item))
                .sum::<u64>();
        }
        Some(input) => n += TOKENS_PER_MESSAGE + item_tokens(enc, input),
        None => {}
    }
    let functions: Vec<Tool> = r
        .tools
        .iter()
        .flatten()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
        .filter_map(|t| {
            let text = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
            Some(Tool {
                kind: "function".into(),
                function: Some(FunctionDef {
                    name: text("name")?,
                    description: text("description"),
                    parameters: t.get("parameters").cloned(),
                    extra: Default::default(),
                }),
                extra: Default::default(),
            })
        })
        .collect();
    n + tools_tokens(enc, &functions)
}

/// One Responses input item (or `instructions`): every text it holds — content parts,
/// function-call names and arguments, their outputs — with images at their fixed cost;
/// the item's type, role, ids and status are framing, not text.
fn item_tokens(enc: &Encoding, item: &Value) -> u64 {
    match item {
        Value::String(s) => enc.count(s),
        Value::Array(items) => items.iter().map(|i| item_tokens(enc, i)).sum(),
        Value::Object(o) => {
            if matches!(
                o.get("type").and_then(Value::as_str),
                Some("input_image" | "image_url")
            ) {
                return image_tokens(Some(item));
            }
            o.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "type" | "id" | "call_id" | "status" | "detail" | "file_id"
                    )
                })
                .map(|(_, v)| item_tokens(enc, v))
                .sum()
        }
        _ => 0,
    }
}

fn chat_tokens(enc: &Encoding, chat: &ChatCompletionRequest) -> u64 {
    let messages: u64 = chat.messages.iter().map(|m| message_tokens(enc, m)).sum();
    let tools = chat.tools.as_deref().map_or(0, |t| tools_tokens(enc, t));
    messages + REPLY_PRIMING + tools
}

fn message_tokens(enc: &Encoding, m: &ChatMessage) -> u64 {
    let mut n = TOKENS_PER_MESSAGE + enc.count(&m.role);
    match &m.content {
        Some(MessageContent::Text(text)) => n += enc.count(text),
        Some(MessageContent::Parts(parts)) => {
            for part in parts {
                n += match (part.kind.as_str(), &part.text) {
                    (_, Some(text)) => enc.count(text),
                    ("image_url", None) => image_tokens(part.extra.get("image_url")),
                    _ => 0,
                };
            }
        }
        None => {}
    }
    if let Some(name) = &m.name {
        n += enc.count(name) + TOKENS_PER_NAME;
    }
    for call in m.tool_calls.iter().flatten() {
        n += enc.count(&call.function.name)
            + enc.count(&call.function.arguments)
            + TOKENS_PER_TOOL_CALL;
    }
    n
}

fn image_tokens(image: Option<&Value>) -> u64 {
    match image.and_then(|i| i.get("detail")).and_then(Value::as_str) {
        Some("low") => ImageCost::LOW,
        _ => ImageCost::HIGH,
    }
}

/// Function definitions, by the cookbook's rendering and overheads (gpt-4o family:
/// 7 per function, 10 for cl100k models; 3 to open the properties, 3 per property, −3 to
/// open an enum and 3 per enum value; 12 to close the list).
fn tools_tokens(enc: &Encoding, tools: &[Tool]) -> u64 {
    let functions: Vec<_> = tools.iter().filter_map(|t| t.function.as_ref()).collect();
    if functions.is_empty() {
        return 0;
    }
    let func_init: i64 = if enc.legacy_tools() { 10 } else { 7 };
    let (prop_init, prop_key, enum_init, enum_item, func_end) = (3i64, 3i64, -3i64, 3i64, 12i64);
    let count = |s: &str| enc.count(s) as i64;
    let mut n: i64 = 0;
    for f in functions {
        n += func_init;
        let desc = f.description.as_deref().unwrap_or("");
        n += count(&format!(
            "{}:{}",
            f.name,
            desc.strip_suffix('.').unwrap_or(desc)
        ));
        let properties = f
            .parameters
            .as_ref()
            .and_then(|p| p.get("properties"))
            .and_then(Value::as_object);
        let Some(properties) = properties.filter(|p| !p.is_empty()) else {
            continue;
        };
        n += prop_init;
        for (key, schema) in properties {
            n += prop_key;
            let field = |k: &str| schema.get(k).and_then(Value::as_str).unwrap_or("");
            if let Some(values) = schema.get("enum").and_then(Value::as_array) {
                n += enum_init;
                for v in values {
                    n += enum_item;
                    n += match v {
                        Value::String(s) => count(s),
                        other => count(&other.to_string()),
                    };
                }
            }
            let desc = field("description");
            n += count(&format!(
                "{key}:{}:{}",
                field("type"),
                desc.strip_suffix('.').unwrap_or(desc)
            ));
            // Nested schemas are beyond the cookbook's rendering: their JSON is counted.
            for nested in ["properties", "items"] {
                if let Some(inner) = schema.get(nested) {
                    n += count(&inner.to_string());
                }
            }
        }
    }
    (n + func_end).max(0) as u64
}

/// A legacy `prompt`: a string, strings, token ids or lists of token ids.
fn value_tokens(enc: &Encoding, prompt: &Value) -> u64 {
    match prompt {
        Value::String(s) => enc.count(s),
        Value::Number(_) => 1,
        Value::Array(items) => items.iter().map(|v| value_tokens(enc, v)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::Endpoint;
    use std::path::Path;

    fn o200k() -> Encoding {
        Encoding::for_model(Some("o200k_base"), "", Path::new(".")).unwrap()
    }

    fn chat(body: serde_json::Value) -> ApiRequest {
        ApiRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn chat_adds_message_framing_names_and_priming() {
        let enc = o200k();
        let one = chat(serde_json::json!({"model": "m", "messages": [
            {"role": "user", "content": "hello world"}]}));
        // 3 framing + "user" (1) + "hello world" (2) + 3 priming
        assert_eq!(prompt_tokens(&enc, &one), 9);
        let named = chat(serde_json::json!({"model": "m", "messages": [
            {"role": "user", "content": "hello world", "name": "bob"}]}));
        assert_eq!(prompt_tokens(&enc, &named), 9 + enc.count("bob") + 1);
    }

    #[test]
    fn parts_images_and_tool_calls_count() {
        let enc = o200k();
        let r = chat(serde_json::json!({"model": "m", "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "hello world"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "lookup", "arguments": "{\"sku\":\"A1\"}"}}]}]}));
        let expected = (3 + 1 + 2 + ImageCost::LOW)
            + (3 + enc.count("assistant")
                + enc.count("lookup")
                + enc.count("{\"sku\":\"A1\"}")
                + 1)
            + 3;
        assert_eq!(prompt_tokens(&enc, &r), expected);
    }

    #[test]
    fn legacy_prompts_and_embeddings() {
        let enc = o200k();
        let c = ApiRequest::parse(
            Endpoint::Completions,
            br#"{"model":"m","prompt":["hello world",[1,2,3]]}"#,
        )
        .unwrap();
        assert_eq!(prompt_tokens(&enc, &c), 5);
        let e = ApiRequest::parse(
            Endpoint::Embeddings,
            br#"{"model":"m","input":["a b","c"]}"#,
        )
        .unwrap();
        assert_eq!(prompt_tokens(&enc, &e), enc.count("a b") + enc.count("c"));
    }
}
