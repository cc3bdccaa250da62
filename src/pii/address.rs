//! Postal addresses by their shape, and whole addresses from pieces. The shapes are the
//! ones people write on one line: a number and a street type ("221 Maple Ave", "12 rue des
//! Lilas"), a street type and a number ("Calle de Alcalá 45", "Via Roma 10", "Rua Augusta
//! 1500"), a compound street name and a number ("Hauptstraße 17a", "Keizersgracht 123"),
//! Indian house and plot numbers ("H.No. 12-4-57"), Japanese block numbers ("2-11-3
//! Meguro") and US military mail ("PSC 1234, Box 5678, APO AE 09204"; "USNS Comfort (T-AH
//! 20), FPO AA 34055"). [`widen`] then grows every address finding, the model's included,
//! over the pieces written next to it: the unit or house number before it, and the unit,
//! locality, region and postcode after it, which the model labels apart or not at all.

use std::sync::LazyLock;

use regex::Regex;

use super::{Finding, Source};
use crate::config::Entity;

/// Letters of the Latin alphabets, as ranges: a few bytes of automaton where `\p{L}`
/// would be thousands of states, so text without an address is scanned at memory speed.
/// (Upper and lower case overlap in the extended ranges; the patterns only need to tell
/// a capitalised word from a lower-case one in Basic Latin and Latin-1.)
const UPPER: &str = r"A-ZÀ-ÖØ-ÞĀ-ɏ";
const LOWER: &str = r"a-zß-öø-ÿĀ-ɏ";
const LETTER: &str = r"A-Za-zÀ-ÖØ-öø-ɏ";
/// `pattern` with its letter classes as Latin ranges and its digits as ASCII digits (as
/// nested classes, so they work inside a class too).
fn latin(pattern: &str) -> String {
    pattern
        .replace(r"\p{Lu}", &format!("[{UPPER}]"))
        .replace(r"\p{Ll}", &format!("[{LOWER}]"))
        .replace(r"\p{L}", &format!("[{LETTER}]"))
        .replace(r"\d", "[0-9]")
}

/// The lazy DFA's cache for the shapes.
const DFA_CACHE: usize = 8 << 20;

/// Score of an address found by its shape.
const SHAPED: f64 = 0.75;
/// Most pieces [`widen`] adds after an address and before it, and bytes it may grow by
/// each way.
const MAX_PIECES: usize = 5;
const MAX_PIECES_BEFORE: usize = 3;
const MAX_GROWTH: usize = 96;

/// Street types that follow the street's name ("Maple Ave"), in any case.
const TYPES_AFTER: &str = r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|highway|hwy|parkway|pkwy|crescent|cres|terrace|way|court|ct|place|pl|close|gardens|square|sq|row|mews|walk|trail|circle|cir|alley|grove|hill|gate|loop|parade|esplanade|quay|plaza|chowk|marg|nagar|gali|colony|bagh|zila|ganj|path";
/// Street types of an address written in lower case: the unmistakable ones.
const TYPES_AFTER_LOWER: &str = r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|blvd|hwy|pkwy|place|court|crescent|terrace|square|gardens|grove|close";
/// Street types that come first ("Calle de Alcalá", "Via Roma"), in any case.
const TYPES_BEFORE: &str = r"calle|callejón|cuesta|rambla|pasaje|pasadizo|urbanización|acceso|cañada|vía|c/|avenida|avda\.?|av\.|avd\.|paseo|ronda|plaza|pza\.|carrer|camino|glorieta|travesía|carretera|rua|travessa|alameda|praça|estrada|rue|boulevard|strada|vicolo|piazzale|piazza|viale|corso|largo|canale|contrada|borgo|stretto|incrocio|rotonda|ul\.|ulica|al\.|aleja|os\.|osiedle";
/// Street types that come first only when capitalised (English words otherwise).
const TYPES_BEFORE_CAPITALISED: &str = r"Via|Avenue|Place|Route|Allée|Chemin|Quai|Impasse|Cours";
/// Street types that follow a number in French ("12 rue des Lilas").
const TYPES_AFTER_NUMBER: &str =
    r"rue|avenue|av\.|boulevard|bd|place|chemin|allée|quai|impasse|route|cours|square";
/// Endings of compound street names ("Hauptstraße", "Keizersgracht", "Lindenallee").
const COMPOUND: &str = r"straße|strasse|str\.|weg|allee|gasse|platz|ring|damm|ufer|chaussee|gracht|straat|laan|plein|kade|steeg|singel|dijk|hof|baan|dreef|boulevard|pad|markt|vej|gade|gatan|vägen|veien";
/// Words between the capitalised words of a street's name ("de la", "dei", "van").
const PARTICLE: &str = r"de la|de las|de los|del|de|des|du|la|le|les|d'|dels|do|dos|da|das|di|dei|della|delle|degli|van|von|der|den|y|e|i";

