//! The admin API for usage and limits (`/admin/v1/*` on the admin listener), protected by
//! the `admin_token` bearer token: `GET /admin/v1/usage?tenant=…` (a tenant's usage today
//! and this month per model, and its budgets used/remaining) and
//! `GET /admin/v1/limits?key=tenant:acme,model:gpt-4o` (every limit counted by those key
//! parts, without charging anything; a model or route the key leaves open is listed for
//! each configured value).

use std::collections::HashMap;

use http::StatusCode;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::gateway::Gateway;
use crate::limits::{KeyFacts, LimitState, subject_id};

/// An answer: status and JSON body.
pub type Answer = (StatusCode, Value);

pub fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    let kind = match status {
        StatusCode::UNAUTHORIZED => "authentication_error",
        StatusCode::FORBIDDEN => "permission_error",
        StatusCode::SERVICE_UNAVAILABLE => "api_error",
        _ => "invalid_request_error",
    };
    (
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

/// Checks the bearer token against `admin_token`.
pub fn authorize(gw: &Gateway, authorization: Option<&str>) -> Result<(), Answer> {
    let Some(expected) = gw.config.admin_token.as_deref().filter(|t| !t.is_empty()) else {
        return Err(error(
            StatusCode::FORBIDDEN,
            "admin_api_disabled",
            "The admin API is disabled: set `admin_token` in the configuration.",
        ));
    };
    let given = authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_token",
            "A valid admin bearer token is required.",
        ))
    }
}

fn params(query: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `GET /admin/v1/usage?tenant=…`
pub async fn usage(gw: &Gateway, query: Option<&str>) -> Answer {
    let params = params(query);
    let Some(tenant) = params.get("tenant").filter(|t| !t.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing_tenant",
            "Missing required query parameter: 'tenant'.",
        );
    };
    let facts = KeyFacts {
        tenant: Some(tenant),
        ..Default::default()
    };
    let usage = gw.limits.usage(tenant).await;
    let budgets = gw.limits.inspect(&facts).await;
    match (usage, budgets) {
        (Ok(usage), Ok(limits)) => {
            let budgets: Vec<LimitState> =
                limits.into_iter().filter(|l| l.kind == "budget").collect();
            (
                StatusCode::OK,
                json!({
                    "tenant": tenant,
                    "day": usage.day,
                    "month": usage.month,
                    "today": usage.today,
                    "this_month": usage.this_month,
                    "budgets": budgets,
                }),
            )
        }
        _ => unavailable(),
    }
}

fn unavailable() -> Answer {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "limit_store_unavailable",
        "The limit store cannot be read right now.",
    )
}

/// `GET /admin/v1/limits?key=part:value,…`
pub async fn limits(gw: &Gateway, query: Option<&str>) -> Answer {
    let params = params(query);
    let Some(key) = params.get("key").filter(|k| !k.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing_key",
            "Missing required query parameter: 'key' (e.g. tenant:acme or api_key:app-1,model:gpt-4o).",
        );
    };
    let mut parts: HashMap<&str, String> = HashMap::new();
    for pair in key.split(',') {
        match pair.split_once(':') {
            Some((name @ ("tenant" | "subject" | "api_key" | "model" | "route" | "ip"), value))
                if !value.is_empty() =>
            {
                parts.insert(name, value.to_string());
            }
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_key",
                    "'key' is a comma-separated list of part:value, with parts tenant, subject, api_key, model, route or ip.",
                );
            }
        }
    }
    let models: Vec<String> = match parts.get("model") {
        Some(m) => vec![m.clone()],
        None => gw.upstreams.model_names.clone(),
    };
    let routes: Vec<&str> = match parts.get("route") {
        Some(r) => vec![r.as_str()],
        None => vec!["chat_completions", "completions", "embeddings"],
    };
    let mut out: Vec<LimitState> = Vec::new();
    for model in &models {
        for route in &routes {
            let facts = KeyFacts {
                tenant: parts.get("tenant").map(String::as_str),
                subject: parts.get("subject").map(|s| subject_id(s)),
                api_key: parts.get("api_key").map(String::as_str),
                model: Some(model),
                route,
                client_ip: parts.get("ip").cloned(),
            };
            match gw.limits.inspect(&facts).await {
                Ok(states) => {
                    for s in states {
                        if !out.iter().any(|o| same_counter(o, &s)) {
                            out.push(s);
                        }
                    }
                }
                Err(_) => return unavailable(),
            }
        }
    }
    let key: serde_json::Map<String, Value> = parts
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect();
    (StatusCode::OK, json!({"key": key, "limits": out}))
}

fn same_counter(a: &LimitState, b: &LimitState) -> bool {
    a.profile == b.profile
        && a.kind == b.kind
        && a.name == b.name
        && a.per == b.per
        && a.key == b.key
        && a.limit == b.limit
}
