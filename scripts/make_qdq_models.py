#!/usr/bin/env python3
"""Make the int8 QDQ fixtures in tests/fixtures/qdq/ with onnxruntime's
static quantizer.

Two small float networks with random weights are written with onnx.helper
(opset 13), calibrated and quantized by
``onnxruntime.quantization.quantize_static`` (QuantFormat.QDQ, MinMax
calibration on random inputs, int8 weights), for per_channel in {False, True}
and activation_type in {QUInt8, QInt8}:

  mlp  (1, 64) -> Gemm 64->32 (transB=1, bias) -> Relu -> Gemm 32->10 -> logits
  cnn  (1, 1, 8, 8) -> Conv 3x3 8ch pad 1 -> Relu -> Conv 3x3 16ch stride 2 pad 1
       -> Relu -> Flatten (256) -> Gemm 256->10 -> logits

The quantized models are kept exactly as quantize_static writes them.  Every
``<name>.refs.npz`` holds

  inputs        (N, *input shape without batch) float32, N = 100
  outputs       onnxruntime, graph optimizations disabled (ORT_DISABLE_ALL):
                the QDQ graph as written -- float Gemm / Conv on dequantized
                values, QuantizeLinear rounding half to even with saturation
  outputs_int   the integers of the final QuantizeLinear (same run), int64
  outputs_fused onnxruntime with its default optimizations, which fuse the
                QDQ pairs into QLinearConv / QGemm / ... kernels (integer
                accumulation, fixed requantization); may differ from outputs
  outputs_exact the script's own numpy model of the QDQ graph with exact
                accumulation (float64 sums of the float32 dequantized
                operands, rounded once to float32); may differ from outputs
                only where a requantization input is within float rounding of
                a rounding boundary
  near_boundary (N,) int64: per input, requantization inputs within 1e-6
                (relative to sum |x_i * w_i| + |b|) of a rounding boundary

and the script prints how many elements differ between these.  index.json
gets one entry per model (family "qdq", output_kind "logits"); other entries
are kept.

Usage:
    python scripts/make_qdq_models.py [--out tests/fixtures]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "fixtures"
SEED = 20240606
N_CAL = 64
N_REFS = 100
NEAR_REL = 1e-6


def log(msg: str = "") -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------
# float models


def _he(rng, shape, fan_in):
    return (rng.normal(0, np.sqrt(2.0 / fan_in), size=shape)).astype(np.float32)


def float_mlp(rng) -> onnx.ModelProto:
    inits = [
        numpy_helper.from_array(_he(rng, (32, 64), 64), "fc0.weight"),
        numpy_helper.from_array((rng.normal(0, 0.1, 32)).astype(np.float32), "fc0.bias"),
        numpy_helper.from_array(_he(rng, (10, 32), 32), "fc1.weight"),
        numpy_helper.from_array((rng.normal(0, 0.1, 10)).astype(np.float32), "fc1.bias"),
    ]
    nodes = [
        helper.make_node("Gemm", ["input", "fc0.weight", "fc0.bias"], ["fc0_out"], name="fc0", transB=1),
        helper.make_node("Relu", ["fc0_out"], ["relu0_out"], name="relu0"),
        helper.make_node("Gemm", ["relu0_out", "fc1.weight", "fc1.bias"], ["logits"], name="fc1", transB=1),
    ]
    g = helper.make_graph(nodes, "qdq_mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 64])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="bnncc-make_qdq_models")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def float_cnn(rng) -> onnx.ModelProto:
    inits = [
        numpy_helper.from_array(_he(rng, (8, 1, 3, 3), 9), "conv0.weight"),
        numpy_helper.from_array((rng.normal(0, 0.1, 8)).astype(np.float32), "conv0.bias"),
        numpy_helper.from_array(_he(rng, (16, 8, 3, 3), 72), "conv1.weight"),
        numpy_helper.from_array((rng.normal(0, 0.1, 16)).astype(np.float32), "conv1.bias"),
        numpy_helper.from_array(_he(rng, (10, 256), 256), "fc.weight"),
        numpy_helper.from_array((rng.normal(0, 0.1, 10)).astype(np.float32), "fc.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "conv0.weight", "conv0.bias"], ["conv0_out"], name="conv0",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["conv0_out"], ["relu0_out"], name="relu0"),
        helper.make_node("Conv", ["relu0_out", "conv1.weight", "conv1.bias"], ["conv1_out"], name="conv1",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["conv1_out"], ["relu1_out"], name="relu1"),
        helper.make_node("Flatten", ["relu1_out"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    g = helper.make_graph(nodes, "qdq_cnn",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="bnncc-make_qdq_models")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def random_inputs(rng, n: int, shape) -> np.ndarray:
    """Standard normal inputs, float32, a few exact zeros."""
    x = rng.normal(0, 1, size=(n, *shape)).astype(np.float32)
    x[rng.random(x.shape) < 0.02] = 0.0
    return x


# ---------------------------------------------------------------------------
# quantization and references


def quantize(float_model: onnx.ModelProto, cal: np.ndarray, per_channel: bool, act_type: str) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    iname = float_model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{iname: x[None]} for x in cal])

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        fpath, qpath = Path(tmp) / "float.onnx", Path(tmp) / "qdq.onnx"
        onnx.save(float_model, str(fpath))
        quantize_static(str(fpath), str(qpath), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QUInt8 if act_type == "u8" else QuantType.QInt8,
                        weight_type=QuantType.QInt8)
        return onnx.load(str(qpath))


def ort_run(model: onnx.ModelProto, x: np.ndarray, optimize: bool, extra=()) -> list[np.ndarray]:
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for name in extra:
        m.graph.output.append(helper.make_empty_tensor_value_info(name))
    so = ort.SessionOptions()
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    iname = m.graph.input[0].name
    names = [m.graph.output[0].name, *extra]
    runs = [sess.run(names, {iname: v[None]}) for v in x]
    return [np.stack([r[i][0] for r in runs]) for i in range(len(names))]


def _attrs(n) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in n.attribute}


def _conv(x, w, b, strides, pads):
    ph, pw = pads[0], pads[1]
    x = np.pad(x, ((0, 0), (0, 0), (ph, pads[2]), (pw, pads[3])))
    kh, kw = w.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, :: strides[0], :: strides[1]]
    y = np.einsum("nchwij,ocij->nohw", win, w)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def exact_model(model: onnx.ModelProto, x: np.ndarray):
    """Numpy model of a QDQ graph: QuantizeLinear / DequantizeLinear as
    onnxruntime computes them (float32 division, round half to even,
    saturation; float32 (q - zp) * scale), Gemm / Conv / MatMul with exact
    accumulation of the dequantized operands, rounded once to float32.
    Returns (outputs, near-boundary count per input)."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    env = {model.graph.input[0].name: x.astype(np.float32)}
    mag = {}
    near = np.zeros(len(x), np.int64)
    for n in model.graph.node:
        get = lambda i: env[i] if i in env else inits[i]  # noqa: E731
        a = _attrs(n)
        op = n.op_type
        if op == "QuantizeLinear":
            v, s, z = get(n.input[0]), inits[n.input[1]], inits[n.input[2]]
            info = np.iinfo(z.dtype)
            q = np.rint(v.astype(np.float32) / s.astype(np.float32)).astype(np.float64) + float(z)
            m = mag.get(n.input[0])
            if m is not None:  # distance of the float input from a rounding boundary
                vv = v.astype(np.float64) / float(s)
                fl = np.floor(vv)
                rel = (fl + float(z) >= info.min) & (fl + 1 + float(z) <= info.max) & (m > 0)
                d = np.abs(vv - (fl + 0.5)) * float(s) / np.where(m > 0, m, 1)
                near += (rel & (d <= NEAR_REL)).reshape(len(x), -1).sum(1)
            env[n.output[0]] = np.clip(q, info.min, info.max).astype(z.dtype)
        elif op == "DequantizeLinear":
            q, s = get(n.input[0]), inits[n.input[1]]
            z = inits[n.input[2]] if len(n.input) > 2 else np.zeros_like(s, dtype=q.dtype)
            if s.ndim == 1 and s.size > 1 or "axis" in a:
                ax = a.get("axis", 1)
                shp = [1] * q.ndim
                shp[ax] = -1
                s, z = s.reshape(shp), z.reshape(shp)
            env[n.output[0]] = (q.astype(np.int64) - z.astype(np.int64)).astype(np.float32) * s.astype(np.float32)
        elif op in ("Gemm", "MatMul", "Conv"):
            xv, w = get(n.input[0]).astype(np.float64), get(n.input[1]).astype(np.float64)
            b = get(n.input[2]).astype(np.float64) if len(n.input) > 2 else None
            if op == "Conv":
                st, pd = a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0])
                y = _conv(xv, w, b, st, pd)
                m = _conv(np.abs(xv), np.abs(w), None if b is None else np.abs(b), st, pd)
            else:
                if a.get("transA", 0):
                    raise NotImplementedError("transA")
                wm = w.T if a.get("transB", 0) else w
                y = xv @ wm + (0 if b is None else b)
                m = np.abs(xv) @ np.abs(wm) + (0 if b is None else np.abs(b))
            env[n.output[0]] = y.astype(np.float32)
            mag[n.output[0]] = m
        elif op == "Relu":
            env[n.output[0]] = np.maximum(get(n.input[0]), np.float32(0))
        elif op == "Flatten":
            v = get(n.input[0])
            env[n.output[0]] = v.reshape(v.shape[0], -1)
        else:
            raise NotImplementedError(op)
    return env[model.graph.output[0].name], near


# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixtures folder (default tests/fixtures)")
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing hint
    out = args.out.resolve()
    (out / "qdq").mkdir(parents=True, exist_ok=True)
    entries = []
    for arch, make, shape in (("mlp", float_mlp, (1, 64)[1:]), ("cnn", float_cnn, (1, 8, 8))):
        rng = np.random.default_rng([SEED, 0 if arch == "mlp" else 1])
        fm = make(rng)
        cal = random_inputs(rng, N_CAL, shape)
        x = random_inputs(rng, N_REFS, shape)
        f_out = ort_run(fm, x, True)[0]
        for per_channel in (False, True):
            for act in ("u8", "s8"):
                name = f"qdq_{arch}_{'pc' if per_channel else 'pt'}_{act}"
                qm = quantize(fm, cal, per_channel, act)
                final_q = next(n for n in qm.graph.node if n.op_type == "DequantizeLinear"
                               and n.output[0] == qm.graph.output[0].name).input[0]
                ref, ref_q = ort_run(qm, x, False, extra=[final_q])
                (fused,) = ort_run(qm, x, True)
                exact, near = exact_model(qm, x)
                path = out / "qdq" / f"{name}.onnx"
                onnx.save(qm, str(path))
                np.savez_compressed(out / "qdq" / f"{name}.refs.npz", inputs=x, outputs=ref,
                                    outputs_int=ref_q.astype(np.int64), outputs_fused=fused,
                                    outputs_exact=exact.astype(np.float32), near_boundary=near)
                agree = (ref.argmax(-1) == f_out.argmax(-1)).mean()
                log(f"{name}: {path.stat().st_size} bytes, {len(qm.graph.node)} nodes; "
                    f"fused != unoptimized: {int((fused != ref).sum())} elements on "
                    f"{int((fused != ref).any(-1).sum())}/{len(x)} inputs; exact != unoptimized: "
                    f"{int((exact != ref).sum())}; near-boundary requantizations: {int(near.sum())} on "
                    f"{int((near > 0).sum())} inputs; argmax agrees with the float model on {agree:.0%}")
                entries.append({"name": name, "model": f"qdq/{name}.onnx", "refs": f"qdq/{name}.refs.npz",
                                "family": "qdq", "output_kind": "logits"})
    index_path = out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else []
    index = [e for e in index if e.get("family") != "qdq"] + entries
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    log(f"index: {index_path} ({len(entries)} qdq entries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
