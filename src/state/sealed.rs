//! Values sealed before they enter the shared state (pending approvals, stored answers):
//! AES-256-GCM with a random nonce, bound to the key they are stored under (and, where
//! the caller says so, to the principal who may read them), so a value copied to another
//! key or read for someone else does not open. The key is SHA-256 of the environment
//! variable named by `state.encryption_key_env` (default `WARDEN_STATE_KEY`); without it
//! each process draws its own, which only holds while the state does (in process).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// Seals and opens values for the state store.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
    /// The key came from the environment, so every replica shares it.
    pub shared: bool,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("shared", &self.shared)
            .finish()
    }
}

impl Sealer {
    /// The key from `env` (any text; its SHA-256 is the key), or a random one.
    pub fn from_env(env: &str) -> anyhow::Result<Sealer> {
        let rng = SystemRandom::new();
        let (bytes, shared) = match std::env::var(env) {
            Ok(v) if !v.is_empty() => (Sha256::digest(v.as_bytes()).to_vec(), true),
            _ => {
                let mut k = vec![0u8; 32];
                rng.fill(&mut k)
                    .map_err(|_| anyhow::anyhow!("no randomness for the state key"))?;
                (k, false)
            }
        };
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| anyhow::anyhow!("the state key is unusable"))?;
        Ok(Sealer {
            key: LessSafeKey::new(key),
            rng,
            shared,
        })
    }

    /// `value` sealed for `binding` (e.g. the state key's name): nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, binding: &str, value: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut out = value.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(binding.as_bytes()),
                &mut out,
            )
            .ok()?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&out);
        Some(sealed)
    }

    /// The value sealed for `binding`, or `None` when it was sealed otherwise or altered.
    pub fn open(&self, binding: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, body) = sealed.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(binding.as_bytes()), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_binding() {
        let s = Sealer::from_env("WARDEN_TEST_UNSET_KEY").unwrap();
        assert!(!s.shared);
        let sealed = s.seal("approvals:a1", b"refund 120").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"refund"));
        assert_eq!(s.open("approvals:a1", &sealed).unwrap(), b"refund 120");
        assert!(s.open("approvals:a2", &sealed).is_none());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(s.open("approvals:a1", &altered).is_none());
        assert_ne!(s.seal("k", b"x").unwrap(), s.seal("k", b"x").unwrap());
    }
}
