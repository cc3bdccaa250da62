//! The audit log's S3 sink against a real S3-compatible server with Object Lock
//! (SeaweedFS on 127.0.0.1): segments and digests arrive compressed, checksummed and
//! locked; a locked version cannot be deleted; an outage of the store loses nothing; a
//! replica told to stop ships its whole spool through a slow store and closes its chain;
//! and `warden audit verify --s3` proves the result.

mod common;

use std::process::Command;
use std::time::Duration;

use common::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use common::*;
use serde_json::json;

/// A digest signing key made by `warden audit keygen` in `dir` (`signing.pem`, with
/// `signing.pub.pem` next to it).
fn keygen(dir: &std::path::Path) -> std::path::PathBuf {
    let key = dir.join("signing.pem");
    let out = Command::new(BIN)
        .args(["audit", "keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    key
}

fn config(spool: &std::path::Path, s3: &S3Server, bucket: &str) -> String {
    let key = keygen(spool);
    format!(
        "providers:\n  up:\n    kind: mock\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n\
         audit:\n  chain_id: replica-s3\n  spool_dir: {}\n  signing_key_file: {}\n  segment_max_age_seconds: 1\n  segment_max_bytes: 4000\n  \
         sink:\n    kind: s3\n    bucket: {bucket}\n    prefix: audit/prod\n    endpoint: {}\n    path_style: true\n    \
         access_key_id: {ACCESS_KEY}\n    secret_access_key: {SECRET_KEY}\n    timeout_ms: 10000\n    \
         object_lock:\n      mode: compliance\n      retain_days: 1\n",
        spool.display(),
        key.display(),
        s3.endpoint()
    )
}

async fn chat(w: &Warden, i: usize) {
    let r = post_json(&w.url("/v1/chat/completions"), &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("order {i}")}]})).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Waits (up to 40 s) until everything spooled has reached the store.
async fn spool_drained(w: &Warden) -> bool {
    eventually(Duration::from_secs(40), || async {
        get(&w.admin_url("/metrics"))
            .await
            .text()
            .lines()
            .any(|l| l == "warden_audit_spool_bytes 0")
    })
    .await
}

