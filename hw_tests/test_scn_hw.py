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
