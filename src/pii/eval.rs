//! Evaluation of detection against a labelled set (JSON lines: `text`, `entities` as
//! `{type, value}` planted in the text, and `keep`: commerce terms that must survive):
//! per-type precision, recall and F1, and the share of commerce terms left untouched.
//! A finding counts as correct when its type matches and its span overlaps the planted
//! value. A stricter figure, *covered*, counts the planted values every letter and digit
//! of which lies inside some finding: what a provider can no longer read of it; `--errors`
//! lists the pieces left out of the others.
//! `warden pii eval FILE...` prints one table per file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{Entity, Profile};

#[derive(Debug, Deserialize)]
pub struct Example {
    pub text: String,
    #[serde(default)]
    pub entities: Vec<Planted>,
    #[serde(default)]
    pub keep: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Planted {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    /// Planted values left with no letter or digit outside a finding.
    pub covered: u64,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    pub fn covered_share(&self) -> f64 {
        ratio(self.covered, self.tp + self.fn_)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

#[derive(Debug, Default)]
pub struct Report {
    pub examples: usize,
    pub by_type: BTreeMap<String, Counts>,
    pub total: Counts,
    pub keep_total: u64,
    pub keep_kept: u64,
    /// Planted values whose type the detector cannot produce (e.g. PERSON without NER).
    pub unsupported: BTreeMap<String, u64>,
    /// Each miss, false positive and commerce term touched, with its message, when asked
    /// for (`warden pii eval --errors`): for tuning on a set, never for a held-out one.
    pub errors: Vec<String>,
}

impl Report {
    pub fn kept_share(&self) -> f64 {
        ratio(self.keep_kept, self.keep_total)
    }
}

/// Entity types the pattern recognizers can find.
const PATTERN_TYPES: &[Entity] = &[
    Entity::Email,
    Entity::Phone,
    Entity::CreditCard,
    Entity::Iban,
    Entity::UsSsn,
    Entity::IpAddress,
    Entity::UrlCredentials,
    Entity::Secret,
    Entity::DateOfBirth,
];

/// Entity types only the NER model finds.
const NER_TYPES: &[Entity] = &[Entity::Person, Entity::Address];

/// The examples of a JSON-lines file (blank lines skipped); a bad line is an error that
/// names it.
pub fn read(file: &Path) -> Result<Vec<Example>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", file.display(), i + 1))
        })
        .collect()
}

/// The parts of `text[start..end]` no finding covers that hold a letter or digit: what a
/// provider can still read of a planted value (empty when it is covered).
fn left_out<'t>(
    text: &'t str,
    start: usize,
    end: usize,
    findings: &[super::Finding],
) -> Vec<&'t str> {
    let inside = |at: usize| findings.iter().any(|f| f.start <= at && at < f.end);
    let mut parts = Vec::new();
    let mut run: Option<usize> = None;
    let mut at = start;
    for c in text.get(start..end).unwrap_or_default().chars() {
        match (inside(at), run) {
            (false, None) => run = Some(at),
            (true, Some(from)) => {
                parts.extend(text.get(from..at));
                run = None;
            }
            _ => {}
        }
        at += c.len_utf8();
    }
    if let Some(from) = run {
        parts.extend(text.get(from..end));
    }
    parts.retain(|p| p.chars().any(char::is_alphanumeric));
    parts
}

/// Runs `profile`'s detection over every example.
pub fn evaluate(profile: &Profile, examples: &[Example]) -> Report {
    evaluate_with(profile, examples, false)
}

/// Where `value` was planted in `ex`: its first occurrence that is not part of one of the
/// example's commerce terms ("for Kate" after "Kate Spade New York").
fn planted_span(ex: &Example, value: &str) -> Option<(usize, usize)> {
    let terms: Vec<(usize, usize)> = ex
        .keep
        .iter()
        .flat_map(|t| {
            ex.text
                .match_indices(t.as_str())
                .map(|(s, t)| (s, s + t.len()))
        })
        .collect();
    let mut occurrences = ex.text.match_indices(value).map(|(s, v)| (s, s + v.len()));
    let first = occurrences.clone().next();
    occurrences
        .find(|&(s, e)| !terms.iter().any(|&(ts, te)| ts <= s && e <= te))
        .or(first)
}

