"""RTL backend + Verilator cycle simulation: bit-exactness per layer kind, cycles, lint,
and Yosys synthesis. Unit designs are built from layer objects directly; every model in
tests/fixtures/index.json (CNV on 10 frames, the MLPs on 100) and $BNNCC_RTL_NETS
(default 20) random generator networks run against the golden model at backpressure 0
and 0.5, with measured cycles per frame within 5% of the estimate at backpressure 0.
Simulators are cached by content hash ($BNNCC_CACHE or ~/.cache/bnncc)."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bnncc.backends import rtl
from bnncc.datatypes import DataType
from bnncc.quantizers import parse_dtype
from bnncc.layers import (MVAU, AddStreams, Concat, LabelSelect, MaxPool, SlidingWindow, SumPool,
                          Thresholding, WidthConverter)
from bnncc.sim import rtlsim
from bnncc.sim.tools import verilator_env, yosys_cmd
from bnncc.testing.designs import chain_design as make_design
from bnncc.testing.designs import fixture_index as _index
from bnncc.testing.designs import load_fixture
from bnncc.testing.designs import generated_design, graph_design, model_inputs, pool_model, rand_values
from bnncc.testing.designs import padded_design

REPO = Path(__file__).resolve().parent.parent
BIP = DataType.bipolar()


def check(design, n=4, seed=0, backpressures=(0.0, 0.5)):
    rng = np.random.default_rng(seed)
    first = design.first()
    q = rand_values(rng, first.idt, (n,) + tuple(first.in_shape))
    gold = design.run_layers(q)
    stats = {}
    for bp in backpressures:
        y, st = rtlsim.simulate(design, q, backpressure=bp, input_gaps=bp / 2, seed=seed + 1)
        assert y.shape == gold.shape
        bad = np.argwhere(y != gold)
        assert bad.size == 0, f"bp={bp}: first mismatch at {bad[0].tolist()}: " \
                              f"rtl {y[tuple(bad[0])]} golden {gold[tuple(bad[0])]}"
        if bp > 0:
            assert st["stalls"] > 0
        stats[bp] = st
    return stats


def sorted_thresholds(rng, c, nt, lo, hi):
    return np.sort(rng.integers(lo, hi + 1, size=(c, nt)), axis=1).astype(np.int64)


# ----------------------------------------------------------------------------- models
# Whole models first: under pytest-xdist the longest tests then start first.
FIXTURES = REPO / "tests" / "fixtures"


def check_stream(design, q, seed=0, tolerance=0.05):
    """rtlsim == golden at backpressure 0 and 0.5 (input gaps 0.25), frame by frame, with
    the frame count checked by the simulator (no word lost or extra: RtlSimError) and
    cycles per frame within `tolerance` of the estimate at backpressure 0."""
    gold = design.run_layers(q)
    n = len(q)
    flat = gold.reshape(n, -1)
    distinct = len({row.tobytes() for row in flat})
    stats = {}
    for bp in (0.0, 0.5):
        y, st = rtlsim.simulate(design, q, backpressure=bp, input_gaps=bp / 2, seed=seed + 1)
        assert st["frames"] == n and y.shape == gold.shape
        bad = np.argwhere(y.reshape(n, -1) != flat)
        if bad.size:
            f, i = bad[0]
            # a frame that equals another golden frame points at loss / reordering
            same = [g for g in range(n) if np.array_equal(y.reshape(n, -1)[f], flat[g])]
            pytest.fail(f"bp={bp}: frame {f} element {i}: rtl {y.reshape(n, -1)[f, i]} "
                        f"golden {flat[f, i]}; the rtl frame equals golden frames {same[:5]}")
        if bp > 0:
            assert st["stalls"] > 0
        stats[bp] = st
    st = stats[0.0]
    est = st["cycles_per_frame_estimated"]
    if tolerance is not None and n >= 2:
        assert abs(st["cycles_per_frame"] - est) <= tolerance * est, st
    return stats, distinct


def _fixture_design(entry):
    from bnncc.folding import fold_simple
    model = FIXTURES / entry["model"]
    if not model.is_file():
        pytest.skip(f"fixture {entry['name']} not present")
    return fold_simple(load_fixture(entry))


def _frames_for(entry) -> int:
    return int(os.environ.get("BNNCC_RTL_CNV_FRAMES", "10")) if "cnv" in entry["name"].lower() \
        else int(os.environ.get("BNNCC_RTL_FRAMES", "100"))


@pytest.mark.parametrize("entry", _index(), ids=lambda e: e["name"])
def test_fixture_model(entry):
    d = _fixture_design(entry)
    n = _frames_for(entry)
    x = model_inputs(entry, n)
    assert len(x) == n
    stats, distinct = check_stream(d, d.quantize_input(x))
    assert distinct >= 2, "all golden frames are equal: reordering would go unseen"


@pytest.mark.parametrize("seed", range(int(os.environ.get("BNNCC_RTL_NETS", "20"))))
def test_random_network(seed):
    d, q = generated_design(seed, integer=False)
    check_stream(d, q, seed=seed)


@pytest.mark.parametrize("seed", range(5))
def test_padded_network(seed):
    """Random padded binary conv networks (border corrections): exact under
    backpressure, cycles per frame within 5% of the estimate."""
    d, q = padded_design(seed)
    check_stream(d, q, seed=seed)


@pytest.mark.parametrize("name", ["bnn_tutorial_pads1", "bnn_stride2_pads1"])
def test_padded_fixture_max_fps(name):
    """The padded fixtures at the optimizer's folding (wide SIMD: deep adder trees, so the
    correction has to meet its word several pipeline stages after issue)."""
    from bnncc import api
    from bnncc.boards import get_board
    from bnncc.folding import fold_max_fps
    (entry,) = [e for e in _index() if e["name"] == name]
    d = api.load(str(FIXTURES / entry["model"]))
    fold_max_fps(d, get_board("pynq-z2"), 100.0)
    assert max(len(l.rtl_tree()[1]) for l in d.layers()
               if isinstance(l, MVAU) and l.border is not None) > 2
    x = model_inputs(entry, 8)
    check_stream(d, d.quantize_input(x))


def _residual_seeds(n: int) -> list[int]:
    from bnncc.testing.netgen import random_int_network
    return [s for s in range(60) if random_int_network(s).family == "qonnx-residual"][:n]


@pytest.mark.parametrize("seed", _residual_seeds(int(os.environ.get("BNNCC_RTL_RESIDUAL", "10"))))
def test_residual_network(seed):
    """Random integer networks with residual adds and concats (Duplicate, AddStreams,
    Concat, FIFOs sized for the skip paths): exact at backpressure 0 and 0.5, no
    deadlock, cycles per frame as estimated."""
    d, q = generated_design(seed)
    assert {"Duplicate"} <= {l.kind for l in d.layers()}
    check_stream(d, q, seed=seed)


def test_skip_path_fifos_are_load_bearing(monkeypatch):
    """Negative control for the FIFO sizing: with 2-word FIFOs on every stream, the skip
    path of residual network 7 fills and the design deadlocks (the watchdog reports it);
    test_residual_network runs the same design with sized FIFOs."""
    from bnncc.passes import fifos
    d, q = generated_design(7)
    assert "AddStreams" in [l.kind for l in d.layers()]
    sized = fifos.fifo_depths(d)
    assert max(sized.values()) > fifos.FIFO_MIN_DEPTH
    monkeypatch.setattr(rtl, "fifo_depths", lambda design: dict.fromkeys(sized, 2))
    with pytest.raises(rtlsim.RtlSimError, match="deadlock"):
        rtlsim.simulate(d, q[:4], fifo_depth=2)


@pytest.mark.parametrize("mode", ["avg", "global"])
def test_average_pool_network(mode):
    from bnncc.folding import fold_simple
    from bnncc.frontend.lower import lower
    d = fold_simple(lower(pool_model(mode, "ROUND", 5), "pool.onnx"))
    assert "SumPool" in [l.kind for l in d.layers()]
    x = np.random.default_rng(0).uniform(-1, 1, (12, 3, 8, 8)).astype(np.float32)
    check_stream(d, d.quantize_input(x))


@pytest.mark.parametrize("entry", _index(), ids=lambda e: e["name"])
def test_lint_fixture_top(entry, tmp_path):
    """verilator --lint-only -Wall on the generated top of every fixture model."""
    d = _fixture_design(entry)
    _lint(rtl.emit(d, tmp_path), tmp_path)


def test_yosys_synth_tfc_w1a1_fixture(tmp_path):
    """Yosys synth_xilinx on the TFC-w1a1 fixture design (fold_simple): no latches, no
    errors, block RAM or LUT ROMs for the weights."""
    entry = next(e for e in _index() if e["name"] == "tfc_1w1a")
    _synth(_fixture_design(entry), tmp_path)


# ----------------------------------------------------------------------------- MVAU
@pytest.mark.parametrize("pe,simd", [(1, 1), (2, 3), (8, 12)])
@pytest.mark.parametrize("pixels", [1, 4])
def test_mvau_binary(pe, simd, pixels):
    rng = np.random.default_rng(pe * 10 + simd + pixels)
    mh, mw = 8, 12
    w = rng.choice([-1, 1], size=(mh, mw)).astype(np.int64)
    shape = (mw,) if pixels == 1 else (2, 2, mw)
    oshape = (mh,) if pixels == 1 else (2, 2, mh)
    t = sorted_thresholds(rng, mh, 1, -1, mw + 1)
    l = MVAU("mv", BIP, BIP, shape, oshape, weights=w, wdt=BIP, binary=True,
             accdt=DataType.for_range(0, mw), thresholds=t, tdt=DataType.int(6), pe=pe, simd=simd)
    stats = check(make_design(l), n=6)
    est = l.cycles()
    assert abs(stats[0.0]["cycles_per_frame"] - est) <= max(0.05 * est, 2), stats


@pytest.mark.parametrize("pe,simd", [(1, 1), (2, 5), (6, 10)])
def test_mvau_integer(pe, simd):
    rng = np.random.default_rng(pe + simd)
    mh, mw = 6, 10
    idt, wdt = DataType.int(4), DataType.int(3)
    w = rand_values(rng, wdt, (mh, mw))
    # raw accumulator output
    acc = DataType.for_range(-8 * 4 * mw, 8 * 4 * mw)
    l = MVAU("mv", idt, acc, (mw,), (mh,), weights=w, wdt=wdt, binary=False, accdt=acc,
             pe=pe, simd=simd)
    stats = check(make_design(l), n=6)
    assert abs(stats[0.0]["cycles_per_frame"] - l.cycles()) <= max(0.05 * l.cycles(), 2)
    # fused 3 thresholds -> INT2, unsigned input and bipolar weights, conv-like pixels
    idt = DataType.uint(3)
    wb = rng.choice([-1, 1], size=(mh, mw)).astype(np.int64)
    t = sorted_thresholds(rng, mh, 3, -40, 40)
    l2 = MVAU("mv2", idt, DataType.int(2), (3, mw), (3, mh), weights=wb, wdt=BIP, binary=False,
              accdt=DataType.for_range(-70, 70), thresholds=t, tdt=DataType.int(8), pe=pe, simd=simd)
    check(make_design(l2), n=4)


# ----------------------------------------------------------------------------- others
@pytest.mark.parametrize("pe", [1, 2, 6])
def test_thresholding(pe):
    rng = np.random.default_rng(pe)
    c = 6
    t = sorted_thresholds(rng, c, 3, -9, 9)
    neg = rng.random(c) < 0.5
    l = Thresholding("th", DataType.int(5), DataType.uint(2), (3, c), (3, c), thresholds=t,
                     tdt=DataType.int(5), negate=neg, pe=pe)
    check(make_design(l))
    l2 = Thresholding("thb", DataType.uint(4), BIP, (c,), (c,),
                      thresholds=sorted_thresholds(rng, c, 1, 0, 16), tdt=DataType.uint(5), pe=pe)
    check(make_design(l2))


@pytest.mark.parametrize("simd", [1, 2, 4])
@pytest.mark.parametrize("geom", [((5, 6), (3, 3), (2, 2), (1, 1, 1, 1)),
                                  ((6, 5), (2, 2), (1, 1), (0, 0, 0, 0)),
                                  ((4, 4), (3, 3), (1, 1), (1, 1, 1, 1))])
def test_sliding_window(simd, geom):
    (ih, iw), (kh, kw), (sh, sw), pads = geom
    c = 4
    oh = (ih + pads[0] + pads[2] - kh) // sh + 1
    ow = (iw + pads[1] + pads[3] - kw) // sw + 1
    idt = DataType.int(3)
    l = SlidingWindow("swg", idt, idt, (ih, iw, c), (oh, ow, kh * kw * c), kernel=(kh, kw),
                      stride=(sh, sw), pads=pads, pad_value=-2, simd=simd)
    check(make_design(l), n=3)


@pytest.mark.parametrize("geom", [((5, 6), (3, 3), (2, 2), (1, 1, 1, 1)),
                                  ((6, 5), (2, 2), (1, 1), (0, 0, 0, 0)),
                                  ((4, 4), (3, 3), (1, 1), (1, 1, 1, 1)),
                                  ((7, 6), (3, 2), (2, 1), (0, 1, 2, 0)),
                                  ((5, 5), (1, 3), (1, 2), (0, 0, 0, 0)),
                                  ((3, 4), (1, 1), (1, 1), (0, 0, 0, 0))])
@pytest.mark.parametrize("dt", ["int3", "bipolar"])
def test_sliding_window_parallel(geom, dt):
    """Parallel window: one whole window per output word at one padded input pixel per
    cycle; exact against the golden im2col, cycles as modelled."""
    (ih, iw), (kh, kw), (sh, sw), pads = geom
    c = 3
    oh = (ih + pads[0] + pads[2] - kh) // sh + 1
    ow = (iw + pads[1] + pads[3] - kw) // sw + 1
    idt = BIP if dt == "bipolar" else DataType.int(3)
    l = SlidingWindow("swg", idt, idt, (ih, iw, c), (oh, ow, kh * kw * c), kernel=(kh, kw),
                      stride=(sh, sw), pads=pads, pad_value=1 if idt.is_bipolar else -2,
                      simd=c, parallel=True)
    stats = check(make_design(l), n=4)
    est = l.cycles()
    assert abs(stats[0.0]["cycles_per_frame"] - est) <= max(0.05 * est, 2), (stats, est)


@pytest.mark.parametrize("pe", [1, 2, 4])
@pytest.mark.parametrize("dt", ["bipolar", "int4"])
def test_maxpool(pe, dt):
    idt = BIP if dt == "bipolar" else DataType.int(4)
    l = MaxPool("pool", idt, idt, (5, 6, 4), (2, 3, 4), kernel=(2, 2), stride=(2, 2), pe=pe)
    check(make_design(l))


@pytest.mark.parametrize("pe", [1, 2, 4])
@pytest.mark.parametrize("dt,geom", [("int3", ((6, 4), (2, 2))), ("uint2", ((5, 7), (2, 3))),
                                     ("bipolar", ((4, 4), (4, 4))), ("int4", ((3, 5), (3, 5)))])
def test_sumpool(pe, dt, geom):
    """Sum pooling (non-overlapping windows, floor mode, global) with wide outputs."""
    (ih, iw), (kh, kw) = geom
    idt = BIP if dt == "bipolar" else parse_dtype(dt.upper())
    oh, ow = ih // kh, iw // kw
    k = kh * kw
    lo, hi = (-k, k) if idt.is_bipolar else (k * idt.min, k * idt.max)
    stride = (1, 1) if (oh, ow) == (1, 1) else (kh, kw)
    l = SumPool("pool", idt, DataType.for_range(lo, hi), (ih, iw, 4), (oh, ow, 4),
                kernel=(kh, kw), stride=stride, pe=pe)
    check(make_design(l))


def _thr(name, idt, odt, c, pe, seed, inputs=None):
    rng = np.random.default_rng(seed)
    nt = 1 if odt.is_bipolar else odt.max - odt.min
    t = sorted_thresholds(rng, c, nt, idt.min - 1, idt.max + 1)
    l = Thresholding(name, idt, odt, (2, 3, c), (2, 3, c), pe=pe, thresholds=t,
                     tdt=DataType.for_range(idt.min - 2, idt.max + 2))
    if inputs:
        l.inputs = inputs
    return l


@pytest.mark.parametrize("pe", [1, 2, 6])
@pytest.mark.parametrize("ka,kb,bdt", [(1, 1, "INT3"), (2, -1, "UINT2"), (3, 1, "BIPOLAR"),
                                       (1, 1 << 20, "INT2"), (-1, 3, "UINT3")])
def test_addstreams(pe, ka, kb, bdt):
    """x -> t0 -> t1 and x -> t2; add(t1, t2): a long and a short path from one Duplicate
    (the identity skip of a residual block is the shortest)."""
    bt = parse_dtype(bdt)
    x = DataType.int(4)
    t0 = _thr("t0", x, DataType.int(3), 6, pe, 1)
    t1 = _thr("t1", DataType.int(3), DataType.int(3), 6, pe, 2)
    t2 = _thr("t2", DataType.int(3), bt, 6, pe, 3, inputs=["t0"])
    ends = [ka * a + kb * b for a in (-4, 3) for b in (bt.min, bt.max)]
    add = AddStreams("add", DataType.int(3), DataType.for_range(min(ends), max(ends)),
                     (2, 3, 6), (2, 3, 6), idt_b=bt, ka=ka, kb=kb, inputs=["t1", "t2"], pe=pe)
    d = graph_design(t0, t1, t2, add)
    assert [l.kind for l in d.layers()].count("Duplicate") == 1
    check(d)


@pytest.mark.parametrize("pe", [1, 2])
@pytest.mark.parametrize("n", [2, 3])
def test_concat(pe, n):
    """Concat of n streams of different types (bipolar into an integer output included),
    one of them the Duplicate's direct output."""
    x = DataType.int(3)
    types = [DataType.int(3), BIP, DataType.uint(2)][:n]
    t0 = _thr("t0", x, x, 4, pe, 1)
    branches = [_thr(f"b{k}", x, dt, 4, pe, 10 + k, inputs=["t0"]) for k, dt in enumerate(types)]
    cat = Concat("cat", types[0], DataType.int(3), (2, 3, 4), (2, 3, 4 * n),
                 idts=tuple(types), channels=(4,) * n, inputs=["t0"] + [b.name for b in branches[1:]],
                 pe=pe)
    cat.idts = (x,) + tuple(types[1:])
    d = graph_design(t0, *branches[1:], cat)
    check(d)


