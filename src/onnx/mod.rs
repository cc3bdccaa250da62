//! ONNX models run in process, shared by every stage that uses one (the PII stage's NER
//! model; next, tool embeddings): ONNX Runtime loaded once from its library file
//! ([`runtime`]), a pool of sessions that each run one inference at a time
//! ([`SessionPool`]), a Hugging Face tokenizer as the models expect it ([`tokenizer`]),
//! and a cache of results keyed by a keyed hash of the input, so no plaintext is kept
//! ([`TextCache`]).

mod cache;
mod pool;

use std::path::Path;
use std::sync::OnceLock;

pub use cache::TextCache;
pub use pool::SessionPool;

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Loads ONNX Runtime once per process from `library` (`libonnxruntime.so`); the
/// environment lives as long as the process. A second call with another path gets the
/// first environment.
pub fn runtime(library: &Path) -> anyhow::Result<&'static ort::environment::Environment> {
    ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(library)
                .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", library.display()))?
                .with_name("warden")
                .build()
                .map_err(|e| format!("ONNX Runtime environment: {e}"))
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!(e.clone()))
}

/// A `tokenizer.json`, with its truncation and padding off: callers window long inputs
/// themselves and run one sequence at a time.
pub fn tokenizer(path: &Path) -> anyhow::Result<tokenizers::Tokenizer> {
    let mut tokenizer = tokenizers::Tokenizer::from_file(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    tokenizer
        .with_truncation(None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}
