"""Derives the int8 NER model Warden runs from the published 4-bit one.

The Rampart model ships as `model_q4.onnx`, whose 4-bit `MatMulNBits` weights ONNX Runtime
multiplies in float on CPU. This script expands those weights back to float `MatMul`s
(exactly: every 4-bit value times its block's scale, zero point 8) and quantizes the result
with ONNX Runtime's dynamic int8 quantization, whose integer kernels run about three times
faster on one core. The output is deterministic for pinned package versions;
`scripts/fetch-models.sh` checks it against a pinned SHA-256, and the PII evaluation set
(`warden pii eval`) holds it to the same targets as the 4-bit model.

    python quantize-ner.py model_q4.onnx model_int8.onnx
"""

import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic


def expand(model):
    """Replaces every MatMulNBits node by a MatMul with its float weights."""
    inits = {i.name: i for i in model.graph.initializer}
    nodes, dropped, added = [], set(), []
    for node in model.graph.node:
        if node.op_type != "MatMulNBits":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        k, n, block, bits = attrs["K"], attrs["N"], attrs["block_size"], attrs.get("bits", 4)
        if bits != 4 or (len(node.input) > 3 and node.input[3]) or k % block:
            raise SystemExit(f"{node.name}: only 4-bit blocks without zero points are handled")
        packed = numpy_helper.to_array(inits[node.input[1]])  # [N, blocks, block/2]
        scales = numpy_helper.to_array(inits[node.input[2]]).reshape(n, -1)
        values = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(n, -1, block)
        weights = ((values.astype(np.float32) - 8.0) * scales[:, :, None]).reshape(n, k)
        name = node.input[1] + "_float"
        added.append(numpy_helper.from_array(np.ascontiguousarray(weights.T), name))
        dropped.update(node.input[1:])
        nodes.append(helper.make_node("MatMul", [node.input[0], name], list(node.output), name=node.name))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    kept = [i for i in model.graph.initializer if i.name not in dropped]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept + added)
    return model


def main():
    source, target = sys.argv[1:3]
    with tempfile.TemporaryDirectory() as work:
        expanded = f"{work}/model_float.onnx"
        onnx.save(expand(onnx.load(source)), expanded)
        quantize_dynamic(expanded, target, weight_type=QuantType.QInt8)


if __name__ == "__main__":
    main()
