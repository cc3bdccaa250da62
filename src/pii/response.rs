//! What the PII stage does to a request's answer: personal data the model emits is found
//! and replaced (output scanning, when the profile asks for it), then pseudonymized values
//! are put back (restoration) — in every text of an answer a client can read: message
//! content, refusals, reasoning text, audio transcripts, legacy `text`, and tool-call and
//! legacy `function_call` arguments (JSON-escaped); for whole JSON responses and for
//! streams, one SSE event at a time. What cannot be scanned is withheld when scanning is
//! on: log-probability tokens spell out the answer token by token, so a whole answer whose
//! text had a finding loses its `logprobs`, and a scanned stream carries none; audio is
//! dropped with a transcript that had a finding, and from scanned streams. In a stream, a
//! placeholder split across chunks is held back only until it is complete, output
//! scanning holds back a bounded window, and both are released at the latest when their
//! choice finishes or the stream ends. The Responses API's output items and stream events
//! are handled in [`super::responses`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value, json};

use super::Counts;
use super::ner::NerBudget;
use super::output::ScanWindow;
use super::redact::Redactor;
use super::vault::{StreamRestorer, Vault};
use super::{Profile, request};
use crate::config::{PiiAction, ScanOutput};

/// Output scanning settings of one request: its profile and the `hash` action's key.
#[derive(Debug, Clone)]
pub struct OutputScan {
    pub profile: Arc<Profile>,
    pub hash_key: Arc<[u8]>,
    pub tenant: Option<String>,
    /// What the model may still spend on this answer (`scan_output: ner`), shared by
    /// every field and choice of it.
    pub ner_budget: Arc<Mutex<Option<NerBudget>>>,
}

impl OutputScan {
    /// A redactor applying the profile to the model's answer.
    pub fn redactor(&self) -> Redactor<'_> {
        Redactor::for_answer(&self.profile, &self.hash_key, self.tenant.as_deref())
    }

    /// Runs `f` with a redactor and adds its findings to `counts`.
    fn run<T>(&self, counts: &mut Counts, f: impl FnOnce(&mut Redactor<'_>) -> T) -> T {
        let mut r = self.redactor();
        let mut budget = self
            .ner_budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        r.ner_budget = budget.take();
        let out = f(&mut r);
        *budget = r.ner_budget.take();
        for (k, n) in r.counts {
            *counts.entry(k).or_default() += n;
        }
        out
    }

    /// Whether the model reads the answer: streams are then released a sentence at a time.
    pub fn reads_sentences(&self) -> bool {
        self.profile.settings.scan_output == ScanOutput::Ner && self.profile.ner().is_some()
    }
}

/// The plain-text fields of an answer's `message` (and of a stream's `delta`).
const MESSAGE_TEXTS: [&str; 4] = ["content", "refusal", "reasoning_content", "reasoning"];

/// One request's answer filter.
#[derive(Debug)]
pub struct Answer {
    pub(super) vault: Option<Vault>,
    pub(super) scan: Option<OutputScan>,
    /// Findings of output scanning by entity type and the action taken.
    pub counts: Counts,
}

impl Answer {
    /// The filter, or `None` when the answer needs neither scanning nor restoring.
    pub fn new(vault: Option<Vault>, scan: Option<OutputScan>) -> Option<Answer> {
        let vault = vault.filter(|v| !v.is_empty());
        (vault.is_some() || scan.is_some()).then(|| Answer {
            vault,
            scan,
            counts: BTreeMap::new(),
        })
    }

