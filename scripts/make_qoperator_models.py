#!/usr/bin/env python3
"""Make the QOperator fixtures in tests/fixtures/qop/ with onnxruntime's static quantizer
(quantize_static(quant_format=QuantFormat.QOperator), per-channel int8 weights, uint8
activations, MinMax calibration on random inputs):

  qop_cnn_pc_u8     the float CNN of make_qdq_models.py (Conv, Conv, Gemm) ->
                    QLinearConv, QLinearConv, QGemm; supported, bit-exact
  qop_rescnn_pc_u8  a small ResNet: conv-BN-relu stem, a residual block (conv-BN-relu,
                    conv-BN, + shortcut, relu), GlobalAveragePool, Gemm; BatchNorm folded
                    by onnxruntime's pre-processing (quant_pre_process) -> QLinearConv,
                    com.microsoft QLinearAdd, QLinearGlobalAveragePool, QGemm

`<name>.refs.npz` holds `inputs` (100) and onnxruntime's `outputs` (optimizations off).

Usage:
    python scripts/make_qoperator_models.py [--out tests/fixtures]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_qdq_models import _he, float_cnn, random_inputs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "fixtures"
SEED = 20261203


def float_rescnn(rng) -> onnx.ModelProto:
    """conv-BN-relu stem, one residual block (conv-BN-relu, conv-BN, + shortcut, relu),
    GlobalAveragePool and a Gemm head: how a small ResNet is written in PyTorch."""
    c = 8
    inits, nodes = [], []

    def conv_bn(x, y, cin, relu):
        inits.extend([numpy_helper.from_array(_he(rng, (c, cin, 3, 3), 9 * cin), f"{y}.w"),
                      numpy_helper.from_array(rng.normal(0, .1, c).astype(np.float32), f"{y}.b"),
                      numpy_helper.from_array(rng.uniform(.5, 1.5, c).astype(np.float32), f"{y}.g"),
                      numpy_helper.from_array(rng.normal(0, .1, c).astype(np.float32), f"{y}.beta"),
                      numpy_helper.from_array(rng.normal(0, .1, c).astype(np.float32), f"{y}.mean"),
                      numpy_helper.from_array(rng.uniform(.5, 2, c).astype(np.float32), f"{y}.var")])
        nodes.append(helper.make_node("Conv", [x, f"{y}.w", f"{y}.b"], [f"{y}.c"], name=f"{y}.conv",
                                      kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        out = f"{y}.bn" if relu else y
        nodes.append(helper.make_node("BatchNormalization", [f"{y}.c", f"{y}.g", f"{y}.beta", f"{y}.mean",
                                                              f"{y}.var"], [out], name=f"{y}.bn"))
        if relu:
            nodes.append(helper.make_node("Relu", [out], [y], name=f"{y}.relu"))
        return y

    s = conv_bn("input", "stem", 1, True)
    h = conv_bn(s, "b1a", c, True)
    h = conv_bn(h, "b1b", c, False)
    nodes += [helper.make_node("Add", [h, s], ["sum"], name="add"),
              helper.make_node("Relu", ["sum"], ["r"], name="relu"),
              helper.make_node("GlobalAveragePool", ["r"], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], name="fc", transB=1)]
    inits += [numpy_helper.from_array(_he(rng, (10, c), c), "fc.w"),
              numpy_helper.from_array(rng.normal(0, .1, 10).astype(np.float32), "fc.b")]
    g = helper.make_graph(nodes, "rescnn", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="bnncc-make_qoperator_models")
    m.ir_version = 8
    return m


def quantize_qop(float_model, cal) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    iname = float_model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{iname: x[None]} for x in cal])

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        fpath, qpath = Path(tmp) / "float.onnx", Path(tmp) / "qop.onnx"
        onnx.save(float_model, str(fpath))
        if any(n.op_type == "BatchNormalization" for n in float_model.graph.node):
            # onnxruntime's documented pre-processing step: folds BatchNorm into the Conv
            from onnxruntime.quantization.shape_inference import quant_pre_process
            quant_pre_process(str(fpath), str(fpath), skip_symbolic_shape=True)
        quantize_static(str(fpath), str(qpath), Reader(), quant_format=QuantFormat.QOperator,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return onnx.load(str(qpath))


def ort_outputs(model, x):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    folder = a.out / "qop"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    index_path = a.out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else []
    for name, build in (("qop_cnn_pc_u8", float_cnn), ("qop_rescnn_pc_u8", float_rescnn)):
        fm = build(rng)
        q = quantize_qop(fm, random_inputs(rng, 64, (1, 8, 8)))
        x = random_inputs(rng, 100, (1, 8, 8))
        onnx.save(q, str(folder / f"{name}.onnx"))
        np.savez_compressed(folder / f"{name}.refs.npz", inputs=x, outputs=ort_outputs(q, x))
        print(name, sorted({(n.domain, n.op_type) for n in q.graph.node}))
        entry = {"name": name, "model": f"qop/{name}.onnx", "refs": f"qop/{name}.refs.npz",
                 "family": "qop", "output_kind": "logits"}
        index = [e for e in index if e["name"] != name] + [entry]
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
