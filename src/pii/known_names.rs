//! Given names and surnames of 33 locales (`lists/`, written by `scripts/name-lists.py`
//! from Faker's person providers), and the names they find on their own: a given name
//! followed by a surname ("Jean Dupont a commandé …", "Lars Eriksson +46 …"), one that
//! owns something ("Nadia's parcel") or stands with a found name ("Ingrid or Per"), which
//! the model misses in languages and layouts it has seen little of; `names` asks them
//! whether a word after a cue is a given name. The surname list leaves out surnames that
//! are English words ("Baker", "Green"): after a given name they are as often a product,
//! a colour or a place ("Rose Gold") as a family.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::names::cue_name;
use super::{Entity, Finding};

/// A list of names, hashed with foldhash: a lookup per capitalised word of every text
/// is the hot part of this pass, and SipHash's resistance to chosen keys buys nothing
/// for a set that is never written after it is built.
type Names = HashSet<&'static str, foldhash::fast::RandomState>;

static GIVEN: LazyLock<Names> =
    LazyLock::new(|| include_str!("lists/given-names.txt").lines().collect());
static SURNAMES: LazyLock<Names> =
    LazyLock::new(|| include_str!("lists/surnames.txt").lines().collect());
/// Given names that are also English words ("Amber", "May", "Per").
static WORD_NAMES: LazyLock<Names> =
    LazyLock::new(|| include_str!("lists/word-names.txt").lines().collect());

/// Score of a given name and a surname written together: a name, unless it is a listed
/// commerce term (dropped later).
const PAIR: f64 = 0.8;
/// Most words a name found here runs to ("Maria Fernanda Oliveira Santos").
const MAX_WORDS: usize = 4;

/// `word` as the lists write names: its first letter a capital, the rest as written.
fn listed_form(word: &str) -> Option<std::borrow::Cow<'_, str>> {
    let first = word.chars().next()?;
    if first.is_uppercase() {
        return Some(word.into());
    }
    let mut capitalised: String = first.to_uppercase().collect();
    capitalised.push_str(word.get(first.len_utf8()..)?);
    Some(capitalised.into())
}

/// Whether `word` is a known given name, in any case of its first letter.
fn is_given(word: &str) -> bool {
    listed_form(word).is_some_and(|w| GIVEN.contains(w.as_ref()))
}

/// Whether `word` is a known given name that is not also an English word: one that names
/// a person on its own.
pub fn is_given_only(word: &str) -> bool {
    listed_form(word)
        .is_some_and(|w| GIVEN.contains(w.as_ref()) && !WORD_NAMES.contains(w.as_ref()))
}

/// Whether `word` is a known given name or surname, in any case of its first letter or
/// in capitals ("RIBEIRO").
pub fn is_known(word: &str) -> bool {
    if word.chars().count() > 2 && !word.chars().any(char::is_lowercase) {
        let mut chars = word.chars();
        let titled: String = chars
            .next()
            .into_iter()
            .chain(chars.flat_map(char::to_lowercase))
            .collect();
        return is_given(&titled) || is_surname(&titled);
    }
    is_given(word) || is_surname(word)
}

/// Whether `word` is a known surname (not an English word), in any case of its first letter.
fn is_surname(word: &str) -> bool {
    listed_form(word).is_some_and(|w| SURNAMES.contains(w.as_ref()))
}

/// Whether the words of `name` (one space apart) are a given name, then given names or
/// surnames, ending with a surname: "chiara bianchi", "Maria Fernanda Oliveira".
pub fn is_full_name(name: &str) -> bool {
    let words: Vec<&str> = name.split(' ').collect();
    let [first, middle @ .., last] = words.as_slice() else {
        return false;
    };
    words.len() <= MAX_WORDS
        && is_given(first)
        && middle.iter().all(|w| is_given(w) || is_surname(w))
        && is_surname(last)
}

