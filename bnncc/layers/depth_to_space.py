"""Stream reordering between hardware layers: DepthToSpace (DCR and CRD) and
SpaceToDepth (PixelShuffle / PixelUnshuffle) on a channels-last stream.

Both are a fixed permutation inside a *block* of the stream: DepthToSpace maps one input
row (W pixels of b*b*C' channels) to b output rows; SpaceToDepth maps b input rows to one
output row. The hardware keeps two blocks (ping-pong): the writer fills one in input
order while the reader emits the other in output order, so the layer takes and gives one
word per cycle and a frame costs its words (plus one block of latency). The buffer is
2 x block words: 2b output rows for DepthToSpace, 2b input rows for SpaceToDepth.

A word carries PE elements that are neighbours in both orders: PE divides C' (DCR),
C (SpaceToDepth); in CRD mode the channels of an output pixel are b*b apart in the input,
so PE is 1. The read order is four nested counters (extents `loops`, strides `strides`,
in words), the same in the golden model's derivation, the HLS and the RTL.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Layer
from .bits import unpacked

MODES = ("DCR", "CRD", "S2D")


def reorder(x: np.ndarray, mode: str, b: int) -> np.ndarray:
    """The ONNX op on channels-last tensors (N, H, W, C)."""
    n, h, w, c = x.shape
    if mode == "S2D":
        t = x.reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)
        return t.reshape(n, h // b, w // b, b * b * c)
    co = c // (b * b)
    if mode == "DCR":   # input channel (i * b + j) * C' + c'
        t = x.reshape(n, h, w, b, b, co).transpose(0, 1, 3, 2, 4, 5)
    else:               # CRD: input channel c' * b * b + i * b + j
        t = x.reshape(n, h, w, co, b, b).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(n, h * b, w * b, co)


@dataclass
class DepthToSpace(Layer):
    mode: str = "DCR"            # DCR / CRD (DepthToSpace) or S2D (SpaceToDepth)
    block: int = 2
    pe: int = 1
    kind = "DepthToSpace"

    def execute(self, x):
        return reorder(unpacked(x), self.mode, self.block)

    def describe(self) -> dict:
        return {"mode": self.mode, "blocksize": self.block}

    def pe_channels(self) -> int:
        """Elements that stay neighbours in both orders (PE divides it)."""
        if self.mode == "S2D":
            return int(self.in_shape[-1])
        return int(self.out_shape[-1]) if self.mode == "DCR" else 1

    # ------------------------------------------------------------------ geometry
    def block_words(self) -> int:
        h, w, c = self.in_shape
        rows = self.block if self.mode == "S2D" else 1
        return rows * w * c // self.pe

    def blocks(self) -> int:
        h = self.in_shape[0]
        return h // self.block if self.mode == "S2D" else h

    def loops(self) -> tuple[tuple, tuple]:
        """(extents, strides) of the read order's four counters, outer to inner; the read
        address in the block is sum(counter * stride) (words)."""
        b, pe = self.block, self.pe
        h, w, c = self.in_shape
        if self.mode == "S2D":
            cw = c // pe
            return (w // b, b, b, cw), (b * cw, w * cw, cw, 1)
        co = c // (b * b)
        if self.mode == "DCR":
            cw = co // pe
            return (b, w, b, cw), (b * cw, b * b * cw, cw, 1)
        return (b, w, b, co), (b, c, 1, b * b)

    def read_order(self) -> np.ndarray:
        """Block addresses in output order (used by tests to check the loops)."""
        n, s = self.loops()
        idx = np.indices(n).reshape(4, -1)
        return (np.asarray(s)[:, None] * idx).sum(0)

    def cycles(self) -> int:
        """One word per cycle on both sides; the ping-pong buffer overlaps them."""
        return int(np.prod(self.in_shape)) // self.pe

    def fill_drain(self) -> tuple[int, int]:
        """The first word goes out once a whole block is in; after the last input word
        the reader still emits that block."""
        bw = self.block_words()
        return bw, bw

    def held_words(self) -> int:
        return 2 * self.block_words() + 4

    # ------------------------------------------------------------------ resource model
    def buffer_shape(self) -> tuple[int, int, str]:
        """(width, depth, ram_style) of the ping-pong buffer, as the RTL sizes it."""
        width = self.pe * self.idt.bits
        depth = 2 * self.block_words()
        return width, depth, ("block" if width * depth >= 16384 else "distributed")

    def buffer_style(self) -> str:
        return self.buffer_shape()[2]

    def features(self, style=None) -> tuple[list, list, int]:
        """templates/rtl/depth_to_space.v.j2: the buffer (BRAM, or LUT RAM cells), write
        address counter, four read counters and the read address adder (a 4-way mux of
        constant steps), block-full flags, an output FIFO of 4 words."""
        from .cost import bram18, fifo_resources, lutram_sdp, ubits
        width, depth, st = self.buffer_shape()
        n, _ = self.loops()
        aw = ubits(depth - 1)
        ctr = aw + sum(ubits(k - 1) for k in n) + aw + 4
        fifo = fifo_resources(width, 4)
        block = st == "block"
        lut = [0 if block else lutram_sdp(width, depth), aw, ctr, fifo["LUT"], 1.0]
        ff = [ctr + fifo["FF"], width * (not block), 1.0]
        return lut, ff, (bram18(width, depth, rom=False) if block else 0)

    def lut_floor(self, style=None) -> int:
        """The buffer's LUT RAM cells when it is not in block RAM (the physical floor)."""
        from .cost import buffer_lut_floor
        return buffer_lut_floor(self.buffer_shape())

    def resources(self, mem_style: str | None = None) -> dict:
        from .cost import res
        fl, ff, bram = self.features()
        return res(LUT=max(sum(c * f for c, f in zip(D2S_LUT, fl)), self.lut_floor()),
                   FF=sum(c * f for c, f in zip(D2S_FF, ff)), BRAM18=bram)


# Structural coefficients (one LUT per buffer LUT-RAM cell, per address bit of the adder and
# mux, per counter bit; the FIFO's own model), checked against Yosys in
# hw_tests/test_depth_to_space_hw.py (test_resources_vs_yosys).
D2S_LUT = [1.0, 2.0, 1.0, 1.0, 8.0]
D2S_FF = [1.0, 1.0, 2.0]
