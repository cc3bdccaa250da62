//! The outbound HTTP client for every call Warden makes itself (providers, JWKS,
//! introspection): hyper 1 over rustls with webpki roots plus an optional extra CA bundle,
//! connection pooling, HTTP/1.1 and HTTP/2 by ALPN, and a connect timeout.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A response body from any provider, HTTP or in-process (the mock provider).
pub type UpstreamBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// Whether a `Content-Type` value names JSON: `application/json` or a `+json` type,
/// parameters ignored.
pub fn is_json_media(value: &http::HeaderValue) -> bool {
    let media = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media.ends_with("+json")
}

/// Adds the PEM certificates of the CA file at `path` to `roots`; a file that cannot be
/// read, holds bad PEM or no certificate is an error naming it.
pub fn add_ca_file(roots: &mut rustls::RootCertStore, path: &Path) -> anyhow::Result<()> {
    let mut added = 0;
    for cert in CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("cannot read CA file {}: {e}", path.display()))?
    {
        let cert = cert.map_err(|e| anyhow::anyhow!("bad PEM in {}: {e}", path.display()))?;
        roots.add(cert)?;
        added += 1;
    }
    if added == 0 {
        anyhow::bail!("CA file {} holds no certificate", path.display());
    }
    Ok(())
}

/// Builds a pooled client. `ca_file` adds PEM certificates to the trusted roots.
pub fn build(connect_timeout: Duration, ca_file: Option<&Path>) -> anyhow::Result<HttpClient> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        add_ca_file(&mut roots, path)?;
    }
    // One explicit provider, whatever other rustls providers the dependency tree compiles in.
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(https))
}
