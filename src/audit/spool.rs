//! The local spool of one chain: append-only segment files. An entry is written (to the
//! page cache) before the response finishes and fsync'd in groups by a background thread;
//! segments are sealed by size or age. On start the spool is recovered: a torn or invalid
//! tail is truncated, the open segment sealed, and the chain resumes from the last good
//! entry with a `gap` entry recording what was dropped.
//!
//! Layout of `DIR/CHAIN/`: `open-SEQ.jsonl` (being written), `seg-FIRST-LAST.jsonl`
//! (sealed, waiting for the sink), `head.json` (last sealed entry's seq and hash).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::chain::{self, GENESIS, Prepared, entry_hash};
use super::record::{Body, Entry, SCHEMA_VERSION};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

/// A sealed segment waiting for the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub path: PathBuf,
    pub first_seq: u64,
    pub last_seq: u64,
}

pub struct Spool {
    dir: PathBuf,
    chain: String,
    max_bytes: u64,
    max_age: Duration,
    open: Option<OpenSegment>,
    /// Closed segments not yet sealed.
    rotated: Vec<Rotated>,
    /// Next entry's seq and prev_hash.
    next_seq: u64,
    prev_hash: String,
    /// A failed write could not be undone: nothing more is appended until a restart
    /// recovers the spool.
    broken: bool,
}

/// A closed segment waiting for its fsync and rename.
pub struct Rotated {
    seg: OpenSegment,
    last_seq: Option<u64>,
    last_hash: String,
}

/// Seals closed segments in order: fsync, rename to `seg-FIRST-LAST`, record the head.
/// One sealer at a time (the shipping pass, or recovery). On an error, the segments not
/// sealed yet come back with it, to be put back with [`Spool::requeue`].
pub fn seal_rotated(dir: &Path, rotated: Vec<Rotated>) -> Result<(), (SpoolError, Vec<Rotated>)> {
    let mut rest = rotated.into_iter();
    while let Some(r) = rest.next() {
        if let Err(e) = seal_one(dir, &r) {
            return Err((e, std::iter::once(r).chain(rest).collect()));
        }
    }
    Ok(())
}

fn seal_one(dir: &Path, r: &Rotated) -> Result<(), SpoolError> {
    r.seg.file.sync_all()?;
    let Some(last) = r.last_seq else {
        fs::remove_file(&r.seg.path)?;
        return Ok(());
    };
    let sealed = dir.join(sealed_name(r.seg.first_seq, last));
    if !sealed.exists() {
        fs::rename(&r.seg.path, &sealed)?;
    }
    write_head(
        dir,
        &Head {
            seq: last,
            hash: r.last_hash.clone(),
        },
    )?;
    Ok(sync_dir(dir)?)
}

struct OpenSegment {
    file: File,
    path: PathBuf,
    first_seq: u64,
    bytes: u64,
    opened: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("audit spool I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("audit record encoding: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(
        "audit spool unusable after a failed write that could not be undone; restart to recover it"
    )]
    Broken,
}

