//! Token usage as providers report it: the `usage` object of a response, or of the final
//! chunk of a stream — in chat's spelling (`prompt_tokens`, `completion_tokens`) or the
//! Responses API's (`input_tokens`, `output_tokens`, whose stream carries it in the
//! `response` of its `response.completed` event).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Prompt tokens served from the provider's cache (`prompt_tokens_details.cached_tokens`).
    pub cached_tokens: u64,
    /// Completion tokens the model spent reasoning (`completion_tokens_details` /
    /// `output_tokens_details.reasoning_tokens`), already part of `completion_tokens`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reasoning_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// Reads a `usage` object; `None` when absent or null.
    pub fn from_value(usage: &Value) -> Option<Usage> {
        let obj = usage.as_object()?;
        let n = |k: &str| obj.get(k).and_then(Value::as_u64);
        let at = |p: &str| usage.pointer(p).and_then(Value::as_u64);
        Some(Usage {
            prompt_tokens: n("prompt_tokens").or(n("input_tokens")).unwrap_or(0),
            completion_tokens: n("completion_tokens").or(n("output_tokens")).unwrap_or(0),
            cached_tokens: at("/prompt_tokens_details/cached_tokens")
                .or(at("/input_tokens_details/cached_tokens"))
                .unwrap_or(0),
            reasoning_tokens: at("/completion_tokens_details/reasoning_tokens")
                .or(at("/output_tokens_details/reasoning_tokens"))
                .unwrap_or(0),
        })
    }

    /// The usage of a whole JSON response body. Other fields are skipped without being
    /// built, so large answers (embeddings) cost one scan.
    pub fn from_body(body: &[u8]) -> Option<Usage> {
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(default)]
            usage: Option<Value>,
            /// A Responses stream's final event holds the response.
            #[serde(default)]
            response: Option<Box<Envelope>>,
        }
        let envelope: Envelope = serde_json::from_slice(body).ok()?;
        let usage = envelope
            .usage
            .or_else(|| envelope.response.and_then(|r| r.usage))?;
        Usage::from_value(&usage)
    }

    /// The usage carried by one stream event's data, if any (cheap check first).
    pub fn from_event(data: &str) -> Option<Usage> {
        if !data.contains("\"usage\":{") {
            return None;
        }
        Usage::from_body(data.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_usage_with_cached_tokens() {
        let body = br#"{"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4}}}"#;
        assert_eq!(
            Usage::from_body(body),
            Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                cached_tokens: 4,
                reasoning_tokens: 0,
            })
        );
        assert_eq!(Usage::from_event(r#"{"choices":[],"usage":null}"#), None);
        assert_eq!(
            Usage::from_event(
                r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#
            )
            .unwrap()
            .completion_tokens,
            2
        );
    }

    #[test]
    fn reads_the_responses_api_spelling() {
        let usage = r#"{"input_tokens":12,"input_tokens_details":{"cached_tokens":8},
            "output_tokens":30,"output_tokens_details":{"reasoning_tokens":20},"total_tokens":42}"#;
        let want = Usage {
            prompt_tokens: 12,
            completion_tokens: 30,
            cached_tokens: 8,
            reasoning_tokens: 20,
        };
        let body = format!(r#"{{"object":"response","output":[],"usage":{usage}}}"#);
        assert_eq!(Usage::from_body(body.as_bytes()), Some(want.clone()));
        let completed = format!(
            r#"{{"type":"response.completed","sequence_number":9,"response":{{"id":"resp_1","usage":{usage}}}}}"#
        );
        assert_eq!(Usage::from_event(&completed), Some(want));
        assert_eq!(
            Usage::from_event(r#"{"type":"response.created","response":{"usage":null}}"#),
            None
        );
    }
}
