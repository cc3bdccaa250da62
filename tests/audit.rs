//! The audit log end to end: records from a running Warden reach the archive and verify;
//! tampering (a flipped byte, a deleted segment, swapped records, a forged digest) is
//! caught; `kill -9` and restart keep the chain verifiable; a full spool refuses requests;
//! records carry per-tool decisions, the tools the model called, the subject as the policy
//! says, and (with `capture: redacted`) the redacted prompt and answer.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::issuer::{Key, TestIssuer};
use common::*;
use serde_json::{Value, json};

const PLANTED_EMAIL: &str = "jane.doe.planted@example.com";
const PLANTED_CARD: &str = "4111 1111 1111 1111";

struct Dirs {
    _tmp: tempfile::TempDir,
    spool: PathBuf,
    archive: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    Dirs {
        spool: tmp.path().join("spool"),
        archive: tmp.path().join("archive"),
        _tmp: tmp,
    }
}

fn config(d: &Dirs, provider: &str, audit_extra: &str) -> String {
    format!(
        "{provider}models:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n\
         audit:\n  chain_id: replica-a\n  spool_dir: {}\n  sink:\n    kind: file\n    dir: {}\n{audit_extra}",
        d.spool.display(),
        d.archive.display()
    )
}

const MOCK: &str = "providers:\n  up:\n    kind: mock\n";

fn verify(archive: &Path, key: &Path) -> (bool, String) {
    verify_with(archive, key, &[])
}

/// `warden audit verify --dir ARCHIVE --public-key KEY ARGS…`: success and its output.
fn verify_with(archive: &Path, key: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--dir"])
        .arg(archive)
        .arg("--public-key")
        .arg(key)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn public_key(d: &Dirs) -> PathBuf {
    d.spool.join("digest-signing-key.pub.pem")
}

async fn chat(w: &Warden, text: &str) -> u16 {
    post_json(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}),
    )
    .await
    .status
}

fn segments(archive: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![archive.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn records_reach_the_archive_verify_and_hold_no_pii() {
    let d = dirs();
    let w = Warden::start(&config(&d, MOCK, "  segment_max_bytes: 3000\n"));
    for i in 0..6 {
        assert_eq!(
            chat(
                &w,
                &format!("order {i} for {PLANTED_EMAIL}, card {PLANTED_CARD}")
            )
            .await,
            200
        );
    }
    let missing = post_json(
        &w.url("/v1/chat/completions"),
        &json!({"model": "nope", "messages": [{"role": "user", "content": PLANTED_EMAIL}]}),
    )
    .await;
    assert_eq!(missing.status, 404);
    let (status, _) = post_stream(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "stream it"}]}),
    )
    .await;
    assert_eq!(status, 200);
    stop(w);

    let (ok, report) = verify(&d.archive, &public_key(&d));
    assert!(ok, "{report}");
    assert!(report.contains("8 records"), "{report}");
    assert!(segments(&d.archive).len() >= 2, "several segments");
    let everything = all_text(&d.archive) + &all_text(&d.spool);
    assert!(
        // Not "4111" alone: hex hashes and signatures may hold any four digits.
        !everything.contains(PLANTED_EMAIL) && !everything.contains("4111 1111"),
        "no PII in any audit file"
    );
    let seg = std::fs::read_to_string(&segments(&d.archive)[0]).unwrap();
    assert!(
        seg.contains("\"status\":200") && seg.contains("\"chain\":\"replica-a\""),
        "{seg}"
    );
    assert!(
        all_text(&d.archive).contains("\"status\":404"),
        "denied and failed requests are recorded too"
    );
    assert!(
        seg.contains("\"usage\":{\"cached_tokens\":0,\"completion_tokens\":"),
        "non-stream usage is recorded: {seg}"
    );
    let streamed = all_text(&d.archive)
        .lines()
        .find(|l| l.contains("\"stream\":true"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        streamed.contains(&format!(
            "\"usage\":{{\"cached_tokens\":0,\"completion_tokens\":{},",
            o200k_tokens("You said: stream it")
        )),
        "stream usage: {streamed}"
    );
}

