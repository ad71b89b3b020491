"""QOperator networks: the qdq-fc / qdq-conv families in the form onnxruntime writes
when it fuses QDQ pairs into QLinearConv / QLinearMatMul / com.microsoft QGemm (the
kernels quantize_static(quant_format=QOperator) also writes).

``random_qop_network(seed)`` takes ``random_int_network`` number ``seed`` of a QDQ
family, lets onnxruntime fuse it (ORT_ENABLE_EXTENDED, saved with
optimized_model_filepath) and keeps the fused graph; ``outputs`` are onnxruntime's on
that graph with optimizations off (its QOperator kernels exactly). Graphs with a kernel
bnncc refuses (QLinearAdd: float or fixed point depending on the CPU path) are replaced
by the next network of the family (seed + 100000 k).

``qop-res`` networks are built directly in the form quantize_static(QOperator) writes
for a small ResNet: QuantizeLinear, a QLinearConv stem (3x3, per-channel int8 weights,
int32 bias), one or two residual blocks (one or two QLinearConvs, then a com.microsoft
QLinearAdd of the block and its shortcut, the stem or the previous block; one block in
five a QLinearConcat of the two instead), then a
QLinearGlobalAveragePool head (channels_last 0) or a flatten, a QGemm and
DequantizeLinear. Output scales and zero points come from MinMax calibration on 16
extra inputs. ``meta["near_boundary"]`` says whether any QLinearAdd of two streams
lands within float32 noise (1e-6 relative) of a rounding tie on the test inputs: only
there, and only when bnncc cannot tabulate the kernel and rounds the exact sum instead
(docs/qoperator.md), may onnxruntime and the integer design differ.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .common import NetCase
from .integer import random_int_network

QOP_FAMILIES = ("qop-fc", "qop-conv", "qop-res")
REFUSED = {"QLinearLeakyRelu", "QLinearSigmoid", "QLinearAveragePool"}
MS = "com.microsoft"
_F32 = np.float32


def _fuse(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxruntime as ort
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "fused.onnx")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = path
        so.log_severity_level = 3
        ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return onnx.load(path)


def _run(model: onnx.ModelProto, inputs: np.ndarray, extra: list | None = None):
    """onnxruntime (optimizations off) frame by frame; with ``extra`` tensor names, also
    their values (a copy of the model exposes them as outputs)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    if extra:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        model.graph.output.extend([onnx.ValueInfoProto(name=n) for n in extra])
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    runs = [s.run(None, {name: inputs[i:i + 1]}) for i in range(len(inputs))]
    outs = [np.concatenate([r[k] for r in runs]) for k in range(len(runs[0]))]
    return (outs[0], outs[1:]) if extra is not None else outs[0]


def random_qop_network(seed: int, family: str | None = None, n_inputs: int = 8) -> NetCase:
    if family is None:
        family = QOP_FAMILIES[seed % len(QOP_FAMILIES)]
    if family not in QOP_FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {QOP_FAMILIES}")
    if family == "qop-res":
        return _residual_network(seed, n_inputs)
    base_family = family.replace("qop-", "qdq-")
    for k in range(64):
        base = random_int_network(seed + 100_000 * k, base_family, n_inputs)
        model = _fuse(base.model)
        ops = {n.op_type for n in model.graph.node}
        if not ops & REFUSED and ops & {"QLinearConv", "QLinearMatMul", "QGemm"}:
            break
    model.producer_version = ""
    meta = {"base": base.name, "ops": sorted(ops)}
    return NetCase(name=f"{family}-s{seed}", model=model, inputs=base.inputs,
                   outputs=_run(model, base.inputs), family=family, meta=meta)


# -- qop-res: built directly, calibrated in numpy, referenced by onnxruntime -------------
def _minmax(r: np.ndarray, relu: bool):
    """quantize_static's MinMax parameters (uint8, the range widened to hold 0)."""
    lo, hi = min(float(r.min()), 0.0), max(float(r.max()), 0.0)
    if relu:
        lo = 0.0
    s = _F32(max(hi - lo, 1e-3) / 255)
    return s, int(np.clip(round(-lo / float(s)), 0, 255))


def _conv_acc(q, zq, w, bias):
    """Exact int64 accumulators of a 3x3 / 1x1 'same' conv of (N, C, H, W) codes."""
    k = w.shape[-1]
    p = k // 2
    x = np.pad(q.astype(np.int64) - zq, ((0, 0), (0, 0), (p, p), (p, p)))
    n, _, h, wd = q.shape
    acc = np.zeros((n, w.shape[0], h, wd), np.int64)
    for i in range(k):
        for j in range(k):
            acc += np.einsum("nchw,oc->nohw", x[:, :, i:i + h, j:j + wd], w[:, :, i, j].astype(np.int64))
    return acc + bias.reshape(1, -1, 1, 1)


