//! The hash chain: RFC 8785 canonical JSON (JCS) of each entry without its `hash`, hashed
//! with the previous entry's hash. Any change to a record, its order or its neighbours
//! breaks the chain.
//!
//! Appending is split so the costly part runs outside the spool's lock: [`prepare`] makes
//! the canonical JSON of everything but the chain position; [`place`] (under the lock)
//! inserts `prev_hash` and `seq` at their sorted places, hashes, and inserts `hash` — the
//! same bytes as canonicalizing the whole entry, without a second pass or a copy of it.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::record::{Body, Entry};

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

/// An entry's canonical JSON without its chain position (`seq`, `prev_hash`, `hash`).
#[derive(Debug, Clone)]
pub struct Prepared(Vec<u8>);

#[derive(Serialize)]
struct Unplaced<'a> {
    v: u32,
    chain: &'a str,
    #[serde(flatten)]
    body: &'a Body,
}

pub fn prepare(v: u32, chain: &str, body: &Body) -> Result<Prepared, serde_json::Error> {
    serde_jcs::to_vec(&Unplaced { v, chain, body }).map(Prepared)
}

/// The line (newline-terminated) and hash of a prepared entry placed at `seq` after
/// `prev_hash`.
pub fn place(entry: &Prepared, seq: u64, prev_hash: &str) -> (Vec<u8>, String) {
    let prev = format!("\"{prev_hash}\"");
    let seq = seq.to_string();
    let unhashed = insert_members(
        &entry.0,
        &[("prev_hash", prev.as_bytes()), ("seq", seq.as_bytes())],
    );
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(&unhashed);
    let hash = hex::encode(h.finalize());
    let quoted = format!("\"{hash}\"");
    let mut line = insert_members(&unhashed, &[("hash", quoted.as_bytes())]);
    line.push(b'\n');
    (line, hash)
}

/// Inserts members (sorted by key, keys absent from `object`) into a canonical JSON object
/// at their sorted places among its top-level keys. Keys are ASCII, so byte order is the
/// UTF-16 order JCS sorts by.
fn insert_members(object: &[u8], members: &[(&str, &[u8])]) -> Vec<u8> {
    let extra: usize = members.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    let mut out = Vec::with_capacity(object.len() + extra);
    let mut pending = members.iter().peekable();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut copied = 0;
    let mut first = true;
    // At depth 1, the next string is a key (after `{` or `,`), not a value.
    let mut expect_key = false;
    let mut i = 0;
    let part = |a: usize, b: usize| object.get(a..b).unwrap_or_default();
    while let (Some(&b), Some(_)) = (object.get(i), pending.peek()) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            if depth == 1 && expect_key {
                expect_key = false;
                // A top-level key: the string right after `{` or `,`.
                let end = part(i + 1, object.len())
                    .iter()
                    .position(|c| *c == b'"')
                    .map_or(object.len(), |p| i + 1 + p);
                let key = part(i + 1, end);
                while let Some((k, v)) = pending.next_if(|(k, _)| k.as_bytes() < key) {
                    out.extend_from_slice(part(copied, i));
                    copied = i;
                    member(&mut out, k, v, false);
                    out.push(b',');
                }
                first = false;
                // Skip the key and its value's start; the value is scanned normally.
                out.extend_from_slice(part(copied, end + 1));
                copied = end + 1;
                i = end + 1;
                continue;
            }
            in_string = true;
        } else if b == b'{' || b == b'[' {
            depth += 1;
            expect_key = depth == 1 && b == b'{';
        } else if b == b'}' || b == b']' {
            depth -= 1;
        } else if b == b',' && depth == 1 {
            expect_key = true;
        }
        i += 1;
    }
    let close = object.len().saturating_sub(1);
    if pending.peek().is_some() {
        out.extend_from_slice(part(copied, close));
        copied = close;
        for (k, v) in pending {
            member(&mut out, k, v, !first);
            first = false;
        }
    }
    out.extend_from_slice(part(copied, object.len()));
    out
}

fn member(out: &mut Vec<u8>, key: &str, value: &[u8], comma: bool) {
    if comma {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{PiiCount, RequestRecord};

    fn entry(seq: u64, prev: &str, body: Body) -> Entry {
        Entry {
            v: 1,
            chain: "c".into(),
            seq,
            prev_hash: prev.into(),
            body,
            hash: String::new(),
        }
    }

    fn request(seq: u64) -> Body {
        Body::Request(Box::new(RequestRecord {
            request_id: format!("r{seq}"),
            status: 200,
            reason: Some("a \"quoted\" {reason}, with \\ and \u{e9}".into()),
            pii: vec![PiiCount {
                entity: "EMAIL".into(),
                action: "redact".into(),
                count: 2,
                stage: None,
            }],
            ..Default::default()
        }))
    }

    /// The line `place` builds is the entry canonicalized whole, and its hash verifies.
    fn placed(e: &Entry) -> (Vec<u8>, String) {
        let p = prepare(e.v, &e.chain, &e.body).unwrap();
        place(&p, e.seq, &e.prev_hash)
    }

    #[test]
    fn lines_are_canonical_and_verifiable() {
        let bodies = [
            request(0),
            Body::Gap {
                reason: "torn tail".into(),
                dropped_bytes: 17,
            },
            Body::Request(Box::default()),
        ];
        for (seq, body) in bodies.into_iter().enumerate() {
            let mut e = entry(seq as u64 * 1000, GENESIS, body);
            let (line, hash) = placed(&e);
            e.hash = hash;
            let mut whole = serde_jcs::to_vec(&e).unwrap();
            whole.push(b'\n');
            assert_eq!(
                String::from_utf8_lossy(&line),
                String::from_utf8_lossy(&whole)
            );
            let parsed: Entry = serde_json::from_slice(&line).unwrap();
            assert_eq!(parsed, e);
            assert_eq!(entry_hash(&parsed).unwrap(), e.hash);
        }
        let text = String::from_utf8(placed(&entry(0, GENESIS, request(0))).0).unwrap();
        assert!(
            text.starts_with("{\"attempts\":0,"),
            "JCS sorts keys: {text}"
        );
    }

    #[test]
    fn any_change_breaks_the_hash() {
        let mut e = entry(0, GENESIS, request(0));
        e.hash = placed(&e).1;
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