#[allow(
    clippy::expect_used,
    reason = "constant patterns; the unit tests compile them"
)]
static SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    // A capitalised word; a dot only after an abbreviation ("St.", "Av."), so a name
    // never runs on into the next sentence.
    let cap = r"\p{Lu}(?:\p{L}{0,2}\.|[\p{L}'’-]*)";
    let name = format!(
        r"(?:(?:{PARTICLE})\s+){{0,2}}{cap}(?:\s+(?:(?:{PARTICLE})\s+){{0,2}}(?:{cap}|\d{{1,2}}))*"
    );
    let number = r"\d{1,5}[A-Za-z]?(?:[-/]\d{1,4})?";
    let patterns = [
        // US military mail.
        r"(?i:(?-u:\b)(?:psc|unit|cmr)\s+\d{3,5},?\s+box\s+\d{1,5},?\s+(?:apo|fpo|dpo)\s+(?:aa|ae|ap)\s+\d{5}(?-u:\b))".to_string(),
        r"(?:USNS|USNV|USS|USCGC)\s+\p{Lu}[\p{L}.']*(?:\s+\p{Lu}[\p{L}.']*){0,4}(?:\s*\([A-Z]+(?:-[A-Z]+)?\s*\d+\))?,?\s+(?:APO|FPO|DPO)\s+(?:AA|AE|AP)\s+\d{5}(?-u:\b)".to_string(),
        // Number, capitalised name, street type.
        format!(r"(?-u:\b){number},?\s+(?:[NSEW]\.?\s+)?{name}\s+(?i:{TYPES_AFTER})(?-u:\b)\.?"),
        // The same in lower case, with the unmistakable types.
        format!(r"(?-u:\b)\d{{1,5}}[a-z]?\s+(?:[nsew]\.?\s+)?\p{{Ll}}+(?:\s+\p{{Ll}}+)?\s+(?:{TYPES_AFTER_LOWER})(?-u:\b)\.?"),
        // Number, then a type that comes first (French).
        format!(r"(?-u:\b)\d{{1,4}}(?:\s?(?:bis|ter))?,?\s+(?i:{TYPES_AFTER_NUMBER})\s+{name}"),
        // Type first, capitalised name, number.
        format!(r"(?-u:\b)(?:(?i:{TYPES_BEFORE})|{TYPES_BEFORE_CAPITALISED})\s+{name},?\s+(?:n\.?º\s*)?{number}(?-u:\b)"),
        // Compound street name and number.
        format!(r"\p{{Lu}}[\p{{L}}-]*(?i:{COMPOUND})\s+\d{{1,4}}[a-zA-Z]?(?:-[0-9IVX]+|/\d{{1,4}})?(?-u:\b)"),
        // Indian: a number (a block letter before it), up to two localities, a city and its
        // PIN ("22/26, Dara, Pondicherry 748650", "B-204, Shanti Niketan, Andheri East,
        // Mumbai 400069").
        format!(r"(?-u:\b)(?:[A-Z]-)?\d{{1,4}}(?:/\d{{1,4}})?,\s+{name},(?:\s+{name},)?\s+{name}\s?[-–]?\s?\d{{6}}(?-u:\b)"),
        // Post office boxes.
        r"(?i:(?-u:\b)(?:p\.?\s?o\.?\s?box|post\s+office\s+box|postfach|apartado(?:\s+de\s+correos)?|casella\s+postale|caixa\s+postal|boîte\s+postale)\s+\d{1,6}(?-u:\b))".to_string(),
        // Indian house, plot and door numbers.
        r"(?i:(?-u:\b)(?:h\.?\s?no\.?|house\s+no\.?|plot\s+no\.?|flat\s+no\.?|door\s+no\.?)\s*[\d/-]+[a-z]?(?-u:\b))".to_string(),
        // Japanese block addresses.
        r"(?-u:\b)\d{1,2}-\d{1,2}-\d{1,3},?\s+\p{Lu}\p{Ll}+(?:-(?:ku|shi|cho|machi))?(?-u:\b)".to_string(),
    ];
    let pattern = latin(&patterns.join("|"));
    regex::RegexBuilder::new(&pattern)
        .dfa_size_limit(DFA_CACHE)
        .build()
        .expect("address shapes compile")
});

/// Words that make a lower-case match prose rather than an address ("3 on the road").
const PROSE: &[&str] = &[
    "on", "the", "in", "to", "of", "a", "an", "my", "your", "our", "for", "at", "by", "down", "up",
    "this", "that", "same", "other", "more", "days", "weeks", "items", "pairs", "times", "and",
    "or", "is", "are", "across", "along", "off",
];

/// A piece written before an address: a unit (with a number, or one letter) or a house
/// number, then a comma or a space.
#[allow(
    clippy::expect_used,
    reason = "constant patterns; the unit tests compile them"
)]
static BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:(?i:(?-u:\b)(?:flat|apt\.?|apartment|unit|suite|ste\.?|room|rm\.?|level|floor|block|building|bldg\.?|studio|shop|office|villa|plot|sector|no\.|plot\s+no\.?|house(?:\s+no\.?)?|h\.?\s?no\.?|bâtiment|bât\.|bat\.|escalier|esc\.|escalera|portal|bloque|scala|edificio)\s*(?:[\w/-]*\d[\w/-]*|[a-z])|\d{1,3}(?:st|nd|rd|th)\s+(?:floor|cross|main|block)|(?:[a-z]{1,2}-)?\d{1,5}[a-z]?(?:[-/]\d+)?|(?-u:\b)(?:flat|apt\.?|apartment|unit|suite|sector|plot|block|road))|(?-u:\b)[A-Z][a-z]+(?:\s[A-Z][a-z]+){0,2}\s(?:House|Court|Towers?|Apartments|Mansions|Building|Residency|Heights|Villas|Chambers|Enclave|Complex)|(?:Résidence|Residence|Immeuble|Domaine|Edificio|Residencial|Urbanización|Palazzo|Condominio)(?:\s\p{Lu}[\p{L}'’-]*){1,3})(?:,\s+|\s+)$",
    )
    .expect("address prefix compiles")
});

