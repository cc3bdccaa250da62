//! The cue words of a text, found in one pass: the words before a name (`names`: "ship
//! to", "Attn", "my name is"), before a value (`cued`: "password", "born in") and around a
//! birth date (`recognize`: "DOB", "geboren", "né le"). One automaton holds them all, so
//! the text is read once for the three, and the model's recasing reads what was found
//! instead of the text again.

use std::collections::HashMap;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

/// A cue word found in a text: where it is and what it announces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub start: usize,
    pub end: usize,
    /// Its index among the name cues (`names::CUES`).
    pub name: Option<usize>,
    /// Its index among the value cues (`cued::CUES`).
    pub value: Option<usize>,
    /// Whether it is or holds a birth word ("year of birth" holds "birth").
    pub birth: bool,
}

/// What a pattern of the automaton announces.
#[derive(Debug, Clone, Copy, Default)]
struct Roles {
    name: Option<usize>,
    value: Option<usize>,
    birth: bool,
}

/// The automaton and the roles of its patterns, by pattern index.
struct Cues {
    automaton: AhoCorasick,
    roles: Vec<Roles>,
}

#[allow(
    clippy::expect_used,
    reason = "constant patterns; the unit tests build the automaton"
)]
static CUES: LazyLock<Cues> = LazyLock::new(|| {
    // Patterns are matched in any ASCII case; a word written the same in another ASCII
    // case is one pattern with the roles of both.
    let mut patterns: Vec<String> = Vec::new();
    let mut roles: Vec<Roles> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut add = |pattern: &str, role: &dyn Fn(&mut Roles)| {
        let at = *index
            .entry(pattern.to_ascii_lowercase())
            .or_insert_with(|| {
                patterns.push(pattern.to_string());
                roles.push(Roles::default());
                patterns.len() - 1
            });
        if let Some(r) = roles.get_mut(at) {
            role(r);
        }
    };
    for (i, (cue, _)) in super::names::CUES.iter().enumerate() {
        add(cue, &|r| r.name = r.name.or(Some(i)));
    }
    for (i, (cue, _)) in super::cued::CUES.iter().enumerate() {
        add(cue, &|r| r.value = r.value.or(Some(i)));
    }
    // Birth words in capitals too: ASCII case folding leaves "É" and "Ø" as they are
    // ("NÉ LE", "FØDSELSDATO").
    let births: Vec<String> = super::recognize::birth_words()
        .flat_map(|w| [w.to_string(), w.to_uppercase()])
        .collect();
    for word in &births {
        add(word, &|r| r.birth = true);
    }
    // The longest match wins, so a cue that holds a birth word stands for it.
    let folded: Vec<String> = births.iter().map(|w| w.to_ascii_lowercase()).collect();
    for (pattern, role) in patterns.iter().zip(roles.iter_mut()) {
        let pattern = pattern.to_ascii_lowercase();
        role.birth |= folded.iter().any(|w| pattern.contains(w.as_str()));
    }
    // A DFA: the cues are short and common ("to", "for"), so no prefilter skips text,
    // and the DFA's one lookup per byte is the fastest way through it.
    let automaton = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .kind(Some(AhoCorasickKind::DFA))
        .build(&patterns)
        .expect("cue words build");
    Cues { automaton, roles }
});

/// Every cue word of `text`, in order (the longest where two start together).
pub fn find(text: &str) -> Vec<Hit> {
    let cues = &*CUES;
    cues.automaton
        .find_iter(text)
        .map(|m| {
            let roles = cues
                .roles
                .get(m.pattern().as_usize())
                .copied()
                .unwrap_or_default();
            Hit {
                start: m.start(),
                end: m.end(),
                name: roles.name,
                value: roles.value,
                birth: roles.birth,
            }
        })
        .collect()
}

/// Builds the automaton now (the first request should not pay for it).
pub fn warm() {
    LazyLock::force(&CUES);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str, pick: fn(&Hit) -> bool) -> Vec<&str> {
        find(text)
            .iter()
            .filter(|h| pick(h))
            .filter_map(|h| text.get(h.start..h.end))
            .collect()
    }

    #[test]
    fn one_pass_finds_name_value_and_birth_cues() {
        let text = "Ship to Anna, password: x1!, DOB 3/4/85, year of birth 1985, NÉ LE 3 mai";
        assert_eq!(words(text, |h| h.name.is_some()), ["Ship to"]);
        assert_eq!(
            words(text, |h| h.value.is_some()),
            ["password", "year of birth"]
        );
        assert_eq!(words(text, |h| h.birth), ["DOB", "year of birth", "NÉ LE"]);
    }
}
