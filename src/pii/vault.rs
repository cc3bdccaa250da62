//! The per-request vault of reversible placeholders: the same value always gets the same
//! `<ENTITY_n>` within a request, and answers are restored from it — whole texts, JSON
//! strings inside tool-call arguments, and streams whose placeholders arrive split across
//! chunks. The vault lives only as long as its request.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::entity::Entity;

/// Longest placeholder a stream holds back for (`<DRIVERS_LICENSE_99999>` fits).
const MAX_PLACEHOLDER: usize = 32;

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<([A-Z][A-Z_]*)_(\d{1,5})>").expect("placeholder pattern"));

#[derive(Debug, Default, Clone)]
pub struct Vault {
    by_value: HashMap<(Entity, String), String>,
    by_placeholder: HashMap<String, String>,
    counters: HashMap<Entity, u32>,
}

impl Vault {
    pub fn is_empty(&self) -> bool {
        self.by_placeholder.is_empty()
    }

    /// The placeholder for `value`, issuing a new one the first time.
    pub fn placeholder(&mut self, entity: Entity, value: &str) -> String {
        if let Some(p) = self.by_value.get(&(entity, value.to_string())) {
            return p.clone();
        }
        let n = self.counters.entry(entity).or_default();
        *n += 1;
        let p = format!("<{}_{}>", entity.name(), n);
        self.by_value.insert((entity, value.to_string()), p.clone());
        self.by_placeholder.insert(p.clone(), value.to_string());
        p
    }

    /// `text` with every known placeholder replaced by its value; `json_escape` when the
    /// text sits inside a JSON string literal (tool-call arguments).
    pub fn restore<'a>(&self, text: &'a str, json_escape: bool) -> Cow<'a, str> {
        if self.is_empty() || !text.contains('<') {
            return Cow::Borrowed(text);
        }
        PLACEHOLDER.replace_all(text, |c: &regex::Captures<'_>| {
            match self.by_placeholder.get(&c[0]) {
                Some(value) if json_escape => escape_json(value),
                Some(value) => value.clone(),
                None => c[0].to_string(),
            }
        })
    }

    /// A restorer for one stream of text fragments.
    pub fn stream(&self, json_escape: bool) -> StreamRestorer {
        StreamRestorer {
            held: String::new(),
            json_escape,
        }
    }
}

fn escape_json(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    quoted[1..quoted.len().saturating_sub(1)].to_string()
}

/// Restores placeholders in a stream of fragments, holding back only a tail that may be
/// the start of a placeholder (at most [`MAX_PLACEHOLDER`] bytes).
#[derive(Debug, Default, Clone)]
pub struct StreamRestorer {
    held: String,
    json_escape: bool,
}

impl StreamRestorer {
    /// The text that can be shown now.
    pub fn push(&mut self, vault: &Vault, fragment: &str) -> String {
        self.held.push_str(fragment);
        let cut = pending_start(&self.held);
        let ready: String = self.held.drain(..cut).collect();
        vault.restore(&ready, self.json_escape).into_owned()
    }

    /// Whatever is still held, restored (end of the stream).
    pub fn flush(&mut self, vault: &Vault) -> String {
        let rest = std::mem::take(&mut self.held);
        vault.restore(&rest, self.json_escape).into_owned()
    }
}

/// Where an unfinished placeholder starts in `s` (`s.len()` when there is none): a `<`
/// followed only by what a placeholder may continue with.
fn pending_start(s: &str) -> usize {
    let Some(open) = s.rfind('<') else {
        return s.len();
    };
    let tail = &s[open + 1..];
    let could_continue = tail.len() < MAX_PLACEHOLDER
        && !tail.contains('>')
        && tail
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit());
    if could_continue { open } else { s.len() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_same_placeholder() {
        let mut v = Vault::default();
        let a = v.placeholder(Entity::Email, "a@x.io");
        let b = v.placeholder(Entity::Email, "b@x.io");
        assert_eq!((a.as_str(), b.as_str()), ("<EMAIL_1>", "<EMAIL_2>"));
        assert_eq!(v.placeholder(Entity::Email, "a@x.io"), "<EMAIL_1>");
        assert_eq!(v.placeholder(Entity::Person, "Jane"), "<PERSON_1>");
        assert_eq!(
            v.restore("Hi <PERSON_1>, mail <EMAIL_2> or <EMAIL_9>", false),
            "Hi Jane, mail b@x.io or <EMAIL_9>"
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut v = Vault::default();
        v.placeholder(Entity::Person, "Jane \"JJ\" Doe");
        assert_eq!(
            v.restore(r#"{"name":"<PERSON_1>"}"#, true),
            r#"{"name":"Jane \"JJ\" Doe"}"#
        );
    }

    #[test]
    fn streams_hold_back_only_a_split_placeholder() {
        let mut v = Vault::default();
        v.placeholder(Entity::Email, "jane@x.io");
        let mut r = v.stream(false);
        let mut out = String::new();
        for piece in ["Write to <EM", "AIL_", "1> today", " a<b", " c"] {
            let shown = r.push(&v, piece);
            if piece == "Write to <EM" {
                assert_eq!(
                    shown, "Write to ",
                    "text before the placeholder is not held"
                );
            }
            out.push_str(&shown);
        }
        out.push_str(&r.flush(&v));
        assert_eq!(out, "Write to jane@x.io today a<b c");
        let mut r = v.stream(false);
        assert_eq!(r.push(&v, "x < y"), "x < y", "a lone < is not held");
        assert_eq!(r.push(&v, " <"), " ");
        assert_eq!(r.flush(&v), "<");
    }
}
