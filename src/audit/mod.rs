//! The tamper-evident audit log: one hash-chained entry per request (denied ones
//! included) appended to a local spool before the response finishes, fsync'd in groups,
//! shipped in sealed segments to a sink, and covered by Ed25519-signed digests.
//! Entries hold counts, names, hashes and decisions — never prompt text, PII or secrets;
//! subjects are pseudonymised with an HMAC.

mod chain;
pub mod cli;
pub mod digest;
pub mod record;
pub mod s3;
mod sink;
mod spool;
pub mod verify;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::{AuditConfig, OnFull};
use crate::telemetry::metrics;
use digest::{Digest, SegmentRef};
use record::{Body, RequestRecord};
use sink::Sink;
use spool::{Spool, SpoolError};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit spool is full")]
    Full,
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// Digest bookkeeping, persisted in the spool so it survives restarts.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DigestState {
    number: u64,
    last_signature: String,
    pending: Vec<SegmentRef>,
    /// A digest signed but not confirmed stored: the sink may hold it already (its
    /// answer was lost), so it is sent again byte for byte, never rebuilt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unsent: Option<Digest>,
}

pub struct Audit {
    chain: String,
    config: AuditConfig,
    spool: Mutex<Spool>,
    sink: Sink,
    signer: SigningKey,
    subject_key: Vec<u8>,
    state: Mutex<DigestState>,
    state_path: PathBuf,
    last_digest: Mutex<Instant>,
    full: AtomicBool,
    /// The last fsync of the spool failed: requests are refused until one succeeds.
    sync_failed: AtomicBool,
    /// Held by whoever ships (the shipping thread, or a flush at shutdown), so a flush
    /// waits for a pass in progress and then ships everything that is left.
    shipping: Mutex<()>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Audit({})", self.chain)
    }
}

