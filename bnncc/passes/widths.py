"""Exact accumulator ranges and the narrowest datatypes that can never overflow."""
from __future__ import annotations

import numpy as np

from ..datatypes import DataType


def mvau_acc_range(weights: np.ndarray, idt: DataType, binary: bool):
    """Per-output-channel (lo, hi) of the accumulator over every input the datatype allows."""
    mh, mw = weights.shape
    if binary:
        return np.zeros(mh, np.int64), np.full(mh, mw, np.int64)
    w = weights.astype(np.int64)
    a, b = w * idt.min, w * idt.max
    if idt.is_bipolar:   # values are -1 or +1 only
        a, b = -np.abs(w), np.abs(w)
    return np.minimum(a, b).sum(1), np.maximum(a, b).sum(1)


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
