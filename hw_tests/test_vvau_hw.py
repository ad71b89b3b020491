"""Depthwise / grouped convolution in hardware: the depthwise-order sliding window and the
VVAU through g++ C simulation (both code paths) and Verilator, on hand-built layers and on
random grouped networks (bnncc.testing.netgen.grouped), integers compared exactly."""
import os
import shutil

import numpy as np
import pytest

from bnncc.folding import fold_simple
from bnncc.frontend.lower import lower
from bnncc.sim import csim, rtlsim
from bnncc.testing.designs import chain_design, rand_values
from bnncc.testing.grouped import UNIT_CASES as CASES
from bnncc.testing.grouped import grouped_layers
from bnncc.testing.netgen.grouped import random_grouped_network

needs_gxx = pytest.mark.skipif(shutil.which(csim.CXX) is None, reason="g++ not found")


def _unit(case: int):
    shape, oc, g, k, st, pads, idt, wdt, nt, pe = CASES[case]
    rng = np.random.default_rng(case)
    swg, vv, _ = grouped_layers(rng, shape, oc, g, k, st, pads, idt, wdt, nt, pe)
    d = chain_design(swg, vv)
    return d, rand_values(rng, idt, (6,) + shape)


def _check_csim(d, q, hw_path=False):
    want: dict = {}
    gold = d.run_layers(q, want)
    out, trace = csim.simulate(d, q, trace=True, hw_path=hw_path)
    for name, v in want.items():
        assert np.array_equal(trace[name], v), f"layer {name} differs"
    assert np.array_equal(out, gold)


def _check_rtl(d, q, tolerance=None):
    gold = d.run_layers(q)
    for bp in (0.0, 0.5):
        y, st = rtlsim.simulate(d, q, backpressure=bp, input_gaps=bp / 2, seed=3)
        bad = np.argwhere(y != gold)
        assert bad.size == 0, f"bp={bp}: first mismatch at {bad[0].tolist()}"
        if bp > 0:
            assert st["stalls"] > 0
        elif tolerance is not None:
            est = st["cycles_per_frame_estimated"]
            assert abs(st["cycles_per_frame"] - est) <= tolerance * est, st


@needs_gxx
@pytest.mark.parametrize("hw_path", [False, True])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_unit_csim(case, hw_path):
    _check_csim(*_unit(case), hw_path=hw_path)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_unit_rtl(case):
    _check_rtl(*_unit(case))


def _network(seed: int):
    case = random_grouped_network(seed)
    d = fold_simple(lower(case.model, case.name), target_cycles=int(
        os.environ.get("BNNCC_GROUPED_TARGET", "300")))
    assert any(l.kind == "VVAU" for l in d.layers())
    return d, d.quantize_input(case.inputs)


@needs_gxx
@pytest.mark.parametrize("seed", range(10))
def test_random_grouped_network_csim(seed):
    _check_csim(*_network(seed))


@pytest.mark.parametrize("seed", range(5))
def test_random_grouped_network_rtl(seed):
    _check_rtl(*_network(seed))


@pytest.mark.parametrize("board", ["zcu104", "pynq-z2"])
def test_block_stack_optimizer_folding_rtl(board):
    """The MobileNet-v1 block fixture folded by the optimizer (VVAUs with PE > 1 and their
    windows at SIMD = PE): Verilator equals golden at backpressure 0 and 0.5, and measures
    the estimated cycles per frame within 5%."""
    from bnncc import api
    from bnncc.boards import get_board
    from bnncc.folding import fold_max_fps
    from bnncc.testing.designs import FIXTURES, model_inputs
    entry = {"name": "mbv1_blocks_ts", "refs": "dws/mbv1_blocks_ts.refs.npz"}
    d = api.load(str(FIXTURES / "dws" / "mbv1_blocks_ts.onnx"))
    fold_max_fps(d, get_board(board))
    assert any(l.kind == "VVAU" and l.pe > 1 for l in d.layers())
    if board == "zcu104":     # every group and kernel position per cycle behind a parallel window
        assert any(l.kind == "VVAU" and l.simd == l.k > 1 for l in d.layers())
    q = d.quantize_input(model_inputs(entry, 12))
    _check_csim(d, q)
    _check_rtl(d, q, tolerance=0.05)


@pytest.mark.parametrize("case", [0, 1, 4])
def test_unit_rtl_full_rate(case):
    """Every group per cycle (PE = G, the shortest interval the unit offers): the
    registered tree / compare pipeline and its output credits run one word per cycle, so
    Verilator measures the estimated cycles per frame; exact also at backpressure 0.5."""
    d, q = _unit(case)
    for l in d.layers():
        if l.kind == "VVAU":
            l.pe = l.groups
            for p in d.graph.predecessors(l.name):
                d.layer(p).simd = l.in_word
    _check_rtl(d, q, tolerance=0.05)


@pytest.mark.parametrize("case", [0, 5])
def test_vvau_depth_matches_yosys(case, tmp_path):
    """bnncc.timing.vvau against Yosys (`ltp -noff` after synth_xilinx), within a level."""
    from bnncc import timing
    from test_timing import yosys_levels
    d, _ = _unit(case)
    vv = next(l for l in d.layers() if l.kind == "VVAU")
    got = yosys_levels(vv, "xcup", tmp_path)
    model = max(timing.vvau(vv, "xcup").values())
    assert abs(got - model) <= 1, (got, timing.vvau(vv, "xcup"))
