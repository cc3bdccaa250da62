//! Completion tokens counted from the answer itself, for providers that report no usage:
//! the text, refusal and tool-call names and arguments of every choice, whole responses
//! and stream deltas alike (each choice's pieces joined before counting).

use std::collections::BTreeMap;

use serde_json::Value;

use super::Encoding;

/// Completion tokens of a whole JSON response body; `None` when it is not JSON.
pub fn from_body(enc: &Encoding, body: &[u8]) -> Option<u64> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let mut texts = BTreeMap::new();
    collect(&value, "message", &mut texts);
    Some(count(enc, &texts))
}

/// Completion tokens of a stream, from its events' data.
pub fn from_events<'a>(enc: &Encoding, events: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut texts = BTreeMap::new();
    for data in events {
        if let Ok(value) = serde_json::from_str::<Value>(data) {
            collect(&value, "delta", &mut texts);
        }
    }
    count(enc, &texts)
}

fn count(enc: &Encoding, texts: &BTreeMap<u64, String>) -> u64 {
    texts.values().map(|t| enc.count(t)).sum()
}

/// Appends each choice's generated text (under `message` or `delta`, or legacy `text`).
fn collect(value: &Value, field: &str, texts: &mut BTreeMap<u64, String>) {
    let Some(choices) = value.get("choices").and_then(Value::as_array) else {
        return;
    };
    for choice in choices {
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
        let text = texts.entry(index).or_default();
        let mut push = |v: Option<&Value>| {
            if let Some(s) = v.and_then(Value::as_str) {
                text.push_str(s);
            }
        };
        push(choice.get("text"));
        let Some(m) = choice.get(field) else {
            continue;
        };
        push(m.get("content"));
        push(m.get("refusal"));
        for call in m
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            push(call.pointer("/function/name"));
            push(call.pointer("/function/arguments"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn counts_messages_deltas_and_tool_calls() {
        let enc = Encoding::for_model(Some("o200k_base"), "", Path::new(".")).unwrap();
        let body =
            br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"hello world"}}]}"#;
        assert_eq!(from_body(&enc, body), Some(2));
        let events = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"hel"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo world"}}]}"#,
            r#"{"choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"name":"lookup","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#,
            "[DONE]",
        ];
        assert_eq!(
            from_events(&enc, events),
            2 + enc.count("lookup{}"),
            "pieces of a choice are joined before counting"
        );
        assert_eq!(from_body(&enc, b"not json"), None);
    }
}
