//! `warden audit keygen` and `warden audit verify`: the digest signing key, and the
//! auditor's check of an archive (a `file` sink directory or an S3 prefix).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::{digest, verify};

#[derive(Subcommand)]
pub enum Command {
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
pub struct VerifyArgs {
    /// The audit sink directory (the `file` sink's `dir`).
    #[arg(long, conflicts_with = "s3", required_unless_present = "s3")]
    pub dir: Option<PathBuf>,
    /// The S3 sink as `s3://BUCKET/PREFIX` (credentials from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY).
    #[arg(long)]
    pub s3: Option<String>,
    /// Endpoint of an S3-compatible store.
    #[arg(long, requires = "s3")]
    pub s3_endpoint: Option<String>,
    #[arg(long, requires = "s3", default_value = "us-east-1")]
    pub s3_region: String,
    /// Path-style addressing (most S3-compatible stores).
    #[arg(long, requires = "s3")]
    pub s3_path_style: bool,
    /// Ed25519 public key (PEM) that signs the digests.
    #[arg(long)]
    pub public_key: PathBuf,
    /// Count records from this RFC 3339 time.
    #[arg(long)]
    pub from: Option<String>,
    /// Count records up to this RFC 3339 time, and require every open chain to have a
    /// signed digest within one digest interval of it (proof the log was not cut).
    #[arg(long)]
    pub to: Option<String>,
}

/// Runs an `audit` subcommand.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Verify(args) => verify(args),
        Command::Keygen { out } => keygen(&out),
    }
}

fn keygen(out: &Path) -> ExitCode {
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

fn verify(args: VerifyArgs) -> ExitCode {
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
            let config = crate::config::S3SinkConfig {
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
            match super::s3::S3Sink::download_all(&config, &download) {
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
