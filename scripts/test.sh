#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, the Rust unit and integration tests
# (real Warden and mock-provider processes on 127.0.0.1), and the client-compatibility
# suites driven by the official openai Python SDK, LangChain and the openai npm package,
# the Helm chart's tests (helm-python-sdk, kubernetes-validate), and the self-hosted tier: a real model server (llama.cpp's llama-server, built once into
# a cache outside the repository by scripts/fetch-llama.sh) behind Warden.
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
echo "== client compatibility: openai and LangChain (Python)"
WARDEN_BIN="$target/debug/warden" .venv/bin/pytest -q tests/sdk
echo "== Helm chart: lint, render both modes, Kubernetes schemas, the rendered files run"
WARDEN_BIN="$target/debug/warden" .venv/bin/pytest -q tests/chart
echo "== client compatibility: openai (npm)"
WARDEN_BIN="$target/debug/warden" npm test --prefix tests/sdk-node --silent
echo "== self-hosted tier: llama-server with SmolLM2 (built once into a cache)"
llama_cache="$(scripts/fetch-llama.sh | tail -n 1)"
WARDEN_BIN="$target/debug/warden" LLAMA_CACHE="$llama_cache" .venv/bin/pytest -q tests/llama
