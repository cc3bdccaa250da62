//! Client idempotency keys with Stripe's semantics, for `POST /v1/tools/{name}/invoke` and
//! the model endpoints: the first request with an `Idempotency-Key` runs and its
//! successful answer is stored; a repeat with the same key and the same body gets the
//! stored answer (marked `idempotent-replayed: true`) without running again; a repeat
//! while the first is still running gets 409, one with another body 422. An answer that
//! is not a success is not stored, so the client can retry with the same key.
//!
//! Keys are scoped by tenant and principal (one principal's key never names another's
//! answer) and live in the shared state, so every replica sees them: `{t:acme}:<digest>`
//! in namespace `idempotency`, the stored answer sealed (AES-GCM) and bound to that name.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::state::{Key, Sealer, StateError, StateStore, parts_digest, tag};

const NAMESPACE: &str = "idempotency";
/// How long a first request may run before its key is free again (a replica that died
/// mid-request does not block the key for longer).
const IN_FLIGHT_TTL: Duration = Duration::from_secs(600);
/// How often [`Idempotency::begin_waiting`] looks again at a key in flight.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(20);
/// How long a stored answer is replayed.
pub const ANSWER_TTL: Duration = Duration::from_secs(86_400);
/// Largest answer stored; a larger one is answered but not stored.
pub const MAX_STORED: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    /// SHA-256 of the first request's body.
    body: String,
    /// `None` while the first request runs.
    answer: Option<Stored>,
}

/// A stored answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub status: u16,
    pub content_type: String,
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// The right to store the answer of the first request under a key.
#[derive(Debug, Clone)]
pub struct Claim {
    name: String,
    body: String,
    /// The sealed in-flight entry, to replace or release it only if it is still ours.
    marker: Vec<u8>,
}

/// What a request with a key does.
#[derive(Debug)]
pub enum Begin {
    /// The first with this key: run it, then [`Idempotency::complete`] or
    /// [`Idempotency::release`].
    Run(Claim),
    /// Answered before: send this.
    Replay(Stored),
    /// The first request with this key is still running.
    InFlight,
    /// The key was used with another body.
    Mismatch,
}

#[derive(Clone)]
pub struct Idempotency {
    state: StateStore,
    sealer: Arc<Sealer>,
}

/// An `Idempotency-Key` that is not 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedKey;

/// A client's `Idempotency-Key`, if it sent one.
pub fn client_key(headers: &http::HeaderMap) -> Result<Option<String>, MalformedKey> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(v) if !v.is_empty() && v.len() <= 255 && v.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(v.to_string()))
        }
        _ => Err(MalformedKey),
    }
}

impl Idempotency {
    pub fn new(state: StateStore, sealer: Arc<Sealer>) -> Idempotency {
        Idempotency { state, sealer }
    }

    /// Whether stored answers hold across replicas: in process, or with a shared key.
    pub fn usable(&self) -> bool {
        matches!(self.state, StateStore::Memory(_)) || self.sealer.shared
    }

    fn name(tenant: Option<&str>, principal: &str, scope: &str, key: &str) -> String {
        let digest = parts_digest(&[principal.as_bytes(), scope.as_bytes(), key.as_bytes()]);
        format!("{}:{digest}", tag(tenant))
    }

    fn seal(&self, name: &str, entry: &Entry) -> Result<Vec<u8>, StateError> {
        let plain = serde_json::to_vec(entry).unwrap_or_default();
        self.sealer
            .seal(name, &plain)
            .ok_or_else(|| StateError("sealing failed".into()))
    }

