//! `POST /v1/tools/{name}/invoke`: a client runs a registry tool through Warden, which
//! governs the call as it governs a model call. After authentication (by `pipeline`):
//!
//! 1. **read and parse** — `{"arguments": {…}}` (an object, or the JSON text a model's
//!    tool call carries);
//! 2. **find** — the tool in the policy set's registry (404 `tool_not_found`);
//! 3. **authorize** — the policy decision for endpoint `tools_invoke` and this tool;
//! 4. **validate** — the arguments against the tool's JSON Schema (400
//!    `invalid_tool_arguments`, naming where, never a value); then the client's
//!    `Idempotency-Key` is claimed or its stored answer replayed (`replay`);
//! 5. **admit** — the request-rate and concurrency limits of the rule's profile (and a
//!    result the PII profile cannot scan — its NER model missing — is refused here);
//! 6. **approval** — a `high` call whose approval condition holds runs only under an
//!    approval granted for exactly this call, else waits: 202 `pending_approval`
//!    (`approval`);
//! 7. **caps** — the tool's cumulative caps (429 `tool_cap_exceeded`);
//! 8. **execute** — the backend call, with an idempotency key for `write` and `high`
//!    tools (the client's `Idempotency-Key`, else one derived from the tenant, subject,
//!    tool and arguments);
//! 9. **redact** — the result by the rule's PII profile before anyone shows it to a model;
//! 10. **answer** — `200 {"tool", "result", "is_error"}`. A backend that refuses, fails or
//!     times out is still a 200: its `result` is an error the model can read.
//!
//! The report (audit record with `tool_execution`, settlement, access line) ends it like
//! every request.

use std::borrow::Cow;

use http::{HeaderMap, StatusCode};
use opentelemetry::KeyValue;
use pingora::proxy::Session;
use serde_json::{Map, Value, json};

use super::approval::{self, Gate};
use super::context::{RequestCtx, ToolRun};
use super::rescue::Failure;
use super::{Gateway, admission, authorize, body, redaction, replay, respond};
use crate::limits::{Demand, Periods, subject_id};
use crate::openai::ApiError;
use crate::policy::PolicySet;
use crate::state::parts_digest;
use crate::telemetry::metrics;
use crate::telemetry::trace::{CallTrace, Stage};
use crate::tools::Tool;
use crate::tools::approvals;
use crate::tools::caps;
use crate::tools::execute::execute;
use crate::tools::model::ResultScan;

/// Most validation errors named in a refusal.
const MAX_ARGUMENT_ERRORS: usize = 5;

pub async fn run(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    name: &str,
    client_ip: Option<&str>,
) -> Result<(), Failure> {
    // 1. read and parse
    ctx.stage(Stage::Read);
    let raw = body::read_json(session, ctx, &gw.config.server).await?;
    let args = parse(&raw)?;
    let client_key = replay::client_key(session)?;

    // 2. find
    let set = gw
        .policy
        .as_ref()
        .map(|p| p.current())
        .ok_or_else(|| Failure::ToolNotFound(name.to_string()))?;
    let tool = find(ctx, &set, name)?;

    // 3. authorize, and 4. validate
    ctx.stage(Stage::Authorize);
    permit(ctx, &set, &tool, &args)?;
    // … and claim or replay the client's idempotency key
    let scope = format!("tools_invoke:{name}");
    if replay::begin(gw, session, ctx, &scope, client_key.as_deref(), &raw).await? {
        return Ok(());
    }

    // 5. to 9.
    let called = perform(gw, ctx, &set, &tool, &args, client_key, client_ip).await?;

    // 10. answer
    ctx.stage(Stage::Answer);
    match called {
        Called::Ran { result, is_error } => {
            let body = json!({"tool": tool.def.name, "result": result, "is_error": is_error});
            respond_json(session, ctx, StatusCode::OK, &body).await;
        }
        Called::Waiting(pending) => {
            respond_json(session, ctx, StatusCode::ACCEPTED, &pending).await;
        }
    }
    Ok(())
}

/// How a governed tool call ended.
pub enum Called {
    /// The backend answered, refused or failed: its result, redacted.
    Ran { result: Value, is_error: bool },
    /// It waits for a person: `{"status": "pending_approval", …}`.
    Waiting(Value),
}

