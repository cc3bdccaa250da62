//! PII redaction: detection (pattern recognizers with validators and context), the
//! profile's action per entity type (allow, redact, mask, hash, pseudonymize, block), the
//! walk over every text of a request the provider will see, and the restoration of
//! pseudonymized values in answers, streams included. Values never leave this module in
//! logs, metrics or errors: only entity types and counts do.

pub mod address;
pub mod cli;
pub mod columns;
mod cued;
pub mod cues;
pub mod eval;
pub mod fields;
mod gate;
pub mod keep;
pub mod known_names;
mod labels;
pub mod names;
pub mod ner;
pub mod output;
pub mod recognize;
mod redact;
pub mod request;
pub mod response;
mod responses;
mod validate;
mod vault;

use std::collections::HashSet;
use std::sync::Arc;

use regex::Regex;
use serde::Serialize;

use crate::config::{NerMode, PiiAction, PiiConfig, PiiProfile};

/// Findings by entity type and the action taken.
pub type Counts = std::collections::BTreeMap<(Entity, PiiAction), u64>;
use ner::Ner as NerModel;

/// How far a detection may use the model.
enum ModelUse<'b> {
    Skip,
    Unlimited,
    Within(&'b mut ner::NerBudget),
}

pub use crate::config::Entity;
pub use gate::{Redacted, RedactedResult, Refusal, Refused};
pub use redact::{Blocked, Redactor};
pub use vault::{StreamRestorer, Vault, VaultSnapshot};

/// Who found a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Pattern,
    /// A name found by the words around it ("ship to", "Attn:", "Mrs.") or by the name
    /// lists (a given name and a surname); a value by its column's header.
    Cue,
    Ner,
    DenyList,
}

/// One detected span of `text[start..end]` (byte offsets).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub entity: Entity,
    pub start: usize,
    pub end: usize,
    pub score: f64,
    pub source: Source,
}

impl Finding {
    /// Whether the two spans share a byte.
    fn overlaps(&self, other: &Finding) -> bool {
        self.start < other.end && self.end > other.start
    }
}

/// A profile ready to use: its settings plus the compiled allow- and deny-lists.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub settings: PiiProfile,
    allow: HashSet<String>,
    deny: Option<Regex>,
    /// Commerce terms whose findings are dropped (`keep_terms_files`).
    keep: Option<Arc<keep::KeepTerms>>,
    /// Terms learned from tools' results (`keep_terms_from_tools`).
    learned: Vec<Arc<keep::Learned>>,
    /// The NER model, when loaded and the profile uses it.
    ner: Option<Arc<NerModel>>,
}

impl Profile {
    pub fn new(name: &str, settings: &PiiProfile) -> anyhow::Result<Profile> {
        let deny = if settings.deny.is_empty() {
            None
        } else {
            let alternatives: Vec<String> =
                settings.deny.iter().map(|t| regex::escape(t)).collect();
            Some(Regex::new(&format!(
                r"(?i)\b(?:{})\b",
                alternatives.join("|")
            ))?)
        };
        Ok(Profile {
            name: name.to_string(),
            settings: settings.clone(),
            allow: settings.allow.iter().map(|a| a.to_lowercase()).collect(),
            deny,
            keep: keep::KeepTerms::load(&settings.keep_terms_files)?.map(Arc::new),
            learned: Vec::new(),
            ner: None,
        })
    }

    /// This profile keeping the terms learned from its `keep_terms_from_tools`.
    fn with_learned(
        mut self,
        learned: &std::collections::HashMap<String, Arc<keep::Learned>>,
    ) -> Profile {
        self.learned = self
            .settings
            .keep_terms_from_tools
            .iter()
            .filter_map(|t| learned.get(t).cloned())
            .collect();
        self
    }

    /// This profile with the NER model (unless its `ner` is `off`).
    pub fn with_ner(mut self, ner: Option<Arc<NerModel>>) -> Profile {
        self.ner = ner.filter(|_| self.settings.ner != NerMode::Off);
        self
    }

    pub fn ner(&self) -> Option<&Arc<NerModel>> {
        self.ner.as_ref()
    }

