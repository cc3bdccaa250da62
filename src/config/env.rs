//! `${VAR}` / `${VAR:-default}` substitution in config text, with `$$` for a literal `$`.
//! Errors carry the line and column of the reference and the variable's name, never a value.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubstError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Replaces every `${NAME}` with `lookup(NAME)`; `${NAME:-fallback}` uses the fallback
/// when the variable is unset or empty.
pub fn substitute(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, SubstError> {
    let mut out = String::with_capacity(text.len());
    for (idx, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        let mut col = 1;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            col += rest[..pos].chars().count();
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
                col += 2;
                continue;
            }
            let Some(body) = after.strip_prefix('{') else {
                out.push('$');
                rest = after;
                col += 1;
                continue;
            };
            let err = |message: String| SubstError {
                line: idx + 1,
                column: col,
                message,
            };
            let Some(end) = body.find('}') else {
                return Err(err("unterminated `${` reference".into()));
            };
            let inner = &body[..end];
            let (name, fallback) = match inner.split_once(":-") {
                Some((n, f)) => (n, Some(f)),
                None => (inner, None),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(err(format!(
                    "`${{{inner}}}` is not a valid variable reference"
                )));
            }
            match (lookup(name).filter(|v| !v.is_empty()), fallback) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(f)) => out.push_str(f),
                (None, None) => {
                    return Err(err(format!("environment variable `{name}` is not set")));
                }
            }
            col += 3 + inner.chars().count();
            rest = &body[end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-123".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_and_escapes() {
        let out = substitute("a: ${KEY}\nb: ${NOPE:-x}\nc: $$5 $x\nd: ${EMPTY:-d}\n", env).unwrap();
        assert_eq!(out, "a: sk-123\nb: x\nc: $5 $x\nd: d\n");
    }

    #[test]
    fn reports_position_of_missing_var() {
        let e = substitute("x: 1\ny: \"${MISSING}\"\n", env).unwrap_err();
        assert_eq!((e.line, e.column), (2, 5));
        assert!(e.message.contains("MISSING"));
    }

    #[test]
    fn rejects_bad_references() {
        assert!(substitute("${1A}", env).is_err());
        assert!(substitute("${A B}", env).is_err());
        assert!(substitute("${KEY", env).is_err());
    }
}
