//! Writing answers to the client through pingora: whole JSON bodies, OpenAI errors, and
//! provider streams relayed chunk by chunk as they arrive, each event passed through the
//! answer chain it is given (`answer`), whose filters it does not know. The record is
//! written (`report::record`) before an answer's last bytes. A failed write means the
//! client went away; the caller then drops the upstream stream, which cancels the
//! provider call.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::answer::Chain;
use super::context::RequestCtx;
use super::rescue::{Failure, rescue};
use crate::openai::{ApiError, responses, sse};
use crate::provider::{Reply, UpstreamStream};
use crate::telemetry::metrics;

fn header(status: StatusCode, ctx: &RequestCtx, extra: &HeaderMap) -> Option<ResponseHeader> {
    let mut h = ResponseHeader::build(status, Some(extra.len() + 4)).ok()?;
    for (name, value) in extra {
        h.append_header(name.clone(), value.clone()).ok()?;
    }
    h.insert_header("x-request-id", ctx.request_id.as_str())
        .ok()?;
    for (kind, rate) in [
        ("requests", &ctx.admission.rate_requests),
        ("tokens", &ctx.admission.rate_tokens),
    ] {
        if let Some(rate) = rate {
            h.insert_header(format!("x-ratelimit-limit-{kind}"), rate.limit.to_string())
                .ok()?;
            h.insert_header(
                format!("x-ratelimit-remaining-{kind}"),
                rate.remaining.to_string(),
            )
            .ok()?;
            h.insert_header(
                format!("x-ratelimit-reset-{kind}"),
                crate::limits::format_reset(rate.reset),
            )
            .ok()?;
        }
    }
    Some(h)
}

/// Writes the response head; false when the client is gone.
async fn start(session: &mut Session, ctx: &mut RequestCtx, head: ResponseHeader) -> bool {
    if session
        .write_response_header(Box::new(head), false)
        .await
        .is_err()
    {
        ctx.client_gone = true;
        return false;
    }
    ctx.mark_first_byte();
    true
}

/// Writes a complete response with a `content-length`, after its audit entry is appended;
/// when the entry cannot be written the client gets 503 instead.
pub async fn full(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: StatusCode,
    extra: &HeaderMap,
    body: Bytes,
) {
    ctx.answered.status = status.as_u16();
    super::conversation::remember(ctx).await;
    if let Err(failure) = super::report::record(ctx) {
        let err = super::rescue::rescue(failure);
        ctx.answered.error_code = err.code.clone();
        let headers = error_headers(&err);
        write_full(
            session,
            ctx,
            err.status(),
            &headers,
            Bytes::from(err.to_json()),
        )
        .await;
        return;
    }
    write_full(session, ctx, status, extra, body).await;
}

async fn write_full(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: StatusCode,
    extra: &HeaderMap,
    body: Bytes,
) {
    ctx.answered.status = status.as_u16();
    let Some(mut h) = header(status, ctx, extra) else {
        return;
    };
    if !extra.contains_key(http::header::CONTENT_TYPE) {
        let _ = h.insert_header(http::header::CONTENT_TYPE, "application/json");
    }
    let _ = h.insert_header(http::header::CONTENT_LENGTH, body.len().to_string());
    if !start(session, ctx, h).await {
        return;
    }
    keep(ctx, &body);
    // The key is settled before the client can send a repeat.
    super::replay::finish(ctx).await;
    if session.write_response_body(Some(body), true).await.is_err() {
        ctx.client_gone = true;
    }
}

/// Writes an OpenAI error response.
pub async fn error(session: &mut Session, ctx: &mut RequestCtx, err: &ApiError) {
    ctx.answered.error_code = err.code.clone();
    let extra = error_headers(err);
    full(
        session,
        ctx,
        err.status(),
        &extra,
        Bytes::from(err.to_json()),
    )
    .await;
}

/// Ends an answer whose head is already written (a stream) with an error event.
pub async fn abort(session: &mut Session, ctx: &mut RequestCtx, err: &ApiError) {
    let event = error_event(ctx, err, err.kind.default_code());
    if session
        .write_response_body(Some(event), true)
        .await
        .is_err()
    {
        ctx.client_gone = true;
    }
}

fn error_headers(err: &ApiError) -> HeaderMap {
    let mut extra = HeaderMap::new();
    for (name, value) in &err.headers {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            extra.append(*name, v);
        }
    }
    extra
}

/// Answers with a provider's reply through the answer's filter chain: a whole 2xx body
/// passes the chain (other statuses go as the provider sent them), a stream event by
/// event.
pub async fn reply(session: &mut Session, ctx: &mut RequestCtx, reply: Reply, mut chain: Chain) {
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let body = if status.is_success() {
                chain.body(body, ctx)
            } else {
                body
            };
            full(session, ctx, status, &headers, body).await
        }
        Reply::Stream(upstream) => stream(session, ctx, upstream, chain).await,
    }
}

