"""Sliding-window generator (im2col on a stream): (H, W, C) -> (OH, OW, KH*KW*C).

Each output vector is one convolution window in (ky, kx, c) order, which is the column
order of the MVAU weight matrix built by conv lowering. Padding uses the integer that
represents real zero in the input datatype; a bipolar input has none, so zero padding
pads with -1 and the MVAU corrects its accumulator (bnncc/layers/border.py).

Two hardware forms: the default streams SIMD channels per word, one word per cycle, so a
window takes KH*KW*C/SIMD cycles; `parallel` reads a whole pixel and writes a whole window
per cycle (a line buffer of KH-1 rows and KW-1 column registers), so a frame takes one
cycle per padded input pixel. The parallel form lifts the rate cap of layers with few
channels (the first conv of a network: 3 channels, 9 window positions) at the cost of a
wide output word, split to the MVAU's SIMD by a width converter.

In `depthwise` order (feeding a VVAU, bnncc/layers/vvau.py) a window is emitted channel
fold by channel fold: for each fold of SIMD channels, its KH*KW positions, so the stream
order is (c // SIMD, ky, kx, c % SIMD) and depends on SIMD.
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
    parallel: bool = False
    depthwise: bool = False      # window order (c // SIMD, ky, kx, c % SIMD), for a VVAU
    kind = "SlidingWindow"

    @property
    def channels(self) -> int:
        return self.in_shape[-1]

    def execute(self, x):
        if self.depthwise:
            w = self._windows(x.unpack() if isinstance(x, Packed) else x, self.pad_value)
            k, cf = self.kernel[0] * self.kernel[1], self.channels // self.simd
            v = w.reshape(w.shape[:-1] + (k, cf, self.simd))
            return np.swapaxes(v, -3, -2).reshape(w.shape)
        if isinstance(x, Packed):   # windows of whole words: C is a multiple of 64
            # a bipolar pad value as packed words: -1 is bit 0, +1 is bit 1
            word = np.uint64(0 if self.pad_value < 0 else 0xFFFFFFFFFFFFFFFF)
            return Packed(self._windows(x.words, word), self.out_shape[-1])
        return self._windows(x, self.pad_value)

    def _windows(self, x: np.ndarray, pad_value) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        t, l, b, r = self.pads
        if any(self.pads):
            x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=pad_value)
        oh, ow = self.out_shape[0], self.out_shape[1]
        cols = [x[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]
                for ky in range(kh) for kx in range(kw)]
        return np.concatenate(cols, axis=-1)

    def describe(self) -> dict:
        d = {"kernel": list(self.kernel), "stride": list(self.stride), "pads": list(self.pads)}
        if any(self.pads):
            d["pad_value"] = self.pad_value
        if self.depthwise:
            d["order"] = "depthwise"
        return {**d, "parallel": True} if self.parallel else d

    def padded(self) -> tuple[int, int]:
        t, l, b, r = self.pads
        return self.in_shape[0] + t + b, self.in_shape[1] + l + r

    def rows_needed(self, oy: int) -> int:
        """Input rows 0 .. n-1 that must be in the line buffer before output row oy
        (all of them after the last output row)."""
        if oy >= self.out_shape[0]:
            return self.in_shape[0]
        top = oy * self.stride[0] - self.pads[0]
        return min(self.in_shape[0], max(0, top + self.kernel[0]))

    def schedule(self) -> tuple[int, list[tuple[int, int]]]:
        """The channel-serial window's loop (templates/hls/swg.hpp.j2), one word read
        and/or one written per iteration: a fill that reads the rows output row 0 needs,
        then per output row a block of max(window words, next rows' words) iterations
        that writes the row's windows while reading the rows the next output row adds.
        Returns (fill iterations, [(block iterations, words read in it)] per output row)."""
        ih, iw, c = self.in_shape
        oh, ow = self.out_shape[0], self.out_shape[1]
        roww = iw * (c // self.simd)
        wb = ow * self.kernel[0] * self.kernel[1] * (c // self.simd)
        blocks = []
        for oy in range(oh):
            reads = (self.rows_needed(oy + 1) - self.rows_needed(oy)) * roww
            blocks.append((max(wb, reads), reads))
        return self.rows_needed(0) * roww, blocks

    def cycles(self) -> int:
        if self.parallel:          # one padded input pixel per cycle
            hp, wp = self.padded()
            return hp * wp
        fill, blocks = self.schedule()
        return fill + sum(b for b, _ in blocks)

    # ------------------------------------------------------------------ resource model
    def buffer_shape(self) -> tuple[int, int, str]:
        """(width, depth, ram_style) of the line buffer, as the RTL backend sizes it."""
        if self.parallel:          # per padded column, the KH-1 rows above
            width = (self.kernel[0] - 1) * self.channels * self.idt.bits
            depth = self.padded()[1]
            return width, depth, ("block" if depth * width >= 16384 else "distributed")
        ih, iw, c = self.in_shape
        kh, sh = self.kernel[0], self.stride[0]
        nr = max(kh, sh) + sh
        depth = nr * iw * (c // self.simd)
        width = self.simd * self.idt.bits
        return width, depth, ("block" if depth * width >= 16384 else "distributed")

    def parallel_features(self) -> tuple[list, list, int]:
        """templates/rtl/swg_parallel.v.j2: line buffer (LUT RAM or BRAM), KH x (KW-1)
        pixel registers, the window mux into a 2-word output FIFO, the pad mux, scan
        counters."""
        from .cost import bram18, lutram_sdp, ubits
        width, depth, st = self.buffer_shape()
        hp, wp = self.padded()
        (kh, kw), pw = self.kernel, self.channels * self.idt.bits
        out_w = kh * kw * pw
        block = st == "block"
        ctr = ubits(wp - 1) + ubits(hp - 1) + ubits(self.stride[0] - 1) + ubits(self.stride[1] - 1)
        lut = [0 if block else lutram_sdp(width, depth), lutram_sdp(out_w, 2), pw, ctr, 1.0]
        ff = [kh * (kw - 1) * pw, ctr + 4, 1.0]
        return lut, ff, (bram18(width, depth, rom=False) if block and width else 0)

    def features(self, style=None) -> tuple[list, list, int]:
        from .cost import bram18, fifo_resources, lutram_sdp, ubits
        if self.parallel:
            return self.parallel_features()
        width, depth, st = self.buffer_shape()
        ih, iw, c = self.in_shape
        oh, ow = self.out_shape[0], self.out_shape[1]
        cf = c // self.simd
        aw = ubits(depth - 1)
        fifo = fifo_resources(width, 4)
        ctr = (aw + ubits(iw * cf - 1) + 3 * ubits(max(self.kernel) + 2) + ubits(oh)
               + ubits(ow) + ubits(cf - 1) + 2 * ubits(ih))
        block = st == "block"
        # in block RAM the read of a word written in the same cycle needs Yosys' bypass:
        # a word-wide mux and an address compare (LUT RAM reads asynchronously)
        lut = [aw, ctr, width, lutram_sdp(width, depth) * (not block), fifo["LUT"], 1.0,
               width * block]
        ff = [ctr + fifo["FF"], width * (not block), 1.0]
        return lut, ff, (bram18(width, depth, rom=False) if block else 0)

    def lut_floor(self, style=None) -> int:
        """The line buffer's LUT RAM cells when it is not in block RAM."""
        from .cost import buffer_lut_floor
        return buffer_lut_floor(self.buffer_shape())

    def resources(self, mem_style: str | None = None) -> dict:
        """templates/rtl/swg.v.j2: circular line buffer of NR rows (BRAM or LUT RAM with
        registered read), window address generation, output FIFO of 4 words."""
        from .cost import res
        fl, ff, bram = self.features()
        lc, fc = (SWGP_LUT, SWGP_FF) if self.parallel else (SWG_LUT, SWG_FF)
        return res(LUT=max(sum(c * f for c, f in zip(lc, fl)), self.lut_floor()),
                   FF=sum(c * f for c, f in zip(fc, ff)), BRAM18=bram)

    def held_words(self) -> int:
        if self.parallel:
            return (self.kernel[0] - 1) * self.padded()[1] + self.kernel[1] + 2
        return self.buffer_shape()[1] + 4

    def fill_drain(self) -> tuple[int, int]:
        """(input words read before the first window word, cycles of output after the last
        input word): the rows output row 0 needs; the last output row's windows."""
        ih, iw, c = self.in_shape
        if self.parallel:
            (kh, kw), (t, l, b, r) = self.kernel, self.pads
            fill = max(0, kh - 1 - t) * iw + max(1, kw - l)
            return max(1, fill), b * self.padded()[1] + r
        fill, blocks = self.schedule()
        last, reads = blocks[-1]
        return max(1, fill), max(0, last - reads)


from .cost import coef  # noqa: E402

SWG_LUT, SWG_FF = coef("SWG")
SWGP_LUT, SWGP_FF = coef("SWGP")
