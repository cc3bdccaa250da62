//! Applying a profile to one request's texts: each finding is allowed, redacted, masked,
//! hashed, pseudonymized (through the request's vault) or makes the request blocked.
//! Counts by entity type and action are kept for metrics and the audit record.

use std::collections::{BTreeMap, BTreeSet};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::vault::Vault;
use super::{Finding, Profile};
use crate::config::{Entity, PiiAction, RestoreSource, ScanOutput};

/// The request carried entity types its profile blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked(pub Vec<Entity>);

pub struct Redactor<'a> {
    profile: &'a Profile,
    /// Applying the profile to an answer: nothing is pseudonymized or blocked there (the
    /// answer exists already and a placeholder means nothing to its reader), so both
    /// withhold the value as `redact` does.
    output: bool,
    /// Whether the NER model reads the texts (for answers only when the profile's
    /// `scan_output` is `ner`).
    read_model: bool,
    hash_key: &'a [u8],
    tenant: &'a str,
    /// Where the text being redacted comes from in the request (for `restore_sources`).
    origin: RestoreSource,
    /// The request's allowance of model work; `None` reads without a bound.
    pub ner_budget: Option<super::ner::NerBudget>,
    pub vault: Vault,
    pub counts: BTreeMap<(Entity, PiiAction), u64>,
    blocked: BTreeSet<Entity>,
}

impl<'a> Redactor<'a> {
    pub fn new(profile: &'a Profile, hash_key: &'a [u8], tenant: Option<&'a str>) -> Self {
        Redactor {
            profile,
            output: false,
            read_model: true,
            hash_key,
            tenant: tenant.unwrap_or(""),
            origin: RestoreSource::Other,
            ner_budget: None,
            vault: Vault::default(),
            counts: BTreeMap::new(),
            blocked: BTreeSet::new(),
        }
    }

    /// A redactor applying patterns to text that exists already, as to an answer (see
    /// [`Redactor::output`]), without the model.
    pub fn for_output(profile: &'a Profile, hash_key: &'a [u8], tenant: Option<&'a str>) -> Self {
        Redactor {
            output: true,
            read_model: false,
            ..Redactor::new(profile, hash_key, tenant)
        }
    }

    /// A redactor for the model's answer: patterns, and the model when the profile's
    /// `scan_output` is `ner`.
    pub fn for_answer(profile: &'a Profile, hash_key: &'a [u8], tenant: Option<&'a str>) -> Self {
        Redactor {
            output: true,
            read_model: profile.settings.scan_output == ScanOutput::Ner,
            ..Redactor::new(profile, hash_key, tenant)
        }
    }

    /// A redactor for a tool's result: applied as to an answer (the result exists
    /// already), with the NER model reading it, since backends return names and
    /// addresses that no pattern finds.
    pub fn for_result(profile: &'a Profile, hash_key: &'a [u8], tenant: Option<&'a str>) -> Self {
        Redactor {
            output: true,
            ..Redactor::new(profile, hash_key, tenant)
        }
    }

    pub fn profile(&self) -> &Profile {
        self.profile
    }

    /// Notes where the next texts come from; returns the previous origin.
    pub fn set_origin(&mut self, origin: RestoreSource) -> RestoreSource {
        std::mem::replace(&mut self.origin, origin)
    }

    fn action(&self, entity: Entity) -> PiiAction {
        match self.profile.action(entity) {
            PiiAction::Pseudonymize | PiiAction::Block if self.output => PiiAction::Redact,
            action => action,
        }
    }

    /// The redacted text, or `None` when nothing in it changes.
    pub fn text(&mut self, text: &str) -> Option<String> {
        let findings = self.detect(text);
        self.apply(text, &findings)
    }

    /// What the profile finds in `text`, the model read as this redactor allows.
    pub fn detect(&mut self, text: &str) -> Vec<Finding> {
        match (&mut self.ner_budget, self.read_model) {
            (_, false) => self.profile.detect_patterns(text),
            (Some(budget), true) => self.profile.detect_within(text, budget),
            (None, true) => self.profile.detect(text),
        }
    }

