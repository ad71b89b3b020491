"""Logic depth of the generated RTL and the depth the board clock allows.

A block's logic depth is its longest register-to-register path in cells: LUTs, MUXF7/8
and carry cells (CARRY4 on 7-series, CARRY8 on UltraScale+) each count one level. That
is what Yosys `ltp -noff` reports after `synth_xilinx` once the flip-flops, shift registers
(SRL) and block RAMs are deleted (so paths start and end at them); hw_tests/test_timing.py compares this
model with it.

Budget rule (documented in docs/timing.md): after placement and routing, one level costs
about 1.0 ns on 7-series and 0.6 ns on UltraScale+ (a LUT and its net; a carry cell is
faster, so counting it as a level is on the safe side). A block meets the clock when
levels x ns per level <= the period: budget = floor(period / ns per level), e.g. 5 levels
on a ZC706 at 200 MHz, 8 on a ZCU104 at 200 MHz, 5 on an Alveo U250 at 300 MHz.

The structure follows the templates: an adder or comparator of w bits is one LUT level
(propagate / generate) plus ceil(w / carry bits) carry cells; the MVAU's adder tree
registers every pairwise level (integer lanes) or every two full-adder levels (the
binary carry-save popcount), so its depth does not grow with SIMD.
"""
from __future__ import annotations

from math import ceil

NS_PER_LEVEL = {"xc7": 1.0, "xcup": 0.6}
CARRY_BITS = {"xc7": 4, "xcup": 8}


def budget(family: str, clock_mhz: float) -> int:
    """Levels per register-to-register path the clock allows on this family."""
    return int((1e3 / float(clock_mhz)) / NS_PER_LEVEL.get(family, 1.0) + 1e-9)


def adder(w: int, family: str) -> int:
    """Levels of a w-bit add, subtract or compare on the carry chain."""
    return 1 + ceil(max(1, int(w)) / CARRY_BITS.get(family, 4))


def mux_levels(inputs: int) -> int:
    """LUT6 levels of an n-to-1 selection (a LUT6 is a 4:1 mux; MUXF7/F8 extend it)."""
    lv, n = 0, max(1, int(inputs))
    while n > 1:
        n = ceil(n / 4)
        lv += 1
    return lv


def counter(w: int, family: str) -> int:
    """A w-bit counter with wrap compare and enable: the compare feeds the increment mux."""
    return adder(w, family) + 1


def _accumulate_to_issue(stages: dict, l, accw: int, nt: int, depth: int, family: str) -> dict:
    """The stages after the adder tree that the MVAU and VVAU templates share: the
    accumulator, the registered threshold compare and its count, and the issue stage."""
    from .layers.cost import ubits
    stages["accumulate"] = adder(accw, family)
    if nt:
        stages["compare"] = adder(accw, family)
        if nt > 1:      # popcount of the compare bits, its carry, the FIFO's LUT RAM write
            stages["count"] = ubits(nt) + 2
    # the weight ROM's read register: Yosys moves it in front of a ROM in logic (an
    # address register), so the next-address logic and the ROM lookup share a stage
    style = getattr(l, "mem_style", None) or l.default_mem_style()
    rom = 1 + mux_levels(ceil(depth / 64)) + 1 if depth > 1 and style == "lut" else 0
    stages["issue"] = counter(ubits(depth - 1), family) + rom
    return stages


