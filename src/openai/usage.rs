//! Token usage as providers report it: the `usage` object of a response, or of the final
//! chunk of a stream.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Prompt tokens served from the provider's cache (`prompt_tokens_details.cached_tokens`).
    pub cached_tokens: u64,
}

impl Usage {
    /// Reads a `usage` object; `None` when absent or null.
    pub fn from_value(usage: &Value) -> Option<Usage> {
        let obj = usage.as_object()?;
        let n = |k: &str| obj.get(k).and_then(Value::as_u64).unwrap_or(0);
        Some(Usage {
            prompt_tokens: n("prompt_tokens"),
            completion_tokens: n("completion_tokens"),
            cached_tokens: usage
                .pointer("/prompt_tokens_details/cached_tokens")
                .and_then(Value::as_u64)
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
        }
        let envelope: Envelope = serde_json::from_slice(body).ok()?;
        Usage::from_value(envelope.usage.as_ref()?)
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
                cached_tokens: 4
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
}
