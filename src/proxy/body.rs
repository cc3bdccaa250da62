//! Stage 3, read and parse (the reading half): the client's request body, with a
//! content-type check (415), the size limit enforced on the declared length and while
//! reading (413), and a read timeout. Bodies of any size up to the limit are read whole,
//! so every stage sees the complete JSON before a provider is chosen.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;

use crate::openai::{ApiError, ErrorKind};

/// Refuses bodies that are declared as something other than JSON.
pub fn check_content_type(session: &Session) -> Result<(), ApiError> {
    let Some(value) = session.req_header().headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    if crate::http_client::is_json_media(value) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorKind::UnsupportedMediaType,
        "Unsupported content type: send the body as `Content-Type: application/json`.",
    ))
}

/// Whether the request announces a body (by length or transfer encoding).
pub fn declares_body(session: &Session) -> bool {
    let headers = &session.req_header().headers;
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!("The request body exceeds the limit of {limit} bytes."),
    )
}

/// The request's JSON body, whole: the content type checked, the server's size limit and
/// read timeout applied; notes in the context that the body was read.
pub async fn read_json(
    session: &mut Session,
    ctx: &mut super::context::RequestCtx,
    server: &crate::config::ServerSettings,
) -> Result<Bytes, ApiError> {
    check_content_type(session)?;
    let raw = read(
        session,
        server.max_body_bytes,
        Duration::from_millis(server.client_body_timeout_ms),
    )
    .await?;
    ctx.body_read = true;
    Ok(raw)
}

/// Reads the whole body, refusing it as soon as it grows past `limit` bytes.
pub async fn read(
    session: &mut Session,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let expects_continue = session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue {
        // curl and other clients wait for this before sending bodies over 1 KiB.
        session
            .as_downstream_mut()
            .write_continue_response()
            .await
            .map_err(|_| ApiError::invalid("The request body could not be read."))?;
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit as u64) as usize);
    let read_all = async {
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    if buf.len() + chunk.len() > limit {
                        return Err(too_large(limit));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(()),
                Err(_) => return Err(ApiError::invalid("The request body could not be read.")),
            }
        }
    };
    match tokio::time::timeout(timeout, read_all).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(ApiError::new(
                ErrorKind::InvalidRequest,
                "Timed out reading the request body.",
            )
            .with_code("body_timeout"));
        }
    }
    Ok(buf.freeze())
}
