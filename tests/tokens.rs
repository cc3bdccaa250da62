//! Token counts against reference counts from OpenAI's Python `tiktoken` with the
//! cookbook's chat and tool accounting (tests/fixtures/tokens/generate.py).

use std::path::Path;

use serde_json::{Value, json};
use warden::openai::{ApiRequest, Endpoint};
use warden::tokens::{Encoding, prompt_tokens};

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/tokens/reference.json")).unwrap()
}

fn chat(messages: &Value, tools: Option<&Value>) -> ApiRequest {
    let mut body = json!({"model": "m", "messages": messages});
    if let Some(tools) = tools {
        body["tools"] = tools.clone();
    }
    ApiRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes()).unwrap()
}

#[test]
fn counts_match_python_tiktoken() {
    let reference = reference();
    let encodings = reference["encodings"].as_object().unwrap();
    assert_eq!(encodings.len(), 2);
    let mut checked = 0;
    for (name, cases) in encodings {
        let enc = Encoding::for_model(Some(name), "", Path::new(".")).unwrap();
        for case in cases["texts"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            assert_eq!(
                enc.count(text),
                case["tokens"].as_u64().unwrap(),
                "{name}: {text:?}"
            );
            checked += 1;
        }
        for case in cases["chats"].as_array().unwrap() {
            let request = chat(&case["messages"], None);
            assert_eq!(
                prompt_tokens(&enc, &request),
                case["tokens"].as_u64().unwrap(),
                "{name}: {}",
                case["messages"]
            );
            checked += 1;
        }
        for case in cases["chats_with_tools"].as_array().unwrap() {
            let request = chat(&case["messages"], Some(&case["tools"]));
            assert_eq!(
                prompt_tokens(&enc, &request),
                case["tokens"].as_u64().unwrap(),
                "{name}: tools with {}",
                case["messages"]
            );
            checked += 1;
        }
    }
    assert!(checked >= 38, "only {checked} reference cases");
}

#[test]
fn a_hugging_face_tokenizer_json_counts_for_self_hosted_models() {
    let enc = Encoding::for_model(
        Some("tests/fixtures/tokens/wordlevel-tokenizer.json"),
        "llama-3.1-8b-instruct",
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
    .unwrap();
    assert_eq!(enc.name(), "tokenizer.json");
    // Whitespace pre-tokenizer: "Is", "the", "Alpine", "backpack", "in", "stock", "?"
    assert_eq!(enc.count("Is the Alpine backpack in stock?"), 7);
    let request = chat(&json!([{"role": "user", "content": "in stock?"}]), None);
    // 3 framing + "user" (1, unknown word) + 3 content + 3 priming
    assert_eq!(prompt_tokens(&enc, &request), 10);
}
