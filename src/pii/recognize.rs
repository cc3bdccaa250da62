//! Pattern recognizers: one regex per kind of identifier, a validator that must accept the
//! match (checksums, structure), a base score, and context words that raise it (Presidio's
//! idea) or, for commerce words such as "order" or "SKU", lower it. A regex never runs over
//! the whole text unless a literal of its own lets it skip ahead ('@', "://", a key's
//! prefix): one pass over the bytes finds where the others can match — runs of digits and
//! phone separators for cards, SSNs, phones and IPv4 addresses, two capitals before two
//! digits for IBANs, hex digits around colons for IPv6 — and birth dates are searched
//! only near a birth word, which a literal search finds.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use regex::Regex;
use regex_automata::{Input, meta};

use super::cues::Hit;
use super::validate;
use super::{Finding, Source};
use crate::config::Entity;

/// Raised by a context word near the match.
const CONTEXT_BOOST: f64 = 0.3;
/// Lowered by a commerce word near the match (an order number is not a phone number).
const CONTEXT_PENALTY: f64 = 0.4;
/// Bytes before a match searched for context and commerce words.
const CONTEXT_BEFORE: usize = 48;
/// Bytes after a match searched for context words ("…0018 (mobile)", "… is my date of
/// birth"), within the match's sentence.
const CONTEXT_AFTER: usize = 32;

struct Recognizer {
    entity: Entity,
    pattern: &'static str,
    /// The score of a validated match, or `None` to drop it.
    check: fn(&str) -> Option<f64>,
    context: &'static [&'static str],
    penalty: &'static [&'static str],
    /// The match must be a whole token: not glued to letters or digits by `-`, `_`, `/`
    /// or `.` (`ORD-2026-000123` holds no phone number).
    whole_token: bool,
    /// A match that fails its check is tried again without its trailing groups: the
    /// pattern runs on into what follows (`DE89 … 0130 00 A`, `4111 … 1111 2 pairs`).
    shrinks: bool,
    /// Where its matches can lie.
    reach: Reach,
}

/// Where a recognizer's regex is searched.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reach {
    /// The whole text: the regex's literals let it skip to the few places it can match.
    Anywhere,
    /// The whole text when it holds an `@` (e-mail addresses, credentials in URLs): the
    /// pattern starts with a class, which no literal lets the regex skip to.
    AtSign,
    /// Runs of digits and phone separators that hold at least this many digits.
    Digits(usize),
    /// From two capital letters followed by two digits (a country code and check digits).
    IbanStart,
    /// Runs of digits holding three dots (IPv4) or of hex digits and colons holding two
    /// colons (IPv6).
    Ip,
    /// Around a birth word: a date is a birth date only in its context.
    BirthWord,
    /// Around short runs of digits between capital letters ("LS6 2QT", "K1A 0B1").
    Postcode,
}

/// The byte table of `chars`, built at compile time.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: a byte always indexes 256 entries, and `i` stays below the length"
)]
const fn byte_table(chars: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < chars.len() {
        table[chars[i] as usize] = true;
        i += 1;
    }
    table
}

/// The characters of numbers as people write them (phones, cards, SSNs, IPv4, dates).
const NUMERIC: [bool; 256] = byte_table(b"0123456789 ()./+-");
/// The characters of IPv6 addresses.
const HEX_COLON: [bool; 256] = byte_table(b"0123456789abcdefABCDEF:");

/// Words that make a number more likely an identifier of goods than of a person.
const COMMERCE: &[&str] = &[
    "order",
    "sku",
    "item",
    "article",
    "art.",
    "product",
    "tracking",
    "invoice",
    "ref",
    "reference",
    "model",
    "part",
    "batch",
    "lot",
    "ean",
    "upc",
    "gtin",
    "id:",
    "#",
    "ticket",
    "serial",
    "vat",
    "confirmation",
    "claim",
    "parcel",
    "voucher",
    "coupon",
];

/// Words that make the "number" after them an identifier, not a phone ("customer number",
/// "reference number"), besides the commerce words; alone they say nothing ("account
/// manager").
const NUMBER_OWNERS: &[&str] = &[
    "customer",
    "account",
    "member",
    "membership",
    "loyalty",
    "client",
    "contract",
    "policy",
];

