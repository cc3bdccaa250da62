//! What a request's spans say (`telemetry::trace`). The request's own span carries the
//! OpenTelemetry GenAI attributes — operation, provider, requested and answering model,
//! output cap, token usage, finish reasons, time to first token — and Warden's: tenant,
//! policy rule, PII findings by type, the limits' outcome, cost, the tools the model
//! called. Each stage's span says what that stage decided. Only names, counts, codes and
//! ids: never prompt or answer text, tool arguments, subjects or personal data.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Instant;

use opentelemetry::{Array, KeyValue, StringValue, Value};

use super::Gateway;
use super::context::RequestCtx;
use crate::policy::Effect;
use crate::telemetry::trace::{Root, Stage};

/// Queues the request's spans, when its trace is recorded.
pub fn finish(gw: &Gateway, ctx: &mut RequestCtx) {
    let Some(trace) = ctx.trace.take() else {
        return;
    };
    if !trace.sampled() {
        return;
    }
    let end = Instant::now();
    let root = root(gw, ctx);
    trace.finish(end, root, |stage| stage_attributes(ctx, stage));
}

/// The GenAI operation of a route.
fn operation(route: &str) -> Option<&'static str> {
    match route {
        "chat_completions" | "responses" => Some("chat"),
        "completions" => Some("text_completion"),
        "embeddings" => Some("embeddings"),
        "tools_invoke" => Some("execute_tool"),
        _ => None,
    }
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Value {
    let values: Vec<StringValue> = items
        .into_iter()
        .map(|s| StringValue::from(s.to_string()))
        .collect();
    Value::Array(Array::String(values))
}

fn root(gw: &Gateway, ctx: &RequestCtx) -> Root {
    let operation = operation(ctx.route);
    let tool = ctx.tool.as_ref().map(|t| t.name.as_str());
    let name = match (operation, tool, ctx.model()) {
        (Some("execute_tool"), Some(tool), _) => format!("execute_tool {tool}"),
        (Some(op), _, Some(model)) => format!("{op} {model}"),
        _ => format!("warden {}", ctx.route),
    };
    let mut a = vec![
        KeyValue::new("warden.request_id", ctx.request_id.clone()),
        KeyValue::new("warden.route", ctx.route),
        KeyValue::new("http.response.status_code", i64::from(ctx.answered.status)),
    ];
    if let Some(op) = operation {
        a.push(KeyValue::new("gen_ai.operation.name", op));
    }
    if let Some(tool) = tool {
        a.push(KeyValue::new("gen_ai.tool.name", tool.to_string()));
    }
    if let Some(model) = ctx.model() {
        a.push(KeyValue::new("gen_ai.request.model", model.to_string()));
    }
    if let Some(provider) = ctx.upstream.provider.as_deref() {
        if let Some(p) = gw.upstreams.providers.iter().find(|p| p.name == provider) {
            a.push(KeyValue::new("gen_ai.provider.name", p.kind.gen_ai_name()));
        }
        a.push(KeyValue::new("warden.provider", provider.to_string()));
        a.push(KeyValue::new(
            "warden.attempts",
            i64::from(ctx.upstream.attempts),
        ));
    }
    if let Some(model) = ctx.upstream.model.as_deref() {
        a.push(KeyValue::new("warden.upstream_model", model.to_string()));
    }
    if let Some(model) = ctx.answered.response_model.as_deref() {
        a.push(KeyValue::new("gen_ai.response.model", model.to_string()));
    }
    if let Some(max) = ctx.parsed.as_ref().and_then(|p| p.max_tokens) {
        a.push(KeyValue::new(
            "gen_ai.request.max_tokens",
            i64::try_from(max).unwrap_or(i64::MAX),
        ));
    }
    if let Some(parsed) = &ctx.parsed {
        a.push(KeyValue::new("gen_ai.request.stream", parsed.stream));
    }
    if let Some(u) = &ctx.answered.usage {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        a.push(KeyValue::new(
            "gen_ai.usage.input_tokens",
            n(u.prompt_tokens),
        ));
        a.push(KeyValue::new(
            "gen_ai.usage.output_tokens",
            n(u.completion_tokens),
        ));
        a.push(KeyValue::new(
            "warden.usage.counted",
            ctx.answered.usage_counted,
        ));
    }
    if !ctx.answered.finish_reasons.is_empty() {
        a.push(KeyValue::new(
            "gen_ai.response.finish_reasons",
            strings(ctx.answered.finish_reasons.iter().map(String::as_str)),
        ));
    }
    if let (Some(first), true) = (ctx.answered.first_byte, ctx.stream()) {
        a.push(KeyValue::new(
            "gen_ai.server.time_to_first_token",
            first.as_secs_f64(),
        ));
    }
    if !ctx.answered.tool_calls.is_empty() {
        a.push(KeyValue::new(
            "warden.tool_calls",
            strings(ctx.answered.tool_calls.keys().map(String::as_str)),
        ));
    }
    if let Some(tenant) = ctx.principal.as_ref().and_then(|p| p.tenant.as_deref()) {
        a.push(KeyValue::new("warden.tenant", tenant.to_string()));
    }
    a.extend(stage_attributes(ctx, Stage::Authenticate));
    a.extend(stage_attributes(ctx, Stage::Authorize));
    a.extend(pii_findings(ctx, None));
    a.extend(stage_attributes(ctx, Stage::Admit));
    if let Some(cost) = ctx.answered.cost {
        a.push(KeyValue::new(
            "warden.cost_usd",
            crate::policy::pricing::usd(cost),
        ));
    }
    if ctx.client_gone {
        a.push(KeyValue::new("warden.client_disconnected", true));
    }
    let status = ctx.answered.status;
    let error = ctx.answered.error_code.clone().map(Cow::Owned).or_else(|| {
        (ctx.client_gone && status == 0).then_some(Cow::Borrowed("client_disconnected"))
    });
    Root {
        name: name.into(),
        attributes: a,
        failed: error.is_some() && (status >= 500 || status == 0),
        error,
    }
}

