//! The NER model (Rampart: BERT, 6 layers, BIO labels) run in process through ONNX
//! Runtime (`ort`, loaded dynamically from the library file; see `onnx`) with its WordPiece
//! `tokenizer.json`. Sub-token labels are merged into spans (adjacent pieces of one type,
//! given name + surname → PERSON, street + number + city → ADDRESS; a city, state or zip
//! code alone is a place, not an address, so warehouse cities survive). Inputs longer than
//! the model's 512-token window are read in overlapping windows. Results are cached under a
//! keyed hash of the text (no plaintext kept), so a conversation pays only for new turns.
//! Inference runs on a small pool of sessions (one inference each at a time), and each
//! request gets a [`NerBudget`] — bytes, windows and time — beyond which its remaining
//! texts are not run through the model, so no request can occupy the model for long.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::value::Tensor;

use super::{Finding, Source, resolve_overlaps};
use crate::config::Entity;
use crate::onnx::{self, SessionPool, TextCache};

/// Lower-case words of the shop's languages that the model sometimes takes for a name
/// when one stands alone next to a number or at a message's end: courtesies and
/// greetings (and the words for "born", `names::BORN`). Written in lower case they are
/// never a name.
const COURTESY: &[&str] = &[
    "thanks", "thx", "cheers", "merci", "gracias", "danke", "grazie", "obrigado", "obrigada",
    "bedankt", "dank", "hola", "ciao", "salut", "bonjour", "hallo", "hello", "hi", "hey", "nee",
];

/// Whether a span is a courtesy or a word for "born" in lower case, with at most short
/// words after it ("nata il"), or the word that introduces a phone number ("celular",
/// "Handy"), rather than a name.
fn courtesy(span: &str) -> bool {
    let mut words = span.split_whitespace();
    let courtesy = words
        .next()
        .is_some_and(|w| COURTESY.contains(&w) || super::names::BORN.contains(&w))
        && words.all(|w| w.chars().count() <= 3 && !w.chars().any(char::is_uppercase));
    courtesy || super::recognize::phone_cue(span)
}

/// Words that number a door, a unit or a place in a building or a warehouse, never a
/// street's name.
const UNIT_WORDS: &[&str] = &[
    "number",
    "no",
    "nr",
    "num",
    "nummer",
    "numéro",
    "numero",
    "house",
    "door",
    "flat",
    "apt",
    "apartment",
    "unit",
    "room",
    "floor",
    "suite",
    "level",
    "block",
    "box",
    "gate",
    "platform",
    "aisle",
    "bay",
    "dock",
    "shelf",
    "rack",
    "bin",
];

/// Whether every word of `span` with letters is a unit word ("number 12", "Flat 3B").
fn only_unit_words(span: &str) -> bool {
    span.split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.trim_matches(|c: char| !c.is_alphabetic()).to_lowercase())
        .filter(|w| w.chars().count() >= 2)
        .all(|w| UNIT_WORDS.contains(&w.as_str()))
}

/// Tokens per window, [CLS] and [SEP] included.
const WINDOW: usize = 512;
/// Tokens shared by consecutive windows.
const OVERLAP: usize = 64;
/// Bytes between two pieces that still belong to one span (", " in an address).
const MAX_GAP: usize = 2;
/// Mean label probability below which a span is not reported at all; each profile keeps
/// the spans at or above its own `ner_min_score` (0.65 by default).
const FLOOR: f32 = 0.5;

/// What one model label means.
#[derive(Debug, Clone, Copy)]
struct Label {
    entity: Option<Entity>,
    /// A street or unit: what makes an address out of a place or a number.
    street: bool,
}

