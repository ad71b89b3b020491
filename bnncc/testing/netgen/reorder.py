"""Seeded random QONNX networks with DepthToSpace / SpaceToDepth between convolutions
(super-resolution heads, YOLO-style reorgs) and overlapping / padded max pools.

The graphs are what onnx.helper writes for Brevitas-like layers: an input `Quant`, Conv
with integer-valued float weights, an activation `Quant` (2-4 bits, power-of-two scale)
or `BipolarQuant`, then the reordering or the pool. Everything is dyadic, so the qonnx
executor's float32 is exact; reference outputs come from it (bnncc.testing.netgen.reference).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .common import NetCase
from .reference import reference_outputs

QDOM = "qonnx.custom_op.general"


class _G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, p: str) -> str:
        self.n += 1
        return f"{p}{self.n}"

    def const(self, v, p="c") -> str:
        n = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(v, np.float32), n))
        return n

    def node(self, op, ins, domain="", **attrs) -> str:
        out = self.name(op.lower() + "_")
        self.nodes.append(helper.make_node(op, ins, [out], name=out, domain=domain, **attrs))
        return out

    def quant(self, x, scale, bits, signed) -> str:
        return self.node("Quant", [x, self.const(scale, "s"), self.const(0.0, "z"),
                                   self.const(float(bits), "b")], QDOM,
                         signed=int(signed), narrow=0, rounding_mode="ROUND")

    def bipolar(self, x) -> str:
        return self.node("BipolarQuant", [x, self.const(1.0, "s")], QDOM)


def _act(g: _G, rng, x, acc_std: float, bits: int) -> tuple[str, int, bool]:
    """An activation quantizer after an accumulator of about `acc_std` spread."""
    if bits == 1:
        return g.bipolar(x), 1, True
    signed = bool(rng.integers(2))
    top = 2 ** (bits - 1) if signed else 2 ** bits
    scale = 2.0 ** np.round(np.log2(max(acc_std, 1.0) * 2 / top))
    return g.quant(x, scale, bits, signed), bits, signed


def _conv(g: _G, rng, x, cin, cout, k, pad, in_bits, in_signed) -> tuple[str, float]:
    wmax = 1 if in_bits == 1 else 3
    w = rng.integers(-wmax, wmax + 1, (cout, cin, k, k)).astype(np.float32)
    if in_bits == 1:
        w = np.where(w >= 0, 1.0, -1.0).astype(np.float32)
    y = g.node("Conv", [x, g.const(w, "w")], kernel_shape=[k, k], pads=[pad] * 4)
    xs = 1.0 if in_bits == 1 else (2 ** (in_bits - 1) if in_signed else 2 ** in_bits) / 2
    return y, float(np.sqrt(cin * k * k) * wmax * xs / 2)


def build(rng, cin, h, w, c1, mode, block, bits, k=3, pool=None, tail=None, name="reorder"):
    """input Quant -> Conv -> act -> DepthToSpace(mode, block) (SpaceToDepth when mode
    is "S2D", nothing when None) -> Conv -> act [-> MaxPool(pool: kernel, stride, pads,
    ceil_mode)] [-> a reordering at the output (tail: mode, block)]."""
    g = _G()
    x = g.quant("x", 2.0 ** -3, 4, True)
    a, s = _conv(g, rng, x, cin, c1, k, k // 2, 4, True)
    a, ab, asg = _act(g, rng, a, s, bits)
    if mode is None:                        # no reordering: conv -> act -> pool
        y = a
    else:
        if mode == "S2D":
            r = g.node("SpaceToDepth", [a], blocksize=block)
            c2 = c1 * block * block
        else:
            r = g.node("DepthToSpace", [a], blocksize=block, mode=mode)
            c2 = c1 // (block * block)
        y, s = _conv(g, rng, r, c2, int(rng.integers(2, 5)), k, k // 2, ab, asg)
        y, _, _ = _act(g, rng, y, s, bits)
    if pool is not None:
        pk, ps, pp, ceil = pool
        y = g.node("MaxPool", [y], kernel_shape=[pk, pk], strides=[ps, ps], pads=[pp] * 4,
                   ceil_mode=int(ceil))
    if tail is not None:
        tmode, tb = tail
        y = (g.node("SpaceToDepth", [y], blocksize=tb) if tmode == "S2D" else
             g.node("DepthToSpace", [y], blocksize=tb, mode=tmode))
    graph = helper.make_graph(g.nodes, name, [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, cin, h, w])], [helper.make_tensor_value_info(
            y, TensorProto.FLOAT, None)], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid(QDOM, 1)])
    model = onnx.shape_inference.infer_shapes(model)
    return model


def inputs_for(rng, model, n: int) -> np.ndarray:
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][1:]
    return (rng.integers(-8, 8, (n, *shape)) / 8.0).astype(np.float32)


def sr_network(seed: int = 0, mode: str = "DCR", bits: int = 4, n_inputs: int = 4) -> NetCase:
    """The fixture: 3 -> 8 channels on 6x6, DepthToSpace(2) to 2 channels on 12x12,
    a 3x3 conv after it (a super-resolution head)."""
    rng = np.random.default_rng(seed)
    model = build(rng, 3, 6, 6, 8, mode, 2, bits, name=f"sr_{mode.lower()}_w{bits}")
    x = inputs_for(rng, model, n_inputs)
    return NetCase(f"sr-{mode}-w{bits}-s{seed}", model, x, reference_outputs(model, x),
                   "reorder", {"mode": mode, "bits": bits})


def random_reorder_network(seed: int, n_inputs: int = 4) -> NetCase:
    """Random geometry: mode (DCR / CRD / S2D), block 2 or 3, 1-4 bit activations, 1x1 or
    3x3 convs, sometimes an overlapping max pool or a second reordering at the output."""
    rng = np.random.default_rng(10_000 + seed)
    mode = ("DCR", "CRD", "S2D")[seed % 3]
    block = int(rng.choice([2, 2, 3]))
    bits = int(rng.choice([1, 2, 3, 4]))
    k = int(rng.choice([1, 3]))
    cin = int(rng.integers(1, 4))
    if mode == "S2D":
        h, w = block * int(rng.integers(1, 4)), block * int(rng.integers(1, 4))
        c1 = int(rng.integers(1, 4))
    else:
        h, w = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        c1 = block * block * int(rng.integers(1, 3))
    pool = (3, 2, 1, bool(rng.integers(2))) if rng.random() < 0.3 else None
    model = build(rng, cin, h, w, c1, mode, block, bits, k=k, pool=pool,
                  name=f"reorder_{seed}")
    x = inputs_for(rng, model, n_inputs)
    return NetCase(f"reorder-{mode}-s{seed}", model, x, reference_outputs(model, x), "reorder",
                   {"mode": mode, "block": block, "bits": bits, "k": k, "pool": pool,
                    "shape": (cin, h, w, c1)})


def pool_network(seed: int, pool: tuple, bits: int = 3, shape=(2, 7, 7), c1: int = 4,
                 n_inputs: int = 4) -> NetCase:
    """input Quant -> 3x3 Conv -> act -> MaxPool(kernel, stride, pads, ceil_mode)."""
    rng = np.random.default_rng(20_000 + seed)
    cin, h, w = shape
    model = build(rng, cin, h, w, c1, None, 1, bits, pool=pool, name=f"pool_{seed}")
    x = inputs_for(rng, model, n_inputs)
    return NetCase(f"pool-{seed}", model, x, reference_outputs(model, x), "pool",
                   {"pool": pool, "bits": bits, "shape": shape})
