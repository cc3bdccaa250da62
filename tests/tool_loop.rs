//! `settings.tools.execution: gateway` end to end: Warden runs the model's tool calls
//! against `warden mock-commerce` and calls the model again, stream and non-stream.
//! Asserted on what Warden did — what the provider and the backends received, what the
//! client got, what the audit log holds — not on the mock model's reasoning.

mod common;

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const POLICY: &str = "apiVersion: warden/v1\nkind: Policy\nrules:\n  \
    - name: agent-chat\n    effect: allow\n    match:\n      roles: [agent, lead]\n      endpoints: [chat_completions]\n    \
    settings:\n      tools:\n        allow: [search_catalog, check_inventory, get_price, get_size_guide, lookup_order, escalate_to_human, issue_refund]\n        \
    routing: {mode: auto, top_k: 3}\n        execution: gateway\n        max_steps: 4\n  \
    - name: terse-chat\n    effect: allow\n    match:\n      roles: [terse]\n      endpoints: [chat_completions]\n    \
    settings:\n      tools:\n        allow: [lookup_order]\n        execution: gateway\n        max_steps: 1\n  \
    - name: agent-tools\n    effect: allow\n    match:\n      roles: [agent, terse]\n      endpoints: [tools_invoke]\n    \
    settings:\n      tools:\n        allow: [search_catalog, check_inventory, get_price, get_size_guide, lookup_order, escalate_to_human, issue_refund]\n  \
    - name: lead-tools\n    effect: allow\n    match:\n      roles: [lead]\n      endpoints: [tools_invoke]\n    \
    settings:\n      tools:\n        allow: [lookup_order]\n";

/// API keys (`key-<id>`): id, roles.
const KEYS: [(&str, &str); 4] = [
    ("agent", "agent"),
    ("terse", "terse"),
    ("boss", "approver"),
    ("lead", "lead"),
];

struct Setup {
    w: Warden,
    provider: MockProvider,
    shop: MockCommerce,
    archive: std::path::PathBuf,
    spool: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Warden with the shipped registry; `services` is the escalation backend's line.
fn setup(services: Option<String>) -> Setup {
    setup_with(services, &[], "")
}

/// [`setup`] with arguments for the mock provider and more lines under `tools:`.
fn setup_with(services: Option<String>, provider_args: &[&str], tools_extra: &str) -> Setup {
    let provider = MockProvider::start(provider_args);
    let shop = MockCommerce::start();
    let dir = tempfile::tempdir().unwrap();
    let policies = policies_with_registry(dir.path(), POLICY);
    let keys: String = KEYS
        .iter()
        .map(|(k, roles)| {
            format!(
                "    - id: {k}\n      sha256: {}\n      tenant: acme\n      roles: [{roles}]\n",
                hex::encode(Sha256::digest(format!("key-{k}").as_bytes()))
            )
        })
        .collect();
    let url = shop.base_url();
    let services = services.unwrap_or_else(|| format!("{{base_url: \"{url}\"}}"));
    let archive = dir.path().join("archive");
    let spool = dir.path().join("spool");
    let config = format!(
        "providers:\n  up:\n    kind: vllm\n    base_url: {}\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n\
         auth:\n  api_keys:\n{keys}\
         policy:\n  dir: {}\n  watch: false\n\
         pii:\n  default_profile: strict\n  profiles:\n    strict:\n      default_action: pseudonymize\n\
         tools:\n{}{tools_extra}  approvals:\n    webhook_url: \"{url}/hooks/approvals\"\n  \
         backends:\n    catalog: {{base_url: \"{url}\"}}\n    inventory: {{base_url: \"{url}\"}}\n    pricing: {{base_url: \"{url}\"}}\n    \
         orders: {{base_url: \"{url}\"}}\n    services: {services}\n\
         audit:\n  chain_id: loop\n  spool_dir: {}\n  segment_max_age_seconds: 1\n  sink:\n    kind: file\n    dir: {}\n",
        provider.base_url(),
        policies.display(),
        tools_selection(),
        spool.display(),
        archive.display(),
    );
    Setup {
        w: Warden::start(&config),
        provider,
        shop,
        archive,
        spool,
        _dir: dir,
    }
}

async fn chat(w: &Warden, key: &str, id: &str, body: &Value) -> Reply {
    send(
        "POST",
        &w.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer key-{key}")),
            ("x-request-id", id),
        ],
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

/// A client-offered function tool with string properties (required).
fn tool(name: &str, props: &[&str]) -> Value {
    let properties: serde_json::Map<String, Value> = props
        .iter()
        .map(|p| (p.to_string(), json!({"type": "string"})))
        .collect();
    json!({"type": "function", "function": {"name": name,
        "parameters": {"type": "object", "properties": properties, "required": props}}})
}

/// The `tool` messages of the conversation the provider received last.
fn tool_messages(seen: &Value) -> Vec<Value> {
    seen["body"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| serde_json::from_str(m["content"].as_str().unwrap()).unwrap())
        .collect()
}

fn record<'a>(records: &'a [Value], id: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["request_id"] == id)
        .unwrap_or_else(|| panic!("no record {id}"))
}