    /// Looks `key` up for `principal` (their pseudonymous id) on `scope` (the endpoint,
    /// or the tool), with the request's `body`.
    pub async fn begin(
        &self,
        who: (Option<&str>, &str),
        scope: &str,
        key: &str,
        body: &[u8],
    ) -> Result<Begin, StateError> {
        let name = Self::name(who.0, who.1, scope, key);
        let body = hex::encode(Sha256::digest(body));
        let marker = self.seal(
            &name,
            &Entry {
                body: body.clone(),
                answer: None,
            },
        )?;
        let k = Key::new(NAMESPACE, &name);
        if self
            .state
            .compare_and_set(k, None, &marker, IN_FLIGHT_TTL)
            .await?
        {
            return Ok(Begin::Run(Claim { name, body, marker }));
        }
        let Some(raw) = self.state.get(k).await? else {
            // Expired between the two calls: the caller may retry.
            return Ok(Begin::InFlight);
        };
        let entry = self
            .sealer
            .open(&name, &raw)
            .and_then(|p| serde_json::from_slice::<Entry>(&p).ok())
            .ok_or_else(|| StateError("a stored answer does not open".into()))?;
        if entry.body != body {
            return Ok(Begin::Mismatch);
        }
        Ok(match entry.answer {
            Some(stored) => Begin::Replay(stored),
            None => Begin::InFlight,
        })
    }

    /// [`Idempotency::begin`], waiting up to `wait` while the first request with the key
    /// still runs: `InFlight` only when it still does after that.
    pub async fn begin_waiting(
        &self,
        who: (Option<&str>, &str),
        scope: &str,
        key: &str,
        body: &[u8],
        wait: Duration,
    ) -> Result<Begin, StateError> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let begun = self.begin(who, scope, key, body).await?;
            if !matches!(begun, Begin::InFlight) || tokio::time::Instant::now() >= until {
                return Ok(begun);
            }
            tokio::time::sleep(IN_FLIGHT_POLL).await;
        }
    }

    /// Stores the first request's answer.
    pub async fn complete(&self, claim: Claim, stored: Stored) -> Result<(), StateError> {
        let entry = Entry {
            body: claim.body.clone(),
            answer: Some(stored),
        };
        let sealed = self.seal(&claim.name, &entry)?;
        self.state
            .compare_and_set(
                Key::new(NAMESPACE, &claim.name),
                Some(&claim.marker),
                &sealed,
                ANSWER_TTL,
            )
            .await
            .map(|_| ())
    }

    /// Frees the key: the first request's answer is not one to replay.
    pub async fn release(&self, claim: Claim) -> Result<(), StateError> {
        // Replaced by an entry that is already expired: the next request runs.
        self.state
            .compare_and_set(
                Key::new(NAMESPACE, &claim.name),
                Some(&claim.marker),
                b"",
                Duration::from_millis(1),
            )
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_replay_successes_and_refuse_other_bodies_and_runs_in_flight() {
        let sealer = Arc::new(Sealer::from_env("WARDEN_TEST_UNSET_KEY").unwrap());
        let idem = Idempotency::new(StateStore::Memory(Arc::default()), sealer);
        let me = (Some("acme"), "alice");
        let Begin::Run(claim) = idem.begin(me, "chat", "k1", b"{}").await.unwrap() else {
            panic!("first run");
        };
        assert!(matches!(
            idem.begin(me, "chat", "k1", b"{}").await.unwrap(),
            Begin::InFlight
        ));
        assert!(matches!(
            idem.begin(me, "chat", "k1", b"{ }").await.unwrap(),
            Begin::Mismatch
        ));
        // Another principal's key of the same name is theirs.
        assert!(matches!(
            idem.begin((Some("acme"), "bob"), "chat", "k1", b"{}")
                .await
                .unwrap(),
            Begin::Run(_)
        ));
        let stored = Stored {
            status: 200,
            content_type: "application/json".into(),
            body: b"{\"ok\":1}".to_vec(),
        };
        idem.complete(claim, stored).await.unwrap();
        match idem.begin(me, "chat", "k1", b"{}").await.unwrap() {
            Begin::Replay(s) => assert_eq!(s.body, b"{\"ok\":1}"),
            other => panic!("{other:?}"),
        }
        let Begin::Run(claim) = idem.begin(me, "chat", "k2", b"{}").await.unwrap() else {
            panic!("k2");
        };
        idem.release(claim).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(matches!(
            idem.begin(me, "chat", "k2", b"{}").await.unwrap(),
            Begin::Run(_)
        ));
    }
}
