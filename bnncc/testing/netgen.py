"""Seeded random binarized / low-bit ONNX networks with reference outputs.

Used by the test suites: every level of the verification ladder (golden model,
C simulation, RTL simulation) is checked against ``NetCase.outputs``, which come
from the reference executors (the qonnx executor for QONNX graphs, onnxruntime
for plain ONNX graphs).

Families
--------
``qonnx-fc`` / ``qonnx-conv``
    What Brevitas exports: float weight initializers through ``Quant`` /
    ``BipolarQuant`` (domain ``qonnx.custom_op.general``), ``Transpose`` +
    ``MatMul`` or ``Conv``, ``BatchNormalization``, then an activation
    quantizer (``BipolarQuant`` or signed 2-4 bit ``Quant``).  The input goes
    through an 8-bit signed ``Quant`` (scale 2^-7) or a ``BipolarQuant``,
    optionally after scalar ``Mul`` / ``Sub`` / ``Add`` preprocessing.  The last
    layer is a quantized-weight ``MatMul`` followed by an optional per-channel
    ``Mul`` + scalar ``Add``, or a TensorNorm-style ``Sub``/``Div``/``Mul``/
    ``Add``, optionally ending in ``ArgMax`` (keepdims=0) or ``TopK`` (k=1).
``plain-fc`` / ``plain-conv``
    What ``torch.onnx`` exports for a sign-BNN: ``Sign`` of float weight
    initializers (never zero), ``Gemm`` (transB=1) or ``Transpose`` +
    ``MatMul`` / ``Conv``, ``BatchNormalization``, ``Sign`` activations, input
    ``Sign``.  ONNX ``Sign(0) == 0``: some cases feed exact zeros into the
    input ``Sign`` (``meta["sign_zero_inputs"]``); hidden ``Sign`` inputs are
    never zero.

Exactness
---------
All scales are powers of two and all weights / biases / inputs are dyadic
(inputs are multiples of 2^-10 in [-1, 1)), so everything up to a
BatchNormalization is exact in float32 whatever the evaluation order.  Every
BatchNormalization feeding an activation is one of two kinds
(``meta["layers"][i]["bn"]``):

* ``"random"`` -- random float statistics; the parameters are re-drawn until
  no quantizer decision boundary lies within a float32 rounding margin of a
  reachable accumulator value, so any sane float evaluation order (ORT's
  scale/bias form, (x-mean)/std*gamma+beta, Conv+BN fusion ...) quantizes
  identically;
* ``"dyadic"`` -- mean, gamma, beta dyadic, var + eps an exact power of four:
  every evaluation order is exact, and some channels are placed so that a
  reachable accumulator hits a decision boundary exactly (a tie: BipolarQuant
  maps 0 to +1, Quant rounds half to even).

Some channels have gamma == 0 exactly (constant channels) and about 20% have
gamma < 0.  Outputs after the last layer are exact dyadic floats (or int64
indices for ArgMax / TopK).

Each case carries ``meta`` describing what was generated (layers, kernels,
strides, padding, bits, narrow, per-channel scales, BN kind, tail ops ...), the
names of the hidden activation tensors (``meta["act_tensors"]``) and the
outputs of the generator's own float64 NumPy model of the network
(``meta["sim_outputs"]``), which must equal ``outputs`` exactly.

Integer families (``random_int_network``, ``INT_FAMILIES``)
-----------------------------------------------------------
Kept apart from ``FAMILIES`` so that ``random_network(seed)`` generates exactly
what it always did.  ``random_int_network(seed)`` cycles through:

``qonnx-int-fc`` / ``qonnx-int-conv``
    Brevitas-style 2-8 bit integer nets.  Input: signed ``Quant`` (4-8 bit,
    scale 2^-(bits-1), any rounding mode).  Hidden layer: weights through a
    signed ``Quant`` (2-8 bit, per-tensor or per-output-channel power-of-two
    scales, narrow or not, mostly ROUND), ``Transpose`` + ``MatMul``, ``MatMul``
    with an (in, out) weight, ``Gemm`` (transB=1, bias as C) or ``Conv`` (bias
    as its third input or as a following ``Add``); biases are multiples of the
    accumulator scale, finer dyadic values, or go through a 16 / 24 bit
    ``Quant`` whose scale is the accumulator scale; optional
    ``BatchNormalization`` (random with a float32 margin, or dyadic with exact
    ties; only where the accumulator range is at most 2^15 grid steps, else
    ``bn_skipped`` in the layer meta); then ``Relu`` + unsigned ``Quant``
    (signed=0) or a signed ``Quant``, 2-8 bit, narrow or not, per-tensor or
    per-channel (scale shape (1, C) or (1, C, 1, 1)), any rounding mode of
    ``ROUNDING_MODES`` (all that qonnx 1.0 accepts).  Without BatchNorm the
    quantizer input is exact, and its scale is usually at least twice the
    accumulator grid, so exact ties (x / scale = k + 0.5, or an integer for
    FLOOR / CEIL / UP / DOWN) occur; ``meta["quantizers"]`` counts them on the
    test inputs.  Head: quantized FC with bias, float logits (exact dyadic) or
    ``ArgMax``.
``qonnx-residual``
    FC or conv: a stem layer producing a quantized tensor t, then one or two
    blocks.  Add block: branch A is one or two layers (same width, 1x1 or 3x3
    "same" convs) ending in a signed (or Relu + unsigned) ``Quant`` of scale
    s_a; branch B is t itself or a quantized 1x1 / FC layer of scale s_b;
    s_a / s_b is 1, 2^+-1, 2^+-2, 3, 1.5 or 0.75 (``meta["blocks"]``); then
    ``Add`` -> ``Relu`` -> unsigned ``Quant`` (the requantization after the
    add).  Concat block: two branches quantized with the same scale (t itself
    or a layer, and a layer), ``Concat`` on the channel axis.
``qdq-fc`` / ``qdq-conv``
    int8 QDQ graphs in the form onnxruntime's ``quantize_static``
    (QuantFormat.QDQ) writes, built directly: per-tensor uint8 or int8
    QuantizeLinear / DequantizeLinear pairs on activations with MinMax
    parameters from calibration data (optionally symmetric), int8 weight
    initializers with DequantizeLinear (per-tensor, or per-channel with axis 0
    for Conv / Gemm transB=1 and axis 1 for MatMul / Gemm (K, M) weights),
    int32 biases whose DequantizeLinear scale is float32(input scale * weight
    scale), a ``MatMul`` + ``Add`` form whose bias is quantized like an
    activation (as quantize_static does for a separate Add), Relu either
    removed (the zero point at qmin saturates negatives: quantize_static's
    default) or kept between two QDQ pairs with equal parameters
    (ActivationSymmetric / QDQKeepRemovableActivations), MaxPool / Flatten /
    Reshape wrapped with their input's parameters, and a final
    DequantizeLinear output.  Scales are arbitrary float32, so the reference
    (onnxruntime, graph optimizations disabled) is a float computation:
    ``meta["near_boundary"]`` says whether any requantization input came within
    1e-6 (relative to sum |x_i * w_i| + |b|) of a rounding boundary on the
    test inputs; only then may the exact numpy model (``sim_outputs``) and
    ``outputs`` differ.  ``meta["fused_outputs"]`` holds onnxruntime's outputs
    with default optimizations (QLinearConv / QGemm kernels).

QONNX references for the integer families run all inputs in one batch (one
session per node in qonnx's executor; the ops act on each row independently).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FAMILIES = ("qonnx-fc", "qonnx-conv", "plain-fc", "plain-conv")
QONNX_DOMAIN = "qonnx.custom_op.general"
ONNX_OPSET = 13
_QONNX_OPS = {"Quant", "BipolarQuant", "Trunc", "MultiThreshold", "FloatQuant"}
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
# reference execution


def _is_qonnx(model: onnx.ModelProto) -> bool:
    return any(
        n.domain.startswith(("qonnx", "finn")) or (n.op_type in _QONNX_OPS and n.domain != "")
        for n in model.graph.node
    )


def _is_qdq(model: onnx.ModelProto) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.domain in ("", "ai.onnx")
               for n in model.graph.node)


def _graph_input_name(model: onnx.ModelProto) -> str:
    inits = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    if len(names) != 1:
        raise ValueError(f"expected exactly one graph input, found {names}")
    return names[0]


def reference_outputs(model: onnx.ModelProto, inputs: np.ndarray, *, ort_optimize: bool | None = None) -> np.ndarray:
    """Run ``model`` on each of ``inputs`` (N, *shape without batch), batch 1.

    QONNX graphs (custom ops) go through qonnx's executor, plain ONNX through
    onnxruntime.  Returns (N, *output shape without batch) of the first graph
    output, in the dtype the executor produced (float32, or int64 indices).

    ``ort_optimize``: onnxruntime graph optimizations for plain ONNX.  The
    default (None) disables them for QDQ graphs (any QuantizeLinear /
    DequantizeLinear node) -- with them, onnxruntime fuses the QDQ pairs into
    QLinearConv / QLinearMatMul / ... whose integer requantization is not the
    float computation the QDQ graph specifies -- and keeps them otherwise.
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    iname = _graph_input_name(model)
    oname = model.graph.output[0].name
    results = []
    if _is_qonnx(model):
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx

        proto = onnx.ModelProto()
        proto.CopyFrom(model)
        mw = ModelWrapper(proto)
        if not mw.check_all_tensor_shapes_specified():
            from qonnx.util.cleanup import cleanup_model

            mw = cleanup_model(mw)
            iname = mw.graph.input[0].name
            oname = mw.graph.output[0].name
        for x in inputs:
            out = execute_onnx(mw, {iname: x[None]})
            results.append(np.asarray(out[oname])[0])
    else:
        import onnxruntime as ort

        if ort_optimize is None:
            ort_optimize = not _is_qdq(model)
        so = ort.SessionOptions()
        if not ort_optimize:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        for x in inputs:
            out = sess.run([oname], {iname: x[None]})[0]
            results.append(np.asarray(out)[0])
    return np.stack(results)


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


# ---------------------------------------------------------------------------
# parameter choices


def _choose_act(rng, bits: int) -> _Act:
    if bits == 1:
        return _Act("bipolar", float(rng.choice([0.5, 1.0, 1.0, 1.0, 2.0])), -1, 1, 1)
    narrow = bool(rng.random() < 0.4)
    lo, hi = _int_range(bits, True, narrow)
    return _Act("int", _p2(rng, -3, 0), lo, hi, bits)


def _boundaries(act: _Act) -> np.ndarray:
    """Quantizer decision boundaries on the BatchNorm output."""
    if act.kind in ("bipolar", "sign"):
        return np.zeros(1)
    return (np.arange(act.lo, act.hi) + 0.5) * act.scale


def _weight_ints(rng, shape, bits, narrow):
    """Float weights (dyadic, in units of the scale) and their quantized ints."""
    if bits == 1:
        wf = np.round(rng.normal(0, 1.0, size=shape) * 8) / 8
        wf[rng.random(shape) < 0.05] = 0.0  # BipolarQuant(0) = +1
        return wf, np.where(wf >= 0, 1.0, -1.0)
    lo, hi = _int_range(bits, True, narrow)
    k = rng.integers(lo - 1, hi + 2, size=shape).astype(np.float64)
    frac = rng.choice([0.0, 0.0, 0.25, -0.25, 0.5, -0.5], size=shape)
    wf = k + frac
    q = np.round(np.clip(wf, lo, hi))
    flat = q.reshape(shape[0], -1)
    for o in range(shape[0]):  # no all-zero output channel
        if not flat[o].any():
            j = int(rng.integers(flat.shape[1]))
            wf.reshape(shape[0], -1)[o, j] = 1.0
            flat[o, j] = 1.0
    return wf, q


def _acc_range(wq: np.ndarray, act: _Act, bias_int=None):
    """Exact reachable integer accumulator range per output channel."""
    w = wq.reshape(wq.shape[0], -1)
    a = w * act.lo
    b = w * act.hi
    lo = np.minimum(a, b).sum(1)
    hi = np.maximum(a, b).sum(1)
    if act.kind in ("int", "sign"):  # zero is a possible input (or padding)
        lo = np.minimum(lo, 0)
        hi = np.maximum(hi, 0)
    if bias_int is not None:
        lo, hi = lo + bias_int, hi + bias_int
    return lo.astype(np.int64), hi.astype(np.int64)


