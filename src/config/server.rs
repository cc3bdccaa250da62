//! The listeners and the server's own settings (`listen`, `admin_listen`, `server:`,
//! `log:`).

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Invalid, invalid};

/// Both listen addresses must be `HOST:PORT`.
pub(crate) fn validate_listeners(listen: &str, admin: &str) -> Result<(), Invalid> {
    for addr in [listen, admin] {
        if addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                &["listen"],
                format!("`{addr}` is not a socket address (HOST:PORT)"),
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Largest accepted request body (bytes); larger bodies get 413.
    pub max_body_bytes: usize,
    /// How long SIGTERM waits for in-flight requests and streams before exiting.
    pub shutdown_grace_seconds: u64,
    /// Worker threads of the proxy listener; 0 means one per CPU.
    pub threads: usize,
    /// Limit on reading one request body from the client.
    pub client_body_timeout_ms: u64,
    /// Limit on receiving one request's head (request line and headers), from its first
    /// byte to the blank line, however the client paces its reads.
    pub client_header_timeout_ms: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_body_bytes: 4 * 1024 * 1024,
            shutdown_grace_seconds: 30,
            threads: 0,
            client_body_timeout_ms: 30_000,
            client_header_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `warden=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl ServerSettings {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if self.max_body_bytes == 0 {
            return Err(invalid(
                &["server", "max_body_bytes"],
                "must be greater than 0",
            ));
        }
        Ok(())
    }
}
