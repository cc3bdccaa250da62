//! Process assembly for `warden serve`: the pingora server with the proxy and admin
//! services, trace export, and graceful shutdown that stops accepting, drains in-flight
//! requests and streams for the grace period, flushes the audit spool and the last spans,
//! then exits 0.

pub mod cli;
mod header_deadline;
mod tls;

use std::sync::Arc;

use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;

use crate::admin::AdminApp;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::proxy::WardenProxy;

use header_deadline::HeaderDeadline;

/// Starts Warden and blocks until it has shut down.
pub fn run(config: Config) -> anyhow::Result<()> {
    for addr in [&config.listen, &config.admin_listen] {
        // Fail with a clear message before pingora takes over the process.
        std::net::TcpListener::bind(addr.as_str())
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    }
    let grace = config.shutdown_grace();
    let listen = config.listen.clone();
    let admin_listen = config.admin_listen.clone();
    let threads = match config.server.threads {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        n => n,
    };
    let watch_policy_files = config.policy.as_ref().is_some_and(|p| p.watch);
    if let Some(traces) = config.telemetry.as_ref().and_then(|t| t.traces.as_ref()) {
        crate::telemetry::trace::init(traces)?;
    }
    let gateway = Arc::new(Gateway::new(config)?);
    gateway.auth.start_key_refresh()?;
    if let Some(store) = &gateway.policy {
        store.watch(watch_policy_files)?;
    }

    let conf = ServerConf {
        threads,
        // Warden exits itself as soon as the drain completes; this is the backstop.
        grace_period_seconds: Some(grace.as_secs() + 2),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let settings = &gateway.config.server;
    let header_timeout = std::time::Duration::from_millis(settings.client_header_timeout_ms);
    let mut app =
        pingora::proxy::http_proxy(&server.configuration, WardenProxy::new(gateway.clone()));
    if settings.h2c {
        let mut options = pingora::apps::HttpServerOptions::default();
        options.h2c = true;
        app.server_options = Some(options);
    }
    let mut proxy = Service::new(
        "warden proxy".to_string(),
        HeaderDeadline::new(app, header_timeout),
    );
    match &settings.tls {
        Some(t) => proxy.add_tls_with_settings(&listen, None, tls::settings(t, "proxy", true)?),
        None => proxy.add_tcp(&listen),
    }
    let mut admin_listeners = pingora::listeners::Listeners::new();
    match &settings.admin_tls {
        Some(t) => admin_listeners.add_tls_with_settings(
            &admin_listen,
            None,
            tls::settings(t, "admin", false)?,
        ),
        None => admin_listeners.add_tcp(&admin_listen),
    }
    let mut admin = Service::with_listeners(
        "warden admin".to_string(),
        admin_listeners,
        AdminApp::new(gateway.clone()),
    );
    admin.threads = Some(1);
    server.add_service(proxy);
    server.add_service(admin);

    tracing::info!(%listen, %admin_listen, threads, "warden started");
    server.run(RunArgs {
        shutdown_signal: Box::new(DrainOnSignal { gateway, grace }),
    });
    Ok(())
}

/// How long shutdown waits for the last spans to reach the collector.
const TRACES_AT_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(5);

/// How long shutdown waits for limit settlements to reach the store.
const SETTLE_AT_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits for SIGTERM or SIGINT, then drains: pingora stops accepting, and a watcher exits
/// the process once no request is in flight or the grace period is over.
struct DrainOnSignal {
    gateway: Arc<Gateway>,
    grace: std::time::Duration,
}

#[async_trait::async_trait]
impl ShutdownSignalWatch for DrainOnSignal {
    async fn recv(&self) -> ShutdownSignal {
        crate::shutdown_signal().await;
        let in_flight = self.gateway.lifecycle.start_draining();
        tracing::info!(
            in_flight,
            grace_s = self.grace.as_secs(),
            "shutdown: draining"
        );
        let gateway = self.gateway.clone();
        let grace = self.grace;
        let runtime = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            let drained = gateway.lifecycle.wait_idle(grace);
            // Every finished request's settlement reaches the limit store before exit
            // (or is reported lost).
            let unsettled = runtime.block_on(gateway.limits.drain(SETTLE_AT_SHUTDOWN));
            if unsettled > 0 {
                tracing::error!(unsettled, "shutdown: limit settlements could not be made");
            }
            if let Some(audit) = &gateway.audit {
                audit.flush();
                tracing::info!("shutdown: audit spool flushed and digest written");
            }
            crate::telemetry::trace::flush(TRACES_AT_SHUTDOWN);
            if drained {
                tracing::info!("shutdown: drained, exiting");
            } else {
                tracing::warn!(
                    in_flight = gateway.lifecycle.in_flight(),
                    "shutdown: grace period over, exiting with requests in flight"
                );
            }
            std::process::exit(0);
        });
        ShutdownSignal::GracefulTerminate
    }
}
