//! Names people give after strong cues: "ship to", "my name is", "Attn:", "account
//! holder", sign-offs, relatives ("my husband …"), courtesy titles, and their German,
//! French, Spanish, Italian, Dutch and Portuguese forms. The words after the cue form a
//! name with the titles before it ("Dr.", "Frau", "Sr."), the particles inside it ("de
//! la", "van der", "dos") and the suffixes after it ("B.A.", "Jr."), which the NER model
//! splits or misses.
//!
//! A label ("Attn:", "my name is", "Mrs.") is enough on its own; a destination ("ship
//! to", "deliver to") may name a place as well as a person, so its words are only a
//! candidate until the model finds a person there ([`confirm`]). A lower-case name after
//! a cue is given capitals in the copy of the text the model reads ([`recase`]), so the
//! model judges it as it would a written one, and is a candidate too.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::{Finding, Source};
use crate::config::Entity;

/// Score of a capitalised name after a cue that labels it ("Attn:", "my name is").
const LABELLED: f64 = 0.8;
/// Score of a name after a cue that usually, not always, introduces one ("I'm").
const INTRODUCED: f64 = 0.7;
/// Score of a candidate the model has not confirmed: below every profile's threshold.
const CANDIDATE: f64 = 0.3;
/// Most name words a span takes (particles, titles and suffixes not counted).
const MAX_WORDS: usize = 5;

/// How strongly a cue announces a name.
#[derive(Clone, Copy, PartialEq)]
enum Cue {
    /// A label: the next words are a name ("Attn:", "account holder", "my name is").
    Label,
    /// An introduction: a name of two words or more ("I'm", "ich bin", "this is").
    Intro,
    /// Where something goes: a person or a place ("ship to", "deliver to").
    Destination,
    /// A courtesy title, part of the name ("Mrs.", "Herr", "Sr.").
    Title,
    /// A title that is also a letter or a word ("M.", "Ms", "Don"): two name words.
    WeakTitle,
}

