#!/usr/bin/env python3
"""Make the channels-last fixture tests/fixtures/tutorial/larq_nhwc_cnn.onnx.

A Larq-style BNN written as tf2onnx writes a Keras model (TensorFlow is not needed:
the graph is built with onnx.helper, node for node in tf2onnx's form):

  input (unk__41, 12, 12, 3) NHWC float pixels (8-bit values / 256)
  -> Transpose(0, 3, 1, 2) -> Conv 3x3 16 (kernel constant-folded to +-1, no bias)
  -> BatchNormalization -> larq's ste_sign as Sign(Sign(x) + 0.1) (sign(0) = +1)
  -> Conv 3x3 16 -> MaxPool 2 -> BatchNormalization -> Sign(Sign(x) + 0.1)
  -> Transpose(0, 2, 3, 1) back to NHWC -> Reshape(-1, 256) (Keras Flatten order)
  -> MatMul 256x10 (+-1) -> BatchNormalization (as Mul + Add, tf2onnx's form for a
  BatchNormalization after Dense) -> Softmax

The refs (`inputs`, 100 frames, and onnxruntime's `outputs`) go beside it and the
index entry declares the input type (UINT8 x 1/256). Usage:
    python scripts/make_nhwc_model.py [--out tests/fixtures]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "fixtures"
SCALE = 1.0 / 256
NAME = "larq_nhwc_cnn"


def build(rng) -> onnx.ModelProto:
    f32 = np.float32
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def bn(x, c, name, spread):
        g = rng.uniform(0.5, 1.5, c) * np.where(rng.random(c) < 0.2, -1, 1)
        ins = [const(f"{name}/gamma", g.astype(f32)), const(f"{name}/beta", rng.uniform(-.3, .3, c).astype(f32)),
               const(f"{name}/mean", rng.uniform(-spread, spread, c).astype(f32)),
               const(f"{name}/var", rng.uniform(0.5, 2, c).astype(f32) * spread ** 2)]
        nodes.append(helper.make_node("BatchNormalization", [x] + ins, [f"{name}/y"], name=name,
                                      epsilon=1e-3))
        return f"{name}/y"

    def ste_sign(x, name):
        nodes.append(helper.make_node("Sign", [x], [f"{name}/s0"], name=f"{name}/Sign"))
        nodes.append(helper.make_node("Add", [f"{name}/s0", const(f"{name}/eps", f32(0.1))],
                                      [f"{name}/a"], name=f"{name}/add"))
        nodes.append(helper.make_node("Sign", [f"{name}/a"], [f"{name}/y"], name=f"{name}/Sign_1"))
        return f"{name}/y"

    def conv(x, cin, cout, name):
        w = rng.choice([-1.0, 1.0], (cout, cin, 3, 3)).astype(f32)
        nodes.append(helper.make_node("Conv", [x, const(f"{name}/kernel", w)], [f"{name}/y"],
                                      name=name, kernel_shape=[3, 3], strides=[1, 1],
                                      pads=[0, 0, 0, 0], dilations=[1, 1]))
        return f"{name}/y"

    nodes.append(helper.make_node("Transpose", ["input_1"], ["t0"], name="conv2d__6", perm=[0, 3, 1, 2]))
    x = bn(conv("t0", 3, 16, "conv2d"), 16, "bn", 3.0)
    x = ste_sign(x, "q1")
    x = conv(x, 16, 16, "conv2d_1")
    nodes.append(helper.make_node("MaxPool", [x], ["mp"], name="max_pooling2d",
                                  kernel_shape=[2, 2], strides=[2, 2]))
    x = ste_sign(bn("mp", 16, "bn_1", 12.0), "q2")
    nodes.append(helper.make_node("Transpose", [x], ["t1"], name="flatten__21", perm=[0, 2, 3, 1]))
    nodes.append(helper.make_node("Reshape", ["t1", const("flatten/shape", np.array([-1, 256], np.int64))],
                                  ["flat"], name="flatten/Reshape"))
    w = rng.choice([-1.0, 1.0], (256, 10)).astype(f32)
    nodes.append(helper.make_node("MatMul", ["flat", const("dense/kernel", w)], ["d"], name="dense/MatMul"))
    mul = (rng.uniform(0.05, 0.2, 10)).astype(f32)
    add = rng.uniform(-1, 1, 10).astype(f32)
    nodes.append(helper.make_node("Mul", ["d", const("bn_2/mul", mul)], ["dm"], name="bn_2/mul_1"))
    nodes.append(helper.make_node("Add", ["dm", const("bn_2/add", add)], ["da"], name="bn_2/add_1"))
    nodes.append(helper.make_node("Softmax", ["da"], ["activation"], name="activation/Softmax", axis=-1))
    g = helper.make_graph(nodes, "tf2onnx",
                          [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__41", 12, 12, 3])],
                          [helper.make_tensor_value_info("activation", TensorProto.FLOAT, ["unk__42", 10])],
                          initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="tf2onnx",
                          producer_version="1.16.1 15c810")
    onnx.checker.check_model(m)
    return m


def main(argv=None) -> int:
    import onnxruntime as ort
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(20261202)
    m = build(rng)
    folder = a.out / "tutorial"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{NAME}.onnx"
    onnx.save(m, str(path))
    x = (rng.integers(0, 256, (100, 12, 12, 3)) * SCALE).astype(np.float32)
    y = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input_1": x})[0]
    np.savez_compressed(folder / f"{NAME}.refs.npz", inputs=x, outputs=y)
    index_path = a.out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else []
    entry = {"name": NAME, "model": f"tutorial/{NAME}.onnx", "refs": f"tutorial/{NAME}.refs.npz",
             "family": "tutorial", "output_kind": "logits", "input_type": "UINT8",
             "input_scale": SCALE}
    index = [e for e in index if e["name"] != NAME] + [entry]
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    print(f"{path}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
