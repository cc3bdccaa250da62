//! Values that only the words before them make personal: a password after "password:",
//! "Passwort", "mot de passe"; a PIN after "PIN"; a birth year after "born in", "year of
//! birth", "Geburtsjahr"; a street's postcode after "postcode" ("SE22 8HB"). The cues
//! are found with the name cues and the birth words (`cues`), in one pass over the
//! text; the value is the token right after a cue and its separator (":", "=", "is",
//! "ist"…), kept only when it has the shape its cue asks for ("password reset link"
//! holds no password).

use super::{Finding, Source};
use crate::config::Entity;

/// What a cue says the next token is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value {
    /// A password: digits or symbols in it, so that a word is not one.
    Password,
    /// A word that names a password only sometimes ("pass", "boarding pass"): the token
    /// must look like a password — letters, digits and a symbol.
    WeakPassword,
    /// Four digits.
    Pin,
    /// A year of the last and this century.
    BirthYear,
    /// A postcode that names a street or a few houses: British, Canadian or Dutch.
    Postcode,
}

/// Value cues, matched in any ASCII case.
pub(super) const CUES: &[(&str, Value)] = &[
    ("password", Value::Password),
    ("passwort", Value::Password),
    ("passwd", Value::Password),
    ("pwd", Value::Password),
    ("passcode", Value::Password),
    ("kennwort", Value::Password),
    ("mot de passe", Value::Password),
    ("contraseña", Value::Password),
    ("contrasena", Value::Password),
    ("senha", Value::Password),
    ("wachtwoord", Value::Password),
    ("pass", Value::WeakPassword),
    ("pin", Value::Pin),
    ("pin code", Value::Pin),
    ("code pin", Value::Pin),
    ("born in", Value::BirthYear),
    ("born", Value::BirthYear),
    ("year of birth", Value::BirthYear),
    ("birth year", Value::BirthYear),
    ("geburtsjahr", Value::BirthYear),
    ("jahrgang", Value::BirthYear),
    ("geboren", Value::BirthYear),
    ("année de naissance", Value::BirthYear),
    ("né en", Value::BirthYear),
    ("née en", Value::BirthYear),
    ("año de nacimiento", Value::BirthYear),
    ("nacido en", Value::BirthYear),
    ("nacida en", Value::BirthYear),
    ("anno di nascita", Value::BirthYear),
    ("nato nel", Value::BirthYear),
    ("nata nel", Value::BirthYear),
    ("geboortejaar", Value::BirthYear),
    ("geboren in", Value::BirthYear),
    ("ano de nascimento", Value::BirthYear),
    ("nascido em", Value::BirthYear),
    ("nascida em", Value::BirthYear),
    ("postcode", Value::Postcode),
    ("post code", Value::Postcode),
    ("postal code", Value::Postcode),
];

/// Words between a cue and its value.
const LINKS: &[&str] = &["is", "ist", "est", "es", "é", "was", "in", "im", "en"];

/// Scores: a cue and a value of the right shape.
const PASSWORD: f64 = 0.9;
const PIN: f64 = 0.8;
const BIRTH_YEAR: f64 = 0.8;
const POSTCODE: f64 = 0.8;

/// The value after the value cue `index` of [`CUES`], which ends at byte `end` of `text`
/// (the cue pass has checked that no letter or digit runs into its start).
pub(super) fn value_after(text: &str, index: usize, end: usize, out: &mut Vec<Finding>) {
    let Some(&(_, value)) = CUES.get(index) else {
        return;
    };
    let after = text.get(end..).and_then(|t| t.chars().next());
    if after.is_some_and(char::is_alphanumeric) {
        return; // "passwords", "pinned"
    }
    let Some((mut start, end, separated)) = token_after(text, end) else {
        return;
    };
    let token = text.get(start..end).unwrap_or_default();
    let found = match value {
        Value::Password => password(token).then_some((Entity::Secret, PASSWORD, end)),
        Value::WeakPassword => (separated && password(token) || strong(token)).then_some((
            Entity::Secret,
            PASSWORD,
            end,
        )),
        Value::Pin => pin(token).then_some((Entity::Secret, PIN, end)),
        Value::BirthYear if birth_year(token) => Some((Entity::DateOfBirth, BIRTH_YEAR, end)),
        Value::BirthYear if short_year(text, start, token) => {
            // The apostrophe is the year's: "born in '88".
            let apostrophe = text.get(..start).and_then(|h| h.chars().next_back());
            start -= apostrophe.map_or(0, char::len_utf8);
            Some((Entity::DateOfBirth, BIRTH_YEAR, end))
        }
        Value::BirthYear => None,
        // A postcode is two tokens: its second half is read here.
        Value::Postcode => {
            postcode_end(text, start, end).map(|end| (Entity::Address, POSTCODE, end))
        }
    };
    if let Some((entity, score, end)) = found {
        out.push(Finding {
            entity,
            start,
            end,
            score,
            source: Source::Pattern,
        });
    }
}