    /// Applies findings (sorted, non-overlapping) to `text`.
    pub fn apply(&mut self, text: &str, findings: &[Finding]) -> Option<String> {
        if findings.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut changed = false;
        for f in findings {
            // Findings are sorted and apart; one that is not (or not on character
            // boundaries) is skipped rather than trusted.
            let (Some(before), Some(value)) = (text.get(last..f.start), text.get(f.start..f.end))
            else {
                continue;
            };
            let action = self.action(f.entity);
            *self.counts.entry((f.entity, action)).or_default() += 1;
            let replacement = match action {
                PiiAction::Allow => continue,
                PiiAction::Block => {
                    self.blocked.insert(f.entity);
                    continue;
                }
                PiiAction::Redact => format!("[{}]", f.entity.name()),
                PiiAction::Mask => mask(value),
                PiiAction::Hash => self.hash(f.entity, value),
                PiiAction::Pseudonymize => self.vault.placeholder(f.entity, value, self.origin),
            };
            out.push_str(before);
            out.push_str(&replacement);
            last = f.end;
            changed = true;
        }
        if !changed {
            return None;
        }
        out.push_str(text.get(last..).unwrap_or_default());
        Some(out)
    }

    fn hash(&self, entity: Entity, value: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.hash_key) else {
            return format!("[{}]", entity.name());
        };
        mac.update(self.tenant.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let short = hex::encode(digest.get(..6).unwrap_or_default());
        format!("[{}:{short}]", entity.name())
    }

    /// The entity types that block the request, if any.
    pub fn blocked(&self) -> Option<Blocked> {
        (!self.blocked.is_empty()).then(|| Blocked(self.blocked.iter().copied().collect()))
    }
}

/// Stars every letter and digit but the last four; separators stay.
fn mask(value: &str) -> String {
    let total = value.chars().filter(|c| c.is_alphanumeric()).count();
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                seen += 1;
                if seen + 4 <= total { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::test_profile as profile;

    #[test]
    fn each_action_rewrites_its_way() {
        let p = profile(
            "actions: {EMAIL: pseudonymize, CREDIT_CARD: mask, IBAN: redact, PHONE: hash, IP_ADDRESS: allow}\n",
        );
        let mut r = Redactor::new(&p, b"key", Some("acme"));
        let text = "jane@x.io paid with 4111 1111 1111 1111 from DE89 3704 0044 0532 0130 00, call +1 415 555 2671, ip 10.0.0.7; cc jane@x.io";
        let out = r.text(text).unwrap();
        let email = format!("<EMAIL_1_{}>", r.vault.nonce());
        assert!(
            out.starts_with(&format!(
                "{email} paid with **** **** **** 1111 from [IBAN], call [PHONE:"
            )),
            "{out}"
        );
        assert!(out.ends_with(&format!("ip 10.0.0.7; cc {email}")), "{out}");
        assert_eq!(r.counts[&(Entity::Email, PiiAction::Pseudonymize)], 2);
        assert!(r.blocked().is_none());
        // The hash is stable per tenant and differs between tenants.
        let mut again = Redactor::new(&p, b"key", Some("acme"));
        let mut other = Redactor::new(&p, b"key", Some("globex"));
        let phone = "+1 415 555 2671";
        assert_eq!(
            again.text(phone),
            Redactor::new(&p, b"key", Some("acme")).text(phone)
        );
        assert_ne!(again.text(phone), other.text(phone));
    }

    #[test]
    fn block_names_entity_types_only() {
        let p = profile("actions: {SECRET: block}\n");
        let mut r = Redactor::new(&p, b"k", None);
        assert_eq!(r.text("my key AKIAIOSFODNN7EXAMPLE"), None);
        assert_eq!(r.blocked(), Some(Blocked(vec![Entity::Secret])));
    }
}
