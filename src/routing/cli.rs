//! `warden tools select` and `warden tools eval`: the ranking a principal gets, from the
//! configuration's policy directory and selection model.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::auth::{AuthMethod, Principal};
use crate::config::Config;
use crate::policy::{EndpointName, Facts, PolicySet, PolicyStore};
use crate::tools::select::Selector;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Rank the tools a principal may use for a query, with their scores.
    Select {
        #[command(flatten)]
        who: Who,
        /// The user's message.
        query: String,
    },
    /// Measure the ranking on a JSONL file of {"query", "expected": [tools]}.
    Eval {
        #[command(flatten)]
        who: Who,
        file: PathBuf,
        /// Print the figures as one JSON object.
        #[arg(long)]
        json: bool,
        /// Also list the queries whose expected tools are not in the first 5, with what
        /// was offered instead (on standard error).
        #[arg(long)]
        misses: bool,
    },
}

#[derive(clap::Args)]
pub struct Who {
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long)]
    pub tenant: Option<String>,
    #[arg(long = "role")]
    pub roles: Vec<String>,
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Offer from this score on instead of `tools.selection.min_score` (calibration).
    #[arg(long)]
    pub min_score: Option<f32>,
}

impl Who {
    /// The principal the flags describe; anonymous when they name nobody.
    fn principal(&self) -> Principal {
        if self.tenant.is_none() && self.roles.is_empty() && self.scopes.is_empty() {
            return Principal::anonymous();
        }
        Principal {
            tenant: self.tenant.clone(),
            subject: "warden-tools-cli".into(),
            method: AuthMethod::Jwt,
            roles: self.roles.clone(),
            scopes: self.scopes.clone(),
            claims: serde_json::Map::new(),
            issuer: None,
        }
    }
}

struct Loaded {
    set: std::sync::Arc<PolicySet>,
    selector: Selector,
}

fn load(who: &Who) -> anyhow::Result<Loaded> {
    let config = Config::load(&who.config)?;
    let selection = config
        .tools
        .as_ref()
        .and_then(|t| t.selection.as_ref())
        .ok_or_else(|| anyhow::anyhow!("the configuration has no `tools.selection`"))?;
    let policy = config
        .policy
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the configuration has no `policy` directory"))?;
    let store = PolicyStore::open_for(&policy.dir, &config)?;
    let mut selector = Selector::load(selection)?;
    if let Some(min) = who.min_score {
        selector.min_score = min;
    }
    Ok(Loaded {
        set: store.current(),
        selector,
    })
}

/// The facts a tool call by `principal` is decided on: running it through Warden.
fn facts<'a>(principal: &'a Principal) -> Facts<'a> {
    Facts {
        principal,
        endpoint: EndpointName::ToolsInvoke,
        model: None,
        tools: &[],
        max_tokens: None,
        stream: false,
    }
}

pub fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Select { who, query } => select(&who, &query),
        Command::Eval {
            who,
            file,
            json,
            misses,
        } => evaluate(&who, &file, json, misses),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn select(who: &Who, query: &str) -> anyhow::Result<ExitCode> {
    let l = load(who)?;
    let principal = who.principal();
    let f = facts(&principal);
    let ranked = l.selector.rank(query, l.set.tools.iter())?;
    let min = l.selector.min_score;
    let mut out = String::new();
    for r in ranked {
        if !super::permitted(&l.set, &f, &r.name) {
            continue;
        }
        let mark = if r.score >= min {
            "offered"
        } else {
            "below min_score"
        };
        out.push_str(&format!("{:.3}  {}  ({mark})\n", r.score, r.name));
    }
    if out.is_empty() {
        out.push_str("no tool is permitted for this principal\n");
    }
    print_out(&out);
    Ok(ExitCode::SUCCESS)
}

fn evaluate(
    who: &Who,
    file: &std::path::Path,
    json: bool,
    misses: bool,
) -> anyhow::Result<ExitCode> {
    let l = load(who)?;
    let principal = who.principal();
    let f = facts(&principal);
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let mut cases = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case: super::eval::Case = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", file.display(), n + 1))?;
        cases.push(case);
    }
    let mut offered = Vec::with_capacity(cases.len());
    for case in &cases {
        offered.push(super::offer(
            &l.selector,
            &l.set,
            &f,
            &case.query,
            l.selector.min_score,
            None,
        )?);
    }
    if misses {
        for (case, got) in cases.iter().zip(&offered) {
            let top: Vec<String> = got
                .iter()
                .take(5)
                .map(|r| format!("{} {:.3}", r.name, r.score))
                .collect();
            let hit = got.iter().take(5).any(|r| case.expected.contains(&r.name));
            if (case.expected.is_empty() && !got.is_empty()) || (!case.expected.is_empty() && !hit)
            {
                eprintln!(
                    "{:?} expected {:?}, offered [{}]",
                    case.query,
                    case.expected,
                    top.join(", ")
                );
            }
        }
    }
    let figures = super::eval::figures(cases.iter().zip(offered.iter().map(Vec::as_slice)));
    if json {
        print_out(&format!("{}\n", serde_json::to_string(&figures)?));
    } else {
        print_out(&super::eval::render(&figures));
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
fn print_out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}
