"""Vector-vector-activation unit: depthwise and grouped convolutions.

A convolution with G groups splits its C_in input channels into G groups of CIN = C_in / G
and its C_out output channels into G groups of COUT = C_out / G; output channel
g * COUT + j sees only the K = KH * KW window positions of its group's CIN channels.
Depthwise is CIN = 1 (COUT is the depth multiplier). Run as a dense MVAU this would do G
times the work on zero weights, so the unit processes whole groups instead: PE groups per
cycle, one kernel position per cycle, each group lane computing its COUT x CIN products.
One unit covers depthwise (any multiplier) and general groups; FINN's VVAU is its CIN = 1,
COUT = 1 case.

The sliding window feeding it runs in *depthwise order* (SlidingWindow.depthwise): per
output pixel, for each channel fold of PE * CIN channels, the K window positions, one word
each. So a word carries PE whole groups at one kernel position, and the unit accumulates K
words and emits PE * COUT output channels, which are consecutive: the output stream is in
plain channel order. The window's SIMD is therefore PE * CIN (bnncc.folding keeps them
together), and the golden model reads its input in that fold-dependent order.

Weights are a C_out x (K * CIN) matrix, column k * CIN + ci, so widths, threshold folding
and the accumulator ranges treat it like an MVAU's (bnncc.passes.widths.mvau_acc_range).
Binary mode (bipolar input and weights) accumulates popcount(XNOR) = (dot + K * CIN) / 2.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datatypes import DataType
from ..ir import Layer
from .bits import unpacked
from .matrix import WeightMatrix
from .thresholding import apply_thresholds


@dataclass
class VVAU(WeightMatrix, Layer):
    weights: np.ndarray = None      # (C_out, K * CIN) int64 (bipolar stored as -1/+1)
    wdt: DataType = None
    groups: int = 1
    kernel: tuple = (1, 1)
    binary: bool = False
    accdt: DataType = None
    thresholds: np.ndarray = None   # (C_out, nT) or None: raw accumulators out
    tdt: DataType = None
    pe: int = 1                     # groups per cycle
    simd: int = 1                   # kernel positions per cycle (1: the hardware's only form)
    real_of_acc: tuple = None
    negated: np.ndarray = None
    const_channels: int = 0
    mem_style: str = None           # "block", "lut"; None = auto
    kind = "VVAU"

    # -- geometry ------------------------------------------------------------------------
    @property
    def k(self) -> int:
        return int(self.kernel[0] * self.kernel[1])

    @property
    def cin(self) -> int:
        """Input channels per group."""
        return self.weights.shape[1] // self.k

    @property
    def cout(self) -> int:
        """Output channels per group."""
        return self.weights.shape[0] // self.groups

    @property
    def in_word(self) -> int:
        """Elements per input word: SIMD kernel positions of PE groups of CIN channels."""
        return self.simd * self.pe * self.cin

    @property
    def out_word(self) -> int:
        return self.pe * self.cout

    # -- golden execution ----------------------------------------------------------------
    def group_inputs(self, x: np.ndarray) -> np.ndarray:
        """(R, K * C_in) in depthwise window order -> (G, R, K * CIN) per group, columns
        k * CIN + ci (the weight columns)."""
        r = x.shape[0]
        gf = self.groups // self.pe
        v = x.reshape(r, gf, self.k, self.pe, self.cin).transpose(1, 3, 0, 2, 4)
        return v.reshape(self.groups, r, self.k * self.cin)

    def accumulate(self, x) -> np.ndarray:
        x = unpacked(x)
        lead = x.shape[:-1]
        xg = self.group_inputs(x.reshape(-1, x.shape[-1]).astype(np.int64))
        w = np.asarray(self.weights, np.int64).reshape(self.groups, self.cout, self.mw)
        bound = float(np.abs(xg).max(initial=0)) * float(np.abs(w).sum(-1).max(initial=0))
        ft = np.float64 if bound < 2.0 ** 53 else None
        if ft is not None:      # exact: every partial sum is an integer below 2**53
            acc = np.matmul(xg.astype(ft), w.transpose(0, 2, 1).astype(ft))
        else:
            acc = np.matmul(xg, w.transpose(0, 2, 1))
        acc = np.rint(acc).astype(np.int64)                 # (G, R, COUT)
        if self.binary:
            acc = (acc + self.mw) // 2                      # popcount of XNOR
        return acc.transpose(1, 0, 2).reshape(lead + (self.mh,))

    def execute(self, x):
        acc = self.accumulate(x)
        if self.thresholds is None:
            return acc
        return apply_thresholds(acc, self.thresholds, self.odt)

    def describe(self) -> dict:
        return {
            "groups": self.groups, "CIN": self.cin, "COUT": self.cout,
            "kernel": list(self.kernel), "wdt": str(self.wdt),
            "mode": "xnor-popcount" if self.binary else "multiply",
            "accdt": str(self.accdt),
            "thresholds": 0 if self.thresholds is None else self.thresholds.shape[1],
            **({"tdt": str(self.tdt)} if self.thresholds is not None else {}),
            **({"flipped": int(self.negated.sum())} if self.negated is not None else {}),
            **({"const_channels": self.const_channels} if self.const_channels else {}),
        }

    def cycles(self) -> int:
        return self.pixels * (self.groups // self.pe) * (self.k // self.simd)

    def legal_pe(self) -> list[int]:
        return [p for p in range(1, self.groups + 1) if self.groups % p == 0]

    # -- memory images ---------------------------------------------------------------------
    def weight_tiles(self) -> np.ndarray:
        """(PE, G/PE * K/SIMD, COUT * SIMD * CIN): PE p, address gf * K/SIMD + kf holds, at
        element (j * SIMD + s) * CIN + ci, the weight of output channel (gf * PE + p) * COUT
        + j, column (kf * SIMD + s) * CIN + ci."""
        gf, kf = self.groups // self.pe, self.k // self.simd
        w = np.asarray(self.weights).reshape(gf, self.pe, self.cout, kf, self.simd, self.cin)
        return w.transpose(1, 0, 3, 2, 4, 5).reshape(self.pe, gf * kf,
                                                      self.cout * self.simd * self.cin)

    def threshold_tiles(self) -> np.ndarray:
        """(PE, G/PE, COUT * nT): PE p, address gf holds, at j * nT + t, threshold t of
        output channel (gf * PE + p) * COUT + j."""
        gf = self.groups // self.pe
        t = self.thresholds
        return t.reshape(gf, self.pe, self.cout * t.shape[1]).transpose(1, 0, 2)

    # -- resource model ------------------------------------------------------------------
    def acc_bounds(self) -> tuple[int, int, int]:
        """(lo, hi, max |x * w|) of the accumulator over every input of the datatype."""
        from ..passes.widths import mvau_acc_range
        lo, hi = mvau_acc_range(self.weights, self.idt, self.binary)
        xm = 1 if self.idt.is_bipolar else max(abs(self.idt.min), abs(self.idt.max))
        return int(lo.min()), int(hi.max()), xm * int(np.abs(self.weights).max(initial=1))

    def rtl_tree(self) -> tuple[int, list[tuple[int, int]]]:
        """(lane product width, registered adder-tree levels) of templates/rtl/vvau.v.j2:
        each output channel sums its SIMD * CIN lane products pairwise (bnncc.layers.tree)."""
        from .tree import adder_tree, lane_range
        lanes = self.simd * self.cin
        if self.binary:
            return adder_tree(lanes, True)
        w = np.asarray(self.weights, np.int64)
        xlo, xhi = (-1, 1) if self.idt.is_bipolar else (self.idt.min, self.idt.max)
        plo, phi = lane_range(xlo, xhi, int(w.min(initial=0)), int(w.max(initial=0)))
        return adder_tree(lanes, False, plo, phi, xlo, xhi)

    def rtl_widths(self) -> tuple[int, int]:
        """(DW, ACCW): the tree's last level (the per-word partial sum) and the
        accumulator widths, as the RTL sizes them (bnncc.backends.rtl)."""
        from .cost import sbits
        lo, hi, _ = self.acc_bounds()
        dw = self.rtl_tree()[1][-1][1]
        accw = max(sbits(lo - 1, hi + 1), dw + 1, self.odt.bits + 1)
        return dw, accw

    def pipeline_ff(self) -> int:
        """Registers of the adder tree below its last level: output channels per word x
        the level widths."""
        return self.pe * self.cout * sum(n * w for n, w in self.rtl_tree()[1][:-1])

    def pipeline_stages(self) -> int:
        """Register stages from the issue to the output FIFO: weights / input read, the
        adder-tree levels, the accumulator, the threshold compare (if any)."""
        return 1 + len(self.rtl_tree()[1]) + 1 + (0 if self.thresholds is None else 1)

    def out_fifo_depth(self) -> int:
        """Output FIFO (credits): every result in flight from issue to pop, plus margin."""
        return self.pipeline_stages() + 4

    def pipeline_latency(self) -> int:
        """Register stages from a result's last input word to the FIFO's read port."""
        return self.pipeline_stages() + 1

    def default_mem_style(self) -> str:
        return "block" if self.weights.size * self.wdt.bits >= 16384 else "lut"

    def features(self, style: str | None = None) -> tuple[list, list]:
        """Structural LUT and FF counts of templates/rtl/vvau.v.j2, few enough for the
        handful of calibration points to pin down. LUT: XNOR-popcount lanes, multiplier /
        add-sub bits (none where a DSP48 takes the product), accumulator adders and
        threshold comparators, ROMs in logic, control and output FIFO. FF: the input,
        weight and partial-sum registers a DSP48 or block RAM does not absorb (Yosys packs
        them, and the accumulator, into DSP pipeline registers and the BRAM output
        register), accumulators and threshold registers, control."""
        from .cost import fifo_resources, ubits
        style = style or self.mem_style or self.default_mem_style()
        pe, gf = self.pe, self.groups // self.pe
        kf = self.k // self.simd
        lanes = pe * self.cout * self.cin * self.simd
        rows = pe * self.cout
        xb, wb, ob = self.idt.bits, self.wdt.bits, self.odt.bits
        dw, accw = self.rtl_widths()
        nt = 0 if self.thresholds is None else int(self.thresholds.shape[1])
        depth = gf * kf
        wbits = lanes * wb
        ctr = ubits(gf - 1) + ubits(kf - 1) + ubits(depth - 1)
        binary = 1 if self.binary else 0
        addsub = 0 if binary else int(self.wdt.is_bipolar or self.idt.is_bipolar)
        dsp = self.dsp_count() > 0
        xa = xb + (0 if self.idt.signed else 1)
        wa = wb + (0 if self.wdt.signed else 1)
        arith = addsub * lanes * (xb if self.wdt.is_bipolar else wb + 1) + \
            (1 - binary - addsub) * lanes * xa * wa * (not dsp)
        rom = wbits * (-(-depth // 64)) if (style == "lut" and depth > 1) else 0
        trom = rows * nt * accw * max(1.0, gf / 64) if (nt and gf > 1) else 0
        fifo = fifo_resources(rows * ob, self.out_fifo_depth())
        lut = [binary * lanes, arith, rows * accw * (1 + nt), rom + trom, fifo["LUT"] + ctr + 1]
        wreg = wbits * (style == "lut" and depth > 1)
        ff = [(self.simd * pe * self.cin * xb + wreg + rows * dw) * (not dsp),
              rows * accw * (not dsp) + rows * nt * accw * (gf > 1), ctr * 3 + fifo["FF"] + 9,
              # structural, one FF per bit: the adder-tree levels below the last and the
              # registered threshold compares
              self.pipeline_ff() + rows * nt]
        return lut, ff

    def weight_words(self) -> np.ndarray:
        """(G/PE * K/SIMD, PE * COUT * SIMD * CIN) encoded weights, one ROM word per row
        (field r * SIMD * CIN + s * CIN + ci lowest first), as the RTL stores them."""
        from ..streams import encode
        tiles = encode(self.weight_tiles(), self.wdt)          # (PE, depth, COUT*SIMD*CIN)
        return tiles.transpose(1, 0, 2).reshape(tiles.shape[1], -1)

    def weight_image(self) -> np.ndarray:
        """(ROM words, word bits) 0/1 bits of the weight ROM."""
        words = self.weight_words().astype(np.int64)
        bits = (words[:, :, None] >> np.arange(self.wdt.bits)) & 1
        return bits.reshape(words.shape[0], -1).astype(np.uint8)

    def live_weight_bits(self) -> int:
        """Bit columns of the weight ROM that are not the same in every word. Yosys drops
        the constant ones before it maps the ROM to block RAM, which matters for shallow
        ROMs (a few words: PE close to G, K = 1): a 4 x 40 ROM with 8 constant columns
        fits one RAMB18 (36 bits wide), not two."""
        key = (id(self.weights), self.pe, self.simd)
        cache = self.__dict__.get("_live_cache")
        if cache is None or cache[0] != key:
            img = self.weight_image()
            cache = (key, int((img != img[:1]).any(0).sum()) if img.size else 0)
            self.__dict__["_live_cache"] = cache
        return cache[1]

    def resources(self, mem_style: str | None = None) -> dict:
        """LUT / FF / BRAM18 / DSP of templates/rtl/vvau.v.j2 at the current PE."""
        from .cost import bram18, coef, res
        style = mem_style or self.mem_style or self.default_mem_style()
        fl, ff = self.features(style)
        kl, kf = coef("VVAU")
        kf = kf + [1.0] * (len(ff) - len(kf))    # structural features not (yet) fitted
        depth = (self.groups // self.pe) * (self.k // self.simd)
        return res(LUT=sum(c * f for c, f in zip(kl, fl)), FF=sum(c * f for c, f in zip(kf, ff)),
                   DSP=self.dsp_count(),
                   BRAM18=bram18(self.live_weight_bits(), depth) if style == "block" else 0)

    def dsp_count(self) -> int:
        """Multiplies Yosys maps to DSP48: a product at least 9 bits wide, where the
        product is computed at the partial-sum width DW (the RTL's `d + xv * wv`)."""
        if self.binary or self.wdt.is_bipolar or self.idt.is_bipolar:
            return 0
        xa = self.idt.bits + (0 if self.idt.signed else 1)
        wa = self.wdt.bits + (0 if self.wdt.signed else 1)
        dw = self.rtl_widths()[0]
        return self.pe * self.cout * self.cin if xa >= 2 and wa >= 2 and min(xa + wa, dw) >= 9 \
            else 0

    def held_words(self) -> int:
        """Input words the unit can hold: the window of the result being read, plus the
        results that fill its pipeline and output FIFO (K/SIMD words each)."""
        kf = self.k // self.simd
        return kf + 2 + kf * self.out_fifo_depth()

    def fill_drain(self) -> tuple[int, int]:
        """(input words before the first output word, cycles after the last input word):
        one window of a channel group (bnncc.estimate.first_frame)."""
        return self.k // self.simd, 0