static RECOGNIZERS: LazyLock<Vec<Recognizer>> = LazyLock::new(|| {
    vec![
        Recognizer {
            entity: Entity::Email,
            // An apostrophe is allowed in the local part ("j.o'connor@…").
            pattern: r"(?i)(?-u:\b)[a-z0-9][a-z0-9._%+'-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}(?-u:\b)",
            check: |_| Some(0.95),
            context: &[],
            penalty: &[],
            whole_token: false,
            shrinks: false,
            reach: Reach::AtSign,
        },
        Recognizer {
            entity: Entity::UrlCredentials,
            pattern: r"(?i)(?-u:\b)[a-z][a-z0-9+.-]{1,15}://[^\s/:@]+:[^\s/@]+@[^\s/]+",
            check: |_| Some(0.95),
            context: &[],
            penalty: &[],
            whole_token: false,
            shrinks: false,
            reach: Reach::AtSign,
        },
        Recognizer {
            entity: Entity::Secret,
            pattern: r"(?-u:\b)(?:AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)|(?-u:\b)sk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}|(?-u:\b)(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|(?-u:\b)gh[pousr]_[A-Za-z0-9]{36,}|(?-u:\b)github_pat_[A-Za-z0-9_]{22,}|(?-u:\b)xox[abposr]-[A-Za-z0-9-]{10,}|(?-u:\b)eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )*PRIVATE KEY-----",
            check: |_| Some(0.99),
            context: &[],
            penalty: &[],
            whole_token: false,
            shrinks: false,
            reach: Reach::Anywhere,
        },
        Recognizer {
            entity: Entity::CreditCard,
            pattern: r"(?-u:\b)(?:\d[ -]?){12,18}\d(?-u:\b)",
            check: |s| validate::credit_card(s).then_some(0.85),
            context: &[
                "card",
                "visa",
                "mastercard",
                "amex",
                "credit",
                "debit",
                "cc",
                "karte",
                "carte",
            ],
            // A Luhn-valid number with a card issuer's prefix is a card even in a sentence
            // about an order ("I paid my order with 4111…"): commerce words do not lower it.
            penalty: &[],
            whole_token: true,
            shrinks: true,
            reach: Reach::Digits(13),
        },
        Recognizer {
            entity: Entity::Iban,
            pattern: r"(?-u:\b)[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?-u:\b)",
            check: |s| validate::iban(s).then_some(0.95),
            context: &[],
            penalty: &[],
            whole_token: true,
            shrinks: true,
            reach: Reach::IbanStart,
        },
        Recognizer {
            entity: Entity::UsSsn,
            pattern: r"(?-u:\b)\d{3}-\d{2}-\d{4}(?-u:\b)|(?-u:\b)\d{3} \d{2} \d{4}(?-u:\b)",
            check: |s| validate::us_ssn(s).then_some(0.6),
            context: &["ssn", "social security", "social-security"],
            penalty: COMMERCE,
            whole_token: true,
            shrinks: false,
            reach: Reach::Digits(9),
        },
        Recognizer {
            entity: Entity::IpAddress,
            pattern: r"(?-u:\b)(?:\d{1,3}\.){3}\d{1,3}(?-u:\b)|(?i:(?-u:\b)(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}:){1,6}:[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}:){1,5}(?::[0-9a-f]{1,4}){1,2}|(?:[0-9a-f]{1,4}:){1,4}(?::[0-9a-f]{1,4}){1,3}|(?:[0-9a-f]{1,4}:){1,3}(?::[0-9a-f]{1,4}){1,4}|(?:[0-9a-f]{1,4}:){1,2}(?::[0-9a-f]{1,4}){1,5}|[0-9a-f]{1,4}:(?::[0-9a-f]{1,4}){1,6})(?-u:\b)|(?-u:\b)(?:[0-9a-f]{1,4}:){1,7}:)",
            check: |s| (validate::ipv4(s) || validate::ipv6(s)).then_some(0.75),
            context: &["ip", "address", "host", "server", "client"],
            penalty: &["version", "v.", "release", "firmware"],
            whole_token: true,
            shrinks: false,
            reach: Reach::Ip,
        },
        Recognizer {
            entity: Entity::Phone,
            // A slash separates the area code in German writing (`030/12345678`).
            // An extension after the number (`x204`, `ext. 12`) is taken in code
            // (`extension_end`): in the pattern it would multiply the automaton's states.
            // Its end is checked by `whole_token`, so that a number glued to an
            // extension (`0187x204`) still matches.
            pattern: r"(?:\+|(?-u:\b)00)\d[\d ()./-]{5,20}\d|\(?(?-u:\b)\d[\d ()./-]{5,18}\d",
            check: phone_score,
            context: &[
                "phone",
                "call",
                "tel",
                "mobile",
                "cell",
                "whatsapp",
                "sms",
                "text me",
                "txt",
                "text",
                "number",
                "telefon",
                "handy",
                "téléphone",
                "portable",
                "telefono",
                "teléfono",
                "móvil",
                "llamadme",
                "llámame",
                "cellulare",
                "chiamami",
                "bel ",
                "bellen",
                "telefoon",
                "mobiel",
                "appelez",
                "joindre",
                "celular",
                // "cel" alone is inside "cancel".
                "cel:",
                "cel.",
                "contact",
                "mob",
                "ring",
                "reach me",
            ],
            penalty: COMMERCE,
            whole_token: true,
            shrinks: false,
            reach: Reach::Digits(7),
        },
        Recognizer {
            entity: Entity::Address,
            // A British or Canadian postcode on its own, in the letters each country
            // uses ("LS6 2QT", "SW1A 1AA", "K1A 0B1"): a street or a few houses, where a
            // numeric postcode names a town. Its halves a space apart, so that product
            // codes written together ("M43XL") stay out.
            pattern: r"(?-u:\b)(?:[A-PR-UWYZ][A-HK-Y]?\d[A-HJKPSTUW\d]? \d[ABD-HJLNP-UW-Z]{2}|[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] \d[ABCEGHJ-NPRSTV-Z]\d)(?-u:\b)",
            // "3XL" and "2XS" are sizes, "2TB" and "8GB" capacities ("M2 2TB").
            check: |s| (!["XL", "XS", "GB", "TB"].iter().any(|u| s.ends_with(u))).then_some(0.7),
            context: &["postcode", "post code", "postal code", "zip"],
            penalty: COMMERCE,
            whole_token: true,
            shrinks: false,
            reach: Reach::Postcode,
        },
        Recognizer {
            entity: Entity::DateOfBirth,
            // Day, month and year in numbers (a two-digit year too, "'85" after a
            // month's name: a birth date needs context anyway), the year first, or the
            // month's name in one of the shop's languages ("3rd of March 1985", "5. Mai
            // 1990", "1er mars 1990", "5 de mayo de 1990", "12 maj 1990", "3 lipca 1985",
            // "Mar 3 '85"), or in Japanese and Chinese writing ("1990年4月1日"); German
            // dates with spaces after the dots ("3. 4. 1985") or for separators ("12 03
            // 1985"); eight digits, the year first ("19830719"); a month's abbreviation
            // between day and year ("12MAR1985"); an ISO date with its time.
            pattern: r"(?i)(?-u:\b)\d{1,2}[./-]\d{1,2}[./-](?:(?:19|20)\d{2}|\d{2})(?-u:\b)|(?-u:\b)(?:19|20)\d{2}[./-]\d{1,2}[./-]\d{1,2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?(?-u:\b)|(?-u:\b)\d{1,2} \d{1,2} (?:19|20)\d{2}(?-u:\b)|(?-u:\b)\d{1,2}(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)(?:19|20)?\d{2}(?-u:\b)|(?-u:\b)\d{1,2}\.\s\d{1,2}\.\s?(?:19|20)\d{2}(?-u:\b)|(?-u:\b)\d{1,2}(?:st|nd|rd|th|er|\.|º|°)?(?: of| de)?[ -](?:jan|jän|feb|fév|fev|mar|mär|apr|avr|abr|may|mai|maj|mag|mei|jun|jui|giu|jul|lug|aug|aoû|aou|ago|sep|set|oct|okt|ott|out|nov|dec|déc|dez|dic|ene|gen|sty|lut|kwi|cze|lip|sie|wrz|paź|lis|gru)[a-zà-ÿā-ž]*\.?(?: de|,)?[ -](?:(?:19|20)\d{2}|'?\d{2})(?-u:\b)|(?-u:\b)(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?,? (?:(?:19|20)\d{2}|'?\d{2})(?-u:\b)|(?-u:\b)(?:19|20)\d{2}年\d{1,2}月\d{1,2}日|(?-u:\b)(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?-u:\b)",
            // A date is only a birth date in context.
            check: |_| Some(0.2),
            context: &[
                "born",
                "birth",
                "dob",
                "d.o.b",
                "birthday",
                "bday",
                "b-day",
                "b'day",
                "geboren",
                "geburtsdatum",
                "né le",
                "née le",
                "geburtstag",
                "geb.",
                "naissance",
                "nacimiento",
                "nací",
                "nacido",
                "nacida",
                "nascita",
                "nato il",
                "nata il",
                "compleanno",
                "cumpleaños",
                "cumpleanos",
                "aniversário",
                "aniversario",
                "anniversaire",
                "verjaardag",
                "fødselsdag",
                "födelsedag",
                "urodziny",
                "geboortedatum",
                "geboren op",
                "född",
                "født",
                "fødsels",
                "födelse",
                "syntymä",
                "urodzon",
                "urodzenia",
                "syntynyt",
                "narozen",
                "doğum",
                "nascimento",
                "nasci ",
                "nascido em",
                "nascida em",
                // Abbreviated on forms: "fecha nac.", "data nasc.".
                "nac.",
                "nasc.",
                "生年月日",
                "出生日期",
                "生日",
                "誕生日",
                // As a word: "package" and "message" hold no age.
                " age ",
                "age:",
            ],
            penalty: &[],
            whole_token: true,
            shrinks: false,
            reach: Reach::BirthWord,
        },
    ]
});

