//! The one place a failure becomes what the client reads. Stages fail with their own
//! domain's error (authentication's, the PII stage's refusal, a limit's refusal, the
//! provider's failure) and [`rescue`] maps each to OpenAI's error shape: status, `type`,
//! `code`, message and headers (`www-authenticate`, `retry-after`). Messages name what
//! failed and what to do, never a credential, a value or prompt text. Errors of the
//! protocol itself (an unknown route, a body that is not JSON, a field of the wrong
//! type) are already OpenAI's and pass as they are.

use std::time::Duration;

use http::StatusCode;

use super::approval::Refusal as ApprovalRefusal;
use crate::auth::AuthError;
use crate::limits::{Demand, Refusal, format_reset};
use crate::openai::{ApiError, ErrorKind};
use crate::pii;
use crate::policy::pricing::usd;
use crate::provider::dispatch::{StreamError, UpstreamFailure};
use crate::tools::caps::CapError;

/// Why a request was not answered as asked.
#[derive(Debug)]
pub enum Failure {
    /// The request is not valid for the OpenAI API (route, method, body, fields).
    Protocol(ApiError),
    Auth(AuthError),
    /// The model is not configured, or not visible to the caller.
    UnknownModel(String),
    /// A policy rule denied the request.
    Denied {
        rule: String,
        reason: String,
    },
    Pii(pii::Refusal),
    /// A limit refused the request's estimate.
    Limits(Refusal, Demand),
    /// Every attempt at the provider failed before an answer started.
    Upstream(UpstreamFailure),
    /// The provider's stream ended abnormally after the answer started.
    Stream(StreamError),
    /// The provider sent a stream event larger than Warden reads.
    EventTooLarge,
    /// The audit log cannot take the request's record.
    AuditUnavailable,
    /// No tool of that name is in the registry.
    ToolNotFound(String),
    /// The arguments do not match the tool's schema (the message names no value).
    ToolArguments(String),
    /// The request's `Idempotency-Key` refuses it.
    Idempotency(super::replay::Refusal),
    /// An approval-bound call neither runs nor waits.
    Approval(super::approval::Refusal),
    /// A cumulative cap of the tool refused the call.
    ToolCap(crate::tools::caps::CapError),
    /// The tool loop Warden runs (`execution: gateway`) passed its deadline.
    ToolLoopTimeout,
    /// No response of that id is the caller's (`/v1/responses/{id}`,
    /// `previous_response_id`).
    ResponseNotFound {
        id: String,
        param: Option<&'static str>,
    },
    /// The records of stored responses cannot be read or written.
    ResponsesUnavailable,
    /// A bug inside Warden (a caught panic).
    Internal,
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure::Protocol(e)
    }
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Failure {
        Failure::Auth(e)
    }
}

impl From<pii::Refusal> for Failure {
    fn from(e: pii::Refusal) -> Failure {
        Failure::Pii(e)
    }
}

impl From<CapError> for Failure {
    fn from(e: CapError) -> Failure {
        Failure::ToolCap(e)
    }
}

impl From<UpstreamFailure> for Failure {
    fn from(e: UpstreamFailure) -> Failure {
        Failure::Upstream(e)
    }
}

