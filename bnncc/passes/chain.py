"""Elementwise float ops that the compiler absorbs: scalar/per-channel Mul, Add, Sub, Div,
BatchNormalization, Relu, Clip, and the affine map from a hardware integer to its real value.

A *chain* is the list of such ops between an integer tensor and the next quantizer (or
the model output). Its params are arrays broadcastable to the tensor they act on. The
evaluation is float32, op by op, in the same order and formulas as onnxruntime, so the
integer thresholds derived from it reproduce the original float graph exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith import ftype

MONOTONE_UP = ("add", "sub", "relu", "clip")


@dataclass
class ChainOp:
    op: str            # affine | mul | add | sub | rsub | div | bn | relu | clip
    params: tuple = ()
    node: str = ""     # ONNX node it came from

    def map_params(self, fn) -> "ChainOp":
        return ChainOp(self.op, tuple(fn(p) for p in self.params), self.node)


def _bn(x, gamma, beta, mean, var, eps):
    f32 = ftype()
    inv_std = f32(1) / np.sqrt(var.astype(f32) + f32(eps))
    scale = (gamma.astype(f32) * inv_std).astype(f32)
    bias = (beta.astype(f32) - mean.astype(f32) * scale).astype(f32)
    return (x * scale + bias).astype(f32)


def eval_op(op: ChainOp, x: np.ndarray) -> np.ndarray:
    f32 = ftype()
    p = op.params
    if op.op == "affine":  # exact integer -> real, rounded once to float32
        return (x.astype(np.float64) * p[0] + p[1]).astype(f32)
    x = np.asarray(x, f32)
    if op.op == "mul":
        return (x * p[0].astype(f32)).astype(f32)
    if op.op == "add":
        return (x + p[0].astype(f32)).astype(f32)
    if op.op == "sub":
        return (x - p[0].astype(f32)).astype(f32)
    if op.op == "rsub":
        return (p[0].astype(f32) - x).astype(f32)
    if op.op == "div":
        return (x / p[0].astype(f32)).astype(f32)
    if op.op == "bn":
        return _bn(x, *p)
    if op.op == "relu":
        return np.maximum(x, f32(0))
    if op.op == "clip":
        return np.minimum(np.maximum(x, p[0].astype(f32)), p[1].astype(f32))
    raise ValueError(op.op)


def eval_chain(chain: list[ChainOp], x: np.ndarray) -> np.ndarray:
    y = x
    for op in chain:
        y = eval_op(op, y)
    return np.asarray(y, ftype()) if chain else y


def direction(chain: list[ChainOp]) -> np.ndarray:
    """Per-element sign of d(chain)/dx: +1 increasing, -1 decreasing, 0 constant."""
    d = np.ones((), dtype=np.int64)
    for op in chain:
        if op.op in MONOTONE_UP:
            continue
        if op.op == "rsub":
            d = -d
        elif op.op in ("mul", "div", "affine"):
            d = d * np.sign(op.params[0]).astype(np.int64)
        elif op.op == "bn":
            d = d * np.sign(op.params[0]).astype(np.int64)
        else:
            raise ValueError(op.op)
    return d


def compose_affine(chain: list[ChainOp]):
    """(mul, add) with chain(q) = mul * q + add in exact arithmetic, or None when the
    chain has a non-affine op (Relu, Clip). Used where an integer tensor with float
    scales feeds a matrix product, whose float reference rounds anyway."""
    m, a = np.float64(1), np.float64(0)
    for op in chain:
        p = [np.asarray(v, np.float64) for v in op.params]
        if op.op == "affine":
            m, a = m * p[0], a * p[0] + p[1]
        elif op.op == "mul":
            m, a = m * p[0], a * p[0]
        elif op.op == "div":
            m, a = m / p[0], a / p[0]
        elif op.op == "add":
            a = a + p[0]
        elif op.op == "sub":
            a = a - p[0]
        elif op.op == "rsub":
            m, a = -m, p[0] - a
        elif op.op == "bn":
            g, b, mean, var, eps = p
            sc = g / np.sqrt(var + eps)
            m, a = m * sc, a * sc + b - mean * sc
        else:
            return None
    return m, a


def reduce_channels(arr: np.ndarray, channel_of: np.ndarray, nch: int) -> np.ndarray | None:
    """Per-element values -> per-channel (nch,) if each channel holds one value, else None."""
    arr = np.asarray(arr)
    if arr.ndim == 0:
        return np.broadcast_to(arr, (nch,)).copy()
    flat = arr.reshape(-1)
    out = np.empty(nch, dtype=flat.dtype)
    out[channel_of] = flat
    if not np.array_equal(out[channel_of], flat):
        return None
    return out


# -- host stages -------------------------------------------------------------------------

def host_input(stage, x: np.ndarray) -> np.ndarray:
    """Float inputs (N, *input shape without batch) -> first integer stream (N, *hw shape)."""
    x = np.asarray(x, np.float32)
    n = x.shape[0]
    flat = x.reshape(n, -1)
    if not np.array_equal(stage.gather, np.arange(flat.shape[1])):
        flat = flat[:, stage.gather]
    t = flat.reshape((n,) + tuple(stage.shape[1:]))
    q = stage.quant.values(stage.quant.levels(eval_chain(stage.chain, t)))
    q = np.transpose(q, stage.hw_order).reshape((n,) + stage.hw_shape)
    return q.astype(stage.quant.dtype.np_dtype)


def host_output(stage, y: np.ndarray) -> np.ndarray:
    """Last integer stream (N, ...) -> the model's output (N, *output shape w/o batch)."""
    n = y.shape[0]
    t = y.reshape(n, -1)[:, stage.gather].reshape((n,) + tuple(stage.shape[1:]))
    t = eval_chain(stage.chain, t)
    if stage.head is not None:
        t = stage.head(t)
    return np.asarray(t).astype(stage.out_dtype)
