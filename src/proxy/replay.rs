//! Client idempotency keys on the request path (`idempotency`): before a request with an
//! `Idempotency-Key` runs, its key is claimed — or its stored answer replayed, or the
//! request refused (409 while the first runs, 422 for another body) — and after the
//! answer, a success is stored for repeats and anything else frees the key. A whole
//! answer settles its key before its bytes are written, so a repeat sent as soon as they
//! arrive finds the key settled; a stream settles it after its last event.

use bytes::BytesMut;
use http::{HeaderMap, HeaderValue, StatusCode};
use pingora::proxy::Session;

use super::Gateway;
use super::context::RequestCtx;
use super::rescue::Failure;
use super::respond;
use crate::idempotency::{self, Begin, Claim, Idempotency, Stored};
use crate::limits::subject_id;
use crate::openai::ApiError;

/// How long a repeat waits for a first request that is finishing before it is refused
/// with 409.
const IN_FLIGHT_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// A key this request claimed, with the store that settles it.
pub struct Pending {
    store: Idempotency,
    claim: Claim,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

/// Why a request with a key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    InFlight,
    Mismatch,
    Unavailable,
}

/// The client's `Idempotency-Key`, if it sent a well-formed one.
pub fn client_key(session: &Session) -> Result<Option<String>, Failure> {
    idempotency::client_key(&session.req_header().headers)
        .map_err(|_| Failure::Idempotency(Refusal::Malformed))
}

/// Claims the request's `key` (see [`client_key`]) on `scope`, or answers it from the
/// store. `Ok(true)` when the request has been answered (a replay).
pub async fn begin(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    scope: &str,
    key: Option<&str>,
    body: &[u8],
) -> Result<bool, Failure> {
    let Some(key) = key else {
        return Ok(false);
    };
    if !gw.idempotency.usable() {
        return Err(Failure::Idempotency(Refusal::Unavailable));
    }
    let principal = ctx.principal.as_ref().ok_or(Failure::Internal)?;
    let who = (principal.tenant.as_deref(), subject_id(&principal.subject));
    // The first request stores its answer just after its last bytes: a repeat sent as
    // soon as they arrived waits that moment out instead of being told to retry.
    let begun = gw
        .idempotency
        .begin_waiting((who.0, &who.1), scope, key, body, IN_FLIGHT_GRACE)
        .await
        .map_err(|_| Failure::Idempotency(Refusal::Unavailable))?;
    match begun {
        Begin::Run(claim) => {
            ctx.idempotency = Some(Pending {
                store: gw.idempotency.clone(),
                claim,
            });
            ctx.answered.kept = Some(BytesMut::new());
            Ok(false)
        }
        Begin::Replay(stored) => {
            let mut headers = HeaderMap::new();
            if let Ok(ct) = HeaderValue::from_str(&stored.content_type) {
                headers.insert(http::header::CONTENT_TYPE, ct);
            }
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            respond::full(session, ctx, status, &headers, stored.body.into()).await;
            Ok(true)
        }
        Begin::InFlight => Err(Failure::Idempotency(Refusal::InFlight)),
        Begin::Mismatch => Err(Failure::Idempotency(Refusal::Mismatch)),
    }
}

/// Stores the answer of a request that claimed its key, if it is a whole success;
/// otherwise frees the key. Once per request: the first call settles the key.
pub async fn finish(ctx: &mut RequestCtx) {
    let Some(Pending { store, claim }) = ctx.idempotency.take() else {
        return;
    };
    let kept = ctx.answered.kept.take();
    // A tool call whose backend failed is not a success to replay: the retry runs.
    let success = matches!(ctx.answered.status, 200 | 201)
        && ctx.answered.error_code.is_none()
        && !ctx.client_gone
        && ctx.tool.as_ref().is_none_or(|t| t.outcome == Some("ok"));
    let stored = kept
        .filter(|k| success && k.len() <= idempotency::MAX_STORED)
        .map(|body| Stored {
            status: ctx.answered.status,
            content_type: if ctx.stream() {
                "text/event-stream".into()
            } else {
                "application/json".into()
            },
            body: body.to_vec(),
        });
    let done = match stored {
        Some(stored) => store.complete(claim, stored).await,
        None => store.release(claim).await,
    };
    if done.is_err() {
        tracing::warn!(request_id = %ctx.request_id, "idempotency: the answer could not be stored");
    }
}

/// The client's view of a refusal.
pub fn error(refusal: Refusal) -> ApiError {
    use crate::openai::ErrorKind;
    match refusal {
        Refusal::Malformed => ApiError::invalid(
            "`Idempotency-Key` must be 1 to 255 visible ASCII characters.",
        )
        .with_code("invalid_idempotency_key"),
        Refusal::InFlight => ApiError::new(
            ErrorKind::Conflict,
            "A request with this Idempotency-Key is still being processed; retry once it has finished.",
        )
        .with_code("idempotency_key_in_use"),
        Refusal::Mismatch => ApiError::new(
            ErrorKind::Unprocessable,
            "This Idempotency-Key was used with a different request body; use a new key for a new request.",
        )
        .with_code("idempotency_key_reused"),
        Refusal::Unavailable => ApiError::new(
            ErrorKind::Unavailable,
            "Idempotency keys cannot be checked right now (the shared state is unreachable or \
             has no shared key); the request was not run. Retry later or without the key.",
        )
        .with_code("idempotency_unavailable")
        .with_header("retry-after", "1"),
    }
}