impl Spool {
    /// Opens (and recovers) the spool of `chain` under `root`.
    pub fn open(
        root: &Path,
        chain: &str,
        max_bytes: u64,
        max_age: Duration,
    ) -> Result<Spool, SpoolError> {
        let dir = root.join(chain);
        fs::create_dir_all(&dir)?;
        let mut spool = Spool {
            dir,
            chain: chain.to_string(),
            max_bytes,
            max_age,
            open: None,
            rotated: Vec::new(),
            next_seq: 0,
            prev_hash: GENESIS.to_string(),
            broken: false,
        };
        spool.recover()?;
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one entry; returns its seq. Seals the segment when it is full.
    pub fn append(&mut self, body: Body) -> Result<u64, SpoolError> {
        let prepared = chain::prepare(SCHEMA_VERSION, &self.chain, &body)?;
        self.append_prepared(&prepared)
    }

    /// Appends an entry prepared (for this chain) outside the lock appends share.
    pub fn append_prepared(&mut self, entry: &Prepared) -> Result<u64, SpoolError> {
        if self.broken {
            return Err(SpoolError::Broken);
        }
        if self.open.is_none() {
            self.open_segment()?;
        }
        let seq = self.next_seq;
        let (line, hash) = chain::place(entry, seq, &self.prev_hash);
        let Some(seg) = self.open.as_mut() else {
            return Err(SpoolError::Broken);
        };
        if let Err(e) = seg.file.write_all(&line) {
            // Part of the line may be on disk (a full disk, a file size limit): cut it off,
            // or the next entry would follow a torn line.
            if seg.file.set_len(seg.bytes).is_err() {
                self.broken = true;
            }
            return Err(e.into());
        }
        seg.bytes += line.len() as u64;
        self.next_seq += 1;
        self.prev_hash = hash;
        if seg.bytes >= self.max_bytes {
            self.rotate();
        }
        Ok(seq)
    }

    /// Closes the open segment for sealing without any I/O: the next append opens a new
    /// one, and [`Spool::take_rotated`] hands the closed ones to whoever fsyncs them.
    fn rotate(&mut self) {
        let Some(seg) = self.open.take() else { return };
        let last_seq = self.next_seq.checked_sub(1).filter(|l| *l >= seg.first_seq);
        self.rotated.push(Rotated {
            seg,
            last_seq,
            last_hash: self.prev_hash.clone(),
        });
    }

    /// Closed segments waiting to be sealed; seal them with [`seal_rotated`] outside any
    /// lock that appends need.
    pub fn take_rotated(&mut self) -> Vec<Rotated> {
        std::mem::take(&mut self.rotated)
    }

    /// A handle to fsync the open segment without holding the spool.
    pub fn sync_handle(&self) -> Option<File> {
        self.open.as_ref().and_then(|s| s.file.try_clone().ok())
    }

    /// Closes the open segment after its fsync failed: later entries go to a new file, and
    /// sealing retries the fsync of the old one.
    pub fn rotate_after_sync_failure(&mut self) {
        self.rotate();
    }

    /// Seals the open segment when it is older than the maximum age.
    pub fn seal_if_old(&mut self) -> Result<(), SpoolError> {
        if !self.broken
            && self
                .open
                .as_ref()
                .is_some_and(|s| s.opened.elapsed() >= self.max_age && s.bytes > 0)
        {
            self.rotate();
        }
        Ok(())
    }

    /// Seals the open segment and every rotated one now (recovery, before any shipping).
    pub fn seal(&mut self) -> Result<(), SpoolError> {
        self.rotate();
        let rotated = self.take_rotated();
        seal_rotated(&self.dir, rotated).map_err(|(e, rest)| {
            self.requeue(rest);
            e
        })
    }

    /// Puts segments a failed sealing pass returned back in front of the queue.
    pub fn requeue(&mut self, rest: Vec<Rotated>) {
        self.rotated.splice(0..0, rest);
    }

    /// Closes the open segment now (shutdown); the shipping pass seals it. A broken
    /// spool's segment stays open for the next start's recovery, which cuts its torn tail.
    pub fn close(&mut self) {
        if !self.broken {
            self.rotate();
        }
    }

    fn open_segment(&mut self) -> Result<(), SpoolError> {
        let path = self.dir.join(format!("open-{:012}.jsonl", self.next_seq));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        sync_dir(&self.dir)?;
        self.open = Some(OpenSegment {
            file,
            path,
            first_seq: self.next_seq,
            bytes: 0,
            opened: Instant::now(),
        });
        Ok(())
    }

    /// Finds where the chain stands: the last good entry of a leftover open segment, else
    /// the last sealed segment, else `head.json`, else genesis.
    fn recover(&mut self) -> Result<(), SpoolError> {
        if let Some(head) = read_head(&self.dir) {
            self.next_seq = head.seq + 1;
            self.prev_hash = head.hash;
        }
        if let Some(last) = list_sealed(&self.dir)?.last()
            && let Some(tail) = last_entry(&last.path)?
        {
            self.next_seq = tail.seq + 1;
            self.prev_hash = tail.hash;
        }
        let mut leftovers: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("open-"))
            })
            .collect();
        leftovers.sort();
        for path in leftovers {
            let (good, dropped) = truncate_to_valid(&path, &self.prev_hash, self.next_seq)?;
            let first_seq = self.next_seq;
            if let Some(tail) = &good {
                self.next_seq = tail.seq + 1;
                self.prev_hash = tail.hash.clone();
            }
            let file = OpenOptions::new().append(true).open(&path)?;
            let bytes = file.metadata()?.len();
            self.open = Some(OpenSegment {
                file,
                path,
                first_seq,
                bytes,
                opened: Instant::now(),
            });
            if dropped > 0 {
                tracing::warn!(chain = %self.chain, dropped_bytes = dropped, "audit spool: torn tail truncated at recovery");
                self.append(Body::Gap {
                    reason: "torn or invalid tail truncated at recovery".into(),
                    dropped_bytes: dropped,
                })?;
            }
            self.seal()?;
        }
        Ok(())
    }
}

