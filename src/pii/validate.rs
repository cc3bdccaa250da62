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

/// Regions phone numbers without a country code are tried in.
const REGIONS: [phonenumber::country::Id; 8] = {
    use phonenumber::country::Id::*;
    [US, GB, DE, FR, NL, ES, IT, IN]
};

/// A number valid in international form (`+…` / `00…`), or in one of the common regions.
/// Returns whether the number carried an explicit country code.
pub fn phone(s: &str) -> Option<bool> {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return None;
    }
    let trimmed = s.trim();
    let international = trimmed.starts_with('+') || trimmed.starts_with("00");
    if international {
        let normalized = match trimmed.strip_prefix("00") {
            Some(rest) => format!("+{rest}"),
            None => trimmed.to_string(),
        };
        let number = phonenumber::parse(None, &normalized).ok()?;
        return phonenumber::is_valid(&number).then_some(true);
    }
    REGIONS
        .iter()
        .any(|region| {
            phonenumber::parse(Some(*region), trimmed)
                .map(|n| phonenumber::is_valid(&n))
                .unwrap_or(false)
        })
        .then_some(false)
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
        assert_eq!(phone("+1 415 555 2671"), Some(true));
        assert_eq!(phone("+44 20 7946 0958"), Some(true));
        assert_eq!(phone("0049 30 901820"), Some(true));
        assert_eq!(phone("(415) 555-2671"), Some(false));
        assert_eq!(phone("020 7946 0958"), Some(false));
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
