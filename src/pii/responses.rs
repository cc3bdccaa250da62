//! The Responses API's answers through the PII filter. A whole response: each output
//! item's texts — message text and refusals, reasoning text and summaries, function-call
//! arguments (JSON), custom-tool input — scanned and restored, and every string of an
//! item of another type. A stream: each `*.delta` event's text passes its field's
//! scanning window and restorer, as chat deltas do; the `*.done` event that closes a
//! field first gets an added delta event with what the field still held, then carries
//! the whole text the deltas released, and the events that repeat finished items
//! (`content_part.done`, `output_item.done`, `response.completed`) carry the same texts,
//! so every view of the answer agrees. Events of types Warden does not know have every
//! string scanned and restored.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::response::{Answer, AnswerStream, Field, Released};
use super::vault::Vault;

/// Keys of an event or item that identify, never carry text.
const IDENTIFIERS: [&str; 9] = [
    "type", "id", "item_id", "call_id", "status", "role", "object", "model", "name",
];

/// Keys that place a streamed text: copied onto the event that releases held text.
const ADDRESS: [&str; 4] = ["item_id", "output_index", "content_index", "summary_index"];

/// The field a `*.delta` or `*.done` event streams, the key of its text, and whether
/// it closes the field.
fn streamed(kind: &str, v: &Value) -> Option<(Field, &'static str, bool)> {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (content, summary) = (n("content_index"), n("summary_index"));
    Some(match kind {
        "response.output_text.delta" => (Field::Part(content), "delta", false),
        "response.output_text.done" => (Field::Part(content), "text", true),
        "response.reasoning_text.delta" => (Field::Reasoning(content), "delta", false),
        "response.reasoning_text.done" => (Field::Reasoning(content), "text", true),
        "response.refusal.delta" => (Field::Refusal(content), "delta", false),
        "response.refusal.done" => (Field::Refusal(content), "refusal", true),
        "response.reasoning_summary_text.delta" => (Field::Summary(summary), "delta", false),
        "response.reasoning_summary_text.done" => (Field::Summary(summary), "text", true),
        "response.function_call_arguments.delta" => (Field::CallArguments, "delta", false),
        "response.function_call_arguments.done" => (Field::CallArguments, "arguments", true),
        "response.custom_tool_call_input.delta" => (Field::Input, "delta", false),
        "response.custom_tool_call_input.done" => (Field::Input, "input", true),
        _ => return None,
    })
}

/// The type of the delta events of a field.
fn delta_kind(field: Field) -> &'static str {
    match field {
        Field::Reasoning(_) => "response.reasoning_text.delta",
        Field::Refusal(_) => "response.refusal.delta",
        Field::Summary(_) => "response.reasoning_summary_text.delta",
        Field::CallArguments => "response.function_call_arguments.delta",
        Field::Input => "response.custom_tool_call_input.delta",
        _ => "response.output_text.delta",
    }
}

/// A delta event releasing `rest` of a field, placed by `address` (item, output index,
/// part) and numbered as the event it comes before (`sequence`).
pub(super) fn release_at(
    mut address: Map<String, Value>,
    sequence: Option<Value>,
    field: Field,
    rest: String,
) -> Released {
    let kind = delta_kind(field);
    address.insert("type".into(), kind.into());
    if let Some(seq) = sequence {
        address.insert("sequence_number".into(), seq);
    }
    address.insert("delta".into(), rest.into());
    if matches!(field, Field::Part(_)) {
        address.insert("logprobs".into(), Value::Array(Vec::new()));
    }
    Released {
        kind: Some(kind),
        data: Value::Object(address).to_string(),
    }
}

/// Text a field still held when the stream ended without closing it.
pub(super) fn release(index: u64, field: Field, rest: String) -> Released {
    let mut address = Map::new();
    address.insert("output_index".into(), index.into());
    match field {
        Field::Part(i) | Field::Reasoning(i) | Field::Refusal(i) => {
            address.insert("content_index".into(), i.into());
        }
        Field::Summary(i) => {
            address.insert("summary_index".into(), i.into());
        }
        _ => {}
    }
    release_at(address, None, field, rest)
}