/// Step 2: the tool in the registry, noted in the request's context.
pub fn find(
    ctx: &mut RequestCtx,
    set: &PolicySet,
    name: &str,
) -> Result<std::sync::Arc<Tool>, Failure> {
    let tool = set
        .tools
        .get(name)
        .cloned()
        .ok_or_else(|| Failure::ToolNotFound(name.to_string()))?;
    ctx.tool = Some(ToolRun {
        name: tool.def.name.clone(),
        risk: tool.def.risk,
        backend: tool.def.backend.clone(),
        digest: tool.digest.clone(),
        outcome: None,
        backend_status: None,
        latency: None,
        approval: None,
    });
    Ok(tool)
}

/// Steps 3 and 4: the policy decision for `tools_invoke` and this tool, then the
/// arguments against the tool's schema.
pub fn permit(
    ctx: &mut RequestCtx,
    set: &PolicySet,
    tool: &Tool,
    args: &Map<String, Value>,
) -> Result<(), Failure> {
    let principal = ctx.principal.as_ref().ok_or(Failure::Internal)?;
    let authorized = authorize::decide_tool(set, principal, &tool.def.name);
    let denied = authorize::denial(&authorized);
    ctx.authorized = Some(authorized);
    if let Some(denied) = denied {
        return Err(denied);
    }
    validate(tool, args)
}

/// Steps 5 to 9 of a permitted call: admit, approval, caps, execute, redact. `client_key`
/// is the client's idempotency key, if it sent one.
pub async fn perform(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    set: &PolicySet,
    tool: &Tool,
    args: &Map<String, Value>,
    client_key: Option<String>,
    client_ip: Option<&str>,
) -> Result<Called, Failure> {
    // 5. admit (and the result's PII profile must be able to run)
    ctx.stage(Stage::Admit);
    admission::admit(gw, ctx, client_ip, Demand::default(), false).await?;
    let profile = redaction::profile(gw, ctx);
    let read_model = tool.def.redact_results == ResultScan::Model;
    if read_model && profile.as_ref().is_some_and(|p| p.ner_missing()) {
        return Err(Failure::Pii(crate::pii::Refusal::NerUnavailable));
    }

    // 6. approval
    let claimed = match approval::gate(gw, ctx, set, tool, args).await? {
        Gate::Run(claimed) => claimed,
        Gate::Wait(pending) => {
            metrics()
                .tool_calls
                .with_label_values(&[&tool.def.name, "pending_approval"])
                .inc();
            return Ok(Called::Waiting(json!({
                "status": "pending_approval",
                "tool": tool.def.name,
                "approval_id": pending.id,
                "expires_at": approvals::rfc3339(pending.expires_at),
            })));
        }
    };

    // 7. caps
    let principal = ctx.principal.as_ref().ok_or(Failure::Internal)?;
    let tenant = principal.tenant.clone();
    let key = tool.idempotency.as_ref().map(|_| {
        client_key.unwrap_or_else(|| derived_key(tenant.as_deref(), &principal.subject, tool, args))
    });
    let periods = Periods::now();
    let window = caps::Window {
        day: (&periods.day, periods.day_left),
        month: (&periods.month, periods.month_left),
    };
    let charged = caps::charge(
        &gw.state,
        &window,
        tool,
        args,
        (tenant.as_deref(), &subject_id(&principal.subject)),
        (key.as_deref(), claimed.is_some()),
    )
    .await;
    let charged = match charged {
        Ok(c) => c,
        Err(e) => {
            if let Some(a) = &claimed {
                approval::finish(gw, ctx, a, false).await;
            }
            return Err(e.into());
        }
    };

    // 8. execute
    ctx.stage(Stage::Execute);
    let backend = gw
        .tool_backends
        .get(&tool.def.backend)
        .ok_or(Failure::Internal)?;
    let trace = ctx.carrier().map(|c| c.call());
    let started = std::time::Instant::now();
    let executed = execute(
        tool,
        backend,
        args,
        key.as_deref(),
        &ctx.request_id,
        trace.as_ref(),
    )
    .await;
    if let Some(span) = trace.filter(CallTrace::recorded).and_then(|t| {
        let attributes = vec![
            KeyValue::new("gen_ai.operation.name", "execute_tool"),
            KeyValue::new("gen_ai.tool.name", tool.def.name.clone()),
            KeyValue::new("warden.tool.backend", tool.def.backend.clone()),
            KeyValue::new("warden.tool.outcome", executed.label()),
        ];
        let error = executed
            .is_error()
            .then_some(Cow::Borrowed(executed.label()));
        t.finished(
            format!("execute_tool {}", tool.def.name),
            started,
            attributes,
            error,
        )
    }) {
        ctx.traced(vec![span]);
    }
    if executed.is_error() {
        caps::release(&gw.state, charged).await;
    }
    if let Some(a) = &claimed {
        approval::finish(gw, ctx, a, !executed.is_error()).await;
    }
    metrics()
        .tool_calls
        .with_label_values(&[&tool.def.name, executed.label()])
        .inc();
    if let Some(run) = ctx.tool.as_mut() {
        run.outcome = Some(executed.label());
        run.backend_status = executed.status;
        run.latency = Some(executed.latency);
    }
    let is_error = executed.is_error();
    let result = executed.into_result();

    // 9. redact (after the catalog's terms in the result are learned, so they stay)
    if !is_error {
        gw.pii.learn(&tool.def.name, &result);
    }
    let result = match profile {
        None => result,
        Some(profile) => {
            let redacted = gw
                .pii
                .redact_result(profile, tenant.as_deref(), result, read_model)
                .await
                .map_err(Failure::Pii)?;
            redaction::record(ctx, &redacted.counts, redaction::Stage::ToolResult);
            redacted.value
        }
    };
    Ok(Called::Ran { result, is_error })
}

