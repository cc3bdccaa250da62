//! RFC 7662 token introspection for opaque tokens. An active answer is accepted only with
//! a valid `exp`/`nbf` and, when configured, the expected `iss`, `aud` and `client_id`.
//! Results are cached under a SHA-256 of the token, never the token itself, until
//! `min(exp, now + ttl)`: active ones in an LRU cache, inactive ones in a smaller one of
//! their own, so random tokens never push out the principals in use. Each client address
//! may cause only so many IdP calls per minute (tokens not in the cache); beyond that it
//! gets 429. An unreachable endpoint is a 503, never an accepted token.

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
    active: TokenCache<Principal>,
    inactive: TokenCache<()>,
    /// Cache misses (IdP calls) per client address.
    misses: MissLimiter,
    checks: std::sync::atomic::AtomicU64,
}

type MissLimiter = governor::DefaultKeyedRateLimiter<String>;

/// Checks of the miss limiter between sweeps of its idle keys.
const SWEEP_EVERY: u64 = 4096;

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
        let per_minute = std::num::NonZeroU32::new(config.misses_per_client_per_minute)
            .ok_or_else(|| anyhow::anyhow!("misses_per_client_per_minute must be at least 1"))?;
        Ok(Introspector {
            config: config.clone(),
            client,
            authorization: format!("Basic {basic}"),
            active: TokenCache::new(config.cache_entries),
            inactive: TokenCache::new((config.cache_entries / 4).max(1)),
            misses: governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute)),
            checks: Default::default(),
        })
    }

    /// Checks an opaque token presented by `client` (its address).
    pub async fn check(&self, token: &str, client: Option<&str>) -> Result<Principal, AuthError> {
        let key = key_of(token);
        if let Some(hit) = self.active.get(&key) {
            metrics()
                .introspection
                .with_label_values(&["cache_hit"])
                .inc();
            return Ok(hit);
        }
        if self.inactive.get(&key).is_some() {
            metrics()
                .introspection
                .with_label_values(&["cache_hit"])
                .inc();
            return Err(AuthError::invalid("the token is not active"));
        }
        self.charge_miss(client)?;
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
            self.inactive.insert(key, (), Instant::now() + ttl);
            return Err(AuthError::invalid("the token is not active"));
        }
        if let Err(problem) = self.accepted(&claims) {
            metrics()
                .introspection
                .with_label_values(&["rejected"])
                .inc();
            self.inactive.insert(key, (), Instant::now() + ttl);
            return Err(AuthError::invalid(problem));
        }
        let mut expires = Instant::now() + ttl;
        if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
            let now = unix_now();
            let skew = self.config.clock_skew_seconds;
            if exp.saturating_add(skew) <= now {
                self.inactive.insert(key, (), Instant::now() + ttl);
                return Err(AuthError::invalid("the token has expired"));
            }
            expires = expires.min(Instant::now() + Duration::from_secs(exp + skew - now));
        }
        let principal = claims::principal(
            &self.config.claims,
            &claims,
            AuthMethod::Introspection,
            None,
        )
        .ok_or_else(|| AuthError::invalid("the introspected token has no subject"))?;
        metrics().introspection.with_label_values(&["active"]).inc();
        self.active.insert(key, principal.clone(), expires);
        Ok(principal)
    }

    /// Whether an active answer was issued for Warden: `nbf` passed, and `iss`, `aud`
    /// and `client_id` as configured.
    fn accepted(&self, claims: &Map<String, Value>) -> Result<(), &'static str> {
        let c = &self.config;
        if claims
            .get("nbf")
            .and_then(Value::as_u64)
            .is_some_and(|nbf| nbf > unix_now().saturating_add(c.clock_skew_seconds))
        {
            return Err("the token is not valid yet");
        }
        if let Some(issuer) = &c.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
        {
            return Err("the token's issuer is not trusted");
        }
        if !c.audiences.is_empty() {
            let aud: Vec<&str> = match claims.get("aud") {
                Some(Value::String(a)) => vec![a.as_str()],
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !aud.iter().any(|a| c.audiences.iter().any(|want| want == a)) {
                return Err("the token's audience is not accepted");
            }
        }
        if !c.client_ids.is_empty() {
            let client = claims.get("client_id").and_then(Value::as_str);
            if !client.is_some_and(|id| c.client_ids.iter().any(|want| want == id)) {
                return Err("the token was issued to a client that is not accepted");
            }
        }
        Ok(())
    }

    /// Counts an IdP call for `client`; refuses when its budget is spent.
    fn charge_miss(&self, client: Option<&str>) -> Result<(), AuthError> {
        let key = client.unwrap_or("-").to_string();
        let checks = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if checks % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.misses.retain_recent();
            self.misses.shrink_to_fit();
        }
        match self.misses.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                metrics()
                    .introspection
                    .with_label_values(&["throttled"])
                    .inc();
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                Err(AuthError::Throttled(wait))
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