impl Audit {
    /// Opens the spool (recovering it), then starts the group-commit and shipping threads.
    pub fn start(config: &AuditConfig) -> anyhow::Result<Arc<Audit>> {
        let max_age = Duration::from_secs(config.segment_max_age_seconds);
        let spool = Spool::open(
            &config.spool_dir,
            &config.chain_id,
            config.segment_max_bytes,
            max_age,
        )?;
        let sink = Sink::from_config(&config.sink)?;
        let signer = match &config.signing_key_file {
            Some(path) => digest::load_key(path)?,
            None => {
                let path = config.spool_dir.join("digest-signing-key.pem");
                tracing::warn!(
                    key = %path.display(),
                    "audit: the digest signing key lives in the spool, beside the records it protects; set audit.signing_key_file (a mounted secret) in production"
                );
                digest::load_or_create_key(&path)?
            }
        };
        let subject_key = match std::env::var(&config.subject_key_env) {
            Ok(k) if !k.is_empty() => k.into_bytes(),
            _ => {
                tracing::warn!(
                    env = %config.subject_key_env,
                    "audit: no subject HMAC key set; using a random key, so pseudonyms change on restart"
                );
                let mut k = vec![0u8; 32];
                rand::fill(&mut k[..]);
                k
            }
        };
        let state_path = spool.dir().join("digest-state.json");
        let state = load_state(&state_path)?;
        let audit = Arc::new(Audit {
            chain: config.chain_id.clone(),
            config: config.clone(),
            spool: Mutex::new(spool),
            sink,
            signer,
            subject_key,
            state: Mutex::new(state),
            state_path,
            last_digest: Mutex::new(Instant::now()),
            full: AtomicBool::new(false),
            sync_failed: AtomicBool::new(false),
            shipping: Mutex::new(()),
        });
        let committer = audit.clone();
        std::thread::Builder::new()
            .name("audit-fsync".into())
            .spawn(move || {
                let every = Duration::from_millis(committer.config.fsync_interval_ms.max(1));
                loop {
                    std::thread::sleep(every);
                    let handle = committer.spool.lock().ok().and_then(|s| s.sync_handle());
                    if let Some(file) = handle {
                        committer.note_sync(file.sync_data());
                    }
                }
            })?;
        let shipper = audit.clone();
        std::thread::Builder::new()
            .name("audit-ship".into())
            .spawn(move || {
                let mut failures = 0u32;
                loop {
                    // Back off while the sink fails: 0.2 s doubling up to 10 s.
                    let wait = 200u64.saturating_mul(1 << failures.min(6)).min(10_000);
                    std::thread::sleep(Duration::from_millis(wait));
                    failures = if shipper.ship() { 0 } else { failures + 1 };
                }
            })?;
        Ok(audit)
    }

    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// Whether new requests must be refused (`on_full: reject`) or held (`block`): the
    /// spool is full, or its last fsync failed.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire) || self.sync_failed.load(Ordering::Acquire)
    }

    /// Acts on an fsync of the open segment: a failure is logged and counted, the
    /// segment is closed (later entries go to a new file; sealing retries the fsync) and
    /// requests are refused until an fsync succeeds again.
    fn note_sync(&self, result: std::io::Result<()>) {
        match result {
            Ok(()) => self.sync_failed.store(false, Ordering::Release),
            Err(e) => {
                metrics().audit_sync_errors.inc();
                tracing::error!(error = %e, "audit: fsync of the spool failed; refusing requests until it succeeds");
                self.sync_failed.store(true, Ordering::Release);
                if let Ok(mut spool) = self.spool.lock() {
                    spool.rotate_after_sync_failure();
                }
            }
        }
    }

    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    pub fn on_full(&self) -> OnFull {
        self.config.on_full
    }

    /// HMAC-SHA256 of a subject, hex: stable per key, not reversible without it.
    pub fn pseudonymize(&self, tenant: Option<&str>, subject: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.subject_key) else {
            return String::new();
        };
        mac.update(tenant.unwrap_or("").as_bytes());
        mac.update(&[0]);
        mac.update(subject.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Appends a request's entry (to the page cache; fsync follows in the next group).
    pub fn record(&self, record: RequestRecord) -> Result<u64, AuditError> {
        // The canonical JSON is made before taking the lock; only placing it in the chain
        // and writing it happen under the lock.
        let prepared = chain::prepare(
            record::SCHEMA_VERSION,
            &self.chain,
            &Body::Request(Box::new(record)),
        )
        .map_err(SpoolError::from)?;
        let mut spool = self.spool.lock().map_err(|_| AuditError::Full)?;
        let seq = spool.append_prepared(&prepared)?;
        metrics().audit_records.inc();
        Ok(seq)
    }

    /// Seals old segments, ships sealed ones, writes a digest when due; false when the
    /// sink refused something (it is retried).
    fn ship(&self) -> bool {
        let _shipping = self.shipping.lock().unwrap_or_else(|p| p.into_inner());
        // Only cheap bookkeeping under the lock appends take; fsyncs happen outside it.
        let (dir, rotated) = match self.spool.lock() {
            Ok(mut spool) => {
                if let Err(e) = spool.seal_if_old() {
                    tracing::error!(error = %e, "audit: sealing failed");
                }
                (spool.dir().to_path_buf(), spool.take_rotated())
            }
            Err(_) => return false,
        };
        if let Err((e, rest)) = spool::seal_rotated(&dir, rotated) {
            tracing::error!(error = %e, "audit: sealing failed; will retry");
            if let Ok(mut spool) = self.spool.lock() {
                spool.requeue(rest);
            }
        }
        let bytes = spool::spool_bytes(&dir);
        metrics().audit_spool_bytes.set(bytes as i64);
        self.full
            .store(bytes >= self.config.spool_max_bytes, Ordering::Release);
        let sealed = spool::list_sealed(&dir).unwrap_or_default();
        let oldest = sealed
            .first()
            .and_then(|s| std::fs::metadata(&s.path).ok())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .map_or(0.0, |d| d.as_secs_f64());
        metrics().audit_oldest_unshipped_seconds.set(oldest);
        let mut healthy = true;
        for seg in sealed {
            if let Err(e) = self.ship_segment(&seg) {
                metrics().audit_upload_errors.inc();
                tracing::error!(error = %e, segment = %seg.path.display(), "audit: shipping failed; will retry");
                healthy = false;
                break;
            }
        }
        let due = self
            .last_digest
            .lock()
            .is_ok_and(|t| t.elapsed() >= Duration::from_secs(self.config.digest_interval_seconds));
        if due && healthy {
            healthy = self.write_digest(false);
        }
        healthy
    }

    fn ship_segment(&self, seg: &spool::Sealed) -> anyhow::Result<()> {
        let bytes = std::fs::read(&seg.path)?;
        let date = first_record_date(&bytes).unwrap_or_else(|| "0000/00/00".into());
        let file = seg
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let name = format!("{}/{date}/{file}", self.chain);
        self.sink.put(&name, &bytes)?;
        let reference = SegmentRef {
            name,
            sha256: hex::encode(Sha256::digest(&bytes)),
            first_seq: seg.first_seq,
            last_seq: seg.last_seq,
        };
        {
            let mut state = self
                .state
                .lock()
                .map_err(|_| anyhow::anyhow!("digest state poisoned"))?;
            if !state.pending.iter().any(|p| p.name == reference.name) {
                state.pending.push(reference);
            }
            self.save_state(&state)?;
        }
        // Only after the sink confirmed the write and the digest state holds the segment.
        std::fs::remove_file(&seg.path)?;
        Ok(())
    }

    fn save_state(&self, state: &DigestState) -> anyhow::Result<()> {
        let tmp = self.state_path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(state)?)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &self.state_path)?;
        Ok(())
    }

    /// Signs and stores a digest of the segments shipped since the last one — also when
    /// there are none, so the newest digest always says how far the log reached; `closed`
    /// marks the chain's last. A digest whose upload failed is sent again unchanged first.
    /// False when the sink refused it.
    fn write_digest(&self, closed: bool) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if state.unsent.is_some() {
            if !self.send_digest(&mut state) {
                return false;
            }
            if !closed {
                return true; // that was this interval's digest
            }
        }
        // Listing the sink can fail; the digest then names no other chains.
        let chains = match self.sink.latest_digests() {
            Ok(mut chains) => {
                chains.remove(&self.chain);
                chains
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit: cannot list the sink's chains for the digest");
                Default::default()
            }
        };
        let mut d = Digest {
            v: 1,
            chain: self.chain.clone(),
            number: state.number + 1,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            segments: state.pending.clone(),
            prev_signature: state.last_signature.clone(),
            signature: String::new(),
            interval_seconds: Some(self.config.digest_interval_seconds),
            closed,
            chains,
        };
        if let Err(e) = d.sign(&self.signer) {
            tracing::error!(error = %e, "audit: signing a digest failed");
            return false;
        }
        state.unsent = Some(d);
        if let Err(e) = self.save_state(&state) {
            tracing::error!(error = %e, "audit: saving digest state failed");
            state.unsent = None;
            return false;
        }
        self.send_digest(&mut state)
    }

    /// Uploads the unsent digest; on success it becomes the chain's newest.
    fn send_digest(&self, state: &mut DigestState) -> bool {
        let Some(d) = state.unsent.clone() else {
            return true;
        };
        let name = format!("{}/digests/digest-{:08}.json", self.chain, d.number);
        let stored = serde_json::to_vec_pretty(&d)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| self.sink.put(&name, &bytes));
        match stored {
            Ok(()) => {
                if let Ok(mut t) = self.last_digest.lock() {
                    *t = Instant::now();
                }
                state.number = d.number;
                state.last_signature = d.signature.clone();
                state.pending.retain(|p| !d.segments.contains(p));
                state.unsent = None;
                if let Err(e) = self.save_state(state) {
                    tracing::error!(error = %e, "audit: saving digest state failed");
                }
                true
            }
            Err(e) => {
                metrics().audit_upload_errors.inc();
                tracing::error!(error = %e, "audit: writing digest failed; will retry");
                false
            }
        }
    }

    /// Seals the open segment, ships everything and writes a final digest (shutdown).
    pub fn flush(&self) {
        // The shipping pass seals it, so there is one sealer at a time.
        if let Ok(mut spool) = self.spool.lock() {
            spool.close();
        }
        self.ship();
        if !self.write_digest(self.config.close_on_shutdown) {
            tracing::error!(
                "audit: final digest not stored; its segments stay pending for the next one"
            );
        }
    }
}

