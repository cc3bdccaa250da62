//! RFC 7662 token introspection for opaque tokens. Results (active and inactive) are
//! cached under a SHA-256 of the token, never the token itself, until
//! `min(exp, now + ttl)`. An unreachable endpoint is a 503, never an accepted token.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::Full;
use serde_json::{Map, Value};

use super::token_cache::{TokenCache, key_of};
use super::{AuthError, AuthMethod, Principal, claims, fetch};
use crate::config::IntrospectionConfig;
use crate::http_client::{self, HttpClient};
use crate::telemetry::metrics;

pub struct Introspector {
    config: IntrospectionConfig,
    client: HttpClient,
    authorization: String,
    /// `None` caches an inactive token.
    cache: TokenCache<Option<Principal>>,
}

impl Introspector {
    pub fn from_config(config: &IntrospectionConfig) -> anyhow::Result<Introspector> {
        let client = http_client::build(
            Duration::from_millis(config.timeout_ms),
            config.ca_file.as_deref(),
        )?;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            fetch::form_encode(&config.client_id),
            fetch::form_encode(&config.client_secret)
        ));
        Ok(Introspector {
            config: config.clone(),
            client,
            authorization: format!("Basic {basic}"),
            cache: TokenCache::new(config.cache_entries),
        })
    }

    pub async fn check(&self, token: &str) -> Result<Principal, AuthError> {
        let key = key_of(token);
        if let Some(hit) = self.cache.get(&key) {
            metrics()
                .introspection
                .with_label_values(&["cache_hit"])
                .inc();
            return hit.ok_or_else(|| AuthError::invalid("the token is not active"));
        }
        let body = format!(
            "token={}&token_type_hint=access_token",
            fetch::form_encode(token)
        );
        let request = Request::builder()
            .method(Method::POST)
            .uri(&self.config.endpoint)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header(header::AUTHORIZATION, &self.authorization)
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| AuthError::Unavailable("token introspection is misconfigured"))?;
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let answer = match fetch::json(&self.client, request, timeout).await {
            Ok(v) => v,
            Err(e) => {
                metrics().introspection.with_label_values(&["error"]).inc();
                tracing::warn!(error = %e, "token introspection failed");
                return Err(AuthError::Unavailable("token introspection is unavailable"));
            }
        };
        let claims: Map<String, Value> = answer.as_object().cloned().unwrap_or_default();
        let ttl = Duration::from_secs(self.config.cache_ttl_seconds);
        if claims.get("active").and_then(Value::as_bool) != Some(true) {
            metrics()
                .introspection
                .with_label_values(&["inactive"])
                .inc();
            self.cache.insert(key, None, Instant::now() + ttl);
            return Err(AuthError::invalid("the token is not active"));
        }
        let mut expires = Instant::now() + ttl;
        if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if exp <= now {
                self.cache.insert(key, None, Instant::now() + ttl);
                return Err(AuthError::invalid("the token has expired"));
            }
            expires = expires.min(Instant::now() + Duration::from_secs(exp - now));
        }
        let principal = claims::principal(
            &self.config.claims,
            &claims,
            AuthMethod::Introspection,
            None,
        )
        .ok_or_else(|| AuthError::invalid("the introspected token has no subject"))?;
        metrics().introspection.with_label_values(&["active"]).inc();
        self.cache.insert(key, Some(principal.clone()), expires);
        Ok(principal)
    }
}
