//! The approval step of a tool call (`invoke`): a `high` call whose approval condition
//! holds either runs under an approval a person granted for exactly this call (claimed
//! once, on whichever replica sees it first), or waits — a pending approval is stored
//! (or the existing one for the same binding is named again) and the client gets 202.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Gateway;
use super::context::{ApprovalRef, RequestCtx};
use super::rescue::Failure;
use crate::auth::{AuthMethod, Principal};
use crate::limits::subject_id;
use crate::policy::PolicySet;
use crate::tools::Tool;
use crate::tools::approvals::{self, Approval, Binding, Status};

/// What the call does next.
pub enum Gate {
    /// Run it; `Some` when it runs under (and has claimed) an approval.
    Run(Option<Approval>),
    /// It waits for a person.
    Wait(Approval),
}

/// Why an approval-bound call neither runs nor waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A person rejected this call.
    Rejected,
    /// Another request is running it right now.
    InUse,
    /// The approval queue cannot be used (state store down, or no shared key).
    Unavailable,
}

/// How principals are named in approvals: API key ids as they are, token subjects
/// pseudonymized as the audit log writes them.
pub fn display_name(gw: &Gateway, p: &Principal) -> String {
    match (p.method, &gw.audit) {
        (AuthMethod::ApiKey | AuthMethod::Anonymous, _) => p.subject.clone(),
        (_, Some(audit)) => audit.pseudonymize(p.tenant.as_deref(), &p.subject),
        (_, None) => subject_id(&p.subject),
    }
}

/// SHA-256 of the deciding rule's definition.
fn rule_digest(set: &PolicySet, rule: &str) -> String {
    let def = set
        .rules
        .iter()
        .find(|r| r.rule.name == rule)
        .and_then(|r| serde_json::to_vec(&r.rule).ok())
        .unwrap_or_default();
    hex::encode(Sha256::digest(&def))
}

pub async fn gate(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    set: &PolicySet,
    tool: &Tool,
    args: &Map<String, Value>,
) -> Result<Gate, Failure> {
    let principal = ctx.principal.as_ref().ok_or(Failure::Internal)?;
    let as_cel = crate::policy::principal_value(principal);
    if !tool.needs_approval(args, &as_cel, &principal.claims) {
        return Ok(Gate::Run(None));
    }
    if !gw.approvals.usable() {
        return Err(Failure::Approval(Refusal::Unavailable));
    }
    let rule = ctx.decision().map(|d| d.rule.clone()).unwrap_or_default();
    let tenant = principal.tenant.clone();
    let requester_id = subject_id(&principal.subject);
    let binding = Binding {
        tenant: tenant.as_deref(),
        requester_id: &requester_id,
        tool: &tool.def.name,
        arguments: args,
        tool_digest: &tool.digest,
        rule: &rule,
        rule_digest: &rule_digest(set, &rule),
    }
    .digest();
    let unavailable = |_| Failure::Approval(Refusal::Unavailable);
    let found = gw
        .approvals
        .find(tenant.as_deref(), &binding)
        .await
        .map_err(unavailable)?;
    let now = approvals::now();
    match found {
        Some(a) if !a.expired(now) && matches!(a.status, Status::Approved | Status::Executing) => {
            // A claim is stale once the tool's timeout has long passed.
            let stale = std::time::Duration::from_millis(tool.def.timeout_ms)
                + std::time::Duration::from_secs(30);
            if !gw.approvals.claim(&a, stale).await.map_err(unavailable)? {
                return Err(Failure::Approval(Refusal::InUse));
            }
            note(ctx, &a, Status::Executing);
            return Ok(Gate::Run(Some(a)));
        }
        Some(a) if !a.expired(now) && a.status == Status::Pending => {
            note(ctx, &a, Status::Pending);
            return Ok(Gate::Wait(a));
        }
        Some(a) if !a.expired(now) && a.status == Status::Rejected => {
            note(ctx, &a, Status::Rejected);
            return Err(Failure::Approval(Refusal::Rejected));
        }
        // None, expired, or already run: this call needs a new approval.
        _ => {}
    }
    let expires = tool
        .def
        .approval
        .as_ref()
        .map_or(86_400, |a| a.expires_seconds);
    let preview = preview(gw, ctx, args).await;
    let principal = ctx.principal.as_ref().ok_or(Failure::Internal)?;
    let approval = Approval {
        id: format!("apr_{}", uuid::Uuid::new_v4().simple()),
        tool: tool.def.name.clone(),
        tenant,
        requester: display_name(gw, principal),
        requester_id,
        binding,
        rule,
        preview,
        status: Status::Pending,
        created_at: now,
        expires_at: now + i64::try_from(expires).unwrap_or(86_400),
        decided_by: None,
        decided_at: None,
        claimed_at: None,
    };
    gw.approvals.create(&approval).await.map_err(unavailable)?;
    if let Some(hook) = &gw.approval_webhook {
        hook.announce(&approval);
    }
    note(ctx, &approval, Status::Pending);
    Ok(Gate::Wait(approval))
}

/// Marks how a claimed approval's call ended.
pub async fn finish(gw: &Gateway, ctx: &mut RequestCtx, approval: &Approval, ran: bool) {
    if gw.approvals.finish(approval, ran).await.unwrap_or(false) {
        note(
            ctx,
            approval,
            if ran {
                Status::Executed
            } else {
                Status::Approved
            },
        );
    }
}

fn note(ctx: &mut RequestCtx, a: &Approval, status: Status) {
    if let Some(run) = ctx.tool.as_mut() {
        run.approval = Some(ApprovalRef {
            id: a.id.clone(),
            status: status.label(),
        });
    }
}

/// The arguments as the rule's PII profile leaves them (patterns only), for the
/// approver; as they are without a profile.
async fn preview(gw: &Gateway, ctx: &RequestCtx, args: &Map<String, Value>) -> Value {
    let value = Value::Object(args.clone());
    let tenant = ctx.principal.as_ref().and_then(|p| p.tenant.as_deref());
    match super::redaction::profile(gw, ctx) {
        None => value,
        Some(profile) => match gw.pii.redact_result(profile, tenant, value, false).await {
            Ok(r) => r.value,
            Err(_) => Value::String("[withheld]".into()),
        },
    }
}
