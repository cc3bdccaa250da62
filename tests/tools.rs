//! The tool registry end to end: `kind: ToolRegistry` files in the policy directory are
//! checked by `warden policy check` (positions, backends configured), digested with the
//! policies, refused at start-up when they name a backend `warden.yaml` lacks, and a
//! broken edit is kept out by hot reload.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const POLICY: &str =
    "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: all\n    effect: allow\n";

const TOOLS: &str = "apiVersion: warden/v1\nkind: ToolRegistry\ntools:\n  \
    - name: get_price\n    description: The current price of a product.\n    \
    examples: [\"how much is the trail runner\"]\n    \
    parameters:\n      type: object\n      properties:\n        sku: {type: string}\n      required: [sku]\n    \
    risk: read\n    backend: pricing\n    http: {method: GET, path: \"/prices/{sku}\"}\n  \
    - name: issue_refund\n    description: Refund an order.\n    \
    parameters:\n      type: object\n      properties:\n        order_id: {type: string}\n        amount: {type: number}\n      \
    required: [order_id, amount]\n    risk: high\n    backend: orders\n    \
    http: {method: POST, path: \"/orders/{order_id}/refunds\"}\n    \
    approval: {when: \"args.amount > 100\"}\n    \
    caps:\n      - {name: daily-refunds, sum: amount, limit: 150, per: day}\n";

fn config(dir: &std::path::Path, backends: &str) -> String {
    mock_config(&format!(
        "policy:\n  dir: {}\n  watch: true\n{backends}",
        dir.display()
    ))
}

const BACKENDS: &str = "tools:\n  backends:\n    pricing: {base_url: \"http://127.0.0.1:9/api\"}\n    \
    orders:\n      base_url: \"http://127.0.0.1:9\"\n      headers: {authorization: \"Bearer secret-token\"}\n";

fn check(dir: &std::path::Path, config: Option<&std::path::Path>) -> (i32, String, String) {
    let mut c = Command::new(BIN);
    c.args(["policy", "check"]).arg(dir);
    if let Some(config) = config {
        c.arg("--config").arg(config);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn policy_check_validates_tools_and_their_backends() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("p.yaml"), POLICY).unwrap();
    std::fs::write(policies.join("tools.yaml"), TOOLS).unwrap();
    let (code, out, err) = check(&policies, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok: 1 rules and 2 tools in 2 files"), "{out}");

    // Backends named by tools must be configured.
    let cfg = dir.path().join("warden.yaml");
    std::fs::write(&cfg, config(&policies, "")).unwrap();
    let (code, _, err) = check(&policies, Some(&cfg));
    assert_eq!(code, 1);
    assert!(
        err.contains("tools.yaml:13:5: tool `get_price`: backend `pricing` is not configured"),
        "{err}"
    );
    assert!(err.contains("backend `orders`"), "{err}");
    std::fs::write(&cfg, config(&policies, BACKENDS)).unwrap();
    let (code, _, err) = check(&policies, Some(&cfg));
    assert_eq!(code, 0, "{err}");

    // A broken tool is reported at its line, with the others.
    std::fs::write(
        policies.join("tools.yaml"),
        TOOLS
            .replace("\"/prices/{sku}\"", "\"/prices/{product}\"")
            .replace("args.amount > 100", "request.amount > 100"),
    )
    .unwrap();
    let (code, _, err) = check(&policies, None);
    assert_eq!(code, 1);
    assert!(err.contains("tools.yaml:"), "{err}");
    assert!(
        err.contains("unknown variable `request`"),
        "the CEL error is reported first: {err}"
    );
    std::fs::write(
        policies.join("tools.yaml"),
        TOOLS.replace("\"/prices/{sku}\"", "\"/prices/{product}\""),
    )
    .unwrap();
    let (code, _, err) = check(&policies, None);
    assert_eq!(code, 1);
    assert!(
        err.contains("tools.yaml:4:5: tool `get_price`: a template names `product`"),
        "{err}"
    );
    // The header value, a credential, never appears in errors.
    assert!(!err.contains("secret-token"));
}

#[tokio::test]
async fn serve_refuses_unconfigured_backends_and_reload_keeps_the_last_good_tools() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("p.yaml"), POLICY).unwrap();
    std::fs::write(policies.join("tools.yaml"), TOOLS).unwrap();

    // Start-up: a tool naming a backend that is not configured stops the start.
    let cfg = dir.path().join("warden.yaml");
    std::fs::write(&cfg, config(&policies, "")).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("backend `pricing` is not configured"), "{err}");

    let w = Warden::start(&config(&policies, BACKENDS));
    let digest = || async {
        let ready = get_json(&w.admin_url("/readyz")).await;
        (
            ready["policy"]["digest"].clone(),
            ready["policy"]["tools"].clone(),
        )
    };
    let before = digest().await;
    assert_eq!(before.1, 2, "{before:?}");
    // A broken edit is refused; the last good set (and its digest) stays.
    std::fs::write(
        policies.join("tools.yaml"),
        TOOLS.replace("risk: read", "risk: sometimes"),
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            w.logs().contains("policy reload refused")
        })
        .await,
        "{}",
        w.logs()
    );
    assert_eq!(digest().await, before);
    // A good edit changes the digest.
    std::fs::write(
        policies.join("tools.yaml"),
        TOOLS.replace(
            "The current price of a product.",
            "Today's price of a product.",
        ),
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            digest().await != before
        })
        .await,
        "{}",
        w.logs()
    );
    stop(w);
}

fn tools_cli(args: &[&str]) -> (i32, String) {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/warden.yaml");
    let out = Command::new(BIN)
        .arg("tools")
        .args(args)
        .args(["--config", config])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn tools_select_and_eval_work_on_the_shipped_configuration() {
    let (code, out) = tools_cli(&[
        "select",
        "Do these running shoes come in wide width and size 10 for under $120?",
    ]);
    assert_eq!(code, 0, "{out}");
    let first = out.lines().next().unwrap();
    assert!(first.ends_with("search_catalog  (offered)"), "{out}");
    // A storefront principal is never shown a tool its rules do not allow.
    let (_, storefront) = tools_cli(&[
        "select",
        "--tenant",
        "acme-retail",
        "--role",
        "storefront-assistant",
        "where is my order A70000?",
    ]);
    assert!(!storefront.contains("lookup_order"), "{storefront}");
    assert!(storefront.contains("search_catalog"), "{storefront}");

    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tools/select-heldout.jsonl"
    );
    let (code, text) = tools_cli(&["eval", file]);
    assert_eq!(code, 0, "{text}");
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["hit@1", "hit@3", "hit@5", "all@5", "offered_when_none"]
    );
    let figure = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap();
        let value = line.split(": ").nth(1).unwrap();
        assert_eq!(value.len(), 5, "three decimals: {line}");
        value.parse().unwrap()
    };
    assert!(figure("hit@1") <= figure("hit@3") && figure("hit@3") <= figure("hit@5"));
    // The held-out set, never tuned on, meets the selection targets.
    assert!(figure("hit@5") >= 0.95, "{text}");
    assert!(figure("hit@1") >= 0.80, "{text}");
    assert!(figure("offered_when_none") <= 1.0, "{text}");
    let (_, json) = tools_cli(&["eval", file, "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    for name in names {
        let v = json[name].as_f64().unwrap();
        assert!((v - figure(name)).abs() < 0.0005, "{name}: {v}");
    }
}