/// Bytes of the segment files in a chain's spool directory.
pub fn spool_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

pub fn sealed_name(first: u64, last: u64) -> String {
    format!("seg-{first:012}-{last:012}.jsonl")
}

/// Parses `seg-FIRST-LAST.jsonl`.
pub fn parse_sealed_name(name: &str) -> Option<(u64, u64)> {
    let core = name.strip_prefix("seg-")?.strip_suffix(".jsonl")?;
    let (a, b) = core.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

pub fn list_sealed(dir: &Path) -> Result<Vec<Sealed>, SpoolError> {
    let mut out: Vec<Sealed> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let (first_seq, last_seq) = parse_sealed_name(&p.file_name()?.to_string_lossy())?;
            Some(Sealed {
                path: p,
                first_seq,
                last_seq,
            })
        })
        .collect();
    out.sort_by_key(|s| s.first_seq);
    Ok(out)
}

fn last_entry(path: &Path) -> Result<Option<Entry>, SpoolError> {
    let mut last = None;
    for line in BufReader::new(File::open(path)?).lines() {
        let line = line?;
        if let Ok(e) = serde_json::from_str::<Entry>(&line) {
            last = Some(e);
        }
    }
    Ok(last)
}

/// Keeps the longest prefix of whole, correctly chained entries; returns the last kept
/// entry and how many bytes were cut.
fn truncate_to_valid(
    path: &Path,
    prev_hash: &str,
    next_seq: u64,
) -> Result<(Option<Entry>, u64), SpoolError> {
    let data = fs::read(path)?;
    let mut keep = 0usize;
    let mut last: Option<Entry> = None;
    let (mut prev, mut seq) = (prev_hash.to_string(), next_seq);
    for line in data.split_inclusive(|b| *b == b'\n') {
        if !line.ends_with(b"\n") {
            break; // torn: the write did not complete
        }
        let Ok(entry) = serde_json::from_slice::<Entry>(line) else {
            break;
        };
        let valid = entry.seq == seq
            && entry.prev_hash == prev
            && entry_hash(&entry).ok().as_deref() == Some(&entry.hash);
        if !valid {
            break;
        }
        prev = entry.hash.clone();
        seq += 1;
        keep += line.len();
        last = Some(entry);
    }
    let dropped = (data.len() - keep) as u64;
    if dropped > 0 {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(keep as u64)?;
        f.sync_all()?;
    }
    Ok((last, dropped))
}

fn read_head(dir: &Path) -> Option<Head> {
    serde_json::from_slice(&fs::read(dir.join("head.json")).ok()?).ok()
}

