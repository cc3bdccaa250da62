//! Commerce terms a profile keeps (`pii.profiles.NAME.keep_terms_files`): brands, product
//! lines, product names and SKUs a shop knows are not personal data, however much they
//! look like a person ("Steve Madden") or a street ("Cascadia"). A known term takes the
//! model number written after it ("Brooks Cascadia 17", "990v6"). A finding that lies
//! inside a known term is dropped, and so is one that runs past a term only into
//! lower-case words ("Aesop hand wash"), or a name or a place that starts inside a term
//! of two words or more ("Jimmy Choo Romy"); deny-list findings stay. The terms are
//! matched in one pass with an Aho-Corasick automaton (ASCII case-insensitive, longest
//! match first, on word boundaries), built when the profile loads. [`Learned`] terms come from the results
//! of catalog tools (`keep_terms_from_tools`) as Warden runs them: the automaton is
//! rebuilt when a result brings new ones and swapped in without a lock on the read side.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use aho_corasick::{AhoCorasick, MatchKind};
use arc_swap::ArcSwapOption;
use serde_json::Value;

use super::{Entity, Finding, Source};

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

    /// Where known terms stand in `text`, as whole words; terms one space apart form one
    /// span ("Steve Madden" "Irenee" → "Steve Madden Irenee").
    pub fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for m in self
            .matcher
            .find_iter(text)
            .filter(|m| word_edge_before(text, m.start()) && word_edge_after(text, m.end()))
        {
            let end = m.end() + model_number(text.get(m.end()..).unwrap_or_default());
            match spans.last_mut() {
                Some(last) if text.get(last.1..m.start()) == Some(" ") => last.1 = end,
                _ => spans.push((m.start(), end)),
            }
        }
        spans
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
            f.source == Source::DenyList
                || !spans.iter().any(|&(s, e)| {
                    let inside = s <= f.start && f.end <= e;
                    let overlaps = s < f.end && f.start < e;
                    // A name or a place that starts inside a term of two words or more
                    // runs on into its product line ("Jimmy Choo Romy 85"); after a
                    // one-word term, only when no known name follows it ("Samsonite
                    // Proxis", but "Chloé Martin").
                    let product_line = s <= f.start
                        && f.start < e
                        && (text.get(s..e).is_some_and(|term| term.contains(' '))
                            || no_name_after(text, e, f.end))
                        && matches!(f.entity, Entity::Person | Entity::Address)
                        && f.source != Source::Pattern;
                    inside || product_line || overlaps && only_lower_case_outside(text, f, s, e)
                })
        });
    }
}

/// Bytes of a model number at the start of `rest`: one space and a number, a version or
/// a Roman numeral ("17", "v6", "4.0", "II", "GTX"), not a word.
fn model_number(rest: &str) -> usize {
    let Some(after) = rest.strip_prefix(' ') else {
        return 0;
    };
    let word: &str = after
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ')' | '?' | '!'))
        .next()
        .unwrap_or_default()
        .trim_end_matches('.');
    let numeric = word.chars().next().is_some_and(|c| c.is_ascii_digit())
        || word.len() >= 2
            && word.starts_with(['v', 'V'])
            && word.chars().skip(1).all(|c| c.is_ascii_digit());
    let roman = !word.is_empty() && word.len() <= 4 && word.chars().all(|c| "IVX".contains(c));
    let code = word.len() >= 2 && word.len() <= 4 && word.chars().all(|c| c.is_ascii_uppercase());
    if numeric && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') || roman || code {
        1 + word.len()
    } else {
        0
    }
}

/// Whether `text[from..to]` holds a word and none of its words is a known given name or
/// surname.
fn no_name_after(text: &str, from: usize, to: usize) -> bool {
    let rest = text.get(from..to).unwrap_or_default();
    let mut words = rest
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .peekable();
    words.peek().is_some() && !words.any(super::known_names::is_known)
}

/// Whether what `f` covers outside `text[s..e]` has no capital letter and no digit: the
/// words of a sentence after a product's name, not a name or a number of its own.
fn only_lower_case_outside(text: &str, f: &Finding, s: usize, e: usize) -> bool {
    let outside = [
        text.get(f.start..s.max(f.start)).unwrap_or_default(),
        text.get(e.min(f.end)..f.end).unwrap_or_default(),
    ];
    outside
        .iter()
        .all(|part| !part.chars().any(|c| c.is_uppercase() || c.is_ascii_digit()))
}

