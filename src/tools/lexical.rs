//! The keyword half of tool selection: how much of a query's wording a tool's own texts
//! (name, description, examples) use, each word weighted by how few tools use it (IDF). It
//! catches what a small sentence-embedding model misses — a rare word the query shares
//! with exactly one tool (`warranty`, `coupon`, a non-English word its examples carry) —
//! and adds to the embedding score, never replaces it. Words are compared lower-cased by
//! their first five letters (a crude stem that also matches plurals and most inflections);
//! short words and common English function words are left out.

use std::collections::{HashMap, HashSet};

/// Letters a word is compared by.
const STEM: usize = 5;
/// Shortest word counted.
const MIN_WORD: usize = 3;

const STOP_WORDS: &[&str] = &[
    "about", "and", "any", "are", "can", "does", "for", "from", "has", "have", "how", "need",
    "our", "please", "that", "the", "there", "these", "this", "want", "what", "when", "where",
    "which", "with", "you", "your",
];

/// The stems of a text's words.
pub fn terms(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= MIN_WORD)
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .map(|w| w.chars().take(STEM).collect())
        .collect()
}

/// How many tools use each stem.
#[derive(Debug, Default)]
pub struct Index {
    tools: usize,
    used_by: HashMap<String, usize>,
}

impl Index {
    /// The index of a registry, from each tool's stems.
    pub fn build<'a>(tools: impl IntoIterator<Item = &'a HashSet<String>>) -> Index {
        let mut index = Index::default();
        for stems in tools {
            index.tools += 1;
            for stem in stems {
                *index.used_by.entry(stem.clone()).or_default() += 1;
            }
        }
        index
    }

    fn weight(&self, stem: &str) -> f32 {
        let used_by = self.used_by.get(stem).copied().unwrap_or(self.tools).max(1);
        (1.0 + self.tools as f32 / used_by as f32).ln()
    }

    /// A query's stems with their weights, to compare with every tool.
    pub fn query(&self, text: &str) -> Query {
        let stems: Vec<(String, f32)> = terms(text)
            .into_iter()
            .map(|s| {
                let w = self.weight(&s);
                (s, w)
            })
            .collect();
        let total = stems.iter().map(|(_, w)| w).sum();
        Query { stems, total }
    }
}

/// A query's weighted stems.
pub struct Query {
    stems: Vec<(String, f32)>,
    total: f32,
}

impl Query {
    /// The weighted share of the query's stems the tool uses: 0 (none) to 1 (all).
    pub fn overlap(&self, tool: &HashSet<String>) -> f32 {
        if self.total <= 0.0 {
            return 0.0;
        }
        let shared: f32 = self
            .stems
            .iter()
            .filter(|(s, _)| tool.contains(s))
            .map(|(_, w)| w)
            .sum();
        shared / self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_stemmed_lower_cased_and_filtered() {
        let t = terms("Where are my Returns? Rücksendung, RMA for the boots");
        let mut v: Vec<&str> = t.iter().map(String::as_str).collect();
        v.sort();
        assert_eq!(v, ["boots", "retur", "rma", "rücks"]);
    }

    #[test]
    fn rare_shared_words_weigh_more_than_common_ones() {
        let refund = terms("refund money order");
        let lookup = terms("order status tracking");
        let warranty = terms("warranty claim defective order");
        let index = Index::build([&refund, &lookup, &warranty]);
        let query = index.query("warranty for my order");
        let w = query.overlap(&warranty);
        let l = query.overlap(&lookup);
        assert!((w - 1.0).abs() < 1e-6, "{w}");
        assert!(l > 0.0 && l < 0.5, "{l}");
        assert_eq!(index.query("hello").overlap(&lookup), 0.0);
        assert_eq!(index.query("").overlap(&lookup), 0.0);
    }
}
