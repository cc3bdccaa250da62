//! Restoring pseudonymized values in answers: whole JSON responses (message content,
//! tool-call arguments, legacy `text`) and SSE streams, where a placeholder split across
//! chunks is held back only until it is complete and released at the latest when its
//! choice finishes.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value, json};

use super::vault::{StreamRestorer, Vault};
use crate::openai::sse::{self, Parser};

/// The restored body, or `None` when nothing changed (or it is not JSON).
pub fn restore_body(vault: &Vault, body: &[u8]) -> Option<Vec<u8>> {
    if vault.is_empty() || memchr::memchr(b'<', body).is_none() {
        return None;
    }
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    for choice in v
        .get_mut("choices")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        changed |= restore_field(vault, choice, "text", false);
        if let Some(m) = choice.get_mut("message") {
            changed |= restore_field(vault, m, "content", false);
            for call in m
                .get_mut("tool_calls")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(f) = call.get_mut("function") {
                    changed |= restore_field(vault, f, "arguments", true);
                }
            }
        }
    }
    changed.then(|| v.to_string().into_bytes())
}

fn restore_field(vault: &Vault, obj: &mut Value, field: &str, json: bool) -> bool {
    let Some(Value::String(s)) = obj.get_mut(field) else {
        return false;
    };
    match vault.restore(s, json) {
        std::borrow::Cow::Owned(new) => {
            *s = new;
            true
        }
        std::borrow::Cow::Borrowed(_) => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Content,
    Text,
    Arguments(u64),
}

/// Restores one SSE stream, event by event.
#[derive(Default)]
pub struct StreamRestore {
    parser: Parser,
    events: Vec<sse::Event>,
    pending: BTreeMap<(u64, Field), StreamRestorer>,
}

impl StreamRestore {
    /// The bytes to forward for one upstream chunk (possibly empty while an event is
    /// incomplete).
    pub fn push(&mut self, vault: &Vault, chunk: &[u8]) -> Bytes {
        if self.parser.feed(chunk, &mut self.events).is_err() {
            return Bytes::copy_from_slice(chunk);
        }
        let mut out = BytesMut::new();
        for event in std::mem::take(&mut self.events) {
            if event.is_done() {
                if let Some(rest) = self.flush_all(vault) {
                    out.extend_from_slice(&sse::data_event(rest.as_bytes()));
                }
                out.extend_from_slice(&sse::done_event());
                continue;
            }
            match serde_json::from_str::<Value>(&event.data) {
                Ok(mut v) if v.get("choices").is_some() => {
                    self.restore_event(vault, &mut v);
                    out.extend_from_slice(&sse::data_event(v.to_string().as_bytes()));
                }
                _ => out.extend_from_slice(&sse::data_event(event.data.as_bytes())),
            }
        }
        out.freeze()
    }

    fn restorer(&mut self, vault: &Vault, key: (u64, Field)) -> &mut StreamRestorer {
        self.pending
            .entry(key)
            .or_insert_with(|| vault.stream(matches!(key.1, Field::Arguments(_))))
    }

    fn restore_event(&mut self, vault: &Vault, v: &mut Value) {
        let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) else {
            return;
        };
        for choice in choices {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            if let Some(Value::String(s)) = choice.get_mut("text") {
                *s = self.restorer(vault, (index, Field::Text)).push(vault, s);
            }
            if let Some(delta) = choice.get_mut("delta") {
                if let Some(Value::String(s)) = delta.get_mut("content") {
                    *s = self.restorer(vault, (index, Field::Content)).push(vault, s);
                }
                for call in delta
                    .get_mut("tool_calls")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    let call_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                    if let Some(Value::String(s)) = call.pointer_mut("/function/arguments") {
                        *s = self
                            .restorer(vault, (index, Field::Arguments(call_index)))
                            .push(vault, s);
                    }
                }
            }
            let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            if finished {
                self.flush_choice(vault, index, choice);
            }
        }
    }

    /// Appends whatever a finished choice still holds to its last event.
    fn flush_choice(&mut self, vault: &Vault, index: u64, choice: &mut Value) {
        let keys: Vec<(u64, Field)> = self
            .pending
            .keys()
            .filter(|(i, _)| *i == index)
            .copied()
            .collect();
        for key in keys {
            let Some(mut r) = self.pending.remove(&key) else {
                continue;
            };
            let rest = r.flush(vault);
            if rest.is_empty() {
                continue;
            }
            append(choice, key.1, &rest);
        }
    }

    /// A final chunk for text still held when the stream ends without finish reasons.
    fn flush_all(&mut self, vault: &Vault) -> Option<String> {
        let mut choices: BTreeMap<u64, Value> = BTreeMap::new();
        for ((index, field), mut r) in std::mem::take(&mut self.pending) {
            let rest = r.flush(vault);
            if rest.is_empty() {
                continue;
            }
            let choice = choices
                .entry(index)
                .or_insert_with(|| json!({"index": index, "delta": {}}));
            append(choice, field, &rest);
        }
        (!choices.is_empty())
            .then(|| json!({"object": "chat.completion.chunk", "choices": choices.into_values().collect::<Vec<_>>()}).to_string())
    }
}

