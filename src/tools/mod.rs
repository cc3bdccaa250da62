//! Tools: the registry of what a model may be offered and Warden may call on its behalf
//! (`kind: ToolRegistry` files in the policy directory, loaded and digested with the
//! policies). Each tool has its argument schema, its backend request (HTTP or GraphQL,
//! built from templates that cannot move the request to another host or path), its risk
//! (`read`, `write`, `high`), when a `high` call waits for a person, its idempotency key
//! and its cumulative caps. Calls are made by `execute` against the configured
//! `backends`.

pub mod approvals;
pub mod backends;
pub mod caps;
pub mod embed;
pub mod execute;
pub mod lexical;
mod load;
pub mod model;
pub mod select;
pub mod template;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use load::FileError;
pub use model::{HttpMethod, Risk, ToolDef};
use template::Template;

/// A tool, validated and compiled.
#[derive(Debug)]
pub struct Tool {
    pub def: ToolDef,
    /// Validates a call's arguments.
    pub arguments: jsonschema::Validator,
    /// How the backend is called.
    pub call: Call,
    /// Set for `write` and `high` tools (defaults filled in).
    pub idempotency: Option<model::Idempotency>,
    /// SHA-256 of the tool's definition: an approval is bound to it.
    pub digest: String,
    /// The file that defines the tool.
    pub file: String,
}

impl Tool {
    /// Whether a call with `args` by `principal` (as CEL sees it: `principal_value`) waits
    /// for a person: a `high` tool whose approval condition holds. A condition that
    /// cannot be evaluated holds — the call waits rather than runs.
    pub fn needs_approval(
        &self,
        args: &serde_json::Map<String, serde_json::Value>,
        principal: &serde_json::Value,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        if self.def.risk != Risk::High {
            return false;
        }
        let Some(approval) = &self.def.approval else {
            return false;
        };
        let args = serde_json::Value::Object(args.clone());
        let claims = serde_json::Value::Object(claims.clone());
        let input = crate::condition::CelInput::new(&[
            ("args", &args),
            ("principal", principal),
            ("claims", &claims),
        ]);
        match input.and_then(|i| approval.when.evaluate(&i)) {
            Ok(holds) => holds,
            Err(_) => {
                tracing::warn!(tool = %self.def.name, "approval condition failed to evaluate; the call waits");
                true
            }
        }
    }
}

/// The backend request of a tool.
#[derive(Debug)]
pub enum Call {
    Http {
        method: HttpMethod,
        path: Template,
        query: Vec<(String, Template)>,
        body: Body,
    },
    Graphql {
        path: String,
        query: String,
        /// `None`: every argument under its own name.
        variables: Option<Vec<(String, Template)>>,
    },
}

/// The JSON body of an HTTP call.
#[derive(Debug)]
pub enum Body {
    None,
    Arguments,
    Fields(Vec<(String, Template)>),
}

/// Every tool of the policy directory, by name.
#[derive(Debug, Default)]
pub struct Registry {
    tools: BTreeMap<String, Arc<Tool>>,
}

impl Registry {
    pub fn get(&self, name: &str) -> Option<&Arc<Tool>> {
        self.tools.get(name)
    }

    /// The tools in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Tool>> {
        self.tools.values()
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

/// JSON Schema of tool registry files (`policies/tools.schema.json`).
pub fn registry_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(model::RegistryFile)).unwrap_or_default()
}