impl Answer {
    /// A response object: its output items, and the request's `instructions` it echoes
    /// restored (they are the client's own words).
    pub(super) fn response(
        &mut self,
        response: &mut Value,
        finals: &BTreeMap<(u64, Field), String>,
    ) -> bool {
        let mut changed = false;
        if let (Some(vault), Some(instructions)) = (&self.vault, response.get_mut("instructions")) {
            changed |= restore_all(vault, instructions);
        }
        if let Some(items) = response.get_mut("output").and_then(Value::as_array_mut) {
            changed |= self.output(items, finals);
        }
        changed
    }

    /// A response's output items; in a stream, `finals` holds the texts their deltas
    /// released. True when anything changed.
    pub(super) fn output(
        &mut self,
        items: &mut [Value],
        finals: &BTreeMap<(u64, Field), String>,
    ) -> bool {
        let mut changed = false;
        for (index, item) in (0u64..).zip(items) {
            changed |= self.item(index, item, finals);
        }
        changed
    }

    /// One output item.
    pub(super) fn item(
        &mut self,
        index: u64,
        item: &mut Value,
        finals: &BTreeMap<(u64, Field), String>,
    ) -> bool {
        let found_before = self.found();
        let mut changed = false;
        let kind = item.get("type").and_then(Value::as_str).map(str::to_string);
        match kind.as_deref() {
            None | Some("message" | "reasoning") => {
                // An input message's content may be a plain string.
                changed |= self.field(item, "content", false);
                for (i, part) in (0u64..).zip(parts(item, "content")) {
                    changed |= self.part(index, i, part, finals);
                    changed |= self.drop_logprobs(part, found_before);
                }
                for (i, part) in (0u64..).zip(parts(item, "summary")) {
                    changed |= self.settle(part, "text", (index, Field::Summary(i)), finals);
                }
            }
            Some("function_call") => {
                changed |= self.settle(item, "arguments", (index, Field::CallArguments), finals);
            }
            Some("custom_tool_call") => {
                changed |= self.settle(item, "input", (index, Field::Input), finals);
            }
            Some(_) => changed |= self.strings(item),
        }
        changed
    }

    /// Content part `i` of output item `index`: its text (a message's or a reasoning
    /// item's) and its refusal.
    pub(super) fn part(
        &mut self,
        index: u64,
        i: u64,
        part: &mut Value,
        finals: &BTreeMap<(u64, Field), String>,
    ) -> bool {
        let field = match part.get("type").and_then(Value::as_str) {
            Some("reasoning_text") => Field::Reasoning(i),
            _ => Field::Part(i),
        };
        self.settle(part, "text", (index, field), finals)
            | self.settle(part, "refusal", (index, Field::Refusal(i)), finals)
    }

    /// `obj[slot]` given the text its deltas released, or scanned and restored whole.
    pub(super) fn settle(
        &mut self,
        obj: &mut Value,
        slot: &str,
        key: (u64, Field),
        finals: &BTreeMap<(u64, Field), String>,
    ) -> bool {
        match (finals.get(&key), obj.get_mut(slot)) {
            (Some(text), Some(Value::String(s))) => {
                let changed = s != text;
                text.clone_into(s);
                changed
            }
            _ => self.field(obj, slot, key.1.json()),
        }
    }

    /// A part's log-probabilities spell out, token by token, what scanning withheld.
    fn drop_logprobs(&mut self, part: &mut Value, found_before: u64) -> bool {
        match part.get_mut("logprobs") {
            Some(Value::Array(l)) if !l.is_empty() && self.found() > found_before => {
                l.clear();
                true
            }
            _ => false,
        }
    }