/// Postcodes that name a street or a few houses, their halves a space apart or not:
/// British ("SE22 8HB"), Canadian ("H3G 1P1"), Dutch ("1015 CJ").
const BRITISH_POSTCODE: &str = r"[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}";
const CANADIAN_POSTCODE: &str = r"[A-Z]\d[A-Z]\s?\d[A-Z]\d";
const DUTCH_POSTCODE: &str = r"\d{4}\s?[A-Z]{2}";

#[allow(
    clippy::expect_used,
    reason = "constant patterns; the unit tests compile them"
)]
static STREET_POSTCODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&latin(&format!(
        "^(?:{BRITISH_POSTCODE}|{CANADIAN_POSTCODE}|{DUTCH_POSTCODE})$"
    )))
    .expect("street postcodes compile")
});

/// Whether `s` is, whole, a postcode that names a street or a few houses.
pub(super) fn street_postcode(s: &str) -> bool {
    STREET_POSTCODE.is_match(s)
}

/// Words that number a unit, a floor or a staircase of a building, after its street.
const UNIT_WORDS: &str = r"apt\.?|apto\.?|apartment|appartamento|app\.|unit|suite|ste\.?|flat|studio|shop|room|box|floor|level|escalera|esc\.|portal|planta|piso|puerta|pta\.|bloque|étage|bâtiment|bât\.|bat\.|interno|int\.|scala|piano|stock|whg\.|col\.|colonia|sector|block";

/// A piece that is a unit ("scala B", "int. 4"): neither a locality nor a postcode.
#[allow(
    clippy::expect_used,
    reason = "a constant pattern; the unit tests compile it"
)]
static UNIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&latin(&format!(r"^(?i:{UNIT_WORDS})(?:\s|\d|$)"))).expect("unit compiles")
});

/// A piece written after an address, after a comma or a space: a unit, a postcode, a
/// region, a locality of up to three words.
#[allow(
    clippy::expect_used,
    reason = "constant patterns; the unit tests compile them"
)]
static AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&latin(&[
        // a floor mark glued to the house number before it ("45, 3º B"), or a separator
        r"^(?:[º°ª]\s?(?:(?i:[a-z])(?-u:\b)|(?i:izquierda|izda\.?|izq\.?|derecha|dcha\.?|dcha|der\.?|centro))?",
        r"|(?:\s*,\s*|\s+|\s*[-–]\s*)(?:",
        // units and floors
        r"(?i:(?:",
        UNIT_WORDS,
        r")\s*[\w/º°ª.-]+)",
        // a Polish flat or premises: "m. 15", "lok. 3"
        r"|(?:m|lok)\.\s?\d[\w/]*",
        r"|\d{1,2}\s?[º°ª]\s?(?:\d{1,2}\s?[ºª]|(?i:[a-z])(?-u:\b)|(?i:izquierda|izda\.?|izq\.?|derecha|dcha\.?|dcha|der\.?|centro))?",
        r"|\d{1,3}(?:st|nd|rd|th)\s+(?i:cross|main|floor|block)(?:\s+road)?",
        // postcodes
        // (alternatives are tried in order: the Dutch "1015 CJ" before the "1015" of
        // numeric postcodes)
        r"|\d{5}-\d{3}|\d{3}-\d{4}|",
        DUTCH_POSTCODE,
        r"(?-u:\b)|\d{4}-\d{3}|\d{4,6}(?-u:\b)|\d{3}\s\d{2}(?-u:\b)|\d{2}-\d{3}(?-u:\b)",
        r"|",
        BRITISH_POSTCODE,
        r"(?-u:\b)|[a-z]{1,2}\d[a-z\d]?\s\d[a-z]{2}(?-u:\b)",
        r"|",
        CANADIAN_POSTCODE,
        r"(?-u:\b)|[A-Z]\d{2}\s?[A-Z\d]{4}(?-u:\b)",
        // regions
        r"|[A-Z]{2,3}(?-u:\b)|\([A-Z]{2}\)",
        // a locality, with its district number ("Dublin 2"): capitalised words, or
        // lower-case ones in a lower-case address
        r"|\p{Lu}(?:\p{L}{0,2}\.|[\p{L}'’-]*)(?:\s(?:(?i:de|del|la|sur|am|an|an der|upon|on)\s)?\p{Lu}(?:\p{L}{0,2}\.|[\p{L}'’-]*)){0,3}(?:\s\([A-Z]{2}\)|\s[1-9]\d?(?-u:\b))?",
        r")",
        r")",
    ]
    .concat()))
    .expect("address suffix compiles")
});

