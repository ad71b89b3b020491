"""Matrix-vector-activation unit: fully connected layers and (after sliding-window
lowering) convolutions.

Weights are an MH x MW integer matrix whose columns follow the input stream order.
Binary mode (bipolar inputs and weights) computes the popcount of XNOR(x, w), which
equals (dot + MW) / 2, so the accumulator range is [0, MW] and thresholds are on the
popcount. Otherwise the accumulator is the integer dot product. With thresholds the unit
emits activations, without it emits raw accumulators (the last layer). A convolution over
zero-padded bipolar input carries a `border` (bnncc/layers/border.py): each output's
accumulation starts from its border class's correction, which makes it exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datatypes import DataType
from ..ir import Layer
from .bits import Packed, pack_bits, unpacked
from .border import Border
from .matrix import WeightMatrix
from .thresholding import apply_thresholds


def xnor_popcount(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """#positions where bipolar x (R, K) equals bipolar w (M, K) -> (R, M), bit-packed.
    x may already be packed words (R, ceil(K/64)); K is taken from w."""
    k = w.shape[-1]
    xp = x if x.dtype == np.uint64 else pack_bits(x)
    wp = pack_bits(w)
    out = np.empty((xp.shape[0], wp.shape[0]), dtype=np.int64)
    chunk = max(1, (1 << 22) // max(1, wp.shape[0] * wp.shape[1]))
    for i in range(0, xp.shape[0], chunk):
        diff = np.bitwise_count(xp[i:i + chunk, None, :] ^ wp[None, :, :]).sum(-1, dtype=np.int64)
        out[i:i + chunk] = k - diff   # padding bits are 0 in both, never differ
    return out


def _fits16(a: np.ndarray) -> bool:
    return a.size == 0 or (int(a.min()) >= -(1 << 15) and int(a.max()) < (1 << 15))


def int_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact integer x (R, K) @ w.T (M, K). Uses float BLAS when no partial sum can leave
    the float's exact integer range (2**24, 2**53); the result then holds exact integers
    in a float array, which compares exactly against integer thresholds."""
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(w).sum(1).max(initial=0))
    if bound < 2.0 ** 31 and _fits16(x) and _fits16(w):
        from ..kernels import int_gemm_c
        fast = int_gemm_c(x, np.ascontiguousarray(w.T, dtype=np.int16))
        if fast is not None:
            return fast
    if bound < 2.0 ** 24:
        return x.astype(np.float32) @ w.T.astype(np.float32)
    if bound < 2.0 ** 53:
        return x.astype(np.float64) @ w.T.astype(np.float64)
    return x.astype(np.int64) @ w.T.astype(np.int64)


