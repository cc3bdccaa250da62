//! The backstop for bugs: a panic inside a request's stages becomes an OpenAI-shaped 500
//! (or an error event when a stream has started) and the request still gets its audit
//! record, its settlement and its access-log line. The panic hook (`telemetry`) logs
//! where it happened, never its message. Debug builds can inject such a panic on purpose,
//! so the tests can prove the backstop holds.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use super::rescue::Failure;
use crate::openai::ApiRequest;
use crate::telemetry::metrics;

/// Runs a request's stages; a panic becomes [`Failure::Internal`] (a 500).
pub async fn catch<F>(stages: F) -> Result<(), Failure>
where
    F: Future<Output = Result<(), Failure>>,
{
    match AssertUnwindSafe(stages).catch_unwind().await {
        Ok(result) => result,
        Err(_) => {
            metrics().panics.inc();
            Err(Failure::Internal)
        }
    }
}

/// Environment variable naming a marker that makes a debug build panic on a request whose
/// last message contains it (a fault the tests inject; release builds ignore it).
pub const PANIC_MARKER_ENV: &str = "WARDEN_DEBUG_PANIC_ON";

/// In debug builds, panics (quoting the message, as slicing bugs do) when the request's
/// last message holds the marker named by [`PANIC_MARKER_ENV`].
#[allow(clippy::panic, reason = "the fault this module injects on purpose")]
pub fn inject(request: &ApiRequest) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Ok(marker) = std::env::var(PANIC_MARKER_ENV) else {
        return;
    };
    if let ApiRequest::Chat(chat) = request
        && let Some(text) = chat
            .messages
            .last()
            .and_then(|m| m.content.as_ref())
            .map(|c| c.text())
        && !marker.is_empty()
        && text.contains(&marker)
    {
        panic!("injected fault while reading {text:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_a_500() {
        let out = catch(async {
            let v: Vec<u8> = Vec::new();
            let _ = v[3]; // a bug
            Ok(())
        })
        .await;
        let err = super::super::rescue::rescue(out.unwrap_err());
        assert_eq!(err.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(catch(async { Ok(()) }).await.is_ok());
    }
}