const CUES: &[(&str, Cue)] = &[
    // English
    ("my name is", Cue::Label),
    ("my name's", Cue::Label),
    ("name:", Cue::Label),
    ("full name:", Cue::Label),
    ("account holder", Cue::Label),
    ("account name", Cue::Label),
    ("cardholder", Cue::Label),
    ("card holder", Cue::Label),
    ("attn", Cue::Label),
    ("attention", Cue::Label),
    ("for the attention of", Cue::Label),
    ("c/o", Cue::Label),
    ("care of", Cue::Label),
    ("ship to", Cue::Destination),
    ("ship it to", Cue::Destination),
    ("deliver to", Cue::Destination),
    ("deliver it to", Cue::Destination),
    ("send to", Cue::Destination),
    ("send it to", Cue::Destination),
    ("bill to", Cue::Destination),
    ("recipient", Cue::Label),
    ("delivery address:", Cue::Destination),
    ("shipping address:", Cue::Destination),
    ("lieferadresse:", Cue::Destination),
    ("adresse de livraison :", Cue::Destination),
    ("adresse de livraison:", Cue::Destination),
    ("dirección de entrega:", Cue::Destination),
    ("indirizzo di consegna:", Cue::Destination),
    ("bezorgadres:", Cue::Destination),
    ("addressed to", Cue::Destination),
    ("to", Cue::Destination),
    ("for", Cue::Destination),
    ("to:", Cue::Label),
    ("regards,", Cue::Label),
    ("kind regards,", Cue::Label),
    ("best regards,", Cue::Label),
    ("thanks,", Cue::Label),
    ("thanks!", Cue::Label),
    ("thank you,", Cue::Label),
    ("cheers,", Cue::Label),
    ("sincerely,", Cue::Label),
    ("i'm", Cue::Intro),
    ("i’m", Cue::Intro),
    ("i am", Cue::Intro),
    ("this is", Cue::Intro),
    ("it's", Cue::Intro),
    ("my husband", Cue::Label),
    ("my wife", Cue::Label),
    ("my son", Cue::Label),
    ("my daughter", Cue::Label),
    ("my sister", Cue::Label),
    ("my brother", Cue::Label),
    ("my mother", Cue::Label),
    ("my father", Cue::Label),
    ("my mom", Cue::Label),
    ("my mum", Cue::Label),
    ("my dad", Cue::Label),
    ("my partner", Cue::Label),
    ("my girlfriend", Cue::Label),
    ("my boyfriend", Cue::Label),
    ("my friend", Cue::Label),
    ("my colleague", Cue::Label),
    ("my manager", Cue::Label),
    // German
    ("mein name ist", Cue::Label),
    ("ich heiße", Cue::Label),
    ("ich bin", Cue::Intro),
    ("kontoinhaber", Cue::Label),
    ("kontoinhaberin", Cue::Label),
    ("zu händen", Cue::Label),
    ("z. hd.", Cue::Label),
    ("z.hd.", Cue::Label),
    ("empfänger", Cue::Label),
    ("rechnung an", Cue::Label),
    ("grüße,", Cue::Label),
    ("grüße", Cue::Label),
    ("gruß,", Cue::Label),
    // French
    ("je m'appelle", Cue::Label),
    ("je m’appelle", Cue::Label),
    ("je suis", Cue::Intro),
    ("mon nom est", Cue::Label),
    ("titulaire", Cue::Label),
    ("à l'attention de", Cue::Label),
    ("a l'attention de", Cue::Label),
    ("destinataire", Cue::Label),
    ("cordialement,", Cue::Label),
    // Spanish
    ("me llamo", Cue::Label),
    ("mi nombre es", Cue::Label),
    ("soy", Cue::Intro),
    ("a nombre de", Cue::Label),
    ("a la atención de", Cue::Label),
    ("entregar a", Cue::Destination),
    ("saludos,", Cue::Label),
    // Italian
    ("mi chiamo", Cue::Label),
    ("sono", Cue::Intro),
    ("intestatario", Cue::Label),
    ("destinatario", Cue::Label),
    ("consegna a", Cue::Destination),
    ("citofono", Cue::Label),
    // Dutch
    ("mijn naam is", Cue::Label),
    ("ik ben", Cue::Intro),
    ("rekeninghouder", Cue::Label),
    ("aan:", Cue::Label),
    ("t.a.v.", Cue::Label),
    ("ter attentie van", Cue::Label),
    ("bezorgen bij", Cue::Destination),
    // Portuguese
    ("meu nome é", Cue::Label),
    ("sou o", Cue::Intro),
    ("sou a", Cue::Intro),
    // Courtesy titles
    ("mr.", Cue::Title),
    ("mr", Cue::WeakTitle),
    ("mrs.", Cue::Title),
    ("mrs", Cue::WeakTitle),
    ("ms.", Cue::Title),
    ("ms", Cue::WeakTitle),
    ("miss", Cue::WeakTitle),
    ("mx.", Cue::Title),
    ("dr.", Cue::Title),
    ("prof.", Cue::Title),
    ("herr", Cue::Title),
    ("frau", Cue::Title),
    ("mme", Cue::WeakTitle),
    ("mme.", Cue::Title),
    ("mlle", Cue::WeakTitle),
    ("m.", Cue::WeakTitle),
    ("sr.", Cue::Title),
    ("sra.", Cue::Title),
    ("srta.", Cue::Title),
    ("don", Cue::WeakTitle),
    ("doña", Cue::Title),
    ("sig.", Cue::Title),
    ("sig.ra", Cue::Title),
    ("dott.", Cue::Title),
    ("dott.ssa", Cue::Title),
    ("mevrouw", Cue::Title),
    ("meneer", Cue::Title),
    ("dhr.", Cue::Title),
    ("mevr.", Cue::Title),
    ("sgt", Cue::WeakTitle),
    ("ssgt", Cue::WeakTitle),
    ("sgt.", Cue::Title),
    ("lt.", Cue::Title),
    ("capt.", Cue::Title),
    ("cpt.", Cue::Title),
    ("maj.", Cue::Title),
    ("col.", Cue::Title),
];

/// Titles a name may start with after a cue ("Attn: Dr. …"), compared in lower case.
const TITLES: &[&str] = &[
    "mr",
    "mr.",
    "mrs",
    "mrs.",
    "ms",
    "ms.",
    "miss",
    "mx.",
    "dr",
    "dr.",
    "prof",
    "prof.",
    "herr",
    "frau",
    "m.",
    "mme",
    "mme.",
    "mlle",
    "sr.",
    "sra.",
    "srta.",
    "don",
    "doña",
    "sig.",
    "sig.ra",
    "dott.",
    "dott.ssa",
    "mevrouw",
    "meneer",
    "dhr.",
    "mevr.",
    "dipl.-ing.",
    "dipl.-kfm.",
    "mag.",
    "ing.",
    "sgt",
    "ssgt",
    "sgt.",
    "lt.",
    "capt.",
    "cpt.",
    "maj.",
    "col.",
];