@pytest.mark.parametrize("pe,k", [(1, 1), (2, 3), (10, 1)])
def test_labelselect(pe, k):
    idt = DataType.int(3)    # few values: many ties
    l = LabelSelect("top", idt, DataType.uint(4), (10,), (k,), k=k, pe=pe)
    check(make_design(l), n=8)


@pytest.mark.parametrize("a,b", [(4, 2), (2, 4), (3, 2), (1, 12)])
def test_width_converter(a, b):
    dt = DataType.int(3)
    th = lambda name, pe: Thresholding(name, dt, dt, (12,), (12,), pe=pe,
                                       thresholds=np.array([[-4 + j for j in range(7)]] * 12),
                                       tdt=DataType.int(4))
    d = make_design(th("t0", a), th("t1", b))
    assert any(isinstance(l, WidthConverter) for l in d.layers())
    check(d)


def tfc_like():
    rng = np.random.default_rng(7)
    layers, prev = [], 64
    for i, mh in enumerate([32, 32, 10]):
        last = i == 2
        w = rng.choice([-1, 1], size=(mh, prev)).astype(np.int64)
        t = None if last else sorted_thresholds(rng, mh, 1, 0, prev)
        odt = DataType.for_range(0, prev) if last else BIP
        layers.append(MVAU(f"mvau_{i}", BIP, odt, (prev,), (mh,), weights=w, wdt=BIP,
                           binary=True, accdt=DataType.for_range(0, prev), thresholds=t,
                           pe=[4, 2, 1][i], simd=[8, 4, 2][i]))
        prev = mh
    layers.append(LabelSelect("top", layers[-1].odt, DataType.uint(4), (10,), (1,), k=1, pe=1))
    return make_design(*layers)


