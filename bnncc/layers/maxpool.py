"""Max pooling of a channels-last integer stream (for bipolar data this is an OR of bits)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Layer
from .bits import Packed


@dataclass
class MaxPool(Layer):
    kernel: tuple = (2, 2)
    stride: tuple = (2, 2)
    pe: int = 1
    kind = "MaxPool"

    def execute(self, x):
        if isinstance(x, Packed):   # max of bipolar values is the OR of their bits
            return Packed(self._pool(x.words, np.bitwise_or), x.channels)
        return self._pool(x, np.maximum)

    def _pool(self, x: np.ndarray, op) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        oh, ow = self.out_shape[0], self.out_shape[1]
        out = None
        for ky in range(kh):
            for kx in range(kw):
                win = x[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]
                out = win if out is None else op(out, win)
        return out

    def describe(self) -> dict:
        return {"kernel": list(self.kernel), "stride": list(self.stride)}

    def cycles(self) -> int:
        ih, iw, c = self.in_shape
        return ih * iw * c // self.pe