#[tokio::test]
async fn tampering_is_detected_and_named() {
    let d = dirs();
    let w = Warden::start(&config(&d, MOCK, "  segment_max_bytes: 2000\n"));
    for i in 0..10 {
        assert_eq!(chat(&w, &format!("request {i}")).await, 200);
    }
    stop(w);
    let key = public_key(&d);
    assert!(verify(&d.archive, &key).0);
    let copy = |name: &str| {
        let to = d.archive.parent().unwrap().join(name);
        let status = Command::new("cp")
            .arg("-r")
            .arg(&d.archive)
            .arg(&to)
            .status()
            .unwrap();
        assert!(status.success());
        to
    };

    let flipped = copy("flipped");
    let seg = segments(&flipped)[1].clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes
        .windows(10)
        .position(|w| w == b"\"status\":2")
        .unwrap()
        + 10;
    bytes[at] = b'5';
    std::fs::write(&seg, bytes).unwrap();
    let (ok, report) = verify(&flipped, &key);
    assert!(!ok && report.contains("was altered"), "{report}");

    let deleted = copy("deleted");
    std::fs::remove_file(&segments(&deleted)[1]).unwrap();
    let (ok, report) = verify(&deleted, &key);
    assert!(!ok && report.contains("missing"), "{report}");

    let swapped = copy("swapped");
    let seg = segments(&swapped)[0].clone();
    let text = std::fs::read_to_string(&seg).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2);
    lines.swap(0, 1);
    std::fs::write(&seg, lines.join("\n") + "\n").unwrap();
    let (ok, report) = verify(&swapped, &key);
    assert!(
        !ok && (report.contains("reordered") || report.contains("does not link")),
        "{report}"
    );

    // A digest re-signed with another key does not verify with the published one.
    let forged = copy("forged");
    let other = tempfile::tempdir().unwrap();
    let other_key = other.path().join("k.pem");
    let st = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&other_key)
        .status()
        .unwrap();
    assert!(st.success());
    let digest_path = forged.join("replica-a/digests/digest-00000001.json");
    let mut digest: warden::audit::digest::Digest =
        serde_json::from_slice(&std::fs::read(&digest_path).unwrap()).unwrap();
    digest.segments.pop();
    let pem = std::fs::read_to_string(&other_key).unwrap();
    let signer =
        <ed25519_dalek::SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&pem)
            .unwrap();
    digest.sign(&signer).unwrap();
    std::fs::write(&digest_path, serde_json::to_vec(&digest).unwrap()).unwrap();
    let (ok, report) = verify(&forged, &key);
    assert!(
        !ok && report.contains("signature does not verify")
            && report.contains("not covered by a signed digest"),
        "{report}"
    );
}

