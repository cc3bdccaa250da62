//! Values in delimited rows named by their header row (CSV, TSV, semicolons, pipes), as
//! tools return customer and order exports: a column headed by a birth word, a person's
//! name, a phone or a postal address makes its cells those values, which on their own
//! often carry no cue ("1987-06-14" under `date_of_birth`, "0171 2345678" under
//! `phone`). A header is a line of short labels, one of them known; the rows under it
//! have as many cells, and the first line that does not ends the table.

use super::labels::{fits, kind_of};
use super::{Entity, Finding, Source};

/// Score of a cell whose column's header names its type: as strong as a labelling cue.
const HEADED: f64 = 0.85;
/// Longest label a header cell holds ("customer_date_of_birth").
const LONGEST_LABEL: usize = 40;
/// Cell separators, in the order a tie between them is settled.
const DELIMITERS: [u8; 4] = [b'\t', b';', b'|', b','];

/// Whether `cell` reads as a column's label: short words, no value's marks.
fn is_label(cell: &str) -> bool {
    !cell.is_empty()
        && cell.len() <= LONGEST_LABEL
        && cell.chars().any(char::is_alphabetic)
        && cell
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | ' ' | '-' | '.' | '/' | '(' | ')'))
        && cell.split(' ').count() <= 4
}

/// The cells of `line` split at `delimiter`, a quoted cell's quotes left out:
/// (start, end) within the line, trimmed of spaces.
fn cells(line: &str, delimiter: u8) -> Vec<(usize, usize)> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at <= bytes.len() {
        let mut start = at;
        while bytes.get(start) == Some(&b' ') {
            start += 1;
        }
        let (cell, next) = if bytes.get(start) == Some(&b'"') {
            // A quoted cell runs to its closing quote ("" is a quote inside it).
            let mut end = start + 1;
            loop {
                match bytes.get(end) {
                    Some(b'"') if bytes.get(end + 1) == Some(&b'"') => end += 2,
                    Some(b'"') | None => break,
                    Some(_) => end += 1,
                }
            }
            let next = memchr::memchr(delimiter, bytes.get(end..).unwrap_or_default())
                .map_or(bytes.len() + 1, |i| end + i + 1);
            ((start + 1, end.min(bytes.len())), next)
        } else {
            let end = memchr::memchr(delimiter, bytes.get(start..).unwrap_or_default())
                .map_or(bytes.len(), |i| start + i);
            let trimmed = line.get(start..end).unwrap_or_default().trim_end();
            ((start, start + trimmed.len()), end + 1)
        };
        out.push(cell);
        at = next;
    }
    // A Markdown table's row starts and ends with its delimiter: "| a | b |".
    if delimiter == b'|' {
        if out.first().is_some_and(|&(s, e)| s == e) {
            out.remove(0);
        }
        if out.last().is_some_and(|&(s, e)| s == e) {
            out.pop();
        }
    }
    out
}

/// The delimiter of a header line and its columns' types, when the line is a header
/// that names at least one type.
fn header(line: &str) -> Option<(u8, Vec<Option<Entity>>)> {
    // The delimiter the line holds most of; a tie goes to the earlier one.
    let mut delimiter = None;
    let mut most = 0;
    for d in DELIMITERS {
        let count = memchr::memchr_iter(d, line.as_bytes()).count();
        if count > most {
            (delimiter, most) = (Some(d), count);
        }
    }
    let delimiter = delimiter?;
    let labels: Vec<&str> = cells(line, delimiter)
        .into_iter()
        .map(|(s, e)| line.get(s..e).unwrap_or_default())
        .collect();
    if !labels.iter().all(|l| is_label(l)) {
        return None;
    }
    let kinds: Vec<Option<Entity>> = labels.iter().map(|l| kind_of(l)).collect();
    kinds
        .iter()
        .any(Option::is_some)
        .then_some((delimiter, kinds))
}

/// The cells of `text`'s delimited rows that their header names.
pub fn scan(text: &str, out: &mut Vec<Finding>) {
    // A header and a row are two lines at least.
    if memchr::memchr(b'\n', text.as_bytes()).is_none() {
        return;
    }
    let mut table: Option<(u8, Vec<Option<Entity>>)> = None;
    let mut at = 0;
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line_start = at;
        at += raw.len() + 1;
        if let Some((delimiter, kinds)) = &table {
            let row = cells(line, *delimiter);
            if row.len() == kinds.len() {
                for (&(s, e), kind) in row.iter().zip(kinds) {
                    let (Some(kind), Some(cell)) = (kind, line.get(s..e)) else {
                        continue;
                    };
                    if fits(*kind, cell) {
                        out.push(Finding {
                            entity: *kind,
                            start: line_start + s,
                            end: line_start + e,
                            score: HEADED,
                            source: Source::Cue,
                        });
                    }
                }
                continue;
            }
        }
        table = header(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(Entity, &str)> {
        crate::pii::typed_found_by(scan, text)
    }

    #[test]
    fn cells_under_a_header_that_names_their_type() {
        let text = "order_id,customer_name,email,date_of_birth,phone,shipping_address\n\
                    88213,Karolina Nowak,kn@example.pl,1987-06-14,+48 601 234 567,\"ul. Długa 15/3, 31-019 Kraków\"\n\
                    88214,Tom Becker,tb@example.de,03.11.1979,0171 2345678,\"Lindenallee 4, 50667 Köln\"\r\n\
                    \n\
                    88215,Not A Row,x,1990-01-01,123456789,Somewhere";
        assert_eq!(
            found(text),
            [
                (Entity::Person, "Karolina Nowak"),
                (Entity::DateOfBirth, "1987-06-14"),
                (Entity::Phone, "+48 601 234 567"),
                (Entity::Address, "ul. Długa 15/3, 31-019 Kraków"),
                (Entity::Person, "Tom Becker"),
                (Entity::DateOfBirth, "03.11.1979"),
                (Entity::Phone, "0171 2345678"),
                (Entity::Address, "Lindenallee 4, 50667 Köln"),
            ]
        );
    }

    #[test]
    fn tabs_semicolons_and_pipes_and_what_is_not_a_table() {
        assert_eq!(
            found("Name\tDOB\tTel\nTom Becker\t03/11/1979\t0171 2345678"),
            [
                (Entity::Person, "Tom Becker"),
                (Entity::DateOfBirth, "03/11/1979"),
                (Entity::Phone, "0171 2345678"),
            ]
        );
        assert_eq!(
            found("Kunde;Geburtsdatum\nAnna Berg;12.03.1985"),
            [
                (Entity::Person, "Anna Berg"),
                (Entity::DateOfBirth, "12.03.1985")
            ]
        );
        assert_eq!(
            found("| contact | mobile |\n| Ana Ruiz | 699 123 456 |"),
            [(Entity::Person, "Ana Ruiz"), (Entity::Phone, "699 123 456")]
        );
        // Things' names, other addresses, empty and unfit cells, and prose.
        assert!(
            found(
                "product_name,store_name,email_address,ip_address\nAlpine 40L,Lyon,a@b.c,10.0.0.1"
            )
            .is_empty()
        );
        assert!(found("name,phone,dob\nn/a,call me,-").is_empty());
        assert!(found("Hi team,\nthe phone, the name and the dob are below").is_empty());
    }
}
