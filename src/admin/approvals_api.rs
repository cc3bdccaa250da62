//! The approval queue on the admin listener, for identified approvers — their own API
//! keys or tokens holding one of `tools.approvals.approver_roles`, never the shared admin
//! token: `GET /admin/v1/approvals` (the approver's tenant's approvals, newest first) and
//! `POST /admin/v1/approvals/{id}/approve` or `/reject`. An approver sees and decides only
//! their own tenant's approvals and never their own calls. Every decision, taken or
//! refused, is an audit record (`endpoint: approval_decision`).

use chrono::{SecondsFormat, Utc};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::usage_api::{Answer, error};
use crate::audit::record::{ApprovalDecision, RequestRecord};
use crate::auth::{AuthError, Principal};
use crate::gateway::Gateway;
use crate::limits::subject_id;
use crate::tools::approvals::{self, DecideError};

/// Who is asking, if they may decide approvals.
async fn approver(gw: &Gateway, headers: &HeaderMap) -> Result<Principal, Answer> {
    let credential = crate::auth::credential(headers);
    let principal = match gw.auth.authenticate(credential, None, None).await {
        Ok(p) => p,
        Err(AuthError::Unavailable(_)) => {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "auth_unavailable",
                "Cannot verify credentials now; retry later.",
            ));
        }
        Err(_) => {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "An approver's own API key or token is required.",
            ));
        }
    };
    let roles = gw
        .config
        .tools
        .as_ref()
        .map(|t| t.approvals.approver_roles.clone())
        .unwrap_or_default();
    if !principal.roles.iter().any(|r| roles.contains(r)) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "not_an_approver",
            "Deciding approvals needs an approver role.",
        ));
    }
    Ok(principal)
}

/// Serves `/admin/v1/approvals…`; `rest` is what follows `approvals`.
pub async fn serve(gw: &Gateway, method: &http::Method, rest: &str, headers: &HeaderMap) -> Answer {
    let principal = match approver(gw, headers).await {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let tenant = principal.tenant.as_deref();
    match (
        method,
        rest.trim_matches('/')
            .split('/')
            .collect::<Vec<_>>()
            .as_slice(),
    ) {
        (&http::Method::GET, [""]) => match gw.approvals.list(tenant).await {
            Ok(list) => {
                let now = approvals::now();
                let data: Vec<_> = list.iter().map(|a| a.view(now)).collect();
                (StatusCode::OK, json!({"object": "list", "data": data}))
            }
            Err(_) => unavailable(),
        },
        (&http::Method::POST, [id, action @ ("approve" | "reject")]) => {
            decide(gw, &principal, id, *action == "approve").await
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Use GET /admin/v1/approvals or POST /admin/v1/approvals/{id}/approve|reject.",
        ),
    }
}

fn unavailable() -> Answer {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "approvals_unavailable",
        "The approval queue cannot be reached; retry later.",
    )
}

async fn decide(gw: &Gateway, principal: &Principal, id: &str, approve: bool) -> Answer {
    let tenant = principal.tenant.as_deref();
    let name = crate::proxy::approval_display_name(gw, principal);
    let decided = gw
        .approvals
        .decide(tenant, id, approve, &subject_id(&principal.subject), &name)
        .await;
    let action = if approve { "approve" } else { "reject" };
    let (answer, outcome, tool) = match decided {
        Ok(a) => (
            (StatusCode::OK, a.view(approvals::now())),
            a.status.label().to_string(),
            a.tool,
        ),
        Err(DecideError::NotFound) => (
            error(
                StatusCode::NOT_FOUND,
                "approval_not_found",
                "No approval of that id in your tenant.",
            ),
            "not_found".into(),
            String::new(),
        ),
        Err(DecideError::OwnCall) => (
            error(
                StatusCode::FORBIDDEN,
                "own_call",
                "A requester can never decide their own call.",
            ),
            "own_call".into(),
            String::new(),
        ),
        Err(DecideError::Decided(state)) => (
            error(
                StatusCode::CONFLICT,
                "approval_decided",
                &format!("The approval is {state}: a decision changes nothing now."),
            ),
            format!("decided:{state}"),
            String::new(),
        ),
        Err(DecideError::Store) => (unavailable(), "unavailable".into(), String::new()),
    };
    if let Some(audit) = &gw.audit {
        let record = RequestRecord {
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            request_id: uuid::Uuid::new_v4().to_string(),
            tenant: principal.tenant.clone(),
            subject: Some(name),
            auth_method: Some(principal.method.label().to_string()),
            endpoint: "approval_decision".into(),
            status: answer.0.as_u16(),
            approval_decision: Some(ApprovalDecision {
                approval_id: id.chars().take(64).collect(),
                tool,
                action: action.into(),
                outcome,
            }),
            ..RequestRecord::default()
        };
        if audit.record(record).is_err() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "The audit log cannot record the decision; retry later.",
            );
        }
    }
    answer
}
