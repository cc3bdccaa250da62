//! JWT bearer tokens: the issuer is chosen by the token's `iss` among the trusted ones,
//! the algorithm must be one the issuer allows (never `none`, never HMAC), a token with
//! critical header extensions (`crit`) is refused, the key comes only from the issuer's
//! JWKS by `kid` (never from `jku`, `x5u`, `x5c` or an embedded `jwk`), and `iss`, `aud`,
//! `exp`, `nbf` (with clock skew) and the required claims are checked before the claims
//! become a principal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::errors::ErrorKind as JwtError;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::jwks::{JwksCache, KeyLookup};
use super::token_cache::{TokenCache, key_of};
use super::{AuthError, AuthMethod, Principal, claims};
use crate::config::{ClaimMapping, JwtIssuerConfig};
use crate::http_client;

pub struct Issuer {
    pub config: JwtIssuerConfig,
    algorithms: Vec<Algorithm>,
    pub jwks: Arc<JwksCache>,
}

pub struct JwtVerifier {
    pub issuers: Vec<Issuer>,
    /// Principals of tokens whose signature and claims were verified, with the index of
    /// the issuer that verified them.
    verified: TokenCache<(usize, Principal)>,
}

/// Verified tokens remembered at most.
const VERIFIED_CACHE_ENTRIES: usize = 100_000;

/// Longest `kid` looked up; longer ones are refused without touching the cache.
const MAX_KID_LEN: usize = 256;

impl JwtVerifier {
    pub fn from_config(configs: &[JwtIssuerConfig]) -> anyhow::Result<JwtVerifier> {
        let mut issuers = Vec::new();
        for c in configs {
            if c.audiences.is_empty() {
                anyhow::bail!("issuer {}: at least one audience is required", c.issuer);
            }
            if c.algorithms.is_empty() {
                anyhow::bail!("issuer {}: at least one algorithm is required", c.issuer);
            }
            let client = http_client::build(
                std::time::Duration::from_millis(c.jwks.timeout_ms),
                c.ca_file.as_deref(),
            )?;
            issuers.push(Issuer {
                algorithms: c.algorithms.iter().map(|a| a.to_jsonwebtoken()).collect(),
                jwks: Arc::new(JwksCache::new(
                    &c.issuer,
                    c.jwks_uri.clone(),
                    client,
                    c.jwks,
                )),
                config: c.clone(),
            });
        }
        Ok(JwtVerifier {
            issuers,
            verified: TokenCache::new(VERIFIED_CACHE_ENTRIES),
        })
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let key = key_of(token);
        if let Some((index, principal)) = self.verified.get(&key)
            && self
                .issuers
                .get(index)
                .is_some_and(|i| i.jwks.has_usable_keys())
        {
            return Ok(principal);
        }
        let (index, principal, remember) = self.verify_uncached(token).await?;
        if let Some(until) = remember {
            self.verified.insert(key, (index, principal.clone()), until);
        }
        Ok(principal)
    }

    /// Full verification; also returns the issuer's index and until when the result may
    /// be remembered.
    async fn verify_uncached(
        &self,
        token: &str,
    ) -> Result<(usize, Principal, Option<Instant>), AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::invalid("the token is malformed"))?;
        if header.crit.is_some() {
            // RFC 7515 §4.1.11: Warden understands no header extension, so a token that
            // makes any of them critical cannot be accepted.
            return Err(AuthError::invalid(
                "the token requires header extensions that are not supported",
            ));
        }
        // The key is found only by `kid` in the issuer's JWKS: `jku`, `x5u`, `x5c` and an
        // embedded `jwk` are never read.
        let iss = peek_issuer(token).ok_or_else(|| AuthError::invalid("the token is malformed"))?;
        let (index, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.config.issuer == iss)
            .ok_or_else(|| AuthError::invalid("the token's issuer is not trusted"))?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(AuthError::invalid(
                "the token's signing algorithm is not allowed",
            ));
        }
        let kid = header.kid.as_deref();
        if kid.is_some_and(|k| k.len() > MAX_KID_LEN || k.is_empty()) {
            return Err(AuthError::invalid("the token's key id is invalid"));
        }
        let key = match issuer.jwks.key(kid).await {
            KeyLookup::Found(k) => k,
            KeyLookup::Unknown => {
                return Err(AuthError::invalid("the token's signing key is unknown"));
            }
            KeyLookup::Unavailable => {
                return Err(AuthError::Unavailable(
                    "the issuer's signing keys are unavailable",
                ));
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_audience(&issuer.config.audiences);
        validation.leeway = issuer.config.clock_skew_seconds;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| AuthError::invalid(describe(e.kind())))?;
        let claims = data.claims;
        if let Some(missing) = issuer
            .config
            .required_claims
            .iter()
            .find(|c| claims::at_path(&claims, c).is_none())
        {
            return Err(AuthError::Invalid(format!(
                "the token lacks the required claim `{missing}`"
            )));
        }
        let principal = principal(
            &issuer.config.claims,
            &claims,
            AuthMethod::Jwt,
            &issuer.config.issuer,
        )?;
        let now = jsonwebtoken::get_current_timestamp();
        let remember = claims
            .get("exp")
            .and_then(Value::as_u64)
            .filter(|exp| *exp > now)
            .map(|exp| {
                let ttl = issuer.config.verified_cache_seconds.min(exp - now);
                Instant::now() + Duration::from_secs(ttl)
            });
        Ok((index, principal, remember))
    }
}

fn principal(
    mapping: &ClaimMapping,
    claims: &Map<String, Value>,
    method: AuthMethod,
    iss: &str,
) -> Result<Principal, AuthError> {
    claims::principal(mapping, claims, method, Some(iss.to_string())).ok_or_else(|| {
        AuthError::Invalid(format!(
            "the token lacks the subject claim `{}`",
            mapping.subject
        ))
    })
}

/// The `iss` claim read before verification, only to choose whose keys verify the token.
fn peek_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

fn describe(kind: &JwtError) -> &'static str {
    match kind {
        JwtError::ExpiredSignature => "the token has expired",
        JwtError::ImmatureSignature => "the token is not valid yet",
        JwtError::InvalidSignature => "the token's signature is invalid",
        JwtError::InvalidAudience => "the token's audience is not accepted",
        JwtError::InvalidIssuer => "the token's issuer is not trusted",
        JwtError::MissingRequiredClaim(_) => "the token lacks a required claim",
        JwtError::InvalidAlgorithm | JwtError::InvalidAlgorithmName => {
            "the token's signing algorithm is not allowed"
        }
        _ => "the token is invalid",
    }
}

/// Whether a credential has the shape of a JWS compact token.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
    };
    ok(parts.next())
        && ok(parts.next())
        && parts.next().is_some_and(|s| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
        && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJz."));
        assert!(!looks_like_jwt("sk-abc"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a b.c.d"));
    }

    #[test]
    fn peeks_the_issuer() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"iss":"https://idp"}"#);
        assert_eq!(
            peek_issuer(&format!("e30.{payload}.sig")).as_deref(),
            Some("https://idp")
        );
        assert_eq!(peek_issuer("e30.!!.sig"), None);
    }
}