#[tokio::test]
async fn kill_9_mid_stream_then_restart_keeps_the_chain() {
    let d = dirs();
    let slow = MockProvider::start(&["--tokens-per-sec", "5"]);
    let provider = format!(
        "providers:\n  up:\n    kind: vllm\n    base_url: {}\n",
        slow.base_url()
    );
    let cfg = config(&d, &provider, "  segment_max_bytes: 2500\n");
    let mut w = Warden::start(&cfg);
    for i in 0..4 {
        assert_eq!(chat(&w, &format!("before crash {i}")).await, 200);
    }
    let url = w.url("/v1/chat/completions");
    let stream = tokio::spawn(async move {
        post_stream(
            &url,
            &json!({"model": "gpt-4o-mini", "stream": true,
            "messages": [{"role": "user", "content": "a b c d e f g h i j"}]}),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.child.kill().unwrap(); // SIGKILL mid-stream
    let _ = w.child.wait();
    let _ = stream.await;
    drop(w);

    let w = Warden::start(&cfg);
    for i in 0..3 {
        assert_eq!(chat(&w, &format!("after restart {i}")).await, 200);
    }
    stop(w);
    let (ok, report) = verify(&d.archive, &public_key(&d));
    assert!(ok, "{report}");
    // The 7 completed requests are all there; the stream cut by the crash never finished,
    // so its record was never promised. Page-cache writes survive a process kill, so no
    // gap marker is needed here (one is written only when a torn tail is truncated).
    assert!(report.contains("7 records (0 gap markers)"), "{report}");
}

#[tokio::test]
async fn a_full_spool_refuses_requests_instead_of_losing_records() {
    let d = dirs();
    let w = Warden::start(&config(
        &d,
        MOCK,
        "  spool_max_bytes: 1\n  segment_max_age_seconds: 3600\n  on_full: reject\n",
    ));
    assert_eq!(chat(&w, "first").await, 200);
    let refused = eventually(Duration::from_secs(3), || async {
        let r = post_json(
            &w.url("/v1/chat/completions"),
            &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
        r.status == 503 && r.json()["error"]["code"] == "audit_unavailable"
    })
    .await;
    assert!(refused, "a full spool must refuse requests");
    let metrics = get(&w.admin_url("/metrics")).await.text();
    assert!(metrics.contains("warden_audit_rejected_total"), "{metrics}");
}

const AUDIT_POLICY: &str = r#"apiVersion: warden/v1
kind: Policy
rules:
  - name: pricing-service
    effect: allow
    match:
      roles: [pricing-service]
    settings:
      audit: {subject: plain}
  - name: shoppers
    effect: allow
    match:
      roles: [storefront-assistant]
    settings:
      pii: shop
      tools: {deny: ["refund_*"]}
      audit: {capture: redacted}
"#;

fn records(d: &Dirs) -> Vec<Value> {
    audit_records(&d.archive, &d.spool)
}

/// Policy rules decide how a request is recorded: the shoppers' rule captures the
/// redacted prompt and answer (placeholders, never the planted value; the model's tool
/// call included) and forbids refund tools, which shows per tool; the pricing service's
/// subject is written as its token says, a shopper's (an e-mail address) only as an HMAC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_follow_the_policy_for_tools_subjects_and_capture() {
    let d = dirs();
    let key = Key::rsa("k1");
    let issuer = TestIssuer::start(vec![key.clone()]).await;
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("p.yaml"), AUDIT_POLICY).unwrap();
    let extra = format!(
        "auth:\n  jwt_issuers:\n    - issuer: {}\n      audiences: [warden]\n      claims:\n        tenant: tenant_id\n\
         policy:\n  dir: {}\n\
         pii:\n  profiles:\n    shop:\n      actions: {{EMAIL: pseudonymize}}\n",
        issuer.url(),
        policies.path().display()
    );
    let w = Warden::start(&(config(&d, MOCK, "") + &extra));
    let token = |sub: &str, role: &str| {
        let now = jsonwebtoken::get_current_timestamp();
        key.sign(
            &json!({"iss": issuer.url(), "sub": sub, "aud": "warden", "exp": now + 300,
                    "iat": now, "tenant_id": "acme-retail", "roles": [role]}),
            None,
        )
    };
    let shopper = token(PLANTED_EMAIL, "storefront-assistant");
    let lookup = json!({"type": "function", "function": {"name": "lookup_order",
        "parameters": {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]}}});
    let refund = json!({"type": "function", "function": {"name": "refund_order", "parameters": {"type": "object"}}});
    let ask = format!("where is the order of {PLANTED_EMAIL}?");
    let r = chat_with_key(
        &w,
        &shopper,
        &json!({"model": "gpt-4o-mini", "tool_choice": "required",
        "tools": [lookup], "messages": [{"role": "user", "content": ask}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = chat_with_key(
        &w,
        &shopper,
        &json!({"model": "gpt-4o-mini",
        "tools": [lookup, refund], "messages": [{"role": "user", "content": "refund it"}]}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let (status, _) = send_stream(
        &w,
        &shopper,
        &json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": format!("mail {PLANTED_EMAIL} the invoice")}]}),
    )
    .await;
    assert_eq!(status, 200);
    let service = token("svc-pricing-bot", "pricing-service");
    let r = chat_with_key(
        &w,
        &service,
        &json!({"model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "price check"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    stop(w);

    let recs = records(&d);
    assert_eq!(recs.len(), 4, "{recs:?}");
    let [called, denied, streamed, service] = &recs[..] else {
        unreachable!()
    };
    assert_eq!(
        called["tool_decisions"],
        json!([{"name": "lookup_order", "decision": "allow"}])
    );
    assert_eq!(
        called["tool_calls"],
        json!([{"name": "lookup_order", "count": 1}])
    );
    let prompt = without_nonces(called["capture"]["prompt"].as_str().unwrap());
    assert!(
        prompt.contains("where is the order of <EMAIL_1>?"),
        "{prompt}"
    );
    let answer = without_nonces(called["capture"]["answer"].as_str().unwrap());
    assert!(
        answer.contains("[tool call] lookup_order(") && answer.contains("<EMAIL_1>"),
        "{answer}"
    );
    assert_eq!(
        denied["tool_decisions"],
        json!([{"name": "lookup_order", "decision": "allow"}, {"name": "refund_order", "decision": "deny"}])
    );
    assert_eq!(denied["decision"], "deny");
    assert!(
        denied.get("capture").is_none(),
        "nothing was sent, nothing captured"
    );
    assert_eq!(
        without_nonces(streamed["capture"]["answer"].as_str().unwrap()),
        "You said: mail <EMAIL_1> the invoice",
        "the stream's answer as the provider wrote it"
    );
    assert_eq!(service["subject"], "svc-pricing-bot");
    assert_eq!(service["subject_plain"], true);
    assert!(service.get("capture").is_none());
    let hashed = called["subject"].as_str().unwrap();
    assert!(
        hashed.len() == 64 && called.get("subject_plain").is_none(),
        "{hashed}"
    );
    let everything = all_text(&d.archive) + &all_text(&d.spool);
    assert!(
        !everything.contains(PLANTED_EMAIL),
        "no raw value in any record"
    );
    let (ok, report) = verify(&d.archive, &public_key(&d));
    assert!(ok, "{report}");
}

async fn send_stream(w: &Warden, key: &str, body: &Value) -> (u16, String) {
    let auth = format!("Bearer {key}");
    let r = send(
        "POST",
        &w.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        body.to_string(),
    )
    .await;
    (r.status, r.text())
}

fn rfc3339(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Two replicas write to one archive with a signed digest every second (also while
/// idle), each naming the other chains it saw. Cutting the newest digests and segments
/// of one chain, or a whole chain, fails `verify --to`; a chain closed on purpose needs
/// no digest after its last.
#[tokio::test]
async fn the_end_of_the_log_is_anchored_by_scheduled_digests_and_the_other_chains() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let key = tmp.path().join("signing.pem");
    let keygen = Command::new(BIN)
        .args(["audit", "keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let public = tmp.path().join("signing.pub.pem");
    let replica = |chain: &str, extra: &str| {
        format!(
            "{MOCK}models:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n\
             audit:\n  chain_id: {chain}\n  spool_dir: {spool}\n  signing_key_file: {key}\n  \
             digest_interval_seconds: 1\n  segment_max_age_seconds: 1\n  sink:\n    kind: file\n    dir: {archive}\n{extra}",
            spool = tmp.path().join(format!("spool-{chain}")).display(),
            key = key.display(),
            archive = archive.display()
        )
    };
    let a = Warden::start(&replica("replica-a", ""));
    let b = Warden::start(&replica("replica-b", ""));
    for i in 0..3 {
        assert_eq!(chat(&a, &format!("a {i}")).await, 200);
        assert_eq!(chat(&b, &format!("b {i}")).await, 200);
    }
    // Idle for a while: digests keep coming, and each names the other chain.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    // b stops first, so a's final digest names b's final digest.
    stop(b);
    stop(a);
    let now = rfc3339(std::time::SystemTime::now());
    let (ok, report) = verify_with(&archive, &public, &["--to", &now]);
    assert!(ok, "{report}");
    let digests = |chain: &str| -> Vec<PathBuf> {
        let mut d: Vec<PathBuf> = std::fs::read_dir(archive.join(chain).join("digests"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        d.sort();
        d
    };
    assert!(digests("replica-b").len() >= 4, "digests while idle");
    let named = std::fs::read_to_string(digests("replica-a").last().unwrap()).unwrap();
    assert!(named.contains("\"replica-b\""), "{named}");

    // Cut replica-b's tail: its newest three digests (idle ones and the final one).
    let cut = tmp.path().join("cut");
    assert!(
        Command::new("cp")
            .arg("-r")
            .arg(&archive)
            .arg(&cut)
            .status()
            .unwrap()
            .success()
    );
    for d in digests("replica-b").iter().rev().take(3) {
        std::fs::remove_file(cut.join("replica-b/digests").join(d.file_name().unwrap())).unwrap();
    }
    let (ok, report) = verify_with(&cut, &public, &["--to", &now]);
    assert!(!ok, "{report}");
    assert!(
        report.contains("chain replica-b: its digests end at")
            && report.contains("the end of the chain was cut"),
        "{report}"
    );
    assert!(
        report.contains("chain replica-b: the newest signed digest is from"),
        "{report}"
    );

    // Remove a whole chain: the other one names it.
    let gone = tmp.path().join("gone");
    assert!(
        Command::new("cp")
            .arg("-r")
            .arg(&archive)
            .arg(&gone)
            .status()
            .unwrap()
            .success()
    );
    std::fs::remove_dir_all(gone.join("replica-a")).unwrap();
    let (ok, report) = verify_with(&gone, &public, &["--to", &now]);
    assert!(
        !ok && report.contains("chain replica-a is missing"),
        "{report}"
    );

    // An hour later, open chains owe a digest; a closed one does not.
    let later = rfc3339(std::time::SystemTime::now() + Duration::from_secs(3600));
    let (ok, report) = verify_with(&archive, &public, &["--to", &later]);
    assert!(
        !ok && report.contains("chain replica-a: the newest signed digest"),
        "{report}"
    );
    let closed_archive = tmp.path().join("closed-archive");
    let closing = replica("replica-c", "  close_on_shutdown: true\n").replace(
        &archive.display().to_string(),
        &closed_archive.display().to_string(),
    );
    let c = Warden::start(&closing);
    assert_eq!(chat(&c, "c").await, 200);
    stop(c);
    let (ok, report) = verify_with(&closed_archive, &public, &["--to", &later]);
    assert!(ok, "{report}");
    // Without --to the end is not checked, and the output says so.
    let (ok, report) = verify(&cut, &public);
    assert!(report.contains("pass --to"), "{report}");
    assert!(!ok, "the registry still sees the cut: {report}");
}

/// The disk fills up mid-append (a file size limit on the Warden process, so a write
/// stops part-way): whole answers are refused with 503, a stream ends with an error event
/// instead of `[DONE]`, and no torn line stays behind. After a restart without the limit,
/// the log verifies and holds exactly one record per request that was answered.
#[tokio::test]
async fn a_full_disk_mid_append_refuses_and_leaves_no_torn_line() {
    let d = dirs();
    let config = config(&d, MOCK, "  segment_max_bytes: 1048576\n");
    // bash's ulimit -f counts KiB; an ignored SIGXFSZ turns the limit into EFBIG.
    let w = Warden::start_under(&config, "ulimit -f 24; trap '' XFSZ");
    let (mut answered, mut refused, mut cut_streams) = (0, 0, 0);
    for i in 0..80 {
        if i % 2 == 0 {
            match chat(&w, &format!("whole {i}")).await {
                200 => answered += 1,
                503 => refused += 1,
                other => panic!("unexpected status {other}"),
            }
        } else {
            let (status, chunks) = post_stream(
                &w.url("/v1/chat/completions"),
                &json!({"model": "gpt-4o-mini", "stream": true,
                        "messages": [{"role": "user", "content": format!("stream {i}")}]}),
            )
            .await;
            assert_eq!(status, 200);
            let events = stream_events(&chunks);
            if events.last().is_some_and(|e| e == "[DONE]") {
                answered += 1;
            } else {
                assert!(
                    events.iter().any(|e| e.contains("audit_unavailable")),
                    "{events:?}"
                );
                cut_streams += 1;
            }
        }
    }
    assert!(
        refused > 0 && cut_streams > 0,
        "the limit was reached ({answered} answered)"
    );
    stop(w);
    let w = Warden::start(&config);
    stop(w);
    let (ok, report) = verify(&d.archive, &public_key(&d));
    assert!(ok, "{report}");
    let records = audit_records(&d.archive, &d.spool);
    assert_eq!(records.len(), answered, "one record per answered request");
}

/// A request offering hundreds of tools (each valid) cannot make its record grow
/// without bound: the record keeps 128 and counts the rest.
#[tokio::test]
async fn records_stay_bounded_whatever_the_request_offers() {
    let d = dirs();
    let w = Warden::start(&config(&d, MOCK, ""));
    let tools: Vec<Value> = (0..500)
        .map(|i| json!({"type": "function", "function": {"name": format!("tool_{i:03}")}}))
        .collect();
    let r = post_json(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "tools": tools,
                "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    stop(w);
    let records = records(&d);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["tools"].as_array().unwrap().len(), 128);
    assert_eq!(records[0]["cut"]["tools"], 372);
}
