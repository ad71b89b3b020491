"""Random QONNX networks with depthwise and grouped convolutions (the families the
VVAU serves), kept apart from the other families of the package.

Each network: an input quantizer (signed / unsigned integer, or bipolar for the binary
family), two to four Conv layers where most are grouped (depthwise with a depth
multiplier, or g groups of several channels; some dense for contrast), each followed by
BatchNormalization with random statistics and a quantizer (ReLU + unsigned Quant, or
BipolarQuant), random kernel, stride and padding (no padding on bipolar inputs: a bipolar
type has no zero). The reference is qonnx's executor (netgen.reference_outputs).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .common import QONNX_DOMAIN, NetCase
from .reference import reference_outputs

GROUPED_FAMILIES = ("grouped-int", "grouped-binary")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _q(x, scale, bits, signed, narrow=0):
    """QONNX Quant with ROUND (half to even), float64."""
    lo = -(2 ** (bits - 1)) + narrow if signed else 0
    hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
    return np.clip(np.round(x / scale), lo, hi) * scale


def _conv(x, w, g, stride, pad):
    """Float grouped convolution, NCHW, for calibrating the BatchNorm statistics."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, h, wd = x.shape
    oc, cin, k, _ = w.shape
    oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
    cout = oc // g
    y = np.zeros((n, oc, oh, ow))
    for ky in range(k):
        for kx in range(k):
            patch = x[:, :, ky:ky + stride * (oh - 1) + 1:stride, kx:kx + stride * (ow - 1) + 1:stride]
            for gi in range(g):
                y[:, gi * cout:(gi + 1) * cout] += np.einsum(
                    "nchw,oc->nohw", patch[:, gi * cin:(gi + 1) * cin],
                    w[gi * cout:(gi + 1) * cout, :, ky, kx])
    return y


def random_grouped_network(seed: int, n_inputs: int = 8) -> NetCase:
    """Network `seed` (the family alternates with the seed)."""
    rng = np.random.default_rng(10_000 + seed)
    family = GROUPED_FAMILIES[seed % len(GROUPED_FAMILIES)]
    binary = family == "grouped-binary"
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def quant(x, out, scale, bits, signed, narrow=0):
        nodes.append(helper.make_node(
            "Quant", [x, const(out + "_s", scale), const(out + "_z", 0.0),
                      const(out + "_b", float(bits))], [out], domain=QONNX_DOMAIN,
            signed=int(signed), narrow=int(narrow), rounding_mode="ROUND"))
        return out

    def bipolar(x, out):
        nodes.append(helper.make_node("BipolarQuant", [x, const(out + "_s", 1.0)], [out],
                                      domain=QONNX_DOMAIN))
        return out

    c = c_in = int(rng.choice([4, 6, 8]))
    h = w = h_in = int(rng.integers(6, 10))
    x = "global_in"
    in_scale, groups = 1.0, []
    if binary:
        t = bipolar(x, "xq")
        in_bits = in_bits0 = 1
        lim = 1.0
    else:
        in_bits = in_bits0 = int(rng.integers(2, 6))
        in_scale = 2.0 ** -int(rng.integers(0, 3))
        sg = bool(rng.integers(0, 2))
        t = quant(x, "xq", in_scale, in_bits, sg)
        lim = 2.0 ** in_bits0 * in_scale
    inputs = rng.uniform(-lim, lim, (n_inputs + 32, c_in, h_in, h_in))
    xr = np.where(inputs >= 0, 1.0, -1.0) if binary else _q(inputs, in_scale, in_bits, sg)
    n_layers = int(rng.integers(2, 5))
    for i in range(n_layers):
        kind = rng.choice(["depthwise", "grouped", "dense"], p=[0.5, 0.35, 0.15])
        if kind == "depthwise" or (kind == "grouped" and len(_divisors(c)) <= 2):
            g = c
        elif kind == "grouped":
            g = int(rng.choice([d for d in _divisors(c) if 1 < d < c]))
        else:
            g = 1
        groups.append(g)
        mult = int(rng.choice([1, 1, 2])) if g > 1 else 1
        cout = c * mult if g > 1 else int(rng.choice([4, 6, 8]))
        k = int(rng.choice([1, 2, 3], p=[0.2, 0.3, 0.5]))
        k = min(k, h, w)
        stride = int(rng.choice([1, 2])) if min(h, w) > k + 1 else 1
        pad = int(rng.integers(0, 2)) if (k > 1 and not binary) else 0
        p = f"l{i}"
        wshape = (cout, c // g, k, k)
        if binary:
            wf = rng.standard_normal(wshape)
            wt = bipolar(const(p + "_w", wf), p + "_wq")
            wr = np.where(wf >= 0, 1.0, -1.0)
        else:
            wb, nar = int(rng.integers(2, 5)), int(rng.integers(0, 2))
            wscale = (2.0 ** -rng.integers(0, 3, (cout, 1, 1, 1))).astype(np.float32)
            wf = (rng.uniform(-1.2, 1.2, wshape) * (2 ** (wb - 1)) * wscale).astype(np.float32)
            wt = quant(const(p + "_w", wf), p + "_wq", wscale, wb, True, narrow=nar)
            wr = _q(wf.astype(np.float64), wscale.astype(np.float64), wb, True, nar)
        nodes.append(helper.make_node("Conv", [t, wt], [p + "_c"], group=g,
                                      kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[pad] * 4))
        h, w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        # BatchNorm statistics near the accumulator's own (calibration batch)
        acc = _conv(xr, wr, g, stride, pad)
        mean = acc.mean((0, 2, 3)) + rng.normal(0, 0.1, cout) * (acc.std((0, 2, 3)) + 1)
        var = (acc.var((0, 2, 3)) + 0.25) * rng.uniform(0.5, 2.0, cout)
        gamma = rng.uniform(0.5, 1.5, cout) * rng.choice([-1, 1], cout, p=[0.15, 0.85])
        beta = rng.normal(0.0 if binary else 0.6, 0.4, cout)
        bn = gamma[None, :, None, None] * (acc - mean[None, :, None, None]) / \
            np.sqrt(var[None, :, None, None] + 1e-5) + beta[None, :, None, None]
        nodes.append(helper.make_node(
            "BatchNormalization", [p + "_c", const(p + "_g", gamma), const(p + "_be", beta),
                                   const(p + "_mu", mean), const(p + "_var", var)], [p + "_bn"]))
        if binary:
            t = bipolar(p + "_bn", p + "_a")
            xr = np.where(bn >= 0, 1.0, -1.0)
        else:
            nodes.append(helper.make_node("Relu", [p + "_bn"], [p + "_r"]))
            in_bits = int(rng.integers(2, 5))
            sc = 2.0 ** -int(rng.integers(1, 3))
            t = quant(p + "_r", p + "_a", sc, in_bits, False)
            xr = _q(np.maximum(bn, 0), sc, in_bits, False)
        c = cout
    nodes.append(helper.make_node("Identity", [t], ["global_out"]))
    graph = helper.make_graph(
        nodes, f"grouped_{seed}",
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, c_in, h_in, h_in])],
        [helper.make_tensor_value_info("global_out", TensorProto.FLOAT, [1, c, h, w])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid(QONNX_DOMAIN, 1)])
    onnx.checker.check_model(model)
    inputs = inputs[:n_inputs].astype(np.float32)
    outputs = reference_outputs(model, inputs)
    return NetCase(f"{family}-s{seed}", model, inputs, outputs, family,
                   meta={"groups": groups})
