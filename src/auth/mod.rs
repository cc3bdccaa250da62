//! Client authentication: turns the request's credential into one [`Principal`] — an API
//! key (hashed, constant-time), a JWT verified against its issuer's JWKS, an opaque
//! token checked by introspection, or, for a request without one, the client certificate
//! the TLS listener verified. A presented credential is never logged or echoed;
//! a failure is an [`AuthError`], which the proxy answers with 401 and an RFC 6750
//! `WWW-Authenticate` header (`proxy::rescue`).

mod api_keys;
pub mod claims;
mod fetch;
mod introspection;
mod jwks;
mod jwt;
mod mtls;
mod token_cache;

pub use mtls::PeerIdentity;

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use crate::config::AuthConfig;
use crate::telemetry::metrics;

use api_keys::{ApiKeys, KeyCheck};
use introspection::Introspector;
use jwt::JwtVerifier;

/// Longest credential accepted; longer ones are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No authentication configured: every caller is accepted.
    Anonymous,
    ApiKey,
    /// A JWT bearer token verified against its issuer's JWKS.
    Jwt,
    /// An opaque token checked by RFC 7662 introspection.
    Introspection,
    /// A client certificate verified by the TLS listener.
    Mtls,
}

impl AuthMethod {
    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Introspection => "introspection",
            AuthMethod::Mtls => "mtls",
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
    /// Claims selected for policy decisions (JWT / introspection only). Never logged.
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

/// Why authentication failed. Messages describe the failure, never the credential.
#[derive(Debug, Clone)]
pub enum AuthError {
    Missing,
    Invalid(String),
    /// The credential could not be checked (issuer keys or introspection unavailable).
    Unavailable(&'static str),
    /// This client sent too many unknown tokens; retry after the wait.
    Throttled(Duration),
}

impl AuthError {
    pub fn invalid(message: &str) -> AuthError {
        AuthError::Invalid(message.to_string())
    }