#[allow(
    clippy::expect_used,
    reason = "a constant pattern; the unit tests compile it"
)]
static REGEXES: LazyLock<Vec<meta::Regex>> = LazyLock::new(|| {
    RECOGNIZERS
        .iter()
        .map(|r| meta::Regex::new(r.pattern).expect("recognizer pattern compiles"))
        .collect()
});

/// A recognizer's context and commerce words, each set one automaton: a window before a
/// match is read once, not once per word.
struct Words {
    context: Option<AhoCorasick>,
    penalty: Option<AhoCorasick>,
}

#[allow(
    clippy::expect_used,
    reason = "constant word lists; the unit tests build them"
)]
static WORDS: LazyLock<Vec<Words>> = LazyLock::new(|| {
    let automaton = |words: &[&str]| {
        (!words.is_empty()).then(|| AhoCorasick::new(words).expect("context words build"))
    };
    RECOGNIZERS
        .iter()
        .map(|r| Words {
            context: automaton(r.context),
            penalty: automaton(r.penalty),
        })
        .collect()
});

#[allow(
    clippy::expect_used,
    reason = "a constant pattern; the unit tests compile it"
)]
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$|^(?:19|20)?\d{2}[./-]\d{1,2}[./-]\d{1,2}(?:$|[-T ])|\d{1,2}[./-]\d{1,2}[./-](?:19|20)\d{2}")
        .expect("date pattern")
});

/// Postcodes written with a hyphen that no country writes a phone number as: Brazil's
/// CEP (`01310-200`).
#[allow(
    clippy::expect_used,
    reason = "a constant pattern; the unit tests compile it"
)]
static POSTCODE_SHAPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d{5}-\d{3}$").expect("postcode shape"));

/// A phone candidate's score before context: a valid number written with its country
/// code is a phone; one valid in a region, or merely possible, needs less or more
/// context; an extension marks a phone.
fn phone_score(s: &str) -> Option<f64> {
    use validate::PhoneFit;
    // A national number's last group is not one digit after a space ("0612 3345 9");
    // a switchboard's "-0" is ("089 2180-0", "0049 89 2180 0").
    let international = validate::after_international_prefix(s).is_some();
    let last_group = validate::without_extension(s)
        .rsplit(' ')
        .next()
        .unwrap_or_default();
    let stray_digit = !international && last_group.len() == 1 && s.len() > 2;
    if looks_like_date(s) || POSTCODE_SHAPE.is_match(s) || stray_digit {
        return None;
    }
    let fit = validate::phone(s)?;
    let base = match fit {
        PhoneFit::International => 0.85,
        PhoneFit::National => 0.55,
        PhoneFit::Possible if international => 0.45,
        PhoneFit::Possible => 0.3,
    };
    let extension = validate::without_extension(s).len() < s.len();
    Some(if extension { base + 0.2 } else { base })
}

/// Where a phone number's extension written right after `at` ends (`x204`, ` ext. 12`,
/// ` extension 7`), or `at` when none is.
fn extension_end(text: &str, at: usize) -> usize {
    let Some(rest) = text.get(at..) else {
        return at;
    };
    // ", ext. 214" after the number as well as " ext. 214".
    let spaced = rest.strip_prefix(',').unwrap_or(rest);
    let spaced = spaced.strip_prefix(' ').unwrap_or(spaced);
    let lower = spaced
        .get(..spaced.len().min(10))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let Some(marker) = ["extension", "extn", "ext", "x"]
        .into_iter()
        .find(|m| lower.starts_with(m))
    else {
        return at;
    };
    let after = spaced.get(marker.len()..).unwrap_or_default();
    let after_sep = after.trim_start_matches(['.', ' ']);
    let digits = after_sep.bytes().take_while(u8::is_ascii_digit).count();
    let glued = after_sep
        .get(digits..)
        .and_then(|t| t.chars().next())
        .is_some_and(char::is_alphanumeric);
    if (1..=6).contains(&digits) && !glued && after.len() - after_sep.len() <= 2 {
        at + (rest.len() - after_sep.len()) + digits
    } else {
        at
    }
}

/// Whether a phone candidate is a date, or holds one ("12/03/2026 - 15/03/2026").
fn looks_like_date(s: &str) -> bool {
    DATE.is_match(s.trim())
}

/// Whether `text[start..end]` stands alone rather than inside a longer identifier.
fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let joiner = |b: u8| matches!(b, b'-' | b'_' | b'/' | b'.');
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    // Before: not a letter or digit, nor a joiner that follows one.
    let prev = start.checked_sub(1).and_then(at);
    let prev2 = start.checked_sub(2).and_then(at);
    let before_ok = !(alnum(prev) || prev.is_some_and(joiner) && alnum(prev2));
    // After: the same, mirrored.
    let next = at(end);
    let next2 = end.checked_add(1).and_then(at);
    let after_ok = !(alnum(next) || next.is_some_and(joiner) && alnum(next2));
    before_ok && after_ok
}