def _margin_bad(mean, var, eps, gamma, beta, unit, lo, hi, bounds):
    """Per channel: True if a decision boundary is too close to a reachable
    accumulator value for float32 evaluation-order differences to be safe."""
    mean = mean.astype(np.float64)
    std = np.sqrt(var.astype(np.float64) + np.float64(np.float32(eps)))
    gamma = gamma.astype(np.float64)
    beta = beta.astype(np.float64)
    bad = np.zeros(len(mean), bool)
    nz = gamma != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in bounds:
            t = (mean + (b - beta) * std / gamma) / unit
            d = np.abs(t - np.round(t))
            tol = 2e-3 + 2.0**-20 * (np.abs(t) + 2 * np.abs(mean / unit))
            bad |= nz & (t >= lo - 1) & (t <= hi + 1) & (d < tol)
        # gamma == 0: output is beta exactly; keep it away from boundaries
        # unless it sits on one exactly (a deliberate tie)
        for b in bounds:
            dist = np.abs(beta - b)
            bad |= (~nz) & (dist > 0) & (dist < 1e-6 * np.maximum(1.0, np.abs(b)))
    return bad


def _bn_exact(mean, var, eps, gamma, beta, unit, A) -> np.ndarray:
    """Per channel: True if y = BN(a) is exact in float32 for every order of
    evaluation, for all accumulators a = k * unit with |a| <= A * unit."""
    e32 = Fraction(float(np.float32(eps)))
    ok = np.ones(len(mean), bool)
    for c in range(len(mean)):
        vals = [float(t[c]) for t in (mean, var, gamma, beta)]
        if any(float(np.float32(v)) != v for v in vals):
            ok[c] = False  # not representable in float32
            continue
        m, v, g, b = (Fraction(x) for x in vals)
        u = Fraction(float(unit[c]))
        amax = Fraction(int(A[c])) * u
        s2 = v + e32
        if s2 <= 0:
            ok[c] = False
            continue
        std = Fraction(math.isqrt(s2.numerator), math.isqrt(s2.denominator))
        if std * std != s2 or (std.numerator & (std.numerator - 1)) or (std.denominator & (std.denominator - 1)):
            ok[c] = False  # std must be an exact power of two
            continue
        if g == 0:
            continue
        big = 10**9
        ns = g / std
        mns = m * ns
        nb = b - mns
        grid_d = min(_lsb(u), _lsb(m) if m else big)
        gd_ns = grid_d + _lsb(ns)
        gd_std = grid_d - _lsb(std) + _lsb(g)
        terms = [  # (grid exponent, max magnitude) of intermediate values
            (_lsb(u * ns), amax * abs(ns)),  # a * (gamma/std)
            (_lsb(mns) if mns else big, abs(mns)),  # mean * (gamma/std)
            (_lsb(nb) if nb else big, abs(nb)),  # beta - mean * gamma/std
            (min(_lsb(u * ns), _lsb(nb) if nb else big), amax * abs(ns) + abs(nb)),
            (grid_d, amax + abs(m)),  # a - mean
            (gd_ns, (amax + abs(m)) * abs(ns)),  # (a - mean) * gamma/std
            (gd_std, (amax + abs(m)) / std * abs(g)),  # (a - mean) / std * gamma
            (min(gd_ns, gd_std, _lsb(b) if b else big), (amax + abs(m)) * abs(ns) + abs(b)),
        ]
        ok[c] = all(not mag or _msb(Fraction(mag)) - grid <= 22 for grid, mag in terms)
    return ok


def _act_fn(act):
    if isinstance(act, _QAct):
        return act.np_fn
    if act.kind == "bipolar":
        return lambda x: _np_bipolar(x, act.scale)
    if act.kind == "int":
        return lambda x: _np_quant(x, act.scale, act.bits, True, act.narrow)
    return np.sign


def _make_bn(B: _Builder, prefix: str, unit, lo, hi, act: _Act, dyadic_ok: bool, info: dict):
    """Choose and emit a BatchNormalization feeding quantizer ``act``.

    Statistics follow the calibration accumulators (so activations are
    informative); every channel with gamma != 0 is re-drawn until its quantized
    output is not (nearly) constant on the calibration set and, depending on the
    mode, its thresholds keep a float32 margin ("random") or the whole BN is
    exact in float32 ("dyadic")."""
    rng = B.rng
    acc = B.cal
    C = acc.shape[1]
    axes = (0,) + tuple(range(2, acc.ndim))
    m = acc.mean(axis=axes)
    s = acc.std(axis=axes)
    s = np.where(s < unit, unit * 2.0, s)
    flat = np.moveaxis(acc, 1, -1).reshape(-1, C)
    varies = flat.min(axis=0) != flat.max(axis=0)
    # decision boundaries: 1-D (same for every channel) or (n, C) per channel
    bounds = act.bounds(C) if isinstance(act, _QAct) else _boundaries(act)
    asc = act.scale  # float, or (C,) per-channel scales (_QAct)
    sign_act = act.kind == "sign"
    qfn = _act_fn(act)

    def pick_bound(c):
        j = rng.integers(len(bounds))
        return bounds[j] if bounds.ndim == 1 else bounds[j, c]
    A = np.maximum(np.abs(lo), np.abs(hi))

    gsign = np.where(rng.random(C) < 0.2, -1.0, 1.0)
    zero_ch = np.zeros(C, bool)
    if C > 1 and rng.random() < 0.35:
        zero_ch[rng.integers(C)] = True

    def draw_scale_shift(idx):
        n = len(idx)
        if act.kind == "int":
            sc = asc if np.isscalar(asc) else asc[idx]
            g = sc * (act.hi - act.lo + 1) / 4 * 2.0 ** rng.uniform(-0.7, 1.0, n)
            b = sc * rng.uniform(act.lo * 0.6, act.hi * 0.6, n)
        else:
            g = 2.0 ** rng.uniform(-2, 2, n)
            b = g * rng.normal(0, 0.5, n)
        return g, b

    def zero_beta(c):
        if rng.random() < 0.5 and not sign_act:
            return float(pick_bound(c))  # exact tie, constant channel
        _, b = draw_scale_shift([c])
        return float(np.float32(b[0])) if b[0] != 0 else 0.5

    mode = "dyadic" if (dyadic_ok and rng.random() < 0.4) else "random"
    if mode == "dyadic":
        # eps a power of two such that var = std^2 - eps is exact in float32
        # for every std the draws below can produce (std^2 + eps = 4^k)
        e_hi = 2 * math.floor(math.log2(s.min() / 2)) - 2
        e_lo = 2 * math.ceil(math.log2(s.max() * 2)) - 22
        e = min(e_hi, -10)
        eps = 2.0**e if e >= e_lo else 0.0
        tie = rng.random(C) < 0.4
    else:
        eps = float(rng.choice([1e-5, 1e-5, 1e-4, 1e-3]))
    gamma, beta, mean, var = (np.zeros(C) for _ in range(4))
    redo = np.ones(C, bool)
    for attempt in range(400):
        idx = np.nonzero(redo)[0]
        k = len(idx)
        g, b = draw_scale_shift(idx)
        mu = m[idx] + s[idx] * rng.normal(0, 0.3, k)
        sd = s[idx] * 2.0 ** rng.uniform(-0.5, 0.5, k)
        if mode == "dyadic":
            un = unit[idx]
            mu = np.round(mu / (un / 2)) * (un / 2)
            sd = 2.0 ** np.round(np.log2(sd))
            g = gsign[idx] * 2.0 ** np.round(np.log2(g)) * rng.choice([1.0, 1.25, 1.5, 1.75], k)
            if act.kind == "int":
                q = (asc if np.isscalar(asc) else asc[idx]) / 4
            else:
                q = 2.0 ** (np.floor(np.log2(np.abs(g))) - 2)
            b = np.round(b / q) * q
            for j, c in enumerate(idx):
                if tie[c]:  # a calibration accumulator lands exactly on a boundary
                    a0 = flat[rng.integers(flat.shape[0]), c]
                    b[j] = pick_bound(c) - g[j] * (a0 - mu[j]) / sd[j]
            v = sd**2 - eps
        else:
            g = gsign[idx] * g
            v = np.maximum(sd**2 - eps, sd**2 * 0.5)
        gamma[idx], beta[idx], mean[idx], var[idx] = g, b, mu, v
        for c in idx:
            if zero_ch[c]:
                gamma[c] = 0.0
                beta[c] = zero_beta(c)
        if mode == "random":
            gamma, beta, mean, var = (t.astype(np.float32).astype(np.float64) for t in (gamma, beta, mean, var))
            bad = _margin_bad(mean, var, eps, gamma, beta, unit, lo, hi, bounds)
        else:
            bad = ~_bn_exact(mean, var, eps, gamma, beta, unit, A)
        if attempt < 150:
            y = qfn(_np_bn(acc, gamma, beta, mean, var, eps))
            yf = np.moveaxis(y, 1, -1).reshape(-1, C)
            for c in range(C):
                if zero_ch[c] or not varies[c]:
                    continue
                _, counts = np.unique(yf[:, c], return_counts=True)
                if counts.max() > 0.9 * len(yf):
                    bad[c] = True
        if not bad.any():
            break
        if mode == "dyadic" and attempt == 60:
            mode, eps = "random", 1e-5
            bad[:] = True
        redo = bad
    else:  # pragma: no cover - practically unreachable
        raise RuntimeError(f"{prefix}: could not choose BatchNorm parameters")

    gamma, beta, mean, var = (np.asarray(t, np.float32) for t in (gamma, beta, mean, var))
    info["bn"] = mode
    info["bn_eps"] = float(eps)
    info["gamma_neg"] = int((gamma < 0).sum())
    info["gamma_zero"] = int((gamma == 0).sum())
    ins = [B.cur] + [B.init(f"{prefix}_bn_{k}", v) for k, v in
                     (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))]
    B.step("BatchNormalization", ins, f"{prefix}_bn", B.shape,
           lambda x, p=(gamma, beta, mean, var, eps): _np_bn(x, *p), prefix=prefix,
           epsilon=float(eps))


# ---------------------------------------------------------------------------
# layers


def _weights(B: _Builder, prefix: str, wshape, bits: int, plain: bool, info: dict):
    """Emit the weight path; returns (weight tensor name, quantized float weights
    (O, ...), integer weights, per-output-channel scale)."""
    rng = B.rng
    O = wshape[0]
    if plain:
        wf = rng.normal(0, 0.1, size=wshape).astype(np.float32)
        wf[wf == 0] = np.float32(0.01)
        w = B.init(f"{prefix}_w", wf)
        wq_name = B.node("Sign", [w], f"{prefix}_w_sign", wshape, prefix=prefix)
        wq = np.sign(wf.astype(np.float64))
        info.update(wbits=1, wquant="Sign")
        return wq_name, wq, wq, np.ones(O)
    narrow = bool(rng.random() < 0.5)
    per_ch = bool(rng.random() < 0.5)
    if per_ch:
        scale = 2.0 ** rng.integers(-3, 1, size=O).astype(np.float64)
    else:
        scale = np.full(O, _p2(rng, -3, 0))
    wfu, q = _weight_ints(rng, wshape, bits, narrow)
    sshape = (O,) + (1,) * (len(wshape) - 1)
    wf = wfu * scale.reshape(sshape)
    w = B.init(f"{prefix}_w", wf.astype(np.float32))
    sc = scale.reshape(sshape) if per_ch else np.float32(scale[0])
    if bits == 1:
        wq_name = B.bipolar_node(w, prefix, "w", sc, wshape)
        info.update(wquant="BipolarQuant")
    else:
        wq_name = B.quant_node(w, prefix, "w", sc, bits, narrow, wshape)
        info.update(wquant="Quant", wnarrow=narrow)
    info.update(wbits=bits, w_per_channel=per_ch)
    return wq_name, q * scale.reshape(sshape), q, scale


