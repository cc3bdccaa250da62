//! `POST /v1/tools/{name}/invoke` end to end, over real HTTP: the shipped registry
//! (`policies/tools.yaml`) against `warden mock-commerce`. What Warden did is asserted —
//! which calls it allowed, what reached the backend, what the client got back, what the
//! audit log and the trace hold — not what the backend computes.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const POLICY: &str = "apiVersion: warden/v1\nkind: Policy\nrules:\n  \
    - name: shopper-tools\n    effect: allow\n    match:\n      roles: [shopper]\n      endpoints: [tools_invoke]\n    \
    settings:\n      pii: strict\n      tools:\n        allow: [search_catalog, check_inventory, get_price, get_product]\n  \
    - name: agent-tools\n    effect: allow\n    match:\n      roles: [agent]\n      endpoints: [tools_invoke]\n    \
    settings:\n      pii: strict\n      tools:\n        allow: [lookup_order, list_orders, issue_refund, create_return]\n";

/// API keys (`key-<id>`): id, tenant, roles.
const KEYS: [(&str, &str, &str); 6] = [
    ("shopper", "acme", "shopper"),
    ("agent", "acme", "agent"),
    ("agent2", "acme", "agent"),
    ("lead", "acme", "agent, approver"),
    ("boss", "acme", "approver"),
    ("outsider", "globex", "approver"),
];

struct Setup {
    w: Warden,
    shop: MockCommerce,
    /// The configuration, to start more replicas.
    config: String,
    archive: std::path::PathBuf,
    spool: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Warden with the shipped registry and a test policy, its backends on `warden
/// mock-commerce` (`backends` overrides single backends' lines).
fn setup(backends: &[(&str, String)]) -> Setup {
    setup_with(backends, "", &[])
}

/// [`setup`] with more configuration and environment variables.
fn setup_with(backends: &[(&str, String)], extra: &str, env: &[(&str, &str)]) -> Setup {
    let shop = MockCommerce::start();
    let dir = tempfile::tempdir().unwrap();
    let policies = policies_with_registry(dir.path(), POLICY);
    let keys: String = KEYS
        .iter()
        .map(|(k, tenant, roles)| {
            format!(
                "    - id: {k}\n      sha256: {}\n      tenant: {tenant}\n      roles: [{roles}]\n",
                hex::encode(Sha256::digest(format!("key-{k}").as_bytes()))
            )
        })
        .collect();
    let mut lines = String::new();
    for name in ["catalog", "inventory", "pricing", "orders", "services"] {
        let line = backends
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, l)| l.replace("{SHOP}", &shop.base_url()))
            .unwrap_or_else(|| format!("{{base_url: \"{}\"}}", shop.base_url()));
        lines.push_str(&format!("    {name}: {line}\n"));
    }
    let archive = dir.path().join("archive");
    let spool = dir.path().join("spool");
    let config = mock_config(&format!(
        "auth:\n  api_keys:\n{keys}\
         policy:\n  dir: {policies}\n  watch: false\n\
         pii:\n  default_profile: strict\n  profiles:\n    strict:\n      default_action: pseudonymize\n\
         tools:\n  backends:\n{lines}\
         audit:\n  chain_id: tools\n  spool_dir: {spool}\n  segment_max_age_seconds: 1\n  sink:\n    kind: file\n    dir: {archive}\n{extra}",
        policies = policies.display(),
        spool = spool.display(),
        archive = archive.display(),
    ));
    Setup {
        w: Warden::start_with_env(&config, env),
        shop,
        config,
        archive,
        spool,
        _dir: dir,
    }
}

