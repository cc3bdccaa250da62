//! The hash chain: RFC 8785 canonical JSON (JCS) of each entry without its `hash`, hashed
//! with the previous entry's hash. Any change to a record, its order or its neighbours
//! breaks the chain.

use sha2::{Digest, Sha256};

use super::record::Entry;

/// `prev_hash` of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash an entry must carry.
pub fn entry_hash(entry: &Entry) -> Result<String, serde_json::Error> {
    let mut unhashed = entry.clone();
    unhashed.hash = String::new();
    let canonical = serde_jcs::to_vec(&unhashed)?;
    let mut h = Sha256::new();
    h.update(entry.prev_hash.as_bytes());
    h.update(&canonical);
    Ok(hex::encode(h.finalize()))
}

/// Fills `hash` and returns the line to append (canonical JSON, newline-terminated).
pub fn seal_line(entry: &mut Entry) -> Result<Vec<u8>, serde_json::Error> {
    entry.hash = entry_hash(entry)?;
    let mut line = serde_jcs::to_vec(entry)?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Body, RequestRecord};

    fn entry(seq: u64, prev: &str) -> Entry {
        Entry {
            v: 1,
            chain: "c".into(),
            seq,
            prev_hash: prev.into(),
            body: Body::Request(Box::new(RequestRecord {
                request_id: format!("r{seq}"),
                status: 200,
                ..Default::default()
            })),
            hash: String::new(),
        }
    }

    #[test]
    fn lines_are_canonical_and_verifiable() {
        let mut e = entry(0, GENESIS);
        let line = seal_line(&mut e).unwrap();
        let parsed: Entry = serde_json::from_slice(&line).unwrap();
        assert_eq!(parsed, e);
        assert_eq!(entry_hash(&parsed).unwrap(), e.hash);
        let text = String::from_utf8(line).unwrap();
        assert!(
            text.starts_with("{\"attempts\":0,"),
            "JCS sorts keys: {text}"
        );
    }

    #[test]
    fn any_change_breaks_the_hash() {
        let mut e = entry(0, GENESIS);
        seal_line(&mut e).unwrap();
        let mut altered = e.clone();
        if let Body::Request(r) = &mut altered.body {
            r.status = 201;
        }
        assert_ne!(entry_hash(&altered).unwrap(), e.hash);
        let mut relinked = e.clone();
        relinked.prev_hash = "1".repeat(64);
        assert_ne!(entry_hash(&relinked).unwrap(), e.hash);
    }
}
