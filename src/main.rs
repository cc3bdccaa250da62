//! The `warden` command line: `serve` runs the proxy, `mock-provider` runs the built-in
//! OpenAI-compatible mock on its own port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use warden::config::Config;
use warden::mock::server::TlsFiles;
use warden::mock::{Mock, MockSettings};

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
    Serve {
        /// Configuration file.
        #[arg(long, env = "WARDEN_CONFIG", default_value = "warden.yaml")]
        config: PathBuf,
        /// Proxy listen address (overrides `listen`).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Admin listen address (overrides `admin_listen`).
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
    },
    /// Validate, test or describe policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Work with the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Detect personal data as a PII profile does.
    Pii {
        #[command(subcommand)]
        command: PiiCommand,
    },
    /// Run the built-in mock provider on its own port (tests, benchmarks).
    MockProvider {
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: SocketAddr,
        /// Delay before each response starts.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Streaming pace in chunks per second (0: no pauses).
        #[arg(long, default_value_t = 0)]
        tokens_per_sec: u64,
        /// Answer every model call with this HTTP status (failure tests).
        #[arg(long)]
        fail_status: Option<u16>,
        /// Break every stream after this many chunks (failure tests).
        #[arg(long)]
        fail_after_chunks: Option<usize>,
        /// Never report token usage, like providers that ignore `stream_options`.
        #[arg(long)]
        no_usage: bool,
        /// Stream content in pieces of this many characters instead of word by word.
        #[arg(long)]
        chunk_chars: Option<usize>,
        /// Add this sentence to every chat and completion answer (as a model quoting a
        /// retrieved document would).
        #[arg(long)]
        also_say: Option<String>,
        /// Serve TLS with this PEM certificate chain (needs --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every record hash, chain link, digest signature and listed segment.
    Verify(VerifyArgs),
    /// Create an Ed25519 digest signing key (PKCS#8 PEM, mode 0600) and its public key
    /// (`FILE` with `.pub.pem`), for `audit.signing_key_file`.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The audit sink directory (the `file` sink's `dir`).
    #[arg(long, conflicts_with = "s3", required_unless_present = "s3")]
    dir: Option<PathBuf>,
    /// The S3 sink as `s3://BUCKET/PREFIX` (credentials from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY).
    #[arg(long)]
    s3: Option<String>,
    /// Endpoint of an S3-compatible store.
    #[arg(long, requires = "s3")]
    s3_endpoint: Option<String>,
    #[arg(long, requires = "s3", default_value = "us-east-1")]
    s3_region: String,
    /// Path-style addressing (most S3-compatible stores).
    #[arg(long, requires = "s3")]
    s3_path_style: bool,
    /// Ed25519 public key (PEM) that signs the digests.
    #[arg(long)]
    public_key: PathBuf,
    /// Count records from this RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Count records up to this RFC 3339 time, and require every open chain to have a
    /// signed digest within one digest interval of it (proof the log was not cut).
    #[arg(long)]
    to: Option<String>,
}

#[derive(Subcommand)]
enum PiiCommand {
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
    /// Per-type precision, recall and F1 on a labelled JSON-lines file, and the share of
    /// commerce terms kept.
    Eval {
        file: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        profile: Option<String>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
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
    /// Print the JSON Schema of policy files (or of policy test files with --tests).
    Schema {
        #[arg(long)]
        tests: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Serve {
            config,
            listen,
            admin_listen,
        } => serve(config, listen, admin_listen),
        Command::Policy { command } => policy(command),
        Command::Audit { command } => audit(command),
        Command::Pii { command } => pii(command),
        Command::MockProvider {
            listen,
            latency_ms,
            tokens_per_sec,
            fail_status,
            fail_after_chunks,
            no_usage,
            chunk_chars,
            also_say,
            tls_cert,
            tls_key,
        } => {
            let settings = MockSettings {
                latency: Duration::from_millis(latency_ms),
                tokens_per_sec,
                fail_status,
                fail_after_chunks,
                no_usage,
                chunk_chars,
                also_say,
            };
            let tls = tls_cert.as_deref().zip(tls_key.as_deref());
            mock_provider(listen, settings, tls)
        }
    }
}

fn audit(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify(args) => audit_verify(args),
        AuditCommand::Keygen { out } => audit_keygen(&out),
    }
}