/// Words inside a name that are not capitalised ("María del Carmen", "Jan van der Berg").
const PARTICLES: &[&str] = &[
    "de", "del", "della", "di", "da", "das", "do", "dos", "du", "des", "la", "le", "van", "von",
    "der", "den", "ter", "ten", "zu", "y", "i", "e", "al", "el", "bin", "ibn", "binti", "st.",
];

/// Words after a name that belong to it.
const SUFFIXES: &[&str] = &[
    "jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "b.a.", "m.a.", "b.sc.", "m.sc.", "phd", "ph.d.",
    "md", "m.d.", "mba", "esq.", "dds",
];

/// Capitalised words that follow cues without being names ("I'm Happy", "this is Urgent",
/// German nouns after "ich bin").
const NOT_NAMES: &[&str] = &[
    "the",
    "a",
    "an",
    "my",
    "your",
    "our",
    "not",
    "so",
    "very",
    "just",
    "still",
    "also",
    "really",
    "here",
    "there",
    "order",
    "customer",
    "kunde",
    "kundin",
    "client",
    "cliente",
    "klant",
    "sorry",
    "happy",
    "unhappy",
    "back",
    "again",
    "writing",
    "looking",
    "trying",
    "waiting",
    "calling",
    "interested",
    "urgent",
    "please",
    "thanks",
    "thank",
    "hello",
    "hi",
    "re",
    "fwd",
    "subject",
    "ms",
    "sir",
    "madam",
    "team",
    "support",
    "customer service",
    "stammkunde",
    "stammkundin",
    "mitglied",
    "member",
    "premium",
    "gold",
    "vip",
];

/// Lower-case words that end a name written in lower case ("this is rahul mehta and …").
const FUNCTION_WORDS: &[&str] = &[
    "and", "or", "but", "i", "me", "my", "we", "you", "it", "is", "was", "are", "am", "be", "to",
    "from", "in", "on", "at", "for", "with", "by", "of", "about", "as", "if", "so", "that", "this",
    "what", "when", "who", "how", "why", "will", "would", "can", "could", "pls", "plz", "ok",
    "okay", "yes", "no", "und", "oder", "et", "ou", "y", "o", "e", "en", "mit", "avec", "con",
    "per", "met", "of", "und", "here", "again", "today", "now",
];

static MATCHER: LazyLock<AhoCorasick> = LazyLock::new(|| {
    #[allow(
        clippy::expect_used,
        reason = "constant patterns; the unit tests build the automaton"
    )]
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .build(CUES.iter().map(|(c, _)| c))
        .expect("name cues build")
});

/// A word of `text` from `start`: letters, marks, apostrophes, hyphens and dots.
fn word_at(text: &str, start: usize) -> Option<(usize, usize)> {
    let rest = text.get(start..)?;
    let len: usize = rest
        .chars()
        .take_while(|c| c.is_alphabetic() || matches!(c, '\'' | '’' | '-' | '.'))
        .map(char::len_utf8)
        .sum();
    // A trailing dot ends a sentence unless the word is an initial or a title.
    (len > 0).then_some((start, start + len))
}

fn is_capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
        && word.chars().skip(1).any(char::is_lowercase)
        || word.chars().count() <= 2 && word.chars().next().is_some_and(char::is_uppercase)
}

fn is_lower_word(word: &str) -> bool {
    word.chars()
        .all(|c| c.is_lowercase() || matches!(c, '\'' | '’' | '-'))
}

fn edge_before(text: &str, at: usize) -> bool {
    text.get(..at)
        .and_then(|t| t.chars().next_back())
        .is_none_or(|c| !c.is_alphanumeric())
}

/// The name after a cue ending at `from`: (start, end, name words), with `lower` taking
/// lower-case words as name words too.
fn name_after(text: &str, from: usize, cue: Cue, lower: bool) -> Option<(usize, usize, usize)> {
    // Past the separator: spaces, one colon or comma, a dash.
    let rest = text.get(from..)?;
    let skipped = rest
        .char_indices()
        .find(|&(_, c)| !(c == ' ' || c == ':' || c == ',' || c == '—' || c == '-'))
        .map_or(rest.len(), |(i, _)| i);
    if skipped == 0 && !matches!(cue, Cue::Title | Cue::WeakTitle) {
        return None;
    }
    let needed = if matches!(cue, Cue::Intro | Cue::WeakTitle) {
        2
    } else {
        1
    };
    name_at(text, from + skipped, needed, lower)
}

