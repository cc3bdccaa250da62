//! Semantic tool routing end to end: a chat request whose rule has `settings.tools.routing:
//! {mode: auto}` reaches the provider with the registry tools that match the latest user
//! message — only those the principal may use, at most `top_k` — and the model's tool call
//! then runs through Warden against `warden mock-commerce`. Asserted on what the provider
//! received, what the client got and what the audit log holds.

mod common;

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SHOPPER_TOOLS: [&str; 6] = [
    "search_catalog",
    "get_product",
    "check_inventory",
    "get_price",
    "get_size_guide",
    "find_store",
];

struct Setup {
    w: Warden,
    provider: MockProvider,
    _shop: MockCommerce,
    archive: std::path::PathBuf,
    spool: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let provider = MockProvider::start(&[]);
    let shop = MockCommerce::start();
    let dir = tempfile::tempdir().unwrap();
    let allow = SHOPPER_TOOLS.join(", ");
    let policies = policies_with_registry(
        dir.path(),
        &format!(
            "apiVersion: warden/v1\nkind: Policy\nrules:\n  \
             - name: shopper-chat\n    effect: allow\n    match:\n      roles: [shopper]\n      endpoints: [chat_completions, responses]\n    \
             settings:\n      tools:\n        allow: [{allow}]\n        routing: {{mode: auto, top_k: 3}}\n  \
             - name: shopper-tools\n    effect: allow\n    match:\n      roles: [shopper]\n      endpoints: [tools_invoke]\n    \
             settings:\n      tools:\n        allow: [{allow}]\n"
        ),
    );
    let key = hex::encode(Sha256::digest(b"key-shopper"));
    let selection = tools_selection();
    let url = shop.base_url();
    let archive = dir.path().join("archive");
    let spool = dir.path().join("spool");
    let config = format!(
        "providers:\n  up:\n    kind: vllm\n    base_url: {}\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n\
         auth:\n  api_keys:\n    - id: shopper\n      sha256: {key}\n      tenant: acme\n      roles: [shopper]\n\
         policy:\n  dir: {}\n  watch: false\n\
         tools:\n{selection}  \
         backends:\n    catalog: {{base_url: \"{url}\"}}\n    inventory: {{base_url: \"{url}\"}}\n    pricing: {{base_url: \"{url}\"}}\n    \
         orders: {{base_url: \"{url}\"}}\n    services: {{base_url: \"{url}\"}}\n\
         audit:\n  chain_id: routing\n  spool_dir: {}\n  segment_max_age_seconds: 1\n  sink:\n    kind: file\n    dir: {}\n",
        provider.base_url(),
        policies.display(),
        spool.display(),
        archive.display(),
    );
    Setup {
        w: Warden::start(&config),
        provider,
        _shop: shop,
        archive,
        spool,
        _dir: dir,
    }
}

