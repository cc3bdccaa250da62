//! Signed digests (CloudTrail's digest-file idea): each digest lists the segments shipped
//! since the previous one with their SHA-256, carries the previous digest's signature and
//! is signed with Ed25519 over its canonical JSON. Digests come at a promised interval even
//! when nothing was shipped, name the other chains they saw, and a chain that ends on
//! purpose says so in its last one: together they anchor the end of the log. Auditors
//! verify with the public key.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SegmentRef {
    /// Path relative to the sink root (`CHAIN/YYYY/MM/DD/seg-…jsonl`).
    pub name: String,
    pub sha256: String,
    pub first_seq: u64,
    pub last_seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Digest {
    pub v: u32,
    pub chain: String,
    /// Digest number within the chain, from 1.
    pub number: u64,
    pub time: String,
    pub segments: Vec<SegmentRef>,
    /// Signature of the previous digest ("" for the first).
    pub prev_signature: String,
    /// The cadence promised: while the chain is open, the next digest follows within
    /// this many seconds (absent in digests written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// The chain ended on purpose: verification expects no digest after this one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
    /// The other chains in the sink when this digest was written, each with its newest
    /// digest number: a chain (or a chain's tail) deleted later is missed by these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub chains: BTreeMap<String, u64>,
    /// Base64 Ed25519 signature over the JCS of this digest without `signature`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature: String,
}

impl Digest {
    fn signed_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut unsigned = self.clone();
        unsigned.signature = String::new();
        serde_jcs::to_vec(&unsigned)
    }

    pub fn sign(&mut self, key: &SigningKey) -> Result<(), serde_json::Error> {
        let sig = key.sign(&self.signed_bytes()?);
        self.signature = base64::engine::general_purpose::STANDARD.encode(sig.to_bytes());
        Ok(())
    }

    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(&self.signature) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&raw) else {
            return false;
        };
        self.signed_bytes()
            .is_ok_and(|bytes| key.verify(&bytes, &sig).is_ok())
    }
}

/// Loads a PKCS#8 PEM Ed25519 key, or creates one (and its `.pub.pem`) when the file is
/// missing.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<SigningKey> {
    if path.exists() {
        return load_key(path);
    }
    let key = create_key(path)?;
    tracing::warn!(key = %path.display(), "audit: generated a digest signing key; publish its .pub.pem for auditors");
    Ok(key)
}

/// Loads a PKCS#8 PEM Ed25519 signing key.
pub fn load_key(path: &Path) -> anyhow::Result<SigningKey> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| anyhow::anyhow!("{}: not a PKCS#8 Ed25519 key: {e}", path.display()))
}

/// Creates a new signing key at `path` (mode 0600, never over an existing file) and its
/// public key next to it (`NAME.pub.pem`).
pub fn create_key(path: &Path) -> anyhow::Result<SigningKey> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    write_private(path, pem.as_bytes())?;
    let public = key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(public_key_path(path), public)?;
    Ok(key)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// Where the public key of `key_path` is published (`NAME.pub.pem`).
pub fn public_key_path(key_path: &Path) -> std::path::PathBuf {
    key_path.with_extension("pub.pem")
}

pub fn load_public_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let pem = std::fs::read_to_string(path)?;
    VerifyingKey::from_public_key_pem(&pem)
        .map_err(|e| anyhow::anyhow!("{}: not an Ed25519 public key: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create_key(&dir.path().join("k.pem")).unwrap();
        let again = load_or_create_key(&dir.path().join("k.pem")).unwrap();
        assert_eq!(key.to_bytes(), again.to_bytes());
        let public = load_public_key(&dir.path().join("k.pub.pem")).unwrap();
        let mut d = Digest {
            v: 1,
            chain: "c".into(),
            number: 1,
            time: "t".into(),
            segments: vec![],
            prev_signature: String::new(),
            signature: String::new(),
            interval_seconds: None,
            closed: false,
            chains: BTreeMap::new(),
        };
        d.sign(&key).unwrap();
        assert!(d.verify(&public));
        d.number = 2;
        assert!(!d.verify(&public));
        d.number = 1;
        d.closed = true;
        assert!(!d.verify(&public), "closing is signed");
        let other = SigningKey::from_bytes(&[7u8; 32]);
        assert!(!d.verify(&other.verifying_key()));
    }
}