fn label(name: &str) -> Label {
    let kind = name.trim_start_matches("B-").trim_start_matches("I-");
    // Identifier labels (tax ids, licences, accounts…) fire on SKUs and order numbers in
    // commerce text, and emails and phones are the validated recognizers' job: the model
    // contributes what patterns cannot find — names and street addresses.
    let entity = match kind {
        "GIVEN_NAME" | "SURNAME" => Some(Entity::Person),
        "BUILDING_NUMBER" | "STREET_NAME" | "SECONDARY_ADDRESS" | "CITY" | "STATE" | "ZIP_CODE" => {
            Some(Entity::Address)
        }
        _ => None, // O, URL
    };
    Label {
        entity,
        street: matches!(kind, "STREET_NAME" | "SECONDARY_ADDRESS"),
    }
}

/// Where the model and the ONNX Runtime library are.
#[derive(Debug, Clone)]
pub struct NerFiles {
    /// Directory with the model, `tokenizer.json` and `config.json`.
    pub model_dir: PathBuf,
    /// The ONNX model, relative to `model_dir`.
    pub model_file: PathBuf,
    /// `libonnxruntime.so` to load.
    pub runtime: PathBuf,
    pub cache_entries: usize,
    pub threads: usize,
    /// Sessions in the pool (inferences that can run at once).
    pub sessions: usize,
}

/// What one request may spend on the model (cache hits are free).
#[derive(Debug, Clone, Copy)]
pub struct NerLimits {
    pub max_bytes: usize,
    pub max_windows: usize,
    pub max_time: Duration,
}

/// One request's remaining allowance of model work.
#[derive(Debug)]
pub struct NerBudget {
    bytes_left: usize,
    windows_left: usize,
    /// Inference time left (waiting for a session does not count).
    time_left: Duration,
    /// A text was left to the patterns because the allowance ran out.
    pub exhausted: bool,
}

impl NerBudget {
    pub fn new(limits: NerLimits) -> NerBudget {
        NerBudget {
            bytes_left: limits.max_bytes,
            windows_left: limits.max_windows,
            time_left: limits.max_time,
            exhausted: false,
        }
    }

    fn refuse(&mut self) -> NerError {
        self.exhausted = true;
        NerError::OverBudget
    }
}

/// Why the model gave no findings for a text.
#[derive(Debug, thiserror::Error)]
pub enum NerError {
    #[error("the request's allowance of NER work is spent")]
    OverBudget,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<ort::Error> for NerError {
    fn from(e: ort::Error) -> Self {
        NerError::Failed(anyhow::anyhow!("{e}"))
    }
}

/// Model sessions per tenant: one tenant's requests wait for each other, never for
/// another tenant's, as long as fewer tenants than sessions are busy.
#[derive(Debug)]
pub struct TenantShare {
    per_tenant: usize,
    tenants: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// Tenants remembered before idle ones are forgotten.
const TENANTS_KEPT: usize = 1024;

impl TenantShare {
    pub fn new(per_tenant: usize) -> TenantShare {
        TenantShare {
            per_tenant: per_tenant.max(1),
            tenants: Mutex::default(),
        }
    }

    /// Waits for one of the tenant's shares; held while its request uses the model.
    pub async fn acquire(&self, tenant: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let semaphore = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            if tenants.len() >= TENANTS_KEPT && !tenants.contains_key(tenant) {
                let full = self.per_tenant;
                tenants.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < full);
            }
            tenants
                .entry(tenant.to_string())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_tenant)))
                .clone()
        };
        semaphore.acquire_owned().await.ok()
    }
}

pub struct Ner {
    pool: SessionPool,
    /// How many sessions the pool holds.
    pub sessions: usize,
    tokenizer: tokenizers::Tokenizer,
    labels: Vec<Label>,
    cache: TextCache<Vec<Finding>>,
}

impl std::fmt::Debug for Ner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ner(rampart)")
    }
}