    /// Every string of `v` but identifiers, scanned and restored.
    pub(super) fn strings(&mut self, v: &mut Value) -> bool {
        match v {
            Value::String(s) => self.text(s, false),
            Value::Array(items) => items.iter_mut().fold(false, |c, i| self.strings(i) | c),
            Value::Object(map) => map
                .iter_mut()
                .filter(|(k, _)| !IDENTIFIERS.contains(&k.as_str()))
                .fold(false, |c, (_, v)| self.strings(v) | c),
            _ => false,
        }
    }
}

/// Every string of `v` restored (no scanning); true when one changed.
fn restore_all(vault: &Vault, v: &mut Value) -> bool {
    match v {
        Value::String(s) => match vault.restore(s, false) {
            std::borrow::Cow::Owned(new) => {
                *s = new;
                true
            }
            std::borrow::Cow::Borrowed(_) => false,
        },
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |c, i| restore_all(vault, i) | c),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |c, v| restore_all(vault, v) | c),
        _ => false,
    }
}

/// The parts under `key` of an output item.
fn parts<'a>(item: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    item.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

impl AnswerStream {
    /// One Responses stream event, filtered in place; returns the event that must go
    /// before it when it closes a field that still held text.
    pub(super) fn response_event(&mut self, kind: &str, v: &mut Value) -> Option<Released> {
        let index = v.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        let scanning = self.answer.scan.is_some();
        if let Some((field, slot, done)) = streamed(kind, v) {
            let key = (index, field);
            if scanning && let Some(Value::Array(l)) = v.get_mut("logprobs") {
                // Tokens of a stream are released before the window sees what they spell.
                l.clear();
            }
            return if done {
                self.close(key, slot, v)
            } else {
                if let Some(Value::String(text)) = v.get_mut(slot) {
                    *text = self.push(key, text);
                }
                if let Some(state) = self.fields.get_mut(&key)
                    && state.address.is_empty()
                {
                    state.address = ADDRESS
                        .iter()
                        .filter_map(|k| Some((k.to_string(), v.get(*k)?.clone())))
                        .collect();
                }
                None
            };
        }
        let finals = std::mem::take(&mut self.finals);
        match kind {
            "response.content_part.added" | "response.content_part.done" => {
                let i = v.get("content_index").and_then(Value::as_u64).unwrap_or(0);
                if let Some(part) = v.get_mut("part") {
                    let found_before = self.answer.found();
                    self.answer.part(index, i, part, &finals);
                    self.answer.drop_logprobs(part, found_before);
                }
            }
            "response.reasoning_summary_part.added" | "response.reasoning_summary_part.done" => {
                let i = v.get("summary_index").and_then(Value::as_u64).unwrap_or(0);
                if let Some(part) = v.get_mut("part") {
                    self.answer
                        .settle(part, "text", (index, Field::Summary(i)), &finals);
                }
            }
            "response.output_item.added" | "response.output_item.done" => {
                if let Some(item) = v.get_mut("item") {
                    self.answer.item(index, item, &finals);
                }
            }
            "response.created"
            | "response.queued"
            | "response.in_progress"
            | "response.completed"
            | "response.incomplete"
            | "response.failed" => {
                if let Some(response) = v.get_mut("response") {
                    self.answer.response(response, &finals);
                }
            }
            _ => {
                self.answer.strings(v);
            }
        }
        self.finals = finals;
        None
    }

