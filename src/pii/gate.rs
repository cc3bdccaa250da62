//! One request's redaction — the PII stage's entry point: its profile applied to every
//! text of the request the provider will see, the NER model's work run off the async
//! workers (`spawn_blocking`) with its sessions shared fairly between tenants, and what
//! the answer then needs (the vault to restore from, output scanning). A refusal names
//! entity types, never values.

use std::sync::Arc;

use super::ner::NerBudget;
use super::response::{Answer, OutputScan};
use super::{Blocked, Counts, Profile, Profiles, Redactor, Vault, VaultSnapshot, request};
use crate::config::{NerMode, ScanOutput};
use crate::openai::ApiRequest;
use crate::telemetry::metrics;
use crate::tokens::Encoding;

/// A request redacted by its profile.
pub struct Redacted {
    /// Whether the request's body changed.
    pub changed: bool,
    /// Findings by entity type and the action taken.
    pub counts: Counts,
    /// The profile ran without the NER model it would have used.
    pub ner_skipped: bool,
    /// What the answer needs: restoring placeholders, scanning; `None` when neither.
    pub answer: Option<Answer>,
    /// The profile's output scan, for text the audit record keeps.
    pub scan: OutputScan,
    /// The request's placeholders, for the turns that continue its conversation (a
    /// Responses request the provider stores).
    pub conversation: Option<VaultSnapshot>,
}

/// Why the request may not be sent.
#[derive(Debug)]
pub enum Refusal {
    /// The profile requires the NER model and it is not loaded.
    NerUnavailable,
    /// More text than the model reads per request, and the profile requires the model.
    TooLarge,
    /// Token-id inputs the model's tokenizer cannot turn back into text.
    TokenInput,
    /// Entity types the profile blocks.
    Blocked(Blocked),
    /// Detection itself failed.
    Failed,
}

/// A refused request, with what was found before the refusal (for the audit record).
pub struct Refused {
    pub refusal: Refusal,
    pub counts: Counts,
    pub ner_skipped: bool,
}

impl From<Refusal> for Refused {
    fn from(refusal: Refusal) -> Refused {
        Refused {
            refusal,
            counts: Counts::new(),
            ner_skipped: false,
        }
    }
}

/// What the walk over the request came to.
struct Walked {
    changed: bool,
    vault: Vault,
    counts: Counts,
    blocked: Option<Blocked>,
    tokens_refused: bool,
    /// Some text was left to the patterns: the request's allowance of model work ran out.
    ner_exhausted: bool,
}

/// What one walk works with (owned, to move onto a blocking thread).
struct Job {
    profile: Arc<Profile>,
    key: Arc<[u8]>,
    tenant: Option<String>,
    vault: Vault,
    encoding: Encoding,
    ner_limits: Option<super::ner::NerLimits>,
}

fn walk(job: Job, req: &mut ApiRequest) -> Walked {
    let mut r = Redactor::new(&job.profile, &job.key, job.tenant.as_deref());
    r.vault = job.vault;
    r.ner_budget = job.ner_limits.map(NerBudget::new);
    let walked = request::redact(req, &mut r, Some(&job.encoding));
    let blocked = r.blocked();
    Walked {
        changed: walked.unwrap_or(false),
        ner_exhausted: r.ner_budget.as_ref().is_some_and(|b| b.exhausted),
        vault: r.vault,
        counts: r.counts,
        blocked,
        tokens_refused: walked.is_err(),
    }
}

/// A tool's result, redacted.
pub struct RedactedResult {
    pub value: serde_json::Value,
    pub counts: Counts,
}

impl Profiles {
    /// Redacts every string of a tool's result by `profile` before a model can read it:
    /// as in an answer, a type the profile pseudonymizes or blocks is withheld as
    /// `[TYPE]` (the result exists already, and a placeholder would mean nothing to the
    /// next request). The NER model reads it when the profile uses one, off the async
    /// workers and within the per-request allowance.
    /// `read_model: false` leaves the NER model out (validated patterns and deny lists
    /// only).
    pub async fn redact_result(
        &self,
        profile: Arc<Profile>,
        tenant: Option<&str>,
        mut value: serde_json::Value,
        read_model: bool,
    ) -> Result<RedactedResult, Refusal> {
        if read_model && profile.ner_missing() {
            metrics().pii_ner.with_label_values(&["unavailable"]).inc();
            return Err(Refusal::NerUnavailable);
        }
        let key = self.hash_key.clone();
        let tenant = tenant.map(str::to_string);
        let limits = self.ner_limits;
        let uses_model = read_model && profile.ner().is_some();
        let walk = move || {
            let mut r = match read_model {
                true => Redactor::for_result(&profile, &key, tenant.as_deref()),
                false => Redactor::for_output(&profile, &key, tenant.as_deref()),
            };
            r.ner_budget = limits.map(NerBudget::new);
            request::json_value(&mut value, &mut r);
            (value, r.counts)
        };
        let (value, counts) = if uses_model {
            tokio::task::spawn_blocking(walk)
                .await
                .map_err(|_| Refusal::Failed)?
        } else {
            walk()
        };
        Ok(RedactedResult { value, counts })
    }