/// The current version of an object, whole.
async fn object(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bytes::Bytes {
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
}

fn verify_s3(s3: &S3Server, bucket: &str, key: &std::path::Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args([
            "audit",
            "verify",
            "--s3",
            &format!("s3://{bucket}/audit/prod"),
            "--s3-endpoint",
            &s3.endpoint(),
            "--s3-path-style",
        ])
        .arg("--public-key")
        .arg(key)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_reach_s3_locked_and_verify() {
    let s3 = S3Server::start();
    s3.create_locked_bucket("audit-locked").await;
    let spool = tempfile::tempdir().unwrap();
    let mut w = Warden::start(&config(spool.path(), &s3, "audit-locked"));
    for i in 0..12 {
        chat(&w, i).await;
    }
    // The store allocates volumes on the first writes; let the spool drain before stopping.
    let drained = spool_drained(&w).await;
    assert!(drained, "spool did not drain: {}", w.logs());
    w.terminate();
    assert_eq!(
        tokio::task::spawn_blocking(move || w.wait_exit(Duration::from_secs(20)))
            .await
            .unwrap(),
        Some(0)
    );

    let client = s3.client();
    let listed = client
        .list_objects_v2()
        .bucket("audit-locked")
        .prefix("audit/prod/")
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    assert!(
        keys.iter()
            .any(|k| k.ends_with(".jsonl.zst") && k.starts_with("audit/prod/replica-s3/")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.contains("/digests/digest-00000001.json")),
        "{keys:?}"
    );
    let segment = keys.iter().find(|k| k.ends_with(".jsonl.zst")).unwrap();

    let retention = client
        .get_object_retention()
        .bucket("audit-locked")
        .key(segment)
        .send()
        .await
        .unwrap();
    let r = retention.retention().expect("retention set");
    assert_eq!(r.mode().map(|m| m.as_str()), Some("COMPLIANCE"));
    let until = r.retain_until_date().unwrap().secs();
    assert!(
        until > (jsonwebtoken::get_current_timestamp() + 3600) as i64,
        "retained into the future"
    );

    let head = client
        .head_object()
        .bucket("audit-locked")
        .key(segment)
        .send()
        .await
        .unwrap();
    let version = head.version_id().map(str::to_string);
    let deleted = client
        .delete_object()
        .bucket("audit-locked")
        .key(segment)
        .set_version_id(version)
        .send()
        .await;
    assert!(
        deleted.is_err(),
        "deleting a locked version must be refused"
    );

    let public = spool.path().join("signing.pub.pem");
    let (ok, report) = verify_s3(&s3, "audit-locked", &public);
    assert!(ok, "{report}");
    assert!(report.contains("12 records"), "{report}");

    // Warden's own uploads never replace an object: same content is accepted (a retry
    // after a crash), other content under the same key is refused.
    let sink_config = s3.sink_config("audit-locked", "probe");
    let put = tokio::task::spawn_blocking(move || {
        let sink = warden::audit::s3::S3Sink::new(&sink_config).unwrap();
        let first = sink.put("c/digests/digest-00000001.json", b"one");
        let again = sink.put("c/digests/digest-00000001.json", b"one");
        let other = sink.put("c/digests/digest-00000001.json", b"two");
        (
            first.is_ok(),
            again.is_ok(),
            other.err().map(|e| e.to_string()),
        )
    })
    .await
    .unwrap();
    assert!(put.0 && put.1, "{put:?}");
    assert!(
        put.2
            .as_deref()
            .is_some_and(|e| e.contains("already exists with different content")),
        "{put:?}"
    );

    // Someone with bucket access overwrites a segment (a new version: Object Lock keeps
    // the old one). (Keys that climb out of the download directory are refused by
    // SeaweedFS itself; `s3::tests` checks that verification never follows them.)
    let original = object(&client, "audit-locked", segment).await;
    let mut forged = zstd::decode_all(&original[..]).unwrap();
    let at = forged
        .windows(10)
        .position(|w| w == b"\"status\":2")
        .unwrap()
        + 10;
    forged[at] = b'5';
    client
        .put_object()
        .bucket("audit-locked")
        .key(segment)
        .body(zstd::encode_all(&forged[..], 3).unwrap().into())
        .send()
        .await
        .unwrap();
    let (ok, report) = verify_s3(&s3, "audit-locked", &public);
    assert!(!ok, "{report}");
    assert!(report.contains("was overwritten"), "{report}");
    assert!(
        !report.contains("was altered"),
        "the first version is the one verified: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_loses_nothing() {
    let mut s3 = S3Server::start();
    s3.create_locked_bucket("audit-outage").await;
    let spool = tempfile::tempdir().unwrap();
    let mut w = Warden::start(&config(spool.path(), &s3, "audit-outage"));
    for i in 0..5 {
        chat(&w, i).await;
    }
    s3.stop();
    for i in 5..15 {
        chat(&w, i).await; // the spool keeps accepting while the store is down
    }
    let failing = eventually(Duration::from_secs(10), || async {
        let m = get(&w.admin_url("/metrics")).await.text();
        m.lines()
            .any(|l| l.starts_with("warden_audit_upload_errors_total") && !l.ends_with(" 0"))
    })
    .await;
    assert!(failing, "upload errors are counted while S3 is down");
    s3.resume(); // blocks this worker thread briefly; Warden is another process
    for i in 15..20 {
        chat(&w, i).await;
    }
    // Everything spooled during the outage drains to the store once it is back.
    let drained = spool_drained(&w).await;
    assert!(
        drained,
        "spool did not drain after the store came back: {}",
        w.logs()
    );
    w.terminate();
    let (code, logs) =
        tokio::task::spawn_blocking(move || (w.wait_exit(Duration::from_secs(30)), w.logs()))
            .await
            .unwrap();
    assert_eq!(code, Some(0), "{logs}");
    let (ok, report) = verify_s3(&s3, "audit-outage", &spool.path().join("signing.pub.pem"));
    assert!(ok, "{report}\n{}", logs);
    assert!(
        report.contains("20 records"),
        "every record arrived: {report}"
    );
}

/// A store behind a slow link: every chunk from Warden to the store waits `delay`.
async fn slow_link(to: std::net::SocketAddr, delay: Duration) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(to).await else {
                continue;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = client_read.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_going_away_ships_everything_through_a_slow_store_and_closes_its_chain() {
    let s3 = S3Server::start();
    s3.create_locked_bucket("audit-shutdown").await;
    let store: std::net::SocketAddr = s3.endpoint().trim_start_matches("http://").parse().unwrap();
    let link = slow_link(store, Duration::from_millis(300)).await;
    let spool = tempfile::tempdir().unwrap();
    // Nothing is shipped on its own before the end: segments seal after an hour.
    let config = config(spool.path(), &s3, "audit-shutdown")
        .replace(&s3.endpoint(), &format!("http://{link}"))
        .replace(
            "segment_max_age_seconds: 1",
            "segment_max_age_seconds: 3600",
        )
        .replace("segment_max_bytes: 4000", "segment_max_bytes: 8388608")
        .replace(
            "  chain_id: replica-s3\n",
            "  chain_id: replica-s3\n  close_on_shutdown: true\n",
        );
    let mut w = Warden::start(&config);
    for i in 0..10 {
        chat(&w, i).await;
    }
    // The pod is told to go away with everything still in its spool.
    w.terminate();
    let (code, logs) =
        tokio::task::spawn_blocking(move || (w.wait_exit(Duration::from_secs(60)), w.logs()))
            .await
            .unwrap();
    assert_eq!(code, Some(0), "{logs}");
    assert!(logs.contains("audit spool flushed"), "{logs}");

    // Everything reached the store, and the chain's last digest says it is closed.
    let (ok, report) = verify_s3(&s3, "audit-shutdown", &spool.path().join("signing.pub.pem"));
    assert!(ok, "{report}\n{logs}");
    assert!(report.contains("10 records"), "{report}");
    let client = s3.client();
    let listed = client
        .list_objects_v2()
        .bucket("audit-shutdown")
        .prefix("audit/prod/replica-s3/digests/")
        .send()
        .await
        .unwrap();
    let last = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .max()
        .expect("a digest")
        .to_string();
    let body = object(&client, "audit-shutdown", &last).await;
    let digest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(digest["closed"], true, "{digest}");
}