/// Lower-case words that may form a locality in an address written all in lower case.
#[allow(
    clippy::expect_used,
    reason = "constant patterns; the unit tests compile them"
)]
static AFTER_LOWER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&latin(
        r"^(?:,\s*|\s+)(?:[\p{Ll}][\p{Ll}'’.-]*(?:\s[\p{Ll}][\p{Ll}'’.-]*){0,1})(?-u:\b)",
    ))
    .expect("lower-case locality compiles")
});

/// A locality in lower case with its postcode, and a region's code between them, after
/// an address written with capitals ("88 Pine St apt 4, seattle wa 98101").
#[allow(
    clippy::expect_used,
    reason = "constant patterns; the unit tests compile them"
)]
static LOWER_WITH_POSTCODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&latin(concat!(
        r"^(?:,\s*|\s+)(?<locality>\p{Ll}[\p{Ll}'’.-]*(?:\s\p{Ll}[\p{Ll}'’.-]*){0,2}?)(?:,?\s+(?i:[a-z]{2,3}))?,?\s+",
        // US, Indian and European postcodes; Canadian and British ones
        r"(?:\d{4,6}(?:-\d{4})?|(?i:[a-z]\d[a-z]\s?\d[a-z]\d|[a-z]{1,2}\d[a-z\d]?\s?\d[a-z]{2}))(?-u:\b)",
    )))
    .expect("lower-case locality with postcode compiles")
});

/// Words a locality never is: the start of what is said after an address.
const NOT_PLACES: &[&str] = &[
    "please",
    "pls",
    "thanks",
    "thank",
    "call",
    "phone",
    "tel",
    "tel.",
    "mobile",
    "email",
    "and",
    "the",
    "my",
    "i",
    "it",
    "is",
    "before",
    "after",
    "by",
    "asap",
    "gracias",
    "merci",
    "danke",
    "grazie",
    "bitte",
    "order",
    "attn",
    "attention",
    "regards",
    "mi",
    "je",
    "ich",
    "il",
    "la",
    "le",
    "el",
    "can",
    "could",
    "i'm",
    "we",
    "you",
    "they",
    "he",
    "she",
    "this",
    "that",
    "ask",
    "note",
    "leave",
    "send",
    "ship",
    "deliver",
    "gracias!",
];

/// Addresses by their shape.
pub fn scan(text: &str, out: &mut Vec<Finding>) {
    let start = out.len();
    for m in SHAPES.find_iter(text) {
        let lower_prose = !m.as_str().chars().any(char::is_uppercase)
            && m.as_str().split_whitespace().any(|w| PROSE.contains(&w));
        if lower_prose {
            continue;
        }
        out.push(Finding {
            entity: Entity::Address,
            start: m.start(),
            end: m.end().min(text.len()),
            score: SHAPED,
            source: Source::Pattern,
        });
    }
    // Shapes that overlap: the longest stands for the address.
    let mut shaped = out.split_off(start);
    shaped.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
    for f in shaped {
        if out
            .get(start..)
            .and_then(<[Finding]>::last)
            .is_none_or(|last| last.end <= f.start)
        {
            out.push(f);
        }
    }
}

/// Grows every address finding over the pieces written next to it (see the module),
/// then drops the model's street names that stay without a number ("Oxford Street" is
/// where a shop is, not where a person lives) and its "addresses" that start with a word
/// no address starts with ("order 55120").
pub fn widen(text: &str, found: &mut Vec<Finding>) {
    for f in found.iter_mut().filter(|f| f.entity == Entity::Address) {
        if f.source == Source::Ner {
            let kept = without_trailing_prose(text.get(f.start..f.end).unwrap_or_default());
            f.end = f.start + kept;
        }
        let (start, end) = grown(text, f.start, f.end);
        f.start = start;
        f.end = end;
    }
    found.retain(|f| {
        if f.entity != Entity::Address {
            return true;
        }
        if counted_places(text.get(f.start..).unwrap_or_default()) {
            return false;
        }
        if f.source != Source::Ner {
            return true;
        }
        let Some(address) = text.get(f.start..f.end) else {
            return false;
        };
        let first = address.split(' ').next().unwrap_or_default().to_lowercase();
        // One token ("ARC-7781") is a code: an address has words.
        let words = address.contains([' ', ',']);
        words
            && address.chars().any(|c| c.is_ascii_digit())
            && !NOT_PLACES.contains(&first.as_str())
            && !is_measure_word(first.trim_end_matches(':'))
            && !after_measure(text, f.start)
            && !is_size(address)
            && !is_quantity(address)
    });
}

/// Nouns that count what an order holds ("2 units", "3 bottles").
const COUNTED: &[&str] = &[
    "unit", "units", "piece", "pieces", "pcs", "item", "items", "pair", "pairs", "pack", "packs",
    "bottle", "bottles", "box", "boxes", "set", "sets", "roll", "rolls", "bag", "bags", "case",
    "cases", "pallets", "parcels", "x",
];

/// Whether `span` starts with a count of what an order holds ("2 units please").
fn is_quantity(span: &str) -> bool {
    let mut words = span.split([' ', ',']);
    let number = words.next().unwrap_or_default();
    let noun = words.next().unwrap_or_default().to_lowercase();
    !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
        && COUNTED.contains(&noun.as_str())
}

