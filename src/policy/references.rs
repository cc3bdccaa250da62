//! What the policy directory refers to in `warden.yaml`: a rule's `settings.pii` and
//! `settings.limits` must name profiles that are configured, and a tool's `backend` a
//! configured backend. A dangling name would otherwise fall back to another profile (or
//! to no redaction at all) or leave a tool unreachable, so it is an error at start-up, on
//! reload (the last good set stays) and in `warden policy check --config`.

use std::collections::BTreeSet;

use super::load::{LoadError, PolicySet};
use crate::config::Config;

/// The profile names a configuration defines; `None` when it has no such section.
#[derive(Debug, Clone, Default)]
pub struct Configured {
    pub pii: Option<BTreeSet<String>>,
    pub limits: Option<BTreeSet<String>>,
    /// The tool backends (`tools.backends`).
    pub tool_backends: BTreeSet<String>,
    /// Whether semantic tool selection is configured (`tools.selection`).
    pub selection: bool,
}

impl Configured {
    pub fn of(config: &Config) -> Configured {
        Configured {
            pii: config
                .pii
                .as_ref()
                .map(|p| p.profiles.keys().cloned().collect()),
            limits: config
                .limits
                .as_ref()
                .map(|l| l.profiles.keys().cloned().collect()),
            tool_backends: config
                .tools
                .as_ref()
                .map(|t| t.backends.keys().cloned().collect())
                .unwrap_or_default(),
            selection: config.tools.as_ref().is_some_and(|t| t.selection.is_some()),
        }
    }
}

/// One error per rule setting that names a profile the configuration lacks.
pub fn check(set: &PolicySet, configured: &Configured) -> Vec<LoadError> {
    let mut errors = Vec::new();
    for compiled in &set.rules {
        let rule = &compiled.rule;
        let settings = [
            ("pii", rule.settings.pii.as_deref(), &configured.pii),
            (
                "limits",
                rule.settings.limits.as_deref(),
                &configured.limits,
            ),
        ];
        for (key, named, known) in settings {
            let Some(name) = named else { continue };
            let problem = match known {
                None => format!("warden.yaml has no `{key}` section"),
                Some(names) if !names.contains(name) => {
                    let list: Vec<&str> = names.iter().map(String::as_str).collect();
                    format!("configured {key} profiles: {}", list.join(", "))
                }
                Some(_) => continue,
            };
            errors.push(LoadError {
                file: compiled.file.clone(),
                position: position(&compiled.file, &rule.name, key, name),
                message: format!(
                    "rule `{}`: settings.{key} names the profile `{name}`, which is not configured ({problem})",
                    rule.name
                ),
            });
        }
    }
    for compiled in &set.rules {
        let auto = compiled
            .rule
            .settings
            .tools
            .as_ref()
            .and_then(|t| t.routing.as_ref())
            .is_some_and(|r| r.mode == super::RoutingMode::Auto);
        if auto && !configured.selection {
            errors.push(LoadError {
                file: compiled.file.clone(),
                position: position(&compiled.file, &compiled.rule.name, "routing", "{mode: auto}")
                    .or_else(|| position(&compiled.file, &compiled.rule.name, "mode", "auto")),
                message: format!(
                    "rule `{}`: settings.tools.routing is `auto`, but warden.yaml has no `tools.selection` model",
                    compiled.rule.name
                ),
            });
        }
    }
    for tool in set.tools.iter() {
        let backend = &tool.def.backend;
        if configured.tool_backends.contains(backend) {
            continue;
        }
        let list: Vec<&str> = configured
            .tool_backends
            .iter()
            .map(String::as_str)
            .collect();
        let known = if list.is_empty() {
            "warden.yaml configures no `tools.backends`".to_string()
        } else {
            format!("configured backends: {}", list.join(", "))
        };
        errors.push(LoadError {
            file: tool.file.clone(),
            position: position(&tool.file, &tool.def.name, "backend", backend),
            message: format!(
                "tool `{}`: backend `{backend}` is not configured ({known})",
                tool.def.name
            ),
        });
    }
    errors
}

/// Where `key: value` is written after the rule's or tool's `name:` line (best effort).
fn position(file: &str, rule: &str, key: &str, value: &str) -> Option<(usize, usize)> {
    let text = std::fs::read_to_string(file).ok()?;
    let unquote = |s: &str| s.trim().trim_matches(['"', '\'']).to_string();
    let mut in_rule = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(name) = trimmed.strip_prefix("name:") {
            in_rule = unquote(name) == rule;
            if in_rule {
                continue;
            }
        }
        if in_rule
            && let Some(v) = trimmed.strip_prefix(&format!("{key}:"))
            && unquote(v) == value
        {
            return Some((i + 1, line.len() - line.trim_start().len() + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangling_profile_names_are_errors_with_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.yaml");
        std::fs::write(
            &file,
            "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: shoppers\n    effect: allow\n    settings:\n      pii: shop-strict\n      limits: default\n",
        )
        .unwrap();
        let set = super::super::load_dir(dir.path()).unwrap();
        let configured = Configured {
            pii: Some(["shopper-strict".to_string()].into()),
            limits: None,
            ..Configured::default()
        };
        let errors = check(&set, &configured);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].position, Some((7, 7)));
        assert!(
            errors[0].message.contains("`shop-strict`")
                && errors[0].message.contains("shopper-strict"),
            "{}",
            errors[0]
        );
        assert!(errors[1].message.contains("no `limits` section"));
        let fine = Configured {
            pii: Some(["shop-strict".to_string()].into()),
            limits: Some(["default".to_string()].into()),
            ..Configured::default()
        };
        assert!(check(&set, &fine).is_empty());
    }

    #[test]
    fn tools_must_name_configured_backends() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tools.yaml"),
            "apiVersion: warden/v1\nkind: ToolRegistry\ntools:\n  - name: get_price\n    description: Price of a product.\n    \
             parameters: {type: object, properties: {sku: {type: string}}}\n    risk: read\n    backend: pricing\n    \
             http: {method: GET, path: \"/prices/{sku}\"}\n",
        )
        .unwrap();
        let set = super::super::load_dir(dir.path()).unwrap();
        assert_eq!(set.tools.len(), 1);
        let none = Configured::default();
        let errors = check(&set, &none);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].position, Some((8, 5)), "{}", errors[0]);
        assert!(errors[0].message.contains("configures no `tools.backends`"));
        let other = Configured {
            tool_backends: ["catalog".to_string()].into(),
            ..Configured::default()
        };
        assert!(
            check(&set, &other)[0]
                .message
                .contains("configured backends: catalog")
        );
        let fine = Configured {
            tool_backends: ["pricing".to_string()].into(),
            ..Configured::default()
        };
        assert!(check(&set, &fine).is_empty());
    }

    #[test]
    fn automatic_routing_needs_a_selection_model() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("p.yaml"),
            "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: shop\n    effect: allow\n    settings:\n      tools:\n        routing:\n          mode: auto\n",
        )
        .unwrap();
        let set = super::super::load_dir(dir.path()).unwrap();
        let errors = check(&set, &Configured::default());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].position, Some((9, 11)), "{}", errors[0]);
        assert!(errors[0].message.contains("tools.selection"));
        let fine = Configured {
            selection: true,
            ..Configured::default()
        };
        assert!(check(&set, &fine).is_empty());
    }
}
