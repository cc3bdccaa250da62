//! `warden audit verify`: reads every chain under a sink directory and proves it intact —
//! each entry's hash, each link to the previous entry, seq continuity across segments
//! (a lost stretch is only acceptable where a `gap` entry records it), each digest's
//! signature and link to the previous digest, and that every segment a digest names
//! exists with the listed SHA-256 — and proves where it ends: every chain another chain's
//! digest named must be there with at least the digests it named, and with `--to T` each
//! open chain must have a digest within one interval of `T` (digests come on schedule even
//! when idle; a chain closed on purpose needs none). Segments no digest covers fail,
//! except recent ones (younger than the digest interval), which are warnings.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use sha2::{Digest as _, Sha256};

use super::chain::{GENESIS, entry_hash};
use super::digest::Digest;
use super::record::{Body, Entry};
use super::spool::parse_sealed_name;

/// What verification found.
#[derive(Debug, Default)]
pub struct Report {
    pub chains: usize,
    pub segments: usize,
    pub records: u64,
    pub gaps: u64,
    pub digests: usize,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    /// Every problem, precise enough to find the bytes in question.
    pub problems: Vec<String>,
    /// What is not wrong yet but not proven either (recent unsigned segments).
    pub warnings: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Time bounds (RFC 3339, compared as strings of the same format) for records counted;
/// `to` also asks for proof that the log reaches it.
#[derive(Debug, Default, Clone)]
pub struct Range {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Range {
    fn contains(&self, t: &str) -> bool {
        self.from.as_deref().is_none_or(|f| t >= f) && self.to.as_deref().is_none_or(|to| t <= to)
    }
}

/// Verifies every chain under `root`; `progress` is called after each segment.
pub fn verify_dir(
    root: &Path,
    key: &VerifyingKey,
    range: &Range,
    mut progress: impl FnMut(&Report),
) -> Report {
    let mut report = Report::default();
    let Ok(entries) = std::fs::read_dir(root) else {
        report
            .problems
            .push(format!("{}: cannot read the directory", root.display()));
        return report;
    };
    let mut chains: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    chains.sort();
    let mut ends = BTreeMap::new();
    for chain_dir in chains {
        report.chains += 1;
        let (chain, end) = verify_chain(root, &chain_dir, key, range, &mut report, &mut progress);
        ends.insert(chain, end);
    }
    if report.chains == 0 {
        report
            .problems
            .push(format!("{}: no audit chains found", root.display()));
    }
    check_registry(&ends, &mut report);
    if let Some(to) = &range.to {
        check_tails(&ends, to, &mut report);
    }
    report
}

/// What a chain's digests say about where it ends.
#[derive(Debug, Default)]
struct ChainEnd {
    last_number: u64,
    last_time: Option<DateTime<Utc>>,
    closed: bool,
    interval: u64,
    /// The other chains its digests named: chain → (newest digest number, named by).
    named: BTreeMap<String, (u64, String)>,
}

/// Digests come every interval; a little lateness (a busy shipper) is not a cut.
fn grace(interval: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from((interval / 2).min(60)).unwrap_or(60))
}

fn interval_of(seconds: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 2))
}

/// Every chain a digest named is present, with at least the digests it had then.
fn check_registry(ends: &BTreeMap<String, ChainEnd>, report: &mut Report) {
    let mut expected: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
    for end in ends.values() {
        for (chain, (number, by)) in &end.named {
            if expected.get(chain.as_str()).is_none_or(|(n, _)| number > n) {
                expected.insert(chain, (*number, by));
            }
        }
    }
    for (chain, (number, by)) in expected {
        match ends.get(chain) {
            None => report.problems.push(format!(
                "chain {chain} is missing: {by} saw it with {number} digest(s)"
            )),
            Some(end) if end.last_number < number => report.problems.push(format!(
                "chain {chain}: its digests end at {}, but {by} saw digest {number} (the end of the chain was cut)",
                end.last_number
            )),
            Some(_) => {}
        }
    }
}