def test_tfc_like_chain():
    stats = check(tfc_like(), n=8)
    st = stats[0.0]
    assert abs(st["cycles_per_frame"] - st["cycles_per_frame_estimated"]) <= \
        0.05 * st["cycles_per_frame_estimated"]


def test_emit_deterministic(tmp_path):
    d = tfc_like()
    a = rtl.emit(d, tmp_path / "a")
    b = rtl.emit(d, tmp_path / "b")
    assert [p.name for p in a] == [p.name for p in b]
    for p, q in zip(a, b):
        assert p.read_bytes() == q.read_bytes()


def test_watchdog_reports_deadlock(monkeypatch):
    """A design that never emits must fail with a clear error, not hang."""
    d = tfc_like()
    real = rtl.stream_info

    def wrong(design):
        info = dict(real(design))
        info["out_words"] += 1          # expect one word more than the design ever sends
        info["est_cycles"] = 100
        return info
    monkeypatch.setattr(rtl, "stream_info", wrong)
    q = rand_values(np.random.default_rng(0), BIP, (2, 64))
    with pytest.raises(rtlsim.RtlSimError, match="deadlock|watchdog"):
        rtlsim.simulate(d, q)


# ----------------------------------------------------------------------------- tools
# Verilator -Wall warnings that are style, not bugs: file naming, unused bits/params,
# unconnected FIFO count outputs, and WIDTHEXPAND (deliberate sign/zero extension of
# narrow operands into wider signed arithmetic). LATCH, WIDTHTRUNC, MULTIDRIVEN, UNDRIVEN,
# CASEINCOMPLETE, BLKSEQ etc. fail the test.
LINT_OK = {"DECLFILENAME", "UNUSEDSIGNAL", "UNUSEDPARAM", "PINCONNECTEMPTY", "GENUNNAMED",
           "VARHIDDEN", "WIDTHEXPAND"}


