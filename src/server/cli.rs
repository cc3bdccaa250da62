//! `warden serve`: the proxy and admin listeners on a configuration file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Configuration file.
    #[arg(long, env = "WARDEN_CONFIG", default_value = "warden.yaml")]
    pub config: PathBuf,
    /// Proxy listen address (overrides `listen`).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Admin listen address (overrides `admin_listen`).
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
}

/// Runs `warden serve`.
pub fn serve(args: ServeArgs) -> ExitCode {
    let ServeArgs {
        config: path,
        listen,
        admin_listen,
    } = args;
    let mut config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(addr) = listen {
        config.listen = addr.to_string();
    }
    if let Some(addr) = admin_listen {
        config.admin_listen = addr.to_string();
    }
    crate::telemetry::init_logging(&config.log);
    crate::telemetry::install_panic_hook();
    match super::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
