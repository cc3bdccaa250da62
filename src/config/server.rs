//! The listeners and the server's own settings (`listen`, `admin_listen`, `server:`,
//! `log:`), TLS on the listeners included.

use std::path::{Path, PathBuf};

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
    /// TLS on the proxy listener (HTTP/2 and HTTP/1.1 by ALPN); optionally verifying client
    /// certificates (mTLS).
    pub tls: Option<ListenerTls>,
    /// TLS on the admin listener.
    pub admin_tls: Option<ListenerTls>,
    /// HTTP/2 without TLS (prior knowledge) on the proxy listener, beside HTTP/1.1: for a
    /// sidecar its app reaches over localhost.
    pub h2c: bool,
}

/// A listener's certificate and, for mTLS, the CAs its clients' certificates must chain to.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM certificate chain (leaf first), relative to the config file; reloaded when it
    /// changes.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1), reloaded with the certificate.
    pub key_file: PathBuf,
    /// PEM CA certificates that client certificates must chain to; set, the listener asks
    /// every client for a certificate.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// With `client_ca_file`: `required` refuses a handshake without a valid client
    /// certificate; `optional` accepts one without (it must then authenticate otherwise).
    #[serde(default)]
    pub client_auth: ClientAuth,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    #[default]
    Required,
    Optional,
}

impl ListenerTls {
    fn resolve_paths(&mut self, base: &Path) {
        self.cert_file = base.join(&self.cert_file);
        self.key_file = base.join(&self.key_file);
        if let Some(ca) = self.client_ca_file.as_mut() {
            *ca = base.join(&*ca);
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_body_bytes: 4 * 1024 * 1024,
            shutdown_grace_seconds: 30,
            threads: 0,
            client_body_timeout_ms: 30_000,
            client_header_timeout_ms: 10_000,
            tls: None,
            admin_tls: None,
            h2c: false,
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
        if self.h2c && self.tls.is_some() {
            return Err(invalid(
                &["server", "h2c"],
                "h2c is HTTP/2 without TLS; with `server.tls` HTTP/2 is negotiated by ALPN",
            ));
        }
        Ok(())
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        for tls in [self.tls.as_mut(), self.admin_tls.as_mut()]
            .into_iter()
            .flatten()
        {
            tls.resolve_paths(base);
        }
    }
}
