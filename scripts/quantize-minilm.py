"""Derives the sentence-embedding model Warden runs from the published all-MiniLM-L6-v2 int8.

The published model stores its weights as int8 but casts them back to float inside the
graph, so ONNX Runtime runs float matrix products. This script folds those casts (ONNX
Runtime's basic, hardware-independent graph optimizations, written out as a model) and
quantizes the result with ONNX Runtime's dynamic int8 quantization, per channel, whose
integer kernels run about twice as fast on one core; embeddings stay within a cosine of
0.98 of the published model's. The output is deterministic for pinned package versions;
`scripts/fetch-models.sh` checks it against a pinned SHA-256, and the tool-selection
query sets (`warden tools eval`) hold it to the selection targets.

    python quantize-minilm.py model.onnx model_dynamic_int8.onnx
"""

import sys
import tempfile

import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic


def main():
    source, target = sys.argv[1:3]
    with tempfile.TemporaryDirectory() as work:
        folded = f"{work}/model_folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = folded
        ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        quantize_dynamic(folded, target, weight_type=QuantType.QInt8, per_channel=True)


if __name__ == "__main__":
    main()
