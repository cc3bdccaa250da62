//! Commerce terms a profile keeps (`pii.profiles.NAME.keep_terms_files`): brands, product
//! lines, product names and SKUs a shop knows are not personal data, however much they
//! look like a person ("Steve Madden") or a street ("Cascadia"). A finding that lies
//! inside a known term is dropped; deny-list findings stay. The terms are matched in one
//! pass with an Aho-Corasick automaton (ASCII case-insensitive, longest match first, on
//! word boundaries), built when the profile loads.

use std::path::PathBuf;

use aho_corasick::{AhoCorasick, MatchKind};

use super::{Finding, Source};

/// Shortest term kept (shorter ones would keep too much).
const MIN_TERM: usize = 2;

#[derive(Debug)]
pub struct KeepTerms {
    matcher: AhoCorasick,
    terms: usize,
}

impl KeepTerms {
    /// The terms of `files` (one per line; blank lines and `#` comments skipped), or
    /// `None` without files. An unreadable file is an error.
    pub fn load(files: &[PathBuf]) -> anyhow::Result<Option<KeepTerms>> {
        if files.is_empty() {
            return Ok(None);
        }
        let mut terms = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(file).map_err(|e| {
                anyhow::anyhow!("keep_terms_files: cannot read {}: {e}", file.display())
            })?;
            terms.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|t| !t.starts_with('#') && t.chars().count() >= MIN_TERM)
                    .map(str::to_string),
            );
        }
        KeepTerms::new(terms).map(Some)
    }

    pub fn new(terms: Vec<String>) -> anyhow::Result<KeepTerms> {
        let matcher = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&terms)
            .map_err(|e| anyhow::anyhow!("keep_terms_files: {e}"))?;
        Ok(KeepTerms {
            matcher,
            terms: terms.len(),
        })
    }

    pub fn len(&self) -> usize {
        self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms == 0
    }

    /// Where known terms stand in `text`, as whole words.
    pub fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        self.matcher
            .find_iter(text)
            .filter(|m| word_edge_before(text, m.start()) && word_edge_after(text, m.end()))
            .map(|m| (m.start(), m.end()))
            .collect()
    }

    /// Drops the findings that lie inside a known term of `text` (deny-list findings
    /// stay: a term the profile denies is meant).
    pub fn drop_inside(&self, text: &str, found: &mut Vec<Finding>) {
        if found.is_empty() {
            return;
        }
        let spans = self.spans(text);
        if spans.is_empty() {
            return;
        }
        found.retain(|f| {
            f.source == Source::DenyList || !spans.iter().any(|&(s, e)| s <= f.start && f.end <= e)
        });
    }
}

fn word_edge_before(text: &str, at: usize) -> bool {
    text.get(..at)
        .and_then(|t| t.chars().next_back())
        .is_none_or(|c| !c.is_alphanumeric())
}

fn word_edge_after(text: &str, at: usize) -> bool {
    text.get(at..)
        .and_then(|t| t.chars().next())
        .is_none_or(|c| !c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Entity;

    fn finding(text: &str, value: &str, entity: Entity, source: Source) -> Finding {
        let start = text.find(value).unwrap();
        Finding {
            entity,
            start,
            end: start + value.len(),
            score: 0.9,
            source,
        }
    }

    fn keep(terms: &[&str]) -> KeepTerms {
        KeepTerms::new(terms.iter().map(|t| t.to_string()).collect()).unwrap()
    }

    #[test]
    fn known_terms_match_as_whole_words_in_any_case() {
        let k = keep(&["Steve Madden", "Cascadia", "P1001"]);
        let text = "steve madden boots, a CASCADIA 17 and P1001; not Cascadias or XP1001";
        let found: Vec<&str> = k.spans(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(found, ["steve madden", "CASCADIA", "P1001"]);
        assert_eq!(k.len(), 3);
    }

    #[test]
    fn findings_inside_a_term_are_dropped_others_stay() {
        let k = keep(&["Steve Madden", "Brooks Cascadia 17"]);
        let text = "Steve Madden sandals for Anna Berg, or the Brooks Cascadia 17 from Cascadia St";
        let mut found = vec![
            finding(text, "Steve Madden", Entity::Person, Source::Ner),
            finding(text, "Anna Berg", Entity::Person, Source::Ner),
            finding(text, "Cascadia 17", Entity::Address, Source::Ner),
            finding(text, "Cascadia St", Entity::Address, Source::Ner),
            finding(text, "Madden", Entity::Custom, Source::DenyList),
        ];
        k.drop_inside(text, &mut found);
        let kept: Vec<&str> = found.iter().map(|f| &text[f.start..f.end]).collect();
        assert_eq!(kept, ["Anna Berg", "Cascadia St", "Madden"]);
    }

    #[test]
    fn files_skip_comments_and_blank_lines_and_a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("terms.txt");
        std::fs::write(&file, "# brands\nArdent\n\n  Stridewell Tempo Flyer  \nx\n").unwrap();
        let k = KeepTerms::load(std::slice::from_ref(&file))
            .unwrap()
            .unwrap();
        assert_eq!(k.len(), 2);
        assert!(KeepTerms::load(&[]).unwrap().is_none());
        let missing = KeepTerms::load(&[dir.path().join("nope.txt")]).unwrap_err();
        assert!(missing.to_string().contains("nope.txt"), "{missing}");
    }
}