@dataclass
class MVAU(WeightMatrix, Layer):
    weights: np.ndarray = None      # (MH, MW) int64 values (bipolar stored as -1/+1)
    wdt: DataType = None
    binary: bool = False            # XNOR-popcount mode
    accdt: DataType = None          # exact accumulator range
    thresholds: np.ndarray = None   # (MH, nT) int64 or None: raw accumulator out
    tdt: DataType = None
    pe: int = 1
    simd: int = 1
    # provenance for checks and reports: real value of the matmul output as a function
    # of the accumulator of the *original* weights, (mul, add) per channel, and which
    # channels threshold folding flipped (their weights are negated / bits inverted)
    real_of_acc: tuple = None
    negated: np.ndarray = None
    const_channels: int = 0
    mem_style: str = None           # weight memory: "block" (BRAM), "lut", "uram"; None = auto
    border: Border = None           # zero padding over bipolar input: per-class corrections
    kind = "MVAU"

    def accumulate(self, x) -> np.ndarray:
        lead = x.shape[:-1]
        if self.binary:
            flat = x.words.reshape(-1, x.words.shape[-1]) if isinstance(x, Packed) \
                else x.reshape(-1, self.mw)
            acc = xnor_popcount(flat, self.weights)
        else:
            acc = int_matmul(unpacked(x).reshape(-1, self.mw), self.weights)
        acc = acc.reshape(lead + (self.mh,))
        return acc if self.border is None else self._corrected(acc)

    def corrections(self) -> np.ndarray:
        """(NCLS, MH) accumulator start values of the border classes (None: no border),
        derived from the current weights (so flipped channels get negated ones)."""
        if self.border is None:
            return None
        cache = self.__dict__.get("_corr_cache")
        if cache is None or cache[0] is not self.weights:
            cache = (self.weights, self.border.corrections(self.weights, self.binary))
            self.__dict__["_corr_cache"] = cache
        return cache[1]

    def _corrected(self, acc: np.ndarray) -> np.ndarray:
        """acc (N, OH, OW, MH) of the -1-padded window -> the zero-padded accumulator."""
        per_pixel = self.corrections()[self.border.pixel_classes()]    # (OH*OW, MH)
        shape = acc.shape
        acc = acc.reshape(-1, per_pixel.shape[0], self.mh)
        return (acc + per_pixel.astype(acc.dtype)).reshape(shape)

    def execute(self, x):
        if self.binary:
            fast = self._execute_fast(x)
            if fast is not None:
                return fast
        acc = self.accumulate(x)
        if self.thresholds is None:
            return acc.astype(np.int64)
        out = apply_thresholds(acc, self.thresholds, self.odt)
        if self.odt.is_bipolar and self.mh % 64 == 0:
            return Packed(pack_bits(out), self.mh)
        return out

    def _packed_weights(self) -> np.ndarray:
        """Packed, transposed weights, recomputed only if the weights object changes."""
        cache = self.__dict__.get("_wt_cache")
        if cache is None or cache[0] is not self.weights:
            cache = (self.weights, np.ascontiguousarray(pack_bits(self.weights).T))
            self.__dict__["_wt_cache"] = cache
        return cache[1]

    def _execute_fast(self, x):
        """The same XNOR-popcount through the compiled kernel (bnncc/kernels.py)."""
        from ..kernels import xnor_popcount_c, xnor_popcount_sign_c
        lead = x.shape[:-1]
        xp = x.words if isinstance(x, Packed) else pack_bits(x)
        xp = xp.reshape(-1, xp.shape[-1])
        wt = self._packed_weights()
        if self.thresholds is not None and self.odt.is_bipolar and self.border is None:
            words = xnor_popcount_sign_c(xp, wt, self.thresholds[:, 0], self.mw)
            if words is None:
                return None
            out = Packed(words.reshape(lead + (words.shape[-1],)), self.mh)
            return out if self.mh % 64 == 0 else out.unpack()
        acc = xnor_popcount_c(xp, wt, self.mw)
        if acc is None:
            return None
        acc = acc.reshape(lead + (self.mh,))
        if self.border is not None:
            acc = self._corrected(acc)
        return acc if self.thresholds is None else apply_thresholds(acc, self.thresholds, self.odt)

    def describe(self) -> dict:
        return {
            "MH": self.mh, "MW": self.mw, "wdt": str(self.wdt),
            "mode": "xnor-popcount" if self.binary else "multiply",
            "accdt": str(self.accdt),
            "thresholds": 0 if self.thresholds is None else self.thresholds.shape[1],
            **({"tdt": str(self.tdt)} if self.thresholds is not None else {}),
            **({"flipped": int(self.negated.sum())} if self.negated is not None else {}),
            **({"const_channels": self.const_channels} if self.const_channels else {}),
            **(self.border.describe() if self.border is not None else {}),
            **({"removed": self.__dict__["removed"]} if self.__dict__.get("removed") else {}),
        }

    def cycles(self) -> int:
        return (self.mh // self.pe) * (self.mw // self.simd) * self.pixels

    def weight_tiles(self) -> np.ndarray:
        """(PE, MH/PE * MW/SIMD, SIMD) weight values as each PE reads them: PE p owns rows
        nf * PE + p; address nf * (MW/SIMD) + sf holds columns sf*SIMD .. sf*SIMD+SIMD-1."""
        nf, sf = self.mh // self.pe, self.mw // self.simd
        w = self.weights.reshape(nf, self.pe, sf, self.simd)
        return w.transpose(1, 0, 2, 3).reshape(self.pe, nf * sf, self.simd)

    def threshold_tiles(self) -> np.ndarray:
        """(PE, MH/PE, nT) thresholds: PE p, address nf holds row nf * PE + p."""
        nf = self.mh // self.pe
        t = self.thresholds
        return t.reshape(nf, self.pe, t.shape[1]).transpose(1, 0, 2)

    # ------------------------------------------------------------------ resource model
    def rtl_widths(self) -> tuple[int, int]:
        """(DW, ACCW): SIMD partial-sum and accumulator widths of the RTL (as the RTL
        backend sizes them from the weights); cached per weights object and SIMD."""
        key = (id(self.weights), self.simd)
        cache = self.__dict__.get("_width_cache")
        if cache is not None and cache[0] == key:
            return cache[1]
        from .cost import sbits, ubits
        if self.binary:
            dw = ubits(self.simd) + 1
            lo, hi = 0, self.mw
        else:
            rng = self.__dict__.get("_acc_range")
            if rng is None or rng[0] is not self.weights:
                w = np.asarray(self.weights, np.int64)
                xlo, xhi = (-1, 1) if self.idt.is_bipolar else (self.idt.min, self.idt.max)
                lo = int(np.minimum(xlo * w, xhi * w).sum(1).min())
                hi = int(np.maximum(xlo * w, xhi * w).sum(1).max())
                wmax = int(np.abs(w).max(initial=1))
                rng = (self.weights, lo, hi, max(abs(xlo), abs(xhi)) * wmax)
                self.__dict__["_acc_range"] = rng
            _, lo, hi, m = rng
            dw = sbits(-self.simd * m, self.simd * m)
        accw = max(sbits(lo - 1, hi + 1), dw + 1, self.odt.bits + 1)
        self.__dict__["_width_cache"] = (key, (dw, accw))
        return dw, accw

    def rtl_tree(self) -> tuple[int, list[tuple[int, int]]]:
        """(lane product width, [(sums per PE, bits) of each registered adder-tree level])
        of templates/rtl/mvau.v.j2: level k sums pairs of level k-1, so every level is
        one adder deep whatever SIMD is. Widths hold the exact range of the lanes summed;
        at least one level, even for SIMD = 1. Binary (XNOR) lanes use the carry-save
        tree instead: one (1, bits per PE) per register stage, the last the DW-bit count."""
        key = (id(self.weights), self.simd)
        cache = self.__dict__.get("_tree_cache")
        if cache is not None and cache[0] == key:
            return cache[1]
        from .cost import sbits, ubits
        if self.binary:        # carry-save tree (bnncc/layers/popcount.py): (1, bits) per stage
            from .popcount import plan
            dw = ubits(self.simd)
            out = (1, [(1, b) for _, b in plan(self.simd, dw)["stages"]] + [(1, dw)])
            self.__dict__["_tree_cache"] = (key, out)
            return out
        else:
            w = np.asarray(self.weights, np.int64)
            xlo, xhi = (-1, 1) if self.idt.is_bipolar else (self.idt.min, self.idt.max)
            wlo, whi = int(w.min(initial=0)), int(w.max(initial=0))
            corners = [xlo * wlo, xlo * whi, xhi * wlo, xhi * whi, 0]
            plo, phi = min(corners), max(corners)
            lw = max(sbits(plo, phi), sbits(xlo, xhi))
            width = lambda m: max(lw, sbits(m * plo, m * phi))
        levels, n, m = [], self.simd, 1
        while True:
            n, m = -(-n // 2), min(2 * m, self.simd)
            levels.append((n, width(m)))
            if n == 1:
                break
        out = (lw, levels)
        self.__dict__["_tree_cache"] = (key, out)
        return out

    def pipeline_ff(self) -> int:
        """Registers of the adder tree above its last level (which is the dot register
        the older single-stage datapath also had): PE x sum of level widths."""
        _, levels = self.rtl_tree()
        return self.pe * sum(n * w for n, w in levels[:-1])

    def pipeline_stages(self) -> int:
        """Register stages from the issue to the output FIFO: weights / input read, the
        adder-tree levels, the accumulator, the threshold compare (if any)."""
        nt = 0 if self.thresholds is None else int(self.thresholds.shape[1])
        return 1 + len(self.rtl_tree()[1]) + 1 + (1 if nt else 0)

    def default_mem_style(self) -> str:
        return "block" if self.mh * self.mw * self.wdt.bits >= 16384 else "lut"

    def resources(self, mem_style: str | None = None) -> dict:
        """LUT / FF / BRAM18 / URAM / DSP of templates/rtl/mvau.v.j2 at the current PE,
        SIMD and the given weight memory style ("block", "lut", "uram"; default: the
        layer's mem_style). Structure from the RTL, coefficients fitted to Yosys."""
        style = mem_style or self.mem_style or self.default_mem_style()
        return self.resources_by_style([style])[style]

    def features(self, style: str) -> tuple[list, list]:
        """(LUT features, FF features) of the RTL at the current folding: structural
        quantities whose weights (MVAU_LUT, MVAU_FF) were fitted to Yosys."""
        from .cost import fifo_resources, lutram_sp, mux_luts, ubits
        from .popcount import full_adders
        pe, simd = self.pe, self.simd
        nf, sf = self.mh // pe, self.mw // simd
        xb, wb, ob = self.idt.bits, self.wdt.bits, self.odt.bits
        dw, accw = self.rtl_widths()
        nt = 0 if self.thresholds is None else int(self.thresholds.shape[1])
        lanes, iw, depth = pe * simd, simd * xb, nf * sf
        wbits = lanes * wb
        ctr = ubits(nf - 1) + ubits(sf - 1) + ubits(depth - 1)
        binary = 1 if self.binary else 0
        # add/sub lanes only where the weights are bipolar (templates/rtl/mvau.v.j2 w_mode)
        addsub = 0 if self.binary else int(self.wdt.is_bipolar)
        mul = 1 - binary - addsub
        var = depth > 1                       # weights change from cycle to cycle
        lut_rom = style == "lut" and var
        wrom_small = wbits * (depth <= 64) * lut_rom
        # a ROM in logic deeper than 64 words: a LUT6 per bit per 64 words and the mux tree
        # that selects among them (cost.mux_luts)
        blocks = -(-depth // 64)
        wrom_big = wbits * (blocks + mux_luts(blocks)) * (depth > 64) * lut_rom
        chunks = -(-depth // 512)
        bram_mux = wbits * chunks * (style != "lut" and chunks > 1)
        tb = -(-nf // 64)
        trom = pe * nt * accw * (tb + mux_luts(tb)) if (nt and nf > 1) else 0
        ibuf = lutram_sp(iw, sf) if nf > 1 else 0
        fifo = fifo_resources(pe * ob, 8)     # templates/rtl/mvau.v.j2 FD
        elem = xb if self.wdt.is_bipolar else wb + 1
        wrom_small = wrom_small * min(1.0, ubits(depth - 1) / 6)
        dsp = self.dsp_count() > 0
        # binary: XNOR lanes and the carry-save popcount (bnncc/layers/popcount.py), its
        # full adders per PE, then the DW-bit carry-propagate add (pe * dw)
        fas = pe * full_adders(simd, ubits(simd)) if self.binary else 0
        # the integer adder tree; on DSP48s its first level is the DSP's post-adder, so the
        # tree of a DSP-mapped layer is its own term (last)
        tree = (1 - binary) * lanes * dw
        lut = [binary * lanes * var, fas, pe * dw,
               addsub * lanes * elem, tree * (not dsp),
               mul * lanes * (np.prod(self.mul_widths()) * (not dsp) + 4 * dsp),
               pe * accw, pe * nt * accw,
               wrom_small, wrom_big, bram_mux, trom, ibuf + fifo["LUT"] + iw * (nf > 1) + ctr,
               1.0, tree * dsp]
        levels = self.rtl_tree()[1]
        absorbed = pe * levels[0][0] * levels[0][1] if dsp and len(levels) > 1 else 0
        # Yosys absorbs the registers after the weight / threshold ROMs into the read
        # ports (BRAM output register, or an address register for a ROM in logic)
        ff = [iw * (2 if nf > 1 else 1), pe * (dw - binary), pe * accw,
              ctr * 3 + fifo["FF"] + 9, wbits * lut_rom * (4 < depth <= 64),
              pe * nt * accw * (nf > 1),
              # structural, not fitted: the adder-tree pipeline registers (levels x width)
              # and the registered threshold compares, one FF per bit; a DSP48 holds the
              # first level's sums in its P register
              self.pipeline_ff() - absorbed + pe * nt]
        return lut, ff

    def lut_floor(self, style: str) -> int:
        """LUTs the RTL cannot do with less, whatever Yosys does: a weight ROM in logic of
        D words x W bits is W x ceil(D / 64) LUT6 (one per bit per 64 words), the
        threshold ROM (always logic) likewise, the input buffer its LUT RAM cells."""
        from .cost import lutram_sp
        nf, sf = self.mh // self.pe, self.mw // self.simd
        depth = nf * sf
        wbits = self.pe * self.simd * self.wdt.bits
        rom = wbits * -(-depth // 64) if style == "lut" and depth > 1 else 0
        nt = 0 if self.thresholds is None else int(self.thresholds.shape[1])
        trom = self.pe * nt * self.rtl_widths()[1] * -(-nf // 64) if nt and nf > 1 else 0
        ibuf = lutram_sp(self.simd * self.idt.bits, sf) if nf > 1 else 0
        return int(rom + trom + ibuf)

    def resources_by_style(self, styles) -> dict:
        from .cost import bram18, res, uram
        nf, sf = self.mh // self.pe, self.mw // self.simd
        wbits = self.pe * self.simd * self.wdt.bits
        dsp = self.dsp_count()
        out = {}
        for st in styles:
            fl, ff = self.features(st)
            kl, kf = (MVAU_LUT_BIN, MVAU_FF_BIN) if self.binary else (MVAU_LUT_INT, MVAU_FF_INT)
            lut = sum(c * f for c, f in zip(kl, fl))
            ffs = sum(c * f for c, f in zip(kf, ff))
            if self.border is not None:
                bl, bf = self.border_cost()
                lut, ffs = lut + bl, ffs + bf
            out[st] = res(LUT=max(lut, self.lut_floor(st)), FF=ffs, DSP=dsp,
                          BRAM18=bram18(wbits, nf * sf) if st == "block" else 0,
                          URAM=uram(wbits, nf * sf) if st == "uram" else 0)
        return out

    def correction_bits(self) -> int:
        """Signed width of the border corrections (0 without a border)."""
        if self.border is None:
            return 0
        from .cost import sbits
        c = self.corrections()
        return sbits(int(c.min()), int(c.max()))

    def border_cost(self) -> tuple[float, float]:
        """(LUT, FF) the border adds to templates/rtl/mvau.v.j2: the correction ROM
        (NCLS*NF words of PE*CW bits, in LUTs: one LUT6 per 64 x 1 bits, plus a mux level
        per further 64 words), the output-pixel counters and their class decode, the
        correction address and the registered ROM output. Structural counts, not fitted:
        the accumulator's first-input mux already exists (it selects 0 without a border)."""
        from .cost import ubits
        oh, ow = self.border.out_hw
        depth = self.border.n_classes * (self.mh // self.pe)
        bits = self.pe * self.correction_bits()
        rom = bits * -(-depth // 64) * (1.0 + 0.5 * (depth > 64))
        ctr = ubits(oh - 1) + ubits(ow - 1)
        addr = ubits(depth - 1)
        return rom + 2 * ctr + addr, ctr + addr + bits

    def dsp_count(self) -> int:
        """Multiplies Yosys maps to DSP48: none for bipolar-weight (add/sub) lanes; a
        bipolar input times integer weights is a multiply in the RTL (xv = +-1, 2 bits)."""
        if self.binary or self.wdt.is_bipolar:
            return 0
        xa, wa = self.mul_widths()
        # Yosys maps a multiply to a DSP48 when its product is at least 9 bits wide
        return self.pe * self.simd if xa >= 2 and wa >= 2 and xa + wa >= 9 else 0

    def mul_widths(self) -> tuple[int, int]:
        """Signed operand widths of the RTL's multiplies after Yosys drops redundant
        sign bits (an unsigned n-bit value needs n + 1)."""
        xa = 2 if self.idt.is_bipolar else self.idt.bits + (0 if self.idt.signed else 1)
        wa = 2 if self.wdt.is_bipolar else self.wdt.bits + (0 if self.wdt.signed else 1)
        return xa, wa

    def out_fifo_depth(self) -> int:
        """Output FIFO (credits) of templates/rtl/mvau.v.j2: every result in flight from
        issue to pop at one result per cycle, plus margin."""
        return self.pipeline_stages() + 4

    def held_words(self) -> int:
        """Input words the unit can hold: the vector being read, plus the pixels whose
        results fill its pipeline and output FIFO."""
        sf, nf = self.mw // self.simd, self.mh // self.pe
        return sf + 2 + sf * -(-self.out_fifo_depth() // nf)

    def pipeline_latency(self) -> int:
        """Register stages a result passes from its last input word to the output FIFO's
        read port: the pipeline stages and the FIFO write."""
        return self.pipeline_stages() + 1

    def fill_drain(self) -> tuple[int, int]:
        """(input words read before the first output word, cycles of output after the
        last input word): a whole input vector, then the other neuron folds of the last."""
        sf = self.mw // self.simd
        return sf, (self.mh // self.pe - 1) * sf


from .cost import coef  # noqa: E402

MVAU_LUT_BIN, MVAU_FF_BIN = coef("MVAU_BIN")
MVAU_LUT_INT, MVAU_FF_INT = coef("MVAU_INT")