/// The client's view of `failure`.
pub fn rescue(failure: Failure) -> ApiError {
    match failure {
        Failure::Protocol(e) => e,
        Failure::Auth(e) => auth(e),
        Failure::UnknownModel(id) => model_not_found(&id),
        Failure::Denied { rule, reason } => ApiError::new(
            ErrorKind::Forbidden,
            format!("Denied by policy rule `{rule}`: {reason}."),
        )
        .with_code("policy_denied"),
        Failure::Pii(refusal) => pii(refusal),
        Failure::Limits(refusal, demand) => limits(&refusal, demand),
        Failure::Upstream(e) => upstream(e),
        Failure::Stream(e) => stream(&e),
        Failure::EventTooLarge => ApiError::new(
            ErrorKind::UpstreamError,
            "The provider sent a stream event larger than Warden reads; the stream was ended.",
        )
        .with_code("upstream_event_too_large"),
        Failure::AuditUnavailable => ApiError::new(
            ErrorKind::Unavailable,
            "The audit log cannot record requests right now; retry later.",
        )
        .with_code("audit_unavailable")
        .with_header("retry-after", "1"),
        Failure::ToolNotFound(name) => {
            let shown: String = name.chars().take(64).collect();
            ApiError::new(
                ErrorKind::NotFound,
                format!("No tool `{shown}` is registered. The registry lists the tools a client may run."),
            )
            .with_code("tool_not_found")
        }
        Failure::ToolArguments(message) => ApiError::invalid(message)
            .with_param("arguments")
            .with_code("invalid_tool_arguments"),
        Failure::Idempotency(refusal) => super::replay::error(refusal),
        Failure::Approval(ApprovalRefusal::Rejected) => ApiError::new(
            ErrorKind::Forbidden,
            "A person rejected this call; it was not run. A changed call needs a new approval.",
        )
        .with_code("approval_rejected"),
        Failure::Approval(ApprovalRefusal::InUse) => ApiError::new(
            ErrorKind::Conflict,
            "This approved call is being run by another request.",
        )
        .with_code("approval_in_use"),
        Failure::Approval(ApprovalRefusal::Unavailable) => ApiError::new(
            ErrorKind::Unavailable,
            "The approval queue cannot be reached; the call was not run. Retry later.",
        )
        .with_code("approvals_unavailable")
        .with_header("retry-after", "1"),
        Failure::ToolCap(CapError::Exceeded {
            cap,
            limit,
            left,
            per,
        }) => ApiError::new(
            ErrorKind::RateLimited,
            format!(
                "The tool's cap `{cap}` ({limit} per {per}) would be passed: {left} is left in this {per}."
            ),
        )
        .with_code("tool_cap_exceeded"),
        Failure::ToolCap(CapError::Unavailable) => ApiError::new(
            ErrorKind::Unavailable,
            "The tool's caps cannot be checked right now; the call was not run. Retry later.",
        )
        .with_code("tool_caps_unavailable")
        .with_header("retry-after", "1"),
        Failure::ToolLoopTimeout => ApiError::new(
            ErrorKind::UpstreamTimeout,
            "The model and its tool calls did not reach a final answer before the loop's deadline.",
        )
        .with_code("tool_loop_timeout"),
        Failure::ResponseNotFound { id, param } => {
            // Response ids are the client's identifiers, echoed as OpenAI does, bounded.
            let shown: String = id.chars().take(128).collect();
            let err = ApiError::new(
                ErrorKind::NotFound,
                format!("No response with id '{shown}' was found."),
            )
            .with_code("response_not_found");
            match param {
                Some(p) => err.with_param(p),
                None => err,
            }
        }
        Failure::ResponsesUnavailable => ApiError::new(
            ErrorKind::Unavailable,
            "Stored responses cannot be looked up right now; retry later.",
        )
        .with_code("responses_unavailable")
        .with_header("retry-after", "1"),
        Failure::Internal => ApiError::new(
            ErrorKind::Internal,
            "The request failed inside Warden; it was recorded and can be retried.",
        ),
    }
}

fn model_not_found(id: &str) -> ApiError {
    // Model ids are identifiers chosen by the client; they are echoed like OpenAI does,
    // bounded so an oversized value cannot bloat the answer.
    let shown: String = id.chars().take(128).collect();
    ApiError::new(
        ErrorKind::ModelNotFound,
        format!("The model `{shown}` does not exist or you do not have access to it."),
    )
    .with_param("model")
}

fn auth(e: AuthError) -> ApiError {
    match e {
        AuthError::Missing => unauthorized(
            "Missing credentials: send `Authorization: Bearer <token>`.",
            "invalid_request",
            "missing credentials",
        ),
        AuthError::Invalid(description) => unauthorized(
            &format!("Invalid credentials: {description}."),
            "invalid_token",
            &description,
        ),
        AuthError::Unavailable(what) => ApiError::new(
            ErrorKind::Unavailable,
            format!("Cannot verify credentials now: {what}."),
        )
        .with_code("auth_unavailable")
        .with_header("retry-after", "1"),
        AuthError::Throttled(wait) => ApiError::new(
            ErrorKind::RateLimited,
            "Too many unrecognised credentials from this client; retry later.",
        )
        .with_code("auth_rate_limited")
        .with_header("retry-after", wait.as_secs().max(1).to_string()),
    }
}

fn unauthorized(message: &str, bearer_error: &str, description: &str) -> ApiError {
    let description = description.replace(['"', '\\'], "'");
    ApiError::new(ErrorKind::Unauthorized, message).with_header(
        "www-authenticate",
        format!(
            "Bearer realm=\"warden\", error=\"{bearer_error}\", error_description=\"{description}\""
        ),
    )
}

