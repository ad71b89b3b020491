"""Random padded binary convolutions (issue 19): the BNN padding problem, generated.

Family ``binary-pad-conv``: 1-3 convolutions over bipolar activations with pads 0-2 per
side (asymmetric too), strides 1-2 and kernels 1-5, written the ways exporters write
them: explicit Conv ``pads``, ``auto_pad`` SAME_UPPER / SAME_LOWER, or a constant ``Pad``
node before the Conv (value 0, or Larq's +1 / -1). Half the networks are QONNX
(``BipolarQuant`` input, bipolar or 2-3 bit integer weights), half plain ONNX (``Sign``
on float weights and activations, onnxruntime reference). Each conv is followed by
BatchNorm and a sign (parameters chosen by netgen.bn so no decision boundary
sits within float32 rounding of a reachable accumulator), sometimes a 2x2 MaxPool; the
last conv may stay raw (its padded accumulators reach the output through the host's
float chain). Odd channel counts appear, so both the XNOR-popcount and the add/sub
border datapaths are exercised. The head is Flatten + a fully connected layer.
"""
from __future__ import annotations

import numpy as np
import onnx

from .binary import _acc_range, _fc, _flatten, _weights
from .bn import _make_bn
from .common import (_N_CAL, NetCase, _Act, _Builder, _assemble, _gen_inputs, _np_maxpool2,
                     _rename_tensor)
from .reference import reference_outputs

PADDED_FAMILY = "binary-pad-conv"
_FAM_ID = 19


def np_conv_padded(x, w, stride, pads, value=0.0):
    """float64 Conv with (top, left, bottom, right) pads of `value`."""
    t, l, b, r = pads
    x = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)
    kh, kw = w.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    win = win[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True)


def _same(n, k, s, upper):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return (total // 2, total - total // 2) if upper else (total - total // 2, total // 2)


def _padded_conv(B: _Builder, prefix: str, cout: int, k: int, stride: int, pads: tuple,
                 style: str, value: float, bits: int, act_in: _Act, plain: bool, info: dict):
    """Emit one padded conv in `style` (pads / same_upper / same_lower / pad_node)."""
    _, cin, h, w = B.shape
    wname, wq, q, wscale = _weights(B, prefix, (cout, cin, k, k), bits, plain, info)
    unit = act_in.scale * wscale
    attrs = dict(kernel_shape=[k, k], strides=[stride, stride], dilations=[1, 1], group=1)
    if style == "pad_node":
        t, l, b, r = pads
        pv = B.init(f"{prefix}_pads", np.array([0, 0, t, l, 0, 0, b, r], np.int64))
        cv = B.init(f"{prefix}_pad_value", np.array(value * act_in.scale, np.float32))
        B.step("Pad", [B.cur, pv, cv], f"{prefix}_padded", (1, cin, h + t + b, w + l + r),
               lambda x, p=pads, v=value * act_in.scale: np.pad(
                   x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])), constant_values=v),
               prefix=prefix, mode="constant")
        pads_eff, conv_pads = (0, 0, 0, 0), None
    elif style.startswith("same"):
        upper = style == "same_upper"
        (t, b), (l, r) = _same(h, k, stride, upper), _same(w, k, stride, upper)
        pads_eff, conv_pads = (t, l, b, r), None
        attrs["auto_pad"] = "SAME_UPPER" if upper else "SAME_LOWER"
    else:
        pads_eff = conv_pads = pads
    if conv_pads is not None:
        attrs["pads"] = [conv_pads[0], conv_pads[1], conv_pads[2], conv_pads[3]]
    _, _, hh, ww = B.shape
    t, l, b, r = pads_eff
    ho, wo = (hh + t + b - k) // stride + 1, (ww + l + r - k) // stride + 1
    B.step("Conv", [B.cur, wname], f"{prefix}_acc", (1, cout, ho, wo),
           lambda x, w_=wq, s=stride, p=pads_eff: np_conv_padded(x, w_, s, p),
           prefix=prefix, **attrs)
    lo, hi = _acc_range(q, _Act("int", act_in.scale, -1, 1, 1))   # zeros on padded positions
    info.update(kind="conv", cin=cin, cout=cout, kernel=k, stride=stride, pads=list(pads_eff),
                pad_style=style, pad_value=value, in_hw=(h, w), out_hw=(ho, wo))
    return unit, lo, hi