    /// A tool call's JSON arguments with the placeholders the model was shown restored,
    /// under the profile's restore rule (as answers are restored), for the backend that
    /// runs the call.
    pub fn restore_arguments<'a>(&self, arguments: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.vault {
            Some(vault) => vault.restore(arguments, true),
            None => std::borrow::Cow::Borrowed(arguments),
        }
    }

    /// The filtered body, or `None` when nothing changed (or it is not JSON).
    pub fn body(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        if !self.may_change(body) {
            return None;
        }
        let mut v: Value = serde_json::from_slice(body).ok()?;
        self.value(&mut v).then(|| v.to_string().into_bytes())
    }

    /// Whether filtering can change this body at all (scanning is on, or it holds a `<`
    /// that may start a placeholder).
    pub fn may_change(&self, body: &[u8]) -> bool {
        self.scan.is_some() || memchr::memchr(b'<', body).is_some()
    }

    /// Filters a parsed answer in place; true when it changed.
    pub fn value(&mut self, v: &mut Value) -> bool {
        if v.get("object").and_then(Value::as_str) == Some("response") {
            return self.response(v, &BTreeMap::new());
        }
        if v.get("object").and_then(Value::as_str) == Some("list")
            && let Some(items) = v.get_mut("data").and_then(Value::as_array_mut)
        {
            // A stored response's input items.
            return self.output(items, &BTreeMap::new());
        }
        let mut changed = false;
        for choice in v
            .get_mut("choices")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            changed |= self.choice(choice);
        }
        changed
    }

    /// One choice of a whole answer; true when it changed.
    fn choice(&mut self, choice: &mut Value) -> bool {
        let found_before = self.found();
        let mut changed = self.field(choice, "text", false);
        if let Some(m) = choice.get_mut("message") {
            for key in MESSAGE_TEXTS {
                changed |= self.field(m, key, false);
            }
            for call in m
                .get_mut("tool_calls")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(f) = call.get_mut("function") {
                    changed |= self.field(f, "arguments", true);
                }
            }
            if let Some(f) = m.get_mut("function_call") {
                changed |= self.field(f, "arguments", true);
            }
            if let Some(audio) = m.get_mut("audio") {
                let before = self.found();
                changed |= self.field(audio, "transcript", false);
                if self.found() > before
                    && let Some(data) = audio.get_mut("data")
                {
                    // The audio says what its transcript no longer does.
                    *data = Value::String(String::new());
                    changed = true;
                }
            }
        }
        if self.found() > found_before
            && let Some(logprobs) = choice.get_mut("logprobs")
            && !logprobs.is_null()
        {
            // Token by token, log-probabilities spell out what scanning withheld.
            *logprobs = Value::Null;
            changed = true;
        }
        changed
    }

    /// Values output scanning acted on so far (findings not allowed through).
    pub(super) fn found(&self) -> u64 {
        self.counts
            .iter()
            .filter(|((_, action), _)| *action != PiiAction::Allow)
            .map(|(_, n)| n)
            .sum()
    }

    /// Scans and restores the string `obj[field]`; true when it changed.
    pub(super) fn field(&mut self, obj: &mut Value, field: &str, json: bool) -> bool {
        match obj.get_mut(field) {
            Some(Value::String(s)) => self.text(s, json),
            _ => false,
        }
    }

    /// Scans and restores one text (a JSON text: its string values); true when it changed.
    pub(super) fn text(&mut self, s: &mut String, json: bool) -> bool {
        let mut changed = false;
        if let Some(scan) = &self.scan {
            let scanned = scan.run(&mut self.counts, |r| {
                if json {
                    request::json_text(s, r)
                } else {
                    r.text(s)
                }
            });
            if let Some(new) = scanned {
                *s = new;
                changed = true;
            }
        }
        if let Some(vault) = &self.vault
            && let std::borrow::Cow::Owned(new) = vault.restore(s, json)
        {
            *s = new;
            changed = true;
        }
        changed
    }

    /// A filter for this answer as a stream of events.
    pub fn into_stream(self) -> AnswerStream {
        AnswerStream {
            answer: self,
            fields: BTreeMap::new(),
            finals: BTreeMap::new(),
        }
    }
}

/// A streamed text of one choice (chat) or output item (Responses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Field {
    /// Legacy completions' `choice.text`.
    Text,
    /// `delta.<key>` for one of [`MESSAGE_TEXTS`].
    Delta(&'static str),
    /// `delta.audio.transcript`.
    Transcript,
    /// `delta.tool_calls[index].function.arguments`.
    Arguments(u64),
    /// `delta.function_call.arguments` (legacy functions).
    FunctionCall,
    /// Responses: the text of content part `n` of a message.
    Part(u64),
    /// Responses: the text of content part `n` of a reasoning item.
    Reasoning(u64),
    /// Responses: the refusal of content part `n`.
    Refusal(u64),
    /// Responses: the text of summary part `n` of a reasoning item.
    Summary(u64),
    /// Responses: a function call's arguments.
    CallArguments,
    /// Responses: a custom tool call's input.
    Input,
}

impl Field {
    pub(super) fn json(self) -> bool {
        matches!(
            self,
            Field::Arguments(_) | Field::FunctionCall | Field::CallArguments
        )
    }

