"""Fold (integer accumulator -> float chain -> quantizer) into exact integer thresholds.

For one channel, let L(a) be the quantizer level the original float graph produces when
the accumulator holds the integer a. The chain is monotone (DESIGN.md section 3), so
L is a step function and level k is reached exactly when a >= T_k with
T_k = min{a : L(a) >= k}. We find every T_k by binary search over the reachable
accumulator range, evaluating L with the same float32 arithmetic as the reference, so
the thresholds are exact on every reachable value by construction (tests check it
exhaustively against onnxruntime / qonnx). Decreasing channels (negative BatchNorm
gamma) are searched on -a and reported in `negate` so the producer can flip its weights.
Thresholds are clamped into [lo, hi + 1]: lo means "always", hi + 1 means "never".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datatypes import DataType
from ..errors import UnsupportedError
from ..quantizers import Quantizer, SignQuant
from .chain import ChainOp, direction, eval_chain


@dataclass
class Fold:
    thresholds: np.ndarray   # (C, nT) int64, in the (possibly negated) accumulator domain
    negate: np.ndarray       # (C,) bool
    odt: DataType
    constant: np.ndarray     # (C,) bool: channel output does not depend on the input
    tdt: DataType


def levels_at(acc: np.ndarray, chain: list[ChainOp], quant: Quantizer) -> np.ndarray:
    """Quantizer level for accumulator values acc (..., C) through the float chain."""
    return quant.levels(eval_chain(chain, acc))


def fold_thresholds(lo: np.ndarray, hi: np.ndarray, chain: list[ChainOp],
                    quant: Quantizer, reflect: int = 0) -> Fold:
    """lo, hi: (C,) reachable accumulator range; chain/quant params broadcast to (C,).

    A decreasing channel is searched on a' = reflect - a: what the producer computes once
    that channel is flipped (negated weights give -a; flipped bits in an XNOR-popcount
    layer give MW - popcount, so reflect = MW there)."""
    lo = np.asarray(lo, np.int64)
    hi = np.asarray(hi, np.int64)
    nch = lo.shape[0]
    if np.any(np.asarray(quant.scale) <= 0):
        raise UnsupportedError("quantizer scale must be positive")
    d = np.broadcast_to(direction(chain), (nch,))
    negate = d < 0
    dlo = np.where(negate, reflect - hi, lo)   # search domain of a'
    dhi = np.where(negate, reflect - lo, hi)
    nt = quant.nlevels - 1
    k = np.arange(1, nt + 1)[:, None]                   # (nT, 1)
    a = np.broadcast_to(dlo, (nt, nch)).copy()          # current lower bound
    b = np.broadcast_to(dhi + 1, (nt, nch)).copy()      # upper bound (exclusive answer)
    while np.any(a < b):
        mid = (a + b) // 2
        reached = levels_at(np.where(negate, reflect - mid, mid), chain, quant) >= k
        active = a < b
        b = np.where(active & reached, mid, b)
        a = np.where(active & ~reached, mid + 1, a)
    t = a.T.copy()                                      # (C, nT)
    constant = np.all((t <= dlo[:, None]) | (t > dhi[:, None]), axis=1)
    odt = quant.dtype
    if isinstance(quant, SignQuant) and np.array_equal(t[:, 0], t[:, 1]):
        # no reachable accumulator makes the value exactly 0: the output is bipolar
        t, odt = t[:, :1], DataType.bipolar()
    tdt = DataType.for_range(int(t.min(initial=0)), int(t.max(initial=0)))
    return Fold(t, negate, odt, constant, tdt)
