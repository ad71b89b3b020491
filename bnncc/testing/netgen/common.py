"""Shared by every generator family: NetCase, numpy twins of the ONNX / QONNX ops
(float64, exact on dyadic values), the activation descriptors and the graph builder."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX_DOMAIN = "qonnx.custom_op.general"
ONNX_OPSET = 13
_N_CAL = 48  # calibration samples used to choose BatchNorm statistics


@dataclass
class NetCase:
    name: str  # e.g. "qonnx-conv-s17"
    model: onnx.ModelProto  # passes onnx.checker (custom domains allowed)
    inputs: np.ndarray  # (N, *input shape without batch), float32
    outputs: np.ndarray  # (N, *output shape without batch), reference outputs
    family: str  # one of FAMILIES
    meta: dict = field(default_factory=dict, repr=False)


# ---------------------------------------------------------------------------
# numpy semantics (float64; mirrors qonnx / onnx definitions)


def _int_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    if signed:
        return -(2 ** (bits - 1)) + int(narrow), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1 - int(narrow)


def _np_quant(x, scale, bits, signed, narrow):
    lo, hi = _int_range(bits, signed, narrow)
    q = np.clip(x / scale, lo, hi)  # qonnx: clamp, then round (half to even)
    return np.round(q) * scale


def _np_bipolar(x, scale):
    return np.where(x >= 0, 1.0, -1.0) * scale


def _np_conv(x, w, stride, pad, bias=None):
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    win = win[:, :, ::stride, ::stride]
    y = np.einsum("nchwij,ocij->nohw", win, w, optimize=True)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y


def _np_maxpool2(x):
    n, c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, :, : 2 * h2, : 2 * w2].reshape(n, c, h2, 2, w2, 2).max(axis=(3, 5))


def _np_bn(x, gamma, beta, mean, var, eps):
    shp = (1, -1) + (1,) * (x.ndim - 2)
    std = np.sqrt(var.astype(np.float64) + np.float64(eps))
    return (x - mean.reshape(shp)) / std.reshape(shp) * gamma.reshape(shp) + beta.reshape(shp)


# ---------------------------------------------------------------------------
# dyadic helpers


def _lsb(fr: Fraction) -> int:
    """Exponent e of the lowest set bit: fr = odd * 2^e (fr != 0, dyadic)."""
    num, den = fr.numerator, fr.denominator
    e = -(den.bit_length() - 1)
    num = abs(num)
    return e + ((num & -num).bit_length() - 1)


def _msb(fr: Fraction) -> int:
    return math.floor(math.log2(abs(fr))) if fr != 0 else -10**9


def _p2(rng, lo: int, hi: int) -> float:
    return float(2.0 ** int(rng.integers(lo, hi + 1)))


@dataclass
class _Act:
    """Values an activation tensor can take: integers in [lo, hi] times scale."""

    kind: str  # "int" | "bipolar" | "sign"
    scale: float
    lo: int
    hi: int
    bits: int

    @property
    def narrow(self) -> bool:
        return self.kind == "int" and self.lo == -(2 ** (self.bits - 1)) + 1


# ---------------------------------------------------------------------------
# graph builder


class _Builder:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.vinfo: dict[str, tuple[tuple[int, ...], int]] = {}
        self.node_names: set[str] = set()
        self.tensor_names: set[str] = set()
        self.ops = []  # numpy functions, applied in order
        self.cal: np.ndarray | None = None
        self.cur = ""  # current tensor name
        self.shape: tuple[int, ...] = ()
        self.layers: list[dict] = []
        self.act_tensors: list[str] = []

    # -- names, tensors, nodes --------------------------------------------
    def tname(self, base: str) -> str:
        name, i = base, 1
        while name in self.tensor_names:
            name, i = f"{base}_{i}", i + 1
        self.tensor_names.add(name)
        return name

    def init(self, base: str, arr) -> str:
        name = self.tname(base)
        arr = np.asarray(arr)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def node(self, op, inputs, out_base, out_shape, *, prefix, domain="", elem=TensorProto.FLOAT,
             extra_outputs=(), **attrs) -> str:
        nname, i = f"{prefix}_{op}", 1
        while nname in self.node_names:
            nname, i = f"{prefix}_{op}_{i}", i + 1
        self.node_names.add(nname)
        out = self.tname(out_base)
        outs = [out]
        for base, shp, el in extra_outputs:
            o = self.tname(base)
            outs.append(o)
            self.vinfo[o] = (tuple(shp), el)
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=nname, domain=domain, **attrs))
        self.vinfo[out] = (tuple(out_shape), elem)
        return out

    def apply(self, fn):
        self.ops.append(fn)
        self.cal = fn(self.cal)

    def step(self, op, inputs, out_base, out_shape, fn, **kw) -> str:
        """Emit a node consuming/producing the main data path and its numpy twin."""
        out = self.node(op, inputs, out_base, out_shape, **kw)
        self.cur, self.shape = out, tuple(out_shape)
        self.apply(fn)
        return out

    # -- quantizers ---------------------------------------------------------
    def quant_node(self, x, prefix, what, scale, bits, narrow, out_shape):
        s = self.init(f"{prefix}_{what}_scale", np.asarray(scale, np.float32))
        z = self.init(f"{prefix}_{what}_zeropt", np.float32(0.0))
        b = self.init(f"{prefix}_{what}_bitwidth", np.float32(bits))
        return self.node("Quant", [x, s, z, b], f"{prefix}_{what}_q", out_shape, prefix=prefix,
                         domain=QONNX_DOMAIN, signed=1, narrow=int(narrow), rounding_mode="ROUND")

    def bipolar_node(self, x, prefix, what, scale, out_shape):
        s = self.init(f"{prefix}_{what}_scale", np.asarray(scale, np.float32))
        return self.node("BipolarQuant", [x, s], f"{prefix}_{what}_q", out_shape, prefix=prefix,
                         domain=QONNX_DOMAIN)

    def act_quant(self, prefix, act: _Act):
        shp = self.shape
        if act.kind == "bipolar":
            out = self.bipolar_node(self.cur, prefix, "act", act.scale, shp)
        elif act.kind == "int":
            out = self.quant_node(self.cur, prefix, "act", act.scale, act.bits, act.narrow, shp)
        else:  # sign
            out = self.node("Sign", [self.cur], f"{prefix}_act", shp, prefix=prefix)
        self.cur = out
        self.apply(_act_fn(act))
        return out


def _act_fn(act):
    if isinstance(act, _QAct):
        return act.np_fn
    if act.kind == "bipolar":
        return lambda x: _np_bipolar(x, act.scale)
    if act.kind == "int":
        return lambda x: _np_quant(x, act.scale, act.bits, True, act.narrow)
    return np.sign


def _width(rng) -> int:
    return int(rng.choice([2, 3, 4, 5, 6, 8, 8, 10, 12, 16, 16, 24, 32]))


def _gen_inputs(rng, n: int, shape, zero_frac: float) -> np.ndarray:
    out = np.empty((n,) + tuple(shape), np.float32)
    for i in range(n):
        v = rng.integers(-1024, 1024, size=shape).astype(np.float64) / 1024.0
        if zero_frac > 0:
            v[rng.random(shape) < zero_frac] = 0.0
        else:
            v[v == 0] = 1.0 / 1024
        out[i] = v
    return out


def _rename_tensor(B, old: str, new: str) -> None:
    """Rename a tensor in the builder's nodes (outputs and inputs) and value infos."""
    if old == new:
        return
    for n in B.nodes:
        for names in (n.output, n.input):
            for i, o in enumerate(names):
                if o == old:
                    names[i] = new
    B.vinfo[new] = B.vinfo.pop(old)


