//! Logs, metrics and traces. Log lines, metric labels and span attributes carry request
//! and trace ids, routes, configured model and provider names and outcomes — never prompt
//! text, PII or credentials.

mod export;
mod metrics;
pub mod trace;

pub use metrics::{Metrics, metrics};

use crate::config::{LogFormat, LogSettings};

/// Installs the global `tracing` subscriber (and routes the `log` crate into it).
/// `RUST_LOG` overrides the configured level.
pub fn init_logging(settings: &LogSettings) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if result.is_ok() {
        let _ = tracing_log::LogTracer::init();
    }
}

/// Replaces the default panic hook, whose message can quote the data a panic was about
/// (a slice of a prompt, a header value): a panic is logged with its place only.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown".into());
        let thread = std::thread::current();
        tracing::error!(
            location = %location,
            thread = thread.name().unwrap_or("-"),
            "panic (message withheld: it may quote request data)"
        );
    }));
}