fn append(choice: &mut Value, field: Field, rest: &str) {
    let push = |slot: &mut Value| match slot {
        Value::String(s) => s.push_str(rest),
        other => *other = Value::String(rest.to_string()),
    };
    match field {
        Field::Text => push(
            choice
                .as_object_mut()
                .map_or(&mut Value::Null, |o| o.entry("text").or_insert(Value::Null)),
        ),
        Field::Content | Field::Arguments(_) => {
            let Some(obj) = choice.as_object_mut() else {
                return;
            };
            let delta = obj
                .entry("delta")
                .or_insert_with(|| Value::Object(Map::new()));
            let Some(delta) = delta.as_object_mut() else {
                return;
            };
            match field {
                Field::Content => push(delta.entry("content").or_insert(Value::Null)),
                Field::Arguments(i) => {
                    let calls = delta
                        .entry("tool_calls")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Some(calls) = calls.as_array_mut() {
                        calls.push(json!({"index": i, "function": {"arguments": rest}}));
                    }
                }
                Field::Text => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::Entity;

    fn vault() -> Vault {
        let mut v = Vault::default();
        v.placeholder(Entity::Email, "jane@x.io");
        v.placeholder(Entity::Person, "Zoë \"Z\" Ortiz");
        v
    }

    #[test]
    fn whole_bodies_restore_content_and_arguments() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Sent to <EMAIL_1>.","tool_calls":[{"id":"c","type":"function","function":{"name":"mail","arguments":"{\"to\":\"<PERSON_1>\"}"}}]}}]}"#;
        let out: Value = serde_json::from_slice(&restore_body(&vault(), body).unwrap()).unwrap();
        assert_eq!(
            out["choices"][0]["message"]["content"],
            "Sent to jane@x.io."
        );
        let args: Value = serde_json::from_str(
            out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(args["to"], "Zoë \"Z\" Ortiz", "arguments stay valid JSON");
        assert!(restore_body(&vault(), br#"{"choices":[]}"#).is_none());
    }

    fn chunk(delta: Value, finish: Option<&str>) -> String {
        let v = json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {v}\n\n")
    }

    #[test]
    fn streams_restore_a_placeholder_split_across_chunks() {
        let v = vault();
        let mut s = StreamRestore::default();
        let input = [
            chunk(json!({"content": "Hi, I wrote to <EM"}), None),
            chunk(json!({"content": "AIL_1"}), None),
            chunk(json!({"content": "> and <PERS"}), None),
            chunk(json!({}), Some("stop")),
        ];
        let mut text = String::new();
        let mut raw = String::new();
        for c in &input {
            let out = s.push(&v, c.as_bytes());
            raw.push_str(std::str::from_utf8(&out).unwrap());
        }
        raw.push_str(std::str::from_utf8(&s.push(&v, b"data: [DONE]\n\n")).unwrap());
        for line in raw.lines().filter_map(|l| l.strip_prefix("data: ")) {
            if line == "[DONE]" {
                continue;
            }
            let e: Value = serde_json::from_str(line).unwrap();
            if let Some(c) = e["choices"][0]["delta"]["content"].as_str() {
                text.push_str(c);
            }
        }
        assert_eq!(
            text, "Hi, I wrote to jane@x.io and <PERS",
            "an unfinished placeholder is released at the end"
        );
        assert!(raw.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn streamed_tool_arguments_are_restored_with_json_escaping() {
        let v = vault();
        let mut s = StreamRestore::default();
        let call =
            |args: &str| json!({"tool_calls": [{"index": 0, "function": {"arguments": args}}]});
        let mut args = String::new();
        for c in [
            chunk(call("{\"to\":\"<PER"), None),
            chunk(call("SON_1>\"}"), None),
            chunk(json!({}), Some("tool_calls")),
        ] {
            let out = s.push(&v, c.as_bytes());
            for line in std::str::from_utf8(&out)
                .unwrap()
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
            {
                let e: Value = serde_json::from_str(line).unwrap();
                if let Some(a) =
                    e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
                {
                    args.push_str(a);
                }
            }
        }
        let parsed: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(parsed["to"], "Zoë \"Z\" Ortiz");
    }
}