fn write_head(dir: &Path, head: &Head) -> Result<(), SpoolError> {
    let tmp = dir.join("head.json.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(head)?)?;
    f.sync_all()?;
    fs::rename(tmp, dir.join("head.json"))?;
    Ok(())
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::RequestRecord;

    fn body(i: u64) -> Body {
        Body::Request(Box::new(RequestRecord {
            request_id: format!("r{i}"),
            status: 200,
            ..Default::default()
        }))
    }

    #[test]
    fn appends_seals_and_resumes_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), "c1", 1 << 20, Duration::from_secs(60)).unwrap();
        for i in 0..3 {
            assert_eq!(s.append(body(i)).unwrap(), i);
        }
        s.seal().unwrap();
        drop(s);
        let mut s = Spool::open(dir.path(), "c1", 1 << 20, Duration::from_secs(60)).unwrap();
        assert_eq!(s.append(body(3)).unwrap(), 3);
        s.seal().unwrap();
        let sealed = list_sealed(s.dir()).unwrap();
        assert_eq!(
            sealed
                .iter()
                .map(|x| (x.first_seq, x.last_seq))
                .collect::<Vec<_>>(),
            vec![(0, 2), (3, 3)]
        );
        let first_of_second = last_entry(&sealed[1].path).unwrap().unwrap();
        let last_of_first = last_entry(&sealed[0].path).unwrap().unwrap();
        assert_eq!(first_of_second.prev_hash, last_of_first.hash);
    }

    #[test]
    fn size_limit_seals_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), "c", 600, Duration::from_secs(60)).unwrap();
        for i in 0..5 {
            s.append(body(i)).unwrap();
        }
        assert!(
            list_sealed(s.dir()).unwrap().is_empty(),
            "appends only rotate; sealing is separate"
        );
        seal_rotated(dir.path().join("c").as_path(), s.take_rotated())
            .map_err(|(e, _)| e)
            .unwrap();
        assert!(list_sealed(s.dir()).unwrap().len() >= 2);
    }

    /// A write that fails and cannot be undone (here: the segment's handle is read-only,
    /// so neither the write nor the truncation works) stops further appends, so nothing is
    /// ever written after a torn line; a restart recovers the spool.
    #[test]
    fn a_write_that_cannot_be_undone_stops_appends() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), "c", 1 << 20, Duration::from_secs(60)).unwrap();
        s.append(body(0)).unwrap();
        let path = s.open.as_ref().unwrap().path.clone();
        s.open.as_mut().unwrap().file = File::open(&path).unwrap();
        assert!(matches!(s.append(body(1)), Err(SpoolError::Io(_))));
        assert!(matches!(s.append(body(2)), Err(SpoolError::Broken)));
        drop(s);
        let mut s = Spool::open(dir.path(), "c", 1 << 20, Duration::from_secs(60)).unwrap();
        assert_eq!(s.append(body(1)).unwrap(), 1);
    }

    #[test]
    fn torn_tail_is_truncated_and_a_gap_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), "c", 1 << 20, Duration::from_secs(60)).unwrap();
        s.append(body(0)).unwrap();
        s.append(body(1)).unwrap();
        let path = s.open.as_ref().unwrap().path.clone();
        drop(s); // as after kill -9: the open segment stays
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"v\":1,\"chain\":\"c\",\"seq\":2,\"prev_ha")
            .unwrap();
        drop(f);
        let mut s = Spool::open(dir.path(), "c", 1 << 20, Duration::from_secs(60)).unwrap();
        assert_eq!(s.append(body(3)).unwrap(), 3, "seq 2 is the gap entry");
        s.seal().unwrap();
        let sealed = list_sealed(s.dir()).unwrap();
        let text = fs::read_to_string(&sealed[0].path).unwrap();
        assert!(text.contains("\"type\":\"gap\""), "{text}");
        assert!(!text.contains("prev_ha\n"));
    }
}