/// The token after a cue ending at `from`, past spaces, one separator (":", "=", a dash)
/// and one linking word ("is"), without quotes around it or the punctuation that ends a
/// sentence after it: (start, end, whether a ":" or "=" came first).
fn token_after(text: &str, from: usize) -> Option<(usize, usize, bool)> {
    let mut at = from;
    let skip_spaces = |at: usize| {
        let rest = text.get(at..).unwrap_or_default();
        at + (rest.len() - rest.trim_start().len())
    };
    at = skip_spaces(at);
    let rest = text.get(at..)?;
    let separated = rest.starts_with([':', '=']);
    if rest.starts_with([':', '=', '-', '–']) {
        at = skip_spaces(at + rest.chars().next().map_or(1, char::len_utf8));
    }
    let word_end = |at: usize| {
        let rest = text.get(at..).unwrap_or_default();
        at + rest.find(char::is_whitespace).unwrap_or(rest.len())
    };
    let end = word_end(at);
    let first = text.get(at..end)?;
    if LINKS.contains(&first.to_lowercase().as_str()) {
        at = skip_spaces(end);
    }
    let end = word_end(at);
    let raw = text.get(at..end)?;
    let quotes: &[char] = &['"', '\'', '`', '“', '”', '‘', '’', '«', '»'];
    let trimmed_start = raw.trim_start_matches(quotes);
    let start = at + (raw.len() - trimmed_start.len());
    let token = trimmed_start
        .trim_end_matches(quotes)
        .trim_end_matches(['.', ',', ';', ')'])
        .trim_end_matches(quotes);
    (!token.is_empty()).then_some((start, start + token.len(), separated))
}

/// A password as people paste one: 4 to 64 characters, with a letter or digit, and a
/// digit or a symbol before its last character (a word alone is what is said about a
/// password: "reset", "expired", "wrong!"); a masked one ("********") and an aside
/// ("(min. 8 characters)") are no value.
fn password(token: &str) -> bool {
    let n = token.chars().count();
    let core = token.trim_end_matches(['!', '?']);
    (4..=64).contains(&n)
        && !token.starts_with(['(', '['])
        && token.chars().any(char::is_alphanumeric)
        && core
            .chars()
            .any(|c| c.is_ascii_digit() || !c.is_alphanumeric())
}

/// A password that no other word is: letters, digits and a symbol, 8 characters or more.
fn strong(token: &str) -> bool {
    token.chars().count() >= 8
        && token.chars().any(char::is_alphabetic)
        && token.chars().any(|c| c.is_ascii_digit())
        && token.chars().any(|c| !c.is_alphanumeric())
}

/// A PIN: four digits. (Six digits after "PIN code" are an Indian postcode.)
fn pin(token: &str) -> bool {
    token.len() == 4 && token.bytes().all(|b| b.is_ascii_digit())
}

/// Where a postcode that names a street ends when its first half is `text[start..end]`: a
/// British ("SE22 8HB"), Canadian ("H3G 1P1") or Dutch ("1015 CJ") one
/// (`address::street_postcode`), its halves a space apart. Numeric postcodes name a town
/// or a district, not a street.
fn postcode_end(text: &str, start: usize, end: usize) -> Option<usize> {
    let second = text
        .get(end..)?
        .strip_prefix(' ')?
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | ';' | ')' | '!' | '?'))
        .next()?;
    let whole_end = end + 1 + second.len();
    super::address::street_postcode(text.get(start..whole_end)?).then_some(whole_end)
}

