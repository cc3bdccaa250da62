//! The container image, checked without a container engine: every path the `Dockerfile`
//! copies exists in the repository and passes `.dockerignore`, every script its build runs
//! is there with the helpers it calls, the image runs as a non-root user, and the image's
//! filesystem — laid out in a temporary directory exactly as the final stage's `COPY`s
//! lay it out — runs the image's own command: Warden starts from `/etc/warden`, answers
//! its readiness probe and a chat completion, and writes its audit spool where the image
//! made room for it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{BIN, free_port};
use serde_json::json;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One instruction: its keyword (upper case) and its arguments.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

/// The Dockerfile's stages, each a list of instructions (continuation lines joined,
/// comments dropped).
fn stages() -> Vec<Vec<Instruction>> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for line in logical.iter().filter(|l| !l.trim().is_empty()) {
        let (keyword, args) = line.split_once(' ').unwrap_or((line, ""));
        let keyword = keyword.to_uppercase();
        if keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("FROM comes first")
            .push(Instruction {
                keyword,
                args: args.trim().to_string(),
            });
    }
    stages
}

/// A `COPY`'s options (`--from=…`, `--chown=…`), sources and destination.
fn copy_parts(args: &str) -> (Vec<&str>, Vec<&str>, &str) {
    let words: Vec<&str> = args.split_whitespace().collect();
    let (options, rest): (Vec<&str>, Vec<&str>) = words.iter().partition(|w| w.starts_with("--"));
    let (dest, sources) = rest.split_last().expect("COPY has a destination");
    (options, sources.to_vec(), dest)
}

/// Whether `.dockerignore` (patterns in order, the last match deciding; `!` re-includes)
/// lets `path` into the build context.
fn in_context(path: &str) -> bool {
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore");
    let mut included = true;
    for pattern in ignore.lines().map(str::trim) {
        if pattern.is_empty() || pattern.starts_with('#') {
            continue;
        }
        let (keep, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        let pattern = pattern.trim_end_matches('/');
        let matches = pattern == "*" || path == pattern || path.starts_with(&format!("{pattern}/"));
        if matches {
            included = keep;
        }
    }
    included
}

#[test]
fn the_build_copies_only_what_the_repository_and_its_context_hold() {
    let stages = stages();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let mut copied = Vec::new();
    for stage in &stages {
        for i in stage.iter().filter(|i| i.keyword == "COPY") {
            let (options, sources, _) = copy_parts(&i.args);
            if options.iter().any(|o| o.starts_with("--from=")) {
                continue;
            }
            for source in sources {
                assert!(
                    repo().join(source).exists(),
                    "COPY {source}: not in the repository"
                );
                assert!(
                    in_context(source),
                    "COPY {source}: excluded by .dockerignore"
                );
                copied.push(source.to_string());
            }
        }
    }
    // What the build leaves out of the context stays out (no target dir, no venv).
    for outside in ["target", ".venv", "tests", "ner-models/rampart"] {
        assert!(!in_context(outside), "{outside} reaches the build context");
    }

    // Every script the build runs is copied before it runs, with the helpers it calls.
    let build = &stages[0];
    for (at, run) in build.iter().enumerate().filter(|(_, i)| i.keyword == "RUN") {
        let copied_before: Vec<String> = build[..at]
            .iter()
            .filter(|i| i.keyword == "COPY")
            .flat_map(|i| copy_parts(&i.args).1.into_iter().map(str::to_string))
            .collect();
        let has = |path: &str| {
            copied_before
                .iter()
                .any(|c| path == c || path.starts_with(&format!("{}/", c.trim_end_matches('/'))))
        };
        for script in run
            .args
            .split_whitespace()
            .filter(|w| w.starts_with("scripts/"))
        {
            let path = repo().join(script);
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&path).expect(script).permissions(),
            );
            assert!(mode & 0o111 != 0, "{script} is not executable");
            assert!(has(script), "RUN {script} before it is copied");
            let body = std::fs::read_to_string(&path).unwrap();
            for helper in body
                .split(|c: char| c.is_whitespace() || c == '"')
                .filter(|w| w.starts_with("scripts/") && w.ends_with(".py"))
            {
                assert!(
                    has(helper),
                    "{script} calls {helper}, which the build does not copy first"
                );
            }
        }
        if run.args.contains("cargo build") {
            assert!(
                run.args.contains("--locked"),
                "the image builds with Cargo.lock"
            );
            for needed in ["Cargo.toml", "Cargo.lock", "src"] {
                assert!(has(needed), "cargo build runs before {needed} is copied");
            }
        }
    }
    assert!(
        copied.iter().any(|c| c == "benches"),
        "Cargo.toml names bench targets"
    );
}