    /// The profile needs the model and it is not loaded.
    pub fn ner_missing(&self) -> bool {
        self.settings.ner == NerMode::Required && self.ner.is_none()
    }

    /// The action for an entity type.
    pub fn action(&self, entity: Entity) -> PiiAction {
        self.settings
            .actions
            .get(entity.name())
            .copied()
            .unwrap_or(self.settings.default_action)
    }

    /// The findings in `text` this profile acts on: scored at least `min_score`, not
    /// allow-listed, overlaps resolved (higher score, then longer span, wins), in order.
    /// Without a budget the model reads whatever it is given (tools, evaluation).
    pub fn detect(&self, text: &str) -> Vec<Finding> {
        self.find(text, ModelUse::Unlimited)
    }

    /// [`Profile::detect`] with the model's work charged to a request's budget.
    pub fn detect_within(&self, text: &str, budget: &mut ner::NerBudget) -> Vec<Finding> {
        self.find(text, ModelUse::Within(budget))
    }

    /// [`Profile::detect`] without the NER model: patterns, cues and the deny-list.
    pub fn detect_patterns(&self, text: &str) -> Vec<Finding> {
        self.find(text, ModelUse::Skip)
    }

    fn find(&self, text: &str, use_ner: ModelUse<'_>) -> Vec<Finding> {
        let mut found = Vec::new();
        let hits = cues::find(text);
        recognize::scan(text, &hits, &mut found);
        address::scan(text, &mut found);
        names::scan(text, &hits, &mut found);
        names::before_here(text, &mut found);
        known_names::scan(text, &mut found);
        columns::scan(text, &mut found);
        fields::scan(text, &mut found);
        if let Some(model) = self.ner.as_ref() {
            // The model reads lower-case names after cues with capitals; they are
            // candidates until it finds a person there.
            let (read, candidates) = match use_ner {
                ModelUse::Skip => (std::borrow::Cow::Borrowed(text), Vec::new()),
                _ => names::recase(text, &hits),
            };
            found.extend(candidates);
            let spans = match use_ner {
                ModelUse::Skip => Ok(None),
                ModelUse::Unlimited => model.detect(&read).map(Some).map_err(ner::NerError::from),
                ModelUse::Within(budget) => model.detect_within(&read, budget).map(Some),
            };
            match spans {
                Ok(Some(spans)) => found.extend(spans.iter().cloned()),
                Ok(None) => {}
                Err(ner::NerError::OverBudget) => {
                    crate::telemetry::metrics()
                        .pii_ner
                        .with_label_values(&["over_budget"])
                        .inc();
                }
                Err(ner::NerError::Failed(e)) => {
                    crate::telemetry::metrics()
                        .pii_ner
                        .with_label_values(&["error"])
                        .inc();
                    tracing::warn!(error = %e, "PII: NER inference failed; patterns only");
                }
            }
        }
        fields::drop_misreads(text, &mut found);
        // After the model: the address a name is written before may be the model's.
        names::before_contacts(text, &mut found);
        // Commerce terms are dropped before the spans grow (a model's "address" that is a
        // product stays one, not a product with its size) and after (a name found after
        // an address may be a brand).
        self.drop_kept(text, &mut found);
        address::widen(text, &mut found);
        names::confirm(text, &mut found);
        known_names::coordinated(text, &mut found);
        names::drop_not_people(text, &mut found);
        names::widen(text, &mut found);
        names::after_addresses(text, &mut found);
        if let Some(deny) = &self.deny {
            found.extend(deny.find_iter(text).map(|m| Finding {
                entity: Entity::Custom,
                start: m.start(),
                end: m.end(),
                score: 1.0,
                source: Source::DenyList,
            }));
        }
        let ner_min = self.settings.ner_min_score.max(self.settings.min_score);
        found.retain(|f| {
            let min = match f.source {
                Source::Ner => ner_min,
                _ => self.settings.min_score,
            };
            f.score >= min
                && text
                    .get(f.start..f.end)
                    .is_some_and(|value| !self.allow.contains(&value.to_lowercase()))
        });
        self.drop_kept(text, &mut found);
        resolve_overlaps(text, found)
    }