def lint_designs():
    sw = SlidingWindow("swg", BIP, BIP, (6, 6, 8), (4, 4, 72), kernel=(3, 3), stride=(1, 1),
                       simd=4)
    rng = np.random.default_rng(3)
    mv = MVAU("mv", BIP, BIP, (4, 4, 72), (4, 4, 16), weights=rng.choice([-1, 1], (16, 72)),
              wdt=BIP, binary=True, accdt=DataType.for_range(0, 72),
              thresholds=sorted_thresholds(rng, 16, 1, 0, 72), pe=4, simd=4)
    mp = MaxPool("pool", BIP, BIP, (4, 4, 16), (2, 2, 16), pe=2)
    th = Thresholding("th", DataType.int(5), DataType.int(2), (8,), (8,), pe=2,
                      thresholds=sorted_thresholds(rng, 8, 3, -9, 9), negate=rng.random(8) < .5)
    mvi = MVAU("mvi", DataType.int(2), DataType.for_range(-64, 64), (8,), (4,),
               weights=rng.integers(-3, 4, (4, 8)), wdt=DataType.int(3), binary=False,
               accdt=DataType.for_range(-64, 64), pe=2, simd=4)
    ls = LabelSelect("top", DataType.for_range(-64, 64), DataType.uint(2), (4,), (2,), k=2, pe=2)
    x = DataType.int(4)
    t0 = _thr("t0", x, DataType.int(3), 6, 2, 1)
    t1 = _thr("t1", DataType.int(3), BIP, 6, 2, 2)
    add = AddStreams("add", DataType.int(3), DataType.int(5), (2, 3, 6), (2, 3, 6), idt_b=BIP,
                     ka=3, kb=-1, inputs=["t0", "t1"], pe=2)
    cat = Concat("cat", DataType.int(5), DataType.int(5), (2, 3, 6), (2, 3, 12),
                 idts=(DataType.int(5), DataType.int(3)), channels=(6, 6), inputs=["add", "t0"], pe=2)
    sp = SumPool("sp", DataType.int(5), DataType.int(7), (2, 3, 12), (1, 1, 12), kernel=(2, 3),
                 stride=(1, 1), pe=3)
    return {"tfc": tfc_like(), "conv": make_design(sw, mv, mp), "int": make_design(th, mvi, ls),
            "joins": graph_design(t0, t1, add, cat, sp)}