/// What one stage's span says.
fn stage_attributes(ctx: &RequestCtx, stage: Stage) -> Vec<KeyValue> {
    match stage {
        Stage::Authenticate => ctx
            .principal
            .as_ref()
            .map(|p| vec![KeyValue::new("warden.auth.method", p.method.label())])
            .unwrap_or_default(),
        Stage::Authorize => ctx
            .decision()
            .map(|d| {
                let effect = match d.effect {
                    Effect::Allow => "allow",
                    Effect::Deny => "deny",
                };
                vec![
                    KeyValue::new("warden.policy.rule", d.rule.clone()),
                    KeyValue::new("warden.policy.effect", effect),
                ]
            })
            .unwrap_or_default(),
        Stage::Redact => {
            let mut a = pii_findings(ctx, Some("request"));
            if ctx.pii.ner_skipped {
                a.push(KeyValue::new("warden.pii.ner_skipped", true));
            }
            a
        }
        Stage::Admit => {
            if let Some(kind) = ctx.admission.refused {
                vec![
                    KeyValue::new("warden.limits.outcome", "refused"),
                    KeyValue::new("warden.limits.refused", kind),
                ]
            } else if ctx.admission.admitted {
                vec![KeyValue::new("warden.limits.outcome", "admitted")]
            } else {
                Vec::new()
            }
        }
        Stage::Tools => ctx
            .selection
            .as_ref()
            .map(|ranked| {
                let added = ranked.iter().filter(|(_, _, added)| *added);
                vec![KeyValue::new(
                    "warden.tools.offered",
                    strings(added.map(|(name, _, _)| name.as_str())),
                )]
            })
            .unwrap_or_default(),
        Stage::Read | Stage::Dispatch | Stage::Answer | Stage::Execute | Stage::Audit => Vec::new(),
    }
}

/// `warden.pii.findings.{TYPE}`: how many values of each type were found — in the
/// request (`request`), or in the request and the answer (`None`).
fn pii_findings(ctx: &RequestCtx, only: Option<&str>) -> Vec<KeyValue> {
    let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
    for found in &ctx.pii.found {
        let stage = found.stage.as_deref().unwrap_or("request");
        if only.is_none_or(|o| o == stage) {
            *by_type.entry(found.entity.as_str()).or_default() += found.count;
        }
    }
    by_type
        .into_iter()
        .map(|(entity, count)| {
            KeyValue::new(
                format!("warden.pii.findings.{entity}"),
                i64::try_from(count).unwrap_or(i64::MAX),
            )
        })
        .collect()
}
