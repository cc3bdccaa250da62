//! Small HTTP helpers for the identity provider's endpoints (discovery, JWKS,
//! introspection): bounded bodies, a deadline per call, JSON decoding.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};

use crate::http_client::HttpClient;

/// Largest identity-provider response accepted.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request failed: {0}")]
    Transport(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("status {0}")]
    Status(StatusCode),
    #[error("invalid response: {0}")]
    Body(String),
}

pub async fn json(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<serde_json::Value, FetchError> {
    let call = async {
        let resp = client
            .request(request)
            .await
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Status(status));
        }
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| FetchError::Body(e.to_string()))?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| FetchError::Body(e.to_string()))
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| FetchError::Timeout(timeout))?
}

pub fn get(url: &str) -> Result<Request<Full<Bytes>>, FetchError> {
    Request::builder()
        .method(Method::GET)
        .uri(url)
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            concat!("warden/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::new()))
        .map_err(|e| FetchError::Transport(e.to_string()))
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
