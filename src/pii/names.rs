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
//! model judges it as it would a written one, and is a candidate too, unless the cue says
//! in words that a name follows ("my name is", "account holder"). A name that a cue
//! follows ("Anmol Kalita here, …") and one written after an address ("…, 10123 Torino,
//! Marco Ferrari") are found as well; [`widen`] then grows every name over the titles,
//! initials, particles and suffixes next to it.

use std::borrow::Cow;

use super::cues::Hit;
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
pub(super) enum Cue {
    /// A label: the next words are a name ("Attn:", "to:", "regards,").
    Label,
    /// A label that says so in words ("my name is", "account holder"): the next words are
    /// a name even when written in lower case.
    Naming,
    /// An introduction: a name of two words or more ("I'm", "ich bin", "this is").
    Intro,
    /// Where something goes: a person or a place ("ship to", "deliver to").
    Destination,
    /// Whom someone speaks to ("ask", "tell", "spoke to"): a person, or a team or a
    /// thing; a name when its first word is a known given name.
    Addressee,
    /// A modal verb before its subject and the subject's verb ("can Oscar collect it?",
    /// "could priya check"): one word, a name when it is a known given name.
    Subject,
    /// A form of "be" before its subject and a verb in "-ing" ("is Leila working
    /// today?"): one word, a name when it is a known given name.
    Progressive,
    /// A courtesy title, part of the name ("Mrs.", "Herr", "Sr.").
    Title,
    /// A title that is also a letter or a word ("M.", "Ms", "Don"): two name words.
    WeakTitle,
}

pub(super) const CUES: &[(&str, Cue)] = &[
    // English
    ("my name is", Cue::Naming),
    ("my name's", Cue::Naming),
    ("name:", Cue::Naming),
    ("name :", Cue::Naming),
    ("full name:", Cue::Naming),
    ("account holder", Cue::Naming),
    ("under the name", Cue::Naming),
    ("under the name of", Cue::Naming),
    ("account name", Cue::Naming),
    ("cardholder", Cue::Naming),
    ("card holder", Cue::Naming),
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
    // Roles only people fill ("supervisor Lindiwe Dlamini", "the doorman (Rui)"): as
    // with "ask", a name when its first word is a known given name, else a candidate
    // for the model ("Manager Approval"); not "driver" or "agent", which software has
    // too, nor "courier", which companies are.
    ("supervisor", Cue::Addressee),
    ("manager", Cue::Addressee),
    ("concierge", Cue::Addressee),
    ("doorman", Cue::Addressee),
    ("caretaker", Cue::Addressee),
    ("landlord", Cue::Addressee),
    ("landlady", Cue::Addressee),
    ("neighbour", Cue::Addressee),
    ("neighbor", Cue::Addressee),
    ("technician", Cue::Addressee),
    ("rep", Cue::Addressee),
    ("representative", Cue::Addressee),
    ("advisor", Cue::Addressee),
    ("adviser", Cue::Addressee),
    ("receptionist", Cue::Addressee),
    ("housekeeper", Cue::Addressee),
    ("my sister-in-law", Cue::Label),
    ("my brother-in-law", Cue::Label),
    ("my mother-in-law", Cue::Label),
    ("my father-in-law", Cue::Label),
    ("my son-in-law", Cue::Label),
    ("my daughter-in-law", Cue::Label),
    // Dutch on the phone: "hoi, met Daan Jansen".
    ("met", Cue::Destination),
    ("ask", Cue::Addressee),
    ("ask for", Cue::Addressee),
    ("asked", Cue::Addressee),
    ("tell", Cue::Addressee),
    ("told", Cue::Addressee),
    ("spoke to", Cue::Addressee),
    ("spoke with", Cue::Addressee),
    ("spoken to", Cue::Addressee),
    ("speak to", Cue::Addressee),
    ("speak with", Cue::Addressee),
    ("talked to", Cue::Addressee),
    ("talk to", Cue::Addressee),
    ("thank", Cue::Addressee),
    ("thanks to", Cue::Addressee),
    ("my manager", Cue::Label),
    ("can", Cue::Subject),
    ("could", Cue::Subject),
    ("will", Cue::Subject),
    ("would", Cue::Subject),
    ("should", Cue::Subject),
    ("did", Cue::Subject),
    ("does", Cue::Subject),
    ("is", Cue::Progressive),
    ("was", Cue::Progressive),
    // German
    ("mein name ist", Cue::Naming),
    ("ich heiße", Cue::Naming),
    ("ich bin", Cue::Intro),
    ("kontoinhaber", Cue::Naming),
    ("kontoinhaberin", Cue::Naming),
    ("zu händen", Cue::Label),
    ("z. hd.", Cue::Label),
    ("z.hd.", Cue::Label),
    ("empfänger", Cue::Label),
    ("rechnung an", Cue::Label),
    ("grüße,", Cue::Label),
    ("grüße", Cue::Label),
    ("gruß,", Cue::Label),
    ("grüßen,", Cue::Label),
    // French
    ("je m'appelle", Cue::Naming),
    ("je m’appelle", Cue::Naming),
    ("je suis", Cue::Intro),
    ("mon nom est", Cue::Naming),
    // Forms: "Nom : DUPONT Jean".
    ("nom :", Cue::Naming),
    ("nom:", Cue::Naming),
    ("titulaire", Cue::Naming),
    ("à l'attention de", Cue::Label),
    ("a l'attention de", Cue::Label),
    ("destinataire", Cue::Label),
    ("cordialement,", Cue::Label),
    // Spanish
    ("me llamo", Cue::Naming),
    ("mi nombre es", Cue::Naming),
    ("nombre:", Cue::Naming),
    ("soy", Cue::Intro),
    ("a nombre de", Cue::Naming),
    ("titular", Cue::Naming),
    ("titular de la cuenta", Cue::Naming),
    ("a la atención de", Cue::Label),
    ("entregar a", Cue::Destination),
    ("saludos,", Cue::Label),
    // Italian
    ("mi chiamo", Cue::Naming),
    ("nome:", Cue::Naming),
    ("sono", Cue::Intro),
    ("intestatario", Cue::Naming),
    ("destinatario", Cue::Label),
    ("consegna a", Cue::Destination),
    ("citofono", Cue::Label),
    // Dutch
    ("mijn naam is", Cue::Naming),
    ("naam:", Cue::Naming),
    ("ik ben", Cue::Intro),
    ("rekeninghouder", Cue::Naming),
    ("aan:", Cue::Label),
    ("t.a.v.", Cue::Label),
    ("ter attentie van", Cue::Label),
    ("bezorgen bij", Cue::Destination),
    // Portuguese
    ("meu nome é", Cue::Naming),
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
    "univ.prof.",
    "univ.-prof.",
    "herr",
    "herrn",
    "frau",
    "familie",
    "family",
    "famille",
    "familia",
    "famiglia",
    "m.",
    "mme",
    "mme.",
    "mlle",
    "sr.",
    "sra.",
    "srta.",
    "don",
    "doña",
    "dña.",
    "dña",
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
    "cpl",
    "cpl.",
    "pvt",
    "pvt.",
    "pfc",
    "spc",
    "sfc",
    "msgt",
    "1lt",
    "2lt",
    "po1",
    "po2",
    "po3",
    "cpo",
    "cdr",
    "lcdr",
    "cmdr",
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
    "anyone",
    "anybody",
    "everyone",
    "everybody",
    "someone",
    "somebody",
    "nobody",
    "everything",
    "nothing",
    "something",
    // What family call each other: a relation, not a name.
    "mum",
    "mom",
    "mummy",
    "mommy",
    "mama",
    "mamma",
    "mami",
    "mamie",
    "maman",
    "mutti",
    "papa",
    "papi",
    "daddy",
    "dad",
    "grandma",
    "grandpa",
    "granny",
    "grandad",
    "granddad",
    "nana",
    "nan",
    "nanna",
    "nonna",
    "nonno",
    "oma",
    "opa",
    "omi",
    "opi",
    "abuela",
    "abuelo",
    "abuelita",
    "abuelito",
    "vovó",
    "vovô",
    "auntie",
    "aunty",
    "uncle",
    "tante",
    "tía",
    "tío",
    "zia",
    "zio",
];