    /// Whether the field is an output item's (Responses), whose whole text is repeated
    /// by the events that close it and so is kept as it is released.
    fn of_item(self) -> bool {
        matches!(
            self,
            Field::Part(_)
                | Field::Reasoning(_)
                | Field::Refusal(_)
                | Field::Summary(_)
                | Field::CallArguments
                | Field::Input
        )
    }
}

/// The state of one streamed text: its scanning window, its placeholder restorer and,
/// for an output item's text, what it released so far.
pub(super) struct FieldState {
    window: Option<ScanWindow>,
    restorer: Option<StreamRestorer>,
    pub(super) released: Option<String>,
    /// Responses: the item, output index and part of the text's events, for the event
    /// that releases what the field still holds.
    pub(super) address: Map<String, Value>,
}

/// An event Warden adds to a stream to release held text: its data and, for the
/// Responses API, its type (which names the event).
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    pub kind: Option<&'static str>,
    pub data: String,
}

/// Filters one SSE stream, event by event.
pub struct AnswerStream {
    pub(super) answer: Answer,
    pub(super) fields: BTreeMap<(u64, Field), FieldState>,
    /// Responses: the whole text each finished output-item field released, which the
    /// events closing the item repeat.
    pub(super) finals: BTreeMap<(u64, Field), String>,
}

impl AnswerStream {
    /// Findings of output scanning so far.
    pub fn counts(&self) -> &Counts {
        &self.answer.counts
    }

    /// One event's data as the client should see it, after an event that releases text
    /// held until now when there is one; `None` when it passes unchanged.
    pub fn event(&mut self, data: &str) -> Option<(Option<Released>, String)> {
        let mut v: Value = serde_json::from_str(data).ok()?;
        if let Some(kind) = v.get("type").and_then(Value::as_str) {
            let kind = kind.to_string();
            let before = self.response_event(&kind, &mut v);
            return Some((before, v.to_string()));
        }
        let choices = v.get_mut("choices").and_then(Value::as_array_mut)?;
        for choice in choices {
            self.choice(choice);
        }
        Some((None, v.to_string()))
    }

    /// Last events for text still held when the stream ends (before `[DONE]`).
    pub fn finish(&mut self) -> Vec<Released> {
        let mut choices: BTreeMap<u64, Value> = BTreeMap::new();
        let mut out = Vec::new();
        for ((index, field), state) in std::mem::take(&mut self.fields) {
            let rest = self.flush(state);
            if rest.is_empty() {
                continue;
            }
            if field.of_item() {
                out.push(super::responses::release(index, field, rest));
                continue;
            }
            let choice = choices
                .entry(index)
                .or_insert_with(|| json!({"index": index, "delta": {}}));
            append(choice, field, &rest);
        }
        if !choices.is_empty() {
            let data = json!({"object": "chat.completion.chunk", "choices": choices.into_values().collect::<Vec<_>>()})
                .to_string();
            out.insert(0, Released { kind: None, data });
        }
        out
    }

