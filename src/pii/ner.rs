//! The NER model (Rampart: BERT, 6 layers, BIO labels) run in process through ONNX
//! Runtime (`ort`, loaded dynamically from the library file) with its WordPiece
//! `tokenizer.json`. Sub-token labels are merged into spans (adjacent pieces of one type,
//! given name + surname → PERSON, street + number + city → ADDRESS; a city, state or zip
//! code alone is a place, not an address, so warehouse cities survive). Inputs longer than
//! the model's 512-token window are read in overlapping windows. Results are cached under a
//! keyed hash of the text (no plaintext kept), so a conversation pays only for new turns.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use lru::LruCache;
use ort::session::Session;
use ort::value::Tensor;
use sha2::{Digest, Sha256};

use super::entity::Entity;
use super::{Finding, Source, resolve_overlaps};

/// Tokens per window, [CLS] and [SEP] included.
const WINDOW: usize = 512;
/// Tokens shared by consecutive windows.
const OVERLAP: usize = 64;
/// Bytes between two pieces that still belong to one span (", " in an address).
const MAX_GAP: usize = 2;
/// Mean label probability below which a span is dropped: on the evaluation set true
/// names scored ≥ 0.67 and the misses on commerce words (German "Ruf mich") 0.55–0.64.
const MIN_SCORE: f32 = 0.65;

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
}

pub struct Ner {
    session: Mutex<Session>,
    tokenizer: tokenizers::Tokenizer,
    labels: Vec<Label>,
    cache: Mutex<LruCache<[u8; 32], Arc<Vec<Finding>>>>,
    cache_key: [u8; 32],
}

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Loads ONNX Runtime once per process; the environment lives as long as the process.
fn runtime(path: &Path) -> anyhow::Result<&'static ort::environment::Environment> {
    ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(path)
                .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))?
                .with_name("warden")
                .build()
                .map_err(|e| format!("ONNX Runtime environment: {e}"))
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!(e.clone()))
}

/// Builds the session. The builder's errors are not `Send`; this function turns them
/// into plain `ort::Error`s before they cross an await or thread.
fn session(
    env: &ort::environment::Environment,
    model: &Path,
    threads: usize,
) -> ort::Result<Session> {
    let mut builder = Session::builder(env)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        .with_intra_op_spinning(false)?
        .with_inter_op_spinning(false)?;
    builder.commit_from_file(model)
}

impl std::fmt::Debug for Ner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ner(rampart)")
    }
}

impl Ner {
    pub fn load(files: &NerFiles) -> anyhow::Result<Ner> {
        let env = runtime(&files.runtime)?;
        let model = files.model_dir.join(&files.model_file);
        let session = session(env, &model, files.threads.max(1))
            .map_err(|e| anyhow::anyhow!("NER model {}: {e}", model.display()))?;
        let tokenizer_path = files.model_dir.join("tokenizer.json");
        let mut tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", tokenizer_path.display()))?;
        tokenizer
            .with_truncation(None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tokenizer.with_padding(None);
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
        let mut cache_key = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut cache_key[..]);
        Ok(Ner {
            session: Mutex::new(session),
            tokenizer,
            labels,
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(files.cache_entries.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
            cache_key,
        })
    }

    fn key(&self, text: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.cache_key);
        h.update(text.as_bytes());
        h.finalize().into()
    }

    /// The model's findings in `text` (from the cache when this text was seen before).
    pub fn detect(&self, text: &str) -> anyhow::Result<Arc<Vec<Finding>>> {
        if text.trim().is_empty() {
            return Ok(Arc::new(Vec::new()));
        }
        let key = self.key(text);
        if let Some(hit) = self.lock_cache().get(&key) {
            crate::telemetry::metrics()
                .pii_ner
                .with_label_values(&["cache_hit"])
                .inc();
            return Ok(hit.clone());
        }
        let found = Arc::new(self.infer(text)?);
        crate::telemetry::metrics()
            .pii_ner
            .with_label_values(&["inferred"])
            .inc();
        self.lock_cache().put(key, found.clone());
        Ok(found)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, LruCache<[u8; 32], Arc<Vec<Finding>>>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn infer(&self, text: &str) -> anyhow::Result<Vec<Finding>> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
        let ids = encoding.get_ids();
        let offsets = encoding.get_offsets();
        let (cls, sep) = (
            self.tokenizer.token_to_id("[CLS]").unwrap_or(101),
            self.tokenizer.token_to_id("[SEP]").unwrap_or(102),
        );
        let body = WINDOW - 2;
        let mut found = Vec::new();
        let mut start = 0;
        loop {
            let end = (start + body).min(ids.len());
            let labels = self.run(cls, sep, &ids[start..end])?;
            found.extend(spans(text, &offsets[start..end], &labels, &self.labels));
            if end == ids.len() {
                break;
            }
            start = end - OVERLAP;
        }
        Ok(resolve_overlaps(found))
    }

    /// (label, probability) per token of one window.
    fn run(&self, cls: u32, sep: u32, ids: &[u32]) -> anyhow::Result<Vec<(usize, f32)>> {
        let n = ids.len() + 2;
        let mut input: Vec<i64> = Vec::with_capacity(n);
        input.push(i64::from(cls));
        input.extend(ids.iter().map(|&i| i64::from(i)));
        input.push(i64::from(sep));
        let shape = vec![1i64, n as i64];
        let input_ids = Tensor::from_array((shape.clone(), input))?;
        let mask = Tensor::from_array((shape.clone(), vec![1i64; n]))?;
        let types = Tensor::from_array((shape, vec![0i64; n]))?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(ort::inputs![
            "input_ids" => input_ids,
            "attention_mask" => mask,
            "token_type_ids" => types,
        ])?;
        let (shape, logits) = outputs[0].try_extract_tensor::<f32>()?;
        let classes = shape.last().copied().unwrap_or(0) as usize;
        if classes == 0 || logits.len() != n * classes {
            anyhow::bail!("unexpected NER output shape {shape:?}");
        }
        // Skip [CLS] and [SEP].
        Ok((1..n - 1)
            .map(|t| {
                let row = &logits[t * classes..(t + 1) * classes];
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
        if span.score / (span.pieces as f32) < MIN_SCORE {
            return;
        }
        if span.entity == Entity::Address && !span.street {
            return; // a place or a number on its own
        }
        let inside_word = |i: usize| {
            text[..i]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric)
                && text[i..].chars().next().is_some_and(char::is_alphanumeric)
        };
        if inside_word(span.start) || inside_word(span.end) {
            return; // a piece of a word ("L" of "40L") is not a name
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
