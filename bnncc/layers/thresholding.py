"""Multi-threshold activation: out = base + step * #{j : x >= T[c, j]}.

This is how every quantizer after an integer accumulator is realized in hardware (FINN's
MultiThreshold): the compiler folds BatchNorm, scales and the quantizer into the integer
thresholds T (bnncc.passes.thresholds). A bipolar output is the count itself as one bit
(value -1 + 2 * count); other outputs are base + count.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..datatypes import DataType
from ..ir import Layer
from .bits import unpacked


def out_levels(odt: DataType) -> tuple[int, int]:
    """(base, step) such that an output value is base + step * count."""
    return (-1, 2) if odt.is_bipolar else (odt.min, 1)


def apply_thresholds(acc: np.ndarray, thresholds: np.ndarray, odt: DataType) -> np.ndarray:
    """acc (..., C) integers, thresholds (C, nT) -> output values (..., C).
    acc may be a float array holding exact integers (then thresholds are exact too,
    being within the accumulator range plus one)."""
    base, step = out_levels(odt)
    t = thresholds.astype(acc.dtype) if acc.dtype.kind == "f" else thresholds
    if t.shape[1] == 1:
        return (base + step * (acc >= t[:, 0]).astype(np.int8)).astype(odt.np_dtype)
    count = np.zeros(acc.shape, dtype=np.int16 if t.shape[1] < 1 << 15 else np.int64)
    for j in range(t.shape[1]):
        count += acc >= t[:, j]
    return (base + step * count.astype(np.int64)).astype(odt.np_dtype)


@dataclass
class Thresholding(Layer):
    """Standalone thresholding of a channels-last integer stream."""

    thresholds: np.ndarray = None       # (C, nT) int64, sorted along nT
    tdt: DataType = None                # threshold storage type
    negate: np.ndarray = None           # (C,) bool: compare -x (a decreasing channel)
    pe: int = 1
    kind = "Thresholding"

    @property
    def channels(self) -> int:
        return self.thresholds.shape[0]

    def execute(self, x) -> np.ndarray:
        x = unpacked(x)
        x = np.where(self.negate, -x, x) if self.negate is not None else x
        return apply_thresholds(x, self.thresholds, self.odt)

    def describe(self) -> dict:
        return {"thresholds": self.thresholds.shape[1], "tdt": str(self.tdt)}

    def threshold_tiles(self) -> np.ndarray:
        """(PE, C/PE, nT): PE p, address nf holds channel nf * PE + p."""
        nf = self.channels // self.pe
        t = self.thresholds
        return t.reshape(nf, self.pe, t.shape[1]).transpose(1, 0, 2)

    def cycles(self) -> int:
        pixels = int(np.prod(self.in_shape[:-1])) if len(self.in_shape) > 1 else 1
        return pixels * self.channels // self.pe
