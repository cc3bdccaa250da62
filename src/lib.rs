//! Warden: an LLM governance proxy that speaks the OpenAI API. A request walks one line of
//! stages — route, authenticate, read and parse, authorize, redact, count and admit,
//! dispatch, answer — listed in `proxy::pipeline`, and ends with one report (audit record,
//! settlement, metrics, access line). Each stage's logic lives in its domain module
//! (`auth`, `policy`, `pii`, `tokens`, `limits`, `provider`, `audit`); `proxy` strings
//! them together. `docs/architecture.md` describes the design.

// The request's future nests every stage's, the Redis cluster client's included; its
// layout is deeper than the default limit of 128.
#![recursion_limit = "256"]
// Data from clients and providers never reaches a panic: no indexing or slicing that can
// fail, no unwrap or expect outside tests. A panic that slips through anyway is caught at
// the request boundary (`proxy::fault`).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod background;
pub mod condition;
pub mod config;
pub mod conversation;
pub mod gateway;
pub mod http_client;
pub mod idempotency;
pub mod limits;
pub mod manifest;
pub mod mock;
pub mod onnx;
pub mod openai;
pub mod pii;
pub mod policy;
pub mod provider;
pub mod proxy;
pub mod routing;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tokens;
pub mod tools;

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers there is nothing to wait for but Ctrl-C.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
