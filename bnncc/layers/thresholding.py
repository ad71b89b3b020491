"""Multi-threshold activation: out = base + step * #{j : x >= T[c, j]}.

This is how every quantizer after an integer accumulator is realized in hardware (FINN's
MultiThreshold): the compiler folds BatchNorm, scales and the quantizer into the integer
thresholds T (bnncc.passes.thresholds). A bipolar output is the count itself as one bit
(value -1 + 2 * count); other outputs are base + count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datatypes import DataType
from ..ir import Layer
from .bits import unpacked


def out_levels(odt: DataType) -> tuple[int, int]:
    """(base, step) such that an output value is base + step * count."""
    return (-1, 2) if odt.is_bipolar else (odt.min, 1)


def apply_thresholds(acc: np.ndarray, thresholds: np.ndarray, odt: DataType) -> np.ndarray:
    """acc (..., C) integers, thresholds (C, nT) -> output values (..., C).
    acc may be a float array holding exact integers (then thresholds are exact too,
    being within the accumulator range plus one)."""
    base, step = out_levels(odt)
    t = thresholds.astype(acc.dtype) if acc.dtype.kind == "f" else thresholds
    if t.shape[1] == 1:
        return (base + step * (acc >= t[:, 0]).astype(np.int8)).astype(odt.np_dtype)
    count = np.zeros(acc.shape, dtype=np.int16 if t.shape[1] < 1 << 15 else np.int64)
    for j in range(t.shape[1]):
        count += acc >= t[:, j]
    return (base + step * count.astype(np.int64)).astype(odt.np_dtype)


@dataclass
class Thresholding(Layer):
    """Standalone thresholding of a channels-last integer stream."""

    thresholds: np.ndarray = None       # (C, nT) int64, sorted along nT
    tdt: DataType = None                # threshold storage type
    negate: np.ndarray = None           # (C,) bool: compare -x (a decreasing channel)
    pe: int = 1
    kind = "Thresholding"

    @property
    def channels(self) -> int:
        return self.thresholds.shape[0]

    def execute(self, x) -> np.ndarray:
        x = unpacked(x)
        x = np.where(self.negate, -x, x) if self.negate is not None else x
        return apply_thresholds(x, self.thresholds, self.odt)

    def describe(self) -> dict:
        removed = self.__dict__.get("removed")   # set by bnncc.passes.prune
        return {"thresholds": self.thresholds.shape[1], "tdt": str(self.tdt),
                **({"removed": removed} if removed else {})}

    def threshold_tiles(self) -> np.ndarray:
        """(PE, C/PE, nT): PE p, address nf holds channel nf * PE + p."""
        nf = self.channels // self.pe
        t = self.thresholds
        return t.reshape(nf, self.pe, t.shape[1]).transpose(1, 0, 2)

    def cycles(self) -> int:
        pixels = int(np.prod(self.in_shape[:-1])) if len(self.in_shape) > 1 else 1
        return pixels * self.channels // self.pe

    # ------------------------------------------------------------------ resource model
    def rtl_tw(self) -> int:
        from .cost import sbits
        xlo, xhi = (-1, 1) if self.idt.is_bipolar else (self.idt.min, self.idt.max)
        neg = self.negate is not None and bool(np.any(self.negate))
        lo, hi = (min(xlo, -xhi), max(xhi, -xlo)) if neg else (xlo, xhi)
        return max(sbits(lo - 1, hi + 1), self.idt.bits + 2)

    def features(self, style=None) -> tuple[list, list]:
        from .cost import fifo_resources, ubits
        pe, nt = self.pe, int(self.thresholds.shape[1])
        nf = self.channels // pe
        tw = self.rtl_tw()
        fifo = fifo_resources(pe * self.odt.bits, self.out_fifo_depth())
        rom = pe * (nt * tw + 1) * (min(1.0, ubits(nf - 1) / 6) if nf <= 64 else nf / 64) \
            if nf > 1 else 0
        # ... and per lane the count of the NT compare bits (an NT-input adder to OB bits)
        lut = [pe * nt * tw * (nf > 1), pe * nt * tw * (nf == 1),
               pe * tw * (self.negate is not None), rom, fifo["LUT"] + 2 * ubits(nf - 1), 1.0,
               pe * (nt - 1) * self.odt.bits]
        # Yosys turns the channel counter + ROM into a registered ROM output when deep
        # and the pipeline: the (negated) input register and the registered compares
        ff = [ubits(nf - 1) + fifo["FF"], pe * (nt * tw + 1) * (nf >= 8), pe * (nf > 1),
              pe * tw + pe * nt]
        return lut, ff

    def lut_floor(self, style=None) -> int:
        """The threshold ROM in logic: one LUT6 per stored bit per 64 channel folds."""
        nf = self.channels // self.pe
        if nf <= 1:
            return 0
        return int(self.pe * int(self.thresholds.shape[1]) * self.rtl_tw() * -(-nf // 64))

    def resources(self, mem_style: str | None = None) -> dict:
        """templates/rtl/thresholding.v.j2: PE lanes of NT comparators against a
        threshold ROM in logic (asynchronous read), optional negation, output FIFO."""
        from .cost import res
        fl, ff = self.features()
        return res(LUT=max(sum(c * f for c, f in zip(THRESH_LUT, fl)), self.lut_floor()),
                   FF=sum(c * f for c, f in zip(THRESH_FF, ff)))

    def fill_drain(self) -> tuple[int, int]:
        return 1, 0

    # templates/rtl/thresholding.v.j2: input / negate, compare, count stages
    PIPELINE_STAGES = 2

    def pipeline_latency(self) -> int:
        """Register stages from an input word to the FIFO's read port: the input (and
        negation) stage, the compare stage, the FIFO write."""
        return self.PIPELINE_STAGES + 1

    def out_fifo_depth(self) -> int:
        """Output FIFO (credits) of the template: the words in flight at one per cycle
        (pipeline, FIFO write, the credit register's delay) plus margin."""
        return self.PIPELINE_STAGES + 4

    def held_words(self) -> int:
        """Words in flight in the pipeline and the output FIFO (bnncc.passes.fifos)."""
        return self.out_fifo_depth()


from .cost import coef  # noqa: E402

THRESH_LUT, THRESH_FF = coef("THRESH")