def _requant(acc, mult, zy):
    return np.clip(np.round(acc.astype(_F32) * mult.astype(_F32)) + zy, 0, 255).astype(np.int64)


class _QopBuilder:
    def __init__(self, rng):
        self.rng, self.nodes, self.inits, self.n = rng, [], [], 0

    def const(self, name, v):
        self.inits.append(numpy_helper.from_array(np.asarray(v), name))
        return name

    def conv(self, x, q, sx, zx, cout, k, relu):
        """QLinearConv of codes q (N, C, H, W): per-channel int8 weights, int32 bias."""
        rng, i = self.rng, self.n
        self.n += 1
        cin = q.shape[1]
        w = rng.integers(-127, 128, size=(cout, cin, k, k)).astype(np.int8)
        ws = (rng.uniform(0.5, 2, cout) / (127 * np.sqrt(cin * k * k))).astype(_F32)
        bias = rng.integers(-2000, 2000, cout).astype(np.int32)
        acc = _conv_acc(q, zx, w, bias)
        real = acc * (np.float64(sx) * ws.astype(np.float64)).reshape(1, -1, 1, 1)
        sy, zy = _minmax(real, relu)
        out = f"conv{i}_quantized"
        ins = [x, f"{x}_scale", f"{x}_zero_point", self.const(f"conv{i}.w", w), self.const(f"conv{i}.ws", ws),
               self.const(f"conv{i}.wzp", np.zeros(cout, np.int8)), self.const(f"{out}_scale", sy),
               self.const(f"{out}_zero_point", np.uint8(zy)), self.const(f"conv{i}.b", bias)]
        self.nodes.append(helper.make_node("QLinearConv", ins, [out], name=f"conv{i}", kernel_shape=[k, k],
                                           pads=[k // 2] * 4))
        mult = (_F32(sx) * ws / sy).astype(_F32).reshape(1, -1, 1, 1)
        return out, _requant(acc, mult, zy), sy, zy

    def add(self, a, qa, sa, za, b, qb, sb, zb):
        real = float(sa) * (qa - za) + float(sb) * (qb - zb)
        sc, zc = _minmax(real, self.rng.random() < 0.5)
        out = f"add{self.n}_quantized"
        self.n += 1
        ins = [a, f"{a}_scale", f"{a}_zero_point", b, f"{b}_scale", f"{b}_zero_point",
               self.const(f"{out}_scale", sc), self.const(f"{out}_zero_point", np.uint8(zc))]
        self.nodes.append(helper.make_node("QLinearAdd", ins, [out], name=out[:-10], domain=MS))
        qc = np.clip(np.round(real / float(sc)) + zc, 0, 255).astype(np.int64)
        return out, qc, sc, zc

    def concat(self, parts):
        """com.microsoft QLinearConcat on the channel axis of (name, codes, scale, zp)."""
        real = np.concatenate([float(s) * (q - z) for _, q, s, z in parts], axis=1)
        sc, zc = _minmax(real, False)
        out = f"concat{self.n}_quantized"
        self.n += 1
        ins = [self.const(f"{out}_scale", sc), self.const(f"{out}_zero_point", np.uint8(zc))]
        for name, *_ in parts:
            ins += [name, f"{name}_scale", f"{name}_zero_point"]
        self.nodes.append(helper.make_node("QLinearConcat", ins, [out], name=out[:-10], domain=MS,
                                           axis=1))
        qc = np.clip(np.round(real / float(sc)) + zc, 0, 255).astype(np.int64)
        return out, qc, sc, zc


def _residual_network(seed: int, n_inputs: int) -> NetCase:
    rng = np.random.default_rng([seed, 7707])
    cin, c = int(rng.integers(1, 4)), int(rng.choice([2, 4, 6, 8]))
    h, w = int(rng.integers(4, 9)), int(rng.integers(4, 9))
    x = rng.uniform(-1, 1, size=(n_inputs + 16, cin, h, w)).astype(_F32)
    B = _QopBuilder(rng)
    sx, zx = _minmax(x, False)
    B.const("input_quantized_scale", sx), B.const("input_quantized_zero_point", np.uint8(zx))
    B.nodes.append(helper.make_node("QuantizeLinear", ["input", "input_quantized_scale",
                                                       "input_quantized_zero_point"],
                                    ["input_quantized"], name="input_QuantizeLinear"))
    q = np.clip(np.round(x / sx) + zx, 0, 255).astype(np.int64)
    t, qt, st, zt = B.conv("input_quantized", q, sx, zx, c, 3, True)
    blocks, joins = [], []
    for _ in range(int(rng.integers(1, 3))):
        y, qy, sy, zy = t, qt, st, zt
        n_conv = int(rng.integers(1, 3))
        for j in range(n_conv):
            y, qy, sy, zy = B.conv(y, qy, sy, zy, qt.shape[1], int(rng.choice([1, 3])),
                                   j < n_conv - 1)
        if rng.random() < 0.2:    # a dense block: concat the branch and its input
            t, qt, st, zt = B.concat([(y, qy, sy, zy), (t, qt, st, zt)])
            joins.append("concat")
        else:
            t, qt, st, zt = B.add(y, qy, sy, zy, t, qt, st, zt)
            joins.append("add")
        blocks.append(n_conv)
    gap = bool(rng.random() < 0.7)
    if gap:
        real = float(st) * (qt.mean(axis=(2, 3)) - zt)
        sg, zg = _minmax(real, False)
        B.const("gap_quantized_scale", sg), B.const("gap_quantized_zero_point", np.uint8(zg))
        B.nodes.append(helper.make_node("QLinearGlobalAveragePool", [t, f"{t}_scale", f"{t}_zero_point",
                                                                     "gap_quantized_scale",
                                                                     "gap_quantized_zero_point"],
                                        ["gap_quantized"], name="gap", domain=MS, channels_last=0))
        scale = _F32(st / _F32(sg * _F32(h * w)))
        acc = qt.sum(axis=(2, 3)) - zt * h * w
        t, qt, st, zt = "gap_quantized", _requant(acc, np.asarray(scale), zg), sg, zg
    B.nodes.append(helper.make_node("Flatten", [t], ["flat_quantized"], name="flatten"))
    B.const("flat_quantized_scale", st), B.const("flat_quantized_zero_point", np.uint8(zt))
    qf = qt.reshape(len(qt), -1)
    n_out, k = int(rng.integers(2, 11)), qf.shape[1]
    wf = rng.integers(-127, 128, size=(n_out, k)).astype(np.int8)
    wsf = (rng.uniform(0.5, 2, n_out) / (127 * np.sqrt(k))).astype(_F32)
    bf = rng.integers(-2000, 2000, n_out).astype(np.int32)
    accf = (qf - zt) @ wf.T.astype(np.int64) + bf
    so, zo = _minmax(accf * (np.float64(st) * wsf.astype(np.float64)), False)
    B.nodes.append(helper.make_node("QGemm", ["flat_quantized", "flat_quantized_scale", "flat_quantized_zero_point",
                                              B.const("fc.w", wf), B.const("fc.ws", wsf),
                                              B.const("fc.wzp", np.zeros(n_out, np.int8)), B.const("fc.b", bf),
                                              B.const("logits_scale", so), B.const("logits_zero_point", np.uint8(zo))],
                                    ["logits_quantized"], name="fc", domain=MS, transB=1))
    B.nodes.append(helper.make_node("DequantizeLinear", ["logits_quantized", "logits_scale", "logits_zero_point"],
                                    ["logits"], name="logits_DequantizeLinear"))
    g = helper.make_graph(B.nodes, "qop_res", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, cin, h, w])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, n_out])], B.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(MS, 1)],
                              producer_name="onnx.quantize")
    model.ir_version = 8
    inputs = x[:n_inputs]
    adds = [n for n in B.nodes if n.op_type == "QLinearAdd"]
    outputs, probes = _run(model, inputs, [i for n in adds for i in (n.input[0], n.input[3])])
    near = any(_add_near_tie(model, n, probes[2 * j], probes[2 * j + 1]) for j, n in enumerate(adds))
    meta = {"ops": sorted({n.op_type for n in B.nodes}), "blocks": blocks, "joins": joins, "gap": gap,
            "near_boundary": near}
    return NetCase(name=f"qop-res-s{seed}", model=model, inputs=inputs, outputs=outputs,
                   family="qop-res", meta=meta)


def _add_near_tie(model, node, a, b) -> bool:
    """Whether MLAS's QLinearAdd value rA * a + rB * b + F (docs/qoperator.md) comes within
    1e-6 (relative to its terms) of a rounding tie on these operand codes."""
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    sa, za, sb, zb, sc, zc = (init[node.input[i]] for i in (1, 2, 4, 5, 6, 7))
    ra, rb = _F32(sa / sc), _F32(sb / sc)
    f = _F32(_F32(zc) - _F32(np.float64(ra) * int(za) + np.float64(_F32(rb * _F32(int(zb))))))
    va, vb = a.astype(np.float64) * np.float64(ra), b.astype(np.float64) * np.float64(rb)
    v = va + vb + np.float64(f)
    return bool(np.any(np.abs(v - np.floor(v) - 0.5) <= 1e-6 * (np.abs(va) + np.abs(vb) + abs(float(f)))))
