//! `warden mock-provider`: the built-in mock on its own port, for tests and benchmarks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::server::TlsFiles;
use super::{Mock, MockSettings};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Delay before each response starts.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Streaming pace in chunks per second (0: no pauses).
    #[arg(long, default_value_t = 0)]
    pub tokens_per_sec: u64,
    /// Answer every model call with this HTTP status (failure tests).
    #[arg(long)]
    pub fail_status: Option<u16>,
    /// Break every stream after this many chunks (failure tests).
    #[arg(long)]
    pub fail_after_chunks: Option<usize>,
    /// Never report token usage, like providers that ignore `stream_options`.
    #[arg(long)]
    pub no_usage: bool,
    /// Stream content in pieces of this many characters instead of word by word.
    #[arg(long)]
    pub chunk_chars: Option<usize>,
    /// Add this sentence to every chat and completion answer (as a model quoting a
    /// retrieved document would).
    #[arg(long)]
    pub also_say: Option<String>,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Runs `warden mock-provider`.
pub fn run(args: Args) -> ExitCode {
    let settings = MockSettings {
        latency: Duration::from_millis(args.latency_ms),
        tokens_per_sec: args.tokens_per_sec,
        fail_status: args.fail_status,
        fail_after_chunks: args.fail_after_chunks,
        no_usage: args.no_usage,
        chunk_chars: args.chunk_chars,
        also_say: args.also_say,
    };
    let listen = args.listen;
    let tls = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
    let tls = tls.map(|(cert, key)| TlsFiles { cert, key });
    super::server::run_blocking(listen, Mock::new(settings, true), tls)
}
