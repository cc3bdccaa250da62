//! `${VAR}` / `${VAR:-default}` substitution in config text, with `$$` for a literal `$`.
//! YAML comments are left as they are, so a commented-out `${VAR}` needs no variable.
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
    for (idx, whole) in text.split_inclusive('\n').enumerate() {
        let (line, comment) = whole.split_at(comment_start(whole));
        let mut rest = line;
        let mut col = 1;
        while let Some((before, after)) = rest.split_once('$') {
            out.push_str(before);
            col += before.chars().count();
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
            let Some((inner, tail)) = body.split_once('}') else {
                return Err(err("unterminated `${` reference".into()));
            };
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
            rest = tail;
        }
        out.push_str(rest);
        out.push_str(comment);
    }
    Ok(out)
}

/// Where a line's YAML comment starts (its length when it has none): a `#` at the start
/// or after a blank, outside quotes.
fn comment_start(line: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if prev.is_whitespace() || matches!(prev, ':' | '[' | '{' | ',') => {
                quote = Some(c)
            }
            (None, '#') if prev.is_whitespace() => return i,
            _ => {}
        }
        prev = c;
    }
    line.len()
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
    fn comments_are_left_alone() {
        let text = "# api_key: ${UNSET}\na: ${KEY} # or ${UNSET}\nb: \"x # ${KEY}\"\nc: x#${KEY}\n";
        assert_eq!(
            substitute(text, env).unwrap(),
            "# api_key: ${UNSET}\na: sk-123 # or ${UNSET}\nb: \"x # sk-123\"\nc: x#sk-123\n"
        );
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
