//! Streams for which Warden asked the provider for usage that the client did not request:
//! the usage-only chunk is taken out (its numbers kept for accounting) and the `usage`
//! field the provider adds to every other chunk is removed, so the client sees exactly
//! the stream it asked for. Events are re-emitted whole; `[DONE]` and error events pass.
//! The common case — a compact `"usage":null` — is cut out of the text, leaving every
//! other byte (numbers in logprobs included) exactly as the provider sent it.

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use crate::openai::sse::{self, Parser};
use crate::openai::usage::Usage;

#[derive(Default)]
pub struct UsageFilter {
    parser: Parser,
    events: Vec<sse::Event>,
}

impl UsageFilter {
    /// The bytes to forward for one upstream chunk (possibly empty); usage found is stored.
    pub fn push(&mut self, chunk: &[u8], usage: &mut Option<Usage>) -> Bytes {
        if self.parser.feed(chunk, &mut self.events).is_err() {
            // An event beyond the parser's bound: forward the raw bytes rather than stall.
            return Bytes::copy_from_slice(chunk);
        }
        let mut out = BytesMut::new();
        for event in self.events.drain(..) {
            if event.is_done() {
                out.extend_from_slice(&sse::done_event());
                continue;
            }
            if let Some(cut) = without_null_usage(&event.data) {
                out.extend_from_slice(&sse::data_event(cut.as_bytes()));
                continue;
            }
            if !event.data.contains("\"usage\"") {
                out.extend_from_slice(&sse::data_event(event.data.as_bytes()));
                continue;
            }
            match serde_json::from_str::<Value>(&event.data) {
                Ok(Value::Object(mut obj)) => {
                    let only_usage = obj
                        .get("choices")
                        .and_then(Value::as_array)
                        .is_some_and(|c| c.is_empty());
                    match obj.remove("usage") {
                        Some(u) if !u.is_null() && only_usage => {
                            *usage = Usage::from_value(&u);
                            continue; // the client did not ask for this chunk
                        }
                        Some(u) if !u.is_null() => *usage = Usage::from_value(&u),
                        _ => {}
                    }
                    out.extend_from_slice(&sse::data_event(
                        &serde_json::to_vec(&obj).unwrap_or_default(),
                    ));
                }
                _ => out.extend_from_slice(&sse::data_event(event.data.as_bytes())),
            }
        }
        out.freeze()
    }
}

/// The event without its compact top-level `"usage":null` member, when it has one.
fn without_null_usage(data: &str) -> Option<String> {
    const MEMBER: &str = "\"usage\":null";
    let at = data.find(MEMBER)?;
    let end = at + MEMBER.len();
    if data[..at].ends_with(',') {
        Some(format!("{}{}", &data[..at - 1], &data[end..]))
    } else if data[end..].starts_with(',') {
        Some(format!("{}{}", &data[..at], &data[end + 1..]))
    } else {
        Some(format!("{}{}", &data[..at], &data[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_usage_chunk_and_null_fields_keeping_the_rest() {
        let stream = concat!(
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
            "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
            "data: [DONE]\n\n"
        );
        let mut f = UsageFilter::default();
        let mut usage = None;
        let mut out = Vec::new();
        for piece in stream.as_bytes().chunks(7) {
            out.extend_from_slice(&f.push(piece, &mut usage));
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n"
        );
        assert_eq!(usage.unwrap().prompt_tokens, 3);
    }

    #[test]
    fn keeps_provider_bytes_and_handles_other_spellings() {
        let stream = concat!(
            "data: {\"usage\":null,\"choices\":[{\"logprobs\":{\"content\":[{\"logprob\":-1.0e-5}]}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{}}], \"usage\": null}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":7}}\n\n",
        );
        let mut f = UsageFilter::default();
        let mut usage = None;
        let out = f.push(stream.as_bytes(), &mut usage);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(
            text.starts_with(
                "data: {\"choices\":[{\"logprobs\":{\"content\":[{\"logprob\":-1.0e-5}]}}]}\n\n"
            ),
            "{text}"
        );
        assert!(!text.contains("usage"), "{text}");
        assert_eq!(usage.unwrap().completion_tokens, 7);
    }
}