/// A capitalised word of `text` from `at`, and where it ends: letters, with apostrophes
/// and hyphens inside.
fn capitalised_word(text: &str, at: usize) -> Option<(&str, usize)> {
    let rest = text.get(at..)?;
    if !rest.chars().next().is_some_and(char::is_uppercase) {
        return None;
    }
    let len: usize = rest
        .chars()
        .take_while(|&c| c.is_alphabetic() || c == '\'' || c == '-')
        .map(char::len_utf8)
        .sum();
    let word = rest.get(..len)?;
    // Not the possessive: "Chloé's" is "Chloé".
    let word = word
        .strip_suffix("'s")
        .unwrap_or(word)
        .trim_end_matches(['\'', '-']);
    (word.len() >= 2).then_some((word, at + word.len()))
}

/// Given names followed by surnames in `text`, capitalised, one space apart, that are
/// not part of an address already found in `out` or written next to a house number
/// ("Calle Ramón Zamorano 32", "38 Dawn Brooks": streets are named after people); and a
/// given name alone that owns something ("Chloé's order").
pub fn scan(text: &str, out: &mut Vec<Finding>) {
    let addresses: Vec<(usize, usize)> = out
        .iter()
        .filter(|f| f.entity == Entity::Address)
        .map(|f| (f.start, f.end))
        .collect();
    let bytes = text.as_bytes();
    let mut done = 0;
    // A name's first word ends before a space and a capital letter, or before "'s". One
    // look at each pair of bytes finds those places; only there is a word read back.
    for (at, pair) in bytes.windows(2).enumerate() {
        let &[b, next] = pair else {
            continue;
        };
        let owner = match (b, next) {
            (b' ', n) if at >= done && (n.is_ascii_uppercase() || n >= 0xC3) => false,
            (b'\'', b's') => bytes.get(at + 2) == Some(&b' '),
            // "’" is E2 80 99.
            (0xE2, 0x80) => bytes.get(at + 2..at + 5) == Some(&[0x99, b's', b' '][..]),
            _ => continue,
        };
        let Some((first, start)) = word_ending_at(text, at) else {
            continue;
        };
        // The last word of a name just found does not start another one.
        if start < done && !owner {
            continue;
        }
        if !GIVEN.contains(first) || after_number(text, start) {
            continue;
        }
        // A given name that is also an English word ("Jean", "My") needs a surname after
        // it that is not a given name too: "Jean Dupont", not "My Stuart Weitzman".
        let ambiguous = WORD_NAMES.contains(first);
        let found = if owner {
            (!ambiguous).then_some(at)
        } else {
            surnames_after(text, at, ambiguous)
                .or_else(|| {
                    (!ambiguous)
                        .then(|| second_given_name(text, first, at))
                        .flatten()
                })
                .filter(|&e| {
                    !before_house_number(text, e)
                        && !addresses.iter().any(|&(s, ae)| s < e && start < ae)
                })
        };
        if let Some(end) = found {
            if !out.iter().any(|f| f.start == start && f.end == end) {
                out.push(cue_name(start, end, PAIR));
            }
            done = done.max(end);
        }
    }
}

/// The capitalised word that ends at byte `end` of `text`, and where it starts: read back
/// byte by byte over letters (any byte of a non-ASCII character counts as one), with no
/// letter or digit before it.
fn word_ending_at(text: &str, end: usize) -> Option<(&str, usize)> {
    let bytes = text.as_bytes();
    let start = end
        - bytes
            .get(..end)?
            .iter()
            .rev()
            .take_while(|&&c| c.is_ascii_alphabetic() || c == b'-' || c >= 0x80)
            .count();
    // Its first byte a capital, or a character that may be one.
    if !bytes
        .get(start)
        .is_some_and(|&c| c.is_ascii_uppercase() || c >= 0xC3)
    {
        return None;
    }
    let edge = !text
        .get(..start)
        .and_then(|t| t.chars().next_back())
        .is_some_and(char::is_alphanumeric);
    capitalised_word(text, start)
        .filter(|&(_, e)| e == end && edge)
        .map(|(word, _)| (word, start))
}

