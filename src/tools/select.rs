//! Offering tools by meaning: each tool is known by its description and its example
//! utterances, each embedded once (and again only when the tool's definition changes —
//! vectors are kept by the tool's digest); a query is embedded and a tool's score is the
//! mean of the two best cosines between the query and the tool's texts — one example that
//! happens to share a word with the query counts less than two that match — plus
//! `lexical_weight` times the keyword overlap of the query with those texts
//! (`lexical`). Ranking returns every tool
//! given, best first; what is offered is decided by the caller (permissions, `top_k`,
//! `min_score`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::embed::{Embedder, cosine};
use super::lexical::{self, Index};
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
    lexical_weight: f32,
    /// Tool digest → what the tool is known by.
    known: RwLock<HashMap<String, Arc<Known>>>,
    /// The keyword index of the tools ranked last, by a fingerprint of their digests.
    index: RwLock<Option<(u64, Arc<Index>)>>,
}

/// A tool's texts as the selector compares them.
pub struct Known {
    /// The embedding of each text.
    pub vectors: Vec<Vec<f32>>,
    /// The word stems of all its texts.
    pub terms: std::collections::HashSet<String>,
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
            lexical_weight: config.lexical_weight,
            known: RwLock::new(HashMap::new()),
            index: RwLock::new(None),
        })
    }

    /// The embedding of a query (cached for repeated text).
    pub fn embed(&self, text: &str) -> anyhow::Result<Arc<Vec<f32>>> {
        self.embedder.embed(text)
    }

    /// What `tool` is known by, computed once per definition.
    pub fn known(&self, tool: &Tool) -> anyhow::Result<Arc<Known>> {
        if let Some(k) = self
            .known
            .read()
            .ok()
            .and_then(|m| m.get(&tool.digest).cloned())
        {
            return Ok(k);
        }
        let texts = texts(tool);
        let vectors: Vec<Vec<f32>> = texts
            .iter()
            .map(|t| self.embedder.embed(t).map(|e| e.as_ref().clone()))
            .collect::<anyhow::Result<_>>()?;
        let known = Arc::new(Known {
            vectors,
            terms: lexical::terms(&texts.join(" ")),
        });
        if let Ok(mut m) = self.known.write() {
            m.insert(tool.digest.clone(), known.clone());
        }
        Ok(known)
    }

    /// Embeds every tool of `registry` not embedded yet and forgets tools it no longer
    /// holds.
    pub fn warm(&self, registry: &Registry) {
        for tool in registry.iter() {
            if let Err(e) = self.known(tool) {
                tracing::warn!(tool = %tool.def.name, error = %e, "tool selection: cannot embed a tool");
            }
        }
        let keep: std::collections::HashSet<&str> =
            registry.iter().map(|t| t.digest.as_str()).collect();
        if let Ok(mut m) = self.known.write() {
            m.retain(|digest, _| keep.contains(digest.as_str()));
        }
    }

    /// The keyword index of these tools, kept while the same tools are ranked.
    fn index(&self, tools: &[&Arc<Tool>], known: &[Arc<Known>]) -> Arc<Index> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for t in tools {
            t.digest.hash(&mut h);
        }
        let fingerprint = h.finish();
        if let Some((f, index)) = self.index.read().ok().and_then(|i| i.clone())
            && f == fingerprint
        {
            return index;
        }
        let index = Arc::new(Index::build(known.iter().map(|k| &k.terms)));
        if let Ok(mut slot) = self.index.write() {
            *slot = Some((fingerprint, index.clone()));
        }
        index
    }

    /// Every tool of `tools` scored against `query`, best first.
    pub fn rank<'a>(
        &self,
        query: &str,
        tools: impl IntoIterator<Item = &'a Arc<Tool>>,
    ) -> anyhow::Result<Vec<Ranked>> {
        let q = self.embed(query)?;
        let tools: Vec<&Arc<Tool>> = tools.into_iter().collect();
        let known: Vec<Arc<Known>> = tools
            .iter()
            .map(|t| self.known(t))
            .collect::<anyhow::Result<_>>()?;
        let index = self.index(&tools, &known);
        let words = index.query(query);
        let mut ranked: Vec<Ranked> = tools
            .iter()
            .zip(&known)
            .map(|(tool, k)| {
                let meaning = best_two(k.vectors.iter().map(|v| cosine(&q, v)));
                let wording = words.overlap(&k.terms);
                Ranked {
                    name: tool.def.name.clone(),
                    score: meaning + self.lexical_weight * wording,
                }
            })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
        Ok(ranked)
    }
}

/// The mean of the two best scores (the best alone when there is one).
fn best_two(scores: impl Iterator<Item = f32>) -> f32 {
    let (mut first, mut second) = (f32::MIN, f32::MIN);
    for s in scores {
        if s > first {
            (first, second) = (s, first);
        } else if s > second {
            second = s;
        }
    }
    if second == f32::MIN {
        first
    } else {
        (first + second) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::best_two;

    #[test]
    fn a_tool_scores_the_mean_of_its_two_best_texts() {
        assert!((best_two([0.2, 0.8, 0.4].into_iter()) - 0.6).abs() < 1e-6);
        assert_eq!(best_two([0.5].into_iter()), 0.5);
        assert_eq!(best_two([0.9, 0.9].into_iter()), 0.9);
        assert_eq!(best_two(std::iter::empty()), f32::MIN);
    }
}
