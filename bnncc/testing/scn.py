"""Random self-compressing networks (per-output-channel weight bit widths, some of them
zero) in both forms exporters write, with references.

A self-compressing network quantizes each output channel c of a weight tensor with its
own bit depth b_c >= 0 and exponent e_c: q = 2^e_c * round(clamp(w / 2^e_c)). In QONNX
that is one weight `Quant` whose `scale` and `bitwidth` are per-channel tensors (the
*tensor* form), or one scalar-width `Quant` per bit depth followed by `Concat` and a
`Gather` that restores the channel order (the *grouped* form). qonnx 1.0.0's executor
only runs the grouped form (its int_quant tests `bitwidth == 1` as a scalar), so the
reference is the grouped form through the stock executor; `elementwise_reference` runs
either form through the executor with an element-wise int_quant of our own (checked
against the stock one in the tests) for activation quantizers with per-channel widths.

Every scale is a power of two and every float op exact in float32 (dyadic weights,
biases and inputs), so golden and reference agree bit for bit, with no near-tie noise.
Zero-bit channels get a non-zero bias, so their outputs are constant but not zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX = "qonnx.custom_op.general"


@dataclass
class ScnCase:
    name: str
    tensor: onnx.ModelProto        # per-channel bitwidth tensors
    grouped: onnx.ModelProto       # one Quant per bit depth + Concat + Gather
    inputs: np.ndarray
    outputs: np.ndarray            # reference outputs
    zero_channels: int             # zero-bit weight channels in layers before the last
    meta: dict = field(default_factory=dict)


class ScnGraph:
    """A small graph builder; `form` picks how per-channel weight widths are written."""

    def __init__(self, form: str):
        self.form, self.nodes, self.inits, self.k = form, [], [], 0

    def name(self, p: str) -> str:
        self.k += 1
        return f"{p}{self.k}"

    def const(self, arr, p="c") -> str:
        n = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), n))
        return n

    def node(self, op, ins, domain="", **attrs) -> str:
        out = self.name(op.lower() + "_")
        self.nodes.append(helper.make_node(op, ins, [out], name=out, domain=domain, **attrs))
        return out

    def quant(self, x, scale, bits, signed=True, narrow=False) -> str:
        return self.node("Quant", [x, self.const(np.float32(scale) if np.ndim(scale) == 0 else
                                                 scale.astype(np.float32), "s"),
                                   self.const(np.float32(0), "z"),
                                   self.const(np.asarray(bits, np.float32), "b")],
                         domain=QONNX, signed=int(signed), narrow=int(narrow),
                         rounding_mode="ROUND")

    def weight(self, w: np.ndarray, exps: np.ndarray, bits: np.ndarray, axis: int) -> str:
        """Quantized weight tensor, output channels along `axis`."""
        shape = [1] * w.ndim
        shape[axis] = w.shape[axis]
        scale = (2.0 ** exps).reshape(shape).astype(np.float32)
        if self.form == "tensor":
            return self.quant(self.const(w.astype(np.float32), "w"), scale,
                              bits.reshape(shape).astype(np.float32))
        parts, order = [], []
        for b in sorted(set(int(v) for v in bits)):
            idx = np.flatnonzero(bits == b)
            wb = np.take(w, idx, axis=axis).astype(np.float32)
            sb = np.take(scale, idx, axis=axis)
            parts.append(self.quant(self.const(wb, "w"), sb, np.float32(b)))
            order.extend(idx.tolist())
        cat = self.node("Concat", parts, axis=axis) if len(parts) > 1 else parts[0]
        inv = np.argsort(np.asarray(order)).astype(np.int64)
        return self.node("Gather", [cat, self.const(inv, "perm")], axis=axis)


def _draw_bits(rng, n: int, max_bits: int) -> np.ndarray:
    bits = rng.integers(1, max_bits + 1, n)
    zero = rng.random(n) < rng.uniform(0.15, 0.5)
    zero[rng.integers(n)] = False               # at least one live channel
    bits[zero] = 0
    return bits


def _dyadic_weights(rng, shape, bits, exps, axis):
    """Floats that the per-channel quantizer maps to spread-out integers (and some
    outside the range, which it clamps)."""
    shp = [1] * len(shape)
    shp[axis] = shape[axis]
    hi = (2.0 ** np.maximum(bits - 1, 0)).reshape(shp)
    w = rng.integers(-4, 5, shape) / 4.0 * hi * 1.25
    return (w * (2.0 ** exps).reshape(shp)).astype(np.float32)


def _activation(G, rng, x, c: int, conv: bool, act: dict, per_channel_act: bool,
                scale=None) -> str:
    if act["kind"] == "bipolar":
        return G.node("BipolarQuant", [x, G.const(np.float32(1.0), "s")], domain=QONNX)
    x = G.node("Relu", [x])
    bits = act["bits"]
    if per_channel_act:
        shape = (1, c, 1, 1) if conv else (1, c)
        bits = rng.integers(0, act["bits"] + 1, c).reshape(shape).astype(np.float32)
    scale = np.float32(act["scale"]) if scale is None else scale
    return G.quant(x, scale, bits, signed=False)


def _scn_layer(G, rng, x, shape: list, co: int, kk: int = 1, pad: int = 0):
    """One self-compressing conv (kk x kk, `pad` each side) or FC layer plus bias:
    (pre-activation tensor, output shape, zero-bit channel mask)."""
    bits = _draw_bits(rng, co, 4)
    exps = rng.integers(-4, 1, co)
    if len(shape) == 4:
        w = _dyadic_weights(rng, (co, shape[1], kk, kk), bits, exps, 0)
        y = G.node("Conv", [x, G.weight(w, exps, bits, 0)], kernel_shape=[kk, kk],
                   pads=[pad] * 4)
        b = (rng.integers(-8, 9, co) / 8.0).reshape(1, co, 1, 1).astype(np.float32)
        out = [1, co, shape[2] - kk + 1 + 2 * pad, shape[3] - kk + 1 + 2 * pad]
    else:
        w = _dyadic_weights(rng, (shape[1], co), bits, exps, 1)
        y = G.node("MatMul", [x, G.weight(w, exps, bits, 1)])
        b = (rng.integers(-8, 9, co) / 8.0).reshape(1, co).astype(np.float32)
        out = [1, co]
    return G.node("Add", [y, G.const(b, "bias")]), out, bits == 0


JOINS = ("add", "add_pc", "concat")


def _join(G, rng, x, shape: list, act: dict, per_channel_act: bool, kind: str):
    """A two-branch block on x (C channels, the trunk's activation scale): branch A is a
    self-compressing layer, branch B the identity or another one; `add` sums them
    (one scale ratio: AddStreams), `add_pc` with per-channel power-of-two scales on A
    (the float residual add the front end lowers to ka[c] * a + kb[c] * b), then
    requantizes; `concat` stacks their channels. Returns (output, shape, zero channels
    the pruning must remove, all zero channels, meta)."""
    C, conv = shape[1], len(shape) == 4
    bshape = [1, C] + [1] * (len(shape) - 2)
    pc = kind == "add_pc" and act["kind"] == "uint"
    if pc:
        k = rng.integers(-1, 2, C)
        k[:2] = [0, 1]
        rng.shuffle(k)
        scale_a = (act["scale"] * 2.0 ** k).reshape(bshape).astype(np.float32)
    else:
        scale_a = None

    def branch(scale):
        kk = int(rng.choice([1, 3])) if conv else 1
        y, _, zero = _scn_layer(G, rng, x, shape, C, kk, kk // 2)
        return _activation(G, rng, y, C, conv, act, per_channel_act, scale), zero, kk > 1

    a, za, pa = branch(scale_a)
    two = bool(rng.random() < 0.5)
    b, zb, pb = branch(None) if two else (x, np.zeros(C, bool), False)
    if kind == "concat":
        y = G.node("Concat", [a, b] if rng.random() < 0.5 else [b, a], axis=1)
        out = [1, 2 * C] + shape[2:]
        sure = int(za.sum() + zb.sum())
    else:
        y = G.node("Add", [a, b])
        y = _activation(G, rng, y, C, conv, act, per_channel_act)
        out = list(shape)
        sure = int(za.sum() + zb.sum())     # constant operands fold into the add
    meta = {"kind": kind if kind != "add_pc" or pc else "add", "two_layers": two,
            "padded": pa or pb}
    return y, out, sure, int(za.sum() + zb.sum()), meta


def _build(seed: int, form: str):
    rng = np.random.default_rng(seed)
    jrng = np.random.default_rng([seed, 17])    # the join's draws: joinless nets as before
    G = ScnGraph(form)
    conv = bool(rng.random() < 0.4)
    act = {"kind": "bipolar"} if rng.random() < 0.4 else \
        {"kind": "uint", "bits": int(rng.integers(2, 5)), "scale": 2.0 ** int(rng.integers(-3, 0))}
    per_channel_act = act["kind"] == "uint" and rng.random() < 0.3
    join = str(jrng.choice(JOINS)) if jrng.random() < 0.5 else None
    zero, unsure, jmeta = 0, 0, None
    if conv:
        c, h = int(rng.integers(1, 4)), int(rng.choice([6, 8]))
        in_shape = [1, c, h, h]
    else:
        k = int(rng.integers(8, 33))
        in_shape = [1, k]
    x = G.quant("x", np.float32(2.0 ** -5), 8)          # INT8 input, scale 2^-5
    shape = list(in_shape)

    def joined(x, shape, last_zero):
        """The join block after the first hidden layer; the zero channels of the layer
        before it stay certain only if nothing reads them through padding."""
        nonlocal zero, unsure, jmeta
        y, shape, sure, total, jmeta = _join(G, jrng, x, shape, act, per_channel_act, join)
        if jmeta["padded"]:
            zero, unsure = zero - last_zero, unsure + last_zero
        zero, unsure = zero + sure, unsure + total - sure
        return y, shape

    if conv:
        for i in range(int(rng.integers(1, 3))):
            co, kk = int(rng.integers(3, 9)), int(rng.choice([1, 3]))
            if shape[2] - kk + 1 < 2:
                kk = 1
            y, shape, zb = _scn_layer(G, rng, x, shape, co, kk)
            zero += int(zb.sum())
            x = _activation(G, rng, y, co, True, act, per_channel_act)
            if shape[2] % 2 == 0 and shape[2] >= 4 and rng.random() < 0.5:
                x = G.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
                shape = [1, co, shape[2] // 2, shape[3] // 2]
            if i == 0 and join is not None:
                x, shape = joined(x, shape, int(zb.sum()))
        x = G.node("Flatten", [x], axis=1)
        shape = [1, int(np.prod(shape[1:]))]
    widths = [int(rng.integers(4, 17)) for _ in range(int(rng.integers(1, 3)))] + [10]
    for i, m in enumerate(widths):
        last = i == len(widths) - 1
        bits = _draw_bits(rng, m, 4) if not last else rng.integers(2, 5, m)
        exps = rng.integers(-4, 1, m)
        w = _dyadic_weights(rng, (shape[1], m), bits, exps, 1)
        y = G.node("MatMul", [x, G.weight(w, exps, bits, 1)])
        b = (rng.integers(-8, 9, m) / 8.0).reshape(1, m).astype(np.float32)
        y = G.node("Add", [y, G.const(b, "bias")])
        shape = [1, m]
        if not last:
            zero += int((bits == 0).sum())
            x = _activation(G, rng, y, m, False, act, per_channel_act)
            if i == 0 and not conv and join is not None:
                x, shape = joined(x, shape, int((bits == 0).sum()))
        else:
            x = y
    graph = helper.make_graph(
        G.nodes, f"scn{seed}", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)], G.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid(QONNX, 1)])
    meta = {"conv": conv, "act": act["kind"], "per_channel_act": per_channel_act,
            "join": jmeta, "unsure_zero_channels": unsure}
    return model, in_shape, zero, meta


def elementwise_int_quant(inp, scale, zeropt, bitwidth, signed, narrow, rounding_mode):
    """qonnx's int_quant, element by element in the bit width (our reference for
    per-channel widths, which the stock function refuses)."""
    from qonnx.custom_op.general.intquant import max_int, min_int, resolve_rounding_mode
    y = inp / scale + zeropt
    bw = np.asarray(bitwidth)
    lo = np.asarray(min_int(signed, narrow, bw), y.dtype)
    hi = np.asarray(max_int(signed, narrow, bw), y.dtype)
    q = np.where(y > hi, hi, y)
    q = np.where(q < lo, lo, q)
    q = resolve_rounding_mode(rounding_mode)(q)
    if signed:
        q = np.where(bw == 1, np.where(y >= 0, 1.0, -1.0).astype(y.dtype), q)
    return (q - zeropt) * scale


def qonnx_reference(model: onnx.ModelProto, inputs: np.ndarray, elementwise: bool = False):
    """Outputs of qonnx's executor, one frame at a time (batch 1); `elementwise` swaps in
    `elementwise_int_quant` for the run."""
    import qonnx.custom_op.general.intquant as iq
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model
    stock = iq.int_quant
    if elementwise:
        iq.int_quant = elementwise_int_quant
    try:
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
        mw = cleanup_model(ModelWrapper(proto))
        iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
        return np.stack([np.asarray(execute_onnx(mw, {iname: x[None]})[oname])[0]
                         for x in inputs])
    finally:
        iq.int_quant = stock


def random_scn_network(seed: int, n_inputs: int = 8, with_reference: bool = True) -> ScnCase:
    tensor, in_shape, zero, meta = _build(seed, "tensor")
    grouped, *_ = _build(seed, "grouped")
    rng = np.random.default_rng(10_000 + seed)
    inputs = (rng.integers(-128, 128, (n_inputs,) + tuple(in_shape[1:])) / 32.0).astype(np.float32)
    outputs = None
    if with_reference:
        outputs = qonnx_reference(grouped, inputs, elementwise=meta["per_channel_act"])
    return ScnCase(f"scn{seed}", tensor, grouped, inputs, outputs, zero, meta)


def residual_example(form: str, seed: int = 0):
    """A small FC residual net with known removals: the stem's zero channels 0, 1 (read by
    both branches); branch A zero in 2, 3 and branch B in 3, 5 (channel 3 constant in
    both operands, so the sum's channel 3 is constant; 2 and 5 constant in one operand,
    folded into the add); the head ignores the sum's channel 6 (unread, so both
    branches lose row 6).
    Returns (model, inputs)."""
    rng = np.random.default_rng(seed)
    G = ScnGraph(form)
    act = {"kind": "uint", "bits": 3, "scale": 0.25}
    x = G.quant("x", np.float32(2.0 ** -5), 8)

    def fc(x, k, m, zero, exps=None):
        bits = rng.integers(2, 5, m)
        bits[list(zero)] = 0
        exps = rng.integers(-3, 0, m) if exps is None else exps
        w = _dyadic_weights(rng, (k, m), bits, exps, 1)
        y = G.node("MatMul", [x, G.weight(w, exps, bits, 1)])
        b = (rng.integers(1, 9, m) / 8.0).reshape(1, m).astype(np.float32)
        return G.node("Add", [y, G.const(b, "bias")]), w

    t, _ = fc(x, 16, 8, [0, 1])
    t = _activation(G, rng, t, 8, False, act, False)
    a, _ = fc(t, 8, 8, [2, 3])
    a = _activation(G, rng, a, 8, False, act, False)
    b, _ = fc(t, 8, 8, [3, 5])
    b = _activation(G, rng, b, 8, False, act, False, np.float32(0.5))
    s = _activation(G, rng, G.node("Add", [a, b]), 8, False, act, False)
    bits, exps = rng.integers(2, 5, 10), rng.integers(-3, 0, 10)
    w = _dyadic_weights(rng, (8, 10), bits, exps, 1)
    w[6] = 0                                     # the head ignores the sum's channel 6
    y = G.node("MatMul", [s, G.weight(w, exps, bits, 1)])
    graph = helper.make_graph(
        G.nodes, "residual_example", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 10])], G.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid(QONNX, 1)])
    inputs = (rng.integers(-128, 128, (16, 16)) / 32.0).astype(np.float32)
    return model, inputs
