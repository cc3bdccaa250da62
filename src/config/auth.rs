//! Client authentication settings: API keys, trusted JWT issuers and token introspection.
//! With none of them configured every caller is accepted as an anonymous principal.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ConfigError, Invalid, invalid, is_http_url, is_sha256_hex, yaml_error};

#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub api_keys: Vec<ApiKeyConfig>,
    /// A YAML file holding more `api_keys` entries (e.g. a mounted Kubernetes secret),
    /// relative to the config file.
    pub api_keys_file: Option<PathBuf>,
    /// Trusted OAuth2 / OIDC issuers of JWT access tokens.
    pub jwt_issuers: Vec<JwtIssuerConfig>,
    /// RFC 7662 introspection for opaque (non-JWT) access tokens.
    pub introspection: Option<IntrospectionConfig>,
    /// Client certificates (verified by `server.tls.client_ca_file`) that identify a
    /// principal: a request presenting no bearer credential is authenticated by its
    /// connection's certificate.
    pub mtls_identities: Vec<MtlsIdentityConfig>,
}

impl AuthConfig {
    pub fn enabled(&self) -> bool {
        !self.api_keys.is_empty()
            || self.api_keys_file.is_some()
            || !self.jwt_issuers.is_empty()
            || self.introspection.is_some()
            || !self.mtls_identities.is_empty()
    }
}

/// A client certificate's identity and the principal it stands for.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MtlsIdentityConfig {
    /// A URI subject alternative name of the certificate, e.g. a SPIFFE id
    /// `spiffe://shop.example/ns/commerce/sa/storefront`; the principal's subject.
    #[serde(default)]
    pub uri: Option<String>,
    /// A DNS subject alternative name, when the certificate has no URI name.
    #[serde(default)]
    pub dns: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A non-secret name for the key (appears in logs and metrics).
    pub id: String,
    /// Hex SHA-256 of the key. The key itself is never stored.
    pub sha256: String,
    #[serde(default)]
    pub tenant: Option<String>,
    /// Roles the key's principal holds, for policy rules.
    #[serde(default)]
    pub roles: Vec<String>,
    /// RFC 3339 time after which the key is refused.
    #[serde(default)]
    pub expires: Option<String>,
}

/// Signature algorithms a JWT issuer may use. Only asymmetric algorithms exist here:
/// `none` and the HMAC family can never be configured.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum JwtAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl JwtAlgorithm {
    pub fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            JwtAlgorithm::RS256 => A::RS256,
            JwtAlgorithm::RS384 => A::RS384,
            JwtAlgorithm::RS512 => A::RS512,
            JwtAlgorithm::PS256 => A::PS256,
            JwtAlgorithm::PS384 => A::PS384,
            JwtAlgorithm::PS512 => A::PS512,
            JwtAlgorithm::ES256 => A::ES256,
            JwtAlgorithm::ES384 => A::ES384,
            JwtAlgorithm::EdDSA => A::EdDSA,
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuerConfig {
    /// The exact `iss` of the tokens; also the base of OIDC discovery.
    pub issuer: String,
    /// JWKS URL; when absent it is discovered from
    /// `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Accepted `aud` values (at least one must be present in the token).
    pub audiences: Vec<String>,
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
    /// Tolerance for `exp` and `nbf`.
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: u64,
    /// Claims that must be present besides `exp`, `iss` and `aud`.
    #[serde(default)]
    pub required_claims: Vec<String>,
    #[serde(default)]
    pub claims: ClaimMapping,
    #[serde(default)]
    pub jwks: JwksSettings,
    /// A verified token is remembered (by its SHA-256) for this long, never past its
    /// `exp`, so a client reusing its token pays the signature check once. 0 disables.
    #[serde(default = "default_verified_cache")]
    pub verified_cache_seconds: u64,
    /// Extra PEM CA bundle for the issuer's endpoints.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_algorithms() -> Vec<JwtAlgorithm> {
    vec![
        JwtAlgorithm::RS256,
        JwtAlgorithm::PS256,
        JwtAlgorithm::ES256,
        JwtAlgorithm::EdDSA,
    ]
}

fn default_skew() -> u64 {
    60
}

fn default_verified_cache() -> u64 {
    60
}