fn pii(refusal: pii::Refusal) -> ApiError {
    match refusal {
        pii::Refusal::NerUnavailable => ApiError::new(
            ErrorKind::Unavailable,
            "Personal-data detection is not available right now (the NER model is not loaded); retry later.",
        )
        .with_code("pii_unavailable")
        .with_header("retry-after", "5"),
        pii::Refusal::TooLarge => ApiError::new(
            ErrorKind::PayloadTooLarge,
            "The request holds more text than personal-data detection reads per request; send less text.",
        )
        .with_code("pii_too_large"),
        pii::Refusal::TokenInput => ApiError::invalid(
            "Inputs given as token ids cannot be checked for personal data for this model; send text instead.",
        )
        .with_code("pii_token_input"),
        pii::Refusal::Blocked(blocked) => {
            let types: Vec<&str> = blocked.0.iter().map(|e| e.name()).collect();
            ApiError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "The request contains personal data that may not be sent to the model: {}.",
                    types.join(", ")
                ),
            )
            .with_code("pii_blocked")
        }
        pii::Refusal::Failed => {
            ApiError::new(ErrorKind::Internal, "Personal-data detection failed.")
        }
    }
}

fn retry_header(e: ApiError, wait: Duration) -> ApiError {
    e.with_header(
        "retry-after",
        wait.as_secs_f64().ceil().max(1.0).to_string(),
    )
}

fn limits(refusal: &Refusal, demand: Demand) -> ApiError {
    match refusal {
        Refusal::Requests(a) => {
            let wait = a.retry_after.unwrap_or(Duration::from_secs(1));
            retry_header(
                ApiError::new(
                    ErrorKind::RateLimited,
                    format!(
                        "Rate limit reached for requests: limit {}, retry in {}.",
                        a.limit,
                        format_reset(wait)
                    ),
                ),
                wait,
            )
        }
        Refusal::Tokens(a) if demand.tokens > a.limit => ApiError::new(
            ErrorKind::RateLimited,
            format!(
                "Request too large for the token rate limit: limit {}, requested {} (prompt + max_tokens); lower max_tokens or shorten the prompt.",
                a.limit, demand.tokens
            ),
        ),
        Refusal::Tokens(a) => {
            let wait = a.retry_after.unwrap_or(Duration::from_secs(1));
            retry_header(
                ApiError::new(
                    ErrorKind::RateLimited,
                    format!(
                        "Rate limit reached for tokens: limit {}, remaining {}, requested {}; retry in {}.",
                        a.limit,
                        a.remaining,
                        demand.tokens,
                        format_reset(wait)
                    ),
                ),
                wait,
            )
        }
        Refusal::Concurrent { limit } => retry_header(
            ApiError::new(
                ErrorKind::RateLimited,
                format!("Too many concurrent requests: limit {limit}; retry when one finishes."),
            ),
            Duration::from_secs(1),
        ),
        Refusal::Budget {
            name,
            period,
            usd: in_usd,
            limit,
            used,
        } => {
            let show = |n: i64| {
                if *in_usd {
                    format!("${:.4}", usd(n))
                } else {
                    format!("{n} tokens")
                }
            };
            ApiError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "You exceeded your current quota: the {period} budget `{name}` of {} has {} used, and this request may cost up to {}. It renews at the start of the next {period} (UTC).",
                    show(*limit),
                    show(*used),
                    show(if *in_usd {
                        demand.cost
                    } else {
                        demand.tokens as i64
                    })
                ),
            )
        }
        Refusal::Unpriced { budget } => ApiError::new(
            ErrorKind::Forbidden,
            format!(
                "This model has no price, and the USD budget `{budget}` cannot charge it; add the model to the policy directory's pricing (or set the budget's on_unpriced: allow)."
            ),
        )
        .with_code("model_not_priced"),
        Refusal::StoreDown => ApiError::new(
            ErrorKind::Unavailable,
            "Limits cannot be checked right now; retry later.",
        )
        .with_code("rate_limit_unavailable")
        .with_header("retry-after", "1"),
    }
}

