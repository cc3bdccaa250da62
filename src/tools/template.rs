//! Templates that put a call's arguments into a backend request: `/orders/{order_id}`,
//! `{query}`, `order {order_id}`. A template names top-level arguments in braces and
//! nothing else; no other brace is allowed. Rendering percent-encodes each value into its
//! path segment or query value, so an argument can never change the path's shape, the
//! query, or (since only the path below the backend's base URL is templated) the scheme,
//! host or port.

use serde_json::{Map, Value};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Arg(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Why a call's arguments cannot fill a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The argument is absent or null.
    Missing(String),
    /// The argument is an object or array where a single value is needed.
    NotScalar(String),
    /// The value would name another path (empty, `.` or `..`).
    UnsafeSegment(String),
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Missing(a) => write!(f, "argument `{a}` is required here"),
            RenderError::NotScalar(a) => write!(f, "argument `{a}` must be a single value"),
            RenderError::UnsafeSegment(a) => {
                write!(f, "argument `{a}` may not be empty, `.` or `..` in a path")
            }
        }
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    pieces.push(Piece::Text(rest.to_string()));
                    break;
                }
                Some(at) => {
                    let (before, after) = rest.split_at(at);
                    if !before.is_empty() {
                        pieces.push(Piece::Text(before.to_string()));
                    }
                    if after.starts_with('}') {
                        return Err(format!("unmatched `}}` in template `{text}`"));
                    }
                    let close = after
                        .find('}')
                        .ok_or_else(|| format!("unclosed `{{` in template `{text}`"))?;
                    let name = after.get(1..close).unwrap_or_default();
                    if !is_name(name) {
                        return Err(format!(
                            "`{{{name}}}` in template `{text}` is not an argument name"
                        ));
                    }
                    pieces.push(Piece::Arg(name.to_string()));
                    rest = after.get(close + 1..).unwrap_or_default();
                }
            }
        }
        Ok(Template { pieces })
    }

    /// The arguments the template names.
    pub fn arguments(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Arg(a) => Some(a.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// The single argument when the template is exactly `{name}`.
    pub fn whole_argument(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [Piece::Arg(a)] => Some(a),
            _ => None,
        }
    }

    /// Renders with each value passed through `encode`.
    fn render_with(
        &self,
        args: &Map<String, Value>,
        encode: impl Fn(&str, &str) -> Result<String, RenderError>,
    ) -> Result<String, RenderError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Arg(name) => {
                    let text = scalar(args, name)?;
                    out.push_str(&encode(name, &text)?);
                }
            }
        }
        Ok(out)
    }

    /// A path below the backend's base URL: every value percent-encoded as one segment.
    pub fn render_path(&self, args: &Map<String, Value>) -> Result<String, RenderError> {
        self.render_with(args, |name, value| {
            if value.is_empty() || value == "." || value == ".." {
                return Err(RenderError::UnsafeSegment(name.to_string()));
            }
            Ok(percent_encode_segment(value))
        })
    }

    /// Plain text (a query value or a body string; the caller encodes it).
    pub fn render_text(&self, args: &Map<String, Value>) -> Result<String, RenderError> {
        self.render_with(args, |_, value| Ok(value.to_string()))
    }

    /// A JSON value: the argument itself when the template is exactly `{name}` (its type
    /// kept), else the rendered text.
    pub fn render_json(&self, args: &Map<String, Value>) -> Result<Value, RenderError> {
        if let Some(name) = self.whole_argument() {
            return match args.get(name) {
                None | Some(Value::Null) => Err(RenderError::Missing(name.to_string())),
                Some(v) => Ok(v.clone()),
            };
        }
        self.render_text(args).map(Value::String)
    }

    /// Whether every argument the template names is present (a query parameter whose
    /// arguments are absent is left out).
    pub fn filled_by(&self, args: &Map<String, Value>) -> bool {
        self.arguments()
            .all(|a| args.get(a).is_some_and(|v| !v.is_null()))
    }
}

/// An argument as text: strings as they are, numbers and booleans as JSON writes them.
fn scalar(args: &Map<String, Value>, name: &str) -> Result<String, RenderError> {
    match args.get(name) {
        None | Some(Value::Null) => Err(RenderError::Missing(name.to_string())),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
        Some(_) => Err(RenderError::NotScalar(name.to_string())),
    }
}

/// Percent-encodes everything but ASCII letters, digits, `-`, `_` and `~` (so `/`, `?`,
/// `#`, `%` and `.` never reach the path as themselves).
pub fn percent_encode_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn parses_arguments_and_refuses_stray_braces() {
        let t = Template::parse("/orders/{order_id}/items/{sku}").unwrap();
        assert_eq!(t.arguments().collect::<Vec<_>>(), ["order_id", "sku"]);
        assert_eq!(Template::parse("{q}").unwrap().whole_argument(), Some("q"));
        for bad in ["/a/{", "/a/}", "/a/{}", "/a/{a b}", "/{a}{", "{{a}}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_cannot_change_the_path_or_query() {
        let t = Template::parse("/orders/{id}/refunds").unwrap();
        let a = args(json!({"id": "../../admin?x=1#f/%2e"}));
        assert_eq!(
            t.render_path(&a).unwrap(),
            "/orders/%2E%2E%2F%2E%2E%2Fadmin%3Fx%3D1%23f%2F%252e/refunds"
        );
        for unsafe_value in ["", ".", ".."] {
            assert_eq!(
                t.render_path(&args(json!({"id": unsafe_value}))),
                Err(RenderError::UnsafeSegment("id".into()))
            );
        }
        assert_eq!(
            t.render_path(&args(json!({"id": 42}))).unwrap(),
            "/orders/42/refunds"
        );
        assert_eq!(
            t.render_path(&args(json!({}))),
            Err(RenderError::Missing("id".into()))
        );
        assert_eq!(
            t.render_path(&args(json!({"id": {"a": 1}}))),
            Err(RenderError::NotScalar("id".into()))
        );
    }

    #[test]
    fn json_keeps_a_whole_arguments_type() {
        let a = args(json!({"amount": 120.5, "order": "A-1", "items": [1, 2]}));
        let whole = Template::parse("{items}").unwrap();
        assert_eq!(whole.render_json(&a).unwrap(), json!([1, 2]));
        let text = Template::parse("refund for {order}").unwrap();
        assert_eq!(text.render_json(&a).unwrap(), json!("refund for A-1"));
        assert!(Template::parse("{amount}").unwrap().filled_by(&a));
        assert!(!Template::parse("{missing}").unwrap().filled_by(&a));
    }
}
