//! The Responses API's stored responses, as Warden remembers them: which principal
//! created each response it passed, at which provider and model, and the placeholders of
//! its conversation. With that, `GET`/`DELETE /v1/responses/{id}`, `input_items` and a
//! `previous_response_id` find only the caller's own responses (anyone else's answer 404
//! without reaching the provider), and a conversation's placeholders stay the same from
//! turn to turn: a value given in turn 1 is restored in turn 3.
//!
//! One record per response, in the shared state (namespace `responses`, so any replica
//! can continue a conversation), named by the tenant's tag and a digest of the principal
//! and the response id — another principal's lookup names another key — and sealed
//! (AES-GCM, bound to that name), kept `state.responses_ttl_days`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::pii::VaultSnapshot;
use crate::state::{Key, Sealer, StateError, StateStore, parts_digest, tag};

const NAMESPACE: &str = "responses";

/// What Warden keeps about one response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Thread {
    /// The client-facing model the response was created with.
    pub model: String,
    /// The provider that stores it, and the model or deployment there.
    pub provider: String,
    pub upstream_model: String,
    /// The conversation's placeholders up to this response.
    #[serde(default)]
    pub vault: Option<VaultSnapshot>,
}

/// The records of the responses Warden passed.
pub struct Conversations {
    state: StateStore,
    sealer: Arc<Sealer>,
    ttl: Duration,
}

impl Conversations {
    pub fn new(state: StateStore, sealer: Arc<Sealer>, ttl: Duration) -> Conversations {
        Conversations { state, sealer, ttl }
    }

    /// Whether records hold across replicas: in process, or with a shared key.
    pub fn usable(&self) -> bool {
        matches!(self.state, StateStore::Memory(_)) || self.sealer.shared
    }

    fn name(principal: &Principal, response_id: &str) -> String {
        let digest = parts_digest(&[
            principal.method.label().as_bytes(),
            principal.issuer.as_deref().unwrap_or_default().as_bytes(),
            principal.subject.as_bytes(),
            response_id.as_bytes(),
        ]);
        format!("{}:{digest}", tag(principal.tenant.as_deref()))
    }

    /// The record of `response_id` for `principal`; `None` when they did not create it
    /// (or it expired, or it does not open).
    pub async fn find(
        &self,
        principal: &Principal,
        response_id: &str,
    ) -> Result<Option<Thread>, StateError> {
        let name = Self::name(principal, response_id);
        let Some(raw) = self.state.get(Key::new(NAMESPACE, &name)).await? else {
            return Ok(None);
        };
        Ok(self
            .sealer
            .open(&name, &raw)
            .and_then(|plain| serde_json::from_slice(&plain).ok()))
    }

    /// Records that `principal` created `response_id`.
    pub async fn remember(
        &self,
        principal: &Principal,
        response_id: &str,
        thread: &Thread,
    ) -> Result<(), StateError> {
        let name = Self::name(principal, response_id);
        let plain = serde_json::to_vec(thread).unwrap_or_default();
        let sealed = self
            .sealer
            .seal(&name, &plain)
            .ok_or_else(|| StateError("sealing failed".into()))?;
        self.state
            .put(Key::new(NAMESPACE, &name), &sealed, self.ttl)
            .await
    }

    /// Forgets `response_id` (deleted at the provider): it is nobody's any more. The
    /// record is overwritten with one that does not open and expires at once.
    pub async fn forget(&self, principal: &Principal, response_id: &str) -> Result<(), StateError> {
        let name = Self::name(principal, response_id);
        self.state
            .put(Key::new(NAMESPACE, &name), b"", Duration::from_secs(1))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;

    fn principal(tenant: &str, subject: &str) -> Principal {
        Principal {
            tenant: Some(tenant.into()),
            subject: subject.into(),
            method: AuthMethod::ApiKey,
            ..Principal::anonymous()
        }
    }

    #[tokio::test]
    async fn only_the_creator_finds_a_response() {
        let sealer = Arc::new(Sealer::from_env("WARDEN_TEST_UNSET_KEY").unwrap());
        let c = Conversations::new(
            StateStore::Memory(Arc::default()),
            sealer,
            Duration::from_secs(60),
        );
        let thread = Thread {
            model: "gpt-4o-mini".into(),
            provider: "openai".into(),
            upstream_model: "gpt-4o-mini-2024-07-18".into(),
            vault: None,
        };
        let alice = principal("acme", "alice");
        c.remember(&alice, "resp_1", &thread).await.unwrap();
        assert_eq!(c.find(&alice, "resp_1").await.unwrap(), Some(thread));
        for other in [principal("acme", "bob"), principal("globex", "alice")] {
            assert_eq!(c.find(&other, "resp_1").await.unwrap(), None);
        }
        assert_eq!(c.find(&alice, "resp_2").await.unwrap(), None);
        c.forget(&alice, "resp_1").await.unwrap();
        assert_eq!(c.find(&alice, "resp_1").await.unwrap(), None);
    }
}