/// Whether `word` is one of the phone recognizer's cue words, in any case ("celular",
/// "Handy"): the word that introduces a number, never a name.
pub fn phone_cue(word: &str) -> bool {
    let folded = word.trim().to_lowercase();
    RECOGNIZERS
        .iter()
        .filter(|r| r.entity == Entity::Phone)
        .flat_map(|r| r.context.iter())
        .any(|cue| cue.trim() == folded)
}

/// Compiles every pattern now (the first request should not pay for it).
pub fn warm() {
    LazyLock::force(&REGEXES);
    LazyLock::force(&WORDS);
}

/// Every validated match in `text`, with its score after context; `hits` are the text's
/// cue words ([`super::cues::find`]), whose birth words give the birth-date recognizer its
/// reach.
pub fn scan(text: &str, hits: &[Hit], out: &mut Vec<Finding>) {
    let places = Places::of(text);
    for (index, r) in RECOGNIZERS.iter().enumerate() {
        let Some(regex) = REGEXES.get(index) else {
            continue;
        };
        for (from, to) in places.ranges(text, r.reach, hits) {
            scan_range(r, regex, WORDS.get(index), text, from, to, out);
        }
    }
}

/// How far a postcode reaches on each side of a run of its digits ("SW1A 1AA").
const POSTCODE_REACH: usize = 5;
/// The longest birth date as people write it ("21st of September, 1985").
const LONGEST_DATE: usize = 32;
/// How far an IBAN reaches from its start: 34 characters and their spaces.
const LONGEST_IBAN: usize = 48;

/// The birth-date recognizer's context words: the cue pass ([`super::cues`]) finds them
/// with the name and value cues, in one automaton.
pub(super) fn birth_words() -> impl Iterator<Item = &'static str> {
    RECOGNIZERS
        .iter()
        .filter(|r| r.reach == Reach::BirthWord)
        .flat_map(|r| r.context.iter().copied())
}

/// A run of [`NUMERIC`] characters holding a digit: where it is, its digits and dots.
#[derive(Debug, Clone, Copy)]
struct Run {
    from: usize,
    to: usize,
    digits: usize,
    /// An IPv4 address has three.
    dots: usize,
}

/// Where the recognizers that do not search the whole text can match, found in one pass
/// over its bytes.
#[derive(Default, Debug)]
struct Places {
    /// Runs of [`NUMERIC`] characters holding a digit.
    numeric: Vec<Run>,
    /// Where two capital letters are followed by two digits.
    iban_starts: Vec<usize>,
    /// Runs of [`HEX_COLON`] characters holding two colons or more.
    hex_colon: Vec<(usize, usize)>,
    /// Whether the text holds an `@`.
    at_sign: bool,
}

impl Places {
    fn of(text: &str) -> Places {
        let bytes = text.as_bytes();
        let mut places = Places {
            at_sign: memchr::memchr(b'@', bytes).is_some(),
            ..Places::default()
        };
        let mut hex_end = 0;
        let mut i = 0;
        while i < bytes.len() {
            // Most text holds neither digits nor colons: read it a block at a time, and
            // go straight to the block's first digit or colon (the block's mask is built
            // without branches, so the compiler vectorizes it).
            if let Some(block) = bytes.get(i..i + SKIP_BLOCK) {
                let mask = block.iter().enumerate().fold(0u32, |mask, (k, &b)| {
                    mask | (u32::from(b.is_ascii_digit() | (b == b':')) << k)
                });
                if mask == 0 {
                    i += SKIP_BLOCK;
                    continue;
                }
                i += mask.trailing_zeros() as usize;
            }
            match bytes.get(i) {
                Some(b) if b.is_ascii_digit() => {
                    let (from, to) = run_around(bytes, i, &NUMERIC);
                    let run = bytes.get(from..to).unwrap_or_default();
                    let digits = run.iter().filter(|b| b.is_ascii_digit()).count();
                    let dots = run.iter().filter(|&&b| b == b'.').count();
                    places.numeric.push(Run {
                        from,
                        to,
                        digits,
                        dots,
                    });
                    // Capitals end a run of digits, so an IBAN's start is a run's.
                    let two_digits = run
                        .get(..2)
                        .is_some_and(|d| d.iter().all(u8::is_ascii_digit));
                    let capitals = from.checked_sub(2).filter(|&at| {
                        bytes
                            .get(at..from)
                            .is_some_and(|c| c.iter().all(u8::is_ascii_uppercase))
                    });
                    if let Some(at) = capitals.filter(|_| two_digits) {
                        places.iban_starts.push(at);
                    }
                    i = to;
                }
                Some(b':') if i >= hex_end => {
                    let (from, to) = run_around(bytes, i, &HEX_COLON);
                    let colons = bytes
                        .get(from..to)
                        .map_or(0, |run| run.iter().filter(|&&b| b == b':').count());
                    if colons >= 2 {
                        places.hex_colon.push((from, to));
                    }
                    // The digits after the colon are read for their own runs.
                    hex_end = to;
                    i += 1;
                }
                _ => i += 1,
            }
        }
        places
    }

    /// The ranges of `text` a recognizer with `reach` is searched in, sorted and apart.
    fn ranges(&self, text: &str, reach: Reach, hits: &[Hit]) -> Vec<(usize, usize)> {
        let runs = |min_digits: usize, min_dots: usize| {
            self.numeric
                .iter()
                .filter(move |run| run.digits >= min_digits && run.dots >= min_dots)
                .map(|run| (run.from, run.to))
        };
        let end = text.len();
        match reach {
            Reach::Anywhere => vec![(0, end)],
            Reach::AtSign if self.at_sign => vec![(0, end)],
            Reach::AtSign => Vec::new(),
            Reach::Digits(min) => runs(min, 0).collect(),
            Reach::IbanStart => merged(
                text,
                self.iban_starts
                    .iter()
                    .map(|&at| (at, at.saturating_add(LONGEST_IBAN)))
                    .collect(),
            ),
            Reach::Ip => merged(
                text,
                runs(4, 3).chain(self.hex_colon.iter().copied()).collect(),
            ),
            Reach::Postcode => {
                let upper = |i: usize| text.as_bytes().get(i).is_some_and(u8::is_ascii_uppercase);
                merged(
                    text,
                    self.numeric
                        .iter()
                        .filter(|run| {
                            run.digits <= 2
                                && run.from.checked_sub(1).is_some_and(upper)
                                && upper(run.to)
                        })
                        .map(|run| {
                            (
                                run.from.saturating_sub(POSTCODE_REACH),
                                run.to + POSTCODE_REACH,
                            )
                        })
                        .collect(),
                )
            }
            Reach::BirthWord => merged(
                text,
                hits.iter()
                    .filter(|h| h.birth)
                    .map(|h| {
                        (
                            h.start.saturating_sub(CONTEXT_AFTER + LONGEST_DATE),
                            h.end.saturating_add(CONTEXT_BEFORE + LONGEST_DATE),
                        )
                    })
                    .collect(),
            ),
        }
    }
}