/// Where the principal's parts come from in the token's claims. Paths use dots for nested
/// claims (`realm_access.roles`); a path may hold an array of strings or a space-separated
/// string.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimMapping {
    pub subject: String,
    pub tenant: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// Top-level claims copied into the principal for policy rules (all when empty).
    /// They are used for decisions only and never logged.
    pub keep: Vec<String>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping {
            subject: "sub".into(),
            tenant: None,
            roles: vec!["roles".into(), "groups".into()],
            scopes: vec!["scope".into(), "scp".into()],
            keep: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JwksSettings {
    /// Background refresh period.
    pub refresh_seconds: u64,
    /// At most one refresh per this interval when tokens name an unknown `kid`.
    pub min_refresh_interval_seconds: u64,
    /// How long the last keys stay usable after refreshes start failing.
    pub max_stale_seconds: u64,
    pub timeout_ms: u64,
}

impl Default for JwksSettings {
    fn default() -> Self {
        JwksSettings {
            refresh_seconds: 300,
            min_refresh_interval_seconds: 10,
            max_stale_seconds: 3600,
            timeout_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// The RFC 7662 endpoint.
    pub endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    /// Results are cached by a hash of the token until `min(exp, now + ttl)`.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_seconds: u64,
    #[serde(default = "default_introspection_timeout")]
    pub timeout_ms: u64,
    /// Entries kept at most in the result cache.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    #[serde(default)]
    pub claims: ClaimMapping,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// When set, an active answer must name one of these in `aud`.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// When set, an active answer's `iss` must be this.
    #[serde(default)]
    pub issuer: Option<String>,
    /// When set, an active answer's `client_id` must be one of these.
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// Leeway for the answer's `exp` and `nbf`.
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: u64,
    /// Tokens not in the cache (each costs a call to the IdP) per client address per
    /// minute; beyond it the client gets 429 until the budget refills.
    #[serde(default = "default_misses_per_minute")]
    pub misses_per_client_per_minute: u32,
}

fn default_misses_per_minute() -> u32 {
    120
}

fn default_cache_ttl() -> u64 {
    60
}
fn default_introspection_timeout() -> u64 {
    3000
}
fn default_cache_entries() -> usize {
    100_000
}

impl AuthConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        let mut names = std::collections::BTreeSet::new();
        for (i, m) in self.mtls_identities.iter().enumerate() {
            let name = match (&m.uri, &m.dns) {
                (Some(uri), None) if uri.contains(':') => format!("uri:{uri}"),
                (None, Some(dns)) if !dns.is_empty() => format!("dns:{dns}"),
                _ => {
                    return Err(invalid(
                        &["auth", "mtls_identities"],
                        format!(
                            "entry {i}: give exactly one of `uri` (with a scheme, e.g. spiffe://…) or `dns`"
                        ),
                    ));
                }
            };
            if !names.insert(name) {
                return Err(invalid(
                    &["auth", "mtls_identities"],
                    format!("entry {i} names the same certificate identity as an earlier one"),
                ));
            }
        }
        for (i, key) in self.api_keys.iter().enumerate() {
            if !is_sha256_hex(&key.sha256) {
                return Err(invalid(
                    &["auth", "api_keys"],
                    format!("entry {i} (`{}`): `sha256` must be 64 hex digits", key.id),
                ));
            }
        }
        for issuer in &self.jwt_issuers {
            let path = ["auth", "jwt_issuers"];
            for url in std::iter::once(&issuer.issuer).chain(issuer.jwks_uri.as_ref()) {
                if !is_http_url(url) {
                    return Err(invalid(&path, format!("`{url}` is not an http(s) URL")));
                }
            }
            if issuer.audiences.is_empty() || issuer.algorithms.is_empty() {
                return Err(invalid(
                    &path,
                    format!(
                        "issuer `{}` needs at least one audience and one algorithm",
                        issuer.issuer
                    ),
                ));
            }
        }
        if let Some(i) = &self.introspection
            && !is_http_url(&i.endpoint)
        {
            return Err(invalid(
                &["auth", "introspection"],
                format!("`{}` is not an http(s) URL", i.endpoint),
            ));
        }
        Ok(())
    }

    /// Adds the keys of `api_keys_file` (relative to the config file's directory `base`).
    /// The file must hold at least one well-formed key: authentication stays on, and an
    /// empty key set would make every caller anonymous instead.
    pub(crate) fn merge_keys_file(&mut self, base: &Path) -> Result<(), ConfigError> {
        let Some(keys_file) = &self.api_keys_file else {
            return Ok(());
        };
        let keys_path = base.join(keys_file);
        let file = keys_path.display().to_string();
        let error = |position, message: String| ConfigError {
            file: file.clone(),
            position,
            message,
        };
        let text = std::fs::read_to_string(&keys_path)
            .map_err(|e| error(None, format!("cannot read: {e}")))?;
        let keys: Vec<ApiKeyConfig> = if text.trim().is_empty() {
            Vec::new()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| {
                let (position, message) = yaml_error(&e);
                error(position, message)
            })?
        };
        if keys.is_empty() {
            return Err(error(
                None,
                "holds no API keys; with `auth.api_keys_file` set, at least one key is required"
                    .into(),
            ));
        }
        if let Some(bad) = keys.iter().find(|k| !is_sha256_hex(&k.sha256)) {
            return Err(error(
                None,
                format!("key `{}`: `sha256` must be 64 hex digits", bad.id),
            ));
        }
        self.api_keys.extend(keys);
        Ok(())
    }
}
