"""Trained self-compressing fixtures (tests/fixtures/scn) through the hardware: the
pruned designs, folded for a board as `bnncc cosim` folds them, are bit-exact in C
simulation and in Verilator (also under backpressure), in both QONNX forms."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bnncc import api
from bnncc.boards import get_board
from bnncc.folding import fold
from bnncc.sim.cosim import cosim

SCN = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "scn"
NAMES = [f["name"] for f in json.loads((SCN / "index.json").read_text())]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("form", ["tensor", "grouped"])
def test_cosim_exact(name, form):
    refs = np.load(SCN / f"{name}.refs.npz")
    d = api.load(str(SCN / f"{name}_{form}.onnx"))
    board = get_board("pynq-z2")
    fold(d, board, board.clock_mhz)
    frames = refs["inputs"][:6]
    rep = cosim(d, frames, ["golden", "csim", "rtlsim"], backpressure=0.5 if form == "grouped"
                else 0.0, seed=1)
    assert rep["exact"], rep.get("first_mismatch")
    assert np.array_equal(d.run(frames), refs["outputs"][:6])


# -- residual and concat SCNs (bnncc.testing.scn): channels removed through joins and
# constants folded into adds (operands that stream fewer channels), in hardware --------
from bnncc.estimate import estimate  # noqa: E402
from bnncc.frontend.lower import lower  # noqa: E402
from bnncc.sim import rtlsim  # noqa: E402
from bnncc.testing.scn import qonnx_reference, random_scn_network, residual_example  # noqa: E402

# conv bipolar add over a padded branch, conv add of two layers, FC per-channel add,
# conv per-channel add, conv concat with a padded branch, FC concat with unread channels
JOIN_SEEDS = (3, 8, 13, 18, 11, 16)


def _join_cases():
    for seed in JOIN_SEEDS:
        case = random_scn_network(seed, n_inputs=4)
        yield pytest.param(case.tensor, case.inputs, case.outputs, id=case.name)
    model, x = residual_example("grouped")
    yield pytest.param(model, x[:4], qonnx_reference(model, x[:4]), id="residual_example")


@pytest.mark.parametrize("how", ["simple", "fast"])
@pytest.mark.parametrize("model,x,ref", list(_join_cases()))
def test_join_scn_cosim_and_cycles(model, x, ref, how):
    """golden == csim == rtlsim (under backpressure) == the qonnx reference, and the
    measured cycles per frame within 5% of the estimate. `fast` folds for 64 cycles per
    frame (or the fastest the layers allow, if slower), the fastest rate the
    frame-interval estimate is checked at (test_fullrate):
    at --max-fps these tiny nets run at 2-3 cycles per frame, where width converters
    and concat word switches cost cycles the estimate does not count."""
    from bnncc.errors import BnnccError
    from bnncc.folding import fold_for_fps, fold_max_fps, fold_simple
    from bnncc.layers import AddStreams
    d = lower(model, "join")
    assert any(l.__dict__.get("removed") for l in d.layers())
    board = get_board("pynq-z2")
    if how == "simple":
        fold_simple(d)
    else:                # 64 cycles per frame, or the fastest the layers allow
        try:
            fold_for_fps(d, board, board.clock_mhz, board.clock_mhz * 1e6 / 64)
        except BnnccError:
            fold_max_fps(d, board, board.clock_mhz)
    for a in d.layers():
        if isinstance(a, AddStreams):
            assert a.pe_channels() % a.pe == 0
    rep = cosim(d, x, ["golden", "csim", "rtlsim"], backpressure=0.3, seed=2)
    assert rep["exact"], rep.get("first_mismatch")
    assert np.array_equal(d.run(x), ref)
    est = estimate(d, board, board.clock_mhz)
    _, st = rtlsim.simulate(d, d.quantize_input(x))
    meas, cyc = st["cycles_per_frame"], est["cycles_per_frame"]
    assert abs(meas - cyc) <= 0.05 * cyc, (meas, cyc)
