//! CEL conditions in the files security teams edit: a policy rule's `when:`, a tool's
//! approval condition. An expression is compiled while its file is parsed, so a syntax
//! error or an unknown variable is reported at its line and column. Each kind of
//! condition has its own variables ([`Scope`]): rules see `principal`, `request` and
//! `claims`; tool approvals see `args`, `principal` and `claims`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The variables one kind of condition may use.
pub trait Scope {
    const VARIABLES: &'static [&'static str];
    /// The JSON Schema's name and description of this kind of condition.
    const SCHEMA_NAME: &'static str;
    const DESCRIPTION: &'static str;
}

/// A policy rule's `when:`.
#[derive(Debug, Clone, Copy)]
pub struct RuleScope;

impl Scope for RuleScope {
    const VARIABLES: &'static [&'static str] = &["principal", "request", "claims"];
    const SCHEMA_NAME: &'static str = "CelExpression";
    const DESCRIPTION: &'static str =
        "A CEL expression over `principal`, `request` and `claims` that must evaluate to true.";
}

/// A tool's approval condition.
#[derive(Debug, Clone, Copy)]
pub struct ToolScope;

impl Scope for ToolScope {
    const VARIABLES: &'static [&'static str] = &["args", "principal", "claims"];
    const SCHEMA_NAME: &'static str = "ToolCelExpression";
    const DESCRIPTION: &'static str = "A CEL expression over the call's `args`, the caller's `principal` and `claims`; true means the call needs a person's approval.";
}

/// A compiled CEL expression and its source.
pub struct Condition<S: Scope = RuleScope> {
    source: String,
    program: Arc<cel::Program>,
    scope: PhantomData<S>,
}

impl<S: Scope> Clone for Condition<S> {
    fn clone(&self) -> Self {
        Condition {
            source: self.source.clone(),
            program: self.program.clone(),
            scope: PhantomData,
        }
    }
}

impl<S: Scope> Condition<S> {
    pub fn compile(source: &str) -> Result<Condition<S>, String> {
        let program = cel::Program::compile(source).map_err(|e| {
            let text = e.to_string();
            format!(
                "invalid CEL expression: {}",
                text.lines().next().unwrap_or("syntax error")
            )
        })?;
        let references = program.references();
        for var in references.variables() {
            if !S::VARIABLES.contains(&var) {
                return Err(format!(
                    "unknown variable `{var}` in CEL expression (use {})",
                    S::VARIABLES.join(", ")
                ));
            }
        }
        Ok(Condition {
            source: source.to_string(),
            program: Arc::new(program),
            scope: PhantomData,
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

/// The variables conditions see, converted once per evaluation context and shared by
/// every condition evaluated with it.
pub struct CelInput(cel::Context<'static, 'static>);

impl CelInput {
    /// The named variables, as JSON.
    pub fn new(variables: &[(&str, &serde_json::Value)]) -> Result<CelInput, String> {
        let mut ctx = cel::Context::with_env(STDLIB.clone());
        for (name, value) in variables {
            let v = cel::to_value(value).map_err(|e| e.to_string())?;
            ctx.add_variable_from_value(*name, v);
        }
        Ok(CelInput(ctx))
    }
}

impl<S: Scope> fmt::Debug for Condition<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Condition({:?})", self.source)
    }
}

impl<'de, S: Scope> Deserialize<'de> for Condition<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Condition::compile(&source).map_err(serde::de::Error::custom)
    }
}

impl<S: Scope> Serialize for Condition<S> {
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        s.serialize_str(&self.source)
    }
}

impl<S: Scope> JsonSchema for Condition<S> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        S::SCHEMA_NAME.into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": S::DESCRIPTION
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(p: &serde_json::Value, r: &serde_json::Value, c: &serde_json::Value) -> CelInput {
        CelInput::new(&[("principal", p), ("request", r), ("claims", c)]).unwrap()
    }

    #[test]
    fn evaluates_over_the_three_variables() {
        let c: Condition = Condition::compile(
            "principal.tenant == 'acme' && request.max_tokens <= 1000 && claims.dept == 'support'",
        )
        .unwrap();
        let p = json!({"tenant": "acme"});
        assert!(
            c.evaluate(&input(
                &p,
                &json!({"max_tokens": 500}),
                &json!({"dept": "support"})
            ))
            .unwrap()
        );
        assert!(
            !c.evaluate(&input(
                &p,
                &json!({"max_tokens": 5000}),
                &json!({"dept": "support"})
            ))
            .unwrap()
        );
    }

    #[test]
    fn rejects_syntax_errors_and_unknown_variables() {
        assert!(Condition::<RuleScope>::compile("principal.tenant ==").is_err());
        let e = Condition::<RuleScope>::compile("user.id == 1").unwrap_err();
        assert!(e.contains("unknown variable `user`"), "{e}");
        let e = Condition::<RuleScope>::compile("args.amount > 100").unwrap_err();
        assert!(e.contains("unknown variable `args`"), "{e}");
        assert!(Condition::<ToolScope>::compile("args.amount > 100").is_ok());
        let e = Condition::<ToolScope>::compile("request.model == 'x'").unwrap_err();
        assert!(e.contains("use args, principal, claims"), "{e}");
    }

    #[test]
    fn non_boolean_results_are_errors() {
        let c: Condition = Condition::compile("request.model").unwrap();
        assert!(
            c.evaluate(&input(&json!({}), &json!({"model": "m"}), &json!({})))
                .is_err()
        );
    }
}
