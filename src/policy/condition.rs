//! CEL conditions (`when:`). An expression is compiled while the policy file is parsed, so
//! a syntax error is reported at its line and column; it is evaluated against `principal`,
//! `request` and `claims`.

use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A compiled CEL expression and its source.
#[derive(Clone)]
pub struct Condition {
    source: String,
    program: Arc<cel::Program>,
}

impl Condition {
    pub fn compile(source: &str) -> Result<Condition, String> {
        let program = cel::Program::compile(source).map_err(|e| {
            let text = e.to_string();
            format!(
                "invalid CEL expression: {}",
                text.lines().next().unwrap_or("syntax error")
            )
        })?;
        let allowed = ["principal", "request", "claims"];
        let references = program.references();
        for var in references.variables() {
            if !allowed.contains(&var) {
                return Err(format!(
                    "unknown variable `{var}` in CEL expression (use principal, request or claims)"
                ));
            }
        }
        Ok(Condition {
            source: source.to_string(),
            program: Arc::new(program),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates to a boolean; a non-boolean result or an evaluation error is an error.
    pub fn evaluate(&self, input: &CelInput) -> Result<bool, String> {
        match self.program.execute(&input.0) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "condition returned {}, not a boolean",
                other.type_of()
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// CEL's standard environment, built once: building it registers every standard function,
/// which costs more than evaluating a typical condition.
static STDLIB: std::sync::LazyLock<Arc<cel::Env>> =
    std::sync::LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// The variables conditions see, converted once per decision and shared by every
/// condition evaluated for it.
pub struct CelInput(cel::Context<'static, 'static>);

impl CelInput {
    pub fn new(
        principal: &serde_json::Value,
        request: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<CelInput, String> {
        let mut ctx = cel::Context::with_env(STDLIB.clone());
        for (name, value) in [
            ("principal", principal),
            ("request", request),
            ("claims", claims),
        ] {
            let v = cel::to_value(value).map_err(|e| e.to_string())?;
            ctx.add_variable_from_value(name, v);
        }
        Ok(CelInput(ctx))
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Condition({:?})", self.source)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Condition::compile(&source).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl JsonSchema for Condition {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CelExpression".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A CEL expression over `principal`, `request` and `claims` that must evaluate to true."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_over_the_three_variables() {
        let c = Condition::compile(
            "principal.tenant == 'acme' && request.max_tokens <= 1000 && claims.dept == 'support'",
        )
        .unwrap();
        let p = json!({"tenant": "acme"});
        assert!(
            c.evaluate(
                &CelInput::new(&p, &json!({"max_tokens": 500}), &json!({"dept": "support"}))
                    .unwrap()
            )
            .unwrap()
        );
        assert!(
            !c.evaluate(
                &CelInput::new(
                    &p,
                    &json!({"max_tokens": 5000}),
                    &json!({"dept": "support"})
                )
                .unwrap()
            )
            .unwrap()
        );
    }

    #[test]
    fn rejects_syntax_errors_and_unknown_variables() {
        assert!(Condition::compile("principal.tenant ==").is_err());
        let e = Condition::compile("user.id == 1").unwrap_err();
        assert!(e.contains("unknown variable `user`"), "{e}");
    }

    #[test]
    fn non_boolean_results_are_errors() {
        let c = Condition::compile("request.model").unwrap();
        assert!(
            c.evaluate(&CelInput::new(&json!({}), &json!({"model": "m"}), &json!({})).unwrap())
                .is_err()
        );
    }
}
