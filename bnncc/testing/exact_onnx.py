"""A real-arithmetic reference executor for QONNX graphs: every op in float64, and every
rounding (Quant, Trunc) checked to be decided, i.e. no value lies within float64 error
of a rounding tie, so the result is what exact arithmetic gives on the model's
parameters. Used where float32 references (onnxruntime, the qonnx executor, PyTorch)
disagree with each other: near a tie each float32 implementation rounds its own way,
and a deep network with random weights amplifies one flipped element into many (see
hw_tests/test_imagenet_dws.py). Covers the ops brevitas_examples' ImageNet models use.
"""
from __future__ import annotations

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import numpy_helper

MARGIN = 1e-9     # relative distance from a tie below which a rounding counts as undecided


class Undecided(ValueError):
    """A value within float64 error of a rounding tie: float64 cannot decide it."""


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(x, w, b, a):
    kh, kw = w.shape[2:]
    ph0, pw0, ph1, pw1 = a.get("pads", [0, 0, 0, 0])
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    g = a.get("group", 1)
    xp = np.pad(x, ((0, 0), (0, 0), (ph0, ph1), (pw0, pw1)))
    win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]                    # (N, C, OH, OW, KH, KW)
    n, c, oh, ow = win.shape[:4]
    win = win.reshape(n, g, c // g, oh, ow, kh, kw)
    wg = w.reshape(g, w.shape[0] // g, c // g, kh, kw)
    y = np.einsum("ngchwij,gocij->ngohw", win, wg, optimize=True).reshape(n, -1, oh, ow)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def _check(pre, node, what):
    """Raise Undecided if a value about to be rounded to an integer sits on a tie."""
    frac = np.abs(pre - np.floor(pre) - 0.5)
    close = frac < MARGIN * np.maximum(1.0, np.abs(pre))
    if np.any(close):
        raise Undecided(f"{node.name}: {what} value {pre[close].ravel()[0]!r} is within "
                        f"float64 error of a rounding tie")
    return float(frac.min(initial=0.5))


def _quant(x, s, z, bits, a, node, margins):
    signed, narrow = a.get("signed", 1), a.get("narrow", 0)
    mode = a.get("rounding_mode", "ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode.upper() not in ("ROUND", "HALF_EVEN"):
        raise NotImplementedError(f"{node.name}: rounding mode {mode}")
    bits = float(np.asarray(bits).reshape(-1)[0])
    lo = -(2 ** (bits - 1)) + narrow if signed else 0
    hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1 - narrow
    q = np.clip(x / s + z, lo, hi)
    margins[node.name or node.output[0]] = _check(q, node, "Quant")
    return (np.round(q) - z) * s


def _trunc(x, s, z, in_bits, out_scale, out_bits, a, node, margins):
    signed, narrow = a.get("signed", 1), a.get("narrow", 0)
    mode = a.get("rounding_mode", "FLOOR")
    mode = (mode.decode() if isinstance(mode, bytes) else mode).upper()
    y = x / s + z
    margins[node.name or node.output[0]] = _check(y, node, "Trunc input")
    y = np.round(y)
    ts = 2.0 ** np.round(np.log2(out_scale / s))
    ob = float(np.asarray(out_bits).reshape(-1)[0])
    lo = -(2 ** (ob - 1)) + narrow if signed else 0
    hi = 2 ** (ob - 1) - 1 if signed else 2 ** ob - 1 - narrow
    y = {"FLOOR": np.floor, "CEIL": np.ceil, "ROUND": np.round}[mode](y / ts)
    return (np.clip(y, lo, hi) - z / ts) * out_scale


def run(path: str, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """(output, {rounding node: smallest distance of its values from a tie}) of the model
    on x (float, the model's input layout), all in float64."""
    m = onnx.load(str(path))
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}
    weights = set(env)
    env[m.graph.input[0].name] = np.asarray(x, np.float64)
    margins: dict = {}
    for node in m.graph.node:
        a, ins = _attrs(node), [env[i] if i else None for i in node.input]
        t = node.op_type
        if t == "Quant":
            y = _quant(*ins[:4], a, node, {} if node.input[0] in weights else margins)
        elif t == "Trunc":
            y = _trunc(*ins[:6], a, node, margins)
        elif t == "Conv":
            y = _conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
        elif t == "BatchNormalization":
            sc, b, mu, var = (v.reshape(1, -1, 1, 1) for v in ins[1:5])
            eps = float(np.float32(a.get("epsilon", 1e-5)))
            y = (ins[0] - mu) / np.sqrt(var + eps) * sc + b
        elif t == "Relu":
            y = np.maximum(ins[0], 0.0)
        elif t in ("Add", "Mul", "Sub", "Div"):
            y = {"Add": np.add, "Mul": np.multiply, "Sub": np.subtract,
                 "Div": np.divide}[t](ins[0], ins[1])
        elif t == "AveragePool":
            if any(a.get("pads", [0])) or a.get("ceil_mode", 0):
                raise NotImplementedError(f"{node.name}: padded or ceil-mode AveragePool")
            k, s = a["kernel_shape"], a.get("strides", a["kernel_shape"])
            win = sliding_window_view(ins[0], k, axis=(2, 3))[:, :, ::s[0], ::s[1]]
            y = win.mean(axis=(-2, -1))
        elif t == "GlobalAveragePool":
            y = ins[0].mean(axis=(2, 3), keepdims=True)
        elif t == "Reshape":
            shape = [int(v) for v in ins[1]]
            shape = [ins[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
            y = ins[0].reshape(shape)
        elif t == "Flatten":
            ax = a.get("axis", 1)
            y = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
        elif t in ("Gemm", "MatMul"):
            bm = ins[1].T if a.get("transB", 0) else ins[1]
            am = ins[0].T if a.get("transA", 0) else ins[0]
            y = a.get("alpha", 1.0) * (am @ bm)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
        else:
            raise NotImplementedError(f"{node.name}: op {t}")
        env[node.output[0]] = y
    return env[m.graph.output[0].name], margins
