//! Provider adapters: the URL, headers and credentials of an upstream call for OpenAI,
//! Azure OpenAI (deployment URLs and the `api-key` header) and vLLM. The client's own
//! `Authorization` header never reaches this module; only the provider's key is sent.

use bytes::Bytes;
use http::Request;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use http_body_util::Full;

use super::transport::Outbound;
use crate::config::{ProviderConfig, ProviderKind};
use crate::http_client::{self as client, HttpClient};
use crate::openai::Endpoint;

const DEFAULT_OPENAI_BASE: &str = "https://api.openai.com/v1";

pub struct HttpUpstream {
    pub kind: ProviderKind,
    pub client: HttpClient,
    base: String,
    api_version: Option<String>,
    credential: Option<(http::HeaderName, HeaderValue)>,
}

impl HttpUpstream {
    pub fn new(p: &ProviderConfig) -> anyhow::Result<HttpUpstream> {
        let base = match p.kind {
            ProviderKind::Azure => p.endpoint.clone().unwrap_or_default(),
            _ => p
                .base_url
                .clone()
                .unwrap_or_else(|| DEFAULT_OPENAI_BASE.to_string()),
        };
        let key = p
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let credential = match (p.kind, key) {
            (_, None) => None,
            (ProviderKind::Azure, Some(k)) => {
                Some((http::HeaderName::from_static("api-key"), sensitive(k)?))
            }
            (_, Some(k)) => Some((AUTHORIZATION, sensitive(&format!("Bearer {k}"))?)),
        };
        Ok(HttpUpstream {
            kind: p.kind,
            client: client::build(p.timeouts.connect(), p.ca_file.as_deref())?,
            base: base.trim_end_matches('/').to_string(),
            api_version: p.api_version.clone(),
            credential,
        })
    }

    /// The URL of `endpoint` (and a `resource` below it) for this provider and upstream
    /// model (Azure: deployment; its Responses API names the deployment in the body's
    /// `model`, not in the path).
    pub fn url(&self, endpoint: Endpoint, upstream_model: &str, resource: Option<&str>) -> String {
        let (resource, query) = match resource.map(|r| r.split_once('?').unwrap_or((r, ""))) {
            Some((r, q)) => (Some(r), q),
            None => (None, ""),
        };
        let path = match resource {
            Some(r) => format!("{}/{r}", endpoint.upstream_path()),
            None => endpoint.upstream_path().to_string(),
        };
        let version = self.api_version.as_deref().unwrap_or_default();
        let and = if query.is_empty() { "" } else { "&" };
        match self.kind {
            ProviderKind::Azure if endpoint == Endpoint::Responses => {
                format!(
                    "{}/openai/{path}?api-version={version}{and}{query}",
                    self.base
                )
            }
            ProviderKind::Azure => format!(
                "{}/openai/deployments/{upstream_model}/{path}?api-version={version}{and}{query}",
                self.base
            ),
            _ if query.is_empty() => format!("{}/{path}", self.base),
            _ => format!("{}/{path}?{query}", self.base),
        }
    }

    pub fn request(&self, call: Outbound<'_>) -> Result<Request<Full<Bytes>>, http::Error> {
        let accept = if call.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut builder = Request::builder()
            .method(call.method)
            .uri(self.url(call.endpoint, call.upstream_model, call.resource))
            .header(ACCEPT, accept)
            .header(USER_AGENT, concat!("warden/", env!("CARGO_PKG_VERSION")))
            .header("x-request-id", call.request_id);
        if !call.body.is_empty() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        if let Some((name, value)) = &self.credential {
            builder = builder.header(name, value);
        }
        if let (Some(trace), Some(headers)) = (call.trace, builder.headers_mut()) {
            trace.apply(headers);
        }
        builder.body(Full::new(call.body))
    }
}

fn sensitive(value: &str) -> anyhow::Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| anyhow::anyhow!("api_key contains characters not allowed in a header"))?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Timeouts;
    use http::Method;

    fn provider(kind: ProviderKind) -> ProviderConfig {
        ProviderConfig {
            kind,
            base_url: Some("http://127.0.0.1:9/v1/".into()),
            endpoint: Some("https://res.openai.azure.com/".into()),
            api_version: Some("2024-10-21".into()),
            api_key: Some("k-1".into()),
            ca_file: None,
            timeouts: Timeouts::default(),
            stream_usage: true,
            latency_ms: 0,
            tokens_per_sec: 0,
        }
    }

    fn outbound(endpoint: Endpoint, upstream_model: &str, stream: bool) -> Outbound<'_> {
        Outbound {
            method: Method::POST,
            endpoint,
            resource: None,
            upstream_model,
            body: Bytes::from_static(b"{}"),
            request_id: "r1",
            stream,
            trace: None,
        }
    }

    #[test]
    fn azure_uses_deployment_url_and_api_key_header() {
        let up = HttpUpstream::new(&provider(ProviderKind::Azure)).unwrap();
        let req = up
            .request(outbound(Endpoint::ChatCompletions, "gpt4o-prod", false))
            .unwrap();
        assert_eq!(
            req.uri().to_string(),
            "https://res.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(req.headers()["api-key"], "k-1");
        assert!(req.headers().get(AUTHORIZATION).is_none());
        assert_eq!(
            up.url(
                Endpoint::Responses,
                "gpt4o-prod",
                Some("resp_1/input_items?limit=5")
            ),
            "https://res.openai.azure.com/openai/responses/resp_1/input_items?api-version=2024-10-21&limit=5"
        );
        let vllm = HttpUpstream::new(&provider(ProviderKind::Vllm)).unwrap();
        assert_eq!(
            vllm.url(Endpoint::Responses, "m", None),
            "http://127.0.0.1:9/v1/responses"
        );
    }

    #[test]
    fn openai_compatible_uses_bearer_and_base_url() {
        let up = HttpUpstream::new(&provider(ProviderKind::Vllm)).unwrap();
        let req = up
            .request(outbound(Endpoint::Embeddings, "m", true))
            .unwrap();
        assert_eq!(req.uri().to_string(), "http://127.0.0.1:9/v1/embeddings");
        assert_eq!(req.headers()[AUTHORIZATION], "Bearer k-1");
        assert_eq!(req.headers()[ACCEPT], "text/event-stream");
        assert!(req.headers()[AUTHORIZATION].is_sensitive());
    }
}
