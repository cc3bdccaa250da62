//! `warden policy test`: runs the table-driven cases of `DIR/tests/*.yaml` (kind
//! `PolicyTest`) against the policy set of `DIR`, like `opa test`.

use std::path::Path;

use super::decide::{Effect, Facts};
use super::load::{LoadError, PolicySet};
use super::model::{ApprovalExpectation, AuthMethodName, RuleEffect, TestCase, TestFile};
use crate::auth::{AuthMethod, Principal};

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub passed: bool,
    /// What differed, for failures.
    pub detail: String,
}

/// Loads the test files under `dir/tests` and runs every case.
pub fn run(set: &PolicySet, dir: &Path) -> Result<Vec<CaseResult>, Vec<LoadError>> {
    let tests_dir = dir.join("tests");
    let mut paths: Vec<_> = std::fs::read_dir(&tests_dir)
        .map_err(|e| {
            vec![LoadError {
                file: tests_dir.display().to_string(),
                position: None,
                message: format!("cannot read test directory: {e}"),
            }]
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    paths.sort();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(LoadError {
                    file,
                    position: None,
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let parsed: TestFile = match serde_yaml_ng::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                let (position, message) = crate::config::yaml_error(&e);
                errors.push(LoadError {
                    file,
                    position,
                    message,
                });
                continue;
            }
        };
        for case in &parsed.cases {
            results.push(run_case(set, &file, case));
        }
    }
    if errors.is_empty() {
        Ok(results)
    } else {
        Err(errors)
    }
}

fn run_case(set: &PolicySet, file: &str, case: &TestCase) -> CaseResult {
    let p = &case.principal;
    let principal = Principal {
        tenant: p.tenant.clone(),
        subject: p.subject.clone().unwrap_or_else(|| "test-subject".into()),
        method: match p.auth_method.unwrap_or(AuthMethodName::Jwt) {
            AuthMethodName::Anonymous => AuthMethod::Anonymous,
            AuthMethodName::ApiKey => AuthMethod::ApiKey,
            AuthMethodName::Jwt => AuthMethod::Jwt,
            AuthMethodName::Introspection => AuthMethod::Introspection,
            AuthMethodName::Mtls => AuthMethod::Mtls,
        },
        roles: p.roles.clone(),
        scopes: p.scopes.clone(),
        claims: p.claims.clone(),
        issuer: None,
    };
    let facts = Facts {
        principal: &principal,
        endpoint: case.request.endpoint,
        model: case.request.model.as_deref(),
        tools: &case.request.tools,
        max_tokens: case.request.max_tokens,
        stream: case.request.stream,
    };
    let decision = set.decide(&facts);
    let mut problems = Vec::new();
    let want = match case.expect.decision {
        RuleEffect::Allow => Effect::Allow,
        RuleEffect::Deny => Effect::Deny,
    };
    if decision.effect != want {
        problems.push(format!(
            "decision {:?}, expected {:?}",
            decision.effect, want
        ));
    }
    if let Some(rule) = &case.expect.rule
        && &decision.rule != rule
    {
        problems.push(format!("rule `{}`, expected `{rule}`", decision.rule));
    }
    if let Some(fragment) = &case.expect.reason_contains
        && !decision.reason.contains(fragment.as_str())
    {
        problems.push(format!("reason `{}` lacks `{fragment}`", decision.reason));
    }
    if let Some(settings) = &case.expect.settings
        && &decision.settings != settings
    {
        problems.push(format!(
            "settings {:?}, expected {settings:?}",
            decision.settings
        ));
    }
    if let Some(want) = case.expect.approval {
        match approval_problem(set, case, &principal, want) {
            Ok(()) => {}
            Err(problem) => problems.push(problem),
        }
    }
    CaseResult {
        file: file.to_string(),
        name: case.name.clone(),
        passed: problems.is_empty(),
        detail: problems.join("; "),
    }
}

/// Checks `expect.approval` against the tool's approval condition.
fn approval_problem(
    set: &PolicySet,
    case: &TestCase,
    principal: &Principal,
    want: ApprovalExpectation,
) -> Result<(), String> {
    let [tool] = case.request.tools.as_slice() else {
        return Err("`expect.approval` needs exactly one tool in `request.tools`".into());
    };
    let Some(tool) = set.tools.get(tool) else {
        return Err(format!(
            "`expect.approval`: no tool `{tool}` in the registry"
        ));
    };
    let args = case.request.arguments.clone().unwrap_or_default();
    let waits = tool.needs_approval(&args, &super::principal_value(principal), &principal.claims);
    let expected = want == ApprovalExpectation::Required;
    if waits == expected {
        Ok(())
    } else if waits {
        Err("the call waits for approval, expected it not to".into())
    } else {
        Err("the call runs without approval, expected it to wait".into())
    }
}
