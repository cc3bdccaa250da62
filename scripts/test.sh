#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, the Rust unit and integration tests
# (real Warden and mock-provider processes on 127.0.0.1), and the client-compatibility
# suite driven by the official openai Python SDK.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --with-python

target="${CARGO_TARGET_DIR:-$PWD/target}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked --no-fail-fast
echo "== policy tests (policies/tests)"
"$target/debug/warden" policy check policies --config warden.yaml
"$target/debug/warden" policy test policies
echo "== openai SDK compatibility suite"
WARDEN_BIN="$target/debug/warden" .venv/bin/pytest -q tests/sdk
