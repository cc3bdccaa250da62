//! Turning verified token claims into a [`Principal`] with the issuer's claim mapping.

use serde_json::{Map, Value};

use super::{AuthMethod, Principal};
use crate::config::ClaimMapping;

/// The value at a dot path (`realm_access.roles`).
pub fn at_path<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.get(part)?;
    }
    Some(current)
}

/// Strings at each path: arrays of strings, or space-separated strings (OAuth2 `scope`).
fn strings(claims: &Map<String, Value>, paths: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for path in paths {
        match at_path(claims, path) {
            Some(Value::String(s)) => out.extend(s.split_whitespace().map(str::to_string)),
            Some(Value::Array(items)) => {
                out.extend(items.iter().filter_map(Value::as_str).map(str::to_string))
            }
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Builds the principal; `None` when the subject claim is missing.
pub fn principal(
    mapping: &ClaimMapping,
    claims: &Map<String, Value>,
    method: AuthMethod,
    issuer: Option<String>,
) -> Option<Principal> {
    let subject = match at_path(claims, &mapping.subject)? {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let tenant = mapping
        .tenant
        .as_deref()
        .and_then(|p| at_path(claims, p))
        .and_then(Value::as_str)
        .map(str::to_string);
    let kept = if mapping.keep.is_empty() {
        claims.clone()
    } else {
        mapping
            .keep
            .iter()
            .filter_map(|k| claims.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    };
    Some(Principal {
        tenant,
        subject,
        method,
        roles: strings(claims, &mapping.roles),
        scopes: strings(claims, &mapping.scopes),
        claims: kept,
        issuer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_nested_roles_scopes_and_tenant() {
        let claims = json!({"sub": "u1", "org": {"tenant": "acme"}, "realm_access": {"roles": ["a", "b"]},
                            "groups": ["b", "c"], "scope": "chat embed"});
        let mapping = ClaimMapping {
            tenant: Some("org.tenant".into()),
            roles: vec!["realm_access.roles".into(), "groups".into()],
            keep: vec!["org".into()],
            ..ClaimMapping::default()
        };
        let p = principal(&mapping, claims.as_object().unwrap(), AuthMethod::Jwt, None).unwrap();
        assert_eq!(p.subject, "u1");
        assert_eq!(p.tenant.as_deref(), Some("acme"));
        assert_eq!(p.roles, vec!["a", "b", "c"]);
        assert_eq!(p.scopes, vec!["chat", "embed"]);
        assert_eq!(p.claims.keys().collect::<Vec<_>>(), vec!["org"]);
    }

    #[test]
    fn missing_subject_is_none() {
        let claims = json!({"scope": "x"});
        assert!(
            principal(
                &ClaimMapping::default(),
                claims.as_object().unwrap(),
                AuthMethod::Jwt,
                None
            )
            .is_none()
        );
    }

    #[test]
    fn claim_paths() {
        let claims = json!({"org": {"dept": "support"}, "tier": 2});
        let map = claims.as_object().unwrap();
        assert_eq!(at_path(map, "org.dept"), Some(&json!("support")));
        assert_eq!(at_path(map, "tier"), Some(&json!(2)));
        assert_eq!(at_path(map, "org.none"), None);
    }
}