def _assemble(B, gname: str, in_dims: list, out_name: str, qonnx: bool, meta: dict):
    """The ModelProto of a built graph (declared shapes, opsets); records layers in meta."""
    out_shape, out_elem = B.vinfo.pop(out_name)
    value_info = [helper.make_tensor_value_info(k, el, list(shp)) for k, (shp, el) in B.vinfo.items()]
    graph = helper.make_graph(
        B.nodes, gname,
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, list(in_dims))],
        [helper.make_tensor_value_info("global_out", out_elem, list(out_shape))],
        initializer=B.inits, value_info=value_info,
    )
    opsets = [helper.make_opsetid("", ONNX_OPSET)]
    if qonnx:
        opsets.append(helper.make_opsetid(QONNX_DOMAIN, 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="bnncc.testing.netgen")
    model.ir_version = 8
    meta["layers"] = B.layers
    meta["act_tensors"] = list(B.act_tensors)
    return model

# every rounding mode qonnx 1.0's resolve_rounding_mode accepts (HALF_EVEN is
# an alias of ROUND: round half to even)
ROUNDING_MODES = ("ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN")
_HALF_MODES = ("ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN")


def _np_round_mode(q, mode: str):
    """qonnx's rounding functions (same numpy expressions, same dtype)."""
    if mode in ("ROUND", "HALF_EVEN"):
        return np.round(q)
    if mode == "CEIL":
        return np.ceil(q)
    if mode == "FLOOR":
        return np.floor(q)
    if mode == "UP":
        return np.sign(q) * np.ceil(np.abs(q))
    if mode == "DOWN":
        return np.fix(q)
    if mode == "HALF_UP":
        return np.sign(q) * np.floor(np.abs(q) + 0.5)
    if mode == "HALF_DOWN":
        return np.sign(q) * np.ceil(np.abs(q) - 0.5)
    raise ValueError(mode)


def _np_quant_mode(x, scale, bits, signed, narrow, mode):
    """qonnx ``Quant`` (zero point 0) evaluated in float32 exactly as qonnx does:
    x / scale, clamp, round, times scale.  Returns float64 (exact)."""
    x32 = np.asarray(x, dtype=np.float32)
    s32 = np.asarray(scale, dtype=np.float32)
    lo, hi = _int_range(bits, signed, narrow)
    q = x32 / s32
    q = np.where(q > hi, np.float32(hi), q)
    q = np.where(q < lo, np.float32(lo), q)
    q = _np_round_mode(q, mode)
    return (q * s32).astype(np.float64)


@dataclass
class _QAct:
    """An integer activation quantizer: [Relu ->] Quant(signed, bits, narrow,
    rounding_mode) with a per-tensor or per-channel scale (``scale`` is always
    the (C,) vector)."""

    signed: bool
    bits: int
    narrow: bool
    scale: np.ndarray
    per_channel: bool
    mode: str = "ROUND"
    relu: bool = False
    kind: str = "int"

    @property
    def lo(self) -> int:
        return _int_range(self.bits, self.signed, self.narrow)[0]

    @property
    def hi(self) -> int:
        return _int_range(self.bits, self.signed, self.narrow)[1]

    def bscale(self, ndim: int) -> np.ndarray:
        return self.scale.reshape((1, -1) + (1,) * (ndim - 2))

    def quant(self, x):  # the Quant node alone
        return _np_quant_mode(x, self.bscale(x.ndim), self.bits, self.signed, self.narrow, self.mode)

    def np_fn(self, x):  # [Relu ->] Quant
        if self.relu:
            x = np.maximum(x, 0.0)
        return self.quant(x)

    def bounds(self, C: int) -> np.ndarray:
        """(n, C) decision boundaries on the quantizer input (a superset)."""
        if self.mode in _HALF_MODES:
            ks = np.arange(self.lo, self.hi) + 0.5
        else:
            ks = np.arange(self.lo, self.hi + 1).astype(np.float64)
        sc = np.broadcast_to(self.scale, (C,))
        return ks[:, None] * sc[None, :]

    def describe(self) -> dict:
        return {"signed": self.signed, "bits": self.bits, "narrow": self.narrow, "mode": self.mode,
                "relu": self.relu, "per_channel": self.per_channel,
                "scale": [float(v) for v in self.scale] if self.per_channel else float(self.scale[0])}