/// A JSON answer (`respond::full` sets its content type).
async fn respond_json(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: StatusCode,
    body: &Value,
) {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    respond::full(session, ctx, status, &HeaderMap::new(), bytes.into()).await;
}

/// The body's arguments: `{"arguments": {…}}`, or the JSON text of an object.
fn parse(raw: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let body: Value = serde_json::from_slice(raw).map_err(|_| {
        ApiError::invalid("The body is not valid JSON: send {\"arguments\": {...}}.")
    })?;
    let Value::Object(mut body) = body else {
        return Err(ApiError::invalid(
            "The body must be a JSON object: {\"arguments\": {...}}.",
        ));
    };
    if let Some(unknown) = body.keys().find(|k| *k != "arguments") {
        let shown: String = unknown.chars().take(64).collect();
        return Err(
            ApiError::invalid(format!("Unrecognized request argument supplied: {shown}"))
                .with_param(shown),
        );
    }
    let arguments = match body.remove("arguments") {
        None => {
            return Err(
                ApiError::invalid("Missing required parameter: 'arguments'.")
                    .with_param("arguments"),
            );
        }
        Some(Value::String(text)) => serde_json::from_str::<Value>(&text).map_err(|_| {
            ApiError::invalid("`arguments` is a string that is not JSON.").with_param("arguments")
        })?,
        Some(v) => v,
    };
    match arguments {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid("`arguments` must be a JSON object.").with_param("arguments")),
    }
}

/// Checks the arguments against the tool's schema. Messages name the place and the rule
/// broken, never a value (arguments carry customer data).
fn validate(tool: &Tool, args: &Map<String, Value>) -> Result<(), Failure> {
    let instance = Value::Object(args.clone());
    let problems: Vec<String> = tool
        .arguments
        .iter_errors(&instance)
        .take(MAX_ARGUMENT_ERRORS)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "/".to_string() } else { at };
            match e.kind() {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    format!("missing required argument {property}")
                }
                jsonschema::error::ValidationErrorKind::AdditionalProperties { .. } => {
                    "arguments the tool does not declare".to_string()
                }
                kind => format!("`{at}` fails `{}`", kind.keyword()),
            }
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(Failure::ToolArguments(format!(
        "The arguments do not match the schema of tool `{}`: {}.",
        tool.def.name,
        problems.join("; ")
    )))
}

/// The idempotency key of a call without a client key: the same tenant, subject, tool
/// and (canonical) arguments make the same key, so a retried write runs once.
pub fn derived_key(
    tenant: Option<&str>,
    subject: &str,
    tool: &Tool,
    args: &Map<String, Value>,
) -> String {
    let canonical = serde_jcs::to_vec(&Value::Object(args.clone())).unwrap_or_default();
    let digest = parts_digest(&[
        tenant.unwrap_or("").as_bytes(),
        subject.as_bytes(),
        tool.def.name.as_bytes(),
        &canonical,
    ]);
    format!("warden-{digest}")
}