    /// A `*.done` event: the field's held text is released by an added delta event, and
    /// the event carries the whole text its deltas released.
    fn close(&mut self, key: (u64, Field), slot: &str, v: &mut Value) -> Option<Released> {
        let Some(mut state) = self.fields.remove(&key) else {
            // No delta came: the text is filtered as it stands.
            self.answer.field(v, slot, key.1.json());
            if let Some(text) = v.get(slot).and_then(Value::as_str) {
                self.finals.insert(key, text.to_string());
            }
            return None;
        };
        let mut whole = state.released.take().unwrap_or_default();
        let address = std::mem::take(&mut state.address);
        let rest = self.flush(state);
        whole.push_str(&rest);
        if let Some(Value::String(text)) = v.get_mut(slot) {
            text.clone_from(&whole);
        }
        self.finals.insert(key, whole);
        (!rest.is_empty())
            .then(|| release_at(address, v.get("sequence_number").cloned(), key.1, rest))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::config::{PiiAction, RestoreSource};
    use crate::pii::response::OutputScan;
    use crate::pii::vault::Vault;
    use crate::pii::{Entity, test_profile};

    const PLACEHOLDER: &str = "<EMAIL_1_tstnce>";

    fn answer(scanning: bool) -> Answer {
        let mut vault = Vault::with_nonce("tstnce");
        vault.placeholder(Entity::Email, "jane@x.io", RestoreSource::User);
        let scan = scanning.then(|| OutputScan {
            profile: Arc::new(test_profile("output_holdback_bytes: 24\n")),
            hash_key: Arc::from(&b"k"[..]),
            tenant: None,
            ner_budget: Default::default(),
        });
        Answer::new(Some(vault), scan).unwrap()
    }

    /// The events a client sees for a stream of `events`, in order.
    fn relay(stream: &mut AnswerStream, events: &[Value]) -> Vec<Value> {
        let mut out = Vec::new();
        for e in events {
            let data = e.to_string();
            let (before, shown) = stream.event(&data).unwrap();
            if let Some(b) = before {
                let v: Value = serde_json::from_str(&b.data).unwrap();
                assert_eq!(Some(b.kind.unwrap()), v["type"].as_str());
                out.push(v);
            }
            out.push(serde_json::from_str(&shown).unwrap());
        }
        out.extend(
            stream
                .finish()
                .into_iter()
                .map(|r| serde_json::from_str::<Value>(&r.data).unwrap()),
        );
        out
    }

    /// A message streamed in `pieces`, then closed and repeated by every closing event.
    fn message_events(pieces: &[&str]) -> Vec<Value> {
        let text: String = pieces.concat();
        let at = |mut v: Value| {
            v["item_id"] = "msg_1".into();
            v["output_index"] = 0.into();
            v["content_index"] = 0.into();
            v
        };
        let mut events = vec![at(json!({"type": "response.content_part.added",
            "part": {"type": "output_text", "text": ""}}))];
        for p in pieces {
            events.push(at(
                json!({"type": "response.output_text.delta", "delta": p}),
            ));
        }
        let part = json!({"type": "output_text", "text": text, "annotations": []});
        let item =
            json!({"type": "message", "id": "msg_1", "role": "assistant", "content": [part]});
        events.push(at(
            json!({"type": "response.output_text.done", "text": text}),
        ));
        events.push(at(
            json!({"type": "response.content_part.done", "part": part}),
        ));
        events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
        events.push(json!({"type": "response.completed", "response": {"output": [item]}}));
        events
    }

    fn deltas(events: &[Value]) -> String {
        events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .map(|e| e["delta"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn a_placeholder_split_across_deltas_is_restored_in_every_view() {
        let text = format!("Mail {PLACEHOLDER} today");
        for cut in 1..text.len() {
            if !text.is_char_boundary(cut) {
                continue;
            }
            let (a, b) = text.split_at(cut);
            let out = relay(&mut answer(false).into_stream(), &message_events(&[a, b]));
            let want = "Mail jane@x.io today";
            assert_eq!(deltas(&out), want, "cut at {cut}");
            let last = |kind: &str| out.iter().rfind(|e| e["type"] == kind).unwrap().clone();
            assert_eq!(last("response.output_text.done")["text"], want);
            assert_eq!(last("response.content_part.done")["part"]["text"], want);
            assert_eq!(
                last("response.output_item.done")["item"]["content"][0]["text"],
                want
            );
            assert_eq!(
                last("response.completed")["response"]["output"][0]["content"][0]["text"],
                want
            );
        }
    }

    #[test]
    fn held_text_is_released_before_the_done_event_in_place() {
        let out = relay(
            &mut answer(false).into_stream(),
            &message_events(&["Mail ", "<EMAIL_1_ts"]),
        );
        let done = out
            .iter()
            .position(|e| e["type"] == "response.output_text.done")
            .unwrap();
        let released = &out[done - 1];
        assert_eq!(released["type"], "response.output_text.delta");
        assert_eq!(
            released["delta"], "<EMAIL_1_ts",
            "not a placeholder after all"
        );
        assert_eq!(released["item_id"], "msg_1");
        assert_eq!(released["content_index"], 0);
        assert_eq!(out[done]["text"], "Mail <EMAIL_1_ts");
    }

    #[test]
    fn scanning_withholds_what_the_model_wrote_in_deltas_and_closing_events() {
        let mut stream = answer(true).into_stream();
        let out = relay(
            &mut stream,
            &message_events(&["Ask bob@", "corp.example or ", PLACEHOLDER, "."]),
        );
        let want = "Ask [EMAIL] or jane@x.io.";
        assert_eq!(deltas(&out), want);
        let completed = out.last().unwrap();
        assert_eq!(
            completed["response"]["output"][0]["content"][0]["text"],
            want
        );
        assert_eq!(stream.counts()[&(Entity::Email, PiiAction::Redact)], 1);
    }

    #[test]
    fn function_call_arguments_are_restored_as_json() {
        let args = format!(r#"{{"to":"{PLACEHOLDER}"}}"#);
        let (a, b) = args.split_at(10);
        let events = vec![
            json!({"type": "response.output_item.added", "output_index": 1,
                "item": {"type": "function_call", "name": "mail", "arguments": "", "call_id": "c1"}}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 1, "delta": a}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 1, "delta": b}),
            json!({"type": "response.function_call_arguments.done", "output_index": 1, "arguments": args}),
            json!({"type": "response.completed", "response": {"output": [
                {"type": "message", "content": []},
                {"type": "function_call", "name": "mail", "arguments": args, "call_id": "c1"}]}}),
        ];
        let out = relay(&mut answer(false).into_stream(), &events);
        let streamed: String = out
            .iter()
            .filter(|e| e["type"] == "response.function_call_arguments.delta")
            .map(|e| e["delta"].as_str().unwrap())
            .collect();
        let want = r#"{"to":"jane@x.io"}"#;
        assert_eq!(streamed, want);
        assert_eq!(
            out.last().unwrap()["response"]["output"][1]["arguments"],
            want
        );
    }

    #[test]
    fn unknown_events_and_items_have_every_string_filtered() {
        let mut stream = answer(true).into_stream();
        let out = relay(
            &mut stream,
            &[
                json!({"type": "response.future_thing.delta", "item_id": "x",
                "payload": {"note": format!("to {PLACEHOLDER}, cc bob@corp.example")}}),
            ],
        );
        assert_eq!(out[0]["payload"]["note"], "to jane@x.io, cc [EMAIL]");
        assert_eq!(out[0]["item_id"], "x");
        let mut whole = answer(false);
        let mut body = json!({"object": "response", "output": [
            {"type": "mcp_call", "name": "crm", "output": format!("found {PLACEHOLDER}")}]});
        assert!(whole.value(&mut body));
        assert_eq!(body["output"][0]["output"], "found jane@x.io");
    }

    #[test]
    fn a_stream_cut_before_its_done_events_releases_what_it_held() {
        let mut stream = answer(false).into_stream();
        let out = relay(
            &mut stream,
            &[
                json!({"type": "response.output_text.delta", "item_id": "m", "output_index": 2,
                "content_index": 0, "delta": "<EMAIL_1_tst"}),
            ],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[1]["type"], "response.output_text.delta");
        assert_eq!(out[1]["output_index"], 2);
        assert_eq!(out[1]["delta"], "<EMAIL_1_tst");
    }
}
