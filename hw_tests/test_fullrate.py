"""Full-rate streaming in Verilator: at every folding from fully parallel (one frame per
cycle) to 64 cycles per frame the measured cycles per frame are within 5% of the
estimate without backpressure, and every frame is exact, also at backpressure 0.5.
The optimizer's --max-fps designs of TFC-w1a1 on ZCU104 run at most 16 cycles per frame
and measure what they estimate on 200 frames.

The default run sweeps TFC-w1a1 at 1..64 cycles per frame and SFC-w1a1 at 4, 16, 64;
BNNCC_SLOW=1 adds SFC-w1a1 at 1, 2, 8, 32 (the fully parallel SFC is a 335k-lane build)
and the CNV fixtures at their ZCU104 --max-fps foldings."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bnncc import api
from bnncc.boards import get_board
from bnncc.datatypes import DataType
from bnncc.estimate import estimate
from bnncc.folding import fold_max_fps, fold_simple
from bnncc.layers import MVAU
from bnncc.sim import rtlsim
from bnncc.testing.designs import chain_design, rand_values

REPO = Path(__file__).resolve().parent.parent
BREV = REPO / "tests" / "fixtures" / "brevitas"
BIP = DataType.bipolar()
TFC_INTERVALS = (1, 2, 4, 8, 16, 32, 64)
SLOW = os.environ.get("BNNCC_SLOW") == "1"
SFC_INTERVALS = (1, 2, 4, 8, 16, 32, 64) if SLOW else (4, 16, 64)


def run_checked(d, frames: int, seed: int = 0) -> dict:
    """Exact at backpressure 0 and 0.5; returns the backpressure-0 stats."""
    first = d.first()
    q = rand_values(np.random.default_rng(seed), first.idt, (frames,) + tuple(first.in_shape))
    gold = d.run_layers(q)
    out = None
    for bp in (0.0, 0.5):
        y, st = rtlsim.simulate(d, q, backpressure=bp, input_gaps=bp / 2, seed=seed + 1)
        bad = np.argwhere(y.reshape(frames, -1) != gold.reshape(frames, -1))
        assert bad.size == 0, f"bp={bp}: frame {bad[0][0]} element {bad[0][1]} differs"
        if bp > 0:
            assert st["stalls"] > 0
        out = out or st
    return out


def check_interval(path: Path, target: int, frames: int = 24):
    d = fold_simple(api.load(str(path)), target)
    est = max(l.cycles() for l in d.layers())
    assert est <= target
    st = run_checked(d, frames)
    assert abs(st["cycles_per_frame"] - est) <= 0.05 * est, (target, st)


@pytest.mark.parametrize("target", TFC_INTERVALS)
def test_tfc_interval(target):
    check_interval(BREV / "tfc_1w1a.onnx", target)


@pytest.mark.parametrize("target", SFC_INTERVALS)
def test_sfc_interval(target):
    check_interval(BREV / "sfc_1w1a.onnx", target, frames=12)


@pytest.mark.parametrize("model", [BREV / "tfc_1w1a.onnx", REPO / "bnncc" / "examples" / "tfc_w1a1.onnx"],
                         ids=["tfc_1w1a", "example"])
def test_tfc_max_fps_zcu104(model):
    d = api.load(str(model))
    b = get_board("zcu104")
    fold_max_fps(d, b)
    est = estimate(d, b)
    assert est["cycles_per_frame"] <= 16 and est["fits"] and est["logic_depth"]["ok"], est
    st = run_checked(d, 200)
    assert abs(st["cycles_per_frame"] - est["cycles_per_frame"]) <= 0.05 * est["cycles_per_frame"], st


@pytest.mark.skipif(not SLOW, reason="set BNNCC_SLOW=1")
@pytest.mark.parametrize("name", ["cnv_1w1a", "cnv_1w2a", "cnv_2w2a"])
def test_cnv_max_fps_zcu104(name):
    d = api.load(str(BREV / f"{name}.onnx"))
    b = get_board("zcu104")
    fold_max_fps(d, b)
    est = estimate(d, b)
    st = run_checked(d, 4)
    assert abs(st["cycles_per_frame"] - est["cycles_per_frame"]) <= 0.05 * est["cycles_per_frame"], st


@pytest.mark.parametrize("simd", [2, 3, 4, 5, 7, 9, 27, 31, 64, 100])
def test_popcount_tree_exact(simd):
    """The carry-save popcount tree (bnncc/layers/popcount.py) gives the exact count at
    SIMD sizes that leave every remainder pattern in its columns: the raw accumulator is
    the output (no thresholds), and the weights are chosen so that all-agree and
    all-disagree lanes (counts 0 and MW) occur besides random ones."""
    rng = np.random.default_rng(simd)
    mw, pe = 2 * simd, 3
    w = rng.choice([-1, 1], size=(pe, mw)).astype(np.int64)
    l = MVAU("mv", BIP, DataType.for_range(0, mw), (mw,), (pe,), weights=w, wdt=BIP, binary=True,
             accdt=DataType.for_range(0, mw), thresholds=None, pe=pe, simd=simd)
    d = chain_design(l)
    q = rand_values(rng, BIP, (16, mw))
    q[0], q[1] = w[0], -w[0]                       # PE 0 counts MW, then 0
    gold = d.run_layers(q)
    assert gold[0, 0] == mw and gold[1, 0] == 0
    for bp in (0.0, 0.5):
        y, _ = rtlsim.simulate(d, q, backpressure=bp, input_gaps=bp / 2, seed=1)
        assert np.array_equal(y, gold), (bp, np.argwhere(y != gold)[:3].tolist())