    /// Drops the findings inside the profile's commerce terms, listed and learned.
    fn drop_kept(&self, text: &str, found: &mut Vec<Finding>) {
        if let Some(keep) = &self.keep {
            keep.drop_inside(text, found);
        }
        for learned in &self.learned {
            if let Some(keep) = learned.current() {
                keep.drop_inside(text, found);
            }
        }
    }
}

/// Keeps the best of overlapping findings: validated patterns and deny-list terms before
/// the model, then the higher score, then the longer span. A name or an address is never
/// lost to a partial overlap: one that overlaps only a kept one of its own type widens it
/// ("Dr Tom Graham" from a cue and "Tom Graham" from the model are one name), and one that
/// overlaps others keeps what they leave of it ("Gordon Hill, Flat 4, …", an address to
/// the model, is the name "Gordon Hill" and the address "Flat 4, …").
pub fn resolve_overlaps(text: &str, mut found: Vec<Finding>) -> Vec<Finding> {
    if found.len() < 2 {
        return found;
    }
    found.sort_by(|a, b| {
        (a.source == Source::Ner)
            .cmp(&(b.source == Source::Ner))
            .then(b.score.total_cmp(&a.score))
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        let hits: Vec<usize> = (0..kept.len())
            .filter(|&i| kept.get(i).is_some_and(|k| f.overlaps(k)))
            .collect();
        let free_text = matches!(f.entity, Entity::Person | Entity::Address);
        match hits.as_slice() {
            [] => kept.push(f),
            &[i] if free_text && kept.get(i).is_some_and(|k| k.entity == f.entity) => {
                let Some(k) = kept.get(i) else { continue };
                let (start, end) = (k.start.min(f.start), k.end.max(f.end));
                let clear = kept
                    .iter()
                    .enumerate()
                    .all(|(j, o)| j == i || end <= o.start || start >= o.end);
                if let Some(k) = kept.get_mut(i).filter(|_| clear) {
                    k.start = start;
                    k.end = end;
                }
            }
            _ if free_text => {
                let parts = uncovered(text, &f, &kept);
                kept.extend(parts);
            }
            _ => {}
        }
    }
    kept.sort_by_key(|f| f.start);
    kept
}

/// The parts of `f` no finding of `kept` covers that hold a letter or digit, trimmed of
/// the spaces and punctuation at their edges.
fn uncovered(text: &str, f: &Finding, kept: &[Finding]) -> Vec<Finding> {
    let mut cuts: Vec<(usize, usize)> = kept
        .iter()
        .filter(|k| f.overlaps(k))
        .map(|k| (k.start.max(f.start), k.end.min(f.end)))
        .collect();
    cuts.sort_unstable();
    let mut parts = Vec::new();
    let mut from = f.start;
    for (s, e) in cuts.into_iter().chain([(f.end, f.end)]) {
        if let Some(part) = text.get(from..s) {
            let edge = |c: char| !c.is_alphanumeric();
            let trimmed = part.trim_start_matches(edge);
            let start = from + (part.len() - trimmed.len());
            let end = start + trimmed.trim_end_matches(edge).len();
            // A part is worth a finding when it holds a word, not a lone digit or letter;
            // an address's, when it still holds a number or a name ("al" is what a phone
            // leaves of "al +34 612 34 56 78").
            let word = text.get(start..end).is_some_and(|p| {
                p.chars().filter(|c| c.is_alphanumeric()).count() > 1
                    && p.chars().any(char::is_alphabetic)
                    && (f.entity != Entity::Address
                        || p.chars().any(|c| c.is_ascii_digit() || c.is_uppercase()))
            });
            if word {
                parts.push(Finding {
                    start,
                    end,
                    ..f.clone()
                });
            }
        }
        from = from.max(e);
    }
    parts
}

/// Every configured profile, built once.
#[derive(Debug, Default)]
pub struct Profiles {
    default: Option<String>,
    profiles: std::collections::HashMap<String, std::sync::Arc<Profile>>,
    /// Key of the `hash` action (from the environment).
    pub hash_key: Arc<[u8]>,
    /// Whether the configuration names a NER model (loaded or not).
    pub ner_configured: bool,
    /// What one request may spend on the model.
    pub ner_limits: Option<ner::NerLimits>,
    /// Model sessions one tenant may use at a time.
    pub ner_share: Option<Arc<ner::TenantShare>>,
    /// Terms learned from each tool a profile names in `keep_terms_from_tools`.
    learned: std::collections::HashMap<String, Arc<keep::Learned>>,
}

impl Profiles {
    pub fn from_config(config: Option<&PiiConfig>) -> anyhow::Result<Profiles> {
        let Some(config) = config else {
            return Ok(Profiles::default());
        };
        recognize::warm();
        address::warm();
        cues::warm();
        known_names::warm();
        let ner = match &config.ner {
            Some(files) => match NerModel::load(&ner::NerFiles {
                model_dir: files.model_dir.clone(),
                model_file: files.model_file.clone(),
                runtime: files.runtime.clone(),
                cache_entries: files.cache_entries,
                threads: files.threads,
                sessions: files.sessions,
            }) {
                Ok(n) => {
                    tracing::info!("PII: NER model loaded");
                    Some(Arc::new(n))
                }
                Err(e) => {
                    // Profiles with `ner: required` refuse requests; others run patterns only.
                    tracing::error!(error = %e, "PII: NER model not loaded (run scripts/fetch-models.sh)");
                    None
                }
            },
            None => None,
        };
        let learned: std::collections::HashMap<String, Arc<keep::Learned>> = config
            .profiles
            .values()
            .flat_map(|p| p.keep_terms_from_tools.iter())
            .map(|t| (t.clone(), Arc::new(keep::Learned::default())))
            .collect();
        let mut profiles = std::collections::HashMap::new();
        for (name, p) in &config.profiles {
            let profile = Profile::new(name, p)?
                .with_ner(ner.clone())
                .with_learned(&learned);
            profiles.insert(name.clone(), Arc::new(profile));
        }
        let hash_key = match std::env::var(&config.hash_key_env) {
            Ok(k) if !k.is_empty() => k.into_bytes(),
            _ => {
                let uses_hash = config.profiles.values().any(|p| {
                    p.default_action == PiiAction::Hash
                        || p.actions.values().any(|a| *a == PiiAction::Hash)
                });
                if uses_hash {
                    tracing::warn!(
                        env = %config.hash_key_env,
                        "PII: no hash key set; using a random key, so hashed values change on restart"
                    );
                }
                let mut key = vec![0u8; 32];
                rand::Rng::fill(&mut rand::rng(), &mut key[..]);
                key
            }
        };
        Ok(Profiles {
            default: config.default_profile.clone(),
            profiles,
            hash_key: hash_key.into(),
            ner_configured: config.ner.is_some(),
            ner_limits: config.ner.as_ref().map(|n| ner::NerLimits {
                max_bytes: n.max_request_bytes,
                max_windows: n.max_request_windows,
                max_time: std::time::Duration::from_millis(n.max_request_ms),
            }),
            ner_share: ner
                .as_ref()
                .map(|m| Arc::new(ner::TenantShare::new(m.sessions.saturating_sub(1).max(1)))),
            learned,
        })
    }

    /// Learns the commerce terms in a result of `tool`, for the profiles that keep its
    /// terms (nothing when none does).
    pub fn learn(&self, tool: &str, result: &serde_json::Value) {
        if let Some(learned) = self.learned.get(tool) {
            let added = learned.learn(result);
            if added > 0 {
                tracing::debug!(
                    tool,
                    added,
                    total = learned.len(),
                    "PII: commerce terms learned"
                );
            }
        }
    }

    /// The profile a request uses: its policy rule's, else the default; `None` when PII
    /// redaction is not configured for it.
    pub fn select(&self, from_policy: Option<&str>) -> Option<std::sync::Arc<Profile>> {
        from_policy
            .and_then(|n| self.profiles.get(n))
            .or_else(|| self.default.as_deref().and_then(|n| self.profiles.get(n)))
            .cloned()
    }

    pub fn get(&self, name: &str) -> Option<std::sync::Arc<Profile>> {
        self.profiles.get(name).cloned()
    }
}

/// A profile from its YAML settings, for tests.
#[cfg(test)]
pub(crate) fn test_profile(yaml: &str) -> Profile {
    let settings: PiiProfile = serde_yaml_ng::from_str(yaml).expect("profile YAML");
    Profile::new("p", &settings).expect("profile")
}

/// The types and values one pass of the detector finds in `text`, for tests.
#[cfg(test)]
pub(crate) fn typed_found_by(scan: fn(&str, &mut Vec<Finding>), text: &str) -> Vec<(Entity, &str)> {
    let mut out = Vec::new();
    scan(text, &mut out);
    out.iter()
        .filter_map(|f| text.get(f.start..f.end).map(|v| (f.entity, v)))
        .collect()
}

/// The spans one pass of the detector finds in `text`, for tests.
#[cfg(test)]
pub(crate) fn found_by(scan: fn(&str, &mut Vec<Finding>), text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    scan(text, &mut out);
    out.iter()
        .filter_map(|f| text.get(f.start..f.end))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(yaml: &str) -> Profile {
        test_profile(yaml)
    }

    #[test]
    fn allow_and_deny_lists() {
        let p = profile("allow: [help@acme.example]\ndeny: [Project Falcon]\n");
        let text = "Mail help@acme.example or jane@x.io about project falcon.";
        let kinds: Vec<(Entity, &str)> = p
            .detect(text)
            .iter()
            .map(|f| (f.entity, &text[f.start..f.end]))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (Entity::Email, "jane@x.io"),
                (Entity::Custom, "project falcon")
            ]
        );
    }

    #[test]
    fn overlaps_keep_the_stronger_finding() {
        let f = |entity, start, end, score| Finding {
            entity,
            start,
            end,
            score,
            source: Source::Pattern,
        };
        let text = "x".repeat(40);
        let kept = resolve_overlaps(
            &text,
            vec![
                f(Entity::Phone, 0, 10, 0.6),
                f(Entity::CreditCard, 0, 19, 0.9),
                f(Entity::Email, 20, 30, 0.95),
            ],
        );
        let entities: Vec<Entity> = kept.iter().map(|k| k.entity).collect();
        assert_eq!(entities, vec![Entity::CreditCard, Entity::Email]);
    }

    #[test]
    fn names_and_addresses_are_never_lost_to_a_partial_overlap() {
        let text = "ship to Gordon Hill, Flat 4, Elliott Inlet, DD46 0UZ";
        let at = |s: &str| text.find(s).unwrap();
        let f = |entity, start, end, score, source| Finding {
            entity,
            start,
            end,
            score,
            source,
        };
        let name = (at("Gordon"), at(", Flat"));
        let kept = resolve_overlaps(
            text,
            vec![
                f(Entity::Person, name.0, name.1, 0.8, Source::Cue),
                // The model took the name for a street and the address grew over it.
                f(Entity::Address, name.0, text.len(), 0.98, Source::Ner),
                f(Entity::Address, at("Elliott"), text.len(), 0.6, Source::Ner),
                // A title the cue found and a name the model found are one name.
                f(Entity::Person, at("Hill"), name.1, 0.99, Source::Ner),
            ],
        );
        let spans: Vec<(Entity, &str)> = kept
            .iter()
            .map(|k| (k.entity, &text[k.start..k.end]))
            .collect();
        assert_eq!(
            spans,
            [
                (Entity::Person, "Gordon Hill"),
                (Entity::Address, "Flat 4, Elliott Inlet, DD46 0UZ")
            ]
        );
    }

    #[test]
    fn what_a_phone_leaves_of_an_address_is_no_address() {
        let text = "llámame al +34 612 34 56 78 o al 912 345 678";
        let phone = text.find("+34").unwrap();
        let kept = resolve_overlaps(
            text,
            vec![
                Finding {
                    entity: Entity::Phone,
                    start: phone,
                    end: phone + "+34 612 34 56 78".len(),
                    score: 0.9,
                    source: Source::Pattern,
                },
                Finding {
                    entity: Entity::Address,
                    start: text.find("al").unwrap(),
                    end: phone + "+34 612 34 56 78".len(),
                    score: 0.7,
                    source: Source::Ner,
                },
            ],
        );
        let entities: Vec<Entity> = kept.iter().map(|k| k.entity).collect();
        assert_eq!(entities, [Entity::Phone]);
    }
}
