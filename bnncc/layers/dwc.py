"""Stream width converter: regroups a stream of `in_elems`-element words into
`out_elems`-element words. Inserted by folding wherever a producer's output word and its
consumer's input word hold different numbers of elements. Values pass unchanged."""
from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np

from ..ir import Layer


@dataclass
class WidthConverter(Layer):
    in_elems: int = 1
    out_elems: int = 1
    kind = "WidthConverter"

    def execute(self, x: np.ndarray) -> np.ndarray:
        return x

    def describe(self) -> dict:
        return {"in_elems": self.in_elems, "out_elems": self.out_elems}

    @property
    def elems(self) -> int:
        return int(np.prod(self.in_shape))

    def cycles(self) -> int:
        """One word of gcd(IN, OUT) elements per cycle: where neither word size divides the
        other, the RTL (templates/rtl/dwc.v.j2 via backends.rtl._dwc_stages) splits to the
        gcd and gathers again; otherwise gcd = min(IN, OUT), the narrower side's words."""
        return self.elems // gcd(self.in_elems, self.out_elems)

    def hls_cycles(self) -> int:
        """The HLS converter's loop: max(IN, OUT) word iterations per group of
        lcm(IN, OUT) elements, i.e. one per narrower-side word (never more than cycles())."""
        return self.elems // min(self.in_elems, self.out_elems)

    # ------------------------------------------------------------------ resource model
    def resources(self, mem_style: str | None = None) -> dict:
        """templates/rtl/dwc.v.j2: gather (IN_E | OUT_E) fills an output word, split
        (OUT_E | IN_E) selects slices of a held input word; neither divides: split to
        the gcd, then gather."""
        from .cost import add
        eb, ie, oe = self.idt.bits, self.in_elems, self.out_elems
        if ie % oe and oe % ie:
            g = gcd(ie, oe)
            return add(dwc_resources(eb, ie, g), dwc_resources(eb, g, oe))
        return dwc_resources(eb, ie, oe)

    def pipeline_latency(self) -> int:
        """Register stages of templates/rtl/dwc.v.j2 a word passes: the held word (split)
        or the gathered word (gather), one per bnncc_dwc; two when neither count divides
        the other (split to the gcd, then gather)."""
        ie, oe = self.in_elems, self.out_elems
        if ie == oe:
            return 0
        return 2 if ie % oe and oe % ie else 1

    def fill_drain(self) -> tuple[int, int]:
        """A gather waits for a whole output word; a split emits its slices after the last
        input word."""
        ie, oe = self.in_elems, self.out_elems
        return (-(-oe // ie), 0) if oe > ie else (1, ie // oe - 1)

    def features(self, style=None):
        return dwc_features(self.idt.bits, self.in_elems, self.out_elems)


def dwc_features(eb: int, ie: int, oe: int) -> tuple[list, list]:
    from .cost import mux_luts, ubits
    if ie == oe:
        return [0.0] * 5, [0.0] * 2
    if oe > ie:                       # gather: write-enable decode of R slots of IW bits
        r = oe // ie
        return [oe * eb, ubits(r), 0, 0, 1.0], [oe * eb + ubits(r), 1.0]
    r = ie // oe                      # split: an R:1 mux of OW-bit slices
    return [0, ubits(r - 1), oe * eb * mux_luts(r), ie * eb, 1.0], \
        [ie * eb + ubits(r - 1) + 1, 1.0]


def dwc_resources(eb: int, ie: int, oe: int) -> dict:
    from .cost import res
    if ie == oe:
        return res()
    fl, ff = dwc_features(eb, ie, oe)
    return res(LUT=sum(c * f for c, f in zip(DWC_LUT, fl)),
               FF=sum(c * f for c, f in zip(DWC_FF, ff)))


from .cost import coef  # noqa: E402

DWC_LUT, DWC_FF = coef("DWC")
