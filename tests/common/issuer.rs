//! A small OAuth2 / OIDC issuer for the tests, served over real HTTP on 127.0.0.1:
//! discovery, JWKS, a client-credentials token endpoint and RFC 7662 introspection.
//! Keys are made by the openssl CLI; the JWKS can be rotated and the whole issuer taken
//! down and brought back while Warden runs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "storefront-app";
pub const CLIENT_SECRET: &str = "client-secret-1";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key: its private PEM and public JWK.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    pub alg: Algorithm,
    pub private_pem: Vec<u8>,
    pub public_pem: Vec<u8>,
    pub jwk: Value,
}

/// Runs the openssl CLI in `dir`; its stdout.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl Key {
    pub fn rsa(kid: &str) -> Key {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "k.pem",
            ],
        );
        openssl(d, &["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"]);
        let modulus =
            String::from_utf8(openssl(d, &["rsa", "-in", "k.pem", "-noout", "-modulus"])).unwrap();
        let n = hex::decode(modulus.trim().trim_start_matches("Modulus=")).unwrap();
        Key {
            kid: kid.into(),
            alg: Algorithm::RS256,
            private_pem: std::fs::read(d.join("k.pem")).unwrap(),
            public_pem: std::fs::read(d.join("pub.pem")).unwrap(),
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(&n), "e": "AQAB"}),
        }
    }

    pub fn ec(kid: &str) -> Key {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "k.pem",
            ],
        );
        openssl(d, &["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"]);
        let der = openssl(d, &["pkey", "-in", "k.pem", "-pubout", "-outform", "DER"]);
        let point = &der[der.len() - 65..];
        assert_eq!(point[0], 4, "uncompressed P-256 point");
        Key {
            kid: kid.into(),
            alg: Algorithm::ES256,
            private_pem: std::fs::read(d.join("k.pem")).unwrap(),
            public_pem: std::fs::read(d.join("pub.pem")).unwrap(),
            jwk: json!({"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                        "x": b64(&point[1..33]), "y": b64(&point[33..])}),
        }
    }

    /// A self-signed certificate for this key, DER, base64 (standard): an `x5c` entry.
    pub fn self_signed_x5c(&self) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.pem"), &self.private_pem).unwrap();
        let der = openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-key",
                "k.pem",
                "-subj",
                "/CN=attacker",
                "-days",
                "1",
                "-outform",
                "DER",
            ],
        );
        base64::engine::general_purpose::STANDARD.encode(der)
    }

    /// Signs `claims` with this key (header `kid` overridable).
    pub fn sign(&self, claims: &Value, kid: Option<&str>) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.unwrap_or(&self.kid).to_string());
        self.sign_with(claims, header)
    }

    /// Signs `claims` under a header of the caller's making (`alg` is set to this key's).
    pub fn sign_with(&self, claims: &Value, mut header: Header) -> String {
        header.alg = self.alg;
        let key = match self.alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(&self.private_pem).unwrap(),
            _ => EncodingKey::from_rsa_pem(&self.private_pem).unwrap(),
        };
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }
}

#[derive(Default)]
pub struct IssuerState {
    /// Keys published in the JWKS.
    pub published: Mutex<Vec<Key>>,
    /// Opaque tokens known to the introspection endpoint, with their answers.
    pub opaque: Mutex<HashMap<String, Value>>,
    pub down: AtomicBool,
    pub jwks_fetches: AtomicU64,
    pub introspections: AtomicU64,
}

pub struct TestIssuer {
    pub addr: SocketAddr,
    pub state: Arc<IssuerState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestIssuer {
    pub async fn start(keys: Vec<Key>) -> TestIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(IssuerState::default());
        *state.published.lock().unwrap() = keys;
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, std::convert::Infallible>(serve(&st, addr, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        TestIssuer { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn introspections(&self) -> u64 {
        self.state.introspections.load(Ordering::SeqCst)
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn publish(&self, keys: Vec<Key>) {
        *self.state.published.lock().unwrap() = keys;
    }

    pub fn add_opaque(&self, token: &str, answer: Value) {
        self.state
            .opaque
            .lock()
            .unwrap()
            .insert(token.into(), answer);
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect()
}

fn decode(v: &str) -> String {
    let bytes = v.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if bytes[i] == b'%'
            && let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn client_ok(req: &http::request::Parts) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    req.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
}

async fn serve(
    st: &IssuerState,
    addr: SocketAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if st.down.load(Ordering::SeqCst) {
        return reply(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "down"}));
    }
    let base = format!("http://{addr}");
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    match parts.uri.path() {
        "/.well-known/openid-configuration" => reply(
            StatusCode::OK,
            json!({"issuer": base, "jwks_uri": format!("{base}/jwks"), "token_endpoint": format!("{base}/token"),
                   "introspection_endpoint": format!("{base}/introspect"),
                   "id_token_signing_alg_values_supported": ["RS256", "ES256"]}),
        ),
        "/jwks" => {
            st.jwks_fetches.fetch_add(1, Ordering::SeqCst);
            let keys: Vec<Value> = st
                .published
                .lock()
                .unwrap()
                .iter()
                .map(|k| k.jwk.clone())
                .collect();
            reply(StatusCode::OK, json!({"keys": keys}))
        }
        "/token" => {
            let f = form(&body);
            if !client_ok(&parts)
                || f.get("grant_type").map(String::as_str) != Some("client_credentials")
            {
                return reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
            }
            let key = st
                .published
                .lock()
                .unwrap()
                .last()
                .cloned()
                .expect("a published key");
            let now = jsonwebtoken::get_current_timestamp();
            let claims = json!({"iss": base, "sub": CLIENT_ID, "aud": "warden", "iat": now, "exp": now + 300,
                                "tenant_id": "acme-retail", "roles": ["storefront-assistant"],
                                "scope": f.get("scope").cloned().unwrap_or_default()});
            reply(
                StatusCode::OK,
                json!({"access_token": key.sign(&claims, None), "token_type": "Bearer", "expires_in": 300}),
            )
        }
        "/introspect" => {
            st.introspections.fetch_add(1, Ordering::SeqCst);
            if !client_ok(&parts) {
                return reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
            }
            let token = form(&body).get("token").cloned().unwrap_or_default();
            let answer = st
                .opaque
                .lock()
                .unwrap()
                .get(&token)
                .cloned()
                .unwrap_or(json!({"active": false}));
            reply(StatusCode::OK, answer)
        }
        _ => reply(StatusCode::NOT_FOUND, json!({"error": "not_found"})),
    }
}