impl Ner {
    pub fn load(files: &NerFiles) -> anyhow::Result<Ner> {
        let env = onnx::runtime(&files.runtime)?;
        let model = files.model_dir.join(&files.model_file);
        let pool = SessionPool::load("pii_ner", env, &model, files.sessions, files.threads)
            .map_err(|e| anyhow::anyhow!("NER {e}"))?;
        let tokenizer = onnx::tokenizer(&files.model_dir.join("tokenizer.json"))?;
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(files.model_dir.join("config.json"))?)?;
        let id2label = config
            .get("id2label")
            .and_then(|v| v.as_object())
            .ok_or_else(|| anyhow::anyhow!("config.json has no id2label"))?;
        let mut labels = vec![label("O"); id2label.len()];
        for (id, name) in id2label {
            let i: usize = id.parse()?;
            if let (Some(slot), Some(name)) = (labels.get_mut(i), name.as_str()) {
                *slot = label(name);
            }
        }
        Ok(Ner {
            sessions: pool.size(),
            pool,
            tokenizer,
            labels,
            cache: TextCache::new(files.cache_entries),
        })
    }

    /// The model's findings in `text` (from the cache when this text was seen before),
    /// without a budget (tools and benchmarks).
    pub fn detect(&self, text: &str) -> anyhow::Result<Arc<Vec<Finding>>> {
        let mut unlimited = NerBudget::new(NerLimits {
            max_bytes: usize::MAX,
            max_windows: usize::MAX,
            max_time: Duration::from_secs(86_400),
        });
        self.detect_within(text, &mut unlimited)
            .map_err(|e| match e {
                NerError::Failed(e) => e,
                over => anyhow::anyhow!("{over}"),
            })
    }

    /// The model's findings in `text`, charged to a request's `budget`: a text the budget
    /// cannot cover whole is not run (`OverBudget`) and the budget says so.
    pub fn detect_within(
        &self,
        text: &str,
        budget: &mut NerBudget,
    ) -> Result<Arc<Vec<Finding>>, NerError> {
        if text.trim().is_empty() {
            return Ok(Arc::new(Vec::new()));
        }
        if let Some(hit) = self.cache.get(text) {
            crate::telemetry::metrics()
                .pii_ner
                .with_label_values(&["cache_hit"])
                .inc();
            return Ok(hit);
        }
        if text.len() > budget.bytes_left || budget.time_left.is_zero() {
            return Err(budget.refuse());
        }
        budget.bytes_left -= text.len();
        let found = Arc::new(self.infer(text, budget)?);
        crate::telemetry::metrics()
            .pii_ner
            .with_label_values(&["inferred"])
            .inc();
        self.cache.put(text, found.clone());
        Ok(found)
    }

    fn infer(&self, text: &str, budget: &mut NerBudget) -> Result<Vec<Finding>, NerError> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
        let ids = encoding.get_ids();
        let offsets = encoding.get_offsets();
        let windows = windows_for(ids.len());
        if windows > budget.windows_left {
            return Err(budget.refuse());
        }
        budget.windows_left -= windows;
        let (cls, sep) = (
            self.tokenizer.token_to_id("[CLS]").unwrap_or(101),
            self.tokenizer.token_to_id("[SEP]").unwrap_or(102),
        );
        let body = WINDOW - 2;
        let mut found = Vec::new();
        let mut start = 0;
        loop {
            if budget.time_left.is_zero() {
                return Err(budget.refuse());
            }
            let end = (start + body).min(ids.len());
            let (Some(window), Some(window_offsets)) =
                (ids.get(start..end), offsets.get(start..end))
            else {
                break;
            };
            let labels = self.run(cls, sep, window, budget)?;
            found.extend(spans(text, window_offsets, &labels, &self.labels));
            if end == ids.len() {
                break;
            }
            start = end - OVERLAP;
        }
        Ok(resolve_overlaps(text, found))
    }

    /// (label, probability) per token of one window, on a session of the pool; the
    /// inference time (not the wait for a session) is charged to `budget`.
    fn run(
        &self,
        cls: u32,
        sep: u32,
        ids: &[u32],
        budget: &mut NerBudget,
    ) -> Result<Vec<(usize, f32)>, NerError> {
        let started = Instant::now();
        let out = self.pool.run(|session| self.run_on(session, cls, sep, ids));
        budget.time_left = budget.time_left.saturating_sub(started.elapsed());
        out
    }

    fn run_on(
        &self,
        session: &mut Session,
        cls: u32,
        sep: u32,
        ids: &[u32],
    ) -> Result<Vec<(usize, f32)>, NerError> {
        let n = ids.len() + 2;
        let mut input: Vec<i64> = Vec::with_capacity(n);
        input.push(i64::from(cls));
        input.extend(ids.iter().map(|&i| i64::from(i)));
        input.push(i64::from(sep));
        let shape = vec![1i64, n as i64];
        let input_ids = Tensor::from_array((shape.clone(), input))?;
        let mask = Tensor::from_array((shape.clone(), vec![1i64; n]))?;
        let types = Tensor::from_array((shape, vec![0i64; n]))?;
        let outputs = session.run(ort::inputs![
            "input_ids" => input_ids,
            "attention_mask" => mask,
            "token_type_ids" => types,
        ])?;
        let first = outputs
            .values()
            .next()
            .ok_or_else(|| anyhow::anyhow!("the NER model gave no output"))?;
        let (shape, logits) = first.try_extract_tensor::<f32>()?;
        let classes = shape.last().copied().unwrap_or(0) as usize;
        if classes == 0 || logits.len() != n * classes {
            return Err(anyhow::anyhow!("unexpected NER output shape {shape:?}").into());
        }
        // Skip [CLS] and [SEP].
        Ok((1..n - 1)
            .map(|t| {
                let row = logits
                    .get(t * classes..(t + 1) * classes)
                    .unwrap_or_default();
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
                let (best, value) = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, v)| (i, *v))
                    .unwrap_or((0, max));
                (best, (value - max).exp() / sum)
            })
            .collect())
    }
}