def _lint(paths, tmp_path) -> None:
    exe, env = verilator_env()
    r = subprocess.run([exe, "--lint-only", "-Wall", "--top-module", rtl.TOP,
                        *[p.name for p in rtl.verilog_sources(paths)]],
                       cwd=tmp_path / "rtl", env=env, capture_output=True, text=True)
    codes = set(re.findall(r"%Warning-([A-Z0-9]+):", r.stderr))
    errors = [ln for ln in r.stderr.splitlines()
              if ln.startswith("%Error") and "Exiting due to" not in ln]
    assert not errors, r.stderr[-3000:]
    assert not (codes - LINT_OK), r.stderr[-3000:]


def test_joins_design():
    check(lint_designs()["joins"])


@pytest.mark.parametrize("name", ["tfc", "conv", "int", "joins"])
def test_lint_wall(tmp_path, name):
    d = lint_designs()[name]
    _lint(rtl.emit(d, tmp_path), tmp_path)


def _synth(design, tmp_path) -> dict:
    paths = rtl.emit(design, tmp_path)
    srcs = " ".join(p.name for p in rtl.verilog_sources(paths))
    script = (f"read_verilog {srcs}; synth_xilinx -family xc7 -top {rtl.TOP}; "
              f"tee -o stat.json stat -json")
    r = subprocess.run([*yosys_cmd(), "-q", "-p", script], cwd=tmp_path / "rtl",
                       capture_output=True, text=True, timeout=900)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-3000:]
    assert "Latch inferred" not in log and "ERROR" not in log, log[-3000:]
    stat = json.loads((tmp_path / "rtl" / "stat.json").read_text())
    cells = stat["design"]["num_cells_by_type"]
    assert not any("LATCH" in c or c.startswith("LD") for c in cells), cells
    assert any(c.startswith("LUT") for c in cells)
    return cells


