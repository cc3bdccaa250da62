//! Serves a built-in stand-in ([`Mock`] for `warden mock-provider`, [`Commerce`] for
//! `warden mock-commerce`) over HTTP/1.1 (optionally TLS) on a loopback address, for tests,
//! the demo and the load harness. Stops on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::commerce::Commerce;
use super::{Mock, MockRequest};
use crate::http_client::UpstreamBody;

/// Largest request body the mock accepts.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A certificate chain and key, both PEM files.
pub struct TlsFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

fn acceptor(files: &TlsFiles<'_>) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(files.cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(files.key)?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// What a server answers with.
#[async_trait::async_trait]
pub trait Serve: Send + Sync + 'static {
    /// Printed as `NAME listening on ADDR` once bound.
    const NAME: &'static str;
    async fn serve(&self, req: MockRequest<'_>) -> Response<UpstreamBody>;
}

#[async_trait::async_trait]
impl Serve for Mock {
    const NAME: &'static str = "mock provider";
    async fn serve(&self, req: MockRequest<'_>) -> Response<UpstreamBody> {
        self.handle(req).await
    }
}

#[async_trait::async_trait]
impl Serve for Commerce {
    const NAME: &'static str = "mock commerce";
    async fn serve(&self, req: MockRequest<'_>) -> Response<UpstreamBody> {
        self.handle(req)
    }
}

/// Runs [`run`] on a runtime of its own (the `warden mock-*` commands).
pub fn run_blocking<S: Serve>(
    listen: SocketAddr,
    mock: S,
    tls: Option<TlsFiles<'_>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(listen, mock, tls)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Serves until the process is told to stop. Prints `NAME listening on ADDR` once bound.
pub async fn run<S: Serve>(
    listen: SocketAddr,
    mock: S,
    tls: Option<TlsFiles<'_>>,
) -> anyhow::Result<()> {
    let tls = tls.as_ref().map(acceptor).transpose()?;
    let listener = TcpListener::bind(listen).await?;
    println!("{} listening on {}", S::NAME, listener.local_addr()?);
    let mock = Arc::new(mock);
    let shutdown = crate::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut shutdown => return Ok(()),
        };
        let _ = tcp.set_nodelay(true);
        let mock = mock.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        connection(mock, stream).await;
                    }
                }
                None => connection(mock, tcp).await,
            }
        });
    }
}

async fn connection<M: Serve, S>(mock: Arc<M>, io: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let mock = mock.clone();
        async move { Ok::<_, std::convert::Infallible>(serve(mock.as_ref(), req).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let _ = builder.serve_connection(TokioIo::new(io), service).await;
}

async fn serve<M: Serve>(mock: &M, req: Request<Incoming>) -> Response<UpstreamBody> {
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    let bytes = match limited.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    mock.serve(MockRequest {
        method: &parts.method,
        path,
        headers: &parts.headers,
        body: bytes,
    })
    .await
}
