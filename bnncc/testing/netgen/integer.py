"""The integer families (INT_FAMILIES): QONNX integer nets, residual adds and concats;
random_int_network dispatches to them and to the QDQ builder."""

from __future__ import annotations

import math

import numpy as np
import onnx

from .common import _HALF_MODES, NetCase, _gen_inputs, _QAct, _width
from .intlayers import (
    _aim,
    _conv_geom,
    _data_scale,
    _finish_graph,
    _GBuilder,
    _In,
    _int_activation,
    _int_flatten,
    _int_head,
    _int_hidden,
    _int_input,
    _int_mm_layer,
    _int_shape,
    _maybe_pool,
    _pick_mode,
    _rand_qact,
)
from .qdq import _build_qdq, _qdq_boundary_stats
from .reference import _reference_batched

# ===========================================================================
# integer networks (issue 6): ReLU / unsigned quantizers, biases, per-channel
# scales, every QONNX rounding mode, residual adds and concats, int8 QDQ
# ===========================================================================

INT_FAMILIES = ("qonnx-int-fc", "qonnx-int-conv", "qonnx-residual", "qdq-fc", "qdq-conv")


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