/// The name whose first word (or title or particle) starts at `at`, of at least `needed`
/// name words: (start, end, name words).
fn name_at(text: &str, at: usize, needed: usize, lower: bool) -> Option<(usize, usize, usize)> {
    let mut at = at;
    let mut start = None;
    let mut end = at;
    let mut words = 0;
    let mut pending_particles = 0;
    while let Some((s, e)) = word_at(text, at) {
        let raw = text.get(s..e).unwrap_or_default();
        let word = raw.trim_end_matches('.');
        let folded = raw.to_lowercase();
        if words == 0 && pending_particles == 0 && TITLES.contains(&folded.as_str()) {
            start.get_or_insert(s);
            end = e;
        } else if words > 0 && SUFFIXES.contains(&folded.as_str()) {
            end = e;
            break;
        } else if PARTICLES.contains(&folded.as_str()) && !lower_particle_ends(raw, words) {
            // Particles inside a name, or before its first word ("de la Fuente").
            if words == 0 {
                start.get_or_insert(s);
            }
            pending_particles += 1;
        } else if (is_capitalised(word)
            || lower
                && is_lower_word(word)
                && word.chars().count() > 1
                && !FUNCTION_WORDS.contains(&word))
            && !NOT_NAMES.contains(&word.to_lowercase().as_str())
            && words < MAX_WORDS
        {
            start.get_or_insert(s);
            words += 1;
            pending_particles = 0;
            // A name word's own trailing dot is an initial's ("J."); otherwise it ends the
            // sentence and the name.
            end = if raw.ends_with('.') && word.chars().count() > 1 {
                s + word.len()
            } else {
                e
            };
            if end < e {
                break;
            }
        } else {
            break;
        }
        if pending_particles > 2 {
            break;
        }
        // Words of a name are one space apart.
        match text.get(e..).and_then(|t| t.chars().next()) {
            Some(' ') => at = e + 1,
            _ => break,
        }
    }
    let start = start?;
    (words >= needed).then_some((start, end, words))
}

/// Whether a particle cannot continue the name: a capitalised one ("De", "Van") after
/// the name's words starts a new sentence's word as often as a name's.
fn lower_particle_ends(raw: &str, words: usize) -> bool {
    words > 0 && raw.chars().next().is_some_and(char::is_uppercase)
}

/// Names after cues in `text`: capitalised ones scored by their cue, destinations as
/// candidates for [`confirm`].
pub fn scan(text: &str, out: &mut Vec<Finding>) {
    for m in MATCHER.find_iter(text) {
        let Some(&(_, cue)) = CUES.get(m.pattern().as_usize()) else {
            continue;
        };
        if !edge_before(text, m.start()) {
            continue;
        }
        let title = matches!(cue, Cue::Title | Cue::WeakTitle);
        // A title is followed by a name: "Dr. Weber", not "Ms" on its own.
        if title && !text.get(m.end()..).is_some_and(|t| t.starts_with(' ')) {
            continue;
        }
        let from = if title { m.start() } else { m.end() };
        let Some((start, end, _)) = name_after(text, from, cue, false) else {
            continue;
        };
        let score = match cue {
            Cue::Intro => INTRODUCED,
            Cue::Destination => CANDIDATE,
            _ => LABELLED,
        };
        // Two cues before one name ("Lieferadresse: Dr. Weber") give one finding.
        match out
            .iter_mut()
            .find(|f| f.source == Source::Cue && f.start == start && f.end == end)
        {
            Some(same) => same.score = same.score.max(score),
            None => out.push(Finding {
                entity: Entity::Person,
                start,
                end,
                score,
                source: Source::Cue,
            }),
        }
    }
}

/// A lower-case name after a cue (from [`recase`]), as a candidate.
pub fn candidate(start: usize, end: usize) -> Finding {
    Finding {
        entity: Entity::Person,
        start,
        end,
        score: CANDIDATE,
        source: Source::Cue,
    }
}