def _fc(B: _Builder, prefix: str, out_f: int, bits: int, act_in: _Act, plain: bool, info: dict):
    rng = B.rng
    in_f = B.shape[1]
    wname, wq, q, wscale = _weights(B, prefix, (out_f, in_f), bits, plain, info)
    unit = act_in.scale * wscale
    bias_int = None
    if rng.random() < 0.25:
        bias_int = rng.integers(-3, 4, size=out_f)
    if plain and rng.random() < 0.6:
        ins = [B.cur, wname]
        if bias_int is not None:
            ins.append(B.init(f"{prefix}_bias", (bias_int * unit).astype(np.float32)))
        B.step("Gemm", ins, f"{prefix}_acc", (1, out_f),
               lambda x, w=wq, bi=bias_int, u=unit: x @ w.T + (0 if bi is None else bi * u),
               prefix=prefix, transB=1)
        info["matmul"] = "Gemm"
        bias_int_done = True
    else:
        wt = B.node("Transpose", [wname], f"{prefix}_wT", (in_f, out_f), prefix=prefix, perm=[1, 0])
        B.step("MatMul", [B.cur, wt], f"{prefix}_mm", (1, out_f), lambda x, w=wq: x @ w.T, prefix=prefix)
        info["matmul"] = "Transpose+MatMul"
        bias_int_done = False
    if bias_int is not None and not bias_int_done:
        b = B.init(f"{prefix}_bias", (bias_int * unit).reshape(1, -1).astype(np.float32))
        B.step("Add", [B.cur, b], f"{prefix}_acc", (1, out_f), lambda x, bb=bias_int * unit: x + bb, prefix=prefix)
    info["bias"] = bias_int is not None
    lo, hi = _acc_range(q, act_in, bias_int)
    info.update(kind="fc", in_features=in_f, out_features=out_f, acc_lo=int(lo.min()), acc_hi=int(hi.max()))
    return unit, lo, hi


def _conv(B: _Builder, prefix: str, cout: int, k: int, stride: int, pad: int, bits: int,
          act_in: _Act, plain: bool, info: dict):
    rng = B.rng
    _, cin, h, w = B.shape
    wname, wq, q, wscale = _weights(B, prefix, (cout, cin, k, k), bits, plain, info)
    unit = act_in.scale * wscale
    bias_int = rng.integers(-3, 4, size=cout) if rng.random() < 0.25 else None
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    ins = [B.cur, wname]
    if bias_int is not None:
        ins.append(B.init(f"{prefix}_bias", (bias_int * unit).astype(np.float32)))
    B.step("Conv", ins, f"{prefix}_acc", (1, cout, ho, wo),
           lambda x, w_=wq, s=stride, p=pad, bb=None if bias_int is None else bias_int * unit:
           _np_conv(x, w_, s, p, bb),
           prefix=prefix, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4,
           dilations=[1, 1], group=1)
    lo, hi = _acc_range(q, act_in, bias_int)
    info.update(kind="conv", cin=cin, cout=cout, kernel=k, stride=stride, pad=pad, in_hw=(h, w),
                out_hw=(ho, wo), bias=bias_int is not None, acc_lo=int(lo.min()), acc_hi=int(hi.max()))
    return unit, lo, hi


def _flatten(B: _Builder, prefix: str, info_list: list):
    n = int(np.prod(B.shape[1:]))
    if B.rng.random() < 0.5:
        B.step("Flatten", [B.cur], f"{prefix}_flat", (1, n), lambda x: x.reshape(x.shape[0], -1),
               prefix=prefix, axis=1)
        info_list.append("Flatten")
    else:
        shp = B.init(f"{prefix}_shape", np.array([1, -1], np.int64))
        B.step("Reshape", [B.cur, shp], f"{prefix}_flat", (1, n), lambda x: x.reshape(x.shape[0], -1),
               prefix=prefix)
        info_list.append("Reshape")


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


# ---------------------------------------------------------------------------
# network generator


