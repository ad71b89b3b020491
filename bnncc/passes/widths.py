"""Exact accumulator ranges and the narrowest datatypes that can never overflow.

Ranges are computed exactly (Python integers where int64 could overflow) and a range
that needs more than 64 bits is refused with its width: the golden model computes in
int64, so wider accumulators would wrap instead of being exact.
"""
from __future__ import annotations

import numpy as np

from ..datatypes import DataType
from ..errors import UnsupportedError

MAX_ACC_BITS = 64


def mvau_acc_range(weights: np.ndarray, idt: DataType, binary: bool):
    """Per-output-channel (lo, hi) of the accumulator over every input the datatype allows."""
    mh, mw = weights.shape
    if binary:
        return np.zeros(mh, np.int64), np.full(mh, mw, np.int64)
    wmax = float(np.max(np.abs(weights), initial=0))
    exact_int64 = wmax * max(abs(idt.min), abs(idt.max)) * max(mw, 1) < 2.0 ** 62
    w = weights.astype(np.int64) if exact_int64 else np.asarray(weights).astype(object)
    imin, imax = (idt.min, idt.max) if exact_int64 else (int(idt.min), int(idt.max))
    a, b = w * imin, w * imax
    if idt.is_bipolar:   # values are -1 or +1 only
        a, b = -abs(w), abs(w)
    lo, hi = np.minimum(a, b).sum(1), np.maximum(a, b).sum(1)
    if not exact_int64:
        check_acc_range(int(lo.min()), int(hi.max()))
        lo, hi = lo.astype(np.int64), hi.astype(np.int64)
    return lo, hi


def check_acc_range(lo: int, hi: int) -> None:
    bits = DataType.for_range(lo, hi).bits
    if bits > MAX_ACC_BITS:
        raise UnsupportedError(f"the accumulator's exact range [{lo}, {hi}] needs {bits} bits; "
                               f"bnncc computes exactly up to {MAX_ACC_BITS} bits (narrow the "
                               "weights or the input type)")


def minimize_widths(design):
    """Set every MVAU's accumulator and raw-output datatype to its exact range."""
    from ..layers import MVAU, VVAU
    for layer in design.layers():
        if isinstance(layer, (MVAU, VVAU)):
            lo, hi = mvau_acc_range(layer.weights, layer.idt, layer.binary)
            layer.accdt = DataType.for_range(int(lo.min()), int(hi.max()))
            if layer.thresholds is None:
                layer.odt = layer.accdt
    return design
