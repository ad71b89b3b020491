"""Sliding-window generator (im2col on a stream): (H, W, C) -> (OH, OW, KH*KW*C).

Each output vector is one convolution window in (ky, kx, c) order, which is the column
order of the MVAU weight matrix built by conv lowering. Padding uses the integer that
represents real zero in the input datatype.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Layer
from .bits import Packed


@dataclass
class SlidingWindow(Layer):
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)   # top, left, bottom, right
    pad_value: int = 0
    simd: int = 1
    kind = "SlidingWindow"

    @property
    def channels(self) -> int:
        return self.in_shape[-1]

    def execute(self, x):
        if isinstance(x, Packed):   # windows of whole words: C is a multiple of 64
            return Packed(self._windows(x.words), self.out_shape[-1])
        return self._windows(x)

    def _windows(self, x: np.ndarray) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        t, l, b, r = self.pads
        if any(self.pads):
            x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=self.pad_value)
        oh, ow = self.out_shape[0], self.out_shape[1]
        cols = [x[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]
                for ky in range(kh) for kx in range(kw)]
        return np.concatenate(cols, axis=-1)

    def describe(self) -> dict:
        return {"kernel": list(self.kernel), "stride": list(self.stride), "pads": list(self.pads)}

    def cycles(self) -> int:
        # one input pixel word or one output window word per cycle, whichever is more
        c_fold = self.channels // self.simd
        ih, iw = self.in_shape[0], self.in_shape[1]
        oh, ow = self.out_shape[0], self.out_shape[1]
        kh, kw = self.kernel
        return max(ih * iw, oh * ow * kh * kw) * c_fold