    fn choice(&mut self, choice: &mut Value) {
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
        let scanning = self.answer.scan.is_some();
        if let Some(Value::String(s)) = choice.get_mut("text") {
            *s = self.push((index, Field::Text), s);
        }
        if let Some(delta) = choice.get_mut("delta") {
            for key in MESSAGE_TEXTS {
                if let Some(Value::String(s)) = delta.get_mut(key) {
                    *s = self.push((index, Field::Delta(key)), s);
                }
            }
            for call in delta
                .get_mut("tool_calls")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let call_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                if let Some(Value::String(s)) = call.pointer_mut("/function/arguments") {
                    *s = self.push((index, Field::Arguments(call_index)), s);
                }
            }
            if let Some(Value::String(s)) = delta.pointer_mut("/function_call/arguments") {
                *s = self.push((index, Field::FunctionCall), s);
            }
            if let Some(audio) = delta.get_mut("audio").and_then(Value::as_object_mut) {
                if let Some(Value::String(s)) = audio.get_mut("transcript") {
                    *s = self.push((index, Field::Transcript), s);
                }
                if scanning {
                    // Audio cannot be scanned; its transcript is.
                    audio.remove("data");
                }
            }
        }
        if scanning && let Some(logprobs) = choice.get_mut("logprobs") {
            // Tokens of a stream are released before the window sees what they spell.
            *logprobs = Value::Null;
        }
        if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
            self.finish_choice(index, choice);
        }
    }

    /// What a field's fragment releases: scanned first, then restored.
    pub(super) fn push(&mut self, key: (u64, Field), fragment: &str) -> String {
        let answer = &mut self.answer;
        let state = self.fields.entry(key).or_insert_with(|| FieldState {
            window: answer.scan.as_ref().map(|s| {
                ScanWindow::new(s.profile.settings.output_holdback_bytes)
                    .by_sentence(s.reads_sentences())
            }),
            restorer: answer.vault.as_ref().map(|v| v.stream(key.1.json())),
            released: key.1.of_item().then(String::new),
            address: Map::new(),
        });
        let scanned = match (&mut state.window, &answer.scan) {
            (Some(w), Some(scan)) => scan.run(&mut answer.counts, |r| w.push(r, fragment)),
            _ => fragment.to_string(),
        };
        let shown = match (&mut state.restorer, &answer.vault) {
            (Some(r), Some(vault)) => r.push(vault, &scanned),
            _ => scanned,
        };
        if let Some(released) = state.released.as_mut() {
            released.push_str(&shown);
        }
        shown
    }

    /// Everything a field still holds, scanned and restored.
    pub(super) fn flush(&mut self, mut state: FieldState) -> String {
        let answer = &mut self.answer;
        let mut rest = match (&mut state.window, &answer.scan) {
            (Some(w), Some(scan)) => scan.run(&mut answer.counts, |r| w.flush(r)),
            _ => String::new(),
        };
        if let (Some(r), Some(vault)) = (&mut state.restorer, &answer.vault) {
            rest = r.push(vault, &rest);
            rest.push_str(&r.flush(vault));
        }
        rest
    }

    /// Appends whatever a finished choice still holds to its last event.
    fn finish_choice(&mut self, index: u64, choice: &mut Value) {
        let keys: Vec<(u64, Field)> = self
            .fields
            .keys()
            .filter(|(i, _)| *i == index)
            .copied()
            .collect();
        for key in keys {
            let Some(state) = self.fields.remove(&key) else {
                continue;
            };
            let rest = self.flush(state);
            if !rest.is_empty() {
                append(choice, key.1, &rest);
            }
        }
    }
}

