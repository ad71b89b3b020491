"""Sum pooling of a channels-last integer stream: the integer part of average pooling.
The division by the window size stays a float op in the chain, folded into the next
quantizer's thresholds exactly like a BatchNorm scale (a global average pool is a sum
pool whose window is the whole image).

The hardware is the max pool's with an adder in place of the comparator and outputs wide
enough for the window's sum, so everything but the arithmetic is inherited."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bits import unpacked
from .maxpool import MaxPool, pool_windows


@dataclass
class SumPool(MaxPool):
    kind = "SumPool"

    def execute(self, x) -> np.ndarray:
        x = unpacked(x).astype(np.int64)
        out = pool_windows(x, self.kernel, self.stride, self.out_shape, np.add)
        return out.astype(self.odt.np_dtype)

    # ------------------------------------------------------------------ resource model
    def features(self, style=None) -> tuple[list, list, int]:
        """(LUT features, FF features, BRAM18) of templates/rtl/pool.v.j2 summing: PE adders
        of the output width (a +1/-1 mux in front for bipolar inputs), the partial-sum row
        buffer (LUT RAM, or block RAM when Yosys finds that cheaper), the position
        registers, an output FIFO of 2 words."""
        from .cost import fifo_bram, lutram_sdp, ubits
        ih, iw, c = self.in_shape
        (kh, kw), ow = self.kernel, self.out_shape[1]
        cf = c // self.pe
        width = self.pe * self.odt.bits
        depth = ow * cf
        bram = fifo_bram(width, depth)
        gx = -(-iw // kw)
        regs = (ubits(cf - 1) + ubits(kw - 1) + ubits(kh - 1) + ubits(gx) + ubits(-(-ih // kh))
                + ubits(gx * cf) + ubits(iw - 1) + ubits(ih - 1) + 4)
        fixed = (0 if bram else lutram_sdp(width, depth)) + lutram_sdp(width, 2)
        lut = [width, width * self.idt.is_bipolar, regs, 1.0, fixed]
        ff = [regs, width * (bram > 0), 1.0]
        return lut, ff, bram

    def lut_floor(self, style=None) -> int:
        """The partial-sum row buffer's LUT RAM cells (none when in block RAM)."""
        from .cost import fifo_bram, lutram_sdp
        width, depth = self.pe * self.odt.bits, self.out_shape[1] * (self.in_shape[2] // self.pe)
        return 0 if fifo_bram(width, depth) else int(lutram_sdp(width, depth))

    def resources(self, mem_style: str | None = None) -> dict:
        from .cost import res
        fl, ff, bram = self.features()
        return res(LUT=max(sum(c * f for c, f in zip(SUMPOOL_LUT, fl)), self.lut_floor()),
                   FF=sum(c * f for c, f in zip(SUMPOOL_FF, ff)), BRAM18=bram)


from .cost import coef  # noqa: E402

SUMPOOL_LUT, SUMPOOL_FF = coef("SUMPOOL")
