//! The OpenAI API surface through a real Warden process: endpoints, streaming, request
//! ids, and every locally generated error in OpenAI's shape.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn chat(content: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]})
}

fn assert_openai_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text());
    let v = reply.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(v["error"]["type"].is_string(), "{v}");
    assert!(v["error"].as_object().unwrap().contains_key("param"), "{v}");
    assert!(
        reply.header("x-request-id").is_some(),
        "every response carries x-request-id"
    );
}

#[tokio::test]
async fn chat_completion_round_trip_with_request_ids() {
    let w = Warden::start(&mock_config(""));
    let r = post_json(&w.url("/v1/chat/completions"), &chat("Hello there")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "You said: Hello there"
    );
    assert_eq!(
        v["usage"]["total_tokens"],
        v["usage"]["prompt_tokens"].as_u64().unwrap() + o200k_tokens("You said: Hello there")
    );
    let generated = r.header("x-request-id").unwrap().to_string();
    assert_eq!(generated.len(), 36);

    let mine = send(
        "POST",
        &w.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("x-request-id", "client-req-42"),
        ],
        serde_json::to_vec(&chat("x")).unwrap(),
    )
    .await;
    assert_eq!(mine.header("x-request-id"), Some("client-req-42"));
}

#[tokio::test]
async fn completions_and_embeddings() {
    let w = Warden::start(&mock_config(""));
    let r = post_json(
        &w.url("/v1/completions"),
        &json!({"model": "gpt-4o-mini", "prompt": "Say hi"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["text"], "You said: Say hi");

    let body = json!({"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 8});
    let r = post_json(&w.url("/v1/embeddings"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["embedding"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn models_list_and_get() {
    let w = Warden::start(&mock_config(""));
    let v = get(&w.url("/v1/models")).await.json();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["gpt-4o-mini", "text-embedding-3-small"]);
    let one = get(&w.url("/v1/models/gpt-4o-mini")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["object"], "model");
    assert_openai_error(
        &get(&w.url("/v1/models/nope")).await,
        404,
        "model_not_found",
    );
}

#[tokio::test]
async fn streams_end_with_done_and_optional_usage() {
    let w = Warden::start(&mock_config(""));
    let mut body = chat("one two three");
    body["stream"] = json!(true);
    let (status, chunks) = post_stream(&w.url("/v1/chat/completions"), &body).await;
    assert_eq!(status, 200);
    let data = stream_events(&chunks);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let text = stream_text(&data[..data.len() - 1]);
    assert_eq!(text, "You said: one two three");
    assert!(
        !data.iter().any(|d| d.contains("\"usage\"")),
        "no usage chunk and no usage fields unless asked: {data:?}"
    );

    body["stream_options"] = json!({"include_usage": true});
    let (_, chunks) = post_stream(&w.url("/v1/chat/completions"), &body).await;
    let data = stream_events(&chunks);
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn stream_chunks_are_relayed_as_they_arrive() {
    // 10 chunks per second: the whole answer takes about a second, the first chunk must
    // reach the client long before the last.
    let mock = MockProvider::start(&["--tokens-per-sec", "10"]);
    let w = Warden::start(&format!(
        "providers:\n  up:\n    kind: vllm\n    base_url: {}\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n",
        mock.base_url()
    ));
    let mut body = chat("a b c d e f g h");
    body["stream"] = json!(true);
    let (status, chunks) = post_stream(&w.url("/v1/chat/completions"), &body).await;
    assert_eq!(status, 200);
    assert!(
        chunks.len() >= 5,
        "expected several separate chunks, got {}",
        chunks.len()
    );
    let first = chunks.first().unwrap().0;
    let last = chunks.last().unwrap().0;
    assert!(last >= Duration::from_millis(900), "stream took {last:?}");
    assert!(
        last - first >= Duration::from_millis(700),
        "first chunk at {first:?}, last at {last:?}: buffered"
    );
}

#[tokio::test]
async fn every_local_error_is_openai_shaped() {
    let w = Warden::start(&mock_config("server:\n  max_body_bytes: 1024\n"));
    let url = w.url("/v1/chat/completions");
    let json_ct = [("content-type", "application/json")];

    assert_openai_error(
        &send("POST", &url, &json_ct, "{\"model\": ").await,
        400,
        "invalid_json",
    );
    let missing = send("POST", &url, &json_ct, r#"{"model":"gpt-4o-mini"}"#).await;
    assert_openai_error(&missing, 400, "invalid_request");
    assert_eq!(missing.json()["error"]["param"], "messages");
    let wrong_type = send(
        "POST",
        &url,
        &json_ct,
        r#"{"model":"gpt-4o-mini","messages":"hi"}"#,
    )
    .await;
    assert_openai_error(&wrong_type, 400, "invalid_request");
    assert_openai_error(
        &post_json(
            &url,
            &json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await,
        404,
        "model_not_found",
    );
    assert_openai_error(
        &send("POST", &w.url("/v1/files"), &json_ct, "{}").await,
        404,
        "unknown_url",
    );
    let wrong_method = get(&url).await;
    assert_openai_error(&wrong_method, 405, "method_not_allowed");
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    assert_openai_error(
        &send("POST", &url, &[("content-type", "text/plain")], "{}").await,
        415,
        "unsupported_media_type",
    );
    let big = serde_json::to_vec(&chat(&"x".repeat(2000))).unwrap();
    assert_openai_error(
        &send("POST", &url, &json_ct, big).await,
        413,
        "request_too_large",
    );
}

#[tokio::test]
async fn oversized_chunked_body_is_refused_while_reading() {
    let w = Warden::start(&mock_config("server:\n  max_body_bytes: 1024\n"));
    let mut req = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        req.extend_from_slice(format!("{:x}\r\n{}\r\n", 600, "a".repeat(600)).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_exchange(w.addr, &req);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("request_too_large"), "{answer}");
}

#[tokio::test]
async fn one_mebibyte_prompt_reaches_the_provider_intact() {
    let mock = MockProvider::start(&[]);
    let w = Warden::start(&format!(
        "providers:\n  up:\n    kind: vllm\n    base_url: {}\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n",
        mock.base_url()
    ));
    let prompt = "lorem ipsum dolor sit amet ".repeat(40_000); // ~1.08 MB
    let body = serde_json::to_vec(&chat(&prompt)).unwrap();
    assert!(body.len() > 1024 * 1024);
    let r = send(
        "POST",
        &w.url("/v1/chat/completions"),
        &[("content-type", "application/json")],
        body.clone(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = mock.last_request().await;
    assert_eq!(seen["body_bytes"].as_u64().unwrap() as usize, body.len());
    assert_eq!(
        seen["body"]["messages"][0]["content"].as_str().unwrap(),
        prompt
    );
}

#[tokio::test]
async fn api_keys_gate_every_model_call() {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(Sha256::digest(b"sk-warden-test-key"));
    let w = Warden::start(&mock_config(&format!(
        "auth:\n  api_keys:\n    - id: storefront\n      sha256: {hash}\n      tenant: acme\n"
    )));
    let url = w.url("/v1/chat/completions");
    let body = serde_json::to_vec(&chat("hi")).unwrap();
    let none = send(
        "POST",
        &url,
        &[("content-type", "application/json")],
        body.clone(),
    )
    .await;
    assert_openai_error(&none, 401, "invalid_api_key");
    let bad = send(
        "POST",
        &url,
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer sk-wrong-secret"),
        ],
        body.clone(),
    )
    .await;
    assert_openai_error(&bad, 401, "invalid_api_key");
    assert!(
        bad.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    assert!(!bad.text().contains("sk-wrong-secret"));
    let good = send(
        "POST",
        &url,
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer sk-warden-test-key"),
        ],
        body,
    )
    .await;
    assert_eq!(good.status, 200, "{}", good.text());
    assert!(!w.logs().contains("sk-warden-test-key") && !w.logs().contains("sk-wrong-secret"));
}

#[tokio::test]
async fn expect_continue_is_answered_before_the_body() {
    let w = Warden::start(&mock_config(""));
    let body = serde_json::to_vec(&chat(&"word ".repeat(400))).unwrap();
    let mut s = std::net::TcpStream::connect(w.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    use std::io::{BufReader, Write};
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let interim = read_head(&mut reader);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    s.write_all(&body).unwrap();
    let head = read_head(&mut reader);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}
