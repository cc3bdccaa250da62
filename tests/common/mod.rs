//! Test harness: starts the real `warden` binary and standalone mock providers on free
//! 127.0.0.1 ports, and talks to them over real HTTP. Every child process is killed when
//! its handle drops, so no server outlives its test.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub mod issuer;
pub mod otlp;
pub mod redis;
pub mod redis_topologies;
pub mod s3;

pub const BIN: &str = env!("CARGO_BIN_EXE_warden");

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(addr: SocketAddr, child: &mut Child, what: &str) {
    if let Err(e) = listening(addr, child, what) {
        panic!("{e}");
    }
}

/// Waits until `child` listens on `addr`; says why when it exits first or never listens.
pub fn listening(addr: SocketAddr, child: &mut Child, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited early with {status}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("{what} did not listen on {addr}"))
}

/// A running `warden mock-provider`.
pub struct MockProvider {
    pub addr: SocketAddr,
    child: Child,
    args: Vec<String>,
}

/// Starts a `warden` subcommand listening on a fresh port (`--listen ADDR ARGS…`); one that
/// exits before listening (its port taken since [`free_port`] picked it) is tried again.
fn start_listening(subcommand: &str, args: &[String]) -> (SocketAddr, Child) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut child = spawn_listener(subcommand, addr, args);
        match listening(addr, &mut child, subcommand) {
            Ok(()) => return (addr, child),
            Err(e) if attempt >= 3 => panic!("{e}"),
            Err(_) => {}
        }
    }
}

fn spawn_listener(subcommand: &str, addr: SocketAddr, args: &[String]) -> Child {
    Command::new(BIN)
        .arg(subcommand)
        .arg("--listen")
        .arg(addr.to_string())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {subcommand}: {e}"))
}

impl MockProvider {
    pub fn start(args: &[&str]) -> MockProvider {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (addr, child) = start_listening("mock-provider", &args);
        MockProvider { addr, child, args }
    }

    fn spawn(addr: SocketAddr, args: &[String]) -> Child {
        let mut child = spawn_listener("mock-provider", addr, args);
        wait_for_port(addr, &mut child, "mock provider");
        child
    }

