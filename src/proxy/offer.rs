//! Stage 4b, offer tools: for a chat or Responses request whose rule has
//! `settings.tools.routing.mode: auto`, the registry tools the principal may use that
//! best match the latest user message (top `top_k` above `min_score`) are added to the
//! tools the client sent, as function tools in the request's own shape. The embedding runs off the async workers. What was offered,
//! with scores, goes into the record; nothing else of the message is kept.

use std::sync::Arc;

use super::Gateway;
use super::context::RequestCtx;
use super::rescue::Failure;
use serde_json::Value;

use crate::openai::ApiRequest;
use crate::openai::request::{FunctionDef, Tool as ApiTool};
use crate::openai::responses::content_text;
use crate::policy::{EndpointName, Facts, RoutingMode};
use crate::telemetry::metrics;

/// The latest user message's text (a Responses request's `input` string, or its last
/// user item's text).
fn latest_user_text(request: &ApiRequest) -> Option<String> {
    let text = match request {
        ApiRequest::Chat(chat) => chat
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .and_then(|m| m.content.as_ref())
            .map(|c| c.text()),
        ApiRequest::Responses(r) => match r.input.as_ref()? {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => items
                .iter()
                .rev()
                .find(|i| i.get("role").and_then(Value::as_str) == Some("user"))
                .map(|i| content_text(i.get("content"))),
            _ => None,
        },
        _ => None,
    };
    text.filter(|t| !t.trim().is_empty())
}

/// Adds the selected tools to `request`; true when it changed.
pub async fn offer(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    request: &mut ApiRequest,
    max_tokens: Option<u64>,
) -> Result<bool, Failure> {
    let Some(routing) = ctx
        .decision()
        .and_then(|d| d.settings.tools.as_ref())
        .and_then(|t| t.routing.clone())
        .filter(|r| r.mode == RoutingMode::Auto)
    else {
        return Ok(false);
    };
    let (Some(selector), Some(store)) = (gw.selector.clone(), gw.policy.clone()) else {
        return Ok(false);
    };
    let Some(query) = latest_user_text(request) else {
        return Ok(false);
    };
    let set = store.current();
    let principal = ctx.principal.clone().ok_or(Failure::Internal)?;
    let offered_by_client = ctx
        .parsed
        .as_ref()
        .map(|p| p.tools.clone())
        .unwrap_or_default();
    let model = request.model().to_string();
    let stream = request.is_stream();
    let endpoint = EndpointName::of(request.endpoint());
    let min = routing.min_score.unwrap_or(selector.min_score);
    let job_set = Arc::clone(&set);
    let started = std::time::Instant::now();
    let ranked = tokio::task::spawn_blocking(move || {
        let facts = Facts {
            principal: &principal,
            endpoint,
            model: Some(&model),
            tools: &offered_by_client,
            max_tokens,
            stream,
        };
        crate::routing::offer(
            &selector,
            &job_set,
            &facts,
            &query,
            min,
            Some(routing.top_k),
        )
    })
    .await
    .map_err(|_| Failure::Internal)?;
    let ranked = match ranked {
        Ok(r) => r,
        Err(e) => {
            // Selection is an offer, not a gate: the request goes on with the client's tools.
            tracing::warn!(request_id = %ctx.request_id, error = %e, "tool selection failed");
            metrics()
                .tool_selections
                .with_label_values(&["error"])
                .inc();
            return Ok(false);
        }
    };
    metrics()
        .tool_selection_seconds
        .with_label_values(&[] as &[&str])
        .observe(started.elapsed().as_secs_f64());
    let mut added = Vec::new();
    for r in &ranked {
        let Some(tool) = set.tools.get(&r.name) else {
            continue;
        };
        let def = &tool.def;
        let present = match &mut *request {
            ApiRequest::Chat(chat) => {
                let tools = chat.tools.get_or_insert_with(Vec::new);
                let present = tools
                    .iter()
                    .any(|t| t.function.as_ref().is_some_and(|f| f.name == r.name));
                if !present {
                    tools.push(ApiTool {
                        kind: "function".into(),
                        function: Some(FunctionDef {
                            name: def.name.clone(),
                            description: Some(def.description.clone()),
                            parameters: Some(def.parameters.clone()),
                            extra: serde_json::Map::new(),
                        }),
                        extra: serde_json::Map::new(),
                    });
                }
                present
            }
            ApiRequest::Responses(req) => {
                let tools = req.tools.get_or_insert_with(Vec::new);
                let present = tools
                    .iter()
                    .any(|t| t.get("name").and_then(Value::as_str) == Some(r.name.as_str()));
                if !present {
                    tools.push(serde_json::json!({"type": "function", "name": def.name,
                        "description": def.description, "parameters": def.parameters}));
                }
                present
            }
            _ => true,
        };
        if !present {
            added.push(r.name.clone());
        }
    }
    let outcome = if added.is_empty() { "none" } else { "offered" };
    metrics()
        .tool_selections
        .with_label_values(&[outcome])
        .inc();
    if let Some(parsed) = ctx.parsed.as_mut() {
        parsed.tools.extend(added.iter().cloned());
    }
    ctx.selection = Some(
        ranked
            .iter()
            .map(|r| (r.name.clone(), r.score, added.contains(&r.name)))
            .collect(),
    );
    Ok(!added.is_empty())
}