fn upstream(e: UpstreamFailure) -> ApiError {
    match e {
        UpstreamFailure::Connect => ApiError::new(
            ErrorKind::UpstreamError,
            "Could not connect to the upstream provider.",
        ),
        UpstreamFailure::Timeout { what, after } => ApiError::new(
            ErrorKind::UpstreamTimeout,
            format!(
                "The upstream provider did not answer in time ({what} timeout of {} ms).",
                after.as_millis()
            ),
        ),
        UpstreamFailure::Status(s) if s == StatusCode::TOO_MANY_REQUESTS => ApiError::new(
            ErrorKind::RateLimited,
            "The upstream provider is rate limiting requests; retry later.",
        )
        .with_header("retry-after", "1"),
        UpstreamFailure::Status(s) => ApiError::new(
            ErrorKind::UpstreamError,
            format!("The upstream provider failed with status {}.", s.as_u16()),
        ),
        UpstreamFailure::Credentials(s) => ApiError::new(
            ErrorKind::UpstreamError,
            format!(
                "The upstream provider refused Warden's credentials (status {}).",
                s.as_u16()
            ),
        ),
        UpstreamFailure::Broken => ApiError::new(
            ErrorKind::UpstreamError,
            "The upstream connection failed before a response was received.",
        ),
    }
}

fn stream(e: &StreamError) -> ApiError {
    match e {
        StreamError::Idle(d) => ApiError::new(
            ErrorKind::UpstreamTimeout,
            format!(
                "The upstream stream stalled for more than {} ms.",
                d.as_millis()
            ),
        ),
        StreamError::Total => ApiError::new(
            ErrorKind::UpstreamTimeout,
            "The upstream stream exceeded its total time limit.",
        ),
        StreamError::Broken => ApiError::new(
            ErrorKind::UpstreamError,
            "The upstream connection failed during the stream.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_appear_and_bearer_challenges_are_quoted() {
        let e = rescue(Failure::Auth(AuthError::invalid("bad \"signature\"")));
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        let challenge = e
            .headers
            .iter()
            .find(|(n, _)| *n == "www-authenticate")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(!challenge.contains("\"signature\""), "{challenge}");
        let missing = rescue(Failure::Auth(AuthError::Missing));
        assert!(
            missing
                .headers
                .iter()
                .any(|(n, v)| *n == "www-authenticate" && v.contains("invalid_request"))
        );
    }

    #[test]
    fn each_refusal_has_its_status_and_code() {
        let cases = [
            (
                Failure::Auth(AuthError::Unavailable("keys")),
                503,
                "auth_unavailable",
            ),
            (
                Failure::Auth(AuthError::Throttled(Duration::from_secs(3))),
                429,
                "auth_rate_limited",
            ),
            (Failure::UnknownModel("m".into()), 404, "model_not_found"),
            (
                Failure::Denied {
                    rule: "r".into(),
                    reason: "no".into(),
                },
                403,
                "policy_denied",
            ),
            (Failure::Pii(pii::Refusal::TooLarge), 413, "pii_too_large"),
            (
                Failure::Pii(pii::Refusal::TokenInput),
                400,
                "pii_token_input",
            ),
            (
                Failure::Pii(pii::Refusal::NerUnavailable),
                503,
                "pii_unavailable",
            ),
            (
                Failure::Limits(Refusal::StoreDown, Demand::default()),
                503,
                "rate_limit_unavailable",
            ),
            (
                Failure::Limits(Refusal::Concurrent { limit: 2 }, Demand::default()),
                429,
                "rate_limit_exceeded",
            ),
            (
                Failure::Upstream(UpstreamFailure::Status(StatusCode::TOO_MANY_REQUESTS)),
                429,
                "rate_limit_exceeded",
            ),
            (
                Failure::Upstream(UpstreamFailure::Timeout {
                    what: "first-byte",
                    after: Duration::from_millis(5),
                }),
                504,
                "upstream_timeout",
            ),
            (Failure::Stream(StreamError::Broken), 502, "upstream_error"),
            (Failure::EventTooLarge, 502, "upstream_event_too_large"),
            (Failure::AuditUnavailable, 503, "audit_unavailable"),
            (Failure::ToolLoopTimeout, 504, "tool_loop_timeout"),
            (Failure::Internal, 500, "internal_error"),
        ];
        for (failure, status, code) in cases {
            let shown = format!("{failure:?}");
            let e = rescue(failure);
            assert_eq!(e.status().as_u16(), status, "{shown}");
            assert_eq!(e.code.as_deref(), Some(code), "{shown}");
        }
    }

    #[test]
    fn unknown_model_ids_are_echoed_bounded() {
        let e = rescue(Failure::UnknownModel("x".repeat(1000)));
        assert!(e.message.len() < 300, "{}", e.message);
        assert_eq!(e.param.as_deref(), Some("model"));
    }
}
