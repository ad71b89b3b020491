"""Integer layer builders shared by the QONNX integer and QDQ families: weights,
biases, quantizers, inputs, pooling, the head and the final graph assembly."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from .bn import _make_bn
from .common import (
    _N_CAL,
    QONNX_DOMAIN,
    ROUNDING_MODES,
    _assemble,
    _Builder,
    _gen_inputs,
    _int_range,
    _np_conv,
    _np_maxpool2,
    _np_round_mode,
    _QAct,
    _rename_tensor,
)


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