/// Lower-case words that end a name written in lower case ("this is rahul mehta and …").
const FUNCTION_WORDS: &[&str] = &[
    "and", "or", "but", "i", "me", "my", "we", "you", "it", "is", "was", "are", "am", "be", "to",
    "from", "in", "on", "at", "for", "with", "by", "of", "about", "as", "if", "so", "that", "this",
    "what", "when", "who", "how", "why", "will", "would", "can", "could", "pls", "plz", "ok",
    "okay", "yes", "no", "und", "oder", "et", "ou", "y", "o", "e", "en", "mit", "avec", "con",
    "per", "met", "of", "und", "here", "again", "today", "now",
];

/// The words for "born" in the shop's languages: after a cue ("sono nata il …") they end
/// a lower-case name, and in lower case the model's name is never one of them.
pub(super) const BORN: &[&str] = &[
    "born", "nata", "nato", "nacido", "nacida", "née", "né", "geboren",
];

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

/// A word in capitals ("RIBEIRO"): read as a name only when the lists know it, since
/// codes are written so too ("SKU", "GTX").
fn is_capitals(word: &str) -> bool {
    word.chars().count() > 2
        && word
            .chars()
            .all(|c| c.is_uppercase() || matches!(c, '\'' | '-'))
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
    // Past the separator: spaces, one colon or comma, a dash; after a label or a role, a
    // bracket ("the doorman (Rui)").
    let rest = text.get(from..)?;
    let skipped = rest
        .char_indices()
        .find(|&(_, c)| {
            !(c == ' '
                || c == ':'
                || c == ','
                || c == '—'
                || c == '-'
                || c == '(' && matches!(cue, Cue::Label | Cue::Addressee))
        })
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
            || is_capitals(word) && super::known_names::is_known(word)
            || lower
                && is_lower_word(word)
                && word.chars().count() > 1
                && !FUNCTION_WORDS.contains(&word)
                && !BORN.contains(&word))
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

/// A name found by a cue (or the name lists) in `text[start..end]`, with its score.
pub(super) fn cue_name(start: usize, end: usize, score: f64) -> Finding {
    Finding {
        entity: Entity::Person,
        start,
        end,
        score,
        source: Source::Cue,
    }
}

/// Names after the cues of `text` (`hits`, from [`super::cues::find`]): capitalised ones
/// scored by their cue, destinations as candidates for [`confirm`]; and the values after
/// value cues ([`super::cued`]).
pub fn scan(text: &str, hits: &[Hit], out: &mut Vec<Finding>) {
    for m in hits {
        if !edge_before(text, m.start) {
            continue;
        }
        let Some(&(_, cue)) = m.name.and_then(|i| CUES.get(i)) else {
            if let Some(value) = m.value {
                super::cued::value_after(text, value, m.end, out);
            }
            continue;
        };
        let title = matches!(cue, Cue::Title | Cue::WeakTitle);
        // A title is followed by a name: "Dr. Weber", not "Ms" on its own.
        if title && !text.get(m.end..).is_some_and(|t| t.starts_with(' ')) {
            continue;
        }
        let from = if title { m.start } else { m.end };
        let found = match cue {
            Cue::Subject => given_subject(text, m.end, false),
            Cue::Progressive => given_subject(text, m.end, true),
            // "tell jonas": a known given name is one in lower case too.
            Cue::Addressee => name_after(text, from, cue, false)
                .or_else(|| given_word(text, m.end).map(|(s, e)| (s, e, 1))),
            _ => name_after(text, from, cue, false),
        };
        let Some((start, end, _)) = found else {
            continue;
        };
        let score = match cue {
            Cue::Intro => INTRODUCED,
            Cue::Destination => CANDIDATE,
            Cue::Subject | Cue::Progressive => LABELLED,
            Cue::Addressee => {
                let first = text.get(start..end).and_then(|n| n.split(' ').next());
                if first.is_some_and(super::known_names::is_given_only) {
                    LABELLED
                } else {
                    CANDIDATE
                }
            }
            _ => LABELLED,
        };
        // Two cues before one name ("Lieferadresse: Dr. Weber") give one finding.
        match out
            .iter_mut()
            .find(|f| f.source == Source::Cue && f.start == start && f.end == end)
        {
            Some(same) => same.score = same.score.max(score),
            None => out.push(cue_name(start, end, score)),
        }
    }
}

