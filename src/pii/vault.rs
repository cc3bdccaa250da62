//! The per-request vault of reversible placeholders. A placeholder names its entity type,
//! a counter and the request's nonce (`<EMAIL_1_k3f9qz>`): the same value always gets the
//! same placeholder within a request, and the nonce — random, and never a string the
//! client's body contains — makes placeholders unguessable, so text a client types in
//! placeholder shape is plain text and never restored. Each value remembers where in the
//! request it came from (a message role, the prompt, another field); answers are restored
//! only from the origins the profile allows (`restore_sources`), and a known placeholder
//! whose origin is not allowed is shown as `[ENTITY]`. Restoration covers whole texts,
//! JSON strings inside tool-call arguments, and streams whose placeholders arrive split
//! across chunks. The vault lives as long as its request — or, for a Responses API
//! conversation, as long as the conversation: its [`VaultSnapshot`] is kept with each
//! response (sealed, in the shared state) and the next turn continues it, so a value
//! keeps its placeholder across turns and earlier turns' placeholders are restored.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::config::Entity;
use crate::config::RestoreSource;

/// Longest placeholder a stream holds back for (`<URL_CREDENTIALS_99999_abcdef>` fits).
const MAX_PLACEHOLDER: usize = 32;
/// Characters of the per-request nonce.
const NONCE_LEN: usize = 6;
const NONCE_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

#[allow(
    clippy::expect_used,
    reason = "a constant pattern; the unit tests compile it"
)]
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<[A-Z][A-Z_]*_\d{1,5}_[a-z0-9]{6}>").expect("placeholder pattern")
});

/// One pseudonymized value and the origins it was seen in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Held {
    entity: Entity,
    value: String,
    /// Bit set of [`RestoreSource`]s.
    origins: u16,
}

#[derive(Debug, Clone)]
pub struct Vault {
    nonce: String,
    by_value: HashMap<(Entity, String), String>,
    by_placeholder: HashMap<String, Held>,
    counters: HashMap<Entity, u32>,
    /// Bit set of the origins whose values are restored.
    restorable: u16,
}

impl Default for Vault {
    fn default() -> Self {
        Vault::for_request(b"")
    }
}

/// What a vault holds, to continue it in a later request of the same conversation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VaultSnapshot {
    nonce: String,
    /// Placeholder → value, entity and origins.
    held: Vec<(String, Held)>,
}

fn bit(origin: RestoreSource) -> u16 {
    1 << (origin as u16)
}

impl Vault {
    /// A vault for one request whose client-sent body is `body`: its nonce appears nowhere
    /// in the body, so no placeholder the client wrote can match one issued here.
    pub fn for_request(body: &[u8]) -> Vault {
        let nonce = loop {
            let candidate: String = (0..NONCE_LEN)
                .map(|_| {
                    let i = rand::random_range(0..NONCE_ALPHABET.len());
                    char::from(NONCE_ALPHABET.get(i).copied().unwrap_or(b'a'))
                })
                .collect();
            if memchr::memmem::find(body, candidate.as_bytes()).is_none() {
                break candidate;
            }
        };
        Vault::with_nonce_unchecked(nonce)
    }

    /// What this vault holds.
    pub fn snapshot(&self) -> VaultSnapshot {
        let mut held: Vec<(String, Held)> = self
            .by_placeholder
            .iter()
            .map(|(p, h)| (p.clone(), h.clone()))
            .collect();
        held.sort_by(|a, b| a.0.cmp(&b.0));
        VaultSnapshot {
            nonce: self.nonce.clone(),
            held,
        }
    }

    /// A vault continuing `snapshot`: the same nonce, values and counters, so the same
    /// value keeps its placeholder and new values get new numbers. Placeholders the
    /// snapshot does not hold in this vault's shape are left out.
    pub fn resume(snapshot: VaultSnapshot) -> Vault {
        let mut vault = Vault::with_nonce_unchecked(snapshot.nonce);
        for (placeholder, held) in snapshot.held {
            let shape = format!("_{}>", vault.nonce);
            let Some(n) = placeholder
                .strip_prefix(&format!("<{}_", held.entity.name()))
                .and_then(|rest| rest.strip_suffix(&shape))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let counter = vault.counters.entry(held.entity).or_default();
            *counter = (*counter).max(n);
            vault
                .by_value
                .insert((held.entity, held.value.clone()), placeholder.clone());
            vault.by_placeholder.insert(placeholder, held);
        }
        vault
    }