/// Relays a provider stream through the answer's filter chain. Upstream failures after
/// the start end the stream with an OpenAI error event; a client disconnect stops reading
/// (and so cancels) the upstream. The request's record goes in before the stream's last
/// bytes; a stream whose record cannot be written ends with an error event instead of
/// `[DONE]`.
pub async fn stream(
    session: &mut Session,
    ctx: &mut RequestCtx,
    mut upstream: UpstreamStream,
    mut chain: Chain,
) {
    ctx.answered.status = upstream.status.as_u16();
    let Some(mut h) = header(upstream.status, ctx, &upstream.headers) else {
        return;
    };
    let _ = h.insert_header(http::header::CACHE_CONTROL, "no-cache");
    let _ = h.insert_header(http::header::TRANSFER_ENCODING, "chunked");
    if !start(session, ctx, h).await {
        chain.end(false, ctx);
        return;
    }
    let mut next = upstream.first.take().map(Ok);
    // The events are parsed once and each passes the chain; unless a filter rewrites,
    // the provider's bytes go out unchanged.
    let mut events = sse::Parser::default();
    let mut parsed = Vec::new();
    let rewrite = chain.rewrites();
    loop {
        let item = match next.take() {
            Some(first) => first,
            None => upstream
                .next_chunk()
                .await
                .transpose()
                .unwrap_or(Ok(Bytes::new())),
        };
        let (chunk, end) = match item {
            Ok(chunk) if chunk.is_empty() => {
                // The provider closed without `[DONE]`: none is added.
                let (last, _) = ending(ctx, &mut chain, BytesMut::new(), None).await;
                ((!last.is_empty()).then_some(last), true)
            }
            Ok(chunk) => {
                if events.feed(&chunk, &mut parsed).is_err() {
                    // Beyond the parser's bound nothing can be read: the stream ends
                    // rather than pass unread bytes.
                    chain.end(false, ctx);
                    let err = rescue(Failure::EventTooLarge);
                    (
                        Some(error_event(ctx, &err, "upstream_event_too_large")),
                        true,
                    )
                } else {
                    let mut shown = BytesMut::new();
                    let mut closing = None;
                    for event in parsed.drain(..) {
                        if event.is_done() {
                            closing = Some(sse::done_event());
                            break; // nothing follows `[DONE]`
                        }
                        // A Responses stream ends with its final event instead.
                        let last = responses::ends_stream(&event);
                        let mut out = BytesMut::new();
                        for e in chain.event(event, ctx) {
                            out.extend_from_slice(&e.encode());
                        }
                        if last {
                            closing = Some(out.freeze());
                            break;
                        }
                        shown.extend_from_slice(&out);
                    }
                    parsed.clear();
                    if let Some(closing) = closing {
                        let (last, recorded) = ending(ctx, &mut chain, shown, Some(closing)).await;
                        if rewrite || !recorded {
                            (Some(last), true)
                        } else {
                            (Some(chunk), true)
                        }
                    } else if rewrite {
                        if shown.is_empty() {
                            continue; // nothing to show yet
                        }
                        (Some(shown.freeze()), false)
                    } else {
                        (Some(chunk), false)
                    }
                }
            }
            Err(e) => {
                chain.end(false, ctx);
                let err = rescue(Failure::Stream(e));
                tracing::warn!(request_id = %ctx.request_id, error = %err, "upstream stream failed");
                let event = error_event(ctx, &err, err.kind.default_code());
                record(ctx);
                (Some(event), true)
            }
        };
        if let Some(c) = &chunk {
            keep(ctx, c);
        }
        if session.write_response_body(chunk, end).await.is_err() {
            ctx.client_gone = true;
            chain.end(false, ctx);
            metrics()
                .client_disconnects
                .with_label_values(&[ctx.route])
                .inc();
            return;
        }
        if end {
            return;
        }
    }
}

/// The end of a stream: what the filters still hold, after `shown`; then the record goes
/// in, and the provider's closing event (`[DONE]`, or a Responses stream's final event),
/// when it sent one — or, when the record cannot be written, an error event — closes it.
/// Also says whether the record was written. A Responses request's response is
/// remembered as the caller's first.
async fn ending(
    ctx: &mut RequestCtx,
    chain: &mut Chain,
    mut shown: BytesMut,
    closing: Option<Bytes>,
) -> (Bytes, bool) {
    for held in chain.end(true, ctx) {
        shown.extend_from_slice(&held.encode());
    }
    super::conversation::remember(ctx).await;
    let recorded = record(ctx);
    if !recorded {
        let err = rescue(Failure::AuditUnavailable);
        shown.extend_from_slice(&error_event(ctx, &err, err.kind.default_code()));
    } else if let Some(closing) = closing {
        shown.extend_from_slice(&closing);
    }
    (shown.freeze(), recorded)
}

/// Keeps a copy of what is written for an idempotency key's replays, up to the size
/// that is stored (beyond it, nothing is kept).
fn keep(ctx: &mut RequestCtx, bytes: &[u8]) {
    if let Some(kept) = ctx.answered.kept.as_mut() {
        if kept.len() + bytes.len() > crate::idempotency::MAX_STORED {
            ctx.answered.kept = None;
        } else {
            kept.extend_from_slice(bytes);
        }
    }
}

/// Writes the request's record; false when it could not be written.
fn record(ctx: &mut RequestCtx) -> bool {
    super::report::record(ctx).is_ok()
}

/// An error event that ends a stream, counted under `reason`.
fn error_event(ctx: &mut RequestCtx, err: &ApiError, reason: &str) -> Bytes {
    ctx.answered.error_code = err.code.clone();
    metrics().stream_errors.with_label_values(&[reason]).inc();
    Bytes::from(err.to_sse_event())
}