async fn post(w: &Warden, path: &str, body: &Value) -> Reply {
    send(
        "POST",
        &w.url(path),
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer key-shopper"),
        ],
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

fn offered_names(request: &Value) -> Vec<String> {
    request["body"]["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_running_shoes_question_is_offered_the_right_tools_and_answered_through_them() {
    let s = setup();
    let question = "Do these running shoes come in wide width and size 10 for under $120?";
    let chat = json!({"model": "gpt-4o-mini", "tool_choice": "required",
        "messages": [{"role": "user", "content": question}]});
    let answer = post(&s.w, "/v1/chat/completions", &chat).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    // The provider was offered registry tools the shopper may use, the best first.
    let seen = s.provider.last_request().await;
    let offered = offered_names(&seen);
    assert!(!offered.is_empty() && offered.len() <= 3, "{offered:?}");
    assert_eq!(offered[0], "search_catalog", "{offered:?}");
    assert!(
        offered.iter().all(|t| SHOPPER_TOOLS.contains(&t.as_str())),
        "{offered:?}"
    );
    let schema = &seen["body"]["tools"][0]["function"]["parameters"];
    assert_eq!(schema["properties"]["width"]["enum"][2], "wide");

    // The model's call runs through Warden and finds shoes that really fit the question.
    let call = answer.json()["choices"][0]["message"]["tool_calls"][0]["function"].clone();
    assert_eq!(call["name"], "search_catalog");
    let ran = post(
        &s.w,
        "/v1/tools/search_catalog/invoke",
        &json!({"arguments": call["arguments"]}),
    )
    .await;
    assert_eq!(ran.status, 200, "{}", ran.text());
    let results = ran.json()["result"]["results"].as_array().unwrap().clone();
    assert!(!results.is_empty(), "{}", ran.text());
    for product in &results {
        assert!(product["price"].as_f64().unwrap() <= 120.0);
        let stock = post(
            &s.w,
            "/v1/tools/check_inventory/invoke",
            &json!({"arguments": {"product_id": product["id"], "size": "10", "width": "wide"}}),
        )
        .await;
        let variants = stock.json()["result"]["inventory"]["variants"].clone();
        assert!(
            variants
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["inStock"] == true),
            "{product}: {variants}"
        );
    }

    // Nothing is offered for a message no tool serves; a client's own tool stays.
    let chat = json!({"model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "write me a haiku about autumn leaves"}]});
    assert_eq!(post(&s.w, "/v1/chat/completions", &chat).await.status, 200);
    assert!(offered_names(&s.provider.last_request().await).is_empty());
    let own = json!({"model": "gpt-4o-mini",
        "tools": [{"type": "function", "function": {"name": "get_price", "parameters": {"type": "object"}}}],
        "messages": [{"role": "user", "content": "is size 10 wide in stock for P1021"}]});
    assert_eq!(post(&s.w, "/v1/chat/completions", &own).await.status, 200);
    let offered = offered_names(&s.provider.last_request().await);
    assert_eq!(offered[0], "get_price");
    assert!(
        offered.contains(&"check_inventory".to_string()),
        "{offered:?}"
    );
    assert_eq!(offered.iter().filter(|t| *t == "get_price").count(), 1);

    // The record says what was offered and how well it matched, never the message.
    let records = records_for(&s.archive, &s.spool, "chat_completions", 3).await;
    let first = &records
        .iter()
        .find(|r| r["endpoint"] == "chat_completions")
        .unwrap();
    let selected = first["tool_selection"].as_array().unwrap();
    assert_eq!(selected[0]["name"], "search_catalog");
    assert_eq!(selected[0]["added"], true);
    assert!(selected[0]["score"].as_f64().unwrap() > 0.3);
    assert!(
        first["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "search_catalog")
    );
    assert!(!(all_text(&s.archive) + &all_text(&s.spool)).contains("running shoes come in"));
}

/// The Responses API is offered the same registry tools, as its own flat function tools,
/// and the model's call names one of them.
#[tokio::test]
async fn a_responses_request_is_offered_registry_tools_in_its_shape() {
    let s = setup();
    let body = json!({"model": "gpt-4o-mini", "tool_choice": "required",
        "input": [{"role": "user", "content": [{"type": "input_text",
            "text": "Do these running shoes come in wide width and size 10 for under $120?"}]}]});
    let answer = post(&s.w, "/v1/responses", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = s.provider.last_request().await;
    assert_eq!(seen["path"], "/v1/responses");
    let tools = seen["body"]["tools"].as_array().unwrap().clone();
    assert!(!tools.is_empty() && tools.len() <= 3, "{tools:?}");
    assert_eq!(tools[0]["type"], "function");
    assert_eq!(tools[0]["name"], "search_catalog");
    assert_eq!(
        tools[0]["parameters"]["properties"]["width"]["enum"][2],
        "wide"
    );
    let call = answer.json()["output"][0].clone();
    assert_eq!(call["type"], "function_call", "{call}");
    assert_eq!(call["name"], "search_catalog");
}
