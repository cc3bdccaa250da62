//! Checksums and structure checks that turn a pattern match into a finding: Luhn for
//! cards, ISO 7064 mod-97 for IBANs, SSA rules for US SSNs, address parsing for IPs,
//! libphonenumber's metadata (the `phonenumber` crate) for phone numbers.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Luhn checksum over the digits of `s` (separators ignored), with a known card prefix
/// and length.
pub fn credit_card(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let prefix = |n: usize| digits.iter().take(n).fold(0u32, |acc, d| acc * 10 + d);
    let known = digits.first() == Some(&4)
        || (51..=55).contains(&prefix(2))
        || (2221..=2720).contains(&prefix(4))
        || matches!(prefix(2), 34 | 37 | 36 | 38 | 65)
        || prefix(4) == 6011
        || (3528..=3589).contains(&prefix(4))
        || (300..=305).contains(&prefix(3));
    known && luhn(&digits)
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 13616 IBAN: country letters, check digits, mod-97 == 1, plausible length.
pub fn iban(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) || !compact.is_ascii() {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u64 = 0;
    for c in tail.chars().chain(head.chars()) {
        let value = match c {
            '0'..='9' => c as u64 - '0' as u64,
            'A'..='Z' => c as u64 - 'A' as u64 + 10,
            _ => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

/// US SSN `AAA-GG-SSSS`: area not 000, 666 or 900–999; group and serial not zero.
pub fn us_ssn(s: &str) -> bool {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 9 {
        return false;
    }
    let number = |range: std::ops::Range<usize>| -> u32 {
        digits.get(range).and_then(|d| d.parse().ok()).unwrap_or(0)
    };
    let (area, group, serial) = (number(0..3), number(3..5), number(5..9));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

pub fn ipv4(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok()
}

pub fn ipv6(s: &str) -> bool {
    s.contains("::") || s.matches(':').count() >= 4 && s.parse::<Ipv6Addr>().is_ok()
}

/// Regions phone numbers without a country code are tried in (US stands for the North
/// American plan, Canada included).
const REGIONS: [phonenumber::country::Id; 11] = {
    use phonenumber::country::Id::*;
    [US, GB, IN, DE, FR, ES, IT, NL, BR, AU, JP]
};

/// How well a phone candidate fits libphonenumber's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneFit {
    /// Valid, written with its country code (`+…`, `00…`, `011 …`).
    International,
    /// Valid in one of [`REGIONS`] as written.
    National,
    /// Parses, with a plausible length, but the metadata does not know its range (new
    /// ranges, fictional 555 numbers, typos): a phone only with a cue.
    Possible,
}

/// How `s` fits as a phone number, or `None` when it cannot be one. An extension
/// (`x204`, `ext. 12`) is not part of the number.
pub fn phone(s: &str) -> Option<PhoneFit> {
    let number = without_extension(s).trim();
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return None;
    }
    if let Some(normalized) = with_plus(number) {
        // A number libphonenumber cannot place (an unknown area code) is still possible
        // with a country code: digits after a `+` are dialled as a phone number.
        return match phonenumber::parse(None, &normalized) {
            Ok(parsed) if phonenumber::is_valid(&parsed) => Some(PhoneFit::International),
            Ok(parsed) => plausible(&parsed).then_some(PhoneFit::Possible),
            Err(_) => (digits >= 8).then_some(PhoneFit::Possible),
        };
    }
    // North America's international prefix ("011 33 1 42 68 53 00"), when what follows
    // is a valid number; otherwise a national number that starts with 011 (Delhi).
    if let Some(rest) = number
        .strip_prefix("011")
        .filter(|r| r.starts_with([' ', '-']))
        && let Ok(parsed) =
            phonenumber::parse(None, format!("+{}", rest.trim_start_matches([' ', '-'])))
        && phonenumber::is_valid(&parsed)
    {
        return Some(PhoneFit::International);
    }
    let mut possible = false;
    for region in REGIONS {
        if let Ok(parsed) = phonenumber::parse(Some(region), number) {
            if phonenumber::is_valid(&parsed) {
                return Some(PhoneFit::National);
            }
            possible |= plausible(&parsed);
        }
    }
    possible.then_some(PhoneFit::Possible)
}

/// What follows the international prefix `number` starts with (`+…`, `00…`), or `None`
/// when it starts with none.
pub fn after_international_prefix(number: &str) -> Option<&str> {
    let number = number.trim_start();
    number
        .strip_prefix("00")
        .or_else(|| number.strip_prefix('+'))
}

/// `number` with a `+` for its international prefix, without the national trunk prefix
/// in brackets (`+44 (0) 20…`); `None` when it has no international prefix.
fn with_plus(number: &str) -> Option<String> {
    after_international_prefix(number).map(|rest| format!("+{rest}").replace("(0)", ""))
}

/// A national number of a length some country uses.
fn plausible(number: &phonenumber::PhoneNumber) -> bool {
    (6..=12).contains(&number.national().to_string().len())
}

/// `s` without a trailing extension (`x204`, `ext. 12`, `extension 7`).
pub fn without_extension(s: &str) -> &str {
    // Every marker holds an "x".
    if memchr::memchr2(b'x', b'X', s.as_bytes()).is_none() {
        return s;
    }
    let lower = s.to_ascii_lowercase();
    for marker in ["extension", "extn", "ext", "x"] {
        if let Some(at) = lower.rfind(marker) {
            let tail = lower.get(at + marker.len()..).unwrap_or_default();
            let tail = tail.trim_start_matches(['.', ' ']);
            if !tail.is_empty() && tail.chars().all(|c| c.is_ascii_digit()) {
                return s.get(..at).unwrap_or(s).trim_end().trim_end_matches(',');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_need_luhn_and_a_known_prefix() {
        assert!(credit_card("4111 1111 1111 1111"));
        assert!(credit_card("5500-0000-0000-0004"));
        assert!(credit_card("378282246310005"));
        assert!(!credit_card("4111 1111 1111 1112"), "Luhn fails");
        assert!(!credit_card("1234567812345670"), "no issuer starts with 1");
    }

    #[test]
    fn ibans_check_mod_97() {
        assert!(iban("DE89 3704 0044 0532 0130 00"));
        assert!(iban("GB82WEST12345698765432"));
        assert!(iban("NL91ABNA0417164300"));
        assert!(!iban("DE89 3704 0044 0532 0130 01"));
        assert!(!iban("SKU1234567890123"));
    }

    #[test]
    fn ssns_follow_ssa_rules() {
        assert!(us_ssn("536-22-1234"));
        assert!(!us_ssn("000-22-1234"));
        assert!(!us_ssn("666-22-1234"));
        assert!(!us_ssn("912-22-1234"));
        assert!(!us_ssn("536-00-1234"));
    }

    #[test]
    fn phones_in_several_regions() {
        use PhoneFit::*;
        assert_eq!(phone("+1 415 555 2671"), Some(International));
        assert_eq!(phone("+44 20 7946 0958"), Some(International));
        assert_eq!(phone("0049 30 901820"), Some(International));
        assert_eq!(phone("001-415-555-2671"), Some(International));
        assert_eq!(phone("+919845012345"), Some(International));
        assert_eq!(phone("+49 (0)30 901820"), Some(International));
        assert_eq!(phone("(415) 555-2671"), Some(National));
        assert_eq!(phone("020 7946 0958"), Some(National));
        assert_eq!(phone("612-555-0187x204"), phone("612-555-0187"));
        assert_eq!(phone("(646) 555-3890 ext. 12"), phone("(646) 555-3890"));
        assert!(phone("+44161 4960871").is_some());
        assert!(phone("+33 4 72 10 55 38").is_some());
        assert_eq!(phone("12"), None);
    }

    #[test]
    fn addresses_parse() {
        assert!(ipv4("192.168.10.24"));
        assert!(!ipv4("300.1.1.1"));
        assert!(ipv6("2001:db8::8a2e:370:7334"));
        assert!(!ipv6("12:30"));
    }
}
