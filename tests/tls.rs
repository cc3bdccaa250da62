//! TLS on the listeners, over real connections with a test CA made here: HTTPS with
//! HTTP/1.1 and HTTP/2 (ALPN), a stream over HTTP/2, h2c (HTTP/2 without TLS) for a
//! sidecar, TLS on the admin listener, client certificates (mTLS) accepted, refused, and
//! mapped to a principal, and a certificate replaced on disk served to new connections.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};

/// A test certificate authority.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A leaf certificate and key (PEM) with these names, for a server or a client.
    fn leaf(&self, common_name: &str, names: Vec<SanType>, client: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = names;
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn server(&self, common_name: &str) -> (String, String) {
        self.leaf(
            common_name,
            vec![
                SanType::DnsName("localhost".try_into().unwrap()),
                SanType::IpAddress("127.0.0.1".parse().unwrap()),
            ],
            false,
        )
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A client trusting `ca`, presenting `identity` (certificate and key PEM) if given,
/// offering `alpn`.
fn tls_client(
    ca: &str,
    identity: Option<&(String, String)>,
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTPS client on `config`; its ALPN offers HTTP/2 only or HTTP/1.1 only.
fn https(config: Arc<rustls::ClientConfig>, http2: bool) -> HttpsClient {
    let mut config = (*config).clone();
    config.alpn_protocols.clear(); // the connector sets it
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only();
    let connector = if http2 {
        connector.enable_http2().build()
    } else {
        connector.enable_http1().build()
    };
    Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build(connector)
}

/// One request; the status, the HTTP version and the body (or the connection error).
async fn call<C>(
    client: &Client<C, Full<Bytes>>,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, http::Version, String), String>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let version = resp.version();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        status,
        version,
        String::from_utf8_lossy(&bytes.to_bytes()).to_string(),
    ))
}

/// The certificate a fresh TLS connection to `addr` is served.
async fn served_certificate(addr: std::net::SocketAddr, ca: &str) -> Vec<u8> {
    let connector = tokio_rustls::TlsConnector::from(tls_client(ca, None, &[b"http/1.1"]));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn chat(stream: bool) -> String {
    json!({"model": "gpt-4o-mini", "stream": stream,
           "messages": [{"role": "user", "content": "Do you have trail shoes in 44?"}]})
    .to_string()
}

#[tokio::test]
async fn https_serves_http1_http2_and_streams_and_the_admin_listener() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Warden test CA");
    let (cert, key) = ca.server("warden");
    let cert_file = write(dir.path(), "tls.crt", &cert);
    let key_file = write(dir.path(), "tls.key", &key);
    let w = Warden::start(&mock_config(&format!(
        "server:\n  tls:\n    cert_file: {c}\n    key_file: {k}\n  admin_tls:\n    cert_file: {c}\n    key_file: {k}\n",
        c = cert_file.display(),
        k = key_file.display()
    )));
    let base = format!("https://localhost:{}", w.addr.port());
    let json = [("content-type", "application/json")];

    let chat_url = format!("{base}/v1/chat/completions");
    let h1 = https(tls_client(&ca.pem, None, &[b"http/1.1"]), false);
    let h2 = https(tls_client(&ca.pem, None, &[b"h2"]), true);
    for (client, protocol) in [(&h1, http::Version::HTTP_11), (&h2, http::Version::HTTP_2)] {
        let (status, version, body) = call(client, "POST", &chat_url, &json, &chat(false))
            .await
            .unwrap();
        assert_eq!((status, version), (200, protocol), "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert!(
            answer["choices"][0]["message"]["content"]
                .as_str()
                .is_some()
        );
    }

    // A stream over HTTP/2: every event, then [DONE].
    let (status, version, body) = call(&h2, "POST", &chat_url, &json, &chat(true))
        .await
        .unwrap();
    assert_eq!((status, version), (200, http::Version::HTTP_2));
    let events = sse_data(body.as_bytes());
    assert!(events.len() > 2, "{body}");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));

    // Plain HTTP to the TLS port is not served.
    let plain = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let refused = call(
        &plain,
        "GET",
        &format!("http://127.0.0.1:{}/v1/models", w.addr.port()),
        &[],
        "",
    )
    .await;
    assert!(
        refused.is_err() || refused.as_ref().is_ok_and(|r| r.0 >= 400),
        "{refused:?}"
    );

    // The admin listener speaks TLS too.
    let admin = format!("https://localhost:{}/healthz", w.admin.port());
    let (status, _, _) = call(&h1, "GET", &admin, &[], "").await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn h2c_serves_http2_without_tls_beside_http1() {
    let w = Warden::start(&mock_config("server:\n  h2c: true\n"));
    let url = w.url("/v1/chat/completions");
    let json = [("content-type", "application/json")];
    let h2c = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let (status, version, body) = call(&h2c, "POST", &url, &json, &chat(true)).await.unwrap();
    assert_eq!((status, version), (200, http::Version::HTTP_2), "{body}");
    assert_eq!(
        sse_data(body.as_bytes()).last().map(String::as_str),
        Some("[DONE]")
    );
    let h1 = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let (status, version, _) = call(&h1, "POST", &url, &json, &chat(false)).await.unwrap();
    assert_eq!((status, version), (200, http::Version::HTTP_11));
}