/// The length of the model's `span` without the lower-case words that end it when they
/// hold a sentence's word ("Wellington 6140 is fine" is "Wellington 6140"; "12 elm st"
/// stays).
fn without_trailing_prose(span: &str) -> usize {
    let words: Vec<&str> = span.split(' ').collect();
    let lower =
        |w: &&str| !w.is_empty() && w.chars().all(|c| c.is_lowercase() || "'’.-".contains(c));
    let trailing = words.iter().rev().take_while(|w| lower(w)).count();
    match words.split_at_checked(words.len() - trailing) {
        Some((head, tail)) if tail.iter().any(|w| PROSE.contains(w)) => {
            let head_len = head.iter().map(|w| w.len() + 1).sum::<usize>();
            span.get(..head_len.saturating_sub(1))
                .map_or(0, |h| h.trim_end().len())
        }
        _ => span.len(),
    }
}

/// Size systems a shoe or a garment is sized in ("UK 6", "EU 42", "US 9.5").
const SIZE_SYSTEMS: &[&str] = &["UK", "EU", "US", "FR", "IT", "JP", "AU", "CN", "BR", "MX"];

/// Whether `span` is a size: a size system and a number ("UK 6", "EU 38.5", "US 10W").
fn is_size(span: &str) -> bool {
    let Some((system, size)) = span.split_once(' ') else {
        return false;
    };
    let digits = size.trim_end_matches(['W', 'M', 'N', 'w']);
    SIZE_SYSTEMS.contains(&system)
        && digits.len() <= 4
        && digits.chars().next().is_some_and(|c| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',' || c == '½')
}