/// Appends held text to a field of a choice (creating the objects on the way).
fn append(choice: &mut Value, field: Field, rest: &str) {
    let Some(obj) = choice.as_object_mut() else {
        return;
    };
    let push = |slot: &mut Value| match slot {
        Value::String(s) => s.push_str(rest),
        other => *other = Value::String(rest.to_string()),
    };
    if field == Field::Text {
        push(obj.entry("text").or_insert(Value::Null));
        return;
    }
    let delta = obj
        .entry("delta")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(delta) = delta.as_object_mut() else {
        return;
    };
    let object = |slot: &mut Value| {
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
    };
    match field {
        // Output items' texts are released by their own events (`responses::release`).
        Field::Text
        | Field::Part(_)
        | Field::Reasoning(_)
        | Field::Refusal(_)
        | Field::Summary(_)
        | Field::CallArguments
        | Field::Input => {}
        Field::Delta(key) => push(delta.entry(key).or_insert(Value::Null)),
        Field::Transcript => {
            let audio = delta.entry("audio").or_insert(Value::Null);
            object(audio);
            if let Some(audio) = audio.as_object_mut() {
                push(audio.entry("transcript").or_insert(Value::Null));
            }
        }
        Field::FunctionCall => {
            let call = delta.entry("function_call").or_insert(Value::Null);
            object(call);
            if let Some(call) = call.as_object_mut() {
                push(call.entry("arguments").or_insert(Value::Null));
            }
        }
        Field::Arguments(i) => {
            let calls = delta
                .entry("tool_calls")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(calls) = calls.as_array_mut() {
                calls.push(json!({"index": i, "function": {"arguments": rest}}));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RestoreSource;
    use crate::pii::{Entity, test_profile};

    fn vault() -> Vault {
        let mut v = Vault::with_nonce("tstnce");
        v.placeholder(Entity::Email, "jane@x.io", RestoreSource::User);
        v.placeholder(Entity::Person, "Zoë \"Z\" Ortiz", RestoreSource::User);
        v
    }

    fn restoring() -> Answer {
        Answer::new(Some(vault()), None).unwrap()
    }

    fn scanning_and_restoring() -> Answer {
        let scan = OutputScan {
            profile: Arc::new(test_profile(
                "actions: {PHONE: hash}\noutput_holdback_bytes: 24\n",
            )),
            hash_key: Arc::from(&b"k"[..]),
            tenant: None,
            ner_budget: Default::default(),
        };
        Answer::new(Some(vault()), Some(scan)).unwrap()
    }

    #[test]
    fn whole_bodies_restore_content_and_arguments() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Sent to <EMAIL_1_tstnce>.","tool_calls":[{"id":"c","type":"function","function":{"name":"mail","arguments":"{\"to\":\"<PERSON_1_tstnce>\"}"}}]}}]}"#;
        let out: Value = serde_json::from_slice(&restoring().body(body).unwrap()).unwrap();
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
        assert!(restoring().body(br#"{"choices":[]}"#).is_none());
        assert!(Answer::new(Some(Vault::default()), None).is_none());
    }

    #[test]
    fn whole_bodies_are_scanned_before_they_are_restored() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"I wrote to <EMAIL_1_tstnce> and cc'd bob@corp.example.","tool_calls":[{"id":"c","type":"function","function":{"name":"mail","arguments":"{\"cc\":\"bob@corp.example\"}"}}]}}]}"#;
        let mut answer = scanning_and_restoring();
        let out: Value = serde_json::from_slice(&answer.body(body).unwrap()).unwrap();
        assert_eq!(
            out["choices"][0]["message"]["content"], "I wrote to jane@x.io and cc'd [EMAIL].",
            "the customer's own value comes back, the model's is withheld"
        );
        assert_eq!(
            out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            r#"{"cc":"[EMAIL]"}"#
        );
        assert_eq!(answer.counts[&(Entity::Email, PiiAction::Redact)], 2);
    }

    /// The events a client sees for `data` events, as the proxy runs the filter.
    fn relay(stream: &mut AnswerStream, events: &[Value]) -> Vec<Value> {
        let mut out = Vec::new();
        for e in events {
            let data = e.to_string();
            let shown = stream.event(&data).map_or(data, |(_, shown)| shown);
            out.push(serde_json::from_str(&shown).unwrap());
        }
        for last in stream.finish() {
            out.push(serde_json::from_str(&last.data).unwrap());
        }
        out
    }

    fn chunk(delta: Value, finish: Option<&str>) -> Value {
        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    fn content(events: &[Value]) -> String {
        events
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
            .collect()
    }

    #[test]
    fn streams_restore_a_placeholder_split_across_chunks() {
        let mut s = restoring().into_stream();
        let out = relay(
            &mut s,
            &[
                chunk(json!({"content": "Hi, I wrote to <EM"}), None),
                chunk(json!({"content": "AIL_1_tst"}), None),
                chunk(json!({"content": "nce> and <PERS"}), None),
            ],
        );
        assert_eq!(
            content(&out),
            "Hi, I wrote to jane@x.io and <PERS",
            "an unfinished placeholder is released at the end"
        );
    }

    #[test]
    fn streamed_tool_arguments_are_restored_with_json_escaping() {
        let mut s = restoring().into_stream();
        let call =
            |args: &str| json!({"tool_calls": [{"index": 0, "function": {"arguments": args}}]});
        let out = relay(
            &mut s,
            &[
                chunk(call("{\"to\":\"<PER"), None),
                chunk(call("SON_1_tstnce>\"}"), None),
                chunk(json!({}), Some("tool_calls")),
            ],
        );
        let args: String = out
            .iter()
            .filter_map(|e| {
                e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        let parsed: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(parsed["to"], "Zoë \"Z\" Ortiz");
    }

    #[test]
    fn streams_are_scanned_in_a_bounded_window_and_restored() {
        let text = "Done: <EMAIL_1_tstnce> is on the order; the courier will call +1 415 555 2671 tomorrow before noon.";
        let events: Vec<Value> = text
            .as_bytes()
            .chunks(4)
            .map(|c| chunk(json!({"content": std::str::from_utf8(c).unwrap()}), None))
            .chain([chunk(json!({}), Some("stop"))])
            .collect();
        let mut s = scanning_and_restoring().into_stream();
        let out = relay(&mut s, &events);
        let shown = content(&out);
        assert!(
            shown.starts_with("Done: jane@x.io is on the order; the courier will call [PHONE:"),
            "{shown}"
        );
        assert!(shown.ends_with("] tomorrow before noon."), "{shown}");
        assert_eq!(s.counts()[&(Entity::Phone, PiiAction::Hash)], 1);
        // The first text shows long before the end: the window is bounded.
        let first = out
            .iter()
            .position(|e| {
                e["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|c| !c.is_empty())
            })
            .unwrap();
        assert!(first < 12, "first text in event {first}");
    }

    #[test]
    fn every_text_of_a_whole_answer_is_scanned_and_restored() {
        let body = json!({"choices": [{"index": 0,
            "logprobs": {"content": [{"token": "bob", "logprob": -0.1, "top_logprobs": [{"token": "bob", "logprob": -0.1}]}]},
            "message": {"role": "assistant", "content": "ok",
                "refusal": "I won't mail bob@corp.example or <EMAIL_1_tstnce>",
                "reasoning_content": "user is <PERSON_1_tstnce>, cc bob@corp.example",
                "audio": {"id": "a1", "data": "UklGRg==", "transcript": "call bob@corp.example"},
                "function_call": {"name": "mail", "arguments": "{\"to\":\"<EMAIL_1_tstnce>\",\"cc\":\"bob@corp.example\"}"}}}]});
        let mut answer = scanning_and_restoring();
        let out: Value =
            serde_json::from_slice(&answer.body(body.to_string().as_bytes()).unwrap()).unwrap();
        let m = &out["choices"][0]["message"];
        assert_eq!(m["refusal"], "I won't mail [EMAIL] or jane@x.io");
        assert_eq!(
            m["reasoning_content"],
            "user is Zoë \"Z\" Ortiz, cc [EMAIL]"
        );
        assert_eq!(m["audio"]["transcript"], "call [EMAIL]");
        assert_eq!(
            m["audio"]["data"], "",
            "audio whose transcript had a finding"
        );
        let args: Value =
            serde_json::from_str(m["function_call"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"to": "jane@x.io", "cc": "[EMAIL]"}));
        assert!(out["choices"][0]["logprobs"].is_null(), "{out}");
        assert!(!out.to_string().contains("bob@corp"), "{out}");

        // Without a finding, log-probabilities and audio stay.
        let clean = json!({"choices": [{"index": 0, "logprobs": {"content": []},
            "message": {"role": "assistant", "content": "Hi <EMAIL_1_tstnce>",
                "audio": {"id": "a1", "data": "UklGRg==", "transcript": "hello"}}}]});
        let out: Value = serde_json::from_slice(
            &scanning_and_restoring()
                .body(clean.to_string().as_bytes())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(out["choices"][0]["logprobs"], json!({"content": []}));
        assert_eq!(out["choices"][0]["message"]["audio"]["data"], "UklGRg==");
        assert_eq!(out["choices"][0]["message"]["content"], "Hi jane@x.io");
    }

    #[test]
    fn every_text_of_a_stream_is_scanned_and_restored() {
        let mut s = scanning_and_restoring().into_stream();
        let events = [
            json!({"choices": [{"index": 0, "delta": {"refusal": "no mail to bob@co"},
                "logprobs": {"content": [{"token": "bob", "logprob": -0.1}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"refusal": "rp.example, <EMAIL_1_tst",
                "reasoning_content": "it is <PERSON_1_tstnce>",
                "audio": {"data": "UklGRg==", "transcript": "bob@corp.example"}}}]}),
            json!({"choices": [{"index": 0, "delta": {"refusal": "nce> ok",
                "function_call": {"arguments": "{\"to\":\"<EMAIL_1_tstnce>\"}"}},
                "finish_reason": "stop"}]}),
        ];
        let out = relay(&mut s, &events);
        let text = |key: &str| -> String {
            out.iter()
                .filter_map(|e| e["choices"][0]["delta"][key].as_str())
                .collect()
        };
        assert_eq!(text("refusal"), "no mail to [EMAIL], jane@x.io ok");
        assert_eq!(text("reasoning_content"), "it is Zoë \"Z\" Ortiz");
        let transcript: String = out
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["audio"]["transcript"].as_str())
            .collect();
        assert_eq!(transcript, "[EMAIL]");
        let args: String = out
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["function_call"]["arguments"].as_str())
            .collect();
        assert_eq!(args, "{\"to\":\"jane@x.io\"}");
        let all = serde_json::to_string(&out).unwrap();
        assert!(!all.contains("bob") && !all.contains("UklGRg"), "{all}");
    }
}
