//! Output scanning of streamed text: personal data the model writes is found by the
//! profile's patterns on a sliding window and replaced before the text is released. The
//! window holds back the last `hold` bytes (so a value split across chunks is seen whole),
//! a word without spaces until it ends (keys, e-mail addresses, URLs) and an unterminated
//! PEM block until its end line — never more than [`MAX_HOLD`] bytes. Some released text is
//! kept as context, so context words before a value still count. When the NER model reads
//! the answer (`scan_output: ner`), text is released a sentence at a time, so the model
//! judges a name or an address with the words around it; a sentence longer than
//! [`MAX_HOLD`] is released at the bound as any text is.

use super::Finding;
use super::redact::Redactor;

/// Released text kept in front of the window for context words.
const CONTEXT: usize = 64;
/// The most a window ever holds back.
pub const MAX_HOLD: usize = 4096;

/// One stream of text fragments (a choice's content, or one tool call's arguments).
#[derive(Debug, Clone)]
pub struct ScanWindow {
    hold: usize,
    /// Release only up to the end of a sentence.
    sentences: bool,
    /// The tail of what was already released, scanned for context only.
    context: String,
    /// Text not released yet.
    pending: String,
}

impl ScanWindow {
    pub fn new(hold: usize) -> ScanWindow {
        ScanWindow {
            hold: hold.min(MAX_HOLD),
            sentences: false,
            context: String::new(),
            pending: String::new(),
        }
    }

    /// This window releasing whole sentences only (`true`).
    pub fn by_sentence(mut self, sentences: bool) -> ScanWindow {
        self.sentences = sentences;
        self
    }

    /// The text that can be released after `fragment`, scanned and rewritten.
    pub fn push(&mut self, r: &mut Redactor<'_>, fragment: &str) -> String {
        self.pending.push_str(fragment);
        if self.pending.len() <= self.hold {
            return String::new();
        }
        // Reading sentences, nothing is released (nor read) before one ends.
        let ready = self.pending.len() - self.hold;
        let ready = self.pending.floor_char_boundary(ready);
        if self.sentences
            && self.pending.len() < MAX_HOLD
            && sentence_end(&self.pending, 0, ready) == 0
        {
            return String::new();
        }
        self.release(r, false)
    }

    /// Everything still held (end of the text).
    pub fn flush(&mut self, r: &mut Redactor<'_>) -> String {
        if self.pending.is_empty() {
            return String::new();
        }
        self.release(r, true)
    }

    fn release(&mut self, r: &mut Redactor<'_>, all: bool) -> String {
        let base = self.context.len();
        let text = format!("{}{}", self.context, self.pending);
        let findings = r.detect(&text);
        let cut = if all {
            text.len()
        } else {
            self.cut(&text, base, &findings)
        };
        let (Some(ready), Some(rest)) = (text.get(base..cut), text.get(cut..)) else {
            return String::new(); // not a character boundary: hold everything for now
        };
        if cut <= base {
            return String::new();
        }
        let inside: Vec<Finding> = findings
            .iter()
            .filter(|f| f.start >= base && f.end <= cut)
            .map(|f| Finding {
                start: f.start - base,
                end: f.end - base,
                ..f.clone()
            })
            .collect();
        let out = r.apply(ready, &inside).unwrap_or_else(|| ready.to_string());
        let context_start = text.floor_char_boundary(cut.saturating_sub(CONTEXT));
        self.context = text.get(context_start..cut).unwrap_or_default().to_string();
        self.pending = rest.to_string();
        out
    }

