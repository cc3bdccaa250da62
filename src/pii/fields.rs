//! Values named by their key, as tools return records: JSON members (`"dob": "1991-02-03"`,
//! `'firstName': 'Ana'`) and `key=value` pairs of logs and query strings
//! (`name="Lena Vogel" dob=1987-11-30`). A key that names a birth date, a person, a phone
//! or a postal address makes its value that type when the value fits it (`labels`); a
//! bare "name", which products have too, only a candidate for the model to confirm. Keys
//! themselves are never personal, and neither is a value in lower case under a key that
//! names no person (`"loyalty": "silver"`): the model's findings there are dropped.

use super::labels::{fits, is_bare_name, kind_of};
use super::{Entity, Finding, Source};

/// Score of a value whose key names its type: as strong as a labelling cue.
const KEYED: f64 = 0.85;
/// Score of a value under a bare "name", which products and stores have too: below
/// every profile's threshold, a candidate the model confirms (`names::confirm`).
const UNSURE: f64 = 0.3;
/// Longest key read ("customer_date_of_birth").
const LONGEST_KEY: usize = 40;
/// Longest value read.
const LONGEST_VALUE: usize = 200;

/// A key and its value in a text: byte ranges, quotes left out.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Field {
    key: (usize, usize),
    value: (usize, usize),
}

/// The values of `text` whose key names their type.
pub fn scan(text: &str, out: &mut Vec<Finding>) {
    for field in fields(text) {
        let (Some(key), Some(value)) = (
            text.get(field.key.0..field.key.1),
            text.get(field.value.0..field.value.1),
        ) else {
            continue;
        };
        if let Some(kind) = kind_of(key).filter(|&kind| fits(kind, value)) {
            out.push(Finding {
                entity: kind,
                start: field.value.0,
                end: field.value.1,
                score: if is_bare_name(key) { UNSURE } else { KEYED },
                source: Source::Cue,
            });
        }
    }
}

/// Drops the model's findings in a key (`"lastOrder"`) and in a lower-case value of a
/// key that names no person (`"tier": "gold"`).
pub fn drop_misreads(text: &str, found: &mut Vec<Finding>) {
    if !found.iter().any(|f| f.source == Source::Ner) {
        return;
    }
    let fields: Vec<Field> = fields(text).collect();
    if fields.is_empty() {
        return;
    }
    let inside = |f: &Finding, (start, end): (usize, usize)| f.start >= start && f.end <= end;
    found.retain(|f| {
        if f.source != Source::Ner {
            return true;
        }
        !fields.iter().any(|field| {
            let enum_like = || {
                let key = text.get(field.key.0..field.key.1).unwrap_or_default();
                let value = text.get(field.value.0..field.value.1).unwrap_or_default();
                !value.chars().any(char::is_uppercase)
                    && !matches!(kind_of(key), Some(Entity::Person | Entity::Address))
            };
            inside(f, field.key) || inside(f, field.value) && enum_like()
        })
    });
}

/// Every key and value of `text`, in order.
fn fields(text: &str) -> impl Iterator<Item = Field> + '_ {
    let bytes = text.as_bytes();
    memchr::memchr2_iter(b':', b'=', bytes).filter_map(move |at| match bytes.get(at) {
        Some(b':') => {
            let key = quoted_key(text, at)?;
            Some(Field {
                key,
                value: value_after(text, at + 1, b",}]\r\n")?,
            })
        }
        _ => {
            let key = bare_key(text, at)?;
            Some(Field {
                key,
                value: value_after(text, at + 1, b" \t,;&\r\n")?,
            })
        }
    })
}

/// The quoted key that ends before the colon at `colon` (spaces between them allowed).
fn quoted_key(text: &str, colon: usize) -> Option<(usize, usize)> {
    let head = text.get(..colon)?.trim_end_matches(' ');
    let quote = *head
        .as_bytes()
        .last()
        .filter(|&&b| b == b'"' || b == b'\'')?;
    let end = head.len() - 1;
    let from = end.saturating_sub(LONGEST_KEY);
    let start = memchr::memrchr(quote, head.as_bytes().get(from..end)?)? + from + 1;
    let key = text.get(start..end)?;
    is_key(key).then_some((start, end))
}

/// The identifier that ends right before the `=` at `equals`, where one starts a pair:
/// at the text's start or after a space or a delimiter ("a=1&b=2", "{x=1, y=2}").
fn bare_key(text: &str, equals: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(equals + 1) == Some(&b'=') || bytes.get(equals.checked_sub(1)?) == Some(&b'=') {
        return None;
    }
    let head = bytes.get(equals.saturating_sub(LONGEST_KEY)..equals)?;
    let len = head
        .iter()
        .rev()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        .count();
    let start = equals - len;
    let opens = start == 0
        || bytes.get(start - 1).is_some_and(|b| {
            matches!(
                b,
                b' ' | b'\t' | b'\n' | b'&' | b'?' | b';' | b',' | b'{' | b'('
            )
        });
    let key = text.get(start..equals)?;
    (len >= 2 && opens && is_key(key)).then_some((start, equals))
}