def _build(rng: np.random.Generator, family: str, name: str = ""):
    qonnx = family.startswith("qonnx")
    conv = family.endswith("conv")
    plain = not qonnx
    B = _Builder(rng)
    meta: dict = {"layers": [], "reshape": [], "tail": []}

    # ---- input ----------------------------------------------------------
    if conv:
        in_shape = (int(rng.integers(1, 5)), int(rng.integers(4, 11)), int(rng.integers(4, 11)))
        if rng.random() < 0.6:
            in_shape = (in_shape[0], in_shape[1], in_shape[1])
    elif rng.random() < 0.6:
        in_shape = (int(rng.integers(4, 65)),)
    else:
        in_shape = (int(rng.integers(1, 3)), int(rng.integers(2, 6)), int(rng.integers(2, 6)))
    meta["input_shape"] = in_shape
    B.cur = "global_in"
    B.tensor_names.add(B.cur)
    B.shape = (1,) + in_shape
    B.cal = _gen_inputs(rng, _N_CAL, in_shape, 0.0).astype(np.float64)
    B.vinfo.pop(B.cur, None)

    flatten_first = (not conv) and len(in_shape) == 3 and rng.random() < 0.5
    if flatten_first:
        _flatten(B, "inp", meta["reshape"])

    if qonnx:
        pre = str(rng.choice(["none", "none", "mul2_sub1", "mul_half", "sub_quarter", "add_half"]))
        meta["preproc"] = pre
        consts = {"mul2_sub1": [("Mul", 2.0), ("Sub", 1.0)], "mul_half": [("Mul", 0.5)],
                  "sub_quarter": [("Sub", 0.25)], "add_half": [("Add", 0.5)], "none": []}[pre]
        for op, c in consts:
            cn = B.init(f"inp_{op.lower()}_const", np.float32(c))
            f = {"Mul": np.multiply, "Sub": np.subtract, "Add": np.add}[op]
            B.step(op, [B.cur, cn], f"inp_{op.lower()}", B.shape, lambda x, f=f, c=c: f(x, c), prefix="inp")
        if rng.random() < 0.65:
            narrow = bool(rng.random() < 0.3)
            act = _Act("int", 2.0**-7, -127 if narrow else -128, 127, 8)
            meta["input_quant"] = f"Quant8{'n' if narrow else ''}"
        else:
            act = _Act("bipolar", 1.0, -1, 1, 1)
            meta["input_quant"] = "BipolarQuant"
        B.act_quant("inp", act)
    else:
        act = _Act("sign", 1.0, -1, 1, 1)
        meta["input_quant"] = "Sign"
        B.act_quant("inp", act)
    if (not conv) and len(B.shape) == 4:
        _flatten(B, "inp", meta["reshape"])

    # ---- hidden layers -----------------------------------------------------
    n_hidden = int(rng.integers(1, 4))
    wbits0 = 1 if plain else int(rng.integers(1, 5))
    abits0 = 1 if plain else int(rng.integers(1, 5))

    def bits(base):
        return base if (plain or rng.random() < 0.7) else int(rng.integers(1, 5))

    n_conv = int(rng.integers(1, n_hidden + 1)) if conv else 0
    for li in range(n_hidden):
        is_conv = li < n_conv
        prefix = f"conv{li}" if is_conv else f"fc{li}"
        info: dict = {}
        wb, ab = bits(wbits0), bits(abits0)
        if is_conv:
            _, cin, h, w = B.shape
            cout = min(_width(rng), 16)
            for _ in range(50):
                k = int(rng.choice([1, 2, 3, 3, 3]))
                stride = int(rng.choice([1, 1, 2]))
                pad = int(act.kind == "int" and k > 1 and rng.random() < 0.5)
                ho = (h + 2 * pad - k) // stride + 1
                wo = (w + 2 * pad - k) // stride + 1
                if ho >= 1 and wo >= 1 and (ho >= 2 or li == n_conv - 1):
                    break
            else:
                k, stride, pad = 1, 1, 0
            unit, lo, hi = _conv(B, prefix, cout, k, stride, pad, wb, act, plain, info)
        else:
            unit, lo, hi = _fc(B, prefix, _width(rng), wb, act, plain, info)
        new_act = _Act("sign", 1.0, -1, 1, 1) if plain else _choose_act(rng, ab)
        A = np.maximum(np.abs(lo), np.abs(hi))
        _make_bn(B, prefix, unit, lo, hi, new_act, dyadic_ok=not plain and bool(A.max() <= 2**16), info=info)
        B.act_quant(prefix, new_act)
        B.act_tensors.append(B.cur)
        act = new_act
        info.update(act=act.kind, abits=act.bits, ascale=act.scale, anarrow=act.narrow)
        if is_conv:
            _, c, h, w = B.shape
            last_conv = li == n_conv - 1
            big = last_conv and c * h * w > 512
            if h >= 2 and w >= 2 and (rng.random() < 0.3 or big) and (big or c * (h // 2) * (w // 2) >= 8):
                B.step("MaxPool", [B.cur], f"{prefix}_pool", (1, c, h // 2, w // 2), _np_maxpool2,
                       prefix=prefix, kernel_shape=[2, 2], strides=[2, 2])
                info["maxpool"] = True
            if last_conv:
                _flatten(B, prefix, meta["reshape"])
        B.layers.append(info)

    # ---- output layer ----------------------------------------------------
    info = {}
    n_out = int(rng.integers(2, 11))
    unit, lo, hi = _fc(B, "out", n_out, bits(wbits0), act, plain, info)
    info["act"] = "none"
    B.layers.append(info)

    tail = meta["tail"]
    r = rng.random()
    if qonnx and r < 0.3:
        sc = 2.0 ** rng.integers(-3, 3, size=n_out).astype(np.float64)
        B.step("Mul", [B.cur, B.init("out_scale", sc.reshape(1, -1).astype(np.float32))], "out_scaled",
               B.shape, lambda x, s=sc: x * s, prefix="out")
        tail.append("Mul(per-channel)")
        grid = float((unit * sc).min())
        if rng.random() < 0.6:
            c = float(rng.integers(-8, 9)) * grid
            B.step("Add", [B.cur, B.init("out_bias", np.float32(c))], "out_biased", B.shape,
                   lambda x, c=c: x + c, prefix="out")
            tail.append("Add(scalar)")
    elif qonnx and r < 0.6:
        grid = float(unit.min())
        c1 = float(rng.integers(-8, 9)) * grid
        d = _p2(rng, -2, 3)
        m = float(rng.choice([0.5, 0.75, 1.0, 1.5, 2.0]))
        c2 = float(rng.integers(-8, 9)) * grid
        for op, c in (("Sub", c1), ("Div", d), ("Mul", m), ("Add", c2)):
            f = {"Mul": np.multiply, "Sub": np.subtract, "Add": np.add, "Div": np.divide}[op]
            B.step(op, [B.cur, B.init(f"tn_{op.lower()}_const", np.float32(c))], f"tn_{op.lower()}",
                   B.shape, lambda x, f=f, c=c: f(x, c), prefix="tn")
        tail.append("TensorNorm(Sub,Div,Mul,Add)")
    elif plain and r < 0.5:
        # final BatchNorm, exact (dyadic, var + eps a power of four)
        C = n_out
        s = 2.0 ** rng.integers(0, 4, size=C).astype(np.float64)
        eps = 2.0**-10
        var = s**2 - eps
        gamma = np.where(rng.random(C) < 0.2, -1.0, 1.0) * 2.0 ** rng.integers(-2, 2, size=C)
        mean = rng.integers(-4, 5, size=C) / 2.0
        beta = rng.integers(-8, 9, size=C) / 4.0
        p = [np.asarray(t, np.float32) for t in (gamma, beta, mean, var)]
        ins = [B.cur] + [B.init(f"out_bn_{k}", v) for k, v in zip(("gamma", "beta", "mean", "var"), p)]
        B.step("BatchNormalization", ins, "out_bn", B.shape,
               lambda x, p=p, e=eps: _np_bn(x, *p, e), prefix="out", epsilon=eps)
        tail.append("BatchNormalization(dyadic)")

    r = rng.random()
    _, counts = np.unique(np.argmax(B.cal, axis=-1), return_counts=True)
    if counts.max() > 0.8 * len(B.cal):
        r = 1.0  # the class index would be (nearly) constant: keep the logits
    if r < 0.2:
        B.step("ArgMax", [B.cur], "global_out", (1,), lambda x: np.argmax(x, axis=-1),
               prefix="top", elem=TensorProto.INT64, axis=-1, keepdims=0)
        tail.append("ArgMax")
    elif r < 0.35:
        kname = B.init("top_k", np.array([1], np.int64))
        B.step("TopK", [B.cur, kname], "top_values", (1, 1), lambda x: np.argmax(x, axis=-1)[:, None],
               prefix="top", extra_outputs=[("global_out", (1, 1), TensorProto.INT64)],
               axis=-1, largest=1, sorted=1)
        # the data path continues from the indices output
        B.cur, B.shape = B.nodes[-1].output[1], (1, 1)
        tail.append("TopK")

    # ---- assemble -----------------------------------------------------------
    _rename_tensor(B, B.cur, "global_out")
    model = _assemble(B, name or f"netgen-{family}", [1, *in_shape], "global_out", qonnx, meta)
    return model, B.ops, in_shape, meta


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


def random_network(seed: int, family: str | None = None, n_inputs: int = 8) -> NetCase:
    """Generate network number ``seed`` of ``family`` (default: FAMILIES[seed % 4])
    with ``n_inputs`` test inputs and their reference outputs.

    The model depends only on (seed, family); inputs for a larger ``n_inputs``
    extend those of a smaller one.  A family of ``INT_FAMILIES`` is passed on to
    ``random_int_network``.
    """
    if family is None:
        family = FAMILIES[seed % len(FAMILIES)]
    if family in INT_FAMILIES:
        return random_int_network(seed, family, n_inputs)
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES + INT_FAMILIES}")
    fam_idx = FAMILIES.index(family)
    rng = np.random.default_rng([seed, fam_idx, 0])
    name = f"{family}-s{seed}"
    model, ops, in_shape, meta = _build(rng, family, name)
    onnx.checker.check_model(model)

    in_rng = np.random.default_rng([seed, fam_idx, 1])
    if family.startswith("plain"):
        zero_frac = 0.03 if in_rng.random() < 0.25 else 0.0
        meta["sign_zero_inputs"] = zero_frac > 0
    else:
        zero_frac = 0.03
    inputs = _gen_inputs(in_rng, n_inputs, in_shape, zero_frac)

    x = inputs.astype(np.float64)
    for fn in ops:
        x = fn(x)
    outputs = reference_outputs(model, inputs)
    meta["sim_outputs"] = np.asarray(x).astype(outputs.dtype)
    return NetCase(name=name, model=model, inputs=inputs, outputs=outputs, family=family,
                   meta=meta)


def iter_networks(n: int, start: int = 0, family: str | None = None, n_inputs: int = 8):
    """Yield ``random_network(seed, family, n_inputs)`` for seeds start..start+n-1."""
    for seed in range(start, start + n):
        yield random_network(seed, family, n_inputs)


# ===========================================================================
# integer networks (issue 6): ReLU / unsigned quantizers, biases, per-channel
# scales, every QONNX rounding mode, residual adds and concats, int8 QDQ
# ===========================================================================

INT_FAMILIES = ("qonnx-int-fc", "qonnx-int-conv", "qonnx-residual", "qdq-fc", "qdq-conv")

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


def _boundary_hits(x, scale, qa) -> tuple[int, int]:
    """(elements exactly on a decision boundary of quantizer ``qa``, elements
    whose x / scale is exactly k + 0.5 inside the integer range)."""
    x32 = np.asarray(x, dtype=np.float32)
    if qa.relu:
        x32 = np.maximum(x32, np.float32(0))
    v = (x32 / np.asarray(scale, dtype=np.float32)).astype(np.float64)
    lo, hi = qa.lo, qa.hi
    inside = (v > lo - 1) & (v < hi + 1)
    half = inside & (v - np.floor(v) == 0.5) & (v > lo) & (v < hi)
    if qa.mode in _HALF_MODES:
        on = half
    else:
        on = inside & (v == np.round(v)) & (v >= lo) & (v <= hi)
        if qa.mode == "FLOOR":
            on &= v > lo
        elif qa.mode == "CEIL":
            on &= v < hi
        else:  # UP / DOWN: 0 is interior to the zero bucket for DOWN
            on &= (v != 0) | (qa.mode == "UP")
    return int(on.sum()), int(half.sum())


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


@dataclass
class _In:
    """What a data tensor feeding a MatMul / Conv holds: integers in [lo, hi]
    times svec, per channel (conv) or per feature (fc)."""

    lo: np.ndarray
    hi: np.ndarray
    svec: np.ndarray

    @staticmethod
    def of(qa: _QAct) -> "_In":
        C = len(qa.scale)
        return _In(np.full(C, qa.lo), np.full(C, qa.hi), np.asarray(qa.scale, np.float64).copy())

    def repeat(self, n: int) -> "_In":
        return _In(np.repeat(self.lo, n), np.repeat(self.hi, n), np.repeat(self.svec, n))

    @staticmethod
    def cat(a: "_In", b: "_In") -> "_In":
        return _In(np.concatenate([a.lo, b.lo]), np.concatenate([a.hi, b.hi]), np.concatenate([a.svec, b.svec]))


class _GBuilder(_Builder):
    """Builder for graphs that branch: the numpy model is a list of
    (fn, input tensor names, output tensor name) evaluated on an environment."""

    def __init__(self, rng):
        super().__init__(rng)
        self.env: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.quants: list[tuple[str, str, _QAct]] = []  # (input tensor, output tensor, quantizer)

    def gstep(self, op, inputs, out_base, out_shape, fn, data=None, **kw) -> str:
        out = self.node(op, inputs, out_base, out_shape, **kw)
        data = [inputs[0]] if data is None else list(data)
        self.ops.append((fn, tuple(data), out))
        self.env[out] = fn(*[self.env[d] for d in data])
        self.shapes[out] = tuple(out_shape)
        self.goto(out)
        return out

    def step(self, op, inputs, out_base, out_shape, fn, **kw) -> str:  # used by _make_bn
        return self.gstep(op, inputs, out_base, out_shape, fn, **kw)

    def apply(self, fn):  # pragma: no cover - linear-builder API, not used here
        raise NotImplementedError

    def goto(self, name: str):
        self.cur, self.shape, self.cal = name, self.shapes[name], self.env[name]

    def run(self, x: np.ndarray, inp: str = "global_in") -> dict:
        env = {inp: x}
        for fn, ins, out in self.ops:
            env[out] = fn(*[env[i] for i in ins])
        return env

    def quant(self, prefix, what, qa: _QAct, per_channel_shape=None) -> str:
        """Emit [Relu ->] Quant on the current tensor."""
        if qa.relu:
            self.gstep("Relu", [self.cur], f"{prefix}_relu", self.shape, lambda x: np.maximum(x, 0.0),
                       prefix=prefix)
        xin = self.cur
        nd = len(self.shape)
        if qa.per_channel:
            sc = qa.scale.reshape(per_channel_shape or ((1, -1) + (1,) * (nd - 2)))
        else:
            sc = np.float32(qa.scale[0])
        s = self.init(f"{prefix}_{what}_scale", np.asarray(sc, np.float32))
        z = self.init(f"{prefix}_{what}_zeropt", np.float32(0.0))
        b = self.init(f"{prefix}_{what}_bitwidth", np.float32(qa.bits))
        out = self.gstep("Quant", [xin, s, z, b], f"{prefix}_{what}_q", self.shape, qa.quant, prefix=prefix,
                         domain=QONNX_DOMAIN, signed=int(qa.signed), narrow=int(qa.narrow),
                         rounding_mode=qa.mode)
        self.quants.append((xin, out, qa))
        return out


def _pick_mode(rng, p_round=0.4) -> str:
    if rng.random() < p_round:
        return "ROUND"
    return str(rng.choice(ROUNDING_MODES[1:]))


def _int_weight_draw(rng, shape, bits, narrow, mode):
    """Float weights in units of the scale (dyadic, some exactly k + 0.5) and
    their integers under ``mode``; every output channel has a non-zero weight."""
    lo, hi = _int_range(bits, True, narrow)
    k = np.clip(np.round(rng.normal(0, max(1.0, hi / 2.5), size=shape)), lo - 1, hi + 1)
    frac = rng.choice([0.0, 0.0, 0.0, 0.25, -0.25, 0.5, -0.5, 0.75], size=shape)
    wf = k + frac
    q = _np_round_mode(np.clip(wf, lo, hi), mode)
    fw, fq = wf.reshape(shape[0], -1), q.reshape(shape[0], -1)
    for o in range(shape[0]):
        if not fq[o].any():
            j = int(rng.integers(fq.shape[1]))
            fw[o, j], fq[o, j] = 1.0, 1.0
    return wf, q


def _acc_range_in(w_eff: np.ndarray, ind: _In, conv: bool):
    """Reachable integer accumulator range per output channel; w_eff (O, I[, k, k])
    already multiplied by the input scale ratios.  Zero is always reachable
    (zero inputs, padding)."""
    shp = (1, -1) + ((1, 1) if conv else ())
    a = w_eff * ind.lo.reshape(shp)
    b = w_eff * ind.hi.reshape(shp)
    ax = tuple(range(1, w_eff.ndim))
    lo = np.minimum(np.minimum(a, b).sum(ax), 0)
    hi = np.maximum(np.maximum(a, b).sum(ax), 0)
    mag = np.maximum(np.abs(a), np.abs(b)).sum(ax)
    return lo.astype(np.int64), hi.astype(np.int64), mag


_F32_EXACT = 2**24


def _int_mm_layer(B: _GBuilder, prefix: str, out_ch: int, ind: _In, wbits: int, info: dict,
                  conv: tuple[int, int, int] | None = None, p_bias: float = 0.6, shift=None):
    """Emit a quantized-weight Gemm / MatMul / Conv layer with an optional bias;
    ``shift(acc)`` (optional) returns a power-of-two exponent applied to the
    weight scale given the calibration accumulators (to aim the output at a
    prescribed quantizer scale).
    Returns (grid (O,), lo (O,), hi (O,)): the pre-activation is an integer in
    [lo, hi] times grid, exactly, in any float32 evaluation order."""
    rng = B.rng
    x_cal = B.cal
    u_in = float(ind.svec.min())
    r = ind.svec / u_in
    if not np.all(r == np.round(r)):
        raise AssertionError("input scale ratios must be integers")
    if conv:
        k, stride, pad = conv
        cin = B.shape[1]
        wshape = (out_ch, cin, k, k)
        w_eff_r = r.reshape(1, -1, 1, 1)
    else:
        wshape = (out_ch, B.shape[1])
        w_eff_r = r.reshape(1, -1)
    bias_kind = "none"
    if rng.random() < p_bias:
        bias_kind = str(rng.choice(["acc", "acc", "dyadic", "quant"]))
    for attempt in range(12):
        narrow = bool(rng.random() < 0.35)
        per_ch = bool(rng.random() < 0.5)
        mode = "ROUND" if rng.random() < 0.75 else _pick_mode(rng, 0.0)
        wf_u, q = _int_weight_draw(rng, wshape, wbits, narrow, mode)
        top = -(wbits + 1) // 2 - 1
        if per_ch:
            wscale = 2.0 ** rng.integers(top - 2, top + 1, size=out_ch).astype(np.float64)
        else:
            wscale = np.full(out_ch, 2.0 ** int(rng.integers(top - 2, top + 1)))
        sshape = (out_ch,) + (1,) * (len(wshape) - 1)
        wq = q * wscale.reshape(sshape)
        w_eff = q * w_eff_r
        lo, hi, mag = _acc_range_in(w_eff, ind, bool(conv))
        unit = wscale * u_in
        # calibration accumulators (value domain) to size the bias
        acc = _np_conv(x_cal, wq, conv[1], conv[2]) if conv else x_cal @ wq.T
        if shift is not None:
            j = int(np.clip(shift(acc), -12, 12))
            wscale, wq, unit, acc = wscale * 2.0**j, wq * 2.0**j, unit * 2.0**j, acc * 2.0**j
        axes = (0,) + tuple(range(2, acc.ndim))
        std = acc.std(axis=axes) + unit
        f = int(rng.integers(1, 5)) if bias_kind == "dyadic" else 0
        bias_g = np.zeros(out_ch, np.int64)
        if bias_kind != "none":
            bias_g = np.round(rng.normal(0, 0.5, out_ch) * std / unit * 2**f).astype(np.int64)
        if np.all(mag * 2**f + np.abs(bias_g) < _F32_EXACT // 2):
            break
        wbits = max(2, wbits - 1)
        bias_kind = "acc" if bias_kind == "dyadic" else bias_kind
    else:  # pragma: no cover
        raise RuntimeError(f"{prefix}: accumulator does not fit float32")
    grid = unit / 2**f

    # ---- emit the weights --------------------------------------------------
    if conv:
        form = "Conv+B" if (bias_kind != "none" and rng.random() < 0.5) else "Conv"
    else:
        form = str(rng.choice(["Transpose+MatMul", "MatMul", "Gemm"]))
    wtrans = form == "MatMul"  # (in, out) weight initializer
    wfloat = wf_u * wscale.reshape(sshape)
    w = B.init(f"{prefix}_w", (wfloat.T if wtrans else wfloat).astype(np.float32))
    if per_ch:
        sc = wscale.reshape(1, -1) if wtrans else wscale.reshape(sshape)
    else:
        sc = np.float32(wscale[0])
    s = B.init(f"{prefix}_w_scale", np.asarray(sc, np.float32))
    z = B.init(f"{prefix}_w_zeropt", np.float32(0.0))
    bw = B.init(f"{prefix}_w_bitwidth", np.float32(wbits))
    wshape_emit = wshape[::-1] if wtrans else wshape
    wname = B.node("Quant", [w, s, z, bw], f"{prefix}_w_q", wshape_emit, prefix=prefix, domain=QONNX_DOMAIN,
                   signed=1, narrow=int(narrow), rounding_mode=mode)

    # ---- emit the bias ---------------------------------------------------
    bias_val = bias_g * grid
    bname = None
    if bias_kind != "none":
        in_op = form in ("Gemm", "Conv+B")
        bshape = (out_ch,) if in_op else ((1, out_ch, 1, 1) if conv else (1, out_ch))
        if bias_kind == "quant":
            # Brevitas' quantized bias: float bias -> Quant(scale = accumulator scale)
            fr = rng.choice([0.0, 0.0, 0.25, -0.25, 0.5, -0.5], size=out_ch)
            bf = (bias_g + fr) * unit
            bbits = int(rng.choice([16, 24]))
            bl, bh = _int_range(bbits, True, False)
            bias_g = np.round(np.clip(bias_g + fr, bl, bh)).astype(np.int64)
            bias_val = bias_g * grid
            braw = B.init(f"{prefix}_b", bf.reshape(bshape).astype(np.float32))
            bs = B.init(f"{prefix}_b_scale", unit.reshape(bshape).astype(np.float32))
            bz = B.init(f"{prefix}_b_zeropt", np.float32(0.0))
            bb = B.init(f"{prefix}_b_bitwidth", np.float32(bbits))
            bname = B.node("Quant", [braw, bs, bz, bb], f"{prefix}_b_q", bshape, prefix=prefix,
                           domain=QONNX_DOMAIN, signed=1, narrow=0, rounding_mode="ROUND")
            info["bias_bits"] = bbits
        else:
            bname = B.init(f"{prefix}_bias", bias_val.reshape(bshape).astype(np.float32))

    # ---- emit the matmul / conv ---------------------------------------------
    if conv:
        _, cin, h, wd = B.shape
        ho = (h + 2 * pad - k) // stride + 1
        wo = (wd + 2 * pad - k) // stride + 1
        ins = [B.cur, wname] + ([bname] if form == "Conv+B" else [])
        bb_ = bias_val if form == "Conv+B" else None
        B.gstep("Conv", ins, f"{prefix}_conv", (1, out_ch, ho, wo),
                lambda x, w_=wq, s_=stride, p_=pad, b_=bb_: _np_conv(x, w_, s_, p_, b_), prefix=prefix,
                kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, dilations=[1, 1], group=1)
        info.update(kind="conv", cin=cin, cout=out_ch, kernel=k, stride=stride, pad=pad, in_hw=(h, wd),
                    out_hw=(ho, wo))
        if bias_kind != "none" and form == "Conv":
            B.gstep("Add", [B.cur, bname], f"{prefix}_acc", B.shape,
                    lambda x, b_=bias_val: x + b_.reshape(1, -1, 1, 1), prefix=prefix)
    else:
        in_f = B.shape[1]
        if form == "Gemm":
            ins = [B.cur, wname] + ([bname] if bname else [])
            bb_ = bias_val if bname else None
            B.gstep("Gemm", ins, f"{prefix}_gemm", (1, out_ch),
                    lambda x, w_=wq, b_=bb_: x @ w_.T + (0 if b_ is None else b_), prefix=prefix, transB=1)
        else:
            wt = wname
            if form == "Transpose+MatMul":
                wt = B.node("Transpose", [wname], f"{prefix}_wT", (in_f, out_ch), prefix=prefix, perm=[1, 0])
            B.gstep("MatMul", [B.cur, wt], f"{prefix}_mm", (1, out_ch), lambda x, w_=wq: x @ w_.T, prefix=prefix)
            if bname:
                B.gstep("Add", [B.cur, bname], f"{prefix}_acc", (1, out_ch), lambda x, b_=bias_val: x + b_,
                        prefix=prefix)
        info.update(kind="fc", in_features=in_f, out_features=out_ch)
    lo_g, hi_g = lo * 2**f + bias_g, hi * 2**f + bias_g
    info.update(form=form, wbits=wbits, wnarrow=narrow, w_per_channel=per_ch, wmode=mode, bias=bias_kind,
                bias_finer=f, acc_lo=int(lo_g.min()), acc_hi=int(hi_g.max()),
                in_scale_per_channel=bool(np.any(r != 1)))
    return grid, lo_g, hi_g


def _data_scale(B: _GBuilder, qa: _QAct, grid, per_channel: bool, tie_push: bool) -> np.ndarray:
    """Power-of-two scales (C,) that spread the calibration values of the
    current tensor over the quantizer's levels; activations kept non-constant."""
    rng = B.rng
    pre = B.cal
    C = pre.shape[1]
    flat = np.moveaxis(pre, 1, -1).reshape(-1, C)
    v = np.maximum(flat, 0) if (qa.relu or not qa.signed) else np.abs(flat)
    top = np.quantile(v, 0.95, axis=0)
    top = np.where(top > 0, top, grid)
    levels = max(qa.hi, 1)
    e = np.ceil(np.log2(top / levels))
    if per_channel:
        e = e + rng.choice([-1, 0, 0, 1], size=C)
    else:
        e = np.full(C, np.ceil(np.median(e)) + rng.choice([-1, 0, 0, 1]))
    if tie_push:  # grid finer than the scale: x / scale hits k + 0.5 sometimes
        e = np.maximum(e, np.ceil(np.log2(grid)) + 1 if per_channel else np.max(np.ceil(np.log2(grid))) + 1)
    e = np.clip(e, -24, 10)
    for _ in range(8):
        qa.scale = 2.0**e
        y = np.moveaxis(qa.np_fn(pre), 1, -1).reshape(-1, C)
        bad = np.zeros(C, bool)
        for c in range(C):
            if flat[:, c].min() == flat[:, c].max():
                continue
            _, counts = np.unique(y[:, c], return_counts=True)
            bad[c] = counts.max() > 0.85 * len(y)
        if not bad.any():
            break
        if per_channel:
            e = np.where(bad, e - 1, e)
        elif bad.mean() > 0.3:
            e = e - 1
        else:
            break
    if per_channel:  # keep the spread of per-channel scales small (accumulator widths)
        e = np.maximum(e, e.max() - 3)
    qa.scale = 2.0**e
    return qa.scale


def _int_activation(B: _GBuilder, prefix: str, grid, lo, hi, qa: _QAct, info: dict, *, bn: bool,
                    fixed_scale=None, per_channel_shape=None) -> str:
    """BatchNormalization (optional) -> [Relu ->] Quant on the current
    pre-activation (integers in [lo, hi] times grid)."""
    rng = B.rng
    C = B.shape[1]
    A = np.maximum(np.abs(lo), np.abs(hi))
    if bn and A.max() > 2**15:
        # float32 BatchNorm cannot keep a margin around thresholds this far out
        bn = False
        info["bn_skipped"] = "accumulator range too wide for a float BatchNorm"
    if bn:
        if fixed_scale is not None:
            qa.scale = np.broadcast_to(np.asarray(fixed_scale, np.float64), (C,)).copy()
        elif qa.per_channel:
            base = int(rng.integers(-6, 0))
            qa.scale = 2.0 ** (base + rng.integers(0, 3, size=C)).astype(np.float64)
        else:
            qa.scale = np.full(C, 2.0 ** int(rng.integers(-6, 0)))
        _make_bn(B, prefix, grid, lo, hi, qa, dyadic_ok=bool(A.max() <= 2**16), info=info)
    else:
        info["bn"] = None
        if fixed_scale is not None:
            qa.scale = np.broadcast_to(np.asarray(fixed_scale, np.float64), (C,)).copy()
        else:
            _data_scale(B, qa, grid, qa.per_channel, tie_push=bool(rng.random() < 0.7))
    out = B.quant(prefix, "act", qa, per_channel_shape)
    info["act"] = qa.describe()
    return out


def _rand_qact(rng, C: int, *, relu: bool | None = None, signed: bool | None = None) -> _QAct:
    if relu is None:
        relu = bool(rng.random() < 0.55) if signed is None else not signed
    signed = (not relu) if signed is None else signed
    bits = int(rng.integers(2, 9))
    narrow = bool(rng.random() < 0.3)
    if relu and not signed and bits == 2:
        narrow = narrow and rng.random() < 0.5
    per_ch = bool(rng.random() < (0.5 if signed else 0.2))
    return _QAct(signed, bits, narrow, np.ones(C), per_ch, _pick_mode(rng), relu)


def _int_input(B: _GBuilder, rng, in_shape, conv: bool, meta: dict):
    B.cur = "global_in"
    B.tensor_names.add(B.cur)
    B.shapes["global_in"] = (1,) + tuple(in_shape)
    B.env["global_in"] = _gen_inputs(rng, _N_CAL, in_shape, 0.03).astype(np.float64)
    B.goto("global_in")
    if (not conv) and len(in_shape) == 3 and rng.random() < 0.5:
        _int_flatten(B, "inp", meta)
    bits = 8 if rng.random() < 0.7 else int(rng.integers(4, 8))
    C = B.shape[1]
    qa = _QAct(True, bits, bool(rng.random() < 0.3), np.full(C, 2.0 ** -(bits - 1)), False, _pick_mode(rng, 0.5))
    B.quant("inp", "act", qa)
    meta["input_quant"] = qa.describe()
    ind = _In.of(qa)
    if (not conv) and len(B.shape) == 4:
        hw = B.shape[2] * B.shape[3]
        _int_flatten(B, "inp", meta)
        ind = ind.repeat(hw)
    return ind


def _int_flatten(B: _GBuilder, prefix: str, meta: dict):
    n = int(np.prod(B.shape[1:]))
    if B.rng.random() < 0.5:
        B.gstep("Flatten", [B.cur], f"{prefix}_flat", (1, n), lambda x: x.reshape(x.shape[0], -1),
                prefix=prefix, axis=1)
        meta["reshape"].append("Flatten")
    else:
        shp = B.init(f"{prefix}_shape", np.array([1, -1], np.int64))
        B.gstep("Reshape", [B.cur, shp], f"{prefix}_flat", (1, n), lambda x: x.reshape(x.shape[0], -1),
                prefix=prefix)
        meta["reshape"].append("Reshape")


def _int_shape(rng, conv: bool):
    if conv:
        c = int(rng.integers(1, 5))
        h = int(rng.integers(4, 10))
        w = h if rng.random() < 0.6 else int(rng.integers(4, 10))
        return (c, h, w)
    if rng.random() < 0.6:
        return (int(rng.integers(4, 49)),)
    return (int(rng.integers(1, 3)), int(rng.integers(2, 6)), int(rng.integers(2, 6)))


def _conv_geom(rng, h, w, last: bool, same: bool = False):
    if same:
        k = int(rng.choice([1, 3, 3]))
        return k, 1, k // 2
    for _ in range(50):
        k = int(rng.choice([1, 2, 3, 3, 3]))
        stride = int(rng.choice([1, 1, 2]))
        pad = int(k > 1 and rng.random() < 0.6)
        ho = (h + 2 * pad - k) // stride + 1
        wo = (w + 2 * pad - k) // stride + 1
        if ho >= 1 and wo >= 1 and (ho >= 2 or last):
            return k, stride, pad
    return 1, 1, 0


def _maybe_pool(B: _GBuilder, prefix: str, info: dict, force: bool = False):
    _, c, h, w = B.shape
    big = c * h * w > 400
    if h >= 2 and w >= 2 and (B.rng.random() < 0.3 or big or force) and (big or c * (h // 2) * (w // 2) >= 8):
        B.gstep("MaxPool", [B.cur], f"{prefix}_pool", (1, c, h // 2, w // 2), _np_maxpool2,
                prefix=prefix, kernel_shape=[2, 2], strides=[2, 2])
        info["maxpool"] = True


def _aim(qa: _QAct, scale: float):
    """A weight-scale shift (power of two) that spreads the calibration
    accumulators over the levels of ``qa`` at the prescribed ``scale``."""

    def shift(acc):
        v = np.maximum(acc, 0) if (qa.relu or not qa.signed) else np.abs(acc)
        top = max(float(np.quantile(v, 0.95)), 1e-30)
        return round(math.log2(scale * qa.hi / top))

    return shift


def _int_hidden(B: _GBuilder, prefix: str, ind: _In, out_ch: int, wbits: int, qa: _QAct, meta: dict, *,
                conv=None, bn: bool | None = None, fixed_scale=None, branch: str = "") -> _In:
    info: dict = {"branch": branch} if branch else {}
    shift = None if fixed_scale is None else _aim(qa, fixed_scale)
    grid, lo, hi = _int_mm_layer(B, prefix, out_ch, ind, wbits, info, conv=conv, shift=shift)
    if bn is None:
        bn = bool(B.rng.random() < 0.4)
    _int_activation(B, prefix, grid, lo, hi, qa, info, bn=bn, fixed_scale=fixed_scale)
    B.act_tensors.append(B.cur)
    B.layers.append(info)
    return _In.of(qa)


def _int_head(B: _GBuilder, ind: _In, meta: dict, wbits: int):
    rng = B.rng
    info: dict = {}
    n_out = int(rng.integers(2, 11))
    _int_mm_layer(B, "out", n_out, ind, wbits, info, p_bias=0.7)
    info["act"] = None
    B.layers.append(info)
    _, counts = np.unique(np.argmax(B.cal, axis=-1), return_counts=True)
    if rng.random() < 0.2 and counts.max() <= 0.8 * len(B.cal):
        B.gstep("ArgMax", [B.cur], "global_out", (1,), lambda x: np.argmax(x, axis=-1), prefix="top",
                elem=TensorProto.INT64, axis=-1, keepdims=0)
        meta["tail"].append("ArgMax")


def _build_qonnx_int(rng, family: str, name: str):
    B = _GBuilder(rng)
    meta: dict = {"reshape": [], "tail": [], "blocks": []}
    residual = family == "qonnx-residual"
    conv = family == "qonnx-int-conv" or (residual and rng.random() < 0.5)
    in_shape = _int_shape(rng, conv)
    meta["input_shape"] = in_shape
    meta["conv"] = conv
    ind = _int_input(B, rng, in_shape, conv, meta)
    wbits0 = int(rng.integers(2, 9))

    def wb():
        return wbits0 if rng.random() < 0.6 else int(rng.integers(2, 9))

    def width():
        return min(_width(rng), 16) if conv else _width(rng)

    if not residual:
        n_hidden = int(rng.integers(1, 4))
        n_conv = int(rng.integers(1, n_hidden + 1)) if conv else 0
        for li in range(n_hidden):
            is_conv = li < n_conv
            prefix = f"conv{li}" if is_conv else f"fc{li}"
            qa = _rand_qact(rng, 1)
            geom = _conv_geom(rng, B.shape[2], B.shape[3], li == n_conv - 1) if is_conv else None
            ind = _int_hidden(B, prefix, ind, width(), wb(), qa, meta, conv=geom)
            if is_conv:
                _maybe_pool(B, prefix, B.layers[-1])
                if li == n_conv - 1:
                    hw = B.shape[2] * B.shape[3]
                    _int_flatten(B, prefix, meta)
                    ind = ind.repeat(hw)
    else:
        ind = _residual_trunk(B, rng, ind, conv, meta, wb, width)
    _int_head(B, ind, meta, wb())
    return _finish_graph(B, name or f"netgen-{family}", meta, qonnx=True)


def _residual_trunk(B: _GBuilder, rng, ind: _In, conv: bool, meta: dict, wb, width) -> _In:
    """stem layer -> one or two residual (add) / concat blocks."""
    C = width()
    if conv:
        C = max(C, 2)
        geom = _conv_geom(rng, B.shape[2], B.shape[3], False)
    else:
        geom = None
    relu_t = bool(rng.random() < 0.6)
    qa = _QAct(not relu_t, int(rng.integers(2, 9)), bool(rng.random() < 0.3), np.ones(C), False, _pick_mode(rng),
               relu_t)
    ind = _int_hidden(B, "stem", ind, C, wb(), qa, meta, conv=geom)
    t, t_qa = B.cur, qa
    n_blocks = 1 if rng.random() < 0.7 else 2
    for bi in range(n_blocks):
        p = f"blk{bi}"
        kind = "add" if rng.random() < 0.7 else "concat"
        same = (lambda: _conv_geom(rng, 0, 0, False, same=True)) if conv else (lambda: None)
        binfo = {"kind": kind}
        if kind == "add":
            C = B.shape[1]
            # branch B first: identity or a quantized layer (its scale fixes A's)
            identity = bool(rng.random() < 0.55)
            if identity:
                s_b, b_out, b_qa = float(t_qa.scale[0]), t, t_qa
            else:
                B.goto(t)
                b_qa = _QAct(True, int(rng.integers(2, 9)), bool(rng.random() < 0.3), np.ones(C), False,
                             _pick_mode(rng))
                geom_b = (1, 1, 0) if conv else None
                _int_hidden(B, f"{p}_b", ind, C, wb(), b_qa, meta, conv=geom_b, branch=f"{p}.B")
                s_b, b_out = float(b_qa.scale[0]), B.cur
            # branch A: one or two layers, the last one ends in a signed (or relu) Quant
            B.goto(t)
            a_ind = ind
            n_a = int(rng.integers(1, 3))
            for ai in range(n_a):
                last = ai == n_a - 1
                pref = f"{p}_a{ai}"
                if not last:
                    a_qa = _rand_qact(rng, C, relu=True)
                    a_qa.per_channel = a_qa.per_channel and rng.random() < 0.5
                    a_ind = _int_hidden(B, pref, a_ind, C, wb(), a_qa, meta, conv=same(), branch=f"{p}.A")
                    continue
                info: dict = {"branch": f"{p}.A"}
                a_relu = bool(rng.random() < 0.3)
                a_qa = _QAct(not a_relu, int(rng.integers(2, 9)), bool(rng.random() < 0.3), np.ones(C), False,
                             _pick_mode(rng), a_relu)
                # scale ratio s_a / s_b: 1, a small power of two or 3 * 2^k
                u = rng.random()
                if u < 0.3:
                    ratio = 1.0
                elif u < 0.7:
                    ratio = float(rng.choice([2.0, 0.5, 4.0, 0.25]))
                else:
                    ratio = float(rng.choice([3.0, 1.5, 0.75]))
                s_a = s_b * ratio
                grid, lo, hi = _int_mm_layer(B, pref, C, a_ind, wb(), info, conv=same(), shift=_aim(a_qa, s_a))
                bn = bool(ratio == 2.0 ** round(math.log2(ratio)) and rng.random() < 0.4)
                _int_activation(B, pref, grid, lo, hi, a_qa, info, bn=bn, fixed_scale=s_a)
                B.act_tensors.append(B.cur)
                B.layers.append(info)
            a_out = B.cur
            binfo.update(identity=identity, n_a=n_a, s_a=s_a, s_b=s_b, ratio=s_a / s_b)
            shp = B.shape
            B.gstep("Add", [a_out, b_out], f"{p}_add", shp, lambda a, b: a + b, data=[a_out, b_out], prefix=p)
            # requantization after the add
            o_qa = _QAct(False, int(rng.integers(2, 9)), bool(rng.random() < 0.2), np.ones(C), False,
                         _pick_mode(rng), True)
            if o_qa.bits == 2:
                o_qa.narrow = False
            g_add = min(s_a, s_b)  # the grid of a + b
            if ratio != 2.0 ** round(math.log2(ratio)):  # ratio = 3 * 2^k
                g_add = s_b * 2.0 ** min(0, round(math.log2(ratio / 3)))
            _data_scale(B, o_qa, np.full(C, g_add), False, tie_push=bool(rng.random() < 0.7))
            B.quant(f"{p}_add", "act", o_qa)
            B.act_tensors.append(B.cur)
            binfo["requant"] = o_qa.describe()
            t, t_qa = B.cur, o_qa
            ind = _In.of(o_qa)
        else:  # concat of two quantized branches with the same scale
            identity = bool(rng.random() < 0.4)
            C_a = width()
            B.goto(t)
            a_qa = _rand_qact(rng, C_a)
            a_qa.per_channel = False
            fixed = float(t_qa.scale[0]) if identity else None
            _int_hidden(B, f"{p}_a", ind, C_a, wb(), a_qa, meta, conv=same(), fixed_scale=fixed,
                        bn=None if fixed is None else bool(rng.random() < 0.7), branch=f"{p}.A")
            a_out, s = B.cur, float(a_qa.scale[0])
            a_in = _In.of(a_qa)
            if identity:
                b_out, b_in = t, ind
            else:
                B.goto(t)
                b_qa = _rand_qact(rng, 1)
                b_qa.per_channel = False
                _int_hidden(B, f"{p}_b", ind, width(), wb(), b_qa, meta, conv=same(), fixed_scale=s,
                            bn=bool(rng.random() < 0.7), branch=f"{p}.B")
                b_out, b_in = B.cur, _In.of(b_qa)
            sa, sb = B.shapes[a_out], B.shapes[b_out]
            oshape = (1, sa[1] + sb[1]) + tuple(sa[2:])
            if rng.random() < 0.5:
                a_out, b_out, a_in, b_in = b_out, a_out, b_in, a_in
            B.gstep("Concat", [a_out, b_out], f"{p}_cat", oshape, lambda a, b: np.concatenate([a, b], axis=1),
                    data=[a_out, b_out], prefix=p, axis=1)
            binfo.update(identity=identity, scale=s, channels=(sa[1], sb[1]))
            ind = _In.cat(a_in, b_in)
            t = B.cur
            # a following block or the head sees the concatenation; an identity
            # branch of a later add needs a single quantizer: take branch A's
            t_qa = _QAct(True, 8, False, np.full(oshape[1], s), False)
            if n_blocks > bi + 1:
                # re-quantize the concat so the next block's identity has one quantizer
                r_qa = _QAct(True, 8, False, np.full(oshape[1], s), False, "ROUND")
                B.quant(f"{p}_cat", "act", r_qa)
                B.act_tensors.append(B.cur)
                t, t_qa = B.cur, r_qa
                ind = _In.of(r_qa)
        meta["blocks"].append(binfo)
    if conv:
        _maybe_pool(B, "trunk", {})
        hw = B.shape[2] * B.shape[3]
        _int_flatten(B, "trunk", meta)
        ind = ind.repeat(hw)
    return ind


def _finish_graph(B: _GBuilder, gname: str, meta: dict, *, qonnx: bool):
    out_name = B.cur
    if out_name != "global_out":
        _rename_tensor(B, out_name, "global_out")
        B.ops = [(fn, tuple("global_out" if i == out_name else i for i in ins), "global_out" if o == out_name else o)
                 for fn, ins, o in B.ops]
        B.quants = [("global_out" if a == out_name else a, "global_out" if b == out_name else b, q)
                    for a, b, q in B.quants]
        B.act_tensors = ["global_out" if a == out_name else a for a in B.act_tensors]
    model = _assemble(B, gname, list(B.shapes["global_in"]), "global_out", qonnx, meta)
    return model, B, meta


# ---------------------------------------------------------------------------
# int8 QDQ networks, in the form onnxruntime.quantization.quantize_static
# (QuantFormat.QDQ) writes them

_QDQ_NEAR_REL = 1e-6


def _ort_qparams(lo: float, hi: float, qtype: int, symmetric: bool):
    """onnxruntime's MinMax quantization parameters for a range [lo, hi]."""
    qmin, qmax = (0, 255) if qtype == TensorProto.UINT8 else (-128, 127)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if symmetric:
        a = max(abs(lo), abs(hi))
        lo, hi = -a, a
    scale = np.float32((hi - lo) / (qmax - qmin))
    if scale == 0:
        scale = np.float32(1.0)
    if symmetric:
        zp = (qmin + qmax + 1) // 2
    else:
        zp = int(np.clip(np.round(qmin - lo / float(scale)), qmin, qmax))
    return scale, zp


def _f32(y):
    """Round to float32 (a float op's output), kept as float64."""
    return np.asarray(y).astype(np.float32).astype(np.float64)


class _QDQBuilder(_GBuilder):
    def __init__(self, rng, qtype: int, symmetric: bool):
        super().__init__(rng)
        self.qtype = qtype
        self.npq = np.uint8 if qtype == TensorProto.UINT8 else np.int8
        self.qmin, self.qmax = (0, 255) if qtype == TensorProto.UINT8 else (-128, 127)
        self.symmetric = symmetric
        self.magf: dict[str, object] = {}  # tensor -> fn(input values, input mags) -> error magnitude
        self.qchk: dict[str, tuple] = {}  # Q output -> (scale, zp) for boundary checks
        self.qparams: dict[str, tuple[str, str]] = {}  # DQ output -> its (scale, zp) initializer names
        self.requants: list[dict] = []

    def qdq(self, t: str, scale, zp, share_from: str | None = None) -> str:
        """QuantizeLinear -> DequantizeLinear of tensor t (per-tensor params)."""
        shp = self.shapes[t]
        base = t[: -len("_QuantizeLinear_Input")] if t.endswith("_QuantizeLinear_Input") else t
        if share_from is not None:
            sname, zname = self.qparams[share_from]
        else:
            sname = self.init(f"{base}_scale", np.asarray(scale, np.float32))
            zname = self.init(f"{base}_zero_point", np.asarray(zp, self.npq))
        s32, zpv, lo, hi = np.float32(scale), int(zp), self.qmin, self.qmax

        def qfn(x, s32=s32, zpv=zpv):
            return np.clip(np.rint(np.asarray(x, np.float32) / s32).astype(np.float64) + zpv, lo, hi)

        def dqfn(q, s32=s32, zpv=zpv):
            return ((q - zpv).astype(np.float32) * s32).astype(np.float64)

        qo = self.gstep("QuantizeLinear", [t, sname, zname], f"{base}_QuantizeLinear_Output", shp, qfn, prefix=base,
                        elem=self.qtype)
        self.qchk[qo] = (float(s32), zpv)
        dq_name = "global_out" if base == "global_out" else f"{base}_DequantizeLinear_Output"
        out = self.gstep("DequantizeLinear", [qo, sname, zname], dq_name, shp, dqfn, prefix=base)
        self.qparams[out] = (sname, zname)
        return out

    def calib(self, t: str, relu: bool):
        v = self.env[t]
        if relu:
            v = np.maximum(v, 0)
        return _ort_qparams(float(v.min()), float(v.max()), self.qtype, self.symmetric)


def _qdq_weights(B: _QDQBuilder, prefix: str, shape, axis: int, per_channel: bool):
    """int8 weight initializer + DequantizeLinear; returns (DQ output, float values)."""
    rng = B.rng
    w = np.clip(np.round(rng.normal(0, 45, size=shape)), -127, 127)
    n = shape[axis]
    wm = np.moveaxis(w, axis, 0).reshape(n, -1)
    for c in range(n):  # calibrated symmetric scales map each channel's absmax to 127
        j = int(rng.integers(wm.shape[1]))
        wm[c, j] = 127.0 if rng.random() < 0.5 else -127.0
    w = np.moveaxis(wm.reshape(np.moveaxis(w, axis, 0).shape), 0, axis)
    if not per_channel:
        w[(0,) * len(shape)] = 127.0
    wq = B.init(f"{prefix}_w_quantized", w.astype(np.int8))
    if per_channel:
        sc = (2.0 ** rng.uniform(-9, -5, size=n)).astype(np.float32)
        zp = np.zeros(n, np.int8)
    else:
        sc = np.float32(2.0 ** rng.uniform(-9, -5))
        zp = np.int8(0)
    sname = B.init(f"{prefix}_w_scale", np.asarray(sc, np.float32))
    zname = B.init(f"{prefix}_w_zero_point", np.asarray(zp, np.int8))
    attrs = {"axis": axis} if per_channel else {}
    out = B.node("DequantizeLinear", [wq, sname, zname], f"{prefix}_w_DequantizeLinear_Output", shape,
                 prefix=f"{prefix}_w", **attrs)
    bshape = [1] * len(shape)
    bshape[axis] = -1
    wdq = w.astype(np.float32) * (np.asarray(sc, np.float32).reshape(bshape) if per_channel else np.float32(sc))
    return out, wdq.astype(np.float64), np.asarray(sc, np.float32)


def _qdq_bias32(B: _QDQBuilder, prefix: str, n: int, x_scale, w_scale, acc_std, per_channel: bool):
    """int32 bias, DequantizeLinear scale = input scale * weight scale (float32
    product, as quantize_static computes it); returns (DQ output, float values)."""
    rng = B.rng
    bscale = (np.float32(x_scale) * np.asarray(w_scale, np.float32)).astype(np.float32)
    if not per_channel:
        bscale = bscale.reshape(1)
    bq = np.round(rng.normal(0, 0.4, n) * acc_std / bscale.astype(np.float64)).astype(np.int32)
    bqn = B.init(f"{prefix}_b_quantized", bq)
    sname = B.init(f"{prefix}_b_quantized_scale", bscale)
    zname = B.init(f"{prefix}_b_quantized_zero_point",
                   np.zeros(n, np.int32) if per_channel else np.asarray(0, np.int32))
    attrs = {"axis": 0} if per_channel else {}
    out = B.node("DequantizeLinear", [bqn, sname, zname], f"{prefix}_b", (n,), prefix=f"{prefix}_b", **attrs)
    return out, (bq.astype(np.float32) * bscale).astype(np.float64)


def _qdq_layer(B: _QDQBuilder, prefix: str, out_ch: int, info: dict, *, conv=None, relu: bool,
               keep_relu: bool, last: bool, per_channel: bool) -> str:
    rng = B.rng
    x = B.cur
    sname, _ = B.qparams[x]
    x_scale = float(numpy_helper.to_array(next(t for t in B.inits if t.name == sname)))
    xv = B.env[x]
    out_t = "global_out_QuantizeLinear_Input" if last else f"{prefix}_out"
    if conv:
        k, stride, pad = conv
        _, cin, h, w = B.shape
        wname, wdq, wsc = _qdq_weights(B, prefix, (out_ch, cin, k, k), 0, per_channel)
        ho = (h + 2 * pad - k) // stride + 1
        wo = (w + 2 * pad - k) // stride + 1
        acc = _np_conv(xv, wdq, stride, pad)
        has_b = rng.random() < 0.9
        ins = [x, wname]
        bdq = None
        if has_b:
            bname, bdq = _qdq_bias32(B, prefix, out_ch, x_scale, wsc, acc.std(axis=(0, 2, 3)) + 1e-3, per_channel)
            ins.append(bname)
        ab = np.abs(bdq) if bdq is not None else None

        def fn(xx, w_=wdq, b_=bdq, s_=stride, p_=pad):
            return _f32(_np_conv(xx, w_, s_, p_, b_))

        B.gstep("Conv", ins, out_t, (1, out_ch, ho, wo), fn, data=[x], prefix=prefix, kernel_shape=[k, k],
                strides=[stride, stride], pads=[pad] * 4, dilations=[1, 1], group=1)
        B.magf[B.cur] = lambda v, m, w_=np.abs(wdq), b_=ab, s_=stride, p_=pad: _np_conv(np.abs(v[0]), w_, s_, p_, b_)
        info.update(kind="conv", cin=cin, cout=out_ch, kernel=k, stride=stride, pad=pad, in_hw=(h, w),
                    out_hw=(ho, wo), form="Conv", bias="int32" if has_b else "none")
    else:
        in_f = B.shape[1]
        form = str(rng.choice(["Gemm", "Gemm", "MatMul+Add", "MatMul"]))
        transB = int(form == "Gemm" and rng.random() < 0.5)
        if transB:
            wname, wdq, wsc = _qdq_weights(B, prefix, (out_ch, in_f), 0, per_channel)
            wmat = wdq.T
        else:
            wname, wdq, wsc = _qdq_weights(B, prefix, (in_f, out_ch), 1, per_channel)
            wmat = wdq
        acc = xv @ wmat
        if form == "Gemm":
            has_b = rng.random() < 0.9
            ins = [x, wname]
            bdq = None
            if has_b:
                bname, bdq = _qdq_bias32(B, prefix, out_ch, x_scale, wsc, acc.std(axis=0) + 1e-3, per_channel)
                ins.append(bname)
            ab = np.abs(bdq) if bdq is not None else 0.0
            B.gstep("Gemm", ins, out_t, (1, out_ch),
                    lambda xx, w_=wmat, b_=bdq: _f32(xx @ w_ + (0 if b_ is None else b_)),
                    data=[x], prefix=prefix, **({"transB": 1} if transB else {}))
            B.magf[B.cur] = lambda v, m, w_=np.abs(wmat), b_=ab: np.abs(v[0]) @ w_ + b_
            info["bias"] = "int32" if has_b else "none"
        else:
            mm_out = f"{prefix}_mm" if form == "MatMul+Add" else out_t
            B.gstep("MatMul", [x, wname], mm_out, (1, out_ch),
                    lambda xx, w_=wmat: _f32(xx @ w_), prefix=prefix)
            B.magf[B.cur] = lambda v, m, w_=np.abs(wmat): np.abs(v[0]) @ w_
            info["bias"] = "none"
            if form == "MatMul+Add":
                # quantize_static quantizes a separate Add's bias like an activation
                hs, hz = B.calib(B.cur, relu=False)
                hdq = B.qdq(B.cur, hs, hz)
                bf = rng.normal(0, 0.4, out_ch) * (acc.std(axis=0) + 1e-3)
                bs, bz = _ort_qparams(float(bf.min()), float(bf.max()), B.qtype, B.symmetric)
                bq = np.clip(np.round(bf / float(bs)) + bz, B.qmin, B.qmax)
                bqn = B.init(f"{prefix}_bias_quantized", bq.astype(B.npq))
                bsn = B.init(f"{prefix}_bias_scale", np.asarray(bs, np.float32))
                bzn = B.init(f"{prefix}_bias_zero_point", np.asarray(bz, B.npq))
                bname = B.node("DequantizeLinear", [bqn, bsn, bzn], f"{prefix}_bias_DequantizeLinear_Output",
                               (out_ch,), prefix=f"{prefix}_bias")
                bval = ((bq - bz).astype(np.float32) * np.float32(bs)).astype(np.float64)
                B.gstep("Add", [hdq, bname], out_t, (1, out_ch),
                        lambda h_, b_=bval: _f32(h_.astype(np.float32) + b_.astype(np.float32)),
                        prefix=prefix)
                info["bias"] = "uint8/int8 activation-quantized Add"
        info.update(kind="fc", in_features=in_f, out_features=out_ch, form=form, transB=transB)
    info.update(w_per_channel=per_channel, relu=relu and not last, keep_relu=bool(keep_relu and relu and not last))
    y = B.cur
    if last:
        s, z = B.calib(y, relu=False)
        return B.qdq(y, s, z)
    if relu and keep_relu:
        s, z = B.calib(y, relu=not B.symmetric)
        d = B.qdq(y, s, z)
        r = B.gstep("Relu", [d], f"{prefix}_relu", B.shape, lambda v: np.maximum(v, 0.0), prefix=prefix)
        return B.qdq(r, s, z)
    s, z = B.calib(y, relu=relu)  # Relu removed: the zero point at qmin saturates negatives
    return B.qdq(y, s, z)


def _qdq_direct(B: _QDQBuilder, op: str, out_base: str, out_shape, fn, prefix: str, **attrs) -> str:
    """An op quantize_static wraps with its input's own scale / zero point
    (MaxPool, Flatten, Reshape): DQ -> op -> Q (same params) -> DQ."""
    src = B.cur
    extra = []
    if op == "Reshape":
        extra = [B.init(f"{prefix}_shape", np.array([1, -1], np.int64))]
    t = B.gstep(op, [src] + extra, out_base, out_shape, fn, data=[src], prefix=prefix, **attrs)
    B.magf[t] = None
    sname, zname = B.qparams[src]
    s = float(numpy_helper.to_array(next(i for i in B.inits if i.name == sname)))
    z = int(numpy_helper.to_array(next(i for i in B.inits if i.name == zname)))
    return B.qdq(t, s, z, share_from=src)


def _build_qdq(rng, family: str, name: str):
    conv = family == "qdq-conv"
    qtype = TensorProto.UINT8 if rng.random() < 0.5 else TensorProto.INT8
    symmetric = bool(rng.random() < 0.2)
    keep_relu = symmetric or bool(rng.random() < 0.25)
    per_channel = bool(rng.random() < 0.5)
    B = _QDQBuilder(rng, qtype, symmetric)
    meta: dict = {"reshape": [], "tail": [], "activation_type": "uint8" if qtype == TensorProto.UINT8 else "int8",
                  "activation_symmetric": symmetric, "keep_relu": keep_relu, "per_channel": per_channel}
    in_shape = _int_shape(rng, conv)
    meta["input_shape"] = in_shape
    B.cur = "global_in"
    B.tensor_names.add("global_in")
    B.shapes["global_in"] = (1,) + tuple(in_shape)
    B.env["global_in"] = _gen_inputs(rng, _N_CAL, in_shape, 0.03).astype(np.float64)
    B.goto("global_in")
    s, z = B.calib("global_in", relu=False)
    B.qdq("global_in", s, z)
    meta["input_qparams"] = (float(s), int(z))
    if not conv and len(in_shape) == 3:
        n = int(np.prod(in_shape))
        op = "Flatten" if rng.random() < 0.5 else "Reshape"
        _qdq_direct(B, op, "inp_flat", (1, n), lambda x: x.reshape(x.shape[0], -1), "inp",
                    **({"axis": 1} if op == "Flatten" else {}))
        meta["reshape"].append(op)
    n_hidden = int(rng.integers(1, 4))
    n_conv = int(rng.integers(1, min(n_hidden, 2) + 1)) if conv else 0
    for li in range(n_hidden):
        is_conv = li < n_conv
        prefix = f"conv{li}" if is_conv else f"fc{li}"
        info: dict = {}
        if is_conv:
            geom = _conv_geom(rng, B.shape[2], B.shape[3], li == n_conv - 1)
            _qdq_layer(B, prefix, min(_width(rng), 16), info, conv=geom, relu=True, keep_relu=keep_relu,
                       last=False, per_channel=per_channel)
            _, c, h, w = B.shape
            big = c * h * w > 400
            if h >= 2 and w >= 2 and (rng.random() < 0.3 or big) and (big or c * (h // 2) * (w // 2) >= 8):
                _qdq_direct(B, "MaxPool", f"{prefix}_pool", (1, c, h // 2, w // 2), _np_maxpool2, prefix,
                            kernel_shape=[2, 2], strides=[2, 2])
                info["maxpool"] = True
            if li == n_conv - 1:
                n = int(np.prod(B.shape[1:]))
                op = "Flatten" if rng.random() < 0.5 else "Reshape"
                _qdq_direct(B, op, f"{prefix}_flat", (1, n), lambda x: x.reshape(x.shape[0], -1), prefix,
                            **({"axis": 1} if op == "Flatten" else {}))
                meta["reshape"].append(op)
        else:
            relu = rng.random() < 0.9
            _qdq_layer(B, prefix, _width(rng), info, relu=relu, keep_relu=keep_relu, last=False,
                       per_channel=per_channel)
        B.act_tensors.append(B.cur)
        B.layers.append(info)
    info = {}
    _qdq_layer(B, "out", int(rng.integers(2, 11)), info, relu=False, keep_relu=False, last=True,
               per_channel=per_channel)
    B.layers.append(info)
    # quantize_static lists the weight / bias DequantizeLinear nodes first
    consts = {t.name for t in B.inits}
    first = [n for n in B.nodes if n.op_type == "DequantizeLinear" and all(i in consts for i in n.input)]
    rest = [n for n in B.nodes if not (n.op_type == "DequantizeLinear" and all(i in consts for i in n.input))]
    B.nodes = first + rest
    return _finish_graph(B, name or f"netgen-{family}", meta, qonnx=False)


def _qdq_boundary_stats(B: _QDQBuilder, x: np.ndarray) -> dict:
    """Run the numpy model on x; for every QuantizeLinear fed by a float
    MatMul / Gemm / Conv result, how close its input comes to a rounding
    boundary (k + 0.5) * scale, relative to the magnitude sum(|x_i * w_i|) + |b|
    of the accumulation (the scale of the float rounding error)."""
    env = {"global_in": x}
    mags: dict[str, np.ndarray | None] = {"global_in": None}
    n_near, min_rel, per_q = 0, math.inf, {}
    for fn, ins, out in B.ops:
        vals = [env[i] for i in ins]
        env[out] = fn(*vals)
        mf = B.magf.get(out)
        mags[out] = mf(vals, [mags[i] for i in ins]) if mf else None
        chk = B.qchk.get(out)
        if chk is None:
            continue
        m = mags[ins[0]]
        if m is None:
            continue
        s, zp = chk
        v = env[ins[0]] / s
        fl = np.floor(v)
        relevant = (fl + zp >= B.qmin) & (fl + 1 + zp <= B.qmax) & (m > 0)
        dist = np.abs(v - (fl + 0.5)) * s
        rel = np.where(relevant, dist / np.where(m > 0, m, 1.0), np.inf)
        near = int((rel <= _QDQ_NEAR_REL).sum())
        n_near += near
        mr = float(rel.min()) if rel.size else math.inf
        min_rel = min(min_rel, mr)
        per_q[out] = {"near": near, "min_rel_distance": mr}
    return {"env": env, "near": n_near, "min_rel": min_rel, "per_q": per_q}


# ---------------------------------------------------------------------------
# reference execution in one batch (qonnx executor: one onnxruntime session per
# node, so batching the inputs saves most of the time)


def _reference_batched(model: onnx.ModelProto, inputs: np.ndarray, tensors=None):
    """``reference_outputs`` with all inputs in one batch (every op here acts
    on each batch row independently).  Falls back to one input at a time.

    With ``tensors`` (names of intermediate tensors) returns (outputs,
    {name: (N, ...) values}) and does not fall back."""
    inputs = np.asarray(inputs, dtype=np.float32)
    N = len(inputs)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    iname = _graph_input_name(m)
    data = {iname}
    for n in g.node:  # nodes are in topological order
        if any(i in data for i in n.input):
            data.update(n.output)
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.name in data:
            d = vi.type.tensor_type.shape.dim
            if len(d) and d[0].dim_value == 1:
                d[0].dim_value = N
    inits = {t.name: t for t in g.initializer}
    for n in g.node:
        if n.op_type == "Reshape" and n.input[0] in data and n.input[1] in inits:
            shp = numpy_helper.to_array(inits[n.input[1]]).copy()
            if shp[0] == 1:
                shp[0] = N
                new = f"{n.input[1]}__batch{N}"
                if new not in inits:
                    t = numpy_helper.from_array(shp, new)
                    g.initializer.append(t)
                    inits[new] = t
                n.input[1] = new
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    names = list(tensors or [])
    oname = g.output[0].name
    try:
        if _is_qonnx(m):
            from qonnx.core.modelwrapper import ModelWrapper
            from qonnx.core.onnx_exec import execute_onnx

            ctx = execute_onnx(ModelWrapper(m), {iname: inputs}, return_full_exec_context=bool(names))
            res = [ctx[oname]] + [ctx[n] for n in names]
        else:
            import onnxruntime as ort

            so = ort.SessionOptions()
            if _is_qdq(m):
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            vis = {vi.name: vi for vi in g.value_info}
            g.output.extend([vis[n] for n in names if n != oname])
            sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
            res = sess.run([oname] + names, {iname: inputs})
        res = [np.asarray(r) for r in res]
        if any(r.shape[0] != N for r in res):
            raise ValueError("batch dimension lost")
    except Exception:  # pragma: no cover - fall back to the plain path
        if names:
            raise
        return reference_outputs(model, inputs)
    if names:
        return res[0], dict(zip(names, res[1:]))
    return res[0]


def random_int_network(seed: int, family: str | None = None, n_inputs: int = 8) -> NetCase:
    """Generate integer network number ``seed`` of ``family`` (default:
    ``INT_FAMILIES[seed % len(INT_FAMILIES)]``) with ``n_inputs`` test inputs
    and their reference outputs.

    QONNX families: outputs from qonnx's executor, exact (the generator's
    float64 numpy model, ``meta["sim_outputs"]``, must equal them bit for bit).
    QDQ families: outputs from onnxruntime with graph optimizations disabled
    (the QDQ graph as written: float ops between QuantizeLinear /
    DequantizeLinear, round half to even, saturation).  ``meta["sim_outputs"]``
    is the numpy model with exact float accumulation; it equals the reference
    except possibly where ``meta["near_boundary"]`` is True (a requantization
    input within 1e-6 relative of a rounding boundary, where the float
    summation order of onnxruntime's kernels decides).  ``meta["fused_outputs"]``
    are onnxruntime's outputs with default optimizations (QLinear* kernels).
    """
    if family is None:
        family = INT_FAMILIES[seed % len(INT_FAMILIES)]
    if family not in INT_FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {INT_FAMILIES}")
    fam_idx = INT_FAMILIES.index(family)
    rng = np.random.default_rng([seed, 100 + fam_idx, 0])
    name = f"{family}-s{seed}"
    qdq = family.startswith("qdq")
    if qdq:
        model, B, meta = _build_qdq(rng, family, name)
    else:
        model, B, meta = _build_qonnx_int(rng, family, name)
    onnx.checker.check_model(model)
    in_shape = B.shapes["global_in"][1:]
    in_rng = np.random.default_rng([seed, 100 + fam_idx, 1])
    inputs = _gen_inputs(in_rng, n_inputs, in_shape, 0.03)
    x = inputs.astype(np.float64)
    outputs = _reference_batched(model, inputs)
    if qdq:
        st = _qdq_boundary_stats(B, x)
        env = st["env"]
        meta["near_boundary"] = st["near"] > 0
        meta["near_boundary_count"] = st["near"]
        meta["min_rel_boundary_distance"] = st["min_rel"]
        meta["requant_boundary"] = st["per_q"]
        import onnxruntime as ort

        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        meta["fused_outputs"] = np.stack([sess.run(None, {"global_in": v[None]})[0][0] for v in inputs])
    else:
        env = B.run(x)
        qstats = []
        for xin, qout, qa in B.quants:
            v = env[xin]
            on, half = _boundary_hits(v, qa.bscale(v.ndim), qa)
            qstats.append({"tensor": qout, "mode": qa.mode, "signed": qa.signed, "bits": qa.bits,
                           "narrow": qa.narrow, "per_channel": qa.per_channel, "relu": qa.relu,
                           "on_boundary": on, "half_ties": half})
        meta["quantizers"] = qstats
    meta["sim_outputs"] = np.asarray(env["global_out"]).astype(outputs.dtype)
    return NetCase(name=name, model=model, inputs=inputs, outputs=outputs, family=family, meta=meta)


def iter_int_networks(n: int, start: int = 0, family: str | None = None, n_inputs: int = 8):
    """Yield ``random_int_network(seed, family, n_inputs)`` for seeds start..start+n-1."""
    for seed in range(start, start + n):
        yield random_int_network(seed, family, n_inputs)
