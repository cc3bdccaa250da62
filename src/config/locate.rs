//! Finds the line and column of a key path (`providers.azure`), a key or a key with its
//! value in block-style YAML (the configuration, policy and tool files), so validation
//! errors found after parsing can still point at the place to fix.

/// Returns the 1-based (line, column) of the deepest key of `path` found, following
/// indentation: the key itself, or its closest ancestor when the key is absent.
pub fn key_path(text: &str, path: &[String]) -> Option<(usize, usize)> {
    let mut depth = 0;
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for (idx, line) in text.lines().enumerate() {
        if depth == path.len() {
            break;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if parent_indent.is_some_and(|p| indent <= p) {
            return found; // left the parent's block without finding the next key
        }
        let key = trimmed
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(['"', '\'']);
        if path.get(depth).is_some_and(|want| key == want)
            && trimmed
                .get(key.len()..)
                .unwrap_or_default()
                .trim_start_matches(['"', '\''])
                .starts_with(':')
        {
            found = Some((idx + 1, indent + 1));
            parent_indent = Some(indent);
            depth += 1;
        }
    }
    found
}

/// The first line that holds `key:` (as a mapping key), 1-based.
pub fn key(text: &str, key: &str) -> Option<(usize, usize)> {
    key_from(text, key, 1)
}

/// The first line at or after `from` (1-based) that holds `key:`.
pub fn key_from(text: &str, key: &str, from: usize) -> Option<(usize, usize)> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find_map(|(i, line)| {
            let trimmed = line.trim_start().trim_start_matches("- ");
            trimmed
                .starts_with(&format!("{key}:"))
                .then(|| (i + 1, line.len() - trimmed.len() + 1))
        })
}

/// The last line whose `key:` has `value`, 1-based (duplicates are reported at the later one).
pub fn value(text: &str, key: &str, value: &str) -> Option<(usize, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let trimmed = line.trim_start().trim_start_matches("- ");
            let rest = trimmed.strip_prefix(&format!("{key}:"))?;
            let v = rest.trim().trim_matches(['"', '\'']);
            (v == value).then(|| (i + 1, line.len() - trimmed.len() + 1))
        })
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys() {
        let text = "a:\n  x: 1\nproviders:\n  # c\n  openai:\n    kind: x\n  azure:\n    kind: y\n";
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(key_path(text, &p(&["providers", "azure"])), Some((7, 3)));
        assert_eq!(key_path(text, &p(&["providers"])), Some((3, 1)));
        assert_eq!(key_path(text, &p(&["providers", "nope"])), Some((3, 1)));
        assert_eq!(key_path(text, &p(&["nope"])), None);
    }
}
