//! Where sealed segments and digests go. `file` copies them into a local directory
//! (the embedded default): written to a temporary name, fsync'd, renamed, directory
//! fsync'd — only then may the spool drop its copy. Writing the same segment again is a
//! no-op, and a different content under an existing name is refused: nothing is overwritten.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::s3::S3Sink;
use super::spool::sync_dir;
use crate::config::SinkConfig;

/// The configured sink.
pub enum Sink {
    File(FileSink),
    S3(Box<S3Sink>),
}

impl Sink {
    pub fn from_config(config: &SinkConfig) -> anyhow::Result<Sink> {
        Ok(match config {
            SinkConfig::File { dir } => Sink::File(FileSink::new(dir)?),
            SinkConfig::S3(s3) => Sink::S3(Box::new(S3Sink::new(s3)?)),
        })
    }

    /// Stores an object once; an error means it is not durably stored and must be retried.
    pub fn put(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        match self {
            Sink::File(f) => Ok(f.put(name, bytes)?),
            Sink::S3(s) => s.put(name, bytes),
        }
    }

    /// Every chain in the sink with the number of its newest digest.
    pub fn latest_digests(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        match self {
            Sink::File(f) => Ok(f.latest_digests()?),
            Sink::S3(s) => s.latest_digests(),
        }
    }
}

/// The number in a digest's name (`digest-00000042.json` → 42).
pub fn digest_number(file_name: &str) -> Option<u64> {
    file_name
        .strip_prefix("digest-")?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

pub struct FileSink {
    root: PathBuf,
}

impl FileSink {
    pub fn new(root: &Path) -> std::io::Result<FileSink> {
        fs::create_dir_all(root)?;
        Ok(FileSink {
            root: root.to_path_buf(),
        })
    }

    /// Each chain directory with the number of its newest digest.
    pub fn latest_digests(&self) -> std::io::Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for entry in fs::read_dir(&self.root)? {
            let path = entry?.path();
            let Some(chain) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let newest = fs::read_dir(path.join("digests"))
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .filter_map(|e| digest_number(e.file_name().to_str()?))
                .max();
            if let Some(n) = newest {
                out.insert(chain.to_string(), n);
            }
        }
        Ok(out)
    }

    /// Stores `bytes` under `name` (relative, `/`-separated) once.
    pub fn put(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let dest = self.root.join(name);
        if let Ok(existing) = fs::read(&dest) {
            if existing == bytes {
                return Ok(());
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{name} already exists with different content"),
            ));
        }
        let dir = dest.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.tmp",
            dest.file_name().and_then(|n| n.to_str()).unwrap_or("part")
        ));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, &dest)?;
        sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sink_puts_once_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::new(dir.path()).unwrap();
        sink.put("c/2026/11/26/seg-1.jsonl", b"abc").unwrap();
        sink.put("c/2026/11/26/seg-1.jsonl", b"abc").unwrap(); // re-upload after a crash
        let err = sink.put("c/2026/11/26/seg-1.jsonl", b"abd").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(
            std::fs::read(dir.path().join("c/2026/11/26/seg-1.jsonl")).unwrap(),
            b"abc"
        );
    }
}