/// With `--to T`: each open chain has a digest within one interval of `T`.
fn check_tails(ends: &BTreeMap<String, ChainEnd>, to: &str, report: &mut Report) {
    let Ok(to_time) = DateTime::parse_from_rfc3339(to).map(|t| t.with_timezone(&Utc)) else {
        report
            .problems
            .push(format!("--to {to}: not an RFC 3339 time"));
        return;
    };
    for (chain, end) in ends {
        if end.closed {
            continue;
        }
        let Some(last) = end.last_time else {
            report.problems.push(format!(
                "chain {chain}: no signed digest, so nothing proves where it ends"
            ));
            continue;
        };
        if last + interval_of(end.interval) + grace(end.interval) < to_time {
            report.problems.push(format!(
                "chain {chain}: the newest signed digest is from {}, but one is due every {} s up to {to} (the end of the log was cut, or the replica stopped without closing its chain)",
                last.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                end.interval
            ));
        }
    }
}

fn verify_chain(
    root: &Path,
    dir: &Path,
    key: &VerifyingKey,
    range: &Range,
    report: &mut Report,
    progress: &mut impl FnMut(&Report),
) -> (String, ChainEnd) {
    let chain = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    // Segments by first seq; relative names for matching against digests.
    let mut segments: BTreeMap<u64, (String, PathBuf, u64)> = BTreeMap::new();
    collect_segments(root, dir, &mut |rel, path| {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match parse_sealed_name(file) {
            Some((first, last)) => {
                if let Some((other, _, _)) =
                    segments.insert(first, (rel.clone(), path.to_path_buf(), last))
                {
                    report.problems.push(format!(
                        "{rel}: two segments start at seq {first} (also {other})"
                    ));
                }
            }
            None => report
                .problems
                .push(format!("{rel}: not a segment file name")),
        }
    });
    let mut expected_seq = 0u64;
    let mut prev_hash = GENESIS.to_string();
    let mut hashes: HashMap<String, String> = HashMap::new();
    // The time of each segment's newest record (its age decides unsigned = warning).
    let mut newest: HashMap<String, String> = HashMap::new();
    for (first, (rel, path, last)) in &segments {
        report.segments += 1;
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                report.problems.push(format!("{rel}: cannot read: {e}"));
                continue;
            }
        };
        hashes.insert(rel.clone(), hex::encode(Sha256::digest(&bytes)));
        if *first != expected_seq {
            if *first > expected_seq {
                report.problems.push(format!(
                    "chain {chain}: records {expected_seq}..{} are missing (segment before {rel} absent)",
                    first - 1
                ));
            } else {
                report.problems.push(format!(
                    "{rel}: starts at seq {first}, overlapping records before it"
                ));
            }
            expected_seq = *first;
            prev_hash = String::new(); // unknown: the link into this segment cannot be checked
        }
        for (n, line) in bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            let at = format!("{rel}:{}", n + 1);
            let entry: Entry = match serde_json::from_slice(line) {
                Ok(e) => e,
                Err(e) => {
                    report
                        .problems
                        .push(format!("{at}: unreadable record ({e})"));
                    continue;
                }
            };
            if entry.chain != chain {
                report.problems.push(format!(
                    "{at}: record of chain `{}` in chain `{chain}`",
                    entry.chain
                ));
            }
            if entry.seq != expected_seq {
                report.problems.push(format!(
                    "{at}: seq {} where {expected_seq} was expected (reordered or dropped)",
                    entry.seq
                ));
            }
            if !prev_hash.is_empty() && entry.prev_hash != prev_hash {
                report.problems.push(format!(
                    "{at}: seq {} does not link to the previous record",
                    entry.seq
                ));
            }
            match entry_hash(&entry) {
                Ok(h) if h == entry.hash => {}
                _ => report.problems.push(format!(
                    "{at}: seq {} was altered (hash mismatch)",
                    entry.seq
                )),
            }
            if let Some(t) = entry.time() {
                newest.insert(rel.clone(), t.to_string());
            }
            match &entry.body {
                Body::Gap { .. } => report.gaps += 1,
                Body::Request(r) => {
                    if range.contains(&r.time) {
                        report.records += 1;
                        if report
                            .first_time
                            .as_deref()
                            .is_none_or(|t| r.time.as_str() < t)
                        {
                            report.first_time = Some(r.time.clone());
                        }
                        if report
                            .last_time
                            .as_deref()
                            .is_none_or(|t| r.time.as_str() > t)
                        {
                            report.last_time = Some(r.time.clone());
                        }
                    }
                }
            }
            expected_seq = entry.seq + 1;
            prev_hash = entry.hash.clone();
        }
        if expected_seq != last + 1 {
            report.problems.push(format!(
                "{rel}: named to end at seq {last} but ends at {}",
                expected_seq.saturating_sub(1)
            ));
        }
        progress(report);
    }
    let end = verify_digests(dir, &chain, key, &hashes, &newest, report);
    (chain, end)
}