    /// Kills the provider abruptly (streams in flight break).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same address.
    pub fn restart(&mut self) {
        self.kill();
        self.child = MockProvider::spawn(self.addr, &self.args);
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub async fn stats(&self) -> Value {
        get_json(&format!("http://{}/_mock/stats", self.addr)).await
    }

    pub async fn last_request(&self) -> Value {
        get_json(&format!("http://{}/_mock/last-request", self.addr)).await
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `warden mock-commerce` (the demo shop's backends).
pub struct MockCommerce {
    pub addr: SocketAddr,
    child: Child,
}

impl MockCommerce {
    pub fn start() -> MockCommerce {
        let (addr, child) = start_listening("mock-commerce", &[]);
        MockCommerce { addr, child }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes executed, by operation (`issue_refund`, `create_return`, …).
    pub async fn writes(&self) -> Value {
        get_json(&format!("http://{}/_commerce/stats", self.addr)).await["writes"].clone()
    }

    /// The last requests the backends received (method, path, uri, headers, body).
    pub async fn requests(&self) -> Vec<Value> {
        let v = get_json(&format!("http://{}/_commerce/requests", self.addr)).await;
        v.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for MockCommerce {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `warden serve` with its own config file.
pub struct Warden {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub child: Child,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Warden {
    pub fn start(config: &str) -> Warden {
        Warden::start_with_env(config, &[])
    }

    /// Starts Warden with extra environment variables.
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Warden {
        Warden::launch(config, env, None)
    }

    /// Starts Warden with a configuration it must refuse: asserts that the start fails
    /// and returns what it wrote to stderr.
    pub fn refused(config: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.yaml");
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--admin-listen", &format!("127.0.0.1:{}", free_port())])
            .output()
            .unwrap();
        assert!(!out.status.success(), "the start was refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Starts Warden from a bash script that runs `setup` first (e.g. `ulimit -f 24`),
    /// then execs it. Its log reaches the log file through a pipe whose reader started
    /// before `setup`, so limits set there do not apply to the log.
    pub fn start_under(config: &str, setup: &str) -> Warden {
        Warden::launch(config, &[], Some(setup))
    }

    /// Ports come from [`free_port`], so another test can take one between the pick and
    /// Warden's bind: a start that fails for that reason is tried again on new ports.
    fn launch(config: &str, env: &[(&str, &str)], setup: Option<&str>) -> Warden {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.yaml");
        std::fs::write(&path, config).unwrap();
        let log = dir.path().join("warden.log");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let log_file = std::fs::File::create(&log).unwrap();
            let mut command = match setup {
                None => Command::new(BIN),
                Some(setup) => {
                    let mut c = Command::new("bash");
                    let script = format!("exec 2> >(cat >&2); {setup}; exec \"$0\" \"$@\"");
                    c.args(["-c", &script, BIN]);
                    c
                }
            };
            let mut child = command
                .args(["serve", "--config"])
                .arg(&path)
                .args([
                    "--listen",
                    &addr.to_string(),
                    "--admin-listen",
                    &admin.to_string(),
                ])
                .env("RUST_LOG", "info")
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .expect("spawn warden");
            let started = listening(addr, &mut child, "warden")
                .and_then(|()| listening(admin, &mut child, "warden admin"));
            match started {
                Ok(()) => {
                    return Warden {
                        addr,
                        admin,
                        child,
                        log,
                        _dir: dir,
                    };
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let logs = std::fs::read_to_string(&log).unwrap_or_default();
                    let port_taken = logs.contains("cannot listen on")
                        || logs.contains("Address already in use");
                    if !(port_taken && attempt < 3) {
                        panic!("{e}; its log:\n{logs}");
                    }
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Warden {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config with one in-process mock provider serving `gpt-4o-mini`, plus `extra` YAML
/// appended at the top level.
pub fn mock_config(extra: &str) -> String {
    format!(
        "providers:\n  mock:\n    kind: mock\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: mock\n  \
         text-embedding-3-small:\n    targets:\n      - provider: mock\n{extra}"
    )
}

/// A policy directory under `root` holding `policy` (a `kind: Policy` file) and the
/// shipped tool registry (`policies/tools.yaml`).
pub fn policies_with_registry(root: &std::path::Path, policy: &str) -> PathBuf {
    let policies = root.join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("policy.yaml"), policy).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/policies/tools.yaml"),
        policies.join("tools.yaml"),
    )
    .unwrap();
    policies
}

/// The audit log's request records once at least `n` of them are for `endpoint` (waits up
/// to 10 s for the spool to be read).
pub async fn records_for(
    archive: &std::path::Path,
    spool: &std::path::Path,
    endpoint: &str,
    n: usize,
) -> Vec<Value> {
    let mut records = Vec::new();
    let found = eventually(Duration::from_secs(10), || {
        records = audit_records(archive, spool);
        let count = records.iter().filter(|r| r["endpoint"] == endpoint).count();
        async move { count >= n }
    })
    .await;
    assert!(found, "fewer than {n} `{endpoint}` records: {records:?}");
    records
}

/// The `selection:` block of a `tools:` section (indented two spaces), with the embedding
/// model `scripts/fetch-models.sh` puts under `ner-models/`.
pub fn tools_selection() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    format!(
        "  selection:\n    model_dir: {root}/ner-models/minilm\n    runtime: {root}/ner-models/libonnxruntime.so.1.32.0\n    min_score: 0.3\n"
    )
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client()
        .request(req.body(Full::new(body.into())).unwrap())
        .await
        .expect("request");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

pub async fn post_json(url: &str, body: &Value) -> Reply {
    send(
        "POST",
        url,
        &[("content-type", "application/json")],
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

pub async fn get(url: &str) -> Reply {
    send("GET", url, &[], Bytes::new()).await
}

pub async fn get_json(url: &str) -> Value {
    get(url).await.json()
}

/// Posts and returns the response head plus the body's chunks as they arrive, each with
/// the time since the request was sent.
pub async fn post_stream(url: &str, body: &Value) -> (u16, Vec<(Duration, Bytes)>) {
    let started = Instant::now();
    let req = http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body).unwrap())))
        .unwrap();
    let resp = client().request(req).await.expect("request");
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            chunks.push((started.elapsed(), data));
        }
    }
    (status, chunks)
}

/// The `data:` payloads of a stream received by [`post_stream`].
pub fn stream_events(chunks: &[(Duration, Bytes)]) -> Vec<String> {
    let all: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.to_vec()).collect();
    sse_data(&all)
}

/// The assistant text carried by chat stream events.
pub fn stream_text(events: &[String]) -> String {
    events
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// The `data:` payloads of an SSE body.
pub fn sse_data(body: &[u8]) -> Vec<String> {
    let mut parser = warden::openai::sse::Parser::default();
    let mut events = Vec::new();
    parser.feed(body, &mut events).unwrap();
    events.into_iter().map(|e| e.data).collect()
}

/// Writes raw bytes on a new TCP connection and reads the whole answer until close.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Starts a streamed chat request with `body` and extra `headers` over raw HTTP/1.1,
/// requires a 200 and reads up to the first chunk's size line; dropping the reader is a
/// client going away mid-stream.
pub fn open_stream(
    addr: SocketAddr,
    headers: &[(&str, &str)],
    body: &[u8],
) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         {extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut reader = BufReader::new(s);
    let head = read_head(&mut reader);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    reader
}

/// Reads a raw HTTP response head from a stream (through the blank line).
pub fn read_head(reader: &mut BufReader<TcpStream>) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            return head;
        }
        head.push_str(&line);
    }
}

/// The admin token the tests configure (`admin_token: admin-secret`).
pub const ADMIN_TOKEN: &str = "admin-secret";

/// `GET` on the admin listener with the tests' admin token.
pub async fn admin_get(w: &Warden, path: &str) -> Reply {
    send(
        "GET",
        &w.admin_url(path),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        Vec::new(),
    )
    .await
}

/// Waits up to `limit` for Warden's `/metrics` to show `text`.
pub async fn metrics_show(w: &Warden, text: &str, limit: Duration) -> bool {
    let url = w.admin_url("/metrics");
    eventually(limit, || {
        let url = url.clone();
        async move { get(&url).await.text().contains(text) }
    })
    .await
}

/// Polls `check` until it returns true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Requests a token from the issuer's token endpoint with client credentials.
pub async fn client_credentials_token(issuer: &issuer::TestIssuer, scope: &str) -> String {
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{}", issuer::CLIENT_ID, issuer::CLIENT_SECRET),
    );
    let r = send(
        "POST",
        &format!("{}/token", issuer.url()),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &format!("Basic {basic}")),
        ],
        format!(
            "grant_type=client_credentials&scope={}",
            scope.replace(' ', "+")
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"].as_str().unwrap().to_string()
}

/// Tokens of `text` in o200k_base, the encoding of the gpt-4o family the mock stands in for.
pub fn o200k_tokens(text: &str) -> u64 {
    warden::tokens::Encoding::for_model(Some("o200k_base"), "", std::path::Path::new("."))
        .map(|e| e.count(text))
        .unwrap_or(0)
}

/// POSTs a chat completion with `Authorization: Bearer {key}`.
pub async fn chat_with_key(w: &Warden, key: &str, body: &Value) -> Reply {
    send(
        "POST",
        &w.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {key}")),
        ],
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

/// Every file under `dir`, concatenated as text (audit archives and spools).
pub fn all_text(dir: &std::path::Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                text.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
                text.push('\n');
            }
        }
    }
    text
}

/// The request records of an audit log, from its archive and its spool, in chain order.
pub fn audit_records(archive: &std::path::Path, spool: &std::path::Path) -> Vec<Value> {
    let mut out: Vec<Value> = all_text(archive)
        .lines()
        .chain(all_text(spool).lines())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "request")
        .collect();
    out.sort_by_key(|v| v["seq"].as_u64());
    out.dedup_by_key(|v| v["seq"].as_u64());
    out
}

/// SIGTERM, then requires a clean exit (0) within 10 s.
pub fn stop(mut w: Warden) {
    w.terminate();
    assert_eq!(
        w.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        w.logs()
    );
}

/// `text` with each placeholder's request nonce left out (`<EMAIL_1_k3f9qz>` → `<EMAIL_1>`),
/// so tests can name placeholders; panics if a placeholder-like text has no nonce.
pub fn without_nonces(text: &str) -> String {
    let bare = regex::Regex::new(r"<[A-Z][A-Z_]*_\d{1,5}>").unwrap();
    assert!(
        !bare.is_match(text),
        "a placeholder without a nonce: {text}"
    );
    let placeholder = regex::Regex::new(r"<([A-Z][A-Z_]*_\d{1,5})_[a-z0-9]{6}>").unwrap();
    placeholder.replace_all(text, "<$1>").into_owned()
}