#[tokio::test]
async fn client_certificates_are_required_verified_and_mapped_to_principals() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Warden test CA");
    let clients = Ca::new("Shop workload CA");
    let stranger = Ca::new("Someone else's CA");
    let (cert, key) = ca.server("warden");
    let spiffe = "spiffe://shop.example/ns/commerce/sa/storefront";
    let storefront = clients.leaf(
        "storefront",
        vec![SanType::URI(spiffe.try_into().unwrap())],
        true,
    );
    let unmapped = clients.leaf(
        "batch",
        vec![SanType::URI(
            "spiffe://shop.example/ns/batch/sa/nightly"
                .try_into()
                .unwrap(),
        )],
        true,
    );
    let forged = stranger.leaf(
        "storefront",
        vec![SanType::URI(spiffe.try_into().unwrap())],
        true,
    );
    let key_hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"sk-batch"))
    };
    let w = Warden::start(&mock_config(&format!(
        "server:\n  tls:\n    cert_file: {}\n    key_file: {}\n    client_ca_file: {}\n\
         auth:\n  api_keys:\n    - id: batch-key\n      sha256: {key_hash}\n      tenant: acme-batch\n  \
         mtls_identities:\n    - uri: {spiffe}\n      tenant: acme-retail\n      roles: [storefront-assistant]\n",
        write(dir.path(), "tls.crt", &cert).display(),
        write(dir.path(), "tls.key", &key).display(),
        write(dir.path(), "clients.pem", &clients.pem).display(),
    )));
    let url = format!("https://localhost:{}/v1/chat/completions", w.addr.port());
    let json = [("content-type", "application/json")];

    // No certificate, or one from another CA: the handshake fails.
    for identity in [None, Some(&forged)] {
        let client = https(tls_client(&ca.pem, identity, &[b"http/1.1"]), false);
        let r = call(&client, "POST", &url, &json, &chat(false)).await;
        assert!(
            r.is_err(),
            "accepted without a valid client certificate: {r:?}"
        );
    }

    // The storefront's certificate is its credential.
    let client = https(
        tls_client(&ca.pem, Some(&storefront), &[b"http/1.1"]),
        false,
    );
    let (status, _, body) = call(&client, "POST", &url, &json, &chat(false))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let logged = eventually(Duration::from_secs(5), || {
        let logs = w.logs();
        async move { logs.contains("auth=\"mtls\"") && logs.contains("tenant=\"acme-retail\"") }
    })
    .await;
    assert!(logged, "{}", w.logs());

    // A verified certificate nobody configured authenticates no one.
    let client = https(tls_client(&ca.pem, Some(&unmapped), &[b"http/1.1"]), false);
    let (status, _, body) = call(&client, "POST", &url, &json, &chat(false))
        .await
        .unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(
        !body.contains("nightly"),
        "the certificate's name is not echoed: {body}"
    );

    // A bearer credential on a verified connection names the principal.
    let auth = [
        ("content-type", "application/json"),
        ("authorization", "Bearer sk-batch"),
    ];
    let (status, _, body) = call(&client, "POST", &url, &auth, &chat(false))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let logged = eventually(Duration::from_secs(5), || {
        let logs = w.logs();
        async move { logs.contains("tenant=\"acme-batch\"") }
    })
    .await;
    assert!(logged, "{}", w.logs());
}