/// Bytes skipped at a time where there is neither a digit nor a colon.
const SKIP_BLOCK: usize = 16;

/// The run of `chars` around byte `at` of `bytes`.
fn run_around(bytes: &[u8], at: usize, chars: &[bool; 256]) -> (usize, usize) {
    let inside = |b: &u8| chars.get(usize::from(*b)).copied().unwrap_or(false);
    let from = bytes
        .get(..at)
        .and_then(|head| head.iter().rposition(|b| !inside(b)))
        .map_or(0, |p| p + 1);
    let to = bytes
        .get(at..)
        .and_then(|tail| tail.iter().position(|b| !inside(b)))
        .map_or(bytes.len(), |p| at + p);
    (from, to)
}

/// `ranges` sorted, those that overlap joined, each within `text` and on its character
/// boundaries.
fn merged(text: &str, mut ranges: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    ranges.sort_unstable();
    let mut joined: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (from, to) in ranges {
        let from = text.floor_char_boundary(from.min(text.len()));
        let to = text.ceil_char_boundary(to.min(text.len()));
        match joined.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => joined.push((from, to)),
        }
    }
    joined
}

/// The matches of one recognizer in `text[from..to]` (the whole text around it seen by the
/// pattern's word boundaries).
fn scan_range(
    r: &Recognizer,
    regex: &meta::Regex,
    words: Option<&Words>,
    text: &str,
    mut from: usize,
    to: usize,
    out: &mut Vec<Finding>,
) {
    while from <= to {
        let Some(m) = regex.find(Input::new(text).range(from..to)) else {
            break;
        };
        // Past an empty match by one character; past a shrunk match only by what was
        // kept, so the rest is searched again.
        from = m.end().max(
            m.start()
                + text
                    .get(m.start()..)
                    .and_then(|t| t.chars().next())
                    .map_or(1, char::len_utf8),
        );
        let matched_end = match r.entity {
            Entity::Phone => extension_end(text, m.end()),
            _ => m.end(),
        };
        // A spaced slash may separate the fields of a pasted record ("Li Wei / +86 138
        // 0013 8000 / 88 Nanjing Road"), or an area code ("+49 (0) 89 / 123 456 78"): the
        // number before it is tried when the whole is none.
        let before_slash = || {
            let cut = memchr::memmem::find(text.get(m.range())?.as_bytes(), b" / ")?;
            validated(r, text, m.start(), m.start() + cut)
        };
        let found = validated(r, text, m.start(), matched_end)
            .or_else(|| (r.entity == Entity::Phone).then(before_slash).flatten());
        let Some((end, mut score)) = found else {
            if r.shrinks {
                // The value may start later inside this match (after an order number
                // the pattern ran through): search again from the next group.
                if let Some(next) = text.get(m.range()).and_then(|t| t.find([' ', '-'])) {
                    from = m.start() + next + 1;
                }
            }
            continue;
        };
        from = from.min(end.max(m.start() + 1));
        while !text.is_char_boundary(from) {
            from += 1;
        }
        if !r.context.is_empty() || !r.penalty.is_empty() {
            // The nearer word decides: "order #5 arrived broken, call me on 0191…" is
            // a phone; "call about order 4155552671" is not.
            // A "#" right after a cue numbers it ("Phone #: 415…", "cell # 0770…"), it
            // does not make the value an order's.
            let window = before(text, m.start());
            let context = words.and_then(|w| w.context.as_ref());
            let last =
                |words: Option<&AhoCorasick>| words.and_then(|w| w.find_iter(&window).last());
            let cue = last(context);
            let numbers_cue = |p: &aho_corasick::Match| {
                window.get(p.range()) == Some("#")
                    && cue.is_some_and(|c| {
                        window
                            .get(c.end()..p.start())
                            .is_some_and(|gap| gap.chars().all(|ch| ch == ' ' || ch == ':'))
                    })
            };
            let penalty = last(words.and_then(|w| w.penalty.as_ref()))
                .filter(|p| cue.is_none_or(|c| p.start() > c.start()) && !numbers_cue(p));
            // "number" after a commerce word or an owner of numbers is that word's
            // ("reference number", "customer number"), not a cue.
            let owned = cue
                .filter(|c| window.get(c.range()) == Some("number"))
                .is_some_and(|c| {
                    let word = window
                        .get(..c.start())
                        .and_then(|h| h.trim_end().rsplit(' ').next())
                        .unwrap_or_default();
                    NUMBER_OWNERS.contains(&word) || COMMERCE.iter().any(|w| word.starts_with(w))
                });
            // A person has one birth date: a date with another between it and the cue is
            // some other date ("DOB 4/7/90, ordered 12/10/2026").
            let nearest = |c: &aho_corasick::Match| {
                r.entity != Entity::DateOfBirth
                    || !regex.is_match(window.get(c.end()..).unwrap_or_default())
            };
            let cue = cue.filter(|c| !owned && nearest(c));
            let lowered = owned || penalty.is_some();
            // A cue after the value counts when no commerce word stands before it.
            let cue_after =
                cue.is_none() && !lowered && context.is_some_and(|w| w.is_match(&after(text, end)));
            if cue.is_some() || cue_after {
                score += CONTEXT_BOOST;
            }
            if lowered {
                score -= CONTEXT_PENALTY;
            }
        }
        out.push(Finding {
            entity: r.entity,
            start: m.start(),
            end,
            score: score.clamp(0.0, 1.0),
            source: Source::Pattern,
        });
    }
}

/// Shortest match a shrinking recognizer tries (an IBAN has at least 15 characters).
const MIN_SHRUNK: usize = 12;