/// A place and a count: "Rotterdam 14".
#[allow(
    clippy::expect_used,
    reason = "a constant pattern; the unit tests compile it"
)]
static PLACE_COUNT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\p{Lu}[\p{L}'’-]+ \d{1,4}$").expect("place count compiles"));

/// Whether `rest` starts with three places and their counts or more, a comma apart
/// ("Rotterdam 14, Lyon 3, Milan 0"): stock by warehouse, where an address has at most a
/// street and a district ("Keizersgracht 14, Amsterdam"; "Main St 4, Dublin 2").
fn counted_places(rest: &str) -> bool {
    rest.split(", ")
        .take(3)
        .filter(|piece| {
            let piece = piece
                .split([' ', '.', ';'])
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            // "Tel 030 …" is a phone, not a place.
            let word = piece.split(' ').next().unwrap_or_default();
            PLACE_COUNT.is_match(&piece) && !super::recognize::phone_cue(word)
        })
        .count()
        == 3
}

/// Words after which a number and a letter are a product's measures ("size 44 2/3, width
/// G"), not a house number and a street.
const MEASURES: &[&str] = &[
    "size", "sizes", "width", "colour", "color", "qty", "quantity", "length", "waist", "inseam",
    "größe", "taille", "talla", "taglia", "maat",
];

/// Words that number spots in a warehouse, a shop or a station ("dock 4, pallet 12",
/// "aisle 7", "locker 21"): a number after them is not a house's.
const SPOTS: &[&str] = &[
    "dock", "pallet", "aisle", "bay", "shelf", "rack", "bin", "gate", "platform", "row", "slot",
    "locker", "desk", "till", "counter", "zone", "pier", "tote", "cage",
];

/// Whether `word` (in lower case) is one of [`MEASURES`] or [`SPOTS`].
fn is_measure_word(word: &str) -> bool {
    MEASURES.contains(&word) || SPOTS.contains(&word)
}

/// Whether the word before `start` is one of [`MEASURES`] or [`SPOTS`].
fn after_measure(text: &str, start: usize) -> bool {
    let before = text.get(..start).unwrap_or_default().trim_end();
    let word_before = before
        .rsplit([' ', ',', ':', '('])
        .next()
        .unwrap_or_default();
    is_measure_word(&word_before.trim_end_matches(':').to_lowercase())
}

fn grown(text: &str, start: usize, end: usize) -> (usize, usize) {
    let lower = text
        .get(start..end)
        .is_some_and(|s| !s.chars().any(char::is_uppercase));
    // Before: units and house numbers ("Flat 12, 4th Floor, Lotus Towers").
    let floor = text.floor_char_boundary(start.saturating_sub(MAX_GROWTH));
    let mut new_start = start;
    for _ in 0..MAX_PIECES_BEFORE {
        let Some(m) = text.get(floor..new_start).and_then(|b| BEFORE.find(b)) else {
            break;
        };
        let s = floor + m.start();
        let clear = text
            .get(..s)
            .and_then(|t| t.chars().next_back())
            .is_none_or(|c| !c.is_alphanumeric());
        if !clear {
            break;
        }
        new_start = s;
    }
    // After: units, postcodes, regions, localities. Once a postcode and a locality are
    // in, only a region may follow ("10123 Torino, Marco Ferrari": the name stays out).
    let mut new_end = end;
    let has_postcode = |s: &str| {
        s.split(|c: char| !c.is_ascii_digit())
            .any(|run| run.len() >= 4)
    };
    let (mut postcode, mut locality) = (text.get(start..end).is_some_and(has_postcode), false);
    for _ in 0..MAX_PIECES {
        let Some(rest) = text.get(new_end..) else {
            break;
        };
        let piece = AFTER
            .find(rest)
            .or_else(|| lower.then(|| AFTER_LOWER.find(rest)).flatten())
            .or_else(|| {
                let piece = LOWER_WITH_POSTCODE.captures(rest)?;
                let prose = piece
                    .name("locality")?
                    .as_str()
                    .split(' ')
                    .any(|w| PROSE.contains(&w) || NOT_PLACES.contains(&w));
                (!prose).then(|| piece.get(0)).flatten()
            });
        let Some(m) = piece else {
            break;
        };
        let Some(taken) = whole_words(rest, m.end()) else {
            break;
        };
        let body = without_separator(rest.get(..taken).unwrap_or_default());
        let mut words = body.split(' ');
        let first = words.next().unwrap_or_default();
        let second = words.next().unwrap_or_default();
        if body.is_empty() || not_a_place(first, second) {
            break;
        }
        let is_postcode = body.chars().any(|c| c.is_ascii_digit());
        let unit = body.starts_with(['º', '°', 'ª'])
            || is_postcode && !has_postcode(body)
            || UNIT.is_match(body);
        // A region in brackets follows a locality or a postcode ("Bergamo (BG)"); after
        // a street it is a size ("Meadow Low 2 (XL)").
        let bracketed = body.starts_with('(');
        let is_region = body.len() <= 4
            && body
                .chars()
                .all(|c| c.is_ascii_uppercase() || "()".contains(c))
            || bracketed;
        if postcode && locality && !is_region && !is_postcode || bracketed && !postcode && !locality
        {
            break;
        }
        postcode |= is_postcode && !unit;
        locality |= !is_postcode && !is_region && !unit;
        if new_end + taken - end > MAX_GROWTH {
            break;
        }
        new_end += taken;
    }
    (new_start, new_end)
}

/// How much of a piece matched as `rest[..end]` to take: without a trailing hyphen
/// ("Ajmer-" of "Ajmer-949309"), without a last word that runs on into letters or digits
/// ("EH" of "Edinburgh EH3 6AZ", a postcode the next piece takes whole), and up to a word
/// said after an address; `None` when nothing is left.
fn whole_words(rest: &str, end: usize) -> Option<usize> {
    let matched = rest.get(..end)?.trim_end_matches(['-', '–']);
    let runs_on = rest
        .get(matched.len()..)
        .and_then(|t| t.chars().next())
        .is_some_and(char::is_alphanumeric);
    let mut taken = if runs_on {
        matched
            .trim_end_matches(|c: char| c != ' ')
            .trim_end()
            .len()
    } else {
        matched.len()
    };
    // A locality ends before a word said after an address ("Ell. Order BST-…").
    let piece = rest.get(..taken).unwrap_or_default();
    let body = without_separator(piece);
    if !body.chars().any(|c| c.is_ascii_digit()) {
        let offset = piece.len() - body.len();
        let said_after = body.match_indices(' ').map(|(i, _)| i).find(|&i| {
            let word = body.get(i + 1..).unwrap_or_default();
            let word = word.split([' ', ',']).next().unwrap_or_default();
            !region_code(word) && NOT_PLACES.contains(&word.to_lowercase().as_str())
        });
        if let Some(i) = said_after {
            taken = offset + i;
        }
    }
    rest.get(..taken)
        .is_some_and(|t| t.chars().any(char::is_alphanumeric))
        .then_some(taken)
}

/// A piece without the comma, hyphen or spaces that separate it from what it follows.
fn without_separator(piece: &str) -> &str {
    piece.trim_start_matches(|c: char| matches!(c, ',' | '-' | '–') || c.is_whitespace())
}

/// Whether a piece starting with `first`, `second` is what is said after an address
/// rather than its locality; an article before a capitalised word is a place's ("La
/// Rioja", "Le Mans", "El Paso").
fn not_a_place(first: &str, second: &str) -> bool {
    let folded = first.to_lowercase();
    let article = matches!(
        folded.as_str(),
        "la" | "le" | "el" | "il" | "les" | "los" | "las"
    );
    let capitalised = |w: &str| w.chars().next().is_some_and(char::is_uppercase);
    if article && capitalised(first) && capitalised(second) || region_code(first) {
        return false;
    }
    NOT_PLACES.contains(&folded.as_str())
}

/// Whether `word` is written as a region's or province's code ("MI", "IL", "NSW"), which
/// is a place even when the word in lower case is not ("mi", "il").
fn region_code(word: &str) -> bool {
    (2..=3).contains(&word.len()) && word.chars().all(|c| c.is_ascii_uppercase())
}

/// Compiles every pattern now (the first request should not pay for it).
pub fn warm() {
    LazyLock::force(&SHAPES);
    LazyLock::force(&BEFORE);
    LazyLock::force(&AFTER);
    LazyLock::force(&AFTER_LOWER);
    LazyLock::force(&LOWER_WITH_POSTCODE);
    LazyLock::force(&STREET_POSTCODE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        scan(text, &mut out);
        widen(text, &mut out);
        out.iter().map(|f| &text[f.start..f.end]).collect()
    }

    /// What [`widen`] keeps of model findings over `spans`.
    fn kept_of_the_model(text: &str, spans: &[&str]) -> Vec<String> {
        let mut found: Vec<Finding> = spans
            .iter()
            .filter_map(|s| text.find(s).map(|at| (at, at + s.len())))
            .map(|(start, end)| Finding {
                entity: Entity::Address,
                start,
                end,
                score: 0.9,
                source: Source::Ner,
            })
            .collect();
        widen(text, &mut found);
        found
            .iter()
            .map(|f| text[f.start..f.end].to_string())
            .collect()
    }

    #[test]
    fn units_named_buildings_and_post_office_boxes() {
        for (text, want) in [
            (
                "spedite a Via Garibaldi 7, scala B, int. 4, 16124 Genova",
                "Via Garibaldi 7, scala B, int. 4, 16124 Genova",
            ),
            (
                "new address: Résidence Les Pins, Bât. C, 45 avenue de la Libération, 13008 Marseille",
                "Résidence Les Pins, Bât. C, 45 avenue de la Libération, 13008 Marseille",
            ),
            (
                "PO Box 1234, Wellington 6140",
                "PO Box 1234, Wellington 6140",
            ),
            (
                "Apartado de correos 45, Cádiz",
                "Apartado de correos 45, Cádiz",
            ),
        ] {
            assert_eq!(addresses(text), [want], "{text}");
        }
        assert!(addresses("the box 12 is broken").is_empty());
    }

    #[test]
    fn the_sentence_after_a_model_address_is_not_its() {
        assert_eq!(without_trailing_prose("Wellington 6140 is fine"), 15);
        assert_eq!(without_trailing_prose("6140 is fine"), 4);
        assert_eq!(without_trailing_prose("12 elm st"), 9);
    }

    #[test]
    fn sizes_are_not_addresses() {
        for size in ["UK 6", "EU 42", "US 9.5", "US 10W"] {
            assert!(is_size(size), "{size}");
        }
        for place in ["Dublin 2", "UK 6XY", "Paris 75011"] {
            assert!(!is_size(place), "{place}");
        }
        assert!(is_quantity("2 units please") && is_quantity("3 bottles"));
        assert!(!is_quantity("2 Union Street") && !is_quantity("Flat 2"));
    }

    #[test]
    fn stock_by_warehouse_and_a_products_measures_are_not_addresses() {
        let text = "Stock levels: Rotterdam 14, Lyon 3, Milan 0 for the Runner 5.";
        assert!(kept_of_the_model(text, &["Rotterdam 14, Lyon 3, Milan"]).is_empty());
        let text = "size 44 2/3, width G, colour 001";
        assert!(kept_of_the_model(text, &["44 2/3, width G", "colour 001"]).is_empty());
        let text = "\"sku\": \"ARC-7781\"";
        assert!(kept_of_the_model(text, &["ARC-7781"]).is_empty(), "a code");
        for (text, span) in [
            (
                "to Keizersgracht 14, Amsterdam 1015, Netherlands",
                "Keizersgracht 14",
            ),
            ("at Hauptstraße 5, Haus 3, Tel 030 1234567", "Hauptstraße 5"),
            ("ship to 12 Main St, Dublin 2, thanks", "12 Main St"),
        ] {
            assert!(
                !kept_of_the_model(text, &[span]).is_empty(),
                "an address: {text}"
            );
        }
    }

    #[test]
    fn shapes_of_several_countries() {
        for (text, want) in [
            (
                "Deliver to PSC 1234, Box 5678, APO AE 09204 please",
                "PSC 1234, Box 5678, APO AE 09204",
            ),
            (
                "Send it to USNS Comfort (T-AH 20), FPO AA 34055",
                "USNS Comfort (T-AH 20), FPO AA 34055",
            ),
            (
                "ship to 221 Maple Ave Apt 5C, Brooklyn, NY 11211",
                "221 Maple Ave Apt 5C, Brooklyn, NY 11211",
            ),
            (
                "Entrega: Ronda de Segovia 21, Escalera 2, 28005 Madrid. Gracias",
                "Ronda de Segovia 21, Escalera 2, 28005 Madrid",
            ),
            (
                "Ship to X, H.No. 12-4-57, Gandhi Nagar, Nagpur 440012. Order",
                "H.No. 12-4-57, Gandhi Nagar, Nagpur 440012",
            ),
            (
                "Lieferadresse: Hauptstraße 17a, 69117 Heidelberg",
                "Hauptstraße 17a, 69117 Heidelberg",
            ),
            (
                "Adresse : 12 rue des Lilas, 69003 Lyon. Téléphone",
                "12 rue des Lilas, 69003 Lyon",
            ),
            (
                "at Keizersgracht 123-II, 1015 CJ Amsterdam",
                "Keizersgracht 123-II, 1015 CJ Amsterdam",
            ),
            (
                "deliver to 22 baker st, bradford bd1 4ra",
                "22 baker st, bradford bd1 4ra",
            ),
            (
                "to 2-11-3 Meguro, Meguro-ku, Tokyo 153-0063, phone",
                "2-11-3 Meguro, Meguro-ku, Tokyo 153-0063",
            ),
        ] {
            assert_eq!(addresses(text), [want], "{text}");
        }
    }

    #[test]
    fn pieces_next_to_an_address_are_taken_whole() {
        for (text, want) in [
            // A postcode after a locality, not split by it.
            (
                "leave it at 19 Park Crescent, Edinburgh EH3 6AZ",
                "19 Park Crescent, Edinburgh EH3 6AZ",
            ),
            (
                "to 15 Harcourt Street, Dublin 2, D02 XY45 today",
                "15 Harcourt Street, Dublin 2, D02 XY45",
            ),
            // Indian: a block and flat, two localities, a city and its PIN.
            (
                "ship to B-204, Shanti Niketan, Andheri East, Mumbai 400069",
                "B-204, Shanti Niketan, Andheri East, Mumbai 400069",
            ),
            // Polish: the street's type first, a flat after the house number.
            (
                "adres: ul. Długa 15/3, 31-019 Kraków",
                "ul. Długa 15/3, 31-019 Kraków",
            ),
            (
                "\"street\": \"ul. Marszałkowska 84/92 m. 15\"",
                "ul. Marszałkowska 84/92 m. 15",
            ),
            // Spanish floors glued to the house number, and abbreviated sides.
            (
                "Mi dirección es Calle Serrano 41, 4º D, 28001 Madrid",
                "Calle Serrano 41, 4º D, 28001 Madrid",
            ),
            (
                "deliver to Calle de Alcalá 48, 3º izq, 28014 Madrid",
                "Calle de Alcalá 48, 3º izq, 28014 Madrid",
            ),
            // A province's or state's code, even one that is a word in lower case.
            (
                "spedire a Via Roma 12, 20121 Milano MI, citofono",
                "Via Roma 12, 20121 Milano MI",
            ),
            (
                "to 1200 W Madison St, Chicago IL 60607 please",
                "1200 W Madison St, Chicago IL 60607",
            ),
            // A unit word before the number, a building's name before the street.
            (
                "send to Unit 5/22 George St, Sydney NSW 2000 instead",
                "Unit 5/22 George St, Sydney NSW 2000",
            ),
            (
                "c/o A, Flat 12, Marlowe House, 9 Station Road, Leeds LS1 4DY",
                "Flat 12, Marlowe House, 9 Station Road, Leeds LS1 4DY",
            ),
            (
                "address is Calle Mayor 5, 1ºB, 28013 Madrid",
                "Calle Mayor 5, 1ºB, 28013 Madrid",
            ),
            // An Indian PIN after a hyphen.
            (
                "Attn: X, 45, Dora Circle, Baranagar-411373",
                "45, Dora Circle, Baranagar-411373",
            ),
            // Italian units and provinces; a house number with a slash.
            (
                "to Via Nadia, 51 Appartamento 29, 57039, Rio Nell'Elba (LI). Order",
                "Via Nadia, 51 Appartamento 29, 57039, Rio Nell'Elba (LI)",
            ),
            (
                "Neue Adresse: Henschelweg 5/5, 71302 Jessen. Danke",
                "Henschelweg 5/5, 71302 Jessen",
            ),
            // Units before the street, more than one.
            (
                "pick up from Shop 2, 15 George Street, Brisbane QLD 4000 please",
                "Shop 2, 15 George Street, Brisbane QLD 4000",
            ),
            // A locality stops at what is said after it.
            (
                "Please deliver to Bramweg 3, 6849 OT, Ell. Order BST-718148.",
                "Bramweg 3, 6849 OT, Ell.",
            ),
            // An article before a capitalised word is a place's.
            (
                "to Plaza Juan Martín 11 Apt. 49, La Rioja, 14167. Order",
                "Plaza Juan Martín 11 Apt. 49, La Rioja, 14167",
            ),
            // A locality in lower case with its region and postcode, after a street
            // written with capitals; a Swedish postcode.
            (
                "pls update to 88 Pine st apt 4, seattle wa 98101 thanks",
                "88 Pine st apt 4, seattle wa 98101",
            ),
            (
                "ship to 14 King st, toronto on M5H 1A1",
                "14 King st, toronto on M5H 1A1",
            ),
            (
                "till Sveavägen 44, 113 59 Stockholm",
                "Sveavägen 44, 113 59 Stockholm",
            ),
        ] {
            assert_eq!(addresses(text), [want], "{text}");
        }
        // A unit word inside a name is not a unit ("Stephenson" is not "Ste").
        let text = "Attn: Sharon Stephenson, 12 Mill Lane";
        assert_eq!(addresses(text), ["12 Mill Lane"]);
    }

    #[test]
    fn commerce_text_has_no_address() {
        for text in [
            "Alpine 40L Backpack in size 42, 3 in stock",
            "Brooks Cascadia 17 in 10.5 wide please",
            "order ORD-2026-000123 of 2 items shipped",
        ] {
            assert!(addresses(text).is_empty(), "{text}: {:?}", addresses(text));
        }
    }

    #[test]
    fn a_model_span_grows_over_its_pieces() {
        let text = "Flat 3B, Sunrise Apartments, 14th Cross, Indiranagar, Bengaluru 560038 — note";
        let s = text.find("Sunrise").unwrap();
        let e = s + "Sunrise Apartments".len();
        let (gs, ge) = grown(text, s, e);
        assert_eq!(
            &text[gs..ge],
            "Flat 3B, Sunrise Apartments, 14th Cross, Indiranagar, Bengaluru 560038"
        );
    }
}
