//! Policies that security teams edit as YAML (`apiVersion: warden/v1`, `kind: Policy`):
//! the typed model and its JSON Schema, loading with `file:line:column` errors, the
//! decision for a principal and request (deny overrides allow, default deny), the
//! table-driven test runner, the check that rules name configured profiles, and hot
//! reload that keeps the last good set.
//! A decision's reason is written for clients: it never contains request content.

pub mod cli;
mod decide;
mod load;
mod model;
pub mod pricing;
pub mod references;
pub mod reload;
pub mod testing;

pub use crate::condition::Condition;
pub use decide::{Decision, Effect, Facts, principal_value};
pub use load::{LoadError, PolicySet, load_dir, load_sources};
pub use model::{
    AuditSettings, EndpointName, Execution, PolicyFile, Routing, RoutingMode, RuleSettings,
    TestFile, ToolPermissions,
};
pub use pricing::Pricing;
pub use reload::PolicyStore;

/// JSON Schema of policy files (`policies/schema.json`).
pub fn policy_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(PolicyFile)).unwrap_or_default()
}

/// JSON Schema of policy test files (`policies/tests/schema.json`).
pub fn test_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(TestFile)).unwrap_or_default()
}
