//! `warden mock-provider`: serves a [`Mock`] over HTTP/1.1 on a loopback address, for
//! tests and the load harness. Stops on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use super::{Mock, MockRequest};
use crate::provider::UpstreamBody;

/// Largest request body the mock accepts.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Serves until the process is told to stop. Prints `listening on ADDR` once bound.
pub async fn run(listen: SocketAddr, mock: Mock) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("mock provider listening on {}", listener.local_addr()?);
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
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let mock = mock.clone();
                async move { Ok::<_, std::convert::Infallible>(serve(&mock, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

async fn serve(mock: &Mock, req: Request<Incoming>) -> Response<UpstreamBody> {
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
    mock.handle(MockRequest {
        method: &parts.method,
        path,
        headers: &parts.headers,
        body: bytes,
    })
    .await
}
