"""No layer's LUT estimate is below its physical floor: a ROM in logic of D words x W bits
needs W x ceil(D / 64) LUT6 on 7-series (one LUT6 holds 64 words of one bit), a LUT RAM
buffer its mapped cells. Every layer of every fixture, at the foldings the optimizer
considers (all PE, a spread of SIMD), at every weight memory style it may pick."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bnncc.folding import divisors, fold_simple
from bnncc.layers import MVAU, MaxPool, SlidingWindow, SumPool, Thresholding
from bnncc.layers.cost import lutram_sdp, lutram_sp
from bnncc.testing.designs import load_fixture

FIX = Path(__file__).parent / "fixtures"
ENTRIES = json.loads((FIX / "index.json").read_text())


def _spread(ds: list[int], n: int = 6) -> list[int]:
    return sorted({ds[round(i * (len(ds) - 1) / (n - 1))] for i in range(n)}) if len(ds) > n else ds


def mvau_floor(l: MVAU, style: str, accw: int) -> int:
    nf, sf = l.mh // l.pe, l.mw // l.simd
    d = nf * sf
    rom = l.pe * l.simd * l.wdt.bits * -(-d // 64) if style == "lut" and d > 1 else 0
    nt = 0 if l.thresholds is None else l.thresholds.shape[1]
    trom = l.pe * nt * accw * -(-nf // 64) if nt and nf > 1 else 0
    return rom + trom


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_no_lut_estimate_below_floor(entry):
    d = fold_simple(load_fixture(entry))
    checked = 0
    for l in d.layers():
        if isinstance(l, MVAU):
            old = l.pe, l.simd
            for pe in divisors(l.mh):
                for simd in _spread(divisors(l.mw)):
                    l.pe, l.simd = pe, simd
                    accw = l.rtl_widths()[1]
                    by = l.resources_by_style(["block", "lut", "uram"])
                    for st, r in by.items():
                        assert r["LUT"] >= mvau_floor(l, st, accw), (l.name, pe, simd, st)
                        checked += 1
            l.pe, l.simd = old
        elif isinstance(l, Thresholding):
            nf = l.channels // l.pe
            floor = l.pe * l.thresholds.shape[1] * l.rtl_tw() * -(-nf // 64) if nf > 1 else 0
            assert l.resources()["LUT"] >= floor, l.name
            checked += 1
        elif isinstance(l, SlidingWindow):
            w, dep, st = l.buffer_shape()
            assert l.resources()["LUT"] >= (0 if st == "block" else lutram_sdp(w, dep)), l.name
            checked += 1
        elif isinstance(l, MaxPool) and not isinstance(l, SumPool):
            w, dep = l.pe * l.odt.bits, l.out_shape[1] * (l.in_shape[2] // l.pe)
            assert l.resources()["LUT"] >= lutram_sp(w, dep), l.name
            checked += 1
    assert checked


def test_deep_lut_rom_is_not_free():
    """The case that went wrong: an integer MVAU with its weights in a LUT ROM deeper
    than 64 words was priced at almost nothing (a 4-bit ResNet-18 'fitted' a ZCU104)."""
    import numpy as np
    from bnncc.datatypes import DataType
    w = np.random.default_rng(0).integers(-8, 8, (512, 4608))
    l = MVAU("m", DataType.uint(4), DataType.int(20), (4608,), (512,), weights=w,
             wdt=DataType.int(4), binary=False, accdt=DataType.int(20), pe=4, simd=8,
             mem_style="lut")
    depth = (512 // 4) * (4608 // 8)
    assert l.resources("lut")["LUT"] >= 4 * 8 * 4 * depth // 64      # 36,864 LUT6 of ROM
