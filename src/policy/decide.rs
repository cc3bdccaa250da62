//! The decision for one principal and request: every rule is matched; a matching `deny`
//! wins over any `allow`; with no matching `allow` the request is denied by default.
//! A condition that fails to evaluate never grants access: an `allow` rule then does not
//! match and a `deny` rule does.

use serde_json::{Value, json};

use super::load::{CompiledRule, PolicySet};
use super::model::{AuthMethodName, EndpointName, RuleEffect, RuleSettings};
use crate::auth::claims::at_path;
use crate::auth::{AuthMethod, Principal};
use crate::condition::CelInput;

/// Name reported when no rule matched.
pub const DEFAULT_DENY: &str = "default-deny";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// What the policy decided, with the rule that decided it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub effect: Effect,
    pub rule: String,
    /// Non-sensitive explanation, safe to return to the client.
    pub reason: String,
    /// Settings of the allowing rule (empty when denied).
    pub settings: RuleSettings,
    /// Each offered tool with the deciding rule's verdict (empty when no `allow` rule
    /// matched).
    pub tools: Vec<(String, Effect)>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.effect == Effect::Allow
    }
}

/// The facts a decision is made on.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub principal: &'a Principal,
    pub endpoint: EndpointName,
    pub model: Option<&'a str>,
    pub tools: &'a [String],
    /// The output cap the request may use (the larger of `max_tokens` and
    /// `max_completion_tokens`, else the model's default); `None` for embeddings.
    pub max_tokens: Option<u64>,
    pub stream: bool,
}

impl PolicySet {
    pub fn decide(&self, facts: &Facts<'_>) -> Decision {
        // Built on the first condition that needs it, then shared.
        let mut input: Option<Result<CelInput, String>> = None;
        let mut first_allow: Option<&CompiledRule> = None;
        for rule in &self.rules {
            if !matches(rule, facts) {
                continue;
            }
            let deny = rule.rule.effect == RuleEffect::Deny;
            if let Some(cond) = &rule.rule.when {
                let vars = input.get_or_insert_with(|| cel_input(facts));
                let result = match vars {
                    Ok(vars) => cond.evaluate(vars),
                    Err(e) => Err(e.clone()),
                };
                match result {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => {
                        // CEL's error text can quote claim values, so only the rule is named.
                        tracing::warn!(rule = %rule.rule.name, "policy condition failed to evaluate");
                        if !deny {
                            continue;
                        }
                    }
                }
            }
            if deny {
                let reason = rule
                    .rule
                    .reason
                    .clone()
                    .unwrap_or_else(|| "denied by policy".into());
                return Decision {
                    effect: Effect::Deny,
                    rule: rule.rule.name.clone(),
                    reason,
                    settings: RuleSettings::default(),
                    tools: Vec::new(),
                };
            }
            first_allow.get_or_insert(rule);
        }
        match first_allow {
            Some(rule) => {
                let tools: Vec<(String, Effect)> = facts
                    .tools
                    .iter()
                    .map(|t| {
                        let effect = if tool_permitted(&rule.rule.settings, t) {
                            Effect::Allow
                        } else {
                            Effect::Deny
                        };
                        (t.clone(), effect)
                    })
                    .collect();
                if let Some((tool, _)) = tools.iter().find(|(_, e)| *e == Effect::Deny) {
                    return Decision {
                        effect: Effect::Deny,
                        rule: rule.rule.name.clone(),
                        reason: format!("tool `{tool}` is not permitted"),
                        settings: RuleSettings::default(),
                        tools,
                    };
                }
                Decision {
                    effect: Effect::Allow,
                    rule: rule.rule.name.clone(),
                    reason: "allowed".into(),
                    settings: rule.rule.settings.clone(),
                    tools,
                }
            }
            None => Decision {
                effect: Effect::Deny,
                rule: DEFAULT_DENY.into(),
                reason: "no policy rule allows this request".into(),
                settings: RuleSettings::default(),
                tools: Vec::new(),
            },
        }
    }

    /// Whether `principal` may call `model` on any model endpoint (for `/v1/models`), with
    /// the output cap a request that sets none has (`default_max_tokens`).
    pub fn may_use_model(
        &self,
        principal: &Principal,
        model: &str,
        default_max_tokens: u64,
    ) -> bool {
        [
            EndpointName::ChatCompletions,
            EndpointName::Completions,
            EndpointName::Embeddings,
            EndpointName::Responses,
        ]
        .into_iter()
        .any(|endpoint| {
            let facts = Facts {
                principal,
                endpoint,
                model: Some(model),
                tools: &[],
                max_tokens: (endpoint != EndpointName::Embeddings).then_some(default_max_tokens),
                stream: false,
            };
            self.decide(&facts).allowed()
        })
    }
}

