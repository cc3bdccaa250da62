//! API keys for service accounts: held only as SHA-256 hashes, compared in constant time,
//! each mapped to a tenant, roles and an optional expiry.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthMethod, Principal};
use crate::config::ApiKeyConfig;

struct KeyEntry {
    id: String,
    hash: [u8; 32],
    tenant: Option<String>,
    roles: Vec<String>,
    expires: Option<DateTime<Utc>>,
}

/// What checking a presented key found.
pub enum KeyCheck {
    Valid(Principal),
    Expired,
    NoMatch,
}

#[derive(Default)]
pub struct ApiKeys {
    keys: Vec<KeyEntry>,
}

impl ApiKeys {
    pub fn from_config(keys: &[ApiKeyConfig]) -> anyhow::Result<ApiKeys> {
        let mut out = Vec::new();
        for k in keys {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(&k.sha256, &mut hash)
                .map_err(|_| anyhow::anyhow!("api key `{}`: sha256 is not 64 hex digits", k.id))?;
            let expires = match &k.expires {
                Some(t) => Some(
                    DateTime::parse_from_rfc3339(t)
                        .map_err(|e| anyhow::anyhow!("api key `{}`: expires: {e}", k.id))?
                        .with_timezone(&Utc),
                ),
                None => None,
            };
            out.push(KeyEntry {
                id: k.id.clone(),
                hash,
                tenant: k.tenant.clone(),
                roles: k.roles.clone(),
                expires,
            });
        }
        Ok(ApiKeys { keys: out })
    }

    /// Looks the presented key up by its hash; every entry is compared.
    pub fn check(&self, presented: &str) -> KeyCheck {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for entry in &self.keys {
            if bool::from(entry.hash.ct_eq(&digest)) {
                found = Some(entry);
            }
        }
        let Some(e) = found else {
            return KeyCheck::NoMatch;
        };
        if e.expires.is_some_and(|t| t <= Utc::now()) {
            return KeyCheck::Expired;
        }
        KeyCheck::Valid(Principal {
            tenant: e.tenant.clone(),
            subject: e.id.clone(),
            method: AuthMethod::ApiKey,
            roles: e.roles.clone(),
            scopes: Vec::new(),
            claims: serde_json::Map::new(),
            issuer: None,
        })
    }
}
