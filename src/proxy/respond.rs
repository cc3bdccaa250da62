//! Writing answers to the client through pingora: whole JSON bodies, OpenAI errors, and
//! provider streams relayed chunk by chunk as they arrive. A failed write means the client
//! went away; the caller then drops the upstream stream, which cancels the provider call.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::context::RequestCtx;
use super::redaction::{self, Stage};
use crate::openai::usage::Usage;
use crate::openai::{ApiError, sse};
use crate::pii::response::AnswerStream;
use crate::provider::UpstreamStream;
use crate::telemetry::metrics;

fn header(status: StatusCode, ctx: &RequestCtx, extra: &HeaderMap) -> Option<ResponseHeader> {
    let mut h = ResponseHeader::build(status, Some(extra.len() + 4)).ok()?;
    for (name, value) in extra {
        h.append_header(name.clone(), value.clone()).ok()?;
    }
    h.insert_header("x-request-id", ctx.request_id.as_str())
        .ok()?;
    for (kind, rate) in [
        ("requests", &ctx.rate_requests),
        ("tokens", &ctx.rate_tokens),
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
    if let Err(err) = super::audit_entry::append(ctx, status.as_u16()) {
        ctx.error_code = err.code.clone();
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
    ctx.status = status.as_u16();
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
    if session.write_response_body(Some(body), true).await.is_err() {
        ctx.client_gone = true;
    }
}

/// Writes an OpenAI error response.
pub async fn error(session: &mut Session, ctx: &mut RequestCtx, err: &ApiError) {
    ctx.error_code = err.code.clone();
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
    ctx.error_code = err.code.clone();
    metrics()
        .stream_errors
        .with_label_values(&[err.kind.default_code()])
        .inc();
    let event = Bytes::from(err.to_sse_event());
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

/// Relays a provider stream. Upstream failures after the start end the stream with an
/// OpenAI error event; a client disconnect stops reading (and so cancels) the upstream.
pub async fn stream(session: &mut Session, ctx: &mut RequestCtx, mut upstream: UpstreamStream) {
    ctx.status = upstream.status.as_u16();
    let Some(mut h) = header(upstream.status, ctx, &upstream.headers) else {
        return;
    };
    let _ = h.insert_header(http::header::CACHE_CONTROL, "no-cache");
    let _ = h.insert_header(http::header::TRANSFER_ENCODING, "chunked");
    if !start(session, ctx, h).await {
        return;
    }
    let mut next = upstream.first.take().map(Ok);
    // The events are parsed once: watched for the provider's usage and, when the client
    // must not see them as sent (usage it did not ask for, PII), rewritten one by one.
    // Otherwise the provider's bytes pass unchanged.
    let mut events = sse::Parser::default();
    let mut parsed = Vec::new();
    let mut answer = ctx.answer.take().map(|a| a.into_stream());
    let rewrite = ctx.hide_stream_usage || answer.is_some();
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
            Ok(chunk) if chunk.is_empty() => (None, true),
            Ok(chunk) => {
                if events.feed(&chunk, &mut parsed).is_err() {
                    // Beyond the parser's bound nothing can be scanned or restored: the
                    // stream ends rather than pass unread bytes.
                    parsed.clear();
                    let err = ApiError::new(
                        crate::openai::ErrorKind::UpstreamError,
                        "The provider sent a stream event larger than Warden reads; the stream was ended.",
                    )
                    .with_code("upstream_event_too_large");
                    ctx.error_code = err.code.clone();
                    metrics()
                        .stream_errors
                        .with_label_values(&["upstream_event_too_large"])
                        .inc();
                    (Some(Bytes::from(err.to_sse_event())), true)
                } else {
                    let done_at = parsed.iter().position(sse::Event::is_done);
                    let mut out = BytesMut::new();
                    let before_done = done_at.unwrap_or(parsed.len());
                    for event in parsed.iter().take(before_done) {
                        super::answer_watch::event(ctx, &event.data);
                        if rewrite {
                            rewrite_event(
                                event,
                                ctx.hide_stream_usage,
                                answer.as_mut(),
                                &mut ctx.usage,
                                &mut out,
                            );
                        }
                        record_usage(ctx, event);
                    }
                    let mut unrecorded = false;
                    if done_at.is_some() {
                        // The record goes in before `[DONE]` reaches the client; a stream
                        // whose record cannot be written ends with an error instead.
                        let held = answer.as_mut().and_then(AnswerStream::finish);
                        record_answer(ctx, answer.as_ref());
                        super::accounting::complete(ctx);
                        let status = ctx.status;
                        unrecorded = super::audit_entry::append(ctx, status).is_err();
                        if unrecorded && !rewrite {
                            for event in parsed.iter().take(before_done) {
                                out.extend_from_slice(&sse::data_event(event.data.as_bytes()));
                            }
                        }
                        if let Some(held) = held {
                            out.extend_from_slice(&sse::data_event(held.as_bytes()));
                        }
                        if unrecorded {
                            out.extend_from_slice(&unrecorded_event(ctx));
                        } else {
                            out.extend_from_slice(&sse::done_event());
                        }
                    }
                    parsed.clear();
                    let chunk = if rewrite || unrecorded {
                        out.freeze()
                    } else {
                        chunk
                    };
                    if chunk.is_empty() {
                        continue; // nothing to show yet
                    }
                    (Some(chunk), false)
                }
            }
            Err(e) => {
                let err = e.to_api_error();
                metrics()
                    .stream_errors
                    .with_label_values(&[err.kind.default_code()])
                    .inc();
                ctx.error_code = err.code.clone();
                tracing::warn!(request_id = %ctx.request_id, error = %err, "upstream stream failed");
                (Some(Bytes::from(err.to_sse_event())), true)
            }
        };
        let mut chunk = chunk;
        if end {
            record_answer(ctx, answer.as_ref());
            super::accounting::complete(ctx);
            // The stream's entry goes in before its last bytes.
            let status = ctx.status;
            if super::audit_entry::append(ctx, status).is_err() {
                let mut last = BytesMut::new();
                if let Some(c) = chunk.take() {
                    last.extend_from_slice(&c);
                }
                last.extend_from_slice(&unrecorded_event(ctx));
                chunk = Some(last.freeze());
            }
        }
        if session.write_response_body(chunk, end).await.is_err() {
            ctx.client_gone = true;
            record_answer(ctx, answer.as_ref());
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

/// Counts what output scanning found in the answer (once: at the end or when the client
/// went away).
fn record_answer(ctx: &mut RequestCtx, answer: Option<&AnswerStream>) {
    if let Some(a) = answer
        && !ctx.answer_recorded
    {
        ctx.answer_recorded = true;
        redaction::record(ctx, a.counts(), Stage::Answer);
    }
}

/// Notes the provider's usage from an event, or keeps its text to count it.
fn record_usage(ctx: &mut RequestCtx, event: &sse::Event) {
    if let Some(usage) = Usage::from_event(&event.data) {
        ctx.usage = Some(usage);
    } else if ctx.usage.is_none() && !event.is_done() {
        ctx.stream_text.push(event.data.clone());
    }
}

/// The event that ends a stream whose audit record could not be written.
fn unrecorded_event(ctx: &mut RequestCtx) -> Vec<u8> {
    let err = super::audit_entry::unavailable();
    ctx.error_code = err.code.clone();
    metrics()
        .stream_errors
        .with_label_values(&[err.kind.default_code()])
        .inc();
    err.to_sse_event()
}

/// Appends what the client sees of one event (never `[DONE]`, which the caller writes
/// after the record): usage it did not ask for removed, the answer's PII filtered.
fn rewrite_event(
    event: &sse::Event,
    hide_usage: bool,
    answer: Option<&mut AnswerStream>,
    usage: &mut Option<Usage>,
    out: &mut BytesMut,
) {
    let data = if hide_usage {
        match super::stream_usage::visible(&event.data, usage) {
            Some(data) => data,
            None => return,
        }
    } else {
        Cow::Borrowed(event.data.as_str())
    };
    let data = match answer.and_then(|a| a.event(&data)) {
        Some(filtered) => Cow::Owned(filtered),
        None => data,
    };
    out.extend_from_slice(&sse::data_event(data.as_bytes()));
}
