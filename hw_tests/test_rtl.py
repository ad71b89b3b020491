"""RTL backend + Verilator cycle simulation: bit-exactness per layer kind, cycles, lint,
and Yosys synthesis. Designs are built from layer objects directly (no model files), so
these tests do not depend on fixtures; tests/fixtures/ models are used when present."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from bnncc.backends import rtl
from bnncc.datatypes import DataType
from bnncc.folding import insert_width_converters
from bnncc.ir import Design, HostStage
from bnncc.layers import MVAU, LabelSelect, MaxPool, SlidingWindow, Thresholding, WidthConverter
from bnncc.sim import rtlsim
from bnncc.sim.tools import verilator_env, yosys_cmd

REPO = Path(__file__).resolve().parent.parent
BIP = DataType.bipolar()


def make_design(*layers) -> Design:
    g = nx.DiGraph()
    for l in layers:
        g.add_node(l.name, layer=l)
    for a, b in zip(layers, layers[1:]):
        g.add_edge(a.name, b.name)
    stage = HostStage(shape=(1,), gather=np.zeros(1, int), chain=[])
    d = Design("test", g, "x", (1,) + tuple(layers[0].in_shape), "y",
               (1,) + tuple(layers[-1].out_shape), stage, stage)
    return insert_width_converters(d)


def rand_values(rng, dt: DataType, shape) -> np.ndarray:
    if dt.is_bipolar:
        return rng.choice([-1, 1], size=shape).astype(np.int64)
    return rng.integers(dt.min, dt.max + 1, size=shape).astype(np.int64)


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


@pytest.mark.parametrize("pe", [1, 2, 4])
@pytest.mark.parametrize("dt", ["bipolar", "int4"])
def test_maxpool(pe, dt):
    idt = BIP if dt == "bipolar" else DataType.int(4)
    l = MaxPool("pool", idt, idt, (5, 6, 4), (2, 3, 4), kernel=(2, 2), stride=(2, 2), pe=pe)
    check(make_design(l))


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
    return {"tfc": tfc_like(), "conv": make_design(sw, mv, mp), "int": make_design(th, mvi, ls)}


@pytest.mark.parametrize("name", ["tfc", "conv", "int"])
def test_lint_wall(tmp_path, name):
    d = lint_designs()[name]
    paths = rtl.emit(d, tmp_path)
    exe, env = verilator_env()
    r = subprocess.run([exe, "--lint-only", "-Wall", "--top-module", rtl.TOP,
                        *[p.name for p in rtl.verilog_sources(paths)]],
                       cwd=tmp_path / "rtl", env=env, capture_output=True, text=True)
    codes = set(re.findall(r"%Warning-([A-Z0-9]+):", r.stderr))
    errors = [ln for ln in r.stderr.splitlines()
              if ln.startswith("%Error") and "Exiting due to" not in ln]
    assert not errors, r.stderr[-3000:]
    assert not (codes - LINT_OK), r.stderr[-3000:]


def test_yosys_synth_xilinx(tmp_path):
    paths = rtl.emit(tfc_like(), tmp_path)
    srcs = " ".join(p.name for p in rtl.verilog_sources(paths))
    script = (f"read_verilog {srcs}; synth_xilinx -family xc7 -top {rtl.TOP}; "
              f"tee -o stat.json stat -json; tee -o latches.txt select -list t:*LATCH* t:LD*")
    r = subprocess.run([*yosys_cmd(), "-q", "-p", script], cwd=tmp_path / "rtl",
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "Latch inferred" not in r.stdout + r.stderr
    stat = json.loads((tmp_path / "rtl" / "stat.json").read_text())
    cells = stat["design"]["num_cells_by_type"]
    assert not any("LATCH" in c or c.startswith("LD") for c in cells), cells
    assert any(c.startswith("LUT") for c in cells)


# ----------------------------------------------------------------------------- models
FIXTURES = REPO / "tests" / "fixtures"


def fixture_models():
    idx = FIXTURES / "index.json"
    if idx.exists():
        try:
            entries = json.loads(idx.read_text())
        except ValueError:
            return []
        items = entries if isinstance(entries, list) else entries.get("models", [])
        out = []
        for e in items:
            p = (e.get("model") or e.get("path")) if isinstance(e, dict) else e
            if p and str(p).endswith(".onnx") and "tfc" in str(p).lower():
                out.append(FIXTURES / p if not Path(p).is_absolute() else Path(p))
        return [p for p in out if p.exists()]
    return sorted((FIXTURES / "brevitas").glob("tfc_*.onnx")) if FIXTURES.exists() else []


@pytest.mark.parametrize("path", fixture_models(), ids=lambda p: p.name)
def test_fixture_model(path):
    from bnncc import api
    from bnncc.folding import fold_simple
    d = api.load(str(path))
    fold_simple(d)
    stats = check(d, n=20)
    st = stats[0.0]
    est = st["cycles_per_frame_estimated"]
    assert abs(st["cycles_per_frame"] - est) <= 0.05 * est, st