/// Whether `key` reads as a field's name: short, a letter first, no sentence in it.
fn is_key(key: &str) -> bool {
    key.chars().next().is_some_and(char::is_alphabetic)
        && key.len() <= LONGEST_KEY
        && key.split(' ').count() <= 3
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '))
}

/// The value after a separator at `from`: a quoted string (escapes skipped), or a bare
/// token up to one of `ends`; trimmed of spaces, never empty.
fn value_after(text: &str, from: usize, ends: &[u8]) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut start = from;
    while bytes.get(start).is_some_and(|&b| b == b' ' || b == b'\t') {
        start += 1;
    }
    let limit = (start + LONGEST_VALUE).min(bytes.len());
    let (start, end) = match bytes.get(start) {
        Some(&quote @ (b'"' | b'\'')) => {
            let mut end = start + 1;
            loop {
                match bytes.get(end) {
                    Some(b'\\') => end += 2,
                    Some(&b) if b == quote => break,
                    Some(b'\n') | None => return None,
                    Some(_) if end >= limit => return None,
                    Some(_) => end += 1,
                }
            }
            (start + 1, end)
        }
        Some(b'{' | b'[') | None => return None,
        Some(_) => {
            let len = bytes
                .get(start..limit)?
                .iter()
                .take_while(|b| !ends.contains(b))
                .count();
            let token = text.get(start..start + len)?.trim_end();
            (start, start + token.len())
        }
    };
    (end > start && text.is_char_boundary(start) && text.is_char_boundary(end))
        .then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(Entity, &str)> {
        crate::pii::typed_found_by(scan, text)
    }

    #[test]
    fn json_members_named_by_their_key() {
        assert_eq!(
            found(
                r#"{"customer": {"first_name": "Ana", "lastName" : "Silva", "dob": "1991-02-03"}, "sku": "TR-42", "phone": "+81 3-5555-0199", "birthDate": 19830719}"#
            ),
            [
                (Entity::Person, "Ana"),
                (Entity::Person, "Silva"),
                (Entity::DateOfBirth, "1991-02-03"),
                (Entity::Phone, "+81 3-5555-0199"),
                (Entity::DateOfBirth, "19830719"),
            ]
        );
        assert_eq!(
            found(r#"{'name': 'Ana \'Nana\' Silva', 'product_name': 'Alpine 40L'}"#),
            [(Entity::Person, r"Ana \'Nana\' Silva")]
        );
        // Empty, null and unfit values, and what is not a key.
        assert!(
            found(r#"{"name": null, "dob": "", "phone": "call me", "address": {"city": "Lyon"}}"#)
                .is_empty()
        );
        assert!(found("Note: the name is below").is_empty());
    }

    #[test]
    fn a_bare_name_is_a_candidate_and_a_person_s_name_a_finding() {
        let text = r#"{"name": "Madison Tote", "full_name": "Ana Silva"}"#;
        let mut out = Vec::new();
        scan(text, &mut out);
        let scored: Vec<(&str, bool)> = out
            .iter()
            .map(|f| (&text[f.start..f.end], f.score >= 0.5))
            .collect();
        assert_eq!(scored, [("Madison Tote", false), ("Ana Silva", true)]);
    }

    #[test]
    fn key_value_pairs() {
        assert_eq!(
            found(r#"customer_id=88123 name="Lena Vogel" dob=1987-11-30 status=active"#),
            [
                (Entity::Person, "Lena Vogel"),
                (Entity::DateOfBirth, "1987-11-30")
            ]
        );
        assert_eq!(
            found("GET /lookup?tel=0171234567&sku=TR-42"),
            [(Entity::Phone, "0171234567")]
        );
        assert!(found("if a == b and dob==x").is_empty());
    }

    #[test]
    fn the_model_is_not_heard_in_keys_and_lower_case_values() {
        let text = r#"{"loyalty":"silver","lastOrder":"2026-10-02","name":"ana silva","note":"Call Maria"}"#;
        let at = |s: &str| text.find(s).unwrap();
        let ner = |s: &str| Finding {
            entity: Entity::Person,
            start: at(s),
            end: at(s) + s.len(),
            score: 0.9,
            source: Source::Ner,
        };
        let mut found = vec![
            ner("silver"),
            ner("lastOrder"),
            ner("ana silva"),
            ner("Maria"),
        ];
        drop_misreads(text, &mut found);
        let left: Vec<&str> = found.iter().map(|f| &text[f.start..f.end]).collect();
        assert_eq!(left, ["ana silva", "Maria"]);
    }
}