/// Two digits after an apostrophe: a year written short ("'88", "’92").
fn short_year(text: &str, start: usize, token: &str) -> bool {
    token.len() == 2
        && token.bytes().all(|b| b.is_ascii_digit())
        && text
            .get(..start)
            .is_some_and(|head| head.ends_with(['\'', '’']))
}

/// A birth year: 1900 to 2099, four digits on their own.
fn birth_year(token: &str) -> bool {
    token.len() == 4
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token.starts_with("19") || token.starts_with("20"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values the cue pass (`names::scan`) finds in `text`.
    fn values(text: &str) -> Vec<(Entity, &str)> {
        let mut out = Vec::new();
        super::super::names::scan(text, &super::super::cues::find(text), &mut out);
        out.iter()
            .filter(|f| f.entity != Entity::Person)
            .map(|f| (f.entity, text.get(f.start..f.end).unwrap_or_default()))
            .collect()
    }

    #[test]
    fn passwords_after_their_cues_in_five_languages() {
        for (text, value) in [
            (
                "my password is Tr0ub4dor&3 but it says wrong",
                "Tr0ub4dor&3",
            ),
            ("pwd: kX9#mQ2!vL pls reset", "kX9#mQ2!vL"),
            ("Passwort: Sommer2025! funktioniert nicht", "Sommer2025!"),
            ("mot de passe : Azerty123$", "Azerty123$"),
            (
                "contraseña \"Perro.Verde.42\" no funciona",
                "Perro.Verde.42",
            ),
            ("login k@example.com pass Kat!a1987", "Kat!a1987"),
            ("PASSWORD=hunter22.", "hunter22"),
        ] {
            assert_eq!(values(text), [(Entity::Secret, value)], "{text}");
        }
    }

    #[test]
    fn what_is_said_about_a_password_is_no_password() {
        for text in [
            "password reset link expired twice, can you send another?",
            "the wifi password in the store is on the sign",
            "my passwords are all different",
            "password: ********",
            "boarding pass AB1234 is attached",
            "we will pass 2-3 parcels to the courier",
            "bypass: 1234",
            "the password is wrong! twice now",
            "password (min. 8 characters) is too short",
        ] {
            assert_eq!(values(text), [], "{text}");
        }
    }

    #[test]
    fn pins_are_four_digits_and_a_pin_code_of_six_is_a_postcode() {
        assert_eq!(
            values("pin 4921 for the gift card"),
            [(Entity::Secret, "4921")]
        );
        assert_eq!(values("PIN code: 560038, Bengaluru"), []);
        assert_eq!(values("pinned 4921"), []);
    }

    #[test]
    fn fine_grained_postcodes_after_their_cues() {
        for (text, value) in [
            ("verification: DOB on file, postcode SE22 8HB", "SE22 8HB"),
            ("post code: M1 1AE, thanks", "M1 1AE"),
            ("postal code H3G 1P1", "H3G 1P1"),
            ("postcode 1015 CJ Amsterdam", "1015 CJ"),
        ] {
            assert_eq!(values(text), [(Entity::Address, value)], "{text}");
        }
        assert_eq!(values("postcode 10115 Berlin"), []);
        assert_eq!(values("postcode lookup fails on the site"), []);
        assert_eq!(values("postcodes SE22 8HB"), []);
    }

    #[test]
    fn birth_years_after_their_cues() {
        for (text, value) in [
            ("born in 1974, so the senior discount applies?", "1974"),
            ("year of birth 1990", "1990"),
            ("Geburtsjahr: 1968", "1968"),
            ("année de naissance 1985", "1985"),
            ("Jahrgang 1959", "1959"),
            ("born in '88 so definitely over 18", "'88"),
        ] {
            assert_eq!(values(text), [(Entity::DateOfBirth, value)], "{text}");
        }
        assert_eq!(values("born in London, raised in Leeds"), []);
        assert_eq!(values("the order was born out of frustration in 2026s"), []);
        assert_eq!(values("unborn 1990"), []);
    }
}