/// Windows needed for `tokens` tokens (512-token windows overlapping by 64).
fn windows_for(tokens: usize) -> usize {
    let body = WINDOW - 2;
    if tokens <= body {
        1
    } else {
        1 + (tokens - body).div_ceil(body - OVERLAP)
    }
}

/// Merges labelled tokens into findings.
fn spans(
    text: &str,
    offsets: &[(usize, usize)],
    labels: &[(usize, f32)],
    meaning: &[Label],
) -> Vec<Finding> {
    struct Open {
        entity: Entity,
        start: usize,
        end: usize,
        score: f32,
        pieces: usize,
        street: bool,
    }
    let mut out = Vec::new();
    let mut open: Option<Open> = None;
    let close = |span: Open, out: &mut Vec<Finding>| {
        if span.score / (span.pieces as f32) < FLOOR {
            return;
        }
        let Some(value) = text.get(span.start..span.end) else {
            return; // offsets that are not character boundaries of `text`
        };
        if span.entity == Entity::Address && !span.street {
            return; // a place or a number on its own
        }
        let letters = |t: &str| {
            t.split(|c: char| !c.is_alphabetic())
                .any(|run| run.chars().count() >= 2)
        };
        if span.entity == Entity::Address && !letters(value) {
            return; // a size or a code ("40R"): no street is written without a word
        }
        if span.entity == Entity::Address && only_unit_words(value) {
            return; // "number 12", "Flat 3", "dock 4": a unit or a number with no street
        }
        let inside_word = |i: usize| {
            text.get(..i)
                .and_then(|t| t.chars().next_back())
                .is_some_and(char::is_alphanumeric)
                && text
                    .get(i..)
                    .and_then(|t| t.chars().next())
                    .is_some_and(char::is_alphanumeric)
        };
        if inside_word(span.start) || inside_word(span.end) {
            return; // a piece of a word ("L" of "40L") is not a name
        }
        if span.entity == Entity::Person && courtesy(value) {
            return; // "…, merci", "nata il 7 giugno"
        }
        out.push(Finding {
            entity: span.entity,
            start: span.start,
            end: span.end,
            score: f64::from(span.score / span.pieces as f32),
            source: Source::Ner,
        });
    };
    for (&(s, e), &(class, p)) in offsets.iter().zip(labels) {
        let l = meaning.get(class).copied().unwrap_or(Label {
            entity: None,
            street: false,
        });
        let Some(entity) = l.entity else {
            if let Some(span) = open.take() {
                close(span, &mut out);
            }
            continue;
        };
        let joins = open.as_ref().is_some_and(|o| {
            o.entity == entity
                && s >= o.end
                && s - o.end <= MAX_GAP
                && text
                    .get(o.end..s)
                    .is_some_and(|gap| gap.chars().all(|c| c.is_whitespace() || c == ','))
        });
        if joins {
            if let Some(o) = open.as_mut() {
                o.end = e;
                o.score += p;
                o.pieces += 1;
                o.street |= l.street;
            }
        } else {
            if let Some(span) = open.take() {
                close(span, &mut out);
            }
            open = Some(Open {
                entity,
                start: s,
                end: e,
                score: p,
                pieces: 1,
                street: l.street,
            });
        }
    }
    if let Some(span) = open.take() {
        close(span, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_tenant_never_holds_every_share_of_another() {
        let share = TenantShare::new(1);
        let held = share.acquire("acme").await.unwrap();
        // acme's next request waits; globex gets its share at once.
        let waiting = tokio::time::timeout(Duration::from_millis(50), share.acquire("acme")).await;
        assert!(
            waiting.is_err(),
            "acme's second request waits for its first"
        );
        let other = tokio::time::timeout(Duration::from_millis(50), share.acquire("globex")).await;
        assert!(other.is_ok_and(|p| p.is_some()));
        drop(held);
        assert!(share.acquire("acme").await.is_some());
    }

    #[test]
    fn a_courtesy_word_in_lower_case_is_no_name() {
        let meaning = [label("O"), label("B-GIVEN_NAME")];
        let text = "portable 07 81 23 45 67, merci; Merci";
        let merci = text.find("merci").unwrap();
        let capitalised = text.find("Merci").unwrap();
        let found = spans(
            text,
            &[
                (merci, merci + 5),
                (merci + 5, merci + 6),
                (capitalised, capitalised + 5),
            ],
            &[(1, 0.9), (0, 0.9), (1, 0.9)],
            &meaning,
        );
        let names: Vec<&str> = found.iter().map(|f| &text[f.start..f.end]).collect();
        assert_eq!(names, ["Merci"], "only the lower-case courtesy is dropped");
        let text = "celular (11) 98765-4321";
        let found = spans(text, &[(0, 7)], &[(1, 0.9)], &meaning);
        assert!(found.is_empty(), "the word that introduces a phone number");
    }

    #[test]
    fn a_size_the_model_takes_for_an_address_is_none() {
        let meaning = [label("O"), label("B-STREET_NAME")];
        let text = "suit jacket size 40R for Ted; 9 Elm Rd";
        let size = text.find("40R").unwrap();
        let street = text.find("Elm").unwrap();
        let found = spans(
            text,
            &[(size, size + 3), (street, street + 6)],
            &[(1, 0.9), (1, 0.9)],
            &meaning,
        );
        let addresses: Vec<&str> = found.iter().map(|f| &text[f.start..f.end]).collect();
        assert_eq!(addresses, ["Elm Rd"]);
        let text = "leave it at number 12, or at dock 4";
        let number = text.find("number").unwrap();
        let dock = text.find("dock").unwrap();
        let found = spans(
            text,
            &[(number, number + 9), (dock, dock + 6)],
            &[(1, 0.9), (1, 0.9)],
            &meaning,
        );
        assert!(found.is_empty(), "a unit or a number with no street");
    }

    #[test]
    fn windows_are_counted_as_the_model_reads_them() {
        assert_eq!(windows_for(1), 1);
        assert_eq!(windows_for(510), 1);
        assert_eq!(windows_for(511), 2);
        assert_eq!(windows_for(510 + 446), 2);
        assert_eq!(windows_for(510 + 447), 3);
    }
}