    /// Where the released part ends: `hold` bytes before the end, moved back to the start
    /// of a word, an open PEM block or a finding it would cut through.
    fn cut(&self, text: &str, base: usize, findings: &[Finding]) -> usize {
        let len = text.len();
        let bound = text.floor_char_boundary(len.saturating_sub(self.hold));
        let mut cut = bound;
        let before = |at: usize| text.get(..at).unwrap_or_default();
        let after = |at: usize| text.get(at..).unwrap_or_default();
        let in_word = |at: usize| {
            before(at)
                .chars()
                .next_back()
                .is_some_and(|c| !c.is_whitespace())
                && after(at).chars().next().is_some_and(|c| !c.is_whitespace())
        };
        if in_word(cut) {
            cut = before(cut).rfind(char::is_whitespace).map_or(0, |at| {
                at + after(at).chars().next().map_or(1, char::len_utf8)
            });
        }
        if self.sentences {
            cut = sentence_end(text, base, cut);
        }
        if let Some(open) = after(base).rfind("-----BEGIN")
            && !after(base + open).contains("-----END")
        {
            cut = cut.min(base + open);
        }
        for f in findings {
            if f.start < cut && cut < f.end {
                cut = f.start;
            }
        }
        if len - cut.max(base) > MAX_HOLD {
            cut = bound; // never hold more than the bound, whatever the text looks like
        }
        cut
    }
}

/// The end of the last sentence of `text[base..cut]` (after its terminator and the
/// space that follows), or `base` when none ends there.
fn sentence_end(text: &str, base: usize, cut: usize) -> usize {
    let Some(window) = text.get(base..cut) else {
        return base;
    };
    let mut end = base;
    let mut chars = window.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let terminator = matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '\n');
        if terminator && chars.peek().is_some_and(|&(_, n)| n.is_whitespace()) {
            if let Some(&(j, n)) = chars.peek() {
                end = base + j + n.len_utf8();
            }
        } else if c == '\n' {
            end = base + i + 1;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::test_profile;

    fn run(profile_yaml: &str, hold: usize, fragments: &[&str]) -> (String, Vec<String>) {
        let p = test_profile(profile_yaml);
        let mut r = Redactor::for_output(&p, b"k", None);
        let mut w = ScanWindow::new(hold);
        let mut released = Vec::new();
        for f in fragments {
            released.push(w.push(&mut r, f));
        }
        released.push(w.flush(&mut r));
        (released.concat(), released)
    }

    #[test]
    fn a_value_split_across_fragments_is_replaced_whole() {
        let text = "Your rep is reachable at jane.doe@example.com or +1 415 555 2671 during the week, thanks for waiting.";
        let fragments: Vec<String> = text
            .as_bytes()
            .chunks(3)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let refs: Vec<&str> = fragments.iter().map(String::as_str).collect();
        let (out, released) = run("{}", 32, &refs);
        assert_eq!(
            out,
            "Your rep is reachable at [EMAIL] or [PHONE] during the week, thanks for waiting."
        );
        assert!(
            released[..released.len() - 1].iter().any(|r| !r.is_empty()),
            "text is released before the end"
        );
    }

    #[test]
    fn the_profile_decides_and_nothing_is_pseudonymized() {
        let (out, _) = run(
            "actions: {CREDIT_CARD: mask, EMAIL: allow}\n",
            16,
            &[
                "card 4111 1111 11",
                "11 1111 on file, mail jane@x.io, ",
                "phone +44 20 7946 0958.",
            ],
        );
        assert_eq!(
            out,
            "card **** **** **** 1111 on file, mail jane@x.io, phone [PHONE]."
        );
    }

    #[test]
    fn long_words_and_pem_blocks_are_held_until_they_end() {
        let key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH";
        let (out, _) = run("{}", 8, &["the key is ", &key[..20], &key[20..], " ok"]);
        assert_eq!(out, "the key is [SECRET] ok");
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----";
        let (out, released) = run(
            "{}",
            8,
            &["here: ", &pem[..40], &pem[40..80], &pem[80..], " done"],
        );
        assert_eq!(out, "here: [SECRET] done");
        assert!(released.iter().all(|r| !r.contains("MIIE")));
    }

    #[test]
    fn hold_back_is_bounded() {
        let long = "x".repeat(3 * MAX_HOLD);
        let p = test_profile("{}");
        let mut r = Redactor::for_output(&p, b"k", None);
        let mut w = ScanWindow::new(64);
        let mut released = 0;
        for chunk in long.as_bytes().chunks(100) {
            released += w.push(&mut r, std::str::from_utf8(chunk).unwrap()).len();
            assert!(w.pending.len() <= MAX_HOLD + 100, "{}", w.pending.len());
        }
        assert!(released > long.len() - MAX_HOLD - 100);
        assert_eq!(released + w.flush(&mut r).len(), long.len());
    }
}