/// [`evaluate`], listing the errors in the report when `errors` is set.
pub fn evaluate_with(profile: &Profile, examples: &[Example], errors: bool) -> Report {
    let mut report = Report {
        examples: examples.len(),
        ..Default::default()
    };
    for ex in examples {
        let findings = profile.detect(&ex.text);
        let mut matched = vec![false; findings.len()];
        for planted in &ex.entities {
            let supported = Entity::from_name(&planted.kind).is_some_and(|e| {
                PATTERN_TYPES.contains(&e) || (profile.ner().is_some() && NER_TYPES.contains(&e))
            });
            let span = planted_span(ex, &planted.value);
            let hit = span.and_then(|(s, e)| {
                findings
                    .iter()
                    .position(|f| f.entity.name() == planted.kind && f.start < e && f.end > s)
            });
            if !supported {
                *report.unsupported.entry(planted.kind.clone()).or_default() += 1;
                // A finding of another type on an unsupported value is not a false positive.
                if let Some((s, e)) = span {
                    for (seen, f) in matched.iter_mut().zip(&findings) {
                        if f.start < e && f.end > s {
                            *seen = true;
                        }
                    }
                }
                continue;
            }
            let c = report.by_type.entry(planted.kind.clone()).or_default();
            let left = span.map(|(s, e)| left_out(&ex.text, s, e, &findings));
            if left.as_ref().is_some_and(Vec::is_empty) {
                c.covered += 1;
            }
            // Every finding of the planted type on the value is right (a name found
            // in two parts is not a false positive).
            if let Some((s, e)) = span {
                for (seen, f) in matched.iter_mut().zip(&findings) {
                    if f.entity.name() == planted.kind && f.start < e && f.end > s {
                        *seen = true;
                    }
                }
            }
            match hit {
                Some(i) => {
                    c.tp += 1;
                    if let Some(left) = left.filter(|l| errors && !l.is_empty()) {
                        report.errors.push(format!(
                            "partly {} `{}`, left `{}` in: {}",
                            planted.kind,
                            planted.value,
                            left.join("` `"),
                            ex.text
                        ));
                    }
                    if let Some(seen) = matched.get_mut(i) {
                        *seen = true;
                    }
                }
                None => {
                    c.fn_ += 1;
                    if errors {
                        report.errors.push(format!(
                            "missed {} `{}` in: {}",
                            planted.kind, planted.value, ex.text
                        ));
                    }
                }
            }
        }
        for (seen, f) in matched.iter().zip(&findings) {
            if !seen && errors {
                report.errors.push(format!(
                    "false {} `{}` in: {}",
                    f.entity.name(),
                    ex.text.get(f.start..f.end).unwrap_or_default(),
                    ex.text
                ));
            }
            if !seen {
                report
                    .by_type
                    .entry(f.entity.name().to_string())
                    .or_default()
                    .fp += 1;
            }
        }
        for term in &ex.keep {
            report.keep_total += 1;
            let touched = ex.text.match_indices(term.as_str()).any(|(s, _)| {
                let e = s + term.len();
                findings.iter().any(|f| f.start < e && f.end > s)
            });
            if !touched {
                report.keep_kept += 1;
            } else if errors {
                report
                    .errors
                    .push(format!("touched `{term}` in: {}", ex.text));
            }
        }
    }
    for c in report.by_type.values() {
        report.total.tp += c.tp;
        report.total.fp += c.fp;
        report.total.fn_ += c.fn_;
        report.total.covered += c.covered;
    }
    report
}

/// The report as a Markdown table.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "examples: {}\n\n| type | planted | found | false positives | precision | recall | F1 | covered |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
        report.examples
    );
    let row = |name: &str, c: &Counts| {
        format!(
            "| {name} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            c.tp + c.fn_,
            c.tp,
            c.fp,
            c.precision(),
            c.recall(),
            c.f1(),
            c.covered_share()
        )
    };
    for (name, c) in &report.by_type {
        out.push_str(&row(name, c));
    }
    out.push_str(&row("**all**", &report.total));
    out.push_str(&format!(
        "\ncommerce terms kept: {}/{} = {:.4}\n",
        report.keep_kept,
        report.keep_total,
        report.kept_share()
    ));
    for e in &report.errors {
        out.push_str(&format!("- {e}\n"));
    }
    if !report.unsupported.is_empty() {
        let list: Vec<String> = report
            .unsupported
            .iter()
            .map(|(k, n)| format!("{k} ({n})"))
            .collect();
        out.push_str(&format!(
            "not scored (no recognizer for the type yet): {}\n",
            list.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_value_is_looked_for_outside_the_examples_commerce_terms() {
        let ex: Example = serde_json::from_str(
            r#"{"text": "Kate Spade bag for Kate, my sister", "keep": ["Kate Spade"],
                "entities": [{"type": "PERSON", "value": "Kate"}]}"#,
        )
        .expect("example parses");
        assert_eq!(planted_span(&ex, "Kate"), Some((19, 23)));
        assert_eq!(planted_span(&ex, "Spade"), Some((5, 10)));
        assert_eq!(planted_span(&ex, "Ingrid"), None);
    }
}
