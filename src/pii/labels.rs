//! What the label of a value says it is: the words of a table's column header, a JSON
//! member's key or a `key=value` pair's key ("date_of_birth", "customerName", "Tel",
//! "shipping_address"), and whether a value fits the type its label names. `columns`
//! and `fields` read the labels; this module owns their vocabulary.

use super::Entity;

/// Longest value taken whole for each type.
const LONGEST_NAME: usize = 60;
const LONGEST_ADDRESS: usize = 160;
const LONGEST_DATE: usize = 32;

/// Label words (see [`words_of`]).
const BIRTH: &[&str] = &[
    "birth",
    "birthday",
    "birthdate",
    "dob",
    "bday",
    "born",
    "geburtsdatum",
    "geburtstag",
    "naissance",
    "nacimiento",
    "nascita",
    "geboortedatum",
    "född",
    "født",
    "urodzenia",
    "fødselsdato",
    "fodselsdato",
    "födelsedatum",
    "fodelsedatum",
    "syntymäaika",
    "nascimento",
    "narození",
    "doğum",
];
const PHONE: &[&str] = &[
    "phone",
    "telephone",
    "phonenumber",
    "tel",
    "mobile",
    "cell",
    "cellphone",
    "handy",
    "telefon",
    "telefono",
    "teléfono",
    "movil",
    "móvil",
    "cellulare",
    "portable",
    "mobil",
    "telefoon",
    "gsm",
    "msisdn",
];
const NAME: &[&str] = &[
    "name",
    "fullname",
    "firstname",
    "lastname",
    "surname",
    "givenname",
    "familyname",
    "nombre",
    "apellido",
    "apellidos",
    "nom",
    "prénom",
    "prenom",
    "nome",
    "cognome",
    "naam",
    "voornaam",
    "achternaam",
    "vorname",
    "nachname",
];
/// Labels that name a person on their own, as the whole header.
const PERSON_ALONE: &[&str] = &[
    "customer",
    "client",
    "contact",
    "recipient",
    "holder",
    "cardholder",
    "kunde",
    "cliente",
    "empfänger",
    "destinataire",
    "destinatario",
];
/// Words next to "name" that make it a thing's name ("product_name", "store_name").
const THINGS: &[&str] = &[
    "product",
    "item",
    "brand",
    "store",
    "shop",
    "company",
    "file",
    "user",
    "sku",
    "model",
    "warehouse",
    "city",
    "street",
    "country",
    "host",
    "display",
    "category",
    "variant",
    "tool",
    "event",
    "domain",
    "business",
    "carrier",
    "team",
    "group",
    "org",
    "vendor",
    "supplier",
    "merchant",
    "bank",
    "project",
    "app",
    "service",
    "plan",
    "field",
    "column",
    "table",
    "location",
    "site",
    "region",
    "campaign",
    "collection",
    "catalog",
    "catalogue",
];
const ADDRESS: &[&str] = &[
    "address",
    "addr",
    "street",
    "adresse",
    "direccion",
    "dirección",
    "indirizzo",
    "adres",
    "anschrift",
    "straße",
    "strasse",
    "endereco",
    "endereço",
];
/// Words next to "address" that make it another kind of address.
const NOT_POSTAL: &[&str] = &[
    "email", "mail", "e", "ip", "ipv4", "ipv6", "mac", "url", "web", "wallet",
];

/// Cells that hold nothing.
const EMPTY: &[&str] = &["", "-", "n/a", "na", "null", "none", "nil"];

/// The type a label names, if any.
pub(super) fn kind_of(label: &str) -> Option<Entity> {
    let folded = words_of(label);
    let words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    if has(BIRTH) {
        Some(Entity::DateOfBirth)
    } else if has(PHONE) {
        Some(Entity::Phone)
    } else if has(ADDRESS) {
        (!has(NOT_POSTAL)).then_some(Entity::Address)
    } else if has(NAME) && !has(THINGS) || words.len() == 1 && has(PERSON_ALONE) {
        Some(Entity::Person)
    } else {
        None
    }
}

/// Whether `cell` can be a value of `kind` taken whole.
pub(super) fn fits(kind: Entity, cell: &str) -> bool {
    if EMPTY.contains(&cell.to_lowercase().as_str()) || cell.contains('@') {
        return false;
    }
    let digits = cell.chars().filter(char::is_ascii_digit).count();
    let letters = cell.chars().any(char::is_alphabetic);
    match kind {
        Entity::DateOfBirth => digits >= 4 && cell.len() <= LONGEST_DATE,
        Entity::Phone => {
            digits >= 6
                && cell
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +()-./xX".contains(c))
        }
        Entity::Person => {
            letters && digits == 0 && cell.len() <= LONGEST_NAME && cell.split(' ').count() <= 6
        }
        Entity::Address => letters && cell.len() <= LONGEST_ADDRESS,
        _ => false,
    }
}

/// Whether `label` is a bare "name" ("name", "Nombre"): a person's, or a product's or a
/// store's in a record that says which only in its other fields.
pub(super) fn is_bare_name(label: &str) -> bool {
    let folded = words_of(label);
    let mut words = folded.split(' ').filter(|w| !w.is_empty());
    matches!((words.next(), words.next()), (Some(w), None) if NAME.contains(&w))
}

/// `label` in lower case, its words apart: split at anything not a letter or a digit and
/// where a lower-case letter meets a capital ("dateOfBirth" is "date of birth").
fn words_of(label: &str) -> String {
    let mut out = String::with_capacity(label.len() + 4);
    let mut lower_before = false;
    for c in label.chars() {
        if !c.is_alphanumeric() {
            out.push(' ');
        } else {
            if c.is_uppercase() && lower_before {
                out.push(' ');
            }
            out.extend(c.to_lowercase());
        }
        lower_before = c.is_lowercase();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_in_every_case_style() {
        for (label, kind) in [
            ("date_of_birth", Some(Entity::DateOfBirth)),
            ("dateOfBirth", Some(Entity::DateOfBirth)),
            ("DOB", Some(Entity::DateOfBirth)),
            ("customerName", Some(Entity::Person)),
            ("first_name", Some(Entity::Person)),
            ("productName", None),
            ("lastOrder", None),
            ("shippingAddress", Some(Entity::Address)),
            ("emailAddress", None),
            ("mobile-phone", Some(Entity::Phone)),
            ("Geburtsdatum", Some(Entity::DateOfBirth)),
            ("loyalty", None),
        ] {
            assert_eq!(kind_of(label), kind, "{label}");
        }
    }

    #[test]
    fn a_bare_name_is_told_from_a_person_s() {
        assert!(is_bare_name("name") && is_bare_name("Nombre"));
        assert!(!is_bare_name("first_name") && !is_bare_name("customerName"));
    }

    #[test]
    fn values_fit_their_type() {
        assert!(fits(Entity::Person, "Ana Silva"));
        assert!(!fits(Entity::Person, "n/a"));
        assert!(!fits(Entity::Person, "ana@example.com"));
        assert!(fits(Entity::DateOfBirth, "1991-02-03"));
        assert!(!fits(Entity::DateOfBirth, "soon"));
        assert!(fits(Entity::Phone, "+81 3-5555-0199"));
        assert!(!fits(Entity::Phone, "call me"));
    }
}