    fn with_nonce_unchecked(nonce: String) -> Vault {
        Vault {
            nonce,
            by_value: HashMap::new(),
            by_placeholder: HashMap::new(),
            counters: HashMap::new(),
            restorable: u16::MAX,
        }
    }

    /// Restores only values seen in these origins (the profile's `restore_sources`).
    pub fn restoring_only(mut self, origins: &[RestoreSource]) -> Vault {
        self.restorable = origins.iter().fold(0, |acc, o| acc | bit(*o));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.by_placeholder.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn nonce(&self) -> &str {
        &self.nonce
    }

    /// A vault with a fixed nonce, for tests.
    #[cfg(test)]
    pub(crate) fn with_nonce(nonce: &str) -> Vault {
        Vault::with_nonce_unchecked(nonce.to_string())
    }

    /// The placeholder for `value` seen in `origin`, issuing a new one the first time.
    pub fn placeholder(&mut self, entity: Entity, value: &str, origin: RestoreSource) -> String {
        if let Some(p) = self.by_value.get(&(entity, value.to_string())) {
            if let Some(held) = self.by_placeholder.get_mut(p) {
                held.origins |= bit(origin);
            }
            return p.clone();
        }
        let n = self.counters.entry(entity).or_default();
        *n += 1;
        let p = format!("<{}_{}_{}>", entity.name(), n, self.nonce);
        self.by_value.insert((entity, value.to_string()), p.clone());
        self.by_placeholder.insert(
            p.clone(),
            Held {
                entity,
                value: value.to_string(),
                origins: bit(origin),
            },
        );
        p
    }

    /// What the answer shows for a placeholder of this vault: its value when one of its
    /// origins is restorable, else `[ENTITY]`; `None` for any other text.
    fn resolve(&self, placeholder: &str) -> Option<Cow<'_, str>> {
        let held = self.by_placeholder.get(placeholder)?;
        Some(if held.origins & self.restorable != 0 {
            Cow::Borrowed(held.value.as_str())
        } else {
            Cow::Owned(format!("[{}]", held.entity.name()))
        })
    }

    /// `text` with every placeholder of this vault resolved; `json_escape` when the text
    /// sits inside a JSON string literal (tool-call arguments).
    pub fn restore<'a>(&self, text: &'a str, json_escape: bool) -> Cow<'a, str> {
        if self.is_empty() || !text.contains('<') {
            return Cow::Borrowed(text);
        }
        PLACEHOLDER.replace_all(text, |c: &regex::Captures<'_>| {
            let whole = c.get(0).map_or("", |m| m.as_str());
            match self.resolve(whole) {
                Some(value) if json_escape => escape_json(&value),
                Some(value) => value.into_owned(),
                None => whole.to_string(),
            }
        })
    }

    /// Whether `tail` (text from a `<` to the end) may still grow into one of this
    /// vault's placeholders.
    fn may_complete(&self, tail: &str) -> bool {
        tail.len() < MAX_PLACEHOLDER && self.by_placeholder.keys().any(|p| p.starts_with(tail))
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
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_string()
}

/// Restores placeholders in a stream of fragments, holding back only a tail that may
/// still become one of the vault's placeholders (at most [`MAX_PLACEHOLDER`] bytes).
#[derive(Debug, Default, Clone)]
pub struct StreamRestorer {
    held: String,
    json_escape: bool,
}

impl StreamRestorer {
    /// The text that can be shown now.
    pub fn push(&mut self, vault: &Vault, fragment: &str) -> String {
        self.held.push_str(fragment);
        let cut = match self.held.rfind('<') {
            Some(open) if self.held.get(open..).is_some_and(|t| vault.may_complete(t)) => open,
            _ => self.held.len(),
        };
        let ready: String = self.held.drain(..cut).collect();
        vault.restore(&ready, self.json_escape).into_owned()
    }

