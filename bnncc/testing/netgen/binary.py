"""The binarized families (FAMILIES): Brevitas-style QONNX and torch-style Sign BNNs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from .bn import _make_bn
from .common import (
    _N_CAL,
    NetCase,
    _Act,
    _assemble,
    _Builder,
    _gen_inputs,
    _int_range,
    _np_bn,
    _np_conv,
    _np_maxpool2,
    _p2,
    _rename_tensor,
    _width,
)
from .integer import INT_FAMILIES, random_int_network
from .reference import reference_outputs

FAMILIES = ("qonnx-fc", "qonnx-conv", "plain-fc", "plain-conv")


# ---------------------------------------------------------------------------
# parameter choices


def _choose_act(rng, bits: int) -> _Act:
    if bits == 1:
        return _Act("bipolar", float(rng.choice([0.5, 1.0, 1.0, 1.0, 2.0])), -1, 1, 1)
    narrow = bool(rng.random() < 0.4)
    lo, hi = _int_range(bits, True, narrow)
    return _Act("int", _p2(rng, -3, 0), lo, hi, bits)


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