    /// The filter for an answer Warden reads again later — a stored response, or its
    /// input items — under `profile`, with the placeholders of its conversation.
    pub fn stored_answer(
        &self,
        profile: Arc<Profile>,
        tenant: Option<&str>,
        vault: Option<VaultSnapshot>,
    ) -> Option<Answer> {
        let vault = vault
            .map(Vault::resume)
            .unwrap_or_default()
            .restoring_only(&profile.settings.restore_sources);
        answer(&profile, vault, &self.output_scan(&profile, tenant))
    }

    fn output_scan(&self, profile: &Arc<Profile>, tenant: Option<&str>) -> OutputScan {
        OutputScan {
            profile: profile.clone(),
            hash_key: self.hash_key.clone(),
            tenant: tenant.map(str::to_string),
            ner_budget: Arc::new(std::sync::Mutex::new(self.ner_limits.map(NerBudget::new))),
        }
    }

    /// Redacts `req` in place by `profile`. `raw` is the body as the client sent it
    /// (placeholder nonces never occur in it); `encoding` decodes token-id inputs;
    /// `resumed` holds the placeholders of the conversation the request continues.
    pub async fn redact(
        &self,
        profile: Arc<Profile>,
        tenant: Option<&str>,
        req: &mut ApiRequest,
        raw: &[u8],
        resumed: Option<VaultSnapshot>,
        encoding: &Encoding,
    ) -> Result<Redacted, Refused> {
        if profile.ner_missing() {
            metrics().pii_ner.with_label_values(&["unavailable"]).inc();
            return Err(Refusal::NerUnavailable.into());
        }
        let mut ner_skipped = false;
        if profile.settings.ner == NerMode::Optional
            && profile.ner().is_none()
            && self.ner_configured
        {
            metrics().pii_ner.with_label_values(&["unavailable"]).inc();
            ner_skipped = true;
        }
        let job = Job {
            vault: match resumed {
                Some(snapshot) => Vault::resume(snapshot),
                None => Vault::for_request(raw),
            }
            .restoring_only(&profile.settings.restore_sources),
            profile: profile.clone(),
            key: self.hash_key.clone(),
            tenant: tenant.map(str::to_string),
            encoding: encoding.clone(),
            ner_limits: self.ner_limits,
        };
        let walked = if profile.ner().is_some() {
            // One tenant's requests share a part of the model's sessions, never all of them.
            let _share = match &self.ner_share {
                Some(share) => share.acquire(tenant.unwrap_or("-")).await,
                None => None,
            };
            let mut owned = req.clone();
            let (done, walked) = tokio::task::spawn_blocking(move || {
                let walked = walk(job, &mut owned);
                (owned, walked)
            })
            .await
            .map_err(|_| Refused::from(Refusal::Failed))?;
            *req = done;
            walked
        } else {
            walk(job, req)
        };
        let refusal = if walked.ner_exhausted && profile.settings.ner == NerMode::Required {
            Some(Refusal::TooLarge)
        } else if walked.tokens_refused {
            Some(Refusal::TokenInput)
        } else {
            walked.blocked.map(Refusal::Blocked)
        };
        ner_skipped |= walked.ner_exhausted && profile.settings.ner != NerMode::Required;
        if let Some(refusal) = refusal {
            return Err(Refused {
                refusal,
                counts: walked.counts,
                ner_skipped,
            });
        }
        let scan = self.output_scan(&profile, tenant);
        let conversation = match req {
            ApiRequest::Responses(r) if r.stored() => Some(walked.vault.snapshot()),
            _ => None,
        };
        Ok(Redacted {
            changed: walked.changed,
            counts: walked.counts,
            ner_skipped,
            conversation,
            answer: answer(&profile, walked.vault, &scan),
            scan,
        })
    }
}

/// The answer's filter under `profile`: restoring from `vault` (when the profile
/// restores) and scanning (when it scans output).
fn answer(profile: &Profile, vault: Vault, scan: &OutputScan) -> Option<Answer> {
    Answer::new(
        profile.settings.restore.then_some(vault),
        (profile.settings.scan_output != ScanOutput::Off).then(|| scan.clone()),
    )
}
