//! PII settings: named profiles (chosen by a policy rule's `settings.pii`, else the
//! default) saying what happens to each kind of personal data, and where the key for
//! `hash` comes from.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Entity, Invalid, invalid};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// Profile for requests whose policy rule names none (or an unknown one).
    #[serde(default)]
    pub default_profile: Option<String>,
    /// Environment variable holding the HMAC key of the `hash` action.
    #[serde(default = "default_hash_key_env")]
    pub hash_key_env: String,
    /// The NER model; without it only the pattern recognizers run.
    #[serde(default)]
    pub ner: Option<NerConfig>,
    pub profiles: BTreeMap<String, PiiProfile>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NerConfig {
    /// Directory with the model, `tokenizer.json` and `config.json` (relative to the config
    /// file); `scripts/fetch-models.sh` puts them in `ner-models/rampart`.
    pub model_dir: std::path::PathBuf,
    /// The ONNX model inside `model_dir`: the int8 model `scripts/fetch-models.sh` derives
    /// (about 3× faster on CPU), or the published 4-bit `onnx/model_q4.onnx`.
    #[serde(default = "default_model_file")]
    pub model_file: std::path::PathBuf,
    /// The ONNX Runtime library (relative to the config file).
    pub runtime: std::path::PathBuf,
    /// Texts whose findings are kept (keyed hashes, no plaintext).
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// ONNX Runtime intra-op threads per inference.
    #[serde(default = "one")]
    pub threads: usize,
    /// Model sessions: inferences that can run at once (default: CPUs, at most 4). One
    /// tenant uses at most all but one of them at a time.
    #[serde(default = "default_sessions")]
    pub sessions: usize,
    /// Text one request may have the model read (cache hits are free); beyond it the
    /// profile's `ner` setting decides: `required` answers 413, `optional` runs the
    /// patterns only on the rest (and the audit record says so).
    #[serde(default = "default_request_bytes")]
    pub max_request_bytes: usize,
    /// 512-token windows one request may have the model read.
    #[serde(default = "default_request_windows")]
    pub max_request_windows: usize,
    /// Time one request may spend in the model.
    #[serde(default = "default_request_ms")]
    pub max_request_ms: u64,
}

fn default_sessions() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}
fn default_request_bytes() -> usize {
    256 * 1024
}
fn default_request_windows() -> usize {
    64
}
fn default_request_ms() -> u64 {
    5_000
}

fn default_model_file() -> std::path::PathBuf {
    "onnx/model_int8.onnx".into()
}

fn default_cache_entries() -> usize {
    4096
}
fn one() -> usize {
    1
}

/// Whether a profile uses the NER model.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NerMode {
    /// Patterns only.
    Off,
    /// The model when it is loaded; patterns only (counted in a metric) when it is not.
    #[default]
    Optional,
    /// Refuse requests (503) when the model is not loaded.
    Required,
}

/// Whether and how a profile scans answers for personal data the model writes.
#[derive(Debug, Clone, Copy, JsonSchema, Default, PartialEq, Eq)]
pub enum ScanOutput {
    /// Answers are not scanned (`false`).
    #[default]
    Off,
    /// The pattern recognizers and the deny-list (`patterns`, or `true`).
    Patterns,
    /// Patterns and the NER model: names and addresses the model writes too, judged on
    /// whole sentences of a stream (`ner`).
    Ner,
}

impl<'de> Deserialize<'de> for ScanOutput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Flag(false) => Ok(ScanOutput::Off),
            Raw::Flag(true) => Ok(ScanOutput::Patterns),
            Raw::Name(n) => match n.as_str() {
                "false" | "off" => Ok(ScanOutput::Off),
                "patterns" | "true" => Ok(ScanOutput::Patterns),
                "ner" => Ok(ScanOutput::Ner),
                other => Err(serde::de::Error::custom(format!(
                    "scan_output must be false, patterns or ner, not `{other}`"
                ))),
            },
        }
    }
}