/// Where the name that a given name ending at `from` starts ends: at the last of the
/// given names and surnames that follow it one space apart, when one is a surname.
fn surnames_after(text: &str, from: usize, ambiguous: bool) -> Option<usize> {
    let mut next = from;
    let mut name_end = None;
    for words in 1..MAX_WORDS {
        let Some(after) = text.get(next..).and_then(|t| t.strip_prefix(' ')) else {
            break;
        };
        let at = text.len() - after.len();
        let Some((word, word_end)) = capitalised_word(text, at) else {
            break;
        };
        let surname = SURNAMES.contains(word);
        let given = GIVEN.contains(word);
        if !surname && !given || ambiguous && words == 1 && given {
            // "My Tory Burch": a name may start at the next word.
            break;
        }
        next = word_end;
        if surname {
            name_end = Some(word_end);
        }
    }
    name_end
}

/// Saints that start the names of places ("Santa Clara", "São Paulo"), not people's.
const SAINTS: &[&str] = &["San", "Santa", "Santo", "São", "Saint", "Sainte", "Sankt"];

/// Where a second given name after `first` (ending at `from`) ends, when both name a
/// person on their own and no capitalised word follows: "Emre Yıldız", "Priya Kavya" — a
/// surname that the lists know as a given name, or two given names.
fn second_given_name(text: &str, first: &str, from: usize) -> Option<usize> {
    if SAINTS.contains(&first) {
        return None;
    }
    let at = from + 1;
    text.get(from..)?.strip_prefix(' ')?;
    let (word, end) = capitalised_word(text, at)?;
    let next_capitalised = text
        .get(end..)
        .and_then(|t| t.strip_prefix(' '))
        .and_then(|t| t.chars().next())
        .is_some_and(char::is_uppercase);
    (is_given_only(word) && !next_capitalised).then_some(end)
}

/// Words that join two names ("Ingrid or Per", "Mia and Leo").
const JOINERS: &[&str] = &[
    " and ", " or ", " & ", " und ", " oder ", " et ", " ou ", " y ", " o ", " e ",
];

/// Given names joined to a person found in `found` ("ask Ingrid or Per", "Per and
/// Ingrid"): next to a name, even a given name that is also a word is one.
pub fn coordinated(text: &str, found: &mut Vec<Finding>) {
    let people: Vec<(usize, usize)> = found
        .iter()
        .filter(|f| f.entity == Entity::Person && f.score >= PAIR)
        .map(|f| (f.start, f.end))
        .collect();
    for (start, end) in people {
        let (Some(head), Some(tail)) = (text.get(..start), text.get(end..)) else {
            continue;
        };
        let after = JOINERS
            .iter()
            .find_map(|j| tail.starts_with(j).then(|| end + j.len()))
            .and_then(|at| capitalised_word(text, at).map(|(word, e)| (word, at, e)));
        let before = JOINERS
            .iter()
            .find_map(|j| head.strip_suffix(j))
            .and_then(|head| {
                word_ending_at(text, head.len()).map(|(word, at)| (word, at, head.len()))
            });
        for (word, at, word_end) in [after, before].into_iter().flatten() {
            if GIVEN.contains(word) {
                found.push(cue_name(at, word_end, PAIR));
            }
        }
    }
}

/// Whether a number stands before `at`, a space or a comma and a space apart.
fn after_number(text: &str, at: usize) -> bool {
    let head = text
        .get(..at)
        .unwrap_or_default()
        .trim_end_matches([' ', ',']);
    let digits = head.bytes().rev().take_while(u8::is_ascii_digit).count();
    // Five digits or more are an id or a postcode ("10044, Sven Olofsson, …").
    head.len() < at && (1..=MAX_HOUSE_DIGITS).contains(&digits)
}

/// Most digits a house number has.
const MAX_HOUSE_DIGITS: usize = 4;

/// Whether a house number follows `at`: a space, one to four digits (and a letter), then
/// a comma, a space and a word, or the end ("Calle Ramón Zamorano 32 Apt. 5"); not the
/// groups of a phone number ("Marie Dubois 06 12 34 56 78").
fn before_house_number(text: &str, at: usize) -> bool {
    let Some(rest) = text.get(at..).and_then(|t| t.strip_prefix(' ')) else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let rest = rest.get(digits..).unwrap_or_default();
    let rest = rest
        .strip_prefix(|c: char| c.is_ascii_alphabetic())
        .filter(|r| !r.starts_with(char::is_alphabetic))
        .unwrap_or(rest);
    (1..=MAX_HOUSE_DIGITS).contains(&digits)
        && (rest.is_empty()
            || rest.starts_with(',')
            || rest
                .strip_prefix(' ')
                .is_some_and(|r| r.starts_with(char::is_alphabetic)))
}

