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
from bnncc.layers import MVAU, LabelSelect, MaxPool, SlidingWindow, Thresholding, WidthConverter
from bnncc.sim import rtlsim
from bnncc.sim.tools import verilator_env, yosys_cmd
from bnncc.testing.designs import chain_design as make_design
from bnncc.testing.designs import fixture_index as _index
from bnncc.testing.designs import model_inputs, rand_values

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
    from bnncc import api
    from bnncc.folding import fold_simple
    model = FIXTURES / entry["model"]
    if not model.is_file():
        pytest.skip(f"fixture {entry['name']} not present")
    return fold_simple(api.load(str(model)))


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
def test_random_network(seed, tmp_path):
    netgen = pytest.importorskip("bnncc.testing.netgen")
    import onnx

    from bnncc import api
    from bnncc.folding import fold_simple
    case = netgen.random_network(seed)
    path = tmp_path / f"{case.name}.onnx"
    onnx.save(case.model, str(path))
    d = fold_simple(api.load(str(path)))
    check_stream(d, d.quantize_input(case.inputs), seed=seed)


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


@pytest.mark.parametrize("name", ["tfc", "conv", "int"])
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


def test_progress_bar_text():
    import io

    from bnncc.sim.cosim import ProgressBar
    s = io.StringIO()
    bar = ProgressBar(s, width=10)
    bar("compiling with Verilator", 0, 0)
    bar("simulating", 5, 10)
    bar("simulating", 10, 10)
    bar.close()
    text = s.getvalue()
    assert text.count("\r") == 3 and "[#####.....] 5/10" in text and "[##########] 10/10" in text
    assert text.endswith("\n") and text.count("\n") == 1


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
    import pty
    import sys
    model, x = _tfc_inputs(tmp_path, 100)
    master, slave = pty.openpty()
    try:
        r = subprocess.run([sys.executable, "-m", "bnncc", "cosim", str(model), "-i", str(x),
                            "--levels", "golden,rtlsim"], stdout=subprocess.PIPE,
                           stderr=slave, text=True, timeout=600)
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
    finally:
        os.close(master)
    assert r.returncode == 0, err.decode(errors="replace")
    assert "bit-exact" in r.stdout
    text = err.decode(errors="replace")
    assert "\r" in text and "100/100 frames" in text, text