/// The end and score of the longest part of `text[start..end]` that passes `r`'s checks
/// (only the whole match, unless `r` shrinks).
fn validated(r: &Recognizer, text: &str, start: usize, end: usize) -> Option<(usize, f64)> {
    let accept = |end: usize| {
        let candidate = text.get(start..end)?;
        if r.whole_token && !stands_alone(text, start, end) {
            return None;
        }
        (r.check)(candidate).map(|score| (end, score))
    };
    if let Some(found) = accept(end) {
        return Some(found);
    }
    if !r.shrinks {
        return None;
    }
    let matched = text.get(start..end)?;
    matched
        .char_indices()
        .rev()
        .map(|(i, _)| i)
        .filter(|&i| i >= MIN_SHRUNK)
        .filter(|&i| {
            matched
                .get(..i)
                .and_then(|m| m.chars().next_back())
                .is_some_and(|c| c.is_ascii_alphanumeric())
        })
        .find_map(|i| accept(start + i))
}

/// The lowercased text just before byte `start` of `text`. Only the window itself is
/// lowercased: lowercasing changes the byte length of some characters (`İ`, `ẞ`), so no
/// offset of `text` is ever used on a lowercased copy.
fn before(text: &str, start: usize) -> String {
    let start = text.floor_char_boundary(start.min(text.len()));
    let from = text.floor_char_boundary(start.saturating_sub(CONTEXT_BEFORE));
    text.get(from..start)
        .map(str::to_lowercase)
        .unwrap_or_default()
}