#[tokio::test]
async fn a_replaced_certificate_is_served_to_new_connections_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Warden test CA");
    let (first, first_key) = ca.server("first");
    let cert_file = write(dir.path(), "tls.crt", &first);
    let key_file = write(dir.path(), "tls.key", &first_key);
    let w = Warden::start(&mock_config(&format!(
        "server:\n  tls:\n    cert_file: {}\n    key_file: {}\n",
        cert_file.display(),
        key_file.display()
    )));
    let der = |pem: &str| {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    };
    assert_eq!(served_certificate(w.addr, &ca.pem).await, der(&first));

    // Renewed: a new pair written in place (as cert-manager's Secret update lands).
    let (second, second_key) = ca.server("second");
    std::fs::write(&key_file, &second_key).unwrap();
    std::fs::write(&cert_file, &second).unwrap();
    let renewed = eventually(Duration::from_secs(5), || {
        let ca = ca.pem.clone();
        let addr = w.addr;
        let want = der(&second);
        async move { served_certificate(addr, &ca).await == want }
    })
    .await;
    assert!(renewed, "the renewed certificate is not served");

    // A key that does not match: refused, the renewed pair stays.
    let (_, stray_key) = ca.server("stray");
    std::fs::write(&key_file, &stray_key).unwrap();
    let refused = "warden_tls_reloads_total{listener=\"proxy\",result=\"failure\"}";
    assert!(
        metrics_show(&w, refused, Duration::from_secs(5)).await,
        "the mismatched key was not refused"
    );
    assert_eq!(served_certificate(w.addr, &ca.pem).await, der(&second));
    assert!(
        !w.logs().contains("PRIVATE KEY"),
        "key material in the logs"
    );
}

#[test]
fn listener_tls_mistakes_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Warden test CA");
    let (cert, key) = ca.server("warden");
    let (_, other_key) = ca.server("other");
    let cert_file = write(dir.path(), "tls.crt", &cert);
    let key_file = write(dir.path(), "tls.key", &key);
    let other_key = write(dir.path(), "other.key", &other_key);
    for (config, complaint) in [
        (
            format!(
                "server:\n  tls:\n    cert_file: {}\n    key_file: {}\n",
                cert_file.display(),
                other_key.display()
            ),
            "does not belong to the certificate",
        ),
        (
            format!(
                "server:\n  tls:\n    cert_file: {}/missing.crt\n    key_file: {}\n",
                dir.path().display(),
                key_file.display()
            ),
            "missing.crt",
        ),
        (
            format!(
                "server:\n  h2c: true\n  tls:\n    cert_file: {}\n    key_file: {}\n",
                cert_file.display(),
                key_file.display()
            ),
            "server.h2c",
        ),
        (
            "auth:\n  mtls_identities:\n    - uri: spiffe://shop.example/sa/web\n".to_string(),
            "server.tls.client_ca_file",
        ),
    ] {
        let err = Warden::refused(&mock_config(&config));
        assert!(err.contains(complaint), "{config}: {err}");
        assert!(!err.contains("PRIVATE KEY"), "{err}");
    }
}
