//! Sentence embeddings for tool selection: all-MiniLM-L6-v2 (int8) through the shared
//! ONNX module — the text tokenized without padding and cut at 256 tokens, the last
//! hidden state mean-pooled over the attention mask and L2-normalised, so a dot product
//! is a cosine. Embeddings of texts seen before come from a cache keyed by a keyed hash
//! of the text.

use std::sync::Arc;

use ort::session::Session;
use ort::value::Tensor;

use crate::config::SelectionConfig;
use crate::onnx::{self, SessionPool, TextCache};

/// Tokens read of a text; the rest is ignored.
const MAX_TOKENS: usize = 256;

pub struct Embedder {
    pool: SessionPool,
    tokenizer: tokenizers::Tokenizer,
    cache: TextCache<Vec<f32>>,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Embedder(all-MiniLM-L6-v2)")
    }
}

impl Embedder {
    pub fn load(config: &SelectionConfig) -> anyhow::Result<Embedder> {
        let env = onnx::runtime(&config.runtime)?;
        let model = config.model_dir.join(&config.model_file);
        let pool = SessionPool::load(
            "tool_embedding",
            env,
            &model,
            config.sessions,
            config.threads,
        )
        .map_err(|e| anyhow::anyhow!("tool selection {e}"))?;
        let tokenizer = onnx::tokenizer(&config.model_dir.join("tokenizer.json"))?;
        Ok(Embedder {
            pool,
            tokenizer,
            cache: TextCache::new(config.cache_entries.max(1)),
        })
    }

    /// The unit-length embedding of `text`.
    pub fn embed(&self, text: &str) -> anyhow::Result<Arc<Vec<f32>>> {
        if let Some(v) = self.cache.get(text) {
            return Ok(v);
        }
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
        let mut ids: Vec<i64> = encoding.get_ids().iter().map(|&i| i64::from(i)).collect();
        if ids.len() > MAX_TOKENS {
            // Keep [CLS] and the first tokens, end with [SEP] as the model expects.
            let sep = ids.last().copied().unwrap_or_default();
            ids.truncate(MAX_TOKENS - 1);
            ids.push(sep);
        }
        let v = Arc::new(self.pool.run(|s| run(s, &ids))?);
        self.cache.put(text, v.clone());
        Ok(v)
    }
}

fn run(session: &mut Session, ids: &[i64]) -> anyhow::Result<Vec<f32>> {
    let n = ids.len();
    let shape = vec![1i64, n as i64];
    let outputs = session.run(ort::inputs![
        "input_ids" => Tensor::from_array((shape.clone(), ids.to_vec()))?,
        "attention_mask" => Tensor::from_array((shape.clone(), vec![1i64; n]))?,
        "token_type_ids" => Tensor::from_array((shape, vec![0i64; n]))?,
    ])?;
    let hidden = outputs
        .get("last_hidden_state")
        .ok_or_else(|| anyhow::anyhow!("the embedding model has no last_hidden_state"))?;
    let (shape, values) = hidden.try_extract_tensor::<f32>()?;
    let dims = shape.last().copied().unwrap_or(0) as usize;
    if dims == 0 || values.len() != n * dims {
        anyhow::bail!("unexpected embedding output shape {shape:?}");
    }
    // Mean over the tokens (all attended: one unpadded sequence), then unit length.
    let mut mean = vec![0f32; dims];
    for row in values.chunks_exact(dims) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    Ok(mean.iter().map(|v| v / norm).collect())
}

/// The cosine of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