async fn invoke(w: &Warden, key: &str, tool: &str, body: Value, extra: &[(&str, &str)]) -> Reply {
    let auth = format!("Bearer key-{key}");
    let mut headers = vec![
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    headers.extend_from_slice(extra);
    send(
        "POST",
        &w.url(&format!("/v1/tools/{tool}/invoke")),
        &headers,
        serde_json::to_vec(&body).unwrap(),
    )
    .await
}

/// The demo shop's data, as the backends serve it.
fn shop_data() -> Value {
    serde_json::from_str(include_str!("../examples/commerce/catalog.json")).unwrap()
}

#[tokio::test]
async fn the_running_shoes_question_is_answered_by_governed_tool_calls() {
    let s = setup(&[]);
    let found = invoke(
        &s.w,
        "shopper",
        "search_catalog",
        json!({"arguments": {"query": "running shoes", "size": "10", "width": "wide", "max_price": 120}}),
        &[],
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.text());
    let body = found.json();
    assert_eq!(body["tool"], "search_catalog");
    assert_eq!(body["is_error"], false);
    let results = body["result"]["results"].as_array().unwrap().clone();
    assert!(!results.is_empty(), "{body}");
    for product in &results {
        assert!(product["price"].as_f64().unwrap() <= 120.0, "{product}");
        assert!(product["category"].as_str().unwrap().contains("shoes"));
        // The inventory (GraphQL) agrees, through Warden: size 10 wide is in stock.
        let id = product["id"].as_str().unwrap();
        let stock = invoke(
            &s.w,
            "shopper",
            "check_inventory",
            json!({"arguments": {"product_id": id, "size": "10", "width": "wide"}}),
            &[],
        )
        .await;
        assert_eq!(stock.status, 200, "{}", stock.text());
        let inv = &stock.json()["result"]["inventory"];
        let variants = inv["variants"].as_array().unwrap();
        assert!(
            variants
                .iter()
                .any(|v| v["inStock"] == true && v["width"] == "wide" && v["size"] == "10"),
            "{inv}"
        );
    }
    // The arguments reached the catalog percent-encoded in the query, nothing else.
    let search = s
        .shop
        .requests()
        .await
        .into_iter()
        .find(|r| r["path"] == "/catalog/search")
        .unwrap();
    let uri = search["uri"].as_str().unwrap();
    assert!(
        uri.contains("q=running+shoes") && uri.contains("width=wide"),
        "{uri}"
    );
    assert!(search["headers"]["x-request-id"].is_string());

    // A tool outside the rule's list, an unknown tool, arguments that break the schema.
    let missing = invoke(
        &s.w,
        "shopper",
        "get_product",
        json!({"arguments": {"product_id": "P9999"}}),
        &[],
    )
    .await;
    assert_eq!(missing.status, 200);
    let missing = missing.json();
    assert_eq!(
        (
            missing["is_error"].clone(),
            missing["result"]["error"]["status"].clone()
        ),
        (json!(true), json!(404))
    );
    let denied = invoke(
        &s.w,
        "shopper",
        "lookup_order",
        json!({"arguments": {"order_id": "A70000"}}),
        &[],
    )
    .await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert_eq!(denied.json()["error"]["code"], "policy_denied");
    let unknown = invoke(
        &s.w,
        "shopper",
        "steal_everything",
        json!({"arguments": {}}),
        &[],
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["code"], "tool_not_found");
    let secret = "maria.gonzalez@example.com";
    let invalid = invoke(
        &s.w,
        "shopper",
        "get_price",
        json!({"arguments": {"product_id": secret}}),
        &[],
    )
    .await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.json()["error"]["code"], "invalid_tool_arguments");
    assert!(!invalid.text().contains(secret), "{}", invalid.text());
    for (body, why) in [
        (json!({}), "no arguments"),
        (json!({"arguments": [1]}), "not an object"),
        (json!({"arguments": "{not json"}), "string that is not JSON"),
        (json!({"arguments": {}, "extra": 1}), "unknown field"),
    ] {
        let r = invoke(&s.w, "shopper", "get_price", body, &[]).await;
        assert_eq!(r.status, 400, "{why}: {}", r.text());
        assert_eq!(r.json()["error"]["type"], "invalid_request_error", "{why}");
    }
    // A model's tool call carries its arguments as JSON text: accepted as they are.
    let as_text = invoke(
        &s.w,
        "shopper",
        "get_price",
        json!({"arguments": "{\"product_id\": \"P1001\"}"}),
        &[],
    )
    .await;
    assert_eq!(as_text.status, 200, "{}", as_text.text());
    assert!(as_text.json()["result"]["price"].as_f64().is_some());
    // Nothing the shopper was refused reached a backend.
    assert!(
        s.shop
            .requests()
            .await
            .iter()
            .all(|r| r["path"] != "/orders/A70000")
    );
}