def mvau(l, family: str) -> dict:
    """templates/rtl/mvau.v.j2, stage by stage."""
    nf, sf = l.mh // l.pe, l.mw // l.simd
    depth = nf * sf
    lw, levels = l.rtl_tree()
    _, accw = l.rtl_widths()
    nt = 0 if l.thresholds is None else int(l.thresholds.shape[1])
    sel = 1 if nf > 1 else 0                        # x = r_nf0 ? in_q : buf_q
    stages = {}
    if l.binary:
        # carry-save tree: a full-adder level is one LUT (XNOR and, on the first stage,
        # the input select fold into it, which costs a level when it makes > 6 inputs)
        from .layers.popcount import plan
        fa = plan(l.simd, levels[-1][1])["stages"]
        for k, (n, _) in enumerate(fa, start=1):
            stages[f"tree_{k}"] = n + (sel if k == 1 else 0)
        last = adder(levels[-1][1], family) + (sel if not fa else 0)
        stages[f"tree_{len(fa) + 1}"] = last
    elif l.wdt.is_bipolar or l.idt.is_bipolar:
        first = sel + 1 + adder(levels[0][1], family)     # +-x, then the pair sum
    else:
        xa, wa = l.mul_widths()
        prod = 2 if xa + wa <= 6 else adder(xa + wa, family) + ceil(min(xa, wa) / 2)
        first = sel + prod + adder(levels[0][1], family)
    if not l.binary:
        stages["tree_1"] = first
        for k, (_, w) in enumerate(levels[1:], start=2):
            stages[f"tree_{k}"] = adder(w, family)
    return _accumulate_to_issue(stages, l, accw, nt, depth, family)


def vvau(l, family: str) -> dict:
    """templates/rtl/vvau.v.j2, stage by stage: the same registered tree as the MVAU's,
    one per output channel over its SIMD x CIN lanes (no input buffer mux)."""
    _, levels = l.rtl_tree()
    _, accw = l.rtl_widths()
    nt = 0 if l.thresholds is None else int(l.thresholds.shape[1])
    one = l.simd * l.cin == 1                       # level 1 only registers the lane
    if l.binary:
        first = 1 if one else adder(levels[0][1], family)
    elif l.wdt.is_bipolar or l.idt.is_bipolar:
        first = 1 + (0 if one else adder(levels[0][1], family))
    else:
        xa = l.idt.bits + (0 if l.idt.signed else 1)
        wa = l.wdt.bits + (0 if l.wdt.signed else 1)
        prod = 2 if xa + wa <= 6 else adder(xa + wa, family) + ceil(min(xa, wa) / 2)
        first = prod + (0 if one else adder(levels[0][1], family))
    stages = {"tree_1": first}
    for k, (_, w) in enumerate(levels[1:], start=2):
        stages[f"tree_{k}"] = adder(w, family)
    return _accumulate_to_issue(stages, l, accw, nt, (l.groups // l.pe) * (l.k // l.simd),
                                family)


def thresholding(l, family: str) -> dict:
    """templates/rtl/thresholding.v.j2: (input word and negate, threshold ROM read),
    compares, count into the FIFO: each its own register stage, none grows with PE."""
    from .layers.cost import ubits
    nt = int(l.thresholds.shape[1])
    nf = l.channels // l.pe
    tw = l.rtl_tw()
    neg = l.negate is not None and bool(any(l.negate))
    rom = 1 + mux_levels(ceil(nf / 64)) if nf > 1 else 0
    return {"input": max(1 + (adder(tw, family) if neg else 0), rom),
            "compare": adder(tw, family),
            "count": (ubits(nt) if nt > 1 else 1) + 1}


def generic(l, family: str) -> dict:
    """Counters and a per-lane operation: window, pool, width converter, streams."""
    from .layers.cost import ubits
    words = max(1, int(l.cycles()))
    st = {"control": counter(ubits(words), family)}
    kind = type(l).__name__
    if kind in ("MaxPool", "SumPool"):
        st["lane"] = 1 + adder(l.odt.bits, family) + 1
    elif kind == "AddStreams":
        st["lane"] = adder(l.sum_width(), family) + 1
    elif kind == "SlidingWindow" and not l.parallel:
        st["address"] = 2 * adder(ubits(words), family)
    elif kind == "LabelSelect":
        # a merge of two k-lists: k insertions, each a compare and a mux; the running
        # list's merge also selects the empty list at a row start
        st["merge"] = l.k * (adder(l.idt.bits + 1, family) + 1) + 1
    return st


def layer_depth(l, family: str) -> dict:
    """{stage: levels} of one block."""
    from .layers import MVAU, VVAU, Thresholding
    if isinstance(l, MVAU):
        return mvau(l, family)
    if isinstance(l, VVAU):
        return vvau(l, family)
    if isinstance(l, Thresholding):
        return thresholding(l, family)
    return generic(l, family)
