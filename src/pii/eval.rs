//! Evaluation of detection against a labelled set (JSON lines: `text`, `entities` as
//! `{type, value}` planted in the text, and `keep`: commerce terms that must survive):
//! per-type precision, recall and F1, and the share of commerce terms left untouched.
//! A finding counts as correct when its type matches and its span overlaps the planted
//! value; `warden pii eval FILE` prints the table.

use std::collections::BTreeMap;

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
}

impl Counts {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
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

/// Runs `profile`'s detection over every example.
pub fn evaluate(profile: &Profile, examples: &[Example]) -> Report {
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
            let span = ex
                .text
                .find(&planted.value)
                .map(|s| (s, s + planted.value.len()));
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
            match hit {
                Some(i) => {
                    c.tp += 1;
                    if let Some(seen) = matched.get_mut(i) {
                        *seen = true;
                    }
                }
                None => c.fn_ += 1,
            }
        }
        for (seen, f) in matched.iter().zip(&findings) {
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
            }
        }
    }
    for c in report.by_type.values() {
        report.total.tp += c.tp;
        report.total.fp += c.fp;
        report.total.fn_ += c.fn_;
    }
    report
}

/// The report as a Markdown table.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "examples: {}\n\n| type | planted | found | false positives | precision | recall | F1 |\n|---|---:|---:|---:|---:|---:|---:|\n",
        report.examples
    );
    let row = |name: &str, c: &Counts| {
        format!(
            "| {name} | {} | {} | {} | {:.3} | {:.3} | {:.3} |\n",
            c.tp + c.fn_,
            c.tp,
            c.fp,
            c.precision(),
            c.recall(),
            c.f1()
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