#[tokio::test]
async fn backend_pii_is_redacted_and_arguments_reach_the_backend_whole() {
    let s = setup(&[]);
    let data = shop_data();
    let customer = &data["customers"][0];
    let email = customer["email"].as_str().unwrap();
    let phone = customer["phone"].as_str().unwrap();
    let order = data["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["customer_id"] == customer["id"])
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The backend needs the real address to find the orders: it gets it.
    let listed = invoke(
        &s.w,
        "agent",
        "list_orders",
        json!({"arguments": {"email": email}}),
        &[],
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let ids: Vec<Value> = listed.json()["result"]["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].clone())
        .collect();
    assert!(ids.contains(&json!(order)), "{ids:?}");
    let seen = s.shop.requests().await;
    assert!(
        seen.iter().any(
            |r| r["path"] == "/orders" && r["uri"].as_str().unwrap().contains("%40example.com")
        ),
        "{seen:?}"
    );

    // What the backend returns about the customer never reaches the client in clear.
    let looked = invoke(
        &s.w,
        "agent",
        "lookup_order",
        json!({"arguments": {"order_id": order}}),
        &[],
    )
    .await;
    assert_eq!(looked.status, 200, "{}", looked.text());
    let text = looked.text();
    assert!(!text.contains(email) && !text.contains(phone), "{text}");
    let result = &looked.json()["result"];
    assert_eq!(result["customer"]["email"], "[EMAIL]", "{result}");
    assert_eq!(result["id"], order.as_str());

    // Every call has its record: tool, outcome, backend status, and no argument value.
    let records = records_for(&s.archive, &s.spool, "tools_invoke", 2).await;
    let calls: Vec<&Value> = records
        .iter()
        .filter(|r| r["endpoint"] == "tools_invoke")
        .collect();
    let lookup = calls
        .iter()
        .find(|r| r["tool_execution"]["name"] == "lookup_order")
        .unwrap();
    assert_eq!(lookup["tool_execution"]["outcome"], "ok");
    assert_eq!(lookup["tool_execution"]["backend_status"], 200);
    assert_eq!(lookup["tool_execution"]["risk"], "read");
    assert_eq!(lookup["rule"], "agent-tools");
    assert!(
        lookup["pii"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["stage"] == "tool_result")
    );
    let all = all_text(&s.archive) + &all_text(&s.spool);
    assert!(!all.contains(email) && !all.contains(phone));
}

/// An order with at least `min` USD of its total left to refund, other than `skip`.
fn order_worth(data: &Value, min: f64, skip: &[String]) -> String {
    data["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["total"].as_f64().unwrap() >= min
                && !skip.contains(&o["id"].as_str().unwrap().to_string())
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn refunds_above_the_threshold_wait_and_small_ones_hit_the_daily_cap() {
    let s = setup(&[]);
    let data = shop_data();
    let big = order_worth(&data, 500.0, &[]);
    let waiting = invoke(
        &s.w,
        "agent",
        "issue_refund",
        json!({"arguments": {"order_id": big, "amount": 450, "reason": "damaged"}}),
        &[],
    )
    .await;
    assert_eq!(waiting.status, 202, "{}", waiting.text());
    assert_eq!(waiting.json()["status"], "pending_approval");
    assert!(s.shop.writes().await.get("issue_refund").is_none());

    // Three refunds of $60 on three orders: the third passes the $150 daily cap. The
    // first is asked twice (a retry, under the same idempotency key): one refund, counted
    // once.
    let mut used = Vec::new();
    let mut statuses = Vec::new();
    for i in 0..3 {
        let order = order_worth(&data, 60.0, &used);
        used.push(order.clone());
        let refund = json!({"arguments": {"order_id": order, "amount": 60, "reason": "late"}});
        let r = invoke(&s.w, "agent", "issue_refund", refund.clone(), &[]).await;
        if i == 0 {
            let retried = invoke(&s.w, "agent", "issue_refund", refund, &[]).await;
            assert_eq!(retried.status, 200, "{}", retried.text());
            assert_eq!(retried.json()["result"], r.json()["result"]);
        }
        statuses.push((r.status, r.json()));
    }
    assert_eq!(statuses[0].0, 200, "{:?}", statuses[0]);
    assert_eq!(statuses[1].0, 200, "{:?}", statuses[1]);
    assert_eq!(statuses[0].1["result"]["status"], "issued");
    assert_eq!(statuses[2].0, 429, "{:?}", statuses[2]);
    assert_eq!(statuses[2].1["error"]["code"], "tool_cap_exceeded");
    assert_eq!(s.shop.writes().await["issue_refund"], 2);
    // The cap is the subject's: another agent still has its own.
    let other = invoke(
        &s.w,
        "agent2",
        "issue_refund",
        json!({"arguments": {"order_id": used[2], "amount": 60}}),
        &[],
    )
    .await;
    assert_eq!(other.status, 200, "{}", other.text());
    assert_eq!(s.shop.writes().await["issue_refund"], 3);
}

#[tokio::test]
async fn writes_carry_an_idempotency_key_so_a_retry_runs_once() {
    let s = setup(&[]);
    let data = shop_data();
    let order = data["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["status"] == "delivered")
        .unwrap()
        .clone();
    let args = json!({"arguments": {"order_id": order["id"], "product_id": order["items"][0]["product_id"], "reason": "too small"}});
    let first = invoke(&s.w, "agent", "create_return", args.clone(), &[]).await;
    let again = invoke(&s.w, "agent", "create_return", args.clone(), &[]).await;
    assert_eq!((first.status, again.status), (200, 200), "{}", again.text());
    assert_eq!(first.json()["result"], again.json()["result"]);
    assert_eq!(s.shop.writes().await["create_return"], 1);
    let keys: Vec<String> = s
        .shop
        .requests()
        .await
        .iter()
        .filter(|r| r["path"] == "/returns")
        .map(|r| {
            r["headers"]["idempotency-key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(
        keys[0].starts_with("warden-") && keys[0] == keys[1],
        "{keys:?}"
    );
    // The client's own key is the one the backend sees: a new key is a new return.
    let own = invoke(
        &s.w,
        "agent",
        "create_return",
        args,
        &[("idempotency-key", "return-2")],
    )
    .await;
    assert_eq!(own.status, 200);
    assert_ne!(
        own.json()["result"]["return_id"],
        first.json()["result"]["return_id"]
    );
    assert_eq!(s.shop.writes().await["create_return"], 2);
    let bad = invoke(
        &s.w,
        "agent",
        "lookup_order",
        json!({"arguments": {"order_id": "A1"}}),
        &[("idempotency-key", "")],
    )
    .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn backend_failures_become_results_the_model_can_read() {
    // The catalog never answers, the orders backend is down, pricing answers too much.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = free_port();
    let s = setup(&[
        (
            "catalog",
            format!("{{base_url: \"http://{}\"}}", silent.local_addr().unwrap()),
        ),
        (
            "orders",
            format!("{{base_url: \"http://127.0.0.1:{down}\"}}"),
        ),
        (
            "pricing",
            "{base_url: \"{SHOP}\", max_response_bytes: 64}".to_string(),
        ),
    ]);
    let cases = [
        (
            "shopper",
            "get_product",
            json!({"product_id": "P1001"}),
            "tool_timeout",
        ),
        (
            "agent",
            "lookup_order",
            json!({"order_id": "A70000"}),
            "tool_unreachable",
        ),
        (
            "shopper",
            "get_price",
            json!({"product_id": "P1001"}),
            "tool_too_large",
        ),
        (
            "shopper",
            "check_inventory",
            json!({"product_id": "P9999"}),
            "tool_rejected",
        ),
    ];
    for (key, tool, args, kind) in cases {
        let started = std::time::Instant::now();
        let r = invoke(&s.w, key, tool, json!({"arguments": args}), &[]).await;
        assert_eq!(r.status, 200, "{tool}: {}", r.text());
        let body = r.json();
        assert_eq!(body["is_error"], true, "{body}");
        assert_eq!(body["result"]["error"]["type"], kind, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{tool} took {:?}",
            started.elapsed()
        );
    }
}

async fn admin(w: &Warden, key: &str, method: &str, path: &str) -> Reply {
    send(
        method,
        &w.admin_url(path),
        &[("authorization", &format!("Bearer key-{key}"))],
        Vec::new(),
    )
    .await
}

#[tokio::test]
async fn a_large_refund_waits_for_another_person_and_runs_once() {
    let s = setup(&[]);
    let data = shop_data();
    let order = order_worth(&data, 200.0, &[]);
    let refund = json!({"arguments": {"order_id": order, "amount": 120, "reason": "damaged"}});

    let asked = invoke(&s.w, "lead", "issue_refund", refund.clone(), &[]).await;
    assert_eq!(asked.status, 202, "{}", asked.text());
    let pending = asked.json();
    assert_eq!(pending["status"], "pending_approval");
    let id = pending["approval_id"].as_str().unwrap().to_string();
    assert!(pending["expires_at"].as_str().unwrap().ends_with('Z'));
    // Asking again names the same approval; nothing ran.
    let again = invoke(&s.w, "lead", "issue_refund", refund.clone(), &[]).await;
    assert_eq!(again.json()["approval_id"], id.as_str());
    assert!(s.shop.writes().await.get("issue_refund").is_none());
    let pending = |w: &Warden| {
        let url = w.admin_url("/metrics");
        async move {
            get(&url).await.text().lines().find_map(|l| {
                l.strip_prefix("warden_approvals_pending ")
                    .map(str::to_string)
            })
        }
    };
    assert_eq!(pending(&s.w).await.as_deref(), Some("1"));

    // Approvers see their tenant's queue with a preview; others do not.
    let listed = admin(&s.w, "boss", "GET", "/admin/v1/approvals").await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let entry = listed.json()["data"][0].clone();
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["tool"], "issue_refund");
    assert_eq!(entry["requester"], "lead");
    assert_eq!(entry["status"], "pending");
    assert_eq!(entry["arguments"]["amount"], 120);
    let outsider = admin(&s.w, "outsider", "GET", "/admin/v1/approvals").await;
    assert_eq!(outsider.json()["data"], json!([]));
    assert_eq!(
        admin(&s.w, "agent", "GET", "/admin/v1/approvals")
            .await
            .status,
        403
    );
    let shared = send(
        "GET",
        &s.w.admin_url("/admin/v1/approvals"),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(shared.status, 401);

    // Nobody decides their own call or another tenant's.
    let own = admin(
        &s.w,
        "lead",
        "POST",
        &format!("/admin/v1/approvals/{id}/approve"),
    )
    .await;
    assert_eq!(own.status, 403, "{}", own.text());
    assert_eq!(own.json()["error"]["code"], "own_call");
    let foreign = admin(
        &s.w,
        "outsider",
        "POST",
        &format!("/admin/v1/approvals/{id}/approve"),
    )
    .await;
    assert_eq!(foreign.status, 404);

    let approved = admin(
        &s.w,
        "boss",
        "POST",
        &format!("/admin/v1/approvals/{id}/approve"),
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.text());
    assert_eq!(approved.json()["status"], "approved");
    assert_eq!(
        pending(&s.w).await.as_deref(),
        Some("0"),
        "decided, no longer pending"
    );
    let twice = admin(
        &s.w,
        "boss",
        "POST",
        &format!("/admin/v1/approvals/{id}/approve"),
    )
    .await;
    assert_eq!(twice.status, 409);

    // Another principal, or changed arguments, is another call: it waits.
    let other = invoke(&s.w, "agent", "issue_refund", refund.clone(), &[]).await;
    assert_eq!(other.status, 202);
    assert_ne!(other.json()["approval_id"], id.as_str());
    let changed = json!({"arguments": {"order_id": order, "amount": 121, "reason": "damaged"}});
    let changed = invoke(&s.w, "lead", "issue_refund", changed, &[]).await;
    assert_eq!(changed.status, 202);
    assert!(s.shop.writes().await.get("issue_refund").is_none());

    // The approved call runs once; a replay waits for a new approval.
    let ran = invoke(&s.w, "lead", "issue_refund", refund.clone(), &[]).await;
    assert_eq!(ran.status, 200, "{}", ran.text());
    assert_eq!(ran.json()["result"]["status"], "issued");
    let replay = invoke(&s.w, "lead", "issue_refund", refund.clone(), &[]).await;
    assert_eq!(replay.status, 202, "{}", replay.text());
    assert_ne!(replay.json()["approval_id"], id.as_str());
    assert_eq!(s.shop.writes().await["issue_refund"], 1);

    // A rejected call stays refused.
    let rejected_id = replay.json()["approval_id"].as_str().unwrap().to_string();
    let rejected = admin(
        &s.w,
        "boss",
        "POST",
        &format!("/admin/v1/approvals/{rejected_id}/reject"),
    )
    .await;
    assert_eq!(rejected.json()["status"], "rejected");
    let refused = invoke(&s.w, "lead", "issue_refund", refund, &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["error"]["code"], "approval_rejected");
    assert_eq!(s.shop.writes().await["issue_refund"], 1);

    // Requests, decisions and the execution are all in the audit log.
    let records = records_for(&s.archive, &s.spool, "approval_decision", 5).await;
    let states: Vec<&str> = records
        .iter()
        .filter(|r| r["tool_execution"]["approval"]["id"] == id.as_str())
        .map(|r| r["tool_execution"]["approval"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["pending", "pending", "executed"]);
    let decisions: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r["approval_decision"]["approval_id"] == id.as_str())
        .map(|r| {
            (
                r["approval_decision"]["action"].as_str().unwrap(),
                r["approval_decision"]["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("approve", "own_call"),
            ("approve", "not_found"),
            ("approve", "approved"),
            ("approve", "decided:approved")
        ]
    );
}

#[tokio::test]
async fn an_approval_decided_on_one_replica_runs_once_on_another() {
    let redis = common::redis::Redis::start(free_port());
    let state = format!(
        "state:\n  backend: redis\n  redis: {{url: \"redis://127.0.0.1:{}/\"}}\n",
        redis.port
    );
    let key = [("WARDEN_STATE_KEY", "shared approvals key")];
    let a = setup_with(&[], &state, &key);
    // The second replica keeps its own audit chain in its own directories.
    let dir = tempfile::tempdir().unwrap();
    let b_config = a
        .config
        .replace(
            &a.spool.display().to_string(),
            &dir.path().join("spool").display().to_string(),
        )
        .replace(
            &a.archive.display().to_string(),
            &dir.path().join("archive").display().to_string(),
        )
        .replace("chain_id: tools", "chain_id: tools-b");
    let b = Warden::start_with_env(&b_config, &key);

    let order = order_worth(&shop_data(), 300.0, &[]);
    let refund = json!({"arguments": {"order_id": order, "amount": 250}});
    let asked = invoke(&a.w, "lead", "issue_refund", refund.clone(), &[]).await;
    assert_eq!(asked.status, 202, "{}", asked.text());
    let id = asked.json()["approval_id"].as_str().unwrap().to_string();
    // Both replicas count it as pending (the count is in the shared state).
    for w in [&a.w, &b] {
        let metrics = get(&w.admin_url("/metrics")).await.text();
        assert!(
            metrics.lines().any(|l| l == "warden_approvals_pending 1"),
            "{metrics}"
        );
    }
    // Replica B lists it and a person decides there.
    let listed = admin(&b, "boss", "GET", "/admin/v1/approvals").await;
    assert_eq!(
        listed.json()["data"][0]["id"],
        id.as_str(),
        "{}",
        listed.text()
    );
    let approved = admin(
        &b,
        "boss",
        "POST",
        &format!("/admin/v1/approvals/{id}/approve"),
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.text());
    let metrics = get(&a.w.admin_url("/metrics")).await.text();
    assert!(
        metrics.lines().any(|l| l == "warden_approvals_pending 0"),
        "decided on B, no longer pending on A: {metrics}"
    );

    // Both replicas are asked to run it at once: exactly one does.
    let (ra, rb) = tokio::join!(
        invoke(&a.w, "lead", "issue_refund", refund.clone(), &[]),
        invoke(&b, "lead", "issue_refund", refund.clone(), &[]),
    );
    let statuses = [ra.status, rb.status];
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{} / {}",
        ra.text(),
        rb.text()
    );
    assert!(
        statuses.iter().all(|s| [200, 202, 409].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(a.shop.writes().await["issue_refund"], 1);

    // The approval is sealed in Redis: no argument value or tool name in clear.
    let mut con = ::redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("warden:approvals:*")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(keys.iter().any(|k| k.contains(":a:")), "{keys:?}");
    for k in keys.iter().filter(|k| k.contains(":a:")) {
        let v: Vec<u8> = ::redis::cmd("GET")
            .arg(k)
            .query_async(&mut con)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&v);
        assert!(
            !text.contains("issue_refund") && !text.contains(&order),
            "{k}"
        );
    }
}

#[test]
fn redis_approvals_without_a_shared_key_are_a_start_up_error() {
    let redis = common::redis::Redis::start(free_port());
    let dir = tempfile::tempdir().unwrap();
    let policies = policies_with_registry(dir.path(), POLICY);
    let backends: String = ["catalog", "inventory", "pricing", "orders", "services"]
        .iter()
        .map(|b| format!("    {b}: {{kind: mock}}\n"))
        .collect();
    let config = dir.path().join("w.yaml");
    std::fs::write(
        &config,
        mock_config(&format!(
            "policy:\n  dir: {}\npii:\n  profiles:\n    strict: {{}}\ntools:\n  backends:\n{backends}state:\n  backend: redis\n  redis: {{url: \"redis://127.0.0.1:{}/\"}}\n",
            policies.display(),
            redis.port
        )),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("WARDEN_STATE_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WARDEN_STATE_KEY"), "{err}");
}

#[tokio::test]
async fn a_tool_call_is_traced_to_its_backend() {
    use common::otlp::*;
    let receiver = Receiver::start().await;
    let traces = format!(
        "telemetry:\n  traces:\n    endpoint: {}\n    export_interval_ms: 100\n",
        receiver.endpoint()
    );
    let s = setup_with(&[], &traces, &[]);
    let email = shop_data()["customers"][0]["email"]
        .as_str()
        .unwrap()
        .to_string();
    let trace = "c".repeat(32);
    let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
    let r = invoke(
        &s.w,
        "agent",
        "list_orders",
        json!({"arguments": {"email": email}}),
        &[("traceparent", &traceparent)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let spans = receiver.wait_for(&trace).await;
    let root = request_span(&spans);
    assert_eq!(root.name, "execute_tool list_orders");
    let a = attributes(root);
    assert_eq!(text(&a, "gen_ai.operation.name"), "execute_tool");
    assert_eq!(text(&a, "gen_ai.tool.name"), "list_orders");
    assert_eq!(text(&a, "warden.tenant"), "acme");
    let stage = spans
        .iter()
        .find(|s| s.name == "warden.tool_execution")
        .expect("a tool execution stage");
    let call = spans
        .iter()
        .find(|s| s.kind == CLIENT)
        .expect("a span for the backend call");
    assert_eq!(call.parent_span_id, stage.span_id);
    assert_eq!(call.name, "execute_tool list_orders");
    assert_eq!(text(&attributes(call), "warden.tool.outcome"), "ok");

    // The backend was called under that span; the customer's address is in no span.
    let seen = s.shop.requests().await;
    let orders = seen.iter().rev().find(|r| r["path"] == "/orders").unwrap();
    assert_eq!(
        orders["headers"]["traceparent"],
        format!("00-{trace}-{}-01", hex::encode(&call.span_id)),
        "{orders}"
    );
    let exported = String::from_utf8_lossy(&receiver.raw.lock().unwrap()).to_string();
    assert!(
        !exported.contains(&email),
        "the customer's address was exported"
    );
}
