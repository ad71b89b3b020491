"""Max over the windows of a depthwise-order sliding window: overlapping max pooling
(kernel > stride, e.g. 3x3 stride 2 in ResNet stems), padded or ceil-mode pools.

The sliding window (bnncc/layers/swg.py, depthwise order) emits each window channel fold
by channel fold: for each fold of PE channels its KH*KW positions, one word per cycle.
This layer keeps PE running maxima and writes one word of PE channels per KH*KW input
words, so it needs no buffer and runs at the window's rate. Pads come from the window:
it pads with the smallest code of the datatype, which no maximum can pick over a real
value (every window holds at least one, checked at lowering).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Layer
from .bits import unpacked


@dataclass
class WindowMax(Layer):
    kernel: tuple = (2, 2)
    pe: int = 1                 # channels per word; the window's SIMD
    kind = "WindowMax"

    @property
    def k(self) -> int:
        return self.kernel[0] * self.kernel[1]

    @property
    def channels(self) -> int:
        return int(self.out_shape[-1])

    def execute(self, x):
        v = unpacked(x)
        n, oh, ow, _ = v.shape
        cf = self.channels // self.pe
        # (c // PE, ky, kx, c % PE): the window's depthwise order
        return v.reshape(n, oh, ow, cf, self.k, self.pe).max(axis=4).reshape(
            n, oh, ow, self.channels)

    def describe(self) -> dict:
        return {"kernel": list(self.kernel), "order": "depthwise"}

    def cycles(self) -> int:
        return int(np.prod(self.in_shape)) // self.pe

    def fill_drain(self) -> tuple[int, int]:
        return self.k, 0

    # ------------------------------------------------------------------ resource model
    def features(self, style=None) -> tuple[list, list]:
        """templates/rtl/window_max.v.j2: PE comparators and muxes (an OR for bipolar
        lanes), the running maxima, a position counter, an output FIFO of 2 words."""
        from .cost import fifo_resources, ubits
        eb = self.idt.bits
        fifo = fifo_resources(self.pe * eb, 2)
        ctr = ubits(self.k - 1)
        lut = [self.pe * (eb == 1), self.pe * eb * (eb > 1), ctr, fifo["LUT"], 1.0]
        ff = [self.pe * eb + ctr + fifo["FF"], 1.0]
        return lut, ff

    def resources(self, mem_style: str | None = None) -> dict:
        from .cost import res
        fl, ff = self.features()
        return res(LUT=sum(c * f for c, f in zip(WMAX_LUT, fl)),
                   FF=sum(c * f for c, f in zip(WMAX_FF, ff)))


# Structural coefficients (a compare-and-select is about 1.5 LUT per bit, an OR one LUT per
# lane), checked against Yosys in hw_tests/test_overlap_pool_hw.py.
WMAX_LUT = [1.0, 1.5, 2.0, 1.0, 6.0]
WMAX_FF = [1.0, 2.0]
