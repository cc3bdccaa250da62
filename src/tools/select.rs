//! Offering tools by meaning: each tool is known by its description and its example
//! utterances, each embedded once (and again only when the tool's definition changes —
//! vectors are kept by the tool's digest); a query is embedded and a tool's score is the
//! best cosine between the query and any of the tool's texts. Ranking returns every tool
//! given, best first; what is offered is decided by the caller (permissions, `top_k`,
//! `min_score`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::embed::{Embedder, cosine};
use super::{Registry, Tool};
use crate::config::SelectionConfig;

/// A tool and its score for a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub name: String,
    pub score: f32,
}

pub struct Selector {
    embedder: Embedder,
    /// The configured lowest score at which a tool is offered.
    pub min_score: f32,
    /// Tool digest → the embeddings of its texts.
    vectors: RwLock<HashMap<String, Arc<Vec<Vec<f32>>>>>,
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Selector(min_score {})", self.min_score)
    }
}

/// What a tool is known by: its name in words with its description, and each example.
fn texts(tool: &Tool) -> Vec<String> {
    let mut out = vec![format!(
        "{}: {}",
        tool.def.name.replace(['_', '-'], " "),
        tool.def.description
    )];
    out.extend(tool.def.examples.iter().cloned());
    out
}

impl Selector {
    pub fn load(config: &SelectionConfig) -> anyhow::Result<Selector> {
        Ok(Selector {
            embedder: Embedder::load(config)?,
            min_score: config.min_score,
            vectors: RwLock::new(HashMap::new()),
        })
    }

    /// The embedding of a query (cached for repeated text).
    pub fn embed(&self, text: &str) -> anyhow::Result<Arc<Vec<f32>>> {
        self.embedder.embed(text)
    }

    /// The embeddings of `tool`'s texts, computed once per definition.
    pub fn vectors(&self, tool: &Tool) -> anyhow::Result<Arc<Vec<Vec<f32>>>> {
        if let Some(v) = self
            .vectors
            .read()
            .ok()
            .and_then(|m| m.get(&tool.digest).cloned())
        {
            return Ok(v);
        }
        let v: Vec<Vec<f32>> = texts(tool)
            .iter()
            .map(|t| self.embedder.embed(t).map(|e| e.as_ref().clone()))
            .collect::<anyhow::Result<_>>()?;
        let v = Arc::new(v);
        if let Ok(mut m) = self.vectors.write() {
            m.insert(tool.digest.clone(), v.clone());
        }
        Ok(v)
    }

    /// Embeds every tool of `registry` not embedded yet and forgets tools it no longer
    /// holds.
    pub fn warm(&self, registry: &Registry) {
        for tool in registry.iter() {
            if let Err(e) = self.vectors(tool) {
                tracing::warn!(tool = %tool.def.name, error = %e, "tool selection: cannot embed a tool");
            }
        }
        let keep: std::collections::HashSet<&str> =
            registry.iter().map(|t| t.digest.as_str()).collect();
        if let Ok(mut m) = self.vectors.write() {
            m.retain(|digest, _| keep.contains(digest.as_str()));
        }
    }

    /// Every tool of `tools` scored against `query`, best first.
    pub fn rank<'a>(
        &self,
        query: &str,
        tools: impl IntoIterator<Item = &'a Arc<Tool>>,
    ) -> anyhow::Result<Vec<Ranked>> {
        let q = self.embed(query)?;
        let mut ranked = Vec::new();
        for tool in tools {
            let score = self
                .vectors(tool)?
                .iter()
                .map(|v| cosine(&q, v))
                .fold(f32::MIN, f32::max);
            ranked.push(Ranked {
                name: tool.def.name.clone(),
                score,
            });
        }
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
        Ok(ranked)
    }
}