fn matches(rule: &CompiledRule, facts: &Facts<'_>) -> bool {
    let m = &rule.rule.matches;
    let p = facts.principal;
    let any = |patterns: &Option<Vec<String>>, value: Option<&str>| match patterns {
        None => true,
        Some(list) => value.is_some_and(|v| list.iter().any(|pat| glob(pat, v))),
    };
    let any_of = |patterns: &Option<Vec<String>>, values: &[String]| match patterns {
        None => true,
        Some(list) => values.iter().any(|v| list.iter().any(|pat| glob(pat, v))),
    };
    any(&m.tenants, p.tenant.as_deref())
        && any(&m.subjects, Some(&p.subject))
        && any_of(&m.roles, &p.roles)
        && any_of(&m.scopes, &p.scopes)
        && any(&m.models, facts.model)
        && any_of(&m.tools, facts.tools)
        && m.auth_methods
            .as_ref()
            .is_none_or(|list| list.contains(&method_name(p.method)))
        && m.endpoints
            .as_ref()
            .is_none_or(|list| list.contains(&facts.endpoint))
        && m.claims.as_ref().is_none_or(|want| {
            want.iter()
                .all(|(path, expected)| at_path(&p.claims, path) == Some(expected))
        })
}

/// Whether a rule's tool permissions let the model be offered (and call) `tool`. A
/// provider-hosted tool (`builtin:{type}`) must be listed in `builtin` (none are by
/// default); other tools pass unless `allow` leaves them out.
pub fn tool_permitted(settings: &RuleSettings, tool: &str) -> bool {
    let perms = settings.tools.as_ref();
    let denied = perms.is_some_and(|p| p.deny.iter().any(|pat| glob(pat, tool)));
    if let Some(kind) = tool.strip_prefix(crate::openai::responses::BUILTIN_PREFIX) {
        return !denied && perms.is_some_and(|p| p.builtin.iter().any(|b| b == kind));
    }
    !denied
        && perms.is_none_or(|p| {
            p.allow
                .as_ref()
                .is_none_or(|allow| allow.iter().any(|pat| glob(pat, tool)))
        })
}

fn method_name(m: AuthMethod) -> AuthMethodName {
    match m {
        AuthMethod::Anonymous => AuthMethodName::Anonymous,
        AuthMethod::ApiKey => AuthMethodName::ApiKey,
        AuthMethod::Jwt => AuthMethodName::Jwt,
        AuthMethod::Introspection => AuthMethodName::Introspection,
        AuthMethod::Mtls => AuthMethodName::Mtls,
    }
}

fn cel_input(facts: &Facts<'_>) -> Result<CelInput, String> {
    let request = json!({
        "endpoint": facts.endpoint,
        "model": facts.model,
        "tools": facts.tools,
        // Both names carry the request's output cap, so a rule written with either sees it.
        "max_tokens": facts.max_tokens,
        "max_completion_tokens": facts.max_tokens,
        "stream": facts.stream,
    });
    let claims = Value::Object(facts.principal.claims.clone());
    CelInput::new(&[
        ("principal", &principal_value(facts.principal)),
        ("request", &request),
        ("claims", &claims),
    ])
}

/// The principal as CEL conditions see it (`principal.tenant`, `.roles`, …).
pub fn principal_value(p: &Principal) -> Value {
    json!({
        "tenant": p.tenant,
        "subject": p.subject,
        "roles": p.roles,
        "scopes": p.scopes,
        "auth_method": method_name(p.method),
    })
}

/// `*` matches any run of characters; everything else is literal.
pub fn glob(pattern: &str, value: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == value;
    };
    let Some(mut remaining) = value.strip_prefix(head) else {
        return false;
    };
    let mut pieces: Vec<&str> = rest.split('*').collect();
    let last = pieces.pop().unwrap_or("");
    for piece in pieces {
        match remaining.split_once(piece) {
            Some((_, after)) => remaining = after,
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns() {
        assert!(glob("gpt-4o*", "gpt-4o-mini"));
        assert!(glob("*", "anything"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abcdf"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(glob("*-mini", "gpt-4o-mini"));
        assert!(!glob("ab*ba", "aba"));
    }
}