# ----------------------------------------------------------------------------- progress, CLI
def test_progress_callback():
    d = tfc_like()
    n = 300
    q = rand_values(np.random.default_rng(5), BIP, (n, 64))
    calls = []
    y, _ = rtlsim.simulate(d, q, progress=lambda *a: calls.append(a))
    assert np.array_equal(y, d.run_layers(q))
    sim = [c for c in calls if c[0] == "simulating"]
    assert sim[0] == ("simulating", 0, n) and sim[-1] == ("simulating", n, n)
    done = [c[1] for c in sim]
    assert done == sorted(done)


def _tfc_inputs(tmp_path, n=20) -> Path:
    entry = next(e for e in _index() if e["name"] == "tfc_1w1a")
    p = tmp_path / "x.npy"
    np.save(p, model_inputs(entry, n).astype(np.float32))
    return FIXTURES / entry["model"], p


def test_cli_cosim_rtlsim_json(tmp_path, capsys):
    from bnncc.cli import main
    model, x = _tfc_inputs(tmp_path)
    rc = main(["cosim", str(model), "-i", str(x), "--levels", "golden,rtlsim",
               "--backpressure", "0.5", "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    rep = json.loads(out.out)
    assert rep["exact"] is True and rep["frames"] == 20 and rep["levels"] == ["golden", "rtlsim"]
    for k in ("cycles_per_frame_measured", "cycles_per_frame_estimated",
              "latency_cycles_measured", "stalls_seen"):
        assert k in rep, k
    assert rep["stalls_seen"] > 0
    assert "\r" not in out.err          # stderr is not a terminal here: no progress bar


def test_cli_cosim_progress_bar_on_a_terminal(tmp_path):
    """stderr a terminal: a progress bar (read while the process runs: a bar redraws
    several times a second and would fill the terminal's buffer)."""
    import pty
    import sys
    model, x = _tfc_inputs(tmp_path, 100)
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([sys.executable, "-m", "bnncc", "cosim", str(model), "-i", str(x),
                              "--levels", "golden,rtlsim"], stdout=subprocess.PIPE,
                             stderr=slave, text=True)
        os.close(slave)
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
        out = p.stdout.read()
        rc = p.wait(timeout=600)
    finally:
        os.close(master)
    assert rc == 0, err.decode(errors="replace")
    assert "bit-exact" in out
    text = err.decode(errors="replace")
    assert "\r" in text and "100/100 frames" in text, text
