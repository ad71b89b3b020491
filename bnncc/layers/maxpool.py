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
        removed = self.__dict__.get("removed")   # set by bnncc.passes.prune
        return {"kernel": list(self.kernel), "stride": list(self.stride),
                **({"removed": removed} if removed else {})}

    def cycles(self) -> int:
        ih, iw, c = self.in_shape
        return ih * iw * c // self.pe

    # ------------------------------------------------------------------ resource model
    def features(self, style=None) -> tuple[list, list]:
        from .cost import fifo_bram, fifo_resources, lutram_sp, ubits
        ih, iw, c = self.in_shape
        k = self.kernel[0]
        cf = c // self.pe
        eb = self.odt.bits           # partial results: a max, or a wider sum (SumPool)
        width = self.pe * eb
        depth = self.out_shape[1] * cf
        fifo = fifo_resources(width, 2)
        ctr = ubits(cf - 1) + 2 * ubits(k - 1) + 2 * ubits(iw) + 2 * ubits(ih) + ubits(depth)
        # the row buffer: LUT RAM, or block RAM where Yosys finds that cheaper (as SumPool)
        lut = [self.pe * (eb == 1), self.pe * eb * (eb > 1),
               0 if fifo_bram(width, depth) else lutram_sp(width, depth), ctr + fifo["LUT"], 1.0]
        ff = [ctr + fifo["FF"], 1.0, width * (fifo_bram(width, depth) > 0)]
        return lut, ff

    def lut_floor(self, style=None) -> int:
        """The row buffer of partial maxima in LUT RAM (none when in block RAM)."""
        from .cost import fifo_bram, lutram_sp
        width, depth = self.pe * self.odt.bits, self.out_shape[1] * (self.in_shape[2] // self.pe)
        return 0 if fifo_bram(width, depth) else int(lutram_sp(width, depth))

    def bram18(self) -> int:
        from .cost import fifo_bram
        return fifo_bram(self.pe * self.odt.bits, self.out_shape[1] * (self.in_shape[2] // self.pe))

    def resources(self, mem_style: str | None = None) -> dict:
        """templates/rtl/pool.v.j2 (max): a row buffer of partial maxima (LUT RAM, one
        address), PE comparators, position counters, output FIFO of 2 words."""
        from .cost import res
        fl, ff = self.features()
        return res(LUT=max(sum(c * f for c, f in zip(POOL_LUT, fl)), self.lut_floor()),
                   FF=sum(c * f for c, f in zip(POOL_FF, ff)), BRAM18=self.bram18())

    def held_words(self) -> int:
        ih, iw, c = self.in_shape
        return self.kernel[0] * iw * c // self.pe + 2

    def fill_drain(self) -> tuple[int, int]:
        """The first window is complete after KH - 1 input rows and KW pixels."""
        ih, iw, c = self.in_shape
        cf = c // self.pe
        return (self.kernel[0] - 1) * iw * cf + (self.kernel[1] - 1) * cf + 1, 0


from .cost import coef  # noqa: E402

POOL_LUT, POOL_FF = coef("POOL")