/// The word one space after `from` when it is a known given name that is not also an
/// English word, in any case ("ask jonas"): (start, end).
fn given_word(text: &str, from: usize) -> Option<(usize, usize)> {
    let at = from + usize::from(text.get(from..)?.starts_with(' '));
    if at == from {
        return None;
    }
    let (start, end) = word_at(text, at)?;
    // A sentence's full stop is not the name's ("ask jonas.").
    let word = text.get(start..end)?.trim_end_matches('.');
    super::known_names::is_given_only(word).then_some((start, start + word.len()))
}

/// The subject after a modal verb ending at `from` when it is a known given name followed
/// by a lower-case word, its verb: "can Oscar collect it", "could priya check"; after a
/// form of "be", the verb ends in "-ing" (`progressive`: "is Leila working"). A capital
/// after the name ("can Oscar Wilde …") is left to the name lists.
fn given_subject(text: &str, from: usize, progressive: bool) -> Option<(usize, usize, usize)> {
    let (start, end) = given_word(text, from)?;
    let rest = text.get(end..)?.strip_prefix(' ')?;
    let (verb_start, verb_end) = word_at(text, text.len() - rest.len())?;
    let verb = text.get(verb_start..verb_end)?;
    (is_lower_word(verb)
        && !FUNCTION_WORDS.contains(&verb)
        && (!progressive || verb.len() > 4 && verb.ends_with("ing")))
    .then_some((start, end, 1))
}

/// Where the last clause of `head` starts: after the last of `ends`, past spaces.
fn clause_start(head: &str, ends: &[char]) -> usize {
    let from = head.rfind(ends).map_or(0, |i| {
        i + head
            .get(i..)
            .and_then(|t| t.chars().next())
            .map_or(1, char::len_utf8)
    });
    let clause = head.get(from..).unwrap_or_default();
    from + (clause.len() - clause.trim_start().len())
}

/// Names that sign a message before a contact: capitalised words that start a sentence
/// and end at a comma or a dash before an e-mail address, a phone number or a postal
/// address ("… in UK 8. Irene Kemp, ikemp@example.com"; "Ola Nordmann, Karl Johans gate
/// 22, 0159 Oslo").
pub fn before_contacts(text: &str, found: &mut Vec<Finding>) {
    let contacts: Vec<(usize, Entity)> = found
        .iter()
        .filter(|f| matches!(f.entity, Entity::Email | Entity::Phone | Entity::Address))
        .map(|f| (f.start, f.entity))
        .collect();
    for (at, entity) in contacts {
        let head = text.get(..at).unwrap_or_default();
        if entity == Entity::Email
            && let Some(name) = display_name(text, head)
        {
            found.push(name);
            continue;
        }
        let Some(head) = head
            .strip_suffix(", ")
            .or_else(|| head.strip_suffix(" - "))
            .or_else(|| head.strip_suffix(" – "))
        else {
            continue;
        };
        // The sentence the name starts: after its terminator, or the text's start.
        let start = clause_start(head, &['.', '!', '?', '\n', ':', ';', '—', '(']);
        let Some((s, e, _)) = name_at(text, start, 2, false) else {
            continue;
        };
        if s == start && e == head.len() {
            found.push(cue_name(s, e, INTRODUCED));
        }
    }
}

/// The display name before an e-mail address in angle brackets, quoted or not
/// ("Cc: Małgorzata Wiśniewska <m.w@…>", "\"Bia Souza\" <…>"), as mail headers and
/// address books write it; `head` is the text before the address.
fn display_name(text: &str, head: &str) -> Option<Finding> {
    let head = head.strip_suffix('<')?;
    let head = head.strip_suffix(' ').unwrap_or(head);
    let head = head.strip_suffix('"').unwrap_or(head);
    let start = clause_start(head, &[':', ',', ';', '"', '\n', '(', '>']);
    let (s, e, _) = name_at(text, start, 1, false)?;
    (s == start && e == head.len()).then(|| cue_name(s, e, LABELLED))
}

/// Candidates confirmed: a cue's span that overlaps a person the model found becomes a
/// name, widened to both spans (the model's boundaries miss particles, titles and
/// suffixes; the cue's miss nothing the model saw); so does a destination followed by a
/// comma and an address ("ship to Haruto Sato, 2-11-3 Meguro"), and a given name and a
/// surname the name lists know, in any case ("sono chiara bianchi").
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
        // A given name and a surname the lists know, in any case ("sono chiara bianchi"):
        // asked only of a candidate (the lists are read word by word).
        let known = || {
            text.get(f.start..f.end)
                .is_some_and(super::known_names::is_full_name)
        };
        if before_address || f.score < LABELLED && known() {
            f.score = f.score.max(LABELLED);
        }
    }
}