#[tokio::test]
async fn the_running_shoes_question_is_answered_by_tools_warden_runs() {
    let s = setup(None);
    let question = "Do these running shoes come in wide width and size 10 for under $120?";
    let body = json!({"model": "gpt-4o-mini", "tool_choice": "required",
        "messages": [{"role": "user", "content": question}]});
    let answer = chat(&s.w, "agent", "shoes-1", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-request-id"), Some("shoes-1"));
    let message = answer.json()["choices"][0]["message"].clone();
    assert!(message.get("tool_calls").is_none(), "{message}");
    assert!(
        message["content"]
            .as_str()
            .unwrap()
            .starts_with("Tool result received:"),
        "{message}"
    );

    // The second model call got the model's call and the catalog's answer: shoes that
    // really are size 10, wide, under $120 and in stock.
    let seen = s.provider.last_request().await;
    let messages = seen["body"]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{seen}");
    let call = &messages[1]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "search_catalog");
    assert_eq!(messages[2]["tool_call_id"], call["id"]);
    // A forced choice is released after the first turn, or a model would call forever.
    assert_eq!(seen["body"]["tool_choice"], "auto");
    let results = tool_messages(&seen)[0]["results"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!results.is_empty(), "{seen}");
    for product in &results {
        assert!(product["price"].as_f64().unwrap() <= 120.0, "{product}");
        assert!(product["category"].as_str().unwrap().contains("shoes"));
    }
    let catalog_calls = s
        .shop
        .requests()
        .await
        .iter()
        .filter(|r| r["path"] == "/catalog/search")
        .count();
    assert_eq!(catalog_calls, 1);

    // Streamed: the client sees the final answer as a stream, none of the tool calls.
    let mut body = body.clone();
    body["stream"] = json!(true);
    let streamed = chat(&s.w, "agent", "shoes-2", &body).await;
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    let events = sse_data(&streamed.body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(
        events.iter().all(|e| !e.contains("tool_calls")),
        "{events:?}"
    );
    let text = stream_text(&events);
    assert!(text.starts_with("Tool result received:"), "{text}");
    assert_eq!(tool_messages(&s.provider.last_request().await).len(), 1);

    // Every model call and tool call is a request of its own, linked by its id.
    let records = records_for(&s.archive, &s.spool, "tools_invoke", 2).await;
    for id in ["shoes-1", "shoes-2"] {
        let client = record(&records, id);
        assert_eq!(client["status"], 200);
        assert!(client["usage"]["completion_tokens"].as_u64().unwrap() > 0);
        assert!(
            client["tool_calls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["name"] == "search_catalog"),
            "{client}"
        );
        let first = record(&records, &format!("{id}.1"));
        assert_eq!(first["endpoint"], "chat_completions");
        assert_eq!(first["status"], 200);
        assert!(first["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
        let ran = record(&records, &format!("{id}.1.1"));
        assert_eq!(ran["endpoint"], "tools_invoke");
        assert_eq!(ran["rule"], "agent-tools");
        assert_eq!(ran["tool_execution"]["name"], "search_catalog");
        assert_eq!(ran["tool_execution"]["outcome"], "ok");
    }
    assert!(!(all_text(&s.archive) + &all_text(&s.spool)).contains("running shoes come in"));
}

#[tokio::test]
async fn backends_get_real_values_the_model_never_sees_them_and_forbidden_calls_are_refused() {
    let s = setup(None);
    let shop: Value =
        serde_json::from_str(include_str!("../examples/commerce/catalog.json")).unwrap();
    let customer = &shop["customers"][0];
    let order = shop["orders"][0]["id"].as_str().unwrap().to_string();
    let mine = "jane.roe@example.org";
    let prompt = format!(
        "please escalate_to_human and lookup_order {order}: reach me at {mine}, I need help now"
    );
    let body = json!({"model": "gpt-4o-mini",
        "tools": [tool("escalate_to_human", &["summary"]), tool("lookup_order", &["order_id"])],
        "messages": [{"role": "user", "content": prompt}]});
    for (id, stream) in [("pii-1", false), ("pii-2", true)] {
        let mut body = body.clone();
        body["stream"] = json!(stream);
        let answer = chat(&s.w, "agent", id, &body).await;
        assert_eq!(answer.status, 200, "{}", answer.text());

        // Both calls of the turn ran; the backend got the real address, restored from
        // the placeholder the model used.
        let seen = s.provider.last_request().await;
        let calls = seen["body"]["messages"][1]["tool_calls"]
            .as_array()
            .unwrap();
        assert_eq!(calls.len(), 2, "{seen}");
        let results = tool_messages(&seen);
        assert_eq!(results.len(), 2);
        assert_eq!(results[1]["id"], order.as_str(), "{seen}");
        let escalated = s
            .shop
            .requests()
            .await
            .into_iter()
            .filter(|r| r["path"] == "/escalations")
            .collect::<Vec<_>>();
        assert!(
            escalated
                .iter()
                .any(|r| r["body"]["summary"].as_str().unwrap().contains(mine)),
            "{escalated:?}"
        );

        // The model saw neither the client's address nor the customer data the backend
        // returned.
        let text = seen.to_string();
        for secret in [
            mine,
            customer["email"].as_str().unwrap(),
            customer["phone"].as_str().unwrap(),
        ] {
            assert!(!text.contains(secret), "{secret} reached the model: {text}");
        }
    }
    // The same escalation again is the same write: Warden answered the repeat with the
    // stored result, so the backend saw it once.
    let escalations = |requests: Vec<Value>, text: &str| {
        requests
            .iter()
            .filter(|r| r["path"] == "/escalations")
            .filter(|r| r["body"]["summary"].as_str().unwrap().contains(text))
            .count()
    };
    assert_eq!(escalations(s.shop.requests().await, mine), 1);
    assert_eq!(s.shop.writes().await["escalate_to_human"], 1);

    // Two identical calls at once are one backend call; both get its result.
    let twice = json!({"model": "gpt-4o-mini",
        "tools": [tool("escalate_to_human", &["summary"])],
        "messages": [{"role": "user", "content": "escalate_to_human: parcel lost twice"}]});
    let (a, b) = tokio::join!(
        chat(&s.w, "agent", "twice-1", &twice),
        chat(&s.w, "agent", "twice-2", &twice)
    );
    assert_eq!(
        (a.status, b.status),
        (200, 200),
        "{} {}",
        a.text(),
        b.text()
    );
    assert_eq!(escalations(s.shop.requests().await, "parcel lost twice"), 1);
    assert_eq!(
        a.json()["choices"][0]["message"]["content"],
        b.json()["choices"][0]["message"]["content"]
    );

    // A registry tool the principal may not run is refused; the model reads why.
    let refund = json!({"model": "gpt-4o-mini",
        "tools": [tool("get_size_guide", &["product_id"])],
        "messages": [{"role": "user", "content": "get_size_guide for P1001"}]});
    let answer = chat(&s.w, "lead", "forbidden-1", &refund).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let refused = &tool_messages(&s.provider.last_request().await)[0];
    assert_eq!(refused["error"]["code"], "policy_denied", "{refused}");

    let records = records_for(&s.archive, &s.spool, "tools_invoke", 5).await;
    let lookup = record(&records, "pii-1.1.2");
    assert_eq!(lookup["tool_execution"]["name"], "lookup_order");
    assert!(
        lookup["pii"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["stage"] == "tool_result"),
        "{lookup}"
    );
    let denied = record(&records, "forbidden-1.1.1");
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["status"], 403);
    let all = all_text(&s.archive) + &all_text(&s.spool);
    assert!(!all.contains(mine) && !all.contains(customer["email"].as_str().unwrap()));
}

#[tokio::test]
async fn a_failing_backend_is_a_result_and_the_last_step_answers_as_it_is() {
    let down = format!("{{base_url: \"http://127.0.0.1:{}\"}}", free_port());
    let s = setup(Some(down));
    let body = json!({"model": "gpt-4o-mini",
        "tools": [tool("escalate_to_human", &["summary"])],
        "messages": [{"role": "user", "content": "escalate_to_human please"}]});
    let answer = chat(&s.w, "agent", "down-1", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let result = &tool_messages(&s.provider.last_request().await)[0];
    assert_eq!(result["error"]["type"], "tool_unreachable", "{result}");

    // With one step allowed, the model's call goes back to the client unrun.
    let body = json!({"model": "gpt-4o-mini",
        "tools": [tool("lookup_order", &["order_id"])],
        "messages": [{"role": "user", "content": "lookup_order A70000"}]});
    let answer = chat(&s.w, "terse", "terse-1", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let choice = answer.json()["choices"][0].clone();
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(
        choice["message"]["tool_calls"][0]["function"]["name"],
        "lookup_order"
    );
    assert!(
        s.shop
            .requests()
            .await
            .iter()
            .all(|r| r["path"] != "/orders/A70000")
    );
}

#[tokio::test]
async fn a_large_refund_in_the_loop_waits_then_runs_once() {
    let s = setup(None);
    let body = json!({"model": "gpt-4o-mini",
        "tools": [{"type": "function", "function": {"name": "issue_refund", "parameters": {
            "type": "object", "properties": {"order_id": {"type": "string"},
            "amount": {"type": "number"}}, "required": ["order_id", "amount"]}}}],
        "messages": [{"role": "user", "content": "issue_refund of $120 for order A70074"}]});
    let first = chat(&s.w, "agent", "refund-1", &body).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let waiting = &tool_messages(&s.provider.last_request().await)[0];
    assert_eq!(waiting["status"], "pending_approval", "{waiting}");
    let id = waiting["approval_id"].as_str().unwrap().to_string();
    assert!(s.shop.writes().await.get("issue_refund").is_none());

    // The webhook announced it, without the call's arguments.
    let mut hook = Value::Null;
    for _ in 0..100 {
        let requests = s.shop.requests().await;
        if let Some(r) = requests
            .into_iter()
            .find(|r| r["path"] == "/hooks/approvals")
        {
            hook = r;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!hook.is_null(), "no webhook call");
    assert_eq!(hook["method"], "POST");
    assert_eq!(hook["body"]["event"], "approval.pending");
    assert_eq!(hook["body"]["approval_id"], id.as_str());
    assert_eq!(hook["body"]["tool"], "issue_refund");
    assert_eq!(hook["body"]["tenant"], "acme");
    assert!(hook["body"]["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(!hook["body"].to_string().contains("A70074"), "{hook}");

    let approved = send(
        "POST",
        &s.w.admin_url(&format!("/admin/v1/approvals/{id}/approve")),
        &[("authorization", "Bearer key-boss")],
        Vec::new(),
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.text());

    // The next turn with the same call runs it, once; a repeat gets the stored result.
    for n in 2..=3 {
        let again = chat(&s.w, "agent", &format!("refund-{n}"), &body).await;
        assert_eq!(again.status, 200, "{}", again.text());
        let result = &tool_messages(&s.provider.last_request().await)[0];
        assert_eq!(result["status"], "issued", "{result}");
        assert_eq!(s.shop.writes().await["issue_refund"], 1);
    }
    let records = records_for(&s.archive, &s.spool, "tools_invoke", 3).await;
    assert_eq!(
        record(&records, "refund-1.1.1")["tool_execution"]["approval"]["status"],
        "pending"
    );
    assert_eq!(
        record(&records, "refund-2.1.1")["tool_execution"]["outcome"],
        "ok"
    );
    assert_eq!(
        record(&records, "refund-3.1.1")["tool_execution"]["outcome"],
        "replayed"
    );
}

#[tokio::test]
async fn the_loop_ends_at_its_deadline_with_every_call_recorded() {
    // Each model call takes 2.5 s: the second one passes the four-second deadline.
    let s = setup_with(
        None,
        &["--latency-ms", "2500"],
        "  gateway_loop: {deadline_seconds: 4}\n",
    );
    let body = json!({"model": "gpt-4o-mini",
        "tools": [tool("lookup_order", &["order_id"])],
        "messages": [{"role": "user", "content": "lookup_order A70000"}]});
    // The provider's first answer also loads its tokenizer: not part of the measure.
    let warm = post_json(
        &format!("{}/chat/completions", s.provider.base_url()),
        &body,
    )
    .await;
    assert_eq!(warm.status, 200);
    let started = std::time::Instant::now();
    let answer = chat(&s.w, "agent", "slow-1", &body).await;
    assert_eq!(answer.status, 504, "{}", answer.text());
    assert_eq!(answer.json()["error"]["code"], "tool_loop_timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(6));

    let records = records_for(&s.archive, &s.spool, "tools_invoke", 1).await;
    assert_eq!(record(&records, "slow-1")["status"], 504);
    assert_eq!(record(&records, "slow-1.1")["status"], 200);
    assert_eq!(
        record(&records, "slow-1.1.1")["tool_execution"]["outcome"],
        "ok"
    );
    let second = record(&records, "slow-1.2");
    assert_eq!(second["status"], 504);
    assert_eq!(second["error_code"], "tool_loop_timeout");
}
