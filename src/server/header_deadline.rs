//! An overall deadline for each request's headers. pingora times out every read of a
//! request head on its own, so a client trickling one byte per read could hold a
//! connection (and its memory) for minutes; here the whole head must arrive within
//! `server.client_header_timeout_ms` of its first byte. The proxy application is wrapped
//! so each connection's stream is wrapped in turn: the stream arms a timer at the first
//! byte of a request and disarms it when it has read the blank line ending the head; a
//! reused (keep-alive) connection is re-armed for its next request. Bodies are read under
//! Warden's own body timeout, outside this.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    UniqueID, UniqueIDType,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A [`ServerApp`] whose connections must deliver each request head in time.
pub struct HeaderDeadline<A> {
    inner: Arc<A>,
    timeout: Duration,
}

impl<A> HeaderDeadline<A> {
    pub fn new(inner: A, timeout: Duration) -> Self {
        HeaderDeadline {
            inner: Arc::new(inner),
            timeout,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for HeaderDeadline<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let stream: Stream = if stream.as_any().is::<DeadlineStream>() {
            // A reused connection: its next request gets a deadline of its own.
            match stream.into_any().downcast::<DeadlineStream>() {
                Ok(mut s) => {
                    s.rearm();
                    s
                }
                Err(_) => return None,
            }
        } else {
            Box::new(DeadlineStream::new(stream, self.timeout))
        };
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

/// Where a connection stands in its current request's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No byte of the next request yet (an idle keep-alive connection is not timed here).
    Idle,
    /// Reading the head: the timer runs.
    Head,
    /// The head is complete: nothing is timed until the stream is re-armed.
    Done,
}

/// A connection's stream with the head deadline.
#[derive(Debug)]
pub struct DeadlineStream {
    inner: Stream,
    timeout: Duration,
    phase: Phase,
    timer: Option<Pin<Box<Sleep>>>,
    /// The last bytes read, to find `\r\n\r\n` across reads.
    tail: [u8; 3],
}

impl DeadlineStream {
    fn new(inner: Stream, timeout: Duration) -> Self {
        DeadlineStream {
            inner,
            timeout,
            phase: Phase::Idle,
            timer: None,
            tail: [0; 3],
        }
    }

    fn rearm(&mut self) {
        self.phase = Phase::Idle;
        self.timer = None;
        self.tail = [0; 3];
    }

    /// Follows the head through newly read bytes.
    fn observe(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.phase == Phase::Done {
            return;
        }
        if self.phase == Phase::Idle {
            self.phase = Phase::Head;
            self.timer = Some(Box::pin(tokio::time::sleep(self.timeout)));
        }
        let mut window = self.tail.to_vec();
        window.extend_from_slice(bytes);
        if memchr::memmem::find(&window, b"\r\n\r\n").is_some() {
            self.phase = Phase::Done;
            self.timer = None;
            return;
        }
        let last = window.iter().rev().take(3).rev();
        let kept: Vec<u8> = last.copied().collect();
        self.tail = [0; 3];
        for (slot, byte) in self.tail.iter_mut().rev().zip(kept.iter().rev()) {
            *slot = *byte;
        }
    }
}

impl AsyncRead for DeadlineStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = buf.filled().get(before..).unwrap_or_default().to_vec();
                self.observe(&fresh);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let expired = self
                    .timer
                    .as_mut()
                    .is_some_and(|t| t.as_mut().poll(cx).is_ready());
                if expired {
                    crate::telemetry::metrics().header_timeouts.inc();
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request head did not arrive in time",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for DeadlineStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for DeadlineStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for DeadlineStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for DeadlineStream {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for DeadlineStream {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for DeadlineStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for DeadlineStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for DeadlineStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_ends_at_the_blank_line_even_split_across_reads() {
        let inner: Stream = Box::new(std::io::Cursor::new(Vec::<u8>::new()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut s = DeadlineStream::new(inner, Duration::from_secs(5));
            s.observe(b"GET / HTTP/1.1\r\nHost: x\r");
            assert_eq!(s.phase, Phase::Head);
            assert!(s.timer.is_some());
            s.observe(b"\n\r");
            assert_eq!(s.phase, Phase::Head);
            s.observe(b"\nbody");
            assert_eq!(s.phase, Phase::Done);
            assert!(s.timer.is_none());
            s.rearm();
            assert_eq!(s.phase, Phase::Idle);
        });
    }
}