/// What a shop sells, in the words written after a brand ("Vince Camuto heels", "the
/// Stuart Weitzman boots", "Tom Dixon lamp"): after a name, they make it a brand. Lower
/// case, singular and plural, in the shop's languages.
const PRODUCTS: &[&str] = &[
    "boot",
    "boots",
    "shoe",
    "shoes",
    "heels",
    "sneaker",
    "sneakers",
    "trainer",
    "trainers",
    "loafer",
    "loafers",
    "sandal",
    "sandals",
    "flats",
    "pumps",
    "slippers",
    "mules",
    "bag",
    "bags",
    "tote",
    "totes",
    "purse",
    "wallet",
    "wallets",
    "backpack",
    "crossbody",
    "clutch",
    "handbag",
    "jacket",
    "jackets",
    "coat",
    "parka",
    "dress",
    "dresses",
    "shirt",
    "shirts",
    "polo",
    "polos",
    "tee",
    "hoodie",
    "sweater",
    "jumper",
    "cardigan",
    "jeans",
    "trousers",
    "pants",
    "shorts",
    "skirt",
    "suit",
    "blazer",
    "belt",
    "scarf",
    "watch",
    "watches",
    "sunglasses",
    "glasses",
    "frames",
    "perfume",
    "fragrance",
    "cologne",
    "lipstick",
    "mascara",
    "foundation",
    "concealer",
    "serum",
    "collection",
    "outlet",
    "store",
    "stores",
    "boutique",
    "sale",
    "sizing",
    "swimsuit",
    "trunks",
    "socks",
    "boxers",
    "leggings",
    "gloves",
    "luggage",
    "suitcase",
    "tumbler",
    "mixer",
    "chair",
    "sofa",
    "headphones",
    "earbuds",
    "schuhe",
    "stiefel",
    "tasche",
    "jacke",
    "kleid",
    "uhr",
    "chaussures",
    "sac",
    "veste",
    "robe",
    "montre",
    "parfum",
    "zapatos",
    "zapatillas",
    "bolso",
    "chaqueta",
    "vestido",
    "reloj",
    "scarpe",
    "borsa",
    "giacca",
    "orologio",
    "profumo",
    "schoenen",
    "jas",
    "jurk",
    "horloge",
    "earrings",
    "necklace",
    "bracelet",
    "jewellery",
    "jewelry",
    "heel",
    "pump",
    "mule",
    "slipper",
    "clogs",
    "espadrilles",
    "moccasins",
    "oxfords",
    "brogues",
    "wedges",
    "stilettos",
    "satchel",
    "shopper",
    "duffel",
    "clutches",
    "purses",
    "backpacks",
    "handbags",
    "coats",
    "parkas",
    "blazers",
    "suits",
    "skirts",
    "sweaters",
    "jumpers",
    "hoodies",
    "tees",
    "t-shirt",
    "t-shirts",
    "blouse",
    "blouses",
    "gilet",
    "cardigans",
    "chinos",
    "jumpsuit",
    "bikini",
    "lingerie",
    "pyjamas",
    "pajamas",
    "eyewear",
    "sunnies",
    "palette",
    "eyeshadow",
    "bronzer",
    "blush",
    "primer",
    "moisturiser",
    "moisturizer",
    "cleanser",
    "shampoo",
    "conditioner",
    "edp",
    "edt",
    "chairs",
    "sofas",
    "armchair",
    "stool",
    "lamp",
    "mattress",
    "desk",
    "bookcase",
    "rug",
    "headphone",
    "speaker",
    "speakers",
    "laptop",
    "blender",
    "kettle",
    "toaster",
    "pendant",
    "bangle",
    "cufflinks",
    "rings",
    "cookware",
    "knives",
    "schuh",
    "handtasche",
    "mantel",
    "hemd",
    "pullover",
    "sessel",
    "stuhl",
    "lampe",
    "sacs",
    "chaussure",
    "manteau",
    "jupe",
    "lunettes",
    "baskets",
    "bottes",
    "sandales",
    "fauteuil",
    "chaise",
    "zapato",
    "botas",
    "bolsos",
    "gafas",
    "abrigo",
    "falda",
    "camisa",
    "silla",
    "lámpara",
    "scarpa",
    "stivali",
    "borse",
    "occhiali",
    "cappotto",
    "gonna",
    "camicia",
    "sedia",
    "lampada",
    "tas",
    "laarzen",
    "bril",
    "stoel",
    "väska",
    "skor",
    "stövlar",
    "jacka",
    "klänning",
    "stol",
    "taske",
    "sko",
    "støvler",
    "jakke",
    "kjole",
    "buty",
    "torebka",
    "kurtka",
    "sukienka",
    "krzesło",
    // Home, drinks, beauty and outdoor goods.
    "mug",
    "mugs",
    "cup",
    "cups",
    "candle",
    "candles",
    "diffuser",
    "cushion",
    "cushions",
    "duvet",
    "towel",
    "towels",
    "bedding",
    "paint",
    "wallpaper",
    "wine",
    "shiraz",
    "merlot",
    "rioja",
    "chardonnay",
    "prosecco",
    "champagne",
    "whisky",
    "whiskey",
    "gin",
    "vodka",
    "rum",
    "tequila",
    "lotion",
    "cream",
    "mist",
    "spray",
    "raincoat",
    "anorak",
    "fleece",
    "wellies",
    "wellingtons",
    "beanie",
    "umbrella",
    "tent",
    "helmet",
    "stroller",
    "pram",
];

