//! Policies end to end: the `warden policy` CLI on the shipped commerce policies, the
//! committed JSON Schemas, 403 decisions and model listing through a running Warden, and
//! hot reload (file edit, broken edit kept out, SIGHUP, a Kubernetes ConfigMap volume's
//! `..data` swap).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

#[test]
fn shipped_policies_check_and_their_tests_pass() {
    let out = Command::new(BIN)
        .args(["policy", "check", &repo("policies")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("digest sha256:"));

    let out = Command::new(BIN)
        .args(["policy", "test", &repo("policies")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines().last().unwrap().ends_with("passed, 0 failed"),
        "{text}"
    );
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn policy_test_fails_on_a_wrong_expectation_and_check_reports_positions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: only-rule\n    effect: allow\n    match:\n      models: [m]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tests/t.yaml"),
        "apiVersion: warden/v1\nkind: PolicyTest\ncases:\n  - name: wrong\n    principal: {}\n    request: {endpoint: chat_completions, model: other}\n    expect: {decision: allow}\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["policy", "test"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL") && text.contains("0 passed, 1 failed"),
        "{text}"
    );

    std::fs::write(
        dir.path().join("q.yaml"),
        "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: second\n    effect: allow\n    when: \"request.model ==\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["policy", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("q.yaml:6:5: "), "{err}");
    assert!(err.contains("CEL"), "{err}");
}

#[test]
fn committed_schemas_match_the_rust_types() {
    for (args, file) in [
        (vec!["policy", "schema"], "policies/schema.json"),
        (
            vec!["policy", "schema", "--tests"],
            "policies/tests/schema.json",
        ),
        (
            vec!["policy", "schema", "--tools"],
            "policies/tools.schema.json",
        ),
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success());
        let generated: Value = serde_json::from_slice(&out.stdout).unwrap();
        let committed: Value =
            serde_json::from_str(&std::fs::read_to_string(repo(file)).unwrap()).unwrap();
        assert_eq!(
            generated,
            committed,
            "{file} is stale: run `warden {}` > {file}",
            args.join(" ")
        );
    }
}

const STOREFRONT_KEY: &str = "sk-storefront-test";
const BATCH_KEY: &str = "sk-batch-test";

fn keyed_config(policy_dir: &Path) -> String {
    let h = |k: &str| hex::encode(Sha256::digest(k.as_bytes()));
    format!(
        "providers:\n  mock:\n    kind: mock\nmodels:\n  gpt-4o-mini:\n    default_max_tokens: 1000\n    targets:\n      - provider: mock\n  gpt-4o:\n    targets:\n      - provider: mock\n  \
         text-embedding-3-small:\n    targets:\n      - provider: mock\n\
         auth:\n  api_keys:\n    - id: storefront-web\n      sha256: {}\n      tenant: acme-retail\n      roles: [storefront-assistant]\n    \
         - id: nightly\n      sha256: {}\n      tenant: acme-retail\n      roles: [batch]\n\
         policy:\n  dir: {}\n{SHIPPED_PROFILES}{}",
        h(STOREFRONT_KEY),
        h(BATCH_KEY),
        policy_dir.display(),
        tools_selection()
    )
}

/// The PII and limit profiles and the tool backends the shipped policies name (a policy
/// naming a profile or backend the configuration lacks does not load).
const SHIPPED_PROFILES: &str = "pii:\n  profiles:\n    shopper-strict: {}\n    support-reversible: {}\n    internal: {}\n    catalog-only: {}\n\
limits:\n  profiles:\n    storefront: {}\n    support: {}\n    pricing: {}\n    batch: {}\n\
tools:\n  backends:\n    catalog: {kind: mock}\n    inventory: {kind: mock}\n    pricing: {kind: mock}\n    orders: {kind: mock}\n    services: {kind: mock}\n";

async fn models(w: &Warden, key: &str) -> Vec<String> {
    let r = send(
        "GET",
        &w.url("/v1/models"),
        &[("authorization", &format!("Bearer {key}"))],
        "",
    )
    .await;
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Do you have size 44?"}]})
}

