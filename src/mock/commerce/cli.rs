//! `warden mock-commerce`: the demo shop's backends on their own port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Commerce, Shop};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub listen: SocketAddr,
    /// The shop's data (default: the built-in copy of examples/commerce/catalog.json).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Runs `warden mock-commerce`.
pub fn run(args: Args) -> ExitCode {
    let commerce = match &args.data {
        None => Commerce::demo(),
        Some(path) => std::fs::read_to_string(path)
            .map_err(anyhow::Error::from)
            .and_then(|text| Shop::parse(&text))
            .map(Commerce::new),
    };
    let commerce = match commerce {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot load the shop: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    crate::mock::server::run_blocking(args.listen, commerce, None)
}