def _geometry(rng, h, w):
    """(k, stride, pads) with a non-empty output, pads 0-2 per side."""
    for _ in range(100):
        k = int(rng.integers(1, 6))
        stride = int(rng.integers(1, 3))
        pads = tuple(int(v) for v in rng.integers(0, 3, size=4))
        if rng.random() < 0.4:                       # the common symmetric case
            pads = (pads[0],) * 4
        ho = (h + pads[0] + pads[2] - k) // stride + 1
        wo = (w + pads[1] + pads[3] - k) // stride + 1
        if ho >= 1 and wo >= 1 and any(pads):
            return k, stride, pads
    return 1, 1, (1, 1, 1, 1)


def _build(rng, name: str):
    plain = bool(rng.random() < 0.5)
    B = _Builder(rng)
    meta: dict = {"layers": [], "reshape": [], "tail": [], "plain": plain}
    in_shape = (int(rng.integers(1, 5)), int(rng.integers(3, 9)), int(rng.integers(3, 9)))
    meta["input_shape"] = in_shape
    B.cur = "global_in"
    B.tensor_names.add(B.cur)
    B.shape = (1,) + in_shape
    B.cal = _gen_inputs(rng, _N_CAL, in_shape, 0.0).astype(np.float64)
    if plain:   # Sign of never-zero inputs: bipolar values, INT2 type (Sign(0) = 0)
        act = _Act("sign", 1.0, -1, 1, 1)
    else:
        act = _Act("bipolar", 1.0, -1, 1, 1)
    B.act_quant("inp", act)
    n_conv = int(rng.integers(1, 4))
    raw_last = bool(rng.random() < 0.2)
    for li in range(n_conv):
        prefix = f"conv{li}"
        info: dict = {}
        _, cin, h, w = B.shape
        cout = int(rng.choice([1, 2, 3, 4, 5, 6, 8, 8, 12, 16]))
        k, stride, pads = _geometry(rng, h, w)
        style = str(rng.choice(["pads", "pads", "pads", "same_upper", "same_lower", "pad_node"]))
        value = float(rng.choice([0.0, 0.0, 1.0, -1.0])) if style == "pad_node" else 0.0
        bits = 1 if (plain or rng.random() < 0.7) else int(rng.integers(2, 4))
        unit, lo, hi = _padded_conv(B, prefix, cout, k, stride, pads, style, value, bits, act,
                                    plain, info)
        last = li == n_conv - 1
        if last and raw_last:
            info["act"] = "none"
            B.layers.append(info)
            break
        new_act = _Act("sign", 1.0, -1, 1, 1) if plain else _Act("bipolar", 1.0, -1, 1, 1)
        _make_bn(B, prefix, unit, lo, hi, new_act, dyadic_ok=False, info=info)
        B.act_quant(prefix, new_act)
        B.act_tensors.append(B.cur)
        act = new_act
        info["act"] = act.kind
        _, c, h, w = B.shape
        if h >= 2 and w >= 2 and rng.random() < 0.25:
            B.step("MaxPool", [B.cur], f"{prefix}_pool", (1, c, h // 2, w // 2), _np_maxpool2,
                   prefix=prefix, kernel_shape=[2, 2], strides=[2, 2])
            info["maxpool"] = True
        B.layers.append(info)
    _flatten(B, "head", meta["reshape"])
    if not raw_last:
        info = {}
        _fc(B, "out", int(rng.integers(2, 9)), 1, act, plain, info)
        info["act"] = "none"
        B.layers.append(info)
    _rename_tensor(B, B.cur, "global_out")
    model = _assemble(B, name, [1, *in_shape], "global_out", not plain, meta)
    return model, B.ops, in_shape, meta


def random_padded_network(seed: int, family: str = PADDED_FAMILY, n_inputs: int = 8) -> NetCase:
    """Network number `seed` of the padded-binary-conv family with `n_inputs` inputs and
    the reference executor's outputs (onnxruntime, or qonnx's for QONNX graphs)."""
    if family != PADDED_FAMILY:
        raise ValueError(f"unknown family {family!r}; expected {PADDED_FAMILY!r}")
    rng = np.random.default_rng([seed, _FAM_ID, 0])
    name = f"{PADDED_FAMILY}-s{seed}"
    model, ops, in_shape, meta = _build(rng, name)
    onnx.checker.check_model(model)
    in_rng = np.random.default_rng([seed, _FAM_ID, 1])
    inputs = _gen_inputs(in_rng, n_inputs, in_shape, 0.0)
    x = inputs.astype(np.float64)
    for fn in ops:
        x = fn(x)
    outputs = reference_outputs(model, inputs)
    meta["sim_outputs"] = np.asarray(x).astype(outputs.dtype)
    return NetCase(name=name, model=model, inputs=inputs, outputs=outputs, family=PADDED_FAMILY,
                   meta=meta)
