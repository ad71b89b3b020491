"""HLS C simulation (g++): every layer kind against its golden layer on random data across
PE/SIMD points (1, intermediate, fully unfolded), the stream joins and splits (AddStreams,
Concat, Duplicate) inside small DAGs; strict compiles (-Wall -Werror, C++14 and C++17) of a
DAG with every kind; end-to-end bit-exactness on the repo's fixture models, random
networks, random residual / concat networks and average-pooling networks.

Designs are built from layer objects directly, so the unit tests need no model files.
Unit tests compare every layer's stream (the testbench's trace) and simulate both the fast
C-simulation inner loops and the synthesis code (-DBNNCC_HW_PATH) of the MVAU; whole
models compare the outputs and locate a mismatch with a traced rerun.
Compiled binaries are cached by content hash ($BNNCC_CACHE or ~/.cache/bnncc).
Frames per fixture model: $BNNCC_CSIM_FRAMES (default 100); random networks:
$BNNCC_CSIM_NETS (default 50)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bnncc.backends import hls
from bnncc.datatypes import DataType
from bnncc.folding import fold_simple, insert_width_converters, strip_width_converters
from bnncc.ir import INPUT, Design
from bnncc.layers import (MVAU, AddStreams, Concat, LabelSelect, MaxPool, SlidingWindow, SumPool,
                          Thresholding)
from bnncc.sim import csim
from bnncc.testing.designs import chain_design as make_design
from bnncc.testing.designs import fixture_index as _index
from bnncc.testing.designs import load_fixture
from bnncc.testing.designs import generated_design, graph_design, model_inputs, pool_model
from bnncc.testing.designs import padded_design
from bnncc.testing.designs import rand_values

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
BIP = DataType.bipolar()
I8 = DataType.int(8)


def _residual_seeds(n: int = 12) -> list[int]:
    """The first n seeds whose integer network is of family qonnx-residual (netgen picks
    the family from the seed alone)."""
    try:
        from bnncc.testing.netgen import INT_FAMILIES
    except ImportError:
        return []
    fam = [s for s in range(100) if INT_FAMILIES[s % len(INT_FAMILIES)] == "qonnx-residual"]
    return fam[:n]

pytestmark = pytest.mark.skipif(shutil.which(csim.CXX) is None, reason="g++ not found")


def check(design: Design, q: np.ndarray, trace: bool = True, hw_path: bool = False) -> None:
    """csim == golden: the final output and (trace=True, or on a mismatch) every layer's
    stream, integer equality."""
    gold = design.run_layers(q)
    out, ctrace = csim.simulate(design, q, trace=trace, hw_path=hw_path)
    if not trace and np.array_equal(out, gold):
        return
    if not trace:            # locate the first layer that differs
        out, ctrace = csim.simulate(design, q, trace=True, hw_path=hw_path)
    want_trace: dict = {}
    design.run_layers(q, want_trace)
    for name, want in want_trace.items():
        got = ctrace[name]
        assert got.shape == want.shape, name
        if not np.array_equal(got, want):
            idx = tuple(np.argwhere(got != want)[0])
            pytest.fail(f"first mismatch at layer {name} index {idx}: csim {got[idx]} "
                        f"golden {want[idx]}")
    assert np.array_equal(out, gold)


def check_both_paths(design: Design, q: np.ndarray) -> None:
    check(design, q)
    check(design, q, hw_path=True)


# Whole models first: under pytest-xdist the longest tests then start first.
# -- end to end ------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", _index(), ids=lambda e: e["name"])
def test_fixture_model(entry):
    model = FIXTURES / entry["model"]
    refs = FIXTURES / entry["refs"]
    if not model.is_file() or not refs.is_file():
        pytest.skip(f"fixture {entry['name']} not present")
    d = load_fixture(entry)
    fold_simple(d)
    n = int(os.environ.get("BNNCC_CSIM_FRAMES", "100"))
    x = model_inputs(entry, n)
    assert len(x) == n
    check(d, d.quantize_input(x), trace=False)


@pytest.mark.parametrize("seed", range(int(os.environ.get("BNNCC_CSIM_NETS", "50"))))
def test_random_network(seed):
    d, q = generated_design(seed, integer=False)
    check(d, q, trace=False)


@pytest.mark.parametrize("seed", range(10))
def test_padded_network(seed):
    """Random padded binary conv networks (border corrections), both MVAU code paths."""
    d, q = padded_design(seed)
    check(d, q, trace=False)
    check(d, q, trace=False, hw_path=True)


@pytest.mark.parametrize("seed", _residual_seeds())
def test_residual_network(seed):
    """Random integer networks with residual adds and concats (fold_simple folding)."""
    pytest.importorskip("bnncc.testing.netgen")
    from bnncc.testing import netgen
    assert netgen.random_int_network(seed).family == "qonnx-residual"
    d, q = generated_design(seed)
    assert {"Duplicate"} < {l.kind for l in d.layers()}
    assert {"AddStreams", "Concat"} & {l.kind for l in d.layers()}
    check(d, q)


@pytest.mark.parametrize("target", [1 << 15, 8])
@pytest.mark.parametrize("mode,rounding", [("avg", "ROUND"), ("avg", "FLOOR"),
                                           ("global", "CEIL"), ("global", "ROUND")])
def test_pool_network(mode, rounding, target):
    """QONNX average / global average pooling (a SumPool) end to end; the small cycle
    target unfolds the layers (PE > 1)."""
    pytest.importorskip("onnx")
    from bnncc.frontend.lower import lower
    d = fold_simple(lower(pool_model(mode, rounding, seed=len(mode) + len(rounding)),
                          "pool.onnx"), target_cycles=target)
    pools = [l for l in d.layers() if l.kind == "SumPool"]
    assert len(pools) == 1 and (pools[0].pe > 1) == (target < 100)
    x = np.random.default_rng(5).uniform(-1, 1, (16, 3, 8, 8)).astype(np.float32)
    check(d, d.quantize_input(x))


# -- a DAG of every kind, strict compiles -------------------------------------------------------

def every_kind_design():
    import sys
    sys.path.insert(0, str(REPO / "tests"))
    from test_hls import every_kind_design as mk
    return mk()


def test_every_kind():
    d = every_kind_design()
    rng = np.random.default_rng(1)
    check_both_paths(d, _frames(rng, d.first(), 5))


def _strict_compile(files: dict, tmp: Path, std: str, defines=()) -> None:
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    cmd = [csim.CXX, f"-std={std}", *defines, "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
           "-O2", "-isystem", str(csim.ap_include()), "-I", str(tmp),
           str(tmp / "top.cpp"), str(tmp / "tb.cpp"), "-o", str(tmp / "tb")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.parametrize("std,defines", [("c++14", ()), ("c++17", ()), ("c++14", ("-DBNNCC_HW_PATH",)),
                                         ("c++14", ("-DBNNCC_COUNT_LOOPS",))])
def test_strict_compile(tmp_path, std, defines):
    """-Wall -Wextra -Werror, on the C-simulation code, the synthesis code (BNNCC_HW_PATH)
    and the loop-counting build."""
    _strict_compile(hls.render(every_kind_design()), tmp_path, std, list(defines))


def test_run_hls_tcl_csim_is_the_tested_path(tmp_path):
    """run_hls.tcl's C simulation compiles the files bnncc's csim compiles and runs the
    testbench against the golden model's outputs written into the project: it passes on
    the project as written and fails (exit 3) when one expected word is wrong."""
    import re
    files = hls.render(every_kind_design())
    tcl = files["run_hls.tcl"].decode()
    assert re.findall(r"^add_files (?:-tb )?(\S+)", tcl, re.M) == \
        ["top.cpp", "tb.cpp", "tb_input.bin", "tb_expected.bin"]
    for step in ("csim_design", "csynth_design", "cosim_design", "export_design"):
        assert re.search(rf"^{step}\b", tcl, re.M), step
    argv = re.search(r'^csim_design -argv "([^"]+)"', tcl, re.M).group(1).split()
    exe = csim.build(files)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    r = subprocess.run([str(exe), *argv], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and "match the golden model" in r.stdout, r.stderr
    bad = bytearray(files["tb_expected.bin"])
    bad[len(bad) // 2] ^= 1
    (tmp_path / "tb_expected.bin").write_bytes(bytes(bad))
    r = subprocess.run([str(exe), *argv], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 3, (r.returncode, r.stderr)


def test_makefile_builds(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make not found")
    for name, data in hls.render(every_kind_design()).items():
        (tmp_path / name).write_bytes(data)
    r = subprocess.run(["make", "-C", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run(["./tb", "tb_input.bin", str(hls.TB_FRAMES), ".", "--expect",
                        "tb_expected.bin"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _frames(rng, layer, n=3):
    return rand_values(rng, layer.idt, (n,) + tuple(layer.in_shape))


# -- MVAU ---------------------------------------------------------------------------------

def _mvau(rng, *, binary, idt, wdt, mh, mw, pe, simd, pixels=(), nt=None, odt=None):
    w = rand_values(rng, wdt, (mh, mw))
    if binary:
        acc = DataType.for_range(0, mw)
    else:
        xmax = max(abs(idt.min), abs(idt.max))
        bound = int(np.abs(w).sum(1).max()) * xmax
        acc = DataType.for_range(-bound, bound)
    thr = None
    if nt:
        lo, hi = (0, mw) if binary else (-mw * 2, mw * 2)
        thr = np.sort(rng.integers(lo, hi + 1, size=(mh, nt)), axis=1)
    else:
        odt = acc
    return MVAU("mvau", idt, odt, tuple(pixels) + (mw,), tuple(pixels) + (mh,), weights=w,
                wdt=wdt, binary=binary, accdt=acc, thresholds=thr, tdt=acc, pe=pe, simd=simd)


MVAU_FOLDS = [(1, 1), (2, 4), (4, 8), (12, 24)]   # (PE, SIMD); the last is fully unfolded


@pytest.mark.parametrize("pe,simd", MVAU_FOLDS)
@pytest.mark.parametrize("thresholds", [True, False])
def test_mvau_binary(pe, simd, thresholds):
    rng = np.random.default_rng(pe * 100 + simd)
    l = _mvau(rng, binary=True, idt=BIP, wdt=BIP, mh=12, mw=24, pe=pe, simd=simd,
              pixels=(2, 3), nt=1 if thresholds else None, odt=BIP)
    check_both_paths(make_design(l), _frames(rng, l))


@pytest.mark.parametrize("pe,simd", MVAU_FOLDS)
@pytest.mark.parametrize("idt,wdt,odt,nt", [
    (DataType.int(4), BIP, DataType.uint(2), 3),
    (DataType.uint(3), DataType.int(2, narrow=True), DataType.int(2), 3),
    (BIP, DataType.int(3), None, None),
    (DataType.int(8), DataType.int(4), BIP, 1),
])
def test_mvau_multiply(pe, simd, idt, wdt, odt, nt):
    rng = np.random.default_rng(pe * 100 + simd + idt.bits)
    l = _mvau(rng, binary=False, idt=idt, wdt=wdt, mh=12, mw=24, pe=pe, simd=simd,
              pixels=(3,), nt=nt, odt=odt)
    check_both_paths(make_design(l), _frames(rng, l))


def test_mvau_wide_words():
    """SIMD*wbits > 64: weights as ap_uint strings (one starts with 0b / 0d hex digits)."""
    rng = np.random.default_rng(7)
    l = _mvau(rng, binary=True, idt=BIP, wdt=BIP, mh=4, mw=256, pe=2, simd=128, nt=1, odt=BIP)
    l.weights[0, 120:128] = [-1, -1, -1, -1, 1, 1, -1, 1]    # top hex digits "0b..."
    check_both_paths(make_design(l), _frames(rng, l, 4))


@pytest.mark.parametrize("simd,wdt", [(24, DataType.int(3)), (40, DataType.int(4))])
def test_mvau_wide_multiply(simd, wdt):
    """Integer weights in words of 72 and 160 bits: chunked weight arrays, elements that
    straddle 64-bit chunk boundaries."""
    rng = np.random.default_rng(simd)
    l = _mvau(rng, binary=False, idt=DataType.int(5), wdt=wdt, mh=4, mw=2 * simd, pe=2,
              simd=simd, nt=3, odt=DataType.uint(2))
    check_both_paths(make_design(l), _frames(rng, l, 4))


# -- Thresholding --------------------------------------------------------------------------

@pytest.mark.parametrize("pe", [1, 4, 8])
@pytest.mark.parametrize("idt,odt,nt,negate", [
    (DataType.int(6), DataType.uint(2), 3, True),
    (DataType.uint(5), DataType.int(3), 7, False),
    (DataType.int(10), BIP, 1, True),
])
def test_thresholding(pe, idt, odt, nt, negate):
    rng = np.random.default_rng(pe + nt)
    c = 8
    thr = np.sort(rng.integers(idt.min - 1, idt.max + 2, size=(c, nt)), axis=1)
    neg = (rng.random(c) < 0.5) if negate else None
    l = Thresholding("thr", idt, odt, (2, 3, c), (2, 3, c), thresholds=thr, tdt=idt,
                     negate=neg, pe=pe)
    check(make_design(l), _frames(rng, l))


# -- SlidingWindow -------------------------------------------------------------------------

def _swg(idt, hw, c, kernel, stride, pads, simd, pad_value=0):
    (h, w), (kh, kw), (sh, sw) = hw, kernel, stride
    t, lft, b, r = pads
    oh, ow = (h + t + b - kh) // sh + 1, (w + lft + r - kw) // sw + 1
    return SlidingWindow("swg", idt, idt, (h, w, c), (oh, ow, kh * kw * c), kernel=kernel,
                         stride=stride, pads=pads, pad_value=pad_value, simd=simd)


@pytest.mark.parametrize("simd", [1, 2, 4])
@pytest.mark.parametrize("idt,hw,kernel,stride,pads,pad_value", [
    (DataType.int(3), (5, 6), (3, 3), (1, 1), (1, 1, 1, 1), 0),
    (BIP, (6, 6), (2, 2), (2, 2), (0, 0, 0, 0), 1),
    (DataType.uint(4), (7, 5), (3, 2), (2, 1), (0, 1, 2, 0), 3),
    (BIP, (4, 4), (3, 3), (1, 1), (2, 2, 2, 2), -1),
    (DataType.int(5), (3, 3), (5, 5), (1, 1), (1, 1, 1, 1), -2),   # window taller than image
])
def test_sliding_window(simd, idt, hw, kernel, stride, pads, pad_value):
    rng = np.random.default_rng(simd)
    l = _swg(idt, hw, 4, kernel, stride, pads, simd, pad_value)
    check(make_design(l), _frames(rng, l))


@pytest.mark.parametrize("idt", [DataType.int(3), BIP])
@pytest.mark.parametrize("hw,kernel,stride,pads", [
    ((5, 6), (3, 3), (2, 2), (1, 1, 1, 1)),
    ((6, 5), (2, 2), (1, 1), (0, 0, 0, 0)),
    ((7, 6), (3, 2), (2, 1), (0, 1, 2, 0)),
    ((5, 5), (1, 3), (1, 2), (0, 0, 0, 0)),
    ((3, 4), (1, 1), (1, 1), (0, 0, 0, 0)),
    ((3, 3), (4, 4), (1, 1), (1, 1, 1, 1)),     # window taller than the image
])
def test_sliding_window_parallel(idt, hw, kernel, stride, pads):
    """The parallel form: a whole pixel in and a whole window out per word."""
    rng = np.random.default_rng(kernel[0] * 10 + kernel[1])
    l = _swg(idt, hw, 3, kernel, stride, pads, 3, pad_value=1 if idt.is_bipolar else -2)
    l.parallel = True
    check(make_design(l), _frames(rng, l))


# -- MaxPool -------------------------------------------------------------------------------

@pytest.mark.parametrize("pe", [1, 2, 4])
@pytest.mark.parametrize("idt,hw,k", [
    (BIP, (6, 6), 2), (DataType.int(3), (5, 7), 2), (DataType.uint(4), (6, 6), 3),
])
def test_maxpool(pe, idt, hw, k):
    rng = np.random.default_rng(pe * 10 + k)
    h, w = hw
    l = MaxPool("pool", idt, idt, (h, w, 4), (h // k, w // k, 4), kernel=(k, k), stride=(k, k),
                pe=pe)
    check(make_design(l), _frames(rng, l))


# -- LabelSelect ---------------------------------------------------------------------------

@pytest.mark.parametrize("pe", [1, 2, 10])
@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("idt", [DataType.int(3), DataType.uint(2), BIP])
def test_labelselect(pe, k, idt):
    rng = np.random.default_rng(pe * 10 + k)
    l = LabelSelect("top", idt, DataType.for_range(0, 9), (10,), (k,), k=k, pe=pe)
    q = _frames(rng, l, 20)                         # few distinct values: many ties
    check(make_design(l), q)


def test_labelselect_rows():
    rng = np.random.default_rng(3)
    l = LabelSelect("top", DataType.int(4), DataType.for_range(0, 5), (3, 6), (3, 2), k=2, pe=3)
    check(make_design(l), _frames(rng, l, 4))


# -- WidthConverter ------------------------------------------------------------------------

@pytest.mark.parametrize("a,b", [(1, 8), (8, 1), (4, 6), (6, 4), (16, 3), (2, 48)])
@pytest.mark.parametrize("dt", [BIP, DataType.int(5)])
def test_width_converter(a, b, dt):
    """Two thresholdings with different PE: fold inserts a WidthConverter a -> b."""
    rng = np.random.default_rng(a * 100 + b)
    c = 48
    ident = np.arange(dt.min, dt.max)[None, :].repeat(c, 0) + 1   # identity thresholds
    odt = DataType.int(dt.bits) if not dt.is_bipolar else BIP
    if dt.is_bipolar:
        ident = np.zeros((c, 1), int)
    t1 = Thresholding("t1", dt, odt, (c,), (c,), thresholds=ident, tdt=DataType.int(6), pe=a)
    t2 = Thresholding("t2", odt, odt, (c,), (c,), thresholds=ident, tdt=DataType.int(6), pe=b)
    d = make_design(t1, t2)
    assert "WidthConverter" in {l.kind for l in d.layers()}
    check(d, _frames(rng, t1, 3))


# -- MaxPool / SumPool: one template -------------------------------------------------------

@pytest.mark.parametrize("pe", [1, 2, 4])
@pytest.mark.parametrize("idt", [BIP, DataType.int(4)])
def test_maxpool_global(pe, idt):
    """A window over the whole image, stride 1 (a global max pool)."""
    rng = np.random.default_rng(pe)
    l = MaxPool("pool", idt, idt, (3, 5, 4), (1, 1, 4), kernel=(3, 5), stride=(1, 1), pe=pe)
    check(make_design(l), _frames(rng, l))


@pytest.mark.parametrize("pe", [1, 2, 4])
@pytest.mark.parametrize("idt,hw,kernel,stride", [
    (DataType.uint(3), (6, 6), (2, 2), (2, 2)),
    (DataType.int(4), (5, 7), (2, 2), (2, 2)),     # the last row and column are dropped
    (BIP, (4, 4), (4, 4), (1, 1)),                 # global, stride 1
    (DataType.int(3), (3, 5), (3, 5), (3, 5)),     # global, stride = kernel
    (DataType.int(4), (6, 5), (2, 5), (2, 1)),     # 2 rows per window, all columns
])
def test_sumpool(pe, idt, hw, kernel, stride):
    rng = np.random.default_rng(pe * 10 + kernel[0])
    (h, w), (kh, kw), (sh, sw) = hw, kernel, stride
    n = kh * kw
    l = SumPool("pool", idt, DataType.for_range(n * idt.min, n * idt.max), (h, w, 4),
                ((h - kh) // sh + 1, (w - kw) // sw + 1, 4), kernel=kernel, stride=stride, pe=pe)
    check(make_design(l), _frames(rng, l))


# -- joins and splits ----------------------------------------------------------------------

def _thr(rng, name, idt, odt, shape, pe, **kw):
    """Thresholding from idt to odt, random sorted thresholds across idt's range: a layer
    producing a stream of type odt."""
    nt = 1 if odt.is_bipolar else 2 ** odt.bits - 1
    t = np.sort(rng.integers(idt.min - 1, idt.max + 2, size=(shape[-1], nt)), axis=1)
    return Thresholding(name, idt, odt, shape, shape, thresholds=t,
                        tdt=DataType.for_range(t.min(), t.max()), pe=pe, **kw)


def _add(name, ta, tb, shape, ka, kb, inputs, pe):
    ends = [ka * a + kb * b for a in (ta.min, ta.max) for b in (tb.min, tb.max)]
    return AddStreams(name, ta, DataType.for_range(min(ends), max(ends)), shape, shape,
                      idt_b=tb, ka=ka, kb=kb, inputs=inputs, pe=pe)


def _cat(name, parts, inputs, pe):
    """Concat of (datatype, shape) parts along channels; output type as lowering picks it."""
    dts = [dt for dt, _ in parts]
    lo, hi = min(dt.min for dt in dts), max(dt.max for dt in dts)
    odt = BIP if all(dt.is_bipolar for dt in dts) else DataType.for_range(lo, hi)
    shape = tuple(parts[0][1])
    chans = tuple(s[-1] for _, s in parts)
    return Concat(name, dts[0], odt, shape, shape[:-1] + (sum(chans),), idts=tuple(dts),
                  channels=chans, inputs=inputs, pe=pe)


def _dup_pe(d: Design, pe: int) -> Design:
    """Fold every Duplicate to `pe` elements per word (width converters around it)."""
    strip_width_converters(d)
    for l in d.layers():
        if l.kind == "Duplicate":
            l.pe = pe
    return insert_width_converters(d)


ADD_CASES = [   # types of a and b, ka, kb
    (DataType.int(4), DataType.uint(2), 1, 1),
    (DataType.uint(3), DataType.int(3), 2, -1),
    (BIP, DataType.int(3), 3, 1 << 20),
    (DataType.int(5), BIP, -1, 3),
    (BIP, BIP, 1 << 20, -1),
    (DataType.uint(2), DataType.int(4), 1 << 32, -(1 << 32)),
]


@pytest.mark.parametrize("pe", [1, 4, 8])
@pytest.mark.parametrize("ta,tb,ka,kb", ADD_CASES)
def test_addstreams(pe, ta, tb, ka, kb):
    """add = ka * t0 + kb * t1(t0): a residual block whose skip path is the identity."""
    rng = np.random.default_rng(pe + abs(ka) % 7)
    shape = (2, 3, 8)
    t0 = _thr(rng, "t0", I8, ta, shape, 2)
    t1 = _thr(rng, "t1", ta, tb, shape, 4)
    add = _add("add", ta, tb, shape, ka, kb, ["t0", "t1"], pe)
    d = graph_design(t0, t1, add)
    assert [l.n for l in d.layers() if l.kind == "Duplicate"] == [2]
    check(d, _frames(rng, t0))


@pytest.mark.parametrize("pe", [1, 4, 8])
@pytest.mark.parametrize("ta,tb", [(BIP, DataType.int(3)), (DataType.uint(2), DataType.int(4)),
                                   (BIP, BIP), (DataType.int(3), DataType.uint(3)),
                                   (DataType.int(4), BIP)])
def test_concat_two(pe, ta, tb):
    rng = np.random.default_rng(pe + ta.bits + 3 * tb.bits)
    shape = (2, 3, 8)
    t0 = _thr(rng, "t0", I8, ta, shape, 2)
    t1 = _thr(rng, "t1", ta, tb, shape, 8)
    cat = _cat("cat", [(ta, shape), (tb, shape)], ["t0", "t1"], pe)
    check(graph_design(t0, t1, cat), _frames(rng, t0))


@pytest.mark.parametrize("pe", [1, 2, 4])
@pytest.mark.parametrize("binary", [True, False])
def test_concat_three(pe, binary):
    """concat(t0, mvau(t0), t2(mvau)) with 8, 4 and 4 channels: all bipolar (bits copied),
    or bipolar, UINT2 and INT3 into one integer type."""
    rng = np.random.default_rng(pe + 10 * binary)
    tb, tc = (BIP, BIP) if binary else (DataType.uint(2), DataType.int(3))
    t0 = _thr(rng, "t0", I8, BIP, (2, 3, 8), 2)
    mv = _mvau(rng, binary=binary, idt=BIP, wdt=BIP if binary else DataType.int(2), mh=4, mw=8,
               pe=2, simd=4, pixels=(2, 3), nt=1 if binary else 3, odt=tb)
    t2 = _thr(rng, "t2", tb, tc, (2, 3, 4), 4)
    cat = _cat("cat", [(BIP, (2, 3, 8)), (tb, (2, 3, 4)), (tc, (2, 3, 4))],
               ["t0", "mvau", "t2"], pe)
    d = graph_design(t0, mv, t2, cat)
    assert len(d.inputs_of("cat")) == 3
    check(d, _frames(rng, t0))


@pytest.mark.parametrize("pe", [1, 2, 8])
@pytest.mark.parametrize("shape", ["skip", "three", "host"])
def test_duplicate(pe, shape):
    """Duplicates at PE 1 .. all channels: t0 read by t1 and directly by the add (an
    identity skip); t0 read by t1, the add and a concat (three outputs); the host stream
    read by t1 and the add (the Duplicate is the first layer)."""
    rng = np.random.default_rng(pe)
    i4, u3 = DataType.int(4), DataType.uint(3)
    s = (2, 3, 8)
    if shape == "host":
        t1 = _thr(rng, "t1", i4, u3, s, 4)
        layers = [t1, _add("add", i4, u3, s, 1, 2, [INPUT, "t1"], 2)]
    else:
        t0 = _thr(rng, "t0", I8, i4, s, 2)
        t1 = _thr(rng, "t1", i4, u3, s, 4)
        add = _add("add", i4, u3, s, 1, -2, ["t0", "t1"], 8)
        layers = [t0, t1, add]
        if shape == "three":
            layers.append(_cat("cat", [(i4, s), (add.odt, s)], ["t0", "add"], 4))
    d = _dup_pe(graph_design(*layers), pe)
    dups = [l for l in d.layers() if l.kind == "Duplicate"]
    assert [(l.n, l.pe) for l in dups] == [(3 if shape == "three" else 2, pe)]
    assert (hls.endpoints(d)[0] is dups[0]) == (shape == "host")
    check(d, _frames(rng, d.first()))