/// The digest bookkeeping of the spool: numbering and the last signature continue from it,
/// so a file that exists but cannot be read stops the start instead of restarting the
/// digest chain at 1 (which verification would report as a broken chain).
fn load_state(path: &std::path::Path) -> anyhow::Result<DigestState> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: unreadable digest state ({e}); restore it from a backup, or rebuild it from the newest digest in the sink (its `number` and `signature`)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DigestState::default()),
        Err(e) => Err(anyhow::anyhow!("{}: cannot read: {e}", path.display())),
    }
}

/// `YYYY/MM/DD` of the first record of a segment.
fn first_record_date(bytes: &[u8]) -> Option<String> {
    let first = bytes
        .split(|b| *b == b'\n')
        .find(|l| l.windows(7).any(|w| w == b"\"time\":"))?;
    let entry: record::Entry = serde_json::from_slice(first).ok()?;
    let time = entry.time()?;
    Some(format!(
        "{}/{}/{}",
        time.get(0..4)?,
        time.get(5..7)?,
        time.get(8..10)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An audit log of chain `c` under `dir` (spool and file sink), plus `extra` YAML.
    fn file_config(dir: &std::path::Path, extra: &str) -> AuditConfig {
        serde_yaml_ng::from_str(&format!(
            "chain_id: c\nspool_dir: {0}/spool\nsink: {{kind: file, dir: {0}/archive}}\n\
             subject_key_env: WARDEN_TEST_UNSET\n{extra}",
            dir.display()
        ))
        .unwrap()
    }

    /// A shipped segment no digest covers yet is a warning while it is younger than the
    /// digest interval, and a failure once it is older.
    #[test]
    fn recent_unsigned_segments_are_warnings_old_ones_failures() {
        let dir = tempfile::tempdir().unwrap();
        let config = file_config(dir.path(), "digest_interval_seconds: 3600\n");
        let audit = Audit::start(&config).unwrap();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        audit
            .record(RequestRecord {
                time: now,
                ..Default::default()
            })
            .unwrap();
        if let Ok(mut spool) = audit.spool.lock() {
            spool.close();
        }
        assert!(audit.ship(), "shipped; no digest is due yet");
        let key =
            digest::load_public_key(&dir.path().join("spool/digest-signing-key.pub.pem")).unwrap();
        let archive = dir.path().join("archive");
        let report = verify::verify_dir(&archive, &key, &verify::Range::default(), |_| {});
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].contains("not covered by a signed digest yet"));

        audit
            .record(RequestRecord {
                time: "2026-01-01T00:00:00.000Z".into(),
                ..Default::default()
            })
            .unwrap();
        if let Ok(mut spool) = audit.spool.lock() {
            spool.close();
        }
        assert!(audit.ship());
        let report = verify::verify_dir(&archive, &key, &verify::Range::default(), |_| {});
        assert!(
            report.problems.iter().any(|p| p.contains("(unsigned)")),
            "{:?}",
            report.problems
        );
    }

    /// A digest the sink stored but whose answer was lost is sent again byte for byte:
    /// the retry is accepted, numbering goes on, and the log verifies.
    #[test]
    fn a_digest_whose_answer_was_lost_is_sent_again_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let config = file_config(dir.path(), "digest_interval_seconds: 3600\n");
        let audit = Audit::start(&config).unwrap();
        audit.record(RequestRecord::default()).unwrap();
        if let Ok(mut spool) = audit.spool.lock() {
            spool.close();
        }
        assert!(audit.ship());
        // The upload lands, but the answer is lost: the digest stays unsent.
        {
            let mut state = audit.state.lock().unwrap();
            let mut d = Digest {
                v: 1,
                chain: "c".into(),
                number: 1,
                time: "2026-12-01T00:00:00.000Z".into(),
                segments: state.pending.clone(),
                prev_signature: String::new(),
                signature: String::new(),
                interval_seconds: Some(3600),
                closed: false,
                chains: Default::default(),
            };
            d.sign(&audit.signer).unwrap();
            audit
                .sink
                .put(
                    "c/digests/digest-00000001.json",
                    &serde_json::to_vec_pretty(&d).unwrap(),
                )
                .unwrap();
            state.unsent = Some(d);
        }
        assert!(
            audit.write_digest(false),
            "the same digest again is accepted"
        );
        assert!(audit.write_digest(true));
        let key =
            digest::load_public_key(&dir.path().join("spool/digest-signing-key.pub.pem")).unwrap();
        let report = verify::verify_dir(
            &dir.path().join("archive"),
            &key,
            &verify::Range::default(),
            |_| {},
        );
        assert!(report.ok() && report.digests == 2, "{:?}", report.problems);
    }

    #[test]
    fn a_failed_fsync_refuses_requests_until_one_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let config = file_config(dir.path(), "fsync_interval_ms: 600000\n");
        let audit = Audit::start(&config).unwrap();
        audit.record(RequestRecord::default()).unwrap();
        assert!(!audit.is_full());
        audit.note_sync(Err(std::io::Error::other("EIO")));
        assert!(audit.is_full(), "requests are refused after a failed fsync");
        audit.note_sync(Ok(()));
        assert!(!audit.is_full());
    }

    #[test]
    fn an_unreadable_digest_state_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = file_config(dir.path(), "");
        std::fs::create_dir_all(dir.path().join("spool/c")).unwrap();
        std::fs::write(
            dir.path().join("spool/c/digest-state.json"),
            b"{\"number\": 4,",
        )
        .unwrap();
        let err = Audit::start(&config).unwrap_err();
        assert!(err.to_string().contains("unreadable digest state"), "{err}");
    }

    /// A flush (shutdown) while the shipping thread is in the middle of a pass waits for
    /// it, then ships the rest: every record is in the archive and under the final digest.
    #[test]
    fn flush_ships_everything_even_while_the_shipper_runs() {
        let dir = tempfile::tempdir().unwrap();
        let config = file_config(dir.path(), "segment_max_bytes: 4096\n");
        let audit = Audit::start(&config).unwrap();
        let records = 3000;
        for i in 0..records {
            let record = RequestRecord {
                request_id: format!("r{i}"),
                status: 200,
                ..Default::default()
            };
            audit.record(record).unwrap();
        }
        audit.flush();
        let key =
            digest::load_public_key(&dir.path().join("spool/digest-signing-key.pub.pem")).unwrap();
        let report = verify::verify_dir(
            &dir.path().join("archive"),
            &key,
            &verify::Range::default(),
            |_| {},
        );
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!(report.records, records);
        assert!(
            !report.problems.iter().any(|p| p.contains("unsigned")),
            "the final digest covers every segment"
        );
    }
}