fn audit_keygen(out: &std::path::Path) -> ExitCode {
    use warden::audit::digest;
    if out.exists() {
        eprintln!(
            "error: {} exists; keys are never overwritten",
            out.display()
        );
        return ExitCode::from(2);
    }
    match digest::create_key(out) {
        Ok(_) => {
            println!(
                "signing key: {} (keep it secret: mount it as audit.signing_key_file)\npublic key:  {} (give it to auditors)",
                out.display(),
                digest::public_key_path(out).display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn audit_verify(args: VerifyArgs) -> ExitCode {
    use warden::audit::{digest, verify};
    let VerifyArgs {
        dir,
        s3,
        s3_endpoint,
        s3_region,
        s3_path_style,
        public_key,
        from,
        to,
    } = args;
    let download = std::env::temp_dir().join(format!("warden-verify-{}", uuid::Uuid::new_v4()));
    let mut bucket_problems = Vec::new();
    let dir = match (dir, s3) {
        (Some(dir), _) => dir,
        (None, Some(url)) => {
            let Some((bucket, prefix)) = url
                .strip_prefix("s3://")
                .map(|r| r.split_once('/').unwrap_or((r, "")))
            else {
                eprintln!("error: --s3 must look like s3://BUCKET/PREFIX");
                return ExitCode::from(2);
            };
            let config = warden::config::S3SinkConfig {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                endpoint: s3_endpoint,
                region: s3_region,
                path_style: s3_path_style,
                access_key_id: None,
                secret_access_key: None,
                object_lock: None,
                timeout_ms: 60_000,
            };
            match warden::audit::s3::S3Sink::download_all(&config, &download) {
                Ok(got) => {
                    eprintln!("downloaded {} objects from {url}", got.objects);
                    bucket_problems = got.problems;
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            }
            download.clone()
        }
        (None, None) => {
            eprintln!("error: give --dir or --s3");
            return ExitCode::from(2);
        }
    };
    let key = match digest::load_public_key(&public_key) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if to.is_none() {
        eprintln!(
            "note: where the log ends is not checked; pass --to TIME to prove nothing before TIME was cut"
        );
    }
    let range = verify::Range { from, to };
    let mut last_shown = 0;
    let mut report = verify::verify_dir(&dir, &key, &range, |r| {
        if r.segments >= last_shown + 100 {
            last_shown = r.segments;
            eprintln!("… {} segments, {} records checked", r.segments, r.records);
        }
    });
    report.problems.splice(0..0, bucket_problems);
    for w in &report.warnings {
        println!("WARN {w}");
    }
    for p in &report.problems {
        println!("FAIL {p}");
    }
    println!(
        "{}: {} chains, {} segments, {} records ({} gap markers), {} digests, time range {} .. {}",
        if report.ok() {
            "verified"
        } else {
            "NOT verified"
        },
        report.chains,
        report.segments,
        report.records,
        report.gaps,
        report.digests,
        report.first_time.as_deref().unwrap_or("-"),
        report.last_time.as_deref().unwrap_or("-"),
    );
    let _ = std::fs::remove_dir_all(&download);
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn pii(command: PiiCommand) -> ExitCode {
    use warden::pii::cli;
    let (config, profile) = match &command {
        PiiCommand::Scan {
            config, profile, ..
        }
        | PiiCommand::Eval {
            config, profile, ..
        } => (config.clone(), profile.clone()),
    };
    let (profile, hash_key) = match cli::load_profile(config.as_deref(), profile.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match command {
        PiiCommand::Scan { text, redact, .. } => cli::scan(&profile, &hash_key, text, redact),
        PiiCommand::Eval { file, .. } => cli::eval(&profile, &file),
    }
}

fn policy(command: PolicyCommand) -> ExitCode {
    use warden::policy;
    match command {
        PolicyCommand::Schema { tests } => {
            let schema = if tests {
                policy::test_schema()
            } else {
                policy::policy_schema()
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        PolicyCommand::Check { dir, config } => match policy::load_dir(&dir) {
            Ok(set) => {
                if let Some(path) = config {
                    let config = match Config::load(&path) {
                        Ok(c) => c,
                        Err(e) => {
                            eprintln!("error: {e}");
                            return ExitCode::from(2);
                        }
                    };
                    let configured = policy::references::Configured::of(&config);
                    let errors = policy::references::check(&set, &configured);
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
                    "ok: {} rules in {} files, digest sha256:{}",
                    set.rules.len(),
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
        PolicyCommand::Test { dir } => {
            let set = match policy::load_dir(&dir) {
                Ok(set) => set,
                Err(errors) => {
                    for e in &errors {
                        eprintln!("{e}");
                    }
                    return ExitCode::from(1);
                }
            };
            let results = match policy::testing::run(&set, &dir) {
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

fn serve(path: PathBuf, listen: Option<SocketAddr>, admin_listen: Option<SocketAddr>) -> ExitCode {
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
    warden::telemetry::init_logging(&config.log);
    warden::telemetry::install_panic_hook();
    match warden::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn mock_provider(
    listen: SocketAddr,
    settings: MockSettings,
    tls: Option<(&std::path::Path, &std::path::Path)>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tls = tls.map(|(cert, key)| TlsFiles { cert, key });
    match runtime.block_on(warden::mock::server::run(
        listen,
        Mock::new(settings, true),
        tls,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
