//! `warden pii scan` and `warden pii eval`: the detection a profile performs, for security
//! teams. The profile comes from `--config` (its `pii` section; `--profile` or the
//! default), else the built-in one (every entity type pseudonymized, score ≥ 0.5).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::{Profile, Redactor, eval};
use crate::config::{Config, PiiConfig};

#[derive(Subcommand)]
pub enum Command {
    /// Print the findings in TEXT (or stdin) as JSON: types, character offsets, scores.
    Scan {
        text: Option<String>,
        /// Print the text as the provider would receive it instead.
        #[arg(long)]
        redact: bool,
        /// Take the profile from this configuration's `pii` section.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The profile to use (default: the configuration's default profile).
        #[arg(long)]
        profile: Option<String>,
    },
    /// Per-type precision, recall and F1 on labelled JSON-lines files (one table per
    /// file), and the share of commerce terms kept.
    Eval {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// List every miss, false positive and commerce term touched (with its message).
        #[arg(long)]
        errors: bool,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        profile: Option<String>,
    },
}

/// Runs a `pii` subcommand.
pub fn run(command: Command) -> ExitCode {
    let (config, profile) = match &command {
        Command::Scan {
            config, profile, ..
        }
        | Command::Eval {
            config, profile, ..
        } => (config.clone(), profile.clone()),
    };
    let (profile, hash_key) = match load_profile(config.as_deref(), profile.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Scan { text, redact, .. } => scan(&profile, &hash_key, text, redact),
        Command::Eval { files, errors, .. } => eval(&profile, &files, errors),
    }
}

/// The profile to use — from the config file when it has a `pii` section, else the
/// built-in one — and the key its `hash` action uses, resolved as the proxy does.
pub fn load_profile(
    config: Option<&Path>,
    name: Option<&str>,
) -> Result<(Profile, Vec<u8>), String> {
    let pii = match config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?.pii,
        None => None,
    };
    let pii: PiiConfig = match (pii, name, config) {
        (Some(pii), _, _) => pii,
        (None, Some(n), None) => return Err(format!("--profile {n} needs --config")),
        (None, Some(n), Some(path)) => {
            return Err(format!(
                "{} has no `pii` section for profile `{n}`",
                path.display()
            ));
        }
        (None, None, _) => {
            serde_yaml_ng::from_str("default_profile: built-in\nprofiles:\n  built-in: {}\n")
                .map_err(|e| format!("built-in profile: {e}"))?
        }
    };
    let chosen = name
        .map(str::to_string)
        .or(pii.default_profile.clone())
        .ok_or_else(|| {
            "the configuration has no pii.default_profile; pass --profile".to_string()
        })?;
    let profiles = super::Profiles::from_config(Some(&pii)).map_err(|e| e.to_string())?;
    let profile = profiles
        .get(&chosen)
        .ok_or_else(|| format!("unknown PII profile `{chosen}`"))?;
    if profile.ner_missing() {
        return Err(format!(
            "profile `{chosen}` requires the NER model, which is not loaded"
        ));
    }
    Ok((
        std::sync::Arc::unwrap_or_clone(profile),
        profiles.hash_key.to_vec(),
    ))
}

/// `warden pii scan [TEXT] [--redact]`
pub fn scan(profile: &Profile, hash_key: &[u8], text: Option<String>, redact: bool) -> ExitCode {
    let text = match text {
        Some(t) => t,
        None => {
            let mut s = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                eprintln!("error: cannot read stdin: {e}");
                return ExitCode::from(2);
            }
            s
        }
    };
    if redact {
        let mut r = Redactor::new(profile, hash_key, None);
        let out = r.text(&text).unwrap_or_else(|| text.clone());
        if let Some(blocked) = r.blocked() {
            let types: Vec<&str> = blocked.0.iter().map(|e| e.name()).collect();
            eprintln!(
                "blocked by profile `{}`: {}",
                profile.name,
                types.join(", ")
            );
            return ExitCode::from(1);
        }
        print!("{out}");
        return ExitCode::SUCCESS;
    }
    let chars = |byte: usize| text.get(..byte).unwrap_or_default().chars().count();
    let findings: Vec<serde_json::Value> = profile
        .detect(&text)
        .iter()
        .map(|f| {
            json!({
                "type": f.entity.name(),
                "start": chars(f.start),
                "end": chars(f.end),
                "score": (f.score * 1000.0).round() / 1000.0,
                "source": f.source,
                "action": profile.action(f.entity).label(),
            })
        })
        .collect();
    let out = json!({"profile": profile.name, "findings": findings});
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    ExitCode::SUCCESS
}

/// `warden pii eval FILE...`: one report per file.
pub fn eval(profile: &Profile, files: &[PathBuf], errors: bool) -> ExitCode {
    println!("profile: {}", profile.name);
    for file in files {
        let examples = match eval::read(file) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let report = eval::evaluate_with(profile, &examples, errors);
        println!("\n## {}\n\n{}", file.display(), eval::render(&report));
    }
    ExitCode::SUCCESS
}
