//! The answer's usage. [`Watch`] reads the provider's usage (whole answers and stream
//! events) and, while none has come, keeps a stream's text so Warden can count it.
//! [`Hide`] serves streams for which Warden asked the provider for usage the client did
//! not request: the usage-only chunk is taken out (its numbers kept for accounting) and
//! the `usage` field the provider adds to every other chunk is removed, so the client sees
//! exactly the stream it asked for; `[DONE]` and error events pass. The common case — a
//! compact `"usage":null` — is cut out of the text, leaving every other byte (numbers in
//! logprobs included) exactly as the provider sent it.

use std::borrow::Cow;

use serde_json::Value;

use super::{AnswerFilter, Event, Events, WholeAnswer};
use crate::openai::usage::Usage;
use crate::proxy::context::RequestCtx;

/// Reads the provider's usage.
pub struct Watch;

impl AnswerFilter for Watch {
    fn rewrites(&self) -> bool {
        false
    }

    fn body(&mut self, answer: &mut WholeAnswer, ctx: &mut RequestCtx) {
        crate::proxy::accounting::from_body(ctx, answer.bytes());
    }

    fn event(&mut self, event: Event, ctx: &mut RequestCtx) -> Events {
        if let Some(usage) = Usage::from_event(&event.data) {
            ctx.answered.usage = Some(usage);
        } else if ctx.answered.usage.is_none() {
            ctx.answered.stream_text.push(event.data.clone());
        }
        smallvec::smallvec![event]
    }
}

/// Removes usage the client did not ask for from a stream.
pub struct Hide;

impl AnswerFilter for Hide {
    fn rewrites(&self) -> bool {
        true
    }

    fn body(&mut self, _answer: &mut WholeAnswer, _ctx: &mut RequestCtx) {}

    fn event(&mut self, mut event: Event, ctx: &mut RequestCtx) -> Events {
        match visible(&event.data, &mut ctx.answered.usage) {
            None => Events::new(),
            Some(Cow::Borrowed(_)) => smallvec::smallvec![event],
            Some(Cow::Owned(shown)) => {
                event.data = shown;
                smallvec::smallvec![event]
            }
        }
    }
}

/// The event's data as the client should see it, or `None` for the usage-only chunk the
/// client did not ask for; usage found on the way is stored.
pub fn visible<'a>(data: &'a str, usage: &mut Option<Usage>) -> Option<Cow<'a, str>> {
    if let Some(cut) = without_null_usage(data) {
        return Some(Cow::Owned(cut));
    }
    if !data.contains("\"usage\"") {
        return Some(Cow::Borrowed(data));
    }
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(data) else {
        return Some(Cow::Borrowed(data));
    };
    let only_usage = obj
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(|c| c.is_empty());
    match obj.remove("usage") {
        Some(u) if !u.is_null() && only_usage => {
            *usage = Usage::from_value(&u);
            return None; // the client did not ask for this chunk
        }
        Some(u) if !u.is_null() => *usage = Usage::from_value(&u),
        _ => {}
    }
    Some(Cow::Owned(Value::Object(obj).to_string()))
}

/// The event without its compact top-level `"usage":null` member, when it has one.
fn without_null_usage(data: &str) -> Option<String> {
    const MEMBER: &str = "\"usage\":null";
    let (before, after) = data.split_once(MEMBER)?;
    Some(match (before.strip_suffix(','), after.strip_prefix(',')) {
        (Some(before), _) => format!("{before}{after}"),
        (None, Some(after)) => format!("{before}{after}"),
        (None, None) => format!("{before}{after}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(events: &[&str], usage: &mut Option<Usage>) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| visible(e, usage).map(Cow::into_owned))
            .collect()
    }

    #[test]
    fn removes_usage_chunk_and_null_fields_keeping_the_rest() {
        let mut usage = None;
        let out = relay(
            &[
                "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}",
                "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}",
            ],
            &mut usage,
        );
        assert_eq!(
            out,
            ["{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}"]
        );
        assert_eq!(usage.unwrap().prompt_tokens, 3);
    }

    #[test]
    fn keeps_provider_bytes_and_handles_other_spellings() {
        let mut usage = None;
        let out = relay(
            &[
                "{\"usage\":null,\"choices\":[{\"logprobs\":{\"content\":[{\"logprob\":-1.0e-5}]}}]}",
                "{\"choices\":[{\"delta\":{}}], \"usage\": null}",
                "{\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":7}}",
            ],
            &mut usage,
        );
        assert_eq!(
            out[0],
            "{\"choices\":[{\"logprobs\":{\"content\":[{\"logprob\":-1.0e-5}]}}]}"
        );
        assert_eq!(out.len(), 2);
        assert!(!out.concat().contains("usage"), "{out:?}");
        assert_eq!(usage.unwrap().completion_tokens, 7);
    }
}