/// Drops the model's one-word names that are not names ("love from Nonna", "Customer"),
/// the words it misreads as names (see [`misread`]), and names a product word follows
/// or "the" comes before ("Vince Camuto heels", "the Stuart Weitzman"): brands the shop
/// has not listed.
pub fn drop_not_people(text: &str, found: &mut Vec<Finding>) {
    let cued: Vec<(usize, usize)> = found
        .iter()
        .filter(|f| f.entity == Entity::Person && f.source == Source::Cue)
        .map(|f| (f.start, f.end))
        .collect();
    found.retain(|f| {
        if f.entity != Entity::Person {
            return true;
        }
        let Some(name) = text.get(f.start..f.end) else {
            return true;
        };
        let not_a_name = f.source == Source::Ner
            && (NOT_NAMES.contains(&name.to_lowercase().as_str())
                || misread(name) && !cued.iter().any(|&(s, e)| s < f.end && e > f.start));
        let after = text.get(f.end..).and_then(|t| t.strip_prefix(' '));
        let next = after.map(letters_at).unwrap_or_default();
        // A lower-case word may stand between the brand and the product ("Tommy Bahama
        // beach chair", "Orla Kiely mug set").
        let second = after
            .and_then(|t| t.strip_prefix(next))
            .and_then(|t| t.strip_prefix(' '))
            .map(letters_at)
            .filter(|_| is_lower_word(next) && !FUNCTION_WORDS.contains(&next))
            .unwrap_or_default();
        // A one-word name that owns a capitalised word the lists do not know is a brand's
        // or a product's ("Jacob's Creek", "Victoria's Secret"); "Nadia's parcel" is hers.
        let owned_name = after.is_none()
            && !name.contains(' ')
            && text
                .get(f.end..)
                .and_then(|t| t.strip_prefix("'s ").or_else(|| t.strip_prefix("’s ")))
                .map(letters_at)
                .is_some_and(|w| is_capitalised(w) && !super::known_names::is_known(w));
        // The product word after the name, or the model's span's own last word
        // ("Victoria Beckham sunglasses").
        let last = name.rsplit(' ').next().filter(|_| name.contains(' '));
        let product = [Some(next), Some(second), last]
            .into_iter()
            .flatten()
            .any(|w| PRODUCTS.contains(&w.to_lowercase().as_str()));
        let head = text.get(..f.start).unwrap_or_default();
        // A saint's name is a place's: "St. Moritz", "St Ives".
        let saint = f.source == Source::Ner
            && ends_with_word(head, &["St. ", "St ", "Ste. ", "Ste ", "Saint "]);
        let article = ends_with_word(head, &["the ", "The "]);
        !(not_a_name || product || article || saint || owned_name)
    });
}

/// The letters `text` starts with: its first word, without what follows it.
fn letters_at(text: &str) -> &str {
    text.split(|c: char| !c.is_alphabetic())
        .next()
        .unwrap_or_default()
}

/// Whether `head` ends with one of `words` (each with its space), written as a word.
fn ends_with_word(head: &str, words: &[&str]) -> bool {
    words.iter().any(|w| {
        head.strip_suffix(w)
            .is_some_and(|h| !h.ends_with(char::is_alphanumeric))
    })
}

/// Whether the model's `name` is an identifier it misread as one: lower case first, a
/// capital inside ("lastOrder", "customerId"). A name a cue stands before is the cue's
/// to judge.
fn misread(name: &str) -> bool {
    name.chars().next().is_some_and(char::is_lowercase) && name.chars().any(char::is_uppercase)
}

/// Particles that continue a name after its words when a capitalised word follows
/// them ("Pilar Sánchez de la Vega", "Jan van der Berg"): the particles of [`PARTICLES`]
/// that are not also conjunctions or articles of a sentence.
const TRAILING_PARTICLES: &[&str] = &[
    "de", "del", "della", "di", "da", "das", "do", "dos", "du", "des", "la", "van", "von", "der",
    "den", "ter", "ten", "zu", "bin", "ibn", "binti",
];

/// Grows every person finding over the parts of the name written next to it that the
/// model or a cue left out: titles and initials before it ("Dr", "Univ.Prof.", "W."),
/// suffixes after it ("B.A.", "MBA."), particles with the word after them ("de la
/// Vega"); and joins the parts of one name found apart ("Robert J." and "Fischer").
pub fn widen(text: &str, found: &mut Vec<Finding>) {
    for f in found.iter_mut().filter(|f| f.entity == Entity::Person) {
        // A name is written on one line: the model may read a line break as a space
        // ("Phone\nTom Becker").
        (f.start, f.end) = longest_line(text, f.start, f.end);
        while let Some(start) = title_before(text, f.start) {
            f.start = start;
        }
        while let Some(end) = part_after(text, f.end) {
            f.end = end;
        }
    }
    found.retain(|f| f.start < f.end);
    // Parts of one name that overlap or stand one space apart.
    found.sort_by_key(|f| f.start);
    let mut joined: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found.drain(..) {
        match joined.last_mut() {
            Some(last)
                if last.entity == Entity::Person
                    && f.entity == Entity::Person
                    && (f.start <= last.end || text.get(last.end..f.start) == Some(" ")) =>
            {
                last.end = last.end.max(f.end);
                last.score = last.score.max(f.score);
            }
            _ => joined.push(f),
        }
    }
    *found = joined;
}

/// The longest line of `text[start..end]`: (start, end).
fn longest_line(text: &str, start: usize, end: usize) -> (usize, usize) {
    let Some(span) = text.get(start..end).filter(|s| s.contains('\n')) else {
        return (start, end);
    };
    let mut best = (start, start);
    let mut at = start;
    for line in span.split('\n') {
        let trimmed = line.trim_end_matches('\r');
        if trimmed.len() > best.1 - best.0 {
            best = (at, at + trimmed.len());
        }
        at += line.len() + 1;
    }
    best
}

/// Whether `word` is one initial or more, each a capital and a dot ("W.", "J.R.").
fn initials(word: &str) -> bool {
    let mut chars = word.chars();
    let mut count = 0;
    while let Some(c) = chars.next() {
        if !c.is_uppercase() || chars.next() != Some('.') {
            return false;
        }
        count += 1;
    }
    count > 0
}

/// Where a title or an initial written just before `at` (one space apart) starts.
fn title_before(text: &str, at: usize) -> Option<usize> {
    let head = text.get(..at)?.strip_suffix(' ')?;
    let start = head
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace() || c == '(' || c == ',')
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = head.get(start..)?;
    let folded = word.to_lowercase();
    (initials(word) || TITLES.contains(&folded.as_str())).then_some(start)
}

