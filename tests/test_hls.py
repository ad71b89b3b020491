"""HLS backend without a compiler: every layer kind renders, output is deterministic,
the project has what Vitis HLS needs, and the word packing helpers round-trip."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from bnncc.backends import hls
from bnncc.datatypes import DataType
from bnncc.ir import Design, HostStage
from bnncc.layers import MVAU, LabelSelect, MaxPool, SlidingWindow, Thresholding
from bnncc.sim import csim
from bnncc.testing.designs import chain_design as make_design

BIP = DataType.bipolar()


def every_kind_design() -> Design:
    """SWG -> MVAU (multiply) -> MaxPool -> Thresholding -> SWG(1x1) -> MVAU (binary)
    -> LabelSelect, with width converters between them: every layer kind at least once."""
    rng = np.random.default_rng(0)
    i4, u2 = DataType.int(4), DataType.uint(2)
    swg = SlidingWindow("swg", i4, i4, (6, 6, 2), (4, 4, 18), kernel=(3, 3), stride=(1, 1),
                        pads=(0, 0, 0, 0), pad_value=0, simd=2)
    w = rng.choice([-1, 1], size=(8, 18))
    acc = DataType.for_range(-8 * 18, 8 * 18)
    mv = MVAU("mv0", i4, acc, (4, 4, 18), (4, 4, 8), weights=w, wdt=BIP, binary=False,
              accdt=acc, pe=4, simd=2)
    pool = MaxPool("pool", acc, acc, (4, 4, 8), (2, 2, 8), kernel=(2, 2), stride=(2, 2), pe=2)
    thr = np.sort(rng.integers(-40, 40, size=(8, 1)), axis=1)
    th = Thresholding("thr", acc, BIP, (2, 2, 8), (2, 2, 8), thresholds=thr, tdt=acc,
                      negate=rng.random(8) < 0.5, pe=8)
    swg2 = SlidingWindow("swg2", BIP, BIP, (2, 2, 8), (2, 2, 8), kernel=(1, 1), stride=(1, 1),
                         pads=(0, 0, 0, 0), pad_value=1, simd=8)
    w2 = rng.choice([-1, 1], size=(5, 8))
    acc2 = DataType.for_range(0, 32)
    mv2 = MVAU("mv1", BIP, acc2, (2, 2, 8), (2, 2, 5), weights=w2, wdt=BIP, binary=True,
               accdt=acc2, pe=5, simd=8)
    ls = LabelSelect("top", acc2, DataType.for_range(0, 4), (2, 2, 5), (2, 2, 2), k=2, pe=1)
    del u2
    return make_design(swg, mv, pool, th, swg2, mv2, ls)


def test_every_kind_renders():
    d = every_kind_design()
    kinds = {l.kind for l in d.layers()}
    assert kinds == set(hls.TEMPLATE_OF), kinds
    files = hls.render(d)
    for name in ("top.cpp", "top.hpp", "tb.cpp", "run_hls.tcl", "Makefile", "bnncc_common.h",
                 "bnncc_stream.h", "tb_input.bin"):
        assert name in files
    for l in d.layers():
        src = files[hls.c_name(l.name) + ".hpp"].decode()
        assert f"void {hls.c_name(l.name)}(hls::stream<" in src
        assert "{{" not in src and "{%" not in src


def test_top_has_dataflow_and_axis():
    src = hls.render(every_kind_design())["top.cpp"].decode()
    assert "#pragma HLS DATAFLOW" in src
    assert "#pragma HLS INTERFACE axis port=in" in src
    assert "#pragma HLS INTERFACE axis port=out" in src
    mv = hls.render(every_kind_design())["mv0.hpp"].decode()
    assert "#pragma HLS ARRAY_PARTITION variable=mv0_weights dim=1 complete" in mv
    common = hls.render(every_kind_design())["bnncc_common.h"].decode()
    assert '#include "bnncc_stream.h"' in common and "__SYNTHESIS__" in common


def test_run_hls_tcl():
    tcl = hls.render(every_kind_design(), part="xczu3eg-sbva484-1-e", clock_mhz=200.0)
    tcl = tcl["run_hls.tcl"].decode()
    for cmd in ("open_project", "set_top bnncc_top", "add_files", "open_solution",
                "set_part {xczu3eg-sbva484-1-e}", "create_clock -period 5.000", "csim_design",
                "csynth_design", "export_design -format ip_catalog"):
        assert cmd in tcl, cmd


def test_emit_is_deterministic(tmp_path):
    a = hls.emit(every_kind_design(), tmp_path / "a")
    b = hls.emit(every_kind_design(), tmp_path / "b")
    assert [p.name for p in a] == [p.name for p in b]
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    assert all(p.parent == tmp_path / "a" / "hls" for p in a)


def test_templates_dir_is_the_checkout():
    d = hls.templates_dir()
    assert (d / "mvau.hpp.j2").is_file() and (d / "bnncc_stream.h").is_file()


def test_unfolded_edges_are_refused():
    l1 = Thresholding("a", DataType.int(4), DataType.uint(1), (8,), (8,),
                      thresholds=np.zeros((8, 1), int), tdt=DataType.int(4), pe=2)
    l2 = Thresholding("b", DataType.uint(1), DataType.uint(1), (8,), (8,),
                      thresholds=np.ones((8, 1), int), tdt=DataType.int(2), pe=4)
    g = nx.DiGraph()
    g.add_node("a", layer=l1)
    g.add_node("b", layer=l2)
    g.add_edge("a", "b")
    stage = HostStage(shape=(1,), gather=np.zeros(1, int), chain=[])
    d = Design("u", g, "x", (1, 8), "y", (1, 8), stage, stage)
    with pytest.raises(Exception, match="words"):
        hls.render(d)


@pytest.mark.parametrize("dt", [BIP, DataType.int(3), DataType.uint(5), DataType.int(13)])
@pytest.mark.parametrize("elems", [1, 3, 16])
def test_word_files_round_trip(dt, elems):
    rng = np.random.default_rng(elems)
    if dt.is_bipolar:
        v = rng.choice([-1, 1], size=4 * elems)
    else:
        v = rng.integers(dt.min, dt.max + 1, size=4 * elems)
    bits = elems * dt.bits
    data = csim.words_to_bytes(v, dt, elems, 8 * ((bits + 7) // 8))
    assert len(data) == 4 * ((bits + 7) // 8)
    assert np.array_equal(csim.bytes_to_values(data, dt, elems, bits), v)


def test_word_literals():
    lit = hls.word_literals(np.array([[1, -1, 1]]), BIP)
    assert lit.tolist() == ["0x5ULL"]
    lit = hls.word_literals(np.array([[-1, 2]]), DataType.int(3))
    assert lit.tolist() == ["0x17ULL"]   # 0b010_111
    wide = hls.word_literals(np.ones((1, 70), int), BIP).item()
    assert wide.startswith('ap_uint<70>("0x3f') and wide.endswith('", 16)')
