//! `warden policy check|test|schema`: what security teams run on the policy files before
//! they reach a replica.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand)]
pub enum Command {
    /// Validate every policy file; prints `file:line:column: message` per error.
    Check {
        #[arg(default_value = "policies")]
        dir: PathBuf,
        /// Also check that rules name PII and limit profiles this config defines.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the decision tests in DIR/tests/*.yaml against the policies in DIR.
    Test {
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Print the JSON Schema of policy files (of policy test files with --tests, of tool
    /// registry files with --tools).
    Schema {
        #[arg(long, conflicts_with = "tools")]
        tests: bool,
        #[arg(long)]
        tools: bool,
    },
}

/// Runs a `policy` subcommand.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Schema { tests, tools } => {
            let schema = if tests {
                super::test_schema()
            } else if tools {
                crate::tools::registry_schema()
            } else {
                super::policy_schema()
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Command::Check { dir, config } => match super::load_dir(&dir) {
            Ok(set) => {
                if let Some(path) = config {
                    let config = match Config::load(&path) {
                        Ok(c) => c,
                        Err(e) => {
                            eprintln!("error: {e}");
                            return ExitCode::from(2);
                        }
                    };
                    let configured = super::references::Configured::of(&config);
                    let errors = super::references::check(&set, &configured);
                    if !errors.is_empty() {
                        for e in &errors {
                            eprintln!("{e}");
                        }
                        eprintln!("{} error(s)", errors.len());
                        return ExitCode::from(1);
                    }
                } else {
                    eprintln!(
                        "note: profile names in settings are not checked; pass --config warden.yaml"
                    );
                }
                println!(
                    "ok: {} rules and {} tools in {} files, digest sha256:{}",
                    set.rules.len(),
                    set.tools.len(),
                    set.files.len(),
                    set.digest
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
                eprintln!("{} error(s)", errors.len());
                ExitCode::from(1)
            }
        },
        Command::Test { dir } => {
            let set = match super::load_dir(&dir) {
                Ok(set) => set,
                Err(errors) => {
                    for e in &errors {
                        eprintln!("{e}");
                    }
                    return ExitCode::from(1);
                }
            };
            let results = match super::testing::run(&set, &dir) {
                Ok(r) => r,
                Err(errors) => {
                    for e in &errors {
                        eprintln!("{e}");
                    }
                    return ExitCode::from(1);
                }
            };
            let failed = results.iter().filter(|r| !r.passed).count();
            for r in &results {
                if r.passed {
                    println!("PASS {}: {}", r.file, r.name);
                } else {
                    println!("FAIL {}: {} — {}", r.file, r.name, r.detail);
                }
            }
            println!("{} passed, {} failed", results.len() - failed, failed);
            if failed == 0 && !results.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}