/// Builds the lists now (the first request should not pay for it).
pub fn warm() {
    LazyLock::force(&GIVEN);
    LazyLock::force(&SURNAMES);
    LazyLock::force(&WORD_NAMES);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<&str> {
        crate::pii::found_by(scan, text)
    }

    #[test]
    fn a_given_name_before_a_surname_is_a_name_in_any_language() {
        assert_eq!(
            names("Jean Dupont a commandé deux casseroles"),
            ["Jean Dupont"]
        );
        assert_eq!(names("Lars Eriksson +46 8 123 456 78"), ["Lars Eriksson"]);
        assert_eq!(
            names("gift for Lucía Carolina Oliveira, Rio"),
            ["Lucía Carolina Oliveira"]
        );
        assert_eq!(
            names("Élodie Moreau et Søren Jensen"),
            ["Élodie Moreau", "Søren Jensen"]
        );
        assert_eq!(names("Emre Yıldız a commandé deux paires"), ["Emre Yıldız"]);
        assert_eq!(
            names("Agnieszka Kowalczyk, ul. Długa 15"),
            ["Agnieszka Kowalczyk"]
        );
    }

    #[test]
    fn two_given_names_are_a_name_unless_a_saint_starts_a_place() {
        assert_eq!(names("a gift for Priya Kavya, she is 8"), ["Priya Kavya"]);
        assert!(names("we ship to Santa Clara and Santa Monica").is_empty());
        assert!(
            names("Emre Yıldız Outlet").is_empty(),
            "a third capitalised word: not two given names alone"
        );
    }

    #[test]
    fn words_that_are_not_a_given_name_and_a_surname_are_not_names() {
        // An English word after a given name, a lone given name, lower case, no space.
        assert!(names("the Rose Gold strap and the May Sale").is_empty());
        assert!(names("My Stuart Weitzman boots").is_empty());
        assert!(names("ask Jonas about it").is_empty());
        assert!(names("jean dupont").is_empty());
        assert!(names("JeanDupont, Jean-Dupont").is_empty());
        assert!(names("Aéroport Charles").is_empty());
        // Streets are named after people: a number before or after is a house number.
        assert!(names("Calle Ramón Zamorano 32 Apt. 5, Tarragona").is_empty());
        assert!(names("787 Kathryn Wells Suite 566").is_empty());
        assert_eq!(names("Marie Dubois 06 12 34 56 78"), ["Marie Dubois"]);
        assert_eq!(
            names("row: 10044, Sven Olofsson, sven.o@example.se"),
            ["Sven Olofsson"],
            "five digits are an id, not a house number"
        );
    }

    #[test]
    fn a_given_name_that_owns_something_or_stands_with_a_name_is_a_name() {
        assert_eq!(names("Chloé's order arrived"), ["Chloé"]);
        assert_eq!(names("so Nadia’s parcel went next door"), ["Nadia"]);
        assert!(names("Amber's glow serum").is_empty());
        let text = "ask Ingrid Olsen or Per, and Mia and Leo Berg";
        let at = |name: &str| text.find(name).map(|s| cue_name(s, s + name.len(), PAIR));
        let mut found: Vec<Finding> = [at("Ingrid Olsen"), at("Leo Berg")]
            .into_iter()
            .flatten()
            .collect();
        coordinated(text, &mut found);
        let found: Vec<&str> = found.iter().map(|f| &text[f.start..f.end]).collect();
        assert_eq!(found, ["Ingrid Olsen", "Leo Berg", "Per", "Mia"]);
    }

    #[test]
    fn full_names_are_checked_word_by_word_in_any_case() {
        assert!(is_full_name("chiara bianchi"));
        assert!(is_full_name("Daan Jansen"));
        assert!(!is_full_name("chiara"));
        assert!(!is_full_name("rose gold"));
        assert!(is_given_only("Jonas") && !is_given_only("Amber") && is_given("Amber"));
    }
}
