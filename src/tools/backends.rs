//! Where tool calls go: the configured backends (`tools.backends`), each resolved once at
//! start-up — its base URL, the headers every call carries, its response cap, and how it
//! is reached: Warden's HTTP client (no redirects followed, its own CA bundle) or, for
//! `kind: mock`, the demo shop's backends in process (one shop shared by every mock
//! backend, so orders written through one are read through another).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{BackendKind, ToolsConfig};
use crate::http_client::HttpClient;
use crate::mock::commerce::Commerce;

/// Longest wait for a backend's TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How a backend is reached.
pub enum Reach {
    Http(Box<HttpClient>),
    InProcess(Arc<Commerce>),
}

/// One backend.
pub struct Backend {
    pub name: String,
    /// The base URL without its trailing `/` (empty in process).
    pub base: String,
    pub headers: HeaderMap,
    pub max_response_bytes: usize,
    pub reach: Reach,
}

/// Every configured backend, by name.
#[derive(Default)]
pub struct Backends {
    map: BTreeMap<String, Arc<Backend>>,
}

impl Backends {
    pub fn from_config(config: Option<&ToolsConfig>) -> anyhow::Result<Backends> {
        let Some(config) = config else {
            return Ok(Backends::default());
        };
        let mut shop: Option<Arc<Commerce>> = None;
        let mut map = BTreeMap::new();
        for (name, b) in &config.backends {
            let mut headers = HeaderMap::new();
            for (k, v) in &b.headers {
                // Validated with the config; the value may be a secret and is never shown.
                let (Ok(k), Ok(v)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(v),
                ) else {
                    anyhow::bail!("tools.backends.{name}: header `{k}` is invalid");
                };
                headers.insert(k, v);
            }
            let (base, reach) = match b.kind {
                BackendKind::Http => {
                    let client = crate::http_client::build(CONNECT_TIMEOUT, b.ca_file.as_deref())
                        .map_err(|e| anyhow::anyhow!("tools.backends.{name}: {e:#}"))?;
                    let base = b.base_url.as_deref().unwrap_or_default();
                    (
                        base.trim_end_matches('/').to_string(),
                        Reach::Http(Box::new(client)),
                    )
                }
                BackendKind::Mock => {
                    let shop = match &shop {
                        Some(s) => s.clone(),
                        None => shop.insert(Arc::new(Commerce::demo()?)).clone(),
                    };
                    (String::new(), Reach::InProcess(shop))
                }
            };
            map.insert(
                name.clone(),
                Arc::new(Backend {
                    name: name.clone(),
                    base,
                    headers,
                    max_response_bytes: b.max_response_bytes,
                    reach,
                }),
            );
        }
        Ok(Backends { map })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Backend>> {
        self.map.get(name)
    }
}
