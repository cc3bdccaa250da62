//! Completion tokens counted from the answer itself, for providers that report no usage:
//! the text, refusal and tool-call names and arguments of every choice, whole responses
//! and stream deltas alike (each choice's pieces joined before counting); for the
//! Responses API, the text, refusals and function calls of each output item and their
//! stream deltas. A stream's
//! events are kept as they come and only read when no usage arrives; past a bound they
//! are folded into each choice's text, so a long stream holds its text, not its events.

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

/// Event data kept before it is folded into text.
const FOLD_AT: usize = 64 * 1024;

/// What a stream generated, for counting its completion tokens if no usage arrives.
#[derive(Debug, Default)]
pub struct StreamText {
    events: Vec<String>,
    event_bytes: usize,
    texts: BTreeMap<u64, String>,
}

impl StreamText {
    /// Keeps one event's data (parsed only when kept events pass [`FOLD_AT`] bytes).
    pub fn push(&mut self, data: String) {
        self.event_bytes += data.len();
        self.events.push(data);
        if self.event_bytes > FOLD_AT {
            self.fold();
        }
    }

    fn fold(&mut self) {
        for data in self.events.drain(..) {
            if let Ok(value) = serde_json::from_str::<Value>(&data) {
                collect(&value, "delta", &mut self.texts);
            }
        }
        self.event_bytes = 0;
    }

    /// Completion tokens of everything kept.
    pub fn count(mut self, enc: &Encoding) -> u64 {
        self.fold();
        count(enc, &self.texts)
    }
}

fn count(enc: &Encoding, texts: &BTreeMap<u64, String>) -> u64 {
    texts.values().map(|t| enc.count(t)).sum()
}

/// Appends each choice's generated text (under `message` or `delta`, or legacy `text`);
/// for the Responses API, each output item's.
fn collect(value: &Value, field: &str, texts: &mut BTreeMap<u64, String>) {
    if let Some(kind) = value.get("type").and_then(Value::as_str) {
        return collect_response_event(value, kind, texts);
    }
    if let Some(items) = value.get("output").and_then(Value::as_array) {
        return collect_response_output(items, texts);
    }
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

/// The text of each Responses output item: message texts and refusals, function calls'
/// names and arguments.
fn collect_response_output(items: &[Value], texts: &mut BTreeMap<u64, String>) {
    for (index, item) in (0u64..).zip(items) {
        let text = texts.entry(index).or_default();
        for key in ["name", "arguments"] {
            if let Some(s) = item.get(key).and_then(Value::as_str) {
                text.push_str(s);
            }
        }
        for part in item
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for key in ["text", "refusal"] {
                if let Some(s) = part.get(key).and_then(Value::as_str) {
                    text.push_str(s);
                }
            }
        }
    }
}

/// The generated text one Responses stream event adds: text, refusal and argument
/// deltas, and the name of a function call when its item is added.
fn collect_response_event(event: &Value, kind: &str, texts: &mut BTreeMap<u64, String>) {
    let index = event
        .get("output_index")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let piece = match kind {
        "response.output_text.delta"
        | "response.refusal.delta"
        | "response.function_call_arguments.delta" => event.get("delta"),
        "response.output_item.added" => event.pointer("/item/name"),
        _ => None,
    };
    if let Some(s) = piece.and_then(Value::as_str) {
        texts.entry(index).or_default().push_str(s);
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
        let mut text = StreamText::default();
        for e in events {
            text.push(e.to_string());
        }
        assert_eq!(
            text.count(&enc),
            2 + enc.count("lookup{}"),
            "pieces of a choice are joined before counting"
        );
        // A long stream is folded as it goes and counts the same.
        let piece = r#"{"choices":[{"index":0,"delta":{"content":" word"}}]}"#;
        let mut long = StreamText::default();
        for _ in 0..5000 {
            long.push(piece.to_string());
        }
        assert!(long.event_bytes <= FOLD_AT && long.events.len() < 5000);
        assert_eq!(long.count(&enc), enc.count(&" word".repeat(5000)));
        assert_eq!(from_body(&enc, b"not json"), None);
    }
}
