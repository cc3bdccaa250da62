//! Every text of a request the provider will see, redacted in place: chat message contents
//! (strings and text parts, `role: tool` results included), the JSON inside tool-call
//! arguments (string values redacted, the JSON kept valid), legacy completion prompts and
//! embedding inputs.

use serde_json::Value;

use super::redact::Redactor;
use crate::openai::request::{ApiRequest, EmbeddingInput, MessageContent};

/// Redacts `request`; returns whether anything changed.
pub fn redact(request: &mut ApiRequest, r: &mut Redactor<'_>) -> bool {
    let mut changed = false;
    match request {
        ApiRequest::Chat(chat) => {
            for m in &mut chat.messages {
                match &mut m.content {
                    Some(MessageContent::Text(s)) => changed |= text(s, r),
                    Some(MessageContent::Parts(parts)) => {
                        for part in parts {
                            if let Some(s) = part.text.as_mut() {
                                changed |= text(s, r);
                            }
                        }
                    }
                    None => {}
                }
                for call in m.tool_calls.iter_mut().flatten() {
                    if let Some(new) = json_text(&call.function.arguments, r) {
                        call.function.arguments = new;
                        changed = true;
                    }
                }
            }
        }
        ApiRequest::Completion(c) => {
            if let Some(prompt) = c.prompt.as_mut() {
                changed |= value(prompt, r);
            }
        }
        ApiRequest::Embedding(e) => match &mut e.input {
            EmbeddingInput::Text(s) => changed |= text(s, r),
            EmbeddingInput::Texts(v) => {
                for s in v {
                    changed |= text(s, r);
                }
            }
            EmbeddingInput::Tokens(_) | EmbeddingInput::TokenLists(_) => {}
        },
    }
    changed
}

fn text(s: &mut String, r: &mut Redactor<'_>) -> bool {
    match r.text(s) {
        Some(new) => {
            *s = new;
            true
        }
        None => false,
    }
}

/// Redacts the string values of a JSON text; non-JSON text is redacted as text.
pub fn json_text(json: &str, r: &mut Redactor<'_>) -> Option<String> {
    match serde_json::from_str::<Value>(json) {
        Ok(mut v) => value(&mut v, r).then(|| v.to_string()),
        Err(_) => r.text(json),
    }
}

/// Redacts every string in a JSON value; returns whether anything changed.
fn value(v: &mut Value, r: &mut Redactor<'_>) -> bool {
    match v {
        Value::String(s) => text(s, r),
        Value::Array(items) => items.iter_mut().fold(false, |acc, i| value(i, r) | acc),
        Value::Object(map) => map.values_mut().fold(false, |acc, i| value(i, r) | acc),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::Endpoint;
    use crate::pii::test_profile;

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
        assert!(redact(&mut req, &mut r));
        let out = String::from_utf8(req.to_json()).unwrap();
        assert!(
            !out.contains("jane@x.io") && !out.contains("4111") && !out.contains("DE89"),
            "{out}"
        );
        assert!(
            out.contains(r#"{\"email\":\"<EMAIL_1>\",\"qty\":2}"#),
            "arguments stay JSON: {out}"
        );
        assert!(out.contains("<CREDIT_CARD_1>"));
    }

    #[test]
    fn embeddings_and_prompts() {
        let p = test_profile("default_action: redact");
        let mut r = Redactor::new(&p, b"k", None);
        let mut e = ApiRequest::parse(
            Endpoint::Embeddings,
            br#"{"model":"m","input":["a@b.io","plain"]}"#,
        )
        .unwrap();
        assert!(redact(&mut e, &mut r));
        assert!(
            String::from_utf8(e.to_json())
                .unwrap()
                .contains(r#"["[EMAIL]","plain"]"#)
        );
        let mut c = ApiRequest::parse(
            Endpoint::Completions,
            br#"{"model":"m","prompt":"write to a@b.io"}"#,
        )
        .unwrap();
        assert!(redact(&mut c, &mut r));
        let mut clean = ApiRequest::parse(
            Endpoint::Completions,
            br#"{"model":"m","prompt":"SKU-1 size 42"}"#,
        )
        .unwrap();
        assert!(!redact(&mut clean, &mut r));
    }
}
