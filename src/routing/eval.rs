//! `warden tools eval`: how well the ranking finds the expected tools. Each line of the
//! file is `{"query": "...", "expected": ["tool", ...]}`; hit@k is the share of queries
//! with expectations for which an expected tool is among the first k tools offered above
//! the minimum score (ignoring `top_k`), all@5 the share with every expected tool among
//! the first 5, and offered_when_none the mean number of tools above the minimum score for
//! queries that expect none.

use serde::{Deserialize, Serialize};

use crate::tools::select::Ranked;

#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub query: String,
    #[serde(default)]
    pub expected: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Figures {
    #[serde(rename = "hit@1")]
    pub hit1: f64,
    #[serde(rename = "hit@3")]
    pub hit3: f64,
    #[serde(rename = "hit@5")]
    pub hit5: f64,
    #[serde(rename = "all@5")]
    pub all5: f64,
    pub offered_when_none: f64,
}

/// Figures over `(case, tools offered above the minimum score, best first)`.
pub fn figures<'a>(results: impl IntoIterator<Item = (&'a Case, &'a [Ranked])>) -> Figures {
    let (mut with, mut none) = (0usize, 0usize);
    let (mut h1, mut h3, mut h5, mut a5) = (0usize, 0usize, 0usize, 0usize);
    let mut offered_none = 0usize;
    for (case, offered) in results {
        if case.expected.is_empty() {
            none += 1;
            offered_none += offered.len();
            continue;
        }
        with += 1;
        let hit = |k: usize| {
            offered
                .iter()
                .take(k)
                .any(|r| case.expected.contains(&r.name))
        };
        h1 += usize::from(hit(1));
        h3 += usize::from(hit(3));
        h5 += usize::from(hit(5));
        let top5: Vec<&str> = offered.iter().take(5).map(|r| r.name.as_str()).collect();
        a5 += usize::from(case.expected.iter().all(|e| top5.contains(&e.as_str())));
    }
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    Figures {
        hit1: share(h1, with),
        hit3: share(h3, with),
        hit5: share(h5, with),
        all5: share(a5, with),
        offered_when_none: share(offered_none, none),
    }
}

/// One figure per line, `hit@1: 0.812`.
pub fn render(f: &Figures) -> String {
    format!(
        "hit@1: {:.3}\nhit@3: {:.3}\nhit@5: {:.3}\nall@5: {:.3}\noffered_when_none: {:.3}\n",
        f.hit1, f.hit3, f.hit5, f.all5, f.offered_when_none
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(names: &[&str]) -> Vec<Ranked> {
        names
            .iter()
            .map(|n| Ranked {
                name: n.to_string(),
                score: 0.5,
            })
            .collect()
    }

    #[test]
    fn figures_count_hits_by_rank_and_tools_offered_for_none() {
        let cases = [
            Case {
                query: "a".into(),
                expected: vec!["x".into()],
            },
            Case {
                query: "b".into(),
                expected: vec!["y".into(), "z".into()],
            },
            Case {
                query: "c".into(),
                expected: vec![],
            },
            Case {
                query: "d".into(),
                expected: vec![],
            },
        ];
        let offered = [
            r(&["x", "q"]),
            r(&["q", "w", "e", "y", "v", "z"]),
            r(&["q", "w"]),
            r(&[]),
        ];
        let f = figures(cases.iter().zip(offered.iter().map(Vec::as_slice)));
        assert_eq!((f.hit1, f.hit3, f.hit5, f.all5), (0.5, 0.5, 1.0, 0.5));
        assert_eq!(f.offered_when_none, 1.0);
        assert_eq!(render(&f).lines().next(), Some("hit@1: 0.500"));
    }
}