#[tokio::test]
async fn decisions_gate_requests_and_model_listing() {
    let w = Warden::start(&keyed_config(Path::new(&repo("policies"))));
    let ok = chat_with_key(&w, STOREFRONT_KEY, &chat("gpt-4o-mini")).await;
    assert_eq!(ok.status, 200, "{}", ok.text());

    let denied = chat_with_key(&w, STOREFRONT_KEY, &chat("gpt-4o")).await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    let e = denied.json();
    assert_eq!(e["error"]["type"], "permission_error");
    assert_eq!(e["error"]["code"], "policy_denied");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`default-deny`"),
        "{e}"
    );

    let mut with_tool = chat("gpt-4o-mini");
    with_tool["tools"] = json!([{"type": "function", "function": {"name": "update_price"}}]);
    let denied = chat_with_key(&w, STOREFRONT_KEY, &with_tool).await;
    assert_eq!(denied.status, 403);
    assert!(
        denied.text().contains("price-writes-need-scope"),
        "{}",
        denied.text()
    );
    assert!(
        !denied.text().contains("size 44"),
        "the reason never echoes the prompt"
    );

    assert_eq!(
        models(&w, STOREFRONT_KEY).await,
        vec!["gpt-4o-mini", "text-embedding-3-small"]
    );
    assert_eq!(
        models(&w, BATCH_KEY).await,
        vec!["gpt-4o-mini", "text-embedding-3-small"]
    );
    let hidden = send(
        "GET",
        &w.url("/v1/models/gpt-4o"),
        &[("authorization", &format!("Bearer {STOREFRONT_KEY}"))],
        "",
    )
    .await;
    assert_eq!(hidden.status, 404);

    let ready = get(&w.admin_url("/readyz")).await.json();
    assert!(
        ready["policy"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{ready}"
    );
    let metrics = get(&w.admin_url("/metrics")).await.text();
    assert!(
        metrics.contains("warden_policy_decisions_total{effect=\"deny\",rule=\"default-deny\"} 1"),
        "{metrics}"
    );
}

const ALLOW_MINI: &str = "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: allow-mini\n    effect: allow\n    match:\n      models: [gpt-4o-mini]\n";

#[tokio::test]
async fn hot_reload_applies_good_edits_and_keeps_the_last_good_policy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, ALLOW_MINI).unwrap();
    let w = Warden::start(&keyed_config(dir.path()));
    assert_eq!(
        chat_with_key(&w, BATCH_KEY, &chat("gpt-4o-mini"))
            .await
            .status,
        200
    );
    assert_eq!(
        chat_with_key(&w, BATCH_KEY, &chat("gpt-4o")).await.status,
        403
    );

    // A good edit takes effect within a second.
    std::fs::write(
        &file,
        ALLOW_MINI.replace("[gpt-4o-mini]", "[gpt-4o-mini, gpt-4o]"),
    )
    .unwrap();
    let applied = eventually(Duration::from_secs(1), || async {
        chat_with_key(&w, BATCH_KEY, &chat("gpt-4o")).await.status == 200
    })
    .await;
    assert!(applied, "edit not applied within 1 s");

    // A broken edit is refused: the previous policy keeps deciding.
    std::fs::write(
        &file,
        ALLOW_MINI.replace("effect: allow", "effect: perhaps"),
    )
    .unwrap();
    let refused = eventually(Duration::from_secs(2), || async {
        !get(&w.admin_url("/readyz")).await.json()["policy"]["last_reload_error"].is_null()
    })
    .await;
    assert!(refused, "broken edit not reported");
    assert_eq!(
        chat_with_key(&w, BATCH_KEY, &chat("gpt-4o")).await.status,
        200,
        "last good policy stays active"
    );
    let ready = get(&w.admin_url("/readyz")).await.json();
    assert!(
        ready["policy"]["last_reload_error"]
            .as_str()
            .unwrap()
            .contains("p.yaml:5:"),
        "{ready}"
    );
    let metrics = get(&w.admin_url("/metrics")).await.text();
    assert!(metrics.contains("warden_policy_valid 0"), "{metrics}");
    assert!(w.logs().contains("policy reload refused"), "{}", w.logs());

    // Fixed again; SIGHUP also reloads.
    std::fs::write(&file, ALLOW_MINI).unwrap();
    Command::new("kill")
        .args(["-HUP", &w.child.id().to_string()])
        .status()
        .unwrap();
    let restored = eventually(Duration::from_secs(2), || async {
        chat_with_key(&w, BATCH_KEY, &chat("gpt-4o")).await.status == 403
    })
    .await;
    assert!(restored);
    assert!(
        get(&w.admin_url("/metrics"))
            .await
            .text()
            .contains("warden_policy_valid 1")
    );
}

