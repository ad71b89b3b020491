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


def _graph_input_name(model: onnx.ModelProto) -> str:
    inits = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    if len(names) != 1:
        raise ValueError(f"expected exactly one graph input, found {names}")
    return names[0]


def reference_outputs(model: onnx.ModelProto, inputs: np.ndarray) -> np.ndarray:
    """Run ``model`` on each of ``inputs`` (N, *shape without batch), batch 1.

    QONNX graphs (custom ops) go through qonnx's executor, plain ONNX through
    onnxruntime.  Returns (N, *output shape without batch) of the first graph
    output, in the dtype the executor produced (float32, or int64 indices).
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

        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
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
            bad |= (~nz) & (dist > 0) & (dist < 1e-6 * max(1.0, abs(b)))
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


def _act_fn(act: _Act):
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
    bounds = _boundaries(act)
    sign_act = act.kind == "sign"
    qfn = _act_fn(act)
    A = np.maximum(np.abs(lo), np.abs(hi))

    gsign = np.where(rng.random(C) < 0.2, -1.0, 1.0)
    zero_ch = np.zeros(C, bool)
    if C > 1 and rng.random() < 0.35:
        zero_ch[rng.integers(C)] = True

    def draw_scale_shift(n):
        if act.kind == "int":
            g = act.scale * (act.hi - act.lo + 1) / 4 * 2.0 ** rng.uniform(-0.7, 1.0, n)
            b = act.scale * rng.uniform(act.lo * 0.6, act.hi * 0.6, n)
        else:
            g = 2.0 ** rng.uniform(-2, 2, n)
            b = g * rng.normal(0, 0.5, n)
        return g, b

    def zero_beta(c):
        if rng.random() < 0.5 and not sign_act:
            return float(bounds[rng.integers(len(bounds))])  # exact tie, constant channel
        _, b = draw_scale_shift(1)
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
        g, b = draw_scale_shift(k)
        mu = m[idx] + s[idx] * rng.normal(0, 0.3, k)
        sd = s[idx] * 2.0 ** rng.uniform(-0.5, 0.5, k)
        if mode == "dyadic":
            un = unit[idx]
            mu = np.round(mu / (un / 2)) * (un / 2)
            sd = 2.0 ** np.round(np.log2(sd))
            g = gsign[idx] * 2.0 ** np.round(np.log2(g)) * rng.choice([1.0, 1.25, 1.5, 1.75], k)
            q = act.scale / 4 if act.kind == "int" else 2.0 ** (np.floor(np.log2(np.abs(g))) - 2)
            b = np.round(b / q) * q
            for j, c in enumerate(idx):
                if tie[c]:  # a calibration accumulator lands exactly on a boundary
                    a0 = flat[rng.integers(flat.shape[0]), c]
                    b[j] = bounds[rng.integers(len(bounds))] - g[j] * (a0 - mu[j]) / sd[j]
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
    out_elem = TensorProto.FLOAT
    _, counts = np.unique(np.argmax(B.cal, axis=-1), return_counts=True)
    if counts.max() > 0.8 * len(B.cal):
        r = 1.0  # the class index would be (nearly) constant: keep the logits
    if r < 0.2:
        B.step("ArgMax", [B.cur], "global_out", (1,), lambda x: np.argmax(x, axis=-1),
               prefix="top", elem=TensorProto.INT64, axis=-1, keepdims=0)
        out_elem = TensorProto.INT64
        tail.append("ArgMax")
    elif r < 0.35:
        kname = B.init("top_k", np.array([1], np.int64))
        B.step("TopK", [B.cur, kname], "top_values", (1, 1), lambda x: np.argmax(x, axis=-1)[:, None],
               prefix="top", extra_outputs=[("global_out", (1, 1), TensorProto.INT64)],
               axis=-1, largest=1, sorted=1)
        # the data path continues from the indices output
        B.cur, B.shape = B.nodes[-1].output[1], (1, 1)
        out_elem = TensorProto.INT64
        tail.append("TopK")

    # ---- assemble -----------------------------------------------------------
    out_name = B.cur
    if out_name != "global_out":
        # rename the last tensor to global_out
        for n in B.nodes:
            for i, o in enumerate(n.output):
                if o == out_name:
                    n.output[i] = "global_out"
        B.vinfo["global_out"] = B.vinfo.pop(out_name)
        out_name = "global_out"
    out_shape, out_elem = B.vinfo.pop(out_name)
    value_info = [helper.make_tensor_value_info(k, el, list(shp)) for k, (shp, el) in B.vinfo.items()]
    graph = helper.make_graph(
        B.nodes, name or f"netgen-{family}",
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, *in_shape])],
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
    return model, B.ops, in_shape, meta


def random_network(seed: int, family: str | None = None, n_inputs: int = 8) -> NetCase:
    """Generate network number ``seed`` of ``family`` (default: FAMILIES[seed % 4])
    with ``n_inputs`` test inputs and their reference outputs.

    The model depends only on (seed, family); inputs for a larger ``n_inputs``
    extend those of a smaller one.
    """
    if family is None:
        family = FAMILIES[seed % len(FAMILIES)]
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
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
