//! The documentation keeps up with the code: every key `warden.yaml` accepts (walked from
//! the configuration's JSON Schema, generated from its types) is described in
//! `docs/configuration.md`, and the docs link only to files that exist in the repository.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// Every key path of the schema: `a.b`, `a.NAME.c` for maps, `a[].b` for lists.
fn paths(schema: &Value, root: &Value, path: &str, out: &mut BTreeSet<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        if let Some(def) = root["$defs"].get(name) {
            paths(def, root, path, out);
        }
        return;
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for s in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            paths(s, root, path, out);
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, sub) in props {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            out.insert(p.clone());
            paths(sub, root, &p, out);
        }
    }
    if let Some(sub) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        paths(sub, root, &format!("{path}.NAME"), out);
    }
    if let Some(sub) = schema.get("items") {
        paths(sub, root, &format!("{path}[]"), out);
    }
}

fn config_keys() -> BTreeSet<String> {
    let schema = warden::config::Config::schema();
    let mut out = BTreeSet::new();
    paths(&schema, &schema, "", &mut out);
    out
}

/// Whether `doc` describes `path`: it names it (`` `path` ``), or a line naming its
/// parent or a nearer ancestor than its section (`` `ancestor… ``, a sibling row counts)
/// lists the key as a word.
fn documented(doc: &str, path: &str) -> bool {
    if doc.contains(&format!("`{path}`")) {
        return true;
    }
    let Some((parent, leaf)) = path.rsplit_once('.') else {
        return false;
    };
    let word = regex::Regex::new(&format!(r"\b{}\b", regex::escape(leaf))).unwrap();
    let mut ancestors = vec![parent.trim_end_matches("[]")];
    let mut rest = parent;
    while let Some((up, _)) = rest.rsplit_once('.') {
        if up.contains('.') {
            ancestors.push(up.trim_end_matches("[]"));
        }
        rest = up;
    }
    doc.lines().any(|line| {
        word.is_match(line) && ancestors.iter().any(|a| line.contains(&format!("`{a}")))
    })
}

#[test]
fn every_configuration_key_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    let keys = config_keys();
    assert!(keys.len() > 100, "{keys:?}");
    let missing: Vec<&String> = keys.iter().filter(|k| !documented(&doc, k)).collect();
    assert!(
        missing.is_empty(),
        "keys missing from docs/configuration.md:\n{}",
        missing
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_documentation_check_sees_a_missing_key() {
    let doc = "| `limits.profiles.NAME.requests[]` | none | `{limit, per, key}` |\n";
    assert!(documented(doc, "limits.profiles.NAME.requests[].limit"));
    assert!(!documented(doc, "limits.profiles.NAME.requests[].burst"));
    assert!(!documented(doc, "state.backend"));
    let section = "## `audit`\n| `audit.sink` | required | `{kind: file, dir}` |\n";
    assert!(documented(section, "audit.sink.dir"));
    assert!(!documented(section, "audit.sink.object_lock.mode"));
}

#[test]
fn docs_link_only_to_files_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let link = regex::Regex::new(r"\]\(([^)#\s]+)(#[^)]*)?\)").unwrap();
    let mut pages = vec![root.join("README.md"), root.join("CHANGELOG.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        pages.push(e.unwrap().path());
    }
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for c in link.captures_iter(&text) {
            let target = &c[1];
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let resolved = page.parent().unwrap().join(target);
            if !resolved.exists() {
                broken.push(format!("{}: {target}", page.display()));
            }
            assert!(
                !target.contains("../shared")
                    && !resolved.starts_with(root.parent().unwrap().join("shared")),
                "{}: {target} points outside the repository",
                page.display()
            );
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