fn collect_segments(root: &Path, dir: &Path, found: &mut impl FnMut(String, &Path)) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if p.is_dir() {
            if name != "digests" {
                collect_segments(root, &p, found);
            }
        } else if name.ends_with(".jsonl") {
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            found(rel, &p);
        }
    }
}

fn verify_digests(
    dir: &Path,
    chain: &str,
    key: &VerifyingKey,
    hashes: &HashMap<String, String>,
    newest: &HashMap<String, String>,
    report: &mut Report,
) -> ChainEnd {
    let mut end = ChainEnd {
        interval: DEFAULT_INTERVAL,
        ..ChainEnd::default()
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("digests"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut covered: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut prev_signature = String::new();
    let mut expected_number = 1;
    for path in &files {
        let name = format!(
            "{chain}/digests/{}",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
        );
        let digest: Digest = match std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(d) => d,
            None => {
                report.problems.push(format!("{name}: unreadable digest"));
                continue;
            }
        };
        report.digests += 1;
        let signed = digest.verify(key);
        if !signed {
            report.problems.push(format!(
                "{name}: signature does not verify with the given public key (forged or altered)"
            ));
        }
        if digest.number != expected_number {
            report.problems.push(format!(
                "{name}: digest number {} where {expected_number} was expected",
                digest.number
            ));
        }
        if digest.prev_signature != prev_signature {
            report
                .problems
                .push(format!("{name}: does not link to the previous digest"));
        }
        for seg in &digest.segments {
            match hashes.get(&seg.name) {
                None => report
                    .problems
                    .push(format!("{name}: lists {} which is missing", seg.name)),
                Some(h) if *h != seg.sha256 => report.problems.push(format!(
                    "{name}: {} does not match its signed SHA-256 (altered)",
                    seg.name
                )),
                // Only a valid signature covers a segment.
                Some(_) if signed => {
                    covered.insert(seg.name.clone());
                }
                Some(_) => {}
            }
        }
        prev_signature = digest.signature.clone();
        expected_number = digest.number + 1;
        end.last_number = digest.number;
        end.last_time = DateTime::parse_from_rfc3339(&digest.time)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        end.closed = digest.closed;
        end.interval = digest.interval_seconds.unwrap_or(DEFAULT_INTERVAL).max(1);
        for (other, number) in &digest.chains {
            if end.named.get(other).is_none_or(|(n, _)| number > n) {
                end.named.insert(other.clone(), (*number, name.clone()));
            }
        }
    }
    let mut unsigned: Vec<&String> = hashes
        .keys()
        .filter(|n| !covered.contains(n.as_str()))
        .collect();
    unsigned.sort();
    let now = Utc::now();
    for n in unsigned {
        let age = newest
            .get(n)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| now - t.with_timezone(&Utc));
        match age {
            Some(age) if age <= interval_of(end.interval) + grace(end.interval) => {
                report.warnings.push(format!(
                    "{n}: not covered by a signed digest yet (newest record {} s old; digests come every {} s)",
                    age.num_seconds().max(0),
                    end.interval
                ));
            }
            _ => report
                .problems
                .push(format!("{n}: not covered by any signed digest (unsigned)")),
        }
    }
    end
}

/// The digest interval assumed for digests written before they recorded theirs.
const DEFAULT_INTERVAL: u64 = 3600;
