//! PII settings: named profiles (chosen by a policy rule's `settings.pii`, else the
//! default) saying what happens to each kind of personal data, and where the key for
//! `hash` comes from.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// Profile for requests whose policy rule names none (or an unknown one).
    #[serde(default)]
    pub default_profile: Option<String>,
    /// Environment variable holding the HMAC key of the `hash` action.
    #[serde(default = "default_hash_key_env")]
    pub hash_key_env: String,
    pub profiles: BTreeMap<String, PiiProfile>,
}

fn default_hash_key_env() -> String {
    "WARDEN_PII_HASH_KEY".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiProfile {
    /// Action for entity types not listed in `actions`.
    #[serde(default = "default_action")]
    pub default_action: PiiAction,
    /// Per entity type (`EMAIL`, `PHONE`, `CREDIT_CARD`, …).
    #[serde(default)]
    pub actions: BTreeMap<String, PiiAction>,
    /// Findings scoring below this are ignored.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
    /// Values never treated as personal data (case-insensitive), e.g. a support address.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Terms always treated as personal data (entity `CUSTOM`), e.g. internal code names.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Restore pseudonymized values in answers (streams included).
    #[serde(default = "yes")]
    pub restore: bool,
}

fn default_action() -> PiiAction {
    PiiAction::Pseudonymize
}
fn default_min_score() -> f64 {
    0.5
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum PiiAction {
    /// Leave the value as it is.
    Allow,
    /// Replace with `[EMAIL]`.
    Redact,
    /// Keep the last four letters or digits, star the rest.
    Mask,
    /// Replace with a keyed hash, stable per tenant (`[EMAIL:3f9a0c2b7d1e]`).
    Hash,
    /// Replace with a placeholder (`<EMAIL_1>`) restored in the answer.
    Pseudonymize,
    /// Refuse the request (400) naming the entity types found.
    Block,
}

impl PiiAction {
    pub fn label(self) -> &'static str {
        match self {
            PiiAction::Allow => "allow",
            PiiAction::Redact => "redact",
            PiiAction::Mask => "mask",
            PiiAction::Hash => "hash",
            PiiAction::Pseudonymize => "pseudonymize",
            PiiAction::Block => "block",
        }
    }
}