/// Names that sign a message before a contact: capitalised words that start a sentence
/// and end at a comma or a dash before an e-mail address or a phone number the patterns
/// found ("… in UK 8. Irene Kemp, ikemp@example.com").
pub fn before_contacts(text: &str, found: &mut Vec<Finding>) {
    let contacts: Vec<usize> = found
        .iter()
        .filter(|f| matches!(f.entity, Entity::Email | Entity::Phone))
        .map(|f| f.start)
        .collect();
    for at in contacts {
        let head = text.get(..at).unwrap_or_default();
        let Some(head) = head
            .strip_suffix(", ")
            .or_else(|| head.strip_suffix(" - "))
            .or_else(|| head.strip_suffix(" – "))
        else {
            continue;
        };
        // The sentence the name starts: after its terminator, or the text's start.
        let from = head
            .rfind(['.', '!', '?', '\n', ':', ';', '—', '('])
            .map_or(0, |i| {
                i + head
                    .get(i..)
                    .and_then(|t| t.chars().next())
                    .map_or(1, char::len_utf8)
            });
        let sentence = head.get(from..).unwrap_or_default();
        let start = from + (sentence.len() - sentence.trim_start().len());
        let Some((s, e, _)) = name_at(text, start, 2, false) else {
            continue;
        };
        if s == start && e == head.len() {
            found.push(Finding {
                entity: Entity::Person,
                start: s,
                end: e,
                score: INTRODUCED,
                source: Source::Cue,
            });
        }
    }
}

/// Candidates confirmed: a cue's span that overlaps a person the model found becomes a
/// name, widened to both spans (the model's boundaries miss particles, titles and
/// suffixes; the cue's miss nothing the model saw); so does a destination followed by a
/// comma and an address ("ship to Haruto Sato, 2-11-3 Meguro").
pub fn confirm(text: &str, found: &mut [Finding]) {
    let people: Vec<(usize, usize)> = found
        .iter()
        .filter(|f| f.source == Source::Ner && f.entity == Entity::Person)
        .map(|f| (f.start, f.end))
        .collect();
    let addresses: Vec<usize> = found
        .iter()
        .filter(|f| f.entity == Entity::Address)
        .map(|f| f.start)
        .collect();
    for f in found.iter_mut().filter(|f| f.source == Source::Cue) {
        for &(s, e) in &people {
            if s < f.end && e > f.start {
                f.start = f.start.min(s);
                f.end = f.end.max(e);
                f.score = f.score.max(LABELLED);
            }
        }
        let before_address = addresses.iter().any(|&a| {
            a > f.end
                && text
                    .get(f.end..a)
                    .is_some_and(|gap| gap.trim_start().starts_with(',') && gap.len() <= 3)
        });
        if before_address {
            f.score = f.score.max(LABELLED);
        }
    }
}

/// `text` with the lower-case words of a name after a cue given capitals ("this is rahul
/// mehta" → "this is Rahul Mehta") for the model to judge, and where they stand: each is a
/// candidate for [`confirm`]. Byte offsets are unchanged (a letter whose capital has
/// another length is left as it is); borrowed when nothing changes.
pub fn recase(text: &str) -> (Cow<'_, str>, Vec<(usize, usize)>) {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for m in MATCHER.find_iter(text) {
        let Some(&(_, cue)) = CUES.get(m.pattern().as_usize()) else {
            continue;
        };
        if matches!(cue, Cue::Title | Cue::WeakTitle) || !edge_before(text, m.start()) {
            continue;
        }
        let Some((start, end, _)) = name_after(text, m.end(), Cue::Intro, true) else {
            continue;
        };
        let lower = text.get(start..end).is_some_and(|s| {
            s.split(' ')
                .any(|w| is_lower_word(w) && !PARTICLES.contains(&w))
        });
        if lower && spans.last().is_none_or(|&(_, e)| e <= start) {
            spans.push((start, end));
        }
    }
    if spans.is_empty() {
        return (Cow::Borrowed(text), spans);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for &(start, end) in &spans {
        out.push_str(text.get(last..start).unwrap_or_default());
        let name = text.get(start..end).unwrap_or_default();
        for (i, word) in name.split(' ').enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if PARTICLES.contains(&word) {
                out.push_str(word);
                continue;
            }
            let mut word_start = true;
            for c in word.chars() {
                let mut upper = c.to_uppercase();
                match (upper.next(), upper.next()) {
                    (Some(u), None) if word_start && u.len_utf8() == c.len_utf8() => out.push(u),
                    _ => out.push(c),
                }
                word_start = c == '-';
            }
        }
        last = end;
    }
    out.push_str(text.get(last..).unwrap_or_default());
    (Cow::Owned(out), spans)
}

