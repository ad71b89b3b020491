"""The design-level cycle estimate (bnncc.estimate) against Verilator-measured cycles per
frame, for every fixture model (tests/fixtures/index.json), folded by the optimizer."""
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
from bnncc.folding import fold_for_fps, fold_max_fps
from bnncc.sim import rtlsim

REPO = Path(__file__).resolve().parent.parent
FIX = REPO / "tests" / "fixtures"


# One model per family and kind of layer (hw_tests/test_rtl.py runs every fixture at the
# simple folding; this checks the optimizer's foldings, whose Verilator builds are larger).
CHOSEN = ("tfc_1w1a", "sfc_2w2a", "cnv_1w1a", "TFC_1W2A", "tfc_w1a1_finn", "tfc_small_w1a1",
          "tfc_w1a2_mt", "qdq_cnn_pc_u8")


def models():
    entries = json.loads((FIX / "index.json").read_text())
    return [e for e in entries if e["name"] in CHOSEN and (FIX / e["model"]).exists()]


@pytest.mark.parametrize("entry", models(), ids=lambda e: e["name"])
def test_cycles_match_verilator(entry):
    d = api.load(str(FIX / entry["model"]))
    b = get_board("pynq-z2")
    if "cnv" in entry["name"].lower():
        fold_for_fps(d, b, 100.0, 2000)       # keeps the Verilator build small
        frames = 3
    else:
        fold_max_fps(d, b, 100.0)
        frames = 12
    est = estimate(d, b, 100.0)
    rng = np.random.default_rng(0)
    first = d.first()
    if first.idt.is_bipolar:
        q = rng.choice([-1, 1], (frames,) + tuple(first.in_shape))
    else:
        q = rng.integers(first.idt.min, first.idt.max + 1, (frames,) + tuple(first.in_shape))
    y, st = rtlsim.simulate(d, q)
    assert np.array_equal(y, d.run_layers(q))
    meas, cyc = st["cycles_per_frame"], est["cycles_per_frame"]
    assert abs(meas - cyc) <= 0.05 * cyc, (meas, cyc)


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
