//! Stage 4, authorize: the policy decision for this principal and request. The
//! output cap a policy sees is what the request may really produce: the larger of its two
//! cap fields, or the model's `default_max_tokens` when it sets neither.

use super::Gateway;
use super::context::{Authorized, Parsed};
use super::rescue::Failure;
use crate::auth::Principal;
use crate::openai::ApiRequest;
use crate::policy::{EndpointName, Facts};
use crate::provider::ModelRoute;
use crate::telemetry::metrics;

/// The decision, or `None` without a policy.
pub fn decide(
    gw: &Gateway,
    principal: Option<&Principal>,
    parsed: &Parsed,
    request: &ApiRequest,
    model: &ModelRoute,
) -> Option<Authorized> {
    let (store, principal) = (gw.policy.as_ref()?, principal?);
    let set = store.current();
    let facts = Facts {
        principal,
        endpoint: EndpointName::of(request.endpoint()),
        model: Some(request.model()),
        tools: &parsed.tools,
        max_tokens: match request {
            ApiRequest::Embedding(_) => None,
            _ => Some(
                request
                    .max_output_tokens()
                    .unwrap_or(model.default_max_tokens),
            ),
        },
        stream: parsed.stream,
    };
    Some(decided(&set, &facts))
}

/// The set's decision on `facts`, counted by effect and rule.
fn decided(set: &crate::policy::PolicySet, facts: &Facts<'_>) -> Authorized {
    let decision = set.decide(facts);
    let effect = if decision.allowed() { "allow" } else { "deny" };
    metrics()
        .policy_decisions
        .with_label_values(&[effect, decision.rule.as_str()])
        .inc();
    Authorized {
        decision,
        policy_digest: set.digest.clone(),
    }
}

/// The decision on running `tool` through Warden (`tools_invoke`) with the policy set
/// that holds the tool.
pub fn decide_tool(
    set: &crate::policy::PolicySet,
    principal: &Principal,
    tool: &str,
) -> Authorized {
    let tools = [tool.to_string()];
    let facts = Facts {
        principal,
        endpoint: EndpointName::ToolsInvoke,
        model: None,
        tools: &tools,
        max_tokens: None,
        stream: false,
    };
    decided(set, &facts)
}

/// The decision on reading or deleting a stored response (endpoint `responses`) of
/// `model`; `None` without a policy.
pub fn decide_stored(
    gw: &Gateway,
    principal: Option<&Principal>,
    model: &str,
) -> Option<Authorized> {
    let (store, principal) = (gw.policy.as_ref()?, principal?);
    let facts = Facts {
        principal,
        endpoint: EndpointName::Responses,
        model: Some(model),
        tools: &[],
        max_tokens: None,
        stream: false,
    };
    Some(decided(&store.current(), &facts))
}

/// The refusal of a denying decision.
pub fn denial(authorized: &Authorized) -> Option<Failure> {
    let d = &authorized.decision;
    (!d.allowed()).then(|| Failure::Denied {
        rule: d.rule.clone(),
        reason: d.reason.clone(),
    })
}
