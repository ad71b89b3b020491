"""Layers that join or split streams: residual adds, channel concatenation, and the
duplication of a stream that feeds two consumers."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..datatypes import DataType
from ..ir import Layer
from .bits import unpacked


def naf(k: int) -> list[tuple[int, int]]:
    """Non-adjacent form of k: (sign, shift) terms with k = sum(sign << shift), the fewest
    nonzero digits, so a constant multiply becomes that many shifted adds (no DSP)."""
    out, shift = [], 0
    while k:
        if k & 1:
            d = 2 - (k & 3)          # +1 or -1
            out.append((d, shift))
            k -= d
        k >>= 1
        shift += 1
    return out


@dataclass
class AddStreams(Layer):
    """out = ka * a + kb * b, elementwise. ka / kb is the exact ratio of the two inputs'
    real scales, so the sum is exact in integers (a residual add). With per-channel scales
    ka and kb are tuples, one factor per channel (the last axis)."""

    idt_b: DataType = None
    ka: int | tuple = 1
    kb: int | tuple = 1
    inputs: list = field(default_factory=list)   # [producer of a, producer of b]
    pe: int = 1
    # per operand, which output channels it still streams (None: all): a channel whose
    # operand was a constant folded into the add (bnncc.passes.prune) reads 0 there
    live: tuple = (None, None)
    kind = "AddStreams"

    @property
    def in_dtypes(self) -> list:
        return [self.idt, self.idt_b]

    @property
    def in_shapes(self) -> list:
        return [tuple(self.in_shape[:-1]) + (self.operand_channels(i),) for i in (0, 1)]

    def live_mask(self, i: int) -> np.ndarray:
        c = int(self.in_shape[-1])
        m = self.live[i]
        return np.ones(c, bool) if m is None else np.asarray(m, bool)

    @property
    def masked(self) -> bool:
        return any(m is not None and not all(m) for m in self.live)

    def operand_channels(self, i: int) -> int:
        return int(self.live_mask(i).sum())

    def operand_channel(self, i: int, c: int) -> int | None:
        """Output channel c -> its channel in operand i's stream (None: not streamed)."""
        m = self.live_mask(i)
        return int(m[:c].sum()) if m[c] else None

    def output_channel(self, i: int, j: int) -> int:
        """Channel j of operand i's stream -> the output channel it adds into."""
        return int(np.flatnonzero(self.live_mask(i))[j])

    def pe_channels(self) -> int:
        """PE must divide this: the channels, and every place where an operand starts or
        stops streaming (a word is read from an operand whole or not at all)."""
        g = int(self.in_shape[-1])
        for i in (0, 1):
            m = self.live_mask(i)
            for c in np.flatnonzero(m[1:] != m[:-1]) + 1:
                g = math.gcd(g, int(c))
        return g

    def live_words(self, i: int) -> list[bool]:
        """Per channel word (PE channels), whether operand i supplies it."""
        m = self.live_mask(i)
        return [bool(m[w * self.pe]) for w in range(len(m) // self.pe)]

    @property
    def per_channel(self) -> bool:
        return isinstance(self.ka, (tuple, list))

    def factors(self) -> tuple[list, list]:
        """(ka, kb) per channel (the per-tensor pair repeated)."""
        c = int(self.in_shape[-1])
        return ((list(self.ka), list(self.kb)) if self.per_channel
                else ([self.ka] * c, [self.kb] * c))

    def execute(self, a, b) -> np.ndarray:
        a, b = unpacked(a).astype(np.int64), unpacked(b).astype(np.int64)
        if self.masked:                 # operands back to every channel, 0 where unread
            full = []
            for i, x in enumerate((a, b)):
                y = np.zeros(x.shape[:-1] + (int(self.in_shape[-1]),), np.int64)
                y[..., self.live_mask(i)] = x
                full.append(y)
            a, b = full
        if self.per_channel:     # Python ints: ka * a may pass 2^63 before the sum fits
            ka, kb = (np.array(k, dtype=object) for k in (self.ka, self.kb))
            return (ka * a.astype(object) + kb * b.astype(object)).astype(self.odt.np_dtype)
        return (self.ka * a + self.kb * b).astype(self.odt.np_dtype)

    def describe(self) -> dict:
        ka, kb = (list(k) if self.per_channel else k for k in (self.ka, self.kb))
        live = {"operand_channels": [self.operand_channels(i) for i in (0, 1)],
                "pe_divides": self.pe_channels()} if self.masked else {}
        return {"ka": ka, "kb": kb, "idt_b": str(self.idt_b), **live, **_removed(self)}

    def cycles(self) -> int:
        return int(np.prod(self.in_shape)) // self.pe

    def sum_width(self) -> int:
        """Bits of the RTL's modular arithmetic: the sum is exact modulo 2^SW, SW >= output."""
        return max(self.odt.bits, self.idt.bits + 1, self.idt_b.bits + 1)

    # ------------------------------------------------------------------ resource model
    def features(self, style=None) -> tuple[list, list]:
        """templates/rtl/addstreams.v.j2: per lane, the shifted adds of ka * a + kb * b
        (+1/-1 muxes for bipolar inputs), an output FIFO of 2 words. Per-channel factors:
        when PE covers the channels each lane keeps its constants (shifted adds, the
        widest lane counted); otherwise each lane multiplies by factors read from a ROM
        indexed by the channel-word counter -- an SW x factor-bits array multiplier per
        operand (or a DSP48), the ROM in logic (a LUT6 per factor bit per 64 words), the
        counter in the FF term; the 2-word output FIFO as Yosys stores it."""
        from .cost import fifo_storage, ubits
        sw = self.sum_width()
        bip = self.idt.is_bipolar + self.idt_b.is_bipolar
        regs = 4
        terms, mul, rom = 1, 0, 0.0
        if self.masked and not (self.per_channel and int(self.in_shape[-1]) > self.pe):
            regs += ubits(int(self.in_shape[-1]) // self.pe - 1)   # the channel-word counter
        if not self.per_channel:
            terms = len(naf(self.ka)) + len(naf(self.kb))
        else:
            ka, kb = self.factors()
            cf = int(self.in_shape[-1]) // self.pe
            if cf == 1:
                terms = max(len(naf(x)) + len(naf(y)) for x, y in zip(ka, kb))
            else:     # two SW x factor-bits multiplies per lane: LUTs unless on DSP48s
                kbits = [min(sw, ubits(max(abs(v) for v in k)) + 1) for k in (ka, kb)]
                mul = self.pe * sw * sum(kbits) * (self.dsp_count() == 0)
                rom = self.pe * sum(kbits) * -(-cf // 64)     # a LUT6 per bit per 64 words
                regs += ubits(cf - 1)
        slut, sff = fifo_storage(self.pe * self.odt.bits, 2)
        lut = [self.pe * sw * (terms - 1), self.pe * sw * bip, 1.0, slut + rom, mul]
        return lut, [regs, 1.0, sff]

    def dsp_count(self) -> int:
        """The channel-word ROM path multiplies SW-bit factors by SW-bit operands: Yosys
        maps each product of at least 9 bits to a DSP48, two per lane."""
        if not self.per_channel or int(self.in_shape[-1]) // self.pe == 1:
            return 0
        return 2 * self.pe if self.sum_width() >= 9 else 0

    def resources(self, mem_style: str | None = None) -> dict:
        out = _linear(self.features(), ADD_LUT, ADD_FF)
        out["DSP"] = self.dsp_count()
        return out


@dataclass
class Concat(Layer):
    """Channel concatenation: each output pixel is the first input's channels, then the
    second's, ...; PE channels per word (PE divides every input's channel count)."""

    idts: tuple = ()                              # datatype of each input
    channels: tuple = ()                          # channels of each input
    inputs: list = field(default_factory=list)
    pe: int = 1
    kind = "Concat"

    @property
    def in_dtypes(self) -> list:
        return list(self.idts)

    @property
    def in_shapes(self) -> list[tuple]:
        return [tuple(self.in_shape[:-1]) + (c,) for c in self.channels]

    def held_words(self) -> int:
        return max(self.channels) // self.pe + 2

    def execute(self, *xs) -> np.ndarray:
        parts = [unpacked(x).astype(self.odt.np_dtype) for x in xs]
        return np.concatenate(parts, axis=-1)

    def describe(self) -> dict:
        return {"channels": list(self.channels), "idts": [str(t) for t in self.idts],
                **_removed(self)}

    def cycles(self) -> int:
        return int(np.prod(self.out_shape)) // self.pe

    # ------------------------------------------------------------------ resource model
    def features(self, style=None) -> tuple[list, list]:
        """templates/rtl/concat.v.j2: an n-way mux of output words (inputs widened to the
        output type), input / word counters, an output FIFO of 2 words."""
        from .cost import fifo_storage, mux_luts, ubits
        ob, n = self.odt.bits, len(self.channels)
        widen = sum(dt.is_bipolar or dt.bits < ob for dt in self.in_dtypes)
        regs = ubits(n - 1) + ubits(max(self.channels) // self.pe - 1) + 4
        slut, sff = fifo_storage(self.pe * ob, 2)
        lut = [self.pe * ob * mux_luts(n), self.pe * ob * widen, regs, 1.0, slut]
        return lut, [regs, 1.0, sff]

    def resources(self, mem_style: str | None = None) -> dict:
        return _linear(self.features(), CONCAT_LUT, CONCAT_FF)


@dataclass
class Duplicate(Layer):
    """Copies one stream to `n` consumers (inserted before hardware backends)."""

    n: int = 2
    pe: int = 1
    kind = "Duplicate"

    def execute(self, x):
        return x

    def describe(self) -> dict:
        return {"outputs": self.n}

    def cycles(self) -> int:
        return int(np.prod(self.in_shape)) // self.pe

    # ------------------------------------------------------------------ resource model
    def features(self, style=None) -> tuple[list, list]:
        """templates/rtl/duplicate.v.j2: one word register and a pending flag per output."""
        return [self.n, 1.0], [self.pe * self.idt.bits + self.n, 1.0]

    def resources(self, mem_style: str | None = None) -> dict:
        return _linear(self.features(), DUP_LUT, DUP_FF)


def _removed(layer) -> dict:
    """Channels bnncc.passes.prune removed through this join, by reason (if any)."""
    rec = layer.__dict__.get("removed")
    return {"removed": rec} if rec else {}


def _linear(features, lut_coef, ff_coef) -> dict:
    from .cost import res
    fl, ff = features
    return res(LUT=sum(c * f for c, f in zip(lut_coef, fl)),
               FF=sum(c * f for c, f in zip(ff_coef, ff)))


from .cost import coef  # noqa: E402

ADD_LUT, ADD_FF = coef("ADD")
CONCAT_LUT, CONCAT_FF = coef("CONCAT")
DUP_LUT, DUP_FF = coef("DUP")