/// Writes one version of a ConfigMap volume the way the kubelet does: the files in a new
/// hidden timestamped directory, a `..data_tmp` link to it renamed over `..data` (one
/// atomic step), links for new names through `..data`, links for names gone removed, the
/// old version's directory removed.
fn configmap_update(dir: &Path, version: u32, files: &[(&str, &str)]) {
    use std::os::unix::fs::symlink;
    let stamp = format!("..2026_12_02_05_00_0{version}.00000000{version}");
    std::fs::create_dir(dir.join(&stamp)).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(&stamp).join(name), text).unwrap();
    }
    let old = std::fs::read_link(dir.join("..data")).ok();
    symlink(&stamp, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    for (name, _) in files {
        if std::fs::symlink_metadata(dir.join(name)).is_err() {
            symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !files.iter().any(|(f, _)| *f == name) {
            std::fs::remove_file(dir.join(&name)).unwrap();
        }
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

#[tokio::test]
async fn a_configmap_volume_update_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    configmap_update(dir.path(), 1, &[("p.yaml", ALLOW_MINI)]);
    let w = Warden::start(&keyed_config(dir.path()));
    assert_eq!(
        chat_with_key(&w, BATCH_KEY, &chat("gpt-4o")).await.status,
        403
    );
    let policy = |w: &Warden| {
        let url = w.admin_url("/readyz");
        async move { get(&url).await.json()["policy"].clone() }
    };
    let first = policy(&w).await;

    // The same file, new content: only the hidden directory and `..data` change.
    let wider = ALLOW_MINI.replace("[gpt-4o-mini]", "[gpt-4o-mini, gpt-4o]");
    configmap_update(dir.path(), 2, &[("p.yaml", &wider)]);
    let applied = eventually(Duration::from_secs(2), || async {
        chat_with_key(&w, BATCH_KEY, &chat("gpt-4o")).await.status == 200
    })
    .await;
    assert!(applied, "the swapped ConfigMap was not applied within 2 s");
    let second = policy(&w).await;
    assert_ne!(second["digest"], first["digest"]);
    assert!(second["last_reload_error"].is_null(), "{second}");

    // A key removed and another added: the rule moves to a new file, and the hidden
    // directories are never read as policy (the rule would then be defined twice).
    let moved = ALLOW_MINI.replace("allow-mini", "allow-mini-moved");
    configmap_update(dir.path(), 3, &[("q.yaml", &moved)]);
    let moved_in = eventually(Duration::from_secs(2), || async {
        chat_with_key(&w, BATCH_KEY, &chat("gpt-4o")).await.status == 403
    })
    .await;
    assert!(moved_in, "the third version was not applied within 2 s");
    let third = policy(&w).await;
    assert!(third["last_reload_error"].is_null(), "{third}");
    assert_eq!(
        chat_with_key(&w, BATCH_KEY, &chat("gpt-4o-mini"))
            .await
            .status,
        200
    );
    let metrics = get(&w.admin_url("/metrics")).await.text();
    assert!(metrics.contains("warden_policy_valid 1"), "{metrics}");
    assert!(
        !metrics.contains("warden_policy_reloads_total{result=\"failure\"}"),
        "{metrics}"
    );
}
