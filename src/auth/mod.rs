//! Client authentication: turns request headers into a [`Principal`]. API keys are held
//! only as SHA-256 hashes and compared in constant time. A presented credential is never
//! logged or echoed in an error.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AuthConfig;
use crate::openai::{ApiError, ErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No authentication configured: every caller is accepted.
    Anonymous,
    ApiKey,
    /// A JWT bearer token verified against its issuer's JWKS.
    Jwt,
    /// An opaque token checked by RFC 7662 introspection.
    Introspection,
}

impl AuthMethod {
    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Introspection => "introspection",
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: Option<String>,
    pub subject: String,
    pub method: AuthMethod,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// Claims selected for policy decisions (JWT / introspection only).
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub issuer: Option<String>,
}

impl Principal {
    pub fn anonymous() -> Principal {
        Principal {
            tenant: None,
            subject: "anonymous".into(),
            method: AuthMethod::Anonymous,
            roles: Vec::new(),
            scopes: Vec::new(),
            claims: serde_json::Map::new(),
            issuer: None,
        }
    }
}

struct KeyEntry {
    id: String,
    hash: [u8; 32],
    tenant: Option<String>,
    roles: Vec<String>,
}

pub struct Authenticator {
    keys: Vec<KeyEntry>,
}

impl Authenticator {
    pub fn from_config(config: &AuthConfig) -> anyhow::Result<Authenticator> {
        let mut keys = Vec::new();
        for k in &config.api_keys {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(&k.sha256, &mut hash)
                .map_err(|_| anyhow::anyhow!("api key `{}`: sha256 is not 64 hex digits", k.id))?;
            keys.push(KeyEntry {
                id: k.id.clone(),
                hash,
                tenant: k.tenant.clone(),
                roles: k.roles.clone(),
            });
        }
        Ok(Authenticator { keys })
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Authenticates a request from its headers (`Authorization: Bearer …` or `api-key`).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        if !self.enabled() {
            return Ok(Principal::anonymous());
        }
        let Some(presented) = credential(headers) else {
            return Err(unauthorized(
                "Missing API key: send it as `Authorization: Bearer <key>`.",
                "invalid_request",
            ));
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for entry in &self.keys {
            if bool::from(entry.hash.ct_eq(&digest)) {
                found = Some(entry);
            }
        }
        match found {
            Some(e) => Ok(Principal {
                tenant: e.tenant.clone(),
                subject: e.id.clone(),
                method: AuthMethod::ApiKey,
                roles: e.roles.clone(),
                scopes: Vec::new(),
                claims: serde_json::Map::new(),
                issuer: None,
            }),
            None => Err(unauthorized("Incorrect API key provided.", "invalid_token")),
        }
    }
}

fn credential(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = v.trim().split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
            return Some(token.trim().to_string());
        }
        return None;
    }
    headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn unauthorized(message: &str, bearer_error: &str) -> ApiError {
    ApiError::new(ErrorKind::Unauthorized, message).with_header(
        "www-authenticate",
        format!(
            "Bearer realm=\"warden\", error=\"{bearer_error}\", error_description=\"{message}\""
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyConfig;

    fn auth() -> Authenticator {
        let sha256 = hex::encode(Sha256::digest(b"sk-good"));
        Authenticator::from_config(&AuthConfig {
            api_keys: vec![ApiKeyConfig {
                id: "svc".into(),
                sha256,
                tenant: Some("acme".into()),
                roles: vec!["storefront".into()],
            }],
        })
        .unwrap()
    }

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    #[test]
    fn accepts_the_right_key_in_either_header() {
        let p = auth()
            .authenticate(&headers("authorization", "Bearer sk-good"))
            .unwrap();
        assert_eq!(
            (p.subject.as_str(), p.tenant.as_deref()),
            ("svc", Some("acme"))
        );
        assert!(auth().authenticate(&headers("api-key", "sk-good")).is_ok());
    }

    #[test]
    fn refuses_wrong_and_missing_keys_without_echo() {
        let e = auth()
            .authenticate(&headers("authorization", "Bearer sk-bad-secret"))
            .unwrap_err();
        assert_eq!(e.status(), http::StatusCode::UNAUTHORIZED);
        assert!(!e.message.contains("sk-bad-secret"));
        assert!(
            e.headers
                .iter()
                .any(|(n, v)| *n == "www-authenticate" && v.contains("invalid_token"))
        );
        assert!(auth().authenticate(&HeaderMap::new()).is_err());
        assert!(
            auth()
                .authenticate(&headers("authorization", "Basic abc"))
                .is_err()
        );
    }

    #[test]
    fn anonymous_when_no_keys() {
        let a = Authenticator::from_config(&AuthConfig::default()).unwrap();
        assert_eq!(
            a.authenticate(&HeaderMap::new()).unwrap().method,
            AuthMethod::Anonymous
        );
    }
}