fn default_hash_key_env() -> String {
    "WARDEN_PII_HASH_KEY".into()
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
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
    /// The NER model's spans scoring below this (their mean label probability) are
    /// ignored: 0.5 to 1. Lower finds more names and addresses and takes more commerce
    /// words for them.
    #[serde(default = "default_ner_min_score")]
    pub ner_min_score: f64,
    /// Values never treated as personal data (case-insensitive), e.g. a support address.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Terms always treated as personal data (entity `CUSTOM`), e.g. internal code names.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Files of commerce terms (brands, product lines, product names, SKUs; one per line,
    /// `#` comments) never taken for personal data: a finding inside one is dropped.
    /// Relative to the config file.
    #[serde(default)]
    pub keep_terms_files: Vec<std::path::PathBuf>,
    /// Registry tools whose results teach the profile more commerce terms: the `name`,
    /// `brand`, `title`, `product_name` and `model` strings of every result Warden runs
    /// (e.g. `[search_catalog]`: the products a model is shown are kept whole when the
    /// user or the model writes them). Up to 50,000 terms are learned per tool.
    #[serde(default)]
    pub keep_terms_from_tools: Vec<String>,
    /// Restore pseudonymized values in answers (streams included).
    #[serde(default = "yes")]
    pub restore: bool,
    /// Where in the request a value must have come from to be restored in the answer: the
    /// role of its message (`system`, `developer`, `user`, `assistant`, `tool`,
    /// `function`), a completion's `prompt`, or `other` fields. A placeholder of a value
    /// from elsewhere is shown as `[TYPE]`. Default: every source.
    #[serde(default = "RestoreSource::all")]
    pub restore_sources: Vec<RestoreSource>,
    /// Inputs given as token ids (embeddings, completions): `redact` decodes them with the
    /// model's tokenizer and redacts the text (sent as text when anything changed);
    /// `refuse` answers 400. A model whose tokenizer cannot decode is refused either way.
    #[serde(default)]
    pub token_input: TokenInput,
    /// Use of the NER model (person names, street addresses, ids): off, optional, required.
    #[serde(default)]
    pub ner: NerMode,
    /// Scan answers for personal data the model emits (from retrieved documents, tool
    /// results or its training data): `false`, `patterns` (the pattern recognizers and the
    /// deny-list; `true` means the same) or `ner` (the NER model as well, on whole
    /// sentences of a stream); `pseudonymize` and `block` withhold such values as `redact`
    /// does.
    #[serde(default)]
    pub scan_output: ScanOutput,
    /// How much of a streamed answer output scanning may hold back to see a value whole
    /// (bytes; a value without spaces, such as a key or an address, is held until it ends,
    /// up to 4 KiB).
    #[serde(default = "default_output_holdback")]
    pub output_holdback_bytes: usize,
}

/// Where a pseudonymized value came from in the request.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum RestoreSource {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
    /// A legacy completion's `prompt` or `suffix`.
    Prompt,
    /// Any other field (tool definitions, `metadata`, `user`, unknown fields, …).
    Other,
}

impl RestoreSource {
    pub fn all() -> Vec<RestoreSource> {
        use RestoreSource::*;
        vec![
            System, Developer, User, Assistant, Tool, Function, Prompt, Other,
        ]
    }

    /// The source of a chat message with this role.
    pub fn of_role(role: &str) -> RestoreSource {
        match role {
            "system" => RestoreSource::System,
            "developer" => RestoreSource::Developer,
            "user" => RestoreSource::User,
            "assistant" => RestoreSource::Assistant,
            "tool" => RestoreSource::Tool,
            "function" => RestoreSource::Function,
            _ => RestoreSource::Other,
        }
    }
}

/// What happens to inputs given as token ids.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TokenInput {
    /// Decode with the model's tokenizer and redact the text.
    #[default]
    Redact,
    /// Refuse the request (400).
    Refuse,
}

fn default_output_holdback() -> usize {
    64
}

fn default_action() -> PiiAction {
    PiiAction::Pseudonymize
}
fn default_min_score() -> f64 {
    0.5
}

/// On the evaluation set true names scored ≥ 0.67 and the misses on commerce words
/// (German "Ruf mich") 0.55–0.64.
fn default_ner_min_score() -> f64 {
    0.65
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// Replace with a placeholder (`<EMAIL_1_k3f9qz>`: type, counter, the request's
    /// nonce) restored in the answer.
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

impl PiiConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if let Some(d) = &self.default_profile
            && !self.profiles.contains_key(d)
        {
            return Err(invalid(
                &["pii", "default_profile"],
                format!("unknown profile `{d}`"),
            ));
        }
        for (name, profile) in &self.profiles {
            for entity in profile.actions.keys() {
                if Entity::from_name(entity).is_none() {
                    return Err(invalid(
                        &["pii", "profiles", name.as_str(), "actions"],
                        format!("unknown entity type `{entity}`"),
                    ));
                }
            }
            if !(0.5..=1.0).contains(&profile.ner_min_score) {
                return Err(invalid(
                    &["pii", "profiles", name.as_str()],
                    "`ner_min_score` must be between 0.5 and 1",
                ));
            }
            if !(0.0..=1.0).contains(&profile.min_score) {
                return Err(invalid(
                    &["pii", "profiles", name.as_str()],
                    "`min_score` must be between 0 and 1",
                ));
            }
            if profile.scan_output == ScanOutput::Ner
                && (self.ner.is_none() || profile.ner == NerMode::Off)
            {
                return Err(invalid(
                    &["pii", "profiles", name.as_str(), "scan_output"],
                    "`ner` needs the NER model: configure `pii.ner` and leave the profile's `ner` on",
                ));
            }
        }
        Ok(())
    }

    /// The NER model's directory and runtime library are relative to the config file's
    /// directory `base`.
    pub(crate) fn resolve_paths(&mut self, base: &std::path::Path) {
        if let Some(ner) = self.ner.as_mut() {
            ner.model_dir = base.join(&ner.model_dir);
            ner.runtime = base.join(&ner.runtime);
        }
        for profile in self.profiles.values_mut() {
            for file in &mut profile.keep_terms_files {
                *file = base.join(&*file);
            }
        }
    }
}
