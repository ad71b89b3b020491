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
    kind = "SlidingWindow"

    @property
    def channels(self) -> int:
        return self.in_shape[-1]

    def execute(self, x):
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
        return {**d, "parallel": True} if self.parallel else d

    def padded(self) -> tuple[int, int]:
        t, l, b, r = self.pads
        return self.in_shape[0] + t + b, self.in_shape[1] + l + r

    def cycles(self) -> int:
        if self.parallel:          # one padded input pixel per cycle
            hp, wp = self.padded()
            return hp * wp
        # one input pixel word or one output window word per cycle, whichever is more
        c_fold = self.channels // self.simd
        ih, iw = self.in_shape[0], self.in_shape[1]
        oh, ow = self.out_shape[0], self.out_shape[1]
        kh, kw = self.kernel
        return max(ih * iw, oh * ow * kh * kw) * c_fold

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
        lut = [aw, ctr, width, lutram_sdp(width, depth) * (not block), fifo["LUT"], 1.0]
        ff = [ctr + fifo["FF"], width * (not block), 1.0]
        return lut, ff, (bram18(width, depth, rom=False) if block else 0)

    def resources(self, mem_style: str | None = None) -> dict:
        """templates/rtl/swg.v.j2: circular line buffer of NR rows (BRAM or LUT RAM with
        registered read), window address generation, output FIFO of 4 words."""
        from .cost import res
        fl, ff, bram = self.features()
        lc, fc = (SWGP_LUT, SWGP_FF) if self.parallel else (SWG_LUT, SWG_FF)
        return res(LUT=sum(c * f for c, f in zip(lc, fl)),
                   FF=sum(c * f for c, f in zip(fc, ff)), BRAM18=bram)

    def held_words(self) -> int:
        if self.parallel:
            return (self.kernel[0] - 1) * self.padded()[1] + self.kernel[1] + 2
        return self.buffer_shape()[1] + 4

    def latency(self) -> int:
        ih, iw, c = self.in_shape
        kh = self.kernel[0]
        if self.parallel:
            return (kh - 1) * self.padded()[1] + self.kernel[1] + 2
        return (kh - self.pads[0]) * iw * (c // self.simd) + 4


SWG_LUT = [0.0, 2.8935, 0.0, 1.3324, 0.0, 0.0]
SWG_FF = [1.1433, 1.1562, 1.5094]
SWGP_LUT = [1.0, 1.0, 1.146, 2.3217, 0.0]     # LUT RAM counted as mapped
SWGP_FF = [0.9919, 1.4557, 0.0]