    fn label(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Invalid(_) => "invalid",
            AuthError::Unavailable(_) => "unavailable",
            AuthError::Throttled(_) => "throttled",
        }
    }
}

pub struct Authenticator {
    /// Whether the configuration turns authentication on (then it stays on, whatever the
    /// key sets hold).
    enabled: bool,
    api_keys: ApiKeys,
    jwt: Option<Arc<JwtVerifier>>,
    introspection: Option<Introspector>,
    mtls: mtls::MtlsIdentities,
}

impl Authenticator {
    pub fn from_config(config: &AuthConfig) -> anyhow::Result<Authenticator> {
        let jwt = if config.jwt_issuers.is_empty() {
            None
        } else {
            Some(Arc::new(JwtVerifier::from_config(&config.jwt_issuers)?))
        };
        let introspection = config
            .introspection
            .as_ref()
            .map(Introspector::from_config)
            .transpose()?;
        Ok(Authenticator {
            enabled: config.enabled(),
            api_keys: ApiKeys::from_config(&config.api_keys)?,
            jwt,
            introspection,
            mtls: mtls::MtlsIdentities::from_config(&config.mtls_identities),
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Authenticates a request's credential (see [`credential`]) sent from `client` (its
    /// address, which bounds how many unknown opaque tokens it may have introspected),
    /// or, without one, the connection's verified client certificate (`peer`).
    pub async fn authenticate(
        &self,
        credential: Option<String>,
        client: Option<&str>,
        peer: Option<&PeerIdentity>,
    ) -> Result<Principal, AuthError> {
        if !self.enabled() {
            return Ok(Principal::anonymous());
        }
        let result = match (credential, peer) {
            (None, Some(peer)) if !self.mtls.is_empty() => self
                .mtls
                .check(peer)
                .ok_or_else(|| AuthError::invalid("the client certificate is not recognised")),
            (credential, _) => self.check(credential, client).await,
        };
        let label = match &result {
            Ok(p) => p.method.label(),
            Err(e) => e.label(),
        };
        metrics().auth_results.with_label_values(&[label]).inc();
        result
    }

    async fn check(
        &self,
        credential: Option<String>,
        client: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let token = credential.ok_or(AuthError::Missing)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::invalid("the token is too large"));
        }
        match self.api_keys.check(&token) {
            KeyCheck::Valid(p) => return Ok(p),
            KeyCheck::Expired => return Err(AuthError::invalid("the API key has expired")),
            KeyCheck::NoMatch => {}
        }
        if jwt::looks_like_jwt(&token) {
            if let Some(verifier) = &self.jwt {
                return verifier.verify(&token).await;
            }
        } else if let Some(introspector) = &self.introspection {
            return introspector.check(&token, client).await;
        }
        Err(AuthError::invalid("the credential is not recognised"))
    }

    /// Fetches every issuer's keys now and then keeps them fresh, on a background thread
    /// that lives as long as the process.
    pub fn start_key_refresh(&self) -> anyhow::Result<()> {
        let Some(verifier) = self.jwt.clone() else {
            return Ok(());
        };
        crate::background::spawn("jwks-refresh", move || async move {
            let tasks: Vec<_> = verifier
                .issuers
                .iter()
                .map(|issuer| {
                    let jwks = issuer.jwks.clone();
                    tokio::spawn(async move {
                        loop {
                            let wait = match jwks.refresh_now().await {
                                Ok(n) => {
                                    tracing::debug!(
                                        issuer = jwks.issuer(),
                                        keys = n,
                                        "JWKS refreshed"
                                    );
                                    jwks.refresh_period()
                                }
                                Err(_) => jwks.retry_period(),
                            };
                            tokio::time::sleep(wait.max(Duration::from_secs(1))).await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                let _ = t.await;
            }
        })?;
        Ok(())
    }
}

/// The request's credential: `Authorization: Bearer …`, or an `api-key` header (Azure
/// OpenAI clients).
pub fn credential(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.trim().split_once(' ')?;
        let token = token.trim();
        return (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
            .then(|| token.to_string());
    }
    headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyConfig;
    use sha2::{Digest, Sha256};

    fn auth(expires: Option<&str>) -> Authenticator {
        let sha256 = hex::encode(Sha256::digest(b"sk-good"));
        Authenticator::from_config(&AuthConfig {
            api_keys: vec![ApiKeyConfig {
                id: "svc".into(),
                sha256,
                tenant: Some("acme".into()),
                roles: vec!["storefront".into()],
                expires: expires.map(str::to_string),
            }],
            ..AuthConfig::default()
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

    #[tokio::test]
    async fn accepts_the_right_key_in_either_header() {
        let a = auth(None);
        let p = a
            .authenticate(
                credential(&headers("authorization", "Bearer sk-good")),
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            (p.subject.as_str(), p.tenant.as_deref()),
            ("svc", Some("acme"))
        );
        assert_eq!(p.roles, vec!["storefront"]);
        assert!(
            a.authenticate(credential(&headers("api-key", "sk-good")), None, None)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn refuses_wrong_missing_and_expired_keys_without_echo() {
        let a = auth(None);
        let e = a
            .authenticate(
                credential(&headers("authorization", "Bearer sk-bad-secret")),
                None,
                None,
            )
            .await
            .unwrap_err();
        let AuthError::Invalid(description) = e else {
            panic!("{e:?}");
        };
        assert!(!description.contains("sk-bad-secret"));
        assert!(matches!(
            a.authenticate(None, None, None).await,
            Err(AuthError::Missing)
        ));
        assert!(credential(&headers("authorization", "Basic abc")).is_none());
        let old = auth(Some("2020-01-01T00:00:00Z"));
        let e = old
            .authenticate(Some("sk-good".into()), None, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AuthError::Invalid(d) if d.contains("expired")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn anonymous_when_nothing_is_configured() {
        let a = Authenticator::from_config(&AuthConfig::default()).unwrap();
        assert_eq!(
            a.authenticate(None, None, None).await.unwrap().method,
            AuthMethod::Anonymous
        );
    }
}