/// The lowercased text of the sentence just after byte `end` of `text`, at most
/// [`CONTEXT_AFTER`] bytes of it (the same offset rule as [`before`]).
fn after(text: &str, end: usize) -> String {
    let end = text.floor_char_boundary(end.min(text.len()));
    let to = text.floor_char_boundary(end.saturating_add(CONTEXT_AFTER).min(text.len()));
    let window = text.get(end..to).unwrap_or_default();
    let bytes = window.as_bytes();
    let sentence_end = (0..bytes.len()).find(|&i| match bytes.get(i) {
        Some(b'\n') => true,
        Some(b'.' | b'!' | b'?') => matches!(bytes.get(i + 1), None | Some(b' ' | b'\n')),
        _ => false,
    });
    let sentence = sentence_end.map_or(window, |i| window.get(..i).unwrap_or(window));
    sentence.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(Entity, String, f64)> {
        let mut out = Vec::new();
        scan(text, &super::super::cues::find(text), &mut out);
        out.into_iter()
            .map(|f| (f.entity, text[f.start..f.end].to_string(), f.score))
            .collect()
    }

    /// The values of one kind found in `text`.
    fn values(text: &str, entity: Entity) -> Vec<String> {
        found(text)
            .into_iter()
            .filter(|h| h.0 == entity)
            .map(|h| h.1)
            .collect()
    }

    fn kinds(text: &str, min: f64) -> Vec<Entity> {
        found(text)
            .into_iter()
            .filter(|(_, _, s)| *s >= min)
            .map(|(e, _, _)| e)
            .collect()
    }

    #[test]
    fn finds_identifiers_and_checks_them() {
        let hits = found(
            "Mail jane.doe@example.co.uk, card 4111-1111-1111-1111, IBAN DE89 3704 0044 0532 0130 00.",
        );
        let entities: Vec<Entity> = hits.iter().map(|h| h.0).collect();
        assert!(entities.contains(&Entity::Email));
        assert!(entities.contains(&Entity::CreditCard));
        assert!(entities.contains(&Entity::Iban));
        assert!(
            found("card 4111-1111-1111-1112")
                .iter()
                .all(|h| h.0 != Entity::CreditCard)
        );
    }

    #[test]
    fn secrets_of_several_kinds() {
        for s in [
            "AKIAIOSFODNN7EXAMPLE",
            "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ] {
            assert_eq!(
                kinds(&format!("key: {s}"), 0.9),
                vec![Entity::Secret],
                "{s}"
            );
        }
    }

    #[test]
    fn a_spaced_slash_ends_a_phone_unless_it_is_the_area_code_s() {
        assert_eq!(
            values(
                "Li Wei / +86 138 0013 8000 / 88 Nanjing Road",
                Entity::Phone
            ),
            ["+86 138 0013 8000"]
        );
        assert_eq!(
            values("rufen Sie an: +49 (0) 89 / 123 456 78", Entity::Phone),
            ["+49 (0) 89 / 123 456 78"]
        );
    }

    #[test]
    fn extensions_belong_to_the_number() {
        for (text, want) in [
            ("call me: 612-555-0187x204 (desk)", "612-555-0187x204"),
            (
                "ring (646) 555-3890 ext. 12 today",
                "(646) 555-3890 ext. 12",
            ),
            (
                "tel +1 646 555 0175 extension 9",
                "+1 646 555 0175 extension 9",
            ),
        ] {
            assert_eq!(values(text, Entity::Phone), [want], "{text}");
        }
        assert_eq!(extension_end("415 555 2671 xylophone", 12), 12);
        assert_eq!(
            values("office +1 (212) 555-0100, ext. 214 after 9", Entity::Phone),
            ["+1 (212) 555-0100, ext. 214"],
            "an extension after a comma"
        );
    }

    #[test]
    fn the_north_american_international_prefix_and_postcodes_with_a_hyphen() {
        assert_eq!(
            values("from the us dial 011 33 1 42 68 53 00", Entity::Phone),
            ["011 33 1 42 68 53 00"]
        );
        assert!(
            kinds("Delhi office 011 2345 6789", 0.5).contains(&Entity::Phone),
            "a Delhi number starts with 011 too"
        );
        assert!(
            !kinds("São Paulo, SP 01310-200", 0.0).contains(&Entity::Phone),
            "a Brazilian CEP"
        );
    }

    #[test]
    fn an_apostrophe_in_an_email_address() {
        assert_eq!(
            values("reply to j.o'connor@eircom.net please", Entity::Email),
            ["j.o'connor@eircom.net"]
        );
    }

    #[test]
    fn birth_dates_in_the_ways_people_write_them() {
        for (text, want) in [
            ("geboren am 12. März 1985, falls", "12. März 1985"),
            ("nací el 5 de mayo de 1990", "5 de mayo de 1990"),
            ("nata il 7 giugno 1992 a Bologna", "7 giugno 1992"),
            ("ma date de naissance : 14 juillet 1979", "14 juillet 1979"),
            ("my date of birth is 3rd of March 1985", "3rd of March 1985"),
            ("DOB: 1985/03/03", "1985/03/03"),
            ("d.o.b. 03-Mar-1985", "03-Mar-1985"),
            ("born 11/02/86, if you need it", "11/02/86"),
            ("DOB 3 Mar 85 for the form", "3 Mar 85"),
            ("birthday: march 3rd '85", "march 3rd '85"),
            ("生年月日 1990年4月1日", "1990年4月1日"),
            ("fecha nac. 11/11/1983", "11/11/1983"),
            ("b-day is Jan 5 1979", "Jan 5 1979"),
            ("née le 1er mars 1984 à Lyon", "1er mars 1984"),
            ("Geburtsdatum: 3. 4. 1985", "3. 4. 1985"),
            ("geboren am 7. Jänner 1990", "7. Jänner 1990"),
            ("född 12 maj 1990 i Malmö", "12 maj 1990"),
            ("data urodzenia: 3 września 1985", "3 września 1985"),
            ("nato il 1° aprile 1970", "1° aprile 1970"),
            ("dob:19830719", "19830719"),
            ("fødselsdato 12.06.1981", "12.06.1981"),
            ("DOB 12 03 1985", "12 03 1985"),
            ("DOB 12MAR1985", "12MAR1985"),
            ("date of birth 1985-03-12T00:00:00Z", "1985-03-12T00:00:00Z"),
            ("cumpleaños 12 de marzo de 1985", "12 de marzo de 1985"),
            ("verjaardag 12-03-1985", "12-03-1985"),
        ] {
            assert_eq!(values(text, Entity::DateOfBirth), [want], "{text}");
        }
        assert!(
            !kinds("delivered 5 de mayo de 2026", 0.5).contains(&Entity::DateOfBirth),
            "a date without context is not a birth date"
        );
        let births: Vec<String> = found("my DOB is 4/7/90 and the order date was 12/10/2026")
            .into_iter()
            .filter(|(entity, _, score)| *entity == Entity::DateOfBirth && *score >= 0.5)
            .map(|(_, value, _)| value)
            .collect();
        assert_eq!(births, ["4/7/90"], "the cue's date is the nearest one");
    }

    #[test]
    fn british_and_canadian_postcodes_on_their_own_are_addresses() {
        for (text, want) in [
            ("Customer: LS6 2QT", "LS6 2QT"),
            ("it's SW1A 1AA, the buzzer is broken", "SW1A 1AA"),
            ("mine is K1A 0B1 if that helps", "K1A 0B1"),
        ] {
            assert_eq!(values(text, Entity::Address), [want], "{text}");
        }
        for text in [
            "the M2 2TB drive and the A4 5GB plan",
            "in size L4 3XL please",
            "order LS62QT shipped",
            "the SKU LS6 2QT is out of stock",
        ] {
            assert!(
                !kinds(text, 0.5).contains(&Entity::Address),
                "not a postcode: {text}"
            );
        }
    }

    #[test]
    fn german_area_codes_after_a_slash_and_dates_are_not_phones() {
        assert!(kinds("Tel. 030/12345678 ab 18 Uhr", 0.5).contains(&Entity::Phone));
        assert!(kinds("Handy 0171/1234567, bitte", 0.5).contains(&Entity::Phone));
        assert!(
            kinds("txt me +447700900456 when it ships", 0.5).contains(&Entity::Phone),
            "a number only possible, after a texting cue"
        );
        assert!(
            !kinds("call me 12/03/2026 - 15/03/2026", 0.5).contains(&Entity::Phone),
            "a range of dates"
        );
    }

    #[test]
    fn the_skipping_pass_finds_what_a_byte_by_byte_reading_finds() {
        // Every byte read: the runs of each table that hold a digit or two colons.
        fn runs(
            text: &str,
            chars: &[bool; 256],
            keep: impl Fn(&[u8]) -> bool,
        ) -> Vec<(usize, usize)> {
            let mut found = Vec::new();
            let mut from = 0;
            for i in 0..=text.len() {
                let inside = text
                    .as_bytes()
                    .get(i)
                    .is_some_and(|&b| chars[usize::from(b)]);
                if !inside {
                    if keep(&text.as_bytes()[from..i]) {
                        found.push((from, i));
                    }
                    from = i + 1;
                }
            }
            found
        }
        for text in [
            "Phone:4155552671, at 18:30:00 or fe80::1:2; IBAN DE89 3704 0044 0532 0130 00",
            "a long line of text without anything in it at all, then 7 at the very end 12",
            "x:y::z 0:0 ::1 €129.99 (646) 555-3890 NL91ABNA0417164300 GB82 WEST 1234",
            "",
            "9",
        ] {
            let places = Places::of(text);
            let numeric: Vec<(usize, usize)> =
                places.numeric.iter().map(|r| (r.from, r.to)).collect();
            let digit = |run: &[u8]| run.iter().any(u8::is_ascii_digit);
            assert_eq!(numeric, runs(text, &NUMERIC, digit), "{text}");
            let colons = |run: &[u8]| run.iter().filter(|&&b| b == b':').count() >= 2;
            assert_eq!(places.hex_colon, runs(text, &HEX_COLON, colons), "{text}");
            let ibans: Vec<usize> = (0..text.len().saturating_sub(3))
                .filter(|&i| {
                    let b = &text.as_bytes()[i..i + 4];
                    b[0].is_ascii_uppercase()
                        && b[1].is_ascii_uppercase()
                        && b[2].is_ascii_digit()
                        && b[3].is_ascii_digit()
                })
                .collect();
            assert_eq!(places.iban_starts, ibans, "{text}");
        }
    }

    #[test]
    fn patterns_are_searched_only_where_they_can_match() {
        let text = "size 42, call (646) 555-3890 or 0171/1234567; 3 units";
        let places = Places::of(text);
        let runs: Vec<&str> = places
            .ranges(text, Reach::Digits(7), &[])
            .into_iter()
            .map(|(s, e)| &text[s..e])
            .collect();
        assert_eq!(runs, [" (646) 555-3890 ", " 0171/1234567"]);
        assert!(Places::of("no digits here").numeric.is_empty());
        assert_eq!(
            Places::of("+44 20 7946 0958").ranges("+44 20 7946 0958", Reach::Digits(7), &[]),
            [(0, 16)]
        );
        let text = "IBAN DE89 3704 0044 0532 0130 00, host fe80::1 at 18:30";
        let places = Places::of(text);
        assert_eq!(places.iban_starts, [5]);
        let hex: Vec<&str> = places.hex_colon.iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(hex, ["fe80::1"], "one colon is not an IPv6 address");
        assert!(
            Places::of("the order shipped")
                .ranges(
                    "the order shipped",
                    Reach::BirthWord,
                    &super::super::cues::find("the order shipped")
                )
                .is_empty(),
            "no birth word, no birth date search"
        );
        let text = "Geburtstag: 12. März 1985";
        assert_eq!(
            Places::of(text).ranges(text, Reach::BirthWord, &super::super::cues::find(text)),
            [(0, text.len())]
        );
        let text = "version 10.2.1 of the app, 4 items";
        assert!(
            Places::of(text).ranges(text, Reach::Ip, &[]).is_empty(),
            "an IPv4 address has three dots"
        );
        let text = "write to me, not the shop";
        assert!(
            Places::of(text).ranges(text, Reach::AtSign, &[]).is_empty(),
            "no @, no e-mail address"
        );
        let text = "write to me@example.com";
        assert_eq!(
            Places::of(text).ranges(text, Reach::AtSign, &[]),
            [(0, text.len())]
        );
    }

    #[test]
    fn context_raises_and_commerce_lowers() {
        assert!(kinds("call me at (415) 555-2671", 0.5).contains(&Entity::Phone));
        assert!(!kinds("order 4155552671 shipped", 0.5).contains(&Entity::Phone));
        assert!(!kinds("call about order 4155552671", 0.5).contains(&Entity::Phone));
        // A commerce word before "number" makes the number its own.
        assert!(
            !kinds("reference number 020 7946 4411 on the letter", 0.5).contains(&Entity::Phone)
        );
        assert!(kinds("phone number 020 7946 4411", 0.5).contains(&Entity::Phone));
        assert!(!kinds("ticket 44 1200 9981 still open", 0.5).contains(&Entity::Phone));
        assert!(!kinds("confirmation 2026-11-03-0945", 0.5).contains(&Entity::Phone));
        assert!(!kinds("the code on the box is 0612 3345 9", 0.5).contains(&Entity::Phone));
        assert!(kinds("Phone #: 415-555-2671", 0.5).contains(&Entity::Phone));
        assert!(kinds("cell # 07700 900123", 0.5).contains(&Entity::Phone));
        assert!(!kinds("call about #4155552671", 0.5).contains(&Entity::Phone));
        assert!(
            kinds("order #520323 never arrived, call me on 0191 4960209", 0.5)
                .contains(&Entity::Phone),
            "the cue is nearer than the order"
        );
        assert!(kinds("born 12.03.1987 in Lyon", 0.5).contains(&Entity::DateOfBirth));
        assert!(!kinds("delivered 12.03.2026 to Lyon", 0.5).contains(&Entity::DateOfBirth));
        assert!(kinds("my SSN is 536-22-1234", 0.5).contains(&Entity::UsSsn));
    }

    #[test]
    fn a_cue_after_the_value_counts_within_its_sentence() {
        assert!(kinds("14.02.1979 is my date of birth", 0.5).contains(&Entity::DateOfBirth));
        assert!(kinds("09/21/1994 (dob) to verify", 0.5).contains(&Entity::DateOfBirth));
        assert!(kinds("0161 496 0018 (mobile), or the neighbour", 0.5).contains(&Entity::Phone));
        assert!(
            !kinds("delivered 12.03.2026. Born in Lyon, I", 0.5).contains(&Entity::DateOfBirth),
            "the cue is in the next sentence"
        );
        assert!(
            !kinds("order 4155552671, call me", 0.5).contains(&Entity::Phone),
            "a commerce word before the value outweighs a cue after it"
        );
    }

    #[test]
    fn characters_whose_lowercase_changes_length_keep_context_windows_in_bounds() {
        // `İ` grows and `ẞ` shrinks when lowercased: the total length stays the same but
        // every offset between them moves.
        for prefix in ["İẞ", "ẞİ", "İİİ", "ẞẞ", "Σ", "ǅ"] {
            for pad in 0..50 {
                let text = format!(
                    "{prefix}{} ip 10.0.0.7, call +1 415 555 2671",
                    "a".repeat(pad)
                );
                let hits = found(&text);
                assert!(hits.iter().any(|h| h.0 == Entity::IpAddress), "{text}");
            }
        }
    }

    #[test]
    fn values_followed_by_more_of_their_alphabet_are_found() {
        let ibans = |text: &str| -> Vec<String> {
            found(text)
                .into_iter()
                .filter(|h| h.0 == Entity::Iban)
                .map(|h| h.1)
                .collect()
        };
        assert_eq!(
            ibans("# DE89 3704 0044 0532 0130 00 A"),
            ["DE89 3704 0044 0532 0130 00"]
        );
        assert_eq!(
            ibans("DE89 3704 0044 0532 0130 00 DE89 3704 0044 0532 0130 00"),
            ["DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00"],
            "the rest of a shrunk match is searched again"
        );
        let cards = |text: &str| -> Vec<String> {
            found(text)
                .into_iter()
                .filter(|h| h.0 == Entity::CreditCard)
                .map(|h| h.1)
                .collect()
        };
        assert_eq!(
            cards("ORD-2026-000123 4111 1111 1111 1111"),
            ["4111 1111 1111 1111"],
            "a card after an order number the pattern ran into"
        );
        let card = found("pay 4111 1111 1111 1111 2 pairs");
        assert!(
            card.iter()
                .any(|h| h.0 == Entity::CreditCard && h.1 == "4111 1111 1111 1111"),
            "{card:?}"
        );
    }

    #[test]
    fn a_card_number_in_a_sentence_about_an_order_is_still_a_card() {
        for text in [
            "I paid for my order with 4111 1111 1111 1111",
            "# 4111 1111 1111 1111",
            "order ref 5500-0000-0000-0004 failed",
        ] {
            assert!(kinds(text, 0.5).contains(&Entity::CreditCard), "{text}");
        }
    }

    #[test]
    fn commerce_text_has_no_findings() {
        let text = "SKU-88231-XL, size 42, EUR 129.99, order ORD-2026-000123, 3 in stock in Rotterdam; Alpine 40L backpack v2.1.0";
        assert_eq!(kinds(text, 0.5), Vec::<Entity>::new(), "{:?}", found(text));
    }
}