/// Where a suffix, particles with the capitalised word after them, or a capitalised word
/// that ends the message, written just after `at` (one space apart), end.
fn part_after(text: &str, at: usize) -> Option<usize> {
    let mut from = at;
    // A name does not end on a particle: one that ends a finding ("Nguyen Van") takes the
    // capitalised word after it ("An").
    let last_word = text
        .get(..at)?
        .rsplit(' ')
        .next()
        .map(str::to_lowercase)
        .unwrap_or_default();
    let mut particles = usize::from(TRAILING_PARTICLES.contains(&last_word.as_str()));
    loop {
        if text.get(from..)?.chars().next()? != ' ' {
            return None;
        }
        let (s, e) = word_at(text, from + 1)?;
        let raw = text.get(s..e)?;
        let folded = raw.to_lowercase();
        let bare = folded.trim_end_matches('.');
        if particles == 0 && SUFFIXES.iter().any(|x| x.trim_end_matches('.') == bare) {
            return Some(e);
        }
        if TRAILING_PARTICLES.contains(&raw) && particles < 2 {
            particles += 1;
            from = e;
            continue;
        }
        let word = raw.trim_end_matches('.');
        // A capitalised word that ends the message ends the name too ("— Jacob Page").
        let last = text
            .get(e..)
            .is_some_and(|t| t.trim_end_matches(['.', '!']).trim().is_empty());
        // After a particle the capitalised word is the name's, whatever it is ("Van An").
        return (is_capitalised(word)
            && (particles > 0 || last && !NOT_NAMES.contains(&folded.as_str())))
        .then_some(s + word.len());
    }
}

/// Names that start a message or a sentence and are followed by "here" ("Anmol Kalita
/// here, my order …"): two capitalised name words at least, or one that starts the
/// message and is followed by a comma or "again" ("Georgia here, …", "Rahul here again").
pub fn before_here(text: &str, out: &mut Vec<Finding>) {
    for at in memchr::memmem::find_iter(text.as_bytes(), b" here") {
        let after = text
            .get(at + " here".len()..)
            .and_then(|t| t.chars().next());
        if after.is_some_and(char::is_alphanumeric) {
            continue;
        }
        let Some(head) = text.get(..at) else {
            continue;
        };
        let start = clause_start(head, &['.', '!', '?', '\n', ':', ';', ',', '—', '(']);
        let tail = text.get(at + " here".len()..).unwrap_or_default();
        let introduced = start == 0 && (tail.starts_with(',') || tail.starts_with(" again"));
        let needed = if introduced { 1 } else { 2 };
        if let Some((s, e, _)) = name_at(text, start, needed, false).filter(|&(_, e, _)| e == at) {
            out.push(cue_name(s, e, INTRODUCED));
        } else if head
            .get(start..)
            .is_some_and(|w| is_lower_word(w) && super::known_names::is_given_only(w))
        {
            // "cust: ravi here again": one word in lower case, a known given name.
            out.push(cue_name(start, at, INTRODUCED));
        }
    }
}

/// Names written after an address, a comma apart, that end the sentence ("Via Po 15,
/// 10123 Torino, Marco Ferrari"): who lives there. Two name words at least.
pub fn after_addresses(text: &str, found: &mut Vec<Finding>) {
    let ends: Vec<usize> = found
        .iter()
        .filter(|f| f.entity == Entity::Address)
        .map(|f| f.end)
        .collect();
    for end in ends {
        let Some(from) = text.get(end..).and_then(|t| t.strip_prefix(", ")) else {
            continue;
        };
        let at = text.len() - from.len();
        let Some((start, name_end, _)) = name_at(text, at, 2, false) else {
            continue;
        };
        let ends_sentence = text
            .get(name_end..)
            .is_some_and(|t| t.trim_start().is_empty() || t.starts_with(['.', '!', '?', '\n']));
        if ends_sentence {
            found.push(cue_name(start, name_end, INTRODUCED));
        }
    }
}

