//! Loading a policy directory: every `*.yaml` / `*.yml` whose `kind` is `Policy`,
//! `Pricing` or `ToolRegistry` (tools are checked by `tools`), in file name order. Errors
//! carry `file:line:column`; the set's SHA-256 digest identifies exactly which policy,
//! price and tool text decided a request.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::model::{PolicyFile, Rule};
use crate::config::locate::{
    key as locate_key, key_from as locate_key_from, value as locate_value,
};
use crate::config::yaml_error;

/// A rule and the file it came from.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub rule: Rule,
    pub file: String,
}

/// A validated, immutable set of policies.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub rules: Vec<CompiledRule>,
    /// Hex SHA-256 over the policy files' names and contents.
    pub digest: String,
    pub files: Vec<String>,
    /// Model prices from the directory's `kind: Pricing` files.
    pub pricing: super::pricing::Pricing,
    /// Tools from the directory's `kind: ToolRegistry` files.
    pub tools: std::sync::Arc<crate::tools::Registry>,
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((l, c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Loads and validates every policy file of `dir`; returns all errors found.
pub fn load_dir(dir: &Path) -> Result<PolicySet, Vec<LoadError>> {
    let dir_name = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![LoadError {
            file: dir_name.clone(),
            position: None,
            message: format!("cannot read directory: {e}"),
        }]
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    paths.sort();
    let mut errors = Vec::new();
    let mut sources = Vec::new();
    for path in &paths {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => sources.push((file, text)),
            Err(e) => errors.push(LoadError {
                file,
                position: None,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    let named: Vec<(&str, &str)> = sources
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    match load_sources(&named) {
        Ok(set) if errors.is_empty() => Ok(set),
        Ok(_) => Err(errors),
        Err(mut more) => {
            errors.append(&mut more);
            Err(errors)
        }
    }
}

/// Adds one file (its name and text) to the set's digest.
fn digest_file(hasher: &mut Sha256, base: &str, text: &str) {
    hasher.update(base.as_bytes());
    hasher.update([0]);
    hasher.update(text.as_bytes());
    hasher.update([0]);
}

/// Validates policy texts given as `(file name, content)`; non-`Policy` kinds are skipped.
pub fn load_sources(sources: &[(&str, &str)]) -> Result<PolicySet, Vec<LoadError>> {
    let mut errors = Vec::new();
    let mut set = PolicySet::default();
    let mut hasher = Sha256::new();
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut tools = crate::tools::Registry::default();
    for (file, text) in sources {
        let err = |position, message: String| LoadError {
            file: file.to_string(),
            position,
            message,
        };
        let head: serde_yaml_ng::Value = match serde_yaml_ng::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let (position, message) = yaml_error(&e);
                errors.push(err(position, message));
                continue;
            }
        };
        let base = Path::new(file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(file);
        match head.get("kind").and_then(|k| k.as_str()) {
            Some("Policy") => {}
            Some("Pricing") => {
                let added = serde_yaml_ng::from_str::<super::pricing::PricingFile>(text)
                    .map_err(|e| yaml_error(&e))
                    .and_then(|f| {
                        set.pricing
                            .add(f)
                            .map_err(|m| (locate_key(text, "models"), m))
                    });
                match added {
                    Ok(()) => {
                        // Prices decide budgets: they are part of what the digest names.
                        digest_file(&mut hasher, base, text);
                        set.files.push(file.to_string());
                    }
                    Err((position, message)) => errors.push(err(position, message)),
                }
                continue;
            }
            Some("ToolRegistry") => {
                match tools.add_file(file, text) {
                    Ok(()) => {
                        // Tools decide what a model may call: the digest names them.
                        digest_file(&mut hasher, base, text);
                        set.files.push(file.to_string());
                    }
                    Err(found) => {
                        errors.extend(found.into_iter().map(|e| err(e.position, e.message)))
                    }
                }
                continue;
            }
            Some(_) => continue, // other kinds (tests) have their own loaders
            None => {
                errors.push(err(
                    Some((1, 1)),
                    "missing `kind` (expected `Policy`, `Pricing` or `ToolRegistry`)".into(),
                ));
                continue;
            }
        }
        let policy: PolicyFile = match serde_yaml_ng::from_str(text) {
            Ok(p) => p,
            Err(e) => {
                let (mut position, message) = yaml_error(&e);
                if message.contains("CEL expression") {
                    // serde reports the enclosing rule; point at its `when:` instead.
                    position = position
                        .and_then(|(line, _)| locate_key_from(text, "when", line))
                        .or(position);
                }
                errors.push(err(position, message));
                continue;
            }
        };
        if policy.rules.is_empty() {
            errors.push(err(
                locate_key(text, "rules"),
                "`rules` must not be empty".into(),
            ));
        }
        for rule in &policy.rules {
            let name = rule.name.trim();
            if name.is_empty() {
                errors.push(err(
                    locate_key(text, "name"),
                    "rule `name` must not be empty".into(),
                ));
                continue;
            }
            if let Some(other) = seen.get(name) {
                errors.push(err(
                    locate_value(text, "name", name),
                    format!("duplicate rule name `{name}` (also defined in {other})"),
                ));
                continue;
            }
            let steps = rule.settings.tools.as_ref().and_then(|t| t.max_steps);
            if steps.is_some_and(|n| !(1..=32).contains(&n)) {
                errors.push(err(
                    locate_key(text, "max_steps"),
                    format!("rule `{name}`: settings.tools.max_steps must be 1 to 32"),
                ));
            }
            seen.insert(name.to_string(), file.to_string());
            set.rules.push(CompiledRule {
                rule: rule.clone(),
                file: file.to_string(),
            });
        }
        digest_file(&mut hasher, base, text);
        set.files.push(file.to_string());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    set.digest = hex::encode(hasher.finalize());
    set.tools = std::sync::Arc::new(tools);
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: a\n    effect: allow\n";

    #[test]
    fn loads_and_digests() {
        let set = load_sources(&[("p/a.yaml", GOOD)]).unwrap();
        assert_eq!(set.rules.len(), 1);
        assert_eq!(set.digest.len(), 64);
        let other = load_sources(&[("p/a.yaml", &GOOD.replace("name: a", "name: b"))]).unwrap();
        assert_ne!(set.digest, other.digest);
    }

    #[test]
    fn reports_positions() {
        let bad_effect =
            "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: a\n    effect: maybe\n";
        let e = &load_sources(&[("x.yaml", bad_effect)]).unwrap_err()[0];
        assert_eq!(e.position, Some((5, 13)), "{e}");
        assert!(e.message.contains("unknown variant `maybe`"), "{e}");

        let bad_cel = "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: a\n    effect: allow\n    when: \"principal.tenant ==\"\n";
        let e = &load_sources(&[("x.yaml", bad_cel)]).unwrap_err()[0];
        assert_eq!(e.position.map(|p| p.0), Some(6), "{e}");
        assert!(e.message.contains("CEL"), "{e}");

        let no_steps = format!("{GOOD}    settings:\n      tools:\n        max_steps: 0\n");
        let e = &load_sources(&[("x.yaml", &no_steps)]).unwrap_err()[0];
        assert_eq!(e.position.map(|p| p.0), Some(8), "{e}");
        assert!(e.message.contains("max_steps must be 1 to 32"), "{e}");

        let bad_version = GOOD.replace("warden/v1", "warden/v2");
        let e = &load_sources(&[("x.yaml", &bad_version)]).unwrap_err()[0];
        assert_eq!(e.position.map(|p| p.0), Some(1), "{e}");
    }

    #[test]
    fn duplicate_rule_names_across_files() {
        let errors = load_sources(&[("a.yaml", GOOD), ("b.yaml", GOOD)]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "b.yaml:4:5: duplicate rule name `a` (also defined in a.yaml)"
        );
    }

    #[test]
    fn other_kinds_are_skipped() {
        let test_file = "apiVersion: warden/v1\nkind: PolicyTest\ncases: []\n";
        let set = load_sources(&[("a.yaml", GOOD), ("t.yaml", test_file)]).unwrap();
        assert_eq!(set.files, vec!["a.yaml"]);
    }
}
