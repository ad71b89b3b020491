"""Residual adds of operands with per-channel scales (``RESIDUAL_PC_FAMILY``): what a
ResNet block with BN folded into per-channel quantizers exports,
``QuantReLU(x + shortcut)`` with a float Add of two differently scaled tensors."""

from __future__ import annotations

import numpy as np
import onnx

from .common import NetCase, _gen_inputs, _QAct, _width
from .integer import _boundary_hits
from .intlayers import (_aim, _conv_geom, _data_scale, _finish_graph, _GBuilder, _In,
                        _int_activation, _int_flatten, _int_head, _int_hidden, _int_input,
                        _int_mm_layer, _int_shape, _maybe_pool, _pick_mode)
from .reference import _reference_batched

RESIDUAL_PC_FAMILY = "qonnx-residual-pc"
_RATIOS = (1.0, 2.0, 0.5, 4.0, 0.25, 3.0, 1.5, 0.75)


def _pc_qact(rng, C: int, relu: bool) -> _QAct:
    bits = int(rng.integers(2, 9))
    narrow = bool(rng.random() < 0.3) and not (relu and bits == 2)
    return _QAct(not relu, bits, narrow, np.ones(C), True, _pick_mode(rng), relu)


def _add_grid(s_a: np.ndarray, s_b: np.ndarray) -> np.ndarray:
    """Per channel, the grid of s_a * i + s_b * j (s_a / s_b is 2^k or 3 * 2^k)."""
    g = np.minimum(s_a, s_b)
    three = np.round(np.log2(s_a / s_b)) != np.log2(s_a / s_b)
    return np.where(three, s_b * 2.0 ** np.minimum(0, np.round(np.log2(s_a / s_b / 3))), g)


def _build(rng, name: str):
    B = _GBuilder(rng)
    meta: dict = {"reshape": [], "tail": [], "blocks": []}
    conv = bool(rng.random() < 0.5)
    in_shape = _int_shape(rng, conv)
    meta.update(input_shape=in_shape, conv=conv)
    ind = _int_input(B, rng, in_shape, conv, meta)
    wb = lambda: int(rng.integers(2, 9))
    C = max(min(_width(rng), 16) if conv else _width(rng), 2)
    geom = _conv_geom(rng, B.shape[2], B.shape[3], False) if conv else None
    t_qa = _pc_qact(rng, C, relu=bool(rng.random() < 0.6))
    ind = _int_hidden(B, "stem", ind, C, wb(), t_qa, meta, conv=geom, bn=bool(rng.random() < 0.5))
    t = B.cur
    same = (lambda: _conv_geom(rng, 0, 0, False, same=True)) if conv else (lambda: None)
    for bi in range(1 if rng.random() < 0.7 else 2):
        p = f"blk{bi}"
        identity = bool(rng.random() < 0.55)
        if identity:
            s_b, b_out = t_qa.scale.copy(), t
        else:           # a 1x1 / FC shortcut with its own per-channel quantizer
            B.goto(t)
            b_qa = _pc_qact(rng, C, relu=False)
            _int_hidden(B, f"{p}_b", ind, C, wb(), b_qa, meta, conv=(1, 1, 0) if conv else None,
                        bn=bool(rng.random() < 0.5), branch=f"{p}.B")
            s_b, b_out = b_qa.scale.copy(), B.cur
        B.goto(t)
        ratio = rng.choice(_RATIOS, size=C)
        if np.all(ratio == ratio[0]):     # at least two ratios: a per-channel add
            ratio[1] = _RATIOS[(_RATIOS.index(ratio[0]) + 1 + int(rng.integers(7))) % 8]
        s_a = s_b * ratio
        a_qa = _pc_qact(rng, C, relu=bool(rng.random() < 0.3))
        info: dict = {"branch": f"{p}.A"}
        grid, lo, hi = _int_mm_layer(B, f"{p}_a", C, ind, wb(), info, conv=same(),
                                     shift=_aim(a_qa, float(np.median(s_a))))
        _int_activation(B, f"{p}_a", grid, lo, hi, a_qa, info, bn=False, fixed_scale=s_a)
        B.act_tensors.append(B.cur)
        B.layers.append(info)
        a_out = B.cur
        B.gstep("Add", [a_out, b_out], f"{p}_add", B.shape, lambda a, b: a + b,
                data=[a_out, b_out], prefix=p)
        o_qa = _QAct(False, int(rng.integers(2, 9)), False, np.ones(C), bool(rng.random() < 0.4),
                     _pick_mode(rng), True)
        _data_scale(B, o_qa, _add_grid(s_a, s_b), o_qa.per_channel, tie_push=bool(rng.random() < 0.7))
        B.quant(f"{p}_add", "act", o_qa)
        B.act_tensors.append(B.cur)
        meta["blocks"].append({"kind": "add", "identity": identity, "ratios": ratio.tolist(),
                               "s_a": s_a.tolist(), "s_b": s_b.tolist(),
                               "requant": o_qa.describe()})
        t, t_qa, ind = B.cur, o_qa, _In.of(o_qa)
    if conv:
        _maybe_pool(B, "trunk", {})
        hw = B.shape[2] * B.shape[3]
        _int_flatten(B, "trunk", meta)
        ind = ind.repeat(hw)
    _int_head(B, ind, meta, wb())
    return _finish_graph(B, name, meta, qonnx=True)


def random_residual_pc_network(seed: int, n_inputs: int = 8) -> NetCase:
    """Network number ``seed``: stem -> one or two blocks Add(A, shortcut) -> Relu ->
    Quant, each operand with per-channel power-of-two scales whose per-channel ratio is
    2^k or 3 * 2^k; outputs from qonnx's executor (``meta["sim_outputs"]`` is the
    generator's float64 model and must equal them)."""
    rng = np.random.default_rng([seed, 300, 0])
    name = f"{RESIDUAL_PC_FAMILY}-s{seed}"
    model, B, meta = _build(rng, name)
    onnx.checker.check_model(model)
    inputs = _gen_inputs(np.random.default_rng([seed, 300, 1]), n_inputs,
                         B.shapes["global_in"][1:], 0.03)
    outputs = _reference_batched(model, inputs)
    env = B.run(inputs.astype(np.float64))
    meta["quantizers"] = [dict(tensor=q, per_channel=qa.per_channel,
                               on_boundary=_boundary_hits(env[x], qa.bscale(env[x].ndim), qa)[0])
                          for x, q, qa in B.quants]
    meta["sim_outputs"] = np.asarray(env["global_out"]).astype(outputs.dtype)
    return NetCase(name=name, model=model, inputs=inputs, outputs=outputs,
                   family=RESIDUAL_PC_FAMILY, meta=meta)