/// `text` with the lower-case words of a name after a cue given capitals ("this is rahul
/// mehta" → "this is Rahul Mehta") for the model to judge, and where they stand: each is a
/// candidate for [`confirm`]. Byte offsets are unchanged (a letter whose capital has
/// another length is left as it is); borrowed when nothing changes.
pub fn recase<'t>(text: &'t str, hits: &[Hit]) -> (Cow<'t, str>, Vec<Finding>) {
    let mut spans: Vec<Finding> = Vec::new();
    for m in hits {
        let Some(&(_, cue)) = m.name.and_then(|i| CUES.get(i)) else {
            continue;
        };
        if matches!(
            cue,
            Cue::Title | Cue::WeakTitle | Cue::Subject | Cue::Progressive
        ) || !edge_before(text, m.start)
        {
            continue;
        }
        let Some((start, end, _)) = name_after(text, m.end, Cue::Intro, true) else {
            continue;
        };
        let lower = text.get(start..end).is_some_and(|s| {
            s.split(' ')
                .any(|w| is_lower_word(w) && !PARTICLES.contains(&w))
        });
        if lower && spans.last().is_none_or(|f| f.end <= start) {
            // After a cue that says it is a name, a name of two words in lower case is one.
            let score = if cue == Cue::Naming {
                LABELLED
            } else {
                CANDIDATE
            };
            spans.push(cue_name(start, end, score));
        }
    }
    if spans.is_empty() {
        return (Cow::Borrowed(text), spans);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for &Finding { start, end, .. } in &spans {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// [`scan`] after the cue pass over `text`.
    fn scan_text(text: &str, out: &mut Vec<Finding>) {
        scan(text, &super::super::cues::find(text), out);
    }

    /// What [`drop_not_people`] keeps of the model's people at every place of `names`
    /// in `text`.
    fn kept_people<'t>(text: &'t str, names: &[&str]) -> Vec<&'t str> {
        let mut found: Vec<Finding> = names
            .iter()
            .flat_map(|n| {
                text.match_indices(n).map(|(s, n)| Finding {
                    entity: Entity::Person,
                    start: s,
                    end: s + n.len(),
                    score: 0.9,
                    source: Source::Ner,
                })
            })
            .collect();
        found.sort_by_key(|f| f.start);
        drop_not_people(text, &mut found);
        found.iter().map(|f| &text[f.start..f.end]).collect()
    }

    fn names(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        scan_text(text, &mut out);
        out.iter()
            .filter_map(|f| text.get(f.start..f.end))
            .collect()
    }

    #[test]
    fn brands_before_products_kinship_words_and_names_after_the_are_not_people() {
        let text = "Vince Camuto heels for Anna Berg, the Stuart Weitzman came, Anna Berg's \
                    boots, love from Nonna";
        let kept = kept_people(
            text,
            &["Vince Camuto", "Anna Berg", "Stuart Weitzman", "Nonna"],
        );
        assert_eq!(kept, ["Anna Berg", "Anna Berg"]);
    }

    #[test]
    fn misreads_saints_owned_brands_and_brands_before_products_are_not_people() {
        let text = "check the customerId, lastOrder, St. Moritz edition, Victoria Beckham \
                    sunglasses, maria called, Anna Berg, Jacob's Creek shiraz, Tommy Bahama \
                    beach chair, Nadia's parcel";
        let kept = kept_people(
            text,
            &[
                "customerId",
                "lastOrder",
                "Moritz",
                "Victoria Beckham sunglasses",
                "maria",
                "Anna Berg",
                "Jacob",
                "Tommy Bahama",
                "Nadia",
            ],
        );
        assert_eq!(kept, ["maria", "Anna Berg", "Nadia"]);
    }

    #[test]
    fn roles_only_people_fill_come_before_names_or_candidates() {
        assert_eq!(
            names("supervisor Lindiwe Dlamini called"),
            ["Lindiwe Dlamini"]
        );
        assert_eq!(names("ask the doorman (Rui) for it"), ["Rui"]);
        assert!(names("the manager app crashed, the report is late").is_empty());
        let mut out = Vec::new();
        scan_text("Manager Approval required", &mut out);
        assert!(
            out.iter().all(|f| f.score < INTRODUCED),
            "a capitalised word after a role is only a candidate"
        );
    }

    #[test]
    fn names_in_capitals_the_lists_know_and_after_in_law_kin() {
        assert_eq!(names("my sister-in-law Fiona will pick it up"), ["Fiona"]);
        assert_eq!(
            names("ATTN BERNARDO RIBEIRO - RUA AUGUSTA 1500"),
            ["BERNARDO RIBEIRO"]
        );
        assert!(names("ATTN RETURNS DEPT, SKU GTX").is_empty());
    }

    #[test]
    fn people_are_named_after_the_words_for_asking_and_telling_when_given_names() {
        assert_eq!(names("please tell Jonas the gift came"), ["Jonas"]);
        assert_eq!(names("ask jonas, he packed it"), ["jonas"]);
        assert_eq!(names("please ask jonas."), ["jonas"]);
        assert!(names("ask amber about it").is_empty(), "a word, as often");
        let mut out = Vec::new();
        scan_text("ask Customer Service about it", &mut out);
        assert!(
            out.iter().all(|f| f.score < INTRODUCED),
            "a team is only a candidate"
        );
    }

    #[test]
    fn brands_before_furniture_beauty_and_clothes_in_several_languages_are_not_people() {
        for (text, brand) in [
            ("is the Herman Miller desk in stock", "Herman Miller"),
            (
                "Charlotte Tilbury palette for my sister",
                "Charlotte Tilbury",
            ),
            ("har ni Filippa Klänning kvar", "Filippa"),
            ("Tom Dixon lamp, the brass one", "Tom Dixon"),
        ] {
            let start = text.find(brand).unwrap_or_default();
            let mut found = vec![cue_name(start, start + brand.len(), LABELLED)];
            drop_not_people(text, &mut found);
            assert!(found.is_empty(), "{brand} in: {text}");
        }
    }

    #[test]
    fn a_name_the_model_reads_across_a_line_break_keeps_its_line() {
        let text = "Name\tDOB\tPhone\nTom Becker\t03/11/1979";
        let start = text.find("Phone").unwrap_or_default();
        let end = text.find("\t03").unwrap_or_default();
        let mut found = vec![Finding {
            entity: Entity::Person,
            start,
            end,
            score: 0.9,
            source: Source::Ner,
        }];
        widen(text, &mut found);
        let kept: Vec<&str> = found.iter().map(|f| &text[f.start..f.end]).collect();
        assert_eq!(kept, ["Tom Becker"]);
    }

    #[test]
    fn the_subject_of_a_question_is_a_name_when_a_known_given_name() {
        assert_eq!(names("can Oscar collect it instead of me?"), ["Oscar"]);
        assert_eq!(names("can sam pick it up for me?"), ["sam"]);
        assert_eq!(names("could Priya check the size?"), ["Priya"]);
        assert_eq!(names("is Leila working today?"), ["Leila"]);
        for text in [
            "is Leila in today?",
            "is Jordan available in 10?",
            "can you check it?",
            "will Amber arrive in stock?",
            "can Oscar?",
            "can Jonas Hamilton pick it up",
            "did it ship?",
        ] {
            assert!(
                names(text).iter().all(|n| n.contains(' ')),
                "no one-word subject in: {text}"
            );
        }
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
        assert_eq!(
            names("Rechnung an Herrn Stefan Wagner, Am Markt 3"),
            ["Herrn Stefan Wagner"]
        );
        assert_eq!(
            names("entregar a Dña. Carmen Ruiz, Avenida de la Constitución 12"),
            ["Dña. Carmen Ruiz"]
        );
        assert!(names("sono nata il 2 giugno 1994").is_empty());
    }

    /// A person finding over `part` of `text`, as the model would give it.
    fn model_person(text: &str, part: &str) -> Finding {
        let start = text.find(part).unwrap();
        Finding {
            entity: Entity::Person,
            start,
            end: start + part.len(),
            score: 0.9,
            source: Source::Ner,
        }
    }

    #[test]
    fn a_name_grows_over_titles_initials_particles_and_suffixes() {
        for (text, model, want) in [
            ("left it with Mrs Patel at number 12", "Patel", "Mrs Patel"),
            ("please cancel, W. Schmidt", "Schmidt", "W. Schmidt"),
            (
                "Univ.Prof. Ilona Eimer B.Sc. wrote",
                "Ilona Eimer",
                "Univ.Prof. Ilona Eimer B.Sc.",
            ),
            (
                "I'm Herr Emin Gute B.A.. My order",
                "Emin Gute",
                "Herr Emin Gute B.A..",
            ),
            (
                "Enviar a Pilar Sánchez de la Vega, Av.",
                "Pilar Sánchez",
                "Pilar Sánchez de la Vega",
            ),
            ("help with the Dash 7! — Jacob Page", "Jacob", "Jacob Page"),
            // Not past a word that is not part of the name.
            ("a gift for Anna de Paris", "Anna", "Anna de Paris"),
            (
                "Olga Petrova called about the pot",
                "Olga Petrova",
                "Olga Petrova",
            ),
            ("tell Jonas the Kånken was a gift", "Jonas", "Jonas"),
            (
                "could Mr. Nguyen Van An pick it up",
                "Nguyen Van",
                "Mr. Nguyen Van An",
            ),
            (
                "Bitte an Familie Özdemir, Lindenstr.",
                "Özdemir",
                "Familie Özdemir",
            ),
            (
                "Ship to PO2 Daniel Reyes, USS",
                "Daniel Reyes",
                "PO2 Daniel Reyes",
            ),
        ] {
            let mut found = vec![model_person(text, model)];
            widen(text, &mut found);
            let got: Vec<&str> = found.iter().map(|f| &text[f.start..f.end]).collect();
            assert_eq!(got, [want], "{text}");
        }
        let text = "the card is in the name of Robert J. Fischer";
        let mut found = vec![
            model_person(text, "Robert J."),
            model_person(text, "Fischer"),
        ];
        widen(text, &mut found);
        let got: Vec<&str> = found.iter().map(|f| &text[f.start..f.end]).collect();
        assert_eq!(got, ["Robert J. Fischer"], "one name found in two parts");
        assert!(initials("J.R.") && initials("W.") && initials("A.P.J."));
        assert!(!initials("JR.") && !initials("J.r.") && !initials("Dr."));
    }

    #[test]
    fn names_before_here_and_after_an_address() {
        let mut found = Vec::new();
        before_here("Anmol Kalita here, my order never came", &mut found);
        before_here("hi, Priya Nair here.", &mut found);
        before_here("Georgia here, the Sorel Caribou in 8 please", &mut found);
        before_here("Rahul here again. any news?", &mut found);
        before_here("cust: ravi here again lol", &mut found);
        assert_eq!(found.len(), 5);
        let mut none = Vec::new();
        for text in [
            "Same problem here, the box was empty",
            "Customer Service here, how can we help",
            "Anmol Kalita is here",
            "the Nike store here in Leeds",
            "Everyone here, thanks for the help",
            "Georgia here is where it should go",
            "hi, Georgia here, the order",
        ] {
            before_here(text, &mut none);
            assert!(none.is_empty(), "{text}");
        }
        let text = "Indirizzo: Via Po 15, 10123 Torino, Marco Ferrari";
        let at = text.find("Via").unwrap();
        let end = text.find(", Marco").unwrap();
        let mut found = vec![Finding {
            entity: Entity::Address,
            start: at,
            end,
            score: 0.75,
            source: Source::Pattern,
        }];
        after_addresses(text, &mut found);
        let person = found.iter().find(|f| f.entity == Entity::Person).unwrap();
        assert_eq!(&text[person.start..person.end], "Marco Ferrari");
        let text = "Via Po 15, 10123 Torino, Marco said he would sign";
        let mut found = vec![Finding {
            entity: Entity::Address,
            start: 0,
            end: text.find(", Marco").unwrap(),
            score: 0.75,
            source: Source::Pattern,
        }];
        after_addresses(text, &mut found);
        assert_eq!(found.len(), 1, "a name must end the sentence");
    }

    #[test]
    fn destinations_are_candidates_until_the_model_finds_a_person() {
        let text = "ship to Taylor Brooks, 410 Peachtree St";
        let mut found = Vec::new();
        scan_text(text, &mut found);
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
        scan_text(text, &mut found);
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
    fn display_names_before_an_address_in_angle_brackets() {
        for (text, want) in [
            (
                "Cc: Małgorzata Wiśniewska <m.w@example.pl>",
                "Małgorzata Wiśniewska",
            ),
            ("From: \"Beatriz Souza\" <bia@example.com>", "Beatriz Souza"),
            ("To: a@b.example, Dave <dave@example.com>", "Dave"),
        ] {
            let at = text.rfind('<').unwrap_or_default() + 1;
            let mut found = vec![Finding {
                entity: Entity::Email,
                start: at,
                end: text.len() - 1,
                score: 0.95,
                source: Source::Pattern,
            }];
            before_contacts(text, &mut found);
            let names: Vec<&str> = found
                .iter()
                .filter(|f| f.entity == Entity::Person)
                .map(|f| &text[f.start..f.end])
                .collect();
            assert_eq!(names, [want], "{text}");
        }
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
        let text = "Ola Nordmann, Karl Johans gate 22, 0159 Oslo";
        let mut found = vec![Finding {
            entity: Entity::Address,
            start: text.find("Karl").unwrap(),
            end: text.len(),
            score: 0.99,
            source: Source::Ner,
        }];
        before_contacts(text, &mut found);
        assert_eq!(
            &text[found[1].start..found[1].end],
            "Ola Nordmann",
            "before an address"
        );
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
        let recase = |text| recase(text, &super::super::cues::find(text));
        let text = "hi, this is rahul mehta, my shoes";
        let (recased, spans) = recase(text);
        assert_eq!(recased, "hi, this is Rahul Mehta, my shoes");
        let found: Vec<(usize, usize, bool)> = spans
            .iter()
            .map(|f| (f.start, f.end, f.score >= 0.5))
            .collect();
        assert_eq!(found, [(12, 23, false)], "an introduction: a candidate");
        assert!(matches!(recase("nothing to see").0, Cow::Borrowed(_)));
        let (recased, spans) = recase("my name is josé luis de la fuente and I");
        assert_eq!(recased, "my name is José Luis de la Fuente and I");
        assert!(
            spans.iter().all(|f| f.score >= 0.5),
            "\"my name is\" names: a name"
        );
        assert!(matches!(
            recase("this is the wrong size").0,
            Cow::Borrowed(_)
        ));
    }
}
