//! The shape of the code base, checked: the top-level modules of `src/` depend on each
//! other without cycles (`crate::X` references outside test modules), so each can be read,
//! tested and replaced on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Top-level module → the top-level modules it uses.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let name = name.strip_suffix(".rs").unwrap_or(&name).to_string();
            (name != "main" && name != "lib").then_some(name)
        })
        .collect();
    let reference = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources(&src) {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if !modules.contains(&top) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Test modules come last in every file; their imports do not count.
        let code = text
            .find("\n#[cfg(test)]\nmod tests")
            .map_or(text.as_str(), |at| &text[..at]);
        let uses = deps.entry(top.clone()).or_default();
        for c in reference.captures_iter(code) {
            let used = c[1].to_string();
            if used != top && modules.contains(&used) {
                uses.insert(used);
            }
        }
    }
    deps
}

/// A path of dependencies from `from` back to `to`, if there is one.
fn path(
    deps: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if from == to {
        return Some(vec![to.to_string()]);
    }
    for next in deps.get(from).into_iter().flatten() {
        if seen.insert(next.clone())
            && let Some(mut rest) = path(deps, next, to, seen)
        {
            rest.insert(0, from.to_string());
            return Some(rest);
        }
    }
    None
}

#[test]
fn top_level_modules_have_no_import_cycles() {
    let deps = dependencies();
    assert!(deps.len() > 10, "modules found: {:?}", deps.keys());
    let mut cycles = Vec::new();
    for (module, uses) in &deps {
        for used in uses {
            if let Some(back) = path(&deps, used, module, &mut BTreeSet::new()) {
                cycles.push(format!("{module} -> {}", back.join(" -> ")));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_check_sees_cycles() {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    deps.entry("a".into()).or_default().insert("b".into());
    deps.entry("b".into()).or_default().insert("c".into());
    deps.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        path(&deps, "b", "a", &mut BTreeSet::new()),
        Some(vec!["b".into(), "c".into(), "a".into()])
    );
    deps.get_mut("c").unwrap().clear();
    assert_eq!(path(&deps, "b", "a", &mut BTreeSet::new()), None);
}

#[test]
fn the_protocol_and_leaf_modules_depend_on_no_stage() {
    let deps = dependencies();
    // The OpenAI protocol types are data: they know no stage.
    assert_eq!(deps.get("openai"), Some(&BTreeSet::new()), "{deps:?}");
    // The shared leaves (the outbound client, the gateway's state) sit below the proxy
    // and the admin API, never above them.
    for leaf in ["http_client", "gateway"] {
        let uses = deps.get(leaf).cloned().unwrap_or_default();
        for upper in ["proxy", "admin", "server"] {
            assert!(!uses.contains(upper), "{leaf} uses {upper}: {uses:?}");
        }
    }
}

#[test]
fn stages_answer_errors_only_through_rescue() {
    // Domain modules fail with their own errors; only `proxy::rescue` turns them into
    // OpenAI's error shape (the protocol's own validation lives in `openai`).
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    for dir in [
        "auth", "pii", "limits", "provider", "tokens", "policy", "audit",
    ] {
        for file in sources(&src.join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            if text.contains("ApiError") {
                offenders.push(file.display().to_string());
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:?}");
}
