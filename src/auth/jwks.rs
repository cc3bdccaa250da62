//! One issuer's signing keys: fetched from its JWKS (found by OIDC discovery or configured),
//! kept as an immutable snapshot readers load without locking, refreshed in the background,
//! refreshed on an unknown `kid` at most once per interval (so random kids cannot hammer
//! the issuer), and served stale for a bounded time while the issuer is unreachable.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};

use super::fetch;
use crate::config::JwksSettings;
use crate::http_client::HttpClient;
use crate::telemetry::metrics;

struct KeySet {
    by_kid: HashMap<String, Arc<DecodingKey>>,
    /// Keys without a `kid` (usable only when a token names none and there is one key).
    unnamed: Vec<Arc<DecodingKey>>,
    fetched: Option<Instant>,
}

/// The result of looking a key up.
pub enum KeyLookup {
    Found(Arc<DecodingKey>),
    /// The issuer's current keys do not include this `kid`.
    Unknown,
    /// No usable keys: never fetched, or stale beyond the allowed time.
    Unavailable,
}

pub struct JwksCache {
    issuer: String,
    explicit_uri: Option<String>,
    client: HttpClient,
    settings: JwksSettings,
    keys: ArcSwap<KeySet>,
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    pub fn new(
        issuer: &str,
        explicit_uri: Option<String>,
        client: HttpClient,
        settings: JwksSettings,
    ) -> JwksCache {
        JwksCache {
            issuer: issuer.trim_end_matches('/').to_string(),
            explicit_uri,
            client,
            settings,
            keys: ArcSwap::from_pointee(KeySet {
                by_kid: HashMap::new(),
                unnamed: Vec::new(),
                fetched: None,
            }),
            last_attempt: tokio::sync::Mutex::new(None),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn refresh_period(&self) -> Duration {
        Duration::from_secs(self.settings.refresh_seconds)
    }

    pub fn retry_period(&self) -> Duration {
        Duration::from_secs(self.settings.min_refresh_interval_seconds.max(1))
    }

    fn usable(&self, set: &KeySet) -> bool {
        let limit =
            Duration::from_secs(self.settings.refresh_seconds + self.settings.max_stale_seconds);
        set.fetched.is_some_and(|t| t.elapsed() <= limit)
    }

    /// Whether the current keys are within their usable age (fresh or allowed stale).
    pub fn has_usable_keys(&self) -> bool {
        self.usable(&self.keys.load())
    }

    /// The key for `kid`, refreshing (rate-limited) when it is unknown or the set is stale.
    pub async fn key(&self, kid: Option<&str>) -> KeyLookup {
        let set = self.keys.load_full();
        if self.usable(&set)
            && let Some(k) = find(&set, kid)
        {
            return KeyLookup::Found(k);
        }
        self.refresh_limited().await;
        let set = self.keys.load_full();
        if !self.usable(&set) {
            return KeyLookup::Unavailable;
        }
        match find(&set, kid) {
            Some(k) => KeyLookup::Found(k),
            None => KeyLookup::Unknown,
        }
    }

    /// Refreshes unless another refresh happened within the minimum interval.
    async fn refresh_limited(&self) {
        let mut last = self.last_attempt.lock().await;
        let min = Duration::from_secs(self.settings.min_refresh_interval_seconds);
        if last.is_some_and(|t| t.elapsed() < min) {
            metrics()
                .jwks_refreshes
                .with_label_values(&[self.issuer.as_str(), "rate_limited"])
                .inc();
            return;
        }
        *last = Some(Instant::now());
        let _ = self.refresh_now().await;
    }

    /// Fetches the JWKS now; on failure the previous keys stay.
    pub async fn refresh_now(&self) -> Result<usize, fetch::FetchError> {
        match self.fetch().await {
            Ok(set) => {
                let n = set.by_kid.len() + set.unnamed.len();
                self.keys.store(Arc::new(set));
                metrics()
                    .jwks_refreshes
                    .with_label_values(&[self.issuer.as_str(), "success"])
                    .inc();
                Ok(n)
            }
            Err(e) => {
                metrics()
                    .jwks_refreshes
                    .with_label_values(&[self.issuer.as_str(), "failure"])
                    .inc();
                tracing::warn!(issuer = %self.issuer, error = %e, "JWKS refresh failed; keeping the previous keys");
                Err(e)
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, fetch::FetchError> {
        let timeout = Duration::from_millis(self.settings.timeout_ms);
        let uri = match &self.explicit_uri {
            Some(u) => u.clone(),
            None => {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let doc = fetch::json(&self.client, fetch::get(&url)?, timeout).await?;
                doc.get("jwks_uri")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| {
                        fetch::FetchError::Body("discovery document has no jwks_uri".into())
                    })?
                    .to_string()
            }
        };
        let doc = fetch::json(&self.client, fetch::get(&uri)?, timeout).await?;
        let jwks: JwkSet =
            serde_json::from_value(doc).map_err(|e| fetch::FetchError::Body(e.to_string()))?;
        let mut set = KeySet {
            by_kid: HashMap::new(),
            unnamed: Vec::new(),
            fetched: Some(Instant::now()),
        };
        for jwk in &jwks.keys {
            if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                continue; // symmetric keys are never trusted
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let key = Arc::new(key);
            match &jwk.common.key_id {
                Some(kid) => {
                    set.by_kid.insert(kid.clone(), key);
                }
                None => set.unnamed.push(key),
            }
        }
        Ok(set)
    }
}

fn find(set: &KeySet, kid: Option<&str>) -> Option<Arc<DecodingKey>> {
    match kid {
        Some(kid) => set.by_kid.get(kid).cloned(),
        None if set.by_kid.len() + set.unnamed.len() == 1 => set
            .unnamed
            .first()
            .or_else(|| set.by_kid.values().next())
            .cloned(),
        None => None,
    }
}