#[tokio::test]
async fn the_image_filesystem_runs_the_image_command() {
    let stages = stages();
    let runtime = stages.last().unwrap();
    let user = runtime
        .iter()
        .rfind(|i| i.keyword == "USER")
        .map(|i| i.args.clone())
        .expect("the image names its user");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "the image runs as root");

    // The final stage's filesystem, as its COPYs make it.
    let root = tempfile::tempdir().unwrap();
    let image = |path: &str| root.path().join(path.trim_start_matches('/'));
    for i in runtime.iter().filter(|i| i.keyword == "COPY") {
        let (options, sources, dest) = copy_parts(&i.args);
        let from_build = options.contains(&"--from=build");
        for source in sources {
            let from = if !from_build {
                repo().join(source)
            } else if source == "/src/target/release/warden" {
                PathBuf::from(BIN)
            } else if let Some(path) = source.strip_prefix("/src/") {
                repo().join(path)
            } else if source.starts_with("/image/") {
                // Made by the build stage's `mkdir -p /image/…`.
                let made = root
                    .path()
                    .join("build")
                    .join(source.trim_start_matches('/'));
                std::fs::create_dir_all(&made).unwrap();
                made
            } else {
                panic!("COPY --from=build {source}: not something the build makes")
            };
            assert!(from.exists(), "COPY {source}: missing ({})", from.display());
            copy_all(&from, &image(dest));
        }
    }
    let workdir = runtime
        .iter()
        .rfind(|i| i.keyword == "WORKDIR")
        .map(|i| image(&i.args))
        .expect("the image sets its working directory");
    let exec_form = |keyword: &str| -> Vec<String> {
        let i = runtime.iter().find(|i| i.keyword == keyword).unwrap();
        serde_json::from_str(&i.args).unwrap_or_else(|e| panic!("{keyword} in exec form: {e}"))
    };
    let entrypoint = exec_form("ENTRYPOINT");
    let cmd = exec_form("CMD");
    assert_eq!(
        cmd.first().map(String::as_str),
        Some("serve"),
        "the image serves"
    );

    // The image's command, with its paths inside the laid-out root and its listeners on
    // loopback ports.
    let (port, admin) = (free_port(), free_port());
    let args: Vec<String> = cmd
        .iter()
        .map(|a| match a.as_str() {
            "0.0.0.0:8080" => format!("127.0.0.1:{port}"),
            "0.0.0.0:9090" => format!("127.0.0.1:{admin}"),
            a if a.starts_with('/') => image(a).display().to_string(),
            a => a.to_string(),
        })
        .collect();
    assert!(
        args.iter().any(|a| a.ends_with(&port.to_string())),
        "the command sets the proxy listener: {cmd:?}"
    );
    let binary = image(&entrypoint[0]);
    let log = root.path().join("warden.log");
    let child = Command::new(&binary)
        .args(&args)
        .current_dir(&workdir)
        .env_remove("OPENAI_API_KEY")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the image's binary starts");
    let mut child = KillOnDrop(child);
    let base = format!("http://127.0.0.1:{port}");
    for (port, what) in [(port, "the image's proxy"), (admin, "the image's admin")] {
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        if let Err(e) = common::listening(addr, &mut child.0, what) {
            panic!(
                "{e}; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }
    let ready = common::get(&format!("http://127.0.0.1:{admin}/readyz")).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let reply = common::post_json(
        &format!("{base}/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Do you stock the Alpine 40L Backpack?"}]}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.json()["choices"][0]["message"]["content"].is_string());
    // The audit spool is where the image made room for it.
    let spool = workdir.join("var/audit/spool");
    assert!(
        std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0) > 0,
        "no audit spool in {}",
        spool.display()
    );
}

/// Copies a file or a directory tree to `to`.
fn copy_all(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_all(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
