"""Sum pooling of a channels-last integer stream: the integer part of average pooling.
The division by the window size stays a float op in the chain, folded into the next
quantizer's thresholds exactly like a BatchNorm scale (a global average pool is a sum
pool whose window is the whole image)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Layer
from .bits import unpacked
from .maxpool import pool_windows


@dataclass
class SumPool(Layer):
    kernel: tuple = (2, 2)
    stride: tuple = (2, 2)
    pe: int = 1
    kind = "SumPool"

    def execute(self, x) -> np.ndarray:
        x = unpacked(x).astype(np.int64)
        out = pool_windows(x, self.kernel, self.stride, self.out_shape, np.add)
        return out.astype(self.odt.np_dtype)

    def describe(self) -> dict:
        return {"kernel": list(self.kernel), "stride": list(self.stride)}

    def cycles(self) -> int:
        ih, iw, c = self.in_shape
        return ih * iw * c // self.pe
