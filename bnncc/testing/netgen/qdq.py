"""int8 QDQ networks in the form onnxruntime's quantize_static (QuantFormat.QDQ) writes."""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, numpy_helper

from .common import _N_CAL, _gen_inputs, _np_conv, _np_maxpool2, _width
from .intlayers import _conv_geom, _finish_graph, _GBuilder, _int_shape

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