    /// Whatever is still held, restored (end of the stream).
    pub fn flush(&mut self, vault: &Vault) -> String {
        let rest = std::mem::take(&mut self.held);
        vault.restore(&rest, self.json_escape).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: RestoreSource = RestoreSource::User;

    #[test]
    fn same_value_same_placeholder_with_the_request_nonce() {
        let mut v = Vault::with_nonce("k3f9qz");
        let a = v.placeholder(Entity::Email, "a@x.io", USER);
        let b = v.placeholder(Entity::Email, "b@x.io", USER);
        assert_eq!(a, "<EMAIL_1_k3f9qz>");
        assert_eq!(b, "<EMAIL_2_k3f9qz>");
        assert_eq!(v.placeholder(Entity::Email, "a@x.io", USER), a);
        let p = v.placeholder(Entity::Person, "Jane", USER);
        assert_eq!(
            v.restore(&format!("Hi {p}, mail {b} or <EMAIL_9_k3f9qz>"), false),
            "Hi Jane, mail b@x.io or <EMAIL_9_k3f9qz>"
        );
    }

    #[test]
    fn a_resumed_vault_keeps_placeholders_and_numbers_on() {
        let mut first = Vault::for_request(b"");
        let a = first.placeholder(Entity::Email, "a@x.io", USER);
        let sys = first.placeholder(Entity::Email, "ops@x.io", RestoreSource::System);
        let snapshot = first.snapshot();
        let json = serde_json::to_string(&snapshot).unwrap();
        let back: VaultSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snapshot);
        let mut next = Vault::resume(back).restoring_only(&[RestoreSource::User]);
        assert_eq!(next.placeholder(Entity::Email, "a@x.io", USER), a);
        let b = next.placeholder(Entity::Email, "b@x.io", USER);
        assert_eq!(b, format!("<EMAIL_3_{}>", first.nonce));
        assert_eq!(
            next.restore(&format!("{a} {b} {sys}"), false),
            "a@x.io b@x.io [EMAIL]",
            "the profile's restore rule still holds"
        );
    }

    #[test]
    fn placeholder_shaped_text_without_the_nonce_is_plain_text() {
        let mut v = Vault::default();
        v.placeholder(Entity::Email, "a@x.io", USER);
        for typed in ["<EMAIL_1>", "<EMAIL_1_aaaaaa>", "<EMAIL_1_zzzzzz>"] {
            if !typed.contains(&v.nonce) {
                assert_eq!(v.restore(typed, false), typed);
            }
        }
    }

    #[test]
    fn the_nonce_never_appears_in_the_client_body() {
        // A body holding every 1-character prefix cannot force a collision, and a body
        // holding a specific candidate never gets it.
        for _ in 0..200 {
            let v = Vault::for_request(b"abc <EMAIL_1_abcdef> 012345");
            assert_ne!(v.nonce, "abcdef");
            assert_eq!(v.nonce.len(), NONCE_LEN);
        }
    }

    #[test]
    fn only_restorable_origins_come_back() {
        let mut v = Vault::default().restoring_only(&[RestoreSource::User]);
        let mine = v.placeholder(Entity::Email, "me@x.io", USER);
        let system = v.placeholder(Entity::Email, "ops@x.io", RestoreSource::System);
        let tool = v.placeholder(Entity::Phone, "+1 415 555 2671", RestoreSource::Tool);
        assert_eq!(
            v.restore(&format!("{mine} {system} {tool}"), false),
            "me@x.io [EMAIL] [PHONE]"
        );
        // A value the user also typed is theirs to see.
        v.placeholder(Entity::Email, "ops@x.io", USER);
        assert_eq!(v.restore(&system, false), "ops@x.io");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut v = Vault::default();
        let p = v.placeholder(Entity::Person, "Jane \"JJ\" Doe", USER);
        assert_eq!(
            v.restore(&format!(r#"{{"name":"{p}"}}"#), true),
            r#"{"name":"Jane \"JJ\" Doe"}"#
        );
    }

    #[test]
    fn streams_hold_back_only_a_split_placeholder() {
        let mut v = Vault::default();
        let p = v.placeholder(Entity::Email, "jane@x.io", USER);
        let mut r = v.stream(false);
        let mut out = String::new();
        let text = format!("Write to {p} today a<b c");
        let (head, tail) = text.split_at(12); // "Write to <EM"
        let (mid, rest) = tail.split_at(8);
        for piece in [head, mid, rest] {
            let shown = r.push(&v, piece);
            if piece == head {
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
        assert_eq!(r.push(&v, "<Bob>"), "<Bob>", "other tags pass at once");
    }
}
