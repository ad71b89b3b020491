"""Max pooling of a channels-last integer stream (for bipolar data this is an OR of bits)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Layer
from .bits import Packed


def pool_windows(x: np.ndarray, kernel, stride, out_shape, op) -> np.ndarray:
    """Reduce every (kernel) window of x (N, H, W, C) with the binary op `op`."""
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = out_shape[0], out_shape[1]
    out = None
    for ky in range(kh):
        for kx in range(kw):
            win = x[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]
            out = win if out is None else op(out, win)
    return out


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
        return pool_windows(x, self.kernel, self.stride, self.out_shape, op)

    def describe(self) -> dict:
        return {"kernel": list(self.kernel), "stride": list(self.stride)}

    def cycles(self) -> int:
        ih, iw, c = self.in_shape
        return ih * iw * c // self.pe
