//! The `warden` command line: parses the arguments and hands each subcommand to the
//! module that owns it (`server`, `policy`, `audit`, `pii`, `routing`, `mock`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "LLM governance proxy speaking the OpenAI API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve(warden::server::cli::ServeArgs),
    /// Validate, test or describe policy files.
    Policy {
        #[command(subcommand)]
        command: warden::policy::cli::Command,
    },
    /// Work with the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: warden::audit::cli::Command,
    },
    /// Rank and evaluate the registry's tools as semantic selection offers them.
    Tools {
        #[command(subcommand)]
        command: warden::routing::cli::Command,
    },
    /// Detect personal data as a PII profile does.
    Pii {
        #[command(subcommand)]
        command: warden::pii::cli::Command,
    },
    /// Run the built-in mock provider on its own port (tests, benchmarks).
    MockProvider(warden::mock::cli::Args),
    /// Run the demo commerce backends (catalog, inventory, pricing, orders) on their own
    /// port.
    MockCommerce(warden::mock::commerce::cli::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Serve(args) => warden::server::cli::serve(args),
        Command::Policy { command } => warden::policy::cli::run(command),
        Command::Audit { command } => warden::audit::cli::run(command),
        Command::Pii { command } => warden::pii::cli::run(command),
        Command::Tools { command } => warden::routing::cli::run(command),
        Command::MockProvider(args) => warden::mock::cli::run(args),
        Command::MockCommerce(args) => warden::mock::commerce::cli::run(args),
    }
}
