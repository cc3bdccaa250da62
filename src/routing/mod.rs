//! Tool routing: which registry tools a principal is offered for a message. The tools are
//! ranked by meaning (`tools::select`); a tool is offered only when the policy would allow
//! the same request with that tool (its rule's `settings.tools` and every deny rule), and
//! only above the minimum score. `warden tools select|eval` (`cli`) show and measure the
//! same ranking.

pub mod cli;
pub mod eval;

use crate::policy::{Facts, PolicySet};
use crate::tools::select::{Ranked, Selector};

/// Whether the request of `facts` would be allowed offering `tool` too.
pub fn permitted(set: &PolicySet, facts: &Facts<'_>, tool: &str) -> bool {
    let mut tools: Vec<String> = facts.tools.to_vec();
    if !tools.iter().any(|t| t == tool) {
        tools.push(tool.to_string());
    }
    let with = Facts {
        tools: &tools,
        ..facts.clone()
    };
    set.decide(&with).allowed()
}

/// The permitted tools scoring at least `min_score` for `query`, best first; at most
/// `limit` of them when given.
pub fn offer(
    selector: &Selector,
    set: &PolicySet,
    facts: &Facts<'_>,
    query: &str,
    min_score: f32,
    limit: Option<usize>,
) -> anyhow::Result<Vec<Ranked>> {
    let ranked = selector.rank(query, set.tools.iter())?;
    let mut out = Vec::new();
    for r in ranked {
        if r.score < min_score || limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        if permitted(set, facts, &r.name) {
            out.push(r);
        }
    }
    Ok(out)
}