/// Fields of a tool's result whose strings are commerce terms.
const LEARNED_FIELDS: [&str; 5] = ["name", "brand", "title", "product_name", "model"];
/// Most terms learned from one tool.
const MAX_LEARNED: usize = 50_000;
/// Longest string taken as a term (longer ones are descriptions).
const MAX_TERM: usize = 80;

/// Terms learned from one tool's results, shared by the profiles that name the tool.
#[derive(Debug, Default)]
pub struct Learned {
    terms: Mutex<HashSet<String>>,
    matcher: ArcSwapOption<KeepTerms>,
}

impl Learned {
    /// Adds the terms in `result` (strings of [`LEARNED_FIELDS`] at any depth); the
    /// automaton is rebuilt when any is new. Returns how many were new.
    pub fn learn(&self, result: &Value) -> usize {
        let mut found = Vec::new();
        collect(result, &mut found);
        if found.is_empty() {
            return 0;
        }
        let mut terms = self.terms.lock().unwrap_or_else(PoisonError::into_inner);
        let before = terms.len();
        for term in found {
            if terms.len() >= MAX_LEARNED {
                break;
            }
            terms.insert(term);
        }
        let added = terms.len() - before;
        if added > 0
            && let Ok(matcher) = KeepTerms::new(terms.iter().cloned().collect())
        {
            self.matcher.store(Some(Arc::new(matcher)));
        }
        added
    }

    /// The current automaton, if anything was learned.
    pub fn current(&self) -> Option<Arc<KeepTerms>> {
        self.matcher.load_full()
    }

    pub fn len(&self) -> usize {
        self.terms.lock().map_or(0, |t| t.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if LEARNED_FIELDS.contains(&key.as_str()) => {
                        let term = s.trim();
                        if (MIN_TERM..=MAX_TERM).contains(&term.chars().count()) {
                            out.push(term.to_string());
                        }
                    }
                    other => collect(other, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        _ => {}
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
        assert_eq!(found, ["steve madden", "CASCADIA 17", "P1001"]);
        assert_eq!(k.len(), 3);
    }

    #[test]
    fn a_term_takes_its_model_number_and_lower_case_overruns_are_dropped() {
        let k = keep(&["Brooks Cascadia", "Aesop", "Brooks"]);
        let text = "my Brooks Cascadia 17 came, Aesop hand wash refill, and Taylor Brooks wrote \
                    to Brooks Ward";
        let spans: Vec<&str> = k.spans(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(spans, ["Brooks Cascadia 17", "Aesop", "Brooks", "Brooks"]);
        let mut found = vec![
            finding(text, "Cascadia 17", Entity::Address, Source::Ner),
            finding(text, "Aesop hand", Entity::Person, Source::Ner),
            finding(text, "Taylor Brooks", Entity::Person, Source::Ner),
            finding(text, "Brooks Cascadia 17 came", Entity::Person, Source::Ner),
            finding(text, "Brooks Ward", Entity::Person, Source::Ner),
        ];
        k.drop_inside(text, &mut found);
        let kept: Vec<&str> = found.iter().map(|f| &text[f.start..f.end]).collect();
        assert_eq!(
            kept,
            ["Taylor Brooks", "Brooks Ward"],
            "a person who shares a brand's name stays"
        );
    }

    #[test]
    fn terms_are_learned_from_tool_results() {
        let learned = Learned::default();
        assert!(learned.current().is_none());
        let result = serde_json::json!({"products": [
            {"id": "P1", "name": "Ardent Stride Runner 5", "brand": "Ardent", "description": "A long description that is not a term at all, however the model words it, because it runs past eighty characters."},
            {"id": "P2", "name": "Madison Tote", "brand": "Kate Spade"}
        ]});
        assert_eq!(learned.learn(&result), 4);
        assert_eq!(learned.learn(&result), 0, "nothing new, no rebuild");
        let text = "is the Madison Tote by Kate Spade real leather? asks Madison Clark";
        let spans: Vec<&str> = learned
            .current()
            .unwrap()
            .spans(text)
            .iter()
            .map(|&(s, e)| &text[s..e])
            .collect();
        assert_eq!(spans, ["Madison Tote", "Kate Spade"]);
    }

    #[test]
    fn terms_one_space_apart_form_one_span() {
        let k = keep(&["Steve Madden", "Irenee"]);
        let text = "the Steve Madden Irenee sandals, Steve Madden, Irenee";
        let found: Vec<&str> = k.spans(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(found, ["Steve Madden Irenee", "Steve Madden", "Irenee"]);
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