/// Compiles every pattern now (the first request should not pay for it).
pub fn warm() {
    LazyLock::force(&MATCHER);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        scan(text, &mut out);
        out.iter().map(|f| &text[f.start..f.end]).collect()
    }

    #[test]
    fn names_after_cues_with_particles_titles_and_suffixes() {
        assert_eq!(
            names("Please deliver to María del Carmen Ortega, Ronda de Segovia 21"),
            ["María del Carmen Ortega"]
        );
        assert_eq!(
            names("Attn: Jan van der Berg, Keizersgracht 1"),
            ["Jan van der Berg"]
        );
        assert_eq!(
            names("Rechnung an Markus Brandt B.A., Lindenallee 4"),
            ["Markus Brandt B.A."]
        );
        assert_eq!(
            names("Lieferadresse: Dr. Klaus Weber, Hauptstraße 17a"),
            ["Dr. Klaus Weber"]
        );
        assert_eq!(
            names("Zu Händen Herr Thomas Müller-Lüdenscheidt, Tel."),
            ["Herr Thomas Müller-Lüdenscheidt"]
        );
        assert_eq!(names("Regards, Matteo Ricci (+39 06)"), ["Matteo Ricci"]);
        assert_eq!(
            names("call Mrs. Olivia Hartley today"),
            ["Mrs. Olivia Hartley"]
        );
    }

    #[test]
    fn destinations_are_candidates_until_the_model_finds_a_person() {
        let text = "ship to Taylor Brooks, 410 Peachtree St";
        let mut found = Vec::new();
        scan(text, &mut found);
        assert_eq!(found.len(), 1);
        assert!(found[0].score < 0.5, "a candidate");
        found.push(Finding {
            entity: Entity::Person,
            start: 8,
            end: 14,
            score: 0.9,
            source: Source::Ner,
        });
        confirm(text, &mut found);
        assert_eq!((found[0].start, found[0].end), (8, 21));
        assert!(found[0].score >= 0.8);
        let text = "Please ship to Haruto Sato, 2-11-3 Meguro, Tokyo";
        let mut found = Vec::new();
        scan(text, &mut found);
        let at = text.find("2-11").unwrap();
        found.push(Finding {
            entity: Entity::Address,
            start: at,
            end: text.len(),
            score: 0.75,
            source: Source::Pattern,
        });
        confirm(text, &mut found);
        assert!(
            found[0].score >= 0.8,
            "a destination before an address: {found:?}"
        );
    }

    #[test]
    fn a_name_signing_before_a_contact() {
        let text = "swap it for UK 8. Irene Kemp, ikemp@example.com";
        let at = text.find("ikemp").unwrap();
        let mut found = vec![Finding {
            entity: Entity::Email,
            start: at,
            end: text.len(),
            score: 0.95,
            source: Source::Pattern,
        }];
        before_contacts(text, &mut found);
        assert_eq!(&text[found[1].start..found[1].end], "Irene Kemp");
        let text = "Write to Customer Support, help@example.com";
        let mut found = vec![Finding {
            entity: Entity::Email,
            start: text.find("help").unwrap(),
            end: text.len(),
            score: 0.95,
            source: Source::Pattern,
        }];
        before_contacts(text, &mut found);
        assert_eq!(found.len(), 1, "not at a sentence's start");
    }

    #[test]
    fn introductions_need_a_full_name() {
        assert_eq!(names("I'm Ananya Iyer, you can text me"), ["Ananya Iyer"]);
        assert!(names("I'm Happy with it").is_empty());
        assert!(names("Ich bin Stammkunde seit Jahren").is_empty());
        assert!(names("this is the wrong size").is_empty());
        assert!(
            names("I am Derek.").is_empty(),
            "one word after an introduction"
        );
    }

    #[test]
    fn a_sentence_end_ends_the_name() {
        assert_eq!(names("My name is Jane Doe. My order"), ["Jane Doe"]);
        assert_eq!(names("Attn: J. R. Smith"), ["J. R. Smith"]);
    }

    #[test]
    fn lower_case_names_after_cues_are_recased_for_the_model() {
        let text = "hi, this is rahul mehta, my shoes";
        let (recased, spans) = recase(text);
        assert_eq!(recased, "hi, this is Rahul Mehta, my shoes");
        assert_eq!(spans, [(12, 23)]);
        assert!(matches!(recase("nothing to see").0, Cow::Borrowed(_)));
        assert_eq!(
            recase("my name is josé luis de la fuente and I").0,
            "my name is José Luis de la Fuente and I"
        );
        assert!(matches!(
            recase("this is the wrong size").0,
            Cow::Borrowed(_)
        ));
    }
}
