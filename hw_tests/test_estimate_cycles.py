"""The design-level estimate (bnncc.estimate) against Verilator: cycles per frame and
first-frame latency, for every fixture model (tests/fixtures/index.json) at two foldings
(the simple folding and the optimizer's)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bnncc import api
from bnncc.boards import get_board
from bnncc.estimate import estimate
from bnncc.folding import fold_for_fps, fold_max_fps, fold_simple
from bnncc.sim import rtlsim
from bnncc.testing.designs import fold_fastest

REPO = Path(__file__).resolve().parent.parent
FIX = REPO / "tests" / "fixtures"


def models():
    entries = json.loads((FIX / "index.json").read_text())
    return [e for e in entries if (FIX / e["model"]).exists()]


def _fold(d, b, how, name):
    if how == "simple":
        return fold_simple(d)
    if "cnv" in name.lower():        # the --max-fps CNV is test_cnv_max_fps_pynq_z2's
        return fold_for_fps(d, b, 100.0, 2000)
    fold_fastest(d)                  # --max-fps on Pynq-Z2, or ZCU104 where it does not fit


# First-frame latency misses still open (all at the simple folding, measured 10-14% above
# the estimate: slow layers working through the last rows of a slow producer).
LATENCY_MISSES = {("mbv1_blocks_ts", "simple"), ("mbv1_blocks_dynamo", "simple"),
                  ("sr_dcr_w4", "simple"), ("bnn_tutorial_pads1", "simple"),
                  ("resnet_ts", "simple"), ("resnet_dynamo", "simple")}
# Frame-interval misses still open, both pessimistic (the RTL is faster than estimated): a
# 1x1-kernel window's row schedule in the cycle model (SpaceToDepth net), the window of
# a ceil-mode pool with a partial last window.
INTERVAL_MISSES = {("sr_s2d_w4", "optimizer"), ("stem_pool_ceil_w1", "optimizer")}


@pytest.mark.parametrize("how", ("simple", "optimizer"))
@pytest.mark.parametrize("entry", models(), ids=lambda e: e["name"])
def test_interval_and_latency_match_verilator(entry, how):
    """Measured frame interval within 5 % and first-frame latency (first input word to
    the last output word of frame 0) within 10 % of the estimate."""
    from bnncc.testing.designs import load_fixture
    d = load_fixture(entry)
    b = get_board("pynq-z2")
    _fold(d, b, how, entry["name"])
    est = estimate(d, b, 100.0)
    from bnncc.testing.designs import rand_values
    q = rand_values(np.random.default_rng(0), d.first().idt, (3,) + tuple(d.first().in_shape))
    y, st = rtlsim.simulate(d, q)
    assert np.array_equal(y, d.run_layers(q))
    meas, cyc = st["cycles_per_frame"], est["cycles_per_frame"]
    if abs(meas - cyc) > 0.05 * cyc and (entry["name"], how) in INTERVAL_MISSES and meas < cyc:
        pytest.xfail(f"known pessimistic interval: {meas} measured, {cyc} estimated")
    assert abs(meas - cyc) <= 0.05 * cyc, ("interval", meas, cyc)
    lm, le = st["latency_cycles"], est["latency_cycles"]
    if abs(lm - le) > 0.10 * le and (entry["name"], how) in LATENCY_MISSES:
        pytest.xfail(f"known first-frame latency miss: {lm} measured, {le} estimated")
    assert abs(lm - le) <= 0.10 * le, ("latency", lm, le)


def test_cnv_max_fps_pynq_z2():
    """The bench's headline design (CNV-w1a1, --max-fps on Pynq-Z2: a parallel first
    window, one output per cycle MVAUs, 32-word FIFOs) in Verilator: exact, and the
    measured cycles per frame within 5% of the estimate behind its frames/s."""
    d = api.load(str(FIX / "brevitas" / "cnv_1w1a.onnx"))
    b = get_board("pynq-z2")
    fold_max_fps(d, b, 100.0)
    assert d.layers()[0].parallel
    est = estimate(d, b, 100.0)
    from bnncc.testing.designs import rand_values
    q = rand_values(np.random.default_rng(1), d.first().idt, (6,) + tuple(d.first().in_shape))
    y, st = rtlsim.simulate(d, q)
    assert np.array_equal(y, d.run_layers(q))
    assert abs(st["cycles_per_frame"] - est["cycles_per_frame"]) <= 0.05 * est["cycles_per_frame"], \
        (st["cycles_per_frame"], est["cycles_per_frame"])


def test_cli_estimate_json_matches_in_process():
    """`bnncc estimate --json` as a fresh process gives the in-process estimate (its wall
    time is measured by bench/estimate_speed.py, not here)."""
    cnv = FIX / "brevitas" / "cnv_1w1a.onnx"
    r = subprocess.run([sys.executable, "-m", "bnncc", "estimate", str(cnv), "--board",
                        "pynq-z2", "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    d = api.load(str(cnv))
    b = get_board("pynq-z2")
    fold_max_fps(d, b, 100.0)
    assert json.loads(r.stdout) == json.loads(json.dumps(estimate(d, b, 100.0)))
