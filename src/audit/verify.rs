//! `warden audit verify`: reads every chain under a sink directory and proves it intact —
//! each entry's hash, each link to the previous entry, seq continuity across segments
//! (a lost stretch is only acceptable where a `gap` entry records it), each digest's
//! signature and link to the previous digest, and that every segment a digest names
//! exists with the listed SHA-256. Segments no digest covers are reported as unsigned.

use std::collections::{BTreeMap, HashMap};
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
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Time bounds (RFC 3339, compared as strings of the same format) for records counted.
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
    for chain_dir in chains {
        report.chains += 1;
        verify_chain(root, &chain_dir, key, range, &mut report, &mut progress);
    }
    if report.chains == 0 {
        report
            .problems
            .push(format!("{}: no audit chains found", root.display()));
    }
    report
}

fn verify_chain(
    root: &Path,
    dir: &Path,
    key: &VerifyingKey,
    range: &Range,
    report: &mut Report,
    progress: &mut impl FnMut(&Report),
) {
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
    verify_digests(dir, &chain, key, &hashes, report);
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
    report: &mut Report,
) {
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
        if !digest.verify(key) {
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
                Some(_) => {
                    covered.insert(seg.name.clone());
                }
            }
        }
        prev_signature = digest.signature.clone();
        expected_number = digest.number + 1;
    }
    let mut unsigned: Vec<&String> = hashes
        .keys()
        .filter(|n| !covered.contains(n.as_str()))
        .collect();
    unsigned.sort();
    for n in unsigned {
        report
            .problems
            .push(format!("{n}: not covered by any signed digest (unsigned)"));
    }
}
