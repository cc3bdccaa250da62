//! Logs and metrics. Log lines and metric labels carry request ids, routes, configured
//! model and provider names and outcomes — never prompt text, PII or credentials.

mod metrics;

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
